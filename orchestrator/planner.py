"""Planning: an experiment file (plus config and run count) becomes a numbered list of indices.

This is also the API an entry script uses to read its parameters by index:

    exp = orchestrator.load_experiment(path)
    params = exp.params(index)         # the swept sub-dict, as PyExpUtils' get_hypers(index)
    out_dir = exp.save_path(index)     # as PyExpUtils' interpolateSavePath(index)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from orchestrator.config import ProjectConfig, load_config
from orchestrator.errors import UserError
from orchestrator.experiment import ExperimentFile, read_experiment_file
from orchestrator.run_dir import RunDirectory
from orchestrator.save_paths import SavePathTemplate, experiment_name, template_constants
from orchestrator.settings import RESULT_CHOICES
from orchestrator.sweep import DEFAULT_SWEEP_KEYS, Sweep


@dataclass(frozen=True)
class IndexInfo:
    experiment: str
    index: int
    run: int
    params: Any
    save_path: str

    def to_json(self) -> dict[str, Any]:
        """The `plan --jsonl` object of this index (fields in the contract's order)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ExperimentPlan:
    """One experiment file's index space: P permutations times `runs` runs."""

    def __init__(
        self,
        file: ExperimentFile,
        config: ProjectConfig,
        runs: int = 1,
        keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
        results: str = "auto",
    ) -> None:
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise UserError(f"--runs must be a positive integer, not {runs!r}")
        if results not in RESULT_CHOICES:
            raise UserError(f"--results must be one of {', '.join(RESULT_CHOICES)}, not {results!r}")
        self.file = file
        self.path = file.path
        self.config = config
        self.runs = runs
        self.results = results  # how finished results are recognised: see orchestrator.result_store
        self.sweep = Sweep(file.data, keys, source=file.path)
        self.name = experiment_name(file.path, config.experiment_directory, config.root)

    @cached_property
    def save_path_template(self) -> SavePathTemplate:
        """Compiled on first use: an entry script that only reads `params(i)` never needs it.

        PyExpUtils, too, fails on a placeholder the file lacks only when a save path is asked for.
        """
        constants = template_constants(self.file.data, self.name)
        return SavePathTemplate(self.config.save_path, constants, source=str(self.config.root / "config.json"))

    def check_save_path(self) -> None:
        """Raise the `UserError` of a `save_path` this experiment cannot fill (an unknown placeholder)."""
        _ = self.save_path_template

    @property
    def num_permutations(self) -> int:
        return self.sweep.num_permutations

    @property
    def total(self) -> int:
        return self.sweep.num_permutations * self.runs

    @property
    def keys(self) -> tuple[str, ...]:
        return self.sweep.keys

    def run(self, index: int) -> int:
        return self.sweep.run(index)

    def params(self, index: int) -> Any:
        return self.sweep.params(index)

    def permutation(self, index: int) -> dict[str, Any]:
        return self.sweep.permutation(index)

    def save_path(self, index: int) -> str:
        """The result path, relative to the project root unless `save_path` is absolute."""
        return self.save_path_template.render(self.sweep.params_string(index), self.sweep.run(index))

    def info(self, index: int) -> IndexInfo:
        return IndexInfo(self.path, index, self.run(index), self.params(index), self.save_path(index))

    def save_paths(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, str]]:
        """(index, save path) for `indices` (default: every planned index, in order)."""
        if indices is not None:
            for index in indices:
                yield index, self.save_path(index)
            return
        index = 0
        for run in range(self.runs):
            render = self.save_path_template.bind_run(run)
            for params_string in self.sweep.iter_params_strings():
                yield index, render(params_string)
                index += 1

    def save_path_prefix(self) -> str:
        """The directory every save path lies in (the scan never lists above it); '' if none."""
        prefix = self.save_path_template.constant_prefix()
        return os.path.dirname(prefix) if "/" in prefix else ""

    def params_strings(self) -> Iterator[str]:
        """Every permutation's `{params}` string, in order."""
        return self.sweep.iter_params_strings()

    def params_directory_base(self) -> str | None:
        """`base` when every save path is `base/<params>/<run>` (see `SavePathTemplate`), else None."""
        return self.save_path_template.params_directory_base()

    def save_path_groups(self, marker: str | None = None) -> Iterator[tuple[str, list[tuple[int, str]]]]:
        """(parent directory, [(index, name), ...]) for every index, one permutation's runs together.

        `name` is the save path's last component (or `marker` inside it). Streamed: nothing is held
        beyond one permutation, whatever the sweep's size.
        """
        permutations, runs = self.num_permutations, range(self.runs)
        parent_of = self.save_path_template.run_leaf_parent()
        if parent_of is not None and marker is None:
            names = [str(run) for run in runs]
            for p, params in enumerate(self.sweep.iter_params_strings()):
                yield parent_of(params), [(p + run * permutations, names[run]) for run in runs]
            return
        renders = [self.save_path_template.bind_run(run) for run in runs]
        for p, params in enumerate(self.sweep.iter_params_strings()):
            groups: dict[str, list[tuple[int, str]]] = {}
            for run in runs:
                path = renders[run](params)
                parent, name = os.path.split(os.path.normpath(os.path.join(path, marker) if marker else path))
                groups.setdefault(parent, []).append((p + run * permutations, name))
            yield from groups.items()

    def jsonl_lines(self) -> Iterator[str]:
        """`plan --jsonl` lines for every index, streamed in order; each is `json.dumps(info)`."""
        head = '{"experiment": %s, "index": ' % json.dumps(self.path)
        quote = encode_basestring_ascii  # what json.dumps uses for a str
        index = 0
        for run in range(self.runs):
            render = self.save_path_template.bind_run(run)
            middle = ', "run": %d, "params": ' % run
            for params_string, params_json in self.sweep.iter_permutations():
                yield f'{head}{index}{middle}{params_json}, "save_path": {quote(render(params_string))}}}'
                index += 1


def plan_experiment(
    path: str | Path,
    config: ProjectConfig,
    runs: int = 1,
    keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
    results: str = "auto",
) -> ExperimentPlan:
    """A plan for the commands: its save path template is checked now, since they all need it."""
    plan = ExperimentPlan(read_experiment_file(path), config, runs, keys, results)
    plan.check_save_path()
    return plan


def load_experiment(
    path: str | Path,
    root: str | Path = ".",
    keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
) -> ExperimentPlan:
    """For entry scripts: the experiment at `path`, with `config.json` read from `root`.

    A relative `path` is relative to `root`, the project root, like `config.json` and `{name}`
    (the same thing when `root` is the current directory, as in a task). The save path template is
    checked only when a save path is asked for, so `params(i)` works whatever `save_path` says.

    Inside a task the orchestrator submitted for this very file, the file's content as it was at
    submission is used (saved beside the job script): a task that starts after the file was edited
    runs the params its index had when it was submitted, which is what `status` attributes to it.
    """
    config = load_config(root)
    located = path if os.path.isabs(path) or Path(root) == Path(".") else os.path.join(root, path)
    file = submitted_version(located) or read_experiment_file(located)
    file = ExperimentFile(path=str(path), data=file.data, content_hash=file.content_hash)
    return ExperimentPlan(file, config, 1, keys)


_TAG = re.compile(r"orch-[A-Za-z0-9-]+")


def submitted_version(path: str | Path) -> ExperimentFile | None:
    """The snapshot of `path` taken at submission, when this process runs inside a task of ours for it."""
    given, root, tag = (os.environ.get(k) for k in ("ORCH_EXPERIMENT", "ORCH_ROOT", "SLURM_JOB_NAME"))
    if not (given and root and tag and _TAG.fullmatch(tag)) or os.path.abspath(path) != os.path.abspath(given):
        return None
    snapshot = RunDirectory.of(Path(root), tag).read_snapshot()
    if snapshot is None:
        return None  # submitted before snapshots existed, or cleaned up: the file as it is now
    return ExperimentFile(path=str(path), data=snapshot.data, content_hash=snapshot.content_hash)

"""Planning: an experiment file (plus config and run count) becomes a numbered list of indices.

This is also the API an entry script uses to read its parameters by index:

    exp = orchestrator.load_experiment(path)
    params = exp.params(index)         # the swept sub-dict, as PyExpUtils' get_hypers(index)
    out_dir = exp.save_path(index)     # as PyExpUtils' interpolateSavePath(index)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from orchestrator.config import ProjectConfig, load_config
from orchestrator.errors import UserError
from orchestrator.experiment import ExperimentFile, read_experiment_file
from orchestrator.save_paths import SavePathTemplate, experiment_name, template_constants
from orchestrator.sweep import DEFAULT_SWEEP_KEYS, Sweep


@dataclass(frozen=True)
class IndexInfo:
    experiment: str
    index: int
    run: int
    params: Any
    save_path: str

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "index": self.index,
            "run": self.run,
            "params": self.params,
            "save_path": self.save_path,
        }


class ExperimentPlan:
    """One experiment file's index space: P permutations times `runs` runs."""

    def __init__(
        self,
        file: ExperimentFile,
        config: ProjectConfig,
        runs: int = 1,
        keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
    ) -> None:
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise UserError(f"--runs must be a positive integer, not {runs!r}")
        self.file = file
        self.path = file.path
        self.config = config
        self.runs = runs
        self.sweep = Sweep(file.data, keys, source=file.path)
        self.name = experiment_name(file.path, config.experiment_directory, config.root)
        self.save_path_template = SavePathTemplate(
            config.save_path, template_constants(file.data, self.name), source=str(config.root / "config.json")
        )

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
) -> ExperimentPlan:
    return ExperimentPlan(read_experiment_file(path), config, runs, keys)


def load_experiment(
    path: str | Path,
    root: str | Path = ".",
    keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
) -> ExperimentPlan:
    """For entry scripts: the experiment at `path`, with `config.json` read from `root`."""
    return plan_experiment(path, load_config(root), 1, keys)

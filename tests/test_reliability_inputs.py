"""Bad input, tried systematically (issue 6, item 5).

Every case builds one bad input in a fresh copy of the example project and runs the CLI as a user
would (`python -m orchestrator ...`). Each must: exit 2, print exactly one line on stderr (and
nothing on stdout) that names the file or flag, show no traceback, and write nothing: the
project's directory tree is compared before and after (no .orchestrator/, .logs/ or results/).

`submit` runs with `--executor local`, so a bad input that slipped through would run, not queue.
Cases are recorded for docs/RELIABILITY.md (tests/reliability.py), each under its own category.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import REPO, cli_env, make_example_project, one_line, orchestrator, tree_snapshot

EXPERIMENT = "experiments/example/linreg.json"
BAD = "experiments/example/bad.json"
PROFILE = "prof.yaml"

pytestmark = pytest.mark.reliability


def write(relative: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")

    return setup


def experiment(data: object, relative: str = BAD) -> Callable[[Path], None]:
    return write(relative, json.dumps(data))


def profile(text: str) -> Callable[[Path], None]:
    return write(PROFILE, text)


def config(text: str | None) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        if text is None:
            (root / "config.json").unlink()
        else:
            (root / "config.json").write_text(text)

    return setup


def template(kind: str) -> Callable[[Path], None]:
    """A profile whose `template:` is missing, a directory, unreadable, not UTF-8, or broken."""

    def setup(root: Path) -> None:
        (root / PROFILE).write_text("template: tmpl.sh.j2\n")
        path = root / "tmpl.sh.j2"
        default = (REPO / "templates" / "sbatch_array.sh.j2").read_text()
        if kind == "directory":
            path.mkdir()
        elif kind == "unreadable":
            path.write_text(default)
            path.chmod(0)
        elif kind == "not-utf8":
            path.write_bytes(b"#!/bin/bash\n\xff\xfe\n")
        elif kind == "syntax":
            path.write_text(default + "{% if directives %}\n")
        elif kind == "undefined":
            path.write_text(default + "{{ no_such_variable }}\n")
        elif kind != "missing":
            raise ValueError(kind)

    return setup


@dataclass(frozen=True)
class Bad:
    id: str
    category: str
    what: str  # the bad input, for the table
    args: tuple[str, ...]  # after the command name
    names: tuple[str, ...]  # each must appear in the message (the file, key or flag)
    setup: Callable[[Path], None] | None = None
    commands: tuple[str, ...] = ("submit",)  # submit writes the most; a few cases also try plan and status
    env: dict[str, str] = field(default_factory=dict)
    drop_file_capabilities: bool = False  # root reads any file: run without CAP_DAC_* to make chmod 000 bite


def _reject_vectors() -> list[Bad]:
    """Every sweep PyExpUtils crashes on or corrupts (shared/spec/pyexputils-compat.md, kind `reject`)."""
    cases = []
    for line in (REPO / "tests" / "pyexputils-vectors.jsonl").read_text().splitlines():
        vector = json.loads(line)
        if vector.get("kind") != "reject":
            continue
        keys = vector["keys"] if isinstance(vector["keys"], str) else ",".join(vector["keys"])
        cases.append(
            Bad(
                f"reject-{vector['id'].replace('#', '-')}",
                "Bad input: experiment file",
                f"rejected sweep {vector['id']}: {json.dumps(vector['experiment'])}",
                (BAD, "--keys", keys),
                ("bad.json",),
                experiment(vector["experiment"]),
                commands=("plan", "submit") if not cases else ("submit",),
            )
        )
    return cases


EXP = "Bad input: experiment file"
CFG = "Bad input: config.json"
CLI = "Bad input: command line"
ENV = "Bad input: environment"
PRO = "Bad input: cluster profile"
TPL = "Bad input: template"

CASES: list[Bad] = [
    # -- the experiment file
    Bad(
        "json-trailing-comma",
        EXP,
        "malformed JSON (trailing comma)",
        (BAD,),
        ("bad.json", "line 1"),
        write(BAD, '{"metaParameters": {"lr": [0.1, 0.2],}}'),
        commands=("plan", "status", "submit"),
    ),
    Bad("json-truncated", EXP, "truncated JSON", (BAD,), ("bad.json",), write(BAD, '{"metaParameters": {"lr": [0.1,')),
    Bad(
        "yaml-unclosed",
        EXP,
        "malformed YAML (unclosed flow list)",
        ("experiments/example/bad.yaml",),
        ("bad.yaml", "line"),
        write("experiments/example/bad.yaml", "metaParameters:\n  lr: [0.1, 0.2\n"),
    ),
    Bad(
        "yaml-tab",
        EXP,
        "malformed YAML (tab indentation)",
        ("experiments/example/bad.yaml",),
        ("bad.yaml",),
        write("experiments/example/bad.yaml", "metaParameters:\n\tlr: 0.1\n"),
    ),
    Bad(
        "yaml-empty",
        EXP,
        "empty YAML file",
        ("experiments/example/bad.yaml",),
        ("bad.yaml",),
        write("experiments/example/bad.yaml", ""),
    ),
    Bad("json-top-level-list", EXP, "top level is a list, not an object", (BAD,), ("bad.json",), write(BAD, "[1, 2]")),
    Bad(
        "not-utf8",
        EXP,
        "experiment file that is not UTF-8",
        (BAD,),
        ("bad.json", "UTF-8"),
        write(BAD, b'{"metaParameters": {"x": "\xff"}}'),
    ),
    Bad(
        "missing-experiment",
        EXP,
        "experiment file that does not exist",
        ("experiments/example/nope.json",),
        ("nope.json",),
        commands=("plan", "status", "submit"),
    ),
    Bad(
        "experiment-is-directory",
        EXP,
        "experiment path that is a directory",
        ("experiments/example",),
        ("experiments/example",),
    ),
    Bad(
        "swept-key-missing",
        EXP,
        "no metaParameters key",
        (BAD,),
        ("bad.json", "metaParameters"),
        experiment({"agent": "x"}),
    ),
    Bad(
        "swept-key-wrong-type",
        EXP,
        "wrong type: metaParameters is a string",
        (BAD,),
        ("bad.json", "metaParameters"),
        experiment({"metaParameters": "lr=0.1"}),
    ),
    Bad(
        "yaml-non-string-key",
        EXP,
        "wrong type: a YAML key that is a number",
        ("experiments/example/bad.yaml",),
        ("bad.yaml", "metaParameters"),
        write("experiments/example/bad.yaml", "metaParameters:\n  1: [a, b]\n"),
    ),
    Bad(
        "empty-list-in-choice",
        EXP,
        "an empty list inside a list of choices",
        (BAD,),
        ("bad.json", "metaParameters.a"),
        experiment({"metaParameters": {"a": [[], [1]]}}),
    ),
    *_reject_vectors(),
    Bad(
        "keys-missing",
        EXP,
        "--keys names a key the file does not have",
        (EXPERIMENT, "--keys", "envParameters"),
        ("linreg.json", "envParameters"),
    ),
    # -- config.json
    Bad(
        "config-missing",
        CFG,
        "no config.json at the project root",
        (EXPERIMENT,),
        ("config.json",),
        config(None),
        commands=("plan", "status", "submit"),
    ),
    Bad(
        "config-malformed",
        CFG,
        "malformed config.json",
        (EXPERIMENT,),
        ("config.json", "line"),
        config('{"save_path": "results/{params}",'),
    ),
    Bad("config-top-level-list", CFG, "config.json top level is a list", (EXPERIMENT,), ("config.json",), config("[]")),
    Bad(
        "config-unknown-key",
        CFG,
        "config.json with a key PyExpUtils rejects",
        (EXPERIMENT,),
        ("config.json", "bogus"),
        config('{"save_path": "results/{params}/{run}", "bogus": 1}'),
    ),
    Bad(
        "config-save-path-type",
        CFG,
        "wrong type: save_path is a number",
        (EXPERIMENT,),
        ("config.json", "save_path"),
        config('{"save_path": 5}'),
    ),
    Bad(
        "config-save-path-missing",
        CFG,
        "config.json without save_path",
        (EXPERIMENT,),
        ("config.json", "save_path"),
        config('{"log_path": ".logs"}'),
    ),
    Bad(
        "unknown-placeholder",
        CFG,
        "unknown placeholder {seed} in save_path",
        (EXPERIMENT,),
        ("config.json", "{seed}", "available"),
        config('{"save_path": "results/{name}/{seed}/{params}/{run}"}'),
        commands=("plan", "status", "submit"),
    ),
    # -- the command line
    Bad("runs-zero", CLI, "--runs 0", (EXPERIMENT, "--runs", "0"), ("--runs",), commands=("plan", "status", "submit")),
    Bad("runs-negative", CLI, "--runs -1", (EXPERIMENT, "--runs", "-1"), ("--runs",)),
    Bad("runs-not-a-number", CLI, "--runs three", (EXPERIMENT, "--runs", "three"), ("--runs",)),
    Bad("unknown-flag", CLI, "an unknown flag --bogus", (EXPERIMENT, "--bogus"), ("--bogus",)),
    Bad("keys-empty", CLI, "--keys ,", (EXPERIMENT, "--keys", ","), ("--keys",)),
    Bad(
        "executor-unknown",
        CLI,
        "--executor nope",
        (EXPERIMENT, "--executor", "nope"),
        ("--executor",),
        commands=("submit",),
    ),
    Bad(
        "max-parallel-zero",
        CLI,
        "--max-parallel 0",
        (EXPERIMENT, "--max-parallel", "0"),
        ("--max-parallel",),
        commands=("submit",),
    ),
    Bad(
        "profile-missing",
        CLI,
        "--cluster naming a file that does not exist",
        (EXPERIMENT, "--cluster", "nope.yaml"),
        ("nope.yaml",),
    ),
    # -- the environment
    Bad(
        "env-timeout",
        ENV,
        "ORCHESTRATOR_SLURM_TIMEOUT=soon",
        (EXPERIMENT,),
        ("ORCHESTRATOR_SLURM_TIMEOUT",),
        commands=("status", "submit"),
        env={"ORCHESTRATOR_SLURM_TIMEOUT": "soon"},
    ),
    Bad(
        "env-attempts",
        ENV,
        "ORCHESTRATOR_SLURM_ATTEMPTS=0",
        (EXPERIMENT,),
        ("ORCHESTRATOR_SLURM_ATTEMPTS",),
        commands=("status", "submit"),
        env={"ORCHESTRATOR_SLURM_ATTEMPTS": "0"},
    ),
    # -- the cluster profile
    Bad(
        "profile-suffix",
        PRO,
        "a profile that is not .yaml/.yml/.json",
        (EXPERIMENT, "--cluster", "prof.txt"),
        ("prof.txt",),
        write("prof.txt", "time: 1\n"),
    ),
    Bad(
        "profile-malformed",
        PRO,
        "malformed YAML profile",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "line"),
        profile("time: [1\n"),
    ),
    Bad(
        "profile-unknown-key",
        PRO,
        "unknown profile key acount",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "acount", "did you mean 'account'"),
        profile("acount: def-me\n"),
    ),
    Bad(
        "sbatch-typo",
        PRO,
        "unknown sbatch option constrant",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "sbatch.constrant", "did you mean 'constraint'"),
        profile("sbatch: {constrant: x}\n"),
        commands=("status", "submit"),
    ),
    Bad(
        "sbatch-own-option",
        PRO,
        "sbatch option the orchestrator sets (array)",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "sbatch.array"),
        profile("sbatch: {array: 0-3}\n"),
    ),
    Bad(
        "sbatch-mem",
        PRO,
        "sbatch mem (conflicts with mem_per_cpu)",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "sbatch.mem"),
        profile("sbatch: {mem: 4G}\n"),
    ),
    Bad(
        "time-invalid",
        PRO,
        'invalid time "25:61"',
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "time", "25:61"),
        profile('time: "25:61"\n'),
    ),
    Bad(
        "time-minutes-zero",
        PRO,
        "time: 0 (a bare number is minutes, as in Slurm: must be longer than zero)",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "time"),
        profile("time: 0\n"),
    ),
    Bad(
        "time-float",
        PRO,
        "time: 1.5 (neither a Slurm time nor a whole number of minutes)",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "time"),
        profile("time: 1.5\n"),
    ),
    Bad(
        "time-hours-over-24",
        PRO,
        'time "1-25:00:00"',
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "time"),
        profile('time: "1-25:00:00"\n'),
    ),
    Bad(
        "memory-invalid",
        PRO,
        'invalid memory "4 GB"',
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "mem_per_cpu", "4 GB"),
        profile('mem_per_cpu: "4 GB"\n'),
    ),
    Bad(
        "memory-megabytes-zero",
        PRO,
        "mem_per_cpu: 0 (a bare number is megabytes, as in Slurm: refused below 64 without a unit)",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "mem_per_cpu"),
        profile("mem_per_cpu: 0\n"),
    ),
    Bad(
        "cpus-wrong-type",
        PRO,
        "wrong type: cpus_per_task: two",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "cpus_per_task"),
        profile("cpus_per_task: two\n"),
    ),
    Bad(
        "max-attempts-zero",
        PRO,
        "max_attempts: 0",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "max_attempts"),
        profile("max_attempts: 0\n"),
    ),
    Bad(
        "gpus-zero",
        PRO,
        "gpus: 0",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "gpus"),
        profile("gpus: 0\n"),
    ),
    Bad(
        "setup-wrong-type",
        PRO,
        "wrong type: setup: 5",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "setup"),
        profile("setup: 5\n"),
    ),
    Bad(
        "parallel-over-bundle",
        PRO,
        "parallel: 2 with indices_per_task 1",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "parallel"),
        profile("parallel: 2\n"),
    ),
    Bad(
        "command-placeholder",
        PRO,
        "unknown placeholder {seed} in command",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "command", "{seed}"),
        profile("command: python src/main.py -e {experiment} -i {index} -s {seed}\n"),
    ),
    Bad(
        "command-quoted",
        PRO,
        "a quoted '{experiment}' in command",
        (EXPERIMENT, "--cluster", PROFILE),
        (PROFILE, "command"),
        profile("command: python src/main.py -e '{experiment}' -i {index}\n"),
    ),
    # -- the template (read by submit only)
    Bad(
        "template-missing",
        TPL,
        "template: a file that does not exist",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2",),
        template("missing"),
        commands=("submit",),
    ),
    Bad(
        "template-directory",
        TPL,
        "template: a directory",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2",),
        template("directory"),
        commands=("submit",),
    ),
    Bad(
        "template-unreadable",
        TPL,
        "template: a file without read permission (chmod 000)",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2",),
        template("unreadable"),
        commands=("submit",),
        drop_file_capabilities=True,
    ),
    Bad(
        "template-not-utf8",
        TPL,
        "template: not UTF-8",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2",),
        template("not-utf8"),
        commands=("submit",),
    ),
    Bad(
        "template-syntax",
        TPL,
        "template: Jinja syntax error",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2", "line"),
        template("syntax"),
        commands=("submit",),
    ),
    Bad(
        "template-undefined",
        TPL,
        "template: an undefined variable",
        (EXPERIMENT, "--cluster", PROFILE),
        ("tmpl.sh.j2", "no_such_variable"),
        template("undefined"),
        commands=("submit",),
    ),
]


def _params() -> list[object]:
    params = []
    for case in CASES:
        for command in case.commands:
            marks = []
            params.append(pytest.param(case, command, id=f"{case.id}-{command}", marks=marks))
    return params


def test_every_case_id_is_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len([c for c in CASES if c.id.startswith("reject-")]) >= 5  # every rejected sweep kind


def _args(case: Bad, command: str) -> list[str]:
    return [command, *case.args, *(["--executor", "local"] if command == "submit" else [])]


def _prefix(case: Bad) -> list[str]:
    """Root reads any file: for a chmod 000 case, run the CLI without CAP_DAC_*."""
    if not (case.drop_file_capabilities and os.geteuid() == 0):
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a chmod 000 file stays readable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize(("case", "command"), _params())
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    case: Bad, command: str, tmp_path: Path, reliability_case
) -> None:
    record = reliability_case(
        f"{case.what} (`{command}`)",
        expected="exit 2; one line on stderr naming " + ", ".join(case.names) + "; no traceback; nothing written",
        category=case.category,
    )
    root = make_example_project(tmp_path / "project")
    if case.setup is not None:
        case.setup(root)
    before = tree_snapshot(root)
    result = orchestrator(*_args(case, command), cwd=root, env=cli_env(**case.env), timeout=120, prefix=_prefix(case))
    message = result.stderr.strip()
    written = sorted(set(tree_snapshot(root).items()) ^ set(before.items()))
    record.observed(
        f"exit {result.returncode}: {message}"
        + (f" -- but wrote: {', '.join(sorted({p for p, _ in written}))}" if written else "; nothing written")
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = one_line(result.stderr)
    assert result.stdout == ""
    for name in case.names:
        assert name in line, f"{name!r} not named in: {line}"
    for directory in (".orchestrator", ".logs", "results"):
        assert not (root / directory).exists(), f"{directory}/ was created"
    assert not written, f"files changed: {written}"

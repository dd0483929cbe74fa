"""Shared pieces of the benchmarks: the sweep they plan, throwaway projects, timing, child processes.

Every benchmark sweeps the same experiment shape: six hyperparameter axes, the first k of which
take 10 values (the others one), plus a fixed scalar, and 10 runs, so a sweep of N indices has
N / 10 permutations and every save path has the same seven `path-value` leaves at every size.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable  # the benchmark environment's interpreter

RUNS = 10
EXPERIMENT = "experiments/bench/sweep.json"
SAVE_PATH = "results/{name}/{agent}/{params}/{run}"

# name -> 10 values; an axis that is not swept at a size keeps its first value only
AXES: list[tuple[str, list[Any]]] = [
    ("alpha", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    ("epsilon", [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]),
    ("hidden", [16, 32, 48, 64, 80, 96, 112, 128, 144, 160]),
    ("lambda", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
    ("optimizer.beta1", [0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]),
    (
        "optimizer.name",
        ["adam", "sgd", "rmsprop", "adagrad", "adamw", "nadam", "adamax", "lion", "radam", "lamb"],
    ),
]


def experiment_data(indices: int, runs: int = RUNS) -> dict[str, Any]:
    """The experiment of a sweep of `indices` indices (`runs` times a power of ten) with `runs` runs."""
    permutations = indices // runs
    swept = round(math.log10(permutations)) if permutations > 1 else 0
    if permutations * runs != indices or 10**swept != permutations or swept > len(AXES):
        raise ValueError(f"sizes are {runs} x powers of ten up to {runs * 10 ** len(AXES)}, not {indices}")
    meta: dict[str, Any] = {"batch_size": 32}
    for number, (name, values) in enumerate(AXES):
        node = meta
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = list(values) if number < swept else [values[0]]
    return {"agent": "DQN", "environment": "MountainCar", "steps": 1000, "metaParameters": meta}


ENTRY_SCRIPT = '''"""The benchmark sweep's entry script (never run: benchmark jobs are submitted held)."""
import sys

sys.exit(0)
'''


def make_project(root: Path, indices: int, git: bool = False, runs: int = RUNS) -> Path:
    """A project dir: config.json, experiments/bench/sweep.json, src/main.py (a git repo if asked)."""
    root.mkdir(parents=True, exist_ok=True)
    config = {"save_path": SAVE_PATH, "log_path": ".logs", "experiment_directory": "experiments"}
    (root / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    experiment = root / EXPERIMENT
    experiment.parent.mkdir(parents=True, exist_ok=True)
    experiment.write_text(json.dumps(experiment_data(indices, runs), indent=4) + "\n")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "main.py").write_text(ENTRY_SCRIPT)
    if git and shutil.which("git"):
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost"}
        env.update(GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost")
        for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "bench project"]):
            subprocess.run(argv, cwd=root, env=env, check=True, capture_output=True)
    return root


def project_plan(root: Path, runs: int = RUNS):
    """The orchestrator plan of the project's sweep, `runs` runs, as `orchestrator` run in `root` makes it."""
    from orchestrator.config import load_config
    from orchestrator.planner import plan_experiment

    here = os.getcwd()
    os.chdir(root)
    try:
        return plan_experiment(EXPERIMENT, load_config("."), runs)
    finally:
        os.chdir(here)


def probe(args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `probes.py ARGS` in a fresh interpreter; its one JSON line."""
    result = subprocess.run(
        [PYTHON, str(HERE / "probes.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_measured(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None, stdout: Any = None):
    """(wall seconds, peak RSS KiB, exit code, stderr) of one child, its RSS from wait4 (that child only)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, child.returncode, err.decode(errors="replace")


def best(values: Sequence[float]) -> float:
    return min(values)


def fmt_count(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n:,.0f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 100:
        return f"{s:,.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.001:
        return f"{s * 1000:.1f} ms"
    return f"{s * 1e6:.0f} us"


def fmt_size(n: int) -> str:
    exponent = round(math.log10(n)) if n > 0 else 0
    return f"1e{exponent}" if 10**exponent == n else f"{n:,}"

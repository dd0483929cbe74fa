"""Shared support for tests against the real Slurm test cluster (scripts/slurm-test-cluster.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_slurm() -> None:
    """Skip without a cluster, saying why; under CI=true a missing cluster is a failure."""
    problem = None
    if shutil.which("sbatch") is None:
        problem = "sbatch is not on PATH"
    else:
        probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            problem = f"sinfo failed: {probe.stderr.strip()}"
    if problem is None:
        return
    message = f"needs the Slurm test cluster (scripts/slurm-test-cluster.sh up): {problem}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def set_max_submit(limit: int | None) -> None:
    subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "set-max-submit", "none" if limit is None else str(limit)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def make_example_project(root: Path) -> Path:
    """A copy of the repository's example project (config.json, experiments/example, src/)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.json", root / "config.json")
    shutil.copytree(REPO / "experiments" / "example", root / "experiments" / "example")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def cli_env() -> dict[str, str]:
    """The environment a user has after activating the venv: its `python` first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def orchestrator(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
    )


def status_json(cwd: Path, *args: str) -> dict:
    result = orchestrator("status", *args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["experiments"][0]

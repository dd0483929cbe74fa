"""Shared test support: the one way tests run the CLI, and small helpers for projects and waiting.

The CLI runs as a user runs it, `python -m orchestrator ...` in a subprocess, with this virtual
environment's `bin` first on PATH (what activating the venv gives a user): `orchestrator()` for a
command that runs to its end, `cli_argv()` for the tests that start it themselves (Popen, a
terminal, a shell pipe). Helpers for the real Slurm test cluster are in tests/slurm_support.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator.slurm_formats import parse_ranges

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


# -- running the CLI ------------------------------------------------------------------------------


def cli_argv(*args: str) -> list[str]:
    """The command line of `orchestrator ARGS`, run by this interpreter."""
    return [sys.executable, "-m", "orchestrator", *args]


def cli_env(*path_first: Path | str, **variables: str) -> dict[str, str]:
    """The environment a user has after activating the venv: its `python` first on PATH.

    `path_first`: directories put before it (fake or counting Slurm commands); `variables` are set on top.
    """
    env = dict(os.environ)
    entries = [*map(str, path_first), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(entries)
    env.update(variables)
    return env


def orchestrator(
    *args: str,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    input: str | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `orchestrator ARGS` to its end and capture its output (text).

    `env`: default `cli_env()`; `cwd`: default the test's working directory; `timeout` only stops a
    hung test; `input`: text on stdin; `prefix`: a command that runs the CLI (e.g. setpriv ...).
    """
    return subprocess.run(
        [*prefix, *cli_argv(*args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env=cli_env() if env is None else env,
    )


def status_json(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """`status EXPERIMENT ARGS --json` (exit 0 asserted): the experiment's entry (exactly one)."""
    result = orchestrator("status", *args, "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["experiments"]
    return entry


def submit_json(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """`submit ARGS --json` (exit 0 asserted): the submit report."""
    result = orchestrator("submit", *args, "--json", cwd=cwd, env=env)
    assert result.returncode == 0, f"submit exited {result.returncode}: {result.stderr}{result.stdout}"
    return json.loads(result.stdout)


def plan_jsonl(cwd: Path, *args: str) -> list[dict]:
    """`plan ARGS --jsonl` (exit 0 asserted): one entry per index."""
    result = orchestrator("plan", *args, "--jsonl", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def submitted_indices(report: dict) -> list[int]:
    """Every index a submit report (`submit --json`) sent, ascending."""
    return sorted(i for s in report["submissions"] for i in parse_ranges(s["indices"]))


# -- projects -------------------------------------------------------------------------------------


def write_experiment(root: Path, relative: str, data: dict) -> str:
    """An experiment file (JSON) at `root/relative`; returns `relative`."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return relative


def make_example_project(root: Path) -> Path:
    """A copy of the repository's example project (config.json, experiments/example, src/)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.json", root / "config.json")
    shutil.copytree(REPO / "experiments" / "example", root / "experiments" / "example")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def tree_snapshot(root: Path) -> dict[str, str]:
    """Relative path -> a fingerprint (kind, size, mtime) of everything under root."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            out[str(path.relative_to(root))] = f"{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}"
    return out


# -- small helpers ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def one_line(text: str) -> str:
    """The text's only line (asserting there is exactly one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line, got {len(lines)}: {text!r}"
    return lines[0]


def run_on_a_pty(
    argv: Sequence[str], answer: bytes, prompt: bytes = b"[y/N]", cwd: Path | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a pseudo-terminal, typing `answer` at `prompt`:
    (exit code, everything it printed, with the terminal's CRLF as LF)."""
    import pty
    import select

    controller, terminal = pty.openpty()
    child = subprocess.Popen(list(argv), cwd=cwd, env=cli_env(), stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output, sent = b"", False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if prompt in output and not sent:
                os.write(controller, answer)
                sent = True
        elif child.poll() is not None:
            break
    code = child.wait(timeout=timeout)
    os.close(controller)
    return code, output.decode(errors="replace").replace("\r\n", "\n")


def submission_record(ledger: Any, plan: Any, tasks: list[list[int]], job_id: str | None, **fields: Any) -> Any:
    """A ledger record as `submit` writes it for one array (not written yet); `fields` override any field.

    Defaults: a submitted Slurm array of today's file, its run directory and log directory by its tag.
    """
    from orchestrator.ledger import SubmissionRecord, SubmissionState

    tag = fields.pop("tag", None) or ledger.new_tag(plan.path)
    run_dir = ledger.run_dir(tag)
    values: dict[str, Any] = {
        "tag": tag,
        "status": SubmissionState.SUBMITTED,
        "executor": "slurm",
        "experiment": plan.path,
        "experiment_key": ledger.experiment_key(plan.path),
        "experiment_hash": plan.file.content_hash,
        "experiment_data": plan.file.data,
        "keys": list(plan.keys),
        "tasks": tasks,
        "resources": {"time": "0:01:00", "mem-per-cpu": "1G"},
        "script_path": str(run_dir.script),
        "task_file": str(run_dir.task_file),
        "log_dir": str(ledger.root / ".logs" / tag),
        "script": "#!/bin/bash\n",
        "job_id": job_id,
    }
    return SubmissionRecord(**{**values, **fields})

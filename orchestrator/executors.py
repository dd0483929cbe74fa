"""Executors: where a rendered array script runs. Slurm via sbatch, or this machine.

Both take the same script. The local executor sets the Slurm variables the script reads, so a
sweep that works on a laptop works on the cluster, and the other way round.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from orchestrator.slurm_commands import SlurmCommands


class SlurmExecutor:
    name = "slurm"

    def __init__(self, commands: SlurmCommands) -> None:
        self.commands = commands

    def submit(self, script_path: Path) -> str:
        """sbatch the script; the job id. Errors are the `SlurmError` kinds of `SlurmCommands.sbatch`."""
        return self.commands.sbatch(script_path)


@dataclass
class LocalOutcome:
    finished_tasks: list[int]
    task_exit_codes: dict[int, int]
    interrupted: bool


class LocalExecutor:
    """Runs array tasks as processes here, at most `max_parallel` at once."""

    name = "local"

    def __init__(
        self,
        max_parallel: int | None = None,
        progress: TextIO | None = None,
        poll_interval: float = 0.05,
        kill_grace: float = 5.0,
    ) -> None:
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 1)
        self.progress = progress if progress is not None else (sys.stderr if sys.stderr.isatty() else None)
        self._drawn: tuple[int, int] | None = None
        self.poll_interval = poll_interval
        self.kill_grace = kill_grace

    def run(
        self,
        script_path: Path,
        num_tasks: int,
        job_id: str,
        job_name: str,
        cwd: Path,
        log_dir: Path,
        cpus_per_task: int = 1,
        on_task_end: Callable[[int, int], None] | None = None,
    ) -> LocalOutcome:
        """Run tasks 0..num_tasks-1 of the script; Ctrl-C stops the children and returns what finished."""
        log_dir.mkdir(parents=True, exist_ok=True)
        waiting = list(range(num_tasks))
        running: dict[int, subprocess.Popen[bytes]] = {}
        codes: dict[int, int] = {}
        interrupted = False
        previous_handlers = _raise_interrupt_on_signals()
        try:
            while waiting or running:
                while waiting and len(running) < self.max_parallel:
                    task = waiting.pop(0)
                    running[task] = self._start(
                        script_path, task, num_tasks, job_id, job_name, cwd, log_dir, cpus_per_task
                    )
                for task, process in list(running.items()):
                    code = process.poll()
                    if code is not None:
                        del running[task]
                        codes[task] = code
                        if on_task_end is not None:
                            on_task_end(task, code)
                self._draw(len(codes), num_tasks)
                if running:
                    time.sleep(self.poll_interval)
        except KeyboardInterrupt:
            interrupted = True
            self._stop(running)
        finally:
            for signum, previous in previous_handlers.items():
                signal.signal(signum, previous)
            if self.progress is not None:
                self.progress.write("\n")
                self.progress.flush()
        return LocalOutcome(sorted(codes), codes, interrupted)

    def _start(
        self,
        script_path: Path,
        task: int,
        num_tasks: int,
        job_id: str,
        job_name: str,
        cwd: Path,
        log_dir: Path,
        cpus_per_task: int,
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, **slurm_environment(task, num_tasks, job_id, job_name, cwd, cpus_per_task)}
        output = open(log_dir / f"slurm-{job_id}_{task}.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            return subprocess.Popen(
                ["bash", str(script_path)],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C is handled here; children are stopped by group
            )
        finally:
            output.close()

    def _stop(self, running: Mapping[int, subprocess.Popen[bytes]]) -> None:
        """As Slurm stops a job: SIGTERM to each task's process group, then, after the grace period,
        SIGKILL to whatever is left of it. The whole group is waited for, not only the task's shell:
        the command (one saving a checkpoint, or ignoring SIGTERM) may outlive it. A second Ctrl-C
        ends the grace period at once."""
        for process in running.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        try:
            while time.monotonic() < deadline and any(_group_alive(p) for p in running.values()):
                time.sleep(self.poll_interval)
        except KeyboardInterrupt:
            pass
        finally:
            for process in running.values():
                _signal_group(process, signal.SIGKILL)
                process.wait()

    def _draw(self, finished: int, total: int) -> None:
        if self.progress is None or self._drawn == (finished, total):
            return
        self._drawn = (finished, total)
        width = 30
        filled = width * finished // max(total, 1)
        self.progress.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{total} tasks")
        self.progress.flush()


def slurm_environment(
    task: int, num_tasks: int, job_id: str, job_name: str, cwd: Path, cpus_per_task: int
) -> dict[str, str]:
    """The variables Slurm gives an array task, as far as a script may use them."""
    return {
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_JOB_ID": job_id,
        "SLURM_ARRAY_TASK_COUNT": str(num_tasks),
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_TASK_MAX": str(num_tasks - 1),
        "SLURM_ARRAY_TASK_STEP": "1",
        "SLURM_JOB_ID": f"{job_id}_{task}",
        "SLURM_JOB_NAME": job_name,
        "SLURM_CPUS_PER_TASK": str(cpus_per_task),
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NTASKS": "1",
        "SLURM_SUBMIT_DIR": str(cwd),
        "SLURM_CLUSTER_NAME": "local",
    }


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the task's group is left (the shell is reaped by the poll)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _raise_interrupt_on_signals() -> dict[int, Any]:
    """Treat SIGTERM, and SIGHUP (the terminal closed) unless ignored as under nohup, like Ctrl-C
    while children run, so they are stopped and the ledger updated. The previous handlers."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, handler)}
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, handler)
    return previous

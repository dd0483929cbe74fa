"""Executors: where a rendered array script runs. Slurm via sbatch, or this machine.

Both take the same script and implement one interface, `Executor`: the submitter prepares a
`Job` (script, task count, log directory) and gets back an `Outcome` (what to record), so adding
an executor touches one new class, not the submitter. The local executor sets the Slurm variables
the script reads, so a sweep that works on a laptop works on the cluster, and the other way round.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from orchestrator.errors import SlurmError, SlurmRejected, SlurmUnavailable, SubmitLimitReached
from orchestrator.ledger import SubmissionState
from orchestrator.slurm import Slurm, jobs_by_tag
from orchestrator.slurm_formats import PartitionLimits
from orchestrator.util import fault_point, progress_bar


@dataclass(frozen=True)
class Job:
    """One array as it goes out."""

    experiment: str  # as the user gave it (for messages)
    tag: str  # unique: job name and --comment on Slurm, the job id of a local run
    script: Path
    num_tasks: int
    log_dir: Path
    root: Path  # the project root: tasks run here
    cpus_per_task: int = 1
    time_limit_seconds: int | None = None  # the local executor stops a task after it, as Slurm does


@dataclass
class Outcome:
    """What happened to a job, for the ledger: its new state, and how the submit goes on."""

    state: str  # a SubmissionState
    job_id: str | None = None
    note: str | None = None
    task_exit_codes: dict[int, int] = field(default_factory=dict)
    task_ends: dict[int, str] = field(default_factory=dict)  # tasks the executor stopped, and why (TIMEOUT)
    cut_short: list[int] = field(default_factory=list)  # tasks stopped or never started: not attempts
    deferred: bool = False  # the submit limit is full: its indices wait for a later submit
    failure: str | None = None  # stop the submit after recording this, saying so
    cause: BaseException | None = None
    interrupted: bool = False


class Executor(Protocol):
    name: str

    def max_array_tasks(self) -> int | None:
        """Tasks one array may have here (task ids 0..k-1 below MaxArraySize); None for no limit."""
        ...

    def free_capacity(self, site_limit: int | None) -> int | None:
        """How many more tasks may be queued now (each is a job to Slurm); None for no limit."""
        ...

    def partition_limits(self, partition: str | None) -> PartitionLimits | None: ...

    def search_path(self) -> str:
        """The PATH a task starts with (what preflight resolves the command's program on)."""
        ...

    def execute(self, job: Job, started: Callable[[], None]) -> Outcome:
        """Run or submit `job`; call `started()` first if it runs while we wait."""
        ...


class SlurmExecutor:
    name = "slurm"

    def __init__(self, slurm: Slurm) -> None:
        self.slurm = slurm

    def max_array_tasks(self) -> int | None:
        max_array_size, max_array_tasks = self.slurm.array_limits()
        return min(max_array_size, max_array_tasks or max_array_size)

    def free_capacity(self, site_limit: int | None) -> int | None:
        limits = [n for n in (site_limit, self.slurm.max_submit_jobs()) if n is not None]
        if not limits:
            return None
        return max(0, min(limits) - len(self.slurm.squeue_me()))

    def partition_limits(self, partition: str | None) -> PartitionLimits | None:
        return self.slurm.partition_limits(partition)

    def search_path(self) -> str:
        return os.environ.get("PATH", os.defpath)  # sbatch exports the submitting environment

    def execute(self, job: Job, started: Callable[[], None]) -> Outcome:
        """sbatch, with every failure turned into what to record: a blind retry could duplicate."""
        try:
            job_id = self.slurm.sbatch(job.script)
        except SubmitLimitReached as e:
            return Outcome(SubmissionState.REJECTED, note=str(e), deferred=True)
        except SlurmRejected as e:
            return _failed(SubmissionState.REJECTED, f"sbatch refused {job.experiment}: {e}", e)
        except SlurmUnavailable as e:
            problem = f"Slurm did not answer for {job.experiment} (tag {job.tag}): {e}"
            found = _job_by_tag(self.slurm, job.tag)
            if found is None:
                return _failed(SubmissionState.UNCONFIRMED, problem, e)
            outcome = _failed(SubmissionState.SUBMITTED, problem, e)
            outcome.job_id, outcome.note = found, f"confirmed by tag after: {e}"
            return outcome
        except SlurmError as e:
            return _failed(SubmissionState.REJECTED, f"sbatch failed for {job.experiment}: {e}", e)
        fault_point("after-sbatch")
        return Outcome(SubmissionState.SUBMITTED, job_id=job_id)


def _failed(state: str, problem: str, error: BaseException) -> Outcome:
    return Outcome(state, note=str(error), failure=problem, cause=error)


def _job_by_tag(slurm: Slurm, tag: str) -> str | None:
    """After an unanswered sbatch: the job id if a job with our tag exists (the queue is read anew)."""
    try:
        return jobs_by_tag(slurm, [tag]).get(tag)
    except SlurmError:
        return None


@dataclass
class LocalOutcome:
    task_exit_codes: dict[int, int]
    interrupted: bool
    task_ends: dict[int, str] = field(default_factory=dict)


@dataclass
class _Task:
    process: subprocess.Popen[bytes]
    started: float
    stopping: float | None = None  # when it was told to stop (past its time limit)


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

    def max_array_tasks(self) -> int | None:
        return None

    def free_capacity(self, site_limit: int | None) -> int | None:
        return None  # this machine queues nothing: every task runs before the submit returns

    def partition_limits(self, partition: str | None) -> PartitionLimits | None:
        return None

    def search_path(self) -> str:
        return _interpreter_first(os.environ.get("PATH", os.defpath))

    def execute(self, job: Job, started: Callable[[], None]) -> Outcome:
        started()
        result = self.run(job)
        if not result.interrupted:
            return Outcome(SubmissionState.FINISHED, task_exit_codes=result.task_exit_codes, task_ends=result.task_ends)
        # Tasks the interruption stopped or never started were not attempts, as with `cancel`:
        # their indices are missing again, and max_attempts never gives them up.
        cut_short = sorted(set(range(job.num_tasks)) - set(result.task_exit_codes))
        return Outcome(
            SubmissionState.INTERRUPTED,
            task_exit_codes=result.task_exit_codes,
            task_ends=result.task_ends,
            cut_short=cut_short,
            interrupted=True,
        )

    def run(self, job: Job) -> LocalOutcome:
        """Run tasks 0..num_tasks-1 of the script; Ctrl-C stops the children and returns what finished."""
        job.log_dir.mkdir(parents=True, exist_ok=True)
        waiting = list(range(job.num_tasks))
        running: dict[int, _Task] = {}
        result = LocalOutcome({}, interrupted=False)
        previous_handlers = _raise_interrupt_on_signals()
        try:
            while waiting or running:
                while waiting and len(running) < self.max_parallel:
                    task = waiting.pop(0)
                    running[task] = _Task(self._start(job, task), time.monotonic())
                self._poll(job, running, result)
                self._draw(len(result.task_exit_codes), job.num_tasks)
                if running:
                    time.sleep(self.poll_interval)
        except KeyboardInterrupt:
            result.interrupted = True
            self._stop({task: t.process for task, t in running.items()})
        finally:
            for signum, previous in previous_handlers.items():
                signal.signal(signum, previous)
            if self.progress is not None:
                self.progress.write("\n")
                self.progress.flush()
        return result

    def _poll(self, job: Job, running: dict[int, _Task], result: LocalOutcome) -> None:
        """Collect the tasks that ended; stop those past the time limit, as Slurm does (TIMEOUT)."""
        now = time.monotonic()
        for task, entry in list(running.items()):
            code = entry.process.poll()
            if code is not None:
                if entry.stopping is not None:
                    _signal_group(entry.process, signal.SIGKILL)  # whatever of it outlived the shell
                del running[task]
                result.task_exit_codes[task] = code
                continue
            if job.time_limit_seconds is None or now - entry.started < job.time_limit_seconds:
                continue
            if entry.stopping is None:
                result.task_ends[task] = "TIMEOUT"
                entry.stopping = now
                _signal_group(entry.process, signal.SIGTERM)
            elif now - entry.stopping >= self.kill_grace:
                _signal_group(entry.process, signal.SIGKILL)

    def _start(self, job: Job, task: int) -> subprocess.Popen[bytes]:
        variables = slurm_environment(task, job.num_tasks, job.tag, job.tag, job.root, job.cpus_per_task)
        output = open(job.log_dir / f"slurm-{job.tag}_{task}.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            return subprocess.Popen(
                ["bash", str(job.script)],
                cwd=job.root,
                env={**os.environ, **variables, "PATH": _interpreter_first(os.environ.get("PATH", ""))},
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
        self.progress.write(f"\r{progress_bar(finished, total)} {finished}/{total} tasks")
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


def _interpreter_first(path: str) -> str:
    """PATH with the bin directory of the Python running orchestrator first: a task's `python` is one
    that can import orchestrator, even when its venv is not activated (a pipx-style install)."""
    own = os.path.dirname(sys.executable)
    parts = [p for p in path.split(os.pathsep) if p and p != own]
    return os.pathsep.join([own, *parts])


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

"""The one seam to Slurm: what the orchestrator asks of it, as a protocol with one real implementation.

`SlurmCommands` (slurm_commands.py) runs the real commands; tests that do not use the real cluster
use one fake of the same protocol. The CLI builds the connection once (`connect`) and passes it
down; nothing else constructs one. `QueueSnapshot` wraps a connection so that one command reads
`squeue` once, however many parts of it ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from orchestrator.slurm_formats import AccountingRecord, PartitionLimits, QueuedTask, UsageRecord


class Slurm(Protocol):
    """What the orchestrator asks of Slurm. Failures are `SlurmError` kinds (see errors.py)."""

    accounting_problem: str | None  # why the last accounting query found nothing to ask, if so

    def squeue_me(self) -> list[QueuedTask]:
        """Every live task of this user, one per array task."""
        ...

    def sacct(self, job_ids: Sequence[str]) -> list[AccountingRecord] | None:
        """Accounting records of these array jobs; None when there is no accounting."""
        ...

    def sacct_usage(self, job_ids: Sequence[str]) -> list[UsageRecord] | None:
        """What each task (and step) of these jobs used against its request; None when there is no accounting."""
        ...

    def jobs_named(self, names: Sequence[str], since: str) -> dict[str, str]:
        """Job name -> array job id, from accounting, for jobs submitted since `since`."""
        ...

    def sbatch(self, script: Path) -> str:
        """Submit; the job id. Never retried: on SlurmUnavailable the job MAY exist."""
        ...

    def scancel(self, job_ids: Sequence[str]) -> None: ...

    def array_limits(self) -> tuple[int, int | None]:
        """(MaxArraySize, max_array_tasks or None)."""
        ...

    def max_submit_jobs(self) -> int | None:
        """The user's tightest submit limit; None if none or unknown."""
        ...

    def partition_limits(self, partition: str | None) -> PartitionLimits | None: ...


class QueueSnapshot:
    """A `Slurm` that reads the queue once per command; a submit or cancel makes it read again."""

    def __init__(self, slurm: Slurm) -> None:
        self.slurm = slurm
        self._queue: list[QueuedTask] | None = None

    @property
    def accounting_problem(self) -> str | None:
        return self.slurm.accounting_problem

    @accounting_problem.setter
    def accounting_problem(self, value: str | None) -> None:
        self.slurm.accounting_problem = value

    def squeue_me(self) -> list[QueuedTask]:
        if self._queue is None:
            self._queue = self.slurm.squeue_me()
        return self._queue

    def sacct(self, job_ids: Sequence[str]) -> list[AccountingRecord] | None:
        return self.slurm.sacct(job_ids)

    def sacct_usage(self, job_ids: Sequence[str]) -> list[UsageRecord] | None:
        return self.slurm.sacct_usage(job_ids)

    def jobs_named(self, names: Sequence[str], since: str) -> dict[str, str]:
        return self.slurm.jobs_named(names, since)

    def sbatch(self, script: Path) -> str:
        self._queue = None
        return self.slurm.sbatch(script)

    def scancel(self, job_ids: Sequence[str]) -> None:
        self._queue = None
        self.slurm.scancel(job_ids)

    def array_limits(self) -> tuple[int, int | None]:
        return self.slurm.array_limits()

    def max_submit_jobs(self) -> int | None:
        return self.slurm.max_submit_jobs()

    def partition_limits(self, partition: str | None) -> PartitionLimits | None:
        return self.slurm.partition_limits(partition)


def jobs_by_tag(slurm: Slurm, tags: Sequence[str], since: str | None = None) -> dict[str, str]:
    """tag -> array job id for the submissions among `tags` that Slurm knows.

    Every submission carries its unique tag as job name and `--comment`: the queue is asked first;
    with `since` (a `sacct -S` time), accounting is asked for the tags the queue does not hold.
    """
    wanted = set(tags)
    found: dict[str, str] = {}
    for task in slurm.squeue_me():
        for label in (task.name, task.comment):
            if label in wanted:
                found[label] = task.array_job_id
    missing = [tag for tag in tags if tag not in found]
    if missing and since is not None:
        found.update(slurm.jobs_named(missing, since))
    return found


def connect() -> Slurm | None:
    """Slurm's commands, read once per command, where `sbatch` is on PATH; None elsewhere.

    The only place a connection is made. Bad `ORCHESTRATOR_SLURM_*` settings are a `UserError` here,
    before anything is read or written.
    """
    from orchestrator.slurm_commands import SlurmCommands

    commands = SlurmCommands.from_environment()
    return QueueSnapshot(commands) if commands.available() else None

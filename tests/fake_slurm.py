"""The one fake of the `orchestrator.slurm.Slurm` protocol, for tests that do not use the real cluster.

Answers come as text in Slurm's own formats (parsed by the real parsers), so a test reads like what
the commands print. Every call is counted; `sbatch` hands out increasing job ids and remembers the
scripts; `scancel` remembers what it cancelled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.errors import SlurmError
from orchestrator.slurm_formats import (
    AccountingRecord,
    PartitionLimits,
    QueuedTask,
    UsageRecord,
    parse_sacct,
    parse_sacct_usage,
    parse_squeue,
)


class FakeSlurm:
    def __init__(
        self,
        squeue: str = "",
        sacct: str | None = "",
        problem: str = "sacct not found on PATH",
        on_squeue: Callable[[], None] | None = None,
        max_array_size: int = 1001,
        max_submit: int | None = None,
        partition: PartitionLimits | None = None,
        sbatch_error: SlurmError | None = None,
        usage: str | None = "",
    ) -> None:
        self.squeue_text = squeue
        self.sacct_text = sacct
        self.problem = problem
        self.on_squeue = on_squeue
        self.max_array_size = max_array_size
        self.max_submit = max_submit
        self.partition = partition
        self.sbatch_error = sbatch_error
        self.usage_text = usage  # `sacct -P -n -o USAGE_FIELDS` text; None: no accounting
        self.usage_calls: list[list[str]] = []
        self.accounting_problem: str | None = None
        self.calls: Counter[str] = Counter()
        self.sacct_calls: list[list[str]] = []
        self.submitted: list[Path] = []
        self.cancelled: list[str] = []
        self._next_job = 1000

    @property
    def squeue_calls(self) -> int:
        return self.calls["squeue"]

    def squeue_me(self) -> list[QueuedTask]:
        self.calls["squeue"] += 1
        if self.on_squeue is not None:
            self.on_squeue()
        return parse_squeue(self.squeue_text)

    def sacct(self, job_ids: Sequence[str]) -> list[AccountingRecord] | None:
        self.calls["sacct"] += 1
        self.sacct_calls.append(list(job_ids))
        if self.sacct_text is None:
            self.accounting_problem = self.problem
            return None
        self.accounting_problem = None
        return parse_sacct(self.sacct_text)

    def sacct_usage(self, job_ids: Sequence[str]) -> list[UsageRecord] | None:
        """The lines of `usage` whose job is among `job_ids`, as `sacct -j` selects them."""
        self.calls["sacct_usage"] += 1
        self.usage_calls.append(list(job_ids))
        if self.usage_text is None:
            self.accounting_problem = self.problem
            return None
        self.accounting_problem = None
        wanted = set(job_ids)
        return [r for r in parse_sacct_usage(self.usage_text) if r.array_job_id in wanted]

    def jobs_named(self, names: Sequence[str], since: str) -> dict[str, str]:
        self.calls["sacct"] += 1
        records = parse_sacct(self.sacct_text or "")
        return {r.name: r.array_job_id for r in records if r.name in names}

    def sbatch(self, script: Path) -> str:
        self.calls["sbatch"] += 1
        if self.sbatch_error is not None:
            raise self.sbatch_error
        self.submitted.append(script)
        self._next_job += 1
        return str(self._next_job)

    def scancel(self, job_ids: Sequence[str]) -> None:
        self.calls["scancel"] += 1
        self.cancelled.extend(job_ids)

    def array_limits(self) -> tuple[int, int | None]:
        return self.max_array_size, None

    def max_submit_jobs(self) -> int | None:
        return self.max_submit

    def partition_limits(self, partition: str | None) -> PartitionLimits | None:
        return self.partition

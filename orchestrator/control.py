"""Acting on submitted work: cancel an experiment's live tasks, find an index's last log."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import SlurmError, UserError
from orchestrator.index_set import IndexSet
from orchestrator.ledger import Ledger, SubmissionRecord
from orchestrator.planner import ExperimentPlan
from orchestrator.result_store import FindDone, StoreAnswer
from orchestrator.slurm import Slurm
from orchestrator.slurm_formats import format_ranges
from orchestrator.state import PENDING, RUNNING, Attempt, ExperimentStatus, gather


@dataclass
class CancelResult:
    cancelled: dict[str, list[int]] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "cancelled": [{"experiment": e, "indices": format_ranges(ix)} for e, ix in self.cancelled.items()],
            "jobs": self.jobs,
        }


def cancel(
    plans: Sequence[ExperimentPlan],
    ledger: Ledger,
    slurm: Slurm | None,
    find_done: FindDone,
    lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> CancelResult:
    """Cancel the running and pending tasks that hold these experiments' indices.

    Local runs first, without `lock` (a local run holds the submit lock until it ends): their
    process gets SIGTERM, stops its tasks and records itself which were cut short. Then Slurm's,
    under `lock()` so that no submit is halfway through creating jobs: one scancel call.
    """
    result = CancelResult()
    local_pids: set[int] = set()
    on_slurm = False
    for status in gather(plans, ledger, slurm, find_done, max_attempts=1):
        indices = result.cancelled.setdefault(status.plan.path, [])
        for index, attempt in _in_flight(status):
            if attempt.record.executor == "local":
                indices.append(index)
                if attempt.record.pid:
                    local_pids.add(attempt.record.pid)
            else:
                on_slurm = True
    for pid in local_pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # the local executor stops its children and records it
    if on_slurm:
        with lock():
            _cancel_on_slurm(plans, ledger, slurm, find_done, result)
    return result


def _in_flight(status: ExperimentStatus) -> list[tuple[int, Attempt]]:
    """The running and pending indices, with the attempt that holds each."""
    held = status.sets[RUNNING] | status.sets[PENDING]
    return [(index, status.history.latest[index]) for index in held if index in status.history.latest]


def _cancel_on_slurm(
    plans: Sequence[ExperimentPlan],
    ledger: Ledger,
    slurm: Slurm | None,
    find_done: FindDone,
    result: CancelResult,
) -> None:
    targets: set[str] = set()
    cancelled: dict[str, tuple[SubmissionRecord, set[int]]] = {}
    for status in gather(plans, ledger, slurm, find_done, max_attempts=1):
        indices = result.cancelled.setdefault(status.plan.path, [])
        for index, attempt in _in_flight(status):
            record = attempt.record
            if record.executor == "slurm" and record.job_id:
                indices.append(index)
                cancelled.setdefault(record.tag, (record, set()))[1].add(attempt.task_id)
                targets.add(f"{record.job_id}_{attempt.task_id}")
        indices.sort()
    if targets:
        if slurm is None:
            raise SlurmError("scancel is not available here; nothing was cancelled on Slurm")
        slurm.scancel(sorted(targets))
    for record, task_ids in cancelled.values():
        # remembered, so these indices count as missing (not failed) and not as an attempt
        record.cancelled_tasks = sorted(set(record.cancelled_tasks) | task_ids)
        ledger.write(record)
    result.jobs = sorted(targets)


@dataclass
class FoundLog:
    header: str
    text: str | None
    slurm_output: str | None = None
    slurm_output_path: str | None = None


def last_log(
    plan: ExperimentPlan, index: int, ledger: Ledger, slurm: Slurm | None, find_done: FindDone, max_attempts: int
) -> FoundLog:
    """The log of `index`'s last attempt, with its job id and state (as `status` reports it)."""
    if not 0 <= index < plan.total:
        raise UserError(f"index {index} is outside the plan (0-{plan.total - 1}; pass --runs for more runs)")

    answer = find_done(plan, IndexSet.of([index]))

    def history_of_every_index(p: ExperimentPlan, indices: IndexSet | None) -> StoreAnswer:
        return StoreAnswer(answer.kind, IndexSet())  # a done index's last attempt is shown too

    (status,) = gather([plan], ledger, slurm, history_of_every_index, max_attempts)
    entry = status.index(index)
    if index in answer.done or index in answer.unknown:
        entry.state, entry.reason = ("done", None) if index in answer.done else ("unknown", "; ".join(answer.notes))
    if entry.last is None:
        return FoundLog(f"index {index}: {entry.state}; never submitted, so there is no log", None)
    record = entry.last.record
    job = f"job {record.job_id}_{entry.last.task_id}" if record.job_id else f"local run {record.tag}"
    state = entry.state.replace("_", " ") + (f" ({entry.reason})" if entry.reason else "")
    log_path = Path(record.log_dir) / f"{entry.last.recorded_index}.log"
    header = f"index {index}: {job}, {state}, attempt {entry.attempts}; log {log_path}"
    text = _read_optional(log_path)
    if text is None:
        header += " (not written yet)"
    slurm_path = Path(record.log_dir) / f"slurm-{record.job_id or record.tag}_{entry.last.task_id}.out"
    return FoundLog(header, text, _read_optional(slurm_path), str(slurm_path))


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None

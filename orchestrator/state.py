"""Index state: each planned index is exactly one of done, running, pending, failed or missing.

The truth, gathered once per command:
- results on disk decide `done` (listed per directory by `ResultScanner`);
- the ledger says which submission last held each index (matched by params when the file changed);
- one `squeue --me -r` says which of those tasks are running or pending;
- per-index exit status files, and one batched `sacct` for the finished tasks, say why one failed.

`classify` is pure: the I/O is done by the caller (`gather`) and passed in.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from orchestrator.accounting import records_by_task, task_state_explains
from orchestrator.completeness import ResultScanner
from orchestrator.errors import SlurmError
from orchestrator.ledger import Ledger, Status, SubmissionRecord, pid_alive
from orchestrator.planner import ExperimentPlan
from orchestrator.slurm_formats import AccountingRecord, QueuedTask, format_ranges
from orchestrator.sweep import Sweep

DONE, RUNNING, PENDING, FAILED, MISSING = "done", "running", "pending", "failed", "missing"
STATES = (DONE, RUNNING, PENDING, FAILED, MISSING)

# squeue states that mean "will run or is running" (everything else is on its way out)
_RUNNING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SUSPENDED", "RESIZING", "SIGNALING"}
_PENDING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}


@dataclass(frozen=True)
class Attempt:
    """One index inside one submission: the record and the array task that held it."""

    record: SubmissionRecord
    task_id: int
    recorded_index: int  # the index number at submission (differs when the file was edited)


@dataclass
class IndexStatus:
    index: int
    state: str
    attempts: int = 0
    last: Attempt | None = None
    reason: str | None = None  # human text: "TIMEOUT", "FAILED exit 3", "unknown (...)"
    reason_kind: str | None = None  # TIMEOUT / OUT_OF_MEMORY / FAILED / ... for escalation
    exit_code: int | None = None


@dataclass
class ExperimentStatus:
    plan: ExperimentPlan
    indices: list[IndexStatus]
    edited_since: list[str] = field(default_factory=list)  # tags submitted from an older version of the file
    notes: list[str] = field(default_factory=list)

    def by_state(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {s: [] for s in STATES}
        for status in self.indices:
            out[status.state].append(status.index)
        return out

    def counts(self) -> dict[str, int]:
        counted = Counter(s.state for s in self.indices)
        return {s: counted.get(s, 0) for s in STATES}

    def failed_by_reason(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for status in self.indices:
            if status.state == FAILED:
                out.setdefault(status.reason or "unknown", []).append(status.index)
        return out

    def to_json(self) -> dict[str, object]:
        groups = self.by_state()
        return {
            "experiment": self.plan.path,
            "total": self.plan.total,
            **{s: len(groups[s]) for s in STATES},
            "indices": {s: format_ranges(groups[s]) for s in STATES},
            "failed_reasons": {reason: format_ranges(ix) for reason, ix in sorted(self.failed_by_reason().items())},
            "edited_since_submission": self.edited_since,
        }


# -- mapping recorded indices to the current plan ---------------------------------------------


def latest_attempts(
    plan: ExperimentPlan, records: Sequence[SubmissionRecord]
) -> tuple[dict[int, Attempt], Counter[int], list[str]]:
    """index -> its latest attempt, attempts per index, and the tags from an older file version.

    When the experiment file changed after a submission, its indices are matched to today's by
    (params, run), so an edit that reorders or extends a sweep never mislabels a task.
    """
    latest: dict[int, Attempt] = {}
    attempts: Counter[int] = Counter()
    edited: list[str] = []
    identity_to_index: dict[tuple[str, int], int] | None = None
    for record in records:
        if record.status not in Status.ATTEMPTED and not _open(record):
            continue
        if record.experiment_hash == plan.file.content_hash:
            translate = None
        else:
            edited.append(record.tag)
            if identity_to_index is None:
                identity_to_index = _identities(plan)
            translate = _translator(record, identity_to_index)
        cancelled = set(record.cancelled_tasks)
        for task_id, task in enumerate(record.tasks):
            for recorded in task:
                index = recorded if translate is None else translate(recorded)
                if index is None or not 0 <= index < plan.total:
                    continue
                latest[index] = Attempt(record, task_id, recorded)
                if record.status in Status.ATTEMPTED and task_id not in cancelled:
                    attempts[index] += 1
    return latest, attempts, edited


def _open(record: SubmissionRecord) -> bool:
    """A record whose sbatch outcome is not known yet (a crash, or Slurm not answering)."""
    return record.status in (Status.INTENT, Status.UNCONFIRMED)


def _identities(plan: ExperimentPlan) -> dict[tuple[str, int], int]:
    sweep = plan.sweep
    return {(sweep.params_json(i), sweep.run(i)): i for i in range(plan.total)}


def _translator(
    record: SubmissionRecord, identity_to_index: Mapping[tuple[str, int], int]
) -> Callable[[int], int | None]:
    try:
        old = Sweep(record.experiment_data, record.keys)
    except Exception:
        return lambda recorded: None
    return lambda recorded: identity_to_index.get((old.params_json(recorded), old.run(recorded)))


# -- classification ----------------------------------------------------------------------------


@dataclass
class Observations:
    """What the I/O found: results present, live tasks, accounting, per-index exit codes."""

    done: set[int]
    queue: Mapping[tuple[str, int], QueuedTask]  # (array job id, task id) -> live task
    accounting: Mapping[tuple[str, int], AccountingRecord] | None  # None: sacct unavailable
    accounting_problem: str | None
    exit_codes: Mapping[tuple[str, int], int]  # (tag, index) -> exit code from the status file
    local_alive: set[str]  # tags of local runs whose process is still alive


def classify(
    plan: ExperimentPlan,
    latest: Mapping[int, Attempt],
    attempts: Mapping[int, int],
    seen: Observations,
) -> list[IndexStatus]:
    out = []
    for index in range(plan.total):
        count = attempts.get(index, 0)
        attempt = latest.get(index)
        if index in seen.done:
            out.append(IndexStatus(index, DONE, count, attempt))
        elif attempt is None:
            out.append(IndexStatus(index, MISSING, count))
        else:
            out.append(_classify_attempt(index, count, attempt, seen))
    return out


def _classify_attempt(index: int, count: int, attempt: Attempt, seen: Observations) -> IndexStatus:
    record = attempt.record
    code = seen.exit_codes.get((record.tag, attempt.recorded_index))
    if attempt.task_id in record.cancelled_tasks and code is None:
        return IndexStatus(index, MISSING, count, attempt, "cancelled with orchestrator cancel")
    if record.executor == "local":
        if code is None and record.tag in seen.local_alive:
            return IndexStatus(index, RUNNING, count, attempt)
        if code is not None:
            return _failed_by_code(index, count, attempt, code)
        if record.status == Status.INTERRUPTED:
            return IndexStatus(index, FAILED, count, attempt, "CANCELLED (interrupted)", "CANCELLED")
        return IndexStatus(index, FAILED, count, attempt, "unknown (the local run ended without an exit status)")
    if record.job_id is None:
        # an intent whose sbatch never answered: nothing is known to be queued
        return IndexStatus(index, MISSING, count, attempt)
    live = seen.queue.get((record.job_id, attempt.task_id))
    if live is not None and live.state in _PENDING_STATES:
        # not started (again): a status file can only be from an attempt before a requeue
        return IndexStatus(index, PENDING, count, attempt, live.reason or None)
    if live is not None and live.state in _RUNNING_STATES and (code is None or code == 0):
        # code 0: the index has just finished, its task is completing: in flight, not missing
        return IndexStatus(index, RUNNING, count, attempt)
    # Order of evidence (orchestrator.accounting): the index's own status file wins over the state of its
    # task as a whole, unless a signal killed the index and the task's end state says why.
    accounted = seen.accounting.get((record.job_id, attempt.task_id)) if seen.accounting is not None else None
    if accounted is not None and task_state_explains(code, accounted):
        reason = accounted.state if accounted.state != "CANCELLED" else f"CANCELLED {accounted.reason_detail}".strip()
        return IndexStatus(index, FAILED, count, attempt, reason, accounted.state, code)
    if code is not None:
        return _failed_by_code(index, count, attempt, code)
    if accounted is not None and accounted.state == "FAILED":
        return IndexStatus(
            index, FAILED, count, attempt, f"FAILED exit {accounted.exit_code}", "FAILED", accounted.exit_code
        )
    if accounted is not None and accounted.state in ("PENDING", "RUNNING", "REQUEUED"):
        # accounting lags behind squeue; squeue (asked first) no longer has it
        return IndexStatus(index, FAILED, count, attempt, f"unknown (sacct still says {accounted.state})")
    if seen.accounting is None:
        why = f": {seen.accounting_problem}" if seen.accounting_problem else ""
        return IndexStatus(index, FAILED, count, attempt, f"unknown (no accounting{why})")
    if accounted is not None:
        return IndexStatus(
            index, FAILED, count, attempt, f"unknown (task {accounted.state}, index left no exit status)"
        )
    return IndexStatus(index, FAILED, count, attempt, "unknown (not in squeue, no accounting record)")


def _failed_by_code(index: int, count: int, attempt: Attempt, code: int) -> IndexStatus:
    if code == 0:
        # it finished and its result has gone since (or was never written): missing, not failed
        return IndexStatus(index, MISSING, count, attempt, "exited 0 but its result is not there", None, 0)
    return IndexStatus(index, FAILED, count, attempt, f"FAILED exit {code}", "FAILED", code)


# -- gathering the observations (the I/O) ------------------------------------------------------


def result_paths_present(
    plan: ExperimentPlan, scanner: ResultScanner, marker: str | None, indices: Iterable[int] | None = None
) -> set[int]:
    by_path: dict[str, list[int]] = {}
    for index, path in plan.save_paths(indices):
        by_path.setdefault(path, []).append(index)
    complete = scanner.complete(by_path, marker)
    return {index for path in complete for index in by_path[path]}


def read_exit_codes(attempts: Iterable[Attempt]) -> dict[tuple[str, int], int]:
    """Exit codes of the given attempts, listing each submission's log directory once."""
    wanted: dict[str, set[int]] = {}
    dirs: dict[str, str] = {}
    for attempt in attempts:
        wanted.setdefault(attempt.record.tag, set()).add(attempt.recorded_index)
        dirs[attempt.record.tag] = attempt.record.log_dir
    codes: dict[tuple[str, int], int] = {}
    for tag, indices in wanted.items():
        log_dir = dirs[tag]
        try:
            names = set(os.listdir(log_dir))
        except OSError:
            continue
        for index in indices:
            name = f"{index}.status"
            if name not in names:
                continue
            try:
                codes[(tag, index)] = int(Path(log_dir, name).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return codes


def local_runs_alive(records: Iterable[SubmissionRecord]) -> set[str]:
    host = socket.gethostname()
    return {
        r.tag
        for r in records
        if r.executor == "local" and r.status == Status.RUNNING and r.host == host and pid_alive(r.pid)
    }


class SlurmReader(Protocol):
    """The two queries state needs (implemented by `SlurmCommands`)."""

    accounting_problem: str | None

    def squeue_me(self) -> list[QueuedTask]: ...

    def sacct(self, job_ids: Sequence[str]) -> list[AccountingRecord] | None: ...


def gather(
    plans: Sequence[ExperimentPlan],
    ledger: Ledger,
    slurm: SlurmReader | None,
    marker: str | None = None,
    scanner: ResultScanner | None = None,
) -> list[ExperimentStatus]:
    """Every index's state for `plans`, with at most one squeue and one (chunked) sacct call."""
    scanner = scanner or ResultScanner(str(ledger.root))
    staged = []
    unresolved: list[Attempt] = []
    for plan in plans:
        known_problems = len(ledger.problems)
        records = ledger.records(ledger.experiment_key(plan.path))
        problems = ledger.problems[known_problems:]  # damaged records of this experiment's group
        if slurm is None:
            # a record salvaged from a damaged one is confirmed (or not) only by Slurm's queue
            records = [r for r in records if r.salvaged_from is None]
        latest, attempts, edited = latest_attempts(plan, records)
        done = result_paths_present(plan, scanner, marker)
        staged.append((plan, problems, latest, attempts, edited, done))
        unresolved.extend(a for i, a in latest.items() if i not in done)

    on_slurm = [a for a in unresolved if a.record.executor == "slurm" and (a.record.job_id or _open(a.record))]
    queue: dict[tuple[str, int], QueuedTask] = {}
    accounting: dict[tuple[str, int], AccountingRecord] | None = {}
    problem = None
    if on_slurm:
        if slurm is None:
            raise SlurmError("the ledger holds Slurm jobs but Slurm is not available here (no squeue)")
        by_tag: dict[str, str] = {}
        for task in slurm.squeue_me():
            by_tag[task.name] = by_tag[task.comment] = task.array_job_id
            if task.task_id is not None:
                queue[(task.array_job_id, task.task_id)] = task
        for attempt in on_slurm:
            if attempt.record.job_id is None and attempt.record.tag in by_tag:
                # a submit died between sbatch and its ledger write: the queue knows the job by our tag
                attempt.record.job_id = by_tag[attempt.record.tag]
        on_slurm = [a for a in on_slurm if a.record.job_id]
    # Read after squeue answered: a task writes its exit status before it leaves the queue.
    exit_codes = read_exit_codes(unresolved)
    if on_slurm:
        # Results were scanned before squeue answered: an index whose task has left the queue since,
        # exiting 0, wrote its result meanwhile. Look again at just those, or it would look missing.
        rescan = ResultScanner(str(ledger.root))
        for plan, _problems, latest, _attempts, _edited, done in staged:
            gone = [
                i
                for i, a in latest.items()
                if i not in done
                and a.record.job_id
                and (a.record.job_id, a.task_id) not in queue
                and exit_codes.get((a.record.tag, a.recorded_index)) == 0
            ]
            if gone:
                done |= result_paths_present(plan, rescan, marker, gone)
        finished = sorted({a.record.job_id for a in on_slurm if (a.record.job_id, a.task_id) not in queue})
        if finished:
            assert slurm is not None
            found = slurm.sacct(finished)
            if found is None:
                accounting, problem = None, slurm.accounting_problem
            else:
                accounting = records_by_task(found)  # the rule for which record speaks for a task
    seen = Observations(
        done=set(),
        queue=queue,
        accounting=accounting,
        accounting_problem=problem,
        exit_codes=exit_codes,
        local_alive=local_runs_alive({a.record.tag: a.record for a in unresolved}.values()),
    )
    out = []
    for plan, problems, latest, attempts, edited, done in staged:
        seen.done = done
        out.append(ExperimentStatus(plan, classify(plan, latest, attempts, seen), edited, list(problems)))
    return out

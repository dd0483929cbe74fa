"""Which accounting record speaks for an array task, and when it, not the index, says why the index ended.

sacct can print several records that cover one task. Seen on Slurm 22.05 (recorded in tests/data/slurm):
- after a cancel, the array's record for its remaining tasks keeps a range that is out of date and
  still covers a task that had ended by itself: `2219_4|FAILED|3:0` and `2219_[4-9%1]|CANCELLED by 0|0:0`;
- a task that has just left the queue may still sit inside the pending range, with no record of its own;
- a requeued task keeps its job id and runs again: with `sacct -D` every attempt is a record (the
  earlier ones REQUEUED, NODE_FAIL or PREEMPTED), without it the latest only;
- records come in no promised order, and may come more than once (with `-D`, or from several calls).

The rule, which depends neither on the order of the records nor on repeats:
1. a task's own record (`123_4`) wins over any range record (`123_[4-9%1]`) that covers it;
2. among records of one kind, the latest attempt wins: the later Submit time (a requeue resets it),
   then the higher DBIndex (each attempt is a new row of the accounting database);
3. a record superseded by a requeue (REQUEUED) loses a remaining tie, and any other tie is broken by
   the records' own fields, so the same set of records always gives the same answer.

The index's own status file is better evidence than all of these: a task's state is the state of
the task as a whole (for a bundle, of all its indices), so it says why an index ended only when the
index left no status file, or when the status file says a signal killed it (exit code above 128)
and the task ended in a way that sends one (TIMEOUT, OUT_OF_MEMORY, PREEMPTED, CANCELLED, ...).
A status file seen while the task is pending again is from an attempt before a requeue: the caller
(`state._classify_attempt`) lets the queue win there, since a pending task has not started yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.slurm_formats import AccountingRecord

# end states in which Slurm itself stops the task: the reason to report, unless the index says otherwise
TASK_END_REASONS = frozenset(
    {"TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "BOOT_FAIL", "DEADLINE"}
)
# a shell reports a child killed by signal N as exit code 128 + N (143: SIGTERM, 137: SIGKILL)
_KILLED_BY_SIGNAL = 128

TaskKey = tuple[str, int]  # (array job id, task id)


def record_rank(record: AccountingRecord) -> tuple[object, ...]:
    """Sort key: of the records covering one task, the greatest speaks for it (see the module's rule)."""
    return (
        not record.grouped,
        record.submitted or "",
        -1 if record.db_index is None else record.db_index,
        record.state != "REQUEUED",
        # the rest only makes the choice total: equal ranks are otherwise the same attempt, printed twice
        record.state,
        record.reason_detail,
        record.exit_code,
        record.signal,
        -1 if record.elapsed_seconds is None else record.elapsed_seconds,
        record.name,
        record.job_id,
    )


def records_by_task(records: Iterable[AccountingRecord]) -> dict[TaskKey, AccountingRecord]:
    """(array job id, task id) -> the one record that speaks for that array task.

    Records of jobs that are not arrays (no task id) are left out: every submission is an array.
    """
    chosen: dict[TaskKey, AccountingRecord] = {}
    for record in records:
        if record.task_id is None:
            continue
        key = (record.array_job_id, record.task_id)
        held = chosen.get(key)
        if held is None or record_rank(record) > record_rank(held):
            chosen[key] = record
    return chosen


def task_state_explains(exit_code: int | None, record: AccountingRecord | None) -> bool:
    """Whether the task's end state, rather than the index's own exit code, says why the index ended.

    `exit_code` is the index's status file (None: it left none). A regular exit code is the index's
    own answer whatever happened to the task afterwards; a death by signal is explained by an end
    state in which Slurm sends one.
    """
    if record is None or record.state not in TASK_END_REASONS:
        return False
    return exit_code is None or exit_code > _KILLED_BY_SIGNAL

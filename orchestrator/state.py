"""Index state: each planned index is in exactly one state, found in two steps.

    observe(plans, ledger, slurm, find_done) -> [Observation]   what the ledger, the results and Slurm say
    classify(observation, max_attempts)      -> ExperimentStatus  a pure function of that data

The truth, gathered once per command: the result store decides `done` (and `unknown` where it cannot
tell); the ledger says which submission last held each other index (matched by params when the
file changed); one `squeue --me -r` says which of those tasks are running or pending; per-index
exit status files, and one batched `sacct` for the finished tasks, say why one failed.

Every state is an `IndexSet`: memory follows what is irregular (failed indices, in-flight tasks,
ranges), not the sweep's size. Per-index detail exists only for indices with a history.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.accounting import records_by_task, task_state_explains
from orchestrator.errors import SlurmError
from orchestrator.index_set import IndexSet
from orchestrator.ledger import Ledger, SubmissionRecord, SubmissionState
from orchestrator.planner import ExperimentPlan
from orchestrator.result_store import FindDone, StoreAnswer
from orchestrator.slurm import Slurm, jobs_by_tag
from orchestrator.slurm_formats import AccountingRecord, QueuedTask
from orchestrator.sweep import Sweep
from orchestrator.util import pid_alive

DONE, RUNNING, PENDING, FAILED, GIVEN_UP, MISSING, UNKNOWN = (
    "done",
    "running",
    "pending",
    "failed",
    "given_up",
    "missing",
    "unknown",
)
STATES = (DONE, RUNNING, PENDING, FAILED, MISSING, UNKNOWN)  # every index is in exactly one of these
# `given_up` is a part of `failed`: failed `max_attempts` times, so `submit` leaves it (--retry-given-up)

# squeue states that mean "will run or is running" (everything else is on its way out)
_RUNNING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SUSPENDED", "RESIZING", "SIGNALING"}
_PENDING_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One index inside one submission: the record and the array task that held it."""

    record: SubmissionRecord
    task_id: int
    recorded_index: int  # the index number at submission (differs when the file was edited)


@dataclass(frozen=True)
class Verdict:
    """Why an index with a history is in its state."""

    state: str
    reason: str | None = None  # human text: "TIMEOUT", "FAILED exit 3", "unknown (...)"
    reason_kind: str | None = None  # TIMEOUT / OUT_OF_MEMORY / FAILED / ... for escalation
    exit_code: int | None = None


# -- observing: what the ledger, the results and Slurm say -------------------------------------


@dataclass
class History:
    """What the ledger says of one experiment's indices that are not done."""

    latest: dict[int, Attempt]
    attempts: Counter[int]
    edited_since: list[str]  # tags submitted from an older version of the file
    problems: list[str]  # damaged records of this experiment


@dataclass
class SlurmView:
    """What Slurm says of our tasks: the live ones, and accounting for those that left the queue."""

    queue: Mapping[tuple[str, int], QueuedTask] = field(default_factory=dict)
    accounting: Mapping[tuple[str, int], AccountingRecord] | None = field(default_factory=dict)
    accounting_problem: str | None = None
    job_ids: Mapping[str, str] = field(default_factory=dict)  # tag -> job id where the ledger lacks it

    def job_id(self, record: SubmissionRecord) -> str | None:
        return record.job_id or self.job_ids.get(record.tag)


@dataclass
class Observation:
    plan: ExperimentPlan
    results: StoreAnswer
    history: History
    exit_codes: Mapping[tuple[str, int], int] = field(default_factory=dict)  # (tag, index) -> status file
    started: frozenset[tuple[str, int]] = frozenset()  # local (tag, index) whose log exists
    local_alive: frozenset[str] = frozenset()  # tags of local runs whose process is alive here
    slurm: SlurmView = field(default_factory=SlurmView)


def unsettled(record: SubmissionRecord) -> bool:
    """A record whose sbatch outcome is not known yet (a crash, or Slurm not answering)."""
    return record.status in (SubmissionState.INTENT, SubmissionState.UNCONFIRMED)


def read_history(plan: ExperimentPlan, records: Sequence[SubmissionRecord], done: IndexSet) -> History:
    """The latest attempt and the attempt count of each index that is not done.

    When the experiment file changed after a submission, its indices are matched to today's by
    (params, run), so an edit that reorders or extends a sweep never mislabels a task.
    """
    history = History({}, Counter(), [], [])
    identities: dict[tuple[str, int], int] | None = None
    for record in records:
        if record.status not in SubmissionState.ATTEMPTED and not unsettled(record):
            continue
        translate = None
        if record.experiment_hash != plan.file.content_hash:
            history.edited_since.append(record.tag)
            identities = identities if identities is not None else identities_of(plan)
            translate = translator(record, identities)
        counts = record.status in SubmissionState.ATTEMPTED
        cancelled = set(record.cancelled_tasks)
        for task_id, task in enumerate(record.tasks):
            for recorded in task:
                index = recorded if translate is None else translate(recorded)
                if index is None or not 0 <= index < plan.total or index in done:
                    continue
                history.latest[index] = Attempt(record, task_id, recorded)
                if counts and task_id not in cancelled:
                    history.attempts[index] += 1
    return history


def identities_of(plan: ExperimentPlan) -> dict[tuple[str, int], int]:
    sweep = plan.sweep
    return {(sweep.params_json(i), sweep.run(i)): i for i in range(plan.total)}


def translator(
    record: SubmissionRecord, identity_to_index: Mapping[tuple[str, int], int]
) -> Callable[[int], int | None]:
    try:
        old = Sweep(record.experiment_data, record.keys)
    except Exception:
        return lambda recorded: None
    return lambda recorded: identity_to_index.get((old.params_json(recorded), old.run(recorded)))


def read_exit_codes(attempts: Iterable[Attempt]) -> tuple[dict[tuple[str, int], int], frozenset[tuple[str, int]]]:
    """(tag, index) -> exit code from the status files, and the (tag, index) whose log exists.

    Each submission's log directory is listed once.
    """
    wanted: dict[str, tuple[str, set[int]]] = {}
    for attempt in attempts:
        wanted.setdefault(attempt.record.tag, (attempt.record.log_dir, set()))[1].add(attempt.recorded_index)
    codes: dict[tuple[str, int], int] = {}
    started: set[tuple[str, int]] = set()
    for tag, (log_dir, indices) in wanted.items():
        try:
            names = set(os.listdir(log_dir))
        except OSError:
            continue
        started.update((tag, i) for i in indices if f"{i}.log" in names)
        for index in indices:
            if f"{index}.status" not in names:
                continue
            try:
                codes[(tag, index)] = int(Path(log_dir, f"{index}.status").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return codes, frozenset(started)


def local_runs_alive(records: Iterable[SubmissionRecord]) -> frozenset[str]:
    host = socket.gethostname()
    return frozenset(
        r.tag
        for r in records
        if r.executor == "local" and r.status == SubmissionState.RUNNING and r.host == host and pid_alive(r.pid)
    )


def read_queue(slurm: Slurm | None, attempts: Sequence[Attempt]) -> SlurmView:
    """The live tasks, and the job ids of unsettled submissions found by their tag in the queue."""
    on_slurm = [a for a in attempts if a.record.executor == "slurm" and (a.record.job_id or unsettled(a.record))]
    if not on_slurm:
        return SlurmView()
    if slurm is None:
        raise SlurmError("the ledger holds Slurm jobs but Slurm is not available here (no squeue)")
    queue = {(t.array_job_id, t.task_id): t for t in slurm.squeue_me() if t.task_id is not None}
    open_tags = list(dict.fromkeys(a.record.tag for a in on_slurm if a.record.job_id is None))
    # a submit died between sbatch and its ledger write: the queue knows the job by our tag
    job_ids = jobs_by_tag(slurm, open_tags) if open_tags else {}
    return SlurmView(queue=queue, job_ids=job_ids)


def read_accounting(slurm: Slurm | None, view: SlurmView, attempts: Iterable[Attempt]) -> None:
    """One batched sacct for the jobs of ours that have tasks no longer in the queue."""
    finished = sorted(
        {
            job_id
            for a in attempts
            if a.record.executor == "slurm"
            and (job_id := view.job_id(a.record))
            and (job_id, a.task_id) not in view.queue
        }
    )
    if not finished or slurm is None:
        return
    found = slurm.sacct(finished)
    if found is None:
        view.accounting, view.accounting_problem = None, slurm.accounting_problem
    else:
        view.accounting = records_by_task(found)  # the rule for which record speaks for a task


def observe(
    plans: Sequence[ExperimentPlan], ledger: Ledger, slurm: Slurm | None, find_done: FindDone
) -> list[Observation]:
    """What the ledger, the result store and Slurm say of `plans`: at most one squeue and one
    (chunked) sacct for all of them."""
    observations = []
    for plan in plans:
        known = len(ledger.problems)
        records = ledger.records(ledger.experiment_key(plan.path))
        if slurm is None:
            # a record salvaged from a damaged one is confirmed (or not) only by Slurm's queue
            records = [r for r in records if r.salvaged_from is None]
        results = find_done(plan, None)
        history = read_history(plan, records, results.done)
        history.problems = ledger.problems[known:]
        observations.append(Observation(plan, results, history))
    unresolved = [a for o in observations for a in o.history.latest.values()]
    view = read_queue(slurm, unresolved)
    # Read after squeue answered: a task writes its exit status before it leaves the queue.
    codes, started = read_exit_codes(unresolved)
    alive = local_runs_alive({a.record.tag: a.record for a in unresolved}.values())
    for observation in observations:
        observation.exit_codes, observation.started, observation.local_alive = codes, started, alive
        observation.slurm = view
        _rescan_finished(observation, find_done)
    read_accounting(slurm, view, (a for o in observations for a in o.history.latest.values()))
    return observations


def _rescan_finished(observation: Observation, find_done: FindDone) -> None:
    """Results were read before squeue answered: an index whose task has left the queue since,
    exiting 0, wrote its result meanwhile. Look again at just those, or it would look missing."""
    view, history = observation.slurm, observation.history
    gone = [
        index
        for index, a in history.latest.items()
        if (job_id := view.job_id(a.record))
        and (job_id, a.task_id) not in view.queue
        and observation.exit_codes.get((a.record.tag, a.recorded_index)) == 0
    ]
    if not gone:
        return
    found = find_done(observation.plan, IndexSet.of(gone)).done
    if found:
        results = observation.results
        observation.results = dataclasses.replace(results, done=results.done | found, unknown=results.unknown - found)
        for index in found:
            history.latest.pop(index, None)


# -- classifying: a pure function of the observations ------------------------------------------


@dataclass
class IndexStatus:
    """One index's state, with its history where it has one (for `logs` and escalation)."""

    index: int
    state: str
    attempts: int = 0
    last: Attempt | None = None
    reason: str | None = None
    reason_kind: str | None = None
    exit_code: int | None = None


@dataclass
class ExperimentStatus:
    plan: ExperimentPlan
    sets: dict[str, IndexSet]
    verdicts: dict[int, Verdict]  # indices with a history that are failed, given up or missing
    observation: Observation
    notes: list[str] = field(default_factory=list)
    max_attempts: int = 3  # failed this often: given up

    @property
    def history(self) -> History:
        return self.observation.history

    @property
    def results(self) -> StoreAnswer:
        return self.observation.results

    @property
    def edited_since(self) -> list[str]:
        return self.history.edited_since

    def counts(self) -> dict[str, int]:
        return {state: len(self.sets[state]) for state in (*STATES, GIVEN_UP)}

    def reasons(self, state: str = FAILED) -> dict[str, IndexSet]:
        """The indices of `state` grouped by why (failed and given up indices have a reason)."""
        groups: dict[str, list[int]] = {}
        for index in self.sets[state]:
            verdict = self.verdicts.get(index)
            groups.setdefault((verdict.reason if verdict else None) or "unknown", []).append(index)
        return {reason: IndexSet.of(indices) for reason, indices in groups.items()}

    def index(self, index: int) -> IndexStatus:
        state = next(s for s in STATES if index in self.sets[s])  # given up indices are failed
        verdict = self.verdicts.get(index)
        if verdict is None and state in (RUNNING, PENDING):
            verdict = judge(self.history.latest[index], self.observation)  # in flight: not kept, asked again
        verdict = verdict or Verdict(state)
        return IndexStatus(
            index,
            state,
            self.history.attempts.get(index, 0),
            self.history.latest.get(index),
            verdict.reason,
            verdict.reason_kind,
            verdict.exit_code,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "experiment": self.plan.path,
            "total": self.plan.total,
            **self.counts(),
            "indices": {state: self.sets[state].text() for state in (*STATES, GIVEN_UP)},
            "failed_reasons": {reason: ix.text() for reason, ix in sorted(self.reasons(FAILED).items())},
            "edited_since_submission": self.edited_since,
            "results": self.results.kind,
            "database": self.results.database,
            **({"databases": list(self.results.databases)} if len(self.results.databases) > 1 else {}),
        }


def classify(observation: Observation, max_attempts: int) -> ExperimentStatus:
    """Every index's state; a failed index that has had `max_attempts` attempts is given up."""
    plan, history, results = observation.plan, observation.history, observation.results
    members: dict[str, list[int]] = {state: [] for state in (RUNNING, PENDING, FAILED, GIVEN_UP, MISSING)}
    verdicts: dict[int, Verdict] = {}
    for index, attempt in history.latest.items():
        if index in results.unknown:
            continue
        verdict = judge(attempt, observation)
        members[verdict.state].append(index)
        if verdict.state == FAILED and history.attempts.get(index, 0) >= max_attempts:
            members[GIVEN_UP].append(index)
        if verdict.state not in (RUNNING, PENDING):
            verdicts[index] = verdict
    sets = {state: IndexSet.of(sorted(indices)) for state, indices in members.items()}
    held = sets[RUNNING] | sets[PENDING] | sets[FAILED]
    sets[MISSING] = IndexSet.range(0, plan.total) - results.done - results.unknown - held
    sets[DONE], sets[UNKNOWN] = results.done, results.unknown
    notes = [*history.problems, *results.notes]
    return ExperimentStatus(plan, sets, verdicts, observation, list(dict.fromkeys(notes)), max_attempts)


def judge(attempt: Attempt, observed: Observation) -> Verdict:
    """The state of an index that is not done, from its latest attempt and what was observed of it."""
    record = attempt.record
    code = observed.exit_codes.get((record.tag, attempt.recorded_index))
    if attempt.task_id in record.cancelled_tasks and code is None:
        return Verdict(MISSING, "cancelled with orchestrator cancel")
    if record.executor == "local":
        return _judge_local(attempt, code, observed)
    job_id = observed.slurm.job_id(record)
    if job_id is None:
        return Verdict(MISSING)  # an intent whose sbatch never answered: nothing is known to be queued
    live = observed.slurm.queue.get((job_id, attempt.task_id))
    if live is not None and live.state in _PENDING_STATES:
        # not started (again): a status file can only be from an attempt before a requeue
        return Verdict(PENDING, live.reason or None)
    if live is not None and live.state in _RUNNING_STATES and (code is None or code == 0):
        # code 0: the index has just finished, its task is completing: in flight, not missing
        return Verdict(RUNNING)
    return _judge_finished(attempt, code, observed, job_id)


def _judge_local(attempt: Attempt, code: int | None, observed: Observation) -> Verdict:
    record = attempt.record
    if code is None and record.tag in observed.local_alive:
        started = (record.tag, attempt.recorded_index) in observed.started
        return Verdict(RUNNING) if started else Verdict(PENDING, "waiting for a free local slot")
    if code is not None:
        return _by_exit_code(code)
    stopped = record.task_ends.get(str(attempt.task_id))
    if stopped is not None:
        return Verdict(FAILED, stopped, stopped)  # e.g. TIMEOUT: the executor stopped the task
    if record.status == SubmissionState.INTERRUPTED:
        return Verdict(FAILED, "CANCELLED (interrupted)", "CANCELLED")
    return Verdict(FAILED, "unknown (the local run ended without an exit status)")


def _judge_finished(attempt: Attempt, code: int | None, observed: Observation, job_id: str) -> Verdict:
    accounting = observed.slurm.accounting
    accounted = accounting.get((job_id, attempt.task_id)) if accounting is not None else None
    # Order of evidence (orchestrator.accounting): the index's own status file wins over the state of its
    # task as a whole, unless a signal killed the index and the task's end state says why.
    if accounted is not None and task_state_explains(code, accounted):
        reason = accounted.state if accounted.state != "CANCELLED" else f"CANCELLED {accounted.reason_detail}".strip()
        return Verdict(FAILED, reason, accounted.state, code)
    if code is not None:
        return _by_exit_code(code)
    if accounted is not None and accounted.state == "FAILED":
        return Verdict(FAILED, f"FAILED exit {accounted.exit_code}", "FAILED", accounted.exit_code)
    if accounted is not None and accounted.state in ("PENDING", "RUNNING", "REQUEUED"):
        # accounting lags behind squeue; squeue (asked first) no longer has it
        return Verdict(FAILED, f"unknown (sacct still says {accounted.state})")
    if accounting is None:
        why = f": {observed.slurm.accounting_problem}" if observed.slurm.accounting_problem else ""
        return Verdict(FAILED, f"unknown (no accounting{why})")
    if accounted is not None:
        return Verdict(FAILED, f"unknown (task {accounted.state}, index left no exit status)")
    return Verdict(FAILED, "unknown (not in squeue, no accounting record)")


def _by_exit_code(code: int) -> Verdict:
    if code == 0:
        # it finished and its result has gone since (or was never written): missing, not failed
        return Verdict(MISSING, "exited 0 but its result is not there", None, 0)
    return Verdict(FAILED, f"FAILED exit {code}", "FAILED", code)


def gather(
    plans: Sequence[ExperimentPlan],
    ledger: Ledger,
    slurm: Slurm | None,
    find_done: FindDone,
    max_attempts: int,
) -> list[ExperimentStatus]:
    """Every index's state for `plans`: observe, then classify."""
    return [classify(o, max_attempts) for o in observe(plans, ledger, slurm, find_done)]

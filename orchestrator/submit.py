"""Submission: from plans to job arrays of exactly the indices that are missing or failed.

    plan -> state (done / running / pending / failed / given up / missing / unknown)
         -> select (missing + failed) -> group by resources (escalation)
         -> split into arrays within the cluster's limits (bundling `indices_per_task` per task)
         -> for each array: intent record, run directory, executor, record of the outcome

The pure steps (selection, grouping, splitting) are functions of index sets; the I/O is at the end,
and goes through the `Executor` interface, whichever executor it is.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.cost import ArrayRequest, Cost, CostSummary, Decision, cost, decide, expected_cost, refusal
from orchestrator.errors import EnvironmentFailure, SlurmError, UserError
from orchestrator.executors import Executor, Job, Outcome
from orchestrator.index_set import IndexSet, union_all
from orchestrator.ledger import Ledger, SubmissionRecord, SubmissionState
from orchestrator.planner import ExperimentPlan
from orchestrator.profile import ClusterProfile
from orchestrator.render import ArrayScript, load_template, render_script
from orchestrator.result_store import FindDone
from orchestrator.run_dir import Snapshot
from orchestrator.slurm import Slurm, jobs_by_tag
from orchestrator.slurm_formats import PartitionLimits, format_memory, format_time, parse_memory, parse_time
from orchestrator.state import FAILED, GIVEN_UP, MISSING, ExperimentStatus, gather
from orchestrator.usage import ExperimentUsage, Sizing, Suggestion, collect
from orchestrator.util import fault_point, git_state, now, pid_alive

# -- pure steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    time: str
    mem_per_cpu: str


def select_indices(status: ExperimentStatus, retry_given_up: bool) -> tuple[IndexSet, IndexSet]:
    """(indices to submit, indices given up): missing and failed ones, but failed ones that are given up
    only when retried."""
    chosen = status.sets[MISSING] | status.sets[FAILED]
    if retry_given_up:
        return chosen, IndexSet()
    return chosen - status.sets[GIVEN_UP], status.sets[GIVEN_UP]


def escalated(
    base: Resources,
    last: Resources | None,
    reason_kind: str | None,
    profile: ClusterProfile,
    limits: PartitionLimits | None,
) -> Resources:
    """More time after a TIMEOUT, more memory after OUT_OF_MEMORY: the last attempt's times the factor.

    Capped by the partition's MaxTime and MaxMemPerCPU (or MaxMemPerNode over the task's CPUs).
    """
    if last is None or reason_kind not in ("TIMEOUT", "OUT_OF_MEMORY"):
        return base
    if reason_kind == "TIMEOUT":
        seconds = math.ceil(max(parse_time(last.time), parse_time(base.time)) * profile.time_factor)
        if limits is not None and limits.max_time_seconds is not None:
            seconds = min(seconds, limits.max_time_seconds)
        return Resources(format_time(seconds), base.mem_per_cpu)
    megabytes = math.ceil(max(parse_memory(last.mem_per_cpu), parse_memory(base.mem_per_cpu)) * profile.memory_factor)
    caps = []
    if limits is not None and limits.max_mem_per_cpu_mb is not None:
        caps.append(limits.max_mem_per_cpu_mb)
    if limits is not None and limits.max_mem_per_node_mb is not None:
        caps.append(limits.max_mem_per_node_mb // max(1, profile.cpus_per_task))
    return Resources(base.time, format_memory(min([megabytes, *caps])))


def resource_groups(
    status: ExperimentStatus,
    chosen: IndexSet,
    base: Resources,
    escalate: Escalation | None,
) -> list[tuple[Resources, IndexSet]]:
    """The chosen indices grouped by the resources they get, in order of their first index.

    Only failed indices can be escalated, so only they are looked at one by one.
    """
    if escalate is None:
        return [(base, chosen)] if chosen else []
    raised: dict[Resources, list[int]] = {}
    for index in chosen & status.sets[FAILED]:
        verdict, attempt = status.verdicts.get(index), status.history.latest.get(index)
        last = recorded_resources(attempt.record) if attempt is not None else None
        kind = verdict.reason_kind if verdict is not None else None
        resources = escalated(base, last, kind, escalate.profile, escalate.limits)
        if resources != base:
            raised.setdefault(resources, []).append(index)
    groups = {resources: IndexSet.of(indices) for resources, indices in raised.items()}
    rest = chosen - union_all(groups.values())
    if rest:
        groups[base] = rest
    return sorted(groups.items(), key=lambda kv: kv[1].first() or 0)


@dataclass(frozen=True)
class Escalation:
    profile: ClusterProfile
    limits: PartitionLimits | None


def split_arrays(indices: IndexSet, per_task: int, max_tasks: int) -> list[IndexSet]:
    """Arrays of at most `max_tasks` tasks of `per_task` consecutive indices: task ids stay below MaxArraySize."""
    return list(indices.chunks(per_task * max_tasks))


def tasks_of(indices: IndexSet, per_task: int) -> Iterator[list[int]]:
    """Consecutive indices, `per_task` to an array task."""
    for chunk in indices.chunks(per_task):
        yield list(chunk)


def fit_capacity(arrays: Sequence[IndexSet], per_task: int, capacity: int | None) -> tuple[list[IndexSet], IndexSet]:
    """Arrays cut to the free submit capacity (each task is a job to Slurm); the indices left over."""
    if capacity is None:
        return list(arrays), IndexSet()
    fitted, left = [], []
    for array in arrays:
        take = max(0, min(math.ceil(len(array) / per_task), capacity))
        if take:
            fitted.append(array.slice(0, take * per_task))
        left.append(array.slice(take * per_task, len(array)))
        capacity -= take
    return fitted, union_all(left)


# -- results -----------------------------------------------------------------------------------


@dataclass
class Submission:
    experiment: str
    tag: str
    job_id: str | None
    indices: IndexSet
    tasks: int
    script: str | None  # path of the rendered script; None for a dry run (nothing is written)
    resources: Resources
    executor: str
    script_text: str = ""
    failed_indices: IndexSet = field(default_factory=IndexSet)  # local: indices whose exit code was not 0
    unfinished: IndexSet = field(default_factory=IndexSet)  # local: indices an interruption cut short
    interrupted: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "job_id": self.job_id,
            "indices": self.indices.text(),
            "tasks": self.tasks,
            "script": self.script,
            "tag": self.tag,
            "executor": self.executor,
            "time": self.resources.time,
            "mem_per_cpu": self.resources.mem_per_cpu,
            "failed": self.failed_indices.text(),
        }


@dataclass
class ExperimentOutcome:
    experiment: str
    skipped: dict[str, int]  # done / running / pending counts left alone
    given_up: IndexSet = field(default_factory=IndexSet)
    not_yet_submitted: IndexSet = field(default_factory=IndexSet)  # over the submit limit: for a later run
    unknown: IndexSet = field(default_factory=IndexSet)  # the result store could not tell: not sent


@dataclass
class SubmitReport:
    dry_run: bool
    executor: str
    submissions: list[Submission] = field(default_factory=list)
    outcomes: list[ExperimentOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cost: CostSummary | None = None  # of what it sends (or would send), known before the first array goes out

    def outcome(self, experiment: str) -> ExperimentOutcome:
        return next(o for o in self.outcomes if o.experiment == experiment)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "executor": self.executor,
            "submissions": [s.to_json() for s in self.submissions],
            "experiments": [
                {
                    "experiment": o.experiment,
                    "skipped": o.skipped,
                    "given_up": o.given_up.text(),
                    "not_yet_submitted": o.not_yet_submitted.text(),
                    "unknown": o.unknown.text(),
                }
                for o in self.outcomes
            ],
            "notes": self.notes,
            "cost": (self.cost or CostSummary(Cost(), 0)).to_json(),
        }


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP) during a submit: what went out is recorded; `left` did not run."""

    def __init__(self, report: SubmitReport, left: dict[str, IndexSet]) -> None:
        self.report = report
        self.left = left
        super().__init__()


class SubmitFailed(EnvironmentFailure):
    """Slurm failed mid-way: the message says what was and was not submitted (exit 1)."""

    def __init__(self, message: str, report: SubmitReport) -> None:
        self.report = report
        super().__init__(message)


# -- the I/O -----------------------------------------------------------------------------------


@dataclass
class SubmitOptions:
    dry_run: bool = False
    escalate: bool | None = None  # None: as the profile says
    retry_given_up: bool = False
    yes: bool = False  # submit above the profile's confirm_above without asking
    right_size: bool | None = None  # None: as the profile says


@dataclass(frozen=True)
class ArrayPlan:
    """One array to send: its experiment, resources and indices (`per_task` to a task)."""

    plan: ExperimentPlan
    resources: Resources
    indices: IndexSet
    per_task: int

    @property
    def num_tasks(self) -> int:
        return math.ceil(len(self.indices) / self.per_task)


class Submitter:
    def __init__(
        self,
        ledger: Ledger,
        profile: ClusterProfile,
        executor: Executor,
        slurm: Slurm | None,
        find_done: FindDone,
        options: SubmitOptions | None = None,
        confirm: Callable[[str], bool] | None = None,
        announce: Callable[[CostSummary], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.profile = profile
        self.executor = executor
        self.slurm = slurm  # to read state and settle open submissions, whichever executor sends
        self.find_done = find_done
        self.options = options or SubmitOptions()
        self.template_text = load_template(profile.template)
        self._git: dict[str, Any] | None = None  # git_state: two git runs, once per submit, not per array
        self._profiles: dict[Resources, ClusterProfile] = {}
        self._log_bases: dict[str, str] = {}
        self.confirm = confirm  # asks a person (yes/no); None: nobody can answer (no terminal)
        self.announce = announce  # says the cost before the first array goes out
        self._usage: dict[str, ExperimentUsage] = {}  # earlier tasks' usage, by experiment path
        self._bases: dict[str, Resources] = {}  # right-sized requests, by experiment path

    def check(self, plans: Sequence[ExperimentPlan]) -> None:
        """Find bad input before anything is written or submitted: render each experiment's script once.

        The template, the experiment paths (a log directory that `--output` cannot hold) and the
        profile's options are all in the script; the CLI calls this before taking the lock, and
        `submit` again, so no experiment is refused after an earlier one went out.
        """
        base = Resources(self.profile.time, self.profile.mem_per_cpu)
        for plan in plans:
            self._script(ArrayPlan(plan, base, IndexSet.range(0, 1), 1), "orch-check-0000000000")

    def submit(self, plans: Sequence[ExperimentPlan]) -> SubmitReport:
        report = SubmitReport(dry_run=self.options.dry_run, executor=self.executor.name)
        self.check(plans)
        try:
            if not self.options.dry_run:
                self._reconcile(plans, report)
            statuses = gather(plans, self.ledger, self.slurm, self.find_done, self.profile.max_attempts)
            report.notes.extend(dict.fromkeys(self.ledger.problems))
            report.notes.extend(dict.fromkeys(n for s in statuses if s.results for n in s.results.notes))  # unknown
            self._measure(plans, report)
            # the limits (scontrol, sacctmgr, squeue for the free capacity) too: nothing has gone out yet
            arrays = self._plan_arrays(statuses, report)
        except SlurmError as e:
            # without the queue we cannot tell pending from missing: guessing could double-submit
            raise SubmitFailed(f"cannot read Slurm's state ({e}); nothing was submitted", report) from e
        self._check_cost(arrays, report)
        for position, array in enumerate(arrays):
            try:
                self._submit_array(array, report)
            except KeyboardInterrupt:
                # a local run records itself (its unfinished indices) before it passes the interruption on
                recorded = bool(report.submissions) and report.submissions[-1].interrupted
                rest = arrays[position + 1 :] if recorded else arrays[position:]
                raise SubmitInterrupted(report, _left_over(report, rest)) from None
        return report

    def _reconcile(self, plans: Sequence[ExperimentPlan], report: SubmitReport) -> None:
        """Settle what a killed submit left open, before anything is resubmitted.

        An intent (written before sbatch) or an unconfirmed sbatch is looked up by its unique tag,
        first in squeue, then in sacct; a local run whose process is gone was interrupted.
        """
        unsettled: list[SubmissionRecord] = []
        for plan in plans:
            for record in self.ledger.records(self.ledger.experiment_key(plan.path)):
                if _orphaned_local_run(record):
                    record.status = SubmissionState.INTERRUPTED
                    record.note = "the local run's process ended unrecorded"
                    self.ledger.write(record)
                elif _unsettled_on_slurm(record):
                    unsettled.append(record)
        if not unsettled:
            return
        if self.slurm is None:
            report.notes.append(f"{len(unsettled)} unconfirmed Slurm submission(s); Slurm is not reachable here")
            return
        since = _slurm_time(min(r.created for r in unsettled), hours_before=24)
        found = jobs_by_tag(self.slurm, [r.tag for r in unsettled], since)
        for record in unsettled:
            self._settle(record, found.get(record.tag), report)

    def _settle(self, record: SubmissionRecord, job_id: str | None, report: SubmitReport) -> None:
        if job_id is not None:
            record.status, record.job_id = SubmissionState.SUBMITTED, job_id
            record.note = "reconciled: found by its tag after an interrupted submit"
        else:
            problem = self.slurm.accounting_problem if self.slurm is not None else None
            record.status = SubmissionState.REJECTED
            record.note = "reconciled: no job carries its tag, so sbatch never created one" + (
                f" (no accounting to confirm: {problem})" if problem else ""
            )
        self.ledger.write(record)
        report.notes.append(f"{record.tag}: {record.note}" + (f", job {job_id}" if job_id else ""))

    # -- planning arrays -------------------------------------------------------------------------

    def _plan_arrays(self, statuses: Sequence[ExperimentStatus], report: SubmitReport) -> list[ArrayPlan]:
        profile = self.profile
        escalate = profile.escalate if self.options.escalate is None else self.options.escalate
        escalation = Escalation(profile, self.executor.partition_limits(profile.partition)) if escalate else None
        base = Resources(profile.time, profile.mem_per_cpu)
        caps = [n for n in (profile.max_array_tasks, self.executor.max_array_tasks()) if n]
        max_tasks = min(caps) if caps else 1_000_000_000
        capacity = self.executor.free_capacity(profile.max_submit)
        planned = []
        for status in statuses:
            chosen, given_up = select_indices(status, self.options.retry_given_up)
            counts = status.counts()
            outcome = ExperimentOutcome(
                status.plan.path, {k: counts[k] for k in ("done", "running", "pending")}, given_up=given_up
            )
            outcome.unknown = status.sets["unknown"]
            report.outcomes.append(outcome)
            left = []
            experiment_base = self._bases.get(status.plan.path, base)
            for resources, indices in resource_groups(status, chosen, experiment_base, escalation):
                arrays = split_arrays(indices, profile.indices_per_task, max_tasks)
                arrays, rest = fit_capacity(arrays, profile.indices_per_task, capacity)
                if capacity is not None:
                    capacity -= sum(math.ceil(len(a) / profile.indices_per_task) for a in arrays)
                left.append(rest)
                planned.extend(ArrayPlan(status.plan, resources, a, profile.indices_per_task) for a in arrays)
            outcome.not_yet_submitted = union_all(left)
        return planned

    # -- cost, confirmation and right-sizing ------------------------------------------------------

    def _measure(self, plans: Sequence[ExperimentPlan], report: SubmitReport) -> None:
        """Earlier tasks' usage, from one batched sacct: the expected cost, and right-sized requests."""
        right_size = self.profile.right_size if self.options.right_size is None else self.options.right_size
        sizing = Sizing(self.profile.right_size_headroom, self.profile.right_size_statistic)
        try:
            usages = collect(plans, self.ledger, self.slurm, sizing, read_logs=False)
        except EnvironmentFailure as e:
            if right_size:
                report.notes.append(f"right-size: no usage to size from ({e}); the profile's time and memory are used")
            return
        self._usage = {u.experiment: u for u in usages}
        if not right_size:
            return
        limits = self.executor.partition_limits(self.profile.partition)
        base = Resources(self.profile.time, self.profile.mem_per_cpu)
        for usage in usages:
            if usage.suggestion.time is None and usage.suggestion.mem_per_cpu is None:
                report.notes.append(f"right-size: {usage.experiment}: nothing measured yet; as the profile asks")
                continue
            sized = right_sized(base, usage.suggestion, limits, self.profile.cpus_per_task)
            self._bases[usage.experiment] = sized
            report.notes.append(right_size_note(usage, base, sized))

    def _check_cost(self, arrays: Sequence[ArrayPlan], report: SubmitReport) -> None:
        """The cost of what goes out, before the first array: above `confirm_above`, a person confirms it
        (or `--yes`); without anyone to ask, nothing is sent (UserError, exit 2)."""
        measured = {path: s for path, u in self._usage.items() if (s := u.index_share_seconds) is not None}
        summary = planned_cost(arrays, self.profile, measured)
        report.cost = summary
        if not arrays:
            return
        if self.options.dry_run:
            if summary.needs_confirmation:
                report.notes.append(f"above confirm_above ({summary.confirm_above:g} CPU-hours): a submit asks first")
        else:
            cpu_hours, limit = summary.upper.cpu_hours, self.profile.confirm_above
            decision = decide(cpu_hours, limit, yes=self.options.yes, interactive=self.confirm is not None)
            if decision is Decision.REFUSE and limit is not None:
                raise refusal(cpu_hours, limit)
            if decision is Decision.ASK and self.confirm is not None:
                question = f"{summary.text()}; above confirm_above ({limit:g} CPU-hours). Submit?"
                if not self.confirm(question):
                    raise UserError("not confirmed; nothing was submitted")
        if self.announce is not None:
            self.announce(summary)

    # -- one array -------------------------------------------------------------------------------

    def _submit_array(self, array: ArrayPlan, report: SubmitReport) -> None:
        plan = array.plan
        tag = self.ledger.new_tag(plan.path)
        profile, script, text = self._script(array, tag)
        submission = Submission(
            plan.path, tag, None, array.indices, array.num_tasks, None, array.resources, self.executor.name, text
        )
        if self.options.dry_run:
            report.submissions.append(submission)
            return
        run_dir = self.ledger.run_dir(tag)
        submission.script = str(run_dir.script)
        tasks = list(tasks_of(array.indices, array.per_task))
        record = self._intent(array, tag, tasks, profile, script, text)
        try:
            run_dir.write(text, tasks, Snapshot(plan.path, plan.file.content_hash, plan.file.data))
            Path(script.log_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SubmitFailed(_so_far(report, f"cannot write the job files in {run_dir.path}: {e}"), report) from e
        self.ledger.write(record)  # the intent: from here a crash is reconciled by the tag
        fault_point("before-sbatch")
        job = Job(
            experiment=plan.path,
            tag=tag,
            script=run_dir.script,
            num_tasks=len(tasks),
            log_dir=Path(script.log_dir),
            root=self.ledger.root,
            cpus_per_task=profile.cpus_per_task,
            time_limit_seconds=parse_time(array.resources.time),
        )
        outcome = self.executor.execute(job, started=lambda: self._mark_running(record))
        self._record(record, outcome, submission, report)

    def _intent(
        self,
        array: ArrayPlan,
        tag: str,
        tasks: list[list[int]],
        profile: ClusterProfile,
        script: ArrayScript,
        text: str,
    ) -> SubmissionRecord:
        plan = array.plan
        return SubmissionRecord(
            tag=tag,
            status=SubmissionState.INTENT,
            executor=self.executor.name,
            experiment=plan.path,
            experiment_key=self.ledger.experiment_key(plan.path),
            experiment_hash=plan.file.content_hash,
            experiment_data=plan.file.data,
            keys=list(plan.keys),
            runs=plan.runs,
            tasks=tasks,
            resources={
                **profile.sbatch_options(),
                "time": array.resources.time,
                "mem-per-cpu": array.resources.mem_per_cpu,
            },
            script_path=str(self.ledger.run_dir(tag).script),
            task_file=script.task_file,
            log_dir=script.log_dir,
            script=text,
            git=self._git_state(),
            host=socket.gethostname(),
            pid=os.getpid(),
            created=now(),
        )

    def _mark_running(self, record: SubmissionRecord) -> None:
        record.status = SubmissionState.RUNNING
        self.ledger.write(record)

    def _record(self, record: SubmissionRecord, outcome: Outcome, submission: Submission, report: SubmitReport) -> None:
        """The executor's outcome into the ledger and the report; then stop the submit if it failed."""
        record.status, record.job_id, record.note = outcome.state, outcome.job_id, outcome.note
        if outcome.cut_short:
            record.cancelled_tasks = sorted(set(record.cancelled_tasks) | set(outcome.cut_short))
        record.task_ends.update({str(task): end for task, end in outcome.task_ends.items()})
        self.ledger.write(record)
        if outcome.deferred:
            report.outcome(record.experiment).not_yet_submitted |= submission.indices
            report.notes.append(f"submit limit reached: {len(submission.indices)} indices wait for a later submit")
            return
        submission.job_id = outcome.job_id
        submission.interrupted = outcome.interrupted
        submission.failed_indices = _failed_indices(record, outcome.task_exit_codes)
        submission.unfinished = IndexSet.of(sorted(i for task in outcome.cut_short for i in record.tasks[task]))
        if outcome.failure is None or outcome.job_id is not None:
            report.submissions.append(submission)
        if outcome.failure is not None:
            raise SubmitFailed(_so_far(report, outcome.failure), report) from outcome.cause
        if outcome.interrupted:
            raise KeyboardInterrupt

    def _script(self, array: ArrayPlan, tag: str) -> tuple[ClusterProfile, ArrayScript, str]:
        """The profile with these resources, the script's data and its rendered text (UserError if bad)."""
        profile = self._profile_with(array.resources)
        script = ArrayScript(
            tag=tag,
            project_root=str(self.ledger.root),
            experiment=array.plan.path,
            task_file=str(self.ledger.run_dir(tag).task_file),
            log_dir=os.path.join(self._log_base(array.plan), tag),
            num_tasks=array.num_tasks,
            throttle=profile.throttle,
            parallel=profile.parallel,
            sbatch_options=profile.sbatch_options(),  # the same script runs locally: directives are comments there
            setup=profile.setup,
            command=profile.command,
        )
        return profile, script, render_script(script, self.template_text, profile.template)

    def _profile_with(self, resources: Resources) -> ClusterProfile:
        """The profile with these resources, validated once per command (a submit has thousands of arrays)."""
        if resources not in self._profiles:
            self._profiles[resources] = self.profile.with_resources(resources.time, resources.mem_per_cpu)
        return self._profiles[resources]

    def _log_base(self, plan: ExperimentPlan) -> str:
        """`<log_path>/<name>`: each submission's logs go in a directory named by its tag below it."""
        if plan.path not in self._log_bases:
            self._log_bases[plan.path] = str(plan.config.log_dir.absolute() / plan.name)
        return self._log_bases[plan.path]

    def _git_state(self) -> dict[str, Any]:
        if self._git is None:
            self._git = git_state(self.ledger.root)
        return dict(self._git)


def _failed_indices(record: SubmissionRecord, task_exit_codes: dict[int, int]) -> IndexSet:
    """The indices of tasks that did not exit 0 whose own status file is not 0 (or missing: stopped)."""
    failed = []
    for task, code in task_exit_codes.items():
        if code == 0:
            continue
        for index in record.tasks[task]:
            try:
                own = int(Path(record.log_dir, f"{index}.status").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                own = None
            if own != 0:
                failed.append(index)
    return IndexSet.of(sorted(failed))


def _left_over(report: SubmitReport, arrays: Sequence[ArrayPlan]) -> dict[str, IndexSet]:
    """Per experiment, the indices an interruption left unsent or unfinished."""
    left: dict[str, list[IndexSet]] = {}
    for s in report.submissions:
        left.setdefault(s.experiment, []).append(s.unfinished)
    for array in arrays:
        left.setdefault(array.plan.path, []).append(array.indices)
    return {experiment: union_all(sets) for experiment, sets in left.items()}


def _orphaned_local_run(record: SubmissionRecord) -> bool:
    return (
        record.executor == "local"
        and record.status in (SubmissionState.RUNNING, SubmissionState.INTENT)
        and record.host == socket.gethostname()
        and not pid_alive(record.pid)
    )


def _unsettled_on_slurm(record: SubmissionRecord) -> bool:
    return (
        record.executor == "slurm"
        and record.status in (SubmissionState.INTENT, SubmissionState.UNCONFIRMED)
        and record.salvaged_from is None  # rebuilt from a damaged record: read-only
    )


def _slurm_time(iso: str, hours_before: int) -> str:
    """An ISO UTC time, moved back, in the local `YYYY-MM-DDTHH:MM:SS` form sacct -S reads."""
    moment = datetime.fromisoformat(iso) - timedelta(hours=hours_before)
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def recorded_resources(record: SubmissionRecord) -> Resources | None:
    time, memory = record.resources.get("time"), record.resources.get("mem-per-cpu")
    if isinstance(time, str) and isinstance(memory, str):
        return Resources(time, memory)
    return None


def _so_far(report: SubmitReport, problem: str) -> str:
    done = report.submissions
    if not done:
        return f"{problem}; nothing was submitted"
    parts = [f"{s.experiment} job {s.job_id} indices {s.indices.text()}" for s in done]
    return f"{problem}; submitted before that: {'; '.join(parts)}"


# -- cost and right-sizing (pure) ------------------------------------------------------------------


def _task_sizes(array: ArrayPlan) -> Iterator[int]:
    full, rest = divmod(len(array.indices), array.per_task)
    return itertools.chain(itertools.repeat(array.per_task, full), [rest] if rest else [])


def planned_cost(
    arrays: Sequence[ArrayPlan], profile: ClusterProfile, index_seconds: Mapping[str, float] | None = None
) -> CostSummary:
    """What these arrays cost at their time limits (the upper bound), and, where earlier tasks of an
    experiment ran (`index_seconds`: its measured seconds per index of a task), what they should cost."""
    measured = index_seconds or {}
    upper = expected = Cost()
    for array in arrays:
        resources = array.resources
        request = ArrayRequest.of(
            array.num_tasks, resources.time, resources.mem_per_cpu, profile.cpus_per_task, profile.gpus
        )
        bound = cost([request])
        upper += bound
        seconds = measured.get(array.plan.path)
        # parallel 1: the measured share already holds the tasks' parallelism, as they are sized alike
        expected += bound if seconds is None else expected_cost(request, _task_sizes(array), seconds)
    known = any(a.plan.path in measured for a in arrays)
    indices = sum(len(a.indices) for a in arrays)
    return CostSummary(upper, indices, expected if known else None, profile.allocation, profile.confirm_above)


def right_sized(
    base: Resources, suggestion: Suggestion, limits: PartitionLimits | None, cpus_per_task: int
) -> Resources:
    """The suggested time and memory per CPU where measured (else the base), capped by the partition's limits."""
    time, memory = base.time, base.mem_per_cpu
    if suggestion.time_seconds is not None:
        caps = [] if limits is None or limits.max_time_seconds is None else [limits.max_time_seconds]
        time = format_time(min([suggestion.time_seconds, *caps]))
    if suggestion.mem_per_cpu_mb is not None:
        caps = []
        if limits is not None and limits.max_mem_per_cpu_mb is not None:
            caps.append(limits.max_mem_per_cpu_mb)
        if limits is not None and limits.max_mem_per_node_mb is not None:
            caps.append(limits.max_mem_per_node_mb // max(1, cpus_per_task))
        memory = format_memory(min([suggestion.mem_per_cpu_mb, *caps]))
    return Resources(time, memory)


def right_size_note(usage: ExperimentUsage, base: Resources, sized: Resources) -> str:
    """`right-size: exp: time 0:07:00 -> 0:01:00, mem/cpu 4000M -> 512M (from 4 completed tasks)`."""
    change = f"time {base.time} -> {sized.time}, mem/cpu {base.mem_per_cpu} -> {sized.mem_per_cpu}"
    notes = "".join(f"; {note}" for note in usage.suggestion.notes)
    return f"right-size: {usage.experiment}: {change} (from {len(usage.completed)} completed task(s){notes})"

"""Submission: from plans to job arrays of exactly the indices that are missing or failed.

    plan -> state (done / running / pending / failed / missing)
         -> select (missing + failed, not given up) -> group by resources (escalation)
         -> bundle into tasks -> split into arrays within the cluster's limits
         -> for each array: intent record, task file + script, sbatch (or local run), record

The pure steps (selection, grouping, splitting) are functions of data; the I/O is at the end.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.errors import EnvironmentFailure, SlurmError, SlurmRejected, SlurmUnavailable, SubmitLimitReached
from orchestrator.executors import LocalExecutor, SlurmExecutor
from orchestrator.ledger import (
    Ledger,
    Status,
    SubmissionRecord,
    atomic_write_text,
    fault_point,
    git_state,
    now,
    pid_alive,
)
from orchestrator.planner import SNAPSHOT, ExperimentPlan
from orchestrator.profile import ClusterProfile
from orchestrator.render import ArrayScript, load_template, render_script
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import (
    PartitionLimits,
    QueuedTask,
    format_memory,
    format_ranges,
    format_time,
    parse_memory,
    parse_time,
)
from orchestrator.state import FAILED, MISSING, ExperimentStatus, IndexStatus, gather

# -- pure steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    time: str
    mem_per_cpu: str


def select_indices(
    status: ExperimentStatus, max_attempts: int, retry_given_up: bool
) -> tuple[list[IndexStatus], list[int]]:
    """(indices to submit, indices given up): missing and failed ones, except those out of attempts."""
    chosen, given_up = [], []
    for s in status.indices:
        if s.state == MISSING:
            chosen.append(s)
        elif s.state == FAILED:
            if s.attempts >= max_attempts and not retry_given_up:
                given_up.append(s.index)
            else:
                chosen.append(s)
    return chosen, given_up


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
    time, memory = base.time, base.mem_per_cpu
    if reason_kind == "TIMEOUT":
        seconds = math.ceil(max(parse_time(last.time), parse_time(base.time)) * profile.time_factor)
        if limits is not None and limits.max_time_seconds is not None:
            seconds = min(seconds, limits.max_time_seconds)
        time = format_time(seconds)
    else:
        megabytes = math.ceil(
            max(parse_memory(last.mem_per_cpu), parse_memory(base.mem_per_cpu)) * profile.memory_factor
        )
        caps = []
        if limits is not None and limits.max_mem_per_cpu_mb is not None:
            caps.append(limits.max_mem_per_cpu_mb)
        if limits is not None and limits.max_mem_per_node_mb is not None:
            caps.append(limits.max_mem_per_node_mb // max(1, profile.cpus_per_task))
        memory = format_memory(min([megabytes, *caps]))
    return Resources(time, memory)


def bundle(indices: Sequence[int], per_task: int) -> list[list[int]]:
    """Consecutive indices, `per_task` to an array task."""
    ordered = sorted(indices)
    return [ordered[k : k + per_task] for k in range(0, len(ordered), per_task)]


def split_arrays(tasks: Sequence[list[int]], max_tasks: int) -> list[list[list[int]]]:
    """Arrays of at most `max_tasks` tasks: task ids 0..k-1 stay below MaxArraySize."""
    return [list(tasks[k : k + max_tasks]) for k in range(0, len(tasks), max_tasks)]


def fit_capacity(arrays: Sequence[list[list[int]]], capacity: int | None) -> tuple[list[list[list[int]]], list[int]]:
    """Arrays cut to the free submit capacity (each task is a job to Slurm); the indices left over."""
    if capacity is None:
        return list(arrays), []
    fitted, left = [], []
    for array in arrays:
        take = max(0, min(len(array), capacity))
        if take:
            fitted.append(array[:take])
        left.extend(i for task in array[take:] for i in task)
        capacity -= take
    return fitted, left


# -- results -----------------------------------------------------------------------------------


@dataclass
class Submission:
    experiment: str
    tag: str
    job_id: str | None
    indices: list[int]
    tasks: int
    script: str  # path of the rendered script (the script text for a dry run)
    resources: Resources
    executor: str
    script_text: str = ""
    failed_indices: list[int] = field(default_factory=list)  # local: indices whose exit code was not 0
    interrupted: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "job_id": self.job_id,
            "indices": format_ranges(self.indices),
            "tasks": self.tasks,
            "script": self.script,
            "tag": self.tag,
            "executor": self.executor,
            "time": self.resources.time,
            "mem_per_cpu": self.resources.mem_per_cpu,
        }


@dataclass
class ExperimentOutcome:
    experiment: str
    skipped: dict[str, int]  # done / running / pending counts left alone
    given_up: list[int] = field(default_factory=list)
    not_yet_submitted: list[int] = field(default_factory=list)  # over the submit limit: for a later run


@dataclass
class SubmitReport:
    dry_run: bool
    executor: str
    submissions: list[Submission] = field(default_factory=list)
    outcomes: list[ExperimentOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def submitted_indices(self) -> int:
        return sum(len(s.indices) for s in self.submissions)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "executor": self.executor,
            "submissions": [s.to_json() for s in self.submissions],
            "experiments": [
                {
                    "experiment": o.experiment,
                    "skipped": o.skipped,
                    "given_up": format_ranges(o.given_up),
                    "not_yet_submitted": format_ranges(o.not_yet_submitted),
                }
                for o in self.outcomes
            ],
            "notes": self.notes,
        }


class SubmitFailed(EnvironmentFailure):
    """Slurm failed mid-way: the message says what was and was not submitted (exit 1)."""

    def __init__(self, message: str, report: SubmitReport) -> None:
        self.report = report
        super().__init__(message)


# -- the I/O -----------------------------------------------------------------------------------


class _CachedQueue:
    """One `squeue` per command, shared by state gathering and the capacity check."""

    def __init__(self, commands: SlurmCommands) -> None:
        self.commands = commands
        self._queue: list[QueuedTask] | None = None

    @property
    def accounting_problem(self) -> str | None:
        return self.commands.accounting_problem

    def squeue_me(self) -> list[QueuedTask]:
        if self._queue is None:
            self._queue = self.commands.squeue_me()
        return self._queue

    def sacct(self, job_ids: Sequence[str]):
        return self.commands.sacct(job_ids)


@dataclass
class SubmitOptions:
    dry_run: bool = False
    escalate: bool | None = None  # None: as the profile says
    retry_given_up: bool = False
    local_parallel: int | None = None


class Submitter:
    def __init__(
        self,
        ledger: Ledger,
        profile: ClusterProfile,
        executor: SlurmExecutor | LocalExecutor,
        options: SubmitOptions | None = None,
    ) -> None:
        self.ledger = ledger
        self.profile = profile
        self.executor = executor
        self.options = options or SubmitOptions()
        self.slurm = _CachedQueue(executor.commands) if isinstance(executor, SlurmExecutor) else None
        self.template_text = load_template(profile.template)
        self._git: dict[str, Any] | None = None  # git_state: two git runs, once per submit, not per array
        # read the Slurm settings now: a bad ORCHESTRATOR_SLURM_* is bad input, found before any write
        self._state_reader = self.slurm if self.slurm is not None else _available(SlurmCommands.from_environment())

    def check(self, plans: Sequence[ExperimentPlan]) -> None:
        """Find bad input before anything is written or submitted: render each experiment's script once.

        The template, the experiment paths (a log directory that `--output` cannot hold) and the
        profile's options are all in the script; `cmd_submit` calls this before taking the lock, and
        `submit` again, so no experiment is refused after an earlier one went out.
        """
        for plan in plans:
            self._script(plan, "orch-check-0000000000", [[0]], Resources(self.profile.time, self.profile.mem_per_cpu))

    # -- entry ---------------------------------------------------------------------------------

    def submit(self, plans: Sequence[ExperimentPlan]) -> SubmitReport:
        report = SubmitReport(dry_run=self.options.dry_run, executor=self.executor.name)
        self.check(plans)
        try:
            if not self.options.dry_run:
                self._reconcile(plans, report)
            statuses = gather(plans, self.ledger, self._slurm_for_state(), self.profile.completion_marker)
            report.notes.extend(dict.fromkeys(self.ledger.problems))
            report.notes.extend(dict.fromkeys(n for s in statuses if s.results for n in s.results.notes))  # unknown
            # the limits (scontrol, sacctmgr, squeue for the free capacity) too: nothing has gone out yet
            planned = self._plan_arrays(statuses, report)
        except SlurmError as e:
            # without the queue we cannot tell pending from missing: guessing could double-submit
            raise SubmitFailed(f"cannot read Slurm's state ({e}); nothing was submitted", report) from e
        for plan, resources, arrays in planned:
            for array in arrays:
                self._submit_array(plan, resources, array, report)
        return report

    def _reconcile(self, plans: Sequence[ExperimentPlan], report: SubmitReport) -> None:
        """Settle what a killed submit left open, before anything is resubmitted.

        An intent (written before sbatch) or an unconfirmed sbatch is looked up by its unique tag,
        first in squeue, then in sacct; a local run whose process is gone was interrupted.
        """
        host = socket.gethostname()
        open_slurm: list[SubmissionRecord] = []
        for plan in plans:
            for record in self.ledger.records(self.ledger.experiment_key(plan.path)):
                if record.executor == "local" and record.status in (Status.RUNNING, Status.INTENT):
                    if record.host == host and not pid_alive(record.pid):
                        record.status, record.note = Status.INTERRUPTED, "the local run's process ended unrecorded"
                        self.ledger.write(record)
                elif (
                    record.executor == "slurm"
                    and record.status in (Status.INTENT, Status.UNCONFIRMED)
                    and record.salvaged_from is None  # rebuilt from a damaged record: read-only
                ):
                    open_slurm.append(record)
        if not open_slurm:
            return
        commands = self.slurm.commands if self.slurm is not None else SlurmCommands.from_environment()
        if not commands.available():
            report.notes.append(f"{len(open_slurm)} unconfirmed Slurm submission(s); Slurm is not reachable here")
            return
        queue = self.slurm.squeue_me() if self.slurm is not None else commands.squeue_me()  # shared with gather
        found = {t.name: t.array_job_id for t in queue}
        missing = [r.tag for r in open_slurm if r.tag not in found]
        if missing:
            since = min(r.created for r in open_slurm)
            found.update(commands.jobs_named(missing, _slurm_time(since, hours_before=24)))
        for record in open_slurm:
            job_id = found.get(record.tag)
            if job_id is not None:
                record.status, record.job_id = Status.SUBMITTED, job_id
                record.note = "reconciled: found by its tag after an interrupted submit"
            else:
                record.status = Status.REJECTED
                record.note = "reconciled: no job carries its tag, so sbatch never created one" + (
                    f" (no accounting to confirm: {commands.accounting_problem})" if commands.accounting_problem else ""
                )
            self.ledger.write(record)
            report.notes.append(f"{record.tag}: {record.note}" + (f", job {job_id}" if job_id else ""))

    def _slurm_for_state(self) -> _CachedQueue | SlurmCommands | None:
        # local runs can still be asked about Slurm jobs recorded earlier, where Slurm exists
        return self._state_reader

    # -- planning arrays -------------------------------------------------------------------------

    def _plan_arrays(
        self, statuses: Sequence[ExperimentStatus], report: SubmitReport
    ) -> list[tuple[ExperimentPlan, Resources, list[list[list[int]]]]]:
        profile = self.profile
        escalate = profile.escalate if self.options.escalate is None else self.options.escalate
        base = Resources(profile.time, profile.mem_per_cpu)
        limits = self._partition_limits() if escalate else None
        max_tasks = self._max_array_tasks()
        capacity = self._free_capacity()
        planned = []
        for status in statuses:
            chosen, given_up = select_indices(status, profile.max_attempts, self.options.retry_given_up)
            counts = status.counts()
            outcome = ExperimentOutcome(
                status.plan.path,
                {k: counts[k] for k in ("done", "running", "pending")},
                given_up=given_up,
            )
            report.outcomes.append(outcome)
            groups: dict[Resources, list[int]] = {}
            for s in chosen:
                last = _recorded_resources(s)
                resources = escalated(base, last, s.reason_kind, profile, limits) if escalate else base
                groups.setdefault(resources, []).append(s.index)
            for resources, indices in sorted(groups.items(), key=lambda kv: kv[1][0]):
                arrays = split_arrays(bundle(indices, profile.indices_per_task), max_tasks)
                arrays, left = fit_capacity(arrays, capacity)
                if capacity is not None:
                    capacity -= sum(len(a) for a in arrays)
                outcome.not_yet_submitted.extend(left)
                if arrays:
                    planned.append((status.plan, resources, arrays))
        return planned

    def _max_array_tasks(self) -> int:
        """Tasks per array: task ids 0..k-1 must stay below MaxArraySize and max_array_tasks."""
        caps = [self.profile.max_array_tasks] if self.profile.max_array_tasks else []
        if self.slurm is not None:
            max_array_size, max_array_tasks = self.slurm.commands.array_limits()
            caps.append(max_array_size)
            if max_array_tasks:
                caps.append(max_array_tasks)
        return min(caps) if caps else 1_000_000_000

    def _free_capacity(self) -> int | None:
        """How many more jobs (array tasks) Slurm accepts from us now; None for no limit."""
        if self.slurm is None:
            return None
        limits = [n for n in (self.profile.max_submit, self.slurm.commands.max_submit_jobs()) if n is not None]
        if not limits:
            return None
        return max(0, min(limits) - len(self.slurm.squeue_me()))

    def _partition_limits(self) -> PartitionLimits | None:
        if self.slurm is None:
            return None
        return self.slurm.commands.partition_limits(self.profile.partition)

    # -- one array -------------------------------------------------------------------------------

    def _submit_array(
        self, plan: ExperimentPlan, resources: Resources, tasks: list[list[int]], report: SubmitReport
    ) -> None:
        ledger = self.ledger
        key = ledger.experiment_key(plan.path)
        tag = ledger.new_tag(key)
        run_dir = ledger.run_dir(tag)
        profile, script, text = self._script(plan, tag, tasks, resources)
        log_dir = Path(script.log_dir)
        indices = [i for task in tasks for i in task]
        submission = Submission(
            plan.path, tag, None, indices, len(tasks), str(run_dir / "job.sh"), resources, self.executor.name, text
        )
        if self.options.dry_run:
            report.submissions.append(submission)
            return
        record = SubmissionRecord(
            tag=tag,
            status=Status.INTENT,
            executor=self.executor.name,
            experiment=plan.path,
            experiment_key=key,
            experiment_hash=plan.file.content_hash,
            experiment_data=plan.file.data,
            keys=list(plan.keys),
            tasks=tasks,
            resources={**profile.sbatch_options(), "time": resources.time, "mem-per-cpu": resources.mem_per_cpu},
            script_path=submission.script,
            task_file=script.task_file,
            log_dir=script.log_dir,
            script=text,
            git=self._git_state(),
            host=socket.gethostname(),
            pid=os.getpid(),
            created=now(),
        )
        try:
            atomic_write_text(Path(script.task_file), "".join(" ".join(map(str, t)) + "\n" for t in tasks))
            atomic_write_text(run_dir / "job.sh", text)
            # what the tasks run, even if the file is edited while they wait (see planner.load_experiment)
            snapshot = {"experiment": plan.path, "hash": plan.file.content_hash, "data": plan.file.data}
            atomic_write_text(run_dir / SNAPSHOT, json.dumps(snapshot))
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SubmitFailed(_so_far(report, f"cannot write the job files in {run_dir}: {e}"), report) from e
        ledger.write(record)  # the intent: from here a crash is reconciled by the tag
        fault_point("before-sbatch")
        if isinstance(self.executor, SlurmExecutor):
            self._sbatch(record, submission, report)
        else:
            self._run_locally(record, submission, report, profile.cpus_per_task)

    def _script(
        self, plan: ExperimentPlan, tag: str, tasks: list[list[int]], resources: Resources
    ) -> tuple[ClusterProfile, ArrayScript, str]:
        """The profile with these resources, the script's data and its rendered text (UserError if bad)."""
        run_dir = self.ledger.run_dir(tag)
        profile = self.profile.with_resources(time=resources.time, mem_per_cpu=resources.mem_per_cpu)
        script = ArrayScript(
            tag=tag,
            project_root=str(self.ledger.root),
            experiment=plan.path,
            task_file=str(run_dir / "tasks.txt"),
            log_dir=str(plan.config.log_dir.absolute() / plan.name / tag),
            num_tasks=len(tasks),
            throttle=profile.throttle,
            parallel=profile.parallel,
            sbatch_options=profile.sbatch_options(),  # the same script runs locally: directives are comments there
            setup=profile.setup,
            command=profile.command,
        )
        return profile, script, render_script(script, self.template_text, profile.template)

    def _git_state(self) -> dict[str, Any]:
        if self._git is None:
            self._git = git_state(self.ledger.root)
        return dict(self._git)

    def _sbatch(self, record: SubmissionRecord, submission: Submission, report: SubmitReport) -> None:
        assert isinstance(self.executor, SlurmExecutor)
        try:
            job_id = self.executor.submit(Path(record.script_path))
        except SubmitLimitReached as e:
            record.status, record.note = Status.REJECTED, str(e)
            self.ledger.write(record)
            outcome = next(o for o in report.outcomes if o.experiment == record.experiment)
            outcome.not_yet_submitted.extend(record.indices)
            report.notes.append(f"submit limit reached: {len(record.indices)} indices wait for a later submit")
            return
        except SlurmRejected as e:
            record.status, record.note = Status.REJECTED, str(e)
            self.ledger.write(record)
            raise SubmitFailed(_so_far(report, f"sbatch refused {record.experiment}: {e}"), report) from e
        except SlurmUnavailable as e:
            found = self._find_by_tag(record.tag)
            if found is not None:
                record.status, record.job_id, record.note = Status.SUBMITTED, found, f"confirmed by tag after: {e}"
                self.ledger.write(record)
                submission.job_id = found
                report.submissions.append(submission)
            else:
                record.status, record.note = Status.UNCONFIRMED, str(e)
                self.ledger.write(record)
            raise SubmitFailed(
                _so_far(report, f"Slurm did not answer for {record.experiment} (tag {record.tag}): {e}"), report
            ) from e
        except SlurmError as e:
            record.status, record.note = Status.REJECTED, str(e)
            self.ledger.write(record)
            raise SubmitFailed(_so_far(report, f"sbatch failed for {record.experiment}: {e}"), report) from e
        fault_point("after-sbatch")
        record.status, record.job_id = Status.SUBMITTED, job_id
        self.ledger.write(record)
        submission.job_id = job_id
        report.submissions.append(submission)

    def _find_by_tag(self, tag: str) -> str | None:
        """After an unanswered sbatch: the job id if a job with our tag exists, else None."""
        assert self.slurm is not None
        try:
            queue = self.slurm.commands.squeue_me()
        except SlurmError:
            return None
        for task in queue:
            if tag in (task.name, task.comment):
                return task.array_job_id
        return None

    def _run_locally(
        self, record: SubmissionRecord, submission: Submission, report: SubmitReport, cpus_per_task: int
    ) -> None:
        assert isinstance(self.executor, LocalExecutor)
        record.status = Status.RUNNING
        self.ledger.write(record)
        outcome = self.executor.run(
            Path(record.script_path),
            num_tasks=len(record.tasks),
            job_id=record.tag,
            job_name=record.tag,
            cwd=self.ledger.root,
            log_dir=Path(record.log_dir),
            cpus_per_task=cpus_per_task,
        )
        record.status = Status.INTERRUPTED if outcome.interrupted else Status.FINISHED
        if outcome.interrupted:
            # Tasks the interruption stopped or never started were not attempts, as with `cancel`:
            # their indices are missing again, and max_attempts never gives them up.
            cut_short = set(range(len(record.tasks))) - set(outcome.task_exit_codes)
            record.cancelled_tasks = sorted(set(record.cancelled_tasks) | cut_short)
        self.ledger.write(record)
        submission.interrupted = outcome.interrupted
        submission.failed_indices = [
            i for task_id, code in outcome.task_exit_codes.items() if code != 0 for i in record.tasks[task_id]
        ]
        report.submissions.append(submission)
        if outcome.interrupted:
            raise KeyboardInterrupt


def _available(commands: SlurmCommands) -> SlurmCommands | None:
    return commands if commands.available() else None


def _slurm_time(iso: str, hours_before: int) -> str:
    """An ISO UTC time, moved back, in the local `YYYY-MM-DDTHH:MM:SS` form sacct -S reads."""
    moment = datetime.fromisoformat(iso) - timedelta(hours=hours_before)
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def _recorded_resources(status: IndexStatus) -> Resources | None:
    if status.last is None:
        return None
    res = status.last.record.resources
    time, memory = res.get("time"), res.get("mem-per-cpu")
    if isinstance(time, str) and isinstance(memory, str):
        return Resources(time, memory)
    return None


def _so_far(report: SubmitReport, problem: str) -> str:
    done = report.submissions
    if not done:
        return f"{problem}; nothing was submitted"
    parts = [f"{s.experiment} job {s.job_id} indices {format_ranges(s.indices)}" for s in done]
    return f"{problem}; submitted before that: {'; '.join(parts)}"

"""Usage: what a sweep's finished tasks used against what they asked for, and a right-sized request.

Slurm's accounting knows, per array task, Elapsed against Timelimit, MaxRSS against ReqMem, and
TotalCPU against Elapsed x AllocCPUS; `seff` shows that one job at a time. Here one batched sacct
(`SlurmCommands.sacct_usage`) becomes per-experiment distributions, the CPU-hours wasted, the
parameter values whose tasks differ a lot, and a suggested `time` and `mem_per_cpu`.

Everything is pure and takes plain data: usage records, the map (array job id, task id) -> indices
from the ledger, and (for bundles, where one task runs several indices) per-index seconds from the
logs' start and end stamps. Only what ran is held, never one object per planned index.

Caveat measured on the test cluster: jobacct_gather samples MaxRSS every JobAcctGatherFrequency
seconds (30 by default) and takes no sample when a step ends, so a task shorter than the interval
has no MaxRSS at all, and a peak shorter than it can be missed. `sbatch: {acctg-freq: task=N}` in a
profile asks for a shorter interval.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import EnvironmentFailure, UserError
from orchestrator.ledger import Ledger, SubmissionRecord
from orchestrator.planner import ExperimentPlan
from orchestrator.slurm import Slurm
from orchestrator.slurm_formats import UsageRecord, format_memory, format_time
from orchestrator.state import identities_of, translator
from orchestrator.sweep import Sweep

# sacct states of a task that has ended (others: PENDING, RUNNING, REQUEUED, SUSPENDED, ...)
END_STATES = frozenset(
    {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
)
STATISTICS = ("max", "p95")
DEFAULT_HEADROOM = 1.25
DIFFERS = 2.0  # a parameter's values "differ a lot" when their medians differ by this factor
_LARGE_MB = 10 * 1024  # above this, suggested memory is rounded up to whole gigabytes


@dataclass(frozen=True)
class TaskUsage:
    """One finished array task: its request and what it used (MaxRSS: the largest of its steps')."""

    job_id: str
    array_job_id: str
    task_id: int | None
    state: str
    elapsed_seconds: int
    time_limit_seconds: int | None
    total_cpu_seconds: float
    cpus: int
    mem_per_cpu_mb: float | None
    max_rss_mb: float | None  # None: no step was sampled

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.array_job_id, self.task_id)

    @property
    def cpu_hours(self) -> float:
        """Allocated core time: what the allocation is charged."""
        return self.elapsed_seconds * self.cpus / 3600

    @property
    def requested_cpu_hours(self) -> float | None:
        return None if self.time_limit_seconds is None else self.time_limit_seconds * self.cpus / 3600

    @property
    def cpu_efficiency(self) -> float | None:
        """TotalCPU / (Elapsed x AllocCPUS), as seff computes it."""
        core_seconds = self.elapsed_seconds * self.cpus
        return self.total_cpu_seconds / core_seconds if core_seconds else None

    @property
    def requested_mem_mb(self) -> float | None:
        return None if self.mem_per_cpu_mb is None else self.mem_per_cpu_mb * self.cpus


def task_usage(records: Iterable[UsageRecord]) -> list[TaskUsage]:
    """Finished tasks from sacct's task and step lines: the task line's figures, its steps' largest MaxRSS."""
    tasks: dict[tuple[str, int | None], UsageRecord] = {}
    rss: dict[tuple[str, int | None], float] = {}
    for record in records:
        key = (record.array_job_id, record.task_id)
        if record.step is None and (key not in tasks or record.state != "PENDING"):
            tasks[key] = record  # sacct may list a running task again inside a pending `7_[2-3]`
        if record.max_rss_mb is not None and record.max_rss_mb > rss.get(key, -1.0):
            rss[key] = record.max_rss_mb
    out = []
    for key, r in tasks.items():
        if r.state not in END_STATES:
            continue
        out.append(
            TaskUsage(
                r.job_id,
                r.array_job_id,
                r.task_id,
                r.state,
                r.elapsed_seconds or 0,
                r.time_limit_seconds,
                r.total_cpu_seconds or 0.0,
                r.alloc_cpus or 1,
                r.mem_per_cpu_mb,
                rss.get(key),
            )
        )
    return out


# -- distributions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """min, median, p95 (nearest rank) and max of some values."""

    min: float
    median: float
    p95: float
    max: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution | None:
        ordered = sorted(values)
        if not ordered:
            return None
        rank = max(1, math.ceil(0.95 * len(ordered)))
        return cls(ordered[0], statistics.median(ordered), ordered[rank - 1], ordered[-1], len(ordered))

    def get(self, statistic: str) -> float:
        return {"max": self.max, "p95": self.p95, "median": self.median, "min": self.min}[statistic]

    def to_json(self, digits: int = 1) -> dict[str, float]:
        return {k: round(getattr(self, k), digits) for k in ("min", "median", "p95", "max")}


# -- right-sizing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A request for the next submission; None where nothing was measured."""

    time_seconds: int | None
    mem_per_cpu_mb: int | None
    notes: tuple[str, ...] = ()

    @property
    def time(self) -> str | None:
        return None if self.time_seconds is None else format_time(self.time_seconds)

    @property
    def mem_per_cpu(self) -> str | None:
        return None if self.mem_per_cpu_mb is None else format_memory(self.mem_per_cpu_mb)

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "mem_per_cpu": self.mem_per_cpu, "notes": list(self.notes)}


def round_up_time(seconds: float) -> int:
    """Up to whole minutes, Slurm's granularity for time limits (at least one minute)."""
    return max(1, math.ceil(seconds / 60 - 1e-9)) * 60


def round_up_memory(megabytes: float) -> int:
    """Up to whole megabytes, or whole gigabytes above 10 GB."""
    whole = max(1, math.ceil(megabytes - 1e-9))
    return whole if whole <= _LARGE_MB else math.ceil(whole / 1024) * 1024


def _check_sizing(headroom: float, statistic: str) -> None:
    if statistic not in STATISTICS:
        raise UserError(f"right-sizing statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not 1.0 <= headroom < math.inf:
        raise UserError(f"right-sizing headroom must be a finite number of at least 1, not {headroom!r}")


def suggest(tasks: Sequence[TaskUsage], headroom: float = DEFAULT_HEADROOM, statistic: str = "max") -> Suggestion:
    """Time and memory per CPU for the next submission of these tasks.

    The `statistic` (max or p95) of what COMPLETED tasks used, times `headroom`, rounded up to
    Slurm's granularity; never below `headroom` times the limit that a TIMEOUT or OUT_OF_MEMORY
    attempt ran out of (it needed more than that).
    """
    _check_sizing(headroom, statistic)
    completed = [t for t in tasks if t.state == "COMPLETED"]
    notes: list[str] = []
    elapsed = Distribution.of(t.elapsed_seconds for t in completed)
    time_floor = max((t.time_limit_seconds or 0 for t in tasks if t.state == "TIMEOUT"), default=0)
    time_need = max(elapsed.get(statistic) if elapsed else 0, time_floor) * headroom
    if time_floor and (elapsed is None or time_floor > elapsed.get(statistic)):
        notes.append(f"time: at least {headroom:g} x the {format_time(time_floor)} that a TIMEOUT ran out of")

    per_cpu = Distribution.of(t.max_rss_mb / t.cpus for t in completed if t.max_rss_mb is not None)
    mem_floor, why = _memory_floor(tasks)
    mem_need = max(per_cpu.get(statistic) if per_cpu else 0, mem_floor) * headroom
    if mem_floor and (per_cpu is None or mem_floor > per_cpu.get(statistic)):
        notes.append(f"memory: at least {headroom:g} x the {format_memory(math.ceil(mem_floor))} per CPU {why}")
    unsampled = sum(1 for t in completed if t.max_rss_mb is None)
    if unsampled:
        notes.append(
            f"memory: {unsampled} of {len(completed)} completed task(s) have no MaxRSS (ended before Slurm's "
            "first sample, see JobAcctGatherFrequency)"
        )
    return Suggestion(
        round_up_time(time_need) if time_need else None,
        round_up_memory(mem_need) if mem_need else None,
        tuple(notes),
    )


def _memory_floor(tasks: Iterable[TaskUsage]) -> tuple[float, str]:
    """Memory per CPU that a failed attempt needed: the request an OUT_OF_MEMORY exceeded, or what one
    that failed otherwise (a TIMEOUT, say) had already used."""
    floor, why = 0.0, ""
    for t in tasks:
        if t.state == "OUT_OF_MEMORY" and (t.mem_per_cpu_mb or 0) > floor:
            floor, why = t.mem_per_cpu_mb or 0, "that an OUT_OF_MEMORY ran out of"
        elif t.state != "COMPLETED" and t.max_rss_mb is not None and t.max_rss_mb / t.cpus > floor:
            floor, why = t.max_rss_mb / t.cpus, f"that a {t.state} task had used"
    return floor, why


# -- per experiment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    """The request of the latest submission measured (a resubmission starts from it)."""

    time_seconds: int | None
    mem_per_cpu_mb: float | None
    cpus: int

    def to_json(self) -> dict[str, Any]:
        mem = None if self.mem_per_cpu_mb is None else round(self.mem_per_cpu_mb, 1)
        return {"time_s": self.time_seconds, "mem_per_cpu_mb": mem, "cpus": self.cpus}


@dataclass(frozen=True)
class ExperimentUsage:
    """One experiment's finished tasks, summarised; `to_json` is `usage --json`'s per-experiment object."""

    experiment: str
    tasks: tuple[TaskUsage, ...]  # every finished task of the experiment
    task_indices: Mapping[tuple[str, int | None], Sequence[int]]
    index_seconds: Mapping[int, float]  # per index, for completed tasks (logs for bundles, else sacct)
    requested: Requested | None
    suggestion: Suggestion
    by_parameter: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def completed(self) -> list[TaskUsage]:
        return [t for t in self.tasks if t.state == "COMPLETED"]

    @property
    def states(self) -> dict[str, int]:
        return dict(sorted(Counter(t.state for t in self.tasks).items()))

    def distribution(self, what: str) -> Distribution | None:
        """Over COMPLETED tasks: elapsed_s, max_rss_mb, time_used, mem_used, cpu_efficiency or index_elapsed_s."""
        done = self.completed
        if what == "index_elapsed_s":
            return Distribution.of(self.index_seconds.values())
        values: dict[str, Iterable[float | None]] = {
            "elapsed_s": (t.elapsed_seconds for t in done),
            "max_rss_mb": (t.max_rss_mb for t in done),
            "time_used": (_ratio(t.elapsed_seconds, t.time_limit_seconds) for t in done),
            "mem_used": (_ratio(t.max_rss_mb, t.requested_mem_mb) for t in done),
            "cpu_efficiency": (t.cpu_efficiency for t in done),
        }
        return Distribution.of(v for v in values[what] if v is not None)

    @property
    def cpu_hours_used(self) -> float:
        return sum(t.cpu_hours for t in self.tasks)

    @property
    def cpu_hours_requested(self) -> float:
        return sum(t.requested_cpu_hours or t.cpu_hours for t in self.tasks)

    @property
    def cpu_hours_idle(self) -> float:
        """Allocated core time no process used (Elapsed x AllocCPUS - TotalCPU): the waste."""
        return sum(max(0.0, t.cpu_hours - t.total_cpu_seconds / 3600) for t in self.tasks)

    @property
    def mean_index_seconds(self) -> float | None:
        """The expected run time of one index, for the expected cost of the next submission."""
        seconds = self.index_seconds.values()
        return statistics.fmean(seconds) if seconds else None

    @property
    def index_share_seconds(self) -> float | None:
        """A completed task's Elapsed over its number of indices, on average: the expected cost of the
        next submission without reading logs (exact when its tasks are as big as before)."""
        shares = [t.elapsed_seconds / len(ix) for t in self.completed if (ix := self.task_indices.get(t.key))]
        return statistics.fmean(shares) if shares else None

    def to_json(self) -> dict[str, Any]:
        def dist(what: str, digits: int = 1) -> dict[str, float] | None:
            d = self.distribution(what)
            return None if d is None else d.to_json(digits)

        return {
            "experiment": self.experiment,
            "tasks": len(self.completed),
            "states": self.states,
            "elapsed_s": dist("elapsed_s"),
            "max_rss_mb": dist("max_rss_mb"),
            "max_rss_unsampled": sum(1 for t in self.completed if t.max_rss_mb is None),
            "time_used": dist("time_used", 3),
            "mem_used": dist("mem_used", 3),
            "cpu_efficiency": dist("cpu_efficiency", 3),
            "index_elapsed_s": dist("index_elapsed_s"),
            "requested": None if self.requested is None else self.requested.to_json(),
            "cpu_hours_used": round(self.cpu_hours_used, 4),
            "cpu_hours_requested": round(self.cpu_hours_requested, 4),
            "cpu_hours_idle": round(self.cpu_hours_idle, 4),
            "suggested": self.suggestion.to_json(),
            "by_parameter": self.by_parameter,
        }


def _ratio(used: float | None, requested: float | None) -> float | None:
    return None if used is None or not requested else used / requested


def _latest_request(tasks: Sequence[TaskUsage]) -> Requested | None:
    if not tasks:
        return None
    latest = max(tasks, key=lambda t: (int(t.array_job_id.split("+")[0]), t.task_id or 0))
    return Requested(latest.time_limit_seconds, latest.mem_per_cpu_mb, latest.cpus)


def summarize(
    experiment: str,
    usage: Iterable[UsageRecord | TaskUsage],
    task_indices: Mapping[tuple[str, int | None], Sequence[int]],
    *,
    sweep: Sweep | None = None,
    log_seconds: Mapping[int, float] | None = None,
    headroom: float = DEFAULT_HEADROOM,
    statistic: str = "max",
) -> ExperimentUsage:
    """One experiment's usage from a batched sacct that may hold other experiments' jobs too.

    `task_indices` maps (array job id, task id) to the experiment indices of this experiment's
    tasks (`task_indices_of`); tasks not in it are someone else's. `log_seconds` gives per-index run
    times from the logs (`index_seconds_from_logs`), used for tasks that ran several indices.
    With `sweep`, the parameters whose values differ a lot in time or memory are reported.
    """
    items = list(usage)
    records = [u for u in items if isinstance(u, UsageRecord)]
    tasks = task_usage(records) + [u for u in items if isinstance(u, TaskUsage)]
    mine = tuple(t for t in tasks if t.key in task_indices)
    seconds = _index_seconds(mine, task_indices, log_seconds or {})
    by_parameter = {} if sweep is None else differing_parameters(sweep, mine, task_indices, seconds)
    return ExperimentUsage(
        experiment,
        mine,
        {t.key: task_indices[t.key] for t in mine},
        seconds,
        _latest_request(mine),
        suggest(mine, headroom, statistic),
        by_parameter,
    )


def _index_seconds(
    tasks: Iterable[TaskUsage], task_indices: Mapping[tuple[str, int | None], Sequence[int]], logs: Mapping[int, float]
) -> dict[int, float]:
    """Per index of a COMPLETED task: the log's stamps when it shared its task, else the task's Elapsed."""
    out: dict[int, float] = {}
    for task in tasks:
        if task.state != "COMPLETED":
            continue
        indices = task_indices[task.key]
        if len(indices) == 1 and indices[0] not in logs:
            out[indices[0]] = float(task.elapsed_seconds)
            continue
        out.update((i, logs[i]) for i in indices if i in logs)
    return out


def differing_parameters(
    sweep: Sweep,
    tasks: Iterable[TaskUsage],
    task_indices: Mapping[tuple[str, int | None], Sequence[int]],
    index_seconds: Mapping[int, float],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per swept axis whose values' median time or memory differ by `DIFFERS` or more: the medians per value.

    Memory per index is known only for tasks that ran one index (a task's MaxRSS covers all of its).
    """
    rss = {}
    for task in tasks:
        indices = task_indices[task.key]
        if task.state == "COMPLETED" and task.max_rss_mb is not None and len(indices) == 1:
            rss[indices[0]] = task.max_rss_mb
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for position, axis in enumerate(sweep.axes):
        if len(axis.values) < 2:
            continue
        groups: dict[int, tuple[list[float], list[float]]] = {}
        for index in set(index_seconds) | set(rss):
            times, mems = groups.setdefault(sweep.choices(index)[position], ([], []))
            if index in index_seconds:
                times.append(index_seconds[index])
            if index in rss:
                mems.append(rss[index])
        table = {str(axis.values[v]): _medians(times, mems) for v, (times, mems) in sorted(groups.items())}
        if _differs(table, "elapsed_s_median") or _differs(table, "max_rss_mb_median"):
            out[axis.name] = table
    return out


def _medians(times: list[float], mems: list[float]) -> dict[str, Any]:
    return {
        "indices": max(len(times), len(mems)),
        "elapsed_s_median": round(statistics.median(times), 1) if times else None,
        "max_rss_mb_median": round(statistics.median(mems), 1) if mems else None,
    }


def _differs(table: Mapping[str, Mapping[str, Any]], key: str) -> bool:
    values = [row[key] for row in table.values() if row[key] is not None]
    if len(values) < 2:
        return False
    low, high = min(values), max(values)
    return high >= DIFFERS * low if low > 0 else high > 0


# -- inputs from the ledger and the logs -----------------------------------------------------------


class _Submission(Protocol):
    job_id: str | None
    tasks: list[list[int]]
    log_dir: str


def task_indices_of(records: Iterable[_Submission]) -> dict[tuple[str, int | None], list[int]]:
    """(array job id, task id) -> indices, from ledger records (those that reached Slurm)."""
    return {(r.job_id, task): list(ix) for r in records if r.job_id for task, ix in enumerate(r.tasks)}


_STARTED = re.compile(r"=== orchestrator: index (\d+) on .*, started (\S+)\s*$")
_ENDED = re.compile(r"=== orchestrator: index (\d+) exited with code (\d+), ended (\S+)\s*$")
_STAMP = "%Y-%m-%dT%H:%M:%S%z"


def log_run_seconds(text: str) -> float | None:
    """Seconds between the start and end stamps of the last complete attempt in an index's log.

    The default template appends `=== orchestrator: index N on HOST, job J, started <ISO>` and
    `=== orchestrator: index N exited with code C, ended <ISO>` around each attempt.
    """
    started: datetime | None = None
    seconds = None
    for line in text.splitlines():
        if not line.startswith("=== orchestrator: index "):
            continue
        start, end = _STARTED.match(line), _ENDED.match(line)
        try:
            if start:
                started = datetime.strptime(start.group(2), _STAMP)
            elif end and started is not None:
                seconds = (datetime.strptime(end.group(3), _STAMP) - started).total_seconds()
                started = None
        except ValueError:
            started = None  # a stamp from another template, or cut short: not this attempt
    return seconds


def index_seconds_from_logs(log_dirs: Iterable[tuple[str | Path, Iterable[int]]]) -> dict[int, float]:
    """Per index, the run time in `<log dir>/<index>.log`, for (log dir, indices) pairs; unreadable logs are skipped."""
    out: dict[int, float] = {}
    for log_dir, indices in log_dirs:
        for index in indices:
            try:
                text = (Path(log_dir) / f"{index}.log").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            seconds = log_run_seconds(text)
            if seconds is not None:
                out[index] = seconds
    return out


def bundle_logs(records: Iterable[_Submission]) -> list[tuple[str, list[int]]]:
    """(log dir, indices) of the tasks that ran several indices: the only logs worth reading."""
    return [(r.log_dir, [i for t in r.tasks if len(t) > 1 for i in t]) for r in records if r.job_id]


def experiment_usage(
    experiment: str,
    submissions: Sequence[_Submission],
    usage: Iterable[UsageRecord],
    *,
    sweep: Sweep | None = None,
    headroom: float = DEFAULT_HEADROOM,
    statistic: str = "max",
) -> ExperimentUsage:
    """`summarize` for an experiment's ledger records and the usage records of one batched sacct
    (`SlurmCommands.sacct_usage` over every experiment's job ids); reads the logs of bundled tasks."""
    return summarize(
        experiment,
        usage,
        task_indices_of(submissions),
        sweep=sweep,
        log_seconds=index_seconds_from_logs(bundle_logs(submissions)),
        headroom=headroom,
        statistic=statistic,
    )


# -- per command: the ledger, today's indices and one batched sacct ---------------------------------


@dataclass(frozen=True)
class Sizing:
    """How a suggestion is made: the profile's `right_size_headroom` and `right_size_statistic`."""

    headroom: float = DEFAULT_HEADROOM
    statistic: str = "max"


def slurm_submissions(plan: ExperimentPlan, ledger: Ledger) -> list[SubmissionRecord]:
    """The experiment's records that reached Slurm (a job id): the ones accounting knows."""
    return [r for r in ledger.records(ledger.experiment_key(plan.path)) if r.executor == "slurm" and r.job_id]


def todays_tasks(
    plan: ExperimentPlan, records: Sequence[SubmissionRecord], read_logs: bool = True
) -> tuple[dict[tuple[str, int | None], list[int]], dict[int, float]]:
    """(array job id, task id) -> today's indices, and the bundles' per-index seconds from their logs.

    A record made from an older version of the file has its indices matched to today's by
    (params, run), as `status` does; an index the file no longer has is dropped (its task still counts).
    """
    tasks: dict[tuple[str, int | None], list[int]] = {}
    seconds: dict[int, float] = {}
    identities: dict[tuple[str, int], int] | None = None
    for record in records:
        translate: Any = None
        if record.experiment_hash != plan.file.content_hash:
            identities = identities if identities is not None else identities_of(plan)
            translate = translator(record, identities)
        logs = index_seconds_from_logs(bundle_logs([record])) if read_logs else {}
        for task_id, recorded in enumerate(record.tasks):
            tasks[(str(record.job_id), task_id)] = _today(recorded, translate)
        for recorded, value in logs.items():
            seconds.update((index, value) for index in _today([recorded], translate))
    return tasks, seconds


def _today(recorded: Sequence[int], translate: Any) -> list[int]:
    if translate is None:
        return list(recorded)
    return [i for i in map(translate, recorded) if i is not None]


def collect(
    plans: Sequence[ExperimentPlan],
    ledger: Ledger,
    slurm: Slurm | None,
    sizing: Sizing = Sizing(),
    read_logs: bool = True,
) -> list[ExperimentUsage]:
    """Each experiment's usage, from ONE batched sacct over every experiment's Slurm jobs.

    EnvironmentFailure (exit 1) when the ledger holds Slurm jobs and there is no Slurm or no
    accounting to ask; experiments never sent to Slurm have no tasks (and no sacct is run for them).
    `read_logs`: per-index run times of bundled tasks from their logs (one file per index).
    """
    found = [(plan, *todays_tasks(plan, slurm_submissions(plan, ledger), read_logs)) for plan in plans]
    job_ids = sorted({job for _, tasks, _ in found for job, _ in tasks}, key=int)
    records: list[UsageRecord] = []
    if job_ids:
        if slurm is None:
            raise EnvironmentFailure("the ledger holds Slurm jobs but Slurm is not available here (no sacct)")
        answer = slurm.sacct_usage(job_ids)
        if answer is None:
            raise EnvironmentFailure(f"no Slurm accounting to read usage from: {slurm.accounting_problem or 'unknown'}")
        records = answer
    finished = task_usage(records)
    return [
        summarize(
            plan.path,
            finished,
            tasks,
            sweep=plan.sweep,
            log_seconds=seconds,
            headroom=sizing.headroom,
            statistic=sizing.statistic,
        )
        for plan, tasks, seconds in found
    ]


def usage_json(usages: Iterable[ExperimentUsage]) -> dict[str, Any]:
    """`usage --json`: `{"experiments": [...]}`."""
    return {"experiments": [u.to_json() for u in usages]}


# -- text -------------------------------------------------------------------------------------------


def _seconds_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _dist_text(d: Distribution, unit: Any) -> str:
    return "  ".join(f"{k} {unit(getattr(d, k))}" for k in ("min", "median", "p95", "max"))


def format_usage(u: ExperimentUsage) -> list[str]:
    """`orchestrator usage`'s lines for one experiment."""
    states = ", ".join(f"{n} {s}" for s, n in u.states.items()) or "none"
    lines = [f"{u.experiment}: {len(u.tasks)} finished task(s): {states}"]
    req = u.requested
    elapsed, rss = u.distribution("elapsed_s"), u.distribution("max_rss_mb")
    if elapsed:
        limit = f"  of {format_time(req.time_seconds)} asked" if req and req.time_seconds else ""
        lines.append(f"  elapsed   {_dist_text(elapsed, _seconds_text)}{limit}")
    if rss:
        asked = f"  of {req.mem_per_cpu_mb * req.cpus:.0f} MB asked" if req and req.mem_per_cpu_mb else ""
        lines.append(f"  MaxRSS    {_dist_text(rss, lambda v: f'{v:.0f} MB')}{asked}")
    efficiency = u.distribution("cpu_efficiency")
    if efficiency:
        lines.append(f"  CPU efficiency  median {efficiency.median:.0%}  min {efficiency.min:.0%}")
    lines.append(
        f"  CPU-hours used {u.cpu_hours_used:.3g} of {u.cpu_hours_requested:.3g} asked; "
        f"idle {u.cpu_hours_idle:.3g} (allocated, no process running)"
    )
    s = u.suggestion
    if s.time or s.mem_per_cpu:
        lines.append(f"  suggested time {s.time or '(as now)'}  mem_per_cpu {s.mem_per_cpu or '(as now)'}")
    lines.extend(f"    {note}" for note in s.notes)
    for axis, table in u.by_parameter.items():
        rows = "; ".join(
            f"{value}: {row['elapsed_s_median']} s, {row['max_rss_mb_median']} MB" for value, row in table.items()
        )
        lines.append(f"  by {axis} (median time, MaxRSS): {rows}")
    return lines

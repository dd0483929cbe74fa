"""Slurm's text formats: time limits, memory sizes, index ranges (`0-3,7,9-12`), and command output.

`hours` and `gigs` are the helpers PyExpUtils' scripts use (`hours(3) == '2:59:59'`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import SlurmError, UserError


def _whole_positive(n: int, helper: str, unit: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise UserError(f"{helper}(n) takes an integer number of {unit}, not {n!r}")
    if n < 1:
        raise UserError(f"{helper}(n) needs n >= 1, got {n}")
    return n


def hours(n: int) -> str:
    """A time limit of just under `n` hours, so the job fits partitions capped at `n` hours."""
    return f"{_whole_positive(n, 'hours', 'hours') - 1}:59:59"


def gigs(n: int) -> str:
    """A memory size of `n` gigabytes in Slurm's spelling."""
    return f"{_whole_positive(n, 'gigs', 'gigabytes')}G"


# -- time --------------------------------------------------------------------------------------

_TIME_FORMS = (
    # (regex, field names) for the forms sbatch --time accepts
    (re.compile(r"(\d+)"), ("minutes",)),
    (re.compile(r"(\d+):(\d+)"), ("minutes", "seconds")),
    (re.compile(r"(\d+):(\d+):(\d+)"), ("hours", "minutes", "seconds")),
    (re.compile(r"(\d+)-(\d+)"), ("days", "hours")),
    (re.compile(r"(\d+)-(\d+):(\d+)"), ("days", "hours", "minutes")),
    (re.compile(r"(\d+)-(\d+):(\d+):(\d+)"), ("days", "hours", "minutes", "seconds")),
)
_UNIT_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_UNLIMITED = {"UNLIMITED", "INFINITE"}


def parse_time(text: str, what: str = "time") -> int:
    """Seconds in a Slurm time string: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S."""
    if not isinstance(text, str):
        raise UserError(f"invalid {what} {text!r}: expected a string like '2:59:59' or '1-12:00:00'")
    stripped = text.strip()
    for pattern, fields in _TIME_FORMS:
        match = pattern.fullmatch(stripped)
        if not match:
            continue
        values = dict(zip(fields, map(int, match.groups())))
        leading = fields[0]
        for field, value in values.items():
            # the leading field may overflow (90 minutes is fine); the others may not
            limit = {"hours": 24, "minutes": 60, "seconds": 60}.get(field)
            if field != leading and limit is not None and value >= limit:
                raise UserError(f"invalid {what} '{text}': {field} must be below {limit}")
        seconds = sum(_UNIT_SECONDS[f] * v for f, v in values.items())
        if seconds <= 0:
            raise UserError(f"invalid {what} '{text}': must be longer than zero")
        return seconds
    raise UserError(f"invalid {what} '{text}': use M, M:S, H:M:S, D-H, D-H:M or D-H:M:S (e.g. '2:59:59', '1-00:00:00')")


def parse_time_limit(text: str) -> int | None:
    """A partition's limit as `scontrol`/`sinfo` print it; None for UNLIMITED."""
    if text.strip().upper() in _UNLIMITED:
        return None
    return parse_time(text, "time limit")


def format_time(seconds: int) -> str:
    """Seconds as Slurm's `D-HH:MM:SS` (or `H:MM:SS` under a day)."""
    if seconds <= 0:
        raise UserError(f"a time limit must be positive, got {seconds} s")
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if days:
        return f"{days}-{h:02d}:{m:02d}:{s:02d}"
    return f"{h}:{m:02d}:{s:02d}"


# -- memory ------------------------------------------------------------------------------------

_MEMORY = re.compile(r"(\d+)([KMGT]?)B?", re.IGNORECASE)
_UNIT_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_memory(text: str, what: str = "memory") -> int:
    """Megabytes in a Slurm memory string (`4G`, `512M`, `2048`: no unit means MB)."""
    if not isinstance(text, str):
        raise UserError(f"invalid {what} {text!r}: expected a string like '4G' or '512M'")
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise UserError(f"invalid {what} '{text}': use a number with K, M, G or T (e.g. '4G', '512M')")
    amount, unit = int(match.group(1)), match.group(2).upper()
    megabytes = amount * _UNIT_MB[unit]
    if megabytes < 1:
        raise UserError(f"invalid {what} '{text}': must be at least 1M")
    return int(megabytes)


def format_memory(megabytes: int) -> str:
    """Megabytes as `NG` when whole gigabytes, else `NM`."""
    megabytes = int(megabytes)
    if megabytes <= 0:
        raise UserError(f"memory must be positive, got {megabytes} MB")
    if megabytes % 1024 == 0:
        return f"{megabytes // 1024}G"
    return f"{megabytes}M"


# -- index ranges ------------------------------------------------------------------------------


def format_ranges(indices: Iterable[int]) -> str:
    """Compress indices into Slurm's range style: `0-3,7,9-12` ('' for none)."""
    ordered = sorted(set(indices))
    if not ordered:
        return ""
    parts = []
    start = previous = ordered[0]
    for value in ordered[1:]:
        if value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = value
    parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)


_RANGE_ITEM = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


def parse_ranges(text: str) -> list[int]:
    """Expand `0-3,7,9-12` (also `0-15:4`, and `[...]` / a `%N` throttle as squeue prints) to a sorted list."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    body = body.split("%", 1)[0]
    if not body:
        return []
    out: set[int] = set()
    for item in body.split(","):
        match = _RANGE_ITEM.fullmatch(item.strip())
        if not match:
            raise UserError(f"invalid index range '{text}': '{item}' is not N, N-M or N-M:S")
        start = int(match.group(1))
        stop = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3)) if match.group(3) is not None else 1
        if stop < start or step < 1:
            raise UserError(f"invalid index range '{text}': '{item}' is empty")
        out.update(range(start, stop + 1, step))
    return sorted(out)


# -- command output ----------------------------------------------------------------------------
# Pure parsers of what Slurm's commands print (the commands themselves run in slurm_commands.py).
# A line that does not parse is an error naming the line: skipping it could hide a task of ours.

SQUEUE_FORMAT = "%F|%K|%T|%r|%j|%k"
"""Array job id, task index, state, reason, name, comment. The comment is last: it may contain '|'."""

SACCT_FIELDS = "JobID,JobName,State,ExitCode,Elapsed,Submit,DBIndex"
"""Submit and DBIndex order a task's attempts: a requeue keeps the job id but resets Submit, and each
attempt is a new database row (see `orchestrator.accounting`). sacct 22.05 has no `Restarts` field."""

_SHOWN = 120  # characters of an unparsable line quoted in an error message


def _quote(line: str) -> str:
    return repr(line if len(line) <= _SHOWN else line[:_SHOWN] + "...")


def _bad_line(command: str, line: str, why: str) -> SlurmError:
    return SlurmError(f"cannot read {command} output line {_quote(line)}: {why}", command=command)


def _expand_tasks(text: str, line: str, command: str) -> list[int]:
    try:
        tasks = parse_ranges(text)
    except UserError as exc:
        raise _bad_line(command, line, str(exc)) from None
    if not tasks:
        raise _bad_line(command, line, "empty task range")
    return tasks


_SBATCH_JOB_ID = re.compile(r"(\d+)(?:;\S+)?")


def parse_sbatch_parsable(stdout: str) -> str:
    """The job id from `sbatch --parsable` (`jobid` or `jobid;cluster`); sites may add other lines."""
    found = None
    for line in stdout.splitlines():
        match = _SBATCH_JOB_ID.fullmatch(line.strip())
        if match:
            found = match.group(1)
    if found is None:
        raise SlurmError(f"sbatch --parsable printed no job id (stdout was {_quote(stdout)})", command="sbatch")
    return found


@dataclass(frozen=True)
class QueuedTask:
    """One live task (or non-array job) of ours as squeue shows it."""

    array_job_id: str
    task_id: int | None  # None for a job that is not an array
    state: str  # PENDING, RUNNING, COMPLETING, ...
    reason: str  # why it waits: JobArrayTaskLimit, Priority, Resources, ... ('None' when running)
    name: str
    comment: str  # '' when the job has none (squeue prints '(null)')

    @property
    def job_id(self) -> str:
        """The id scancel and sacct accept for exactly this task: `123_4`, or `123`."""
        return self.array_job_id if self.task_id is None else f"{self.array_job_id}_{self.task_id}"


_SQUEUE_FIELDS = SQUEUE_FORMAT.count("|") + 1


def parse_squeue(text: str) -> list[QueuedTask]:
    """Tasks from `squeue --me -r -h -o SQUEUE_FORMAT`, one per array task.

    A grouped pending line (`%K` = `5-100%10` or `[5-100%10]`), which -r should prevent, is expanded.
    The comment is split off last, so a '|' in it stays in it; a '|' in a job name cannot be told
    apart from the field separator and shifts it into the comment.
    """
    tasks: list[QueuedTask] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", _SQUEUE_FIELDS - 1)
        if len(fields) != _SQUEUE_FIELDS:
            raise _bad_line("squeue", line, f"expected {_SQUEUE_FIELDS} '|'-separated fields ({SQUEUE_FORMAT})")
        array_job_id, task_text, state, reason, name, comment = (f.strip() for f in fields)
        if not array_job_id.isdigit():
            raise _bad_line("squeue", line, f"job id {array_job_id!r}")
        if not state:
            raise _bad_line("squeue", line, "no state")
        if comment == "(null)":
            comment = ""
        if task_text == "N/A":
            task_ids: list[int | None] = [None]
        elif task_text.isdigit():
            task_ids = [int(task_text)]
        else:
            task_ids = list(_expand_tasks(task_text, line, "squeue"))
        tasks.extend(QueuedTask(array_job_id, task, state, reason, name, comment) for task in task_ids)
    return tasks


@dataclass(frozen=True)
class AccountingRecord:
    """One job or array task as sacct reports it (one attempt of it: a requeued task has several)."""

    job_id: str  # `7`, `7_2`, or a heterogeneous component `7+0`
    array_job_id: str  # `7` (for `7+0`: `7+0` itself; a heterogeneous job is never an array)
    task_id: int | None
    state: str  # COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, ...
    reason_detail: str  # the rest of the state text: `by 0` for `CANCELLED by 0`, else ''
    exit_code: int
    signal: int
    elapsed_seconds: int | None  # None when sacct prints no usable duration
    name: str
    grouped: bool = False  # expanded from a range line (`7_[4-9%1]`): the array's record for tasks not split off
    submitted: str | None = None  # Submit as `YYYY-MM-DDTHH:MM:SS` (reset by a requeue); None when unknown
    db_index: int | None = None  # DBIndex: the accounting database's row, newer for a later attempt


_SACCT_JOB = re.compile(r"(?P<job>\d+)(?:_(?P<task>\d+)|_\[(?P<tasks>[^\]]+)\]|(?P<het>\+\d+))?")
_SACCT_STATE = re.compile(r"([A-Z][A-Z_]*)(?:\s+(.*))?")
_EXIT_CODE = re.compile(r"(\d+):(\d+)")
_ELAPSED = re.compile(r"(?:(\d+)-)?(\d+):(\d{2}):(\d{2})")
_NO_ELAPSED = {"", "INVALID", "UNKNOWN"}
_SACCT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_NO_TIME = {"", "UNKNOWN", "NONE"}
_SACCT_COLUMNS = SACCT_FIELDS.count(",") + 1
_OLD_SACCT_COLUMNS = 5  # JobID,JobName,State,ExitCode,Elapsed: output recorded before Submit,DBIndex were asked


def parse_elapsed(text: str) -> int | None:
    """Seconds in sacct's `[D-]HH:MM:SS`; None for an empty or INVALID value; SlurmError otherwise."""
    match = _duration(text, _ELAPSED, "elapsed time", "[D-]HH:MM:SS")
    if match is None:
        return None
    days, h, m, s = (int(g) if g else 0 for g in match.groups())
    return days * 86400 + h * 3600 + m * 60 + s


def _duration(text: str, pattern: re.Pattern[str], what: str, expected: str) -> re.Match[str] | None:
    """The match of a sacct duration column; None when sacct printed none; SlurmError when unreadable."""
    stripped = text.strip()
    if stripped.upper() in _NO_ELAPSED:
        return None
    match = pattern.fullmatch(stripped)
    if not match:
        raise SlurmError(f"invalid {what} {text!r}: expected {expected}", command="sacct")
    return match


def _sacct_columns(line: str) -> tuple[str, str, list[str], str, str]:
    """(job id, name, [state, exit code, elapsed], submit, db index) of one line.

    The name is whatever lies between the id and the fixed columns, so it may contain '|'. A line
    without Submit and DBIndex (the older field list) is told apart by its second-to-last column,
    which is then the exit code (`3:0`), never a time.
    """
    fields = line.split("|")
    if len(fields) >= _OLD_SACCT_COLUMNS and _EXIT_CODE.fullmatch(fields[-2].strip()):
        fixed, submit, db_index = fields[-3:], "", ""
        name = "|".join(fields[1:-3])
    elif len(fields) >= _SACCT_COLUMNS:
        fixed, submit, db_index = fields[-5:-2], fields[-2].strip(), fields[-1].strip()
        name = "|".join(fields[1:-5])
    else:
        raise _bad_line("sacct", line, f"expected {_SACCT_COLUMNS} '|'-separated fields ({SACCT_FIELDS})")
    return fields[0].strip(), name, [f.strip() for f in fixed], submit, db_index


def _sacct_order(line: str, submit: str, db_index: str) -> tuple[str | None, int | None]:
    """Submit time and DBIndex, the keys that order a task's attempts."""
    if submit.upper() in _NO_TIME:
        submitted = None
    elif _SACCT_TIME.fullmatch(submit):
        submitted = submit
    else:
        raise _bad_line("sacct", line, f"submit time {submit!r} (expected YYYY-MM-DDTHH:MM:SS)")
    if db_index and not db_index.isdigit():
        raise _bad_line("sacct", line, f"DBIndex {db_index!r}")
    return submitted, int(db_index) if db_index else None


def _sacct_tasks(job: re.Match[str], line: str) -> tuple[str, list[int | None]]:
    """The base id (`7`, or `7+0` for a heterogeneous component) and the tasks a job id names
    (a grouped `7_[4-9%1]` expanded)."""
    if job.group("het"):
        return job.group("job") + job.group("het"), [None]
    if job.group("task"):
        return job.group("job"), [int(job.group("task"))]
    if job.group("tasks"):
        return job.group("job"), list(_expand_tasks(job.group("tasks"), line, "sacct"))
    return job.group("job"), [None]


def parse_sacct(text: str) -> list[AccountingRecord]:
    """Records from `sacct -X -P -n -o SACCT_FIELDS`: one per job, task or attempt, grouped tasks expanded.

    A job name may contain '|': the id is the first field and the fixed columns the last ones, so
    the name is whatever lies between. Lines from the older field list (without Submit and DBIndex)
    still parse, with `submitted` and `db_index` None. Which record speaks for a task when several
    cover it is `orchestrator.accounting`'s rule, not the parser's.
    """
    records: list[AccountingRecord] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        job_text, name, (state_text, exit_text, elapsed_text), submit, db_index = _sacct_columns(line)
        job = _SACCT_JOB.fullmatch(job_text)
        if not job:
            raise _bad_line("sacct", line, f"job id {job_text!r}")
        state = _SACCT_STATE.fullmatch(state_text)
        if not state:
            raise _bad_line("sacct", line, f"state {state_text!r}")
        exit_match = _EXIT_CODE.fullmatch(exit_text)
        if not exit_match:
            raise _bad_line("sacct", line, f"exit code {exit_text!r} (expected code:signal)")
        try:
            elapsed = parse_elapsed(elapsed_text)
        except SlurmError as exc:
            raise _bad_line("sacct", line, str(exc)) from None
        submitted, index = _sacct_order(line, submit, db_index)
        base, tasks = _sacct_tasks(job, line)
        status, detail = state.group(1), (state.group(2) or "").strip()
        code, signal = int(exit_match.group(1)), int(exit_match.group(2))
        grouped = job.group("tasks") is not None
        for task in tasks:
            job_id = base if task is None else f"{base}_{task}"
            records.append(
                AccountingRecord(
                    job_id, base, task, status, detail, code, signal, elapsed, name, grouped, submitted, index
                )
            )
    return records


_CONFIG_LINE = re.compile(r"\s*([A-Za-z_][^\s=]*)\s*=\s?(.*?)\s*")
DEFAULT_MAX_ARRAY_SIZE = 1001


def parse_scontrol_config(text: str) -> dict[str, str]:
    """`Key = Value` lines of `scontrol show config`; headers and footers without '=' are ignored."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        match = _CONFIG_LINE.fullmatch(line)
        if match:
            config.setdefault(match.group(1), match.group(2))
    return config


def _config_int(value: str, key: str) -> int:
    if not value.strip().isdigit():
        raise SlurmError(f"scontrol show config: {key} = {value!r} is not a whole number", command="scontrol")
    return int(value)


def array_limits(config: dict[str, str]) -> tuple[int, int | None]:
    """(MaxArraySize, max_array_tasks): task indices must stay below the first; the second caps tasks per array.

    MaxArraySize defaults to 1001 (indices 0..1000); max_array_tasks (in SchedulerParameters) to None.
    """
    size_text = config.get("MaxArraySize")
    max_size = DEFAULT_MAX_ARRAY_SIZE if size_text is None else _config_int(size_text, "MaxArraySize")
    max_tasks = None
    for item in config.get("SchedulerParameters", "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "max_array_tasks":
            max_tasks = _config_int(value, "SchedulerParameters max_array_tasks")
    return max_size, max_tasks


def parse_max_submit(text: str) -> int | None:
    """The tightest submit limit in `sacctmgr -n -P show assoc ... format=MaxSubmit[,...]` (or a QOS's MaxSubmitPU).

    The limit is the first '|'-separated field of each line; empty means none. Several lines (one per
    account or QOS) give the smallest limit; None when no line has one.
    """
    limits = []
    for line in text.splitlines():
        if not line.strip():
            continue
        value = line.split("|", 1)[0].strip()
        if not value:
            continue
        if not value.isdigit():
            raise _bad_line("sacctmgr", line, f"submit limit {value!r} is not a whole number")
        limits.append(int(value))
    return min(limits) if limits else None


def parse_assoc_qos(text: str) -> list[str]:
    """The QOS names jobs get by default from `sacctmgr -n -P show assoc ... format=MaxSubmit,QOS,DefaultQOS`.

    Per line: DefaultQOS when set, else every QOS the association may use (so the smallest of their
    limits counts: at worst a few tasks wait for a later run). Sorted, without repeats.
    """
    names: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        allowed = fields[1] if len(fields) > 1 else ""
        default = fields[2] if len(fields) > 2 else ""
        if default:
            names.add(default)
        else:
            names.update(q.strip() for q in allowed.split(",") if q.strip())
    return sorted(names)


@dataclass(frozen=True)
class PartitionLimits:
    """A partition's ceilings that escalation must stay under (None: no limit)."""

    name: str
    default: bool
    max_time_seconds: int | None
    max_mem_per_cpu_mb: int | None
    max_mem_per_node_mb: int | None


def parse_partitions(text: str) -> list[PartitionLimits]:
    """`scontrol show partition -o`: one line per partition of space-separated `Key=Value` pairs."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "PartitionName" not in fields:
            raise _bad_line("scontrol show partition", line, "no PartitionName")
        max_time = fields.get("MaxTime", "UNLIMITED")
        out.append(
            PartitionLimits(
                name=fields["PartitionName"],
                default=fields.get("Default", "NO") == "YES",
                max_time_seconds=parse_time_limit(max_time) if max_time else None,
                max_mem_per_cpu_mb=_memory_limit(fields.get("MaxMemPerCPU")),
                max_mem_per_node_mb=_memory_limit(fields.get("MaxMemPerNode")),
            )
        )
    return out


def _memory_limit(value: str | None) -> int | None:
    if value is None or value.upper() in ("UNLIMITED", "0", ""):
        return None
    return parse_memory(value, "partition memory limit")


# -- usage (sacct without -X: the job steps carry MaxRSS) ---------------------------------------

USAGE_FIELDS = "JobID,State,Elapsed,Timelimit,TotalCPU,AllocCPUS,ReqMem,MaxRSS"
"""What each task used against what it asked for. No JobName: a '|' in it would shift the fields."""

_USAGE_COLUMNS = USAGE_FIELDS.count(",") + 1
_USAGE_JOB = re.compile(
    r"(?P<job>\d+)(?:_(?P<task>\d+)|_\[(?P<tasks>[^\]]+)\]|(?P<het>\+\d+))?(?:\.(?P<step>[^\s|]+))?"
)
# TotalCPU: [D-]HH:MM:SS, or MM:SS.mmm under an hour (Slurm's _elapsed_time)
_CPU_TIME = re.compile(r"(?:(?:(\d+)-)?(\d+):(\d{2}):(\d{2})(?:\.(\d+))?|(\d+):(\d{2})\.(\d+))")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMGTP]?)([cn]?)", re.IGNORECASE)
_SIZE_MB = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}
_NO_LIMIT = {"UNLIMITED", "INFINITE", "PARTITION_LIMIT", "INVALID"}


@dataclass(frozen=True)
class UsageRecord:
    """One line of `sacct -P -n -o USAGE_FIELDS` (no -X): a job or array task, or one of its steps.

    The task's own line carries state, time limit, request and allocation; its steps (`.batch`,
    `.extern`, `.0`, ...) carry MaxRSS, which jobacct_gather samples every JobAcctGatherFrequency
    seconds: a step that ended before the first sample has none (None here).
    """

    job_id: str  # `7_2`, `7_2.batch`, `7`, `7+0`
    array_job_id: str
    task_id: int | None
    step: str | None  # None for the task's own line; `batch`, `extern`, `0`, ...
    state: str
    elapsed_seconds: int | None
    time_limit_seconds: int | None  # None: unlimited, or not shown (steps)
    total_cpu_seconds: float | None
    alloc_cpus: int | None
    req_mem_mb: float | None  # as printed: per node (Slurm >= 21.08, or `n`) or per CPU (`c`)
    req_mem_per_cpu: bool  # True when Slurm marked ReqMem per CPU (`4Gc`, Slurm < 21.08)
    max_rss_mb: float | None

    @property
    def mem_per_cpu_mb(self) -> float | None:
        """The requested memory per allocated CPU (an array task runs on one node)."""
        if self.req_mem_mb is None:
            return None
        if self.req_mem_per_cpu or not self.alloc_cpus:
            return self.req_mem_mb
        return self.req_mem_mb / self.alloc_cpus


def parse_cpu_time(text: str) -> float | None:
    """Seconds in sacct's TotalCPU (`00:00.199`, `01:02:03`, `1-02:03:04`); None when empty."""
    match = _duration(text, _CPU_TIME, "CPU time", "[D-]HH:MM:SS or MM:SS.mmm")
    if match is None:
        return None
    days, h, m, s, frac, short_m, short_s, short_frac = match.groups()
    if short_m is not None:
        return int(short_m) * 60 + int(short_s) + float(f"0.{short_frac}")
    fraction = float(f"0.{frac}") if frac else 0.0
    return int(days or 0) * 86400 + int(h) * 3600 + int(m) * 60 + int(s) + fraction


def parse_size_mb(text: str, default_unit: str = "M") -> tuple[float | None, str]:
    """(megabytes, `c`/`n`/'') of a sacct size: `437884K`, `1.50G`, `4000M`, `4Gc`; (None, '') when empty.

    `default_unit` applies to a bare number (`0`): K for MaxRSS, M for ReqMem.
    """
    stripped = text.strip()
    if not stripped:
        return None, ""
    match = _SIZE.fullmatch(stripped)
    if not match:
        raise SlurmError(f"invalid memory size {text!r}: expected a number with K, M, G, T or P", command="sacct")
    unit = (match.group(2) or default_unit).upper()
    return float(match.group(1)) * _SIZE_MB[unit], match.group(3).lower()


def _usage_limit(text: str) -> int | None:
    stripped = text.strip()
    if not stripped or stripped.upper() in _NO_LIMIT:
        return None
    return parse_elapsed(stripped)


def _usage_record(line: str) -> list[UsageRecord]:
    fields = [f.strip() for f in line.split("|")]
    if len(fields) != _USAGE_COLUMNS:
        raise _bad_line("sacct", line, f"expected {_USAGE_COLUMNS} '|'-separated fields ({USAGE_FIELDS})")
    job_text, state_text, elapsed, limit, cpu, cpus, req_mem, max_rss = fields
    job = _USAGE_JOB.fullmatch(job_text)
    state = _SACCT_STATE.fullmatch(state_text)
    if not job or not state:
        raise _bad_line("sacct", line, f"job id {job_text!r}" if not job else f"state {state_text!r}")
    if cpus and not cpus.isdigit():
        raise _bad_line("sacct", line, f"AllocCPUS {cpus!r}")
    try:
        values = (parse_elapsed(elapsed), _usage_limit(limit), parse_cpu_time(cpu))
        req_mb, per = parse_size_mb(req_mem, "M")
        rss_mb, _ = parse_size_mb(max_rss, "K")
    except SlurmError as exc:
        raise _bad_line("sacct", line, str(exc)) from None
    base, tasks = _sacct_tasks(job, line)
    step = job.group("step")
    suffix = f".{step}" if step else ""
    return [
        UsageRecord(
            f"{base}{'' if task is None else f'_{task}'}{suffix}",
            base,
            task,
            step,
            state.group(1),
            *values,
            int(cpus) if cpus else None,
            req_mb,
            per == "c",
            rss_mb,
        )
        for task in tasks
    ]


def parse_sacct_usage(text: str) -> list[UsageRecord]:
    """Records from `sacct -P -n -o USAGE_FIELDS -j ...` (no -X), one per task line and per step line."""
    records: list[UsageRecord] = []
    for line in text.splitlines():
        if line.strip():
            records.extend(_usage_record(line))
    return records

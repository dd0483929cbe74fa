"""Slurm's text formats: time limits, memory sizes and index ranges (`0-3,7,9-12`).

`hours` and `gigs` are the helpers PyExpUtils' scripts use (`hours(3) == '2:59:59'`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from orchestrator.errors import UserError


def hours(n: int) -> str:
    """A time limit of just under `n` hours, so the job fits partitions capped at `n` hours."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise UserError(f"hours(n) takes an integer number of hours, not {n!r}")
    if n < 1:
        raise UserError(f"hours(n) needs n >= 1, got {n}")
    return f"{n - 1}:59:59"


def gigs(n: int) -> str:
    """A memory size of `n` gigabytes in Slurm's spelling."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise UserError(f"gigs(n) takes an integer number of gigabytes, not {n!r}")
    if n < 1:
        raise UserError(f"gigs(n) needs n >= 1, got {n}")
    return f"{n}G"


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

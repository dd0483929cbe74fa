"""Cost of a submission before it goes out: tasks, CPU-hours and GPU-hours at the requested limits.

Slurm charges an allocation for the cores (and GPUs) a task holds while it runs, so the time limit
times the cores is an upper bound; after a first wave, measured run times give the expected cost.
Allocations (e.g. the Digital Research Alliance's) are granted in core-years per year, where a
"core-equivalent" is one core with up to 4 GB: PyExpUtils' `approximate_cost` counts
`cores x max(1, GB per core / 4)` and divides core-hours by 24 x 365, and so does `core_years`.

`decide` is the pure rule for `confirm_above`; `ask` is the only function here that does I/O.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from orchestrator.errors import UserError
from orchestrator.slurm_formats import parse_memory, parse_time

HOURS_PER_YEAR = 24 * 365
CORE_EQUIVALENT_MB = 4 * 1024


def gpu_count(gpus: int | str | None) -> int:
    """GPUs per task from a profile's `gpus`: 2, '2' or 'a100:2' -> 2; None -> 0."""
    if gpus is None:
        return 0
    if isinstance(gpus, bool):
        raise UserError(f"invalid gpus {gpus!r}: expected a count like 2 or 'a100:2'")
    text = str(gpus).rsplit(":", 1)[-1].strip()
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"invalid gpus {gpus!r}: expected a count like 2 or 'a100:2'")
    return int(text)


@dataclass(frozen=True)
class ArrayRequest:
    """One job array as it will be submitted: `tasks` array tasks, each with these limits."""

    tasks: int
    time_seconds: int
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    mem_per_cpu_mb: float | None = None

    @classmethod
    def of(
        cls, tasks: int, time: str, mem_per_cpu: str | None, cpus_per_task: int = 1, gpus: int | str | None = None
    ) -> ArrayRequest:
        """From a profile's spelling: `time` '2:59:59', `mem_per_cpu` '4G', `gpus` 2 or 'a100:2'."""
        mem = None if mem_per_cpu is None else parse_memory(mem_per_cpu, "mem_per_cpu")
        return cls(tasks, parse_time(time), cpus_per_task, gpu_count(gpus), mem)

    @property
    def core_equivalents_per_task(self) -> float:
        memory_factor = 1.0 if self.mem_per_cpu_mb is None else max(1.0, self.mem_per_cpu_mb / CORE_EQUIVALENT_MB)
        return self.cpus_per_task * memory_factor


@dataclass(frozen=True)
class Cost:
    """Tasks, CPU-hours, GPU-hours and core-equivalent hours; costs add up."""

    tasks: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    core_equivalent_hours: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.tasks + other.tasks,
            self.cpu_hours + other.cpu_hours,
            self.gpu_hours + other.gpu_hours,
            self.core_equivalent_hours + other.core_equivalent_hours,
        )

    @property
    def core_years(self) -> float:
        return self.core_equivalent_hours / HOURS_PER_YEAR

    def allocation_share(self, allocation: float) -> float:
        """The fraction of an annual allocation of `allocation` core-years that this uses."""
        return self.core_years / allocation

    def to_json(self, allocation: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tasks": self.tasks,
            "cpu_hours": round(self.cpu_hours, 4),
            "gpu_hours": round(self.gpu_hours, 4),
            "core_years": round(self.core_years, 6),
        }
        if allocation is not None:
            out["allocation_share"] = round(self.allocation_share(allocation), 6)
        return out


def _cost_of(request: ArrayRequest, task_seconds: float, tasks: int) -> Cost:
    hours = task_seconds / 3600
    return Cost(
        tasks,
        hours * request.cpus_per_task,
        hours * request.gpus_per_task,
        hours * request.core_equivalents_per_task,
    )


def cost(requests: Iterable[ArrayRequest]) -> Cost:
    """The upper bound: every task runs to its time limit."""
    total = Cost()
    for request in requests:
        total += _cost_of(request, request.time_seconds * request.tasks, request.tasks)
    return total


def expected_cost(
    request: ArrayRequest, task_sizes: Iterable[int], mean_index_seconds: float, parallel: int = 1
) -> Cost:
    """The cost if each index runs `mean_index_seconds` (measured on earlier waves).

    `task_sizes` are the numbers of indices of each array task; a task runs them `parallel` at a
    time and is stopped at its time limit.
    """
    if parallel < 1 or mean_index_seconds < 0:
        raise ValueError("parallel must be >= 1 and mean_index_seconds >= 0")
    seconds = 0.0
    tasks = 0
    for size in task_sizes:
        tasks += 1
        seconds += min(request.time_seconds, math.ceil(size / parallel) * mean_index_seconds)
    return _cost_of(request, seconds, tasks)


def _hours(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.2g}"


def format_cost(
    upper: Cost, allocation: float | None = None, expected: Cost | None = None, *, indices: int | None = None
) -> str:
    """The `submit` line: `cost: 30 tasks, 89.99 CPU-hours at the requested limits (at most); ...`."""
    what = f"{upper.tasks} task(s)" if indices is None else f"{indices} indices in {upper.tasks} task(s)"
    parts = [f"cost: {what}, {_hours(upper.cpu_hours)} CPU-hours"]
    if upper.gpu_hours:
        parts.append(f", {_hours(upper.gpu_hours)} GPU-hours")
    parts.append(" at the requested limits (at most)")
    if allocation is not None:
        parts.append(
            f"; {upper.core_years:.3g} core-years, {upper.allocation_share(allocation):.2%} of the "
            f"{allocation:g} core-year allocation"
        )
    if expected is not None:
        parts.append(f"; expected {_hours(expected.cpu_hours)} CPU-hours from measured run times")
    return "".join(parts)


@dataclass(frozen=True)
class CostSummary:
    """What a submit is about to send: the upper bound, the expected cost where run times were measured."""

    upper: Cost
    indices: int
    expected: Cost | None = None
    allocation: float | None = None
    confirm_above: float | None = None

    def text(self) -> str:
        return format_cost(self.upper, self.allocation, self.expected, indices=self.indices)

    @property
    def needs_confirmation(self) -> bool:
        return self.confirm_above is not None and self.upper.cpu_hours > self.confirm_above

    def to_json(self) -> dict[str, Any]:
        """`submit --json`'s `"cost"`: tasks, cpu_hours, gpu_hours at the requested limits, and more."""
        out = {**self.upper.to_json(self.allocation), "indices": self.indices}
        out["expected"] = None if self.expected is None else self.expected.to_json(self.allocation)
        out["confirm_above"] = self.confirm_above
        return out


# -- confirmation ------------------------------------------------------------------------------------


class Decision(enum.Enum):
    PROCEED = "proceed"
    ASK = "ask"
    REFUSE = "refuse"


def decide(cpu_hours: float, confirm_above: float | None, *, yes: bool, interactive: bool) -> Decision:
    """Above `confirm_above` CPU-hours, ask on a terminal, refuse without one, unless `--yes`."""
    if confirm_above is None or cpu_hours <= confirm_above or yes:
        return Decision.PROCEED
    return Decision.ASK if interactive else Decision.REFUSE


def refusal(cpu_hours: float, confirm_above: float) -> UserError:
    """The error for Decision.REFUSE (exit 2, nothing submitted)."""
    return UserError(
        f"this submission asks for up to {_hours(cpu_hours)} CPU-hours, above confirm_above ({confirm_above:g}); "
        "nothing was submitted: run it on a terminal to confirm, or pass --yes"
    )


def interactive() -> bool:
    """Whether a person can answer: stdin and stderr are both terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def ask(question: str, *, read: Callable[[], str] | None = None, out: TextIO | None = None) -> bool:
    """Print `question` and read a yes/no answer (default no; end of input is no)."""
    stream = out if out is not None else sys.stderr
    stream.write(f"{question} [y/N] ")
    stream.flush()
    try:
        answer = read() if read is not None else sys.stdin.readline()
    except EOFError:
        answer = ""
    if not answer.endswith("\n"):
        stream.write("\n")
    return answer.strip().lower() in ("y", "yes")

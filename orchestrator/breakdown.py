"""Failures by parameter: the states of a sweep's indices per value of each swept parameter.

When many indices fail, the cause is often one value (the largest learning rate diverges, the
largest batch runs out of memory). `status --by AXIS` shows the states per value of one axis
(`lr=1.0: 30 failed (FAILED exit 1)`); `standouts` names the values whose failure rate stands out,
one that always fails first, and explains the others away: once `lr=1.0` is named, `optimizer=sgd`
is named only if it also fails more without `lr=1.0`.

Counts are kept per permutation in flat arrays (an index's permutation is `index % P`), a few
megabytes for a sweep of millions, and the counts per value are sums over strided slices of those
arrays. The states of `status` are `IndexSet`s, counted range by range: a range holds whole cycles
of the P permutations (one number) and at most two partial runs, so a state costs O(ranges + P),
never a Python object per index.
"""

from __future__ import annotations

import difflib
import itertools
import operator
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import UserError
from orchestrator.index_set import IndexSet
from orchestrator.sweep import Sweep

if TYPE_CHECKING:
    from orchestrator.state import ExperimentStatus

FAILED = "failed"
STATE_ORDER = ("done", "running", "pending", "failed", "missing")  # state.STATES
MAX_REASONS = 20  # distinct failure reasons kept apart; the rest count as "other"
OTHER_REASON = "other"
# a value stands out when at least this many of its indices failed, at least twice the rate of the
# other values (still in play) and at least this much more
MIN_FAILED = 2
RATE_FACTOR = 2.0
RATE_MARGIN = 0.25


def axis_label(sweep: Sweep, position: int) -> str:
    """An axis as the user writes it: without the sweep key when there is one (`lr`), else in full."""
    name = sweep.axes[position].name
    if len(sweep.keys) == 1 and name.startswith(sweep.keys[0] + "."):
        return name[len(sweep.keys[0]) + 1 :]
    return name


def resolve_axis(sweep: Sweep, name: str) -> int:
    """The position of the axis called `name` (`lr`, `metaParameters.lr`, or an unambiguous last part)."""
    labels = [axis_label(sweep, p) for p in range(len(sweep.axes))]
    for position, axis in enumerate(sweep.axes):
        if name in (axis.name, labels[position]):
            return position
    by_last = [p for p, a in enumerate(sweep.axes) if a.name.rsplit(".", 1)[-1] == name]
    if len(by_last) == 1:
        return by_last[0]
    if by_last:
        choices = ", ".join(labels[p] for p in by_last)
        raise UserError(f"--by {name}: ambiguous, it could be {choices}")
    close = difflib.get_close_matches(name, labels, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(labels) or "none"
    raise UserError(f"--by {name}: no swept parameter of that name{hint}; swept: {listed}")


@dataclass(frozen=True)
class Standout:
    """A parameter value whose indices fail more than the others' (still in play when it was named)."""

    axis: str
    value: str
    failed: int
    finished: int
    rest_rate: float

    @property
    def rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "axis": self.axis,
            "value": self.value,
            "failed": self.failed,
            "finished": self.finished,
            "rate": round(self.rate, 4),
            "rest_rate": round(self.rest_rate, 4),
        }

    def text(self) -> str:
        return (
            f"{self.axis}={self.value}: {self.failed} of {self.finished} finished failed ({self.rate:.0%}; "
            f"{self.rest_rate:.0%} elsewhere)"
        )


class Breakdown:
    """Per-permutation counts of states (and of failure reasons) for one sweep."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self._p = sweep.num_permutations
        self.states: dict[str, array[int]] = {}
        self.reasons: dict[str, array[int]] = {}

    def _counts(self, table: dict[str, array[int]], key: str) -> array[int]:
        if key not in table:
            table[key] = _zeros(self._p)
        return table[key]

    def add(self, state: str, indices: Iterable[int], reason: str | None = None) -> None:
        """Count `indices` as `state` (a failed one with its `reason`)."""
        if isinstance(indices, IndexSet) and 2 * len(indices) >= self._p:
            self._add_ranges(state, indices, reason)
            return
        counts = self._counts(self.states, state)
        reasons = self._reason_counts(reason) if state == FAILED else None
        p = self._p
        for index in indices:
            permutation = index % p
            counts[permutation] += 1
            if reasons is not None:
                reasons[permutation] += 1

    def _add_ranges(self, state: str, indices: IndexSet, reason: str | None) -> None:
        """`add` for a large IndexSet: per permutation counts from its ranges, in O(ranges + P)."""
        per_permutation = _range_counts(indices, self._p)
        targets = [self._counts(self.states, state)]
        if state == FAILED:
            targets.append(self._reason_counts(reason))
        for counts in targets:
            counts[:] = array(counts.typecode, map(operator.add, counts, per_permutation))

    def _reason_counts(self, reason: str | None) -> array[int]:
        key = reason or "unknown"
        if key not in self.reasons and len(self.reasons) >= MAX_REASONS:
            key = OTHER_REASON
        return self._counts(self.reasons, key)

    # -- per value -----------------------------------------------------------------------------

    def _value_slices(self, position: int, value: int) -> Iterator[slice]:
        """The permutations where axis `position` takes value number `value`, as few slices as possible."""
        stride = 1
        for size in self.sweep.sizes[:position]:
            stride *= size
        period = stride * self.sweep.sizes[position]
        start = value * stride
        if stride <= self._p // period:  # few offsets: one strided slice per offset
            yield from (slice(start + o, None, period) for o in range(stride))
        else:  # few blocks: one contiguous slice per block
            yield from (slice(b + start, b + start + stride) for b in range(0, self._p, period))

    def _sum(self, counts: array[int], position: int, value: int) -> int:
        return sum(sum(counts[s]) for s in self._value_slices(position, value))

    def table(self, position: int) -> dict[str, dict[str, object]]:
        """`{value as str(): {state: n, ..., "failed_reasons": {reason: n}}}` for one axis, in value order.

        Two values with the same str() (1 and '1') share a row.
        """
        states: dict[str, Counter[str]] = {}
        reasons: dict[str, Counter[str]] = {}
        for v, value in enumerate(self.sweep.axes[position].values):
            key = str(value)
            row = states.setdefault(key, Counter({state: 0 for state in sorted(self.states, key=_state_order)}))
            row.update({state: self._sum(counts, position, v) for state, counts in self.states.items()})
            why = reasons.setdefault(key, Counter())
            why.update({r: n for r, counts in self.reasons.items() if (n := self._sum(counts, position, v))})
        extra = (lambda key: {"failed_reasons": dict(reasons[key])}) if self.reasons else (lambda key: {})
        return {key: {**row, **extra(key)} for key, row in states.items()}

    def to_json(self, positions: Iterable[int] | None = None) -> dict[str, dict[str, dict[str, object]]]:
        """`status --json`'s `"by"`: per axis label, `table`; every swept axis by default."""
        chosen = self._swept() if positions is None else positions
        return {axis_label(self.sweep, p): self.table(p) for p in chosen}

    def _swept(self) -> list[int]:
        return [p for p, n in enumerate(self.sweep.sizes) if n > 1]

    def lines(self, position: int) -> list[str]:
        """`lr=1.0: 30 failed (FAILED exit 1), 2 done` per value of one axis."""
        label = axis_label(self.sweep, position)
        return [f"{label}={value}: {_row_text(row)}" for value, row in self.table(position).items()]

    # -- standouts -----------------------------------------------------------------------------

    def standouts(self, limit: int = 5) -> list[Standout]:
        """Values whose failure rate stands out, most striking first, each explaining the later ones away."""
        if FAILED not in self.states:
            return []
        failed = array(self.states[FAILED].typecode, self.states[FAILED])  # copies: named values are zeroed
        done = array(failed.typecode, self.states["done"]) if "done" in self.states else _zeros(self._p)
        found: list[Standout] = []
        while len(found) < limit:
            best = self._most_striking(failed, done)
            if best is None:
                break
            position, value, standout = best
            found.append(standout)
            for s in self._value_slices(position, value):  # explained: out of play
                failed[s] = _zeros(len(failed[s]))
                done[s] = _zeros(len(done[s]))
        return found

    def _most_striking(self, failed: array[int], done: array[int]) -> tuple[int, int, Standout] | None:
        total_failed, total_finished = sum(failed), sum(failed) + sum(done)
        best: tuple[int, int, Standout] | None = None
        for position in self._swept():
            for v, value in enumerate(self.sweep.axes[position].values):
                f = self._sum(failed, position, v)
                n = f + self._sum(done, position, v)
                rest_n = total_finished - n
                rest_rate = (total_failed - f) / rest_n if rest_n else 0.0
                candidate = Standout(axis_label(self.sweep, position), str(value), f, n, rest_rate)
                if not _stands_out(candidate):
                    continue
                if best is None or (candidate.rate, f) > (best[2].rate, best[2].failed):
                    best = (position, v, candidate)
        return best


def _state_order(state: str) -> tuple[int, str]:
    return (STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER), state)


def _stands_out(s: Standout) -> bool:
    return s.failed >= MIN_FAILED and s.rate >= RATE_FACTOR * s.rest_rate and s.rate >= s.rest_rate + RATE_MARGIN


def _row_text(row: Mapping[str, object]) -> str:
    """`30 failed (FAILED exit 1), 2 done`: failed first, then the other states that occur."""
    reasons = row.get("failed_reasons") or {}
    parts = []
    for state in sorted((s for s in row if s != "failed_reasons"), key=lambda s: (s != FAILED, s)):
        n = row[state]
        if not n:
            continue
        text = f"{n} {state}"
        if state == FAILED and isinstance(reasons, dict) and reasons:
            if len(reasons) == 1:
                text += f" ({next(iter(reasons))})"
            else:
                text += " (" + ", ".join(f"{k} {r}" for r, k in sorted(reasons.items(), key=lambda kv: -kv[1])) + ")"
        parts.append(text)
    return ", ".join(parts) or "no indices"


def breakdown(
    sweep: Sweep,
    by_state: Mapping[str, Iterable[int]],
    failed_reasons: Mapping[str, Iterable[int]] | None = None,
) -> Breakdown:
    """From `ExperimentStatus.by_state()` and `failed_by_reason()`-shaped mappings (state -> indices).

    With `failed_reasons`, the failed indices are counted from it (each under its reason).
    """
    result = Breakdown(sweep)
    for state, indices in by_state.items():
        if state == FAILED and failed_reasons is not None:
            result._counts(result.states, FAILED)
            for reason, failed in failed_reasons.items():
                result.add(FAILED, failed, reason)
        else:
            result.add(state, indices)
    return result


def breakdown_of(sweep: Sweep, statuses: Iterable[tuple[int, str, str | None]]) -> Breakdown:
    """From (index, state, reason) triples, in one pass (the reason counts for failed ones only)."""
    result = Breakdown(sweep)
    p = sweep.num_permutations
    for index, state, reason in statuses:
        permutation = index % p
        result._counts(result.states, state)[permutation] += 1
        if state == FAILED:
            result._reason_counts(reason)[permutation] += 1
    return result


def _range_counts(indices: IndexSet, p: int) -> array[int]:
    """How many of `indices` fall on each permutation (index % p), from a difference array of the ranges."""
    diff = array("q", [0]) * (p + 1)
    for start, stop in indices.ranges():
        cycles, rest = divmod(stop - start, p)
        diff[0] += cycles  # every permutation, `cycles` times
        if not rest:
            continue
        first = start % p
        end = first + rest
        diff[first] += 1
        if end <= p:
            diff[end] -= 1
        else:  # wraps past the last permutation
            diff[p] -= 1
            diff[0] += 1
            diff[end - p] -= 1
    return array("q", itertools.accumulate(diff[:p]))


def status_breakdown(status: ExperimentStatus) -> Breakdown:
    """The breakdown of one experiment's `status`: its state sets, the failed ones by reason.

    Every state of the five-state contract has a column (zeros too); `unknown` when it occurs.
    """
    result = Breakdown(status.plan.sweep)
    for state in (*STATE_ORDER, "unknown"):
        indices = status.sets[state]
        if state == FAILED:
            result._counts(result.states, FAILED)
            for reason, failed in sorted(status.reasons(FAILED).items()) if indices else ():
                result.add(FAILED, failed, reason)
        elif indices or state in STATE_ORDER:
            result.add(state, indices)
    return result


def resolve_axes(sweep: Sweep, names: Iterable[str], experiment: str) -> list[int]:
    """The positions of `status --by` axes in one experiment (UserError naming it when one is not there)."""
    try:
        return list(dict.fromkeys(resolve_axis(sweep, name) for name in names))
    except UserError as e:
        raise UserError(str(e), source=experiment) from None


@dataclass
class ByParameter:
    """`status --by`'s tables (asked axes) and the values whose failures stand out, for one experiment."""

    breakdown: Breakdown | None  # None: nothing asked and too few failures to look for a pattern
    positions: list[int]
    standouts: list[Standout]

    def to_json(self) -> dict[str, object]:
        """Keys added to the experiment's `status --json` object."""
        out: dict[str, object] = {"failures_stand_out": [s.to_json() for s in self.standouts]}
        if self.breakdown is not None and self.positions:
            out["by"] = self.breakdown.to_json(self.positions)
        return out


def by_parameter(status: ExperimentStatus, positions: Sequence[int] = ()) -> ByParameter:
    """The tables of the axes at `positions`, and the standouts when failures could cluster."""
    if not positions and len(status.sets[FAILED]) < MIN_FAILED:
        return ByParameter(None, [], [])
    result = status_breakdown(status)
    return ByParameter(result, list(positions), result.standouts())


def _zeros(n: int) -> array[int]:
    return array("i", [0]) * n

"""Sets of indices as sorted, disjoint ranges: memory follows how irregular a set is, not its size.

A sweep of ten million indices with nothing done is one range; half done in random order it is
a few million ranges at 16 bytes each, never a Python object per index. Every state of `status`
and everything `submit` selects is an `IndexSet`.
"""

from __future__ import annotations

import bisect
import itertools
import re
from array import array
from collections.abc import Iterable, Iterator

_RANGE_TEXT = re.compile(r"(\d+)(?:-(\d+))?")
_ONES = re.compile(rb"\x01+")


class IndexSet:
    """An immutable set of non-negative integers, stored as sorted half-open ranges [start, stop)."""

    __slots__ = ("_len", "_starts", "_stops")

    def __init__(self, starts: array[int] | None = None, stops: array[int] | None = None) -> None:
        """From already normalised ranges (sorted, disjoint, not touching); use the builders otherwise."""
        self._starts = starts if starts is not None else array("q")
        self._stops = stops if stops is not None else array("q")
        self._len = sum(self._stops) - sum(self._starts)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def range(cls, start: int, stop: int) -> IndexSet:
        if stop <= start:
            return cls()
        return cls(array("q", [start]), array("q", [stop]))

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int]]) -> IndexSet:
        """From half-open ranges in any order, overlapping or not."""
        builder = IndexSetBuilder()
        for start, stop in sorted(r for r in ranges if r[1] > r[0]):
            builder.add_range(start, stop, merge_overlap=True)
        return builder.build()

    @classmethod
    def of(cls, indices: Iterable[int]) -> IndexSet:
        """From indices in any order (sorted first unless they already ascend)."""
        items = indices if isinstance(indices, (list, tuple, range)) else list(indices)
        if isinstance(items, range) and items.step == 1:
            return cls.range(items.start, items.stop)
        builder = IndexSetBuilder()
        if all(a < b for a, b in itertools.pairwise(items)):
            builder.extend(items)
        else:
            builder.extend(sorted(set(items)))
        return builder.build()

    @classmethod
    def from_flags(cls, flags: bytes | bytearray) -> IndexSet:
        """The positions of the non-zero bytes (`flags` holds only 0 and 1)."""
        starts, stops = array("q"), array("q")
        for run in _ONES.finditer(flags):
            starts.append(run.start())
            stops.append(run.end())
        return cls(starts, stops)

    @classmethod
    def parse(cls, text: str) -> IndexSet:
        """From `0-3,7,9-12` (the form `text()` writes; '' is empty)."""
        ranges = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            match = _RANGE_TEXT.fullmatch(item)
            if not match:
                raise ValueError(f"invalid index range {text!r}: {item!r} is not N or N-M")
            start = int(match.group(1))
            stop = int(match.group(2)) if match.group(2) is not None else start
            if stop < start:
                raise ValueError(f"invalid index range {text!r}: {item!r} is empty")
            ranges.append((start, stop + 1))
        return cls.from_ranges(ranges)

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[int]:
        for start, stop in zip(self._starts, self._stops):
            yield from range(start, stop)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        at = bisect.bisect_right(self._starts, index) - 1
        return at >= 0 and index < self._stops[at]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexSet):
            return NotImplemented
        return self._starts == other._starts and self._stops == other._stops

    def __hash__(self) -> int:
        return hash((self._starts.tobytes(), self._stops.tobytes()))

    def __repr__(self) -> str:
        return f"IndexSet('{self.text()}')"

    def ranges(self) -> Iterator[tuple[int, int]]:
        """The half-open ranges, ascending."""
        return zip(self._starts, self._stops)

    @property
    def range_count(self) -> int:
        return len(self._starts)

    def first(self) -> int | None:
        return self._starts[0] if self._starts else None

    def last(self) -> int | None:
        return self._stops[-1] - 1 if self._stops else None

    def text(self) -> str:
        """Slurm's range style: `0-3,7,9-12` ('' for none)."""
        return ",".join(str(start) if stop - start == 1 else f"{start}-{stop - 1}" for start, stop in self.ranges())

    def slice(self, begin: int, end: int) -> IndexSet:
        """The elements at positions [begin, end) in ascending order."""
        builder = IndexSetBuilder()
        position = 0
        for start, stop in self.ranges():
            size = stop - start
            low, high = max(begin - position, 0), min(end - position, size)
            if low < high:
                builder.add_range(start + low, start + high)
            position += size
            if position >= end:
                break
        return builder.build()

    def chunks(self, size: int) -> Iterator[IndexSet]:
        """Consecutive pieces of `size` elements (the last may be smaller), in one pass over the ranges."""
        if size < 1:
            raise ValueError("chunk size must be at least 1")
        builder, room = IndexSetBuilder(), size
        for start, stop in self.ranges():
            while start < stop:
                end = min(stop, start + room)
                builder.add_range(start, end)
                room -= end - start
                start = end
                if room == 0:
                    yield builder.build()
                    builder, room = IndexSetBuilder(), size
        if room < size:
            yield builder.build()

    # -- algebra ---------------------------------------------------------------------------------

    def __or__(self, other: IndexSet) -> IndexSet:
        if not other:
            return self
        if not self:
            return other
        return IndexSet.from_ranges([*self.ranges(), *other.ranges()])

    def __and__(self, other: IndexSet) -> IndexSet:
        if not self or not other:
            return IndexSet()
        if len(other._starts) == 1:
            return self._clip(other._starts[0], other._stops[0])
        if len(self._starts) == 1:
            return other._clip(self._starts[0], self._stops[0])
        builder = IndexSetBuilder()
        mine, theirs = list(self.ranges()), list(other.ranges())
        i = j = 0
        while i < len(mine) and j < len(theirs):
            start, stop = max(mine[i][0], theirs[j][0]), min(mine[i][1], theirs[j][1])
            if start < stop:
                builder.add_range(start, stop)
            if mine[i][1] < theirs[j][1]:
                i += 1
            else:
                j += 1
        return builder.build()

    def __sub__(self, other: IndexSet) -> IndexSet:
        if not self or not other:
            return self
        if len(self._starts) == 1:
            return self._complement(other)
        builder = IndexSetBuilder()
        cuts = list(other.ranges())
        j = 0
        for start, stop in self.ranges():
            while j < len(cuts) and cuts[j][1] <= start:
                j += 1
            k, low = j, start
            while k < len(cuts) and cuts[k][0] < stop:
                if cuts[k][0] > low:
                    builder.add_range(low, cuts[k][0])
                low = max(low, cuts[k][1])
                k += 1
            if low < stop:
                builder.add_range(low, stop)
        return builder.build()

    def _clip(self, low: int, high: int) -> IndexSet:
        """This set within [low, high), by bisection: no pass over the ranges outside it."""
        first = max(bisect.bisect_right(self._stops, low), 0)
        last = bisect.bisect_left(self._starts, high)
        starts, stops = self._starts[first:last], self._stops[first:last]
        if starts and starts[0] < low:
            starts[0] = low
        if stops and stops[-1] > high:
            stops[-1] = high
        return IndexSet(starts, stops)

    def _complement(self, other: IndexSet) -> IndexSet:
        """This single range minus `other`, from `other`'s boundaries in one pass."""
        low, high = self._starts[0], self._stops[0]
        inside = other & self
        if not inside:
            return self
        starts = array("q", [low]) + inside._stops
        stops = inside._starts + array("q", [high])
        if starts[0] == stops[0]:
            starts, stops = starts[1:], stops[1:]
        if starts and starts[-1] == stops[-1]:
            starts, stops = starts[:-1], stops[:-1]
        return IndexSet(starts, stops)


class IndexSetBuilder:
    """Builds an `IndexSet` from indices (or ranges) that arrive in ascending order, in one pass."""

    __slots__ = ("_starts", "_stops")

    def __init__(self) -> None:
        self._starts: array[int] = array("q")
        self._stops: array[int] = array("q")

    def add(self, index: int) -> None:
        stops = self._stops
        if stops and index <= stops[-1]:
            if index == stops[-1]:
                stops[-1] = index + 1
                return
            if index >= self._starts[-1]:
                return  # already in the last range
            raise ValueError(f"indices must ascend: {index} after {stops[-1] - 1}")
        self._starts.append(index)
        stops.append(index + 1)

    def extend(self, indices: Iterable[int]) -> None:
        for index in indices:
            self.add(index)

    def add_range(self, start: int, stop: int, merge_overlap: bool = False) -> None:
        if stop <= start:
            return
        stops = self._stops
        if stops and start <= stops[-1]:
            if start < stops[-1] and not merge_overlap:
                raise ValueError(f"ranges must ascend: [{start}, {stop}) after {stops[-1]}")
            stops[-1] = max(stops[-1], stop)
            return
        self._starts.append(start)
        stops.append(stop)

    def build(self) -> IndexSet:
        return IndexSet(self._starts, self._stops)


def union_all(sets: Iterable[IndexSet]) -> IndexSet:
    """The union of many sets in one merge."""
    return IndexSet.from_ranges(r for s in sets for r in s.ranges())

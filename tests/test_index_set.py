"""IndexSet: the set algebra every state and selection relies on, against Python's sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.index_set import IndexSet, IndexSetBuilder, union_all

small_sets = st.sets(st.integers(min_value=0, max_value=200), max_size=80)


@given(small_sets, small_sets)
def test_algebra_matches_python_sets(a: set[int], b: set[int]) -> None:
    left, right = IndexSet.of(a), IndexSet.of(b)
    assert set(left | right) == a | b
    assert set(left & right) == a & b
    assert set(left - right) == a - b
    assert len(left) == len(a)
    assert all((i in left) == (i in a) for i in range(-1, 202))


@given(small_sets, st.integers(0, 200), st.integers(0, 200))
def test_single_range_fast_paths(b: set[int], low: int, high: int) -> None:
    """Complement and clipping against one range take shortcuts: they must agree with the general rule."""
    span = IndexSet.range(low, high)
    other = IndexSet.of(b)
    assert set(span - other) == set(range(low, high)) - b
    assert set(span & other) == set(other & span) == set(range(low, high)) & b


@given(small_sets)
def test_text_round_trip_and_flags(a: set[int]) -> None:
    indices = IndexSet.of(a)
    assert IndexSet.parse(indices.text()) == indices
    flags = bytearray(201)
    for i in a:
        flags[i] = 1
    assert IndexSet.from_flags(flags) == indices


@given(small_sets, st.integers(1, 9))
def test_chunks_and_slices_keep_order(a: set[int], size: int) -> None:
    ordered = sorted(a)
    indices = IndexSet.of(a)
    assert [list(c) for c in indices.chunks(size)] == [ordered[k : k + size] for k in range(0, len(ordered), size)]
    assert list(indices.slice(size, 3 * size)) == ordered[size : 3 * size]


def test_text_is_slurm_style() -> None:
    assert IndexSet.of([0, 1, 2, 3, 7, 9, 10, 11, 12]).text() == "0-3,7,9-12"
    assert IndexSet().text() == ""


def test_memory_follows_ranges_not_size() -> None:
    """Ten million indices in one range are one range: no per-index storage."""
    everything = IndexSet.range(0, 10_000_000)
    assert len(everything) == 10_000_000 and everything.range_count == 1
    holes = everything - IndexSet.of([5, 6_000_000])
    assert holes.range_count == 3 and len(holes) == 9_999_998


def test_builder_requires_ascending_order() -> None:
    builder = IndexSetBuilder()
    builder.extend([1, 2, 3, 3, 8])
    assert builder.build() == IndexSet.of([1, 2, 3, 8])
    with pytest.raises(ValueError):
        builder.add(2)


def test_union_all() -> None:
    assert union_all([IndexSet.of([1]), IndexSet.range(3, 5), IndexSet()]) == IndexSet.of([1, 3, 4])

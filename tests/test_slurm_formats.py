"""hours/gigs, Slurm time and memory strings, and index ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import format_memory, format_ranges, format_time, gigs, hours, parse_memory, parse_ranges, parse_time
from orchestrator.errors import UserError


def test_hours_and_gigs() -> None:
    assert hours(3) == "2:59:59"
    assert hours(1) == "0:59:59"
    assert gigs(4) == "4G"
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(UserError):
            hours(bad)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="n >= 1"):
        gigs(0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90 * 60),
        ("5:30", 5 * 60 + 30),
        ("2:59:59", 2 * 3600 + 59 * 60 + 59),
        ("1-12", 36 * 3600),
        ("1-2:30", 86400 + 2 * 3600 + 30 * 60),
        ("2-00:00:01", 2 * 86400 + 1),
        ("48:00:00", 48 * 3600),
    ],
)
def test_parse_time(text: str, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "1h", "1:2:3:4", "1-25", "1:60", "0", "0:00:00", "-1", "1.5", "1-2:3:60"])
def test_invalid_time(text: str) -> None:
    with pytest.raises(UserError, match=f"invalid time '{text}'"):
        parse_time(text)


@given(st.integers(1, 400 * 86400))
def test_format_time_round_trips(seconds: int) -> None:
    assert parse_time(format_time(seconds)) == seconds


@pytest.mark.parametrize(("text", "mb"), [("4G", 4096), ("512M", 512), ("2048", 2048), ("1T", 1048576), ("8gb", 8192)])
def test_parse_memory(text: str, mb: int) -> None:
    assert parse_memory(text) == mb


@pytest.mark.parametrize("text", ["", "4 GB", "G", "1.5G", "-1G", "0G", "12Q", "512K"])
def test_invalid_memory(text: str) -> None:
    with pytest.raises(UserError, match="invalid memory"):
        parse_memory(text)


@given(st.integers(1, 10**7))
def test_format_memory_round_trips(mb: int) -> None:
    assert parse_memory(format_memory(mb)) == mb


def test_ranges() -> None:
    assert format_ranges([9, 0, 1, 2, 3, 7, 10, 11, 12]) == "0-3,7,9-12"
    assert format_ranges([]) == ""
    assert format_ranges([5]) == "5"
    assert parse_ranges("0-3,7,9-12") == [0, 1, 2, 3, 7, 9, 10, 11, 12]
    assert parse_ranges("[4-9%2]") == [4, 5, 6, 7, 8, 9]
    assert parse_ranges("0-15:4") == [0, 4, 8, 12]
    assert parse_ranges("") == []
    for bad in ("a", "3-1", "1,,2", "1-"):
        with pytest.raises(UserError, match="invalid index range"):
            parse_ranges(bad)


@given(st.sets(st.integers(0, 5000), max_size=200))
def test_ranges_round_trip(indices: set[int]) -> None:
    text = format_ranges(indices)
    assert parse_ranges(text) == sorted(indices)
    # compressed: no two adjacent items could have been merged
    assert text.count(",") + 1 == (len(_runs(sorted(indices))) if indices else 1)


def _runs(ordered: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in ordered:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs

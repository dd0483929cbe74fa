"""States per value of a swept parameter, and the values whose failure rate stands out."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.breakdown import MAX_REASONS, OTHER_REASON, breakdown, breakdown_of, resolve_axis
from orchestrator.errors import UserError
from orchestrator.sweep import Sweep

SWEEP = Sweep({"metaParameters": {"lr": [0.01, 0.1, 1.0], "optimizer": ["sgd", "adam"], "batch": [8, 64], "seed": 1}})
RUNS = 5


def value(sweep: Sweep, index: int, name: str) -> object:
    position = [a.name for a in sweep.axes].index(f"metaParameters.{name}")
    return sweep.axes[position].values[sweep.choices(index)[position]]


def statuses(fails: object, runs: int = RUNS) -> list[tuple[int, str, str | None]]:
    """Every index done, except where `fails(index)` is true: failed with FAILED exit 1."""
    out = []
    for index in range(SWEEP.num_permutations * runs):
        failing = fails(index)  # type: ignore[operator]
        out.append((index, "failed" if failing else "done", "FAILED exit 1" if failing else None))
    return out


def test_one_value_that_always_fails() -> None:
    b = breakdown_of(SWEEP, statuses(lambda i: value(SWEEP, i, "lr") == 1.0))
    lr = resolve_axis(SWEEP, "lr")
    per_value = 2 * 2 * RUNS  # optimizer x batch x runs
    assert b.lines(lr) == [
        f"lr=0.01: {per_value} done",
        f"lr=0.1: {per_value} done",
        f"lr=1.0: {per_value} failed (FAILED exit 1)",
    ]
    assert b.to_json([lr]) == {
        "lr": {
            "0.01": {"done": per_value, "failed": 0, "failed_reasons": {}},
            "0.1": {"done": per_value, "failed": 0, "failed_reasons": {}},
            "1.0": {"done": 0, "failed": per_value, "failed_reasons": {"FAILED exit 1": per_value}},
        }
    }
    (first,) = b.standouts()
    assert (first.axis, first.value, first.failed, first.finished, first.rate, first.rest_rate) == (
        "lr",
        "1.0",
        per_value,
        per_value,
        1.0,
        0.0,
    )
    assert first.text() == f"lr=1.0: {per_value} of {per_value} finished failed (100%; 0% elsewhere)"


def test_always_failing_value_is_named_first_among_several_axes_with_noise() -> None:
    """batch=64 always fails; a few other indices fail too (every 7th); lr and optimizer do not matter."""
    b = breakdown_of(SWEEP, statuses(lambda i: value(SWEEP, i, "batch") == 64 or i % 7 == 0))
    found = b.standouts()
    assert (found[0].axis, found[0].value, found[0].rate) == ("batch", "64", 1.0)
    assert all(s.axis != "optimizer" for s in found)
    assert set(b.to_json()) == {"lr", "optimizer", "batch"}  # every swept axis (seed has one value)


def test_a_value_explained_by_another_is_not_named() -> None:
    """Failures only where lr=1.0 AND optimizer=sgd: sgd fails more than adam only because of lr=1.0."""
    b = breakdown_of(SWEEP, statuses(lambda i: value(SWEEP, i, "lr") == 1.0 and value(SWEEP, i, "optimizer") == "sgd"))
    found = b.standouts()
    assert [(s.axis, s.value) for s in found] == [("lr", "1.0")]
    assert found[0].rate == 0.5


def test_two_independent_causes_are_both_named_the_stronger_first() -> None:
    """lr=1.0 always fails; batch=64 fails in its first 3 of 5 runs."""
    p = SWEEP.num_permutations
    b = breakdown_of(
        SWEEP,
        statuses(lambda i: value(SWEEP, i, "lr") == 1.0 or (value(SWEEP, i, "batch") == 64 and i // p < 3)),
    )
    found = b.standouts()
    assert [(s.axis, s.value) for s in found] == [("lr", "1.0"), ("batch", "64")]
    assert found[1].rate == pytest.approx(0.6) and found[1].rest_rate == 0.0  # among lr != 1.0


def test_failures_spread_evenly_stand_out_nowhere() -> None:
    b = breakdown_of(SWEEP, statuses(lambda i: i % 5 == 0))
    assert b.standouts() == []
    assert breakdown_of(SWEEP, statuses(lambda i: False)).standouts() == []


def test_rates_are_over_finished_indices_only() -> None:
    """Pending, running and missing indices neither fail nor succeed."""
    p = SWEEP.num_permutations
    triples = [
        (i, "failed" if value(SWEEP, i, "lr") == 1.0 else ("pending" if i >= p else "done"), "TIMEOUT")
        for i in range(p * 3)
    ]
    b = breakdown_of(SWEEP, triples)
    (first,) = b.standouts()
    assert (first.value, first.finished, first.rest_rate) == ("1.0", 12, 0.0)
    row = b.to_json()["lr"]["0.1"]
    assert row == {"done": 4, "pending": 8, "failed": 0, "failed_reasons": {}}
    assert b.lines(resolve_axis(SWEEP, "lr"))[0] == "lr=0.01: 4 done, 8 pending"


def test_mappings_and_triples_agree() -> None:
    triples = [
        (i, s, r)
        for i, s, r in statuses(lambda i: value(SWEEP, i, "optimizer") == "adam" and i % 3 != 0)
        if i % 11 != 0
    ] + [(i, "missing", None) for i in range(0, SWEEP.num_permutations * RUNS, 11)]
    by_state: dict[str, list[int]] = {}
    reasons: dict[str, list[int]] = {}
    for index, state, reason in triples:
        by_state.setdefault(state, []).append(index)
        if state == "failed":
            reasons.setdefault(reason or "unknown", []).append(index)
    a, b = breakdown_of(SWEEP, triples), breakdown(SWEEP, by_state, reasons)
    assert a.to_json() == b.to_json()
    assert breakdown(SWEEP, by_state).to_json()["optimizer"]["adam"]["failed"] == len(by_state["failed"])


def test_reasons_are_listed_by_count() -> None:
    p = SWEEP.num_permutations
    lr_1 = [i for i in range(p * RUNS) if value(SWEEP, i, "lr") == 1.0]
    b = breakdown(SWEEP, {"failed": lr_1}, {"TIMEOUT": lr_1[:5], "OUT_OF_MEMORY": lr_1[5:]})
    line = b.lines(resolve_axis(SWEEP, "lr"))[2]
    assert line == "lr=1.0: 20 failed (15 OUT_OF_MEMORY, 5 TIMEOUT)"


def test_distinct_reasons_are_capped() -> None:
    triples = [(i, "failed", f"unknown (detail {i})") for i in range(SWEEP.num_permutations * RUNS)]
    b = breakdown_of(SWEEP, triples)
    assert len(b.reasons) == MAX_REASONS + 1
    reasons = b.to_json()["lr"]["1.0"]["failed_reasons"]
    assert isinstance(reasons, dict) and OTHER_REASON in reasons and sum(reasons.values()) == 20


def test_values_with_the_same_text_share_a_row() -> None:
    sweep = Sweep({"metaParameters": {"x": [1, "1", [1, 2]]}})
    b = breakdown_of(sweep, [(0, "done", None), (1, "failed", "TIMEOUT"), (2, "done", None)])
    assert b.to_json() == {
        "x": {
            "1": {"done": 1, "failed": 1, "failed_reasons": {"TIMEOUT": 1}},
            "[1, 2]": {"done": 1, "failed": 0, "failed_reasons": {}},
        }
    }


def test_resolve_axis() -> None:
    sweep = Sweep({"metaParameters": {"lr": [1, 2], "layers": [{"units": [8, 16]}], "env": {"lr": [3, 4]}}})
    assert [a.name for a in sweep.axes] == [
        "metaParameters.env.lr",
        "metaParameters.layers.[0].units",
        "metaParameters.lr",
    ]
    assert resolve_axis(sweep, "lr") == 2
    assert resolve_axis(sweep, "metaParameters.lr") == 2
    assert resolve_axis(sweep, "env.lr") == 0
    assert resolve_axis(sweep, "units") == 1
    with pytest.raises(UserError, match=r"^--by optimiser: no swept parameter of that name; swept: env.lr, "):
        resolve_axis(sweep, "optimiser")
    with pytest.raises(UserError, match=r"did you mean 'layers.\[0\].units'"):
        resolve_axis(sweep, "layers.[0].unit")
    two_keys = Sweep({"a": {"x": [1, 2]}, "b": {"x": [3, 4]}}, keys=["a", "b"])
    with pytest.raises(UserError, match=r"ambiguous, it could be a\.x, b\.x"):
        resolve_axis(two_keys, "x")
    assert resolve_axis(two_keys, "b.x") == 1


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    runs=st.integers(1, 3),
    data=st.data(),
)
def test_counts_per_value_equal_a_plain_count(sizes: list[int], runs: int, data: st.DataObject) -> None:
    """The strided-slice sums against counting index by index through Sweep.choices."""
    sweep = Sweep({"metaParameters": {f"a{k}": list(range(n)) for k, n in enumerate(sizes)}})
    total = sweep.num_permutations * runs
    states = data.draw(st.lists(st.sampled_from(["done", "failed", "pending"]), min_size=total, max_size=total))
    b = breakdown_of(sweep, [(i, s, "why") for i, s in enumerate(states)])
    for position, axis in enumerate(sweep.axes):
        expected: dict[str, Counter[str]] = {str(v): Counter() for v in axis.values}
        for i, s in enumerate(states):
            expected[str(axis.values[sweep.choices(i)[position]])][s] += 1
        table = b.table(position)
        for v, counts in expected.items():
            assert {k: n for k, n in table[v].items() if k != "failed_reasons" and n} == dict(+counts)

"""Invariants of sweep indexing, checked on generated sweeps (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.sweep import Sweep, leaves

KEY = st.text(alphabet="abcxyzABC019", min_size=1, max_size=4)
SCALAR = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.text(alphabet="abcXYZ019", min_size=1, max_size=5),
)


def _distinct(values: list) -> list:
    """Values whose str() differs: PyExpUtils writes str(value), so 0 and "0" share a path."""
    seen: dict[str, object] = {}
    for v in values:
        seen.setdefault(str(v), v)
    return list(seen.values())


CHOICES = st.lists(SCALAR, min_size=1, max_size=4).map(_distinct)
ELEMENT = st.dictionaries(KEY, st.one_of(SCALAR, CHOICES), min_size=1, max_size=3)
VALUE = st.one_of(
    SCALAR,
    CHOICES,
    st.dictionaries(KEY, st.one_of(SCALAR, CHOICES), min_size=0, max_size=3),
    st.lists(ELEMENT, min_size=1, max_size=3),
)
SWEEP = st.dictionaries(KEY, VALUE, min_size=0, max_size=5).map(lambda m: {"agent": "A", "metaParameters": m})


def _canonical(params: object) -> str:
    return json.dumps(params, sort_keys=True)


@settings(max_examples=200, deadline=None)
@given(SWEEP)
def test_index_to_params_is_a_bijection_within_a_run(data: dict) -> None:
    sweep = Sweep(data)
    n = sweep.num_permutations
    seen = {_canonical(sweep.params(i)) for i in range(min(n, 500))}
    assert len(seen) == min(n, 500)
    # choices decompose the index in mixed radix, first axis fastest
    for i in range(min(n, 50)):
        stride, rebuilt = 1, 0
        for digit, size in zip(sweep.choices(i), sweep.sizes):
            rebuilt += digit * stride
            stride *= size
        assert rebuilt == i


@settings(max_examples=200, deadline=None)
@given(SWEEP, st.integers(0, 10_000), st.integers(1, 7))
def test_runs_repeat_params(data: dict, index: int, r: int) -> None:
    sweep = Sweep(data)
    n = sweep.num_permutations
    assert sweep.params(index + r * n) == sweep.params(index)
    assert sweep.params_string(index + r * n) == sweep.params_string(index)
    assert sweep.run(index + r * n) == sweep.run(index) + r


@settings(max_examples=200, deadline=None)
@given(SWEEP)
def test_params_string_round_trips_and_separates_params(data: dict) -> None:
    sweep = Sweep(data)
    by_string: dict[str, str] = {}
    for i in range(min(sweep.num_permutations, 300)):
        text = sweep.params_string(i)
        params = sweep.params(i)
        expected = {path: str(value) for path, value in leaves("", params)}
        parsed = {}
        for part in text.split("_") if text else []:
            path, _, value = part.partition("-")
            parsed[path] = value
        # keys and values come from an alphabet without '_' or '-', so the string parses back
        assert parsed == expected
        canonical = _canonical(params)
        assert by_string.setdefault(text, canonical) == canonical


@settings(max_examples=100, deadline=None)
@given(SWEEP)
def test_bulk_iteration_equals_per_index(data: dict) -> None:
    sweep = Sweep(data)
    for i, (params_string, params_json) in enumerate(sweep.iter_permutations()):
        if i >= 100:
            break
        assert params_string == sweep.params_string(i)
        assert json.loads(params_json) == sweep.params(i)
        assert params_json == json.dumps(sweep.params(i))

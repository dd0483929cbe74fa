"""Sweep indexing: index <-> (parameters, run), exactly as PyExpUtils 8.1.2 computes it.

The rules are in shared/spec/pyexputils-compat.md. In short: the swept keys are walked into dotted
axes, sorted by code point; the first axis varies fastest; `run = index // permutations`.

Everything per axis is computed once in `Sweep.__init__`; an index then costs one mixed-radix
decomposition over the axes, with no copy of the experiment.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import UserError

DEFAULT_SWEEP_KEYS: tuple[str, ...] = ("metaParameters",)

# PyExpUtils orders list-of-dict elements by the string "[i]", so "[10]" sorts before "[2]".
MAX_DICTS_IN_LIST = 10

_LIST_POSITION = re.compile(r"\[\d+\]")

PathPart = str | int


def dotted(parts: Sequence[PathPart]) -> str:
    """The PyExpUtils spelling of a path: keys joined by '.', list positions as '[i]'."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in parts)


@dataclass(frozen=True)
class Axis:
    """One swept dimension: a leaf path in the experiment and the values it takes."""

    parts: tuple[PathPart, ...]
    name: str
    values: tuple[Any, ...]


class _Slot:
    """A placeholder for an axis value inside the params skeleton."""

    __slots__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis


class Sweep:
    """The index space of one experiment: its axes, permutation count and per-index values."""

    def __init__(
        self,
        data: dict[str, Any],
        keys: Sequence[str] = DEFAULT_SWEEP_KEYS,
        source: str | None = None,
    ) -> None:
        self.data = data
        self.keys = _check_keys(data, keys, source)
        self.source = source
        axes: list[Axis] = []
        for key in self.keys:
            _collect_axes(data[key], (key,), axes, source)
        axes.sort(key=lambda a: a.name)
        self.axes: tuple[Axis, ...] = tuple(axes)
        self.sizes: tuple[int, ...] = tuple(len(a.values) for a in self.axes)
        count = 1
        for n in self.sizes:
            count *= n
        self.num_permutations = count

        self._skeleton = _build_skeleton(self.axes)
        self._fragments = _params_string_fragments(self.axes, single_key=len(self.keys) == 1)
        self._static_order = _fragments_in_axis_order(self._fragments)
        # per axis: (size, text per value), leaving out one-value axes that add no text (`params_string`)
        self._axis_texts = tuple(
            (n, tuple(text for text, _ in f)) for n, f in zip(self.sizes, self._fragments) if n > 1 or f[0][0]
        )
        self._json_values = tuple(tuple(json.dumps(v) for v in a.values) for a in self.axes)
        self._json_literals, fields = _json_pieces(self._skeleton_params())
        self._json_in_axis_order = fields == list(range(len(self.axes)))
        self._params_json_format = "".join(
            _escape_format(literal) + ("{%d}" % field if n < len(fields) else "")
            for n, (literal, field) in enumerate(itertools.zip_longest(self._json_literals, fields))
        )

    # -- per index -----------------------------------------------------------------------------

    def run(self, index: int) -> int:
        return index // self.num_permutations

    def choices(self, index: int) -> list[int]:
        """The value number each axis takes at `index` (first axis fastest)."""
        out = []
        for n in self.sizes:
            index, digit = divmod(index, n)
            out.append(digit)
        return out

    def params(self, index: int) -> Any:
        """The swept sub-dict for `index`: the content of the key, or {key: content} for several."""
        chosen = self.choices(index)
        values = [copy.deepcopy(a.values[c]) for a, c in zip(self.axes, chosen)]
        return _fill(self._skeleton_params(), values)

    def permutation(self, index: int) -> dict[str, Any]:
        """The whole experiment dict with the swept keys replaced, as `getPermutation(i)`."""
        chosen = self.choices(index)
        values = [copy.deepcopy(a.values[c]) for a, c in zip(self.axes, chosen)]
        filled = _fill(self._skeleton, values)
        out = dict(filled)
        for key, value in self.data.items():
            out[key] = filled[key] if key in filled else copy.deepcopy(value)
        return out

    def params_string(self, index: int) -> str:
        """The `{params}` string: `path-value` leaves of the params, sorted, joined with '_'."""
        if not self._static_order:
            return self._params_string_from(self.choices(index))
        # one mixed-radix pass (first axis fastest), each digit picking its axis' pre-joined text
        parts = []
        for size, texts in self._axis_texts:
            if size == 1:
                parts.append(texts[0])
                continue
            index, digit = divmod(index, size)
            text = texts[digit]
            if text:
                parts.append(text)
        return "_".join(parts)

    def params_json(self, index: int) -> str:
        """`json.dumps(self.params(index))`, from text pre-rendered per axis value."""
        chosen = self.choices(index)
        return self._params_json_format.format(*(jv[c] for jv, c in zip(self._json_values, chosen)))

    # -- bulk ----------------------------------------------------------------------------------

    def iter_params_strings(self) -> Iterator[str]:
        """`{params}` strings for permutations 0..N-1, in order."""
        for block, _ in self._blocks(with_json=False):
            yield from block

    def iter_permutations(self) -> Iterator[tuple[str, str]]:
        """(params string, params JSON) for permutations 0..N-1, in order."""
        for strings, jsons in self._blocks(with_json=True):
            yield from zip(strings, jsons)

    def _blocks(self, with_json: bool) -> Iterator[tuple[list[str], list[str]]]:
        """Texts in blocks of the first axis' values, which vary fastest.

        The other axes' text is joined once per block, so an index costs two concatenations.
        Only for the rare sweep whose leaves do not sort in axis order is each index sorted.
        """
        if not self.axes:
            yield [""], [self._params_json_format.format()]
            return
        if not (self._static_order and self._json_in_axis_order):
            for start in range(0, self.num_permutations, 1024):
                stop = min(start + 1024, self.num_permutations)
                yield (
                    [self.params_string(i) for i in range(start, stop)],
                    [self.params_json(i) for i in range(start, stop)] if with_json else [],
                )
            return
        first_texts = [text for text, _ in self._fragments[0]]
        first_json = self._json_values[0]
        literals = self._json_literals
        others = range(1, len(self.axes))
        # itertools.product varies its LAST argument fastest: feed it the axes in reverse.
        for reversed_choices in itertools.product(*(range(self.sizes[k]) for k in reversed(others))):
            chosen = reversed_choices[::-1]
            suffix = "_".join([t for t in (self._fragments[k][c][0] for k, c in zip(others, chosen)) if t])
            if suffix:
                strings = [f"{t}_{suffix}" if t else suffix for t in first_texts]
            else:
                strings = first_texts
            if not with_json:
                yield strings, []
                continue
            tail = literals[1] + "".join(self._json_values[k][c] + literals[k + 1] for k, c in zip(others, chosen))
            head = literals[0]
            yield strings, [head + j + tail for j in first_json]

    # -- internals -----------------------------------------------------------------------------

    def _skeleton_params(self) -> Any:
        if len(self.keys) == 1:
            key = self.keys[0]
            return self._skeleton.get(key, self.data[key])
        return {key: self._skeleton.get(key, self.data[key]) for key in self.keys}

    def _params_string_from(self, chosen: Sequence[int]) -> str:
        if self._static_order:
            return "_".join([s for s in (f[c][0] for f, c in zip(self._fragments, chosen)) if s])
        leaves = [leaf for f, c in zip(self._fragments, chosen) for leaf in f[c][1]]
        leaves.sort()
        return "_".join(text for _, text in leaves)


# -- validation and axis collection -----------------------------------------------------------


def _check_keys(data: dict[str, Any], keys: Sequence[str], source: str | None) -> tuple[str, ...]:
    if isinstance(keys, str):
        keys = (keys,)
    keys = tuple(keys)
    if not keys:
        raise UserError("no swept keys given", source=source)
    if len(set(keys)) != len(keys):
        raise UserError(f"swept keys repeat: {', '.join(keys)}", source=source)
    for key in keys:
        if key not in data:
            present = ", ".join(sorted(map(str, data))) or "none"
            raise UserError(f"swept key '{key}' is missing (top-level keys: {present})", source=source)
    if len(keys) == 1 and not isinstance(data[keys[0]], dict):
        raise UserError(
            "the swept key must hold an object of parameters when it is the only swept key",
            source=source,
            key_path=keys[0],
        )
    return keys


def _check_key(key: Any, parts: tuple[PathPart, ...], source: str | None) -> str:
    where = dotted(parts) if parts else None
    if not isinstance(key, str):
        raise UserError(f"key {key!r} is not a string (quote it)", source=source, key_path=where)
    if key == "":
        raise UserError("empty key name", source=source, key_path=where)
    if "." in key:
        raise UserError(
            f"key '{key}' contains '.', which PyExpUtils reads as nesting; rename it",
            source=source,
            key_path=where,
        )
    if _LIST_POSITION.match(key):
        raise UserError(f"key '{key}' looks like a list position; rename it", source=source, key_path=where)
    return key


def _collect_axes(value: Any, parts: tuple[PathPart, ...], out: list[Axis], source: str | None) -> None:
    """Walk a swept value into axes (PyExpUtils' flatKeys), rejecting what it mangles."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_key(key, parts, source)
            _collect_axes(sub, parts + (key,), out, source)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        _collect_list_of_dicts(value, parts, out, source)
    elif isinstance(value, list):
        if not value:
            raise UserError(
                "empty list: a swept value needs at least one choice", source=source, key_path=dotted(parts)
            )
        for position, choice in enumerate(value):
            _check_choice(choice, parts + (position,), source)
        out.append(Axis(parts, dotted(parts), tuple(value)))
    else:
        out.append(Axis(parts, dotted(parts), (value,)))


def _collect_list_of_dicts(value: list[Any], parts: tuple[PathPart, ...], out: list[Axis], source: str | None) -> None:
    where = dotted(parts)
    if len(value) > MAX_DICTS_IN_LIST:
        raise UserError(
            f"a list of {len(value)} objects; PyExpUtils reorders and drops elements past "
            f"{MAX_DICTS_IN_LIST} ('[10]' sorts before '[2]')",
            source=source,
            key_path=where,
        )
    for position, element in enumerate(value):
        element_parts = parts + (position,)
        if not isinstance(element, dict):
            raise UserError(
                "a list that starts with an object must hold only objects (it is expanded element by element)",
                source=source,
                key_path=dotted(element_parts),
            )
        if not element:
            raise UserError(
                "an empty object inside a list of objects shifts the elements after it in PyExpUtils",
                source=source,
                key_path=dotted(element_parts),
            )
        for key, sub in element.items():
            _check_key(key, element_parts, source)
            if isinstance(sub, dict):
                raise UserError(
                    "an object directly inside an element of a list of objects is flattened by PyExpUtils; "
                    "move it out of the list or wrap it in a list of choices",
                    source=source,
                    key_path=dotted(element_parts + (key,)),
                )
            _collect_axes(sub, element_parts + (key,), out, source)


def _check_choice(value: Any, parts: tuple[PathPart, ...], source: str | None) -> None:
    """A chosen value is later flattened into the `{params}` string: refuse what crashes that."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_key(key, parts, source)
            _check_choice(sub, parts + (key,), source)
    elif isinstance(value, list):
        if not value:
            raise UserError("empty list inside a choice", source=source, key_path=dotted(parts))
        if isinstance(value[0], dict):
            for position, element in enumerate(value):
                if not isinstance(element, dict):
                    raise UserError(
                        "a list that starts with an object must hold only objects",
                        source=source,
                        key_path=dotted(parts + (position,)),
                    )
                _check_choice(element, parts + (position,), source)


# -- the params skeleton and its text forms ---------------------------------------------------


def _build_skeleton(axes: Sequence[Axis]) -> dict[str, Any]:
    """The swept keys' structure with a `_Slot` per axis, built in sorted axis order.

    Building in sorted order reproduces PyExpUtils' key order (`reconstructParameters`).
    """
    root: dict[str, Any] = {}
    for number, axis in enumerate(axes):
        node: Any = root
        for here, after in zip(axis.parts, axis.parts[1:]):
            child_type = list if isinstance(after, int) else dict
            if isinstance(here, int):
                if here >= len(node):
                    node.append(child_type())
                node = node[here]
            else:
                node = node.setdefault(here, child_type())
        last = axis.parts[-1]
        if isinstance(last, int):
            node.append(_Slot(number))
        else:
            node[last] = _Slot(number)
    return root


def _fill(skeleton: Any, values: Sequence[Any]) -> Any:
    if isinstance(skeleton, _Slot):
        return values[skeleton.axis]
    if isinstance(skeleton, dict):
        return {k: _fill(v, values) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_fill(v, values) for v in skeleton]
    return copy.deepcopy(skeleton)


def _json_pieces(skeleton: Any) -> tuple[list[str], list[int]]:
    """The params' `json.dumps` text split around the axis values: literals[k] precedes field k."""
    literals: list[str] = []
    fields: list[int] = []
    current: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, _Slot):
            literals.append("".join(current))
            current.clear()
            fields.append(node.axis)
        elif isinstance(node, dict):
            current.append("{")
            for i, (k, v) in enumerate(node.items()):
                current.append((", " if i else "") + json.dumps(k) + ": ")
                walk(v)
            current.append("}")
        elif isinstance(node, list):
            current.append("[")
            for i, v in enumerate(node):
                if i:
                    current.append(", ")
                walk(v)
            current.append("]")
        else:
            current.append(json.dumps(node))

    walk(skeleton)
    literals.append("".join(current))
    return literals, fields


def _escape_format(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def leaves(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """PyExpUtils' `flatKeys` + `get` for one value at `prefix`: (dotted path, leaf value) pairs."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, sub in value.items():
            out.extend(leaves(f"{prefix}.{key}" if prefix else key, sub))
        return out
    if isinstance(value, list):
        if isinstance(value[0], dict):
            return [leaf for i, sub in enumerate(value) for leaf in leaves(f"{prefix}.[{i}]", sub)]
        return [(f"{prefix}.[{i}]", element) for i, element in enumerate(value)]
    return [(prefix, value)]


# Per axis, per value: (joined text of its leaves, [(leaf path, "path-value"), ...]).
Fragments = tuple[tuple[tuple[str, list[tuple[str, str]]], ...], ...]


def _params_string_fragments(axes: Sequence[Axis], single_key: bool) -> Fragments:
    out = []
    for axis in axes:
        prefix = dotted(axis.parts[1:] if single_key else axis.parts)
        per_value = []
        for value in axis.values:
            pairs = sorted((path, f"{path}-{leaf}") for path, leaf in leaves(prefix, value))
            per_value.append(("_".join(text for _, text in pairs), pairs))
        out.append(tuple(per_value))
    return tuple(out)


def _fragments_in_axis_order(fragments: Fragments) -> bool:
    """True when every leaf of axis k sorts before every leaf of axis k+1, whatever the values.

    Then the `{params}` string is the per-axis texts joined in axis order, with no sort per index.
    (It fails only for exotic sweeps, e.g. axis `a` choosing lists, giving `a.[0]`, beside `a-b`.)
    """
    previous_max: str | None = None
    for per_value in fragments:
        paths = [path for _, pairs in per_value for path, _ in pairs]
        if not paths:
            continue
        if previous_max is not None and min(paths) <= previous_max:
            return False
        previous_max = max(paths)
    return True

"""What every part of the report shares: row and target records, ratios, growth, and the registry entry type.

A benchmark's part of the report is a `Part`: functions that turn the results JSON into table rows,
targets, plot panels and "how it is measured" bullets. `report.py` lists the parts in order; adding a
benchmark to the report is writing its functions and adding one `Part` to that list.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, Any]
Row = dict[str, Any]
Target = dict[str, Any]


def row(
    section: str,
    size: str,
    metric: str,
    ours: str,
    ref: str = "-",
    ratio: str = "-",
    target: str = "",
    met: bool | None = None,
) -> Row:
    """One line of the results table."""
    return {
        "section": section,
        "size": size,
        "metric": metric,
        "ours": ours,
        "ref": ref,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def target(issue: int, item: str, wanted: str, result: str, met: bool | None, why: str = "") -> Target:
    """One target of an issue; `why` (the measured cause) is only worth computing when it is not met."""
    return {"issue": issue, "item": item, "target": wanted, "result": result, "met": met, "why": why}


def ratio(better: float | None, worse: float | None) -> str:
    """How many times better ours is: `better`/`worse` with both oriented so that > 1 is ours ahead."""
    if not better or not worse:
        return "-"
    r = better / worse
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2f}x"


def mark(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def slope(points: list[tuple[float, float]]) -> float | None:
    """Growth exponent between the smallest and the largest size (1 = linear)."""
    points = [(n, t) for n, t in points if n and t]
    if len(points) < 2:
        return None
    (n0, t0), (n1, t1) = min(points), max(points)
    if n1 == n0:
        return None
    return math.log(t1 / t0) / math.log(n1 / n0)


def sacct_chunk(results: Results) -> int:
    """Job ids per sacct call: SlurmCommands.sacct's default in the code that was measured."""
    return results.get("library", {}).get("sacct_chunk") or 200


# A plot panel: (results keys it needs, draw(ax, results) -> (title, y label)); drawn when any key is present.
Panel = tuple[tuple[str, ...], Callable[[Any, Results], tuple[str, str]]]


@dataclass(frozen=True)
class Part:
    """One benchmark's share of the report.

    Every hook takes the whole results dict; all but `method` are called only when the part is `present`.
    """

    name: str
    needs: tuple[str, ...] | None = None  # results keys of which one must be present (None: `name`; (): always)
    rows: Callable[[Results], list[Row]] | None = None
    targets: Callable[[Results], list[Target]] | None = None
    growth: Callable[[Results], dict[str, tuple[float | None, float | None]]] | None = None
    panels: tuple[Panel, ...] = ()
    profiles: Callable[[Results], list[tuple[str, dict[str, Any]]]] | None = None
    method: Callable[[Results], list[str]] | None = None  # called even when the benchmark did not run

    def present(self, results: Results) -> bool:
        keys = (self.name,) if self.needs is None else self.needs
        return not keys or any(results.get(key) for key in keys)


# -- plot helpers (the panels' functions receive a matplotlib Axes) -----------------------------------

OURS_STYLE = {"color": "tab:blue", "marker": "o"}
REF_STYLE = {"color": "tab:red", "marker": "s"}


def series(ax: Any, xs: list[Any], ys: list[Any], style: dict[str, Any], label: str, estimated=None) -> None:
    """A line; the points marked in `estimated` (extrapolated, not measured) again as hollow markers."""
    ax.plot(xs, ys, label=label, **style)
    if estimated:
        ex = [x for x, e in zip(xs, estimated) if e]
        ey = [y for y, e in zip(ys, estimated) if e]
        ax.plot(
            ex,
            ey,
            linestyle="none",
            marker=style["marker"],
            markerfacecolor="white",
            markeredgecolor=style["color"],
            markersize=9,
            label=f"{label}: extrapolated",
        )

"""The report's part for issue 10: a PyExpUtils results.db read by our store vs `detectMissingIndices`.

The measurements are `results_db_bench.section`'s: one row per database shape, each with our time
(`PyExpUtilsStore.done`, and `result_store.finder` as status asks), PyExpUtils' and whether the two
answers agreed index by index (they must: the benchmark fails otherwise).
"""

from __future__ import annotations

from typing import Any

from common import fmt_seconds, fmt_size
from report_base import OURS_STYLE, REF_STYLE, Part, Results, Row, Target, ratio, row, series, slope, target

ISSUE = 10
TARGET_INDICES, TARGET_RUNS, TARGET_RATIO = 10**5, 100, 20.0  # the issue: 1e5 indices over one database

Figures = dict[str, Any]


def _shape(r: Figures) -> str:
    return f"{fmt_size(r['indices'])}: {r['permutations']:,} settings x {r['runs']:,} runs"


def _is_target(r: Figures) -> bool:
    return r["kind"] == "main" and (r["indices"], r["runs"]) == (TARGET_INDICES, TARGET_RUNS)


def resultsdb_rows(results: Results) -> list[Row]:
    out = []
    for r in results["resultsdb"]["rows"]:
        ours, ref, asked = r["ours_seconds"], r["pyexputils_seconds"], r["ours_status_seconds"]
        wanted, met = (f">= {TARGET_RATIO:g}x", ref / ours >= TARGET_RATIO) if _is_target(r) else ("", None)
        out += [
            row(
                "results.db",
                _shape(r),
                "which indices are done: PyExpUtilsStore.done vs detectMissingIndices",
                fmt_seconds(ours),
                fmt_seconds(ref),
                ratio(ref, ours),
                wanted,
                met,
            ),
            row(
                "results.db",
                _shape(r),
                "the same as status asks (finder: store recognised, then done)",
                fmt_seconds(asked),
                fmt_seconds(ref),
                ratio(ref, asked),
            ),
        ]
    return out


def resultsdb_targets(results: Results) -> list[Target]:
    rows = results["resultsdb"]["rows"]
    wanted = (
        f">= {TARGET_RATIO:g}x detectMissingIndices at {fmt_size(TARGET_INDICES)} indices over one database"
        f" ({TARGET_INDICES // TARGET_RUNS:,} settings x {TARGET_RUNS} runs)"
    )
    found = next((r for r in rows if _is_target(r)), None)
    if found is None:
        return [target(ISSUE, "Fast (pyexputils-db)", wanted, "not measured in this run", None)]
    times = found["pyexputils_seconds"] / found["ours_seconds"]
    result = (
        f"{times:.0f}x (ours {fmt_seconds(found['ours_seconds'])}, detectMissingIndices"
        f" {fmt_seconds(found['pyexputils_seconds'])}; as status asks: {found['status_ratio']:.0f}x)"
    )
    others = [r for r in rows if r["indices"] == TARGET_INDICES and r is not found]
    if others:
        shapes = [
            f"{r['permutations']:,} x {r['runs']:,}: {ratio(r['pyexputils_seconds'], r['ours_seconds'])}"
            for r in others
        ]
        result += "; other shapes of 1e5: " + ", ".join(shapes)
    met = times >= TARGET_RATIO
    return [target(ISSUE, "Fast (pyexputils-db)", wanted, result, met, "" if met else _why(found))]


def _why(r: Figures) -> str:
    """Where each side spends its time: ours per result row read, PyExpUtils per setting queried."""
    return (
        f"Ours reads every (config_id, seed) of `results` once and matches in Python: about"
        f" {r['ours_seconds'] / max(1, r['result_rows']) * 1e6:.1f} us per result row here. PyExpUtils runs two"
        f" table scans per setting in SQLite's C code: {r['pyexputils_seconds'] / r['permutations'] * 1e3:.1f} ms"
        " per setting here, so its time grows with settings x rows and ours with rows alone: the ratio grows with"
        " the number of settings and shrinks with the runs per setting."
    )


def resultsdb_growth(results: Results) -> dict[str, tuple[float | None, float | None]]:
    main = [r for r in results["resultsdb"]["rows"] if r["kind"] == "main"]
    ours = slope([(r["indices"], r["ours_seconds"]) for r in main])
    reference = slope([(r["indices"], r["pyexputils_seconds"]) for r in main])
    return {"results.db (pyexputils-db)": (ours, reference)}


def resultsdb_panel(ax: Any, results: Results) -> tuple[str, str]:
    main = [r for r in results["resultsdb"]["rows"] if r["kind"] == "main"]
    n = [r["indices"] for r in main]
    series(ax, n, [r["ours_seconds"] for r in main], OURS_STYLE, "ours: PyExpUtilsStore.done")
    cyan = {"color": "tab:cyan", "marker": "^"}
    series(ax, n, [r["ours_status_seconds"] for r in main], cyan, "ours as status asks (finder)")
    series(ax, n, [r["pyexputils_seconds"] for r in main], REF_STYLE, "PyExpUtils detectMissingIndices")
    runs = results["resultsdb"].get("runs", TARGET_RUNS)
    return f"results.db: which indices are done ({runs} runs per setting)", "seconds"


def resultsdb_method(results: Results) -> list[str]:
    part = results.get("resultsdb")
    if not part:
        return []
    return [
        "- **results.db (issue 10).** One PyExpUtils v2 database, `results/bench/DQN/results.db` (save path"
        " `results/{name}/{agent}`, shared by every index), written with `sqlite3` in the layout of PyExpUtils'"
        " `saveCollector` (the `hyperparameters` values as its SQL text, random 62-bit `config_id`s, one"
        " `results` row per index present) for a seeded random 90% of the indices of a three-axis sweep (a float,"
        " a nested string, an int) with"
        f" {part.get('runs', TARGET_RUNS)} runs per setting, plus other numbers of settings at 1e5 where measured."
        " Ours: `PyExpUtilsStore.done` (reads the two tables once, matches in Python), and a fresh"
        " `result_store.finder` as `status` and `submit` ask (recognises the database, then the same)"
        f"; median of {part.get('repeat', 1)}. Reference: `PyExpUtils.results.sqlite.detectMissingIndices`, once,"
        " on a copy of the database (it inserts rows while it reads). The two missing sets must be equal, index by"
        " index, or the benchmark fails. Each shape runs in a fresh interpreter (`results_db_bench.py`).",
    ]


RESULTSDB = Part(
    "resultsdb",
    rows=resultsdb_rows,
    targets=resultsdb_targets,
    growth=resultsdb_growth,
    panels=((("resultsdb",), resultsdb_panel),),
    method=resultsdb_method,
)

"""The report's part for issue 11: status and submit --dry-run at scale, as whole processes (scale_bench.py)."""

from __future__ import annotations

from typing import Any

from common import fmt_count, fmt_seconds, fmt_size
from report_base import OURS_STYLE, REF_STYLE, Part, Results, Row, Target, ratio, row, series, target

ISSUE = 11
STATUS_LIMITS = {10**6: (1.5, 100.0), 10**7: (15.0, 300.0)}  # indices -> (seconds, MB), nothing submitted
HALF_DONE = (10**6, 3.0)  # at 1e6, half done in random order: at most 3x the all-missing time
SUBMIT_LIMITS = ((10**6, 1000, 5.0), (10**5, 11, 3.0))  # (missing indices, tasks per array, seconds)
SYSCALLS_PER_INDEX = 1.0

Measured = dict[str, Any]


def cell(m: Measured | None) -> str:
    """'1.23 s, 45 MB', '~140 s, 30 MB' (extrapolated) or 'killed at the 4 GB limit after 31 s (3,980 MB)'."""
    if not m:
        return "-"
    if m["killed"]:
        limit = f"the {m.get('limit_gb', 0):g} GB" if m["killed"] == "memory" else "the time"
        return f"killed at {limit} limit after {fmt_seconds(m['seconds'])} ({m['peak_rss_mb']:,.0f} MB)"
    return ("~" if m.get("extrapolated") else "") + f"{fmt_seconds(m['seconds'])}, {_mb(m['peak_rss_mb'])}"


def _mb(value: float) -> str:
    return f"{value:.1f} MB" if value < 10 else f"{value:,.0f} MB"


def _ok(m: Measured, seconds: float, mb: float | None = None) -> bool:
    return not m["killed"] and m["seconds"] <= seconds and (mb is None or m["peak_rss_mb"] <= mb)


def _label(r: dict[str, Any]) -> str:
    size = fmt_size(r["indices"])
    if r["pattern"] == "skipped":
        return f"{size}, 100%"
    if r["pattern"] == "sparse":
        return f"{size}, {r['fraction']:.1%} (sparse)"
    return f"{size}, {r['fraction']:.0%}"


def _all_missing(scale: dict[str, Any], indices: int) -> dict[str, Any] | None:
    return next((r for r in scale["rows"] if r["indices"] == indices and r["pattern"] == "none"), None)


# -- rows -------------------------------------------------------------------------------------------


def scale_rows(results: Results) -> list[Row]:
    scale = results["scale"]
    out = []
    for r in scale["rows"]:
        out += _state_rows(scale, r)
    small = scale["small_arrays"]
    limit = next((s for n, t, s in SUBMIT_LIMITS if (n, t) == (small["indices"], small["max_array_tasks"])), None)
    metric = f"submit --dry-run, arrays of {small['max_array_tasks']:,}: time, peak RSS"
    wanted, met = (f"<= {limit:g} s", _ok(small, limit)) if limit else ("", None)
    out.append(row("Scale", f"{fmt_size(small['indices'])}, 0%", metric, cell(small), "-", "-", wanted, met))
    for s in scale["syscalls"]:
        out.append(_syscall_row(s))
    return out


def _state_rows(scale: dict[str, Any], r: dict[str, Any]) -> list[Row]:
    """Status, submit --dry-run and the plain exists loop on one tree, each beside PyExpUtils' loop."""
    size = _label(r)
    if r["pattern"] == "skipped":
        return [row("Scale", size, "status, submit --dry-run, loops", "not measured (too many directories to create)")]
    ref, status, submit = r["reference"], r["status"], r["submit"]
    wanted, met = _status_target(scale, r)
    submit_wanted, submit_met = "", None
    for n, tasks, seconds in SUBMIT_LIMITS:
        if (r["indices"], r["pattern"], submit["max_array_tasks"]) == (n, "none", tasks):
            submit_wanted, submit_met = f"<= {seconds:g} s", _ok(submit, seconds)
    vs = None if ref["killed"] else ref["seconds"]
    return [
        row(
            "Scale",
            size,
            "status --json: time, peak RSS",
            cell(status),
            cell(ref),
            _time_ratio(vs, status),
            wanted,
            met,
        ),
        row(
            "Scale",
            size,
            f"submit --dry-run, arrays of {submit['max_array_tasks']:,}: time, peak RSS",
            cell(submit),
            cell(ref),
            _time_ratio(vs, submit),
            submit_wanted,
            submit_met,
        ),
        row(
            "Scale",
            size,
            "exists loop over plan.save_paths(): time, peak RSS",
            cell(r["exists"]),
            cell(ref),
            _time_ratio(vs, r["exists"]),
        ),
    ]


def _time_ratio(reference: float | None, m: Measured) -> str:
    return "-" if m["killed"] else ratio(reference, m["seconds"])


def _status_target(scale: dict[str, Any], r: dict[str, Any]) -> tuple[str, bool | None]:
    n, status = r["indices"], r["status"]
    if r["pattern"] == "none" and n in STATUS_LIMITS:
        seconds, mb = STATUS_LIMITS[n]
        return f"<= {seconds:g} s, {mb:g} MB", _ok(status, seconds, mb)
    empty = _all_missing(scale, n)
    if (n, r["requested"]) == (HALF_DONE[0], 0.5) and empty:
        factor = HALF_DONE[1]
        met = not empty["status"]["killed"] and _ok(status, factor * empty["status"]["seconds"])
        return f"<= {factor:g}x the 0% time", met
    return "", None


def per_index(calls: int, n: int) -> str:
    """Calls per index, with the digits that tell 1.0037 from 1 (and from 0.9963)."""
    value = calls / n
    return f"{value:.2f}" if abs(value - 1) >= 0.005 or calls == n else f"{value:.4f}"


def _syscall_row(s: dict[str, Any]) -> Row:
    ours, stat, n = s["ours"]["total"], s["stat"]["total"], s["indices"]
    return row(
        "Scale",
        f"{fmt_size(n)} x {s['runs']} run{'s' if s['runs'] > 1 else ''}, 100%",
        "scan syscalls under results/ (strace): status vs exists loop",
        f"{per_index(ours, n)} per index ({fmt_count(ours)})",
        f"{per_index(stat, n)} per index ({fmt_count(stat)})",
        ratio(stat, ours),
        f"<= {SYSCALLS_PER_INDEX:g} per index",
        ours <= SYSCALLS_PER_INDEX * n,
    )


# -- targets ----------------------------------------------------------------------------------------


def scale_targets(results: Results) -> list[Target]:
    scale = results["scale"]
    out = [_status_limit_target(scale, n, seconds, mb) for n, (seconds, mb) in STATUS_LIMITS.items()]
    out.append(_half_done_target(scale))
    out += [_submit_target(scale, n, tasks, seconds) for n, tasks, seconds in SUBMIT_LIMITS]
    for runs in (1, 10):
        out.append(_syscall_target(scale, runs))
    return out


def _not_measured(item: str, wanted: str) -> Target:
    return target(ISSUE, item, wanted, "not measured in this run", None)


def _status_limit_target(scale: dict[str, Any], n: int, seconds: float, mb: float) -> Target:
    wanted = f"{fmt_size(n)} indices, nothing submitted, no results: <= {seconds:g} s and {mb:g} MB peak RSS"
    r = _all_missing(scale, n)
    if not r:
        return _not_measured("Status", wanted)
    m = r["status"]
    met = _ok(m, seconds, mb)
    return target(ISSUE, "Status", wanted, cell(m), met, "" if met else _cost_why(m, n))


def _cost_why(m: Measured, n: int) -> str:
    """What one index costs, from a whole process (start-up included)."""
    if m["killed"] == "memory":
        return (
            f"Stopped by the run's {m.get('limit_gb', 0):g} GB address-space limit (`RLIMIT_AS`) with"
            f" {m['peak_rss_mb']:,.0f} MB resident, after {fmt_seconds(m['seconds'])}."
        )
    if m["killed"]:
        return f"Stopped by the run's time limit after {fmt_seconds(m['seconds'])}."
    per_array = f"; {m['arrays']:,} arrays, {m['seconds'] / m['arrays'] * 1e3:.1f} ms each" if m.get("arrays") else ""
    return (
        f"About {m['seconds'] / n * 1e6:.1f} us and {m['peak_rss_mb'] * 1e6 / n:,.0f} bytes of peak RSS per index,"
        f" start-up included{per_array}."
    )


def _half_done_target(scale: dict[str, Any]) -> Target:
    n, factor = HALF_DONE
    wanted = f"{fmt_size(n)} indices, a random half present: <= {factor:g}x the all-missing time"
    empty = _all_missing(scale, n)
    half = next((r for r in scale["rows"] if r["indices"] == n and r["requested"] == 0.5), None)
    if not (empty and half):
        return _not_measured("Status, half done", wanted)
    if half["status"]["killed"] or empty["status"]["killed"]:
        return target(
            ISSUE, "Status, half done", wanted, f"{cell(half['status'])} (0%: {cell(empty['status'])})", False
        )
    times = half["status"]["seconds"] / empty["status"]["seconds"]
    result = (
        f"{fmt_seconds(half['status']['seconds'])}: {times:.1f}x the {fmt_seconds(empty['status']['seconds'])} of 0%"
    )
    met = times <= factor
    return target(ISSUE, "Status, half done", wanted, result, met, "" if met else _half_done_why(empty, half))


def _half_done_why(empty: dict[str, Any], half: dict[str, Any]) -> str:
    """What the half-done run pays that the all-missing one does not, beside the exists loop on that tree."""
    n = half["indices"]
    scan = (half["status"]["seconds"] - empty["status"]["seconds"]) / n * 1e6
    return (
        "The 0% tree has no `results/` at all: `status` answers it with one stat of the save paths' constant"
        f" prefix and no scan, so the 0% time is start-up ({fmt_seconds(empty['status']['seconds'])}). The half-done"
        f" run scans: about {scan:.1f} us per index more. On the same half-done tree a plain exists loop over our"
        f" save paths takes {fmt_seconds(half['exists']['seconds'])} and PyExpUtils' loop"
        f" {'~' if half['reference'].get('extrapolated') else ''}{fmt_seconds(half['reference']['seconds'])}."
    )


def _submit_target(scale: dict[str, Any], n: int, tasks: int, seconds: float) -> Target:
    wanted = f"{fmt_size(n)} missing indices into arrays of {tasks:,}: <= {seconds:g} s"
    small = scale["small_arrays"]
    if (small["indices"], small["max_array_tasks"]) == (n, tasks):
        m = small
    else:
        r = _all_missing(scale, n)
        m = r["submit"] if r and r["submit"]["max_array_tasks"] == tasks else None
    if not m:
        return _not_measured("Submit --dry-run", wanted)
    met = _ok(m, seconds)
    return target(ISSUE, "Submit --dry-run", wanted, cell(m), met, "" if met else _cost_why(m, n))


def _syscall_target(scale: dict[str, Any], runs: int) -> Target:
    s = next((s for s in scale["syscalls"] if s["runs"] == runs), None)
    wanted = (
        f"<= {SYSCALLS_PER_INDEX:g} metadata call per index, {runs} run{'s' if runs > 1 else ''} per result directory"
    )
    if not s:
        return _not_measured("Scan (all results present)", wanted)
    n = s["indices"]
    calls = ", ".join(f"{fmt_count(v)} {k}" for k, v in sorted(s["ours"]["by_call"].items(), key=lambda kv: -kv[1]))
    result = (
        f"{per_index(s['ours']['total'], n)} per index on {fmt_size(n)} indices ({calls});"
        f" exists loop {per_index(s['stat']['total'], n)}"
    )
    met = s["ours"]["total"] <= SYSCALLS_PER_INDEX * n
    return target(ISSUE, "Scan (all results present)", wanted, result, met, "" if met else _syscall_why(s))


def _syscall_why(s: dict[str, Any]) -> str:
    """The calls beyond one per index, by name, from the trace."""
    n, calls = s["indices"], s["ours"]["by_call"]
    stats = calls.get("newfstatat", 0) + calls.get("stat", 0)
    listing = calls.get("openat", 0) + calls.get("getdents64", 0)
    return (
        f"{fmt_count(s['ours']['total'] - n)} calls over one per index: {fmt_count(stats)} stats for"
        f" {fmt_size(n)} result directories of one path each, and {fmt_count(listing)} calls of listing"
        f" ({fmt_count(calls.get('openat', 0))} `openat`, {fmt_count(calls.get('getdents64', 0))} `getdents64`)."
        " With save paths `base/<params>/<run>`, the listing of `base` answers for every permutation without"
        " results; with every result present it answers for none, and each one is stat'd as well."
    )


# -- plot -------------------------------------------------------------------------------------------


def _lines(ax: Any, scale: dict[str, Any], value: str) -> None:
    """`value` ("seconds" or "peak_rss_mb") of status per done fraction, submit, and the two loops."""
    rows = [r for r in scale["rows"] if r["pattern"] != "skipped"]
    sparse = f"{fmt_size(scale['sparse_from'])} and up: {scale['sparse_fraction']:.1%}"
    for fraction, shade, label in ((0.0, 0.45, "0%"), (0.5, 0.7, f"50% ({sparse})"), (1.0, 1.0, "100%")):
        part = [r for r in rows if r["requested"] == fraction and not r["status"]["killed"]]
        if part:
            style = {**OURS_STYLE, "alpha": shade}
            series(ax, [r["indices"] for r in part], [r["status"][value] for r in part], style, f"status, {label}")
    empty = [r for r in rows if r["requested"] == 0]
    for key, style, label in (
        ("submit", {"color": "tab:purple", "marker": "^"}, "submit --dry-run, 0%"),
        ("exists", {"color": "tab:green", "marker": "D"}, "exists loop over save_paths(), 0%"),
    ):
        part = [r for r in empty if not r[key]["killed"]]
        series(ax, [r["indices"] for r in part], [r[key][value] for r in part], style, label)
    half = [r for r in rows if r["requested"] == 0.5 and not r["reference"]["killed"]]
    estimated = [r["reference"].get("extrapolated", False) for r in half] if value == "seconds" else None
    series(
        ax,
        [r["indices"] for r in half],
        [r["reference"][value] for r in half],
        REF_STYLE,
        "PyExpUtils loop, 50%",
        estimated,
    )
    killed = [(r["indices"], r[k][value]) for r in rows for k in ("status", "submit", "exists") if r[k]["killed"]]
    if killed:
        ax.plot(*zip(*killed), linestyle="none", marker="X", color="black", markersize=9, label="killed at a limit")


def scale_time_panel(ax: Any, results: Results) -> tuple[str, str]:
    _lines(ax, results["scale"], "seconds")
    limits = [(n, s) for n, (s, _) in STATUS_LIMITS.items()]
    ax.plot(*zip(*limits), linestyle="none", marker="_", color="gray", markersize=18, mew=2, label="target, status 0%")
    return "Scale: whole process, wall time (no Slurm)", "seconds"


def scale_memory_panel(ax: Any, results: Results) -> tuple[str, str]:
    _lines(ax, results["scale"], "peak_rss_mb")
    limits = [(n, mb) for n, (_, mb) in STATUS_LIMITS.items()]
    ax.plot(*zip(*limits), linestyle="none", marker="_", color="gray", markersize=18, mew=2, label="target, status 0%")
    return "Scale: whole process, peak RSS", "MB (10^6 bytes)"


# -- method -----------------------------------------------------------------------------------------


def scale_method(results: Results) -> list[str]:
    scale = results.get("scale")
    if not scale:
        return []
    small = scale["small_arrays"]
    return [
        "- **Scale (issue 11).** The same sweep (10 runs) at each size; result directories made for a seeded random"
        f" 50%, then all, of the indices, except from {fmt_size(scale['sparse_from'])} indices on, where only"
        f" {scale['sparse_fraction']:.1%} are made (random: creating millions of directories takes too long) and"
        " 100% is not measured. Each measurement is a whole process: wall time from start to exit, peak RSS from"
        " that child's `ru_maxrss` (`wait4`), MB = 10^6 bytes. `orchestrator status --json`, and `orchestrator"
        " submit --dry-run --json --executor local` with a profile of `max_array_tasks:"
        f" {scale['array_tasks']}` (and of {small['max_array_tasks']} for the {fmt_size(small['indices'])} row),"
        " run with a PATH holding none of Slurm's commands and an empty ledger, so Slurm is never asked. Each"
        f" process runs under an address-space limit (`RLIMIT_AS`) of {scale['memory_limit_gb']:g} GB and a"
        f" {scale['timeout']:.0f} s timeout; one that hits either is reported as killed. The answers are checked:"
        " status's done count and the dry run's indices must match the tree. Reference: PyExpUtils'"
        " `interpolateSavePath(i)` and `os.path.exists` in a loop (collecting the missing indices) over the first"
        f" {scale['ref_limit']:,} indices; beyond that its time is the process's plus the loop's time per index for"
        " the rest (marked ~), its RSS as measured. Beside them, a plain `os.path.exists` loop over our"
        " `ExperimentPlan.save_paths()` (collecting the missing indices), as a whole process too. Scan syscalls:"
        " `strace -f -y -e trace=%file,getdents64` over the whole `status` process and the whole exists loop,"
        " counting each call whose path or file descriptor lies under `results/`, on a tree with every result"
        " present, one and ten runs per result directory.",
    ]


SCALE = Part(
    "scale",
    rows=scale_rows,
    targets=scale_targets,
    panels=((("scale",), scale_time_panel), (("scale",), scale_memory_panel)),
    method=scale_method,
)

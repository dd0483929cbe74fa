"""The results as a table (terminal and Markdown), the targets of issue 7, the plot and docs/PERFORMANCE.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from common import fmt_count, fmt_seconds, fmt_size

REPRODUCE = "benchmarks/run"


def _ratio(better: float | None, worse: float | None) -> str:
    """How many times better ours is: `better`/`worse` with both oriented so that > 1 is ours ahead."""
    if not better or not worse:
        return "-"
    r = better / worse
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2f}x"


def _mark(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Growth exponent between the smallest and the largest size (1 = linear)."""
    points = [(n, t) for n, t in points if n and t]
    if len(points) < 2:
        return None
    (n0, t0), (n1, t1) = min(points), max(points)
    if n1 == n0:
        return None
    return math.log(t1 / t0) / math.log(n1 / n0)


# -- rows --------------------------------------------------------------------------------------


def _chunk(results: dict[str, Any]) -> int:
    """Job ids per sacct call: SlurmCommands.sacct's default in the code that was measured."""
    return results.get("library", {}).get("sacct_chunk") or 200


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    chunk = _chunk(results)

    def add(section, size, metric, ours, ref="-", ratio="-", target="", met=None):
        out.append(
            {
                "section": section,
                "size": size,
                "metric": metric,
                "ours": ours,
                "ref": ref,
                "ratio": ratio,
                "target": target,
                "met": met,
            }
        )

    planning = results.get("planning")
    if planning:
        for r in planning["rows"]:
            size = fmt_size(r["indices"])
            ratio = r["ours_rate"] / r["ref_rate"]
            add(
                "Planning",
                size,
                "save paths/s, whole sweep (plan.save_paths())",
                f"{r['ours_rate']:,.0f}",
                f"{r['ref_rate']:,.0f}",
                _ratio(r["ours_rate"], r["ref_rate"]),
                ">= 20x",
                ratio >= 20,
            )
            random_ratio = r["ours_random_rate"] / r["ref_rate"]
            add(
                "Planning",
                size,
                "save paths/s, one index at a time (save_path(i))",
                f"{r['ours_random_rate']:,.0f}",
                f"{r['ref_rate']:,.0f}",
                _ratio(r["ours_random_rate"], r["ref_rate"]),
                ">= 20x",
                random_ratio >= 20,
            )
            ref_time = ("~" if r["ref_extrapolated"] else "") + fmt_seconds(r["ref_seconds"])
            add(
                "Planning",
                size,
                "time for every save path of the sweep",
                fmt_seconds(r["ours_seconds"]),
                ref_time,
                _ratio(r["ref_seconds"], r["ours_seconds"]),
            )

    jsonl = results.get("jsonl")
    if jsonl:
        first = jsonl["rows"][0]["peak_rss_mib"]
        for r in jsonl["rows"]:
            add(
                "plan --jsonl",
                fmt_size(r["indices"]),
                "peak RSS (stdout to /dev/null)",
                f"{r['peak_rss_mib']:.1f} MiB",
                "-",
                f"{r['peak_rss_mib'] / first:.2f} of smallest",
                "flat",
            )
            add(
                "plan --jsonl",
                fmt_size(r["indices"]),
                "wall time (lines/s)",
                f"{fmt_seconds(r['seconds'])} ({r['rate']:,.0f}/s)",
            )

    scan = results.get("scan")
    if scan:
        for r in scan["rows"]:
            size = f"{fmt_size(r['indices'])}, {r['fraction']:.0%}"
            o, s = r["ours"], r["stat"]
            if o["syscalls"] and s["syscalls"]:
                add(
                    "Completeness",
                    size,
                    "metadata syscalls (strace)",
                    fmt_count(o["syscalls"]["total"]),
                    fmt_count(s["syscalls"]["total"]),
                    _ratio(s["syscalls"]["total"], o["syscalls"]["total"]),
                    "< 1 per index",
                    o["syscalls"]["total"] < r["indices"],
                )
            bound = r["result_dirs"] + 1
            add(
                "Completeness",
                size,
                "directory listings (bound: result dirs + their common parent)",
                fmt_count(o["listings"]),
                f"{fmt_count(s['stats'])} stats",
                "-",
                f"<= {bound:,}",
                o["listings"] <= bound,
            )
            add(
                "Completeness",
                size,
                "time to classify every index (warm cache)",
                fmt_seconds(o["seconds"]),
                fmt_seconds(s["seconds"]),
                _ratio(s["seconds"], o["seconds"]),
            )

    submit = results.get("submit")
    if submit:
        ref = submit["reference"]
        for r in submit["rows"]:
            size = fmt_size(r["indices"]) + ("" if r["indices_per_task"] == 256 else f" ({r['indices_per_task']}/task)")
            calls = r["submit_calls"]["sbatch"]
            if r["indices_per_task"] == ref["per_job"]:
                n, seconds, measured = _reference_estimate(ref, r["indices"])
                ref_calls, ref_time = fmt_count(n), ("" if measured else "~") + fmt_seconds(seconds)
            else:
                n = seconds = None
                ref_calls = ref_time = "-"
            add(
                "Submission",
                size,
                f"sbatch calls ({r['tasks']:,} tasks of {r['indices_per_task']})",
                fmt_count(calls),
                ref_calls,
                _ratio(n, calls),
                f"fewest = {r['fewest_sbatch']}",
                calls == r["fewest_sbatch"],
            )
            add(
                "Submission",
                size,
                "whole submit, wall time",
                fmt_seconds(r["submit_seconds"]),
                ref_time,
                _ratio(seconds, r["submit_seconds"]),
                "< 10 s",
                r["submit_seconds"] < 10,
            )
            others = ", ".join(f"{v} {k}" for k, v in r["submit_calls"].items() if v and k != "sbatch")
            add("Submission", size, "other commands run by submit", others or "none")
        for r in submit["rows"]:
            size = fmt_size(r["indices"]) + ("" if r["indices_per_task"] == 256 else f" ({r['indices_per_task']}/task)")
            for key, what in (("pending", "status, all held (pending)"), ("cancelled", "status, all cancelled")):
                c = r[f"status_{key}_calls"]
                ok = c["squeue"] == 1 and c["sacct"] <= math.ceil(max(1, r["status_cancelled_jobs"]) / chunk)
                add(
                    "Status (real jobs)",
                    size,
                    f"{what}: squeue + sacct calls",
                    f"{c['squeue']} + {c['sacct']}",
                    "-",
                    "-",
                    "1 + batched",
                    ok,
                )
                seconds = r[f"status_{key}_seconds"]
                add(
                    "Status (real jobs)",
                    size,
                    f"{what}: wall time",
                    fmt_seconds(seconds),
                    "-",
                    "-",
                    "< 5 s",
                    seconds < 5,
                )

    status = results.get("status")
    if status:
        for r in status["rows"]:
            size = fmt_size(r["indices"])
            c = r["calls"]
            naive_calls = 1 + r["jobs"]
            naive_seconds = status["squeue_seconds"] + r["jobs"] * status["naive_mean_sacct"]
            ok = c["squeue"] == 1 and c["sacct"] <= math.ceil(r["jobs"] / chunk)
            add(
                "Status (many jobs)",
                size,
                f"squeue + sacct calls, {r['jobs']:,} finished jobs",
                f"{c['squeue']} + {c['sacct']}",
                f"1 + {r['jobs']:,}",
                _ratio(naive_calls, c["squeue"] + c["sacct"]),
                "1 + batched",
                ok,
            )
            add(
                "Status (many jobs)",
                size,
                "status --json, wall time",
                fmt_seconds(r["seconds"]),
                "~" + fmt_seconds(naive_seconds),
                _ratio(naive_seconds, r["seconds"]),
                "< 5 s",
                r["seconds"] < 5,
            )
    return out


def _reference_estimate(ref: dict[str, Any], indices: int) -> tuple[int, float, bool]:
    n = math.ceil(indices / ref["per_job"])
    if n <= ref["calls"]:
        return n, ref["elapsed_after"][n - 1], True
    return n, n * (ref["mean_sbatch_seconds"] + ref["sleep"]), False


# -- targets -----------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def add(item, target, result, met):
        out.append({"item": item, "target": target, "result": result, "met": met})

    planning = results.get("planning")
    if planning:
        bulk = min(r["ours_rate"] / r["ref_rate"] for r in planning["rows"])
        single = min(r["ours_random_rate"] / r["ref_rate"] for r in planning["rows"])
        add(
            "2. Planning",
            ">= 20x PyExpUtils interpolateSavePath (save paths/s)",
            f"whole sweep: {bulk:.0f}x at worst; one index at a time: {single:.1f}x at worst",
            bulk >= 20,
        )
        add("2. Planning", ">= 20x also for random access save_path(i)", f"{single:.1f}x at worst", single >= 20)
    jsonl = results.get("jsonl")
    if jsonl:
        rss = [r["peak_rss_mib"] for r in jsonl["rows"]]
        n = [r["indices"] for r in jsonl["rows"]]
        growth = max(rss) / min(rss)
        add(
            "2. plan --jsonl",
            f"peak RSS flat from {fmt_size(n[0])} to {fmt_size(n[-1])} indices",
            f"{min(rss):.1f} to {max(rss):.1f} MiB ({growth:.2f}x for {n[-1] // n[0]:,}x the indices)",
            growth <= 1.2,
        )
    scan = results.get("scan")
    if scan:
        worst = max(r["ours"]["listings"] / (r["result_dirs"] + 1) for r in scan["rows"])
        traced = [r for r in scan["rows"] if r["ours"]["syscalls"]]
        per_index = max((r["ours"]["syscalls"]["total"] / r["indices"] for r in traced), default=None)
        add(
            "3. Completeness",
            "<= 1 listing per distinct result directory",
            f"at most {worst:.2f} listings per result directory",
            worst <= 1.0,
        )
        if per_index is not None:
            add(
                "3. Completeness",
                "never one metadata call per index",
                f"at most {per_index:.2f} metadata syscalls per index (strace)",
                per_index < 1,
            )
        empty = [r for r in scan["rows"] if r["fraction"] == 0]
        if empty:
            most = max(r["ours"]["listings"] for r in empty)
            add(
                "3. Completeness",
                "(the scanner's own claim) a missing subtree costs one listing",
                f"a sweep with no results/ yet: up to {most:,} listings",
                most <= 1,
            )
    submit = results.get("submit")
    if submit:
        main = [r for r in submit["rows"] if r["indices_per_task"] == submit["reference"]["per_job"]]
        fewest = all(r["submit_calls"]["sbatch"] == r["fewest_sbatch"] for r in submit["rows"])
        biggest = max(main, key=lambda r: r["indices"])
        add(
            "4. Submission",
            "fewest sbatch calls the limits allow (ceil(tasks / MaxArraySize))",
            ", ".join(
                f"{fmt_size(r['indices'])}: {r['submit_calls']['sbatch']} (fewest {r['fewest_sbatch']})"
                for r in submit["rows"]
            ),
            fewest,
        )
        slowest = max(r["submit_seconds"] for r in submit["rows"])
        add(
            "4. Submission",
            f"whole submit of {fmt_size(biggest['indices'])} indices < 10 s",
            f"{fmt_seconds(biggest['submit_seconds'])} (slowest submit: {fmt_seconds(slowest)})",
            slowest < 10,
        )
    status = results.get("status")
    if status or submit:
        chunk = _chunk(results)
        runs = []  # (calls, finished jobs, seconds, indices, what)
        if status:
            runs += [(r["calls"], r["jobs"], r["seconds"], r["indices"], "many") for r in status["rows"]]
        if submit:
            for r in submit["rows"]:
                jobs = r["status_cancelled_jobs"]
                runs.append((r["status_pending_calls"], 0, r["status_pending_seconds"], r["indices"], "real"))
                runs.append((r["status_cancelled_calls"], jobs, r["status_cancelled_seconds"], r["indices"], "real"))
        squeue_ok = all(c["squeue"] == 1 for c, *_ in runs)
        sacct_ok = all(c["sacct"] <= math.ceil(jobs / chunk) for c, jobs, *_ in runs)
        most = max(runs, key=lambda run: run[0]["sacct"])
        add("5. Status", "one squeue per status", "1 in every run" if squeue_ok else "more than 1", squeue_ok)
        add(
            "5. Status",
            "sacct calls bounded and batched",
            f"at most {most[0]['sacct']} ({most[1]:,} finished jobs; {chunk} ids per call)",
            sacct_ok,
        )
        for what, label in (("real", "real submission"), ("many", "one job per 11 indices")):
            part = [run for run in runs if run[4] == what]
            if not part:
                continue
            biggest = max(run[3] for run in part)
            slowest = max(run[2] for run in part if run[3] == biggest)
            jobs = max(run[1] for run in part if run[3] == biggest)
            detail = f", {jobs:,} jobs" if what == "many" else ""
            add(
                "5. Status",
                f"status of {fmt_size(biggest)} indices < 5 s ({label}{detail})",
                f"slowest: {fmt_seconds(slowest)}",
                slowest < 5,
            )
    reference = reference_scaling(results)
    for name, exponent in scaling(results).items():
        text = f"growth exponent {exponent:.2f}"
        if name in reference:
            text += f" (the reference, measured on the same trees: {reference[name]:.2f})"
        add("6. Scaling", f"{name}: linear or better", text, exponent <= 1.1)
    return out


def scaling(results: dict[str, Any]) -> dict[str, float]:
    """Growth exponents of our times between the smallest and largest size (1.0 = linear)."""
    out = {}
    if results.get("planning"):
        out["planning"] = _slope([(r["indices"], r["ours_seconds"]) for r in results["planning"]["rows"]])
    if results.get("jsonl"):
        out["plan --jsonl"] = _slope([(r["indices"], r["seconds"]) for r in results["jsonl"]["rows"]])
    if results.get("scan"):
        half = [r for r in results["scan"]["rows"] if r["fraction"] == 0.5]
        out["completeness (50%)"] = _slope([(r["indices"], r["ours"]["seconds"]) for r in half])
    if results.get("submit"):
        main = [r for r in results["submit"]["rows"] if r["indices_per_task"] == 256]
        out["submission"] = _slope([(r["indices"], r["submit_seconds"]) for r in main])
    if results.get("status"):
        out["status (many jobs)"] = _slope([(r["indices"], r["seconds"]) for r in results["status"]["rows"]])
    return {k: v for k, v in out.items() if v is not None}


def reference_scaling(results: dict[str, Any]) -> dict[str, float]:
    """Growth exponents of the reference where it was measured at every size (not extrapolated)."""
    out = {}
    if results.get("scan"):
        half = [r for r in results["scan"]["rows"] if r["fraction"] == 0.5]
        out["completeness (50%)"] = _slope([(r["indices"], r["stat"]["seconds"]) for r in half])
    return {k: v for k, v in out.items() if v is not None}


# -- text --------------------------------------------------------------------------------------

HEADERS = ("benchmark", "size", "metric", "ours", "reference", "ratio", "target", "met")
RATIO_NOTE = (
    "ratio: how many times better ours is (rates: ours/reference; times and calls: reference/ours). "
    "~ = extrapolated from a measured sample (see docs/PERFORMANCE.md)."
)


def _cells(r: dict[str, Any]) -> list[str]:
    return [r["section"], r["size"], r["metric"], r["ours"], r["ref"], r["ratio"], r["target"], _mark(r["met"])]


def text_table(results: dict[str, Any]) -> str:
    table = [list(HEADERS)] + [_cells(r) for r in rows(results)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(HEADERS))]
    lines = []
    for number, line in enumerate(table):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(RATIO_NOTE)
    lines.append("")
    lines.append("Targets (issue 7):")
    for t in targets(results):
        lines.append(f"  [{_mark(t['met']):>3}] {t['item']}: {t['target']} -> {t['result']}")
    for note in results.get("skipped", []):
        lines.append(f"SKIPPED: {note}")
    return "\n".join(lines)


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows(results):
        cells = [c.replace("|", "\\|") for c in _cells(r)]
        cells[2] = (
            cells[2].replace("plan.save_paths()", "`plan.save_paths()`").replace("save_path(i)", "`save_path(i)`")
        )
        cells[7] = {"yes": "yes", "NO": "**NO**", "": ""}[cells[7]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- plot --------------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    ours_style = {"color": "tab:blue", "marker": "o"}
    ref_style = {"color": "tab:red", "marker": "s"}

    def series(ax, xs, ys, style, label, estimated=None):
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

    def finish(ax, title, ylabel):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("indices in the sweep")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)

    ax = axes[0][0]
    p = results.get("planning")
    if p:
        n = [r["indices"] for r in p["rows"]]
        series(ax, n, [r["ours_seconds"] for r in p["rows"]], ours_style, "ours, whole sweep")
        series(
            ax,
            n,
            [r["indices"] / r["ours_random_rate"] for r in p["rows"]],
            {"color": "tab:cyan", "marker": "^"},
            "ours, save_path(i) each",
        )
        series(
            ax,
            n,
            [r["ref_seconds"] for r in p["rows"]],
            ref_style,
            "PyExpUtils interpolateSavePath",
            [r["ref_extrapolated"] for r in p["rows"]],
        )
    finish(ax, "Planning: every save path of the sweep", "seconds")

    ax = axes[0][1]
    j = results.get("jsonl")
    if j:
        n = [r["indices"] for r in j["rows"]]
        series(ax, n, [r["seconds"] for r in j["rows"]], ours_style, "ours: plan --jsonl, seconds")
        series(
            ax,
            n,
            [r["peak_rss_mib"] for r in j["rows"]],
            {"color": "tab:green", "marker": "D"},
            "ours: plan --jsonl, peak RSS (MiB)",
        )
    finish(ax, "plan --jsonl > /dev/null: time and memory", "seconds / MiB")

    ax = axes[0][2]
    s = results.get("scan")
    if s:
        for fraction, shade in ((0.0, 0.45), (0.5, 0.7), (1.0, 1.0)):
            part = [r for r in s["rows"] if r["fraction"] == fraction]
            if not part:
                continue
            n = [r["indices"] for r in part]
            series(
                ax,
                n,
                [r["ours"]["seconds"] for r in part],
                {**ours_style, "alpha": shade},
                f"ours, {fraction:.0%} present",
            )
            series(
                ax,
                n,
                [r["stat"]["seconds"] for r in part],
                {**ref_style, "alpha": shade},
                f"stat per index, {fraction:.0%} present",
            )
    finish(ax, "Completeness: classify every index (local disk, warm)", "seconds")

    ax = axes[1][0]
    sub = results.get("submit")
    if sub:
        main = [r for r in sub["rows"] if r["indices_per_task"] == sub["reference"]["per_job"]]
        n = [r["indices"] for r in main]
        series(ax, n, [r["submit_seconds"] for r in main], ours_style, "ours: orchestrator submit")
        est = [_reference_estimate(sub["reference"], x) for x in n]
        series(ax, n, [e[1] for e in est], ref_style, "template: sbatch per 256, 2 s apart", [not e[2] for e in est])
        ax.axhline(10, color="gray", linestyle="--", linewidth=1, label="target 10 s")
    finish(ax, "Submission on the real cluster (256 indices/task)", "seconds")

    ax = axes[1][1]
    st = results.get("status")
    if st:
        n = [r["indices"] for r in st["rows"]]
        series(ax, n, [r["seconds"] for r in st["rows"]], ours_style, "ours: status --json")
        series(
            ax,
            n,
            [st["squeue_seconds"] + r["jobs"] * st["naive_mean_sacct"] for r in st["rows"]],
            ref_style,
            "one sacct per job",
            [True] * len(n),
        )
        ax.axhline(5, color="gray", linestyle="--", linewidth=1, label="target 5 s")
    finish(ax, "Status over many jobs (1 job per 11 indices)", "seconds")

    ax = axes[1][2]
    if s:
        half = [r for r in s["rows"] if r["fraction"] == 0.5 and r["ours"]["syscalls"]]
        if half:
            n = [r["indices"] for r in half]
            series(ax, n, [r["ours"]["syscalls"]["total"] for r in half], ours_style, "scan 50%: ours, syscalls")
            series(ax, n, [r["stat"]["syscalls"]["total"] for r in half], ref_style, "scan 50%: stat each, syscalls")
    if sub:
        main = [r for r in sub["rows"] if r["indices_per_task"] == sub["reference"]["per_job"]]
        n = [r["indices"] for r in main]
        series(
            ax,
            n,
            [r["submit_calls"]["sbatch"] for r in main],
            {"color": "tab:purple", "marker": "o"},
            "ours: sbatch calls",
        )
        series(
            ax,
            n,
            [math.ceil(x / sub["reference"]["per_job"]) for x in n],
            {"color": "tab:orange", "marker": "s"},
            "template: sbatch calls",
        )
    if st:
        n = [r["indices"] for r in st["rows"]]
        series(
            ax, n, [r["calls"]["sacct"] for r in st["rows"]], {"color": "tab:olive", "marker": "o"}, "ours: sacct calls"
        )
        series(ax, n, [r["jobs"] for r in st["rows"]], {"color": "tab:brown", "marker": "s"}, "naive: sacct calls")
    finish(ax, "Calls to the filesystem and to Slurm", "calls")

    m = results.get("machine", {})
    fig.suptitle(
        f"orchestrator vs PyExpUtils {m.get('pyexputils')} - {m.get('cores')} cores {m.get('cpu')}, "
        f"Python {m.get('python')}, {m.get('slurm')}",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- docs/PERFORMANCE.md -----------------------------------------------------------------------


def write_docs(results: dict[str, Any], docs: Path) -> list[Path]:
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / "performance.png"
    plot(results, png)
    md = docs / "PERFORMANCE.md"
    md.write_text(performance_md(results))
    return [md, png]


def performance_md(results: dict[str, Any]) -> str:
    m = results["machine"]
    sizes = results["sizes"]
    t = targets(results)
    unmet = [x for x in t if x["met"] is False]
    lines = [
        "# Performance",
        "",
        "Orchestrator beside PyExpUtils (`pyexputils-andnp` "
        f"{m.get('pyexputils')}) and the rl-control-template's way of submitting, at three sizes each.",
        f"Generated by `{REPRODUCE}` on {results['started']} (run time {fmt_seconds(results.get('elapsed_seconds'))});"
        " every number below comes from `benchmarks/results.json` of that run. Do not edit by hand: run it again.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "scripts/slurm-test-cluster.sh up  # the submission and status benchmarks need the test cluster",
        f"{REPRODUCE}                     # full run ({_minutes(results)} here): prints the table, rewrites",
        "                                   # benchmarks/results.json, docs/PERFORMANCE.md, docs/performance.png",
        f"{REPRODUCE} --smoke             # tiny sizes, under a minute, docs/ untouched (CI runs this)",
        "```",
        "",
        "`benchmarks/run` makes `benchmarks/.venv` (the project installed editable, `pyexputils-andnp==8.1.2` and"
        " matplotlib: none of them is a dependency of the project) and installs `strace` with apt-get if it is"
        " missing. Slurm work runs under `flock /tmp/orch-slurm.lock`; every job it submits is held and cancelled"
        " by id. Details: benchmarks/README.md.",
        "",
        "## Machine",
        "",
        f"- CPU: {m.get('cpu')}, {m.get('cores')} cores; memory {m.get('memory')}",
        f"- {m.get('os')}, kernel {m.get('kernel')}; /tmp on {m.get('tmp_filesystem')}",
        f"- Python {m.get('python')}; {m.get('slurm')} (single-node test cluster, MaxArraySize=11); {m.get('strace')}",
        f"- orchestrator at {m.get('orchestrator_commit')}",
        "",
        "## Targets of issue 7",
        "",
        "| item | target | result | met |",
        "|---|---|---|---|",
    ]
    for x in t:
        lines.append(f"| {x['item']} | {x['target']} | {x['result']} | {'yes' if x['met'] else '**NO**'} |")
    lines += ["", *(_unmet_notes(results, unmet)), "## Results", "", RATIO_NOTE, "", markdown_table(results), ""]
    lines += ["![time and calls vs sweep size, ours vs reference](performance.png)", ""]
    lines += _profiles(results)
    lines += _method(results, sizes)
    for note in results.get("skipped", []):
        lines.append(f"- Skipped in this run: {note}")
    return "\n".join(lines).rstrip() + "\n"


def _minutes(results: dict[str, Any]) -> str:
    seconds = results.get("elapsed_seconds") or 0
    return f"{max(1, round(seconds / 60))} minutes"


def _unmet_notes(results: dict[str, Any], unmet: list[dict[str, Any]]) -> list[str]:
    if not unmet:
        return ["Every target is met.", ""]
    out = ["Not met, and why (measured causes; the profiles are under *Where the time goes*):", ""]
    for x in unmet:
        why = _why(results, x)
        out.append(f"- **{x['item']}, {x['target']}**: {x['result']}. {why}".rstrip())
    out.append("")
    return out


def _why(results: dict[str, Any], target: dict[str, Any]) -> str:
    """The cause of an unmet target, from this run's numbers and profiles."""
    item, text = target["item"], target["target"]
    if item.startswith("2. Planning") and "random access" in text:
        worst = min(results["planning"]["rows"], key=lambda r: r["ours_random_rate"] / r["ref_rate"])
        return (
            f"One `save_path(i)` costs {1e6 / worst['ours_random_rate']:.1f} us here against"
            f" {1e6 / worst['ours_rate']:.1f} us per path in the whole-sweep iterator, which joins the other axes'"
            " text once per block of first-axis values; `Sweep.params_string(i)` builds the digits with `choices()`,"
            " then joins the axes' texts through a generator, then `SavePathTemplate.render` runs `str.format`."
            " `plan`, `status` and `submit` use the whole-sweep iterator; entry scripts ask for one index per process."
        )
    if item.startswith("3. Completeness") and "missing subtree" in text:
        empty = max((r for r in results["scan"]["rows"] if r["fraction"] == 0), key=lambda r: r["indices"])
        return (
            f"With no `results/` at all, the scanner made {empty['ours']['listings']:,} listings for"
            f" {empty['result_dirs']:,} result directories: `ResultScanner._children` lists a directory whose"
            " parent's listing failed because the parent is missing, instead of concluding the child is missing"
            " too, so a sweep that has never run costs one failed `openat` per result directory instead of one."
        )
    if item.startswith("5. Status") and "< 5 s" in text:
        parts = []
        status = results.get("status") or {}
        if "jobs" in text and status.get("rows"):
            r = max(status["rows"], key=lambda r: r["indices"])
            sacct = r["calls"]["sacct"] * status["naive_mean_sacct"]
            parts.append(
                f"{r['calls']['sacct']} sacct calls (up to {_chunk(results)} ids each) at"
                f" {fmt_seconds(status['naive_mean_sacct'])} a call (measured; the cost hardly depends on the"
                f" number of ids) make about {fmt_seconds(sacct)} of it"
            )
            if r.get("profile"):
                parts.append(_profile_hint(r["profile"]))
        elif results.get("submit"):
            rows = [r for r in results["submit"]["rows"] if r.get("status_cancelled_profile")]
            if rows:
                r = rows[0]
                parts.append(
                    f"held: {fmt_seconds(r['status_pending_seconds'])}, cancelled (every task out of the queue):"
                    f" {fmt_seconds(r['status_cancelled_seconds'])}"
                )
                parts.append(_profile_hint(r["status_cancelled_profile"]))
        return "; ".join(parts) + "." if parts else ""
    if item.startswith("6. Scaling"):
        return (
            "Measured on one tree per size under the same conditions; where the reference grows faster on the same"
            " trees, part of the growth is the filesystem's (lookups in larger directories), not the algorithm's."
        )
    return ""


def _profile_hint(profile: dict[str, Any]) -> str:
    """Where a profiled run spent its own time (non-overlapping), as a phrase."""
    total = profile["seconds"]
    named = []
    for r in profile["by_own"][:4]:
        where = r["where"].removeprefix("orchestrator/")
        gloss = " (waiting for Slurm's commands)" if "select.poll" in where else ""
        named.append(f"`{where}`{gloss} {r['own'] / total:.0%}")
    return "under cProfile the most own time goes to " + ", ".join(named)


def _profiles(results: dict[str, Any]) -> list[str]:
    found = []
    submit = results.get("submit") or {}
    if submit.get("submit_profile"):
        found.append(("`orchestrator submit` of the largest sweep (its own held jobs)", submit["submit_profile"]))
    for r in submit.get("rows", []):
        if r.get("status_cancelled_profile"):
            title = f"`orchestrator status` of {fmt_size(r['indices'])} indices, every task cancelled"
            found.append((title, r["status_cancelled_profile"]))
    for r in (results.get("status") or {}).get("rows", []):
        if r.get("profile"):
            found.append(
                (f"`orchestrator status` of {fmt_size(r['indices'])} indices over {r['jobs']:,} jobs", r["profile"])
            )
    if not found:
        return []
    out = [
        "## Where the time goes",
        "",
        "The largest runs once more under cProfile (which slows them down: the shares matter, not the seconds)."
        " Our functions by cumulative time, then everything by own time.",
        "",
    ]
    for title, p in found:
        out += [f"**{title}**: {fmt_seconds(p['seconds'])} under cProfile", ""]
        out += [
            "| our function | calls | cumulative | share | | anything, by own time | own |",
            "|---|---|---|---|---|---|---|",
        ]
        for ours, own in zip(p["by_total"], p["by_own"]):
            share = ours["total"] / p["seconds"]
            out.append(
                f"| `{ours['where']}` | {ours['calls']:,} | {ours['total']:.2f} s | {share:.0%} | |"
                f" `{own['where']}` | {own['own']:.2f} s |"
            )
        out.append("")
    return out


def _listing_cost(results: dict[str, Any]) -> str:
    """What one listing costs in syscalls, from the largest fully present tree."""
    rows = [r for r in (results.get("scan") or {}).get("rows", []) if r["fraction"] == 1 and r["ours"]["syscalls"]]
    if not rows:
        return ""
    r = max(rows, key=lambda r: r["indices"])
    calls = r["ours"]["syscalls"]["by_call"]
    listings = r["ours"]["listings"]
    spelled = ", ".join(f"{n / listings:.1f} {name}" for name, n in sorted(calls.items(), key=lambda kv: -kv[1]))
    return f" One listing costs {spelled} here (a stat per index costs one `newfstatat` or `stat`)."


def _method(results: dict[str, Any], sizes: dict[str, Any]) -> list[str]:
    submit = results.get("submit") or {}
    ref = submit.get("reference") or {}
    status = results.get("status") or {}
    return [
        "## How each number is measured",
        "",
        "- **The sweep.** `experiments/bench/sweep.json` in a throwaway project under /tmp: six hyperparameter axes"
        " (the first k with 10 values each, the rest fixed), a fixed `batch_size`, a nested `optimizer` dict and"
        " 10 runs; `save_path` is `results/{name}/{agent}/{params}/{run}`, so every path has seven `path-value`"
        " leaves at every size. A sweep of N indices has N/10 permutations (N/10 distinct result directories).",
        "- **Planning.** Ours: `ExperimentPlan.save_paths()` over the whole sweep, and `save_path(i)` for a random"
        f" sample of up to {sizes['planning_random_limit']:,} indices; best of {sizes['repeat']}. Reference:"
        " PyExpUtils `interpolateSavePath(i)` for i in 0..N-1 on the same file, through the rl-control-template's"
        " `ExperimentModel` subclass (which makes `{agent}` resolvable); measured on the first"
        f" {sizes['planning_ref_limit']:,} indices and extrapolated linearly beyond that (marked ~). Before timing,"
        " 1,000 random indices plus the first and last are checked to give identical paths in both.",
        "- **plan --jsonl.** `orchestrator plan sweep.json --runs 10 --jsonl > /dev/null` as a child process; peak"
        " RSS is that child's `ru_maxrss` from `wait4`. For scale, the interpreter alone (`orchestrator --version`)"
        f" peaks at {(results.get('jsonl') or {}).get('baseline_rss_mib', 0):.1f} MiB.",
        "- **Completeness.** Result directories are created for a seeded random 0%, 50% or 100% of the indices (0%:"
        " no `results/` at all, a sweep that has not run). Ours: `state.result_paths_present` with a fresh"
        " `ResultScanner` (the code `status` and `submit` run; it includes generating the save paths). Reference:"
        " PyExpUtils' old `listMissingResults`, one `os.path.exists` per index's save path, the paths coming from"
        " the same planner inside the timed part (so the reference is spared its slow `interpolateSavePath`)."
        " Metadata syscalls are counted with `strace -f -e trace=%file,getdents64` between two marker `stat`"
        " calls that bracket the measured part;"
        " listings are the scanner's own count."
        + _listing_cost(results)
        + " Times are warm-cache on a local disk, where a stat costs about a"
        " microsecond; on NFS or Lustre each metadata call costs of the order of a millisecond, so the syscall"
        " counts are what decides the time there.",
        "- **Submission.** `orchestrator submit --executor slurm --json` as a child process in a git project, profile"
        " `indices_per_task: 256` (the template's bundle, so both make the same Slurm jobs) and `sbatch: {hold: true}`;"
        " every job is cancelled by id right after. Slurm commands and git are counted by wrapper scripts first on"
        " PATH. Fewest sbatch calls = ceil(tasks / MaxArraySize). Reference: the rl-control-template's"
        " `scripts/slurm.py` loop, one PyExpUtils `Slurm.schedule` (script file + `os.system('sbatch ...')`) of a"
        f" GNU-parallel job per 256 indices and `time.sleep(2)` after each; {ref.get('calls', '?')} real (held,"
        f" then cancelled) calls were made, mean sbatch {fmt_seconds(ref.get('mean_sbatch_seconds'))}; beyond that"
        " the wall time is extrapolated as calls x (sbatch + 2 s) (marked ~).",
        "- **Status (real jobs).** `orchestrator status --json` on each submission's ledger, first while all its"
        " arrays are held (pending in squeue), then after `scancel` (out of the queue: sacct is asked why).",
        "- **Status (many jobs).** A ledger written directly, as if every index had been its own array task, 11"
        " tasks per job (MaxArraySize=11): N/11 jobs with made-up ids, none in the queue, so all are asked of sacct"
        " (which finds no rows). Best of two runs. Reference: one sacct per job, extrapolated from"
        f" {len(status.get('naive_sacct_seconds', [])) or '?'} timed single-job sacct calls"
        f" (mean {fmt_seconds(status.get('naive_mean_sacct'))}) plus one squeue (marked ~).",
        "- **Scaling.** Growth exponent = log(t_largest / t_smallest) / log(N_largest / N_smallest) of our times"
        " (1 = linear; below 1 when fixed costs such as interpreter start-up dominate the small sizes).",
        "- The machine is shared by other work while the benchmark runs: times carry some noise; counts do not.",
        "",
    ]

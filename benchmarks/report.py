"""The results as a table (terminal and Markdown), the targets, the plot and docs/PERFORMANCE.md.

Each benchmark's rows, targets, plot panels and method notes live in its `Part` (report_local.py,
report_resultsdb.py, report_slurm.py, report_scale.py); `PARTS` lists them in report order. This module only assembles:
one function per section of the report (text table, Markdown table, targets, machine, plot, ...).
"""

from __future__ import annotations

import math
from pathlib import Path

from common import fmt_seconds
from report_base import Part, Results, Row, Target, mark, target
from report_local import JSONL, PLANNING, SCAN
from report_resultsdb import RESULTSDB
from report_scale import SCALE
from report_slurm import STATUS_MANY, STATUS_TARGETS, SUBMISSION

REPRODUCE = "benchmarks/run"

# -- the cross-benchmark part: growth exponents (issue 7, item 6) -----------------------------------


def growth_targets(results: Results) -> list[Target]:
    """Linear or better: every part's growth exponent between its smallest and largest size."""
    out = []
    for part in PARTS:
        if part.growth is None or not part.present(results):
            continue
        for name, (exponent, reference) in part.growth(results).items():
            if exponent is None:
                continue
            text = f"growth exponent {exponent:.2f}"
            if reference is not None:
                text += f" (the reference, measured on the same inputs: {reference:.2f})"
            why = "" if exponent <= 1.1 else GROWTH_WHY
            out.append(target(7, "6. Scaling", f"{name}: linear or better", text, exponent <= 1.1, why))
    return out


GROWTH_WHY = (
    "Measured on one tree per size under the same conditions; where the reference grows faster on the same"
    " trees, part of the growth is the filesystem's (lookups in larger directories), not the algorithm's."
)


def growth_method(results: Results) -> list[str]:
    return [
        "- **Scaling.** Growth exponent = log(t_largest / t_smallest) / log(N_largest / N_smallest) of our times"
        " (1 = linear; below 1 when fixed costs such as interpreter start-up dominate the small sizes).",
    ]


GROWTH = Part("growth", needs=(), targets=growth_targets, method=growth_method)

# The report, in order: add a benchmark by writing its Part and listing it here.
PARTS: tuple[Part, ...] = (PLANNING, JSONL, SCAN, RESULTSDB, SUBMISSION, STATUS_MANY, STATUS_TARGETS, SCALE, GROWTH)


def rows(results: Results) -> list[Row]:
    return [r for part in PARTS if part.rows and part.present(results) for r in part.rows(results)]


def targets(results: Results) -> list[Target]:
    """Every part's targets, grouped by issue (stable within an issue)."""
    found = [t for part in PARTS if part.targets and part.present(results) for t in part.targets(results)]
    return sorted(found, key=lambda t: t["issue"])


# -- text ---------------------------------------------------------------------------------------------

HEADERS = ("benchmark", "size", "metric", "ours", "reference", "ratio", "target", "met")
RATIO_NOTE = (
    "ratio: how many times better ours is (rates: ours/reference; times and calls: reference/ours). "
    "~ = extrapolated from a measured sample (see docs/PERFORMANCE.md)."
)


def _cells(r: Row) -> list[str]:
    return [r["section"], r["size"], r["metric"], r["ours"], r["ref"], r["ratio"], r["target"], mark(r["met"])]


def text_table(results: Results) -> str:
    """What the terminal shows: the rows, then the targets by issue, then what was skipped."""
    table = [list(HEADERS)] + [_cells(r) for r in rows(results)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(HEADERS))]
    lines = []
    for number, line in enumerate(table):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(RATIO_NOTE)
    lines += text_targets(targets(results))
    lines += [f"SKIPPED: {note}" for note in results.get("skipped", [])]
    return "\n".join(lines)


def text_targets(found: list[Target]) -> list[str]:
    lines = []
    for issue in sorted({t["issue"] for t in found}) or [7]:
        lines += ["", f"Targets (issue {issue}):"]
        for t in (t for t in found if t["issue"] == issue):
            lines.append(f"  [{mark(t['met']):>3}] {t['item']}: {t['target']} -> {t['result']}")
    return lines


_CODE_IN_METRICS = ("plan.save_paths()", "save_path(i)")


def markdown_table(results: Results) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows(results):
        cells = [c.replace("|", "\\|") for c in _cells(r)]
        for code in _CODE_IN_METRICS:
            cells[2] = cells[2].replace(code, f"`{code}`")
        cells[7] = {"yes": "yes", "NO": "**NO**", "": ""}[cells[7]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- plot ---------------------------------------------------------------------------------------------


def plot(results: Results, path: Path) -> None:
    """Every part's panels that have data, three to a row, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [draw for part in PARTS for needs, draw in part.panels if any(results.get(k) for k in needs)]
    columns = 3
    lines = max(1, math.ceil(len(panels) / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(15, 4.5 * lines), squeeze=False)
    for number, ax in enumerate(axes.flat):
        if number >= len(panels):
            ax.set_visible(False)
            continue
        title, ylabel = panels[number](ax, results)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("indices in the sweep")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = results.get("machine", {})
    fig.suptitle(
        f"orchestrator vs PyExpUtils {m.get('pyexputils')} - {m.get('cores')} cores {m.get('cpu')}, "
        f"Python {m.get('python')}, {m.get('slurm')}",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- docs/PERFORMANCE.md: one function per section ------------------------------------------------------


def write_docs(results: Results, docs: Path) -> list[Path]:
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / "performance.png"
    plot(results, png)
    md = docs / "PERFORMANCE.md"
    md.write_text(performance_md(results))
    return [md, png]


def performance_md(results: Results) -> str:
    lines: list[str] = []
    for section in DOCUMENT:
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def intro_section(results: Results) -> list[str]:
    m = results["machine"]
    return [
        "# Performance",
        "",
        "Orchestrator beside PyExpUtils (`pyexputils-andnp` "
        f"{m.get('pyexputils')}) and the rl-control-template's way of submitting, at three or more sizes each.",
        f"Generated by `{REPRODUCE}` on {results['started']} (run time {fmt_seconds(results.get('elapsed_seconds'))});"
        " every number below comes from `benchmarks/results.json` of that run. Do not edit by hand: run it again.",
        "",
    ]


def reproduce_section(results: Results) -> list[str]:
    return [
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
        " missing. Slurm work runs under `flock /tmp/orch-cluster.lock`; every job it submits is held and cancelled"
        " by id. Details: benchmarks/README.md.",
        "",
    ]


def _minutes(results: Results) -> str:
    seconds = results.get("elapsed_seconds") or 0
    return f"{max(1, round(seconds / 60))} minutes"


def machine_section(results: Results) -> list[str]:
    m = results["machine"]
    return [
        "## Machine",
        "",
        f"- CPU: {m.get('cpu')}, {m.get('cores')} cores; memory {m.get('memory')}",
        f"- {m.get('os')}, kernel {m.get('kernel')}; /tmp on {m.get('tmp_filesystem')}",
        f"- Python {m.get('python')}; {m.get('slurm')} (single-node test cluster, MaxArraySize=11); {m.get('strace')}",
        f"- orchestrator at {m.get('orchestrator_commit')}",
        "",
    ]


def targets_section(results: Results) -> list[str]:
    found = targets(results)
    issues = ", ".join(str(i) for i in sorted({t["issue"] for t in found}))
    lines = [
        "## Targets",
        "",
        f"The targets of the issues that set them (issue {issues}), each measured in this run.",
        "",
        "| issue | item | target | result | met |",
        "|---|---|---|---|---|",
    ]
    for t in found:
        met = {True: "yes", False: "**NO**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['issue']} | {t['item']} | {t['target']} | {t['result']} | {met} |")
    return lines + ["", *_unmet_notes([t for t in found if t["met"] is False])]


def _unmet_notes(unmet: list[Target]) -> list[str]:
    if not unmet:
        return ["Every target is met.", ""]
    out = ["Not met, and why (measured causes; the profiles are under *Where the time goes*):", ""]
    for t in unmet:
        out.append(f"- **{t['item']}, {t['target']}**: {t['result']}. {t['why']}".rstrip())
    return out + [""]


def results_section(results: Results) -> list[str]:
    return [
        "## Results",
        "",
        RATIO_NOTE,
        "",
        markdown_table(results),
        "",
        "![time, memory and calls vs sweep size, ours vs reference](performance.png)",
        "",
    ]


def profiles_section(results: Results) -> list[str]:
    found = [p for part in PARTS if part.profiles and part.present(results) for p in part.profiles(results)]
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


def method_section(results: Results) -> list[str]:
    lines = ["## How each number is measured", ""]
    for part in PARTS:
        if part.method:
            lines += part.method(results)
    lines.append(
        "- The machine is shared by other work while the benchmark runs: times carry some noise; counts do not."
    )
    return lines + [""]


def skipped_section(results: Results) -> list[str]:
    return [f"- Skipped in this run: {note}" for note in results.get("skipped", [])]


# The sections of docs/PERFORMANCE.md, in order.
DOCUMENT = (
    intro_section,
    reproduce_section,
    machine_section,
    targets_section,
    results_section,
    profiles_section,
    method_section,
    skipped_section,
)

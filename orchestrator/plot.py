"""`usage --plot FILE.png`: requested vs used time and memory per index, and failures per parameter value.

matplotlib is an optional extra (`pip install 'sweep-orchestrator[plot]'`), imported only here and only
when a plot is asked for; without it the command says so in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.breakdown import Breakdown, status_breakdown
from orchestrator.errors import UserError
from orchestrator.state import ExperimentStatus
from orchestrator.usage import ExperimentUsage

MAX_BARS = 30  # parameter values shown in the failures panel


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a login node
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'sweep-orchestrator[plot]'") from None
    return plt


def usage_points(u: ExperimentUsage) -> list[tuple[int, float | None, float | None, float | None, float | None]]:
    """(index, seconds used, seconds asked, MB used, MB asked) per index of a finished task, by index.

    Time used is the index's own run time where known (one index per task, or the logs), else its
    task's; memory is its task's (a task's MaxRSS covers all the indices it ran).
    """
    points = []
    for task in u.tasks:
        for index in u.task_indices[task.key]:
            seconds = u.index_seconds.get(index, float(task.elapsed_seconds))
            points.append((index, seconds, task.time_limit_seconds, task.max_rss_mb, task.requested_mem_mb))
    return sorted(points, key=lambda p: p[0])


def _requested_vs_used(ax: Any, points: Sequence[tuple[Any, ...]], used: int, asked: int, unit: str) -> None:
    xs = [p[0] for p in points]
    nan = float("nan")  # an unlimited request or an unsampled MaxRSS: no mark
    ax.scatter(
        xs,
        [nan if p[asked] is None else p[asked] for p in points],
        marker="_",
        s=120,
        color="tab:red",
        label="requested",
    )
    ax.scatter(
        xs, [nan if p[used] is None else p[used] for p in points], marker="o", s=14, color="tab:blue", label="used"
    )
    ax.set_xlabel("index")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(unit)
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize="small")


def _failures(ax: Any, breakdown: Breakdown | None) -> None:
    if breakdown is None or "failed" not in breakdown.states:
        ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    labels, failed, done = [], [], []
    for axis, table in breakdown.to_json().items():
        for value, row in table.items():
            labels.append(f"{axis}={value}")
            failed.append(int(row.get("failed", 0)))  # type: ignore[call-overload]
            done.append(int(row.get("done", 0)))  # type: ignore[call-overload]
    shown = sorted(range(len(labels)), key=lambda i: -failed[i])[:MAX_BARS]
    ys = range(len(shown))
    ax.barh(ys, [failed[i] for i in shown], color="tab:red", label="failed")
    ax.barh(ys, [done[i] for i in shown], left=[failed[i] for i in shown], color="tab:green", label="done")
    ax.set_yticks(list(ys), [labels[i] for i in shown], fontsize="small")
    ax.invert_yaxis()
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("indices")
    ax.legend(loc="best", fontsize="small")


def plot_usage(
    usages: Sequence[ExperimentUsage], path: str | Path, breakdowns: Mapping[str, Breakdown] | None = None
) -> Path:
    """One row per experiment: time and memory (requested vs used, per index), failures per value."""
    if not usages:
        raise UserError("nothing to plot: no experiment has finished tasks")
    plt = _pyplot()
    fig, axes = plt.subplots(len(usages), 3, figsize=(15, 4 * len(usages)), squeeze=False)
    for row, u in zip(axes, usages):
        points = usage_points(u)
        _requested_vs_used(row[0], points, 1, 2, "seconds")
        row[0].set_title(f"{u.experiment}: time", fontsize="medium")
        mem_points = [p for p in points if p[3] is not None]
        _requested_vs_used(row[1], mem_points, 3, 4, "MB")
        row[1].set_title(f"{u.experiment}: memory (MaxRSS)", fontsize="medium")
        _failures(row[2], (breakdowns or {}).get(u.experiment))
        row[2].set_title(f"{u.experiment}: states per parameter value", fontsize="medium")
    fig.tight_layout()
    out = Path(path)
    try:
        fig.savefig(out, dpi=100)
    except (OSError, ValueError) as e:  # no such directory, not writable, a format matplotlib does not know
        raise UserError(f"--plot {path}: cannot write it: {e}") from None
    finally:
        plt.close(fig)
    return out


def plot_experiments(usages: Sequence[ExperimentUsage], statuses: Sequence[ExperimentStatus], path: str | Path) -> Path:
    """`usage --plot`: the experiments that have finished tasks, with their states per parameter value."""
    breakdowns = {status.plan.path: status_breakdown(status) for status in statuses}
    return plot_usage([u for u in usages if u.tasks], path, breakdowns)

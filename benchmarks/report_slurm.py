"""The report's parts for the benchmarks on the real Slurm cluster: submission, and status of real and many jobs."""

from __future__ import annotations

import math
from typing import Any

from common import fmt_count, fmt_seconds, fmt_size
from report_base import (
    OURS_STYLE,
    REF_STYLE,
    Part,
    Results,
    Row,
    Target,
    ratio,
    row,
    sacct_chunk,
    series,
    slope,
    target,
)

# -- submission (and status of the jobs it submitted) -----------------------------------------------


def reference_estimate(ref: dict[str, Any], indices: int) -> tuple[int, float, bool]:
    """(sbatch calls, seconds, measured?) of the template's way for `indices`; extrapolated past the sample."""
    n = math.ceil(indices / ref["per_job"])
    if n <= ref["calls"]:
        return n, ref["elapsed_after"][n - 1], True
    return n, n * (ref["mean_sbatch_seconds"] + ref["sleep"]), False


def _submit_size(r: dict[str, Any]) -> str:
    return fmt_size(r["indices"]) + ("" if r["indices_per_task"] == 256 else f" ({r['indices_per_task']}/task)")


def submission_rows(results: Results) -> list[Row]:
    ref = results["submit"]["reference"]
    out = []
    for r in results["submit"]["rows"]:
        size = _submit_size(r)
        calls = r["submit_calls"]["sbatch"]
        n = seconds = None
        ref_calls = ref_time = "-"
        if r["indices_per_task"] == ref["per_job"]:
            n, seconds, measured = reference_estimate(ref, r["indices"])
            ref_calls, ref_time = fmt_count(n), ("" if measured else "~") + fmt_seconds(seconds)
        tasks = f"sbatch calls ({r['tasks']:,} tasks of {r['indices_per_task']})"
        fewest = r["fewest_sbatch"]
        out.append(
            row(
                "Submission",
                size,
                tasks,
                fmt_count(calls),
                ref_calls,
                ratio(n, calls),
                f"fewest = {fewest}",
                calls == fewest,
            )
        )
        wall = r["submit_seconds"]
        out.append(
            row(
                "Submission",
                size,
                "whole submit, wall time",
                fmt_seconds(wall),
                ref_time,
                ratio(seconds, wall),
                "< 10 s",
                wall < 10,
            )
        )
        others = ", ".join(f"{v} {k}" for k, v in r["submit_calls"].items() if v and k != "sbatch")
        out.append(row("Submission", size, "other commands run by submit", others or "none"))
    return out


def status_real_rows(results: Results) -> list[Row]:
    chunk = sacct_chunk(results)
    out = []
    for r in results["submit"]["rows"]:
        size = _submit_size(r)
        for key, what in (("pending", "status, all held (pending)"), ("cancelled", "status, all cancelled")):
            c = r[f"status_{key}_calls"]
            ok = c["squeue"] == 1 and c["sacct"] <= math.ceil(max(1, r["status_cancelled_jobs"]) / chunk)
            calls = f"{c['squeue']} + {c['sacct']}"
            out.append(
                row("Status (real jobs)", size, f"{what}: squeue + sacct calls", calls, "-", "-", "1 + batched", ok)
            )
            seconds = r[f"status_{key}_seconds"]
            out.append(
                row(
                    "Status (real jobs)",
                    size,
                    f"{what}: wall time",
                    fmt_seconds(seconds),
                    "-",
                    "-",
                    "< 5 s",
                    seconds < 5,
                )
            )
    return out


def submit_targets(results: Results) -> list[Target]:
    submit = results["submit"]
    main = [r for r in submit["rows"] if r["indices_per_task"] == submit["reference"]["per_job"]]
    fewest = all(r["submit_calls"]["sbatch"] == r["fewest_sbatch"] for r in submit["rows"])
    biggest = max(main, key=lambda r: r["indices"])
    slowest = max(r["submit_seconds"] for r in submit["rows"])
    counts = ", ".join(
        f"{fmt_size(r['indices'])}: {r['submit_calls']['sbatch']} (fewest {r['fewest_sbatch']})" for r in submit["rows"]
    )
    return [
        target(7, "4. Submission", "fewest sbatch calls the limits allow (ceil(tasks / MaxArraySize))", counts, fewest),
        target(
            7,
            "4. Submission",
            f"whole submit of {fmt_size(biggest['indices'])} indices < 10 s",
            f"{fmt_seconds(biggest['submit_seconds'])} (slowest submit: {fmt_seconds(slowest)})",
            slowest < 10,
        ),
    ]


def submission_growth(results: Results) -> dict[str, tuple[float | None, float | None]]:
    main = [r for r in results["submit"]["rows"] if r["indices_per_task"] == 256]
    return {"submission": (slope([(r["indices"], r["submit_seconds"]) for r in main]), None)}


def submission_panel(ax: Any, results: Results) -> tuple[str, str]:
    sub = results["submit"]
    main = [r for r in sub["rows"] if r["indices_per_task"] == sub["reference"]["per_job"]]
    n = [r["indices"] for r in main]
    series(ax, n, [r["submit_seconds"] for r in main], OURS_STYLE, "ours: orchestrator submit")
    est = [reference_estimate(sub["reference"], x) for x in n]
    series(ax, n, [e[1] for e in est], REF_STYLE, "template: sbatch per 256, 2 s apart", [not e[2] for e in est])
    ax.axhline(10, color="gray", linestyle="--", linewidth=1, label="target 10 s")
    return "Submission on the real cluster (256 indices/task)", "seconds"


def submission_profiles(results: Results) -> list[tuple[str, dict[str, Any]]]:
    submit = results["submit"]
    found = []
    if submit.get("submit_profile"):
        found.append(("`orchestrator submit` of the largest sweep (its own held jobs)", submit["submit_profile"]))
    for r in submit.get("rows", []):
        if r.get("status_cancelled_profile"):
            title = f"`orchestrator status` of {fmt_size(r['indices'])} indices, every task cancelled"
            found.append((title, r["status_cancelled_profile"]))
    return found


def submission_method(results: Results) -> list[str]:
    ref = (results.get("submit") or {}).get("reference") or {}
    return [
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
    ]


SUBMISSION = Part(
    "submit",
    rows=lambda results: submission_rows(results) + status_real_rows(results),
    targets=submit_targets,
    growth=submission_growth,
    panels=((("submit",), submission_panel),),
    profiles=submission_profiles,
    method=submission_method,
)

# -- status over many jobs (a synthetic ledger) ----------------------------------------------------


def _naive_seconds(status: dict[str, Any], jobs: int) -> float:
    """One squeue, then one sacct per job (the mean of the sampled single-job calls)."""
    return status["squeue_seconds"] + jobs * status["naive_mean_sacct"]


def status_many_rows(results: Results) -> list[Row]:
    status = results["status"]
    chunk = sacct_chunk(results)
    out = []
    for r in status["rows"]:
        size = fmt_size(r["indices"])
        c = r["calls"]
        naive = _naive_seconds(status, r["jobs"])
        ok = c["squeue"] == 1 and c["sacct"] <= math.ceil(r["jobs"] / chunk)
        out.append(
            row(
                "Status (many jobs)",
                size,
                f"squeue + sacct calls, {r['jobs']:,} finished jobs",
                f"{c['squeue']} + {c['sacct']}",
                f"1 + {r['jobs']:,}",
                ratio(1 + r["jobs"], c["squeue"] + c["sacct"]),
                "1 + batched",
                ok,
            )
        )
        seconds = r["seconds"]
        out.append(
            row(
                "Status (many jobs)",
                size,
                "status --json, wall time",
                fmt_seconds(seconds),
                "~" + fmt_seconds(naive),
                ratio(naive, seconds),
                "< 5 s",
                seconds < 5,
            )
        )
    return out


def status_many_growth(results: Results) -> dict[str, tuple[float | None, float | None]]:
    return {"status (many jobs)": (slope([(r["indices"], r["seconds"]) for r in results["status"]["rows"]]), None)}


def status_many_panel(ax: Any, results: Results) -> tuple[str, str]:
    st = results["status"]
    n = [r["indices"] for r in st["rows"]]
    series(ax, n, [r["seconds"] for r in st["rows"]], OURS_STYLE, "ours: status --json")
    naive = [_naive_seconds(st, r["jobs"]) for r in st["rows"]]
    series(ax, n, naive, REF_STYLE, "one sacct per job", [True] * len(n))
    ax.axhline(5, color="gray", linestyle="--", linewidth=1, label="target 5 s")
    return "Status over many jobs (1 job per 11 indices)", "seconds"


def status_many_profiles(results: Results) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"`orchestrator status` of {fmt_size(r['indices'])} indices over {r['jobs']:,} jobs", r["profile"])
        for r in results["status"]["rows"]
        if r.get("profile")
    ]


def status_many_method(results: Results) -> list[str]:
    status = results.get("status") or {}
    return [
        "- **Status (many jobs).** A ledger written directly, as if every index had been its own array task, 11"
        " tasks per job (MaxArraySize=11): N/11 jobs with made-up ids, none in the queue, so all are asked of sacct"
        " (which finds no rows). Best of two runs. Reference: one sacct per job, extrapolated from"
        f" {len(status.get('naive_sacct_seconds', [])) or '?'} timed single-job sacct calls"
        f" (mean {fmt_seconds(status.get('naive_mean_sacct'))}) plus one squeue (marked ~).",
    ]


STATUS_MANY = Part(
    "status",
    rows=status_many_rows,
    growth=status_many_growth,
    panels=((("status",), status_many_panel),),
    profiles=status_many_profiles,
    method=status_many_method,
)

# -- status targets, from both the real submissions and the synthetic ledgers -----------------------


def _status_runs(results: Results) -> list[tuple[dict[str, int], int, float, int, str]]:
    """(calls, finished jobs, seconds, indices, "many" or "real") of every status run."""
    runs = [
        (r["calls"], r["jobs"], r["seconds"], r["indices"], "many")
        for r in (results.get("status") or {}).get("rows", [])
    ]
    for r in (results.get("submit") or {}).get("rows", []):
        runs.append((r["status_pending_calls"], 0, r["status_pending_seconds"], r["indices"], "real"))
        jobs = r["status_cancelled_jobs"]
        runs.append((r["status_cancelled_calls"], jobs, r["status_cancelled_seconds"], r["indices"], "real"))
    return runs


def status_targets(results: Results) -> list[Target]:
    chunk = sacct_chunk(results)
    runs = _status_runs(results)
    squeue_ok = all(c["squeue"] == 1 for c, *_ in runs)
    sacct_ok = all(c["sacct"] <= math.ceil(jobs / chunk) for c, jobs, *_ in runs)
    most = max(runs, key=lambda run: run[0]["sacct"])
    out = [
        target(7, "5. Status", "one squeue per status", "1 in every run" if squeue_ok else "more than 1", squeue_ok),
        target(
            7,
            "5. Status",
            "sacct calls bounded and batched",
            f"at most {most[0]['sacct']} ({most[1]:,} finished jobs; {chunk} ids per call)",
            sacct_ok,
        ),
    ]
    for what, label in (("real", "real submission"), ("many", "one job per 11 indices")):
        part = [run for run in runs if run[4] == what]
        if not part:
            continue
        biggest = max(run[3] for run in part)
        slowest = max(run[2] for run in part if run[3] == biggest)
        jobs = max(run[1] for run in part if run[3] == biggest)
        detail = f", {jobs:,} jobs" if what == "many" else ""
        wanted = f"status of {fmt_size(biggest)} indices < 5 s ({label}{detail})"
        why = "" if slowest < 5 else _status_why(results, what)
        out.append(target(7, "5. Status", wanted, f"slowest: {fmt_seconds(slowest)}", slowest < 5, why))
    return out


def _status_why(results: Results, what: str) -> str:
    """The cause of a slow status, from this run's numbers and profiles."""
    parts = []
    if what == "many":
        status = results["status"]
        r = max(status["rows"], key=lambda r: r["indices"])
        sacct = r["calls"]["sacct"] * status["naive_mean_sacct"]
        parts.append(
            f"{r['calls']['sacct']} sacct calls (up to {sacct_chunk(results)} ids each) at"
            f" {fmt_seconds(status['naive_mean_sacct'])} a call (measured; the cost hardly depends on the"
            f" number of ids) make about {fmt_seconds(sacct)} of it"
        )
        if r.get("profile"):
            parts.append(profile_hint(r["profile"]))
    else:
        rows = [r for r in results["submit"]["rows"] if r.get("status_cancelled_profile")]
        if rows:
            r = rows[0]
            parts.append(
                f"held: {fmt_seconds(r['status_pending_seconds'])}, cancelled (every task out of the queue):"
                f" {fmt_seconds(r['status_cancelled_seconds'])}"
            )
            parts.append(profile_hint(r["status_cancelled_profile"]))
    return "; ".join(parts) + "." if parts else ""


def profile_hint(profile: dict[str, Any]) -> str:
    """Where a profiled run spent its own time (non-overlapping), as a phrase."""
    total = profile["seconds"]
    named = []
    for r in profile["by_own"][:4]:
        where = r["where"].removeprefix("orchestrator/")
        gloss = " (waiting for Slurm's commands)" if "select.poll" in where else ""
        named.append(f"`{where}`{gloss} {r['own'] / total:.0%}")
    return "under cProfile the most own time goes to " + ", ".join(named)


def calls_panel(ax: Any, results: Results) -> tuple[str, str]:
    """Filesystem and Slurm calls of three benchmarks in one panel."""
    scan, sub, st = results.get("scan"), results.get("submit"), results.get("status")
    if scan:
        # the 10-runs shape (rows from before the 1-run shape have no "runs")
        half = [r for r in scan["rows"] if r["fraction"] == 0.5 and r["ours"]["syscalls"] and r.get("runs", 10) == 10]
        if half:
            n = [r["indices"] for r in half]
            series(ax, n, [r["ours"]["syscalls"]["total"] for r in half], OURS_STYLE, "scan 50%: ours, syscalls")
            series(ax, n, [r["stat"]["syscalls"]["total"] for r in half], REF_STYLE, "scan 50%: stat each, syscalls")
    if sub:
        per_job = sub["reference"]["per_job"]
        main = [r for r in sub["rows"] if r["indices_per_task"] == per_job]
        n = [r["indices"] for r in main]
        purple, orange = {"color": "tab:purple", "marker": "o"}, {"color": "tab:orange", "marker": "s"}
        series(ax, n, [r["submit_calls"]["sbatch"] for r in main], purple, "ours: sbatch calls")
        series(ax, n, [math.ceil(x / per_job) for x in n], orange, "template: sbatch calls")
    if st:
        n = [r["indices"] for r in st["rows"]]
        olive, brown = {"color": "tab:olive", "marker": "o"}, {"color": "tab:brown", "marker": "s"}
        series(ax, n, [r["calls"]["sacct"] for r in st["rows"]], olive, "ours: sacct calls")
        series(ax, n, [r["jobs"] for r in st["rows"]], brown, "naive: sacct calls")
    return "Calls to the filesystem and to Slurm", "calls"


STATUS_TARGETS = Part(
    "status targets",
    needs=("status", "submit"),
    targets=status_targets,
    panels=((("scan", "submit", "status"), calls_panel),),
)

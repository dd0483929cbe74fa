"""Planning, `plan --jsonl` memory and the completeness scan: no Slurm needed."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common import EXPERIMENT, HERE, PYTHON, RUNS, make_project, probe, project_plan, run_measured

# -- planning ----------------------------------------------------------------------------------


def planning(work: Path, sizes: list[int], ref_limit: int, repeat: int, random_limit: int) -> dict[str, Any]:
    """Save paths per second: ours (bulk and random access) vs PyExpUtils' interpolateSavePath."""
    rows = []
    for size in sizes:
        project = make_project(work / f"plan-{size}", size)
        ours = probe(["plan-ours", "--repeat", str(repeat), "--random-limit", str(random_limit)], cwd=project)
        ref = probe(["plan-ref", "--limit", str(ref_limit), "--verify", "1000"], cwd=project)
        if ref["differ"]:
            raise RuntimeError(f"save paths differ from PyExpUtils at {size}: indices {ref['first_difference']}")
        row = {
            "indices": size,
            "ours_rate": ours["bulk_rate"],
            "ours_seconds": ours["bulk_seconds"],
            "ours_random_rate": ours["random_rate"],
            "ours_random_sample": ours["random_sample"],
            "ref_rate": ref["rate"],
            "ref_measured": ref["measured"],
            "ref_seconds": size / ref["rate"],  # measured when ref_measured == indices, else extrapolated
            "ref_extrapolated": ref["measured"] < size,
            "verified_identical": ref["verified"],
        }
        rows.append(row)
        print(
            f"  plan {size:>9,}: ours {row['ours_rate']:>11,.0f}/s (random access {row['ours_random_rate']:,.0f}/s),"
            f" PyExpUtils {row['ref_rate']:,.0f}/s"
            + (f" (first {ref['measured']:,} indices)" if row["ref_extrapolated"] else ""),
            flush=True,
        )
    return {"rows": rows}


def plan_jsonl(work: Path, sizes: list[int]) -> dict[str, Any]:
    """Peak RSS and time of `orchestrator plan --jsonl` piped to /dev/null."""
    rows = []
    for size in sizes:
        project = make_project(work / f"jsonl-{size}", size)
        argv = [PYTHON, "-m", "orchestrator", "plan", EXPERIMENT, "--runs", str(RUNS), "--jsonl"]
        with open("/dev/null", "w") as devnull:
            seconds, rss_kib, code, err = run_measured(argv, project, stdout=devnull)
        if code != 0:
            raise RuntimeError(f"plan --jsonl failed at {size}: {err[-2000:]}")
        rows.append({"indices": size, "seconds": seconds, "peak_rss_mib": rss_kib / 1024, "rate": size / seconds})
        print(f"  plan --jsonl {size:>11,}: {seconds:6.2f} s, peak RSS {rss_kib / 1024:6.1f} MiB", flush=True)
    with open("/dev/null", "w") as devnull:
        _, base_kib, _, _ = run_measured([PYTHON, "-m", "orchestrator", "--version"], work, stdout=devnull)
    return {"rows": rows, "baseline_rss_mib": base_kib / 1024}


# -- completeness ------------------------------------------------------------------------------


def build_results(project: Path, fraction: float, runs: int = RUNS) -> int:
    """Result directories for `fraction` of the indices (a seeded random choice), in the real layout.

    At 0 nothing is created, not even `results/`: a sweep that has not run yet.
    """
    paths = [p for _, p in project_plan(project, runs).save_paths()]
    chosen = random.Random(1234).sample(paths, round(fraction * len(paths)))
    for path in chosen:
        (project / path).mkdir(parents=True, exist_ok=True)
    return len(chosen)


_SYSCALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\(")


def strace_counts(argv: list[str], cwd: Path, trace: Path, modes: Sequence[str]) -> dict[str, Any] | None:
    """Metadata syscalls of each of the probe's measured parts (between its marker stats), by name."""
    if shutil.which("strace") is None:
        return None
    result = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=%file,getdents64", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"strace {' '.join(argv)} failed: {result.stderr[-2000:]}")
    found: dict[str, Any] = {}
    with open(trace) as f:
        lines = iter(f)
        for mode in modes:
            found[mode] = _between_markers(lines, mode)
    trace.unlink(missing_ok=True)
    return found


def _between_markers(lines: Iterator[str], mode: str) -> dict[str, Any]:
    """The calls after `orch-bench-marker-begin-MODE` and before its end marker (the lines are consumed)."""
    counts: Counter[str] = Counter()
    directories_opened = 0
    begin, end = f"orch-bench-marker-begin-{mode}", f"orch-bench-marker-end-{mode}"
    inside = False
    for line in lines:
        if begin in line:
            inside = True
            continue
        if end in line:
            break
        if not inside or "resumed>" in line:
            continue
        match = _SYSCALL.match(line)
        if match:
            counts[match.group(1)] += 1
            if "O_DIRECTORY" in line:
                directories_opened += 1
    if not inside:
        raise RuntimeError(f"the scan probe's trace has no marker for {mode}")
    return {"total": sum(counts.values()), "by_call": dict(counts), "directories_opened": directories_opened}


def completeness(
    work: Path, sizes: list[int], fractions: list[float], repeat: int, shapes: Sequence[int] = (RUNS,)
) -> dict[str, Any]:
    """Classify every index as present or not: ours (the `ResultScanner`) vs a stat per index.

    `shapes`: runs per result directory (`results/.../<params>/<run>`): with 10 a listing of each
    `<params>` directory answers for ten paths; with 1 every result directory holds one path.
    """
    rows = []
    strace_note = None if shutil.which("strace") else "strace not found: syscalls not counted"
    for runs in shapes:
        for size in sizes:
            for fraction in fractions:
                rows.append(_scan_row(work, size, fraction, runs, repeat))
    return {"rows": rows, "note": strace_note}


def _scan_row(work: Path, size: int, fraction: float, runs: int, repeat: int) -> dict[str, Any]:
    project = make_project(work / f"scan-{size}-{runs}-{int(fraction * 100)}", size, runs=runs)
    present = build_results(project, fraction, runs)
    row: dict[str, Any] = {"indices": size, "runs": runs, "fraction": fraction, "present": present}
    args = ["scan", "--mode", "ours,stat", "--runs", str(runs)]
    timings = probe([*args, "--repeat", str(repeat)], cwd=project)
    traced = strace_counts([PYTHON, str(HERE / "probes.py"), *args], project, work / "trace.txt", ("ours", "stat"))
    for mode, timing in timings.items():
        if timing["present"] != present:
            raise RuntimeError(f"{mode} found {timing['present']} of {present} present results")
        row[mode] = {
            "seconds": timing["seconds"],
            "listings": timing["listings"],
            "stats": timing["stats"],
            "syscalls": traced[mode] if traced else None,
        }
        row["result_dirs"] = timing["result_dirs"]
    o, s = row["ours"], row["stat"]
    calls = (
        f"{o['syscalls']['total']:,} vs {s['syscalls']['total']:,} metadata syscalls"
        if o["syscalls"] and s["syscalls"]
        else f"{o['listings']:,} listings + {o['stats']:,} stats vs {s['stats']:,} stats"
    )
    print(
        f"  scan {size:>8,} x {runs:>2} run(s) at {fraction:4.0%}: {calls}; {o['seconds'] * 1000:.1f} ms vs "
        f"{s['seconds'] * 1000:.1f} ms",
        flush=True,
    )
    shutil.rmtree(project, ignore_errors=True)
    return row

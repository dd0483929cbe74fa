"""Every benchmark (issues 7, 10 and 11) in one run, ours beside PyExpUtils 8.1.2; prints one table.

Run it through `benchmarks/run` (which makes the benchmark environment); see benchmarks/README.md.

    bench.py                 full sizes; writes benchmarks/results.json, docs/PERFORMANCE.md, docs/performance.png
    bench.py --smoke         tiny sizes, no plot, no docs (CI); Slurm parts skipped when Slurm is absent
    bench.py --only scan     some benchmarks only: planning, jsonl, scan, resultsdb, submit, status, scale
                             (never writes docs)
    bench.py --max-indices 1000000   skip every size above 1e6 (never writes docs)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import local_bench
import report
import results_db_bench
import scale_bench
import slurm_bench
from common import REPO, fmt_seconds

SECTIONS = ("planning", "jsonl", "scan", "resultsdb", "submit", "status", "scale")

FULL = {
    "planning": [10**4, 10**5, 10**6],
    "planning_ref_limit": 10**5,
    "planning_random_limit": 2 * 10**5,
    "repeat": 3,
    "jsonl": [10**5, 10**6, 10**7],
    "scan": [10**3, 10**4, 10**5],
    "fractions": [0.0, 0.5, 1.0],
    "scan_runs": [10, 1],  # runs per result directory: 10 (a listing answers for 10 paths) and 1 (a stat each)
    # issue 10: a PyExpUtils results.db, ours vs detectMissingIndices (see results_db_bench.py)
    "resultsdb": [10**3, 10**4, 10**5],
    "resultsdb_runs": 100,  # runs per setting at those sizes; the target is 1e5 = 1,000 x 100
    "resultsdb_shapes": [(10**5, 100), (10**5, 10**4)],  # other (indices, settings): fewer and more settings
    "submit": [10**3, 10**4, 10**5],
    "submit_extra": [(10**5, 1000)],  # the fewest-sbatch bundling the issue suggests
    "ref_calls": 10,
    "status": [10**3, 10**4, 10**5],
    "naive_sample": 20,
    # issue 11: status and submit --dry-run as whole processes (see scale_bench.py)
    "scale": [10**4, 10**5, 10**6, 10**7],
    "scale_fractions": [0.0, 0.5, 1.0],
    "scale_sparse_from": 10**7,  # from here on, 0.5 % present instead of 50 %, and no 100 %
    "scale_sparse_fraction": 0.005,
    "scale_ref_limit": 10**5,  # PyExpUtils' loop: first indices timed, the rest extrapolated
    "scale_array_tasks": 1000,
    "scale_small_arrays": [10**5, 11],  # the test cluster's MaxArraySize
    "scale_strace": 10**5,
    "scale_memory_gb": 4,
    "scale_timeout": 900,
}
SMOKE = {
    "planning": [10**3, 10**4],
    "planning_ref_limit": 2000,
    "planning_random_limit": 10**4,
    "repeat": 1,
    "jsonl": [10**3, 10**4, 10**5],
    "scan": [10**2, 10**3],
    "fractions": [0.0, 0.5, 1.0],
    "scan_runs": [10, 1],
    "resultsdb": [10**3, 10**4],
    "resultsdb_runs": 100,
    "resultsdb_shapes": [],
    "submit": [10**2, 10**3],
    "submit_extra": [],
    "ref_calls": 1,  # each reference call sleeps 2 s, as the template does
    "status": [10**2, 10**3],
    "naive_sample": 3,
    "scale": [10**3, 10**4],
    "scale_fractions": [0.0, 0.5, 1.0],
    "scale_sparse_from": 10**4,
    "scale_sparse_fraction": 0.005,
    "scale_ref_limit": 2000,
    "scale_array_tasks": 100,
    "scale_small_arrays": [10**3, 11],
    "scale_strace": 10**3,
    "scale_memory_gb": 4,
    "scale_timeout": 120,
}
# lists of sizes that --max-indices cuts
SIZED = ("planning", "jsonl", "scan", "resultsdb", "submit", "status", "scale")
PER_TASK = 256  # the PyExpUtils template's bundle: the same work per Slurm task for both


def machine() -> dict[str, Any]:
    def first(cmd: list[str]) -> str | None:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None

    cpu, memory = None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    os_name = None
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    try:
        from importlib.metadata import version

        pyexputils = version("pyexputils-andnp")
    except Exception:
        pyexputils = None
    fs_line = first(["sh", "-c", f"df -T {tempfile.gettempdir()} | tail -1"])
    commit = first(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = first(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "slurm": first(["sbatch", "--version"]),
        "strace": first(["strace", "-V"]),
        "pyexputils": pyexputils,
        "tmp_filesystem": fs_line.split()[1] if fs_line else None,
        "orchestrator_commit": (commit or "?") + (" (with uncommitted changes)" if dirty else ""),
    }


def library() -> dict[str, Any]:
    """Settings of the measured code that the targets depend on."""
    import inspect

    from orchestrator.slurm_commands import SlurmCommands

    return {"sacct_chunk": inspect.signature(SlurmCommands.sacct).parameters["chunk_size"].default}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; no plot or docs; for CI")
    parser.add_argument("--only", help="comma-separated: " + ",".join(SECTIONS))
    parser.add_argument("--no-docs", action="store_true", help="full run without rewriting docs/")
    parser.add_argument("--output", help="results JSON (default benchmarks/results[-smoke].json)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch projects under /tmp")
    parser.add_argument("--max-indices", type=float, help="skip every size above this (e.g. 1e6); never writes docs")
    parser.add_argument("--from-json", help="only print the table (and write docs) from an earlier results JSON")
    args = parser.parse_args()

    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(report.text_table(results))
        if not args.no_docs and not results.get("smoke"):
            report.write_docs(results, REPO / "docs")
        return 0

    only = set(SECTIONS) if not args.only else {s.strip() for s in args.only.split(",")}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.max_indices:
        sizes.update({key: [n for n in sizes[key] if n <= args.max_indices] for key in SIZED})
        sizes["resultsdb_shapes"] = [s for s in sizes["resultsdb_shapes"] if s[0] <= args.max_indices]
    write_docs = not args.smoke and not args.no_docs and only == set(SECTIONS) and not args.max_indices
    output = (
        Path(args.output)
        if args.output
        else REPO / "benchmarks" / ("results-smoke.json" if args.smoke else "results.json")
    )

    results: dict[str, Any] = {
        "smoke": args.smoke,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "library": library(),
        "sizes": {k: v for k, v in sizes.items()},
        "skipped": [],
        "errors": [],
    }
    work = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    print(f"benchmarks ({'smoke' if args.smoke else 'full'} run); scratch projects in {work}", flush=True)
    began = time.monotonic()

    def section(name: str, title: str, work_fn) -> None:
        if name not in only:
            return
        print(f"== {title}", flush=True)
        start = time.monotonic()
        try:
            results[name] = work_fn()
            results[name]["elapsed"] = time.monotonic() - start
        except Exception as e:  # one broken benchmark must not hide the others
            traceback.print_exc()
            results["errors"].append(f"{name}: {type(e).__name__}: {e}")
        print(f"   ({time.monotonic() - start:.0f} s)", flush=True)

    try:
        section(
            "planning",
            "planning: save paths per second, ours vs PyExpUtils interpolateSavePath",
            lambda: local_bench.planning(
                work, sizes["planning"], sizes["planning_ref_limit"], sizes["repeat"], sizes["planning_random_limit"]
            ),
        )
        section("jsonl", "plan --jsonl: peak RSS", lambda: local_bench.plan_jsonl(work, sizes["jsonl"]))
        section(
            "scan",
            "completeness scan: directory listings vs a stat per index",
            lambda: local_bench.completeness(
                work, sizes["scan"], sizes["fractions"], sizes["repeat"], sizes["scan_runs"]
            ),
        )
        if shutil.which("strace") is None and "scan" in only:
            results["skipped"].append("metadata syscall counts: strace is not installed (Python-level counts only)")
        section(
            "resultsdb",
            "results.db: which indices are done, ours vs PyExpUtils detectMissingIndices (issue 10)",
            lambda: results_db_bench.section(
                work,
                sizes["resultsdb"],
                sizes["resultsdb_runs"],
                sizes["resultsdb_shapes"],
                sizes["repeat"],
            ),
        )
        slurm_ok, why = slurm_bench.available()
        wanted = only & {"submit", "status"}
        if wanted and not slurm_ok:
            message = f"Slurm benchmarks (submission, status) skipped: {why}"
            print(f"== {message}", flush=True)
            results["skipped"].append(message)
        elif wanted:
            counters = slurm_bench.Counters(work / "counters")
            jobs = slurm_bench.Jobs()
            if "submit" in only:
                try:
                    with slurm_bench.cluster_lock() as waited:
                        results["lock_wait_seconds"] = waited
                        section(
                            "submit",
                            f"submission on the real cluster (held jobs, cancelled after), {PER_TASK} indices/task",
                            lambda: {
                                **slurm_bench.submission(
                                    work,
                                    sizes["submit"],
                                    PER_TASK,
                                    counters,
                                    jobs,
                                    sizes["submit_extra"],
                                    profile=not args.smoke,
                                ),
                                "reference": slurm_bench.reference_submission(
                                    work, sizes["ref_calls"], PER_TASK, counters, jobs
                                ),
                            },
                        )
                        jobs.cancel_all()
                finally:
                    jobs.cancel_all()
            if "status" in only:
                with slurm_bench.cluster_lock():
                    section(
                        "status",
                        "status over many jobs (synthetic ledger; 11 one-index tasks per job)",
                        lambda: slurm_bench.status_many_jobs(
                            work, sizes["status"], 11, counters, sizes["naive_sample"], profile=not args.smoke
                        ),
                    )
        section(
            "scale",
            "scale: status and submit --dry-run as whole processes, no Slurm (issue 11)",
            lambda: scale_bench.scale(work, sizes),
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results["elapsed_seconds"] = time.monotonic() - began
    output.write_text(json.dumps(results, indent=1) + "\n")
    print()
    print(report.text_table(results))
    print(f"\nresults: {output}   total time {fmt_seconds(results['elapsed_seconds'])}")
    if write_docs and not results["errors"]:
        written = report.write_docs(results, REPO / "docs")
        print("wrote " + ", ".join(str(p.relative_to(REPO)) for p in written))
    elif args.smoke:
        print("smoke run: no plot, docs/ untouched")
    if results["errors"]:
        print("\nERRORS:\n  " + "\n  ".join(results["errors"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

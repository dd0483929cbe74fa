"""Measurements that run in a fresh interpreter, inside a benchmark project (the current directory).

Each prints one JSON line. The driver (`bench.py`) runs them, some under strace, so a probe does its
setup first and brackets the measured part with two marker `stat` calls that strace shows.

    probes.py plan-ours --repeat R --random-limit L
    probes.py plan-ref --limit L [--verify K]
    probes.py scan --mode ours|stat|ours,stat --runs N --repeat R
    probes.py missing-exists --runs R
    probes.py missing-ref --runs R --limit L
    probes.py ref-submit --calls K --per-job 256 --name NAME --account A --ids-file F --log-dir D
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EXPERIMENT, RUNS, project_plan

MARK_BEGIN = "/orch-bench-marker-begin"
MARK_END = "/orch-bench-marker-end"


def mark(path: str) -> None:
    """A stat strace can see, to cut its trace to the measured part."""
    with contextlib.suppress(OSError):
        os.stat(path)


def reference_experiment():
    """PyExpUtils' ExperimentDescription for the sweep, as the rl-control-template's model.

    The template's `ExperimentModel` subclass sets the top-level `agent` and `environment` as
    attributes, which is how `{agent}` in `save_path` resolves in PyExpUtils.
    """
    from PyExpUtils.models.ExperimentDescription import ExperimentDescription, loadExperiment

    class ExperimentModel(ExperimentDescription):
        def __init__(self, d, path=None, keys="metaParameters", save_key=None):
            super().__init__(d, path, keys, save_key)
            self.agent = d["agent"]
            self.environment = d["environment"]

    return loadExperiment(EXPERIMENT, ExperimentModel)


def timed_best(repeat: int, work) -> tuple[float, object]:
    seconds, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = work()
        seconds.append(time.perf_counter() - start)
    return min(seconds), out


def cmd_plan_ours(args: argparse.Namespace) -> dict:
    plan = project_plan(Path("."))
    total = plan.total

    def bulk():
        collections.deque(plan.save_paths(), maxlen=0)

    bulk_seconds, _ = timed_best(args.repeat, bulk)
    sample = min(total, args.random_limit)
    indices = list(range(total)) if sample == total else random.Random(7).sample(range(total), sample)

    def random_access():
        for i in indices:
            plan.save_path(i)

    random_seconds, _ = timed_best(args.repeat, random_access)
    return {
        "indices": total,
        "bulk_seconds": bulk_seconds,
        "bulk_rate": total / bulk_seconds,
        "random_sample": sample,
        "random_seconds": random_seconds,
        "random_rate": sample / random_seconds,
    }


def cmd_plan_ref(args: argparse.Namespace) -> dict:
    exp = reference_experiment()
    total = exp.numPermutations() * RUNS
    count = min(total, args.limit)
    start = time.perf_counter()
    for i in range(count):
        exp.interpolateSavePath(i)
    seconds = time.perf_counter() - start
    out = {"indices": total, "measured": count, "seconds": seconds, "rate": count / seconds}
    if args.verify:
        plan = project_plan(Path("."))
        picks = sorted({0, total - 1, *random.Random(11).sample(range(total), min(total, args.verify))})
        differ = [i for i in picks if plan.save_path(i) != exp.interpolateSavePath(i)]
        out.update(verified=len(picks), differ=len(differ), first_difference=differ[:3])
    return out


def cmd_scan(args: argparse.Namespace) -> dict:
    """Each mode in turn (`ours`, `stat` or both), each with a fresh plan and its own pair of markers."""
    return {mode: _scan_one(mode, args.runs, args.repeat) for mode in args.mode.split(",")}


def _scan_one(mode: str, runs: int, repeat: int) -> dict:
    from orchestrator.completeness import ResultScanner, present_results

    plan = project_plan(Path("."), runs)
    listings = stats = 0

    def ours():
        nonlocal listings, stats
        scanner = ResultScanner(".", plan.save_path_prefix())
        present = present_results(plan, ".", None, scanner)
        listings, stats = scanner.listings, scanner.stats
        return len(present)

    def stat_each():
        # PyExpUtils' old listMissingResults: one exists() per index's save path (from the same planner)
        nonlocal stats
        present = {index for index, path in plan.save_paths() if os.path.exists(path)}
        stats = plan.total
        return len(present)

    mark(f"{MARK_BEGIN}-{mode}")
    seconds, present = timed_best(repeat, ours if mode == "ours" else stat_each)
    mark(f"{MARK_END}-{mode}")
    return {
        "mode": mode,
        "indices": plan.total,
        "present": present,
        "seconds": seconds,
        "listings": listings,
        "stats": stats,
        "result_dirs": len({os.path.dirname(p) for _, p in plan.save_paths()}),
    }


def cmd_missing_exists(args: argparse.Namespace) -> dict:
    """The simplest way to find missing results: os.path.exists over our bulk planner's save paths."""
    plan = project_plan(Path("."), args.runs)
    missing = [index for index, path in plan.save_paths() if not os.path.exists(path)]
    return {"indices": plan.total, "missing": len(missing)}


def cmd_missing_ref(args: argparse.Namespace) -> dict:
    """PyExpUtils' way: interpolateSavePath(i) and os.path.exists for the first `limit` indices, timed."""
    exp = reference_experiment()
    total = exp.numPermutations() * args.runs
    count = min(total, args.limit)
    start = time.perf_counter()
    missing = [i for i in range(count) if not os.path.exists(exp.interpolateSavePath(i))]
    seconds = time.perf_counter() - start
    return {"indices": total, "measured": count, "loop_seconds": seconds, "missing": len(missing)}


TEMPLATE_SCRIPT = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --hold
cd {cwd}
export MPLBACKEND=TKAgg
export OMP_NUM_THREADS=1
{parallel}
"""


def cmd_ref_submit(args: argparse.Namespace) -> dict:
    """The rl-control-template's scripts/slurm.py loop: one sbatch per bundle, 2 s apart.

    Each bundle of `per_job` indices becomes one job running GNU parallel over them
    (PyExpUtils `buildParallel`), scheduled with PyExpUtils `Slurm.schedule` (a script file and
    `os.system('sbatch ...')`), then `time.sleep(2)`. The jobs are held (`#SBATCH --hold`).
    """
    import dataclasses

    from PyExpUtils.runner import Slurm

    options = Slurm.SingleNodeOptions(
        account=args.account,
        time="0:59:59",
        cores=1,
        mem_per_core="100M",
        sequential=args.per_job,
        log_path=os.path.join(args.log_dir, "job_output_%j.txt"),
    )
    indices = list(range(args.calls * args.per_job))
    calls, ids = [], []
    workdir = tempfile.mkdtemp(prefix="ref-submit-", dir=args.log_dir)
    for start in range(0, len(indices), args.per_job):
        bundle = indices[start : start + args.per_job]
        sub = dataclasses.replace(options, cores=1)
        parallel = Slurm.buildParallel(f"python src/main.py -e {EXPERIMENT} -i ", bundle, sub)
        script = TEMPLATE_SCRIPT.format(name=args.name, cwd=os.getcwd(), parallel=parallel)
        with tempfile.TemporaryFile() as captured:
            sys.stdout.flush()
            saved = os.dup(1)
            os.dup2(captured.fileno(), 1)
            began = time.perf_counter()
            try:
                Slurm.schedule(script, sub, script_name=os.path.join(workdir, "auto_slurm.sh"), skip_validation=True)
            finally:
                ended = time.perf_counter()
                os.dup2(saved, 1)
                os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
        found = re.search(r"Submitted batch job (\d+)", text)
        if found:
            ids.append(found.group(1))
            with open(args.ids_file, "a") as f:
                f.write(found.group(1) + "\n")
        calls.append({"began": began, "ended": ended})
        time.sleep(2)  # "DO NOT REMOVE. This will prevent you from overburdening the slurm scheduler."
        calls[-1]["slept"] = time.perf_counter()
    return {"calls": calls, "job_ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("plan-ours")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--random-limit", type=int, default=1_000_000)
    p = commands.add_parser("plan-ref")
    p.add_argument("--limit", type=int, default=100_000)
    p.add_argument("--verify", type=int, default=0)
    p = commands.add_parser("scan")
    p.add_argument("--mode", choices=("ours", "stat", "ours,stat", "stat,ours"), required=True)
    p.add_argument("--runs", type=int, default=RUNS)
    p.add_argument("--repeat", type=int, default=1)
    p = commands.add_parser("missing-exists")
    p.add_argument("--runs", type=int, default=RUNS)
    p = commands.add_parser("missing-ref")
    p.add_argument("--runs", type=int, default=RUNS)
    p.add_argument("--limit", type=int, default=100_000)
    p = commands.add_parser("ref-submit")
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--per-job", type=int, default=256)
    p.add_argument("--name", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--ids-file", required=True)
    p.add_argument("--log-dir", required=True)
    args = parser.parse_args()
    handler = {
        "plan-ours": cmd_plan_ours,
        "plan-ref": cmd_plan_ref,
        "scan": cmd_scan,
        "missing-exists": cmd_missing_exists,
        "missing-ref": cmd_missing_ref,
        "ref-submit": cmd_ref_submit,
    }[args.command]
    print(json.dumps(handler(args)))


if __name__ == "__main__":
    main()

"""Submission and status on the real Slurm cluster, ours beside the PyExpUtils template's way.

Every Slurm command is counted by a wrapper script put first on PATH (it appends a line to a
count file, then execs the real command), so the counts cover the whole CLI process.
Everything we submit is held (`--hold`: nothing runs) and cancelled by its job id right after.
The cluster is shared: every part that uses it runs under `flock /tmp/orch-cluster.lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import EXPERIMENT, PYTHON, RUNS, make_project, project_plan

LOCK_FILE = "/tmp/orch-cluster.lock"  # the lock every user of the shared test cluster takes
COUNTED = ("sbatch", "squeue", "sacct", "scontrol", "sacctmgr", "scancel", "git")
FAKE_JOB_BASE = 60_000_000  # synthetic ledgers: ids below MaxJobId, far above the test cluster's


def available() -> tuple[bool, str]:
    if shutil.which("sbatch") is None:
        return False, "sbatch is not on PATH"
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"sinfo failed: {e}"
    if probe.returncode != 0:
        return False, f"sinfo failed: {probe.stderr.strip()}"
    return True, ""


@contextlib.contextmanager
def cluster_lock(wait_seconds: float = 900.0) -> Iterator[float]:
    """The shared cluster's lock (flock(2) on LOCK_FILE, as `flock(1)` takes it); yields the wait."""
    start = time.monotonic()
    with open(LOCK_FILE, "a") as f:
        said = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > wait_seconds:
                    raise RuntimeError(f"{LOCK_FILE} held by someone else for {wait_seconds:.0f} s") from None
                if not said:
                    print(f"  waiting for {LOCK_FILE} (another user of the test cluster holds it)", flush=True)
                    said = True
                time.sleep(2)
        try:
            yield time.monotonic() - start
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Counters:
    """Wrapper scripts for Slurm's commands (and git) that count their calls."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.counts = directory / "counts"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.counts.mkdir(parents=True, exist_ok=True)
        for name in COUNTED:
            real = shutil.which(name)
            if real is None:
                continue
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\necho >>"$ORCH_BENCH_COUNTS/{name}"\nexec {real} "$@"\n')
            wrapper.chmod(0o755)
        self.env = dict(os.environ)
        self.env["PATH"] = f"{self.bin}{os.pathsep}{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env["ORCH_BENCH_COUNTS"] = str(self.counts)

    def reset(self) -> None:
        for f in self.counts.iterdir():
            f.unlink()

    def read(self) -> dict[str, int]:
        out = {name: 0 for name in COUNTED}
        for f in self.counts.iterdir():
            out[f.name] = f.stat().st_size  # one byte (a newline) per call
        return out


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    result = subprocess.run([PYTHON, "-m", "orchestrator", *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"orchestrator {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, json.loads(result.stdout)


def profile_cli(args: list[str], cwd: Path, env: dict[str, str], top: int = 10) -> dict[str, Any]:
    """One `orchestrator ARGS` run under cProfile: where its time goes (profiled times run slower)."""
    import pstats

    out = cwd / ".bench-profile"
    start = time.perf_counter()
    result = subprocess.run(
        [PYTHON, "-m", "cProfile", "-o", str(out), "-m", "orchestrator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"profiled orchestrator {' '.join(args)} failed: {result.stderr[-2000:]}")
    rows = []
    for (filename, _line, function), (_cc, calls, own, total, _callers) in pstats.Stats(str(out)).stats.items():
        rows.append({"where": _where(filename, function), "calls": calls, "own": own, "total": total})
    out.unlink()
    ours = [r for r in rows if r["where"].startswith("orchestrator/") and not r["where"].startswith(_WRAPPERS)]
    return {
        "args": args,
        "seconds": seconds,
        "by_total": sorted(ours, key=lambda r: -r["total"])[:top],
        "by_own": sorted(rows, key=lambda r: -r["own"])[:top],
    }


_WRAPPERS = ("orchestrator/cli.py", "orchestrator/__main__.py")


def _where(filename: str, function: str) -> str:
    if filename == "~":
        return function  # a builtin: "<method 'poll' of 'select.poll' objects>"
    parts = Path(filename).parts
    if "orchestrator" in parts:
        return "orchestrator/" + "/".join(parts[len(parts) - parts[::-1].index("orchestrator") :]) + f":{function}"
    return f"{Path(filename).name}:{function}"


def _array_limit() -> int:
    from orchestrator.slurm_commands import SlurmCommands

    max_size, max_tasks = SlurmCommands().array_limits()
    return min(n for n in (max_size, max_tasks) if n)


def _default_account() -> str:
    user = os.environ.get("USER") or "root"
    out = subprocess.run(
        ["sacctmgr", "-n", "-P", "show", "user", user, "format=DefaultAccount"], capture_output=True, text=True
    )
    account = out.stdout.strip().splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else ""
    return account or "orchtest"


def _scancel(ids: list[str]) -> None:
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=120)


def _wait_gone(ids: list[str], timeout: float = 60.0) -> None:
    """Until squeue no longer lists the jobs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
        if not out.stdout.strip():
            return
        time.sleep(0.5)


class Jobs:
    """Every job id this run submitted, cancelled at the end whatever happens."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def add(self, ids: list[str]) -> None:
        self.ids.extend(i for i in ids if i not in self.ids)

    def cancel_all(self) -> None:
        _scancel(self.ids)


def _ledger_job_ids(project: Path) -> list[str]:
    from orchestrator.ledger import Ledger

    return [r.job_id for r in Ledger(project).all_records() if r.job_id]


# -- submission (+ status of the submitted, then cancelled, jobs) -------------------------------


def submission(
    work: Path,
    sizes: list[int],
    per_task: int,
    counters: Counters,
    jobs: Jobs,
    extra: list[tuple[int, int]],
    profile: bool = False,
) -> dict[str, Any]:
    """Ours: `orchestrator submit` of the whole sweep; then status while held, and after scancel."""
    from orchestrator.slurm_formats import parse_ranges

    limit = _array_limit()
    rows = []
    for size, ipt in [(n, per_task) for n in sizes] + extra:
        project = make_project(work / f"submit-{size}-{ipt}", size, git=True)
        (project / "profile.yaml").write_text(
            f'time: "0:10:00"\nmem_per_cpu: 100M\nindices_per_task: {ipt}\nsbatch:\n  hold: true\n'
        )
        common = [EXPERIMENT, "--runs", str(RUNS), "--json"]
        counters.reset()
        try:
            seconds, report = _cli(
                ["submit", *common, "--cluster", "profile.yaml", "--executor", "slurm"], project, counters.env
            )
        finally:
            jobs.add(_ledger_job_ids(project))
        calls = counters.read()
        subs = report["submissions"]
        ids = [s["job_id"] for s in subs if s["job_id"]]
        submitted = sum(len(parse_ranges(s["indices"])) for s in subs)
        tasks = math.ceil(size / ipt)
        row: dict[str, Any] = {
            "indices": size,
            "indices_per_task": ipt,
            "tasks": tasks,
            "max_array_size": limit,
            "fewest_sbatch": math.ceil(tasks / limit),
            "submitted_indices": submitted,
            "submit_seconds": seconds,
            "submit_calls": calls,
            "largest_array": max(s["tasks"] for s in subs),
        }
        # status while every task is held (pending): squeue answers for all of them
        counters.reset()
        row["status_pending_seconds"], status = _cli(["status", *common], project, counters.env)
        row["status_pending_calls"] = counters.read()
        row["status_pending_counts"] = {k: status["experiments"][0][k] for k in ("pending", "missing", "failed")}
        # cancelled: out of the queue, so accounting is asked (batched) why they ended
        _scancel(ids)
        _wait_gone(ids)
        counters.reset()
        row["status_cancelled_seconds"], status = _cli(["status", *common], project, counters.env)
        row["status_cancelled_calls"] = counters.read()
        if profile and size == max(sizes) and ipt == per_task:
            row["status_cancelled_profile"] = profile_cli(["status", *common], project, counters.env)
        row["status_cancelled_jobs"] = len(ids)
        rows.append(row)
        print(
            f"  submit {size:>8,} indices ({ipt}/task): {row['submit_calls']['sbatch']} sbatch "
            f"(fewest {row['fewest_sbatch']}), {seconds:.2f} s; status {row['status_pending_seconds']:.2f} s "
            f"/ {row['status_cancelled_seconds']:.2f} s",
            flush=True,
        )
    out: dict[str, Any] = {"rows": rows}
    if profile:
        # the largest submit again, in a project of its own, under cProfile (its jobs held and cancelled too)
        size = max(sizes)
        project = make_project(work / f"submit-profile-{size}", size, git=True)
        (project / "profile.yaml").write_text((work / f"submit-{size}-{per_task}" / "profile.yaml").read_text())
        args = ["submit", EXPERIMENT, "--runs", str(RUNS), "--json", "--cluster", "profile.yaml", "--executor", "slurm"]
        try:
            out["submit_profile"] = profile_cli(args, project, counters.env)
        finally:
            ids = _ledger_job_ids(project)
            jobs.add(ids)
            _scancel(ids)
    return out


def reference_submission(work: Path, calls: int, per_job: int, counters: Counters, jobs: Jobs) -> dict[str, Any]:
    """A sample of `calls` bundles submitted the PyExpUtils template's way (held, then cancelled)."""
    project = make_project(work / "ref-submit", 1000)  # its jobs name the experiment; never run
    ids_file = work / "ref-job-ids.txt"
    logs = work / "ref-logs"
    logs.mkdir(exist_ok=True)
    name = f"orch-bench-ref-{uuid.uuid4().hex[:8]}"
    counters.reset()
    result = subprocess.run(
        [
            PYTHON,
            str(Path(__file__).with_name("probes.py")),
            "ref-submit",
            "--calls",
            str(calls),
            "--per-job",
            str(per_job),
            "--name",
            name,
            "--account",
            _default_account(),
            "--ids-file",
            str(ids_file),
            "--log-dir",
            str(logs),
        ],
        cwd=project,
        env=counters.env,
        capture_output=True,
        text=True,
    )
    if ids_file.exists():
        jobs.add(ids_file.read_text().split())
    if result.returncode != 0:
        raise RuntimeError(f"reference submission failed: {result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    _scancel(data["job_ids"])
    sample = data["calls"]
    first = sample[0]["began"]
    sbatch_seconds = [c["ended"] - c["began"] for c in sample]
    return {
        "calls": len(sample),
        "sbatch_calls_counted": counters.read()["sbatch"],
        "accepted": len(data["job_ids"]),
        "per_job": per_job,
        "sleep": 2.0,
        "sbatch_seconds": sbatch_seconds,
        "mean_sbatch_seconds": sum(sbatch_seconds) / len(sbatch_seconds),
        # wall time after k calls (each followed by its 2 s sleep, as the template does)
        "elapsed_after": [c["slept"] - first for c in sample],
    }


# -- status over many jobs (a synthetic ledger) --------------------------------------------------


def write_synthetic_ledger(project: Path, tasks_per_job: int) -> int:
    """Ledger records as if every index had been its own array task, `tasks_per_job` tasks per job.

    The job ids are made up (no such jobs exist): squeue does not list them, so every one is
    "finished" and asked of sacct, which answers with no rows. Written without fsync, for speed.
    """
    from orchestrator.ledger import Ledger, SubmissionRecord, SubmissionState

    plan = project_plan(project)
    ledger = Ledger(project)
    key = ledger.experiment_key(plan.path)
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    jobs = 0
    for number, start in enumerate(range(0, plan.total, tasks_per_job)):
        tag = f"orch-sweep-{number:010x}"
        created = (base + timedelta(seconds=number)).isoformat(timespec="milliseconds")
        record = SubmissionRecord(
            tag=tag,
            status=SubmissionState.SUBMITTED,
            executor="slurm",
            experiment=plan.path,
            experiment_key=key,
            experiment_hash=plan.file.content_hash,
            experiment_data=plan.file.data,
            keys=list(plan.keys),
            tasks=[[i] for i in range(start, min(start + tasks_per_job, plan.total))],
            resources={"time": "0:59:59", "mem-per-cpu": "1G", "cpus-per-task": "1"},
            script_path=str(project / ".orchestrator" / "runs" / tag / "job.sh"),
            task_file=str(project / ".orchestrator" / "runs" / tag / "tasks.txt"),
            log_dir=str(project / ".logs" / "bench" / tag),
            script="#!/bin/bash\n",
            job_id=str(FAKE_JOB_BASE + number),
            created=created,
            updated=created,
        )
        path = ledger.record_path(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record.to_json(), indent=1))
        jobs += 1
    return jobs


def status_many_jobs(
    work: Path, sizes: list[int], tasks_per_job: int, counters: Counters, naive_sample: int, profile: bool = False
) -> dict[str, Any]:
    from orchestrator.slurm_formats import SACCT_FIELDS

    rows = []
    for size in sizes:
        project = make_project(work / f"status-{size}", size)
        jobs = write_synthetic_ledger(project, tasks_per_job)
        runs = []
        for _ in range(2):  # the first also warms the page cache for the ledger
            counters.reset()
            seconds, status = _cli(["status", EXPERIMENT, "--runs", str(RUNS), "--json"], project, counters.env)
            runs.append((seconds, counters.read(), status))
        seconds, calls, status = min(runs, key=lambda r: r[0])
        rows.append({"indices": size, "jobs": jobs, "seconds": seconds, "calls": calls})
        if profile and size == max(sizes):
            args = ["status", EXPERIMENT, "--runs", str(RUNS), "--json"]
            rows[-1]["profile"] = profile_cli(args, project, counters.env)
        print(
            f"  status {size:>8,} indices over {jobs:,} jobs: {calls['squeue']} squeue, {calls['sacct']} sacct, "
            f"{seconds:.2f} s",
            flush=True,
        )
    # the naive way: one sacct per job (sampled, then extrapolated)
    sample = []
    for k in range(naive_sample):
        start = time.perf_counter()
        subprocess.run(
            ["sacct", "-X", "-P", "-n", "-o", SACCT_FIELDS, "-j", str(FAKE_JOB_BASE + k)],
            capture_output=True,
            text=True,
        )
        sample.append(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run(["squeue", "--me", "-r", "-h"], capture_output=True, text=True)
    squeue_seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "naive_sacct_seconds": sample,
        "naive_mean_sacct": sum(sample) / len(sample),
        "squeue_seconds": squeue_seconds,
    }

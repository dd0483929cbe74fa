"""`orchestrator status` on a 100,000-index sweep asks Slurm once, not once per index or per job.

The ledger is written by hand (400 array jobs of 250 tasks, no real submission) and the Slurm commands
are replaced by wrapper scripts first on PATH that append one line per invocation to a counter file,
then either run the real command (where there is one) or answer with canned text.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
from pathlib import Path

import pytest
from support import cli_env, status_json, submission_record, write_experiment

from orchestrator.config import load_config
from orchestrator.ledger import Ledger
from orchestrator.planner import plan_experiment
from orchestrator.slurm_commands import SACCT_CHUNK

EXPERIMENT = "experiments/big/sweep.json"
JOBS, TASKS = 400, 250  # 100,000 indices, one per task
FIRST_JOB = 91_000_000  # far above any real job id of the test cluster
WRAPPED = ("squeue", "sacct", "sbatch", "scancel", "scontrol", "sacctmgr")


def write_ledger(root: Path) -> list[str]:
    write_experiment(root, EXPERIMENT, {"metaParameters": {"a": list(range(100)), "b": list(range(1000))}})
    plan = plan_experiment(EXPERIMENT, load_config(root), 1)
    assert plan.total == JOBS * TASKS
    ledger = Ledger(root)
    job_ids = []
    for job in range(JOBS):
        tag = f"orch-big-{job:04d}"
        job_id = str(FIRST_JOB + job)
        job_ids.append(job_id)
        rec = submission_record(
            ledger,
            plan,
            [[job * TASKS + t] for t in range(TASKS)],
            job_id,
            tag=tag,
            resources={"time": "0:10:00", "mem-per-cpu": "1G"},
            log_dir=str(root / ".logs" / "big" / tag),
            created=f"2024-01-01T00:{job // 60:02d}:{job % 60:02d}.000+00:00",
        )
        # as Ledger.write lays them out, without its fsyncs (400 of them take seconds)
        path = ledger.record_path(rec)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec.to_json()))
    return job_ids


def wrappers(bin_dir: Path, counter: Path, canned: dict[str, str] | None) -> None:
    """One script per Slurm command: count the call, then run the real command or print `canned`."""
    bin_dir.mkdir()
    for name in WRAPPED:
        real = shutil.which(name)
        lines = ["#!/bin/sh", f'printf "%s\\n" "{name} $*" >> {shlex.quote(str(counter))}']
        if canned is not None:
            lines.append(f"printf %s {shlex.quote(canned.get(name, ''))}")
        elif real is not None:
            lines.append(f'exec {shlex.quote(real)} "$@"')
        script = bin_dir / name
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o755)


def calls(counter: Path) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {name: [] for name in WRAPPED}
    if counter.exists():
        for line in counter.read_text().splitlines():
            name, *args = line.split(" ")
            out[name].append(args)
    return out


def status(root: Path, bin_dir: Path) -> dict:
    """`status --json` with the wrappers first on PATH."""
    return status_json(root, EXPERIMENT, env=cli_env(bin_dir))


def sacct_ids(args: list[str]) -> list[str]:
    return args[args.index("-j") + 1].split(",")


def check_counts(counted: dict[str, list[list[str]]], job_ids: list[str], asked: set[str]) -> None:
    assert len(counted["squeue"]) == 1, counted["squeue"]
    assert 1 <= len(counted["sacct"]) <= math.ceil(JOBS / SACCT_CHUNK), [len(a) for a in counted["sacct"]]
    chunks = [sacct_ids(args) for args in counted["sacct"]]
    assert all(len(chunk) <= SACCT_CHUNK for chunk in chunks)
    assert sorted(i for chunk in chunks for i in chunk) == sorted(asked)  # each finished job once
    assert set(asked) <= set(job_ids)
    assert all(not counted[name] for name in ("sbatch", "scancel", "scontrol", "sacctmgr"))


@pytest.mark.slurm  # the real squeue and sacct, where installed: not while another run has slurmctld stopped
def test_status_of_100000_indices_makes_one_squeue_and_few_sacct_calls(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Wrappers run the real squeue/sacct where installed (the fake job ids are in neither) or print nothing."""
    job_ids = write_ledger(project)
    work = tmp_path_factory.mktemp("wrappers")
    counter = work / "calls.txt"
    wrappers(work / "bin", counter, canned=None)
    entry = status(project, work / "bin")
    check_counts(calls(counter), job_ids, set(job_ids))
    assert entry["total"] == 100_000 and entry["failed"] == 100_000
    assert entry["indices"]["failed"] == "0-99999"
    assert entry["failed_reasons"] == {"unknown (not in squeue, no accounting record)": "0-99999"}


def test_status_of_100000_indices_with_live_and_accounted_tasks(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Canned answers: job 0 is all in the queue (no sacct for it); job 1 timed out; job 2's tasks are grouped."""
    job_ids = write_ledger(project)
    first, second, third = job_ids[:3]
    squeue = "".join(f"{first}|{t}|{'RUNNING' if t < 2 else 'PENDING'}|None|orch-big-0000|\n" for t in range(TASKS))
    sacct = (
        f"{second}_[0-{TASKS - 1}]|orch-big-0001|TIMEOUT|0:0|00:10:00\n{third}_7|orch-big-0002|FAILED|3:0|00:00:01\n"
    )
    work = tmp_path_factory.mktemp("wrappers")
    counter = work / "calls.txt"
    wrappers(work / "bin", counter, canned={"squeue": squeue, "sacct": sacct})
    entry = status(project, work / "bin")
    check_counts(calls(counter), job_ids, set(job_ids[1:]))
    assert entry["running"] == 2 and entry["pending"] == TASKS - 2
    assert entry["indices"]["running"] == "0-1" and entry["indices"]["pending"] == f"2-{TASKS - 1}"
    timed_out = f"{TASKS}-{2 * TASKS - 1}"
    exit3 = 2 * TASKS + 7
    assert entry["failed_reasons"]["TIMEOUT"] == timed_out
    assert entry["failed_reasons"]["FAILED exit 3"] == str(exit3)
    assert entry["failed"] == 100_000 - TASKS
    assert sum(entry[s] for s in ("done", "running", "pending", "failed", "missing")) == 100_000

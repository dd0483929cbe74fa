"""Usage figures on the real Slurm test cluster, checked against what the tasks measured of themselves.

A sweep of 4 indices (tests/data/usage/hog.py): index i holds 50 x size MB for 5 x size seconds,
size 1, 3, 5, 8, so 5 s to 40 s and 50 MB to 400 MB. The profile asks for 10x the largest: 400 s and
4000M per CPU. Two CPUs run them in about a minute. Each index writes truth.json (its own peak RSS
from getrusage, wall and CPU time); the test compares the one batched sacct's figures with it.

Sampling: the cluster's JobAcctGatherFrequency is 30 s (jobacct_gather/linux), and Slurm takes no
sample when a step ends, so tasks shorter than 30 s get no MaxRSS at all (recorded in
tests/data/slurm/sacct_usage_freq30.txt, tested in test_usage.py). This sweep asks for a 1 s interval
(`sbatch: {acctg-freq: task=1}` in the profile), which a user may do; then MaxRSS is the whole
step's (bash + python) largest 1 s sample: the truth plus the shell's few MB, never less.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
from slurm_support import require_slurm
from support import REPO, orchestrator, wait_for

from orchestrator.ledger import Ledger
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import parse_memory, parse_time
from orchestrator.sweep import Sweep
from orchestrator.usage import experiment_usage, index_seconds_from_logs, summarize, task_indices_of

pytestmark = pytest.mark.slurm

SIZES = [1, 3, 5, 8]
EXPERIMENT = "experiments/hog/sweep.json"
PROFILE = """\
time: "0:06:40"
mem_per_cpu: 4000M
sbatch: {acctg-freq: "task=1"}
command: python hog.py -e {experiment} -i {index}
"""
ELAPSED_SLACK = 3.0  # s: Elapsed is in whole seconds and includes the job script and python's start
RSS_SLACK_MB = 16.0  # the job script's bash and sampling (MaxRSS is the step's, truth is python's own)


def make_project(root: Path) -> Path:
    (root / "experiments" / "hog").mkdir(parents=True)
    shutil.copy(REPO / "config.json", root / "config.json")
    shutil.copy(REPO / "tests" / "data" / "usage" / "hog.py", root / "hog.py")
    (root / EXPERIMENT).write_text(json.dumps({"agent": "Hog", "metaParameters": {"size": SIZES}}))
    (root / "prof.yaml").write_text(PROFILE)
    return root


def truth_file(project: Path, index: int) -> Path:
    return project / "results" / "hog" / "Hog" / f"size-{SIZES[index]}" / "0" / "truth.json"


def test_usage_of_a_real_sweep_matches_what_the_tasks_measured(tmp_path: Path) -> None:
    require_slurm()
    project = make_project(tmp_path / "proj")
    result = orchestrator("submit", EXPERIMENT, "--cluster", "prof.yaml", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    (submission,) = json.loads(result.stdout)["submissions"]
    job = submission["job_id"]
    slurm = SlurmCommands()
    try:
        wait_for(lambda: all(truth_file(project, i).exists() for i in range(4)), 150, "the 4 indices to finish", 2)

        def accounted() -> bool:
            records = slurm.sacct_usage([job]) or []
            return sum(1 for r in records if r.step is None and r.state == "COMPLETED") == 4

        wait_for(accounted, 60, "sacct to record the 4 tasks as COMPLETED", 1)
        records = slurm.sacct_usage([job])
    finally:
        subprocess.run(["scancel", job], capture_output=True, timeout=60)
    assert records is not None

    truth = [json.loads(truth_file(project, i).read_text()) for i in range(4)]
    ledger = Ledger(project).all_records()
    tasks = task_indices_of(ledger)
    assert tasks == {(job, i): [i] for i in range(4)}
    logs = index_seconds_from_logs((r.log_dir, [i for t in r.tasks for i in t]) for r in ledger)
    sweep = Sweep(json.loads((project / EXPERIMENT).read_text()))
    usage = experiment_usage(EXPERIMENT, ledger, records, sweep=sweep, headroom=1.25)
    out = usage.to_json()
    with_logs = summarize(EXPERIMENT, records, tasks, sweep=sweep, log_seconds=logs, headroom=1.25).to_json()
    assert with_logs["index_elapsed_s"] == pytest.approx(out["index_elapsed_s"], abs=2)

    # per task: Elapsed and MaxRSS against the truth
    by_index = {tasks[t.key][0]: t for t in usage.tasks}
    for i, t in by_index.items():
        assert t.state == "COMPLETED"
        assert -1 <= t.elapsed_seconds - truth[i]["wall_s"] <= ELAPSED_SLACK, (i, t, truth[i])
        assert t.max_rss_mb is not None, f"index {i}: no MaxRSS sampled"
        own_mb = truth[i]["peak_rss_kb"] / 1024
        assert own_mb <= t.max_rss_mb <= own_mb + RSS_SLACK_MB, (i, t.max_rss_mb, own_mb)
        assert t.total_cpu_seconds <= truth[i]["cpu_s"] + 1.0
        assert abs(logs[i] - t.elapsed_seconds) <= 2, (i, logs[i], t.elapsed_seconds)  # the logs' own stamps

    # medians and maxima
    wall = [x["wall_s"] for x in truth]
    own = [x["peak_rss_kb"] / 1024 for x in truth]
    assert out["tasks"] == 4 and out["max_rss_unsampled"] == 0
    assert abs(out["elapsed_s"]["median"] - statistics.median(wall)) <= ELAPSED_SLACK
    assert abs(out["elapsed_s"]["max"] - max(wall)) <= ELAPSED_SLACK
    assert 0 <= out["max_rss_mb"]["median"] - statistics.median(own) <= RSS_SLACK_MB
    assert 0 <= out["max_rss_mb"]["max"] - max(own) <= RSS_SLACK_MB
    assert max(x["mb"] for x in truth) == 400 and max(x["seconds"] for x in truth) == 40

    # the profile asked for 10x (Slurm keeps time limits in whole minutes: 6:40 became 7:00); the
    # right-sized request is at most 2x the measured maximum, and above it
    print(json.dumps(out, indent=1))  # the figures, for `pytest -s`
    assert out["requested"] == {"time_s": 420, "mem_per_cpu_mb": 4000.0, "cpus": 1}
    time_s, mem_mb = parse_time(out["suggested"]["time"]), parse_memory(out["suggested"]["mem_per_cpu"])
    assert out["elapsed_s"]["max"] < time_s <= 2 * out["elapsed_s"]["max"]
    assert out["max_rss_mb"]["max"] < mem_mb <= 2 * out["max_rss_mb"]["max"]
    assert out["cpu_hours_requested"] == pytest.approx(4 * 420 / 3600, abs=1e-4)
    assert out["cpu_hours_used"] == pytest.approx(sum(t.elapsed_seconds for t in usage.tasks) / 3600, abs=1e-4)
    assert list(out["by_parameter"]) == ["metaParameters.size"]  # 5 s vs 40 s, 76 MB vs 420 MB

"""`usage`, `submit --right-size`, the cost line, `confirm_above` and `status --by` on the real test cluster.

The usage sweep is tests/test_usage_slurm.py's (tests/data/usage/hog.py: index i holds 50 x size MB
for 5 x size seconds, sizes 1, 3, 5, 8; 1 s accounting samples), under a profile that asks for 10x
the largest: 400 s and 4000M per CPU. The CLI's figures are compared with what the tasks measured of
themselves; the right-sized resubmission is held in the queue and its request read back from Slurm.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
from slurm_support import ClusterSession, queued_jobs
from support import IN_CI, cli_argv, cli_env, orchestrator, run_on_a_pty, submit_json, wait_for, write_experiment
from test_usage_slurm import ELAPSED_SLACK, EXPERIMENT, RSS_SLACK_MB, make_project, truth_file

from orchestrator.ledger import Ledger
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import parse_memory, parse_time

pytestmark = pytest.mark.slurm

PROFILE_SECONDS, PROFILE_MB = 400, 4000  # "0:06:40", 4000M (tests/test_usage_slurm.py)


def _finished_in_accounting(job: str, count: int) -> bool:
    records = SlurmCommands().sacct_usage([job]) or []
    return sum(1 for r in records if r.step is None and r.state in ("COMPLETED", "FAILED")) == count


def _scontrol_job(job: str) -> dict[str, str]:
    """`scontrol show job -o` of an array's first task: Key=Value pairs."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=60).stdout
    first = out.splitlines()[0]
    return dict(item.split("=", 1) for item in first.split() if "=" in item)


def test_usage_and_a_right_sized_resubmission_on_a_real_sweep(tmp_path: Path, cluster: ClusterSession) -> None:
    project = make_project(tmp_path / "proj")
    cluster.projects.append(project)
    dry = orchestrator("submit", EXPERIMENT, "--cluster", "prof.yaml", "--dry-run", cwd=project)
    assert dry.returncode == 0, dry.stderr
    # by hand: 4 tasks x 400 s on 1 CPU = 0.444 CPU-hours
    assert (
        dry.stdout.splitlines()[0] == "cost: 4 indices in 4 task(s), 0.44 CPU-hours at the requested limits (at most)"
    )

    (first,) = submit_json(project, EXPERIMENT, "--cluster", "prof.yaml")["submissions"]
    wait_for(lambda: all(truth_file(project, i).exists() for i in range(4)), 150, "the 4 indices to finish", 2)
    wait_for(lambda: _finished_in_accounting(first["job_id"], 4), 60, "sacct to record the 4 tasks", 1)

    plot = ("--plot", "usage.png") if PLOTS else ()  # the optional extra: CI installs it
    result = orchestrator("usage", EXPERIMENT, "--json", *plot, cwd=project)
    assert result.returncode == 0, result.stderr
    (u,) = json.loads(result.stdout)["experiments"]
    truth = [json.loads(truth_file(project, i).read_text()) for i in range(4)]
    wall, own_mb = [t["wall_s"] for t in truth], [t["peak_rss_kb"] / 1024 for t in truth]
    print(json.dumps({"usage": u, "truth_wall_s": wall, "truth_peak_mb": own_mb}, indent=1))  # pytest -s
    assert u["tasks"] == 4
    assert abs(u["elapsed_s"]["median"] - statistics.median(wall)) <= ELAPSED_SLACK
    assert abs(u["elapsed_s"]["max"] - max(wall)) <= ELAPSED_SLACK
    assert 0 <= u["max_rss_mb"]["median"] - statistics.median(own_mb) <= RSS_SLACK_MB
    assert 0 <= u["max_rss_mb"]["max"] - max(own_mb) <= RSS_SLACK_MB
    assert not PLOTS or (project / "usage.png").read_bytes()[:4] == b"\x89PNG"

    # the results are gone: all four go out again, right-sized, held in the queue to read the request back
    shutil.rmtree(project / "results")
    (project / "hold.yaml").write_text(
        (project / "prof.yaml").read_text().replace('"task=1"}', '"task=1", hold: true}')
    )
    resubmit = orchestrator("submit", EXPERIMENT, "--cluster", "hold.yaml", "--right-size", cwd=project)
    assert resubmit.returncode == 0, resubmit.stderr
    mean_elapsed = statistics.fmean(
        t.elapsed_seconds for t in _usage_tasks(project, first["job_id"]) if t.state == "COMPLETED"
    )
    cost_line = resubmit.stdout.splitlines()[0]
    (second,) = [r for r in Ledger(project).all_records() if r.job_id != first["job_id"]]
    time_s, mem_mb = parse_time(second.resources["time"]), parse_memory(second.resources["mem-per-cpu"])
    # by hand: the right-sized limit x 4 tasks; expected: the measured mean Elapsed x 4 tasks
    assert cost_line == (
        f"cost: 4 indices in 4 task(s), {4 * time_s / 3600:.2f} CPU-hours at the requested limits (at most); "
        f"expected {4 * mean_elapsed / 3600:.2f} CPU-hours from measured run times"
    )
    job = _scontrol_job(second.job_id)
    print(f"right-sized: TimeLimit={job['TimeLimit']} MinMemoryCPU={job['MinMemoryCPU']}")
    assert parse_time(job["TimeLimit"]) == time_s and parse_memory(job["MinMemoryCPU"]) == mem_mb
    # the profile asked for 10x the largest (400 s, 4000M); the right-sized request is above the measured
    # maximum and at most twice it
    assert PROFILE_SECONDS >= 10 * 40 and PROFILE_MB >= 10 * 400
    assert u["elapsed_s"]["max"] < time_s <= 2 * u["elapsed_s"]["max"]
    assert u["max_rss_mb"]["max"] < mem_mb <= 2 * u["max_rss_mb"]["max"]


def _usage_tasks(project: Path, job: str):
    from orchestrator.usage import task_usage

    return task_usage(SlurmCommands().sacct_usage([job]) or [])


DIVERGE = """\
import sys
from pathlib import Path

import orchestrator

exp = orchestrator.load_experiment(sys.argv[2])
index = int(sys.argv[4])
if exp.params(index)["lr"] >= 1.0:
    sys.exit(1)  # diverged
Path(exp.save_path(index)).mkdir(parents=True, exist_ok=True)
"""


def test_status_by_names_the_value_that_always_fails(tmp_path: Path, cluster: ClusterSession) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    cluster.projects.append(project)
    shutil.copy(Path(__file__).parent.parent / "config.json", project / "config.json")
    sweep = {"agent": "A", "metaParameters": {"lr": [0.01, 1.0, 0.1], "optimizer": ["sgd", "adam"], "batch": [8, 64]}}
    write_experiment(project, "experiments/lr/sweep.json", sweep)
    (project / "diverge.py").write_text(DIVERGE)
    (project / "prof.yaml").write_text("time: 2\ncommand: python diverge.py -e {experiment} -i {index}\n")
    report = submit_json(project, "experiments/lr/sweep.json", "--cluster", "prof.yaml")
    jobs = {s["job_id"] for s in report["submissions"]}
    assert len(jobs) == 2  # 12 tasks, MaxArraySize 11
    wait_for(lambda: not jobs & {job for job, _ in queued_jobs()}, 80, "the 12 tasks to leave the queue", 1)

    result = orchestrator("status", "experiments/lr/sweep.json", "--by", "lr", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    print(result.stdout)
    named = [line.strip() for line in lines if line.strip().startswith(("lr=", "optimizer=", "batch="))]
    assert named[0] == "lr=1.0: 4 of 4 finished failed (100%; 0% elsewhere)"
    assert "    lr=1.0: 4 failed (FAILED exit 1)" in lines
    assert "    lr=0.01: 4 done" in lines and "    lr=0.1: 4 done" in lines

    result = orchestrator("status", "experiments/lr/sweep.json", "--by", "lr,optimizer", "--json", cwd=project)
    (entry,) = json.loads(result.stdout)["experiments"]
    assert entry["by"]["lr"]["1.0"]["failed"] == 4 and entry["by"]["lr"]["0.01"]["done"] == 4
    assert {v: row["failed"] for v, row in entry["by"]["optimizer"].items()} == {"sgd": 2, "adam": 2}
    assert (entry["failures_stand_out"][0]["axis"], entry["failures_stand_out"][0]["value"]) == ("lr", "1.0")


# -- confirm_above: without a terminal, on a terminal (a pty), and --yes ----------------------------

# 30 tasks x 10,799 s = 89.99 CPU-hours; held, so they never run (`true` passes the checks before submitting)
PLOTS = importlib.util.find_spec("matplotlib") is not None or IN_CI  # under CI a missing extra must fail


HELD = "hours: 3\nconfirm_above: 50\nsbatch: {hold: true}\ncommand: true {experiment} {index}\n"
REFUSED = (
    "orchestrator: error: this submission asks for up to 89.99 CPU-hours, above confirm_above (50); "
    "nothing was submitted: run it on a terminal to confirm, or pass --yes"
)
COST_LINE = "cost: 30 indices in 30 task(s), 89.99 CPU-hours at the requested limits (at most)"


def _held_project(root: Path, cluster: ClusterSession) -> Path:
    root.mkdir()
    cluster.projects.append(root)
    shutil.copy(Path(__file__).parent.parent / "config.json", root / "config.json")
    write_experiment(
        root,
        "experiments/big/sweep.json",
        {"agent": "A", "metaParameters": {"lr": [0.1, 0.01, 0.001], "s": list(range(10))}},
    )
    (root / "held.yaml").write_text(HELD)
    return root


def _on_a_pty(project: Path, answer: bytes) -> tuple[int, str]:
    """`submit` with stdin, stdout and stderr on a pseudo-terminal; `answer` typed at the question."""
    argv = cli_argv("submit", "experiments/big/sweep.json", "--cluster", "held.yaml")
    return run_on_a_pty(argv, answer, cwd=project)


def _nothing_written(project: Path) -> bool:
    state = project / ".orchestrator"
    return not list(state.glob("ledger/**/*.json")) and not (state / "runs").exists()


def test_confirm_above_without_a_terminal_with_yes_and_on_a_terminal(tmp_path: Path, cluster: ClusterSession) -> None:
    project = _held_project(tmp_path / "a", cluster)
    before = set(queued_jobs())
    refused = subprocess.run(
        cli_argv("submit", "experiments/big/sweep.json", "--cluster", "held.yaml"),
        cwd=project,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (refused.returncode, refused.stdout, refused.stderr) == (2, "", REFUSED + "\n")
    assert _nothing_written(project) and not set(queued_jobs()) - before

    code, output = _on_a_pty(project, b"n\n")
    assert code == 2, output
    assert f"{COST_LINE}; above confirm_above (50 CPU-hours). Submit? [y/N]" in output
    assert "orchestrator: error: not confirmed; nothing was submitted" in output
    assert _nothing_written(project) and not set(queued_jobs()) - before

    yes = orchestrator("submit", "experiments/big/sweep.json", "--cluster", "held.yaml", "--yes", cwd=project)
    assert yes.returncode == 0, yes.stderr
    assert yes.stdout.splitlines()[0] == COST_LINE
    assert len([r.job_id for r in Ledger(project).all_records() if r.job_id]) == 3  # 11 + 11 + 8 tasks

    other = _held_project(tmp_path / "b", cluster)
    code, output = _on_a_pty(other, b"y\n")
    assert code == 0, output
    assert "[y/N]" in output and f"\n{COST_LINE}\n" in output
    assert len([r.job_id for r in Ledger(other).all_records() if r.job_id]) == 3

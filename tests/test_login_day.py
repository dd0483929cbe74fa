"""A day on the login node (issue 12): each trap a new user met, reproduced, and what happens now.

Everything runs through the CLI as a user types it, on the local executor (no Slurm needed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import cli_argv, cli_env, orchestrator, status_json, wait_for

SWEEP = "experiments/x/sweep.json"


def project(root: Path, size: int = 3, **profile: object) -> Path:
    """A project whose entry script (`run.py`) writes the index's result; it fails for indices in FAIL
    and sleeps SLEEP seconds first when those are set in the environment."""
    (root / "experiments" / "x").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"save_path": "results/{name}/{params}/{run}"}))
    (root / SWEEP).write_text(json.dumps({"metaParameters": {"k": list(range(size))}}))
    (root / "run.py").write_text(
        "import os, sys, time\n"
        "import orchestrator\n"
        "exp = orchestrator.load_experiment(sys.argv[1])\n"
        "index = int(sys.argv[2])\n"
        "time.sleep(float(os.environ.get('SLEEP', '0')))\n"
        "if str(index) in os.environ.get('FAIL', '').split(','):\n"
        "    sys.exit(3)\n"
        "os.makedirs(exp.save_path(index))\n"
    )
    settings = {"command": "python run.py {experiment} {index}", **profile}
    (root / "local.yaml").write_text(yaml.safe_dump(settings))
    return root


def submit(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return orchestrator("submit", SWEEP, "--cluster", "local.yaml", "--executor", "local", *args, cwd=root, env=env)


# -- 1. honest exit codes, preflight -------------------------------------------------------------


def test_a_local_run_whose_indices_fail_exits_3_with_the_failures_and_the_logs_command(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 4)
    result = submit(root, env=cli_env(FAIL="1,2"))
    assert result.returncode == 3, result.stdout + result.stderr  # it was 0 before
    assert "ran 4 indices here: 2 exited 0, 2 failed (1-2)" in result.stdout
    assert f"first failure: orchestrator logs {SWEEP} 1" in result.stdout


def test_a_missing_entry_script_is_found_before_anything_is_sent(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / "run.py").unlink()
    result = submit(root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "script run.py not found under the project root" in result.stderr
    assert "nothing was submitted" in result.stderr
    assert not (root / ".orchestrator").exists() and not (root / ".logs").exists()
    # --no-check sends it anyway: every index fails, and says so with exit 3 (not 0)
    assert submit(root, "--no-check").returncode == 3


def test_a_command_not_on_path_is_found_before_anything_is_sent(tmp_path: Path) -> None:
    root = project(tmp_path / "p", command="no-such-trainer-xyz {experiment} {index}")
    result = submit(root)
    assert result.returncode == 2
    assert "program 'no-such-trainer-xyz' is not on PATH" in result.stderr


def test_an_orchestrator_run_by_path_from_a_venv_not_on_path_runs_its_tasks(tmp_path: Path) -> None:
    """pipx-style: the venv's bin is not on PATH; tasks' `python` must still import orchestrator."""
    root = project(tmp_path / "p")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "submit", SWEEP, "--cluster", "local.yaml", "--executor", "local"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # every index used to fail: ModuleNotFoundError
    assert status_json(root, SWEEP)["done"] == 3


# -- 2. remembered sweeps, 3. the overview ---------------------------------------------------------


def test_status_logs_and_cancel_plan_the_runs_of_the_last_submission(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 2)
    assert submit(root, "--runs", "2").returncode == 0
    status = orchestrator("status", SWEEP, "--json", cwd=root)
    assert status.returncode == 0
    entry = json.loads(status.stdout)["experiments"][0]
    assert (entry["total"], entry["done"]) == (4, 4)  # was 2/2: status planned one run
    assert f"{SWEEP}: --runs 2 as last submitted" in status.stderr
    logs = orchestrator("logs", SWEEP, "3", cwd=root)
    assert logs.returncode == 0, logs.stderr  # index 3 is in run 1: outside a one-run plan
    assert "index 3:" in logs.stdout and "done" in logs.stdout
    assert orchestrator("cancel", SWEEP, cwd=root).returncode == 0
    assert status_json(root, SWEEP, "--runs", "1")["total"] == 2  # an explicit --runs wins, silently


def test_status_without_arguments_lists_every_submitted_experiment(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 2)
    empty = orchestrator("status", cwd=root)
    assert empty.returncode == 0 and "has been submitted yet" in empty.stdout  # was a usage error
    other = root / "experiments" / "y" / "other.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"metaParameters": {"k": [7, 8, 9]}}))
    assert submit(root, "--runs", "2").returncode == 0
    other_path = str(other.relative_to(root))
    assert (
        orchestrator("submit", other_path, "--cluster", "local.yaml", "--executor", "local", cwd=root).returncode == 0
    )
    overview = orchestrator("status", cwd=root)
    assert overview.returncode == 0, overview.stderr
    lines = overview.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{SWEEP}  [") and "4/4 done" in lines[0]
    assert lines[1].startswith("experiments/y/other.json  [") and "3/3 done" in lines[1]
    listed = json.loads(orchestrator("status", "--json", cwd=root).stdout)["experiments"]
    assert [(e["experiment"], e["total"]) for e in listed] == [(SWEEP, 4), ("experiments/y/other.json", 3)]


# -- 4. the time limit on the local executor ---------------------------------------------------


def test_the_local_executor_stops_a_task_at_its_time_limit_as_slurm_does(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 2, time="0:00:02")  # Slurm's own string: two seconds
    started = time.monotonic()
    result = submit(root, env=cli_env(SLEEP="60"))
    assert time.monotonic() - started < 30, "the limit was ignored"
    assert result.returncode == 3
    status = orchestrator("status", SWEEP, cwd=root)
    assert "failed, TIMEOUT: 0-1" in status.stdout
    again = orchestrator(
        "submit", SWEEP, "--cluster", "local.yaml", "--executor", "local", "--escalate", "--dry-run", cwd=root
    )
    assert "#SBATCH --time=0:00:04" in again.stdout  # escalation works on this machine too


# -- 5. paths ------------------------------------------------------------------------------------


def test_commands_work_from_a_directory_below_the_project_root(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    below = root / "experiments" / "x"
    plan = orchestrator("plan", "sweep.json", "--jsonl", cwd=below)
    assert plan.returncode == 0, plan.stderr  # was "config.json: not found"
    first = json.loads(plan.stdout.splitlines()[0])
    assert first["experiment"] == SWEEP and first["save_path"] == "results/x/k-0/0"
    submitted = orchestrator("submit", "sweep.json", "--cluster", "../../local.yaml", "--executor", "local", cwd=below)
    assert submitted.returncode == 0, submitted.stderr
    assert not (below / ".orchestrator").exists() and (root / ".orchestrator").is_dir()
    assert status_json(below, "sweep.json")["done"] == 3


def test_an_experiment_outside_the_project_is_refused_in_one_line(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"metaParameters": {"k": [1]}}))
    result = orchestrator("plan", str(outside), "--jsonl", cwd=root)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "outside the project root" in result.stderr
    assert "//" not in result.stdout  # it used to plan results//tmp/...


# -- 6. feedback ---------------------------------------------------------------------------------


def test_a_second_submit_says_it_waits_for_the_lock_and_whose_it_is(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = root / ".orchestrator" / "submit.lock"
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid, "since": "now"}))
        waiting = subprocess.Popen(
            cli_argv("submit", SWEEP, "--cluster", "local.yaml", "--executor", "local"),
            cwd=root,
            env=cli_env(),
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert "waiting for another submit to finish" in line and f"pid {holder.pid}" in line
        lock.unlink()
        waiting.wait(timeout=120)
        assert waiting.returncode == 0
    finally:
        holder.kill()


def test_ctrl_c_says_what_finished_what_is_left_and_how_to_resume(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 4)
    process = subprocess.Popen(
        cli_argv("submit", SWEEP, "--cluster", "local.yaml", "--executor", "local", "--max-parallel", "1"),
        cwd=root,
        env=cli_env(SLEEP="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for(lambda: (root / "results" / "x" / "k-0" / "0").exists(), 60, "index 0 to finish")
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "not run: " in stderr, stderr  # was only "orchestrator: interrupted"
    assert f"resume with: orchestrator submit {SWEEP} --cluster local.yaml --executor local --max-parallel 1" in stderr
    resumed = submit(root)
    assert resumed.returncode == 0 and status_json(root, SWEEP)["done"] == 4


def test_local_tasks_waiting_for_a_slot_are_pending_not_running(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 3)
    process = subprocess.Popen(
        cli_argv("submit", SWEEP, "--cluster", "local.yaml", "--executor", "local", "--max-parallel", "1"),
        cwd=root,
        env=cli_env(SLEEP="5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: status_json(root, SWEEP)["running"] == 1, 60, "one task to run")
        entry = status_json(root, SWEEP)
        assert (entry["running"], entry["pending"]) == (1, 2), entry  # was running 3
    finally:
        process.wait(timeout=120)


def test_status_shows_indices_that_were_given_up(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 2, max_attempts=1)
    assert submit(root, env=cli_env(FAIL="1")).returncode == 3
    entry = status_json(root, SWEEP, "--cluster", "local.yaml")
    assert (entry["failed"], entry["given_up"], entry["indices"]["given_up"]) == (1, 1, "1")
    human = orchestrator("status", SWEEP, "--cluster", "local.yaml", cwd=root).stdout
    assert "failed 1 (given up 1)" in human and "given up after 1 attempts" in human
    assert "Nothing to submit" in submit(root).stdout  # and submit leaves it alone


def test_a_dry_run_ends_with_a_summary_and_names_no_script_that_does_not_exist(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 3)
    text = submit(root, "--dry-run")
    assert text.returncode == 0
    assert text.stdout.splitlines()[-1] == (
        "dry run: would submit 3 indices as 3 task(s) in 1 array(s) for 1 experiment(s);"
        " nothing was submitted or recorded"
    )
    report = json.loads(submit(root, "--dry-run", "--json").stdout)
    assert [s["script"] for s in report["submissions"]] == [None]  # a path was named that did not exist
    assert not (root / ".orchestrator").exists()


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf"], ids=["utf-8-bom"])
def test_an_experiment_saved_with_a_bom_is_read(tmp_path: Path, bom: bytes) -> None:
    root = project(tmp_path / "p", 2)
    (root / SWEEP).write_bytes(bom + (root / SWEEP).read_bytes())
    assert status_json(root, SWEEP)["total"] == 2

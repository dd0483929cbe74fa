"""The local executor through the CLI: the rendered array scripts run here, one process per array task.

Every test passes `--executor local` (this machine may have a real Slurm on PATH) except the
`--executor auto` tests, which run with a PATH that holds no Slurm command. Most sweeps use
tests/data/local/probe.py as the entry command: it records the variables it was given, the order
in which tasks start and end (lines appended to one file, so overlap is read from their order, not
from clocks), and its PID, and writes a result at its save path.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import (
    cli_argv,
    cli_env,
    make_example_project,
    orchestrator,
    plan_jsonl,
    status_json,
    submit_json,
    submitted_indices,
    wait_for,
)

from orchestrator.slurm_formats import parse_ranges

PROBE = Path(__file__).resolve().parent / "data" / "local" / "probe.py"
EXAMPLE = "experiments/example/linreg.json"
SWEEP = "experiments/sweep.json"
PROFILE = "local.yaml"
SLURM_COMMANDS = frozenset(
    {"sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo", "srun", "salloc", "sacctmgr", "sattach", "sstat"}
)


# -- helpers -----------------------------------------------------------------------------------


def probe_project(root: Path, size: int, **profile: object) -> Path:
    """A project whose sweep has `size` indices (x = 0..size-1), run by probe.py through a profile."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"save_path": "results/{name}/{params}/{run}"}))
    (root / "experiments").mkdir()
    (root / SWEEP).write_text(json.dumps({"metaParameters": {"x": list(range(size))}}))
    shutil.copy(PROBE, root / "probe.py")
    (root / "pids").mkdir()
    (root / "fail").mkdir()
    settings = {"command": "python probe.py {experiment} {index}", **profile}
    (root / PROFILE).write_text(yaml.safe_dump(settings))
    return root


def probe_env(root: Path, **variables: object) -> dict[str, str]:
    env = cli_env()
    env.update(
        PROBE_EVENTS=str(root / "events"),
        PROBE_PIDS=str(root / "pids"),
        PROBE_FAIL_DIR=str(root / "fail"),
        PROBE_BARRIER_TIMEOUT="20",
    )
    env.update({name: str(value) for name, value in variables.items()})
    return env


def submit_probe(root: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    return submit_json(root, SWEEP, "--cluster", PROFILE, "--executor", "local", *args, env=env or probe_env(root))


def status_of(root: Path, experiment: str = SWEEP, *args: str) -> dict:
    return status_json(root, experiment, *args)


def seen_by(root: Path) -> dict[int, dict]:
    """index -> what probe.py recorded in its result, for every index with a result."""
    out = {}
    for entry in plan_jsonl(root, SWEEP):
        path = root / entry["save_path"] / "env.json"
        if path.exists():
            out[entry["index"]] = json.loads(path.read_text())
    return out


def with_results(root: Path) -> set[int]:
    return {entry["index"] for entry in plan_jsonl(root, SWEEP) if (root / entry["save_path"]).exists()}


def events(root: Path) -> list[tuple[str, int]]:
    path = root / "events"
    if not path.exists():
        return []
    return [(kind, int(index)) for kind, index, _pid in (line.split() for line in path.read_text().splitlines())]


def max_overlap(order: list[tuple[str, int]]) -> int:
    """The most indices between their "start" and "end" lines at once, from the order of the lines."""
    running: set[int] = set()
    most = 0
    for kind, index in order:
        if kind == "start":
            running.add(index)
            most = max(most, len(running))
        else:
            running.discard(index)
    return most


def exit_statuses(root: Path) -> dict[int, int]:
    """index -> the exit code in its `<index>.status` file, over all local runs' log directories."""
    return {int(p.stem): int(p.read_text().split()[0]) for p in (root / ".logs").glob("*/*/*.status")}


def ledger_records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / ".orchestrator" / "ledger").glob("**/*.json"))]


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie left for init to reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_in_groups(groups: set[int]) -> list[int]:
    """Live processes whose process group is one of `groups`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            found.append(int(entry.name))
    return found


def recorded_pids(root: Path) -> dict[int, tuple[int, int]]:
    """index -> (pid, process group) of its probe."""
    out = {}
    for path in (root / "pids").glob("*.pid"):
        pid, pgid = path.read_text().split()
        out[int(path.stem)] = (int(pid), int(pgid))
    return out


def start_submit(root: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`orchestrator submit` in its own process group, with SIGINT delivered as at a terminal."""

    def own_group_default_sigint() -> None:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # not ignored, even if pytest was started in the background

    return subprocess.Popen(
        cli_argv("submit", *args),
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=own_group_default_sigint,
    )


def stop(process: subprocess.Popen[str]) -> None:
    """Clean-up after a failed test: no process group of ours is left behind."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def no_slurm_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of links to every command on PATH except Slurm's (and except this venv's)."""
    directory = tmp_path_factory.mktemp("no-slurm-bin")
    skip = {Path(sys.executable).parent.absolute()}
    if os.environ.get("VIRTUAL_ENV"):
        skip.add(Path(os.environ["VIRTUAL_ENV"], "bin").absolute())
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).absolute() in skip or not Path(entry).is_dir():
            continue
        for command in Path(entry).iterdir():
            target = directory / command.name
            if command.name in SLURM_COMMANDS or target.exists() or target.is_symlink():
                continue
            if command.is_file() and os.access(command, os.X_OK):
                target.symlink_to(command)
    assert shutil.which("sbatch", path=str(directory)) is None
    return directory


# -- the example sweep -------------------------------------------------------------------------


def test_example_sweep_runs_to_completion_and_a_second_submit_does_nothing(tmp_path: Path) -> None:
    project = make_example_project(tmp_path / "proj with space")
    report = submit_json(project, EXAMPLE, "--runs", "3", "--executor", "local")
    assert report["executor"] == "local"
    assert [s["job_id"] for s in report["submissions"]] == [None] * len(report["submissions"])
    assert submitted_indices(report) == list(range(30))

    for entry in plan_jsonl(project, EXAMPLE, "--runs", "3"):
        result = project / entry["save_path"] / "results.json"
        assert result.is_file(), f"index {entry['index']}: no result at {entry['save_path']}"
        assert json.loads(result.read_text())["params"] == entry["params"]
        assert (project / entry["save_path"] / "DONE").is_file()

    status = status_of(project, EXAMPLE, "--runs", "3")
    assert (status["total"], status["done"]) == (30, 30)
    assert status["indices"]["done"] == "0-29"
    assert status["running"] == status["pending"] == status["failed"] == status["missing"] == 0

    again = submit_json(project, EXAMPLE, "--runs", "3", "--executor", "local")
    assert again["submissions"] == []
    human = orchestrator("submit", EXAMPLE, "--runs", "3", "--executor", "local", cwd=project)
    assert human.returncode == 0, human.stderr
    assert "Nothing to submit" in human.stdout
    assert len(ledger_records(project)) == len(report["submissions"])  # the no-op submits recorded nothing


# -- what an array task sees ---------------------------------------------------------------------


def test_each_task_gets_the_slurm_variables(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 5, cpus_per_task=3)
    report = submit_probe(project)
    assert report["submissions"][0]["tasks"] == 5
    seen = seen_by(project)
    assert sorted(seen) == [0, 1, 2, 3, 4]
    array_job_ids = {seen[i]["env"]["SLURM_ARRAY_JOB_ID"] for i in seen}
    assert len(array_job_ids) == 1 and array_job_ids != {None} and array_job_ids != {""}
    for index, found in seen.items():
        env = found["env"]
        assert found["argv"] == [SWEEP, str(index)]
        assert env["SLURM_ARRAY_TASK_ID"] == str(index)  # one index per task: task K holds index K
        assert env["SLURM_ARRAY_TASK_COUNT"] == "5"
        assert (env["SLURM_ARRAY_TASK_MIN"], env["SLURM_ARRAY_TASK_MAX"]) == ("0", "4")
        assert env["SLURM_CPUS_PER_TASK"] == "3"
        assert env["ORCH_INDEX"] == str(index)
        assert env["ORCH_EXPERIMENT"] == SWEEP
        assert env["SLURM_JOB_ID"]
    assert len({found["env"]["SLURM_JOB_ID"] for found in seen.values()}) == 5  # one job id per task


def test_bundled_tasks_run_their_indices_at_most_parallel_at_a_time(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 8, indices_per_task=3, parallel=2)
    report = submit_probe(project, "--max-parallel", "1", env=probe_env(project, PROBE_SLEEP=0.2, PROBE_BARRIER=2))
    (submission,) = report["submissions"]
    assert submission["tasks"] == 3
    assert submitted_indices(report) == list(range(8))
    seen = seen_by(project)
    assert sorted(seen) == list(range(8))
    expected_task = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2}
    for index, found in seen.items():
        assert found["env"]["SLURM_ARRAY_TASK_ID"] == str(expected_task[index]), index
        assert found["env"]["SLURM_ARRAY_TASK_COUNT"] == "3"
        assert found["env"]["ORCH_INDEX"] == str(index)
    for task in range(3):
        job_ids = {seen[i]["env"]["SLURM_JOB_ID"] for i in seen if expected_task[i] == task}
        assert len(job_ids) == 1, f"task {task}: indices disagree on SLURM_JOB_ID: {job_ids}"
    # one task at a time, each running its indices two at a time (the barrier makes two overlap)
    assert max_overlap(events(project)) == 2


# -- at most N at once -------------------------------------------------------------------------


def test_max_parallel_two_never_runs_three_tasks_at_once(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 8)
    # each task waits until two have started, so two do overlap; more never may
    submit_probe(project, "--max-parallel", "2", env=probe_env(project, PROBE_SLEEP=0.2, PROBE_BARRIER=2))
    order = events(project)
    assert sorted(i for kind, i in order if kind == "start") == list(range(8))
    assert max_overlap(order) == 2, order
    assert with_results(project) == set(range(8))


def test_max_parallel_three_runs_three_tasks_at_once(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 6)
    # each task waits (up to PROBE_BARRIER_TIMEOUT) until three have started: only three at once get past
    submit_probe(project, "--max-parallel", "3", env=probe_env(project, PROBE_BARRIER=3))
    order = events(project)
    assert max_overlap(order) == 3, order
    assert with_results(project) == set(range(6))


def test_max_parallel_defaults_to_the_number_of_cores(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    project = probe_project(tmp_path / "proj", cores + 2)
    submit_probe(project, env=probe_env(project, PROBE_BARRIER=cores))
    assert max_overlap(events(project)) == cores
    assert with_results(project) == set(range(cores + 2))


# -- Ctrl-C and SIGTERM --------------------------------------------------------------------------


def start_two_finish_two_hang(project: Path, *args: str) -> subprocess.Popen[str]:
    """A local run of the sweep, two at a time, stopped where indices 0 and 1 have finished and 2 and 3
    have started: they sleep for minutes, so they end in time only if the orchestrator stops them."""
    env = probe_env(project, PROBE_SLEEP=300, PROBE_SLEEP_FROM=2)
    process = start_submit(
        project, SWEEP, "--cluster", PROFILE, "--executor", "local", "--max-parallel", "2", *args, env=env
    )
    try:
        wait_for(
            lambda: len(exit_statuses(project)) == 2 and len(recorded_pids(project)) == 4,
            120,
            "indices 0 and 1 to finish and 2 and 3 to start",
            interval=0.05,
        )
    except BaseException:
        stop(process)
        kill_leftovers(recorded_pids(project))
        raise
    return process


def kill_leftovers(pids: dict[int, tuple[int, int]]) -> None:
    """After a test that may leave its tasks running: end them, by the PIDs they recorded."""
    for pid, _ in pids.values():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def assert_tasks_ended(project: Path) -> None:
    pids = recorded_pids(project)
    assert pids, "no task recorded its PID"
    wait_for(lambda: not any(alive(pid) for pid, _ in pids.values()), 10, "the tasks' processes to end", 0.05)
    assert processes_in_groups({pgid for _, pgid in pids.values()}) == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_run_stops_its_children_and_a_second_submit_runs_only_the_rest(tmp_path: Path, how: str) -> None:
    project = probe_project(tmp_path / "proj", 12)
    process = start_two_finish_two_hang(project, "--json")
    try:
        during = status_of(project)
        assert during["done"] == 2 and during["failed"] == during["missing"] == 0, during
        assert during["running"] + during["pending"] == 10, during
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the foreground group gets it
        else:
            os.kill(process.pid, signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "interrupted" in err
        assert_tasks_ended(project)
    finally:
        stop(process)
        kill_leftovers(recorded_pids(project))

    (record,) = ledger_records(project)
    assert record["status"] == "interrupted"
    assert not (project / ".orchestrator" / "submit.lock").exists()
    finished = exit_statuses(project)
    before = with_results(project)
    assert finished == {0: 0, 1: 0}
    assert before == {0, 1}
    status = status_of(project)
    assert status["done"] == 2
    assert status["running"] == status["pending"] == 0

    again = submit_probe(project, env=probe_env(project))
    assert set(submitted_indices(again)) == set(range(12)) - before
    assert status_of(project)["done"] == 12


def test_indices_an_interrupted_run_never_started_are_run_by_the_next_submit(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 12, max_attempts=1)
    process = start_two_finish_two_hang(project)
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=60)
        assert process.returncode == 130
        assert_tasks_ended(project)
    finally:
        stop(process)
        kill_leftovers(recorded_pids(project))
    before = with_results(project)
    assert before == {0, 1}

    again = submit_probe(project, env=probe_env(project))
    assert again["experiments"][0]["given_up"] == ""
    assert set(submitted_indices(again)) == set(range(12)) - before  # 2-3 were stopped, 4-11 never started


def test_ctrl_c_also_stops_a_command_that_ignores_sigterm(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 4)
    env = probe_env(project, PROBE_SLEEP=300, PROBE_IGNORE_TERM=1)
    process = start_submit(project, SWEEP, "--cluster", PROFILE, "--executor", "local", "--max-parallel", "2", env=env)
    try:
        wait_for(lambda: len(recorded_pids(project)) == 2, 120, "two tasks to start", interval=0.05)
        os.killpg(process.pid, signal.SIGINT)
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 130, err
        # Slurm's way: SIGTERM, a grace period, then SIGKILL for every process of the task
        assert_tasks_ended(project)
    finally:
        stop(process)
        kill_leftovers(recorded_pids(project))


def test_hangup_stops_the_children_like_ctrl_c(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 12)
    process = start_two_finish_two_hang(project)
    try:
        os.kill(process.pid, signal.SIGHUP)
        process.communicate(timeout=60)
        assert process.returncode in (129, 130)
        assert_tasks_ended(project)
        (record,) = ledger_records(project)
        assert record["status"] == "interrupted"
    finally:
        stop(process)
        kill_leftovers(recorded_pids(project))


def test_cancel_stops_a_local_run(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 4)
    env = probe_env(project, PROBE_SLEEP=5)
    process = start_submit(project, SWEEP, "--cluster", PROFILE, "--executor", "local", "--max-parallel", "2", env=env)
    try:
        wait_for(lambda: len(recorded_pids(project)) == 2, 120, "two tasks to start", interval=0.05)
        result = orchestrator("cancel", SWEEP, "--json", cwd=project)
        assert result.returncode == 0, result.stderr
        (cancelled,) = json.loads(result.stdout)["cancelled"]
        assert parse_ranges(cancelled["indices"]) == [0, 1, 2, 3]  # two running, two waiting for a slot
        process.communicate(timeout=60)
        pids = recorded_pids(project)
        wait_for(lambda: not any(alive(pid) for pid, _ in pids.values()), 10, "the tasks' processes to end", 0.05)
    finally:
        stop(process)
        kill_leftovers(recorded_pids(project))
    assert with_results(project) == set()
    status = status_of(project)
    assert status["running"] == status["pending"] == status["done"] == 0
    again = submit_probe(project, env=probe_env(project))
    assert submitted_indices(again) == [0, 1, 2, 3]


# -- failures --------------------------------------------------------------------------------------


def test_a_failed_index_is_reported_logged_and_resubmitted(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 4)
    (project / "fail" / "2.fail").write_text("3")
    env = probe_env(project)
    first = orchestrator("submit", SWEEP, "--cluster", PROFILE, "--executor", "local", cwd=project, env=env)
    # it ran, and an index failed: exit 3 (not 0), a summary and the command to read the failure
    assert first.returncode == 3, first.stdout + first.stderr
    assert "ran 4 indices here: 3 exited 0, 1 failed (2)" in first.stdout, first.stdout
    assert f"first failure: orchestrator logs {SWEEP} 2" in first.stdout
    assert with_results(project) == {0, 1, 3}

    status = status_of(project)
    assert (status["done"], status["failed"]) == (3, 1)
    assert status["indices"]["failed"] == "2"
    human = orchestrator("status", SWEEP, cwd=project)
    assert human.returncode == 0, human.stderr
    assert "FAILED exit 3" in human.stdout

    logs = orchestrator("logs", SWEEP, "2", cwd=project)
    assert logs.returncode == 0, logs.stderr
    assert "probe: index 2 fails with exit 3" in logs.stdout

    (project / "fail" / "2.fail").unlink()
    again = submit_probe(project, env=env)
    assert submitted_indices(again) == [2]
    assert status_of(project)["done"] == 4


# -- --executor auto ---------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [("--executor", "auto"), ()], ids=["auto", "default"])
def test_auto_runs_locally_where_sbatch_is_not_on_path(tmp_path: Path, no_slurm_bin: Path, flags) -> None:
    project = probe_project(tmp_path / "proj", 3)
    env = probe_env(project)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{no_slurm_bin}"
    report = submit_json(project, SWEEP, "--cluster", PROFILE, *flags, env=env)
    assert report["executor"] == "local"
    assert [s["job_id"] for s in report["submissions"]] == [None]
    assert submitted_indices(report) == [0, 1, 2]
    assert with_results(project) == {0, 1, 2}


def test_executor_slurm_without_sbatch_is_an_environment_failure(tmp_path: Path, no_slurm_bin: Path) -> None:
    project = probe_project(tmp_path / "proj", 3)
    env = probe_env(project)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{no_slurm_bin}"
    result = orchestrator("submit", SWEEP, "--cluster", PROFILE, "--executor", "slurm", cwd=project, env=env)
    assert result.returncode == 1
    assert "nothing was submitted" in result.stderr
    assert "Traceback" not in result.stderr
    assert with_results(project) == set()


# -- progress bar ----------------------------------------------------------------------------------


def run_in_terminal(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdin, stdout and stderr; its exit code and all it wrote."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            process.kill()
            raise AssertionError(f"{argv} did not finish within {timeout} s")
        code = process.wait(timeout=30)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    project = probe_project(tmp_path / "proj", 4)
    argv = cli_argv("submit", SWEEP, "--cluster", PROFILE, "--executor", "local")
    code, output = run_in_terminal(argv, project, probe_env(project))
    assert code == 0, output
    assert "4/4 tasks" in output
    assert with_results(project) == {0, 1, 2, 3}

    other = probe_project(tmp_path / "other", 4)
    result = orchestrator("submit", SWEEP, "--cluster", PROFILE, "--executor", "local", cwd=other, env=probe_env(other))
    assert result.returncode == 0, result.stderr
    assert "tasks" not in result.stderr and "\r" not in result.stderr
    assert "\r" not in result.stdout

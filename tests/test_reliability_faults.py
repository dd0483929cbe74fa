"""Nothing lost, nothing doubled: submit under kills, Slurm faults, concurrency and damaged state
(issue 6, items 1-4).

Most tests run `orchestrator submit` against the real Slurm test cluster (scripts/slurm-test-cluster.sh),
on a copy of the example project (30 indices with `--runs 3`: arrays of 11, 11 and 8 tasks under
MaxArraySize=11) and a profile with `sbatch: {hold: true}`, so nothing runs; every job is cancelled
by id afterwards. After each fault comes a recovery `submit`, then the independent exactly-once
count of tests/reliability.py: every planned index held by exactly one live or completed task of
ours (tags from the project's files, tasks from squeue and sacct).

Faults the real cluster cannot produce on demand come from the fake sbatch/squeue in
tests/data/fakes/, always next to real-cluster runs. slurmctld is stopped for real. The cluster is
shared: each Slurm test holds /tmp/orch-slurm.lock (tests/reliability.py) and restores slurmctld and
the submit limit in a finally block.


"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import reliability
from reliability import (
    ClusterSession,
    assert_exactly_once,
    cluster_session,
    holders,
    one_line,
    project_tags,
    set_max_submit,
    start_cluster,
    stop_slurmctld,
)
from slurm_support import cli_env, make_example_project, require_slurm, wait_for

from orchestrator.errors import EnvironmentFailure, SlurmUnavailable
from orchestrator.ledger import Ledger, SubmitLock
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import parse_ranges

EXPERIMENT = "experiments/example/linreg.json"
RUNS = ("--runs", "3")
TOTAL = 30
HOLD = ("--cluster", "hold.yaml")
FAKES = Path(__file__).resolve().parent / "data" / "fakes"
KILLED = -signal.SIGKILL
# a fault must end the command by itself; this only stops a hung test
BOUND = 120

slurm = pytest.mark.slurm


@pytest.fixture
def reliability_case(request: pytest.FixtureRequest):
    return reliability.case_factory(request)


@pytest.fixture
def cluster() -> Iterator[ClusterSession]:
    require_slurm()
    with cluster_session() as session:
        yield session


@pytest.fixture
def project(tmp_path: Path, cluster: ClusterSession) -> Path:
    return new_project(tmp_path / "proj", cluster)


def new_project(root: Path, cluster: ClusterSession) -> Path:
    make_example_project(root)
    (root / "hold.yaml").write_text("sbatch: {hold: true}\n")
    cluster.projects.append(root)
    return root


# -- running the CLI -----------------------------------------------------------------------------


def environment(
    tmp_path: Path,
    fakes: tuple[str, ...] = (),
    hide: tuple[str, ...] = (),
    **variables: str,
) -> dict[str, str]:
    """The user's environment, with fake commands first on PATH and/or some commands hidden."""
    env = cli_env()
    python_bin = str(Path(sys.executable).parent)
    parts = [python_bin]
    if fakes:
        fake_dir = tmp_path / "fake-bin"
        fake_dir.mkdir(exist_ok=True)
        for name in fakes:
            link = fake_dir / name
            if not link.exists():
                link.symlink_to(FAKES / name)
        parts.append(str(fake_dir))
        env["FAKE_CALL_LOG"] = str(tmp_path / "calls.log")
        env["FAKE_REAL_SBATCH"] = shutil.which("sbatch") or "/usr/bin/sbatch"
        env["FAKE_REAL_SQUEUE"] = shutil.which("squeue") or "/usr/bin/squeue"
    if hide:
        parts.append(str(mirror_without(tmp_path / ("mirror-" + "-".join(hide)), hide)))
    else:
        parts.append(env["PATH"])
    env["PATH"] = os.pathsep.join(parts)
    env.update(variables)
    return env


def mirror_without(directory: Path, hide: tuple[str, ...]) -> Path:
    """A directory of links to every command on the system PATH except `hide`."""
    if directory.is_dir():
        return directory
    directory.mkdir()
    for source in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(source):
            continue
        for name in os.listdir(source):
            link = directory / name
            if name in hide or os.path.lexists(link):
                continue
            link.symlink_to(os.path.join(source, name))
    return directory


def cli(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=BOUND,
        env=env or cli_env(),
    )


def submit(project: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli(project, "submit", EXPERIMENT, *RUNS, *HOLD, *extra, env=env)


def start_submit(project: Path, env: dict[str, str] | None = None, runs: str = "3") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "submit", EXPERIMENT, "--runs", runs, *HOLD],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(),
        start_new_session=True,
    )


def status(project: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    result = cli(project, "status", EXPERIMENT, *extra, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["experiments"][0]


def recover(project: Path, total: int = TOTAL, runs: str = "3") -> str:
    """A recovery submit, then the exactly-once check; a summary for the table."""
    result = cli(project, "submit", EXPERIMENT, "--runs", runs, *HOLD)
    assert result.returncode == 0, result.stdout + result.stderr
    counted = assert_exactly_once(project, total, since_start(project))
    state = status(project, "--runs", runs)
    assert state["done"] + state["running"] + state["pending"] == total, state
    again = cli(project, "submit", EXPERIMENT, "--runs", runs, *HOLD)
    assert again.returncode == 0 and "Nothing to submit" in again.stdout, again.stdout + again.stderr
    return f"recovery submit exit 0; {counted}; a second submit has nothing to submit"


# sacct's window for the exactly-once count (job names are unique tags, so a wide window is harmless)
SINCE = reliability.slurm_time(datetime.now() - timedelta(hours=2))


def since_start(project: Path) -> str:
    return SINCE


def records(project: Path) -> list[dict]:
    out = []
    for path in sorted((project / ".orchestrator" / "ledger").glob("*/*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            out.append({"status": "(unreadable)", "path": str(path)})
    return out


def ledger_tally(project: Path) -> str:
    counted = Counter(r.get("status") for r in records(project))
    return ", ".join(f"{n} {s}" for s, n in sorted(counted.items())) or "no records"


def calls(env: dict[str, str], command: str) -> int:
    try:
        lines = Path(env["FAKE_CALL_LOG"]).read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.startswith(command + " "))


def submitted_indices(stdout: str) -> list[int]:
    """Indices of the `job N (...): K task(s), indices A-B` lines of a human submit report."""
    out = []
    for line in stdout.splitlines():
        if ": job " in line and ", indices " in line:
            out.extend(parse_ranges(line.split(", indices ")[1].split()[0]))
    return out


# -- 1. kills at any moment ------------------------------------------------------------------------

KILL_POINTS = {
    "before-sbatch": "after the intent record, before sbatch (first array)",
    "after-sbatch": "after sbatch created the job, before the record says so (first array)",
    "mid-record": "in the middle of writing the intent record (first array)",
    "mid-record:2": "in the middle of writing the 'submitted' record after sbatch (first array)",
    "after-sbatch:3": "after sbatch of the third array, two arrays recorded",
}


@slurm
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_point_of_submit_then_recover_exactly_once(
    point: str, project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Kill during submit",
        f"SIGKILL {KILL_POINTS[point]} (ORCHESTRATOR_FAULT_KILL={point})",
        expected="the next submit reconciles the open intent by its tag (squeue, then sacct) and submits "
        "the rest: every index exactly once",
    )
    killed = submit(project, env=environment(tmp_path, ORCHESTRATOR_FAULT_KILL=point))
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    after_kill = ledger_tally(project)
    assert not holders(project, since_start(project)).duplicates()
    summary = recover(project)
    notes = submit_notes(project)
    case.observed(f"killed; ledger after the kill: {after_kill}; {summary}" + (f"; {notes[0]}" if notes else ""))


def submit_notes(project: Path) -> list[str]:
    return [r["note"] for r in records(project) if (r.get("note") or "").startswith("reconciled")]


@slurm
def test_sigkill_at_random_moments_then_recover_exactly_once(project: Path, reliability_case) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", "6"))
    rng = random.Random(seed)
    case = reliability_case(
        "Kill during submit",
        f"SIGKILL of the whole submit (process group) at random moments, 4 times in a row (seed {seed})",
        expected="no index doubled after any kill; one recovery submit: every index exactly once",
    )
    seen = []
    for _ in range(4):
        process = start_submit(project)
        delay = rng.uniform(0.15, 1.0)  # a submit of 30 indices takes about a second here
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=BOUND)
        outcome = "killed" if process.returncode == KILLED else f"had finished (exit {process.returncode})"
        found = holders(project, since_start(project))
        assert not found.duplicates(), f"after a kill at {delay:.2f} s: {found.duplicates()}"
        seen.append(f"{delay:.2f} s: {outcome}, {sum(1 for v in found.by_index.values() if v)} held")
    summary = recover(project)
    case.observed("; ".join(seen) + f"; {summary}")


@slurm
def test_sigkill_while_sbatch_is_in_flight_leaves_no_duplicate(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Kill during submit",
        "SIGKILL of the submit process (only) while its sbatch is in flight; the next submit runs before "
        "that sbatch would have answered",
        expected="the in-flight sbatch dies with its submit (or is waited for): every index exactly once",
    )
    release = tmp_path / "release-sbatch"
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="wait-release", FAKE_SBATCH_RELEASE=str(release))
    process = start_submit(project, env, runs="1")
    try:
        wait_for(lambda: inflight_sbatch(env) is not None, 60, "the sbatch to be in flight", interval=0.05)
        process.send_signal(signal.SIGKILL)  # the submit process only, as the OOM killer would
        process.communicate(timeout=BOUND)
        again = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
        assert again.returncode == 0, again.stderr
    finally:
        release.touch()  # a surviving sbatch goes on now, as a slow one would have
    pid = inflight_sbatch(env)
    wait_for(lambda: sbatch_done(env) or not alive(pid), 60, "the in-flight sbatch to finish or be gone", 0.05)
    orphan = sbatch_done(env)
    found = holders(project, since_start(project))
    case.observed(
        f"the orphaned sbatch {'lived on and created its job' if orphan else 'died with its submit'}; "
        f"ledger: {ledger_tally(project)}; duplicates: {sorted(found.duplicates()) or 'none'}"
    )
    assert_exactly_once(project, 10, since_start(project))


def inflight_sbatch(env: dict[str, str]) -> int | None:
    """The pid the `wait-release` fake sbatch logged, once it is waiting."""
    try:
        lines = Path(env["FAKE_CALL_LOG"]).read_text().splitlines()
    except FileNotFoundError:
        return None
    pids = [int(line.split()[1]) for line in lines if line.startswith("sbatch-pid ")]
    return pids[0] if pids else None


def sbatch_done(env: dict[str, str]) -> bool:
    return "sbatch-done" in Path(env["FAKE_CALL_LOG"]).read_text()


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


# -- 2. Slurm faults -------------------------------------------------------------------------------


@slurm
def test_sbatch_hangs_times_out_unconfirmed_then_reconciled(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "sbatch hangs (fake sbatch never answers; ORCHESTRATOR_SLURM_TIMEOUT=2)",
        expected="exit 1 within the timeout; message: outcome unknown, tag, what was not submitted; record "
        "`unconfirmed`; the next submit reconciles it, no duplicate",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="hang", ORCHESTRATOR_SLURM_TIMEOUT="2")
    result = submit(project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not answer within 2 s" in line and "may or may not" in line and "nothing was submitted" in line
    (record,) = records(project)
    assert record["status"] == "unconfirmed" and record["tag"] in line
    assert calls(env, "sbatch") == 1  # never retried blindly
    summary = recover(project)
    (first,) = [r for r in records(project) if r["tag"] == record["tag"]]
    assert first["status"] == "rejected" and first["note"].startswith("reconciled")
    case.observed(f"exit 1: {line}; record unconfirmed, then {first['note']}; {summary}")


@slurm
def test_failed_submit_does_not_say_nothing_to_submit(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "stdout of a submit that failed (sbatch hangs) before anything went out",
        expected="no 'Nothing to submit' claim: 30 indices needed submitting and were not",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="hang", ORCHESTRATOR_SLURM_TIMEOUT="2")
    result = submit(project, env=env)
    assert result.returncode == 1
    case.observed(f"exit 1; stdout: {result.stdout.strip() or '(empty)'}")
    assert "Nothing to submit" not in result.stdout


@slurm
def test_socket_timeout_with_job_created_is_found_by_tag(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "sbatch says 'Socket timed out on send/recv operation' but the job WAS created",
        expected="no blind retry; the job is found by its tag in squeue and recorded `submitted`; exit 1 saying "
        "what was submitted; the next submit sends only the rest",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="socket-timeout")
    result = submit(project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Socket timed out" in line
    assert calls(env, "sbatch") == 1
    (record,) = records(project)
    assert record["status"] == "submitted" and record["job_id"]
    assert f"job {record['job_id']}" in line
    found = holders(project, since_start(project))
    assert found.jobs == {record["job_id"]} and not found.duplicates()
    summary = recover(project)
    case.observed(f"exit 1: {line}; record submitted as job {record['job_id']}; {summary}")


@slurm
def test_socket_timeout_without_job_is_left_unconfirmed_then_resubmitted_once(
    project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Slurm faults",
        "sbatch says 'Socket timed out' and the job was NOT created",
        expected="exit 1, record `unconfirmed` (tag not found); the next submit reconciles it as rejected and "
        "submits every index once",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="socket-timeout-no-job")
    result = submit(project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1 and "nothing was submitted" in line
    (record,) = records(project)
    assert record["status"] == "unconfirmed"
    summary = recover(project)
    case.observed(f"exit 1: {line}; {summary}")


@slurm
def test_slurmctld_stopped_then_restarted(
    project: Path, tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    case = reliability_case(
        "Slurm faults",
        "slurmctld stopped for real (kill $(cat /run/slurmctld.pid)), with jobs of ours in the ledger",
        expected="submit and status exit 1 with one clear line; nothing recorded as submitted; after the "
        "restart a submit goes through exactly once",
    )
    first = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
    assert first.returncode == 0, first.stderr
    fresh = new_project(tmp_path / "fresh", cluster)
    before = records(project)
    # one short try per command: the retries are tested on their own below
    env = environment(tmp_path, ORCHESTRATOR_SLURM_TIMEOUT="2", ORCHESTRATOR_SLURM_ATTEMPTS="1")
    cluster.slurmctld_stopped = True
    stop_slurmctld()
    try:
        sub = submit(project, env=env)
        stat = cli(project, "status", EXPERIMENT, *RUNS, env=env)
        fresh_sub = submit(fresh, env=env)
    finally:
        start_cluster()
        cluster.slurmctld_stopped = False
    sub_line, stat_line, fresh_line = one_line(sub.stderr), one_line(stat.stderr), one_line(fresh_sub.stderr)
    assert sub.returncode == 1 and "nothing was submitted" in sub_line, sub_line
    assert stat.returncode == 1 and "squeue" in stat_line, stat_line
    assert fresh_sub.returncode == 1 and "Traceback" not in fresh_sub.stderr
    assert records(project) == before  # nothing recorded as submitted, nothing changed
    assert [r for r in records(fresh) if r.get("status") == "submitted"] == []
    summary = recover(project)
    fresh_summary = recover(fresh)
    case.observed(
        f"submit exit 1: {sub_line}; status exit 1: {stat_line}; fresh project submit exit 1: {fresh_line}; "
        f"after restart: {summary}; fresh project: {fresh_summary}"
    )


@slurm
def test_limits_unreadable_message_says_nothing_was_submitted(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "Slurm's limits cannot be read (scontrol missing from PATH; the same path as slurmctld down)",
        expected="exit 1 with one line that says nothing was submitted",
    )
    result = submit(project, env=environment(tmp_path, hide=("scontrol",)))
    line = one_line(result.stderr)
    case.observed(f"exit {result.returncode}: {line}")
    assert result.returncode == 1
    assert records(project) == []
    assert "nothing was submitted" in line


@slurm
def test_squeue_failing_submits_nothing(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "squeue fails (fake: permanent error, exit 1) with jobs of ours in the ledger",
        expected="submit refuses to guess: exit 1, says why, no sbatch at all; status exit 1 with one line",
    )
    first = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
    assert first.returncode == 0, first.stderr
    env = environment(tmp_path, ("sbatch", "squeue"), FAKE_SQUEUE_MODE="fail")
    result = submit(project, env=env)
    stat = cli(project, "status", EXPERIMENT, *RUNS, env=env)
    line, stat_line = one_line(result.stderr), one_line(stat.stderr)
    assert result.returncode == 1 and "cannot read Slurm's state" in line and "nothing was submitted" in line
    assert "squeue failed" in line
    assert stat.returncode == 1 and "squeue" in stat_line
    assert calls(env, "sbatch") == 0
    summary = recover(project)
    case.observed(f"submit exit 1: {line}; sbatch calls: 0; status exit 1: {stat_line}; {summary}")


@slurm
def test_squeue_transient_failures_are_retried_a_bounded_number_of_times(
    project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Slurm faults",
        "squeue keeps answering 'Socket timed out' (ORCHESTRATOR_SLURM_ATTEMPTS=3)",
        expected="exactly 3 squeue attempts, then exit 1, no sbatch",
    )
    first = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
    assert first.returncode == 0, first.stderr
    env = environment(tmp_path, ("sbatch", "squeue"), FAKE_SQUEUE_MODE="transient", ORCHESTRATOR_SLURM_ATTEMPTS="3")
    result = submit(project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1 and "(3 attempts)" in line and "nothing was submitted" in line
    assert calls(env, "squeue") == 3 and calls(env, "sbatch") == 0
    summary = recover(project)
    case.observed(f"exit 1: {line}; squeue calls: 3; {summary}")


@slurm
def test_squeue_hangs_status_and_submit_give_up(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "squeue hangs (ORCHESTRATOR_SLURM_TIMEOUT=1, ORCHESTRATOR_SLURM_ATTEMPTS=2)",
        expected="status and submit exit 1 after 2 timed-out attempts each; no sbatch",
    )
    first = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
    assert first.returncode == 0, first.stderr
    env = environment(
        tmp_path,
        ("sbatch", "squeue"),
        FAKE_SQUEUE_MODE="hang",
        ORCHESTRATOR_SLURM_TIMEOUT="1",
        ORCHESTRATOR_SLURM_ATTEMPTS="2",
    )
    result = submit(project, env=env)
    stat = cli(project, "status", EXPERIMENT, *RUNS, env=env)
    line, stat_line = one_line(result.stderr), one_line(stat.stderr)
    assert result.returncode == 1 and "did not answer within 1 s (2 attempts)" in line
    assert stat.returncode == 1 and "did not answer" in stat_line
    assert calls(env, "squeue") == 4 and calls(env, "sbatch") == 0
    summary = recover(project)
    case.observed(f"submit exit 1: {line}; status exit 1: {stat_line}; {summary}")


def test_retries_back_off_with_full_jitter_and_a_cap(tmp_path: Path, monkeypatch, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "retry schedule of a read command that keeps failing transiently (library level)",
        expected="ORCHESTRATOR_SLURM_ATTEMPTS tries; waits drawn uniformly from [0, backoff*2^k], capped at 30 s; "
        "sbatch never retried",
    )
    import orchestrator.slurm_commands as module

    draws: list[tuple[float, float]] = []
    sleeps: list[float] = []
    monkeypatch.setattr(module, "uniform", lambda a, b: draws.append((a, b)) or b / 2)
    monkeypatch.setattr(module, "sleep", sleeps.append)
    env = environment(
        tmp_path, ("squeue", "sbatch"), FAKE_SQUEUE_MODE="transient", FAKE_SBATCH_MODE="socket-timeout-no-job"
    )
    commands = SlurmCommands(timeout=10, attempts=6, backoff=4.0, env=env)
    with pytest.raises(SlurmUnavailable):
        commands.squeue_me()
    assert calls(env, "squeue") == 6
    assert draws == [(0, 4.0), (0, 8.0), (0, 16.0), (0, 30.0), (0, 30.0)]
    assert sleeps == [b / 2 for _, b in draws]
    with pytest.raises(SlurmUnavailable) as raised:
        commands.sbatch(tmp_path / "job.sh")
    assert raised.value.outcome_unknown and calls(env, "sbatch") == 1
    case.observed(
        f"6 squeue tries; wait bounds {[b for _, b in draws]} s (each wait uniform in [0, bound]); "
        "sbatch tried once, outcome marked unknown"
    )


@slurm
def test_sacct_missing_status_says_unknown(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "sacct missing from PATH; our tasks were cancelled outside the orchestrator",
        expected="status works (exit 0), failed reason 'unknown (no accounting ...)'; submit resubmits them once",
    )
    first = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD)
    assert first.returncode == 0, first.stderr
    (record,) = records(project)
    subprocess.run(["scancel", record["job_id"]], check=True, timeout=60)
    wait_for(lambda: record["job_id"] not in squeue_jobs(), 60, "the cancelled job to leave squeue")
    env = environment(tmp_path, hide=("sacct",))
    without = status(project, "--runs", "1", env=env)
    assert without["failed"] == 10
    (reason,) = without["failed_reasons"]
    assert reason.startswith("unknown") and "sacct" in reason
    again = cli(project, "submit", EXPERIMENT, "--runs", "1", *HOLD, env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(submitted_indices(again.stdout)) == list(range(10))
    counted = assert_exactly_once(project, 10, since_start(project))
    case.observed(f"status exit 0, failed 10: {reason!r}; submit without sacct resubmitted 0-9; {counted}")


def squeue_jobs() -> set[str]:
    out = subprocess.run(["squeue", "--me", "-h", "-o", "%F"], capture_output=True, text=True, timeout=60).stdout
    return set(out.split())


def queued_tasks() -> int:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60).stdout
    return len(out.split())


@slurm
def test_submit_limit_unknown_then_known_then_lifted(
    project: Path, tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    unknown = reliability_case(
        "Slurm faults",
        "submit limit (MaxSubmitJobs = queued + 9) the orchestrator cannot read (sacctmgr hidden): Slurm "
        "refuses the 11-task arrays with AssocMaxSubmitJobLimit",
        expected="exit 0; refused arrays recorded `rejected` and reported 'not yet submitted'; what fits goes out",
    )
    known = reliability_case(
        "Slurm faults",
        "the same submit limit, readable through sacctmgr",
        expected="exit 0; arrays cut to the free capacity, the rest 'not yet submitted'; no refusal",
    )
    lifted = reliability_case(
        "Slurm faults",
        "the submit limit lifted after both",
        expected="the next submit sends the rest: every index exactly once",
    )
    with contextlib.suppress(AssertionError):  # other users' jobs: the limit below is relative to them
        wait_for(lambda: queued_tasks() == 0, 60, "an empty queue before the limit test")
    base = queued_tasks()
    cluster.max_submit_changed = True
    set_max_submit(base + 9)
    result = submit(project, "--json", env=environment(tmp_path, hide=("sacctmgr",)))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sent = [i for s in report["submissions"] for i in parse_ranges(s["indices"])]
    waiting = parse_ranges(report["experiments"][0]["not_yet_submitted"])
    rejected = [r for r in records(project) if r["status"] == "rejected"]
    assert sorted(sent + waiting) == list(range(TOTAL))
    assert all("AssocMaxSubmitJobLimit" in r["note"] for r in rejected)
    assert sorted(i for r in rejected for t in r["tasks"] for i in t) == sorted(waiting)
    if base == queued_tasks() == len(sent):
        assert len(rejected) == 2 and sorted(sent) == list(range(22, 30))
    assert not holders(project, since_start(project)).duplicates()
    unknown.observed(
        f"exit 0; sent {len(sent)} indices; {len(rejected)} arrays refused by Slurm (AssocMaxSubmitJobLimit), "
        f"recorded rejected; not yet submitted: {report['experiments'][0]['not_yet_submitted']}; notes: "
        f"{report['notes']}"
    )
    second = submit(project, "--json")
    assert second.returncode == 0, second.stderr
    report2 = json.loads(second.stdout)
    sent2 = [i for s in report2["submissions"] for i in parse_ranges(s["indices"])]
    assert len([r for r in records(project) if r["status"] == "rejected"]) == len(rejected)  # no new refusal
    assert not set(sent2) & set(sent)
    known.observed(
        f"exit 0; sent {len(sent2)} more (the free capacity); not yet submitted: "
        f"{report2['experiments'][0]['not_yet_submitted']}; no new rejection"
    )
    set_max_submit(None)
    cluster.max_submit_changed = False
    lifted.observed(recover(project))


@slurm
@pytest.mark.parametrize(
    ("what", "profile", "expected_text"),
    [
        ("account", "account: no-such-account\n", "Invalid account"),
        ("partition", "partition: nosuchpart\n", "invalid partition"),
    ],
)
def test_sbatch_refuses_bad_account_or_partition(
    what: str, profile: str, expected_text: str, project: Path, reliability_case
) -> None:
    case = reliability_case(
        "Slurm faults",
        f"sbatch refuses: a bad {what} in the profile",
        expected="exit 1, 'nothing was submitted'; the record `rejected`; status shows every index missing",
    )
    (project / "bad.yaml").write_text("sbatch: {hold: true}\n" + profile)
    result = cli(project, "submit", EXPERIMENT, *RUNS, "--cluster", "bad.yaml")
    line = one_line(result.stderr)
    assert result.returncode == 1 and expected_text.lower() in line.lower()
    assert "nothing was submitted" in line
    assert [r["status"] for r in records(project)] == ["rejected"]
    assert status(project, *RUNS)["missing"] == TOTAL
    summary = recover(project)
    case.observed(f"exit 1: {line}; ledger: 1 rejected; status: 30 missing; {summary}")


@slurm
def test_sbatch_refuses_the_second_array(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Slurm faults",
        "sbatch accepts the first array and refuses the second (fake: refuse-after:1)",
        expected="exit 1; the message says which job and indices were submitted before the refusal; ledger: "
        "submitted + rejected; recovery sends the rest once",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="refuse-after:1")
    result = submit(project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1
    statuses = [r["status"] for r in records(project)]
    assert sorted(statuses) == ["rejected", "submitted"]
    (sent,) = [r for r in records(project) if r["status"] == "submitted"]
    assert f"job {sent['job_id']} indices 0-10" in line
    tally = ledger_tally(project)
    summary = recover(project)
    case.observed(f"exit 1: {line}; ledger: {tally}; {summary}")


# -- 3. concurrency --------------------------------------------------------------------------------


@slurm
def test_three_submits_at_once_submit_each_index_once(project: Path, reliability_case) -> None:
    case = reliability_case(
        "Concurrency",
        "three `orchestrator submit` of the same experiment started at once",
        expected="all exit 0; one submits, the others find everything pending: every index exactly once",
    )
    processes = [start_submit(project) for _ in range(3)]
    outputs = [p.communicate(timeout=BOUND) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, out + err
    counted = assert_exactly_once(project, TOTAL, since_start(project))
    firsts = sorted(out.splitlines()[0][:60] if out else "(no output)" for out, _ in outputs)
    case.observed(f"exit codes 0, 0, 0; first lines: {firsts}; {counted}")


@slurm
def test_status_does_not_wait_for_a_running_submit(project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Concurrency",
        "`orchestrator status` while a submit holds the lock (its sbatch held in flight)",
        expected="status answers (exit 0) while the submit is still running: it takes no lock",
    )
    release = tmp_path / "release-sbatch"
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="wait-release", FAKE_SBATCH_RELEASE=str(release))
    process = start_submit(project, env, runs="1")
    try:
        wait_for(lambda: inflight_sbatch(env) is not None, 60, "the sbatch to be in flight", interval=0.05)
        assert (project / ".orchestrator" / "submit.lock").exists()
        seen = status(project, "--runs", "1")
        still_running = process.poll() is None  # it cannot have finished: its sbatch waits for us
    finally:
        release.touch()
        out, err = process.communicate(timeout=BOUND)
    assert still_running, "status returned only after the submit had finished"
    assert process.returncode == 0, out + err
    counted = assert_exactly_once(project, 10, since_start(project))
    case.observed(
        f"status exit 0 while submit held the lock (saw {seen['missing']} missing, the sbatch in flight); "
        f"submit then exit 0; {counted}"
    )


@slurm
@pytest.mark.parametrize("holder", ["dead-here", "stale-elsewhere"])
def test_a_dead_submits_lock_is_taken_over(holder: str, project: Path, reliability_case) -> None:
    what = {
        "dead-here": "a lock left by a killed submit on this host (its pid is gone)",
        "stale-elsewhere": "a lock of another host not refreshed for 10 minutes",
    }[holder]
    case = reliability_case("Concurrency", what, expected="taken over at once; the submit goes through")
    lock = project / ".orchestrator" / "submit.lock"
    lock.parent.mkdir(parents=True)
    if holder == "dead-here":
        dead = subprocess.Popen(["true"])
        dead.wait()
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "2020-01-01"}))
    else:
        lock.write_text(json.dumps({"host": "other-node-17", "pid": 4242, "since": "2020-01-01"}))
        old = time.time() - 600
        os.utime(lock, (old, old))
    result = submit(project)
    assert result.returncode == 0, result.stderr
    assert not lock.exists()
    case.observed(f"exit 0; {assert_exactly_once(project, TOTAL, since_start(project))}; lock released")


def test_a_live_lock_of_another_host_is_waited_for_then_refused(tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Concurrency",
        "the lock is held (fresh) by a submit on another host (library level, 0.5 s wait)",
        expected="the second submit waits, then gives up: exit 1 message naming the holder, nothing submitted",
    )
    ledger = Ledger(tmp_path)
    lock = tmp_path / ".orchestrator" / "submit.lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps({"host": "other-node-17", "pid": 4242, "since": "2026-01-01T00:00:00"}))
    with pytest.raises(EnvironmentFailure) as raised, SubmitLock(ledger, wait_seconds=0.5):
        pass
    message = str(raised.value)
    assert "pid 4242 on other-node-17" in message and "nothing was submitted" in message
    assert lock.exists()
    case.observed(message)


def test_two_takeovers_of_one_stale_lock_do_not_both_win(tmp_path: Path, monkeypatch, reliability_case) -> None:
    case = reliability_case(
        "Concurrency",
        "two submits take over the same stale lock at the same moment (interleaving forced, library level)",
        expected="exactly one of them holds the lock",
    )
    ledger = Ledger(tmp_path)
    lock = tmp_path / ".orchestrator" / "submit.lock"
    lock.parent.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "2020-01-01"}))
    hostname = socket.gethostname
    first = SubmitLock(ledger, wait_seconds=0.5)
    entered: list[str] = []

    def interleaved() -> str:
        # the second submit has read the stale lock and is judging it (is its holder's host this one?);
        # right now, the first submit takes the stale lock over
        monkeypatch.setattr(socket, "gethostname", hostname)
        first.__enter__()
        entered.append("first")
        return hostname()

    monkeypatch.setattr(socket, "gethostname", interleaved)
    second = SubmitLock(ledger, wait_seconds=0.5)
    try:
        second.__enter__()
        entered.append("second")
    except EnvironmentFailure:
        pass
    finally:
        monkeypatch.setattr(socket, "gethostname", hostname)
        if "second" in entered:
            second.__exit__()
        if "first" in entered:
            first.__exit__()
    case.observed(f"lock held by: {', '.join(entered)}")
    assert entered == ["first"]


# -- 4. damaged state ------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


@slurm
def test_truncated_record_is_reported_with_its_path(project: Path, reliability_case) -> None:
    case = reliability_case(
        "Damaged state",
        "a truncated ledger record (of a pending job)",
        expected="status and submit exit 0, each names the record's path as damaged and skipped; no traceback",
    )
    assert submit(project).returncode == 0
    damaged = sorted((project / ".orchestrator" / "ledger").glob("*/*.json"))[0]
    truncate(damaged)
    stat = cli(project, "status", EXPERIMENT, *RUNS)
    again = submit(project)
    for result in (stat, again):
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert f"{damaged}: damaged ledger record skipped" in result.stdout
    case.observed(f"status exit 0 and submit exit 0, both: note: {damaged.name}: damaged ledger record skipped (...)")


@slurm
def test_truncated_record_of_a_live_job_is_not_resubmitted(project: Path, reliability_case) -> None:
    case = reliability_case(
        "Damaged state",
        "a truncated ledger record of a job still in the queue, then submit",
        expected="its job is found by the tag in the file name and its task file; nothing resubmitted",
    )
    assert submit(project).returncode == 0
    damaged = sorted((project / ".orchestrator" / "ledger").glob("*/*.json"))[0]
    truncate(damaged)
    again = submit(project)
    assert again.returncode == 0, again.stderr
    found = holders(project, since_start(project))
    case.observed(
        f"submit exit 0, resubmitted: {sorted(submitted_indices(again.stdout)) or 'nothing'}; "
        f"duplicates: {sorted(found.duplicates()) or 'none'}"
    )
    assert_exactly_once(project, TOTAL, since_start(project))


@pytest.fixture(scope="module")
def local_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, run once with the local executor (10 indices, results and a ledger record)."""
    root = make_example_project(tmp_path_factory.mktemp("local") / "proj")
    result = cli(root, "submit", EXPERIMENT, "--executor", "local")
    assert result.returncode == 0, result.stderr
    return root


def copy_project(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    shutil.copytree(source, target, symlinks=True)
    return target


CORRUPTIONS = {
    "truncated": ("truncated to half its length", None),
    "garbage": ("binary garbage (not UTF-8)", None),
    "empty": ("an empty file", None),
    "json-list": ("valid JSON, but a list", None),
    "tasks-wrong-type": ("`tasks` of the wrong type", None),
    "missing-key": ("a required key missing (`experiment_hash`)", None),
    "cancelled-null": ("`cancelled_tasks: null`", None),
    "resources-null": ("`resources: null`", None),
    "job-id-number": ("`executor: slurm` with `job_id` a number", None),
}


def corrupt(path: Path, kind: str) -> None:
    data = json.loads(path.read_text())
    if kind == "truncated":
        truncate(path)
        return
    if kind == "garbage":
        path.write_bytes(b"\x00\xff\xfe garbage \x80")
        return
    if kind == "empty":
        path.write_text("")
        return
    if kind == "json-list":
        data = [data]
    elif kind == "tasks-wrong-type":
        data["tasks"] = "0-9"
    elif kind == "missing-key":
        del data["experiment_hash"]
    elif kind == "cancelled-null":
        data["cancelled_tasks"] = None
    elif kind == "resources-null":
        data["resources"] = None
    elif kind == "job-id-number":
        data["executor"], data["job_id"] = "slurm", 123
    path.write_text(json.dumps(data))


def outcome(name: str, result: subprocess.CompletedProcess[str], path: Path) -> str:
    if "Traceback" in result.stderr:
        return f"{name} exit {result.returncode} with a traceback ({result.stderr.strip().splitlines()[-1]})"
    if str(path) in result.stdout:
        return f"{name} exit {result.returncode}, names the record as damaged and skipped"
    return f"{name} exit {result.returncode}: {result.stderr.strip() or 'the record is not reported'}"


def _corruption_params() -> list[object]:
    return [pytest.param(kind, id=kind) for kind in CORRUPTIONS]


@pytest.mark.parametrize("kind", _corruption_params())
def test_corrupt_record_is_reported_and_skipped(
    kind: str, local_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Damaged state",
        f"a corrupt ledger record: {CORRUPTIONS[kind][0]} (results deleted, so the record matters)",
        expected="status and submit --dry-run exit 0, name the record's path as damaged; no traceback",
    )
    root = copy_project(local_project, tmp_path)
    shutil.rmtree(root / "results")
    (path,) = (root / ".orchestrator" / "ledger").glob("*/*.json")
    corrupt(path, kind)
    stat = cli(root, "status", EXPERIMENT)
    dry = cli(root, "submit", EXPERIMENT, "--executor", "local", "--dry-run")
    case.observed("; ".join(outcome(name, r, path) for name, r in (("status", stat), ("submit --dry-run", dry))))
    for result in (stat, dry):
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr
        assert f"{path}: damaged ledger record skipped" in result.stdout


def test_vanished_result_directories_make_their_indices_missing_again(
    local_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Damaged state",
        "result directories deleted after a finished run (local executor)",
        expected="status shows exactly those indices missing; submit reruns exactly those; then all done",
    )
    root = copy_project(local_project, tmp_path)
    plan = [json.loads(line) for line in cli(root, "plan", EXPERIMENT, "--jsonl").stdout.splitlines()]
    for index in (3, 7):
        shutil.rmtree(root / plan[index]["save_path"])
    seen = status(root)
    assert seen["indices"]["missing"] == "3,7" and seen["done"] == 8
    rerun = cli(root, "submit", EXPERIMENT, "--executor", "local", "--json")
    assert rerun.returncode == 0, rerun.stderr
    (sub,) = json.loads(rerun.stdout)["submissions"]
    assert sub["indices"] == "3,7"
    assert status(root)["done"] == 10
    case.observed("status: missing 3,7 (8 done); submit reran indices 3,7 only; status: 10/10 done")


def test_corrupt_exit_status_file_is_not_a_crash(local_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "Damaged state",
        "a per-index .status file with garbage in it, its result deleted",
        expected="status exit 0, the index failed or missing (not a crash); submit reruns it",
    )
    root = copy_project(local_project, tmp_path)
    plan = [json.loads(line) for line in cli(root, "plan", EXPERIMENT, "--jsonl").stdout.splitlines()]
    shutil.rmtree(root / plan[4]["save_path"])
    (status_file,) = root.glob(".logs/**/4.status")
    status_file.write_text("not a number\n")
    seen = status(root)
    assert seen["done"] == 9 and "4" in (seen["indices"]["failed"] + seen["indices"]["missing"])
    rerun = cli(root, "submit", EXPERIMENT, "--executor", "local", "--json")
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["submissions"][0]["indices"] == "4"
    state = "failed" if seen["failed"] else "missing"
    case.observed(f"status exit 0, index 4 {state} ({seen['failed_reasons'] or 'no reason'}); submit reran 4 only")


def test_project_tags_reads_task_files(tmp_path: Path) -> None:
    """The exactly-once counter reads what the jobs read: .orchestrator/runs/<tag>/tasks.txt."""
    run = tmp_path / ".orchestrator" / "runs" / "orch-x-0123456789"
    run.mkdir(parents=True)
    (run / "tasks.txt").write_text("0 1\n2\n")
    assert project_tags(tmp_path) == {"orch-x-0123456789": [[0, 1], [2]]}

"""Nothing lost, nothing doubled: submits at the same time, and the submit lock (issue 6, item 3).

Each test runs `orchestrator submit` against the real Slurm test cluster on a copy of the example
project (30 indices with `--runs 3`), held so that nothing runs, then a recovery `submit` and the
independent exactly-once count (tests/reliability.py, tests/slurm_support.py).
The lock's takeover races are forced at library level.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from reliability import BOUND, TOTAL, environment, inflight_sbatch, start_submit, status, submit
from slurm_support import assert_exactly_once
from support import wait_for

from orchestrator.errors import EnvironmentFailure
from orchestrator.ledger import Ledger
from orchestrator.submit_lock import SubmitLock

pytestmark = pytest.mark.reliability("Concurrency")


@pytest.mark.slurm
def test_three_submits_at_once_submit_each_index_once(held_project: Path, reliability_case) -> None:
    case = reliability_case(
        "three `orchestrator submit` of the same experiment started at once",
        expected="all exit 0; one submits, the others find everything pending: every index exactly once",
    )
    processes = [start_submit(held_project) for _ in range(3)]
    outputs = [p.communicate(timeout=BOUND) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, out + err
    counted = assert_exactly_once(held_project, TOTAL)
    firsts = sorted(out.splitlines()[0][:60] if out else "(no output)" for out, _ in outputs)
    case.observed(f"exit codes 0, 0, 0; first lines: {firsts}; {counted}")


@pytest.mark.slurm
def test_status_does_not_wait_for_a_running_submit(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "`orchestrator status` while a submit holds the lock (its sbatch held in flight)",
        expected="status answers (exit 0) while the submit is still running: it takes no lock",
    )
    release = tmp_path / "release-sbatch"
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="wait-release", FAKE_SBATCH_RELEASE=str(release))
    process = start_submit(held_project, env, runs="1")
    try:
        wait_for(lambda: inflight_sbatch(env) is not None, 60, "the sbatch to be in flight", interval=0.05)
        assert (held_project / ".orchestrator" / "submit.lock").exists()
        seen = status(held_project, "--runs", "1")
        still_running = process.poll() is None  # it cannot have finished: its sbatch waits for us
    finally:
        release.touch()
        out, err = process.communicate(timeout=BOUND)
    assert still_running, "status returned only after the submit had finished"
    assert process.returncode == 0, out + err
    counted = assert_exactly_once(held_project, 10)
    case.observed(
        f"status exit 0 while submit held the lock (saw {seen['missing']} missing, the sbatch in flight); "
        f"submit then exit 0; {counted}"
    )


@pytest.mark.slurm
@pytest.mark.parametrize("holder", ["dead-here", "stale-elsewhere"])
def test_a_dead_submits_lock_is_taken_over(holder: str, held_project: Path, reliability_case) -> None:
    what = {
        "dead-here": "a lock left by a killed submit on this host (its pid is gone)",
        "stale-elsewhere": "a lock of another host not refreshed for 10 minutes",
    }[holder]
    case = reliability_case(what, expected="taken over at once; the submit goes through")
    lock = held_project / ".orchestrator" / "submit.lock"
    lock.parent.mkdir(parents=True)
    if holder == "dead-here":
        dead = subprocess.Popen(["true"])
        dead.wait()
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "2020-01-01"}))
    else:
        lock.write_text(json.dumps({"host": "other-node-17", "pid": 4242, "since": "2020-01-01"}))
        old = time.time() - 600
        os.utime(lock, (old, old))
    result = submit(held_project)
    assert result.returncode == 0, result.stderr
    assert not lock.exists()
    case.observed(f"exit 0; {assert_exactly_once(held_project, TOTAL)}; lock released")


def test_a_live_lock_of_another_host_is_waited_for_then_refused(tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "the lock is held (fresh) by a submit on another host (library level, 0.5 s wait)",
        expected="the second submit waits, then gives up: exit 1 message naming the holder, nothing submitted",
    )
    ledger = Ledger(tmp_path)
    lock = tmp_path / ".orchestrator" / "submit.lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps({"host": "other-node-17", "pid": 4242, "since": "2026-01-01T00:00:00"}))
    with pytest.raises(EnvironmentFailure) as raised, SubmitLock(ledger.root, wait_seconds=0.5):
        pass
    message = str(raised.value)
    assert "pid 4242 on other-node-17" in message and "nothing was submitted" in message
    assert lock.exists()
    case.observed(message)


def test_two_takeovers_of_one_stale_lock_do_not_both_win(tmp_path: Path, monkeypatch, reliability_case) -> None:
    case = reliability_case(
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
    first = SubmitLock(ledger.root, wait_seconds=0.5)
    entered: list[str] = []

    def interleaved() -> str:
        # the second submit has read the stale lock and is judging it (is its holder's host this one?);
        # right now, the first submit takes the stale lock over
        monkeypatch.setattr(socket, "gethostname", hostname)
        first.__enter__()
        entered.append("first")
        return hostname()

    monkeypatch.setattr(socket, "gethostname", interleaved)
    second = SubmitLock(ledger.root, wait_seconds=0.5)
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

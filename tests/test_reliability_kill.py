"""Nothing lost, nothing doubled: submit killed at any moment (issue 6, item 1).

Each test runs `orchestrator submit` against the real Slurm test cluster on a copy of the example
project (30 indices with `--runs 3`), held so that nothing runs, then a recovery `submit` and the
independent exactly-once count (tests/reliability.py, tests/slurm_support.py).
A kill at a fixed point comes from ORCHESTRATOR_FAULT_KILL; an sbatch held in flight from the fake
sbatch in tests/data/fakes/.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from reliability import (
    BOUND,
    KILLED,
    environment,
    inflight_sbatch,
    ledger_tally,
    records,
    recover,
    start_submit,
    submit,
)
from slurm_support import assert_exactly_once, holders
from support import wait_for

pytestmark = pytest.mark.reliability("Kill during submit")


KILL_POINTS = {
    "before-sbatch": "after the intent record, before sbatch (first array)",
    "after-sbatch": "after sbatch created the job, before the record says so (first array)",
    "mid-record": "in the middle of writing the intent record (first array)",
    "mid-record:2": "in the middle of writing the 'submitted' record after sbatch (first array)",
    "after-sbatch:3": "after sbatch of the third array, two arrays recorded",
}


@pytest.mark.slurm
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_point_of_submit_then_recover_exactly_once(
    point: str, held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        f"SIGKILL {KILL_POINTS[point]} (ORCHESTRATOR_FAULT_KILL={point})",
        expected="the next submit reconciles the open intent by its tag (squeue, then sacct) and submits "
        "the rest: every index exactly once",
    )
    killed = submit(held_project, env=environment(tmp_path, ORCHESTRATOR_FAULT_KILL=point))
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    after_kill = ledger_tally(held_project)
    assert not holders(held_project).duplicates()
    summary = recover(held_project)
    notes = submit_notes(held_project)
    case.observed(f"killed; ledger after the kill: {after_kill}; {summary}" + (f"; {notes[0]}" if notes else ""))


def submit_notes(project: Path) -> list[str]:
    return [r["note"] for r in records(project) if (r.get("note") or "").startswith("reconciled")]


@pytest.mark.slurm
def test_sigkill_at_random_moments_then_recover_exactly_once(held_project: Path, reliability_case) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", "6"))
    rng = random.Random(seed)
    case = reliability_case(
        f"SIGKILL of the whole submit (process group) at random moments, 4 times in a row (seed {seed})",
        expected="no index doubled after any kill; one recovery submit: every index exactly once",
    )
    seen = []
    for _ in range(4):
        process = start_submit(held_project)
        delay = rng.uniform(0.15, 1.0)  # a submit of 30 indices takes about a second here
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=BOUND)
        outcome = "killed" if process.returncode == KILLED else f"had finished (exit {process.returncode})"
        found = holders(held_project)
        assert not found.duplicates(), f"after a kill at {delay:.2f} s: {found.duplicates()}"
        seen.append(f"{delay:.2f} s: {outcome}, {sum(1 for v in found.by_index.values() if v)} held")
    summary = recover(held_project)
    case.observed("; ".join(seen) + f"; {summary}")


@pytest.mark.slurm
def test_sigkill_while_sbatch_is_in_flight_leaves_no_duplicate(
    held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "SIGKILL of the submit process (only) while its sbatch is in flight; the next submit runs before "
        "that sbatch would have answered",
        expected="the in-flight sbatch dies with its submit (or is waited for): every index exactly once",
    )
    release = tmp_path / "release-sbatch"
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="wait-release", FAKE_SBATCH_RELEASE=str(release))
    process = start_submit(held_project, env, runs="1")
    try:
        wait_for(lambda: inflight_sbatch(env) is not None, 60, "the sbatch to be in flight", interval=0.05)
        process.send_signal(signal.SIGKILL)  # the submit process only, as the OOM killer would
        process.communicate(timeout=BOUND)
        again = submit(held_project, runs="1")
        assert again.returncode == 0, again.stderr
    finally:
        release.touch()  # a surviving sbatch goes on now, as a slow one would have
    pid = inflight_sbatch(env)
    wait_for(lambda: sbatch_done(env) or not alive(pid), 60, "the in-flight sbatch to finish or be gone", 0.05)
    orphan = sbatch_done(env)
    found = holders(held_project)
    case.observed(
        f"the orphaned sbatch {'lived on and created its job' if orphan else 'died with its submit'}; "
        f"ledger: {ledger_tally(held_project)}; duplicates: {sorted(found.duplicates()) or 'none'}"
    )
    assert_exactly_once(held_project, 10)


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

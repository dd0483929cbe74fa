"""Nothing lost, nothing doubled: squeue failing, flaky or hanging, and sacct missing (issue 6, item 2).

Each test runs `orchestrator submit` against the real Slurm test cluster on a copy of the example
project (30 indices with `--runs 3`), held so that nothing runs, then a recovery `submit` and the
independent exactly-once count (tests/reliability.py, tests/slurm_support.py).
squeue's faults come from the fake squeue in tests/data/fakes/; sacct is hidden from PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from reliability import (
    EXPERIMENT,
    RUNS,
    calls,
    cli,
    environment,
    records,
    recover,
    reported_indices,
    status,
    submit,
    submit_first_run,
)
from slurm_support import assert_exactly_once, queued_jobs
from support import one_line, wait_for

from orchestrator.errors import SlurmUnavailable
from orchestrator.slurm_commands import SlurmCommands

pytestmark = pytest.mark.reliability("Slurm faults")


@pytest.mark.slurm
def test_squeue_failing_submits_nothing(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "squeue fails (fake: permanent error, exit 1) with jobs of ours in the ledger",
        expected="submit refuses to guess: exit 1, says why, no sbatch at all; status exit 1 with one line",
    )
    submit_first_run(held_project)
    env = environment(tmp_path, ("sbatch", "squeue"), FAKE_SQUEUE_MODE="fail")
    result = submit(held_project, env=env)
    stat = cli(held_project, "status", EXPERIMENT, *RUNS, env=env)
    line, stat_line = one_line(result.stderr), one_line(stat.stderr)
    assert result.returncode == 1 and "cannot read Slurm's state" in line and "nothing was submitted" in line
    assert "squeue failed" in line
    assert stat.returncode == 1 and "squeue" in stat_line
    assert calls(env, "sbatch") == 0
    summary = recover(held_project)
    case.observed(f"submit exit 1: {line}; sbatch calls: 0; status exit 1: {stat_line}; {summary}")


@pytest.mark.slurm
def test_squeue_transient_failures_are_retried_a_bounded_number_of_times(
    held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "squeue keeps answering 'Socket timed out' (ORCHESTRATOR_SLURM_ATTEMPTS=3)",
        expected="exactly 3 squeue attempts, then exit 1, no sbatch",
    )
    submit_first_run(held_project)
    env = environment(tmp_path, ("sbatch", "squeue"), FAKE_SQUEUE_MODE="transient", ORCHESTRATOR_SLURM_ATTEMPTS="3")
    result = submit(held_project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1 and "(3 attempts)" in line and "nothing was submitted" in line
    assert calls(env, "squeue") == 3 and calls(env, "sbatch") == 0
    summary = recover(held_project)
    case.observed(f"exit 1: {line}; squeue calls: 3; {summary}")


@pytest.mark.slurm
def test_squeue_hangs_status_and_submit_give_up(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "squeue hangs (ORCHESTRATOR_SLURM_TIMEOUT=1, ORCHESTRATOR_SLURM_ATTEMPTS=2)",
        expected="status and submit exit 1 after 2 timed-out attempts each; no sbatch",
    )
    submit_first_run(held_project)
    env = environment(
        tmp_path,
        ("sbatch", "squeue"),
        FAKE_SQUEUE_MODE="hang",
        ORCHESTRATOR_SLURM_TIMEOUT="1",
        ORCHESTRATOR_SLURM_ATTEMPTS="2",
    )
    result = submit(held_project, env=env)
    stat = cli(held_project, "status", EXPERIMENT, *RUNS, env=env)
    line, stat_line = one_line(result.stderr), one_line(stat.stderr)
    assert result.returncode == 1 and "did not answer within 1 s (2 attempts)" in line
    assert stat.returncode == 1 and "did not answer" in stat_line
    assert calls(env, "squeue") == 4 and calls(env, "sbatch") == 0
    summary = recover(held_project)
    case.observed(f"submit exit 1: {line}; status exit 1: {stat_line}; {summary}")


def test_retries_back_off_with_full_jitter_and_a_cap(tmp_path: Path, monkeypatch, reliability_case) -> None:
    case = reliability_case(
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


@pytest.mark.slurm
def test_sacct_missing_status_says_unknown(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "sacct missing from PATH; our tasks were cancelled outside the orchestrator",
        expected="status works (exit 0), failed reason 'unknown (no accounting ...)'; submit resubmits them once",
    )
    submit_first_run(held_project)
    (record,) = records(held_project)
    subprocess.run(["scancel", record["job_id"]], check=True, timeout=60)
    wait_for(lambda: record["job_id"] not in {job for job, _ in queued_jobs()}, 60, "the cancelled job to leave squeue")
    env = environment(tmp_path, hide=("sacct",))
    without = status(held_project, "--runs", "1", env=env)
    assert without["failed"] == 10
    (reason,) = without["failed_reasons"]
    assert reason.startswith("unknown") and "sacct" in reason
    again = submit(held_project, runs="1", env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(reported_indices(again.stdout)) == list(range(10))
    counted = assert_exactly_once(held_project, 10)
    case.observed(f"status exit 0, failed 10: {reason!r}; submit without sacct resubmitted 0-9; {counted}")

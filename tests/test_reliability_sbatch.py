"""Nothing lost, nothing doubled: sbatch hangs, times out, or refuses (issue 6, item 2).

Each test runs `orchestrator submit` against the real Slurm test cluster on a copy of the example
project (30 indices with `--runs 3`), held so that nothing runs, then a recovery `submit` and the
independent exactly-once count (tests/reliability.py, tests/slurm_support.py).
Faults the real cluster cannot produce on demand come from the fake sbatch in tests/data/fakes/,
which wraps the real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability import (
    EXPERIMENT,
    RUNS,
    TOTAL,
    calls,
    cli,
    environment,
    ledger_tally,
    records,
    recover,
    status,
    submit,
)
from slurm_support import holders
from support import one_line

pytestmark = pytest.mark.reliability("Slurm faults")


@pytest.mark.slurm
def test_sbatch_hangs_times_out_unconfirmed_then_reconciled(
    held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "sbatch hangs (fake sbatch never answers; ORCHESTRATOR_SLURM_TIMEOUT=2)",
        expected="exit 1 within the timeout; message: outcome unknown, tag, what was not submitted; record "
        "`unconfirmed`; the next submit reconciles it, no duplicate",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="hang", ORCHESTRATOR_SLURM_TIMEOUT="2")
    result = submit(held_project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not answer within 2 s" in line and "may or may not" in line and "nothing was submitted" in line
    (record,) = records(held_project)
    assert record["status"] == "unconfirmed" and record["tag"] in line
    assert calls(env, "sbatch") == 1  # never retried blindly
    summary = recover(held_project)
    (first,) = [r for r in records(held_project) if r["tag"] == record["tag"]]
    assert first["status"] == "rejected" and first["note"].startswith("reconciled")
    case.observed(f"exit 1: {line}; record unconfirmed, then {first['note']}; {summary}")


@pytest.mark.slurm
def test_failed_submit_does_not_say_nothing_to_submit(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "stdout of a submit that failed (sbatch hangs) before anything went out",
        expected="no 'Nothing to submit' claim: 30 indices needed submitting and were not",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="hang", ORCHESTRATOR_SLURM_TIMEOUT="2")
    result = submit(held_project, env=env)
    assert result.returncode == 1
    case.observed(f"exit 1; stdout: {result.stdout.strip() or '(empty)'}")
    assert "Nothing to submit" not in result.stdout


@pytest.mark.slurm
def test_socket_timeout_with_job_created_is_found_by_tag(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "sbatch says 'Socket timed out on send/recv operation' but the job WAS created",
        expected="no blind retry; the job is found by its tag in squeue and recorded `submitted`; exit 1 saying "
        "what was submitted; the next submit sends only the rest",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="socket-timeout")
    result = submit(held_project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Socket timed out" in line
    assert calls(env, "sbatch") == 1
    (record,) = records(held_project)
    assert record["status"] == "submitted" and record["job_id"]
    assert f"job {record['job_id']}" in line
    found = holders(held_project)
    assert found.jobs == {record["job_id"]} and not found.duplicates()
    summary = recover(held_project)
    case.observed(f"exit 1: {line}; record submitted as job {record['job_id']}; {summary}")


@pytest.mark.slurm
def test_socket_timeout_without_job_is_left_unconfirmed_then_resubmitted_once(
    held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "sbatch says 'Socket timed out' and the job was NOT created",
        expected="exit 1, record `unconfirmed` (tag not found); the next submit reconciles it as rejected and "
        "submits every index once",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="socket-timeout-no-job")
    result = submit(held_project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1 and "nothing was submitted" in line
    (record,) = records(held_project)
    assert record["status"] == "unconfirmed"
    summary = recover(held_project)
    case.observed(f"exit 1: {line}; {summary}")


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("what", "profile", "expected_text"),
    [
        ("account", "account: no-such-account\n", "Invalid account"),
        ("partition", "partition: nosuchpart\n", "invalid partition"),
    ],
)
def test_sbatch_refuses_bad_account_or_partition(
    what: str, profile: str, expected_text: str, held_project: Path, reliability_case
) -> None:
    case = reliability_case(
        f"sbatch refuses: a bad {what} in the profile",
        expected="exit 1, 'nothing was submitted'; the record `rejected`; status shows every index missing",
    )
    (held_project / "bad.yaml").write_text("sbatch: {hold: true}\n" + profile)
    result = cli(held_project, "submit", EXPERIMENT, *RUNS, "--cluster", "bad.yaml")
    line = one_line(result.stderr)
    assert result.returncode == 1 and expected_text.lower() in line.lower()
    assert "nothing was submitted" in line
    assert [r["status"] for r in records(held_project)] == ["rejected"]
    assert status(held_project, *RUNS)["missing"] == TOTAL
    summary = recover(held_project)
    case.observed(f"exit 1: {line}; ledger: 1 rejected; status: 30 missing; {summary}")


@pytest.mark.slurm
def test_sbatch_refuses_the_second_array(held_project: Path, tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "sbatch accepts the first array and refuses the second (fake: refuse-after:1)",
        expected="exit 1; the message says which job and indices were submitted before the refusal; ledger: "
        "submitted + rejected; recovery sends the rest once",
    )
    env = environment(tmp_path, ("sbatch",), FAKE_SBATCH_MODE="refuse-after:1")
    result = submit(held_project, env=env)
    line = one_line(result.stderr)
    assert result.returncode == 1
    statuses = [r["status"] for r in records(held_project)]
    assert sorted(statuses) == ["rejected", "submitted"]
    (sent,) = [r for r in records(held_project) if r["status"] == "submitted"]
    assert f"job {sent['job_id']} indices 0-10" in line
    tally = ledger_tally(held_project)
    summary = recover(held_project)
    case.observed(f"exit 1: {line}; ledger: {tally}; {summary}")

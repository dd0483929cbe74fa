"""SlurmCommands against the real Slurm test cluster (scripts/slurm-test-cluster.sh up).

Skipped where there is no cluster; under CI=true a missing cluster is a failure instead. Every job
submitted here is cancelled at the end of its test, and the cluster may be shared: tests look only
at their own job ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_support import require_slurm

from orchestrator.errors import SlurmRejected
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import AccountingRecord

pytestmark = pytest.mark.slurm

WAIT_SECONDS = 60
TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}


@pytest.fixture(scope="module", autouse=True)
def _cluster_up() -> None:
    require_slurm()


@pytest.fixture
def slurm() -> SlurmCommands:
    return SlurmCommands(timeout=30)


@pytest.fixture
def submitted(slurm: SlurmCommands) -> Iterator[list[str]]:
    """Job ids a test submitted; all cancelled afterwards (a no-op for finished ones)."""
    ids: list[str] = []
    yield ids
    if ids:
        slurm.scancel(ids)


def _script(tmp_path: Path, body: str, *directives: str) -> Path:
    """A job script; its sbatch options as `#SBATCH` lines, as the orchestrator's own scripts carry them."""
    script = tmp_path / "job.sh"
    options = "".join(f"#SBATCH {d}\n" for d in directives)
    script.write_text(f"#!/bin/bash\n{options}{body}\n")
    return script


def test_tiny_array_from_submission_to_accounting(slurm: SlurmCommands, submitted: list[str], tmp_path: Path) -> None:
    tag = f"orch-live-{uuid.uuid4().hex[:12]}"
    script = _script(
        tmp_path,
        "sleep 3\nexit $SLURM_ARRAY_TASK_ID",
        "--array=0-2",
        f"--job-name={tag}",
        f'--comment="{tag}|x"',
        f"--output={tmp_path}/%A_%a.out",
    )
    job_id = slurm.sbatch(script)
    submitted.append(job_id)
    assert job_id.isdigit()

    ours = [t for t in slurm.squeue_me() if t.array_job_id == job_id]
    assert sorted(t.task_id for t in ours) == [0, 1, 2]
    assert {(t.name, t.comment) for t in ours} == {(tag, f"{tag}|x")}
    assert {t.state for t in ours} <= {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}

    deadline = time.monotonic() + WAIT_SECONDS
    records: dict[int | None, AccountingRecord] = {}
    while time.monotonic() < deadline:
        found = slurm.sacct([job_id])
        assert found is not None, slurm.accounting_problem
        records = {r.task_id: r for r in found}
        if set(records) == {0, 1, 2} and all(r.state in TERMINAL for r in records.values()):
            break
        time.sleep(1)
    summary = {t: (r.state, r.exit_code, r.signal) for t, r in records.items()}
    assert summary == {0: ("COMPLETED", 0, 0), 1: ("FAILED", 1, 0), 2: ("FAILED", 2, 0)}, (
        f"after {WAIT_SECONDS} s: {summary}"
    )
    assert {(r.array_job_id, r.job_id, r.name) for r in records.values()} == {
        (job_id, f"{job_id}_{t}", tag) for t in (0, 1, 2)
    }
    assert all(r.elapsed_seconds is not None and r.elapsed_seconds >= 2 for r in records.values())
    assert slurm.calls["squeue"] == 1


def test_array_limits_of_the_test_cluster(slurm: SlurmCommands) -> None:
    assert slurm.array_limits() == (11, None)


def test_max_submit_jobs_answers(slurm: SlurmCommands) -> None:
    limit = slurm.max_submit_jobs()
    assert limit is None or limit > 0


def test_invalid_partition_is_rejected(slurm: SlurmCommands, submitted: list[str], tmp_path: Path) -> None:
    with pytest.raises(SlurmRejected, match="Invalid partition name specified") as caught:
        submitted.append(slurm.sbatch(_script(tmp_path, "true", "--hold", "--partition=orch-no-such-partition")))
    assert caught.value.command is not None and str(tmp_path / "job.sh") in caught.value.command


def test_array_index_at_max_array_size_is_rejected(slurm: SlurmCommands, submitted: list[str], tmp_path: Path) -> None:
    # MaxArraySize=11 caps the index value: 0-10 is the largest array, 0-11 is refused
    with pytest.raises(SlurmRejected, match="Invalid job array specification"):
        submitted.append(slurm.sbatch(_script(tmp_path, "true", "--hold", "--array=0-11")))


def test_unknown_job_has_no_accounting(slurm: SlurmCommands) -> None:
    assert slurm.sacct(["999999999"]) == []

"""Rendered scripts read by the real sbatch (the test cluster, scripts/slurm-test-cluster.sh up): accepted
by `--test-only`, quoted directive values read back, and a real task writing its status.

They skip when the cluster is missing, except under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from render_support import GOLDEN_CASES, Project
from slurm_support import require_slurm

from orchestrator.render import render_script

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def _cluster_up() -> None:
    require_slurm()


def _job_id(stdout: str) -> str:
    return stdout.strip().splitlines()[-1].split(";")[0]


SPACED_LOG_DIR = "logs dir/with 'q' \"dq\" #hash 100%"


# "full" names an account and GPUs the test cluster lacks
@pytest.mark.parametrize("name", ["minimal", "hostile_paths"])
def test_sbatch_test_only_accepts_golden_scripts(tmp_path, name):
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["sbatch", "--test-only", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_sbatch_test_only_accepts_the_script(tmp_path):
    project = Project(tmp_path / "project root")
    project.logs = project.root / SPACED_LOG_DIR
    project.render([[0], [1], [2]], throttle=2, sbatch={"nice": 5})
    result = subprocess.run(
        ["sbatch", "--test-only", str(project.script_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_sbatch_reads_quoted_directive_values(tmp_path):
    project = Project(tmp_path / "root")
    workdir = tmp_path / "work dir 'q' \"dq\" #h $(x) é"
    workdir.mkdir()
    project.render([[0]], sbatch={"chdir": str(workdir)})
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--hold", str(project.script_path)], capture_output=True, text=True, timeout=60
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = _job_id(submitted.stdout)
    try:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout
        fields = dict(re.findall(r"^\s*(WorkDir|Comment)=(.*?)\s*$", shown, re.MULTILINE))
        assert fields["WorkDir"] == str(workdir)
        assert fields["Comment"] == "orch-test-00000000"
        assert "JobName=orch-test-00000000" in shown
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


def test_real_submission_writes_the_status(tmp_path):
    project = Project(tmp_path / "project root")
    project.logs = project.root / SPACED_LOG_DIR
    project.logs.mkdir(parents=True)
    project.render([[0]])
    text = project.script_path.read_text()
    project.script_path.write_text(text.replace('bash entry.sh "$ORCH_EXPERIMENT" "$index"', "true"))
    submitted = subprocess.run(["sbatch", "--parsable", str(project.script_path)], capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    job_id = _job_id(submitted.stdout)
    status = project.logs / "0.status"
    # 60 s once the task runs; a busy shared test cluster may keep it pending for a while first
    deadline, hard_deadline = time.monotonic() + 60, time.monotonic() + 600
    try:
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(1)
            state = subprocess.run(
                ["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if state == "PENDING":
                deadline = min(hard_deadline, time.monotonic() + 60)
        assert status.exists(), f"no status file after 60 s; job {job_id}; logs: {os.listdir(project.logs)}"
        assert status.read_text() == "0\n"
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
    slurm_out = project.logs / f"slurm-{job_id}_0.out"
    for _ in range(30):  # Slurm may close the output file a moment after the script's last write
        if slurm_out.exists() and "all 1 indices exited 0" in slurm_out.read_text():
            break
        time.sleep(1)
    assert "all 1 indices exited 0" in slurm_out.read_text()

"""Rendered scripts run with plain bash (the #SBATCH lines are comments to it), with SLURM_ARRAY_TASK_ID
and SLURM_ARRAY_JOB_ID set as Slurm and the local executor set them: exit codes, logs, bundles, parallel
indices, hostile paths, and bad task lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from render_support import HOSTILE, OVERLAP_ENTRY, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "my project")


def test_single_index_task(project):
    project.render([[0], [1]], codes={1: 3})
    ok = project.run(0)
    assert ok.returncode == 0, ok.stderr
    assert project.status(0) == "0\n"
    failed = project.run(1)
    assert failed.returncode == 3, "the task exits with its failing index's code (sacct: FAILED 3:0)"
    assert project.status(1) == "3\n"
    assert "failed: 1 (exit 3)" in failed.stdout

    log = project.log(1).splitlines()
    assert re.fullmatch(
        r"=== orchestrator: index 1 on \S+, job 77_1, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", log[0]
    )
    assert log[1:3] == ["stdout of 1", "stderr of 1"]
    assert re.fullmatch(r"=== orchestrator: index 1 exited with code 3, ended \S+", log[3])
    assert len(log) == 4
    assert sorted(p.name for p in project.logs.iterdir()) == ["0.log", "0.status", "1.log", "1.status"]


def test_command_arguments_environment_and_directory(project):
    project.render([[5]])
    assert project.run(0, cwd=Path("/")).returncode == 0
    calls = project.root / "calls"
    assert (calls / "5.argv").read_text().splitlines() == ["experiments/e.json", "5"]
    experiment, index, pwd = (calls / "5.env").read_text().splitlines()
    assert (experiment, index, pwd) == ("experiments/e.json", "5", str(project.root))


def test_bundle_runs_every_index_and_exits_with_the_first_failure(project):
    project.render([[0, 1, 2, 3], [4]], codes={1: 3, 3: 5})
    result = project.run(0)
    assert result.returncode == 3
    assert [project.status(i) for i in range(4)] == ["0\n", "3\n", "0\n", "5\n"], "a failure does not stop the bundle"
    assert not (project.logs / "4.status").exists()
    assert "failed: 1 (exit 3) 3 (exit 5)" in result.stdout
    assert not list(project.logs.glob("*.tmp"))


def test_first_failure_is_in_task_file_order_with_parallel(project):
    project.render([[0, 1, 2, 3]], parallel=2, codes={0: 0, 1: 7, 2: 4, 3: 0})
    result = project.run(0)
    assert result.returncode == 7
    assert [project.status(i) for i in range(4)] == ["0\n", "7\n", "4\n", "0\n"]


def test_rerun_appends_to_the_log_and_replaces_the_status(project):
    project.render([[0]], codes={0: 2})
    assert project.run(0).returncode == 2
    (project.root / "codes.txt").write_text("0\n")
    assert project.run(0, job_id="78").returncode == 0
    assert project.status(0) == "0\n"
    log = project.log(0)
    assert log.count("=== orchestrator: index 0 on") == 2
    assert "job 77_0" in log and "job 78_0" in log


def test_parallel_two_overlaps(tmp_path):
    project = Project(tmp_path / "p", entry=OVERLAP_ENTRY)
    project.render([[0, 1, 2, 3]], parallel=2)
    result = project.run(0)
    assert result.returncode == 0, (result.stdout, result.stderr, project.log(0))
    marks = project.root / "marks"
    assert [(marks / f"result.{i}").read_text() for i in range(4)] == ["overlapped\n"] * 4
    # never more than `parallel` indices between their start and done markers
    assert all(int((marks / f"running_at_start.{i}").read_text()) <= 2 for i in range(4))


def test_parallel_one_runs_one_at_a_time(tmp_path):
    project = Project(tmp_path / "p", entry=OVERLAP_ENTRY.replace("seq 600", "seq 2"))
    project.render([[0, 1]], parallel=1)
    assert project.run(0).returncode == 1
    marks = project.root / "marks"
    assert (marks / "result.0").read_text() == "alone\n"
    assert (marks / "running_at_start.1").read_text() == "1\n"


def test_hostile_experiment_path_is_one_verbatim_argument(tmp_path):
    project = Project(tmp_path / "root 'q' \"d\" $(touch PWNED2) `touch PWNED3`; é", experiment=HOSTILE)
    (project.root / HOSTILE).parent.mkdir(parents=True)
    (project.root / HOSTILE).write_text("{}")
    (project.root / "y").write_text("must survive")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "x").write_text(f"#!/bin/sh\ntouch {tmp_path}/X_RAN\n")
    (bin_dir / "x").chmod(0o755)
    project.render([[0]])
    result = project.run(0, cwd=project.root, path_first=bin_dir)
    assert result.returncode == 0, result.stderr
    argv = (project.root / "calls" / "0.argv").read_text(encoding="utf-8").splitlines()
    assert argv == [HOSTILE, "0"]
    assert (project.root / "calls" / "0.env").read_text(encoding="utf-8").splitlines()[0] == HOSTILE
    assert (project.root / "y").read_text() == "must survive"
    assert not list(tmp_path.rglob("PWNED*")) and not (tmp_path / "X_RAN").exists()


def test_missing_task_id_fails_clearly(project):
    project.render([[0]])
    result = project.run(None)
    assert result.returncode != 0
    assert "SLURM_ARRAY_TASK_ID is not set" in result.stderr
    assert not (project.root / "calls").exists()


def test_task_id_past_the_task_file_fails_clearly(project):
    project.render([[0], [1]])
    result = project.run(2)
    assert result.returncode != 0
    assert "line 3 of the task file" in result.stderr and "empty or missing" in result.stderr


def test_empty_task_line_and_bad_index_fail_clearly(project):
    project.render([[0]])
    project.task_file.write_text("\n0 x\n")
    assert "empty or missing" in project.run(0).stderr
    result = project.run(1)
    assert result.returncode != 0 and "holds 'x', not an index" in result.stderr
    assert not (project.root / "calls").exists(), "nothing runs when the task line is bad"


def test_setup_runs_first_in_the_project_root(project):
    project.render([[0]], setup=["echo setup ran in $PWD > setup.txt", "unset NOT_SET_ANYWHERE; : $NOT_SET_ANYWHERE"])
    result = project.run(0)
    assert result.returncode == 0, result.stderr
    assert (project.root / "setup.txt").read_text() == f"setup ran in {project.root}\n"

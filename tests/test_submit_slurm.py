"""`orchestrator submit` against the real Slurm test cluster (MaxArraySize=11)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from slurm_support import require_slurm, set_max_submit
from support import (
    make_example_project,
    orchestrator,
    plan_jsonl,
    status_json,
    submit_json,
    submitted_indices,
    wait_for,
)

from orchestrator.slurm_formats import parse_ranges

pytestmark = pytest.mark.slurm
EXPERIMENT = "experiments/example/linreg.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require_slurm()
    return make_example_project(tmp_path / "proj with space")


def _plan(project: Path, runs: int) -> list[dict]:
    return plan_jsonl(project, EXPERIMENT, "--runs", str(runs))


def _submit(project: Path, *args: str) -> dict:
    return submit_json(project, EXPERIMENT, *args)


def test_thirty_indices_go_out_as_several_arrays_and_complete(project: Path) -> None:
    report = _submit(project, "--runs", "3")
    submissions = report["submissions"]
    assert [s["tasks"] for s in submissions] == [11, 11, 8]  # task ids 0..10 at most
    assert sorted(submitted_indices(report)) == list(range(30))
    assert all(s["job_id"] and s["job_id"].isdigit() for s in submissions)
    for s in submissions:
        script = Path(s["script"]).read_text()
        assert f"#SBATCH --array=0-{s['tasks'] - 1}" in script
        assert "lr" not in script and "0.003" not in script  # no parameter values in the script

    # a second submit right away finds everything pending or running
    again = _submit(project, "--runs", "3")
    assert again["submissions"] == []

    wait_for(lambda: status_json(project, EXPERIMENT, "--runs", "3")["done"] == 30, 240, "30 results")
    for entry in _plan(project, 3):
        result = project / entry["save_path"] / "results.json"
        assert json.loads(result.read_text())["params"] == entry["params"]
    tags = {s["tag"] for s in submissions}
    for s in submissions:
        log_dir = project / ".logs" / "example" / s["tag"]
        for index in parse_ranges(s["indices"]):
            assert "final loss" in (log_dir / f"{index}.log").read_text()
            assert (log_dir / f"{index}.status").read_text().strip() == "0"
    assert len(tags) == 3


def test_deleted_results_are_exactly_what_goes_out_again(project: Path) -> None:
    _submit(project, "--runs", "3")
    wait_for(lambda: status_json(project, EXPERIMENT, "--runs", "3")["done"] == 30, 240, "30 results")
    plan = _plan(project, 3)
    deleted = [2, 9, 13, 21, 29]
    for index in deleted:
        shutil.rmtree(project / plan[index]["save_path"])
    status = status_json(project, EXPERIMENT, "--runs", "3")
    assert status["missing"] == 5 and status["indices"]["missing"] == "2,9,13,21,29"

    report = _submit(project, "--runs", "3")
    assert sorted(submitted_indices(report)) == deleted
    assert _submit(project, "--runs", "3")["submissions"] == []  # twice in a row: nothing doubled
    wait_for(lambda: status_json(project, EXPERIMENT, "--runs", "3")["done"] == 30, 120, "the 5 results again")


def test_submit_limit_submits_what_fits_and_the_rest_later(project: Path) -> None:
    set_max_submit(6)
    try:
        wait_for(lambda: _queue_is_empty(project), 120, "an empty queue before the limit test")
        result = orchestrator("submit", EXPERIMENT, "--runs", "2", "--json", cwd=project)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        first = submitted_indices(report)
        assert len(first) == 6
        left = parse_ranges(report["experiments"][0]["not_yet_submitted"])
        assert sorted(first + left) == list(range(20))
        human = orchestrator("submit", EXPERIMENT, "--runs", "2", cwd=project)
        assert human.returncode == 0
        wait_for(lambda: status_json(project, EXPERIMENT, "--runs", "2")["done"] >= 6, 120, "the first 6 results")
        second = submitted_indices(_submit(project, "--runs", "2"))
        assert second and not set(second) & set(first)
    finally:
        set_max_submit(None)
        orchestrator("cancel", EXPERIMENT, "--runs", "2", cwd=project)


def _queue_is_empty(project: Path) -> bool:
    return subprocess.run(["squeue", "--me", "-h"], capture_output=True, text=True).stdout.strip() == ""


def test_dry_run_submits_and_records_nothing(project: Path) -> None:
    result = orchestrator("submit", EXPERIMENT, "--runs", "3", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("#!/bin/bash") == 3
    assert "would submit 11 task(s), indices 0-10" in result.stdout
    assert not (project / ".orchestrator").exists()
    assert not (project / ".logs").exists()
    assert status_json(project, EXPERIMENT, "--runs", "3")["missing"] == 30

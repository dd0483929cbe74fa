"""Damaged state: truncated and corrupt ledger records, vanished results, garbage exit status files
(issue 6, item 4).

The Slurm tests damage a held submission's record on the real cluster; the others damage a copy of
the example project run once with the local executor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from reliability import EXPERIMENT, RUNS, TOTAL, cli, reported_indices, status, submit
from slurm_support import assert_exactly_once, holders, project_tags
from support import make_example_project, plan_jsonl

pytestmark = pytest.mark.reliability("Damaged state")


def truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


@pytest.mark.slurm
def test_truncated_record_is_reported_with_its_path(held_project: Path, reliability_case) -> None:
    case = reliability_case(
        "a truncated ledger record (of a pending job)",
        expected="status and submit exit 0, each names the record's path as damaged and skipped; no traceback",
    )
    assert submit(held_project).returncode == 0
    damaged = sorted((held_project / ".orchestrator" / "ledger").glob("*/*.json"))[0]
    truncate(damaged)
    stat = cli(held_project, "status", EXPERIMENT, *RUNS)
    again = submit(held_project)
    for result in (stat, again):
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert f"{damaged}: damaged ledger record skipped" in result.stdout
    case.observed(f"status exit 0 and submit exit 0, both: note: {damaged.name}: damaged ledger record skipped (...)")


@pytest.mark.slurm
def test_truncated_record_of_a_live_job_is_not_resubmitted(held_project: Path, reliability_case) -> None:
    case = reliability_case(
        "a truncated ledger record of a job still in the queue, then submit",
        expected="its job is found by the tag in the file name and its task file; nothing resubmitted",
    )
    assert submit(held_project).returncode == 0
    damaged = sorted((held_project / ".orchestrator" / "ledger").glob("*/*.json"))[0]
    truncate(damaged)
    again = submit(held_project)
    assert again.returncode == 0, again.stderr
    found = holders(held_project)
    case.observed(
        f"submit exit 0, resubmitted: {sorted(reported_indices(again.stdout)) or 'nothing'}; "
        f"duplicates: {sorted(found.duplicates()) or 'none'}"
    )
    assert_exactly_once(held_project, TOTAL)


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
        "result directories deleted after a finished run (local executor)",
        expected="status shows exactly those indices missing; submit reruns exactly those; then all done",
    )
    root = copy_project(local_project, tmp_path)
    plan = plan_jsonl(root, EXPERIMENT)
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
        "a per-index .status file with garbage in it, its result deleted",
        expected="status exit 0, the index failed or missing (not a crash); submit reruns it",
    )
    root = copy_project(local_project, tmp_path)
    plan = plan_jsonl(root, EXPERIMENT)
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

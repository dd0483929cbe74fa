"""`orchestrator status`, `submit` after failures, `cancel` and `logs` on the real Slurm test cluster.

One faulty sweep (tests/data/faulty/faulty.py) is submitted once per module and its indices are made
to end in known ways; the tests then read the CLI's view and compare it with what actually happened,
found without the library: which indices were made to do what, which save paths exist on disk, and
what `squeue` / `sacct` print for our job ids.

    index  behave   what happens (profile: partition short, --time 0:01:00, 2 CPUs in the cluster)
    0      ok       writes its result at once                  -> done
    1      exit3    prints a marker line and exits 3           -> failed, FAILED exit 3
    2      sleep    sleeps 600 s                               -> running, then failed, TIMEOUT (~60-90 s)
    3      slow     sleeps 30 s, then writes its result        -> running, then done
    4      slow.2   the same, queued behind 2 and 3            -> pending, running, then done
    5      ok.2     writes its result, queued behind           -> pending, then done
    6-11            run 1 of the same (status --runs 2)        -> missing until the cancel test

The tests run in file order and share the sweep: the module fixture waits (once) for the TIMEOUT,
the early tests only read or dry-run, and the last two (escalation, cancel) submit and change state.
Every job id submitted here is cancelled at the end; jobs of others are never touched.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from slurm_support import require_slurm
from support import (
    REPO,
    cli_env,
    make_example_project,
    orchestrator,
    status_json,
    submit_json,
    submitted_indices,
    wait_for,
)

from orchestrator.slurm_formats import parse_ranges

pytestmark = pytest.mark.slurm

EXPERIMENT = "experiments/faulty/sweep.json"
BEHAVE = ["ok", "exit3", "sleep", "slow", "slow.2", "ok.2"]
P = len(BEHAVE)
STATES = ("done", "running", "pending", "failed", "missing")
FAULTY = REPO / "tests" / "data" / "faulty" / "faulty.py"
EXIT3_MARKER = "FAULTY-EXIT3-MARKER"

BASE_PROFILE = """\
partition: short
time: "0:01:00"
mem_per_cpu: 100M
command: python faulty.py -e {experiment} -i {index}
"""


@dataclass
class Sweep:
    """The module's sweep and everything the tests submitted for it (ground truth, kept by the tests)."""

    project: Path
    held: dict[int, tuple[str, int]] = field(default_factory=dict)  # index -> (job id, task) of its last submission
    job_ids: list[str] = field(default_factory=list)
    cancelled: set[tuple[str, int]] = field(default_factory=set)
    first_job: str = ""
    mix: tuple[dict, dict[str, set[int]]] | None = None  # (status --json, ground truth) with all five states

    def record(self, report: dict) -> None:
        """Remember a real submission: which array task of which job holds which index."""
        for s in report["submissions"]:
            assert s["job_id"], s
            self.job_ids.append(s["job_id"])
            for task, index in enumerate(parse_ranges(s["indices"])):  # one index per task, ascending
                self.held[index] = (s["job_id"], task)


# -- ground truth, found without the library -------------------------------------------------------


def save_path(project: Path, index: int) -> Path:
    """config.json: results/{name}/{agent}/{params}/{run}; the sweep's only axis is `behave`."""
    return project / "results" / "faulty" / "Faulty" / f"behave-{BEHAVE[index % P]}" / str(index // P)


def our_queue(job_ids: list[str]) -> dict[tuple[str, int], str]:
    """(job id, task) -> squeue state, for our jobs only, parsed here from squeue's own output."""
    out = subprocess.run(
        ["squeue", "--me", "-r", "-h", "-o", "%F|%K|%T"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    queue = {}
    for line in out.splitlines():
        job, task, state = line.strip().split("|")
        if job in job_ids and task.isdigit():
            queue[(job, int(task))] = state
    return queue


def accounting_state(job: str, task: int) -> str:
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-j", f"{job}_{task}", "-o", "State,ExitCode"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return out.strip().splitlines()[-1] if out.strip() else ""


def ground_truth(sweep: Sweep, runs: int, marker: str | None = None) -> dict[str, set[int]]:
    queue = our_queue(sweep.job_ids)
    truth: dict[str, set[int]] = {s: set() for s in STATES}
    for index in range(P * runs):
        path = save_path(sweep.project, index)
        held = sweep.held.get(index)
        if path.is_dir() and (marker is None or (path / marker).is_file()):
            truth["done"].add(index)
        elif held is None or held in sweep.cancelled:
            truth["missing"].add(index)
        elif held in queue:
            truth["pending" if queue[held] == "PENDING" else "running"].add(index)
        elif BEHAVE[index % P].split(".")[0] in ("ok", "slow"):
            truth["missing"].add(index)  # it ended well, but its (complete) result is not there
        else:
            truth["failed"].add(index)  # exit3 or sleep: submitted, ended, no result
    return truth


def as_sets(status: dict) -> dict[str, set[int]]:
    return {s: set(parse_ranges(status["indices"][s])) for s in STATES}


def consistent_status(sweep: Sweep, runs: int, *args: str) -> tuple[dict, dict[str, set[int]]]:
    """status --json with the ground truth of the same moment (taken before and after, equal)."""
    for _ in range(20):
        before = ground_truth(sweep, runs)
        status = status_json(sweep.project, EXPERIMENT, "--runs", str(runs), *args)
        if ground_truth(sweep, runs) == before:
            return status, before
    raise AssertionError("the sweep never held still for one status call")


def check_against_truth(status: dict, truth: dict[str, set[int]], total: int) -> None:
    got = as_sets(status)
    assert got == truth, f"status {status['indices']} but actually {truth}"
    assert status["total"] == total
    assert all(status[s] == len(got[s]) for s in STATES)
    assert sorted(i for s in STATES for i in got[s]) == list(range(total)), "each index in exactly one state"


# -- the sweep -------------------------------------------------------------------------------------


def _submit(project: Path, *args: str) -> dict:
    return submit_json(project, EXPERIMENT, *args)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    require_slurm()
    project = make_example_project(tmp_path_factory.mktemp("status") / "proj with space")
    shutil.copy(FAULTY, project / "faulty.py")
    (project / "experiments" / "faulty").mkdir()
    (project / EXPERIMENT).write_text(json.dumps({"agent": "Faulty", "metaParameters": {"behave": BEHAVE}}))
    (project / "base.yaml").write_text(BASE_PROFILE)
    (project / "max1.yaml").write_text(BASE_PROFILE + "max_attempts: 1\n")
    (project / "marker.yaml").write_text(BASE_PROFILE + "completion_marker: DONE\n")
    state = Sweep(project)
    try:
        report = _submit(project, "--cluster", "base.yaml")
        assert submitted_indices(report) == list(range(P)) and len(report["submissions"]) == 1
        state.record(report)
        state.first_job = report["submissions"][0]["job_id"]

        def mixed() -> bool:
            status, truth = consistent_status(state, 2)
            if all(truth[s] for s in STATES):
                state.mix = (status, truth)
                return True
            return False

        # 0 done and 1 failed within seconds, 2 and 3 running, 4 and 5 queued behind them for ~30 s
        wait_for(mixed, 60, "a moment with indices in all five states", interval=0.5)

        def settled() -> bool:
            status = status_json(project, EXPERIMENT)
            return status["running"] == status["pending"] == 0 and "TIMEOUT" in status["failed_reasons"]

        wait_for(settled, 180, "index 2 to end as TIMEOUT and the slow indices to finish", interval=2)
        yield state
    finally:
        if state.job_ids:
            subprocess.run(["scancel", *state.job_ids], capture_output=True, timeout=60)


# -- reading state ---------------------------------------------------------------------------------


def test_status_json_in_a_mix_of_all_five_states_agrees_with_what_happened(sweep: Sweep) -> None:
    assert sweep.mix is not None
    status, truth = sweep.mix
    check_against_truth(status, truth, 2 * P)
    assert set(range(P, 2 * P)) <= truth["missing"]  # run 1: never submitted
    assert 0 in truth["done"] and 1 in truth["failed"]
    assert status["failed_reasons"] == {"FAILED exit 3": "1"}


def test_exit_3_and_timeout_are_failed_with_their_reasons(sweep: Sweep) -> None:
    status, truth = consistent_status(sweep, 2)
    check_against_truth(status, truth, 2 * P)
    assert truth["failed"] == {1, 2} and truth["done"] == {0, 3, 4, 5}
    assert status["failed_reasons"] == {"FAILED exit 3": "1", "TIMEOUT": "2"}
    # what Slurm's accounting says, asked directly
    assert accounting_state(sweep.first_job, 1) == "FAILED|3:0"
    assert accounting_state(sweep.first_job, 2).startswith("TIMEOUT|")


def test_human_status_has_a_progress_bar_and_failed_indices_grouped_by_reason(sweep: Sweep) -> None:
    result = orchestrator("status", EXPERIMENT, "--runs", "2", cwd=sweep.project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    bar = re.search(r"\[([#.]+)\] (\d+)/(\d+) done", lines[0])
    assert bar and lines[0].startswith(EXPERIMENT), result.stdout
    assert len(bar.group(1)) == 30 and bar.group(1) == "#" * 10 + "." * 20  # 4 of 12
    assert (bar.group(2), bar.group(3)) == ("4", "12")
    assert re.search(r"running 0\s+pending 0\s+failed 2\s+missing 6", lines[0]), lines[0]
    assert "  failed, FAILED exit 3: 1" in lines
    assert "  failed, TIMEOUT: 2" in lines


def test_logs_show_the_failing_index_output_with_its_job_id_and_state(sweep: Sweep) -> None:
    result = orchestrator("logs", EXPERIMENT, "1", cwd=sweep.project)
    assert result.returncode == 0, result.stderr
    assert f"{EXIT3_MARKER} index=1" in result.stdout
    header = result.stdout.splitlines()[0]
    assert f"job {sweep.first_job}_1" in header and "FAILED exit 3" in header, header

    timed_out = orchestrator("logs", EXPERIMENT, "2", cwd=sweep.project)
    assert timed_out.returncode == 0, timed_out.stderr
    assert f"job {sweep.first_job}_2" in timed_out.stdout and "TIMEOUT" in timed_out.stdout


def test_without_accounting_the_reason_is_unknown_and_nothing_crashes(sweep: Sweep, tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    (fake / "sacct").chmod(0o755)
    result = orchestrator("status", EXPERIMENT, "--json", cwd=sweep.project, env=cli_env(fake))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    status = json.loads(result.stdout)["experiments"][0]
    assert status["indices"]["failed"] == "1-2"
    reasons = status["failed_reasons"]
    assert reasons.pop("FAILED exit 3") == "1"  # its own exit status file still says so
    ((reason, indices),) = reasons.items()
    assert indices == "2" and reason.startswith("unknown"), reasons


def test_marker_requires_the_file_inside_the_save_path(sweep: Sweep) -> None:
    marker = save_path(sweep.project, 0) / "DONE"
    marker.unlink()
    try:
        assert 0 in as_sets(status_json(sweep.project, EXPERIMENT))["done"]  # default: the path exists
        truth = ground_truth(sweep, 1, marker="DONE")
        assert 0 in truth["missing"] and truth["done"] == {3, 4, 5}
        for args in (("--marker", "DONE"), ("--cluster", "marker.yaml")):
            check_against_truth(status_json(sweep.project, EXPERIMENT, *args), truth, P)
        dry = _submit(sweep.project, "--cluster", "base.yaml", "--marker", "DONE", "--dry-run")
        assert 0 in submitted_indices(dry)
    finally:
        marker.write_text("")
    assert 0 in as_sets(status_json(sweep.project, EXPERIMENT, "--marker", "DONE"))["done"]


# -- resubmission ----------------------------------------------------------------------------------


def test_max_attempts_gives_up_unless_asked_to_retry(sweep: Sweep) -> None:
    report = _submit(sweep.project, "--cluster", "max1.yaml")
    assert report["submissions"] == []
    assert report["experiments"][0]["given_up"] == "1-2"
    human = orchestrator("submit", EXPERIMENT, "--cluster", "max1.yaml", cwd=sweep.project)
    assert human.returncode == 0, human.stderr
    assert "given up after max attempts: 1-2" in human.stdout
    retry = _submit(sweep.project, "--cluster", "max1.yaml", "--retry-given-up", "--dry-run")
    assert submitted_indices(retry) == [1, 2]


def test_submit_after_the_failures_sends_exactly_the_failed_ones(sweep: Sweep) -> None:
    report = _submit(sweep.project, "--cluster", "base.yaml", "--dry-run")
    assert submitted_indices(report) == [1, 2]
    assert [s["time"] for s in report["submissions"]] == ["0:01:00"]  # no escalation unless asked


def test_escalate_sends_the_timeout_index_with_more_time_in_its_own_array(sweep: Sweep) -> None:
    report = _submit(sweep.project, "--cluster", "base.yaml", "--escalate")
    sweep.record(report)
    assert submitted_indices(report) == [1, 2]
    by_index = {i: s for s in report["submissions"] for i in parse_ranges(s["indices"])}
    timed_out, failed = by_index[2], by_index[1]
    assert timed_out["job_id"] != failed["job_id"], "grouped by resources: two arrays"
    assert timed_out["time"] == "0:02:00" and failed["time"] == "0:01:00"
    script = Path(timed_out["script"]).read_text()
    assert "#SBATCH --time=0:02:00" in script and "--time=0:01:00" not in script
    assert "#SBATCH --time=0:01:00" in Path(failed["script"]).read_text()
    limit = subprocess.run(
        ["squeue", "-h", "-j", timed_out["job_id"], "-o", "%l"], capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert limit in ([], ["2:00"]), limit  # Slurm's own view of the limit (empty only if already gone)
    # index 2 is queued or running again: a second submit does not send it
    assert 2 not in submitted_indices(_submit(sweep.project, "--cluster", "base.yaml", "--dry-run"))


def test_cancel_empties_the_queue_and_the_indices_return_to_missing(sweep: Sweep) -> None:
    report = _submit(sweep.project, "--cluster", "base.yaml", "--runs", "2")
    sweep.record(report)
    assert set(range(P, 2 * P)) <= set(submitted_indices(report))
    # 2 CPUs: once the two sleepers (2 again, and 8) hold them, the rest has ended or waits for a CPU
    wait_for(lambda: ground_truth(sweep, 2)["running"] == {2, P + 2}, 60, "the two sleepers to hold both CPUs")
    before = ground_truth(sweep, 2)
    live = before["running"] | before["pending"]
    assert 2 in live and P + 2 in live  # the two sleepers

    result = orchestrator("cancel", EXPERIMENT, "--runs", "2", "--json", cwd=sweep.project)
    assert result.returncode == 0, result.stderr
    cancelled = {i for c in json.loads(result.stdout)["cancelled"] for i in parse_ranges(c["indices"])}
    assert cancelled == live
    sweep.cancelled |= {sweep.held[i] for i in cancelled}
    wait_for(lambda: not our_queue(sweep.job_ids), 60, "our tasks to leave squeue after cancel")

    status, truth = consistent_status(sweep, 2)
    check_against_truth(status, truth, 2 * P)
    assert status["running"] == status["pending"] == 0
    assert cancelled <= as_sets(status)["missing"]

"""Index state without Slurm: `orchestrator.state` with hand-built ledger records and a fake Slurm reader.

Each test writes an experiment and `SubmissionRecord`s (through `Ledger.write`, as submit does) into a
throwaway project, puts per-index exit status files and results on disk where the story needs them,
and answers `squeue`/`sacct` with text in Slurm's own formats (parsed by the real parsers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_slurm import FakeSlurm
from support import cli_env, orchestrator, submission_record, write_experiment

from orchestrator import cli, completeness, state
from orchestrator.completeness import ResultScanner, present_results
from orchestrator.config import load_config
from orchestrator.index_set import IndexSet
from orchestrator.ledger import Ledger, SubmissionRecord
from orchestrator.ledger import SubmissionState as Status
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.result_store import FindDone, StoreAnswer
from orchestrator.slurm import Slurm
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.state import (
    DONE,
    FAILED,
    MISSING,
    PENDING,
    RUNNING,
    ExperimentStatus,
    History,
    Observation,
    classify,
    read_history,
)
from orchestrator.submit import select_indices

REPO = Path(__file__).resolve().parent.parent
FAULTY = REPO / "tests" / "data" / "faulty" / "faulty.py"
LR = {"metaParameters": {"lr": [0.1, 0.01, 0.001]}}


def find_done(marker: str | None = None, scanner: ResultScanner | None = None) -> FindDone:
    def find(plan: ExperimentPlan, indices: IndexSet | None) -> StoreAnswer:
        return StoreAnswer("paths", present_results(plan, ".", marker, scanner, indices))

    return find


def gather(
    plans: list[ExperimentPlan],
    ledger: Ledger,
    slurm: Slurm | None,
    marker: str | None = None,
    scanner: ResultScanner | None = None,
    max_attempts: int = 3,
) -> list[ExperimentStatus]:
    return state.gather(plans, ledger, slurm, find_done(marker, scanner), max_attempts)


def chosen_indices(status: ExperimentStatus, retry_given_up: bool = False) -> tuple[list[int], list[int]]:
    chosen, given_up = select_indices(status, retry_given_up)
    return list(chosen), list(given_up)


def plan_of(relative: str, runs: int = 1) -> ExperimentPlan:
    return plan_experiment(relative, load_config("."), runs)


_clock = iter(range(10_000))


def record(
    ledger: Ledger,
    plan: ExperimentPlan,
    tasks: list[list[int]],
    job_id: str | None = "100",
    *,
    status: str = Status.SUBMITTED,
    executor: str = "slurm",
    data: dict | None = None,
    content_hash: str | None = None,
    cancelled: Iterable[int] = (),
    resources: dict | None = None,
) -> SubmissionRecord:
    """Write a submission record (created in order: later calls are newer attempts)."""
    tick = next(_clock)
    rec = submission_record(
        ledger,
        plan,
        tasks,
        job_id,
        status=status,
        executor=executor,
        experiment_hash=content_hash or plan.file.content_hash,
        experiment_data=data if data is not None else plan.file.data,
        resources=resources or {"time": "0:01:00", "mem-per-cpu": "1G"},
        created=f"2024-01-01T{tick // 3600:02d}:{tick // 60 % 60:02d}:{tick % 60:02d}.000+00:00",
        cancelled_tasks=list(cancelled),
    )
    ledger.write(rec)
    return rec


def exit_status(rec: SubmissionRecord, index: int, code: int) -> None:
    """The `<index>.status` file the job script writes when the index has finished."""
    Path(rec.log_dir).mkdir(parents=True, exist_ok=True)
    Path(rec.log_dir, f"{index}.status").write_text(f"{code}\n")


def make_result(plan: ExperimentPlan, index: int, marker: str | None = "DONE") -> Path:
    path = Path(plan.save_path(index))
    path.mkdir(parents=True, exist_ok=True)
    if marker:
        (path / marker).write_text("")
    return path


def states(status: ExperimentStatus) -> dict[int, str]:
    return {i: status.index(i).state for i in range(status.plan.total)}


def reasons(status: ExperimentStatus) -> dict[int, str | None]:
    return {i: status.index(i).reason for i in status.sets[FAILED]}


def sweep_of(n: int) -> dict:
    return {"metaParameters": {"x": list(range(n))}}


# -- reasons ---------------------------------------------------------------------------------------

END_STATES = [
    # sacct State, ExitCode -> reason, reason kind (for escalation), exit code
    ("TIMEOUT", "0:0", "TIMEOUT", "TIMEOUT", None),
    ("OUT_OF_MEMORY", "0:125", "OUT_OF_MEMORY", "OUT_OF_MEMORY", None),
    ("NODE_FAIL", "0:0", "NODE_FAIL", "NODE_FAIL", None),
    ("PREEMPTED", "0:15", "PREEMPTED", "PREEMPTED", None),
    ("CANCELLED by 0", "0:15", "CANCELLED by 0", "CANCELLED", None),
    ("BOOT_FAIL", "0:0", "BOOT_FAIL", "BOOT_FAIL", None),
    ("DEADLINE", "0:0", "DEADLINE", "DEADLINE", None),
    ("FAILED", "3:0", "FAILED exit 3", "FAILED", 3),
    ("FAILED", "137:0", "FAILED exit 137", "FAILED", 137),
]


def test_every_end_state_from_sacct_is_a_failure_with_its_reason(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(len(END_STATES)))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    record(ledger, plan, [[i] for i in range(len(END_STATES))], "100")
    sacct = "\n".join(f"100_{i}|tag|{state}|{code}|00:01:05" for i, (state, code, *_) in enumerate(END_STATES))
    slurm = FakeSlurm(sacct=sacct)
    (status,) = gather([plan], ledger, slurm)
    for index, (_, _, reason, kind, code) in enumerate(END_STATES):
        s = status.index(index)
        assert (s.state, s.reason, s.reason_kind, s.exit_code) == (FAILED, reason, kind, code), s
        assert s.attempts == 1
    assert slurm.squeue_calls == 1 and slurm.sacct_calls == [["100"]]
    assert status.to_json()["failed_reasons"]["TIMEOUT"] == "0"


def test_per_index_exit_status_files_give_each_index_of_a_bundle_its_own_code(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(6))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0, 1, 2], [3, 4, 5]], "200")
    for index, code in {0: 0, 1: 3, 2: 7, 3: 0, 4: 0, 5: 0}.items():
        exit_status(rec, index, code)
    for index in (0, 3, 4):
        make_result(plan, index)
    # the task's exit code is its first failing index's
    slurm = FakeSlurm(sacct="200_0|t|FAILED|3:0|00:00:02\n200_1|t|COMPLETED|0:0|00:00:02")
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: DONE, 1: FAILED, 2: FAILED, 3: DONE, 4: DONE, 5: MISSING}
    assert reasons(status) == {1: "FAILED exit 3", 2: "FAILED exit 7"}
    assert [status.index(i).exit_code for i in (1, 2)] == [3, 7]
    assert status.index(5).reason == "exited 0 but its result is not there"


def test_signals_at_a_timeout_or_oom_keep_the_task_reason(project: Path) -> None:
    """An index killed by Slurm's signal (143, 137 in its status file) failed for the task's reason."""
    write_experiment(project, "experiments/e/sweep.json", sweep_of(4))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0, 1], [2, 3]], "210")
    exit_status(rec, 0, 143)  # SIGTERM at the time limit; index 1 never started
    exit_status(rec, 2, 137)  # killed by the OOM killer; index 3 never started
    slurm = FakeSlurm(sacct="210_0|t|TIMEOUT|0:0|00:01:00\n210_1|t|OUT_OF_MEMORY|0:125|00:00:09")
    (status,) = gather([plan], ledger, slurm)
    assert reasons(status) == {0: "TIMEOUT", 1: "TIMEOUT", 2: "OUT_OF_MEMORY", 3: "OUT_OF_MEMORY"}
    assert [status.index(i).reason_kind for i in range(4)] == ["TIMEOUT", "TIMEOUT", "OUT_OF_MEMORY", "OUT_OF_MEMORY"]


def test_without_accounting_the_reason_is_unknown_and_nothing_crashes(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(4))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0], [1], [2], [3]], "300")
    exit_status(rec, 1, 3)
    slurm = FakeSlurm(squeue="300|3|PENDING|Priority|t|t", sacct=None, problem="sacct not found on PATH")
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: FAILED, 1: FAILED, 2: FAILED, 3: PENDING}
    assert reasons(status) == {
        0: "unknown (no accounting: sacct not found on PATH)",
        1: "FAILED exit 3",  # the exit status file needs no accounting
        2: "unknown (no accounting: sacct not found on PATH)",
    }


def test_without_sacct_on_path_the_real_reader_reports_unknown(project: Path, tmp_path_factory) -> None:
    """SlurmCommands with a PATH holding only a fake squeue: sacct is missing, status still works."""
    write_experiment(project, "experiments/e/sweep.json", sweep_of(2))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    record(ledger, plan, [[0], [1]], "310")
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '310|1|RUNNING|None|t|t'\n")
    (bin_dir / "squeue").chmod(0o755)
    commands = SlurmCommands(env={"PATH": str(bin_dir)}, attempts=1)
    (status,) = gather([plan], ledger, commands)
    assert states(status) == {0: FAILED, 1: RUNNING}
    assert reasons(status) == {0: "unknown (no accounting: sacct not found on PATH)"}


def test_a_task_gone_from_squeue_without_accounting_is_failed_unknown_not_running(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(3))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    record(ledger, plan, [[0], [1], [2]], "400")
    slurm = FakeSlurm(squeue="400|2|RUNNING|None|t|t", sacct="")
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: FAILED, 1: FAILED, 2: RUNNING}
    assert set(reasons(status).values()) == {"unknown (not in squeue, no accounting record)"}


def test_pending_and_running_come_from_squeue_and_need_no_sacct(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(5))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0], [1], [2], [3], [4]], "500")
    exit_status(rec, 4, 3)  # the index ended, the task is still completing
    queue = "\n".join(
        [
            "500|0|PENDING|JobArrayTaskLimit|t|t",
            "500|1|PENDING|Priority|t|t",
            "500|2|RUNNING|None|t|t",
            "500|3|COMPLETING|None|t|t",
            "500|4|COMPLETING|None|t|t",
            "999|0|RUNNING|None|someone-else|",  # not ours: ignored
        ]
    )
    slurm = FakeSlurm(squeue=queue, sacct="")
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: PENDING, 1: PENDING, 2: RUNNING, 3: RUNNING, 4: FAILED}
    assert status.index(0).reason == "JobArrayTaskLimit"
    assert status.index(4).reason == "FAILED exit 3"
    assert slurm.squeue_calls == 1 and slurm.sacct_calls == []  # every task was in the queue


def test_one_squeue_and_one_batched_sacct_for_several_experiments(project: Path) -> None:
    ledger = Ledger(Path("."))
    plans = []
    for name in ("a", "b"):
        write_experiment(project, f"experiments/{name}/sweep.json", sweep_of(4))
        plans.append(plan_of(f"experiments/{name}/sweep.json"))
    record(ledger, plans[0], [[0], [1]], "601")
    record(ledger, plans[0], [[2], [3]], "602")
    record(ledger, plans[1], [[0, 1]], "603")
    record(ledger, plans[1], [[2, 3]], "604")
    slurm = FakeSlurm(squeue="604|0|RUNNING|None|t|t", sacct="601_0|t|COMPLETED|0:0|00:00:01")
    statuses = gather(plans, ledger, slurm)
    assert slurm.squeue_calls == 1
    assert slurm.sacct_calls == [["601", "602", "603"]]  # finished jobs only, in one call
    assert states(statuses[1])[2] == RUNNING


# -- attempts, cancelled, intents -----------------------------------------------------------------


def test_latest_attempts_counts_attempts_and_skips_rejected_and_cancelled(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(4))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    first = record(ledger, plan, [[0], [1], [2]], "700")
    second = record(ledger, plan, [[0], [1]], "701", cancelled=[1])  # index 1 cancelled by us
    record(ledger, plan, [[0]], None, status=Status.REJECTED)  # sbatch refused: no job
    third = record(ledger, plan, [[0]], "702")
    history = read_history(plan, ledger.records(ledger.experiment_key(plan.path)), IndexSet())
    latest, attempts = history.latest, history.attempts
    assert history.edited_since == []
    assert {i: (a.record.tag, a.task_id) for i, a in latest.items()} == {
        0: (third.tag, 0),
        1: (second.tag, 1),
        2: (first.tag, 2),
    }
    assert dict(attempts) == {0: 3, 1: 1, 2: 1}

    slurm = FakeSlurm(sacct="700_2|t|FAILED|1:0|00:00:01")
    (status,) = gather([plan], ledger, slurm, max_attempts=4)
    assert states(status) == {0: FAILED, 1: MISSING, 2: FAILED, 3: MISSING}
    assert status.index(1).reason == "cancelled with orchestrator cancel"
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: FAILED, 1: MISSING, 2: FAILED, 3: MISSING}
    assert list(status.sets["given_up"]) == [0]  # failed 3 times: given up (a part of failed)
    chosen, given_up = chosen_indices(status)
    assert chosen == [1, 2, 3] and given_up == [0]
    chosen, given_up = chosen_indices(status, retry_given_up=True)
    assert chosen == [0, 1, 2, 3] and given_up == []


def test_an_interrupted_submit_is_found_in_squeue_by_its_tag(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(3))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    found = record(ledger, plan, [[0], [1]], None, status=Status.INTENT)
    record(ledger, plan, [[2]], None, status=Status.UNCONFIRMED)  # nowhere to be seen
    slurm = FakeSlurm(squeue=f"800|0|RUNNING|None|{found.tag}|{found.tag}\n800|1|PENDING|Priority|{found.tag}|")
    (status,) = gather([plan], ledger, slurm)
    assert states(status) == {0: RUNNING, 1: PENDING, 2: MISSING}
    assert [status.index(i).attempts for i in range(3)] == [0, 0, 0]  # an intent is not an attempt (yet)


# -- edited experiment files -----------------------------------------------------------------------


def test_an_edited_file_matches_indices_by_params(project: Path) -> None:
    """Old sweep lr [0.1, 0.01, 0.001] x 2 runs; new: reordered, 0.01 removed, 0.03 added."""
    write_experiment(project, "experiments/e/sweep.json", LR)
    old = plan_of("experiments/e/sweep.json", runs=2)
    ledger = Ledger(Path("."))
    # old index: 0 lr 0.1, 1 lr 0.01, 2 lr 0.001 (run 0); 3, 4, 5 the same in run 1
    rec = record(ledger, old, [[0], [1], [2], [3], [4], [5]], "900")
    exit_status(rec, 5, 3)  # old 5 = (0.001, run 1) failed with exit 3
    exit_status(rec, 2, 0)  # old 2 = (0.001, run 0) finished...
    old_result = make_result(old, 2)  # ...and wrote its result

    write_experiment(project, "experiments/e/sweep.json", {"metaParameters": {"lr": [0.001, 0.03, 0.1]}})
    new = plan_of("experiments/e/sweep.json", runs=2)
    assert new.file.content_hash != old.file.content_hash
    assert Path(new.save_path(0)) == old_result  # same params and run: same result path
    # new index: 0 lr 0.001, 1 lr 0.03, 2 lr 0.1 (run 0); 3, 4, 5 the same in run 1
    current = record(ledger, new, [[1]], "901")  # 0.03 run 0, submitted after the edit
    slurm = FakeSlurm(
        squeue="900|0|RUNNING|None|t|t\n900|3|PENDING|Priority|t|t\n901|0|PENDING|Priority|t|t",
        sacct="900_1|t|COMPLETED|0:0|00:00:01\n900_2|t|COMPLETED|0:0|00:00:01\n"
        "900_4|t|TIMEOUT|0:0|00:01:00\n900_5|t|FAILED|3:0|00:00:01",
    )
    (status,) = gather([new], ledger, slurm)
    assert states(status) == {0: DONE, 1: PENDING, 2: RUNNING, 3: FAILED, 4: MISSING, 5: PENDING}
    assert status.index(3).reason == "FAILED exit 3"  # old 5's status file, found under its old number
    assert status.index(2).last is not None and status.index(2).last.recorded_index == 0
    assert status.index(1).last is not None and status.index(1).last.record.tag == current.tag
    assert status.edited_since == [rec.tag]
    assert status.to_json()["edited_since_submission"] == [rec.tag]
    # nothing in flight goes out again; the failed and the never-submitted do
    chosen, _ = chosen_indices(status)
    assert chosen == [3, 4]


def test_status_says_when_the_file_changed_since_a_submission(project: Path, monkeypatch, capsys) -> None:
    write_experiment(project, "experiments/e/sweep.json", LR)
    ledger = Ledger(Path("."))
    record(ledger, plan_of("experiments/e/sweep.json"), [[0], [1], [2]], "910")
    write_experiment(project, "experiments/e/sweep.json", {"metaParameters": {"lr": [0.001, 0.1]}})
    monkeypatch.setattr(cli, "connect", lambda: FakeSlurm(squeue="910|0|RUNNING|None|t|t", sacct=""))
    assert cli.main(["status", "experiments/e/sweep.json"]) == 0
    out = capsys.readouterr().out
    assert "note: the experiment file changed since 1 submission(s)" in out
    assert "running 1" in out and "failed 1" in out  # 0.1 running (now index 1), 0.001 failed (index 0)


def test_a_task_that_starts_after_an_edit_runs_the_params_status_attributes_to_it(project: Path) -> None:
    """What a pending task does when Slurm starts it after the edit: run its job script, unchanged.

    Submitted locally (the same rendered script), then the file is edited (a value inserted) and
    task 1's script is run again as Slurm would run a still-pending task. Status says task 1 holds
    lr 0.01 (now index 2); the task must therefore compute lr 0.01, not whatever index 1 is today.
    """
    shutil.copy(FAULTY, project / "faulty.py")
    write_experiment(project, "experiments/e/sweep.json", {"metaParameters": {"behave": ["ok.a", "ok.b"]}})
    (project / "local.yaml").write_text("command: python faulty.py -e {experiment} -i {index}\n")
    env = cli_env()
    submitted = orchestrator(
        "submit", "experiments/e/sweep.json", "--cluster", "local.yaml", "--executor", "local", "--json", timeout=120
    )
    assert submitted.returncode == 0, submitted.stderr
    (submission,) = json.loads(submitted.stdout)["submissions"]
    shutil.rmtree(project / "results")  # as if nothing had run yet: the tasks are still pending
    write_experiment(project, "experiments/e/sweep.json", {"metaParameters": {"behave": ["ok.a", "ok.new", "ok.b"]}})
    new = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    (status,) = gather([new], ledger, None)
    holder = status.index(2).last  # ok.b: task 1 of the submission, by params
    assert holder is not None and holder.task_id == 1

    task_env = {**env, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "77", "SLURM_JOB_NAME": submission["tag"]}
    subprocess.run(["bash", submission["script"]], env=task_env, capture_output=True, timeout=120, check=True)
    assert Path(new.save_path(2)).is_dir(), "the task held for ok.b must write ok.b's result"
    assert not Path(new.save_path(1)).exists(), "it must not compute ok.new, which was never submitted"


# -- damaged records, vanished results, completeness -----------------------------------------------


def test_a_damaged_ledger_record_is_reported_with_its_path_and_skipped(project: Path, monkeypatch, capsys) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(3))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    good = record(ledger, plan, [[0]], "1000")
    broken = record(ledger, plan, [[1]], "1001")
    path = ledger.record_path(broken)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # torn write on a network filesystem
    (status,) = gather([plan], ledger, FakeSlurm(squeue="1000|0|RUNNING|None|t|t"))
    assert states(status) == {0: RUNNING, 1: MISSING, 2: MISSING}
    assert status.index(0).last is not None and status.index(0).last.record.tag == good.tag
    (note,) = status.notes
    assert str(path) in note and "damaged ledger record skipped" in note

    monkeypatch.setattr(cli, "connect", lambda: FakeSlurm(squeue="1000|0|RUNNING|None|t|t"))
    assert cli.main(["status", "experiments/e/sweep.json"]) == 0
    out = capsys.readouterr().out
    assert f"note: {path}: damaged ledger record skipped" in out


def test_a_result_that_vanished_makes_its_index_missing_again(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(2))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0], [1]], "1100")
    slurm_text = "1100_0|t|COMPLETED|0:0|00:00:01\n1100_1|t|COMPLETED|0:0|00:00:01"
    for index in (0, 1):
        exit_status(rec, index, 0)
        make_result(plan, index)
    (status,) = gather([plan], ledger, FakeSlurm(sacct=slurm_text))
    assert states(status) == {0: DONE, 1: DONE}
    shutil.rmtree(plan.save_path(1))
    (status,) = gather([plan], ledger, FakeSlurm(sacct=slurm_text))
    assert states(status) == {0: DONE, 1: MISSING}
    assert status.index(1).reason == "exited 0 but its result is not there"
    chosen, _ = chosen_indices(status)
    assert chosen == [1]


def test_completeness_with_a_marker(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(3))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    make_result(plan, 0, marker="DONE")
    make_result(plan, 1, marker=None)  # killed mid-write: the directory, no marker
    make_result(plan, 2, marker="other")
    (plain,) = gather([plan], ledger, None)
    assert states(plain) == {0: DONE, 1: DONE, 2: DONE}
    (marked,) = gather([plan], ledger, None, marker="DONE")
    assert states(marked) == {0: DONE, 1: MISSING, 2: MISSING}


def test_the_result_scanner_lists_each_directory_at_most_once(project: Path, monkeypatch) -> None:
    listed: list[str] = []
    real_listdir = os.listdir

    def counting_listdir(path: str) -> list[str]:
        listed.append(os.path.normpath(path))
        return real_listdir(path)

    write_experiment(project, "experiments/a/sweep.json", {"metaParameters": {"x": [1, 2, 3], "y": ["p", "q"]}})
    write_experiment(project, "experiments/b/sweep.json", {"metaParameters": {"x": [1, 2]}})
    plans = [plan_of("experiments/a/sweep.json", runs=3), plan_of("experiments/b/sweep.json", runs=2)]
    for index in (0, 1, 7, 17):
        make_result(plans[0], index, marker="DONE" if index != 7 else None)
    make_result(plans[1], 3)
    ledger = Ledger(Path("."))
    # only the scanner's own listings (the ledger lists its directories too)
    monkeypatch.setattr(completeness, "os", SimpleNamespace(**{**vars(os), "listdir": counting_listdir}))
    for marker in (None, "DONE"):
        listed.clear()
        scanner = ResultScanner(str(ledger.root))
        statuses = gather(plans, ledger, None, marker=marker, scanner=scanner)
        assert len(listed) == len(set(listed)), sorted(listed)
        assert scanner.listings == len(listed)
        assert [list(s.sets[DONE]) for s in statuses] == [[0, 1, 17] if marker else [0, 1, 7, 17], [3]]


def test_a_missing_subtree_costs_one_listing_however_many_indices_live_under_it(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", {"metaParameters": {"x": list(range(50))}})
    plan = plan_of("experiments/e/sweep.json", runs=2)
    scanner = ResultScanner(".")
    (status,) = gather([plan], Ledger(Path(".")), None, scanner=scanner)
    assert status.counts()[MISSING] == 100
    assert scanner.listings <= 2, scanner.listings  # results/e (the paths' common parent), nothing below


# -- the race between the queue and the disk ------------------------------------------------------


@pytest.mark.parametrize("queued", ["gone", "COMPLETING"])
def test_a_task_that_finishes_while_status_runs_is_not_reported_missing(project: Path, queued: str) -> None:
    """Task 1 writes its result, then its status file, then leaves the queue, just before squeue answers.

    gone: squeue no longer lists it; COMPLETING: squeue still does. Either way it is done (or, still
    queued, running): never missing, which would send it again.
    """
    write_experiment(project, "experiments/e/sweep.json", sweep_of(2))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[0], [1]], "1200")

    def task_1_finishes() -> None:
        make_result(plan, 1)
        exit_status(rec, 1, 0)

    queue = "1200|0|RUNNING|None|t|t" + ("\n1200|1|COMPLETING|None|t|t" if queued == "COMPLETING" else "")
    slurm = FakeSlurm(squeue=queue, sacct="1200_1|t|COMPLETED|0:0|00:00:30", on_squeue=task_1_finishes)
    (status,) = gather([plan], ledger, slurm)
    assert states(status)[0] == RUNNING
    assert states(status)[1] in (DONE, RUNNING), status.index(1)
    chosen, _ = chosen_indices(status)
    assert chosen == [], "nothing may be resubmitted: one index runs, the other is done"


# -- classify is pure -----------------------------------------------------------------------------


def test_classify_without_attempts_is_done_or_missing(project: Path) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(3))
    plan = plan_of("experiments/e/sweep.json")
    observed = Observation(plan, StoreAnswer("paths", IndexSet.of([1])), History({}, Counter(), [], []))
    status = classify(observed, max_attempts=3)
    assert [(i, status.index(i).state, status.index(i).attempts) for i in range(3)] == [
        (0, MISSING, 0),
        (1, DONE, 0),
        (2, MISSING, 0),
    ]


# -- the human output ------------------------------------------------------------------------------


def test_human_status_groups_failed_indices_by_reason_as_ranges(project: Path, monkeypatch, capsys) -> None:
    write_experiment(project, "experiments/e/sweep.json", sweep_of(10))
    plan = plan_of("experiments/e/sweep.json")
    ledger = Ledger(Path("."))
    rec = record(ledger, plan, [[i] for i in range(8)], "1300")
    for index in (0, 1, 2, 5):
        make_result(plan, index)
    exit_status(rec, 6, 3)
    sacct = "1300_3|t|TIMEOUT|0:0|00:01:00\n1300_4|t|TIMEOUT|0:0|00:01:00\n1300_7|t|OUT_OF_MEMORY|0:125|00:00:09"
    monkeypatch.setattr(cli, "connect", lambda: FakeSlurm(sacct=sacct))
    assert cli.main(["status", "experiments/e/sweep.json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "experiments/e/sweep.json  [############..................] 4/10 done"
        "  running 0  pending 0  failed 4  missing 2"
    )
    assert lines[1:] == ["  failed, FAILED exit 3: 6", "  failed, OUT_OF_MEMORY: 7", "  failed, TIMEOUT: 3-4"]

    assert cli.main(["status", "experiments/e/sweep.json", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["experiments"]
    assert entry["indices"] == {
        "done": "0-2,5",
        "running": "",
        "pending": "",
        "failed": "3-4,6-7",
        "missing": "8-9",
        "unknown": "",
        "given_up": "",
    }
    assert entry["failed_reasons"] == {"FAILED exit 3": "6", "OUT_OF_MEMORY": "7", "TIMEOUT": "3-4"}

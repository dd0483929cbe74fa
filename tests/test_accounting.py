"""Which accounting record speaks for a task (orchestrator.accounting), and what status makes of it.

The quirks come from real sacct/squeue output recorded on the test cluster (tests/data/slurm, see its
README): a stale range record after a cancel, tasks that left the queue before sacct knew, requeued
tasks (with and without `sacct -D`). NODE_FAIL and PREEMPTED cannot be produced on the shared
single-node cluster: their records are hand-built here, in the shape `sacct -D` prints for a requeue.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from fake_slurm import FakeSlurm
from hypothesis import given, settings
from hypothesis import strategies as st
from support import submission_record, write_experiment

from orchestrator import cli, state
from orchestrator.accounting import TASK_END_REASONS, record_rank, records_by_task, task_state_explains
from orchestrator.config import load_config
from orchestrator.control import last_log
from orchestrator.index_set import IndexSet
from orchestrator.ledger import Ledger, SubmissionRecord
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.result_store import finder
from orchestrator.slurm_formats import AccountingRecord, parse_ranges, parse_sacct
from orchestrator.state import DONE, FAILED, MISSING, PENDING, RUNNING, ExperimentStatus, IndexStatus
from orchestrator.submit import select_indices

DATA = Path(__file__).parent / "data" / "slurm"
EXPERIMENT = "experiments/e/sweep.json"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# -- a fake Slurm and a ledger, in Slurm's own text formats ----------------------------------------


def setup_sweep(n: int) -> tuple[ExperimentPlan, Ledger]:
    write_experiment(Path("."), EXPERIMENT, {"metaParameters": {"x": list(range(n))}})
    return plan_experiment(EXPERIMENT, load_config("."), 1), Ledger(Path("."))


def submitted(
    ledger: Ledger, plan: ExperimentPlan, job_id: str, tasks: list[list[int]], cancelled: Iterable[int] = ()
) -> SubmissionRecord:
    """The ledger record `submit` writes for one array (and `cancel` updates with the tasks it stopped)."""
    rec = submission_record(
        ledger,
        plan,
        tasks,
        job_id,
        resources={"time": "0:05:00", "mem-per-cpu": "100M"},
        created="2026-11-30T02:54:03.000+00:00",
        cancelled_tasks=list(cancelled),
    )
    ledger.write(rec)
    return rec


def exit_status(rec: SubmissionRecord, index: int, code: int) -> None:
    """The `<index>.status` file the job script writes when the index has finished."""
    Path(rec.log_dir).mkdir(parents=True, exist_ok=True)
    Path(rec.log_dir, f"{index}.status").write_text(f"{code}\n")


def make_result(plan: ExperimentPlan, index: int) -> None:
    Path(plan.save_path(index)).mkdir(parents=True, exist_ok=True)


def status_of(plan: ExperimentPlan, ledger: Ledger, slurm: FakeSlurm) -> ExperimentStatus:
    (status,) = state.gather([plan], ledger, slurm, finder(None, "."), max_attempts=3)
    return status


def attempts_of(plan: ExperimentPlan, ledger: Ledger) -> dict[int, int]:
    """Attempts per index as the ledger counts them, done indices included (status keeps them for the others)."""
    records = ledger.records(ledger.experiment_key(plan.path))
    return dict(state.read_history(plan, records, IndexSet()).attempts)


def entries(status: ExperimentStatus) -> list[IndexStatus]:
    return [status.index(i) for i in range(status.plan.total)]


def summary(status: ExperimentStatus) -> dict[int, tuple[str, str | None]]:
    return {s.index: (s.state, s.reason if s.state == FAILED else None) for s in entries(status)}


def failed_by_reason(status: ExperimentStatus) -> dict[str, list[int]]:
    return {reason: list(indices) for reason, indices in status.reasons(FAILED).items()}


def by_task(text: str) -> dict[tuple[str, int], tuple[str, int]]:
    return {key: (r.state, r.exit_code) for key, r in records_by_task(parse_sacct(text)).items()}


# -- the rule on recorded output -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sacct_stale_range_after_cancel.txt", "sacct_stale_range_later.txt"])
def test_a_task_own_record_wins_over_a_stale_range_record(name: str) -> None:
    records = parse_sacct(recorded(name))
    assert [(r.state, r.grouped) for r in records if r.job_id == "400_4"] == [("FAILED", False), ("CANCELLED", True)]
    chosen = by_task(recorded(name))
    assert chosen == {("400", t): ("FAILED", 3) for t in range(5)} | {
        ("400", t): ("CANCELLED", 0) for t in range(5, 10)
    }


def test_the_latest_attempt_of_a_requeued_task_wins() -> None:
    # -D prints every attempt: the earlier one REQUEUED (keeping its 3:0), the later one with a later Submit
    done = parse_sacct(recorded("sacct_D_requeue_3_done.txt"))
    assert [(r.state, r.submitted, r.db_index) for r in done if r.job_id == "584_1"] == [
        ("REQUEUED", "2026-11-30T03:02:38", 1033),
        ("COMPLETED", "2026-11-30T03:02:43", 1037),
    ]
    assert (
        by_task(recorded("sacct_D_requeue_3_done.txt"))
        == by_task(recorded("sacct_requeue_3_done.txt"))
        == {
            ("584", 0): ("FAILED", 3),
            ("584", 1): ("COMPLETED", 0),
            ("584", 2): ("COMPLETED", 0),
        }
    )
    pending = by_task(recorded("sacct_D_requeue_pending.txt"))
    assert (
        pending
        == by_task(recorded("sacct_requeue_pending.txt"))
        == {("691", 0): ("FAILED", 3), ("691", 1): ("PENDING", 0)}
    )


def test_attempts_in_the_same_second_are_ordered_by_dbindex_then_requeued_loses() -> None:
    first = AccountingRecord("7_1", "7", 1, "NODE_FAIL", "", 0, 0, 60, "n", False, "2026-01-01T10:00:00", 11)
    second = replace(first, state="COMPLETED", db_index=12)
    assert records_by_task([second, first])[("7", 1)] == second == records_by_task([first, second])[("7", 1)]
    # the older field list has neither: a REQUEUED record is an attempt that a later one replaced
    old, new = replace(first, state="REQUEUED", submitted=None, db_index=None), replace(second, db_index=None)
    assert records_by_task([new, old])[("7", 1)] == new == records_by_task([old, new])[("7", 1)]


def test_non_array_records_have_no_task_to_speak_for() -> None:
    records = parse_sacct("31|single|PENDING|0:0|00:00:00|2026-11-30T02:40:32|52\n47+0|het|CANCELLED|0:0||None|60\n")
    assert records_by_task(records) == {}


# -- order and repetition do not matter (hypothesis) -----------------------------------------------

RECORDED = [
    "sacct_stale_range_after_cancel.txt",
    "sacct_at_cancel_lagging.txt",
    "sacct_first_tasks_left.txt",
    "sacct_D_requeue_3_done.txt",
    "sacct_D_requeue_pending.txt",
    "sacct_requeue_2_requeued.txt",
]

record_strategy = st.builds(
    AccountingRecord,
    job_id=st.just(""),
    array_job_id=st.sampled_from(["7", "8"]),
    task_id=st.integers(0, 3),
    state=st.sampled_from(sorted(TASK_END_REASONS | {"COMPLETED", "FAILED", "PENDING", "RUNNING", "REQUEUED"})),
    reason_detail=st.sampled_from(["", "by 0"]),
    exit_code=st.integers(0, 3),
    signal=st.sampled_from([0, 9, 15]),
    elapsed_seconds=st.none() | st.integers(0, 5),
    name=st.sampled_from(["n", "a|b"]),
    grouped=st.booleans(),
    submitted=st.none() | st.sampled_from(["2026-01-01T10:00:00", "2026-01-01T10:00:01", "2026-01-01T10:05:00"]),
    db_index=st.none() | st.integers(1, 4),
)


@given(
    records=st.lists(record_strategy, max_size=12)
    | st.sampled_from(RECORDED).map(lambda name: parse_sacct(recorded(name))),
    seed=st.randoms(use_true_random=False),
    repeats=st.lists(st.integers(0, 20), max_size=8),
)
def test_the_choice_does_not_depend_on_order_or_repeated_records(
    records: list[AccountingRecord], seed: random.Random, repeats: list[int]
) -> None:
    expected = records_by_task(records)
    shuffled = records + [records[i % len(records)] for i in repeats] if records else []
    seed.shuffle(shuffled)
    assert records_by_task(shuffled) == expected
    for (job, task), chosen in expected.items():
        covering = [r for r in records if (r.array_job_id, r.task_id) == (job, task)]
        own = [r for r in covering if not r.grouped]
        assert chosen.grouped == (not own), "a task's own record wins over any range record"
        later = [
            r
            for r in own or covering
            if (r.submitted or "", r.db_index or -1) > (chosen.submitted or "", chosen.db_index or -1)
        ]
        assert not later, "the latest attempt wins"
        assert record_rank(chosen) == max(map(record_rank, covering))


# -- the order of evidence -------------------------------------------------------------------------


def _ended(state: str) -> AccountingRecord:
    return AccountingRecord("7_0", "7", 0, state, "", 0, 0, 60, "n")


@pytest.mark.parametrize("state", sorted(TASK_END_REASONS))
def test_the_index_exit_code_wins_unless_a_signal_killed_it_in_a_task_slurm_stopped(state: str) -> None:
    assert task_state_explains(None, _ended(state))  # no status file: the task's end state is all there is
    assert task_state_explains(143, _ended(state)) and task_state_explains(137, _ended(state))
    assert not task_state_explains(3, _ended(state)) and not task_state_explains(0, _ended(state))
    assert not task_state_explains(128, _ended(state))


@pytest.mark.parametrize("state", ["COMPLETED", "FAILED", "PENDING", "RUNNING", "REQUEUED"])
def test_a_task_slurm_did_not_stop_never_explains_an_index(state: str) -> None:
    assert not task_state_explains(None, _ended(state)) and not task_state_explains(143, _ended(state))
    assert not task_state_explains(None, None)


# -- status on the recorded quirks -----------------------------------------------------------------


@pytest.mark.parametrize("with_status_files", [True, False])
def test_the_issue_an_index_that_failed_before_a_cancel_is_not_reported_cancelled(
    project: Path, with_status_files: bool
) -> None:
    """Job 400: tasks 0-4 exit 3, then `cancel` stopped 5-9; sacct's range still covers 4, as CANCELLED."""
    plan, ledger = setup_sweep(10)
    rec = submitted(ledger, plan, "400", [[i] for i in range(10)], cancelled=range(5, 10))
    if with_status_files:
        for index in range(5):
            exit_status(rec, index, 3)
    for name in ("sacct_stale_range_after_cancel.txt", "sacct_stale_range_later.txt"):
        status = status_of(plan, ledger, FakeSlurm(sacct=recorded(name)))
        assert failed_by_reason(status) == {"FAILED exit 3": [0, 1, 2, 3, 4]}
        assert list(status.sets[MISSING]) == [5, 6, 7, 8, 9]
        assert [s.reason_kind for s in entries(status)[:5]] == ["FAILED"] * 5


def test_a_quick_timeout_is_not_masked_by_a_stale_range_and_keeps_its_escalation(project: Path) -> None:
    """The recorded shape with task 4 ended by its time limit (no status file: the index was killed)."""
    plan, ledger = setup_sweep(10)
    submitted(ledger, plan, "400", [[i] for i in range(10)], cancelled=range(5, 10))
    sacct = recorded("sacct_stale_range_after_cancel.txt").replace(
        "400_4|acctrec|stale|FAILED|3:0", "400_4|acctrec|stale|TIMEOUT|0:0"
    )
    status = status_of(plan, ledger, FakeSlurm(sacct=sacct))
    four = status.index(4)
    assert (four.state, four.reason, four.reason_kind) == (FAILED, "TIMEOUT", "TIMEOUT")


def test_tasks_that_left_the_queue_before_sacct_recorded_them(project: Path) -> None:
    """Job 389: 0-4 ended and left squeue; sacct still has 4 inside the pending range; 5-9 wait."""
    plan, ledger = setup_sweep(10)
    rec = submitted(ledger, plan, "389", [[i] for i in range(10)])
    slurm = FakeSlurm(squeue=recorded("squeue_r_first_tasks_left.txt"), sacct=recorded("sacct_first_tasks_left.txt"))
    for index in range(5):
        exit_status(rec, index, 3)
    status = status_of(plan, ledger, slurm)
    assert failed_by_reason(status) == {"FAILED exit 3": [0, 1, 2, 3, 4]}
    assert list(status.sets[PENDING]) == [5, 6, 7, 8, 9]
    assert {status.index(i).reason for i in range(5, 10)} == {"JobArrayTaskLimit"}
    # without its status file, the range's PENDING for a task gone from the queue is not taken as news
    Path(rec.log_dir, "4.status").unlink()
    assert summary(status_of(plan, ledger, slurm))[4] == (FAILED, "unknown (sacct still says PENDING)")


def test_at_the_moment_of_the_cancel_sacct_lagged_behind(project: Path) -> None:
    """Job 400 read just before the cancel: no record of task 3, task 4 still in the pending range."""
    plan, ledger = setup_sweep(10)
    rec = submitted(ledger, plan, "400", [[i] for i in range(10)])
    for index in range(5):
        exit_status(rec, index, 3)
    queue = "".join(f"400|{t}|PENDING|JobArrayTaskLimit|acctrec|stale|(null)\n" for t in range(5, 10))
    status = status_of(plan, ledger, FakeSlurm(squeue=queue, sacct=recorded("sacct_at_cancel_lagging.txt")))
    assert failed_by_reason(status) == {"FAILED exit 3": [0, 1, 2, 3, 4]}
    assert list(status.sets[PENDING]) == [5, 6, 7, 8, 9]


def test_a_requeued_task_first_failure_does_not_stick_and_counts_once(project: Path) -> None:
    """Job 584: tasks 1 and 2 requeued (1 after it failed with 3); their second attempt exits 0."""
    plan, ledger = setup_sweep(3)
    rec = submitted(ledger, plan, "584", [[0], [1], [2]])
    exit_status(rec, 0, 3)
    exit_status(rec, 1, 3)
    first = status_of(
        plan, ledger, FakeSlurm(recorded("squeue_r_requeue_1_failed.txt"), recorded("sacct_requeue_1_failed.txt"))
    )
    assert summary(first) == {0: (FAILED, "FAILED exit 3"), 1: (FAILED, "FAILED exit 3"), 2: (RUNNING, None)}

    requeued = status_of(
        plan, ledger, FakeSlurm(recorded("squeue_r_requeue_2_requeued.txt"), recorded("sacct_requeue_2_requeued.txt"))
    )
    assert summary(requeued) == {0: (FAILED, "FAILED exit 3"), 1: (PENDING, None), 2: (PENDING, None)}
    assert [s.reason for s in entries(requeued)[1:]] == ["BeginTime", "BeginTime"]
    chosen, _ = select_indices(requeued, retry_given_up=False)
    assert list(chosen) == [0], "a requeued index is queued: it is not sent again"

    for index in (1, 2):
        exit_status(rec, index, 0)  # the second attempt rewrites the status file
        make_result(plan, index)
    for sacct in ("sacct_requeue_3_done.txt", "sacct_D_requeue_3_done.txt"):
        done = status_of(plan, ledger, FakeSlurm(sacct=recorded(sacct)))
        assert summary(done) == {0: (FAILED, "FAILED exit 3"), 1: (DONE, None), 2: (DONE, None)}
    assert [s.attempts for s in entries(first) + entries(requeued)] == [1] * 6
    assert attempts_of(plan, ledger) == {0: 1, 1: 1, 2: 1}  # done ones too: the requeue is one attempt


def test_a_requeued_task_pending_again_with_duplicates_from_sacct_d(project: Path) -> None:
    plan, ledger = setup_sweep(2)
    rec = submitted(ledger, plan, "691", [[0], [1]])
    exit_status(rec, 0, 3)
    exit_status(rec, 1, 3)  # from the first attempt: the requeued one has not started
    for sacct in ("sacct_requeue_pending.txt", "sacct_D_requeue_pending.txt"):
        status = status_of(plan, ledger, FakeSlurm(recorded("squeue_r_requeue_pending.txt"), recorded(sacct)))
        assert summary(status) == {0: (FAILED, "FAILED exit 3"), 1: (PENDING, None)}
        assert status.index(1).attempts == 1


def test_a_bundle_task_state_is_not_each_index_state(project: Path) -> None:
    """Index 0 exits 3, then index 1 runs into the time limit: the task says TIMEOUT for both."""
    plan, ledger = setup_sweep(2)
    rec = submitted(ledger, plan, "700", [[0, 1]])
    exit_status(rec, 0, 3)
    status = status_of(plan, ledger, FakeSlurm(sacct="700_0|t|TIMEOUT|0:0|00:05:00|2026-11-30T03:00:00|9\n"))
    assert summary(status) == {0: (FAILED, "FAILED exit 3"), 1: (FAILED, "TIMEOUT")}
    assert [s.reason_kind for s in entries(status)] == ["FAILED", "TIMEOUT"]


# Hand-built (the shared single-node cluster can produce neither): what `sacct -D` prints for a task
# requeued after its node failed or it was preempted. Without -D only the last line of each is printed.
NODE_FAIL_REQUEUED = """\
800_0|t|NODE_FAIL|0:0|00:02:10|2026-11-30T03:00:00|21
800_0|t|PENDING|0:0|00:00:00|2026-11-30T03:02:11|25
"""
PREEMPTED_REQUEUED = """\
800_0|t|PREEMPTED|0:15|00:02:10|2026-11-30T03:00:00|21
800_0|t|COMPLETED|0:0|00:04:00|2026-11-30T03:02:11|25
"""


def test_node_fail_with_requeue_is_pending_then_by_its_latest_attempt(project: Path) -> None:
    plan, ledger = setup_sweep(1)
    submitted(ledger, plan, "800", [[0]])
    queued = FakeSlurm("800|0|PENDING|BeginTime|t|t\n", NODE_FAIL_REQUEUED)
    assert summary(status_of(plan, ledger, queued)) == {0: (PENDING, None)}
    # gone from the queue while sacct has not recorded the new attempt yet: only the NODE_FAIL one
    lagging = FakeSlurm(sacct=NODE_FAIL_REQUEUED.splitlines()[0])
    assert summary(status_of(plan, ledger, lagging)) == {0: (FAILED, "NODE_FAIL")}
    # both attempts recorded, in either order: the new one speaks (pending in sacct, not yet in squeue's view)
    for order in (NODE_FAIL_REQUEUED, "\n".join(reversed(NODE_FAIL_REQUEUED.splitlines()))):
        assert summary(status_of(plan, ledger, FakeSlurm(sacct=order))) == {
            0: (FAILED, "unknown (sacct still says PENDING)")
        }


def test_preempted_with_requeue_the_completed_attempt_wins(project: Path) -> None:
    plan, ledger = setup_sweep(1)
    rec = submitted(ledger, plan, "800", [[0]])
    exit_status(rec, 0, 143)  # SIGTERM at the preemption
    assert summary(status_of(plan, ledger, FakeSlurm(sacct=PREEMPTED_REQUEUED.splitlines()[0]))) == {
        0: (FAILED, "PREEMPTED")
    }
    assert summary(status_of(plan, ledger, FakeSlurm("800|0|PENDING|BeginTime|t|t\n", PREEMPTED_REQUEUED))) == {
        0: (PENDING, None)
    }
    exit_status(rec, 0, 0)
    make_result(plan, 0)
    for order in (PREEMPTED_REQUEUED, "\n".join(reversed(PREEMPTED_REQUEUED.splitlines()))):
        status = status_of(plan, ledger, FakeSlurm(sacct=order))
        assert summary(status) == {0: (DONE, None)} and attempts_of(plan, ledger) == {0: 1}


# -- status does not depend on the order of sacct's lines (hypothesis, through gather) ---------------


def test_status_of_the_recorded_quirks_does_not_depend_on_line_order_or_repeats(project: Path) -> None:
    plan, ledger = setup_sweep(10)
    rec = submitted(ledger, plan, "400", [[i] for i in range(10)], cancelled=range(5, 10))
    exit_status(rec, 2, 3)  # only some status files: the others are decided by accounting alone
    lines = recorded("sacct_stale_range_after_cancel.txt").splitlines()
    expected = {i: (FAILED, "FAILED exit 3") for i in range(5)} | {i: (MISSING, None) for i in range(5, 10)}

    @settings(max_examples=40, deadline=None)
    @given(order=st.permutations(lines), repeats=st.lists(st.sampled_from(lines), max_size=6))
    def check(order: list[str], repeats: list[str]) -> None:
        text = "\n".join(order + repeats)
        assert summary(status_of(plan, ledger, FakeSlurm(sacct=text))) == expected

    check()


# -- logs says what status says -------------------------------------------------------------------


def test_logs_shows_the_same_reason_as_status(project: Path, monkeypatch, capsys) -> None:
    """Job 400 with a stale range: 4 failed by itself, 5 was cancelled by someone else while pending."""
    plan, ledger = setup_sweep(10)
    rec = submitted(ledger, plan, "400", [[i] for i in range(10)], cancelled=range(6, 10))
    Path(rec.log_dir).mkdir(parents=True)
    Path(rec.log_dir, "4.log").write_text("=== orchestrator: index 4 exited with code 3\n")
    slurm = FakeSlurm(sacct=recorded("sacct_stale_range_after_cancel.txt"))
    monkeypatch.setattr(cli, "connect", lambda: slurm)
    assert cli.main(["status", EXPERIMENT, "--json"]) == 0
    reasons = json.loads(capsys.readouterr().out)["experiments"][0]["failed_reasons"]
    assert reasons == {"FAILED exit 3": "0-4", "CANCELLED by 0": "5"}
    for reason, indices in reasons.items():
        for index in parse_ranges(indices):
            assert cli.main(["logs", EXPERIMENT, str(index)]) == 0
            header = capsys.readouterr().out.splitlines()[0]
            assert f"job 400_{index}, failed ({reason}), attempt 1" in header, header
    assert "failed (FAILED exit 3)" in last_log(plan, 4, ledger, slurm, finder(None, "."), 3).header

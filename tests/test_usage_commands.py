"""The usage figures wired into the commands, with the one fake Slurm and recorded sacct output:
`usage` (one batched sacct, remembered --runs, edited files, no accounting, --plot), the cost and
confirmation of `submit`, `submit --right-size`, `status --by`, and the new profile keys.

The recorded jobs (tests/data/slurm/README.md) ran tests/data/usage/hog.py: the index of size s holds
50 x s MB for 5 x s seconds (sizes 1, 3, 5, 8), under `time: 0:07:00`, `mem_per_cpu: 4000M`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_slurm import FakeSlurm
from hypothesis import given, settings
from hypothesis import strategies as st
from support import submission_record, write_experiment

from orchestrator import cli
from orchestrator.breakdown import Breakdown, by_parameter, resolve_axes, status_breakdown
from orchestrator.completeness import present_results
from orchestrator.config import load_config
from orchestrator.cost import CostSummary
from orchestrator.errors import EnvironmentFailure, UserError
from orchestrator.executors import SlurmExecutor
from orchestrator.index_set import IndexSet
from orchestrator.ledger import Ledger, SubmissionRecord
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.profile import ClusterProfile, load_profile
from orchestrator.result_store import StoreAnswer
from orchestrator.slurm_formats import PartitionLimits, parse_memory, parse_time
from orchestrator.state import gather
from orchestrator.submit import ArrayPlan, Resources, SubmitOptions, Submitter, planned_cost, right_sized
from orchestrator.sweep import Sweep
from orchestrator.usage import Sizing, Suggestion, collect

DATA = Path(__file__).parent / "data" / "slurm"
HOG = {"agent": "Hog", "metaParameters": {"size": [1, 3, 5, 8]}}
EXPERIMENT = "experiments/hog/sweep.json"
RECORDED_591 = (DATA / "sacct_usage_task1.txt").read_text()  # job 591: indices 0-3, one per task
RECORDED_386_388 = (DATA / "sacct_usage_freq1.txt").read_text()
_tick = iter(range(10_000))


def plan_of(relative: str = EXPERIMENT, runs: int = 1) -> ExperimentPlan:
    return plan_experiment(relative, load_config("."), runs)


def record(
    ledger: Ledger,
    plan: ExperimentPlan,
    tasks: list[list[int]],
    job_id: str,
    *,
    data: dict | None = None,
    runs: int | None = 1,
    resources: dict | None = None,
) -> SubmissionRecord:
    """A submission record as submit writes it (later calls are newer)."""
    tick = next(_tick)
    rec = submission_record(
        ledger,
        plan,
        tasks,
        job_id,
        experiment_hash="old" if data is not None else plan.file.content_hash,
        experiment_data=data if data is not None else plan.file.data,
        resources=resources or {"time": "0:07:00", "mem-per-cpu": "4000M"},
        runs=runs,
        created=f"2024-01-01T00:{tick // 60 % 60:02d}:{tick % 60:02d}.000+00:00",
    )
    ledger.write(rec)
    return rec


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slurm: object, *argv: str):
    monkeypatch.setattr(cli, "connect", lambda: slurm)
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hog(project: Path) -> ExperimentPlan:
    write_experiment(project, EXPERIMENT, HOG)
    return plan_of()


# -- usage -------------------------------------------------------------------------------------------


def test_usage_json_has_the_issue_shape_and_the_recorded_figures(hog, monkeypatch, capsys) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=RECORDED_591)
    code, out, _ = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT, "--json")
    assert code == 0
    (u,) = json.loads(out)["experiments"]
    assert u["experiment"] == EXPERIMENT and u["tasks"] == 4
    # by hand from sacct_usage_task1.txt: Elapsed 5, 15, 25, 40 s; MaxRSS 79876K .. 438052K; 420 s asked
    assert u["elapsed_s"] == {"min": 5, "median": 20.0, "p95": 40, "max": 40}
    assert u["max_rss_mb"] == {
        "min": round(79876 / 1024, 1),
        "median": round((182180 + 284612) / 2 / 1024, 1),
        "p95": round(438052 / 1024, 1),
        "max": round(438052 / 1024, 1),
    }
    assert u["requested"]["time_s"] == 420 and u["requested"]["mem_per_cpu_mb"] == 4000.0
    assert u["cpu_hours_used"] == round((5 + 15 + 25 + 40) / 3600, 4)
    assert u["cpu_hours_requested"] == round(4 * 420 / 3600, 4)
    # max x 1.25, rounded up: 50 s -> 1 min; 427.8 MB x 1.25 = 534.7 -> 535M
    assert (u["suggested"]["time"], u["suggested"]["mem_per_cpu"]) == ("0:01:00", "535M")
    assert slurm.usage_calls == [["591"]]


def test_usage_text_and_a_profile_that_sizes_with_p95_and_more_headroom(hog, monkeypatch, capsys, project) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    (project / "prof.yaml").write_text("right_size_headroom: 2\nright_size_statistic: p95\n")
    code, out, _ = run_cli(monkeypatch, capsys, FakeSlurm(usage=RECORDED_591), "usage", EXPERIMENT)
    assert code == 0
    assert out.splitlines()[0] == f"{EXPERIMENT}: 4 finished task(s): 4 COMPLETED"
    assert "elapsed   min 5 s  median 20 s  p95 40 s  max 40 s  of 0:07:00 asked" in out
    assert "suggested time 0:01:00  mem_per_cpu 535M" in out
    code, out, _ = run_cli(
        monkeypatch, capsys, FakeSlurm(usage=RECORDED_591), "usage", EXPERIMENT, "--cluster", "prof.yaml", "--json"
    )
    (u,) = json.loads(out)["experiments"]
    assert u["suggested"]["time"] == "0:02:00"  # 40 s x 2 = 80 s -> 2 min
    assert parse_memory(u["suggested"]["mem_per_cpu"]) == math.ceil(438052 / 1024 * 2)


def test_one_batched_sacct_for_every_experiment(project, monkeypatch, capsys) -> None:
    write_experiment(project, EXPERIMENT, HOG)
    write_experiment(
        project, "experiments/hog/bundled.json", {"agent": "Hog", "metaParameters": {"size": list(range(8))}}
    )
    ledger = Ledger(Path("."))
    record(ledger, plan_of(), [[0], [1], [2], [3]], "591")
    bundled = plan_of("experiments/hog/bundled.json")
    record(ledger, bundled, [[4, 5], [6, 7]], "386")
    record(ledger, bundled, [[0], [1], [2], [3]], "388")
    slurm = FakeSlurm(usage=RECORDED_591 + RECORDED_386_388)
    code, out, _ = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT, "experiments/hog/bundled.json", "--json")
    assert code == 0
    assert slurm.usage_calls == [["386", "388", "591"]]
    assert slurm.calls["sacct_usage"] == 1 and slurm.calls["sacct"] == 0 and slurm.calls["squeue"] == 0
    first, second = json.loads(out)["experiments"]
    assert (first["tasks"], second["tasks"]) == (4, 3)  # 386_0, 386_1, 388_0 completed
    assert second["states"] == {"COMPLETED": 3, "FAILED": 1, "TIMEOUT": 2}
    # never below what a failed attempt needed: 388's TIMEOUTs ran out of 1:00 and had used 828 MB on 2 CPUs
    assert parse_time(second["suggested"]["time"]) >= 1.25 * 66  # the bundle of 66 s is the largest completed
    assert parse_memory(second["suggested"]["mem_per_cpu"]) >= 1.25 * 847900 / 1024 / 2


def test_usage_matches_indices_to_todays_file_after_an_edit(hog, monkeypatch, capsys, project) -> None:
    """Submitted as sizes 1, 3, 5, 8; the file now lists 8, 5, 3, 1, 13: task 3 (size 8) is index 0 today."""
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591", data=HOG)
    write_experiment(project, EXPERIMENT, {"agent": "Hog", "metaParameters": {"size": [8, 5, 3, 1, 13]}})
    (u,) = collect([plan_of()], Ledger(Path(".")), FakeSlurm(usage=RECORDED_591))
    assert dict(u.task_indices) == {("591", 0): [3], ("591", 1): [2], ("591", 2): [1], ("591", 3): [0]}
    assert u.index_seconds == {3: 5.0, 2: 15.0, 1: 25.0, 0: 40.0}
    rows = u.by_parameter["metaParameters.size"]
    assert rows["8"]["elapsed_s_median"] == 40 and rows["1"]["elapsed_s_median"] == 5 and "13" not in rows


def test_usage_plans_as_last_submitted(project, monkeypatch, capsys) -> None:
    write_experiment(project, EXPERIMENT, {"agent": "Hog", "metaParameters": {"size": [1, 3]}})
    record(Ledger(Path(".")), plan_of(runs=2), [[0], [1], [2], [3]], "591", runs=2)
    code, out, err = run_cli(monkeypatch, capsys, FakeSlurm(usage=RECORDED_591), "usage", EXPERIMENT, "--json")
    assert code == 0
    assert "--runs 2 as last submitted" in err
    (u,) = json.loads(out)["experiments"]
    assert u["tasks"] == 4


def test_usage_without_accounting_exits_1_in_one_line(hog, monkeypatch, capsys) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=None, problem="sacct: Slurm accounting storage is disabled")
    code, out, err = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT)
    assert code == 1 and out == ""
    assert (
        err
        == "orchestrator: error: no Slurm accounting to read usage from: sacct: Slurm accounting storage is disabled\n"
    )
    code, _, err = run_cli(monkeypatch, capsys, None, "usage", EXPERIMENT)
    assert code == 1 and len(err.splitlines()) == 1 and "Slurm is not available here" in err


def test_usage_of_an_experiment_never_sent_to_slurm_asks_nothing(hog, monkeypatch, capsys) -> None:
    slurm = FakeSlurm(usage=None)
    code, out, _ = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT, "--json")
    assert code == 0 and slurm.calls["sacct_usage"] == 0
    (u,) = json.loads(out)["experiments"]
    assert u["tasks"] == 0 and u["elapsed_s"] is None and u["suggested"]["time"] is None


def test_usage_plot_writes_a_png(hog, monkeypatch, capsys, project) -> None:
    pytest.importorskip("matplotlib")
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=RECORDED_591, sacct="")
    code, out, _ = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT, "--plot", "u.png")
    assert code == 0 and out.splitlines()[-1] == "plot: u.png"
    assert (project / "u.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli(monkeypatch, capsys, slurm, "usage", EXPERIMENT, "--plot", "no/such/dir/u.png")
    assert code == 2 and len(err.splitlines()) == 1 and "--plot no/such/dir/u.png: cannot write it" in err


# -- submit: cost and confirmation -------------------------------------------------------------------


def submitter(
    profile: ClusterProfile,
    slurm: FakeSlurm,
    options: SubmitOptions | None = None,
    confirm=None,
    announced: list[CostSummary] | None = None,
) -> Submitter:
    ledger = Ledger(Path("."))

    def find_done(plan: ExperimentPlan, indices: IndexSet | None) -> StoreAnswer:
        return StoreAnswer("paths", present_results(plan, ".", None, None, indices))

    announce = None if announced is None else announced.append
    return Submitter(ledger, profile, SlurmExecutor(slurm), slurm, find_done, options, confirm, announce)


def thirty(project: Path) -> ExperimentPlan:
    write_experiment(
        project, "experiments/lr/sweep.json", {"metaParameters": {"lr": [0.1, 0.01, 0.001], "s": list(range(10))}}
    )
    return plan_of("experiments/lr/sweep.json")


def test_cost_of_a_dry_run_by_hand(project) -> None:
    """30 indices, MaxArraySize 11 (arrays of 11, 11, 8), hours(3) = 10,799 s, 2 CPUs, 2 GPUs, 8G per CPU."""
    plan = thirty(project)
    profile = ClusterProfile(hours=3, gigs=8, cpus_per_task=2, gpus="a100:2", allocation=40)
    announced: list[CostSummary] = []
    slurm = FakeSlurm(max_array_size=11)
    report = submitter(profile, slurm, SubmitOptions(dry_run=True), announced=announced).submit([plan])
    hours = 30 * 10_799 / 3600  # task-hours: 89.99
    core_equivalent_hours = hours * 2 * (8 / 4)  # 2 CPUs, 8G per CPU = 2 core-equivalents of 4G each
    assert report.to_json()["cost"] == {
        "tasks": 30,
        "indices": 30,
        "cpu_hours": round(hours * 2, 4),
        "gpu_hours": round(hours * 2, 4),
        "core_years": round(core_equivalent_hours / 8760, 6),
        "allocation_share": round(core_equivalent_hours / 8760 / 40, 6),
        "expected": None,
        "confirm_above": None,
    }
    (summary,) = announced
    assert cli.display.cost_line(summary) == (
        "cost: 30 indices in 30 task(s), 179.98 CPU-hours, 179.98 GPU-hours at the requested limits (at most); "
        f"{core_equivalent_hours / 8760:.3g} core-years, {core_equivalent_hours / 8760 / 40:.2%} of the 40 core-year "
        "allocation"
    )
    assert slurm.calls["sbatch"] == 0


def test_expected_cost_from_the_measured_run_times(hog) -> None:
    """Indices 0-3 ran (job 591: 5 + 15 + 25 + 40 s, mean 21.25 s); their results are gone: all four go again."""
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=RECORDED_591, sacct="")
    report = submitter(ClusterProfile(time="0:07:00"), slurm, SubmitOptions(dry_run=True)).submit([hog])
    cost = report.to_json()["cost"]
    assert cost["cpu_hours"] == round(4 * 420 / 3600, 4)
    assert cost["expected"]["cpu_hours"] == round(4 * 21.25 / 3600, 4)
    assert slurm.calls["sacct_usage"] == 1


def test_planned_cost_of_bundles_uses_each_task_s_share() -> None:
    """A task of 4 indices that took 80 s measured 20 s per index: a task of 4 is expected to take 80 s, of 2, 40 s."""
    plan = type("P", (), {"path": "e.json"})()
    array = ArrayPlan(plan, Resources("1:00:00", "1G"), IndexSet.range(0, 10), 4)  # type: ignore[arg-type]
    summary = planned_cost([array], ClusterProfile(), {"e.json": 20.0})
    assert summary.upper.cpu_hours == pytest.approx(3 * 1.0)
    assert summary.expected is not None and summary.expected.cpu_hours == pytest.approx((80 + 80 + 40) / 3600)


def test_above_confirm_above_without_anyone_to_ask_nothing_is_sent_or_written(project) -> None:
    plan = thirty(project)
    slurm = FakeSlurm()
    profile = ClusterProfile(hours=3, confirm_above=50)  # 89.99 CPU-hours asked
    with pytest.raises(UserError) as refused:
        submitter(profile, slurm).submit([plan])
    assert str(refused.value) == (
        "this submission asks for up to 89.99 CPU-hours, above confirm_above (50); nothing was submitted: "
        "run it on a terminal to confirm, or pass --yes"
    )
    assert slurm.calls["sbatch"] == 0
    assert Ledger(Path(".")).all_records() == [] and not (project / ".orchestrator" / "runs").exists()


def test_a_person_is_asked_and_the_answer_decides(project) -> None:
    plan = thirty(project)
    profile = ClusterProfile(hours=3, confirm_above=50)
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    slurm = FakeSlurm()
    with pytest.raises(UserError, match=r"^not confirmed; nothing was submitted$"):
        submitter(profile, slurm, confirm=no).submit([plan])
    assert asked == [
        "cost: 30 indices in 30 task(s), 89.99 CPU-hours at the requested limits (at most); "
        "above confirm_above (50 CPU-hours). Submit?"
    ]
    assert slurm.calls["sbatch"] == 0 and Ledger(Path(".")).all_records() == []

    report = submitter(profile, slurm, confirm=lambda q: True).submit([plan])
    assert len(report.submissions) == 1 and slurm.calls["sbatch"] == 1


def test_yes_submits_without_asking_and_a_cheap_submit_never_asks(project) -> None:
    plan = thirty(project)

    def never(question: str) -> bool:
        raise AssertionError("asked")

    slurm = FakeSlurm()
    report = submitter(ClusterProfile(hours=3, confirm_above=50), slurm, SubmitOptions(yes=True), never).submit([plan])
    assert report.to_json()["cost"]["cpu_hours"] == round(30 * 10_799 / 3600, 4)
    assert slurm.calls["sbatch"] == 1


def test_a_dry_run_above_confirm_above_says_so_and_asks_nothing(project) -> None:
    plan = thirty(project)
    report = submitter(ClusterProfile(hours=3, confirm_above=50), FakeSlurm(), SubmitOptions(dry_run=True)).submit(
        [plan]
    )
    assert "above confirm_above (50 CPU-hours): a submit asks first" in report.notes


def test_submit_json_and_the_cost_line_through_the_cli(project, monkeypatch, capsys) -> None:
    thirty(project)
    (project / "p.yaml").write_text("hours: 3\nallocation: 10\n")
    slurm = FakeSlurm(max_array_size=11)
    argv = ("submit", "experiments/lr/sweep.json", "--cluster", "p.yaml", "--dry-run", "--no-check")
    code, out, _ = run_cli(monkeypatch, capsys, slurm, *argv)
    assert code == 0
    share = 30 * 10_799 / 3600 / 8760 / 10
    assert out.splitlines()[0] == (
        f"cost: 30 indices in 30 task(s), 89.99 CPU-hours at the requested limits (at most); 0.0103 core-years, "
        f"{share:.2%} of the 10 core-year allocation"
    )
    code, out, _ = run_cli(monkeypatch, capsys, slurm, *argv, "--json")
    cost = json.loads(out)["cost"]
    assert (cost["tasks"], cost["cpu_hours"], cost["gpu_hours"]) == (30, 89.9917, 0.0)


# -- submit --right-size ------------------------------------------------------------------------------


def test_right_sized_submission_asks_for_the_suggestion_and_records_it(hog) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=RECORDED_591, sacct="")
    profile = ClusterProfile(time="0:07:00", mem_per_cpu="4000M", right_size=True)
    report = submitter(profile, slurm).submit([hog])
    (sent,) = report.submissions
    assert (sent.resources.time, sent.resources.mem_per_cpu) == ("0:01:00", "535M")
    script = slurm.submitted[0].read_text()
    assert "#SBATCH --time=0:01:00" in script and "#SBATCH --mem-per-cpu=535M" in script
    (_, latest) = Ledger(Path(".")).all_records()
    assert (latest.resources["time"], latest.resources["mem-per-cpu"]) == ("0:01:00", "535M")
    assert any(
        n.startswith(f"right-size: {EXPERIMENT}: time 0:07:00 -> 0:01:00, mem/cpu 4000M -> 535M") for n in report.notes
    )
    # the profile asked for 10x the largest (400 s, 4000M); the right-sized request is within 2x of what was used
    assert parse_time(sent.resources.time) <= 2 * 40 and parse_memory(sent.resources.mem_per_cpu) <= 2 * 438052 / 1024


def test_no_right_size_flag_wins_over_the_profile(hog) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    profile = ClusterProfile(time="0:07:00", mem_per_cpu="4000M", right_size=True)
    report = submitter(profile, FakeSlurm(usage=RECORDED_591, sacct=""), SubmitOptions(right_size=False)).submit([hog])
    assert report.submissions[0].resources == Resources("0:07:00", "4000M")


def test_escalation_wins_for_the_indices_that_ran_out(project) -> None:
    """Job 388 (2 CPUs, 600M per CPU, 1 min): task 0 completed, 1 exited 1, 2 and 3 ended TIMEOUT."""
    write_experiment(project, EXPERIMENT, HOG)
    plan = plan_of()
    record(Ledger(Path(".")), plan, [[0], [1], [2], [3]], "388", resources={"time": "0:01:00", "mem-per-cpu": "600M"})
    accounting = (
        "388_0|t|COMPLETED|0:0|00:00:06\n388_1|t|FAILED|1:0|00:00:06\n"
        "388_2|t|TIMEOUT|0:0|00:01:11\n388_3|t|TIMEOUT|0:0|00:01:00\n"
    )
    slurm = FakeSlurm(usage=RECORDED_386_388, sacct=accounting)
    profile = ClusterProfile(time="0:01:00", mem_per_cpu="600M", cpus_per_task=2, right_size=True, escalate=True)
    report = submitter(profile, slurm).submit([plan])
    by_indices = {s.indices.text(): s.resources for s in report.submissions}
    # right-sized from the history: at least 1.25 x the 1:00 the TIMEOUTs ran out of, and 1.25 x the 414 MB per
    # CPU they had used; escalation doubles the last attempt's time for the indices that timed out
    assert by_indices["2-3"] == Resources("0:04:00", by_indices["0-1"].mem_per_cpu)  # 2 x the right-sized 2 min
    assert by_indices["0-1"].time == "0:02:00"
    assert parse_memory(by_indices["0-1"].mem_per_cpu) == math.ceil(847900 / 1024 / 2 * 1.25)


def test_right_sizing_is_capped_by_the_partition() -> None:
    base = Resources("0:59:59", "1G")
    big = Suggestion(3 * 3600, 9000)
    limits = PartitionLimits("short", False, 600, None, 12288)
    assert right_sized(base, big, limits, cpus_per_task=2) == Resources("0:10:00", "6G")
    assert right_sized(base, big, None, 2) == Resources("3:00:00", "9000M")
    assert right_sized(base, Suggestion(None, None), limits, 2) == base


def test_right_size_without_accounting_keeps_the_profile_and_says_why(hog) -> None:
    record(Ledger(Path(".")), hog, [[0], [1], [2], [3]], "591")
    slurm = FakeSlurm(usage=None, sacct="", problem="sacct not found on PATH")
    profile = ClusterProfile(time="0:07:00", mem_per_cpu="4000M", right_size=True)
    report = submitter(profile, slurm).submit([hog])
    assert report.submissions[0].resources == Resources("0:07:00", "4000M")
    assert any("right-size: no usage to size from" in n and "sacct not found" in n for n in report.notes)
    assert report.to_json()["cost"]["expected"] is None


# -- status --by ----------------------------------------------------------------------------------------


SWEEP = {"metaParameters": {"lr": [0.01, 0.1, 1.0], "optimizer": ["sgd", "adam"], "batch": [8, 64]}}


def failing_sweep(project: Path) -> ExperimentPlan:
    """12 indices, all submitted as job 500; those with lr 1.0 exited 1, the others wrote their result."""
    write_experiment(project, "experiments/lr/sweep.json", SWEEP)
    plan = plan_of("experiments/lr/sweep.json")
    rec = record(Ledger(Path(".")), plan, [[i] for i in range(12)], "500")
    Path(rec.log_dir).mkdir(parents=True)
    for index in range(12):
        if plan.sweep.params(index)["lr"] == 1.0:
            Path(rec.log_dir, f"{index}.status").write_text("1\n")
        else:
            Path(plan.save_path(index)).mkdir(parents=True)
    return plan


def test_status_by_shows_the_states_per_value(project, monkeypatch, capsys) -> None:
    failing_sweep(project)
    code, out, _ = run_cli(monkeypatch, capsys, FakeSlurm(), "status", "experiments/lr/sweep.json", "--by", "lr")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("  failures stand out:")
    assert lines[start:] == [
        "  failures stand out:",
        "    lr=1.0: 4 of 4 finished failed (100%; 0% elsewhere)",
        "  by lr:",
        "    lr=0.01: 4 done",
        "    lr=0.1: 4 done",
        "    lr=1.0: 4 failed (FAILED exit 1)",
    ]
    code, out, _ = run_cli(
        monkeypatch, capsys, FakeSlurm(), "status", "experiments/lr/sweep.json", "--by", "lr,optimizer", "--json"
    )
    (entry,) = json.loads(out)["experiments"]
    zeros = {"running": 0, "pending": 0, "missing": 0}
    assert entry["by"]["lr"]["1.0"] == {"done": 0, **zeros, "failed": 4, "failed_reasons": {"FAILED exit 1": 4}}
    assert entry["by"]["lr"]["0.1"] == {"done": 4, **zeros, "failed": 0, "failed_reasons": {}}
    assert entry["by"]["optimizer"]["sgd"]["failed"] == 2 and entry["by"]["optimizer"]["adam"]["done"] == 4
    assert [(s["axis"], s["value"]) for s in entry["failures_stand_out"]] == [("lr", "1.0")]


def test_status_says_when_failures_stand_out_without_by(project, monkeypatch, capsys) -> None:
    failing_sweep(project)
    code, out, _ = run_cli(monkeypatch, capsys, FakeSlurm(), "status", "experiments/lr/sweep.json")
    assert code == 0
    assert out.splitlines()[-2:] == ["  failures stand out:", "    lr=1.0: 4 of 4 finished failed (100%; 0% elsewhere)"]
    code, out, _ = run_cli(monkeypatch, capsys, FakeSlurm(), "status")  # the one-line overview: no section
    assert "stand out" not in out


def test_status_by_an_unknown_axis_is_exit_2_before_slurm_is_asked(project, monkeypatch, capsys) -> None:
    failing_sweep(project)
    slurm = FakeSlurm()
    code, out, err = run_cli(monkeypatch, capsys, slurm, "status", "experiments/lr/sweep.json", "--by", "optimiser")
    assert code == 2 and out == "" and slurm.calls["squeue"] == 0
    assert err == (
        "orchestrator: error: experiments/lr/sweep.json: --by optimiser: no swept parameter of that name "
        "(did you mean 'optimizer'?); swept: batch, lr, optimizer\n"
    )


def test_breakdown_of_index_sets_matches_a_count_per_index(project) -> None:
    """A million indices (P = 12 permutations, 83,334 runs), counted range by range, checked by arithmetic."""
    write_experiment(project, "experiments/lr/sweep.json", SWEEP)
    plan = plan_of("experiments/lr/sweep.json", runs=83_334)
    total = plan.total  # 1,000,008
    failed = IndexSet.from_ranges([(5, 100_003), (500_000, 500_001)])
    done = IndexSet.range(0, total) - failed
    sets = {"done": done, "failed": failed, "running": IndexSet(), "pending": IndexSet(), "missing": IndexSet()}
    status = SimpleNamespace(plan=plan, sets={**sets, "unknown": IndexSet()}, reasons=lambda state: {"TIMEOUT": failed})
    b = status_breakdown(status)  # type: ignore[arg-type]
    (lr,) = resolve_axes(plan.sweep, ["lr"], plan.path)
    table = b.table(lr)
    for v, value in enumerate(plan.sweep.axes[lr].values):
        permutations = [p for p in range(12) if plan.sweep.choices(p)[lr] == v]
        expect_failed = sum(len(range(5 + (p - 5) % 12, 100_003, 12)) + (p == 500_000 % 12) for p in permutations)
        expect_all = sum(len(range(p, total, 12)) for p in permutations)
        row = table[str(value)]
        assert (row["failed"], row["done"], row["failed_reasons"]) == (
            expect_failed,
            expect_all - expect_failed,
            {"TIMEOUT": expect_failed},
        )
    assert sum(table[str(v)]["failed"] for v in plan.sweep.axes[lr].values) == len(failed)


def test_by_parameter_is_skipped_when_nothing_can_stand_out(project) -> None:
    write_experiment(project, "experiments/lr/sweep.json", SWEEP)
    plan = plan_of("experiments/lr/sweep.json")
    (status,) = gather([plan], Ledger(Path(".")), None, lambda p, i: StoreAnswer("paths", IndexSet()), 3)
    by = by_parameter(status)
    assert by.breakdown is None and by.to_json() == {"failures_stand_out": []}


# -- profile keys -------------------------------------------------------------------------------------


def test_new_profile_keys_load_and_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "allocation: 40\nconfirm_above: 100\nright_size: true\nright_size_headroom: 1.5\nright_size_statistic: p95\n"
    )
    p = load_profile(path)
    assert (p.allocation, p.confirm_above, p.right_size, p.right_size_headroom, p.right_size_statistic) == (
        40.0,
        100.0,
        True,
        1.5,
        "p95",
    )
    default = ClusterProfile()
    assert (default.allocation, default.confirm_above, default.right_size) == (None, None, False)
    assert (default.right_size_headroom, default.right_size_statistic) == (1.25, "max")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allocation: 0", "allocation: must be a positive number, not 0"),
        ("allocation: lots", "allocation: must be a positive number or null, not a string ('lots')"),
        ("confirm_above: -1", "confirm_above: must be a number of at least 0, not -1"),
        ("right_size: yes please", "right_size: must be true or false, not a string ('yes please')"),
        (
            "right_size_headroom: 0.5",
            "right_size_headroom: must be a finite number of at least 1 (a multiplier), not 0.5",
        ),
        ("right_size_statistic: mx", "right_size_statistic: must be one of max, p95, not 'mx' (did you mean 'max'?)"),
        ("confirm_abov: 3", "confirm_abov: unknown profile key (did you mean 'confirm_above'?)"),
    ],
)
def test_bad_new_profile_keys_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n")
    with pytest.raises(UserError) as error:
        load_profile(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_collect_without_slurm_for_slurm_jobs_is_an_environment_failure(hog) -> None:
    record(Ledger(Path(".")), hog, [[0]], "591")
    with pytest.raises(EnvironmentFailure, match="Slurm is not available here"):
        collect([hog], Ledger(Path(".")), None, Sizing())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), unique=True), st.integers(1, 13))
def test_counting_by_ranges_equals_counting_each_index(indices: list[int], permutations: int) -> None:
    sweep = Sweep({"metaParameters": {"x": list(range(permutations))}})
    by_ranges, by_index = Breakdown(sweep), Breakdown(sweep)
    by_ranges._add_ranges("failed", IndexSet.of(indices), "why")
    by_index.add("failed", list(indices), "why")
    assert list(by_ranges.states["failed"]) == list(by_index.states["failed"])
    assert list(by_ranges.reasons["why"]) == list(by_index.reasons["why"])

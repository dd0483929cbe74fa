"""Usage figures from sacct (parser, per-task usage, per-experiment summary, right-sizing), on real
recorded output (tests/data/slurm/sacct_usage_*.txt, logs_bundle_386/) and hand-written edge cases.

The recorded jobs ran tests/data/usage/hog.py, which holds 50 x size MB for 5 x size seconds and
writes its own peak RSS (getrusage) and wall time: the truth that sacct's figures are checked against.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import SlurmError, UserError
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import (
    USAGE_FIELDS,
    UsageRecord,
    parse_cpu_time,
    parse_memory,
    parse_sacct_usage,
    parse_size_mb,
    parse_time,
)
from orchestrator.sweep import Sweep
from orchestrator.usage import (
    Distribution,
    TaskUsage,
    differing_parameters,
    experiment_usage,
    format_usage,
    index_seconds_from_logs,
    log_run_seconds,
    round_up_memory,
    round_up_time,
    suggest,
    summarize,
    task_indices_of,
    task_usage,
    usage_json,
)

DATA = Path(__file__).parent / "data" / "slurm"
BUNDLE_LOGS = DATA / "logs_bundle_386"

# What hog.py measured of itself (getrusage ru_maxrss, KB) in the recorded jobs: size 8 (400 MB held).
TRUTH_PEAK_KB_269_3 = 432640  # job 269 task 3, JobAcctGatherFrequency=30
TRUTH_PEAK_KB_386_1 = 432600  # job 386 task 1 (indices 6 and 7, size 5 then 8), acctg-freq task=1
# Job 269: indices 0-3 (sizes 1, 3, 5, 8), one per task, profile time 0:07:00, mem_per_cpu 4000M.
TASKS_269 = {("269", i): [i] for i in range(4)}


def recorded(name: str) -> list[UsageRecord]:
    return parse_sacct_usage((DATA / name).read_text())


def task(state: str = "COMPLETED", elapsed: int = 60, rss: float | None = 100.0, **kw: object) -> TaskUsage:
    values: dict[str, object] = {
        "job_id": "9_0",
        "array_job_id": "9",
        "task_id": 0,
        "state": state,
        "elapsed_seconds": elapsed,
        "time_limit_seconds": 3600,
        "total_cpu_seconds": 30.0,
        "cpus": 1,
        "mem_per_cpu_mb": 1000.0,
        "max_rss_mb": rss,
    }
    values.update(kw)
    return TaskUsage(**values)  # type: ignore[arg-type]


# -- parsing -----------------------------------------------------------------------------------------


def test_usage_fields_are_one_batched_query_without_job_names() -> None:
    assert USAGE_FIELDS == "JobID,State,Elapsed,Timelimit,TotalCPU,AllocCPUS,ReqMem,MaxRSS"


def test_recorded_default_sampling_has_max_rss_only_on_the_long_step() -> None:
    records = recorded("sacct_usage_freq30.txt")
    assert [r.job_id for r in records] == [f"269_{i}{s}" for i in range(4) for s in ("", ".batch")]
    lines = [r for r in records if r.step is None]
    assert {(r.state, r.time_limit_seconds, r.alloc_cpus, r.mem_per_cpu_mb) for r in lines} == {
        ("COMPLETED", 420, 1, 4000.0)
    }
    assert [r.elapsed_seconds for r in lines] == [6, 15, 25, 40]
    assert lines[0].total_cpu_seconds == pytest.approx(0.199)
    batch = {r.task_id: r.max_rss_mb for r in records if r.step == "batch"}
    # the 30 s sampler saw only the task that ran 40 s; none is taken at the end of a step
    assert batch[0] is batch[1] is batch[2] is None
    assert batch[3] == pytest.approx(437884 / 1024)


def test_recorded_max_rss_is_within_sampling_error_of_the_truth() -> None:
    """sacct's MaxRSS covers the whole step (bash + python); the truth is python's own peak."""
    for name, job, truth_kb in (
        ("sacct_usage_freq30.txt", "269_3.batch", TRUTH_PEAK_KB_269_3),
        ("sacct_usage_freq1.txt", "386_1.batch", TRUTH_PEAK_KB_386_1),
    ):
        (rss,) = [r.max_rss_mb for r in recorded(name) if r.job_id == job]
        assert rss is not None
        assert truth_kb / 1024 <= rss <= truth_kb / 1024 + 16, (job, rss)


def test_recorded_one_second_sampling_matches_the_truth_of_every_task() -> None:
    """Job 591, the sweep of test_usage_slurm.py (acctg-freq task=1); truth_591.json is what hog.py measured."""
    truth = json.loads((Path(__file__).parent / "data" / "usage" / "truth_591.json").read_text())
    u = summarize("hog.json", recorded("sacct_usage_task1.txt"), {("591", i): [i] for i in range(4)})
    for t in u.tasks:
        own = truth[str(t.task_id)]
        assert t.max_rss_mb is not None
        assert 0 <= t.max_rss_mb - own["peak_rss_kb"] / 1024 <= 6  # measured: the job script adds 5.1-5.2 MB
        assert abs(t.elapsed_seconds - own["wall_s"]) <= 1
    out = u.to_json()
    assert out["elapsed_s"] == {"min": 5, "median": 20.0, "p95": 40, "max": 40}
    assert out["max_rss_mb"]["max"] == round(438052 / 1024, 1)
    assert out["suggested"] == {"time": "0:01:00", "mem_per_cpu": "535M", "notes": []}


def test_req_mem_is_per_node_since_slurm_21_08() -> None:
    """Job 378: --cpus-per-task=2 --mem-per-cpu=300M shows ReqMem 600M; no --time shows UNLIMITED."""
    by_id = {r.job_id: r for r in recorded("sacct_usage_jobs.txt")}
    job = by_id["378"]
    assert (job.array_job_id, job.task_id, job.alloc_cpus, job.req_mem_mb) == ("378", None, 2, 600.0)
    assert job.mem_per_cpu_mb == 300.0
    assert job.time_limit_seconds is None
    assert by_id["378.batch"].max_rss_mb == pytest.approx(219796 / 1024)
    assert by_id["379"].time_limit_seconds == 120
    assert by_id["379.batch"].max_rss_mb is None  # `sleep 3`: never sampled


@pytest.mark.parametrize(
    ("req_mem", "cpus", "per_cpu"),
    [("4Gc", 4, 4096.0), ("4Gn", 4, 1024.0), ("4000M", 2, 2000.0), ("1024", 1, 1024.0), ("0.5G", 1, 512.0)],
)
def test_req_mem_older_suffixes(req_mem: str, cpus: int, per_cpu: float) -> None:
    (record,) = parse_sacct_usage(f"5_1|COMPLETED|00:10:00|01:00:00|05:00.500|{cpus}|{req_mem}|\n")
    assert record.mem_per_cpu_mb == per_cpu


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00.199", 0.199),
        ("12:34.567", 754.567),
        ("01:02:03", 3723.0),
        ("1-02:03:04", 93784.0),
        ("10-00:00:00", 864000.0),
        ("", None),
        ("INVALID", None),
    ],
)
def test_cpu_time(text: str, seconds: float | None) -> None:
    assert parse_cpu_time(text) == (seconds if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("text", "default", "mb"),
    [
        ("437884K", "K", 427.62109375),
        ("1.50G", "K", 1536.0),
        ("512M", "K", 512.0),
        ("0", "K", 0.0),
        ("2T", "M", 2 * 1024**2),
    ],
)
def test_sizes(text: str, default: str, mb: float) -> None:
    assert parse_size_mb(text, default)[0] == pytest.approx(mb)


@pytest.mark.parametrize(
    "line",
    [
        "5_1|COMPLETED|00:00:06|00:07:00|00:00.199|1|4000M",  # a field short
        "5_1|COMPLETED|00:00:06|00:07:00|00:00.199|1|4000M||extra",
        "5_1|COMPLETED|00:00:06|00:07:00|soon|1|4000M|",
        "5_1|COMPLETED|00:00:06|00:07:00|00:00.199|one|4000M|",
        "5_1|COMPLETED|00:00:06|00:07:00|00:00.199|1|lots|",
        "5_1.batch|COMPLETED|00:00:06||00:00.199|1||big",
        "x_1|COMPLETED|00:00:06|00:07:00|00:00.199|1|4000M|",
        "5_1|completed|00:00:06|00:07:00|00:00.199|1|4000M|",
        "5_1|COMPLETED|6 s|00:07:00|00:00.199|1|4000M|",
    ],
)
def test_unreadable_lines_are_errors_naming_the_line(line: str) -> None:
    with pytest.raises(SlurmError, match=r"cannot read sacct output line '5_1|cannot read sacct output line 'x_1"):
        parse_sacct_usage(line + "\n")


# -- per task ----------------------------------------------------------------------------------------


def test_task_usage_takes_the_largest_step_and_skips_unfinished_tasks() -> None:
    lines = (
        "7_0|COMPLETED|00:10:00|01:00:00|09:00.000|1|1G|\n"
        "7_0.batch|COMPLETED|00:10:00||01:00.000|1||100M\n"
        "7_0.extern|COMPLETED|00:10:00||00:00.001|1||1M\n"
        "7_0.0|COMPLETED|00:09:00||08:00.000|1||700M\n"
        "7_1|RUNNING|00:10:00|01:00:00|00:00:00|1|1G|\n"
        "7_[2-3]|PENDING|00:00:00|01:00:00|00:00:00|1|1G|\n"
    )
    (only,) = task_usage(parse_sacct_usage(lines))
    assert only == TaskUsage("7_0", "7", 0, "COMPLETED", 600, 3600, 540.0, 1, 1024.0, 700.0)
    assert only.cpu_efficiency == pytest.approx(0.9)
    assert only.cpu_hours == pytest.approx(600 / 3600)


def test_recorded_in_flight_a_running_task_listed_again_as_pending_is_not_finished() -> None:
    records = recorded("sacct_usage_in_flight.txt")
    assert {r.job_id for r in records if r.array_job_id == "388" and r.step is None} == {f"388_{i}" for i in range(4)}
    finished = {t.job_id: t.state for t in task_usage(records)}
    assert finished == {"386_0": "COMPLETED", "386_1": "COMPLETED", "388_0": "COMPLETED", "388_1": "FAILED"}


def test_recorded_timeouts_keep_the_max_rss_of_their_cancelled_step() -> None:
    by_id = {t.job_id: t for t in task_usage(recorded("sacct_usage_freq1.txt"))}
    assert by_id["388_2"].state == by_id["388_3"].state == "TIMEOUT"
    assert by_id["388_2"].max_rss_mb == pytest.approx(847900 / 1024)  # 800 MB held, 2 CPUs, 1200M asked
    assert by_id["388_2"].mem_per_cpu_mb == 600.0
    assert by_id["388_2"].cpus == 2


# -- distributions and right-sizing ------------------------------------------------------------------


def test_distribution_nearest_rank_p95() -> None:
    d = Distribution.of(range(20, 0, -1))
    assert d is not None
    assert (d.min, d.median, d.p95, d.max, d.count) == (1, 10.5, 19, 20, 20)
    assert Distribution.of([]) is None
    small = Distribution.of([6, 15, 25, 40])
    assert small is not None and (small.median, small.p95) == (20, 40)


@pytest.mark.parametrize(("seconds", "rounded"), [(0.2, 60), (59.9, 60), (60, 60), (60.5, 120), (3601, 3660)])
def test_round_up_time_to_minutes(seconds: float, rounded: int) -> None:
    assert round_up_time(seconds) == rounded


@pytest.mark.parametrize(("mb", "rounded"), [(0.1, 1), (534.5, 535), (535, 535), (10240, 10240), (10240.5, 11264)])
def test_round_up_memory(mb: float, rounded: int) -> None:
    assert round_up_memory(mb) == rounded


def test_suggest_from_the_maximum_times_headroom() -> None:
    tasks = [task(elapsed=e, rss=r) for e, r in [(100, 200.0), (300, 250.0), (1000, 900.0)]]
    s = suggest(tasks, headroom=1.5)
    assert s.time_seconds == round_up_time(1500) == 1500
    assert s.mem_per_cpu_mb == 1350
    assert (s.time, s.mem_per_cpu) == ("0:25:00", "1350M")
    assert s.notes == ()


def test_suggest_p95_leaves_out_the_tail() -> None:
    tasks = [task(elapsed=60 * (i + 1), rss=float(10 * (i + 1))) for i in range(40)]
    s = suggest(tasks, headroom=1.0, statistic="p95")
    assert s.time_seconds == 38 * 60  # nearest rank: the 38th of 40
    assert s.mem_per_cpu_mb == 380
    assert suggest(tasks, headroom=1.0, statistic="max").time_seconds == 40 * 60


def test_suggest_memory_per_cpu_divides_by_the_allocated_cpus() -> None:
    s = suggest([task(rss=1000.0, cpus=4, mem_per_cpu_mb=4000.0)], headroom=1.0)
    assert s.mem_per_cpu_mb == 250


def test_suggest_never_below_a_timeout_or_out_of_memory() -> None:
    tasks = [
        task(elapsed=120, rss=300.0),
        task("TIMEOUT", elapsed=3605, rss=350.0, time_limit_seconds=3600),
        task("OUT_OF_MEMORY", elapsed=50, rss=990.0, mem_per_cpu_mb=1000.0),
    ]
    s = suggest(tasks, headroom=1.25)
    assert s.time_seconds == 4500  # 1.25 x 3600, not 1.25 x 120
    assert s.mem_per_cpu_mb == 1250  # 1.25 x the 1000 MB it ran out of, not 1.25 x 300
    assert any("TIMEOUT" in n for n in s.notes) and any("OUT_OF_MEMORY" in n for n in s.notes)


def test_suggest_nothing_measured() -> None:
    s = suggest([task("FAILED", rss=None)])
    assert (s.time, s.mem_per_cpu) == (None, None)
    unsampled = suggest([task(rss=None), task(rss=None)])
    assert unsampled.time is not None and unsampled.mem_per_cpu is None
    assert any("2 of 2 completed task(s) have no MaxRSS" in n for n in unsampled.notes)


@pytest.mark.parametrize(("headroom", "statistic"), [(0.9, "max"), (math.inf, "max"), (True, "max"), (1.5, "mean")])
def test_suggest_refuses_bad_settings(headroom: float, statistic: str) -> None:
    with pytest.raises(UserError):
        suggest([task()], headroom=headroom, statistic=statistic)


# -- per experiment ----------------------------------------------------------------------------------


def test_summary_of_recorded_default_sampling() -> None:
    u = summarize("hog.json", recorded("sacct_usage_freq30.txt"), TASKS_269, headroom=1.25)
    out = u.to_json()
    assert out["experiment"] == "hog.json"
    assert out["tasks"] == 4
    assert out["elapsed_s"] == {"min": 6, "median": 20.0, "p95": 40, "max": 40}
    assert out["max_rss_mb"] == {"min": 427.6, "median": 427.6, "p95": 427.6, "max": 427.6}
    assert out["max_rss_unsampled"] == 3
    assert out["requested"] == {"time_s": 420, "mem_per_cpu_mb": 4000.0, "cpus": 1}
    assert out["cpu_hours_used"] == pytest.approx((6 + 15 + 25 + 40) / 3600, abs=1e-4)
    assert out["cpu_hours_requested"] == pytest.approx(4 * 420 / 3600, abs=1e-4)
    cpu = 0.199 + 0.235 + 0.216 + 0.340
    assert out["cpu_hours_idle"] == pytest.approx((86 - cpu) / 3600, abs=1e-4)
    # 40 s x 1.25 = 50 s -> one minute; 427.6 MB x 1.25 = 534.5 -> 535M
    assert out["suggested"]["time"] == "0:01:00"
    assert out["suggested"]["mem_per_cpu"] == "535M"
    assert any("3 of 4" in n for n in out["suggested"]["notes"])
    # the suggestion is what sbatch takes, and at most 2x what was measured where the profile asked 10x
    assert parse_time(out["suggested"]["time"]) <= 2 * 40
    assert parse_memory(out["suggested"]["mem_per_cpu"]) <= 2 * 427.6


def test_summary_leaves_out_other_experiments_tasks() -> None:
    u = summarize("a", recorded("sacct_usage_freq1.txt"), {("388", 0): [0], ("388", 2): [2]})
    assert sorted(t.job_id for t in u.tasks) == ["388_0", "388_2"]
    assert u.states == {"COMPLETED": 1, "TIMEOUT": 1}
    empty = summarize("b", recorded("sacct_usage_freq1.txt"), {})
    assert empty.to_json()["tasks"] == 0 and empty.requested is None and empty.to_json()["elapsed_s"] is None


def test_summary_of_a_recorded_bundle_uses_the_logs_per_index() -> None:
    """Job 386: 2 tasks of 2 indices each (sizes 1+3, then 5+8), one after the other within a task."""
    logs = index_seconds_from_logs([(BUNDLE_LOGS, [4, 5, 6, 7, 99])])
    assert logs == {4: 5.0, 5: 16.0, 6: 25.0, 7: 41.0}  # index 99 has no log
    u = summarize(
        "bundle", recorded("sacct_usage_freq1.txt"), {("386", 0): [4, 5], ("386", 1): [6, 7]}, log_seconds=logs
    )
    assert u.index_seconds == logs
    task_elapsed = u.distribution("elapsed_s")
    assert task_elapsed is not None and (task_elapsed.min, task_elapsed.max) == (21, 66)
    # each task's run time is its indices' (plus the job script's own second or so)
    assert 0 <= 21 - (logs[4] + logs[5]) <= 2 and 0 <= 66 - (logs[6] + logs[7]) <= 2
    assert u.mean_index_seconds == pytest.approx((5 + 16 + 25 + 41) / 4)
    assert u.to_json()["index_elapsed_s"] == {"min": 5.0, "median": 20.5, "p95": 41.0, "max": 41.0}


def test_experiment_usage_from_ledger_records_reads_only_bundled_logs(tmp_path: Path) -> None:
    records = [
        SimpleNamespace(job_id="386", tasks=[[4, 5], [6, 7]], log_dir=str(BUNDLE_LOGS)),
        SimpleNamespace(job_id="269", tasks=[[0], [1], [2], [3]], log_dir=str(tmp_path / "no logs")),
        SimpleNamespace(job_id=None, tasks=[[8, 9]], log_dir=str(tmp_path / "never submitted")),
    ]
    usage = recorded("sacct_usage_freq1.txt") + recorded("sacct_usage_freq30.txt")
    u = experiment_usage("hog.json", records, usage)  # type: ignore[arg-type]
    assert sorted(t.job_id for t in u.tasks) == ["269_0", "269_1", "269_2", "269_3", "386_0", "386_1"]
    assert u.index_seconds == {0: 6.0, 1: 15.0, 2: 25.0, 3: 40.0, 4: 5.0, 5: 16.0, 6: 25.0, 7: 41.0}
    out = usage_json([u, summarize("other", usage, {})])
    assert [e["experiment"] for e in out["experiments"]] == ["hog.json", "other"]
    assert out["experiments"][0]["tasks"] == 6


def test_summary_of_recorded_failures() -> None:
    """Job 388: 2 CPUs, 600M per CPU, 1 minute; size 1 ok and failing, size 16 (800 MB, 80 s) timed out."""
    u = summarize("mixed", recorded("sacct_usage_freq1.txt"), {("388", i): [i] for i in range(4)}, headroom=1.25)
    assert u.states == {"COMPLETED": 1, "FAILED": 1, "TIMEOUT": 2}
    assert u.to_json()["tasks"] == 1
    s = u.suggestion
    assert s.time_seconds == 120  # 1.25 x the minute that the TIMEOUTs ran out of
    assert s.mem_per_cpu_mb == math.ceil(847900 / 1024 / 2 * 1.25)  # what a TIMEOUT had used, per CPU
    assert u.cpu_hours_used == pytest.approx(2 * (6 + 6 + 71 + 60) / 3600)


def test_summary_accepts_task_usage_too() -> None:
    tasks = task_usage(recorded("sacct_usage_freq30.txt"))
    assert (
        summarize("x", tasks, TASKS_269).to_json()
        == summarize("x", recorded("sacct_usage_freq30.txt"), TASKS_269).to_json()
    )


def test_summary_json_has_the_documented_shape() -> None:
    out = summarize("hog.json", recorded("sacct_usage_freq30.txt"), TASKS_269).to_json()
    for key in ("experiment", "tasks", "elapsed_s", "max_rss_mb", "requested", "cpu_hours_used", "cpu_hours_requested"):
        assert key in out
    assert set(out["elapsed_s"]) == set(out["max_rss_mb"]) == {"min", "median", "p95", "max"}
    assert {"time_s", "mem_per_cpu_mb"} <= set(out["requested"])
    assert {"time", "mem_per_cpu"} <= set(out["suggested"])


def test_parameters_whose_values_differ_a_lot() -> None:
    sweep = Sweep({"metaParameters": {"size": [1, 3, 5, 8], "seed": [0, 1]}})
    assert [a.name for a in sweep.axes] == ["metaParameters.seed", "metaParameters.size"]
    tasks, indices = [], {}
    for i in range(8):
        size = sweep.axes[1].values[sweep.choices(i)[1]]
        tasks.append(task(elapsed=5 * size, rss=50.0 * size + 20, job_id=f"9_{i}", task_id=i))
        indices[("9", i)] = [i]
    seconds = {i: float(t.elapsed_seconds) for i, t in enumerate(tasks)}
    table = differing_parameters(sweep, tasks, indices, seconds)
    assert list(table) == ["metaParameters.size"]  # seed makes no difference
    assert table["metaParameters.size"]["8"] == {"indices": 2, "elapsed_s_median": 40.0, "max_rss_mb_median": 420.0}
    u = summarize("x", tasks, indices, sweep=sweep)
    assert u.to_json()["by_parameter"] == table
    assert any(line.startswith("  by metaParameters.size") for line in format_usage(u))


def test_format_usage_lines() -> None:
    u = summarize("hog.json", recorded("sacct_usage_freq30.txt"), TASKS_269)
    text = "\n".join(format_usage(u))
    assert text.startswith("hog.json: 4 finished task(s): 4 COMPLETED")
    assert "median 20 s" in text and "of 0:07:00 asked" in text
    assert "suggested time 0:01:00  mem_per_cpu 535M" in text
    assert "3 of 4 completed task(s) have no MaxRSS" in text


# -- the inputs: ledger records and logs ---------------------------------------------------------------


def test_task_indices_of_ledger_records() -> None:
    records = [
        SimpleNamespace(job_id="12", tasks=[[0, 1], [2]]),
        SimpleNamespace(job_id=None, tasks=[[3]]),  # never reached Slurm
        SimpleNamespace(job_id="15", tasks=[[2]]),
    ]
    assert task_indices_of(records) == {("12", 0): [0, 1], ("12", 1): [2], ("15", 0): [2]}  # type: ignore[arg-type]


def test_log_run_seconds_takes_the_last_complete_attempt() -> None:
    head = "=== orchestrator: index 3 on n1, job 5_0, started {}\n"
    tail = "=== orchestrator: index 3 exited with code {}, ended {}\n"
    text = (
        head.format("2026-11-30T10:00:00+0000")
        + "training...\n=== orchestrator: this line is the program's\n"
        + tail.format(1, "2026-11-30T10:00:30+0000")
        + head.format("2026-11-30T11:00:00+0100")  # a second attempt, another timezone
        + tail.format(0, "2026-11-30T10:01:15+0000")
        + head.format("2026-11-30T12:00:00+0000")  # a third, killed: no end stamp
    )
    assert log_run_seconds(text) == 75.0
    assert log_run_seconds(head.format("2026-11-30T10:00:00+0000")) is None
    assert log_run_seconds(head.format("yesterday") + tail.format(0, "2026-11-30T10:01:15+0000")) is None
    assert log_run_seconds("") is None


def test_logs_that_cannot_be_read_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "1.log").write_bytes(b"\xff\xfe not text\n")
    (tmp_path / "2.log").mkdir()
    assert index_seconds_from_logs([(tmp_path, [0, 1, 2])]) == {}


# -- the sacct call --------------------------------------------------------------------------------------


@pytest.fixture
def fake_sacct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake sacct first on PATH: prints $ANSWER (a file) and appends its argv to calls.txt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sacct"
    script.write_text(f'#!/bin/bash\necho "$*" >> {tmp_path}/calls.txt\ncat "$ANSWER"\nexit "${{CODE:-0}}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path


def test_sacct_usage_one_call_per_chunk_without_x(fake_sacct: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWER", str(DATA / "sacct_usage_freq30.txt"))
    slurm = SlurmCommands(timeout=10, attempts=1)
    records = slurm.sacct_usage(["269", "270", "269", "271"], chunk_size=2)
    calls = (fake_sacct / "calls.txt").read_text().splitlines()
    assert calls == [f"-P -n -o {USAGE_FIELDS} -j 269,270", f"-P -n -o {USAGE_FIELDS} -j 271"]
    assert records == recorded("sacct_usage_freq30.txt")  # the same lines twice, once each
    assert slurm.sacct_usage([]) == []


def test_sacct_usage_without_accounting_is_none(fake_sacct: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_sacct / "err").write_text("")
    monkeypatch.setenv("ANSWER", str(fake_sacct / "err"))
    monkeypatch.setenv("CODE", "1")
    script = fake_sacct / "bin" / "sacct"
    script.write_text(script.read_text().replace('cat "$ANSWER"', 'echo "Slurm accounting storage is disabled" >&2'))
    slurm = SlurmCommands(timeout=10, attempts=1)
    assert slurm.sacct_usage(["5"]) is None
    assert slurm.accounting_problem == "sacct: Slurm accounting storage is disabled"
    assert SlurmCommands(env={"PATH": str(fake_sacct / "nothing")}).sacct_usage(["5"]) is None
    with pytest.raises(UserError):
        slurm.sacct_usage(["5; rm -rf /"])


# -- plot --------------------------------------------------------------------------------------------------


def test_plot_without_matplotlib_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from orchestrator.plot import plot_usage

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    u = summarize("hog.json", recorded("sacct_usage_freq30.txt"), TASKS_269)
    with pytest.raises(UserError, match=r"^--plot needs matplotlib: pip install 'sweep-orchestrator\[plot\]'$"):
        plot_usage([u], tmp_path / "u.png")
    assert not (tmp_path / "u.png").exists()


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the optional extra 'plot' is not installed")
    from orchestrator.breakdown import breakdown
    from orchestrator.plot import plot_usage, usage_points

    sweep = Sweep({"metaParameters": {"size": [1, 3, 5, 8]}})
    u = summarize("hog.json", recorded("sacct_usage_freq30.txt"), TASKS_269, sweep=sweep)
    points = usage_points(u)
    assert [p[0] for p in points] == [0, 1, 2, 3]
    assert points[3] == (3, 40.0, 420, pytest.approx(437884 / 1024), 4000.0)
    b = breakdown(sweep, {"done": [0, 1, 2], "failed": [3]})
    out = plot_usage([u], tmp_path / "u.png", {"hog.json": b})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    with pytest.raises(UserError, match="nothing to plot"):
        plot_usage([], tmp_path / "v.png")

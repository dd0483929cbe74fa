"""Parsers of Slurm command output, on real recorded output (tests/data/slurm) and hand-written edge cases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.errors import SlurmError
from orchestrator.slurm_formats import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    AccountingRecord,
    QueuedTask,
    array_limits,
    format_ranges,
    format_time,
    parse_assoc_qos,
    parse_elapsed,
    parse_max_submit,
    parse_sacct,
    parse_sbatch_parsable,
    parse_scontrol_config,
    parse_squeue,
)

DATA = Path(__file__).parent / "data" / "slurm"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_formats_are_the_documented_ones() -> None:
    assert SQUEUE_FORMAT == "%F|%K|%T|%r|%j|%k"
    assert SACCT_FIELDS == "JobID,JobName,State,ExitCode,Elapsed,Submit,DBIndex"


# -- sbatch --parsable -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [
        ("123\n", "123"),
        ("123;orchtest\n", "123"),
        ("  77  \r\n", "77"),
        ("Welcome to the cluster!\nyour quota: 3 GB\n4567\n", "4567"),
        ("4567;a\nsite banner 89\n", "4567"),
        ("1\n2;c\n", "2"),  # the last such line
    ],
)
def test_sbatch_parsable(stdout: str, job_id: str) -> None:
    assert parse_sbatch_parsable(stdout) == job_id


@pytest.mark.parametrize("stdout", ["", "\n", "Submitted batch job 12\n", "12;\n", "12 ;x\n", "abc;def\n", "-1\n"])
def test_sbatch_parsable_without_a_job_id_says_what_was_printed(stdout: str) -> None:
    with pytest.raises(SlurmError, match="printed no job id") as caught:
        parse_sbatch_parsable(stdout)
    assert repr(stdout)[1:-1][:20] in str(caught.value)
    assert "\n" not in str(caught.value)


# -- squeue ------------------------------------------------------------------------------------


def test_squeue_recorded_running_pending_held() -> None:
    tasks = parse_squeue(recorded("squeue_r_running_pending_held.txt"))
    assert len(tasks) == 15
    assert QueuedTask("29", 2, "RUNNING", "None", "orchrec-mixed", "orchrec|a|b") in tasks
    assert QueuedTask("29", 3, "PENDING", "Resources", "orchrec-mixed", "orchrec|a|b") in tasks
    # a held non-array job: %K is N/A, no comment is printed as (null)
    assert QueuedTask("31", None, "PENDING", "JobHeldUser", "orchrec single", "") in tasks
    assert sorted(t.task_id for t in tasks if t.array_job_id == "30") == list(range(11))
    assert {t.job_id for t in tasks if t.array_job_id != "30"} == {"29_2", "29_3", "31", "28"}


def test_squeue_recorded_throttled() -> None:
    tasks = parse_squeue(recorded("squeue_r_throttled.txt"))
    throttled = [t for t in tasks if t.array_job_id == "30"]
    assert [t for t in throttled if t.state == "RUNNING"] == [
        QueuedTask("30", 0, "RUNNING", "None", "orchrec-throttled", "tag=orchrec-b")
    ]
    pending = [t for t in throttled if t.state == "PENDING"]
    assert sorted(t.task_id for t in pending) == list(range(1, 11))
    assert {t.reason for t in pending} == {"JobArrayTaskLimit"}


def test_squeue_grouped_lines_expand_like_r() -> None:
    assert set(parse_squeue(recorded("squeue_grouped_throttled.txt"))) == set(
        parse_squeue(recorded("squeue_r_throttled.txt"))
    )
    grouped = parse_squeue(recorded("squeue_grouped_resources.txt"))
    assert sorted(t.task_id for t in grouped if t.array_job_id == "30") == list(range(11))


@pytest.mark.parametrize(
    ("task_field", "expected"),
    [
        ("[5-100%10]", list(range(5, 101))),
        ("5-100", list(range(5, 101))),
        ("0-15:4", [0, 4, 8, 12]),
        ("[1,3-4]", [1, 3, 4]),
        ("7", [7]),
    ],
)
def test_squeue_tolerates_grouped_pending(task_field: str, expected: list[int]) -> None:
    tasks = parse_squeue(f"9|{task_field}|PENDING|JobArrayTaskLimit|sweep|tag\n")
    assert [t.task_id for t in tasks] == expected
    assert {(t.array_job_id, t.state, t.reason, t.name, t.comment) for t in tasks} == {
        ("9", "PENDING", "JobArrayTaskLimit", "sweep", "tag")
    }


def test_squeue_comment_keeps_pipes_and_blank_lines_are_ignored() -> None:
    text = "\n12|3|RUNNING|None|name|a|b||c\n\n"
    assert parse_squeue(text) == [QueuedTask("12", 3, "RUNNING", "None", "name", "a|b||c")]
    assert parse_squeue("") == []


@pytest.mark.parametrize(
    "line",
    [
        "12|3|RUNNING|None|name",  # a field short
        "12_3|3|RUNNING|None|name|c",  # %F is a plain number
        "12|x|RUNNING|None|name|c",
        "12|5-2|PENDING|None|name|c",  # empty range
        "12|3||None|name|c",  # no state
        "CLUSTER: orchtest",
    ],
)
def test_squeue_unreadable_line_names_it(line: str) -> None:
    with pytest.raises(SlurmError, match="cannot read squeue output line") as caught:
        parse_squeue(f"1|0|RUNNING|None|ok|ok\n{line}\n")
    assert repr(line) in str(caught.value)


@given(
    job=st.integers(1, 10**9),
    task=st.none() | st.integers(0, 10**6),
    state=st.sampled_from(["PENDING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"]),
    reason=st.sampled_from(["None", "Priority", "Resources", "JobArrayTaskLimit", "Dependency"]),
    name=st.text(st.characters(blacklist_characters="|\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20),
    comment=st.text(st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20),
)
def test_squeue_round_trip(job: int, task: int | None, state: str, reason: str, name: str, comment: str) -> None:
    name, comment = name.strip(), comment.strip()
    assume(comment != "(null)")  # squeue's spelling of "no comment": a literal "(null)" reads as ''
    line = f"{job}|{'N/A' if task is None else task}|{state}|{reason}|{name}|{comment or '(null)'}"
    assert parse_squeue(line) == [QueuedTask(str(job), task, state, reason, name, comment)]


# -- sacct -------------------------------------------------------------------------------------


def test_sacct_recorded() -> None:
    records = {r.job_id: r for r in parse_sacct(recorded("sacct_mixed.txt"))}
    assert records["29_0"] == AccountingRecord("29_0", "29", 0, "COMPLETED", "", 0, 0, 0, "orchrec-mixed")
    assert records["29_1"] == AccountingRecord("29_1", "29", 1, "FAILED", "", 3, 0, 0, "orchrec-mixed")
    assert records["29_2"] == AccountingRecord("29_2", "29", 2, "TIMEOUT", "", 0, 0, 72, "orchrec-mixed")
    assert records["29_3"] == AccountingRecord("29_3", "29", 3, "CANCELLED", "by 0", 0, 0, 0, "orchrec-mixed")
    assert records["30_0"].state == "RUNNING"
    assert records["31"] == AccountingRecord("31", "31", None, "PENDING", "", 0, 0, 0, "orchrec single")
    # `30_[1-10%1]` (pending, grouped) and `42_[0-10]` (cancelled while pending, still grouped)
    assert [records[f"30_{t}"].state for t in range(1, 11)] == ["PENDING"] * 10
    assert {(records[f"42_{t}"].state, records[f"42_{t}"].reason_detail) for t in range(11)} == {("CANCELLED", "by 0")}
    # heterogeneous components keep their ids; the name contains the '|' separator
    assert records["47+0"] == AccountingRecord("47+0", "47+0", None, "CANCELLED", "by 0", 0, 0, 0, "orchrec|het")
    assert records["47+1"].job_id == "47+1"
    assert len(records) == 6 + 10 + 11 + 2


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("7|n|COMPLETED|0:0|00:00:01", [AccountingRecord("7", "7", None, "COMPLETED", "", 0, 0, 1, "n")]),
        ("7_2|n|FAILED|3:0|1-02:03:04", [AccountingRecord("7_2", "7", 2, "FAILED", "", 3, 0, 93784, "n")]),
        (
            "7_2|n|OUT_OF_MEMORY|0:125|00:10:00",
            [AccountingRecord("7_2", "7", 2, "OUT_OF_MEMORY", "", 0, 125, 600, "n")],
        ),
        (
            "7_2|n|CANCELLED by 1234|0:9|00:00:05",
            [AccountingRecord("7_2", "7", 2, "CANCELLED", "by 1234", 0, 9, 5, "n")],
        ),
        ("7_2|n|NODE_FAIL|1:0|INVALID", [AccountingRecord("7_2", "7", 2, "NODE_FAIL", "", 1, 0, None, "n")]),
        ("7_2||PREEMPTED|0:15|", [AccountingRecord("7_2", "7", 2, "PREEMPTED", "", 0, 15, None, "")]),
        ("7+1|a|b|c|DEADLINE|0:0|00:00:00", [AccountingRecord("7+1", "7+1", None, "DEADLINE", "", 0, 0, 0, "a|b|c")]),
    ],
)
def test_sacct_lines(line: str, expected: list[AccountingRecord]) -> None:
    assert parse_sacct(line + "\n") == expected


@pytest.mark.parametrize(
    ("job_field", "tasks"),
    [("7_[4-9]", range(4, 10)), ("7_[4-9%2]", range(4, 10)), ("7_[1,3-5]", [1, 3, 4, 5]), ("7_[0-10:5]", [0, 5, 10])],
)
def test_sacct_expands_grouped_tasks(job_field: str, tasks: list[int]) -> None:
    records = parse_sacct(f"{job_field}|sweep|PENDING|0:0|00:00:00\n")
    assert [(r.job_id, r.task_id) for r in records] == [(f"7_{t}", t) for t in tasks]
    assert {(r.array_job_id, r.state, r.name) for r in records} == {("7", "PENDING", "sweep")}


@pytest.mark.parametrize(
    "line",
    [
        "7.batch|batch|COMPLETED|0:0|00:00:01",  # a step: -X should have hidden it
        "7_x|n|COMPLETED|0:0|00:00:01",
        "7_[]|n|PENDING|0:0|00:00:00",
        "7_[9-4]|n|PENDING|0:0|00:00:00",
        "7|n|completed|0:0|00:00:01",
        "7|n||0:0|00:00:01",
        "7|n|FAILED|3|00:00:01",
        "7|n|FAILED|3:0|soon",
        "7|n|FAILED|3:0",
    ],
)
def test_sacct_unreadable_line_names_it(line: str) -> None:
    with pytest.raises(SlurmError, match="cannot read sacct output line") as caught:
        parse_sacct(f"1|ok|COMPLETED|0:0|00:00:01\n{line}\n")
    assert repr(line) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sacct_blank_output() -> None:
    assert parse_sacct("") == []
    assert parse_sacct("\n  \n") == []


def test_sacct_recorded_with_submit_and_dbindex() -> None:
    """Job 400 (tests/data/slurm/README.md): a task's own record and a stale range record that covers it."""
    records = parse_sacct(recorded("sacct_stale_range_after_cancel.txt"))
    assert records[4] == AccountingRecord(
        "400_4", "400", 4, "FAILED", "", 3, 0, 0, "acctrec|stale", False, "2026-11-30T02:54:03", 718
    )
    grouped = records[5:]
    assert [r.task_id for r in grouped] == list(range(4, 10))
    assert {(r.state, r.reason_detail, r.grouped, r.db_index, r.name) for r in grouped} == {
        ("CANCELLED", "by 0", True, 710, "acctrec|stale")
    }
    # -D: each attempt of a requeued task is its own line, ordered by Submit and DBIndex
    attempts = [(r.state, r.submitted, r.db_index) for r in parse_sacct(recorded("sacct_D_requeue_pending.txt"))]
    assert attempts[1:] == [("REQUEUED", "2026-11-30T03:10:59", 1228), ("PENDING", "2026-11-30T03:11:01", 1231)]


@pytest.mark.parametrize(
    ("line", "submitted", "db_index"),
    [
        ("7_2|n|PENDING|0:0|00:00:00|Unknown|12", None, 12),
        ("7_2|n|PENDING|0:0|00:00:00|None|", None, None),
        ("7_2|a|3:0|b|FAILED|3:0|00:00:01|2026-11-30T03:02:38|1033", "2026-11-30T03:02:38", 1033),
        ("7_2|n|FAILED|3:0|00:00:01", None, None),  # the older field list
    ],
)
def test_sacct_submit_and_dbindex(line: str, submitted: str | None, db_index: int | None) -> None:
    (record,) = parse_sacct(line)
    assert (record.job_id, record.submitted, record.db_index) == ("7_2", submitted, db_index)
    assert record.name == ("a|3:0|b" if "a|3:0|b" in line else "n")


@pytest.mark.parametrize(
    "line",
    [
        "7_2|n|FAILED|3:0|00:00:01|yesterday|12",
        "7_2|n|FAILED|3:0|00:00:01|2026-11-30T03:02:38|x1",
        "7_2|n|FAILED|3:0|00:00:01|2026-11-30 03:02:38|12",
    ],
)
def test_sacct_unreadable_order_columns_name_the_line(line: str) -> None:
    with pytest.raises(SlurmError, match="cannot read sacct output line") as caught:
        parse_sacct(line)
    assert repr(line) in str(caught.value)


@given(
    job=st.integers(1, 10**9),
    task=st.none() | st.integers(0, 10**6),
    state=st.sampled_from(
        ["COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"]
        + ["PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "CANCELLED"]
    ),
    canceller=st.none() | st.integers(0, 65535),
    code=st.integers(0, 255),
    signal=st.integers(0, 64),
    elapsed=st.integers(0, 400 * 86400),
    name=st.text(st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20),
    order=st.none()  # None: a line of the older field list, without Submit and DBIndex
    | st.tuples(
        st.none()
        | st.datetimes(datetime(1970, 1, 1), datetime(9999, 1, 1)).map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),
        st.none() | st.integers(0, 10**12),
    ),
)
def test_sacct_round_trip(
    job: int,
    task: int | None,
    state: str,
    canceller: int | None,
    code: int,
    signal: int,
    elapsed: int,
    name: str,
    order: tuple[str | None, int | None] | None,
) -> None:
    job_id = str(job) if task is None else f"{job}_{task}"
    detail = f"by {canceller}" if canceller is not None and state == "CANCELLED" else ""
    state_text = f"{state} {detail}" if detail else state
    days, rest = divmod(elapsed, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    elapsed_text = f"{days}-{clock}" if days else clock
    line = f"{job_id}|{name}|{state_text}|{code}:{signal}|{elapsed_text}"
    submitted, db_index = order or (None, None)
    if order is not None:
        line += f"|{submitted or 'Unknown'}|{'' if db_index is None else db_index}"
    assert parse_sacct(line) == [
        AccountingRecord(job_id, str(job), task, state, detail, code, signal, elapsed, name, False, submitted, db_index)
    ]


@given(st.sets(st.integers(0, 2000), min_size=1, max_size=50), st.none() | st.integers(0, 100))
def test_sacct_grouped_round_trip(tasks: set[int], throttle: int | None) -> None:
    spec = format_ranges(tasks) + ("" if throttle is None else f"%{throttle}")
    records = parse_sacct(f"55_[{spec}]|sweep|PENDING|0:0|00:00:00")
    assert [r.task_id for r in records] == sorted(tasks)


@given(st.integers(1, 10**7))
def test_elapsed_matches_format_time(seconds: int) -> None:
    # sacct pads hours to two digits; format_time does not under a day; both must parse
    assert parse_elapsed(format_time(seconds)) == seconds


def test_elapsed_forms() -> None:
    assert parse_elapsed("00:00:00") == 0
    assert parse_elapsed("12-00:00:01") == 12 * 86400 + 1
    assert parse_elapsed("Unknown") is None
    with pytest.raises(SlurmError, match="invalid elapsed"):
        parse_elapsed("1:2")


# -- scontrol show config ----------------------------------------------------------------------


def test_scontrol_config_recorded() -> None:
    config = parse_scontrol_config(recorded("scontrol_show_config.txt"))
    assert config["MaxArraySize"] == "11"
    assert config["ClusterName"] == "orchtest"
    assert config["SchedulerParameters"] == "sched_interval=2,bf_interval=5"
    assert config["MinJobAge"] == "300 sec"
    assert config["SLURM_VERSION"] == "22.05.8"
    assert not any(key.startswith(("Configuration", "Slurmctld(")) for key in config)  # header, footer
    assert len(config) == 193
    assert array_limits(config) == (11, None)


def test_scontrol_config_hand_written() -> None:
    text = """Configuration data as of 2024-01-01T00:00:00
MaxArraySize            = 40001
SchedulerParameters     = bf_continue,max_array_tasks=5000,bf_window=2880
Weird=NoSpaces

Cgroup Support Configuration:
  CgroupMountpoint        = /sys/fs/cgroup
MPI Plugins Configuration:
Slurmctld(primary) at ctl1 is UP
"""
    config = parse_scontrol_config(text)
    assert config["Weird"] == "NoSpaces"
    assert config["CgroupMountpoint"] == "/sys/fs/cgroup"
    assert array_limits(config) == (40001, 5000)


def test_array_limits_defaults_and_errors() -> None:
    assert array_limits({}) == (1001, None)
    assert array_limits({"SchedulerParameters": "(null)"}) == (1001, None)
    with pytest.raises(SlurmError, match="MaxArraySize"):
        array_limits({"MaxArraySize": "lots"})
    with pytest.raises(SlurmError, match="max_array_tasks"):
        array_limits({"SchedulerParameters": "max_array_tasks="})


# -- sacctmgr ----------------------------------------------------------------------------------


def test_max_submit_recorded() -> None:
    assert parse_max_submit(recorded("sacctmgr_assoc_no_limit.txt")) is None
    assert parse_max_submit(recorded("sacctmgr_assoc_limited.txt")) == 2
    assert parse_max_submit(recorded("sacctmgr_qos_no_limit.txt")) is None
    assert parse_max_submit(recorded("sacctmgr_qos_limited.txt")) == 2


@pytest.mark.parametrize(
    ("text", "limit"),
    [("", None), ("\n", None), ("6\n", 6), ("10\n\n3\n", 3), ("|normal\n40|normal\n", 40), (" 7 |x\n", 7)],
)
def test_max_submit_hand_written(text: str, limit: int | None) -> None:
    assert parse_max_submit(text) == limit


def test_max_submit_rejects_garbage() -> None:
    with pytest.raises(SlurmError, match="'lots'"):
        parse_max_submit("lots|normal\n")


def test_assoc_qos() -> None:
    assert parse_assoc_qos(recorded("sacctmgr_assoc_no_limit.txt")) == ["normal"]
    assert parse_assoc_qos(recorded("sacctmgr_assoc_limited.txt")) == ["normal", "orchrec_limit"]
    # a DefaultQOS wins over the allowed list
    assert parse_assoc_qos("5|normal,long,short|long\n|normal|\n") == ["long", "normal"]
    assert parse_assoc_qos("5\n\n") == []

"""SlurmCommands against fake Slurm executables (bash scripts first on PATH) that inject faults.

Each fake records its argv and environment per call under tmp_path/state/<command>/, so the tests
can check what was run, how often, and with what.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import slurm_commands
from orchestrator.errors import SlurmError, SlurmRejected, SlurmUnavailable, SubmitLimitReached, UserError
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import SACCT_FIELDS, SQUEUE_FORMAT, AccountingRecord, QueuedTask

DATA = Path(__file__).parent / "data" / "slurm"
FAST = {"timeout": 0.5, "attempts": 3, "backoff": 0.01}


@dataclass
class Fake:
    bin: Path
    state: Path

    def add(
        self,
        name: str,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
        *,
        sleep: float | None = None,
        fail_times: int = 0,
        fail_stderr: str = "",
        fail_exit: int = 1,
        script: str = "",
    ) -> None:
        """A fake `name`: fails (fail_stderr, fail_exit) on its first fail_times calls, then answers.

        An answer is: `script` if given (bash, with $n the call number), else sleep past any timeout
        if `sleep`, else print stdout/stderr and exit with exit_code.
        """
        state = self.state / name
        state.mkdir(parents=True, exist_ok=True)
        (state / "count").unlink(missing_ok=True)  # a fake added again starts afresh
        (state / "stdout").write_text(stdout)
        (state / "stderr").write_text(stderr)
        (state / "fail_stderr").write_text(fail_stderr)
        if script:
            answer = script
        elif sleep is not None:
            answer = f"exec sleep {sleep}"
        else:
            answer = f'cat "$state/stdout"; cat "$state/stderr" >&2; exit {exit_code}'
        path = self.bin / name
        path.write_text(
            f"""#!/bin/bash
PATH=/usr/bin:/bin
state={shlex.quote(str(state))}
n=$(( $(cat "$state/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/count"
printf '%s\\n' "$@" > "$state/argv.$n"
env > "$state/env.$n"
if [ "$n" -le {fail_times} ]; then cat "$state/fail_stderr" >&2; exit {fail_exit}; fi
{answer}
"""
        )
        path.chmod(0o755)

    def count(self, name: str) -> int:
        path = self.state / name / "count"
        return int(path.read_text()) if path.exists() else 0

    def argv(self, name: str, call: int = 1) -> list[str]:
        return (self.state / name / f"argv.{call}").read_text().splitlines()

    def env(self, name: str, call: int = 1) -> dict[str, str]:
        lines = (self.state / name / f"env.{call}").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    """Fake commands first on PATH (any real Slurm stays behind them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return Fake(bin_dir, tmp_path / "state")


def only_fakes(fake: Fake) -> SlurmCommands:
    """Commands that see nothing but the fakes: whatever was not faked is missing."""
    return SlurmCommands(**FAST, env={"PATH": str(fake.bin)})


def one_line(error: BaseException) -> bool:
    return "\n" not in str(error) and bool(str(error))


# -- _run: timeouts, retries, backoff ------------------------------------------------------------


def test_missing_command(fake: Fake) -> None:
    slurm = only_fakes(fake)
    with pytest.raises(SlurmError, match=r"^squeue not found on PATH$") as caught:
        slurm.squeue_me()
    assert not isinstance(caught.value, SlurmUnavailable)
    with pytest.raises(SlurmError, match=r"^sbatch not found on PATH$"):
        slurm.sbatch(Path("job.sh"))
    assert not slurm.available()


def test_available(fake: Fake) -> None:
    fake.add("sbatch", "1\n")
    assert SlurmCommands().available()
    assert only_fakes(fake).available()


def test_read_timeout_is_retried_then_unavailable(fake: Fake) -> None:
    fake.add("squeue", sleep=30)
    slurm = SlurmCommands(**FAST)
    started = time.monotonic()
    with pytest.raises(SlurmUnavailable, match=r"^squeue did not answer within 0\.5 s \(3 attempts\)$") as caught:
        slurm.squeue_me()
    assert time.monotonic() - started < 10
    assert caught.value.outcome_unknown is False
    assert fake.count("squeue") == 3
    assert slurm.calls["squeue"] == 3


@pytest.mark.parametrize(
    "stderr",
    [
        "squeue: error: Socket timed out on send/recv operation",
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
        "squeue: error: Connection refused",
        "squeue: error: Resource temporarily unavailable",
        "slurm_load_jobs error: Zero Bytes were transmitted or received",
    ],
)
def test_transient_failure_once_then_success(fake: Fake, stderr: str) -> None:
    fake.add("squeue", "5|0|RUNNING|None|n|c\n", fail_times=1, fail_stderr=stderr)
    slurm = SlurmCommands(**FAST)
    assert slurm.squeue_me() == [QueuedTask("5", 0, "RUNNING", "None", "n", "c")]
    assert slurm.calls["squeue"] == 2


def test_transient_failure_every_time(fake: Fake) -> None:
    stderr = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    fake.add("squeue", fail_times=99, fail_stderr=stderr)
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmUnavailable, match=r"could not reach Slurm.*connect failure.*3 attempts") as caught:
        slurm.squeue_me()
    assert caught.value.stderr.strip() == stderr
    assert caught.value.command == f"squeue --me -r -h -o '{SQUEUE_FORMAT}'"
    assert one_line(caught.value)
    assert fake.count("squeue") == 3


@pytest.mark.parametrize(
    "stderr",
    ["squeue: error: Invalid user: nobody", "slurm_load_jobs error: Invalid job id specified", "squeue: fatal: boom"],
)
def test_permanent_read_failure_raises_at_once(fake: Fake, stderr: str) -> None:
    fake.add("squeue", stderr=stderr + "\n", exit_code=1)
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmError) as caught:
        slurm.squeue_me()
    assert not isinstance(caught.value, SlurmUnavailable)
    assert "squeue failed (exit 1)" in str(caught.value)
    assert caught.value.stderr.strip() == stderr
    assert fake.count("squeue") == 1


def test_backoff_is_exponential_with_full_jitter_and_bounded(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add("scontrol", fail_times=99, fail_stderr="scontrol: error: Socket timed out on send/recv operation")
    bounds: list[tuple[float, float]] = []
    sleeps: list[float] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high / 2

    monkeypatch.setattr(slurm_commands, "uniform", uniform)
    monkeypatch.setattr(slurm_commands, "sleep", sleeps.append)
    slurm = SlurmCommands(timeout=5, attempts=8, backoff=1.0)
    with pytest.raises(SlurmUnavailable):
        slurm.config()
    # no wait after the last attempt; 2**k grows until the 30 s cap
    assert bounds == [(0, 1.0), (0, 2.0), (0, 4.0), (0, 8.0), (0, 16.0), (0, 30.0), (0, 30.0)]
    assert sleeps == [high / 2 for _, high in bounds]
    assert slurm.calls["scontrol"] == 8


def test_env_replaces_the_environment_and_squeue_gets_bitstr_len(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_PARENT_ONLY", "1")
    fake.add("squeue", "")
    SlurmCommands(**FAST, env={"PATH": str(fake.bin), "ORCH_TEST": "yes"}).squeue_me()
    env = fake.env("squeue")
    assert env["ORCH_TEST"] == "yes"
    assert env["SLURM_BITSTR_LEN"] == "0"
    assert "ORCH_PARENT_ONLY" not in env
    SlurmCommands(**FAST).squeue_me()  # default: this process's environment, read at the call
    assert fake.env("squeue", 2)["ORCH_PARENT_ONLY"] == "1"


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SlurmCommands(timeout=0)
    with pytest.raises(ValueError):
        SlurmCommands(attempts=0)


# -- sbatch ------------------------------------------------------------------------------------


def test_sbatch_returns_the_job_id(fake: Fake, tmp_path: Path) -> None:
    fake.add("sbatch", "Site notice: be nice\n4242;orchtest\n", "sbatch: warning: something harmless\n")
    slurm = SlurmCommands(**FAST)
    script = tmp_path / "job.sh"
    assert slurm.sbatch(script) == "4242"
    assert fake.argv("sbatch") == ["--parsable", str(script)]
    assert slurm.calls["sbatch"] == 1


@pytest.mark.parametrize(
    "recording", ["sbatch_invalid_partition", "sbatch_invalid_account", "sbatch_invalid_array", "sbatch_qos_max_wall"]
)
def test_sbatch_rejected(fake: Fake, recording: str) -> None:
    stderr = (DATA / f"{recording}.stderr").read_text()
    fake.add("sbatch", stderr=stderr, exit_code=1)
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmRejected) as caught:
        slurm.sbatch(Path("job.sh"))
    error = caught.value
    assert not isinstance(error, SubmitLimitReached)
    assert error.stderr == stderr
    assert error.command == "sbatch --parsable job.sh"
    assert one_line(error)
    assert str(error).startswith("sbatch refused the job: ")
    assert "sbatch: error:" not in str(error)
    assert fake.count("sbatch") == 1


def test_sbatch_rejected_messages_are_readable(fake: Fake) -> None:
    fake.add("sbatch", stderr=(DATA / "sbatch_invalid_array.stderr").read_text(), exit_code=1)
    with pytest.raises(SlurmRejected) as caught:
        SlurmCommands(**FAST).sbatch(Path("job.sh"))
    assert str(caught.value) == "sbatch refused the job: Batch job submission failed: Invalid job array specification"


@pytest.mark.parametrize(
    ("recording", "limit"),
    [("sbatch_assoc_max_submit", "AssocMaxSubmitJobLimit"), ("sbatch_qos_max_submit", "QOSMaxSubmitJobPerUserLimit")],
)
def test_sbatch_submit_limit(fake: Fake, recording: str, limit: str) -> None:
    stderr = (DATA / f"{recording}.stderr").read_text()
    fake.add("sbatch", stderr=stderr, exit_code=1)
    with pytest.raises(SubmitLimitReached) as caught:
        SlurmCommands(**FAST).sbatch(Path("job.sh"))
    assert caught.value.limit == limit
    assert caught.value.stderr == stderr
    assert limit in str(caught.value)
    assert one_line(caught.value)
    assert fake.count("sbatch") == 1


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
        "sbatch: error: Batch job submission failed: Connection refused",
    ],
)
def test_sbatch_socket_errors_leave_the_outcome_unknown_and_are_not_retried(fake: Fake, stderr: str) -> None:
    fake.add("sbatch", fail_times=1, fail_stderr=stderr + "\n", stdout="99\n")  # a retry would "succeed"
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmUnavailable, match="may or may not have been created") as caught:
        slurm.sbatch(Path("job.sh"))
    assert caught.value.outcome_unknown is True
    assert one_line(caught.value)
    assert fake.count("sbatch") == 1


def test_sbatch_timeout_leaves_the_outcome_unknown(fake: Fake) -> None:
    fake.add("sbatch", sleep=30)
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmUnavailable, match=r"^sbatch did not answer within 0\.5 s; the job may") as caught:
        slurm.sbatch(Path("job.sh"))
    assert caught.value.outcome_unknown is True
    assert fake.count("sbatch") == 1


@pytest.mark.parametrize(
    ("stdout", "stderr", "exit_code"),
    [("Submitted batch job 12\n", "", 0), ("", "", 1), ("", "", 137)],
)
def test_sbatch_without_a_clear_answer_leaves_the_outcome_unknown(
    fake: Fake, stdout: str, stderr: str, exit_code: int
) -> None:
    fake.add("sbatch", stdout, stderr, exit_code)
    with pytest.raises(SlurmUnavailable) as caught:
        SlurmCommands(**FAST).sbatch(Path("job.sh"))
    assert caught.value.outcome_unknown is True
    assert one_line(caught.value)


# -- squeue ------------------------------------------------------------------------------------


def test_squeue_me_one_call_with_the_format(fake: Fake) -> None:
    fake.add("squeue", (DATA / "squeue_r_throttled.txt").read_text())
    slurm = SlurmCommands(**FAST)
    tasks = slurm.squeue_me()
    assert len(tasks) == 12
    assert QueuedTask("30", 0, "RUNNING", "None", "orchrec-throttled", "tag=orchrec-b") in tasks
    assert fake.argv("squeue") == ["--me", "-r", "-h", "-o", SQUEUE_FORMAT]
    assert fake.env("squeue")["SLURM_BITSTR_LEN"] == "0"
    assert slurm.calls == {"squeue": 1}


def test_squeue_unparsable_output_is_an_error(fake: Fake) -> None:
    fake.add("squeue", "JOBID PARTITION NAME\n")
    with pytest.raises(SlurmError, match="cannot read squeue output line 'JOBID PARTITION NAME'"):
        SlurmCommands(**FAST).squeue_me()


# -- sacct -------------------------------------------------------------------------------------

# prints one COMPLETED line per id given with -j
SACCT_ECHO = """
while [ $# -gt 0 ]; do
  if [ "$1" = -j ]; then IFS=, read -ra ids <<< "$2"; shift; fi
  shift
done
for id in "${ids[@]}"; do echo "$id|job $id|COMPLETED|0:0|00:00:01"; done
"""


def test_sacct_chunks_ids(fake: Fake) -> None:
    fake.add("sacct", script=SACCT_ECHO)
    slurm = SlurmCommands(**FAST)
    ids = [str(i) for i in range(1, 451)]
    records = slurm.sacct(ids, chunk_size=200)
    assert records is not None
    assert [r.job_id for r in records] == ids
    assert records[0] == AccountingRecord("1", "1", None, "COMPLETED", "", 0, 0, 1, "job 1")
    assert slurm.calls["sacct"] == 3
    assert fake.argv("sacct", 1) == ["-X", "-P", "-n", "-o", SACCT_FIELDS, "-j", ",".join(ids[:200])]
    assert fake.argv("sacct", 3)[-1] == ",".join(ids[400:])
    assert slurm.accounting_problem is None


def test_sacct_dedupes_ids_and_records(fake: Fake) -> None:
    fake.add("sacct", script=SACCT_ECHO)
    slurm = SlurmCommands(**FAST)
    records = slurm.sacct(["7", "7_1", "7", "8+0"])
    assert records is not None
    assert [r.job_id for r in records] == ["7", "7_1", "8+0"]
    assert fake.argv("sacct")[-1] == "7,7_1,8+0"


def test_sacct_recorded_output(fake: Fake) -> None:
    fake.add("sacct", (DATA / "sacct_mixed.txt").read_text())
    records = SlurmCommands(**FAST).sacct(["29", "30", "31"])
    assert records is not None
    states = {r.job_id: (r.state, r.exit_code) for r in records}
    assert states["29_1"] == ("FAILED", 3)
    assert states["29_2"] == ("TIMEOUT", 0)
    assert states["29_3"] == ("CANCELLED", 0)


def test_sacct_no_ids_runs_nothing(fake: Fake) -> None:
    fake.add("sacct", script=SACCT_ECHO)
    slurm = SlurmCommands(**FAST)
    assert slurm.sacct([]) == []
    assert slurm.calls["sacct"] == 0
    assert fake.count("sacct") == 0


def test_sacct_missing_is_not_an_error(fake: Fake) -> None:
    slurm = only_fakes(fake)
    assert slurm.sacct(["5"]) is None
    assert slurm.accounting_problem == "sacct not found on PATH"


def test_sacct_accounting_disabled(fake: Fake) -> None:
    fake.add("sacct", stderr="Slurm accounting storage is disabled\n", exit_code=1)
    slurm = SlurmCommands(**FAST)
    assert slurm.sacct(["5"]) is None
    assert slurm.accounting_problem == "sacct: Slurm accounting storage is disabled"
    assert slurm.calls["sacct"] == 1


def test_sacct_slurmdbd_unreachable_after_retries(fake: Fake) -> None:
    stderr = (
        "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to "
        "host:localhost:6819: Connection refused\n"
        "sacct: error: Sending PersistInit msg: Connection refused\n"
        "sacct: error: Problem talking to the database: Connection refused\n"
    )
    fake.add("sacct", stderr=stderr, exit_code=1)
    slurm = SlurmCommands(**FAST)
    assert slurm.sacct(["5"]) is None
    assert slurm.accounting_problem is not None
    assert "Problem talking to the database" in slurm.accounting_problem
    assert "\n" not in slurm.accounting_problem
    assert slurm.calls["sacct"] == 3


def test_sacct_timeout_is_unknown_not_a_crash(fake: Fake) -> None:
    fake.add("sacct", sleep=30)
    slurm = SlurmCommands(timeout=0.5, attempts=1)
    assert slurm.sacct(["5"]) is None
    assert slurm.accounting_problem == "sacct did not answer within 0.5 s"


def test_sacct_other_failures_and_garbage_raise(fake: Fake) -> None:
    fake.add("sacct", stderr="sacct: error: Unknown field 'elapsedraw2'\n", exit_code=1)
    with pytest.raises(SlurmError, match="sacct failed \\(exit 1\\): Unknown field"):
        SlurmCommands(**FAST).sacct(["5"])
    fake.add("sacct", "5|n|COMPLETED\n")
    with pytest.raises(SlurmError, match="cannot read sacct output line"):
        SlurmCommands(**FAST).sacct(["5"])


def test_sacct_problem_is_cleared_by_a_good_call(fake: Fake) -> None:
    fake.add("sacct", script=SACCT_ECHO, fail_times=1, fail_stderr="Slurm accounting storage is disabled\n")
    slurm = SlurmCommands(**FAST)
    assert slurm.sacct(["5"]) is None
    assert slurm.sacct(["5"]) is not None
    assert slurm.accounting_problem is None


@pytest.mark.parametrize("bad", ["", "12_", "-j", "12,13", "12 13", "abc", "12_[1-3]", 12])
def test_job_ids_are_checked_before_anything_runs(fake: Fake, bad: object) -> None:
    fake.add("sacct", script=SACCT_ECHO)
    fake.add("scancel")
    slurm = SlurmCommands(**FAST)
    with pytest.raises(UserError, match="invalid Slurm job id"):
        slurm.sacct(["5", bad])  # type: ignore[list-item]
    with pytest.raises(UserError, match="invalid Slurm job id"):
        slurm.scancel([bad])  # type: ignore[list-item]
    assert sum(slurm.calls.values()) == 0


# -- scontrol, sacctmgr ------------------------------------------------------------------------


def test_config_is_read_once(fake: Fake) -> None:
    fake.add("scontrol", (DATA / "scontrol_show_config.txt").read_text())
    slurm = SlurmCommands(**FAST)
    assert slurm.config()["ClusterName"] == "orchtest"
    assert slurm.array_limits() == (11, None)
    assert slurm.array_limits() == (11, None)
    assert slurm.calls["scontrol"] == 1
    assert fake.argv("scontrol") == ["show", "config"]


# answers `show assoc` with $ASSOC and `show qos NAMES` with $QOS
SACCTMGR = """
case "$4" in
  assoc) printf '%s' "$ASSOC" ;;
  qos) printf '%s' "$QOS" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


@pytest.mark.parametrize(
    ("assoc", "qos", "limit"),
    [
        ("|normal|\n", "\n", None),
        ("6|normal|\n", "\n", 6),
        ("|normal|\n", "4\n", 4),
        ("6|normal|\n|normal|\n", "4\n", 4),
        ("3|normal|\n", "40\n", 3),
        ("", "", None),  # no association: no limit we know of
    ],
)
def test_max_submit_jobs(fake: Fake, monkeypatch: pytest.MonkeyPatch, assoc: str, qos: str, limit: int | None) -> None:
    monkeypatch.setenv("ASSOC", assoc)
    monkeypatch.setenv("QOS", qos)
    fake.add("sacctmgr", script=SACCTMGR)
    slurm = SlurmCommands(**FAST)
    assert slurm.max_submit_jobs("alice") == limit
    assert fake.argv("sacctmgr", 1) == ["-n", "-P", "show", "assoc", "user=alice", "format=MaxSubmit,QOS,DefaultQOS"]
    if assoc:
        assert fake.argv("sacctmgr", 2) == ["-n", "-P", "show", "qos", "normal", "format=MaxSubmitPU"]
    else:
        assert fake.count("sacctmgr") == 1


def test_max_submit_jobs_asks_about_the_default_qos(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSOC", "|normal,long,short|long\n|normal,gpu|\n")
    monkeypatch.setenv("QOS", "8\n\n2\n")
    fake.add("sacctmgr", script=SACCTMGR)
    assert SlurmCommands(**FAST).max_submit_jobs("bob") == 2
    assert fake.argv("sacctmgr", 2)[4] == "gpu,long,normal"


def test_max_submit_jobs_defaults_to_the_current_user(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSOC", "")
    monkeypatch.setenv("LOGNAME", "carol")
    fake.add("sacctmgr", script=SACCTMGR)
    assert SlurmCommands(**FAST).max_submit_jobs() is None
    assert fake.argv("sacctmgr")[4] == "user=carol"


def test_max_submit_jobs_never_fails(fake: Fake) -> None:
    assert only_fakes(fake).max_submit_jobs("dave") is None  # no sacctmgr
    fake.add("sacctmgr", stderr="sacctmgr: error: Problem talking to the database: Connection refused\n", exit_code=1)
    slurm = SlurmCommands(**FAST)
    assert slurm.max_submit_jobs("dave") is None
    assert slurm.accounting_problem is not None
    fake.add("sacctmgr", "lots|normal|\n")
    assert SlurmCommands(**FAST).max_submit_jobs("dave") is None


# -- scancel -----------------------------------------------------------------------------------


def test_scancel_one_call(fake: Fake) -> None:
    fake.add("scancel")
    slurm = SlurmCommands(**FAST)
    slurm.scancel(["123", "123_4", "124", "123"])
    assert fake.argv("scancel") == ["123", "123_4", "124"]
    slurm.scancel([])
    assert slurm.calls["scancel"] == 1


def test_scancel_failures(fake: Fake) -> None:
    fake.add("scancel", stderr="scancel: error: Kill job error on job id 5: Access/permission denied\n", exit_code=1)
    with pytest.raises(SlurmError, match="scancel failed \\(exit 1\\): Kill job error") as caught:
        SlurmCommands(**FAST).scancel(["5"])
    assert not isinstance(caught.value, SlurmUnavailable)
    fake.add("scancel", fail_times=1, fail_stderr="scancel: error: Socket timed out on send/recv operation\n")
    slurm = SlurmCommands(**FAST)
    with pytest.raises(SlurmUnavailable, match="may or may not have been cancelled") as unknown:
        slurm.scancel(["5"])
    assert unknown.value.outcome_unknown is True
    assert slurm.calls["scancel"] == 1  # not retried

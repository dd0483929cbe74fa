"""Support for the reliability suite (tests/test_reliability_*.py, issue 6).

1. The recorder. Each test names the fault or bad input it tries and what it expects, then says
   what it observed; the test's result (passed, failed, xfail = a known bug, skipped) is added by a
   pytest hook and the case is appended as one JSON line to `$RELIABILITY_LOG` (default
   `<rootdir>/.reliability/cases.jsonl`). `python scripts/reliability-report.py` turns that file
   into docs/RELIABILITY.md. Use it through a fixture in the test module:

       @pytest.fixture
       def reliability_case(request):
           return reliability.case_factory(request)

       def test_sbatch_hangs(reliability_case):
           case = reliability_case("Slurm faults", "sbatch hangs", expected="exit 1, record unconfirmed")
           ...
           case.observed("exit 1 after the 2 s timeout; record unconfirmed; reconciled by the next submit")

   The factory registers the hook plugin itself on first use (tests/conftest.py is not ours).

2. Helpers for the tests that use the real Slurm test cluster: the shared cluster lock, cancelling
   a project's own jobs by id, restoring the cluster, and the independent exactly-once count.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

# -- 1. the recorder -----------------------------------------------------------------------------

LOG_VARIABLE = "RELIABILITY_LOG"
DEFAULT_LOG = Path(".reliability") / "cases.jsonl"
_PLUGIN_NAME = "orchestrator-reliability-recorder"
_TMP = re.compile(r"/tmp/pytest-of-[^/ ]+/pytest-\d+/[^/ ]+")  # pytest's tmp_path, shortened in the table


@dataclass
class Case:
    category: str
    fault: str
    expected: str
    nodeid: str
    observed_text: str = ""

    def observed(self, text: str) -> None:
        """What actually happened (shown in the table beside the expected outcome)."""
        self.observed_text = _TMP.sub("<tmp>", " ".join(text.split()))

    # an alias that reads well in tests: case.outcome("...")
    outcome = observed


@dataclass
class _Recorder:
    """A pytest plugin: collects each test's cases and appends them, with the result, at teardown."""

    path: Path
    pending: dict[str, list[Case]] = field(default_factory=dict)
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # nodeid -> (result, detail)

    def add(self, case: Case) -> None:
        self.pending.setdefault(case.nodeid, []).append(case)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.pending:
            return
        result, detail = self.results.get(report.nodeid, ("passed", ""))
        if report.when == "call" or (report.when == "setup" and not report.passed):
            result, detail = _result_of(report)
        elif report.when == "teardown" and report.failed and result == "passed":
            result, detail = "error", _short(report)
        self.results[report.nodeid] = (result, detail)
        if report.when != "teardown":
            return
        self.results.pop(report.nodeid, None)
        cases = self.pending.pop(report.nodeid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for case in cases:
                entry = {
                    "category": case.category,
                    "fault": case.fault,
                    "expected": case.expected,
                    "observed": case.observed_text or (f"(not reached: {detail})" if detail else "(not recorded)"),
                    "result": result,
                    "bug": detail if result == "xfail" else "",
                    "nodeid": case.nodeid,
                    "time": datetime.now().astimezone().isoformat(timespec="seconds"),
                }
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _result_of(report: pytest.TestReport) -> tuple[str, str]:
    xfail_reason = getattr(report, "wasxfail", None)
    if xfail_reason is not None:
        if report.skipped:
            return "xfail", xfail_reason.removeprefix("reason: ")
        return "xpass", xfail_reason
    if report.passed:
        return "passed", ""
    if report.skipped:
        return "skipped", _short(report)
    return "failed" if report.when == "call" else "error", _short(report)


def _short(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _log_path(config: pytest.Config) -> Path:
    configured = os.environ.get(LOG_VARIABLE)
    return Path(configured) if configured else Path(config.rootpath) / DEFAULT_LOG


def case_factory(request: pytest.FixtureRequest) -> Callable[..., Case]:
    """The `reliability_case` fixture's value: `make(category, fault, expected=...)` -> a Case.

    Each test module declares the fixture (tests/conftest.py is not ours to extend):

        @pytest.fixture
        def reliability_case(request):
            return reliability.case_factory(request)
    """
    manager = request.config.pluginmanager
    recorder = manager.get_plugin(_PLUGIN_NAME)
    if recorder is None:
        recorder = _Recorder(_log_path(request.config))
        manager.register(recorder, _PLUGIN_NAME)

    def make(category: str, fault: str, expected: str) -> Case:
        case = Case(category, fault, " ".join(expected.split()), request.node.nodeid)
        recorder.add(case)
        return case

    return make


# -- 2. the real Slurm test cluster ------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
# The cluster is shared with other test runs on the machine: hold this lock (flock(1) compatible)
# while submitting or touching the daemons.
CLUSTER_LOCK = Path(os.environ.get("ORCH_SLURM_LOCK", "/tmp/orch-slurm.lock"))
SLURMCTLD_PID = Path("/run/slurmctld.pid")
TAG = re.compile(r"orch-[A-Za-z0-9-]+")


@dataclass
class ClusterSession:
    """What a test did to the shared cluster, so that the fixture can undo it."""

    projects: list[Path] = field(default_factory=list)
    max_submit_changed: bool = False
    slurmctld_stopped: bool = False
    start: str = ""


@contextlib.contextmanager
def cluster_session() -> Iterator[ClusterSession]:
    """Hold the cluster lock; afterwards cancel, by id, every job of the session's projects, and
    restart slurmctld and remove the submit limit where the test changed them (also on failure)."""
    CLUSTER_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with CLUSTER_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        session = ClusterSession(start=slurm_time(datetime.now() - timedelta(minutes=2)))
        try:
            yield session
        finally:
            try:
                if session.slurmctld_stopped or not slurmctld_running():
                    start_cluster()
            finally:
                try:
                    if session.max_submit_changed:
                        set_max_submit(None)
                finally:
                    for project in session.projects:
                        cancel_project_jobs(project)


def slurm_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def set_max_submit(limit: int | None) -> None:
    subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "set-max-submit", "none" if limit is None else str(limit)],
        check=True,
        capture_output=True,
        timeout=180,
    )


def slurmctld_running() -> bool:
    try:
        pid = int(SLURMCTLD_PID.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def stop_slurmctld() -> None:
    """Stop slurmctld for real (as `kill $(cat /run/slurmctld.pid)`) and wait until it is gone."""
    pid = int(SLURMCTLD_PID.read_text().split()[0])
    os.kill(pid, 15)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"slurmctld (pid {pid}) did not stop within 60 s")


def start_cluster() -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPT), "up"], check=True, capture_output=True, timeout=300)


def project_tags(project: Path) -> dict[str, list[list[int]]]:
    """Every submission tag the project knows -> its array task lines (task id -> experiment indices).

    From the task files (.orchestrator/runs/<tag>/tasks.txt: what the jobs actually read) and, for
    tags without one, from the ledger records that can still be parsed.
    """
    state = project / ".orchestrator"
    tags: dict[str, list[list[int]]] = {}
    runs = state / "runs"
    if runs.is_dir():
        for run in sorted(runs.iterdir()):
            try:
                lines = (run / "tasks.txt").read_text().splitlines()
            except OSError:
                lines = []
            tags[run.name] = [[int(i) for i in line.split()] for line in lines]
    for path in sorted((state / "ledger").glob("**/*.json")):
        found = TAG.search(path.name)
        try:
            record = json.loads(path.read_text())
            tag, tasks = record["tag"], record["tasks"]
        except (OSError, ValueError, KeyError, TypeError):
            if found and found.group(0) not in tags:
                tags[found.group(0)] = []
            continue
        if tag not in tags or not tags[tag]:
            tags[tag] = tasks
    return tags


@dataclass(frozen=True)
class SlurmTask:
    job_id: str
    task_id: int
    state: str
    name: str


_SACCT_ID = re.compile(r"(\d+)_(\d+|\[[^\]]*\])$")


def _expand(spec: str) -> list[int]:
    """`[0-3,7%2]` or `5` -> task ids."""
    spec = spec.strip("[]").split("%")[0]
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            low, high = part.split("-")
            out.extend(range(int(low), int(high) + 1))
        elif part:
            out.append(int(part))
    return out


def slurm_tasks(tags: list[str], since: str) -> list[SlurmTask]:
    """Every array task whose job name is one of `tags`: from sacct, and from squeue (all states, so a task
    that has just ended is seen before accounting has it)."""
    if not tags:
        return []
    found: dict[tuple[str, int], SlurmTask] = {}
    env = {**os.environ, "SLURM_BITSTR_LEN": "0"}
    names = ",".join(tags)
    acct = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-o", "JobID,JobName,State", "-S", since, f"--name={names}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    for line in acct.stdout.splitlines():
        parts = line.split("|")
        if len(parts) < 3 or parts[1] not in tags:
            continue
        match = _SACCT_ID.match(parts[0])
        if match is None:
            continue
        for task_id in _expand(match.group(2)):
            found[(match.group(1), task_id)] = SlurmTask(match.group(1), task_id, parts[2].split()[0], parts[1])
    queue = subprocess.run(
        ["squeue", "--me", "--states=all", "-r", "-h", "-o", "%F|%K|%T|%j"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    for line in queue.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[3] in tags and parts[1].isdigit():
            found[(parts[0], int(parts[1]))] = SlurmTask(parts[0], int(parts[1]), parts[2], parts[3])
    return sorted(found.values(), key=lambda t: (int(t.job_id), t.task_id))


@dataclass
class Holders:
    """Which live or completed Slurm tasks hold each index of a project (cancelled ones excluded)."""

    by_index: dict[int, list[SlurmTask]]
    jobs: set[str]

    def duplicates(self) -> dict[int, list[str]]:
        return {i: [f"{t.job_id}_{t.task_id}" for t in ts] for i, ts in sorted(self.by_index.items()) if len(ts) > 1}

    def unheld(self, total: int) -> list[int]:
        return [i for i in range(total) if not self.by_index.get(i)]


def holders(project: Path, since: str) -> Holders:
    tags = project_tags(project)
    by_index: dict[int, list[SlurmTask]] = {}
    jobs: set[str] = set()
    for task in slurm_tasks(sorted(tags), since):
        if task.state.startswith("CANCELLED"):
            continue
        lines = tags.get(task.name) or []
        if task.task_id >= len(lines):
            raise AssertionError(f"job {task.job_id} ({task.name}) has task {task.task_id}, not in its task file")
        jobs.add(task.job_id)
        for index in lines[task.task_id]:
            by_index.setdefault(index, []).append(task)
    return Holders(by_index, jobs)


def assert_exactly_once(project: Path, total: int, since: str) -> str:
    """Each of the `total` planned indices is held by exactly one live or completed task of ours.

    Counted independently of the orchestrator: tags from the project's files, tasks from squeue and
    sacct. Returns a one-line summary for the reliability table.
    """
    found = holders(project, since)
    for _ in range(10):  # a task that ended a moment ago may be in neither squeue's memory nor sacct yet
        if not found.unheld(total) or found.duplicates():
            break
        time.sleep(1)
        found = holders(project, since)
    duplicates = found.duplicates()
    unheld = found.unheld(total)
    assert not duplicates, f"indices held by more than one task: {duplicates}"
    assert not unheld, f"indices held by no task (lost): {unheld}"
    return f"{total}/{total} indices held by exactly one task ({len(found.jobs)} jobs)"


def cancel_project_jobs(project: Path) -> None:
    """Cancel, by id, every job whose name is one of the project's tags."""
    tags = set(project_tags(project))
    if not tags:
        return
    queue = subprocess.run(["squeue", "--me", "-h", "-o", "%F|%j"], capture_output=True, text=True, timeout=60)
    ids = sorted({line.split("|")[0] for line in queue.stdout.split() if line.split("|")[-1] in tags})
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


# -- small helpers shared by the test modules -------------------------------------------------------


def one_line(text: str) -> str:
    """The text's only line (asserting there is exactly one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line, got {len(lines)}: {text!r}"
    return lines[0]


def tree_snapshot(root: Path) -> dict[str, str]:
    """Relative path -> a fingerprint (kind, size, mtime) of everything under root."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            out[str(path.relative_to(root))] = f"{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}"
    return out

"""Support for tests against the real Slurm test cluster (scripts/slurm-test-cluster.sh).

- The cluster lock. The cluster is shared by several test runs on this machine: every test marked
  `slurm` holds an exclusive flock on $ORCH_SLURM_LOCK (default /tmp/orch-slurm.lock, the lock
  `flock(1)` and the benchmarks take) from its set-up to its teardown, module fixtures included;
  tests/conftest.py takes it, once per test. `require_slurm()` refuses to run without it, so a test
  that uses the cluster without the marker fails instead of racing other runs.
- Restoring the cluster after a test that stopped slurmctld or set a submit limit, and cancelling,
  by id, the jobs of a test's projects (`cluster_session`, the `cluster` fixture).
- The independent exactly-once count: which live or completed tasks of ours hold each index, from
  the project's files, squeue and sacct, without the orchestrator.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support import IN_CI, REPO

CLUSTER_SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
SLURMCTLD_PID = Path("/run/slurmctld.pid")
TAG = re.compile(r"orch-[A-Za-z0-9-]+")
LOCK_WAIT_SECONDS = 1800  # another run's Slurm test holds it for minutes at most; beyond this, something is stuck


def slurm_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# sacct's window for the exactly-once count (job names are unique tags, so a wide window is harmless)
SINCE = slurm_time(datetime.now() - timedelta(hours=2))


# -- the cluster lock -------------------------------------------------------------------------------


def cluster_lock_path() -> Path:
    return Path(os.environ.get("ORCH_SLURM_LOCK", "/tmp/orch-slurm.lock"))


_lock_held = False


@contextlib.contextmanager
def cluster_lock() -> Iterator[None]:
    """Hold the shared cluster's lock (flock(2) on the whole file, as `flock(1)` takes it).

    Not re-entrant: a second flock from this process would wait for itself, so nesting is an error.
    """
    global _lock_held
    if _lock_held:
        raise RuntimeError("the Slurm cluster lock is already held by this test process (nested)")
    path = cluster_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # stop the run, saying why: outside a test, a failure would be internal
                    pytest.exit(f"{path} (ORCH_SLURM_LOCK): held by another process for {LOCK_WAIT_SECONDS} s", 3)
                time.sleep(0.5)
        _lock_held = True
        try:
            yield
        finally:
            _lock_held = False  # closing the file releases the lock


def require_slurm() -> None:
    """Skip without a cluster, saying why; under CI=true a missing cluster is a failure.

    Only inside a test marked `slurm` (which holds the cluster lock).
    """
    if not _lock_held:
        raise AssertionError("a test that uses the Slurm cluster must be marked @pytest.mark.slurm (the cluster lock)")
    problem = None
    if shutil.which("sbatch") is None:
        problem = "sbatch is not on PATH"
    else:
        try:
            probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            problem = f"sinfo failed: {e}"
        else:
            if probe.returncode != 0:
                problem = f"sinfo failed: {probe.stderr.strip() or f'exit {probe.returncode}'}"
    if problem is None:
        return
    message = f"needs the Slurm test cluster (scripts/slurm-test-cluster.sh up): {problem}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# -- changing the cluster, and putting it back ------------------------------------------------------


@dataclass
class ClusterSession:
    """What a test did to the shared cluster, so that the fixture can undo it."""

    projects: list[Path] = field(default_factory=list)
    max_submit_changed: bool = False
    slurmctld_stopped: bool = False


@contextlib.contextmanager
def cluster_session() -> Iterator[ClusterSession]:
    """Afterwards cancel, by id, every job of the session's projects, and restart slurmctld and remove
    the submit limit where the test changed them (also on failure). The caller holds the cluster lock."""
    session = ClusterSession()
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


def cancel_project_jobs(project: Path) -> None:
    """Cancel, by id, every job whose name is one of the project's tags."""
    tags = set(project_tags(project))
    if not tags:
        return
    ids = sorted({job for job, name in queued_jobs() if name in tags})
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


# -- the queue, asked directly ----------------------------------------------------------------------


def queued_jobs() -> list[tuple[str, str]]:
    """(array job id, job name) of each of our jobs in squeue."""
    queue = subprocess.run(["squeue", "--me", "-h", "-o", "%F|%j"], capture_output=True, text=True, timeout=60)
    return [(line.split("|")[0], line.split("|")[-1]) for line in queue.stdout.split()]


def queued_tasks() -> int:
    """Array tasks in the queue, everyone's."""
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60).stdout
    return len(out.split())


# -- the exactly-once count -------------------------------------------------------------------------


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


def slurm_tasks(tags: list[str], since: str = SINCE) -> list[SlurmTask]:
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


def holders(project: Path, since: str = SINCE) -> Holders:
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


def assert_exactly_once(project: Path, total: int, since: str = SINCE) -> str:
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

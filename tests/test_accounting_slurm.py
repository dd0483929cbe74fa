"""Issue 15 on the real Slurm test cluster: status tells the truth whatever sacct prints.

1. The issue's reproduction, ten times at once: an entry that exits 3 for every index, `throttle: 1`,
   `orchestrator cancel` right after task 4 has ended. sacct then often prints task 4's own record
   and the array's range record that still covers it (`J_4|FAILED|3:0`, `J_[4-9%1]|CANCELLED by 0`).
   Every index that ran must be `failed, FAILED exit 3`, the cancelled ones missing, in `status`
   and in `logs`, each time. The ten sweeps run as ten projects at once, each cancelled by a watcher
   the moment its own task 4 has left the queue (one shared squeue per look, every 0.1 s).
2. A task requeued with `scontrol requeue` after it failed runs again under the same id: it is
   pending (not failed) until then, done after, and counted as one attempt.

Ground truth is found without the library: the per-index status files the job script writes, the
queue from squeue, the attempts from `sacct -D`. Only our own job ids are ever cancelled.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from slurm_support import require_slurm
from support import REPO, orchestrator, status_json, wait_for

from orchestrator.slurm_formats import format_ranges, parse_ranges

pytestmark = pytest.mark.slurm

EXPERIMENT = "experiments/E/sweep.json"
TOTAL = 10
REPEATS = 10
FAIL_PROFILE = 'throttle: 1\ntime: "0:05:00"\nmem_per_cpu: 100M\ncommand: exit 3\n'
FAULTY = REPO / "tests" / "data" / "faulty" / "faulty.py"


@dataclass
class Sweep:
    """One project with one submitted array, and what happened to it."""

    project: Path
    job_id: str = ""
    log_dir: Path = Path()
    cancelled: set[int] = field(default_factory=set)

    def ran(self) -> dict[int, str]:
        """index -> the exit code in its status file (ground truth: written by the job script)."""
        codes = {}
        for index in range(TOTAL):
            path = self.log_dir / f"{index}.status"
            if path.is_file():
                codes[index] = path.read_text().strip()
        return codes


def make_project(root: Path, profile: str, experiment: dict) -> Path:
    root.mkdir(parents=True)
    shutil.copy(REPO / "config.json", root / "config.json")
    (root / "experiments" / "E").mkdir(parents=True)
    (root / EXPERIMENT).write_text(json.dumps(experiment))
    (root / "prof.yaml").write_text(profile)
    return root


def submit(sweep: Sweep) -> None:
    result = orchestrator("submit", EXPERIMENT, "--cluster", "prof.yaml", "--json", cwd=sweep.project)
    assert result.returncode == 0, result.stderr + result.stdout
    (submission,) = json.loads(result.stdout)["submissions"]
    sweep.job_id = submission["job_id"]
    sweep.log_dir = sweep.project / ".logs" / "E" / submission["tag"]


def cancel(sweep: Sweep) -> None:
    result = orchestrator("cancel", EXPERIMENT, "--json", cwd=sweep.project)
    assert result.returncode == 0, result.stderr
    sweep.cancelled = {i for c in json.loads(result.stdout)["cancelled"] for i in parse_ranges(c["indices"])}


def queued(job_ids: list[str]) -> set[tuple[str, int]]:
    """(job id, task) of our tasks still in the queue, from squeue's own output."""
    out = subprocess.run(
        ["squeue", "--me", "-r", "-h", "-o", "%F|%K"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    tasks = set()
    for line in out.splitlines():
        job, task = line.strip().split("|")
        if job in job_ids and task.isdigit():
            tasks.add((job, int(task)))
    return tasks


def stale_range_printed(job_id: str) -> bool:
    """Whether sacct prints a task both alone and inside the array's range record (the issue's quirk)."""
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-j", job_id, "-o", "JobID"], capture_output=True, text=True, timeout=60
    ).stdout.split()
    own = {int(j.split("_")[1]) for j in out if re.fullmatch(rf"{job_id}_\d+", j)}
    ranges = [parse_ranges(j.split("_", 1)[1]) for j in out if j.startswith(f"{job_id}_[")]
    return any(own & set(r) for r in ranges)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    job_ids: list[str] = []
    yield job_ids
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)


def cancel_each_after_its_task_4(sweeps: list[Sweep], pool: ThreadPoolExecutor) -> None:
    """`orchestrator cancel` for each sweep the moment its task 4 wrote its status and left the queue."""
    watching = list(sweeps)
    cancels: list[Future[None]] = []
    deadline = time.monotonic() + 240
    while watching:
        assert time.monotonic() < deadline, f"task 4 never ended in {[s.job_id for s in watching]}"
        live = queued([s.job_id for s in watching])
        for sweep in list(watching):
            if (sweep.log_dir / "4.status").is_file() and (sweep.job_id, 4) not in live:
                cancels.append(pool.submit(cancel, sweep))
                watching.remove(sweep)
        time.sleep(0.1)
    for done in cancels:
        done.result()


def check_status_and_logs(sweep: Sweep) -> None:
    ran = sweep.ran()
    assert 4 in ran and set(ran.values()) == {"3"}, ran
    never_ran = set(range(TOTAL)) - set(ran)
    assert never_ran <= sweep.cancelled, (never_ran, sweep.cancelled)
    status = status_json(sweep.project, EXPERIMENT)
    expected = {"FAILED exit 3": format_ranges(ran)}
    assert status["failed_reasons"] == expected, (sweep.job_id, status["failed_reasons"], expected)
    assert status["indices"]["missing"] == format_ranges(never_ran), (sweep.job_id, status["indices"])
    assert status["running"] == status["pending"] == status["done"] == 0
    logs = orchestrator("logs", EXPERIMENT, "4", cwd=sweep.project)
    assert logs.returncode == 0, logs.stderr
    assert f"job {sweep.job_id}_4, failed (FAILED exit 3), attempt 1" in logs.stdout.splitlines()[0], logs.stdout


def test_an_index_that_failed_before_a_cancel_is_failed_exit_3_every_time(
    tmp_path: Path, cleanup: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    require_slurm()
    started = time.monotonic()
    experiment = {"agent": "A", "metaParameters": {"mode": "fail", "k": list(range(TOTAL))}}
    sweeps = [Sweep(make_project(tmp_path / f"run{i}", FAIL_PROFILE, experiment)) for i in range(REPEATS)]
    with ThreadPoolExecutor(REPEATS) as pool:
        list(pool.map(submit, sweeps))
        cleanup.extend(s.job_id for s in sweeps)
        cancel_each_after_its_task_4(sweeps, pool)
        job_ids = [s.job_id for s in sweeps]
        wait_for(lambda: not queued(job_ids), 60, "our tasks to leave the queue after the cancels", interval=0.5)
        # at once, while sacct may still lag behind; then once it has recorded the cancels
        list(pool.map(check_status_and_logs, sweeps))
        time.sleep(5)
        list(pool.map(check_status_and_logs, sweeps))
        stale = sum(pool.map(stale_range_printed, job_ids))
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\n{REPEATS} cancelled sweeps in {took:.0f} s; sacct printed a stale range for {stale} of them")


REQUEUE_PROFILE = """\
time: "0:05:00"
mem_per_cpu: 100M
command: '[ "${{SLURM_RESTART_COUNT:-0}}" != 0 ] || exit 3; python faulty.py -e {experiment} -i {index}'
"""


def attempts_in_accounting(job_id: str, task: int) -> list[str]:
    out = subprocess.run(
        ["sacct", "-D", "-X", "-P", "-n", "-j", job_id, "-o", "JobID,State"], capture_output=True, text=True, timeout=60
    ).stdout
    return [line.split("|")[1] for line in out.splitlines() if line.startswith(f"{job_id}_{task}|")]


def test_a_requeued_index_is_pending_then_done_and_counts_once(tmp_path: Path, cleanup: list[str]) -> None:
    """Both indices exit 3 on their first attempt; task 0 is requeued and then writes its result."""
    require_slurm()
    sweep = Sweep(
        make_project(tmp_path / "proj", REQUEUE_PROFILE, {"agent": "F", "metaParameters": {"behave": ["ok", "ok.2"]}})
    )
    shutil.copy(FAULTY, sweep.project / "faulty.py")
    submit(sweep)
    cleanup.append(sweep.job_id)
    wait_for(lambda: status_json(sweep.project, EXPERIMENT)["failed"] == 2, 60, "both indices to fail", interval=0.5)

    subprocess.run(["scontrol", "requeue", f"{sweep.job_id}_0"], check=True, capture_output=True, timeout=60)
    status = status_json(sweep.project, EXPERIMENT)
    assert status["indices"]["pending"] == "0" and status["failed_reasons"] == {"FAILED exit 3": "1"}, status
    assert sweep.ran() == {0: "3", 1: "3"}, "index 0's status file is still the first attempt's"
    logs = orchestrator("logs", EXPERIMENT, "0", cwd=sweep.project)
    # the reason squeue gives varies (BeginTime: the delay a requeue adds; NonZeroExitCode at first)
    assert re.search(rf"job {sweep.job_id}_0, pending( \(\w+\))?, attempt 1;", logs.stdout), logs.stdout
    dry = orchestrator("submit", EXPERIMENT, "--cluster", "prof.yaml", "--dry-run", "--json", cwd=sweep.project)
    assert [s["indices"] for s in json.loads(dry.stdout)["submissions"]] == ["1"], "a requeued index is not sent again"

    # a requeue delays the next start by about 2 minutes: release it now
    subprocess.run(["scontrol", "update", f"JobId={sweep.job_id}_0", "StartTime=now"], check=True, timeout=60)
    wait_for(lambda: status_json(sweep.project, EXPERIMENT)["done"] == 1, 90, "the requeued index to finish")
    status = status_json(sweep.project, EXPERIMENT)
    assert status["indices"]["done"] == "0" and status["failed_reasons"] == {"FAILED exit 3": "1"}, status
    logs = orchestrator("logs", EXPERIMENT, "0", cwd=sweep.project)
    assert f"job {sweep.job_id}_0, done, attempt 1" in logs.stdout, logs.stdout
    wait_for(lambda: attempts_in_accounting(sweep.job_id, 0)[-1:] == ["COMPLETED"], 30, "sacct to record the rerun")
    assert attempts_in_accounting(sweep.job_id, 0) == ["REQUEUED", "COMPLETED"]  # Slurm ran it twice

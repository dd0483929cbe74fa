"""Nothing lost, nothing doubled: slurmctld stopped, its limits unreadable or reached (issue 6, item 2).

Each test runs `orchestrator submit` against the real Slurm test cluster on a copy of the example
project (30 indices with `--runs 3`), held so that nothing runs, then a recovery `submit` and the
independent exactly-once count (tests/reliability.py, tests/slurm_support.py).
slurmctld is stopped for real and the submit limit set for real; the `cluster` fixture restarts
slurmctld and lifts the limit afterwards, also when the test fails.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from reliability import (
    EXPERIMENT,
    RUNS,
    TOTAL,
    cli,
    environment,
    new_project,
    records,
    recover,
    submit,
    submit_first_run,
)
from slurm_support import ClusterSession, holders, queued_tasks, set_max_submit, start_cluster, stop_slurmctld
from support import one_line, wait_for

from orchestrator.slurm_formats import parse_ranges

pytestmark = pytest.mark.reliability("Slurm faults")


@pytest.mark.slurm
def test_slurmctld_stopped_then_restarted(
    held_project: Path, tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    case = reliability_case(
        "slurmctld stopped for real (kill $(cat /run/slurmctld.pid)), with jobs of ours in the ledger",
        expected="submit and status exit 1 with one clear line; nothing recorded as submitted; after the "
        "restart a submit goes through exactly once",
    )
    submit_first_run(held_project)
    fresh = new_project(tmp_path / "fresh", cluster)
    before = records(held_project)
    # one short try per command: the retries are tested on their own (test_reliability_squeue_sacct.py)
    env = environment(tmp_path, ORCHESTRATOR_SLURM_TIMEOUT="2", ORCHESTRATOR_SLURM_ATTEMPTS="1")
    cluster.slurmctld_stopped = True
    stop_slurmctld()
    try:
        sub = submit(held_project, env=env)
        stat = cli(held_project, "status", EXPERIMENT, *RUNS, env=env)
        fresh_sub = submit(fresh, env=env)
    finally:
        start_cluster()
        cluster.slurmctld_stopped = False
    sub_line, stat_line, fresh_line = one_line(sub.stderr), one_line(stat.stderr), one_line(fresh_sub.stderr)
    assert sub.returncode == 1 and "nothing was submitted" in sub_line, sub_line
    assert stat.returncode == 1 and "squeue" in stat_line, stat_line
    assert fresh_sub.returncode == 1 and "Traceback" not in fresh_sub.stderr
    assert records(held_project) == before  # nothing recorded as submitted, nothing changed
    assert [r for r in records(fresh) if r.get("status") == "submitted"] == []
    summary = recover(held_project)
    fresh_summary = recover(fresh)
    case.observed(
        f"submit exit 1: {sub_line}; status exit 1: {stat_line}; fresh project submit exit 1: {fresh_line}; "
        f"after restart: {summary}; fresh project: {fresh_summary}"
    )


@pytest.mark.slurm
def test_limits_unreadable_message_says_nothing_was_submitted(
    held_project: Path, tmp_path: Path, reliability_case
) -> None:
    case = reliability_case(
        "Slurm's limits cannot be read (scontrol missing from PATH; the same path as slurmctld down)",
        expected="exit 1 with one line that says nothing was submitted",
    )
    result = submit(held_project, env=environment(tmp_path, hide=("scontrol",)))
    line = one_line(result.stderr)
    case.observed(f"exit {result.returncode}: {line}")
    assert result.returncode == 1
    assert records(held_project) == []
    assert "nothing was submitted" in line


@pytest.mark.slurm
def test_submit_limit_unknown_then_known_then_lifted(
    held_project: Path, tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    unknown = reliability_case(
        "submit limit (MaxSubmitJobs = queued + 9) the orchestrator cannot read (sacctmgr hidden): Slurm "
        "refuses the 11-task arrays with AssocMaxSubmitJobLimit",
        expected="exit 0; refused arrays recorded `rejected` and reported 'not yet submitted'; what fits goes out",
    )
    known = reliability_case(
        "the same submit limit, readable through sacctmgr",
        expected="exit 0; arrays cut to the free capacity, the rest 'not yet submitted'; no refusal",
    )
    lifted = reliability_case(
        "the submit limit lifted after both",
        expected="the next submit sends the rest: every index exactly once",
    )
    with contextlib.suppress(AssertionError):  # other users' jobs: the limit below is relative to them
        wait_for(lambda: queued_tasks() == 0, 60, "an empty queue before the limit test")
    base = queued_tasks()
    cluster.max_submit_changed = True
    set_max_submit(base + 9)
    result = submit(held_project, "--json", env=environment(tmp_path, hide=("sacctmgr",)))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sent = [i for s in report["submissions"] for i in parse_ranges(s["indices"])]
    waiting = parse_ranges(report["experiments"][0]["not_yet_submitted"])
    rejected = [r for r in records(held_project) if r["status"] == "rejected"]
    assert sorted(sent + waiting) == list(range(TOTAL))
    assert all("AssocMaxSubmitJobLimit" in r["note"] for r in rejected)
    assert sorted(i for r in rejected for t in r["tasks"] for i in t) == sorted(waiting)
    if base == queued_tasks() == len(sent):
        assert len(rejected) == 2 and sorted(sent) == list(range(22, 30))
    assert not holders(held_project).duplicates()
    unknown.observed(
        f"exit 0; sent {len(sent)} indices; {len(rejected)} arrays refused by Slurm (AssocMaxSubmitJobLimit), "
        f"recorded rejected; not yet submitted: {report['experiments'][0]['not_yet_submitted']}; notes: "
        f"{report['notes']}"
    )
    second = submit(held_project, "--json")
    assert second.returncode == 0, second.stderr
    report2 = json.loads(second.stdout)
    sent2 = [i for s in report2["submissions"] for i in parse_ranges(s["indices"])]
    assert len([r for r in records(held_project) if r["status"] == "rejected"]) == len(rejected)  # no new refusal
    assert not set(sent2) & set(sent)
    known.observed(
        f"exit 0; sent {len(sent2)} more (the free capacity); not yet submitted: "
        f"{report2['experiments'][0]['not_yet_submitted']}; no new rejection"
    )
    set_max_submit(None)
    cluster.max_submit_changed = False
    lifted.observed(recover(held_project))

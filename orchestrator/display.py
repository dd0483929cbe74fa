"""What the commands print for people: pure functions from reports to lines of text.

JSON output is the reports' own `to_json`; this module is the human side, kept out of the CLI so
that the CLI only parses, calls and prints, and so that every line can be tested as text.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from orchestrator.breakdown import ByParameter, axis_label
from orchestrator.cost import CostSummary
from orchestrator.index_set import IndexSet, union_all
from orchestrator.planner import ExperimentPlan
from orchestrator.state import DONE, FAILED, GIVEN_UP, STATES, ExperimentStatus
from orchestrator.submit import SubmitReport
from orchestrator.util import progress_bar

_ALWAYS_SHOWN = ("running", "pending", "failed", "missing")


def status_line(status: ExperimentStatus) -> str:
    """`path  [####....] 18/30 done  running 2  pending 3  failed 3  missing 4` (and any others)."""
    counts = status.counts()
    total = status.plan.total
    shown = [s for s in STATES if s != DONE and (counts[s] or s in _ALWAYS_SHOWN)]
    others = "  ".join(_count(state, counts) for state in shown)
    return f"{status.plan.path}  {progress_bar(counts[DONE], total)} {counts[DONE]}/{total} done  {others}"


def _count(state: str, counts: dict[str, int]) -> str:
    if state == FAILED and counts[GIVEN_UP]:
        return f"failed {counts[FAILED]} (given up {counts[GIVEN_UP]})"
    return f"{state} {counts[state]}"


def status_lines(status: ExperimentStatus) -> Iterator[str]:
    yield status_line(status)
    for reason, indices in sorted(status.reasons(FAILED).items()):
        yield f"  failed, {reason}: {indices.text()}"
    if status.sets[GIVEN_UP]:
        given_up = status.sets[GIVEN_UP].text()
        yield f"  given up after {status.max_attempts} attempts (submit --retry-given-up resends): {given_up}"
    if status.edited_since:
        yield (
            f"  note: the experiment file changed since {len(status.edited_since)} submission(s); "
            "their indices are matched by params"
        )
    for note in status.notes:
        yield f"  note: {note}"


def submit_lines(report: SubmitReport, failed: bool = False) -> Iterator[str]:
    for s in report.submissions:
        if report.dry_run:
            yield f"--- {s.experiment}: would submit {s.tasks} task(s), indices {s.indices.text()}"
            yield s.script_text.rstrip("\n")
            continue
        where = f"job {s.job_id}" if s.job_id else "ran locally"
        yield (
            f"{s.experiment}: {where} ({s.tag}): {s.tasks} task(s), indices {s.indices.text()}"
            f"  [time {s.resources.time}, mem/cpu {s.resources.mem_per_cpu}]"
        )
    yield from _outcome_lines(report)
    yield from (f"note: {note}" for note in report.notes)
    if report.dry_run and report.submissions:
        yield dry_run_summary(report)
    elif not report.submissions and not failed:  # a failed submit says on stderr what was not submitted
        skipped = ", ".join(
            f"{o.experiment}: {o.skipped['done']} done, {o.skipped['running']} running, {o.skipped['pending']} pending"
            for o in report.outcomes
        )
        yield f"Nothing to submit ({skipped})."
    if not report.dry_run:
        yield from local_failure_summary(report)


def _outcome_lines(report: SubmitReport) -> Iterator[str]:
    for o in report.outcomes:
        if o.not_yet_submitted:
            yield (
                f"{o.experiment}: not yet submitted (submit limit): {o.not_yet_submitted.text()}; "
                "run submit again when jobs have finished"
            )
        if o.given_up:
            yield f"{o.experiment}: given up after max attempts: {o.given_up.text()} (--retry-given-up to resend)"
        if o.unknown:
            yield f"{o.experiment}: not submitted, the result store cannot tell if done: {o.unknown.text()}"


def dry_run_summary(report: SubmitReport) -> str:
    indices = sum(len(s.indices) for s in report.submissions)
    tasks = sum(s.tasks for s in report.submissions)
    experiments = len({s.experiment for s in report.submissions})
    return (
        f"dry run: would submit {indices} indices as {tasks} task(s) in {len(report.submissions)} array(s)"
        f" for {experiments} experiment(s); nothing was submitted or recorded"
    )


def local_failure_summary(report: SubmitReport) -> Iterator[str]:
    """After a local run: how many indices ran, which failed, and the command to read the first failure."""
    ran = [s for s in report.submissions if s.executor == "local"]
    if not ran:
        return
    failed = union_all(s.failed_indices for s in ran)
    total = sum(len(s.indices) - len(s.unfinished) for s in ran)
    yield f"ran {total} indices here: {total - len(failed)} exited 0, {len(failed)} failed" + (
        f" ({failed.text()})" if failed else ""
    )
    first = next((s for s in ran if s.failed_indices), None)
    if first is not None:
        yield f"first failure: orchestrator logs {shlex.quote(first.experiment)} {first.failed_indices.first()}"


def interrupted_summary(report: SubmitReport, left: dict[str, IndexSet], resume: Sequence[str]) -> Iterator[str]:
    """After Ctrl-C: what went out or finished, what is left, and the command that resumes."""
    for s in report.submissions:
        finished = len(s.indices) - len(s.unfinished)
        yield f"{s.experiment}: {'submitted' if s.job_id else 'finished'} {finished} indices ({s.tag})"
    for experiment, indices in left.items():
        if indices:
            yield f"{experiment}: not run: {indices.text()}"
    yield f"resume with: {shlex.join(resume)}"


def plan_lines(plan: ExperimentPlan) -> Iterator[str]:
    """An experiment's size, swept axes and a few sample indices with their params and save paths."""
    yield plan.path
    yield (
        f"  permutations: {plan.num_permutations}   runs: {plan.runs}   total indices: {plan.total}"
        f" (0-{plan.total - 1})"
    )
    axes = [a for a in plan.sweep.axes if len(a.values) > 1]
    if axes:
        yield "  swept: " + ", ".join(f"{a.name} ({len(a.values)})" for a in axes)
    for index in _sample_indices(plan.total):
        info = plan.info(index)
        yield f"  [{index}] run {info.run}  {json.dumps(info.params)}\n      -> {info.save_path}"


def _sample_indices(total: int, count: int = 3) -> list[int]:
    if total <= count + 1:
        return list(range(total))
    return [*range(count - 1), total - 1]


class ScanProgress:
    """`scanning experiments/x.json: 120,000/1,000,000 permutations` on a terminal, once a scan has
    taken more than a second; rewritten in place, and ended with a newline when the scan ends."""

    def __init__(self, out: TextIO, after_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.after = after_seconds
        self.clock = clock
        self.started = clock()
        self.shown = False

    def __call__(self, experiment: str, done: int, total: int) -> None:
        if self.clock() - self.started < self.after:
            return
        self.out.write(f"\rscanning {experiment}: {done:,}/{total:,} permutations")
        self.shown = done < total
        if not self.shown:
            self.out.write("\n")
        self.out.flush()


def cost_line(summary: CostSummary) -> str:
    """`cost: 30 indices in 30 task(s), 89.99 CPU-hours at the requested limits (at most); ...`."""
    return summary.text()


def by_parameter_lines(by: ByParameter) -> Iterator[str]:
    """The values whose failures stand out (most striking first), then `lr=1.0: 30 failed (...)` per asked axis."""
    if by.standouts:
        yield "  failures stand out:"
        yield from (f"    {standout.text()}" for standout in by.standouts)
    if by.breakdown is None:
        return
    for position in by.positions:
        yield f"  by {axis_label(by.breakdown.sweep, position)}:"
        yield from (f"    {line}" for line in by.breakdown.lines(position))

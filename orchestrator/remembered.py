"""What the ledger remembers of a project's sweeps: how each experiment was last submitted.

`status`, `cancel` and `logs` plan an experiment the way it was last submitted (its `--runs` and
`--keys`) unless told otherwise, so a sweep submitted with `--runs 2` is not shown as half of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.ledger import Ledger
from orchestrator.sweep import DEFAULT_SWEEP_KEYS


@dataclass(frozen=True)
class PlanRequest:
    """How to plan one experiment, and which of it came from the last submission."""

    experiment: str
    runs: int
    keys: tuple[str, ...]
    remembered: tuple[str, ...] = ()  # e.g. ("--runs 2",): said once to the user

    def note(self) -> str | None:
        if not self.remembered:
            return None
        return f"{self.experiment}: {' '.join(self.remembered)} as last submitted (pass them to change)"


def planned_as(
    ledger: Ledger,
    experiment: str,
    runs: int | None,
    keys: Sequence[str] | None,
) -> PlanRequest:
    """Given options first (the command line, or the project's settings where they fix them); then
    the last submission of the experiment; then the defaults (1 run, `metaParameters`)."""
    if runs is not None and keys is not None:
        return PlanRequest(experiment, runs, tuple(keys))
    last = ledger.last_submission(ledger.experiment_key(experiment))
    remembered = []
    if runs is None:
        runs = 1
        if last is not None and last.runs is not None and last.runs != runs:
            runs = last.runs
            remembered.append(f"--runs {runs}")
    if keys is None:
        keys = DEFAULT_SWEEP_KEYS
        if last is not None and tuple(last.keys) != tuple(keys):
            keys = tuple(last.keys)
            remembered.append(f"--keys {','.join(keys)}")
    return PlanRequest(experiment, runs, tuple(keys), tuple(remembered))


def submitted_experiments(ledger: Ledger) -> list[PlanRequest]:
    """Every experiment the ledger holds, planned as last submitted (for `status` without arguments)."""
    out = []
    for record in ledger.latest_records():
        experiment = record.experiment_key
        last = ledger.last_submission(experiment) or record
        out.append(PlanRequest(experiment, last.runs or 1, tuple(last.keys)))
    return out

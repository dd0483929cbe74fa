"""The result store: the one place that answers "which of these indices are done"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.completeness import present_results
from orchestrator.index_set import IndexSet
from orchestrator.planner import ExperimentPlan


@dataclass(frozen=True)
class DoneAnswer:
    """The store's answer for one experiment."""

    done: IndexSet
    unknown: IndexSet = field(default_factory=IndexSet)  # the store could not tell (a locked database)
    notes: tuple[str, ...] = ()
    kind: str = "paths"
    database: str | None = None


FindDone = Callable[[ExperimentPlan, "IndexSet | None"], DoneAnswer]


def paths_store(root: str, marker: str | None) -> FindDone:
    """Done: the save path exists (and holds `marker`, when one is set)."""

    def find(plan: ExperimentPlan, indices: IndexSet | None) -> DoneAnswer:
        return DoneAnswer(present_results(plan, root, marker, indices=indices))

    return find

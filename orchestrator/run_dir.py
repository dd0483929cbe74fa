"""The layout of `.orchestrator/` at the project root, and of one submission's run directory.

    .orchestrator/ledger/...        the records (see `ledger`)
    .orchestrator/runs/<tag>/       one submission: what went out
        job.sh                      the rendered array script
        tasks.txt                   line K+1: the space-separated indices of array task K
        experiment.json             the experiment as submitted: tasks that start after an edit run it
    .orchestrator/submit.lock       one submit at a time (see `submit_lock`)

Only this module spells these names; the ledger, the planner and the submitter go through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.util import atomic_write_text

STATE_DIR = ".orchestrator"


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


@dataclass(frozen=True)
class Snapshot:
    """The experiment file as it was at submission."""

    experiment: str
    content_hash: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RunDirectory:
    path: Path

    @classmethod
    def of(cls, root: Path, tag: str) -> RunDirectory:
        return cls(Path(root, STATE_DIR, "runs", tag))

    @property
    def script(self) -> Path:
        return self.path / "job.sh"

    @property
    def task_file(self) -> Path:
        return self.path / "tasks.txt"

    @property
    def snapshot_file(self) -> Path:
        return self.path / "experiment.json"

    def write(self, script_text: str, tasks: Iterable[Sequence[int]], snapshot: Snapshot) -> None:
        """Everything a submission's tasks read, each file atomically (OSError on failure)."""
        atomic_write_text(self.task_file, "".join(" ".join(map(str, task)) + "\n" for task in tasks))
        atomic_write_text(self.script, script_text)
        data = {"experiment": snapshot.experiment, "hash": snapshot.content_hash, "data": snapshot.data}
        atomic_write_text(self.snapshot_file, json.dumps(data))

    def read_tasks(self) -> list[list[int]]:
        """The task file (OSError, ValueError if unreadable or damaged)."""
        lines = self.task_file.read_text(encoding="utf-8").splitlines()
        return [[int(i) for i in line.split()] for line in lines]

    def read_snapshot(self) -> Snapshot | None:
        """The experiment as submitted; None when absent or damaged (older submissions have none)."""
        try:
            saved = json.loads(self.snapshot_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or not isinstance(saved.get("data"), dict):
            return None
        experiment = saved.get("experiment")
        if not isinstance(experiment, str):
            return None
        return Snapshot(experiment, str(saved.get("hash", "")), saved["data"])

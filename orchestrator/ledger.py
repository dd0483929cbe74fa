"""The ledger: one JSON record per submission (one sbatch, or one local run), written atomically.

Records live in `.orchestrator/ledger/<experiment group>/<created>-<tag>.json`, one per
submission; what went out lives in the submission's run directory (`run_dir`).

Records are the memory of what went out: `status` and `submit` read them to know which indices
were attempted, by which job and task, with which resources. Home and project directories on
clusters are network filesystems, so every write is temp file + fsync + rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.errors import EnvironmentFailure
from orchestrator.run_dir import RunDirectory, state_dir
from orchestrator.sweep import DEFAULT_SWEEP_KEYS
from orchestrator.util import atomic_write_text, now, one_line

RECORD_VERSION = 1


class SubmissionState:
    """Where a submission stands, as far as the orchestrator knows (not an index's state: see `state`)."""

    INTENT = "intent"  # written before sbatch; a crash leaves it for reconciliation
    SUBMITTED = "submitted"  # sbatch returned a job id
    REJECTED = "rejected"  # sbatch refused: the job does not exist
    UNCONFIRMED = "unconfirmed"  # sbatch's outcome is unknown and the tag was not found
    RUNNING = "running"  # local executor at work
    FINISHED = "finished"  # local executor done (each index has its own exit status)
    INTERRUPTED = "interrupted"  # local run stopped by Ctrl-C or a signal

    # statuses whose tasks may have run (or be running) and so count as attempts
    ATTEMPTED = frozenset({SUBMITTED, RUNNING, FINISHED, INTERRUPTED})


@dataclass
class SubmissionRecord:
    tag: str
    status: str
    executor: str
    experiment: str  # as the user gave it
    experiment_key: str  # path relative to the project root: the ledger's grouping key
    experiment_hash: str
    experiment_data: dict[str, Any]  # the file's content at submission, to match indices after edits
    keys: list[str]
    tasks: list[list[int]]  # array task id -> experiment indices
    resources: dict[str, Any]
    script_path: str
    task_file: str
    log_dir: str
    script: str
    job_id: str | None = None
    created: str = ""
    updated: str = ""
    git: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int | None = None
    note: str | None = None
    cancelled_tasks: list[int] = field(default_factory=list)  # tasks stopped by `orchestrator cancel`
    runs: int | None = None  # --runs of the submit (status, cancel and logs default to it)
    task_ends: dict[str, str] = field(default_factory=dict)  # local: task id -> how it was stopped (TIMEOUT)
    version: int = RECORD_VERSION
    # set (never written) on a record rebuilt from the run directory of a damaged one: its path
    salvaged_from: str | None = field(default=None, compare=False)

    @property
    def indices(self) -> list[int]:
        return [i for task in self.tasks for i in task]

    def to_json(self) -> dict[str, Any]:
        # shallow: json.dumps copies nothing, and asdict's deep copy of `tasks` took ~30 ms per record write
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        del data["salvaged_from"]
        return data

    @classmethod
    def from_json(cls, data: Any) -> SubmissionRecord:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        names = {f.name for f in fields(cls)} - {"salvaged_from"}
        record = cls(**{k: v for k, v in data.items() if k in names})
        for name, expected in _FIELD_TYPES.items():
            value = getattr(record, name)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"{name} is {type(value).__name__}, not {_type_names(expected)}")
        if not _int_lists(record.tasks):
            raise ValueError("tasks is not a list of index lists")
        if not _int_lists([record.cancelled_tasks]):
            raise ValueError("cancelled_tasks is not a list of task ids")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in record.task_ends.items()):
            raise ValueError("task_ends is not a mapping of task id -> state")
        if not all(isinstance(k, str) for k in record.keys):
            raise ValueError("keys is not a list of strings")
        if record.job_id is not None and not re.fullmatch(r"\d+", record.job_id):
            raise ValueError(f"job_id {record.job_id!r} is not a Slurm job id")
        return record


def _int_lists(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in t) for t in value
    )


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


_NONE = type(None)
# every field but tasks and cancelled_tasks (checked element by element): a record that passed here
# cannot crash status or submit later
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "tag": str,
    "status": str,
    "executor": str,
    "experiment": str,
    "experiment_key": str,
    "experiment_hash": str,
    "experiment_data": dict,
    "keys": list,
    "resources": dict,
    "script_path": str,
    "task_file": str,
    "log_dir": str,
    "script": str,
    "job_id": (str, _NONE),
    "created": str,
    "updated": str,
    "git": dict,
    "host": str,
    "pid": (int, _NONE),
    "runs": (int, _NONE),
    "task_ends": dict,
    "note": (str, _NONE),
    "version": int,
}


_REQUIRED = (
    "tag",
    "status",
    "executor",
    "experiment",
    "experiment_key",
    "experiment_hash",
    "experiment_data",
    "keys",
    "tasks",
)


@lru_cache(maxsize=256)
def _tag_stem(experiment: str) -> str:
    return _slug(os.path.splitext(os.path.basename(experiment))[0])[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:24] or "exp"


class Ledger:
    """The records of one project, grouped by experiment."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.ledger_dir = state_dir(self.root) / "ledger"
        self.problems: list[str] = []

    def experiment_key(self, experiment: str) -> str:
        """The experiment's path relative to the project root (absolute if outside it)."""
        absolute = os.path.abspath(os.path.join(self.root, experiment))
        relative = os.path.relpath(absolute, self.root)
        return absolute if relative.startswith("..") else relative.replace(os.sep, "/")

    def _group_dir(self, experiment_key: str) -> Path:
        digest = hashlib.sha1(experiment_key.encode()).hexdigest()[:12]
        return self.ledger_dir / f"{_slug(Path(experiment_key).stem)}-{digest}"

    def new_tag(self, experiment: str) -> str:
        """A unique tag, also given to Slurm as job name and comment, to find a job again."""
        return f"orch-{_tag_stem(experiment)}-{uuid.uuid4().hex[:10]}"

    def run_dir(self, tag: str) -> RunDirectory:
        return RunDirectory.of(self.root, tag)

    def record_path(self, record: SubmissionRecord) -> Path:
        stamp = record.created.replace(":", "").replace("-", "").replace("+0000", "Z")
        return self._group_dir(record.experiment_key) / f"{stamp}-{record.tag}.json"

    def write(self, record: SubmissionRecord) -> None:
        record.updated = now()
        if not record.created:
            record.created = record.updated
        try:
            atomic_write_text(self.record_path(record), json.dumps(record.to_json(), indent=1), fault="mid-record")
        except OSError as e:
            raise EnvironmentFailure(f"cannot write the ledger record {self.record_path(record)}: {e}") from e

    def records(self, experiment_key: str) -> list[SubmissionRecord]:
        """The experiment's records, oldest first; damaged ones are reported in `problems` and skipped."""
        return list(self._read_group(self._group_dir(experiment_key)))

    def all_records(self) -> list[SubmissionRecord]:
        if not self.ledger_dir.is_dir():
            return []
        out: list[SubmissionRecord] = []
        for group in sorted(self.ledger_dir.iterdir()):
            if group.is_dir():
                out.extend(self._read_group(group))
        return out

    def latest_records(self) -> list[SubmissionRecord]:
        """The newest readable record of every experiment in the ledger, by experiment key."""
        if not self.ledger_dir.is_dir():
            return []
        out = []
        for group in sorted(self.ledger_dir.iterdir()):
            records = list(self._read_group(group)) if group.is_dir() else []
            if records:
                out.append(records[-1])
        return sorted(out, key=lambda r: r.experiment_key)

    def last_submission(self, experiment_key: str) -> SubmissionRecord | None:
        """The newest record of the experiment that says how it was planned (its --runs)."""
        known = [r for r in self.records(experiment_key) if r.runs is not None]
        return known[-1] if known else None

    def _read_group(self, group: Path) -> Iterator[SubmissionRecord]:
        try:
            names = sorted(n for n in os.listdir(group) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return
        for name in names:
            path = group / name
            try:
                yield SubmissionRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
                self.problems.append(f"{path}: damaged ledger record skipped ({one_line(e)})")
                salvaged = self._salvage(path)
                if salvaged is not None:
                    yield salvaged

    def _salvage(self, path: Path) -> SubmissionRecord | None:
        """What a damaged record's own run directory still tells: its tag (in the file name), the
        tasks (tasks.txt, which the jobs read) and the experiment as submitted (the snapshot).

        The result is an open (unconfirmed) Slurm record without a job id: readers look for its tag in
        the queue, so a job that is still queued is not submitted again. It is never written back.
        """
        _, _, rest = path.name.partition("-orch-")
        if not rest.endswith(".json"):
            return None
        tag = "orch-" + rest[: -len(".json")]
        run_dir = self.run_dir(tag)
        try:
            tasks = run_dir.read_tasks()
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        snapshot = run_dir.read_snapshot()
        if snapshot is None or not (tasks and all(tasks)):
            return None
        return SubmissionRecord(
            tag=tag,
            status=SubmissionState.UNCONFIRMED,
            executor="slurm",
            experiment=snapshot.experiment,
            experiment_key=self.experiment_key(snapshot.experiment),
            experiment_hash=snapshot.content_hash,
            experiment_data=snapshot.data,
            keys=list(DEFAULT_SWEEP_KEYS),
            tasks=tasks,
            resources={},
            script_path=str(run_dir.script),
            task_file=str(run_dir.task_file),
            log_dir="",
            script="",
            note=f"salvaged from the damaged record {path}",
            salvaged_from=str(path),
        )

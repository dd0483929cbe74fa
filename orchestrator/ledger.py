"""The ledger: one JSON record per submission (one sbatch, or one local run), written atomically.

Layout under the project root:

    .orchestrator/ledger/<experiment key>/<created>-<tag>.json   one record per submission
    .orchestrator/runs/<tag>/job.sh, tasks.txt                   what was submitted

Records are the memory of what went out: `status` and `submit` read them to know which indices
were attempted, by which job and task, with which resources. Home and project directories on
clusters are network filesystems, so every write is temp file + fsync + rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.errors import EnvironmentFailure

STATE_DIR = ".orchestrator"
RECORD_VERSION = 1
_SNAPSHOT = "experiment.json"  # planner.SNAPSHOT (planner imports this module)
_DEFAULT_KEYS = ("metaParameters",)  # sweep.DEFAULT_SWEEP_KEYS: a snapshot does not record the keys


class Status:
    """Where a submission stands, as far as the orchestrator knows."""

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
    version: int = RECORD_VERSION
    # set (never written) on a record rebuilt from the run directory of a damaged one: its path
    salvaged_from: str | None = field(default=None, compare=False)

    @property
    def indices(self) -> list[int]:
        return [i for task in self.tasks for i in task]

    @property
    def job_label(self) -> str:
        return self.job_id if self.job_id else f"local:{self.tag}"

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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


FAULT_VARIABLE = "ORCHESTRATOR_FAULT_KILL"


def fault_point(name: str) -> None:
    """Die here, as a SIGKILL would, when the fault suite asks for it (`ORCHESTRATOR_FAULT_KILL=name`).

    The points: `before-sbatch` (intent written), `after-sbatch` (job created, not yet recorded),
    `mid-record` (a ledger record half written; `mid-record:2` for the second record write).
    Used by the reliability tests; a no-op otherwise.
    """
    wanted = os.environ.get(FAULT_VARIABLE)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_fault_hits: dict[str, int] = {}


def atomic_write_text(path: Path, text: str, fault: str | None = None) -> None:
    """Write `path` so readers see the old content or the new, never a torn file.

    `fault` names the fault point halfway through the write (for the reliability tests).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            half = len(text) // 2
            f.write(text[:half])
            if fault is not None:
                f.flush()
                fault_point(fault)
            f.write(text[half:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems refuse fsync on directories; the rename is still ordered
    finally:
        os.close(fd)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:24] or "exp"


class Ledger:
    """The records of one project, grouped by experiment."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.state_dir = self.root / STATE_DIR
        self.ledger_dir = self.state_dir / "ledger"
        self.runs_dir = self.state_dir / "runs"
        self.problems: list[str] = []

    def experiment_key(self, experiment: str) -> str:
        """The experiment's path relative to the project root (absolute if outside it)."""
        absolute = os.path.abspath(os.path.join(self.root, experiment))
        relative = os.path.relpath(absolute, self.root)
        return absolute if relative.startswith("..") else relative.replace(os.sep, "/")

    def _group_dir(self, experiment_key: str) -> Path:
        digest = hashlib.sha1(experiment_key.encode()).hexdigest()[:12]
        return self.ledger_dir / f"{_slug(Path(experiment_key).stem)}-{digest}"

    def new_tag(self, experiment_key: str) -> str:
        """A unique tag, also given to Slurm as job name and comment, to find a job again."""
        return f"orch-{_slug(Path(experiment_key).stem)[:12]}-{uuid.uuid4().hex[:10]}"

    def run_dir(self, tag: str) -> Path:
        return self.runs_dir / tag

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
                self.problems.append(f"{path}: damaged ledger record skipped ({_one_line(e)})")
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
            lines = (run_dir / "tasks.txt").read_text(encoding="utf-8").splitlines()
            tasks = [[int(i) for i in line.split()] for line in lines]
            snapshot = json.loads((run_dir / _SNAPSHOT).read_text(encoding="utf-8"))
            experiment, digest, data = snapshot["experiment"], snapshot["hash"], snapshot["data"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            return None
        if not (tasks and all(tasks) and isinstance(experiment, str) and isinstance(data, dict)):
            return None
        return SubmissionRecord(
            tag=tag,
            status=Status.UNCONFIRMED,
            executor="slurm",
            experiment=experiment,
            experiment_key=self.experiment_key(experiment),
            experiment_hash=str(digest),
            experiment_data=data,
            keys=list(_DEFAULT_KEYS),
            tasks=tasks,
            resources={},
            script_path=str(run_dir / "job.sh"),
            task_file=str(run_dir / "tasks.txt"),
            log_dir="",
            script="",
            note=f"salvaged from the damaged record {path}",
            salvaged_from=str(path),
        )


def _one_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def git_state(root: Path, timeout: float = 10.0) -> dict[str, Any]:
    """The project's commit and whether the tree had uncommitted changes (None where unknown)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=timeout)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


# -- the submit lock ---------------------------------------------------------------------------

LOCK_STALE_SECONDS = 300.0  # a lock not refreshed for this long belongs to a dead submit
LOCK_REFRESH_SECONDS = 30.0
TAKEOVER_STALE_SECONDS = 30.0  # a takeover guard is held for milliseconds; older, its holder died


class SubmitLock:
    """One `submit` per project at a time, across hosts: an O_EXCL lock file, kept fresh by its holder.

    O_CREAT|O_EXCL is atomic on local filesystems and on NFSv3 and later. A holder that dies
    stops refreshing the file's mtime; after `LOCK_STALE_SECONDS` (or at once, when the holder
    was on this host and its process is gone) the lock is taken over.
    """

    def __init__(self, ledger: Ledger, wait_seconds: float = 60.0) -> None:
        self.path = ledger.state_dir / "submit.lock"
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def __enter__(self) -> SubmitLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._take_over_if_stale():
                    continue
                if time.monotonic() >= deadline:
                    raise EnvironmentFailure(
                        f"another submit holds {self.path} ({self._holder()}); nothing was submitted. "
                        "Wait for it to finish, or remove the file if that process is gone."
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": now()}, f)
                f.flush()
                os.fsync(f.fileno())
            break
        self._refresher = threading.Thread(target=self._refresh, daemon=True)
        self._refresher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _refresh(self) -> None:
        while not self._stop.wait(LOCK_REFRESH_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def _holder(self) -> str:
        try:
            data = json.loads(self.path.read_text())
            return f"pid {data['pid']} on {data['host']} since {data['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"

    def _take_over_if_stale(self) -> bool:
        """Remove the lock if its holder is gone; True when the caller should try to create it again.

        Judging and removing are two steps: another process may take the stale lock over in between,
        and its fresh lock must not be moved away. So only the holder of a second O_EXCL file (the
        takeover guard) removes a stale lock, and it judges the lock again while holding the guard.
        """
        stale = self._stale()
        if stale is None:
            return True  # released meanwhile: try again
        if not stale:
            return False
        guard = self.path.with_name(f"{self.path.name}.takeover")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - guard.stat().st_mtime > TAKEOVER_STALE_SECONDS:
                    guard.unlink()  # left by a process that died while taking over
            return False  # someone else is taking over: wait and look again
        os.close(fd)
        try:
            if self._stale():  # still the stale lock, and nobody else may remove it now
                moved = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
                try:
                    os.rename(self.path, moved)
                except FileNotFoundError:
                    return True
                moved.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)
        return True

    def _stale(self) -> bool | None:
        """Whether the lock file belongs to a dead submit (None: there is no lock file)."""
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = None  # being written, or damaged: only its age tells
        holder = data if isinstance(data, dict) else {}
        dead_here = holder.get("host") == socket.gethostname() and not pid_alive(holder.get("pid"))
        return dead_here or age > LOCK_STALE_SECONDS


def pid_alive(pid: object) -> bool:
    """Whether a process with this id runs on this host (a permission error means it does)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def submission_lock(ledger: Ledger, wait_seconds: float = 60.0) -> SubmitLock:
    return SubmitLock(ledger, wait_seconds)

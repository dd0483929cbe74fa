"""Small shared utilities: atomic writes, timestamps, process checks, the fault hook, git state.

Home and project directories on clusters are network filesystems: every record is written as
temp file + fsync + rename, so a reader sees the old content or the new, never a torn file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}]"


def one_line(error: BaseException) -> str:
    """An exception's first line (its type name when it has no message)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


FAULT_VARIABLE = "ORCHESTRATOR_FAULT_KILL"
_fault_hits: dict[str, int] = {}


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

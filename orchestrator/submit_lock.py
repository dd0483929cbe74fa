"""One `submit` per project at a time, across hosts: an O_EXCL lock file kept fresh by its holder."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import EnvironmentFailure
from orchestrator.run_dir import state_dir
from orchestrator.util import now, pid_alive

LOCK_STALE_SECONDS = 300.0  # a lock not refreshed for this long belongs to a dead submit
LOCK_REFRESH_SECONDS = 30.0
TAKEOVER_STALE_SECONDS = 30.0  # a takeover guard is held for milliseconds; older, its holder died


class SubmitLock:
    """One `submit` per project at a time, across hosts: an O_EXCL lock file, kept fresh by its holder.

    O_CREAT|O_EXCL is atomic on local filesystems and on NFSv3 and later. A holder that dies
    stops refreshing the file's mtime; after `LOCK_STALE_SECONDS` (or at once, when the holder
    was on this host and its process is gone) the lock is taken over.
    """

    def __init__(self, root: Path, wait_seconds: float = 60.0, on_wait: Callable[[str], None] | None = None) -> None:
        self.path = state_dir(root) / "submit.lock"
        self.wait_seconds = wait_seconds
        self.on_wait = on_wait  # told once, with the holder, when this submit has to wait
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
                if self.on_wait is not None:
                    self.on_wait(self._holder())
                    self.on_wait = None
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

"""Which result paths exist, found by listing directories rather than stat-ing every index.

On a network filesystem each metadata call costs milliseconds. Save paths share parents
(`results/X/<params>/<run>`), so listing each distinct parent once answers for all its children,
and a directory is listed only if its own parent's listing shows it: a missing subtree costs one
listing, however many indices live under it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


class ResultScanner:
    """Answers "does this path exist?" for many paths, listing each directory at most once."""

    def __init__(self, root: str = ".") -> None:
        self.root = root
        self.listings = 0  # directory listings made: the benchmark and tests count them
        self._cache: dict[str, frozenset[str] | None] = {}
        self._top = ""

    def existing(self, paths: Iterable[str]) -> set[str]:
        """The subset of `paths` (relative to the root, or absolute) that exist."""
        # Each path is normalized and split once, and grouped by its parent: parents are far fewer.
        by_parent: dict[str, list[tuple[str, str]]] = {}
        for path in paths:
            parent, name = os.path.split(os.path.normpath(path))
            entries = by_parent.get(parent)
            if entries is None:
                entries = by_parent[parent] = []
            entries.append((name, path))
        if not by_parent:
            return set()
        # Never list above the paths' common ancestor: `/scratch` may hold every user's directory.
        try:
            self._top = os.path.commonpath(list(by_parent))
        except ValueError:  # relative and absolute mixed
            self._top = ""
        found: set[str] = set()
        for parent, entries in by_parent.items():
            children = self._children(parent)
            if children:
                found.update(path for name, path in entries if name in children)
        return found

    def complete(self, paths: Iterable[str], marker: str | None) -> set[str]:
        """Paths that exist and, when `marker` is given, hold that file (written last by the run).

        With a marker, each existing result directory is listed once more, to look inside it;
        a missing one still costs nothing.
        """
        present = self.existing(paths)
        if marker is None:
            return present
        return {p for p in present if (c := self._children(os.path.normpath(p))) is not None and marker in c}

    def _children(self, directory: str) -> frozenset[str] | None:
        """The names in `directory`, or None when it does not exist (or is not a directory)."""
        if directory in self._cache:
            return self._cache[directory]
        up, name = os.path.split(directory)
        if name and up != directory and directory != self._top and _within(directory, self._top):
            above = self._children(up)
            if above is None or name not in above:  # a missing parent has no children: no listing
                self._cache[directory] = None
                return None
        self.listings += 1
        try:
            listing: frozenset[str] | None = frozenset(os.listdir(os.path.join(self.root, directory or ".")))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            listing = None
        self._cache[directory] = listing
        return listing


def _within(directory: str, top: str) -> bool:
    if not top:
        return not os.path.isabs(directory)
    return directory.startswith(top.rstrip("/") + "/")

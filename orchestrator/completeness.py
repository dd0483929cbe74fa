"""Which save paths exist, with as few filesystem calls as the sweep's shape allows.

On a network filesystem each metadata call costs milliseconds. The save paths of one permutation's
runs usually share a parent (`results/X/<params>/<run>`), and the permutations share theirs.
Per directory the scanner chooses: it lists a directory when the listing answers for several paths
(each directory at most once while it is in use), stats a path when its parent holds only that
one, and asks nothing at all below a directory that a listing showed to be missing. It never lists
above the paths' constant prefix (`/scratch` may hold every user's directory).

Paths are streamed permutation by permutation (`ExperimentPlan.save_path_groups`), never all held
in memory: the cost is the listings in use, not the sweep's size.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from orchestrator.index_set import IndexSet

_LISTINGS_KEPT = 4096  # directories whose listing is kept: the shared parents stay, a permutation's go
_DIRECTORIES_REMEMBERED = 4096  # directories asked about once: asked again, they are listed
_UNLISTED = object()  # "not listed: stat the paths" (None means "listed: missing")


class ResultScanner:
    """Answers "which of these paths exist?" for many paths; counts its listings and stats."""

    def __init__(self, root: str = ".", top: str = "") -> None:
        self.root = root
        self.top = os.path.normpath(top) if top else ""
        self.listings = 0
        self.stats = 0
        self._listed: OrderedDict[str, frozenset[str] | None] = OrderedDict()
        self._asked: OrderedDict[str, None] = OrderedDict()

    def found(self, groups: Iterable[tuple[str, Sequence[tuple[int, str]]]]) -> Iterator[int]:
        """The indices whose path exists, from (parent directory, [(index, name), ...]) groups."""
        for parent, entries in groups:
            yield from self._answer(os.path.normpath(parent) if parent else "", entries)

    def mark(self, groups: Iterable[tuple[str, Sequence[tuple[int, str]]]], flags: bytearray) -> None:
        """Set `flags[index]` for every index whose path exists (the fast form of `found`)."""
        for parent, entries in groups:
            for index in self._answer(os.path.normpath(parent) if parent else "", entries):
                flags[index] = 1

    def _answer(self, parent: str, entries: Sequence[tuple[int, str]]) -> list[int]:
        listing = self._listing(parent, answers_many=len(entries) > 1)
        if listing is _UNLISTED:
            return [index for index, name in entries if self._exists(os.path.join(parent, name))]
        if listing:
            return [index for index, name in entries if name in listing]  # type: ignore[operator]
        return []

    def listing(self, directory: str) -> frozenset[str] | None:
        """The names in `directory` (listed at most once while in use); None when it is missing."""
        directory = os.path.normpath(directory) if directory else ""
        found = self._listing(directory, answers_many=True)
        return found if isinstance(found, frozenset) else None

    def _listing(self, directory: str, answers_many: bool) -> frozenset[str] | object | None:
        """The directory's names; None when missing; `_UNLISTED` when a stat per path is cheaper.

        A directory is listed when its listing answers for several paths: several are asked at
        once, or it was asked about before. Asked about once, it is not listed, but what is known
        above it still counts: a missing ancestor answers for everything below without a call.
        """
        listing = self._listed.get(directory, _UNLISTED)
        if listing is not _UNLISTED:
            self._listed.move_to_end(directory)
            return listing
        if not self._may_exist(directory):
            return None
        if answers_many or directory in self._asked:
            return self._list(directory)
        self._asked[directory] = None
        if len(self._asked) > _DIRECTORIES_REMEMBERED:
            self._asked.popitem(last=False)
        return _UNLISTED

    def _may_exist(self, directory: str) -> bool:
        """False only when a listing above shows `directory` is missing."""
        if directory in ("", self.top) or not _within(directory, self.top):
            return True
        up, name = os.path.split(directory)
        if up == directory:
            return True
        children = self._listing(up, answers_many=False)
        if children is _UNLISTED:
            return True
        return children is not None and name in children  # type: ignore[operator]

    def _list(self, directory: str) -> frozenset[str] | None:
        self.listings += 1
        try:
            listing: frozenset[str] | None = frozenset(os.listdir(os.path.join(self.root, directory or ".")))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            listing = None
        self._keep(directory, listing)
        return listing

    def _keep(self, directory: str, listing: frozenset[str] | None) -> None:
        self._listed[directory] = listing
        if len(self._listed) > _LISTINGS_KEPT:
            self._listed.popitem(last=False)

    def names(self, directory: str) -> frozenset[str]:
        """A directory that answers for one permutation's runs, listed once and not kept."""
        self.listings += 1
        try:
            return frozenset(os.listdir(os.path.join(self.root, directory)))
        except OSError:
            return frozenset()

    def exists(self, path: str) -> bool:
        return self._exists(path)

    def _exists(self, path: str) -> bool:
        self.stats += 1
        try:
            os.stat(os.path.join(self.root, path))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        except OSError:
            return False
        return True


def _within(directory: str, top: str) -> bool:
    if not top:
        return not os.path.isabs(directory)
    return directory.startswith(top.rstrip("/") + "/")


Progress = Callable[[str, int, int], None]  # (experiment, permutations scanned, permutations)
_REPORT_EVERY = 4096


def present_results(
    plan: PlanPaths,
    root: str,
    marker: str | None = None,
    scanner: ResultScanner | None = None,
    indices: Iterable[int] | None = None,
    progress: Progress | None = None,
) -> IndexSet:
    """The indices of `plan` (or of `indices` only) whose save path exists and holds `marker` if given.

    Save paths are relative to `root` (the project root) unless absolute. `progress` hears how far
    a whole-sweep scan has got, every few thousand permutations.
    """
    scanner = scanner or ResultScanner(root, plan.save_path_prefix())
    if indices is not None:
        groups = (_group(index, plan.save_path(index), marker) for index in indices)
        return IndexSet.of(sorted(scanner.found(groups)))
    base = plan.params_directory_base() if marker is None else None
    one_run = base is not None and plan.runs == 1  # its first stats decide, and count toward one per index
    if not one_run and scanner.top and not os.path.isdir(os.path.join(root, scanner.top)):
        return IndexSet()  # one stat answers for the whole sweep: nothing has been written yet
    # A byte per index while scanning (paths come permutation by permutation, not in index order),
    # released as soon as it is turned into ranges: 10 MB at ten million indices.
    flags = bytearray(plan.runs * plan.num_permutations)
    if base:
        _mark_by_permutation(plan, scanner, base, flags, progress)
    else:
        groups = _reported(plan.save_path_groups(marker), plan, progress)
        scanner.mark((group for _, group in groups), flags)
    return IndexSet.from_flags(flags)


T = TypeVar("T")


def _reported(items: Iterable[T], plan: PlanPaths, progress: Progress | None) -> Iterator[tuple[int, T]]:
    """`enumerate(items)`, telling `progress` every few thousand items (one per permutation, or more)."""
    for count, item in enumerate(items):
        if progress is not None and count % _REPORT_EVERY == 0 and count:
            progress(plan.path, min(count, plan.num_permutations), plan.num_permutations)
        yield count, item
    if progress is not None:
        progress(plan.path, plan.num_permutations, plan.num_permutations)  # the end: the line is closed


def _mark_by_permutation(
    plan: PlanPaths, scanner: ResultScanner, base: str, flags: bytearray, progress: Progress | None
) -> None:
    """`base/<params>/<run>`: per permutation, a stat for one run or a listing for several.

    One listing of `base` first answers, for every permutation without results, without a call;
    with one run per permutation it is skipped when the first permutations mostly have results
    (then it would only add calls: a stat per index answers everything).
    """
    permutations, names = plan.num_permutations, [str(run) for run in range(plan.runs)]
    prefix = os.path.join(scanner.root, base, "")
    strings = _reported(plan.params_strings(), plan, progress)
    sampled = _sample(plan, scanner, prefix, names[0], flags) if len(names) == 1 else 0
    skip_listing = 2 * sum(flags[:sampled]) > sampled  # the sampled ones mostly have results: stat them all
    listing = frozenset() if skip_listing else scanner.listing(base)
    if not listing and not skip_listing:
        return  # base is missing or empty: no permutation has a result
    for p, params in strings:
        if p < sampled:
            continue
        if not _plain_name(params):
            entries = [(p + run * permutations, names[run]) for run in range(len(names))]
            scanner.mark([(os.path.join(base, params), entries)], flags)
        elif not skip_listing and params not in listing:
            continue
        elif len(names) == 1:
            scanner.stats += 1
            flags[p] = _exists(f"{prefix}{params}/{names[0]}")
        else:
            present = scanner.names(os.path.join(base, params))
            for run, name in enumerate(names):
                flags[p + run * permutations] = name in present


def _sample(plan: PlanPaths, scanner: ResultScanner, prefix: str, name: str, flags: bytearray, size: int = 32) -> int:
    """Stat the first permutations' results (one run each), marking them; how many were sampled."""
    sampled = 0
    for params in itertools.islice(plan.params_strings(), size):
        if not _plain_name(params):
            break
        scanner.stats += 1
        flags[sampled] = _exists(f"{prefix}{params}/{name}")
        sampled += 1
    return sampled


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _plain_name(params: str) -> bool:
    """A `{params}` string that names one directory entry as it is (no '/', not '.' or '..')."""
    return bool(params) and "/" not in params and params not in (".", "..")


def _group(index: int, path: str, marker: str | None) -> tuple[str, list[tuple[int, str]]]:
    parent, name = os.path.split(os.path.normpath(os.path.join(path, marker) if marker else path))
    return parent, [(index, name)]


class PlanPaths(Protocol):
    """What the scan needs of a plan (`ExperimentPlan` provides it)."""

    @property
    def runs(self) -> int: ...

    @property
    def num_permutations(self) -> int: ...

    @property
    def path(self) -> str: ...

    def save_path(self, index: int) -> str: ...

    def save_path_prefix(self) -> str: ...

    def save_path_groups(self, marker: str | None) -> Iterator[tuple[str, list[tuple[int, str]]]]: ...

    def params_directory_base(self) -> str | None: ...

    def params_strings(self) -> Iterator[str]: ...

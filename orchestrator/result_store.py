"""Which indices are done, however the results are saved: the one place that answers it.

Three layouts (shared/spec/results-layouts.md; README "Where results live"):

- `paths`: every index has its own save path; done when it exists (and holds the marker, if one is
  set). Directories are listed by `ResultScanner`, each at most once.
- `pyexputils-db`: PyExpUtils 8's `saveCollector` writes every index into `<save path of index 0>/
  results.db`: table `hyperparameters` (one column per flattened parameter, plus `config_id`) and
  table `results` (`config_id`, `seed`, `frame`, metrics). Index i is done when `results` has a row
  with the `config_id` whose parameters equal i's, and `seed = run(i)`: exactly PyExpUtils'
  `detectMissingIndices`, including how it compares values (it formats them into SQL text).
- `metadata-db`: ml-instrumentation's `attach_metadata` inserts one row per finished index into
  table `_metadata_` of `<save path>/results.db` (a column per flattened parameter, `seed`, `id`).
  Index i is done when a row holds its parameters and seed (values, not `id`: an edited
  experiment file renumbers indices).

`store_for(plan, choice, marker)` picks the layout: `paths` while every index has its own save path;
when indices share one, the kind of the `results.db` found there (recognised by its tables), and
without one it refuses (`UserError`, exit 2) rather than count every sharing index done.

Databases are read in one pass each (two tables read once, matched in Python) and never written:
opened read-only through SQLite's `mode=ro` URI, after checking that doing so creates nothing (a
WAL database in use would need its `-shm` written: not read), with a bounded wait for writers. A
database that cannot be read soundly (locked, being written, truncated, not SQLite) leaves its
indices `unknown`, neither done nor to be submitted, with a one-line note; never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import sqlite3
import stat
import string
import struct
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from orchestrator.completeness import Progress, ResultScanner, present_results
from orchestrator.errors import UserError
from orchestrator.index_set import IndexSet
from orchestrator.planner import ExperimentPlan
from orchestrator.save_paths import pyexputils_name
from orchestrator.settings import RESULT_KINDS
from orchestrator.slurm_formats import format_ranges
from orchestrator.sweep import leaves

DATABASE = "results.db"
PATHS, PYEXPUTILS_DB, METADATA_DB = RESULT_KINDS
UNREADABLE_DB = "unreadable-db"  # auto: a results.db is there but could not be read to tell its kind
DEFAULT_TIMEOUT = 5.0  # seconds to wait for a writer; ORCHESTRATOR_DB_TIMEOUT overrides
META = "metaParameters"  # PyExpUtils' getHeader reads this key, whatever keys are swept

T = TypeVar("T")


# -- the answer --------------------------------------------------------------------------------


@dataclass
class StoreAnswer:
    """Which of the asked indices are done, and which cannot be told (neither done nor to submit)."""

    kind: str
    done: IndexSet
    unknown: IndexSet = field(default_factory=IndexSet)
    notes: list[str] = field(default_factory=list)
    database: str | None = None  # the database file read, as the save path spells it
    databases: tuple[str, ...] = ()  # every database file read (metadata-db may read several)


FindDone = Callable[[ExperimentPlan, "IndexSet | None"], StoreAnswer]


def finder(marker: str | None, root: str, progress: Progress | None = None) -> FindDone:
    """How `status` and `submit` ask: each plan's store (`plan.results`) chosen once, asked as often as needed."""
    stores: dict[str, ResultStore] = {}

    def find(plan: ExperimentPlan, indices: IndexSet | None) -> StoreAnswer:
        if plan.path not in stores:
            stores[plan.path] = store_for(plan, plan.results, marker, root=root, progress=progress)
        return stores[plan.path].done(plan, indices)

    return find


class ResultStore:
    """Answers `done(plan, indices)`: indices None means every planned index."""

    kind = PATHS
    database: str | None = None

    def done(self, plan: ExperimentPlan, indices: Iterable[int] | None = None) -> StoreAnswer:
        raise NotImplementedError


def _asked(plan: ExperimentPlan, indices: Iterable[int] | None) -> Sequence[int]:
    return range(plan.total) if indices is None else sorted(set(indices))


def _perms_of(plan: ExperimentPlan, asked: Sequence[int]) -> Sequence[int]:
    """The permutations of `asked`, ascending (all of them, without a pass, when every index is asked)."""
    if isinstance(asked, range) and asked.step == 1 and len(asked) >= plan.num_permutations:
        return range(plan.num_permutations)
    return sorted({i % plan.num_permutations for i in asked})


def _indices_done(
    plan: ExperimentPlan, key_of: dict[int, Any], pairs: set[tuple[Any, Any]], asked: Sequence[int]
) -> set[int]:
    """Indices of `asked` whose (permutation's key, run) is in `pairs` (Python's `==`: 1.0 is run 1)."""
    perms, runs = plan.num_permutations, plan.runs
    found = [perm + run * perms for perm, key in key_of.items() for run in range(runs) if (key, run) in pairs]
    everything = isinstance(asked, range) and len(asked) == plan.total
    return set(found) if everything else set(asked).intersection(found)


def _unknown_note(database: str, problem: str, unknown: Sequence[int]) -> str:
    return (
        f"{database}: {problem}; {len(unknown)} index(es) unknown, neither done nor submitted: "
        f"{format_ranges(sorted(unknown))}"
    )


class PathStore(ResultStore):
    """Today's layout: an index is done when its own save path exists (holding the marker, if set)."""

    kind = PATHS

    def __init__(
        self,
        marker: str | None = None,
        scanner: ResultScanner | None = None,
        shared: Sharing | None = None,
        root: str = ".",
        progress: Progress | None = None,
    ) -> None:
        self.marker = marker
        self.scanner = scanner
        self.shared = shared
        self.root = root
        self.progress = progress

    def done(self, plan: ExperimentPlan, indices: Iterable[int] | None = None) -> StoreAnswer:
        notes = []
        if self.shared is not None:
            notes.append(f"{plan.path}: {self.shared.describe()}; with --results paths one result counts for all")
        found = present_results(plan, self.root, self.marker, self.scanner, indices, self.progress)
        return StoreAnswer(PATHS, found, notes=notes)


class UnreadableStore(ResultStore):
    """A shared save path whose results.db could not be read, so not even its kind is known."""

    kind = UNREADABLE_DB

    def __init__(self, database: str, problem: str) -> None:
        self.database = database
        self.problem = problem

    def done(self, plan: ExperimentPlan, indices: Iterable[int] | None = None) -> StoreAnswer:
        asked = _asked(plan, indices)
        note = _unknown_note(self.database, self.problem, asked)
        return StoreAnswer(self.kind, IndexSet(), IndexSet.of(asked), [note], self.database, (self.database,))


# -- choosing the store ------------------------------------------------------------------------


def store_for(
    plan: ExperimentPlan,
    choice: str = "auto",
    marker: str | None = None,
    *,
    scanner: ResultScanner | None = None,
    timeout: float | None = None,
    root: str | None = None,
    progress: Progress | None = None,
) -> ResultStore:
    """The store that answers for `plan`: `choice` is auto, paths, pyexputils-db or metadata-db.

    auto: `paths` when no two planned indices share a save path; otherwise the kind of the
    results.db at the shared path, recognised by its tables. Raises `UserError` (exit 2) for a
    shared save path without a recognisable database, before anything is read or submitted.
    (A template without `{params}` and `{run}` is read as shared even for a single index, so
    that `--runs 1` of a one-setting sweep is answered as `--runs 2` is.)
    """
    if choice not in ("auto", *RESULT_KINDS):
        raise UserError(f"unknown results kind {choice!r}; choose one of auto, {', '.join(RESULT_KINDS)}")
    wait = database_timeout() if timeout is None else timeout
    if choice == PYEXPUTILS_DB:
        return PyExpUtilsStore(marker, wait)
    if choice == METADATA_DB:
        return MetadataStore(marker, wait)
    shared = sharing(plan)
    if choice == PATHS or (shared is None and not _shared_by_template(plan)):
        return PathStore(marker, scanner, shared, root or str(plan.config.root), progress)
    return _recognise(plan, shared, marker, scanner, wait, root or str(plan.config.root))


def _shared_by_template(plan: ExperimentPlan) -> bool:
    placeholders = plan.save_path_template.placeholders
    return "{params}" not in placeholders and "{run}" not in placeholders


def check_results(plan: ExperimentPlan, choice: str = "auto") -> None:
    """Raise the `UserError` that `store_for` would (for plan and submit, before anything runs)."""
    store_for(plan, choice)


def database_timeout() -> float:
    text = os.environ.get("ORCHESTRATOR_DB_TIMEOUT")
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"ORCHESTRATOR_DB_TIMEOUT must be a number of seconds, not {text!r}") from None
    if not 0 <= value < float("inf"):
        raise UserError(f"ORCHESTRATOR_DB_TIMEOUT must be a number of seconds, not {text!r}")
    return value


def _recognise(
    plan: ExperimentPlan,
    shared: Sharing | None,
    marker: str | None,
    scanner: ResultScanner | None,
    timeout: float,
    root: str,
) -> ResultStore:
    """The store for the results.db at the shared path; `shared` None: a single index, paths if none."""
    database = _database_of(plan.save_path(0))
    file = _on_disk(plan, database)
    if not os.path.exists(file):
        if shared is None:
            return PathStore(marker, scanner, root=root)
        raise _shared_without_database(plan, shared, f"there is no {DATABASE} at {os.path.dirname(database)}")
    try:
        tables = read_database(file, _table_names, timeout)
    except DatabaseProblem as e:
        return UnreadableStore(database, str(e))
    is_pyexputils = bool({"hyperparameters", "results"} & tables)
    is_metadata = "_metadata_" in tables
    if is_pyexputils and not is_metadata:
        return PyExpUtilsStore(marker, timeout)
    if is_metadata and not is_pyexputils:
        return MetadataStore(marker, timeout)
    if shared is None:
        return PathStore(marker, scanner, root=root)
    what = "both PyExpUtils' and ml-instrumentation's tables" if is_metadata else "neither layout's tables"
    raise _shared_without_database(plan, shared, f"{database} holds {what}")


def _shared_without_database(plan: ExperimentPlan, shared: Sharing, why: str) -> UserError:
    return UserError(
        f"{shared.describe()}, and {why} to tell them apart; add {{params}} and {{run}} to save_path in "
        "config.json, or say how results are stored: --results pyexputils-db|metadata-db "
        '(or results = "..." under [tool.orchestrator] in pyproject.toml)',
        source=plan.path,
    )


def plan_warnings(plan: ExperimentPlan, choice: str = "auto") -> list[str]:
    """What `plan` and `submit` say before anything runs (each a line, without a prefix).

    A `{name}` that differs from PyExpUtils' (results saved by PyExpUtils would look missing), and
    for `plan`, the refusal `submit` and `status` would give for a shared save path.
    """
    warnings = []
    if "{name}" in plan.save_path_template.placeholders:
        theirs = pyexputils_name(plan.path, plan.config.experiment_directory, plan.config.root)
        if theirs is not None and theirs != plan.name:
            warnings.append(
                f"{plan.path}: {{name}} is '{plan.name}' here but '{theirs}' in PyExpUtils (which removes "
                "every 'experiments/' and './' in the path); results PyExpUtils saved under "
                f"'{theirs}' are not seen as done"
            )
    return warnings


# -- shared save paths -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sharing:
    """Planned indices that share a save path: how many, over how many paths, and one example."""

    indices: int
    paths: int
    first: int
    second: int
    path: str

    def describe(self) -> str:
        return (
            f"{self.indices} indices share {self.paths} save path(s) (e.g. indices {self.first} and "
            f"{self.second} both save to {self.path})"
        )


def sharing(plan: ExperimentPlan) -> Sharing | None:
    """Whether two planned indices have the same save path, without listing every path if it can.

    A template with `{params}` and `{run}` gives distinct paths by construction when the `{params}`
    strings of distinct permutations differ (checked per axis) and `{run}` is set off by a
    non-digit; without `{params}` or `{run}` the sharing is known from the counts. Only otherwise
    are the paths streamed and counted (and then they are few, or the sweep is exotic).
    """
    placeholders = plan.save_path_template.placeholders
    has_params, has_run = "{params}" in placeholders, "{run}" in placeholders
    perms, runs = plan.num_permutations, plan.runs
    if plan.total < 2:
        return None
    if not has_params and not has_run:
        return Sharing(plan.total, 1, 0, 1, plan.save_path(0))
    if not has_params:
        return Sharing(plan.total, runs, 0, 1, plan.save_path(0)) if perms > 1 else None
    if has_run and not _run_set_off(plan):
        return _count_shared(plan)
    if not _params_strings_distinct(plan):
        return _count_shared(plan)
    if not has_run and runs > 1:
        return Sharing(plan.total, perms, 0, perms, plan.save_path(0))
    return None


def _params_strings_distinct(plan: ExperimentPlan) -> bool:
    """Whether distinct permutations get distinct `{params}` strings: by construction, else by streaming."""
    if _distinct_by_construction(plan):
        return True
    seen: set[str] = set()
    for text in plan.sweep.iter_params_strings():
        if text in seen or "{" in text or "}" in text:
            return False
        seen.add(text)
    return True


def _distinct_by_construction(plan: ExperimentPlan) -> bool:
    """True when distinct permutations surely get distinct `{params}` strings.

    The string is the axes' `path-value` texts in axis order, joined by `_`. With every swept axis
    scalar-valued, its values' texts distinct and free of `_` (and of braces, which the template
    would substitute again), the string parses back into one choice per axis.
    """
    sweep = plan.sweep
    if not sweep._static_order:
        return False
    for axis, fragments in zip(sweep.axes, sweep._fragments):
        texts = [text for text, _ in fragments]
        if any("{" in t or "}" in t for t in texts):
            return False
        if len(axis.values) == 1:
            continue
        values = [str(v) for v in axis.values]
        if any(isinstance(v, (list, dict)) for v in axis.values) or len(set(values)) != len(values):
            return False
        if any("_" in v for v in values):
            return False
    return True


def _run_set_off(plan: ExperimentPlan) -> bool:
    """`{params}` and `{run}` once each, with a non-digit beside `{run}` between them: no overlap."""
    compiled = plan.save_path_template._format
    if compiled is None:
        return False
    parsed = list(string.Formatter().parse(compiled))
    fields = [name for _, name, _, _ in parsed if name is not None]
    if sorted(fields) != ["params", "run"]:
        return False
    second = next(k for k, (_, name, _, _) in enumerate(parsed) if name is not None and k > 0 and name in fields)
    between = parsed[second][0].replace("{{", "{").replace("}}", "}")
    if not between:
        return False
    beside_run = between[0] if parsed[second][1] == "params" else between[-1]
    return not beside_run.isdigit()


def _count_shared(plan: ExperimentPlan) -> Sharing | None:
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    example: tuple[int, int, str] | None = None
    for index, path in plan.save_paths():
        key = os.path.normpath(path)
        if key in first:
            counts[key] += 1
            if example is None:
                example = (first[key], index, path)
        else:
            first[key] = index
            counts[key] = 1
    if example is None:
        return None
    shared = [c for c in counts.values() if c > 1]
    return Sharing(sum(shared), len(shared), *example)


# -- reading a database without writing anything -----------------------------------------------


class DatabaseProblem(Exception):
    """The database cannot be read soundly now; the message says why, in a few words."""


_MAGIC = b"SQLite format 3\x00"
_PENDING_BYTE = 0x40000000  # SQLite's lock bytes: pending, reserved, then 510 shared bytes
_FLOCK = "hhqqi4x"  # Linux struct flock: type, whence, start, len, pid (padded to 32 bytes)


def read_database(path: str, read: Callable[[sqlite3.Connection], T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """`read(connection)` inside one read transaction on `path`, opened so that nothing is written.

    Raises `DatabaseProblem` for whatever prevents a sound read: not SQLite, truncated, a WAL
    database in use, a hot journal, a writer holding its lock beyond `timeout`, any SQLite error.
    """
    wal, before = _inspect_file(path)
    if before.st_size == 0:
        with contextlib.closing(sqlite3.connect(":memory:")) as empty:
            return read(empty)  # an empty file is an empty database: no tables
    deadline = time.monotonic() + timeout
    guard = os.open(path, os.O_RDONLY)  # closed only after SQLite's own handle: POSIX locks are per process
    try:
        _wait_for_writers(guard, deadline, timeout)
        out = _read_once(path, wal, read, max(0.0, deadline - time.monotonic()))
    finally:
        os.close(guard)
    if wal and (_exists(path + "-wal") or _changed(path, before)):
        raise DatabaseProblem("was opened by a writer while being read (WAL mode)")
    return out


def _inspect_file(path: str) -> tuple[bool, os.stat_result]:
    """(is in WAL mode, its stat); `DatabaseProblem` when the file is no whole SQLite database."""
    try:
        info = os.stat(path)
    except OSError as e:
        raise DatabaseProblem(f"cannot be read: {e.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DatabaseProblem("is a directory, not a database")
    if info.st_size == 0:
        return False, info
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as e:
        raise DatabaseProblem(f"cannot be read: {e.strerror}") from None
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise DatabaseProblem(f"is not an SQLite database ({info.st_size} bytes)")
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], "big")
    counted = pages * page if pages and header[24:28] == header[92:96] else None
    if page < 512 or page & (page - 1) or info.st_size % page or (counted and counted > info.st_size):
        expected = f", its header counts {counted}" if counted else ""
        raise DatabaseProblem(f"is truncated or damaged ({info.st_size} bytes{expected})")
    wal = header[18] == 2 or header[19] == 2
    if wal and (_exists(path + "-wal") or _exists(path + "-shm")):
        raise DatabaseProblem("is in WAL mode and open in another process (reading it would write its -shm file)")
    return wal, info


def _wait_for_writers(guard: int, deadline: float, timeout: float) -> None:
    """Wait (up to the deadline) while another process holds SQLite's pending, reserved or exclusive lock."""
    while (pid := _writer(guard)) is not None:
        if time.monotonic() >= deadline:
            who = f"process {pid}" if pid > 0 else "a process on another machine"
            raise DatabaseProblem(f"is being written ({who} has held its write lock for more than {timeout:g} s)")
        time.sleep(0.05)


def _writer(guard: int) -> int | None:
    """The pid holding a write lock on SQLite's lock bytes (0 if remote), None if none (or cannot tell)."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl

    request = struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, _PENDING_BYTE, 512, 0)
    try:
        kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(guard, fcntl.F_GETLK, request))
    except OSError:
        return None  # a filesystem without lock queries: SQLite's busy timeout still applies
    return None if kind == fcntl.F_UNLCK else pid


def _read_once(path: str, wal: bool, read: Callable[[sqlite3.Connection], T], timeout: float) -> T:
    # mode=ro never creates a journal; immutable (WAL only, checked unused above) skips the -shm
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro" + ("&immutable=1" if wal else "")
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)) as con:
            con.execute("BEGIN")
            try:
                return read(con)
            finally:
                con.execute("ROLLBACK")
    except sqlite3.Error as e:
        raise DatabaseProblem(_sqlite_problem(e, timeout)) from None


def _sqlite_problem(error: sqlite3.Error, timeout: float) -> str:
    text = str(error)
    if "locked" in text or "busy" in text:
        return f"is locked by another process (waited {timeout:g} s)"
    if "readonly" in text or "read-only" in text:
        return "has a hot journal (a writer stopped mid-write; its next writer rolls it back)"
    if "not a database" in text or "malformed" in text:
        return f"is damaged ({text})"
    return f"cannot be read ({text})"


def _exists(path: str) -> bool:
    return os.path.lexists(path)


def _changed(path: str, before: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return True
    return (now.st_size, now.st_mtime_ns, now.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino)


def _table_names(con: sqlite3.Connection) -> set[str]:
    return {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@dataclass
class Table:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]

    def position(self, name: str) -> int | None:
        """A column's position, found as SQLite finds identifiers (ASCII case-insensitive)."""
        wanted = _ascii_lower(name)
        return next((k for k, c in enumerate(self.columns) if _ascii_lower(c) == wanted), None)


def _table(con: sqlite3.Connection, name: str, select: str = "*", limit: str = "") -> Table:
    info = con.execute(f"PRAGMA table_info({_quote(name)})").fetchall()
    cursor = con.execute(f"SELECT {select} FROM {_quote(name)}{limit}")
    columns = [d[0] for d in cursor.description]
    types = {row[1]: row[2] or "" for row in info}
    return Table(columns, [types.get(c, "") for c in columns], cursor.fetchall())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


# -- the stores that read databases ------------------------------------------------------------


def _database_of(save_path: str) -> str:
    return os.path.join(save_path, DATABASE)


def _on_disk(plan: ExperimentPlan, database: str) -> str:
    return os.path.join(str(plan.config.root), database)


class _DatabaseStore(ResultStore):
    def __init__(self, marker: str | None, timeout: float) -> None:
        self.marker = marker
        self.timeout = timeout

    def _marker_note(self) -> list[str]:
        if self.marker is None:
            return []
        return [f"the marker '{self.marker}' is not used with {self.kind}: a row in {DATABASE} marks an index done"]

    def _answer_one(self, plan: ExperimentPlan, database: str, asked: Sequence[int]) -> StoreAnswer:
        """Read one database for `asked`; a problem leaves them all unknown."""
        file = _on_disk(plan, database)
        if not os.path.lexists(file):
            return StoreAnswer(self.kind, IndexSet(), database=database, databases=(database,))
        try:
            done, unknown, notes = self._match(plan, file, asked)
        except DatabaseProblem as e:
            return StoreAnswer(
                self.kind,
                IndexSet(),
                IndexSet.of(asked),
                [_unknown_note(database, str(e), asked)],
                database,
                (database,),
            )
        notes = [f"{database}: {n}" for n in notes]
        return StoreAnswer(
            self.kind, IndexSet.of(sorted(done)), IndexSet.of(sorted(unknown)), notes, database, (database,)
        )

    def _match(self, plan: ExperimentPlan, file: str, asked: Sequence[int]) -> tuple[set[int], set[int], list[str]]:
        raise NotImplementedError


class PyExpUtilsStore(_DatabaseStore):
    """PyExpUtils 8's results.db, at index 0's save path (where `saveCollector` puts every index)."""

    kind = PYEXPUTILS_DB

    def done(self, plan: ExperimentPlan, indices: Iterable[int] | None = None) -> StoreAnswer:
        self.database = _database_of(plan.save_path(0))
        answer = self._answer_one(plan, self.database, _asked(plan, indices))
        answer.notes[:0] = self._marker_note()
        return answer

    def _match(self, plan: ExperimentPlan, file: str, asked: Sequence[int]) -> tuple[set[int], set[int], list[str]]:
        header = pyexputils_header(plan)
        snapshot = read_database(file, functools.partial(_read_pyexputils, planned=plan.total), self.timeout)
        return match_pyexputils(plan, header, snapshot, asked)


class MetadataStore(_DatabaseStore):
    """ml-instrumentation's `_metadata_` table, in `<save path>/results.db` of each index."""

    kind = METADATA_DB

    def done(self, plan: ExperimentPlan, indices: Iterable[int] | None = None) -> StoreAnswer:
        by_database: dict[str, Sequence[int]] = {}
        if _shared_by_template(plan):  # one save path for all: no need to render each
            by_database[_database_of(os.path.normpath(plan.save_path(0)))] = _asked(plan, indices)
        else:
            for index, path in plan.save_paths(None if indices is None else sorted(set(indices))):
                by_database.setdefault(_database_of(os.path.normpath(path)), []).append(index)  # type: ignore[attr-defined]
        answer = StoreAnswer(self.kind, IndexSet(), notes=self._marker_note())
        for database, asked in by_database.items():
            part = self._answer_one(plan, database, asked)
            answer.done |= part.done
            answer.unknown |= part.unknown
            answer.notes += part.notes
        answer.databases = tuple(by_database)
        answer.database = self.database = answer.databases[0] if len(by_database) == 1 else None
        return answer

    def _match(self, plan: ExperimentPlan, file: str, asked: Sequence[int]) -> tuple[set[int], set[int], list[str]]:
        table = read_database(file, _read_metadata, self.timeout)
        return match_metadata(plan, table, asked)


# -- PyExpUtils' layout: the header and values as its code computes them -----------------------


class _Unwritable:
    """A value PyExpUtils cannot compare (its SQL text is invalid): the index stays unknown."""

    def __init__(self, why: str) -> None:
        self.why = why


def flat_keys(d: dict[str, Any]) -> list[str]:
    """PyExpUtils' `flatKeys`, to the letter (a list value expands to `k.[i]`, a list of dicts to `k.[i].sub`)."""
    out: list[str] = []
    for key in d:
        value = d[key]
        if isinstance(value, dict):
            out += [f"{key}.{sub}" for sub in flat_keys(value)]
        elif isinstance(value, list):
            if isinstance(value[0], dict):
                subs = [f"[{i}].{s}" for i, element in enumerate(value) for s in flat_keys(element)]
            else:
                subs = [f"[{i}]" for i in range(len(value))]
            out += [f"{key}.{sub}" for sub in subs]
        else:
            out.append(key)
    return out


def get_path(d: Any, key: str, default: Any = None) -> Any:
    """PyExpUtils' `get(d, key)`, to the letter (a missing list element or key gives `default`)."""
    if key == "":
        return d
    parts = key.split(".")
    element = d.get(parts[0])
    if element is None:
        return default
    if isinstance(element, list) and len(parts) > 1:
        position = int(re.findall(r"\[(\d+)\]", parts[1])[0])
        if len(element) <= position:
            return default
        return get_path(element[position], ".".join(parts[2:]), default)
    if isinstance(element, dict):
        return get_path(element, ".".join(parts[1:]), default)
    return element


def pyexputils_header(plan: ExperimentPlan) -> list[str]:
    """`getHeader(exp)`: the flattened keys of permutation 0's metaParameters, sorted."""
    meta = plan.permutation(0).get(META)
    if not isinstance(meta, dict):
        raise DatabaseProblem(f"PyExpUtils keys {DATABASE} on '{META}', which this experiment has no object for")
    return sorted(flat_keys(meta))


def _axis_of(plan: ExperimentPlan, key: str) -> int | None:
    """The swept axis (under metaParameters) that header `key` lies in; None for a fixed value."""
    for number, axis in enumerate(plan.sweep.axes):
        if axis.parts[0] != META or len(axis.parts) < 2:
            continue
        relative = ".".join(f"[{p}]" if isinstance(p, int) else p for p in axis.parts[1:])
        if key == relative or key.startswith(relative + "."):
            return number
    return None


def header_values(plan: ExperimentPlan, header: Sequence[str]) -> list[tuple[int | None, list[Any]]]:
    """Per header key: (its axis, its value for each of the axis' values), or (None, [fixed value]).

    A key's value depends only on its axis' choice, so each is computed once per axis value
    (on the permutation with that choice and all other axes at 0), not once per permutation.
    """
    strides, stride = [], 1
    for size in plan.sweep.sizes:
        strides.append(stride)
        stride *= size
    out: list[tuple[int | None, list[Any]]] = []
    for key in header:
        axis = _axis_of(plan, key)
        choices = range(plan.sweep.sizes[axis]) if axis is not None else [0]
        values = []
        for choice in choices:
            meta = plan.permutation(choice * (strides[axis] if axis is not None else 0))[META]
            try:
                values.append(get_path(meta, key))
            except (AttributeError, IndexError, TypeError, ValueError) as e:
                values.append(_Unwritable(f"PyExpUtils cannot read {key} ({type(e).__name__})"))
        out.append((axis, values))
    return out


def permutation_choices(plan: ExperimentPlan, perms: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """The axis choices of each permutation in `perms` (all of them: in one product, first axis fastest)."""
    sizes = plan.sweep.sizes
    if len(perms) == plan.num_permutations and (not perms or perms[0] == 0):
        for reversed_choices in itertools.product(*(range(n) for n in reversed(sizes))):
            yield reversed_choices[::-1]
        return
    for perm in perms:
        yield tuple(plan.sweep.choices(perm))


# -- PyExpUtils' value comparison --------------------------------------------------------------
#
# get_cid() writes `"col"=<value>` into SQL: a string as "text" (a double-quoted token: an identifier
# when a column, or rowid, has that name, else a string), anything else as str(value) (True is the
# keyword TRUE = 1, None is an unknown identifier: an error). SQLite then compares the stored value
# with the literal, applying the column's affinity to the literal. The literal is evaluated here by
# SQLite itself (in memory, into a column of the same declared type), so the comparison is exact.


class _Column:
    def __init__(self, position: int) -> None:
        self.position = position


_ROWID = object()
_ROWID_NAMES = ("rowid", "_rowid_", "oid")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _sql_text(value: Any) -> str:
    """PyExpUtils' `str(maybe_quote(value))`."""
    return f'"{value}"' if isinstance(value, str) else str(value)


class _Literals:
    """Evaluates SQL literal texts as SQLite does, into a column of a given declared type."""

    def __init__(self) -> None:
        self.con = sqlite3.connect(":memory:", isolation_level=None)
        self.tables: dict[str, str] = {}
        self.cache: dict[tuple[str, str], Any] = {}

    def value(self, text: str, declared: str) -> Any:
        key = (text, declared)
        if key not in self.cache:
            self.cache[key] = self._evaluate(text, declared)
        return self.cache[key]

    def _evaluate(self, text: str, declared: str) -> Any:
        if declared not in self.tables:
            self.tables[declared] = name = f"probe{len(self.tables)}"
            self.con.execute(f"CREATE TABLE {name}(c {declared})")
        table = self.tables[declared]
        try:
            self.con.execute(f"INSERT INTO {table}(c) VALUES({text})")
            (value,) = self.con.execute(f"SELECT c FROM {table}").fetchone()
        except (sqlite3.Error, ValueError) as e:
            return _Unwritable(f"PyExpUtils' SQL for {text} fails ({e})")
        finally:
            self.con.execute(f"DELETE FROM {table}")
        if value is None:
            return _Unwritable(f"{text} is NULL in SQL and equals nothing")
        return value

    def close(self) -> None:
        self.con.close()


def _operand(value: Any, table: Table, declared: str, literals: _Literals, rowid: bool) -> Any:
    """What `"col"=<value>` compares the column with: a value, a column, the rowid, or `_Unwritable`."""
    if isinstance(value, _Unwritable):
        return value
    text = _sql_text(value)
    identifier = value if isinstance(value, str) else (text if _IDENTIFIER.fullmatch(text) else None)
    if identifier is not None:
        position = table.position(identifier)
        if position is not None:
            return _Column(position)
        if rowid and _ascii_lower(identifier) in _ROWID_NAMES:
            return _ROWID
    if isinstance(value, str) and '"' in value:
        return _Unwritable(f'PyExpUtils cannot write {value!r} into SQL (it holds a ")')
    return literals.value(text, declared)


@dataclass
class PyExpUtilsSnapshot:
    """One consistent read of a PyExpUtils database: its tables, version, hyperparameters, results."""

    tables: set[str]
    versions: list[Any]
    hyperparameters: Table | None
    rowid: bool  # the hyperparameters rows start with their rowid
    pairs: set[tuple[Any, Any]]  # distinct (config_id, seed) of `results`
    results: Table | None  # columns and declared types only


def _read_pyexputils(con: sqlite3.Connection, planned: int) -> PyExpUtilsSnapshot:
    tables = _table_names(con)
    versions = [v for (v,) in con.execute("SELECT version FROM metadata")] if "metadata" in tables else []
    hyper, rowid = None, False
    if "hyperparameters" in tables:
        columns = {_ascii_lower(r[1]) for r in con.execute("PRAGMA table_info(hyperparameters)")}
        alias = next((a for a in _ROWID_NAMES if a not in columns), None)
        hyper, rowid = _table(con, "hyperparameters", f"{alias}, *" if alias else "*"), alias is not None
    pairs: set[tuple[Any, Any]] = set()
    results = None
    if "results" in tables:
        results = _table(con, "results", limit=" LIMIT 0")
        (rows,) = con.execute("SELECT count(*) FROM results").fetchone()
        # a row per frame: with many frames per index SQLite's DISTINCT is faster, with few a plain read
        distinct = "DISTINCT " if rows > 3 * planned else ""
        pairs = set(con.execute(f"SELECT {distinct}config_id, seed FROM results"))
    return PyExpUtilsSnapshot(tables, versions, hyper, rowid, pairs, results)


def _layout_problem(snapshot: PyExpUtilsSnapshot, header: Sequence[str]) -> str | None:
    """Why PyExpUtils itself could not use this database (it would crash or migrate it), if so."""
    if not snapshot.tables:
        return "has no tables yet (being created, or left empty: PyExpUtils cannot open it either)"
    if snapshot.versions[:1] != ["v2"]:
        found = f"'{snapshot.versions[0]}'" if snapshot.versions else "none"
        return f"is not PyExpUtils' v2 layout (version {found}; PyExpUtils migrates it on its next read)"
    if "results" not in snapshot.tables:
        return None  # PyExpUtils: every index missing
    table = snapshot.hyperparameters
    if table is None or table.position("config_id") is None:
        return "has no hyperparameters table with a config_id column"
    lacking = [k for k in header if table.position(k) is None]
    if lacking:
        return f"hyperparameters has no column for {', '.join(lacking)} (PyExpUtils cannot use it for this experiment)"
    return None


def match_pyexputils(
    plan: ExperimentPlan, header: Sequence[str], snapshot: PyExpUtilsSnapshot, asked: Sequence[int]
) -> tuple[set[int], set[int], list[str]]:
    """(done, unknown, notes) for `asked`, as `detectMissingIndices` would find them, in one pass."""
    problem = _layout_problem(snapshot, header)
    if problem is not None:
        raise DatabaseProblem(problem)
    if "results" not in snapshot.tables:
        return set(), set(), []
    assert snapshot.hyperparameters is not None and snapshot.results is not None
    literals = _Literals()
    try:
        config_ids = _config_ids(plan, header, snapshot, _perms_of(plan, asked), literals)
    finally:
        literals.close()
    return _done_by_seed(plan, config_ids, snapshot.pairs, asked)


def _config_ids(
    plan: ExperimentPlan,
    header: Sequence[str],
    snapshot: PyExpUtilsSnapshot,
    perms: Sequence[int],
    literals: _Literals,
) -> dict[int, Any]:
    """permutation -> the `config_id` literal `get_cid` finds for it (None: no row; `_Unwritable`)."""
    table = snapshot.hyperparameters
    assert table is not None and snapshot.results is not None
    shift = 1 if snapshot.rowid else 0
    positions = [table.position(k) for k in header]
    config_position = table.position("config_id")
    operands = [
        (axis, [_operand(v, table, table.types[p], literals, snapshot.rowid) for v in values])  # type: ignore[index]
        for (axis, values), p in zip(header_values(plan, header), positions)
    ]
    first: dict[tuple[Any, ...], Any] = {}
    for row in table.rows:
        first.setdefault(tuple(row[p] for p in positions), row[config_position])  # type: ignore[index]
    config_type = snapshot.results.types[snapshot.results.position("config_id") or 0]
    out: dict[int, Any] = {}
    for perm, chosen in zip(perms, permutation_choices(plan, perms)):
        key = tuple(values[chosen[axis]] if axis is not None else values[0] for axis, values in operands)
        if any(isinstance(v, (_Column, _Unwritable)) or v is _ROWID for v in key):
            found = _scan(table, positions, key, shift)
        else:
            found = first.get(key)
        out[perm] = (
            found if found is None or isinstance(found, _Unwritable) else _config_literal(found, literals, config_type)
        )
    return out


def _scan(table: Table, positions: Sequence[int | None], key: tuple[Any, ...], shift: int) -> Any:
    """The first row that `"col"=<operand> AND ...` selects, when an operand is a column or rowid."""
    bad = next((v for v in key if isinstance(v, _Unwritable)), None)
    if bad is not None:
        return bad
    for row in table.rows:
        if all(_equal(row, p, v, shift) for p, v in zip(positions, key)):
            return row[table.position("config_id")]  # type: ignore[index]
    return None


def _equal(row: tuple[Any, ...], position: int | None, operand: Any, shift: int) -> bool:
    stored = row[position]  # type: ignore[index]
    if isinstance(operand, _Column):
        other = row[operand.position]
    elif operand is _ROWID:
        other = row[0] if shift else None
    else:
        other = operand
    return stored is not None and other is not None and stored == other


def _config_literal(config_id: Any, literals: _Literals, declared: str) -> Any:
    """What `WHERE config_id={cid}` compares with: PyExpUtils formats the id into the SQL too."""
    if isinstance(config_id, int):
        return config_id
    text = str(config_id)
    if _IDENTIFIER.fullmatch(text):
        return _Unwritable(f"config_id {text!r} is not a number PyExpUtils can look up")
    return literals.value(text, declared)


def _done_by_seed(
    plan: ExperimentPlan, config_ids: dict[int, Any], pairs: set[tuple[Any, Any]], asked: Sequence[int]
) -> tuple[set[int], set[int], list[str]]:
    """Done: `results` has a row with the permutation's config_id and the run as seed (the seeds compared
    as PyExpUtils compares the seeds it fetched, in Python); unknown: a config_id that cannot be told."""
    unwritable = {p: c for p, c in config_ids.items() if isinstance(c, _Unwritable)}
    key_of = {p: c for p, c in config_ids.items() if c is not None and p not in unwritable}
    done = _indices_done(plan, key_of, pairs, asked)
    reasons: dict[str, list[int]] = {}
    if unwritable:
        for index in asked:
            bad = unwritable.get(index % plan.num_permutations)
            if bad is not None:
                reasons.setdefault(bad.why, []).append(index)
    notes = [f"{why}; index(es) {format_ranges(ix)} unknown, neither done nor submitted" for why, ix in reasons.items()]
    return done, {i for ix in reasons.values() for i in ix}, notes


# -- ml-instrumentation's layout ---------------------------------------------------------------


def _read_metadata(con: sqlite3.Connection) -> Table:
    if "_metadata_" not in _table_names(con):
        return Table([], [], [])
    return _table(con, "_metadata_")


def metadata_values(plan: ExperimentPlan) -> tuple[list[str], list[tuple[int | None, list[dict[str, Any]]]]]:
    """The flattened parameter names, and per metaParameters axis its values' flattened leaves."""
    per_axis: list[tuple[int | None, list[dict[str, Any]]]] = []
    for number, axis in enumerate(plan.sweep.axes):
        if axis.parts[0] == META and len(axis.parts) > 1:
            prefix = ".".join(f"[{p}]" if isinstance(p, int) else p for p in axis.parts[1:])
            per_axis.append((number, [dict(leaves(prefix, v)) for v in axis.values]))
    if META not in plan.keys and isinstance(plan.file.data.get(META), dict):
        per_axis.append((None, [dict(leaves("", plan.file.data[META]))]))
    names = sorted({name for _, values in per_axis for leaf in values for name in leaf})
    return names, per_axis


def _stored(value: Any) -> Any:
    """A parameter as sqlite3 stores it when bound: booleans are integers."""
    return int(value) if isinstance(value, bool) else value


def match_metadata(plan: ExperimentPlan, table: Table, asked: Sequence[int]) -> tuple[set[int], set[int], list[str]]:
    """(done, unknown, notes): done when a `_metadata_` row holds the index's parameters and seed."""
    if not table.columns:
        return set(), set(), []
    seed = table.position("seed")
    if seed is None:
        raise DatabaseProblem("_metadata_ has no seed column")
    names, per_axis = metadata_values(plan)
    positions = [table.position(name) for name in names]
    pairs = {(tuple(None if p is None else row[p] for p in positions), row[seed]) for row in table.rows}
    perms = _perms_of(plan, asked)
    key_of: dict[int, Any] = {}
    for perm, chosen in zip(perms, permutation_choices(plan, perms)):
        flat: dict[str, Any] = {}
        for axis, values in per_axis:
            flat.update(values[chosen[axis]] if axis is not None else values[0])
        key_of[perm] = tuple(_stored(flat.get(name)) for name in names)
    return _indices_done(plan, key_of, pairs, asked), set(), []

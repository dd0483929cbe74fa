"""The result store: which indices are done with per-index paths, PyExpUtils' results.db, or
ml-instrumentation's `_metadata_` table; shared save paths; databases that cannot be read.

The PyExpUtils databases here are written with sqlite3 exactly as its `saveCollector` writes them
(values formatted into SQL text); test_result_store_pyexputils.py checks against the package itself.
The `_metadata_` fixtures are built with sqlite3 from ml-instrumentation's `attach_metadata`, since
that package is not installable here.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from result_store_support import (
    EXPERIMENT,
    attach_metadata,
    flat_params,
    make_project,
    orchestrator_env,
    plan_of,
    run_cli,
    tree,
    write_pyexputils,
    writer_holding,
)

from orchestrator.errors import UserError
from orchestrator.result_store import (
    MetadataStore,
    PathStore,
    PyExpUtilsStore,
    Sharing,
    UnreadableStore,
    read_database,
    sharing,
    store_for,
)
from orchestrator.slurm_formats import parse_ranges

SWEEP = {"agent": "DQN", "metaParameters": {"alpha": [0.1, 0.2, 0.3], "gamma": 0.99}}
DB = "results/shared/results.db"


# -- shared save paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "runs", "expected"),
    [
        ("results/{name}/{agent}", 2, Sharing(6, 1, 0, 1, "results/ex/DQN")),
        ("results", 1, Sharing(3, 1, 0, 1, "results")),
        ("results/{name}/{params}", 2, Sharing(6, 3, 0, 3, "results/ex/alpha-0.1_gamma-0.99")),
        ("results/{name}/{run}", 2, Sharing(6, 2, 0, 1, "results/ex/0")),
        ("results/{name}/{params}/{run}", 2, None),
        ("results/{name}/{params}", 1, None),
    ],
)
def test_sharing_is_known_from_the_template(tmp_path: Path, template: str, runs: int, expected: Sharing | None) -> None:
    assert sharing(plan_of(tmp_path, SWEEP, runs, template)) == expected


def test_distinct_paths_of_ten_million_indices_are_known_without_listing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"metaParameters": {f"p{k}": list(range(10)) for k in range(7)}}
    plan = plan_of(tmp_path, data, 10, "results/{name}/{params}/{run}")
    assert plan.total == 10**8
    monkeypatch.setattr(type(plan), "save_paths", lambda *a, **k: pytest.fail("listed every path"))
    monkeypatch.setattr(type(plan.sweep), "iter_params_strings", lambda *a: pytest.fail("listed every string"))
    assert sharing(plan) is None


def test_equal_params_strings_are_found_even_with_params_and_run(tmp_path: Path) -> None:
    # 1 and "1" both give `x-1`: PyExpUtils saves both to one path
    plan = plan_of(tmp_path, {"metaParameters": {"x": [1, "1", 2]}}, 2, "results/{params}/{run}")
    assert sharing(plan) == Sharing(4, 2, 0, 1, "results/x-1/0")


def test_values_with_underscores_are_streamed_and_found_distinct(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, {"metaParameters": {"opt": ["sgd_m", "sgd", "m_sgd"]}}, 2, "results/{params}/{run}")
    assert sharing(plan) is None


def test_a_run_number_run_into_the_params_string_can_collide(tmp_path: Path) -> None:
    # x-1 with run 10 and x-11 with run 0 are both results/x-110
    plan = plan_of(tmp_path, {"metaParameters": {"x": [1, 11]}}, 11, "results/{params}{run}")
    assert sharing(plan) == Sharing(2, 1, 1, 20, "results/x-110")


# -- choosing the store ------------------------------------------------------------------------


def test_auto_choice(tmp_path: Path) -> None:
    assert isinstance(store_for(plan_of(tmp_path, SWEEP, 2, "results/{params}/{run}")), PathStore)
    plan = plan_of(tmp_path / "a", SWEEP, 2)
    write_pyexputils(tmp_path / "a" / DB, plan, [0])
    assert isinstance(store_for(plan), PyExpUtilsStore)
    plan = plan_of(tmp_path / "b", SWEEP, 2)
    attach_metadata(tmp_path / "b" / DB, 0, {**flat_params(plan, 0), "seed": 0})
    assert isinstance(store_for(plan), MetadataStore)
    assert isinstance(store_for(plan, "pyexputils-db"), PyExpUtilsStore)  # an explicit choice wins
    assert isinstance(store_for(plan, "paths"), PathStore)


def test_a_shared_path_without_a_database_is_refused(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, SWEEP, 2, "results/{name}/{agent}")
    (tmp_path / "results/ex/DQN").mkdir(parents=True)
    with pytest.raises(UserError) as error:
        store_for(plan)
    assert str(error.value) == (
        "experiments/ex/DQN.json: 6 indices share 1 save path(s) (e.g. indices 0 and 1 both save to results/ex/DQN), "
        "and there is no results.db at results/ex/DQN to tell them apart; add {params} and {run} to save_path in "
        "config.json, or say how results are stored: --results pyexputils-db|metadata-db "
        '(or results = "..." under [tool.orchestrator] in pyproject.toml)'
    )


def test_a_shared_database_of_neither_or_both_layouts_is_refused(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, SWEEP, 2)
    (tmp_path / "results/shared").mkdir(parents=True)
    with sqlite3.connect(tmp_path / DB) as con:
        con.execute("CREATE TABLE other(x)")
    with pytest.raises(UserError, match=r"results/shared/results\.db holds neither layout's tables"):
        store_for(plan)
    write_pyexputils(tmp_path / DB, plan, [0])
    attach_metadata(tmp_path / DB, 0, {"alpha": 0.1, "seed": 0})
    with pytest.raises(UserError, match="holds both PyExpUtils' and ml-instrumentation's tables"):
        store_for(plan)


def test_a_shared_database_that_cannot_be_read_leaves_every_index_unknown(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, SWEEP, 2)
    (tmp_path / "results/shared").mkdir(parents=True)
    (tmp_path / DB).write_bytes(b"not a database, just text" * 10)
    store = store_for(plan)
    assert isinstance(store, UnreadableStore)
    answer = store.done(plan)
    assert (answer.kind, set(answer.done), set(answer.unknown)) == ("unreadable-db", set(), set(range(6)))
    assert answer.notes == [
        "results/shared/results.db: is not an SQLite database (250 bytes); "
        "6 index(es) unknown, neither done nor submitted: 0-5"
    ]


# -- PyExpUtils' layout ------------------------------------------------------------------------


NESTED = {
    "agent": "DQN",
    "metaParameters": {
        "alpha": [0.1, 1e-5, 1, 1.0],
        "opt": {"name": ["adam", "1", "True"], "b": [[1, 2], [3, 4]]},
        "double": [True, False],
    },
}


def test_pyexputils_done_is_exactly_what_was_saved(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, NESTED, 3)
    saved = [0, 5, 17, plan.num_permutations + 3, 2 * plan.num_permutations + 40]
    write_pyexputils(tmp_path / DB, plan, saved)
    answer = PyExpUtilsStore(None, 1.0).done(plan)
    # equal as SQL compares them: 1 and 1.0 are one number, so alpha 1 and alpha 1.0 share a config_id
    expected = {
        i
        for i in range(plan.total)
        if any(plan.run(i) == plan.run(s) and plan.params(i) == plan.params(s) for s in saved)
    }
    assert len(expected) > len(saved)
    assert set(answer.done) == expected
    assert (answer.kind, answer.database, set(answer.unknown), answer.notes) == ("pyexputils-db", DB, set(), [])
    assert set(PyExpUtilsStore(None, 1.0).done(plan, [0, 1, 5]).done) == {0, 5}


def test_pyexputils_many_frames_per_index(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, NESTED, 2)
    everything_but = [i for i in range(plan.total) if i % 7]
    write_pyexputils(tmp_path / DB, plan, everything_but, frames=8)  # read with SELECT DISTINCT
    same = [(plan.run(s), plan.params(s)) for s in everything_but]
    expected = {i for i in range(plan.total) if (plan.run(i), plan.params(i)) in same}
    assert len(expected) < plan.total
    assert set(PyExpUtilsStore(None, 1.0).done(plan).done) == expected


def test_pyexputils_without_a_database_or_results_table_everything_is_missing(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, SWEEP, 2)
    assert set(PyExpUtilsStore(None, 1.0).done(plan).done) == set()
    (tmp_path / "results/shared").mkdir(parents=True)
    with sqlite3.connect(tmp_path / DB) as con:
        con.execute("CREATE TABLE metadata(version)")
        con.execute("INSERT INTO metadata VALUES('v2')")
    answer = PyExpUtilsStore(None, 1.0).done(plan)
    assert (set(answer.done), set(answer.unknown)) == (set(), set())


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("DROP TABLE metadata", "is not PyExpUtils' v2 layout (version none; PyExpUtils migrates it on its next read)"),
        ("UPDATE metadata SET version = 'v3'", "is not PyExpUtils' v2 layout (version 'v3'"),
        ("ALTER TABLE hyperparameters RENAME COLUMN gamma TO beta", "hyperparameters has no column for gamma"),
        ("ALTER TABLE results RENAME COLUMN seed TO run", "cannot be read (no such column: seed)"),
    ],
)
def test_pyexputils_databases_it_could_not_use_leave_indices_unknown(tmp_path: Path, setup: str, problem: str) -> None:
    plan = plan_of(tmp_path, SWEEP, 2)
    write_pyexputils(tmp_path / DB, plan, [0, 1])
    with sqlite3.connect(tmp_path / DB) as con:
        con.execute(setup)
    answer = PyExpUtilsStore(None, 1.0).done(plan)
    assert (set(answer.done), set(answer.unknown)) == (set(), set(range(6)))
    assert answer.notes[0].startswith(f"{DB}: {problem}")
    assert answer.notes[0].endswith("6 index(es) unknown, neither done nor submitted: 0-5")


def test_pyexputils_values_it_cannot_write_leave_only_their_indices_unknown(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, {"metaParameters": {"x": [1, None, 'say "hi"']}}, 1)
    write_pyexputils(tmp_path / DB, plan, [0])
    answer = PyExpUtilsStore(None, 1.0).done(plan)
    assert (set(answer.done), set(answer.unknown)) == ({0}, {1, 2})
    assert len(answer.notes) == 2 and all(note.startswith(DB + ": ") for note in answer.notes)
    assert "None" in answer.notes[0] and 'holds a "' in answer.notes[1]


def test_pyexputils_compares_a_string_that_names_a_column_with_that_column(tmp_path: Path) -> None:
    # `"a"="b"` in PyExpUtils' SQL compares column a with column b: the row written for a="b", b="c"
    # is not found again (PyExpUtils adds a new config_id each time); a="b", b="b" matches itself
    plan = plan_of(tmp_path, {"metaParameters": {"a": ["b", "x"], "b": ["c", "b"]}}, 1)
    write_pyexputils(tmp_path / DB, plan, [0, 1, 2, 3])
    assert set(PyExpUtilsStore(None, 1.0).done(plan).done) == {1, 2, 3}


# -- ml-instrumentation's layout ---------------------------------------------------------------


METADATA_SWEEP = {
    "agent": "DQN",
    "metaParameters": {"alpha": [0.1, 0.2], "opt": {"name": ["adam", "sgd"], "nesterov": [True, None]}},
}


def test_metadata_done_when_a_row_holds_the_index_parameters_and_seed(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, METADATA_SWEEP, 2)
    for index in (0, 3, 9, 14):
        attach_metadata(tmp_path / DB, index, {**flat_params(plan, index), "seed": plan.run(index)})
    attach_metadata(tmp_path / DB, 5, {**flat_params(plan, 6), "seed": 0})  # id 5, but index 6's values
    attach_metadata(tmp_path / DB, 7, {**flat_params(plan, 7), "seed": 5})  # index 7's values, a seed not planned
    answer = MetadataStore(None, 1.0).done(plan)
    assert set(answer.done) == {0, 3, 6, 9, 14}
    assert (answer.kind, answer.database, answer.databases, set(answer.unknown)) == ("metadata-db", DB, (DB,), set())


def test_metadata_follows_values_when_the_experiment_file_is_edited(tmp_path: Path) -> None:
    before = plan_of(tmp_path, METADATA_SWEEP, 1)
    for index in range(before.total):
        attach_metadata(tmp_path / DB, index, {**flat_params(before, index), "seed": 0})
    edited = json.loads(json.dumps(METADATA_SWEEP))
    edited["metaParameters"]["alpha"] = [0.05, 0.1, 0.2]  # every index renumbered, a third of them new
    after = plan_of(tmp_path, edited, 1)
    expected = {i for i in range(after.total) if after.params(i)["alpha"] != 0.05}
    assert set(MetadataStore(None, 1.0).done(after).done) == expected


def test_metadata_databases_per_save_path(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, METADATA_SWEEP, 2, "results/{name}/{agent}/{run}", results="metadata-db")
    attach_metadata(tmp_path / "results/ex/DQN/1/results.db", 9, {**flat_params(plan, 9), "seed": 1})
    answer = store_for(plan, plan.results).done(plan)
    assert set(answer.done) == {9}
    assert answer.databases == ("results/ex/DQN/0/results.db", "results/ex/DQN/1/results.db")
    assert answer.database is None


# -- databases that cannot be read soundly -----------------------------------------------------


def saved_project(tmp_path: Path, kind: str) -> tuple[Path, object]:
    plan = plan_of(tmp_path, SWEEP, 2, results=kind)
    if kind == "pyexputils-db":
        write_pyexputils(tmp_path / DB, plan, [0, 4])
    else:
        for index in (0, 4):
            attach_metadata(tmp_path / DB, index, {**flat_params(plan, index), "seed": plan.run(index)})
    return tmp_path / DB, plan


@pytest.mark.parametrize("kind", ["pyexputils-db", "metadata-db"])
@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE"])
def test_a_writer_holding_a_write_transaction_leaves_indices_unknown(tmp_path: Path, kind: str, mode: str) -> None:
    database, plan = saved_project(tmp_path, kind)
    table = "results" if kind == "pyexputils-db" else "_metadata_"
    with writer_holding(database, mode, f"DELETE FROM {table}"):
        started = time.monotonic()
        answer = store_for(plan, kind, timeout=0.3).done(plan)
        waited = time.monotonic() - started
    assert (set(answer.done), set(answer.unknown)) == (set(), set(range(6)))
    assert len(answer.notes) == 1 and answer.notes[0].startswith(DB + ": ")
    assert "is being written (process " in answer.notes[0]
    assert 0.25 < waited < 5
    assert set(store_for(plan, kind, timeout=0.3).done(plan).done) == set()  # the writer committed: all gone


@pytest.mark.parametrize("kind", ["pyexputils-db", "metadata-db"])
def test_a_writer_that_finishes_within_the_timeout_is_waited_for(tmp_path: Path, kind: str) -> None:
    database, plan = saved_project(tmp_path, kind)
    table = "results" if kind == "pyexputils-db" else "_metadata_"
    with writer_holding(database, "IMMEDIATE", f"DELETE FROM {table}", end="rollback", hold_for=0.3):
        answer = store_for(plan, kind, timeout=10).done(plan)
    assert (set(answer.done), set(answer.unknown)) == ({0, 4}, set())


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is truncated or damaged"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "is truncated or damaged"),
        (lambda p: p.write_text("id,alpha\n1,0.1\n" * 20), "is not an SQLite database (300 bytes)"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080), "is truncated or damaged"),
    ],
)
@pytest.mark.parametrize("kind", ["pyexputils-db", "metadata-db"])
def test_a_damaged_database_leaves_indices_unknown(tmp_path: Path, kind: str, damage, problem: str) -> None:
    database, plan = saved_project(tmp_path, kind)
    damage(database)
    answer = store_for(plan, kind, timeout=0.3).done(plan)
    assert (set(answer.done), set(answer.unknown)) == (set(), set(range(6)))
    assert answer.notes[0].startswith(f"{DB}: {problem}")


def test_a_hot_journal_leaves_indices_unknown_and_untouched(tmp_path: Path) -> None:
    database, plan = saved_project(tmp_path, "pyexputils-db")
    crash = (
        "import os, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('PRAGMA cache_size=1')\n"
        "con.execute('BEGIN')\n"
        "con.execute('DELETE FROM results')\n"
        "con.execute('INSERT INTO results SELECT * FROM results')\n"
        "con.executemany('INSERT INTO results VALUES(1, 2, 3, zeroblob(3000))', [()] * 50)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(database)], check=True)
    assert Path(str(database) + "-journal").exists()
    before = tree(tmp_path / "results")
    answer = store_for(plan, "pyexputils-db", timeout=0.3).done(plan)
    assert (set(answer.done), set(answer.unknown)) == (set(), set(range(6)))
    assert "has a hot journal" in answer.notes[0]
    assert tree(tmp_path / "results") == before


def test_wal_databases_are_read_only_when_nobody_has_them_open(tmp_path: Path) -> None:
    database, plan = saved_project(tmp_path, "pyexputils-db")
    with sqlite3.connect(database) as con:
        assert con.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    con.close()
    before = tree(tmp_path / "results")
    assert sorted(before) == ["shared", "shared/results.db"]
    assert set(store_for(plan, "pyexputils-db").done(plan).done) == {0, 4}
    assert tree(tmp_path / "results") == before  # no -wal, no -shm
    opener = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('SELECT 1 FROM results').fetchall(); print('open', flush=True); sys.stdin.readline()",
         str(database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert opener.stdout is not None and opener.stdout.readline().strip() == "open"
        during = tree(tmp_path / "results")
        answer = store_for(plan, "pyexputils-db").done(plan)
        assert tree(tmp_path / "results") == during
    finally:
        opener.communicate("\n", timeout=30)
    assert set(answer.unknown) == set(range(6))
    assert "is in WAL mode and open in another process" in answer.notes[0]


def test_reading_creates_nothing_beside_a_database(tmp_path: Path) -> None:
    database, plan = saved_project(tmp_path, "pyexputils-db")
    before = tree(tmp_path / "results")
    for _ in range(3):
        assert read_database(str(database), lambda con: con.execute("SELECT count(*) FROM results").fetchone()) == (4,)
        assert set(store_for(plan).done(plan).done) == {0, 4}
    assert tree(tmp_path / "results") == before


# -- through the command line ------------------------------------------------------------------


def test_a_colliding_save_path_without_a_database_exits_2_and_reports_nothing_done(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{agent}")
    (project / "results/ex/DQN").mkdir(parents=True)  # exists, so today every index would look done
    message = "experiments/ex/DQN.json: 6 indices share 1 save path(s) (e.g. indices 0 and 1 both save to"
    for command in (["status"], ["status", "--json"], ["submit", "--executor", "local"], ["cancel"]):
        code, out, err = run_cli(project, *command, EXPERIMENT, "--runs", "2")
        assert (code, out) == (2, ""), (command, out, err)
        assert err.startswith(f"orchestrator: error: {message}") and err.count("\n") == 1, err
    assert not (project / ".orchestrator").exists()
    code, out, err = run_cli(project, "plan", EXPERIMENT, "--runs", "2")
    assert code == 0 and "total indices: 6" in out
    assert err.startswith(f"orchestrator: warning: {message}")


def test_an_explicit_paths_choice_is_honoured_with_a_note(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}")
    (project / "results/ex/alpha-0.1_gamma-0.99").mkdir(parents=True)
    code, out, _ = run_cli(project, "status", EXPERIMENT, "--runs", "2", "--results", "paths")
    assert code == 0
    assert "2/6 done" in out
    assert "note: experiments/ex/DQN.json: 6 indices share 3 save path(s)" in out


def test_status_json_names_the_store_and_database(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}")
    code, out, _ = run_cli(project, "status", EXPERIMENT, "--json")
    assert code == 0
    entry = json.loads(out)["experiments"][0]
    assert (entry["results"], entry["database"]) == ("paths", None)

    project = make_project(tmp_path / "q", SWEEP, "results/{name}/{agent}")
    plan = plan_of(project, SWEEP, 2, "results/{name}/{agent}")
    write_pyexputils(project / "results/ex/DQN/results.db", plan, [1, 2, 5])
    code, out, _ = run_cli(project, "status", EXPERIMENT, "--runs", "2", "--json")
    entry = json.loads(out)["experiments"][0]
    assert (entry["results"], entry["database"], entry["done"], entry["missing"]) == (
        "pyexputils-db",
        "results/ex/DQN/results.db",
        3,
        3,
    )
    assert entry["unknown"] == 0 and entry["indices"]["unknown"] == ""
    assert set(parse_ranges(entry["indices"]["done"])) == {1, 2, 5}


def test_unknown_indices_are_shown_and_never_submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{agent}")
    plan = plan_of(project, SWEEP, 2, "results/{name}/{agent}")
    database = project / "results/ex/DQN/results.db"
    write_pyexputils(database, plan, [1])
    monkeypatch.setenv("ORCHESTRATOR_DB_TIMEOUT", "0.2")
    with writer_holding(database, "IMMEDIATE", "DELETE FROM results"):
        code, out, _ = run_cli(project, "status", EXPERIMENT, "--runs", "2", "--json")
        entry = json.loads(out)["experiments"][0]
        assert (code, entry["unknown"], entry["indices"]["unknown"], entry["done"]) == (0, 6, "0-5", 0)
        code, out, _ = run_cli(project, "status", EXPERIMENT, "--runs", "2")
        assert "0/6 done" in out and "unknown 6" in out
        assert "note: results/ex/DQN/results.db: is being written" in out
        code, out, _ = run_cli(
            project, "submit", EXPERIMENT, "--runs", "2", "--executor", "local", "--dry-run", "--no-check"
        )
        assert code == 0 and "would submit" not in out and "note: results/ex/DQN/results.db: is being" in out


NOOP = "import sys\n"  # an entry script that writes nothing: whatever changes under results/ is ours


@pytest.mark.parametrize("kind", ["pyexputils-db", "metadata-db"])
def test_status_and_submit_write_nothing_under_results(tmp_path: Path, kind: str) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{agent}")
    plan = plan_of(project, SWEEP, 2, "results/{name}/{agent}")
    database = project / "results/ex/DQN/results.db"
    if kind == "pyexputils-db":
        write_pyexputils(database, plan, [0, 3])
    else:
        for index in (0, 3):
            attach_metadata(database, index, {**flat_params(plan, index), "seed": plan.run(index)})
    (project / "noop.py").write_text(NOOP)
    (project / "local.yaml").write_text("command: python noop.py {experiment} {index}\n")
    before = tree(project / "results")
    time.sleep(0.01)
    commands = [
        ["status", EXPERIMENT, "--runs", "2"],
        ["status", EXPERIMENT, "--runs", "2", "--json"],
        ["plan", EXPERIMENT, "--runs", "2"],
        ["submit", EXPERIMENT, "--runs", "2", "--executor", "local", "--cluster", "local.yaml", "--json"],
        ["submit", EXPERIMENT, "--runs", "2", "--executor", "local", "--cluster", "local.yaml", "--dry-run"],
        ["cancel", EXPERIMENT, "--runs", "2"],
    ]
    for command in commands:
        ran = subprocess.run(
            [sys.executable, "-m", "orchestrator", *command],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            env=orchestrator_env(),
        )
        assert ran.returncode == 0, (command, ran.stderr)
        if command[0] == "submit" and "--json" in command:
            sent = json.loads(ran.stdout)["submissions"]
            assert sorted(i for s in sent for i in parse_ranges(s["indices"])) == [1, 2, 4, 5]
    assert tree(project / "results") == before

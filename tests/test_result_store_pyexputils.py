"""Differential: the pyexputils-db store against PyExpUtils 8.1.2 itself, on random sweeps.

Databases are written by the real `PyExpUtils.results.sqlite.saveCollector` for a random subset of
the indices of random sweeps (strings, including ones that look like numbers or name a column,
floats, ints, booleans, nested keys), and our answer is compared with `detectMissingIndices` run on
a copy of the database (it inserts rows while it reads). Each writer and the detection use their
own `hash`, as separate processes do (PyExpUtils' new config ids are `hash(values)`, seeded per
process). Needs the reference and its runtime dependencies, never dependencies of orchestrator:

    pip install --no-deps pyexputils-andnp==8.1.2 && pip install numpy pandas filelock connectorx

Skipped, saying so, where they are missing; under CI=true a missing reference is a failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from result_store_support import EXPERIMENT, make_project, plan_of, run_cli

from orchestrator.result_store import PyExpUtilsStore
from orchestrator.slurm_formats import parse_ranges

IN_CI = os.environ.get("CI", "").lower() == "true"
INSTALL = "pip install --no-deps pyexputils-andnp==8.1.2 && pip install numpy pandas filelock connectorx"

try:
    import PyExpUtils.models.ExperimentDescription as description_module
    import PyExpUtils.results.sqlite as reference
    from PyExpUtils.collection.Collector import Collector
    from PyExpUtils.models.Config import Config
    from PyExpUtils.models.ExperimentDescription import ExperimentDescription

    MISSING = None
except ImportError as e:  # the package, or one of pandas, filelock, connectorx
    MISSING = f"the reference is not importable ({e}): {INSTALL}"


@pytest.fixture(autouse=True, scope="module")
def _reference() -> Iterator[None]:
    if MISSING is not None:
        if IN_CI:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    logging.getLogger("PyExpUtils").setLevel(logging.ERROR)
    # {name} needs config.json through a cached getConfig(); our save paths below hold no {name}
    with mock.patch.object(description_module, "getConfig", lambda: Config(save_path="unused")):
        yield


def salted_hash(salt: str) -> Any:
    return lambda values: hash(f"{salt}:" + ",".join(map(str, values)))


def save_with_pyexputils(exp: Any, indices: list[int], base: Path, salt: str, frames: int = 2) -> None:
    collector = Collector()
    for index in indices:
        collector.setIdx(index)
        for frame in range(frames):
            collector.collect("return", float(frame))
            collector.next_frame()
    collector.reset()
    with mock.patch.object(reference, "hash_values", salted_hash(salt)):
        reference.saveCollector(exp, collector, base=str(base))


def missing_by_pyexputils(exp: Any, runs: int, save_path: str, base: Path, scratch: Path) -> set[int]:
    """`detectMissingIndices` on a copy of the database (it inserts rows while it reads)."""
    database = base / save_path / "results.db"
    if database.exists():
        (scratch / save_path).mkdir(parents=True)
        shutil.copy(database, scratch / save_path / "results.db")
    with mock.patch.object(reference, "hash_values", salted_hash("detect")):
        return set(reference.detectMissingIndices(exp, runs, base=str(scratch)))


# -- random sweeps -----------------------------------------------------------------------------

KEYS = ["a", "B", "alpha", "lr", "x_y", "seed"]  # no two equal ignoring case: SQLite columns are
NAMED = ["a", "B", "alpha", "lr", "oid", "rowid", "True", "1", "1.0", "1e-05", "", "0.1", "x y"]
SCALARS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.1, 1e-05, 2.5e16, 1.0, -0.5, 0.30000000000000004, 10**20, 0.736129807990967]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.sampled_from(NAMED),
    st.text(alphabet="ab1.0eTrFls _-", max_size=4),
)


@st.composite
def axis_values(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(SCALARS)  # a fixed value
    if kind == 1:  # a list of lists: a choice between lists of one length
        width = draw(st.integers(1, 2))
        return draw(st.lists(st.lists(SCALARS, min_size=width, max_size=width), min_size=1, max_size=2))
    return draw(st.lists(SCALARS, min_size=1, max_size=3))


@st.composite
def experiments(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    meta: dict[str, Any] = {key: draw(axis_values()) for key in keys}
    if draw(st.booleans()):
        meta["opt"] = {
            key: draw(axis_values()) for key in draw(st.lists(st.sampled_from(["lr", "a"]), min_size=1, unique=True))
        }
    return json.loads(json.dumps({"agent": "DQN", "metaParameters": meta}))


SLOW = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW
@given(experiment=experiments(), runs=st.integers(1, 3), data=st.data())
def test_done_agrees_with_detect_missing_indices(
    tmp_path_factory: pytest.TempPathFactory, experiment: dict[str, Any], runs: int, data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("project")
    plan = plan_of(root, experiment, runs, "results/shared")
    saved = sorted(data.draw(st.sets(st.integers(0, plan.total - 1), max_size=plan.total)))
    cut = data.draw(st.integers(0, len(saved)))
    frames = data.draw(st.integers(1, 6))  # rows per index: many make us read with SQL's DISTINCT
    exp = ExperimentDescription(experiment, save_key="results/shared")
    for number, batch in enumerate([saved[:cut], saved[cut:]]):  # two writer processes
        save_with_pyexputils(exp, batch, root, f"writer{number}", frames)
    missing = missing_by_pyexputils(exp, runs, "results/shared", root, tmp_path_factory.mktemp("copy"))

    answer = PyExpUtilsStore(None, 5.0).done(plan)
    assert set(answer.unknown) == set(), answer.notes
    assert set(range(plan.total)) - set(answer.done) == missing
    some = sorted(data.draw(st.sets(st.integers(0, plan.total - 1))))
    assert set(PyExpUtilsStore(None, 5.0).done(plan, some).done) == set(some) - missing


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(experiment=experiments(), runs=st.integers(1, 2), data=st.data())
def test_status_and_submit_agree_with_detect_missing_indices(
    tmp_path_factory: pytest.TempPathFactory, experiment: dict[str, Any], runs: int, data: st.DataObject
) -> None:
    root = make_project(tmp_path_factory.mktemp("project"), experiment, "results/{name}/{agent}")
    total = plan_of(root, experiment, runs).total
    saved = sorted(data.draw(st.sets(st.integers(0, total - 1), min_size=1, max_size=total)))
    exp = ExperimentDescription(experiment, save_key="results/ex/DQN")  # PyExpUtils' {agent} needs a subclass
    save_with_pyexputils(exp, saved, root, "writer")
    missing = missing_by_pyexputils(exp, runs, "results/ex/DQN", root, tmp_path_factory.mktemp("copy"))

    code, out, err = run_cli(root, "status", EXPERIMENT, "--runs", str(runs), "--json")
    assert code == 0, err
    entry = json.loads(out)["experiments"][0]
    assert (entry["results"], entry["database"]) == ("pyexputils-db", "results/ex/DQN/results.db")
    assert set(parse_ranges(entry["indices"]["missing"])) == missing
    assert entry["done"] == total - len(missing)

    code, out, err = run_cli(
        root, "submit", EXPERIMENT, "--runs", str(runs), "--executor", "local", "--dry-run", "--json", "--no-check"
    )
    assert code == 0, err
    sent = {i for s in json.loads(out)["submissions"] for i in parse_ranges(s["indices"])}
    assert sent == missing


def test_the_shared_db_example_is_read_as_pyexputils_reads_it(tmp_path: Path) -> None:
    """The example's entry script writes what PyExpUtils would; detectMissingIndices agrees with us."""
    import subprocess
    import sys

    example = Path(__file__).resolve().parent.parent / "examples" / "shared-db"
    project = tmp_path / "shared-db"
    shutil.copytree(example, project)
    experiment = json.loads((project / "experiments/shared/bandit.json").read_text())
    plan = plan_of(project, experiment, 2, "results/{name}/{agent}", experiment="experiments/shared/bandit.json")
    for index in (0, 3, 4, 10):
        subprocess.run(
            [sys.executable, "src/main.py", "-e", "experiments/shared/bandit.json", "-i", str(index)],
            cwd=project,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
    exp = ExperimentDescription(experiment, save_key="results/shared/EpsilonGreedy")
    missing = missing_by_pyexputils(exp, 2, "results/shared/EpsilonGreedy", project, tmp_path / "copy")
    assert missing == set(range(12)) - {0, 3, 4, 10}
    assert set(PyExpUtilsStore(None, 5.0).done(plan).done) == {0, 3, 4, 10}

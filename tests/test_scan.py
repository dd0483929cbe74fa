"""The result scan: exactly the save paths that exist, with at most one filesystem call per index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import orchestrator

from orchestrator.completeness import ResultScanner, present_results
from orchestrator.config import load_config
from orchestrator.planner import ExperimentPlan, plan_experiment

TEMPLATES = [
    "results/{name}/{params}/{run}",
    "results/{name}/{run}/{params}",
    "results/{name}/{params}_{run}",
    "{params}/{run}",
    "results/{name}/{agent}/{params}/{run}",
    "results/{name}/x{params}/{run}",
]


def _plan(root: Path, template: str, values: int, runs: int) -> ExperimentPlan:
    os.chdir(root)  # experiment paths are given relative to the project root, as users type them
    (root / "config.json").write_text(json.dumps({"save_path": template}))
    (root / "experiments" / "e").mkdir(parents=True, exist_ok=True)
    experiment = {"agent": "A", "metaParameters": {"a": list(range(values)), "b": ["x", "y"]}}
    (root / "experiments" / "e" / "s.json").write_text(json.dumps(experiment))
    return plan_experiment("experiments/e/s.json", load_config("."), runs)


@pytest.fixture(autouse=True)
def _restore_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(os.getcwd())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    template=st.sampled_from(TEMPLATES),
    values=st.integers(1, 5),
    runs=st.integers(1, 4),
    present=st.sets(st.integers(0, 39)),
    marker=st.sampled_from([None, "DONE"]),
    with_marker=st.sets(st.integers(0, 39)),
)
def test_scan_finds_exactly_the_existing_paths(
    tmp_path_factory: pytest.TempPathFactory,
    template: str,
    values: int,
    runs: int,
    present: set[int],
    marker: str | None,
    with_marker: set[int],
) -> None:
    root = tmp_path_factory.mktemp("scan")
    plan = _plan(root, template, values, runs)
    for index in present & set(range(plan.total)):
        path = root / plan.save_path(index)
        path.mkdir(parents=True, exist_ok=True)
        if marker and index in with_marker:
            (path / marker).write_text("")
    truth = {
        i
        for i in range(plan.total)
        if os.path.exists(root / plan.save_path(i) / marker if marker else root / plan.save_path(i))
    }
    assert set(present_results(plan, str(root), marker)) == truth
    some = list(range(0, plan.total, 3))
    assert set(present_results(plan, str(root), marker, indices=some)) == truth & set(some)


def _scan(plan: ExperimentPlan, root: Path) -> ResultScanner:
    scanner = ResultScanner(str(root), plan.save_path_prefix())
    present_results(plan, str(root), None, scanner)
    return scanner


def test_one_run_costs_a_stat_per_index_not_a_listing(tmp_path: Path) -> None:
    """One run per permutation: each run directory answers for one path, so it is stat-ed, not listed."""
    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=50, runs=1)
    for i in range(plan.total):
        (tmp_path / plan.save_path(i)).mkdir(parents=True)
    scanner = _scan(plan, tmp_path)
    assert scanner.stats + scanner.listings <= plan.total + 2, (scanner.stats, scanner.listings)
    assert scanner.listings <= 2


def test_many_runs_cost_one_listing_per_permutation(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=10, runs=10)
    for i in range(plan.total):
        (tmp_path / plan.save_path(i)).mkdir(parents=True)
    scanner = _scan(plan, tmp_path)
    assert scanner.stats == 0
    assert scanner.listings <= plan.num_permutations + 1


def test_a_missing_subtree_costs_almost_nothing(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=20, runs=3)
    (tmp_path / "results" / "e").mkdir(parents=True)  # the experiment's directory exists, empty
    scanner = _scan(plan, tmp_path)
    assert scanner.listings + scanner.stats <= 3


def test_nothing_written_yet_costs_one_stat(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=20, runs=3)
    scanner = _scan(plan, tmp_path)
    assert scanner.listings == scanner.stats == 0
    assert not present_results(plan, str(tmp_path))


def test_never_lists_above_the_constant_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`/scratch` may hold every user's directory: the scan never lists above the paths' common prefix."""
    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=5, runs=2)
    for i in range(0, plan.total, 2):
        (tmp_path / plan.save_path(i)).mkdir(parents=True)
    listed: list[str] = []
    real = os.listdir

    def spy(path: str = ".") -> list[str]:
        listed.append(os.path.relpath(path, tmp_path))
        return real(path)

    monkeypatch.setattr(os, "listdir", spy)
    assert len(present_results(plan, str(tmp_path))) == plan.total // 2 + plan.total % 2
    assert all(p.startswith("results/e") for p in listed), listed


def test_a_scan_longer_than_a_second_says_how_far_it_is(tmp_path: Path) -> None:
    """The progress line: silent for the first second, then rewritten in place, closed at the end."""
    import io

    from orchestrator.display import ScanProgress

    plan = _plan(tmp_path, "results/{name}/{params}/{run}", values=5000, runs=1)  # 10,000 permutations
    (tmp_path / plan.save_path(0)).mkdir(parents=True)
    clock = iter([0.0, 0.5, 1.5, 2.5, 3.5]).__next__
    out = io.StringIO()
    present_results(plan, str(tmp_path), progress=ScanProgress(out, clock=clock))
    assert out.getvalue() == (
        "\rscanning experiments/e/s.json: 8,192/10,000 permutations"
        "\rscanning experiments/e/s.json: 10,000/10,000 permutations\n"
    )
    quiet = io.StringIO()
    present_results(plan, str(tmp_path), progress=ScanProgress(quiet, clock=iter([0.0, 0.2, 0.4, 0.6]).__next__))
    assert quiet.getvalue() == ""  # under a second: nothing


def test_the_progress_line_is_only_for_a_terminal(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    _plan(root, "results/{name}/{params}/{run}", values=5, runs=1)
    result = orchestrator("status", "experiments/e/s.json", cwd=root)
    assert result.returncode == 0 and "scanning" not in result.stderr

"""The project root is found by walking up to config.json; experiment paths are relative to where typed.

The old behaviour: config.json was looked up only in the current directory (`cd experiments &&
orchestrator plan sweeps/dqn.json` failed), and an experiment given by an absolute path outside
the project got the save path `results//tmp/...`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import UserError
from orchestrator.planner import plan_experiment
from orchestrator.project import find_project_root, resolve_experiment


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "experiments" / "sweeps").mkdir(parents=True)
    (root / "config.json").write_text('{"save_path": "results/{name}/{params}/{run}"}')
    (root / "experiments" / "sweeps" / "dqn.json").write_text('{"metaParameters": {"lr": [0.1, 0.01]}}')
    return root


# -- find_project_root -------------------------------------------------------------------------


def test_root_found_from_the_root_itself(project):
    assert find_project_root(project) == project


def test_root_found_from_below(project):
    assert find_project_root(project / "experiments" / "sweeps") == project


def test_nearest_config_wins(project):
    inner = project / "experiments" / "nested"
    inner.mkdir()
    (inner / "config.json").write_text("{}")
    assert find_project_root(inner) == inner
    assert find_project_root(project / "experiments") == project


def test_a_directory_named_config_json_is_not_a_project(project):
    below = project / "sub"
    (below / "config.json").mkdir(parents=True)
    assert find_project_root(below) == project


def test_relative_start_gives_an_absolute_root(project, monkeypatch):
    monkeypatch.chdir(project / "experiments")
    root = find_project_root(Path("sweeps"))
    assert root == project and root.is_absolute()


def test_no_project_is_one_clear_user_error(tmp_path):
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    if any((d / "config.json").is_file() for d in start.parents):
        pytest.skip("a config.json above the temporary directory")
    with pytest.raises(UserError) as info:
        find_project_root(start)
    message = str(info.value)
    assert info.value.exit_code == 2 and "\n" not in message
    assert str(start) in message and "config.json" in message


# -- resolve_experiment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "cwd"),
    [
        ("experiments/sweeps/dqn.json", "."),
        ("./experiments//sweeps/./dqn.json", "."),
        ("sweeps/dqn.json", "experiments"),  # the issue's `cd experiments && orchestrator plan sweeps/dqn.json`
        ("dqn.json", "experiments/sweeps"),
        ("../sweeps/dqn.json", "experiments/sweeps"),
        ("../proj/experiments/sweeps/dqn.json", "."),
        ("{root}/experiments/sweeps/dqn.json", "results"),  # absolute, inside the project
    ],
)
def test_paths_are_taken_relative_to_where_typed(project, typed, cwd):
    typed = typed.format(root=project)
    assert resolve_experiment(typed, project / cwd, project) == "experiments/sweeps/dqn.json"


def test_outside_the_project_is_refused_in_one_line(project, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    for typed, cwd in [
        (str(outside), project),
        ("../elsewhere.json", project),
        ("../../elsewhere.json", project / "x"),
    ]:
        with pytest.raises(UserError) as info:
            resolve_experiment(typed, cwd, project)
        message = str(info.value)
        assert info.value.exit_code == 2 and "\n" not in message
        assert message.startswith(f"{typed}: ") and "outside the project root" in message and str(project) in message


def test_a_sibling_with_the_root_as_prefix_is_outside(project):
    # /x/proj-old is not inside /x/proj, though the strings share a prefix
    with pytest.raises(UserError, match="outside the project root"):
        resolve_experiment(str(project) + "-old/e.json", project, project)


def test_the_root_itself_and_an_empty_path_are_refused(project):
    with pytest.raises(UserError, match="is the project root"):
        resolve_experiment(".", project, project)
    with pytest.raises(UserError, match="must not be empty"):
        resolve_experiment("  ", project, project)


def test_symlinked_experiment_directory_is_inside(project, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.json").write_text("{}")
    (project / "linked").symlink_to(shared)
    assert resolve_experiment("linked/a.json", project, project) == "linked/a.json"


def test_project_reached_through_a_symlink_is_inside(project, tmp_path):
    # the shell is in the real directory, the user typed the path through a link to the project
    link = tmp_path / "link-to-proj"
    link.symlink_to(project)
    typed = str(link / "experiments" / "sweeps" / "dqn.json")
    assert resolve_experiment(typed, project, project) == "experiments/sweeps/dqn.json"


def test_home_is_expanded(project, monkeypatch):
    monkeypatch.setenv("HOME", str(project))
    assert resolve_experiment("~/experiments/sweeps/dqn.json", Path("/"), project) == "experiments/sweeps/dqn.json"


@pytest.mark.parametrize("typed", ["dqn.json", "./dqn.json", "sweeps/../sweeps/dqn.json"])
def test_never_a_double_slash_in_the_save_path(project, typed):
    # planned from the root with the resolved path, as the CLI will, from wherever the user typed it
    cwd = project / "experiments" / ("sweeps" if "sweeps" not in typed else "")
    relative = resolve_experiment(typed, cwd, project)
    previous = os.getcwd()
    os.chdir(project)
    try:
        plan = plan_experiment(relative, load_config(project))
    finally:
        os.chdir(previous)
    assert plan.name == "sweeps"
    assert [plan.save_path(i) for i in range(plan.total)] == [
        "results/sweeps/lr-0.1/0",
        "results/sweeps/lr-0.01/0",
    ]
    assert "//" not in relative

"""The four compatibility details of issue 10, each settled and tested.

1. `{name}`: PyExpUtils removes every `experiments/` and `./` in the path; we keep our rule and
   `plan` and `submit` warn when the two differ (`pyexputils_name` computes PyExpUtils' name).
2. A top-level `metaParameters` that is a list: refused (PyExpUtils numbers it, then fails on the save path).
3. `load_experiment(path)` needs the save path template only when a save path is asked for.
4. `load_experiment(relative_path, root=R)` reads the file relative to R, the project root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from result_store_support import make_project, run_cli

import orchestrator
from orchestrator.errors import UserError
from orchestrator.save_paths import pyexputils_name

SWEEP = {"agent": "DQN", "metaParameters": {"alpha": [0.1, 0.2]}}

# -- 1. {name} ---------------------------------------------------------------------------------

PARTS = ["experiments", "old_experiments", "X", "y", ".", "..", "sub.", "a.", "", "experiments.d"]


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(PARTS), max_size=5), leading=st.sampled_from(["", "./", "/abs/", "CWD"]))
def test_pyexputils_name_is_what_pyexputils_computes(parts: list[str], leading: str) -> None:
    try:
        import PyExpUtils.models.Config as config
        import PyExpUtils.models.ExperimentDescription as description
    except ImportError as e:
        message = f"needs the reference (pip install --no-deps pyexputils-andnp==8.1.2 numpy): {e}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    cwd = "/home/me/proj"
    path = (cwd + "/" if leading == "CWD" else leading) + "/".join([*parts, "dqn.json"])
    fixed = config.Config(save_path="r", experiment_directory="experiments")
    # PyExpUtils removes '<cwd>/' from the path
    with mock.patch.object(os, "getcwd", lambda: cwd), mock.patch.object(description, "getConfig", lambda: fixed):
        try:
            expected = description.ExperimentDescription({}, path=path).getExperimentName()
        except IndexError:
            expected = None  # PyExpUtils crashes on a file directly in the experiment directory
    assert pyexputils_name(path, "experiments", cwd) == expected


@pytest.mark.parametrize(
    ("experiment", "ours", "theirs"),
    [
        ("experiments/old_experiments/X/y.json", "old_experiments/X", "old_X"),
        ("experiments/X/experiments/y.json", "X/experiments", "X"),
        ("experiments/X/sub./y.json", "X/sub.", "X"),
    ],
)
def test_plan_and_submit_warn_when_name_differs_from_pyexputils(
    tmp_path: Path, experiment: str, ours: str, theirs: str
) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}", experiment=experiment)
    warning = (
        f"orchestrator: warning: {experiment}: {{name}} is '{ours}' here but '{theirs}' in PyExpUtils (which "
        f"removes every 'experiments/' and './' in the path); results PyExpUtils saved under '{theirs}' are "
        "not seen as done\n"
    )
    code, out, err = run_cli(project, "plan", experiment)
    assert (code, err) == (0, warning)
    assert f"-> results/{ours}/alpha-0.1/0" in out
    code, out, err = run_cli(project, "submit", experiment, "--executor", "local", "--dry-run", "--no-check")
    assert (code, err) == (0, warning)


def test_no_warning_when_the_names_agree_or_name_is_not_used(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}", experiment="experiments/X/y.json")
    assert run_cli(project, "plan", "experiments/X/y.json")[2] == ""
    project = make_project(
        tmp_path / "q", SWEEP, "results/{params}/{run}", experiment="experiments/a/experiments/y.json"
    )
    assert run_cli(project, "plan", "experiments/a/experiments/y.json")[2] == ""


# -- 2. a top-level list ----------------------------------------------------------------------


def test_a_top_level_list_of_meta_parameters_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"metaParameters": [{"alpha": 0.1}, {"alpha": 0.2}]}, "results/{params}")
    code, _, err = run_cli(project, "plan", "experiments/ex/DQN.json")
    assert code == 2
    assert err == (
        "orchestrator: error: experiments/ex/DQN.json: metaParameters: the swept key must hold an object of "
        "parameters when it is the only swept key\n"
    )


# -- 3. the save path template, checked when a save path is needed ------------------------------


def test_load_experiment_reads_params_whatever_the_save_path_names(tmp_path: Path, monkeypatch) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{environment}/{params}")
    monkeypatch.chdir(project)
    exp = orchestrator.load_experiment("experiments/ex/DQN.json")
    assert (exp.params(1), exp.run(3), exp.num_permutations) == ({"alpha": 0.2}, 1, 2)
    with pytest.raises(UserError, match=r"unknown placeholder \{environment\}"):
        exp.save_path(0)
    code, _, err = run_cli(project, "plan", "experiments/ex/DQN.json")
    assert code == 2 and "config.json: save_path: unknown placeholder {environment}" in err
    code, _, err = run_cli(project, "submit", "experiments/ex/DQN.json", "--executor", "local", "--dry-run")
    assert code == 2 and "unknown placeholder {environment}" in err


# -- 4. a relative path with root ---------------------------------------------------------------


def test_load_experiment_reads_a_relative_path_from_root(tmp_path: Path, monkeypatch) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "experiments/ex").mkdir(parents=True)
    (elsewhere / "experiments/ex/DQN.json").write_text(json.dumps({"metaParameters": {"alpha": [9]}}))
    monkeypatch.chdir(elsewhere)
    exp = orchestrator.load_experiment("experiments/ex/DQN.json", root=project)
    assert exp.params(1) == {"alpha": 0.2}
    assert exp.save_path(1) == "results/ex/alpha-0.2/0"
    assert exp.path == "experiments/ex/DQN.json"
    absolute = orchestrator.load_experiment(str(elsewhere / "experiments/ex/DQN.json"), root=project)
    assert absolute.params(0) == {"alpha": 9}
    with pytest.raises(UserError, match=r"p/experiments/none\.json: experiment file not found"):
        orchestrator.load_experiment("experiments/none.json", root=project)

"""Project settings: `[tool.orchestrator]` in pyproject.toml, validated, and their precedence.

The command line wins, then the cluster profile (for the keys a profile has), then these settings,
then the defaults. `config.json` stays PyExpUtils' file: nothing of ours goes there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from result_store_support import EXPERIMENT, make_project, run_cli

from orchestrator.config import load_config
from orchestrator.errors import UserError
from orchestrator.settings import ProjectSettings, load_settings

SWEEP = {"agent": "DQN", "metaParameters": {"alpha": [0.1, 0.2, 0.3]}}


def settings_file(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "mine"\n\n[tool.orchestrator]\n' + body)
    return root


def test_no_file_or_no_section_sets_nothing(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == ProjectSettings()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ruff]\nline-length = 99\n')
    assert load_settings(tmp_path) == ProjectSettings()


def test_every_setting_is_read(tmp_path: Path) -> None:
    body = (
        'results = "pyexputils-db"\nruns = 5\nkeys = ["metaParameters", "envParameters"]\n'
        'marker = "DONE"\ncluster = "clusters/cedar.yaml"\nexecutor = "local"\n'
    )
    settings = load_settings(settings_file(tmp_path, body))
    assert settings == ProjectSettings(
        results="pyexputils-db",
        runs=5,
        keys=("metaParameters", "envParameters"),
        marker="DONE",
        cluster="clusters/cedar.yaml",
        executor="local",
        source=str(tmp_path / "pyproject.toml"),
    )
    assert load_settings(settings_file(tmp_path, 'keys = "metaParameters, envParameters"\n')).keys == (
        "metaParameters",
        "envParameters",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('result = "paths"\n', "tool.orchestrator.result: unknown setting (did you mean 'results'?); known: results,"),
        ("run = 3\n", "tool.orchestrator.run: unknown setting (did you mean 'runs'?)"),
        (
            'results = "pyexputils"\n',
            "tool.orchestrator.results: 'pyexputils' is not one of auto, paths, pyexputils-db, metadata-db "
            "(did you mean 'pyexputils-db'?)",
        ),
        ("results = 3\n", "tool.orchestrator.results: must be a string, one of auto, paths"),
        ("runs = 0\n", "tool.orchestrator.runs: must be a positive integer, not 0"),
        ("runs = true\n", "tool.orchestrator.runs: must be a positive integer, not True"),
        ('runs = "3"\n', "tool.orchestrator.runs: must be a positive integer, not '3'"),
        ("keys = []\n", "tool.orchestrator.keys: needs at least one key"),
        ("keys = [1]\n", "tool.orchestrator.keys: must be a list of strings"),
        ('marker = "../DONE"\n', "tool.orchestrator.marker: must be a file name inside the save path"),
        ('marker = ""\n', "tool.orchestrator.marker: must be a non-empty string"),
        ('executor = "slrum"\n', "tool.orchestrator.executor: 'slrum' is not one of auto, slurm, local (did you mean"),
        ("runs = 3\nruns = 4\n", "invalid TOML: "),
        ("runs = \n", "invalid TOML: "),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        load_settings(settings_file(tmp_path, body))
    assert str(error.value).startswith(f"{tmp_path / 'pyproject.toml'}: {message}"), str(error.value)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"invalid TOML: .*\(at line 6, column 8\)"):
        load_settings(settings_file(tmp_path, "runs = 2\nkeys = ]\n"))


def test_a_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    project = settings_file(make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}"), "rusn = 2\n")
    code, out, err = run_cli(project, "plan", EXPERIMENT)
    assert (code, out) == (2, "")
    assert err == "orchestrator: error: pyproject.toml: tool.orchestrator.rusn: unknown setting " + (
        "(did you mean 'runs'?); known: results, runs, keys, marker, cluster, executor\n"
    )


def test_runs_keys_and_results_the_command_line_wins(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {**SWEEP, "env": {"noise": [0, 1]}}, "results/{name}/{agent}")
    settings_file(project, 'runs = 3\nkeys = "metaParameters,env"\nresults = "pyexputils-db"\n')

    code, out, _ = run_cli(project, "plan", EXPERIMENT, "--jsonl")
    assert code == 0 and len(out.splitlines()) == 3 * 2 * 3
    code, out, _ = run_cli(project, "plan", EXPERIMENT, "--jsonl", "--runs", "2", "--keys", "metaParameters")
    assert code == 0 and len(out.splitlines()) == 3 * 2

    code, out, _ = run_cli(project, "status", EXPERIMENT, "--json")
    assert json.loads(out)["experiments"][0]["results"] == "pyexputils-db"
    code, out, _ = run_cli(project, "status", EXPERIMENT, "--json", "--results", "paths")
    assert json.loads(out)["experiments"][0]["results"] == "paths"


def test_marker_the_command_line_then_the_profile_then_the_settings(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}")
    for index, marker in enumerate(["A", "B", "C"]):
        path = project / f"results/ex/alpha-{SWEEP['metaParameters']['alpha'][index]}/0"
        path.mkdir(parents=True)
        (path / marker).write_text("")

    def done(*args: str) -> str:
        code, out, err = run_cli(project, "status", EXPERIMENT, "--json", *args)
        assert code == 0, err
        return json.loads(out)["experiments"][0]["indices"]["done"]

    assert done() == "0-2"
    settings_file(project, 'marker = "A"\n')
    assert done() == "0"
    (project / "profile.yaml").write_text("completion_marker: B\n")
    assert done("--cluster", "profile.yaml") == "1"
    assert done("--cluster", "profile.yaml", "--marker", "C") == "2"
    settings_file(project, 'marker = "A"\ncluster = "profile.yaml"\n')  # the settings name the profile
    assert done() == "1"


def test_executor_setting(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SWEEP, "results/{name}/{params}/{run}")
    settings_file(project, 'executor = "local"\n')
    code, out, err = run_cli(project, "submit", EXPERIMENT, "--dry-run", "--json", "--no-check")
    assert code == 0, err
    assert json.loads(out)["executor"] == "local"


def test_config_json_still_refuses_our_settings(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"save_path": "results", "results": "pyexputils-db"}))
    with pytest.raises(UserError, match=r"unknown key\(s\) results: PyExpUtils accepts only .* pyproject.toml"):
        load_config(tmp_path)

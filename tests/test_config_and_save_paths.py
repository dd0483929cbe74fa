"""config.json loading and the `{name}` / placeholder rules of save paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import UserError
from orchestrator.save_paths import SavePathTemplate, experiment_name, template_constants


def test_config_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"save_path": "results/{name}"}')
    config = load_config(tmp_path)
    assert (config.save_path, config.log_path, config.experiment_directory) == (
        "results/{name}",
        ".logs",
        "experiments",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config.json: not found"),
        ("{}", "config.json: save_path: missing required key"),
        ('{"save_path": 3}', "config.json: save_path: must be a string, not int"),
        ('{"save_path": "r", "log_path": ["x"]}', "config.json: log_path: must be a string, not list"),
        ('{"save_path": "r", "partition": "gpu"}', "unknown key(s) partition: PyExpUtils accepts only"),
        ('{"save_path": "r",}', "config.json: invalid JSON at line 1, column 19: Expecting property name"),
    ],
)
def test_config_errors(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises(UserError) as error:
        load_config(tmp_path)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("experiments/X/y.json", "X"),
        ("experiments/a/b/c.json", "a/b"),
        ("./experiments/X/y.json", "X"),
        ("configs/X/y.json", "configs/X"),
        ("experiments/dqn.json", "dqn"),  # PyExpUtils raises IndexError; we use the stem
        ("experiments/../experiments/X/y.json", "X"),
    ],
)
def test_experiment_name(path: str, expected: str) -> None:
    assert experiment_name(path, "experiments", "/proj") == expected


def test_experiment_name_for_parent_relative_and_absolute_paths(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    # PyExpUtils turns ../proj/experiments/X/y.json into '.X'; we resolve it first
    assert experiment_name("../proj/experiments/X/y.json", "experiments", root) == "X"
    assert experiment_name(str(root / "experiments/X/y.json"), "experiments", root) == "X"
    assert experiment_name(None, "experiments", root, {"name": "n"}) == "n"
    assert experiment_name(None, "experiments", root, {}) == "unnamed"


def test_placeholders_use_top_level_scalars_and_special_names_win() -> None:
    data = {"agent": "DQN", "environment": "Acrobot", "name": "ignored", "seeds": [1, 2], "flag": True}
    template = SavePathTemplate("r/{environment}/{agent}/{flag}/{name}/{params}/{run}", template_constants(data, "X"))
    assert template.render("a-1", 3) == "r/Acrobot/DQN/True/X/a-1/3"


def test_unknown_placeholder_names_it_and_lists_the_available_ones() -> None:
    with pytest.raises(UserError) as error:
        SavePathTemplate("r/{agnet}/{params}", template_constants({"agent": "DQN", "seeds": [1]}, "X"))
    assert str(error.value) == (
        "config.json: save_path: unknown placeholder {agnet} in 'r/{agnet}/{params}'; "
        "available: {agent}, {name}, {params}, {run}"
    )


def test_braces_in_values_are_substituted_as_pyexputils_does() -> None:
    # PyExpUtils replaces placeholders in turn over the growing string: a value holding
    # "{run}" gets substituted again. Mirror it rather than differ on such paths.
    template = SavePathTemplate("r/{params}/{run}", {"name": "X"})
    assert template.render("s-a{run}b", 2) == "r/s-a2b/2"


def test_save_path_json_escaping_in_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"save_path": "r/{name}", "experiment_directory": "exps"}))
    assert load_config(tmp_path).experiment_directory == "exps"

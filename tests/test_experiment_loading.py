"""Experiment files: JSON and YAML, and errors that name the file, line/column or key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.experiment import read_experiment_file
from orchestrator.sweep import Sweep


def test_json_and_yaml_load_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"agent": "DQN", "metaParameters": {"lr": [1e-5, 0.1], "layers": [{"u": 4}]}}')
    (tmp_path / "a.yaml").write_text("agent: DQN\nmetaParameters:\n  lr: [1e-5, 0.1]\n  layers:\n    - u: 4\n")
    from_json = read_experiment_file(tmp_path / "a.json")
    from_yaml = read_experiment_file(tmp_path / "a.yaml")
    assert from_json.data == from_yaml.data
    # YAML 1.1 would read 1e-5 as a string; we read it as the float JSON gives
    assert from_yaml.data["metaParameters"]["lr"][0] == 1e-05
    assert Sweep(from_yaml.data).params_string(0) == "layers.[0].u-4_lr-1e-05"


def test_json_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "metaParameters": {\n    "lr": [0.1 0.2]\n  }\n}\n')
    with pytest.raises(UserError) as error:
        read_experiment_file(path)
    assert str(error.value) == f"{path}: invalid JSON at line 3, column 16: Expecting ',' delimiter"


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("metaParameters:\n  lr: [0.1, 0.2\n  x: 1\n")
    with pytest.raises(UserError) as error:
        read_experiment_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}: invalid YAML at line 3, column")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2]", "the top level must be an object (a mapping of keys), not list"),
        ("", "invalid JSON at line 1, column 1: Expecting value"),
    ],
)
def test_top_level_must_be_an_object(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(UserError, match=re.escape(expected)):
        read_experiment_file(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.json: experiment file not found"):
        read_experiment_file(tmp_path / "nope.json")
    with pytest.raises(UserError, match="is a directory"):
        read_experiment_file(tmp_path)


@pytest.mark.parametrize(
    ("meta", "key_path", "words"),
    [
        ({"layers": [{"u": 1}, {"u": 2}, 3]}, "metaParameters.layers.[2]", "only objects"),
        ({"opt": {"lr": []}}, "metaParameters.opt.lr", "empty list"),
        ({"layers": [{"act": {"name": "relu"}}]}, "metaParameters.layers.[0].act", "flattened"),
        ({"layers": [{}, {"u": [1, 2]}]}, "metaParameters.layers.[0]", "shifts"),
        ({"opt": {"a.b": 1}}, "metaParameters.opt", "contains '.'"),
        ({"x": [[], [1]]}, "metaParameters.x.[0]", "empty list"),
        ({"x": [1, {"a": [{"b": 1}, 2]}]}, "metaParameters.x.[1].a.[1]", "only objects"),
    ],
)
def test_structural_errors_name_the_key_path(meta: dict, key_path: str, words: str) -> None:
    with pytest.raises(UserError) as error:
        Sweep({"metaParameters": meta}, source="e.json")
    assert str(error.value).startswith(f"e.json: {key_path}: ")
    assert words in str(error.value)


def test_missing_swept_key_and_non_object_sweep() -> None:
    with pytest.raises(UserError, match="swept key 'metaParameters' is missing"):
        Sweep({"agent": "x"}, source="e.json")
    with pytest.raises(UserError, match="metaParameters: the swept key must hold an object"):
        Sweep({"metaParameters": [1, 2]}, source="e.json")
    # with several swept keys a top-level list is a plain axis (PyExpUtils allows it)
    assert Sweep({"metaParameters": {}, "seed": [1, 2]}, ["metaParameters", "seed"]).num_permutations == 2


def test_yaml_non_string_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("metaParameters:\n  10: [1, 2]\n")
    with pytest.raises(UserError, match="key 10 is not a string"):
        Sweep(read_experiment_file(path).data, source=str(path))


def test_empty_nested_dict_is_a_fixed_value() -> None:
    sweep = Sweep({"metaParameters": {"opt": {}, "lr": [1, 2]}})
    assert sweep.num_permutations == 2
    assert sweep.params_string(1) == "lr-2"
    assert sweep.params(1) == {"lr": 2}  # PyExpUtils drops the empty dict from the permutation too

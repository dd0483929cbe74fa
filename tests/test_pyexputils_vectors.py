"""Every vector produced by pyexputils-andnp 8.1.2 (shared/spec/pyexputils-vectors.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.save_paths import SavePathTemplate, experiment_name, template_constants
from orchestrator.sweep import Sweep

VECTORS = [json.loads(line) for line in (Path(__file__).parent / "pyexputils-vectors.jsonl").read_text().splitlines()]


def _by_kind(kind: str) -> list:
    return [pytest.param(v, id=v["id"]) for v in VECTORS if v["kind"] == kind]


@pytest.mark.parametrize("vector", _by_kind("permutation"))
def test_permutation(vector: dict) -> None:
    sweep = Sweep(vector["experiment"], vector.get("keys", "metaParameters"))
    index = vector["index"]
    assert sweep.num_permutations == vector["num_permutations"]
    assert sweep.run(index) == vector["expected_run"]
    assert sweep.params(index) == vector["expected_params"]
    assert json.loads(sweep.params_json(index)) == vector["expected_params"]
    assert sweep.params_string(index) == vector["expected_params_string"]
    assert sweep.permutation(index) == vector["expected_permutation"]
    # key order too: PyExpUtils rebuilds the swept keys in sorted-axis order, the rest follow
    assert list(sweep.permutation(index)) == list(vector["expected_permutation"])


@pytest.mark.parametrize("vector", _by_kind("save_path"))
def test_save_path(vector: dict) -> None:
    sweep = Sweep(vector["experiment"])
    name = experiment_name(vector["path"], vector["experiment_directory"], ".", vector["experiment"])
    template = SavePathTemplate(vector["save_path_template"], template_constants(vector["experiment"], name))
    index = vector["index"]
    assert sweep.run(index) == vector["expected_run"]
    assert template.render(sweep.params_string(index), sweep.run(index)) == vector["expected_save_path"]


@pytest.mark.parametrize("vector", _by_kind("reject"))
def test_rejected_sweeps_name_the_file_and_key(vector: dict) -> None:
    with pytest.raises(UserError) as error:
        Sweep(vector["experiment"], vector["keys"], source="experiments/X/bad.json")
    message = str(error.value)
    assert message.startswith("experiments/X/bad.json: metaParameters")
    assert "\n" not in message

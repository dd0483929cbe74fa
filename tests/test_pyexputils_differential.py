"""Differential test: random sweeps through PyExpUtils 8.1.2 itself and through our planner.

Where PyExpUtils answers, we must give the same permutation count, params, full permutation and
save path; where it crashes, we must refuse the sweep with a UserError (never crash, never answer).
Runs where the reference is installed (CI installs it: `pip install --no-deps pyexputils-andnp==8.1.2
numpy`); it is never a dependency of orchestrator.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UserError
from orchestrator.save_paths import SavePathTemplate, experiment_name, template_constants
from orchestrator.sweep import Sweep

pytest.importorskip(
    "PyExpUtils",
    reason="the reference is not installed: pip install --no-deps pyexputils-andnp==8.1.2 numpy",
)
from PyExpUtils.models.ExperimentDescription import ExperimentDescription

KEYS = ["a", "b", "B", "a_b", "a-b", "10", "9", "lr", "x", "opt", "layers", "units", "type", "c", "A1"]
SCALARS = [0, 1, 1.0, 0.5, 1e-5, True, False, None, "adam", "x/y", "", -3, 2.5e16, "sgd", 0.1]
TEMPLATE = "results/{name}/{params}/{run}"  # {agent} needs a PyExpUtils subclass


def _value(r: random.Random, depth: int) -> Any:
    k = r.random()
    if depth > 3 or k < 0.35:
        return r.choice(SCALARS)
    if k < 0.6:
        size = r.randint(0 if r.random() < 0.03 else 1, 4)
        return [r.choice(SCALARS) if r.random() < 0.8 else _value(r, depth + 1) for _ in range(size)]
    if k < 0.8:
        return {r.choice(KEYS): _value(r, depth + 1) for _ in range(r.randint(0 if r.random() < 0.1 else 1, 3))}
    return [
        {r.choice(KEYS): _value(r, depth + 1) for _ in range(r.randint(0 if r.random() < 0.05 else 1, 2))}
        for _ in range(r.randint(1, 12 if r.random() < 0.1 else 3))
    ]


def _experiment(r: random.Random) -> tuple[dict[str, Any], str | list[str]]:
    data: dict[str, Any] = {
        "agent": "DQN",
        "metaParameters": {r.choice(KEYS): _value(r, 1) for _ in range(r.randint(0, 5))},
    }
    if r.random() < 0.2:
        data["envParameters"] = _value(r, 1)
        return data, ["metaParameters", "envParameters"]
    return data, "metaParameters"


def _reference(data: dict[str, Any], keys: str | list[str], indices: list[int]) -> list[tuple]:
    exp = ExperimentDescription(copy.deepcopy(data), path="experiments/X/y.json", keys=keys)
    out = []
    for i in indices:
        permutation = exp.getPermutation(i)
        names = keys if isinstance(keys, list) else [keys]
        params = permutation[names[0]] if len(names) == 1 else {k: permutation[k] for k in names}
        out.append((exp.numPermutations(), params, permutation, exp.interpolateSavePath(i, key=TEMPLATE)))
    return out


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"save_path": TEMPLATE}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("seed", range(8))
def test_random_sweeps_agree_with_pyexputils(in_project: Path, seed: int) -> None:
    r = random.Random(seed)
    compared = refused = 0
    for _ in range(250):
        data, keys = _experiment(r)
        try:
            ours: Sweep | None = Sweep(copy.deepcopy(data), keys, source="y.json")
        except UserError:
            ours = None
        try:
            n = ExperimentDescription(copy.deepcopy(data), keys=keys).numPermutations()
            indices = sorted({0, n - 1, r.randrange(3 * n), r.randrange(3 * n)})
            expected = _reference(data, keys, indices)
        except Exception:
            assert ours is None, f"PyExpUtils crashes on {data} (keys {keys}) but we accepted it"
            refused += 1
            continue
        if ours is None:
            refused += 1  # a sweep PyExpUtils silently corrupts (see the compat spec)
            continue
        name = experiment_name("experiments/X/y.json", "experiments", os.getcwd())
        template = SavePathTemplate(TEMPLATE, template_constants(data, name))
        for i, (count, params, permutation, save_path) in zip(indices, expected):
            assert ours.num_permutations == count
            assert ours.params(i) == params, (data, i)
            assert json.loads(ours.params_json(i)) == params
            assert ours.permutation(i) == permutation
            assert template.render(ours.params_string(i), ours.run(i)) == save_path, (data, i)
        compared += 1
    assert compared > 50 and refused > 10  # the generator exercises both sides

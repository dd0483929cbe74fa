"""Shared fixtures: a throwaway PyExpUtils-style project (config.json + experiments/)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project root with config.json, as the working directory for the test."""
    (tmp_path / "config.json").write_text(json.dumps({"save_path": "results/{name}/{params}/{run}"}))
    (tmp_path / "experiments").mkdir()
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def write_experiment(root: Path, relative: str, data: dict) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return relative

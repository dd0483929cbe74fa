"""Shared fixtures, and the Slurm cluster lock around every test marked `slurm`.

Helpers that tests call are in tests/support.py (the CLI runner, projects), tests/slurm_support.py
(the real cluster) and tests/reliability.py (the reliability suite's recorder and fault harness).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import reliability
from slurm_support import ClusterSession, cluster_lock, cluster_session, require_slurm


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """A test marked `slurm` holds the shared cluster's lock (tests/slurm_support.py) from set-up to
    teardown, once per test; a module-scoped fixture is set up and torn down inside some test's hold,
    which a function-scoped fixture could not guarantee."""
    if item.get_closest_marker("slurm") is None:
        return (yield)
    with cluster_lock():
        return (yield)


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


@pytest.fixture
def reliability_case(request: pytest.FixtureRequest) -> Callable[..., reliability.Case]:
    """`reliability_case(fault, expected=...)`: a case recorded for docs/RELIABILITY.md (tests/reliability.py)."""
    return reliability.case_factory(request)


@pytest.fixture
def cluster() -> Iterator[ClusterSession]:
    """The real cluster, put back afterwards: slurmctld running, no submit limit, the test's jobs cancelled."""
    require_slurm()
    with cluster_session() as session:
        yield session


@pytest.fixture
def held_project(tmp_path: Path, cluster: ClusterSession) -> Path:
    """A copy of the example project whose submits are held (`--cluster hold.yaml`), cancelled afterwards."""
    return reliability.new_project(tmp_path / "proj", cluster)

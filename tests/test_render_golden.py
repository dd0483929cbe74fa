"""The default template's output: golden files, purity, and shell linting (bash -n, shellcheck).

The output is compared with the files in tests/golden/. After an intended change to the template or
to rendering, rewrite them and review the diff:

    UPDATE_GOLDEN=1 pytest tests/test_render_golden.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from render_support import FULL_PROFILE, GOLDEN_CASES
from support import IN_CI

from orchestrator.render import load_template, render_script

GOLDEN = Path(__file__).parent / "golden"
REPO_TEMPLATE = Path(__file__).parent.parent / "templates" / "sbatch_array.sh.j2"


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name):
    rendered = render_script(GOLDEN_CASES[name])
    path = GOLDEN / f"{name}.sh"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    assert rendered == path.read_text(encoding="utf-8"), f"{path} differs: review, then UPDATE_GOLDEN=1"


def test_rendering_is_pure():
    script = GOLDEN_CASES["full"]
    assert render_script(script) == render_script(script) == render_script(script, load_template(None))


def test_default_template_is_the_repository_copy():
    assert load_template(None) == REPO_TEMPLATE.read_text(encoding="utf-8")


def test_no_parameter_values_and_the_required_parts():
    text = render_script(GOLDEN_CASES["full"])
    assert text.startswith("#!/bin/bash\n")
    assert "set -uo pipefail\n" in text
    assert "set -e" not in text
    assert "wait -n" in text
    assert 'python -m project.main --exp "$ORCH_EXPERIMENT" --index "$index"' in text
    assert "ORCH_EXPERIMENT=experiments/dqn/sweep.yaml\n" in text
    for line in FULL_PROFILE.setup:
        assert f"\n{line}\n" in text


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_bash_syntax(tmp_path, name):
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_shellcheck(tmp_path, name):
    if shutil.which("shellcheck") is None:
        if IN_CI:
            pytest.fail("shellcheck is not installed (apt-get install -y shellcheck); CI must run it")
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["shellcheck", "--norc", "-f", "gcc", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

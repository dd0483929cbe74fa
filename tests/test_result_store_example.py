"""The second example project, examples/shared-db, run as a user would (locally, no Slurm).

Every index appends to one results.db at a shared save path (`results/{name}/{agent}`), laid out as
PyExpUtils' saveCollector lays it out; its pyproject.toml says so (`results = "pyexputils-db"`,
two runs). Submit it, check every index is done, delete some rows, and the next submit sends
exactly those indices.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from result_store_support import header_of, orchestrator_env, plan_of, sql, values_of

from orchestrator.slurm_formats import parse_ranges

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shared-db"
EXPERIMENT = "experiments/shared/bandit.json"
DATABASE = "results/shared/EpsilonGreedy/results.db"


def orchestrator(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=orchestrator_env(),
    )


def submitted(project: Path) -> list[int]:
    ran = orchestrator(project, "submit", EXPERIMENT, "--executor", "local", "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert all(not s.get("failed_indices") for s in report["submissions"]), report
    return sorted(i for s in report["submissions"] for i in parse_ranges(s["indices"]))


def status(project: Path) -> dict:
    ran = orchestrator(project, "status", EXPERIMENT, "--json")
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)["experiments"][0]


def delete_runs(project: Path, indices: list[int]) -> None:
    """Remove the result rows of `indices` (found by their parameters and seed, as PyExpUtils finds them)."""
    data = json.loads((project / EXPERIMENT).read_text())
    plan = plan_of(project, data, 2, "results/{name}/{agent}", experiment=EXPERIMENT)
    header = header_of(plan)
    with sqlite3.connect(project / DATABASE) as con:
        for index in indices:
            where = " AND ".join(f'"{k}"={sql(v)}' for k, v in zip(header, values_of(plan, index, header)))
            configs = f"SELECT config_id FROM hyperparameters WHERE {where}"
            deleted = con.execute(
                f"DELETE FROM results WHERE seed = ? AND config_id IN ({configs})", (plan.run(index),)
            ).rowcount
            assert deleted > 0, index
    con.close()


def test_shared_database_example_resubmits_exactly_the_deleted_indices(tmp_path: Path) -> None:
    project = tmp_path / "shared-db"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("results", ".orchestrator", ".logs"))

    assert submitted(project) == list(range(12))
    entry = status(project)
    assert (entry["done"], entry["total"], entry["results"], entry["database"]) == (12, 12, "pyexputils-db", DATABASE)
    assert sorted(p.name for p in (project / DATABASE).parent.iterdir()) == ["results.db"]

    again = orchestrator(project, "submit", EXPERIMENT, "--executor", "local")
    assert again.returncode == 0 and "Nothing to submit" in again.stdout, again.stdout

    delete_runs(project, [1, 6, 11])
    entry = status(project)
    assert entry["indices"]["missing"] == "1,6,11"
    assert submitted(project) == [1, 6, 11]
    assert status(project)["done"] == 12

    # the layout is recognised by its tables too, without the project's setting
    ran = orchestrator(project, "status", EXPERIMENT, "--json", "--results", "auto")
    assert json.loads(ran.stdout)["experiments"][0]["results"] == "pyexputils-db"

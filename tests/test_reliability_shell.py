"""Shell safety (issue 6, item 6): hostile paths and parameter values run correctly and execute nothing.

The project root, the experiment's directory and file name, and the swept values hold spaces,
quotes, `$(...)`, backticks, semicolons, newlines and non-ASCII. Each of `$(touch PWNED...)` and
`` `touch PWNED3` `` would leave a file behind if any shell (the job script, sbatch's directive
parser, the local executor) evaluated it. The runs must complete with each index's result where
`plan` says, holding the right params, for the local executor and for Slurm; and no PWNED file may
appear anywhere. Where a newline cannot be supported (Slurm's `--output` is one #SBATCH line), the
tool must refuse with exit 2 and one clear line, and submit nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slurm_support import ClusterSession, assert_exactly_once, project_tags, queued_jobs
from support import one_line, orchestrator, plan_jsonl, status_json, wait_for

pytestmark = pytest.mark.reliability("Shell safety")

VALUES = ["$(touch PWNED2)", "`touch PWNED3`", "a;b", "x\ny", "é", 'it\'s "q"', "$HOME", "--rf *"]
WEIRD_FILE = "experiments/we ird/$(touch PWNED) `x` ; é\n\"q'.json"
NEWLINE_DIR = "experiments/new\nline $(touch PWNED4)/exp.json"
ROOT_NAME = "root $(touch PWNED5) 'q' é;`touch PWNED6`"

ENTRY = '''"""Writes its index's params where the plan says, as any PyExpUtils entry script would."""
import argparse
import json
from pathlib import Path

import orchestrator

parser = argparse.ArgumentParser()
parser.add_argument("-e")
parser.add_argument("-i", type=int)
args = parser.parse_args()
exp = orchestrator.load_experiment(args.e)
out = Path(exp.save_path(args.i))
out.mkdir(parents=True, exist_ok=True)
(out / "result.json").write_text(json.dumps({"experiment": args.e, "index": args.i, "params": exp.params(args.i)}))
'''


def make_project(base: Path) -> Path:
    root = base / ROOT_NAME
    (root / "src").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"save_path": "results/{name}/{params}/{run}"}))
    (root / "src" / "main.py").write_text(ENTRY)
    (root / "slurm.yaml").write_text('time: "0:05:00"\nmem_per_cpu: 256M\n')
    for relative in (WEIRD_FILE, NEWLINE_DIR, "experiments/plain/exp.json"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"agent": "A", "metaParameters": {"v": VALUES}}))
    return root


def pwned(base: Path) -> list[str]:
    """PWNED files anywhere under `base`, or at the top of the directories a stray shell may run in."""
    found = [str(p) for p in base.rglob("PWNED*")]
    for directory in {Path.home(), Path("/"), Path("/tmp"), Path.cwd(), Path("/var/spool/slurmd")}:
        if directory.is_dir():
            found += [str(p) for p in directory.glob("PWNED*")]
    return found


def check_results(root: Path, experiment: str) -> int:
    """Every index's result is at the save path `plan` gives, with its params; returns the count."""
    entries = plan_jsonl(root, experiment)
    assert len(entries) == len(VALUES)
    for entry in entries:
        result = json.loads((root / entry["save_path"] / "result.json").read_text())
        assert result == {"experiment": experiment, "index": entry["index"], "params": entry["params"]}
    assert sorted(e["params"]["v"] for e in entries) == sorted(VALUES)
    return len(entries)


def test_local_executor_runs_hostile_paths_and_values_and_executes_nothing(tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "local executor: project root, experiment directory and file name with spaces, quotes, $(...), backticks, "
        "';', a newline and é; values $(touch PWNED2), `touch PWNED3`, a;b, x<newline>y, é, quotes, $HOME",
        expected="all indices run; each result where plan says with its params; no PWNED file anywhere",
    )
    root = make_project(tmp_path)
    result = orchestrator("submit", WEIRD_FILE, "--executor", "local", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    count = check_results(root, WEIRD_FILE)
    assert status_json(root, WEIRD_FILE)["done"] == count
    assert pwned(tmp_path) == []
    case.observed(f"exit 0; {count}/{count} results at their planned paths with the right params; no PWNED file")


def test_local_executor_newline_in_the_experiment_directory(tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "local executor: a newline (and $(...)) in the experiment's directory name",
        expected="runs correctly, or refuses with exit 2 and one clear line; never executes anything",
    )
    root = make_project(tmp_path)
    result = orchestrator("submit", NEWLINE_DIR, "--executor", "local", cwd=root)
    assert "Traceback" not in result.stderr
    assert pwned(tmp_path) == []
    if result.returncode == 0:
        count = check_results(root, NEWLINE_DIR)
        case.observed(f"exit 0; {count}/{count} results correct; no PWNED file")
        return
    line = one_line(result.stderr)
    assert result.returncode == 2, result.stderr
    assert "one line" in line and "new\\nline" in line, line
    assert not list(root.glob(".orchestrator/ledger/*/*.json"))
    case.observed(f"refused, exit 2: {line}; nothing recorded; no PWNED file")


def test_a_refused_experiment_does_not_follow_a_submitted_one_silently(tmp_path: Path, reliability_case) -> None:
    case = reliability_case(
        "`submit good.json <dir with newline>/exp.json`: the second experiment cannot be submitted",
        expected="refused before anything runs (exit 2, nothing submitted), or the message says what went out",
    )
    root = make_project(tmp_path)
    result = orchestrator("submit", "experiments/plain/exp.json", NEWLINE_DIR, "--executor", "local", cwd=root)
    ran = sorted(p.parent.name for p in root.glob("results/plain/*/*/result.json"))
    case.observed(
        f"exit {result.returncode}: {result.stderr.strip()}; stdout: {result.stdout.strip() or '(empty)'}; "
        f"indices of the first experiment that ran meanwhile: {len(ran)}"
    )
    assert result.returncode == 2
    assert ran == [] or "plain/exp.json" in result.stdout + result.stderr


# -- Slurm -----------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_slurm_runs_hostile_paths_and_values_and_executes_nothing(
    tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    case = reliability_case(
        "Slurm: the same hostile project root, experiment path and values, run for real by sbatch",
        expected="all indices run; each result where plan says with its params; no PWNED file anywhere",
    )
    root = make_project(tmp_path)
    cluster.projects.append(root)
    result = orchestrator("submit", WEIRD_FILE, "--cluster", "slurm.yaml", "--json", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    (submission,) = json.loads(result.stdout)["submissions"]
    assert submission["job_id"]
    wait_for(lambda: status_json(root, WEIRD_FILE)["done"] == len(VALUES), 240, "the hostile sweep to finish")
    count = check_results(root, WEIRD_FILE)
    assert pwned(tmp_path) == []
    assert_exactly_once(root, count)
    logs = list(root.glob(".logs/we ird/*/slurm-*.out"))
    assert len(logs) == count, logs  # Slurm's own output landed in the quoted --output directory
    case.observed(
        f"exit 0, job {submission['job_id']}; {count}/{count} results at their planned paths with the right "
        f"params; Slurm output files in the log directory; no PWNED file"
    )


@pytest.mark.slurm
def test_slurm_refuses_a_newline_in_the_experiment_directory(
    tmp_path: Path, cluster: ClusterSession, reliability_case
) -> None:
    case = reliability_case(
        "Slurm: a newline in the experiment's directory name (it would be in #SBATCH --output)",
        expected="exit 2 with one clear line naming the problem; nothing submitted; nothing executed",
    )
    root = make_project(tmp_path)
    cluster.projects.append(root)
    result = orchestrator("submit", NEWLINE_DIR, "--cluster", "slurm.yaml", cwd=root)
    line = one_line(result.stderr)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "one line" in line and "new\\nline" in line, line
    assert not list(root.glob(".orchestrator/ledger/*/*.json"))
    tags = project_tags(root)
    assert tags == {} or not [job for job, name in queued_jobs() if name in tags]
    assert pwned(tmp_path) == []
    case.observed(f"exit 2: {line}; no record, no job; no PWNED file")

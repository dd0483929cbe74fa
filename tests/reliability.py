"""Support for the reliability suite (tests/test_reliability_*.py, issue 6; all marked `reliability`).

1. The recorder. Each test names the fault or bad input it tries and what it expects, then says
   what it observed; the test's result (passed, failed, xfail = a known bug, skipped) is added by a
   pytest hook and the case is appended as one JSON line to `$RELIABILITY_LOG` (default
   `<rootdir>/.reliability/cases.jsonl`). `python scripts/reliability-report.py` turns that file
   into docs/RELIABILITY.md. The category comes from the module's mark; the fixture is in conftest:

       pytestmark = pytest.mark.reliability("Slurm faults")

       def test_sbatch_hangs(reliability_case):
           case = reliability_case("sbatch hangs", expected="exit 1, record unconfirmed")
           ...
           case.observed("exit 1 after the 2 s timeout; record unconfirmed; reconciled by the next submit")

2. The fault harness (tests/test_reliability_{kill,sbatch,squeue_sacct,controller,concurrency,
   damaged_state}.py): a copy of the example project submitted held (`hold.yaml`: nothing runs), an
   environment with fake Slurm commands first on PATH or real ones hidden, the CLI bounded by a
   timeout, and the recovery submit followed by the independent exactly-once count
   (tests/slurm_support.py). Each test's project is the `held_project` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from slurm_support import ClusterSession, assert_exactly_once
from support import cli_argv, cli_env, make_example_project, orchestrator

from orchestrator.slurm_formats import parse_ranges

# -- 1. the recorder -----------------------------------------------------------------------------

LOG_VARIABLE = "RELIABILITY_LOG"
DEFAULT_LOG = Path(".reliability") / "cases.jsonl"
_PLUGIN_NAME = "orchestrator-reliability-recorder"
_TMP = re.compile(r"/tmp/pytest-of-[^/ ]+/pytest-\d+/[^/ ]+")  # pytest's tmp_path, shortened in the table


@dataclass
class Case:
    category: str
    fault: str
    expected: str
    nodeid: str
    observed_text: str = ""

    def observed(self, text: str) -> None:
        """What actually happened (shown in the table beside the expected outcome)."""
        self.observed_text = _TMP.sub("<tmp>", " ".join(text.split()))


@dataclass
class _Recorder:
    """A pytest plugin: collects each test's cases and appends them, with the result, at teardown."""

    path: Path
    pending: dict[str, list[Case]] = field(default_factory=dict)
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # nodeid -> (result, detail)

    def add(self, case: Case) -> None:
        self.pending.setdefault(case.nodeid, []).append(case)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.pending:
            return
        result, detail = self.results.get(report.nodeid, ("passed", ""))
        if report.when == "call" or (report.when == "setup" and not report.passed):
            result, detail = _result_of(report)
        elif report.when == "teardown" and report.failed and result == "passed":
            result, detail = "error", _short(report)
        self.results[report.nodeid] = (result, detail)
        if report.when != "teardown":
            return
        self.results.pop(report.nodeid, None)
        cases = self.pending.pop(report.nodeid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for case in cases:
                entry = {
                    "category": case.category,
                    "fault": case.fault,
                    "expected": case.expected,
                    "observed": case.observed_text or (f"(not reached: {detail})" if detail else "(not recorded)"),
                    "result": result,
                    "bug": detail if result == "xfail" else "",
                    "nodeid": case.nodeid,
                    "time": datetime.now().astimezone().isoformat(timespec="seconds"),
                }
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _result_of(report: pytest.TestReport) -> tuple[str, str]:
    xfail_reason = getattr(report, "wasxfail", None)
    if xfail_reason is not None:
        if report.skipped:
            return "xfail", xfail_reason.removeprefix("reason: ")
        return "xpass", xfail_reason
    if report.passed:
        return "passed", ""
    if report.skipped:
        return "skipped", _short(report)
    return "failed" if report.when == "call" else "error", _short(report)


def _short(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _log_path(config: pytest.Config) -> Path:
    configured = os.environ.get(LOG_VARIABLE)
    return Path(configured) if configured else Path(config.rootpath) / DEFAULT_LOG


def case_factory(request: pytest.FixtureRequest) -> Callable[..., Case]:
    """The `reliability_case` fixture's value (tests/conftest.py): `make(fault, expected=...)` -> a Case.

    The category is the test's `reliability` mark (`pytestmark = pytest.mark.reliability("Slurm faults")`),
    unless `make` is given one.
    """
    manager = request.config.pluginmanager
    recorder = manager.get_plugin(_PLUGIN_NAME)
    if recorder is None:
        recorder = _Recorder(_log_path(request.config))
        manager.register(recorder, _PLUGIN_NAME)
    mark = request.node.get_closest_marker("reliability")
    marked = mark.args[0] if mark is not None and mark.args else None

    def make(fault: str, expected: str, category: str | None = None) -> Case:
        chosen = category or marked
        if chosen is None:
            raise AssertionError("a reliability case needs a category: mark the test @pytest.mark.reliability(...)")
        case = Case(chosen, fault, " ".join(expected.split()), request.node.nodeid)
        recorder.add(case)
        return case

    return make


# -- 2. the fault harness --------------------------------------------------------------------------

EXPERIMENT = "experiments/example/linreg.json"
RUNS = ("--runs", "3")
TOTAL = 30  # with --runs 3: arrays of 11, 11 and 8 tasks under MaxArraySize=11
HOLD = ("--cluster", "hold.yaml")
FAKES = Path(__file__).resolve().parent / "data" / "fakes"
KILLED = -signal.SIGKILL
# a fault must end the command by itself; this only stops a hung test
BOUND = 120


def new_project(root: Path, cluster: ClusterSession) -> Path:
    """The example project with a `hold.yaml` profile; its jobs are cancelled after the test."""
    make_example_project(root)
    (root / "hold.yaml").write_text("sbatch: {hold: true}\n")
    cluster.projects.append(root)
    return root


def environment(
    tmp_path: Path,
    fakes: tuple[str, ...] = (),
    hide: tuple[str, ...] = (),
    **variables: str,
) -> dict[str, str]:
    """The user's environment, with fake commands (tests/data/fakes) first on PATH and/or some commands hidden."""
    env = cli_env()
    parts = [str(Path(sys.executable).parent)]
    if fakes:
        fake_dir = tmp_path / "fake-bin"
        fake_dir.mkdir(exist_ok=True)
        for name in fakes:
            link = fake_dir / name
            if not link.exists():
                link.symlink_to(FAKES / name)
        parts.append(str(fake_dir))
        env["FAKE_CALL_LOG"] = str(tmp_path / "calls.log")
        env["FAKE_REAL_SBATCH"] = shutil.which("sbatch") or "/usr/bin/sbatch"
        env["FAKE_REAL_SQUEUE"] = shutil.which("squeue") or "/usr/bin/squeue"
    if hide:
        parts.append(str(mirror_without(tmp_path / ("mirror-" + "-".join(hide)), hide)))
    else:
        parts.append(env["PATH"])
    env["PATH"] = os.pathsep.join(parts)
    env.update(variables)
    return env


def mirror_without(directory: Path, hide: tuple[str, ...]) -> Path:
    """A directory of links to every command on the system PATH except `hide`."""
    if directory.is_dir():
        return directory
    directory.mkdir()
    for source in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(source):
            continue
        for name in os.listdir(source):
            link = directory / name
            if name in hide or os.path.lexists(link):
                continue
            link.symlink_to(os.path.join(source, name))
    return directory


def cli(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return orchestrator(*args, cwd=project, env=env, timeout=BOUND)


def submit(
    project: Path, *extra: str, runs: str = "3", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`submit EXPERIMENT --runs RUNS --cluster hold.yaml EXTRA`."""
    return cli(project, "submit", EXPERIMENT, "--runs", runs, *HOLD, *extra, env=env)


def submit_first_run(project: Path) -> None:
    """Jobs of ours in the ledger: run 0 (10 indices) submitted, held."""
    first = submit(project, runs="1")
    assert first.returncode == 0, first.stderr


def start_submit(project: Path, env: dict[str, str] | None = None, runs: str = "3") -> subprocess.Popen[str]:
    """The same submit, started in its own process group (to be killed)."""
    return subprocess.Popen(
        cli_argv("submit", EXPERIMENT, "--runs", runs, *HOLD),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(),
        start_new_session=True,
    )


def status(project: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    result = cli(project, "status", EXPERIMENT, *extra, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["experiments"][0]


def recover(project: Path, total: int = TOTAL, runs: str = "3") -> str:
    """A recovery submit, then the exactly-once check; a summary for the table."""
    result = submit(project, runs=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    counted = assert_exactly_once(project, total)
    state = status(project, "--runs", runs)
    assert state["done"] + state["running"] + state["pending"] == total, state
    again = submit(project, runs=runs)
    assert again.returncode == 0 and "Nothing to submit" in again.stdout, again.stdout + again.stderr
    return f"recovery submit exit 0; {counted}; a second submit has nothing to submit"


def records(project: Path) -> list[dict]:
    """The project's ledger records (an unreadable one as a placeholder)."""
    out = []
    for path in sorted((project / ".orchestrator" / "ledger").glob("*/*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            out.append({"status": "(unreadable)", "path": str(path)})
    return out


def ledger_tally(project: Path) -> str:
    counted = Counter(r.get("status") for r in records(project))
    return ", ".join(f"{n} {s}" for s, n in sorted(counted.items())) or "no records"


def calls(env: dict[str, str], command: str) -> int:
    """How often a fake command was called (its lines in $FAKE_CALL_LOG)."""
    try:
        lines = Path(env["FAKE_CALL_LOG"]).read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.startswith(command + " "))


def reported_indices(stdout: str) -> list[int]:
    """Indices of the `job N (...): K task(s), indices A-B` lines of a human submit report."""
    out = []
    for line in stdout.splitlines():
        if ": job " in line and ", indices " in line:
            out.extend(parse_ranges(line.split(", indices ")[1].split()[0]))
    return out


def inflight_sbatch(env: dict[str, str]) -> int | None:
    """The pid the `wait-release` fake sbatch logged, once it is waiting."""
    try:
        lines = Path(env["FAKE_CALL_LOG"]).read_text().splitlines()
    except FileNotFoundError:
        return None
    pids = [int(line.split()[1]) for line in lines if line.startswith("sbatch-pid ")]
    return pids[0] if pids else None

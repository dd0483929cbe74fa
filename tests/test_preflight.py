"""Preflight: what would make every task fail is found before anything is sent.

The old behaviour (issue 12): `submit` sent every index when `src/main.py` did not exist or the
command was not on PATH, and each failed on its own, after the queue; an experiment outside the
project got a `results//tmp/...` save path and logs outside the project.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.preflight import Problem, SetupEffect, command_words, preflight, script_argument, setup_effect
from orchestrator.profile import ClusterProfile, load_profile

PYTHON_DIR = os.path.dirname(sys.executable)  # a PATH on which `python` exists


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project, and the current directory at its root, where the CLI plans (paths relative to it)."""
    root = tmp_path / "proj"
    (root / "experiments" / "X").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "config.json").write_text(json.dumps({"save_path": "results/{name}/{agent}/{params}/{run}"}))
    write_experiment(root, {"agent": "DQN", "metaParameters": {"lr": [0.1, 0.01]}})
    monkeypatch.chdir(root)
    return root


def write_experiment(root: Path, data: dict, path: str = "experiments/X/dqn.json") -> str:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(json.dumps(data))
    return path


def plans(root: Path, *paths: str, runs: int = 2) -> list[ExperimentPlan]:
    config = load_config(root)
    return [plan_experiment(p, config, runs) for p in paths or ["experiments/X/dqn.json"]]


def check(root: Path, profile: ClusterProfile | None = None, *paths: str, **options) -> list[Problem]:
    options.setdefault("search_path", PYTHON_DIR)
    problems = preflight(plans(root, *paths), profile or ClusterProfile(), root, **options)
    for problem in problems:
        assert "\n" not in str(problem), "each problem is one line"
        assert str(problem).startswith(problem.where + ": ")
    return problems


def kinds(problems: list[Problem]) -> list[str]:
    return [p.check for p in problems]


# -- a project that works ----------------------------------------------------------------------


def test_a_working_project_has_no_problems(project):
    assert check(project) == []


def test_the_repository_example_with_the_cedar_profile(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parent.parent
    root = tmp_path / "proj"
    for name in ("config.json", "src/main.py", "experiments/example/linreg.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((repo / name).read_bytes())
    monkeypatch.chdir(root)
    profile = load_profile(repo / "clusters" / "cedar.yaml")
    # cedar's setup: `module load` (PATH not followed from there: `python` is not judged), then
    # `source .venv/bin/activate`, which must exist (a module load creates no venv)
    problems = check(root, profile, "experiments/example/linreg.json", search_path="/nonexistent")
    assert [(p.check, p.where) for p in problems] == [("setup", f"{repo / 'clusters' / 'cedar.yaml'}: setup[1]")]
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "activate").write_text("")
    assert check(root, profile, "experiments/example/linreg.json", search_path="/nonexistent") == []


# -- the command -------------------------------------------------------------------------------


def test_missing_script_is_found(project):
    # the case: the default command is `python src/main.py ...` and there is no src/main.py
    (project / "src" / "main.py").unlink()
    problems = check(project)
    assert kinds(problems) == ["command"]
    assert problems[0].where == "the default profile (no --cluster): command"
    assert "script src/main.py not found under the project root" in problems[0].message
    assert str(project) in problems[0].message


def test_program_not_on_path_is_found(project):
    # the other case: a command whose program is not installed
    problems = check(project, ClusterProfile(command="no-such-trainer-xyz -e {experiment} -i {index}", source="p.yaml"))
    assert [str(p) for p in problems] == ["p.yaml: command: program 'no-such-trainer-xyz' is not on PATH"]


def test_python_not_on_the_tasks_path_is_found(project):
    assert kinds(check(project, search_path="/nonexistent")) == ["command"]
    assert check(project, search_path=PYTHON_DIR) == []


def test_program_relative_to_the_project_root(project):
    profile = ClusterProfile(command="./run.sh {experiment} {index}")
    assert "program ./run.sh not found under the project root" in check(project, profile)[0].message
    (project / "run.sh").write_text("#!/bin/sh\n")
    assert "not executable (chmod +x ./run.sh)" in check(project, profile)[0].message
    (project / "run.sh").chmod(0o755)
    assert check(project, profile) == []
    (project / "run.sh").unlink()
    (project / "run.sh").mkdir()
    assert "is a directory" in check(project, profile)[0].message


def test_absolute_script_is_checked_too(project, tmp_path):
    missing = tmp_path / "elsewhere" / "train.py"
    problems = check(project, ClusterProfile(command=f"python {missing} -i {{index}}"))
    assert [p.message for p in problems] == [f"script {missing} not found"]


def test_venv_activated_in_setup_comes_first_on_path(project):
    bin_dir = project / "env" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text("")
    (bin_dir / "trainer").write_text("#!/bin/sh\n")
    (bin_dir / "trainer").chmod(0o755)
    command = "trainer -e {experiment} -i {index}"
    assert kinds(check(project, ClusterProfile(command=command), search_path="/nonexistent")) == ["command"]
    activated = ClusterProfile(command=command, setup=("source env/bin/activate",))
    assert check(project, activated, search_path="/nonexistent") == []
    dotted = ClusterProfile(command=command, setup=(". ./env/bin/activate  # the venv",))
    assert check(project, dotted, search_path="/nonexistent") == []


def test_missing_venv_activate_is_found(project):
    profile = ClusterProfile(setup=("module load python/3.11", "source .venv/bin/activate"), source="c.yaml")
    problems = check(project, profile)
    assert [str(p) for p in problems] == [f"c.yaml: setup[1]: .venv/bin/activate not found under {project}"]


@pytest.mark.parametrize(
    "setup",
    [
        ("python -m venv .venv", "source .venv/bin/activate"),  # made by an earlier line
        ("source $SLURM_TMPDIR/env/bin/activate",),  # a path known only on the node
        ("cd elsewhere", "source .venv/bin/activate"),
    ],
)
def test_activate_that_may_exist_on_the_node_is_not_reported(project, setup):
    assert check(project, ClusterProfile(setup=setup)) == []


@pytest.mark.parametrize(
    "setup",
    [
        ("module load python/3.11",),
        ("conda activate ml",),
        ("export PATH=$HOME/bin:$PATH",),
        ("PATH=/opt/x/bin:$PATH",),
        ("source ~/.bashrc",),
        ('eval "$(pyenv init -)"',),
        ("if true; then export PATH=/x; fi",),
    ],
)
def test_program_is_not_judged_when_setup_changes_path_unknowably(project, setup):
    profile = ClusterProfile(setup=setup, command="trainer -e {experiment} -i {index}")
    assert check(project, profile, search_path="/nonexistent") == []


@pytest.mark.parametrize("setup", [("export OMP_NUM_THREADS=4",), ("ulimit -c 0", "set -x"), ("# a comment", "")])
def test_harmless_setup_keeps_path_known(project, setup):
    profile = ClusterProfile(setup=setup, command="trainer -e {experiment} -i {index}")
    assert kinds(check(project, profile, search_path="/nonexistent")) == ["command"]


def test_slurm_export_settings_make_the_path_unknown(project):
    profile = ClusterProfile(command="trainer {index}", sbatch={"export": "NONE"})
    assert check(project, profile, search_path="/nonexistent") == []
    profile = ClusterProfile(command="trainer {index}", sbatch={"export": "ALL"})
    assert kinds(check(project, profile, search_path="/nonexistent")) == ["command"]


def test_compound_commands_are_not_judged(project):
    for command in (
        "cd src && python main.py {index}",
        "python src/nope.py {index} | tee x",
        "`which python` x.py {index}",
    ):
        assert check(project, ClusterProfile(command=command)) == []


def test_command_words():
    assert command_words("python src/main.py -e {experiment} -i {index}", "exp s/a b.json", 7) == [
        "python",
        "src/main.py",
        "-e",
        "exp s/a b.json",
        "-i",
        "7",
    ]
    assert command_words("OMP=1 env -i A=2 nice python x.py", "e") == ["nice", "python", "x.py"]
    assert command_words("exec python x.py", "e") == ["python", "x.py"]
    assert command_words("a && b {index}", "e") is None
    assert command_words("python x.py > out.log", "e") is None
    assert command_words("python 'x (1).py'", "e") == ["python", "x (1).py"]


@pytest.mark.parametrize(
    ("words", "script"),
    [
        ("python src/main.py -i 1", "src/main.py"),
        ("python3.11 -u -O src/main.py", "src/main.py"),
        ("python -W ignore src/main.py", "src/main.py"),
        ("/opt/venv/bin/python -X importtime train.py", "train.py"),
        ("python -m project.main", None),
        ("python -mproject.main", None),
        ("python -c print(1)", None),
        ("bash -e run.sh", "run.sh"),
        ("bash -c 'echo hi'", None),
        ("Rscript --vanilla fit.R", "fit.R"),
        ("node -e 1", None),
        ("trainer config.yaml", None),  # not an interpreter: its arguments are its own
        ("python", None),
    ],
)
def test_script_argument(words, script):
    assert script_argument(words.split()) == script


def test_setup_effect_is_pure_for_paths_with_variables(tmp_path):
    effect = setup_effect(["source $VENV/bin/activate", "module load x"], tmp_path, "p: setup")
    assert (effect.venv_bins, effect.path_known, effect.cwd_known, effect.problems) == ((), False, True, ())


# -- save paths --------------------------------------------------------------------------------


def test_experiment_outside_the_project_is_found(project, tmp_path):
    # the issue's `results//tmp/...`: an absolute experiment path outside the project
    outside = tmp_path / "outside" / "e.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps({"agent": "DQN", "metaParameters": {"lr": [0.1]}}))
    problems = check(project, None, str(outside))
    assert kinds(problems) == ["save_path", "log_dir"]
    assert f"'results//{str(outside.parent).lstrip('/')}/DQN/lr-0.1/0'" in problems[0].message
    assert "'//'" in problems[0].message
    assert problems[0].where == f"{project / 'config.json'}: save_path"
    assert f"would go to {outside.parent}, outside {project / '.logs'}" in problems[1].message


@pytest.mark.parametrize(
    ("agent", "expected"), [("", "empty directory name"), ("../../../up", "leaves the project root")]
)
def test_bad_save_path_values_are_found_for_first_and_last_index(project, agent, expected):
    write_experiment(project, {"agent": agent, "metaParameters": {"lr": [0.1, 0.01]}})
    problems = check(project)
    assert kinds(problems) == ["save_path"]  # one line per experiment: the first index with a problem
    assert "experiments/X/dqn.json index 0:" in problems[0].message and expected in problems[0].message


def test_last_index_is_checked_too(project):
    # index 0 is fine; the last (permutation 1, run 1) has a value that makes an empty directory name
    write_experiment(project, {"agent": "A", "metaParameters": {"env": ["ok", "ALE//Pong"]}})
    problems = check(project)
    assert kinds(problems) == ["save_path"]
    assert "index 3: 'results/X/A/env-ALE//Pong/1' has an empty directory name" in problems[0].message


def test_sweep_without_swept_values_has_an_empty_params_directory(project):
    write_experiment(project, {"agent": "DQN", "metaParameters": {}})
    problems = check(project)
    assert kinds(problems) == ["save_path"]
    assert "'results/X/DQN//0' has an empty directory name" in problems[0].message


def test_absolute_save_path_is_fine(project, tmp_path):
    (project / "config.json").write_text(json.dumps({"save_path": str(tmp_path / "scratch" / "{name}/{params}/{run}")}))
    assert check(project) == []


# -- the job script ----------------------------------------------------------------------------


def test_template_that_does_not_render_is_found(project):
    template = project / "my.sh.j2"
    template.write_text("#!/bin/bash\n{{ no_such_variable }}\n")
    problems = check(project, ClusterProfile(template=str(template)))
    assert kinds(problems) == ["template"]
    assert problems[0].where == str(template) and "no_such_variable" in problems[0].message


def test_missing_template_is_found(project):
    problems = check(project, ClusterProfile(template=str(project / "nope.sh.j2"), source="p.yaml"))
    assert kinds(problems) == ["template"] and problems[0].where == "p.yaml: template"


def test_setup_that_is_not_bash_is_found(project):
    problems = check(project, ClusterProfile(setup=("if [ -d x ]; then echo y",)))
    assert kinds(problems) == ["template"]
    assert "not valid bash" in problems[0].message and "setup" in problems[0].message
    assert check(project, ClusterProfile(setup=("if [ -d x ]; then echo y",)), bash=None) == []


def test_template_text_can_be_given(project):
    assert kinds(check(project, template_text="{% if %}")) == ["template"]


# -- the log directory -------------------------------------------------------------------------


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_log_directory_check_leaves_nothing_behind(project):
    before = tree(project)
    assert check(project) == []
    assert tree(project) == before


def test_log_path_under_a_file_is_found(project):
    (project / "config.json").write_text(json.dumps({"save_path": "results/{params}", "log_path": "logs"}))
    (project / "logs").write_text("a file, not a directory")
    problems = check(project)
    assert [p.check for p in problems] == ["log_dir"]
    assert problems[0].message == f"cannot create the log directory: {project / 'logs'} is not a directory"


def test_unwritable_log_directory_is_found(project, monkeypatch):
    # the probe's answer is used as it is; tests run as root here, so the refusal is simulated
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("orchestrator.preflight.tempfile.mkdtemp", refuse)
    problems = check(project)
    assert [str(p) for p in problems] == [
        f"{project / 'config.json'}: log_path: cannot create the log directory in {project}: Permission denied"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permission bits cannot refuse it")
def test_read_only_log_directory_is_found(project):
    (project / ".logs").mkdir()
    (project / ".logs").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert kinds(check(project)) == ["log_dir"]
        assert kinds(check(project, probe_writes=False)) == ["log_dir"]
    finally:
        (project / ".logs").chmod(0o755)


def test_without_probe_writes_nothing_is_created(project, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a dry run creates nothing")

    monkeypatch.setattr("orchestrator.preflight.tempfile.mkdtemp", forbidden)
    assert check(project, probe_writes=False) == []


def test_every_problem_of_every_experiment_is_listed(project):
    (project / "src" / "main.py").unlink()
    other = write_experiment(project, {"agent": "", "metaParameters": {"lr": [1]}}, "experiments/Y/b.json")
    problems = check(project, None, "experiments/X/dqn.json", other)
    assert kinds(problems) == ["command", "save_path"]
    assert "src/main.py" in problems[0].message and "experiments/Y/b.json index 0" in problems[1].message


@pytest.mark.parametrize("command", ["exit 3", "sleep 1; exit {index}", "echo {experiment} {index}", "[[ -n x ]]"])
def test_shell_builtins_and_keywords_are_not_looked_up_on_path(tmp_path: Path, command: str) -> None:
    """`command: exit 3` runs in the task's bash: a builtin is never 'not on PATH'."""
    from orchestrator.preflight import check_command as check_program

    profile = ClusterProfile(command=command)
    problems = check_program(profile, "experiments/x.json", tmp_path, SetupEffect(), search_path="")
    assert [p for p in problems if "not on PATH" in p.message and "sleep" not in p.message] == []

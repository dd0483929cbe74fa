"""Shell completion: the bash function run in bash (COMP_WORDS/COMP_CWORD in, COMPREPLY out), the zsh
function run in an interactive zsh on a pseudo-terminal, both generated from the CLI's real parser.

The old behaviour: there was no completion at all.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import build_parser
from orchestrator.completion import completion_script, read_parser

BASH_DRIVER = r"""
source "$1" || exit 3
cd "$2" || exit 4
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
_orchestrator
printf '%s\n' "${COMPREPLY[@]}"
"""

# Completes one line in an interactive zsh on a pseudo-terminal and prints every candidate that the
# completion functions add (a wrapper around `compadd` reports them; they are still added).
ZSH_DRIVER = r"""
zmodload zsh/zpty || exit 3
setup=$(mktemp)
cat > $setup <<SETUP
PROMPT= RPROMPT=
cd ${(q)2}
autoload -Uz compinit && compinit -u -D -d ${(q)setup}.dump
source ${(q)1}
null-line () { echo -E - \$'\\0' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
compadd () {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "\$@"; return \$?; fi
  typeset -a __hits
  builtin compadd -A __hits "\$@"
  local h
  for h in \$__hits; do echo -E - "HIT:\$h"; done
  builtin compadd "\$@"
}
bindkey '^I' complete-word
SETUP
zpty z zsh -f -i
zpty -w z "source ${(q)setup}"
zpty -w z "$3"$'\t'
integer seen=0
local out
while zpty -r z out; do
  if [[ $out == *$'\0'* ]]; then
    (( seen++ )) && break || continue
  fi
  (( seen )) && [[ $out == HIT:* ]] && print -r -- "${${out#HIT:}%%$'\r'*}"
done
zpty -d z
rm -f $setup $setup.dump
"""


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scripts as `orchestrator completion SHELL` prints them (through the real CLI)."""
    directory = tmp_path_factory.mktemp("completion")
    out = {}
    for shell in ("bash", "zsh"):
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator", "completion", shell], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        out[shell] = directory / f"orchestrator.{shell}"
        out[shell].write_text(result.stdout)
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for name in (
        "experiments/dqn/sweep.json",
        "experiments/ppo.yaml",
        "experiments/deep/a/b.yml",
        "clusters/cedar.yaml",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    (root / "experiments" / "notes.txt").write_text("not an experiment")
    (root / "results" / "x").mkdir(parents=True)
    (root / "results" / "x" / "metrics.json").write_text("{}")  # a JSON file, but not under experiments/
    (root / "src").mkdir()
    (root / "config.json").write_text(json.dumps({"save_path": "results/{name}/{params}/{run}"}))
    return root


EXPERIMENTS = ["experiments/deep/a/b.yml", "experiments/dqn/sweep.json", "experiments/ppo.yaml"]


def bash_complete(script: Path, cwd: Path, *words: str) -> list[str]:
    result = subprocess.run(
        ["bash", "-c", BASH_DRIVER, "bash", str(script), str(cwd), "orchestrator", *words],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.split("\n") if line]


# -- bash ---------------------------------------------------------------------------------------


def test_subcommands(scripts, project):
    commands = list(read_parser(build_parser()).commands)
    assert bash_complete(scripts["bash"], project, "") == [c.name for c in commands]
    assert bash_complete(scripts["bash"], project, "st") == ["status"]
    assert "completion" in [c.name for c in commands]


def test_flags_are_the_parsers(scripts, project):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        visible = [s for a in sub._actions if a.help is not argparse.SUPPRESS for s in a.option_strings]
        assert bash_complete(scripts["bash"], project, name, "-") == visible, name
        assert bash_complete(scripts["bash"], project, name, "--") == [s for s in visible if s.startswith("--")]
    assert bash_complete(scripts["bash"], project, "--v") == ["--version"]


def test_hidden_flags_stay_hidden(tmp_path, project):
    # a flag with help=SUPPRESS is not offered: completion follows the parser, not a list of its own
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    subparsers.choices["logs"].add_argument("--internal", help=argparse.SUPPRESS)
    script = tmp_path / "c.bash"
    script.write_text(completion_script("bash", parser))
    offered = bash_complete(script, project, "logs", "--")
    assert "--internal" not in offered
    assert "--runs" in offered  # shown since the ledger remembers it (issue 12): logs --help lists it too


def test_a_command_added_to_the_parser_is_completed(tmp_path, project):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    report = subparsers.add_parser("report", help="how much was used")
    report.add_argument("--since", metavar="DATE")
    report.add_argument("--format", choices=("table", "csv"))
    report.add_argument("experiments", nargs="*", metavar="EXPERIMENT")
    script = tmp_path / "c.bash"
    script.write_text(completion_script("bash", parser))
    assert "report" in bash_complete(script, project, "")
    assert bash_complete(script, project, "report", "--") == ["--help", "--since", "--format"]
    assert bash_complete(script, project, "report", "--format", "") == ["table", "csv"]
    assert bash_complete(script, project, "report", "--since", "2024", "") == EXPERIMENTS


def test_choices(scripts, project):
    assert bash_complete(scripts["bash"], project, "submit", "--executor", "") == ["auto", "slurm", "local"]
    assert bash_complete(scripts["bash"], project, "submit", "--executor", "l") == ["local"]
    # bash splits `--executor=l` at the '=' (COMP_WORDBREAKS)
    assert bash_complete(scripts["bash"], project, "submit", "--executor", "=", "l") == ["local"]
    assert bash_complete(scripts["bash"], project, "submit", "--executor", "=") == ["auto", "slurm", "local"]
    assert bash_complete(scripts["bash"], project, "completion", "") == ["bash", "zsh"]


def test_experiments_under_the_experiment_directory(scripts, project):
    assert bash_complete(scripts["bash"], project, "status", "") == EXPERIMENTS
    assert bash_complete(scripts["bash"], project, "status", "experiments/d") == EXPERIMENTS[:2]
    # every experiment argument, also after other experiments and after options with values
    assert bash_complete(scripts["bash"], project, "submit", EXPERIMENTS[0], "--runs", "3", "") == EXPERIMENTS
    assert bash_complete(scripts["bash"], project, "submit", "--runs=3", "") == EXPERIMENTS
    assert bash_complete(scripts["bash"], project, "submit", "--runs", "=", "3", "") == EXPERIMENTS


def test_experiments_are_relative_to_the_current_directory(scripts, project):
    assert bash_complete(scripts["bash"], project / "experiments", "plan", "") == [
        "deep/a/b.yml",
        "dqn/sweep.json",
        "ppo.yaml",
    ]
    assert bash_complete(scripts["bash"], project / "experiments" / "dqn", "plan", "") == [
        "../deep/a/b.yml",
        "sweep.json",
        "../ppo.yaml",
    ]
    assert bash_complete(scripts["bash"], project / "results" / "x", "plan", "") == ["../../" + e for e in EXPERIMENTS]


def test_experiment_directory_from_config_json(scripts, project):
    (project / "config.json").write_text(
        json.dumps({"save_path": "r/{params}", "experiment_directory": "sweeps"}, indent=4)
    )
    (project / "sweeps" / "X").mkdir(parents=True)
    (project / "sweeps" / "X" / "a.json").write_text("{}")
    assert bash_complete(scripts["bash"], project, "plan", "") == ["sweeps/X/a.json"]


def test_profiles_under_clusters(scripts, project):
    assert bash_complete(scripts["bash"], project, "submit", "--cluster", "") == ["clusters/cedar.yaml"]
    assert bash_complete(scripts["bash"], project / "src", "status", "--cluster", "") == ["../clusters/cedar.yaml"]


def test_other_paths_complete_as_files(scripts, project, tmp_path):
    # nothing under experiments/ starts with "res": directories and experiment-like files do
    assert bash_complete(scripts["bash"], project, "plan", "res") == ["results"]
    assert bash_complete(scripts["bash"], project, "plan", "results/x/") == ["results/x/metrics.json"]
    # outside any project: the same file completion
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.json").write_text("{}")
    (outside / "b.txt").write_text("")
    assert bash_complete(scripts["bash"], outside, "plan", "") == ["a.json"]


def test_index_gets_no_candidates(scripts, project):
    assert bash_complete(scripts["bash"], project, "logs", "") == EXPERIMENTS
    assert bash_complete(scripts["bash"], project, "logs", EXPERIMENTS[0], "") == []


def test_file_names_with_spaces_are_one_candidate(scripts, project):
    (project / "experiments" / "my sweep.json").write_text("{}")
    assert "experiments/my sweep.json" in bash_complete(scripts["bash"], project, "plan", "experiments/my")


def test_bash_script_is_shellcheck_clean(scripts):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(["shellcheck", "-s", "bash", str(scripts["bash"])], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_unknown_shell():
    with pytest.raises(ValueError, match="bash, zsh"):
        completion_script("fish", build_parser())
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "completion", "fish"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr


# -- zsh ----------------------------------------------------------------------------------------


def zsh_complete(script: Path, cwd: Path, line: str) -> list[str]:
    result = subprocess.run(
        ["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(script), str(cwd), line], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return [out for out in result.stdout.split("\n") if out]


needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)")


@needs_zsh
def test_zsh_script_parses(scripts):
    result = subprocess.run(["zsh", "-n", str(scripts["zsh"])], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@needs_zsh
@pytest.mark.parametrize(
    ("line", "cwd", "expected"),
    [
        ("orchestrator ", ".", ["plan", "submit", "status", "usage", "cancel", "logs", "completion"]),
        ("orchestrator submit --ex", ".", ["--executor"]),
        ("orchestrator submit --executor ", ".", ["auto", "slurm", "local"]),
        ("orchestrator submit ", ".", EXPERIMENTS),
        ("orchestrator submit --runs 2 experiments/p", ".", ["experiments/ppo.yaml"]),
        ("orchestrator status --cluster ", ".", ["clusters/cedar.yaml"]),
        ("orchestrator plan ", "experiments/dqn", ["../deep/a/b.yml", "sweep.json", "../ppo.yaml"]),
        ("orchestrator plan res", ".", ["results"]),
        ("orchestrator completion ", ".", ["bash", "zsh"]),
    ],
)
def test_zsh_completion(scripts, project, line, cwd, expected):
    assert zsh_complete(scripts["zsh"], project / cwd, line) == expected


@needs_zsh
def test_zsh_flags_are_the_parsers(scripts, project):
    offered = zsh_complete(scripts["zsh"], project, "orchestrator status --")
    parser_flags = next(o for o in read_parser(build_parser()).commands if o.name == "status").options
    assert sorted(offered) == sorted(s for o in parser_flags for s in o.strings if s.startswith("--"))

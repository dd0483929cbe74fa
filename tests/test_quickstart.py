"""The README's quickstart, run verbatim as a new user would: a fresh copy, a fresh venv, no Slurm.

The block is the fenced bash code block right after `<!-- quickstart: run -->` in README.md. It runs
with `bash -e` in a copy of the repository's files (tracked, plus untracked ones not ignored) with a
PATH that holds no Slurm command and no virtual environment, so `--executor auto` runs locally and
the `orchestrator` it finds is the one the block installed. Then: every index is done, every result
is at its save path, and the README's submit line run again says there is nothing to submit.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = "<!-- quickstart: run -->"
SLURM_COMMANDS = frozenset(
    {"sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo", "srun", "salloc", "sacctmgr", "sattach", "sstat"}
)
# what an activated or configured Python environment leaves behind; a new user's shell has none of it
ENVIRONMENT_LEFTOVERS = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "CONDA_PREFIX",
    "__PYVENV_LAUNCHER__",
)


def quickstart_block(readme: str) -> str:
    """The fenced bash block directly after the marker (only blank lines may come between)."""
    position = readme.find(MARKER)
    if position < 0:
        pytest.fail(f"README.md has no {MARKER!r} marker before its quickstart code block")
    rest = readme[position + len(MARKER) :]
    match = re.match(r"[ \t]*\n(?:[ \t]*\n)*```(?:bash|sh|shell)[ \t]*\n(.*?)^```[ \t]*$", rest, re.S | re.M)
    if match is None:
        pytest.fail(f"README.md: the line after {MARKER!r} does not open a fenced ```bash code block")
    block = match.group(1)
    if not block.strip():
        pytest.fail(f"README.md: the code block after {MARKER!r} is empty")
    return block


def commands_in(block: str) -> list[list[str]]:
    """The block's simple commands, as argument lists (split at newlines, `&&`, `||` and `;`)."""
    joined = re.sub(r"\\\n", " ", block)
    out = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part, comments=True)
            if words:
                out.append(words)
    return out


def submit_line(block: str) -> list[str]:
    """The block's `orchestrator submit ...` command (also `python -m orchestrator submit ...`)."""
    for words in commands_in(block):
        if words[:2] == ["orchestrator", "submit"]:
            return words
        if len(words) >= 4 and words[1:4] == ["-m", "orchestrator", "submit"]:
            return words
    pytest.fail(f"the quickstart block runs no `orchestrator submit`:\n{block}")


# submit's options that take a value; of them, plan and status take --runs and --keys too
VALUE_OPTIONS = frozenset({"--runs", "--keys", "--cluster", "--executor", "--max-parallel", "--marker"})
SWEEP_OPTIONS = frozenset({"--runs", "--keys"})


def sweep_arguments(submit: list[str]) -> list[str]:
    """The experiment paths, --runs and --keys of a submit command (what plan and status take too)."""
    words = submit[submit.index("submit") + 1 :]
    out = []
    k = 0
    while k < len(words):
        word = words[k]
        name = word.split("=", 1)[0]
        takes_value = name in VALUE_OPTIONS and "=" not in word
        if not word.startswith("-") or name in SWEEP_OPTIONS:
            out += words[k : k + 2] if takes_value else [word]
        k += 2 if takes_value else 1
    return out


def repository_files() -> list[str]:
    """Tracked files that exist, and untracked ones that are not ignored (work not yet committed)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot list the repository's files with git in {REPO}: {e}")
    names = sorted({name for name in listed.decode().split("\0") if name})
    return [name for name in names if (REPO / name).is_file()]


def copy_repository(destination: Path) -> Path:
    for name in repository_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    return destination


def path_without_slurm(directory: Path) -> str:
    """A PATH of links to every command on PATH except Slurm's, any virtual environment's and `orchestrator`."""
    directory.mkdir()
    skip = {Path(sys.executable).parent.absolute()}
    if os.environ.get("VIRTUAL_ENV"):
        skip.add(Path(os.environ["VIRTUAL_ENV"], "bin").absolute())
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).absolute() in skip or not Path(entry).is_dir():
            continue
        if (Path(entry) / "activate").is_file() and (Path(entry).parent / "pyvenv.cfg").is_file():
            continue  # another virtual environment's bin
        for command in Path(entry).iterdir():
            target = directory / command.name
            if (
                command.name in SLURM_COMMANDS
                or command.name == "orchestrator"
                or target.exists()
                or target.is_symlink()
            ):
                continue
            if command.is_file() and os.access(command, os.X_OK):
                target.symlink_to(command)
    assert shutil.which("sbatch", path=str(directory)) is None
    return str(directory)


def new_user_environment(path: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_LEFTOVERS}
    env["PATH"] = path
    return env


def in_venv(project: Path, words: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`words` run by bash in the project with the quickstart's .venv activated."""
    return subprocess.run(
        ["bash", "-e", "-c", ". .venv/bin/activate && " + shlex.join(words)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_readme_quickstart_runs_the_example_sweep_to_completion(tmp_path: Path) -> None:
    assert README.is_file(), f"{README} does not exist"
    block = quickstart_block(README.read_text(encoding="utf-8"))
    submit = submit_line(block)
    arguments = sweep_arguments(submit)
    project = copy_repository(tmp_path / "new user's checkout")
    env = new_user_environment(path_without_slurm(tmp_path / "bin"))

    ran = subprocess.run(
        ["bash", "-e", "-c", block], cwd=project, env=env, capture_output=True, text=True, timeout=1200
    )
    assert ran.returncode == 0, f"the quickstart exited {ran.returncode}\n{ran.stdout[-4000:]}\n{ran.stderr[-4000:]}"
    assert (project / ".venv" / "bin" / "orchestrator").is_file(), "the quickstart did not install the console script"

    plan = in_venv(project, ["orchestrator", "plan", *arguments, "--jsonl"], env)
    assert plan.returncode == 0, plan.stderr
    entries = [json.loads(line) for line in plan.stdout.splitlines()]
    total = len(entries)
    assert total > 0
    assert f"{total}/{total} done" in ran.stdout, f"the quickstart's status does not show all done:\n{ran.stdout}"
    missing = [e["save_path"] for e in entries if not (project / e["save_path"]).exists()]
    assert missing == [], f"{len(missing)} of {total} results are missing, e.g. {missing[:3]}"

    status = in_venv(project, ["orchestrator", "status", *arguments, "--json"], env)
    assert status.returncode == 0, status.stderr
    for experiment in json.loads(status.stdout)["experiments"]:
        assert experiment["done"] == experiment["total"], experiment

    again = in_venv(project, submit, env)
    assert again.returncode == 0, again.stderr
    assert "Nothing to submit" in again.stdout, again.stdout

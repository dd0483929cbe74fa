"""Checks before anything is sent: would the tasks start at all?

A sweep whose command cannot start fails on every index, after the queue wait, one log at a time.
`preflight` finds the usual causes on the login node, in well under a second, before anything is
submitted or written: the command's program and script, the save paths, the job script, the log
directory. It reports only what it can know: where the profile's `setup` changes PATH in a way
that cannot be followed here (`module load`, `conda activate`), a program missing from PATH is not
reported (a `source <dir>/bin/activate` line is followed: that venv's bin comes first).

Each `Problem` is one line naming what and where; an empty list means "go". The analysis of the
command and the setup is pure (`command_words`, `setup_effect`); the checks look at files, run
`bash -n` on the rendered script and create (and at once remove) one empty directory to learn
whether the log directory can be created.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.planner import ExperimentPlan
from orchestrator.profile import ClusterProfile
from orchestrator.render import DEFAULT_TEMPLATE, ArrayScript, load_template, render_script
from orchestrator.run_dir import RunDirectory

PREFLIGHT_TAG = "orch-preflight-0"
BASH_CHECK_TIMEOUT = 10.0  # seconds for `bash -n` of one script

_SHELL_OPERATORS = ";&|<>()"  # a line with one of these unquoted is more than one simple command
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Setup commands known to leave PATH, the working directory and the files alone.
_HARMLESS = frozenset({"set", "ulimit", "umask", "echo", "printf", "true", ":", "export", "unset"})
# Setup commands that change PATH in ways not followed here, but create no files in the project.
_PATH_ONLY = frozenset({"module", "ml", "conda", "mamba", "micromamba", "spack"})
# Prefixes that run the next word as the program.
_WRAPPERS = frozenset({"exec", "command", "nohup", "time", "env"})
# bash's builtins and keywords (`compgen -b; compgen -k`): never looked up on PATH
_BUILTINS = frozenset(
    [
        ".",
        ":",
        "[",
        "alias",
        "bg",
        "bind",
        "break",
        "builtin",
        "caller",
        "cd",
        "command",
        "compgen",
        "complete",
        "compopt",
        "continue",
        "declare",
        "dirs",
        "disown",
        "echo",
        "enable",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fc",
        "fg",
        "getopts",
        "hash",
        "help",
        "history",
        "jobs",
        "kill",
        "let",
        "local",
        "logout",
        "mapfile",
        "popd",
        "printf",
        "pushd",
        "pwd",
        "read",
        "readarray",
        "readonly",
        "return",
        "set",
        "shift",
        "shopt",
        "source",
        "suspend",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "case",
        "esac",
        "for",
        "select",
        "while",
        "until",
        "do",
        "done",
        "in",
        "function",
        "time",
        "{",
        "}",
        "!",
        "[[",
        "]]",
        "coproc",
    ]
)
# Interpreters that run a script file given as their first non-option argument, the options with
# which they run code from the command line instead, and their options that take an argument.
_INTERPRETERS = (
    (re.compile(r"(python|pypy)[0-9.]*"), ("-c", "-m"), ("-W", "-X")),
    (re.compile(r"bash|sh|zsh|dash"), ("-c",), ("-o", "-O", "+o", "+O")),
    (re.compile(r"perl|ruby|node|Rscript|julia"), ("-e", "--eval"), ()),
)


@dataclass(frozen=True)
class Problem:
    """One reason the tasks would fail: `check` is its kind, `where` the file and key, `message` what."""

    check: str  # "command", "setup", "save_path", "template" or "log_dir"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class SetupEffect:
    """What the profile's setup lines do to the tasks' PATH and working directory, as far as known."""

    venv_bins: tuple[str, ...] = ()  # prepended to PATH, the last activated first
    path_known: bool = True
    cwd_known: bool = True
    problems: tuple[Problem, ...] = field(default=())

    def with_unknown_path(self) -> SetupEffect:
        return SetupEffect(self.venv_bins, False, self.cwd_known, self.problems)


def preflight(
    plans: Sequence[ExperimentPlan],
    profile: ClusterProfile,
    project_root: Path,
    *,
    search_path: str | None = None,
    template_text: str | None = None,
    bash: str | None = "bash",
    probe_writes: bool = True,
) -> list[Problem]:
    """Every problem found, in order: setup and command once, then per experiment save paths, script, logs.

    `search_path` is the PATH the tasks start with (default: this process's; for the local executor
    pass the one it gives its tasks). `template_text` defaults to the profile's template. `bash`
    runs `bash -n` on the rendered script (None: skip that part). With `probe_writes` False (a dry
    run) the log directory is judged by its permission bits alone, and nothing is created.
    """
    root = Path(os.path.abspath(project_root))
    effect = setup_effect(profile.setup, root, _where(profile, "setup"))
    problems = list(effect.problems)
    if plans:
        path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
        export = profile.sbatch.get("export")
        if (isinstance(export, str) and not export.upper().startswith("ALL")) or "get-user-env" in profile.sbatch:
            effect = effect.with_unknown_path()  # the tasks' environment is not this one
        problems += check_command(profile, plans[0].path, root, effect, path)
    if template_text is None:
        try:
            template_text = load_template(profile.template)
        except UserError as e:
            return [*problems, Problem("template", _where(profile, "template"), str(e))]
    probed: dict[Path, Problem | None] = {}
    for plan in plans:
        problems += check_save_paths(plan, root)
        problems += check_script(plan, profile, root, template_text, bash)
        problems += check_log_dir(plan, root, probed, probe_writes)
    return problems


def _where(profile: ClusterProfile, key: str) -> str:
    return f"{profile.source}: {key}" if profile.source else f"the default profile (no --cluster): {key}"


# -- setup and command (pure analysis, then a look at files and PATH) ------------------------------


def setup_effect(setup: Sequence[str], root: Path, where: str) -> SetupEffect:
    """Follow the setup lines: venv activations are known, harmless lines skipped, the rest unknown."""
    bins: list[str] = []
    path_known = cwd_known = files_known = True  # files_known: no line so far may have created files
    problems: list[Problem] = []
    for number, line in enumerate(setup):
        words = _simple_words(line)
        if words == []:
            continue
        if words is None or words[0] in ("cd", "pushd", "popd", "eval") or _is_other_source(words):
            path_known = cwd_known = files_known = False
        elif words[0] in (".", "source"):  # a venv's activate script
            activate = _relative_to(words[1], root)
            if activate is None:
                path_known = False
                continue
            if files_known and cwd_known and not activate.is_file():
                problems.append(Problem("setup", f"{where}[{number}]", f"{words[1]} not found under {root}"))
            bins.insert(0, str(activate.parent))
        elif words[0] in _PATH_ONLY:
            path_known = False
        elif not _leaves_path_alone(words):
            path_known = files_known = False
    return SetupEffect(tuple(bins), path_known, cwd_known, tuple(problems))


def _simple_words(line: str) -> list[str] | None:
    """The words of one simple command ([] for a blank or comment line), None for anything more."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=_SHELL_OPERATORS)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote
        return None
    if "`" in line or any(w and not w.strip(_SHELL_OPERATORS) for w in words):
        return None
    return words


def _is_other_source(words: list[str]) -> bool:
    """`source` / `.` of anything but one `.../bin/activate` (with no arguments): not followed."""
    if words[0] not in (".", "source"):
        return False
    return len(words) != 2 or not words[1].endswith("bin/activate")


def _leaves_path_alone(words: list[str]) -> bool:
    if words[0] in ("export", "unset") or _ASSIGNMENT.match(words[0]):
        return not any(re.match(r"PATH(=|$)", w) for w in words)
    return words[0] in _HARMLESS


def _relative_to(word: str, root: Path) -> Path | None:
    """`word` as the task's shell would find it from `root`; None when it depends on variables."""
    if "$" in word:
        return None
    return Path(os.path.normpath(root / os.path.expanduser(word)))


def command_words(command: str, experiment: str, index: int = 0) -> list[str] | None:
    """The program and arguments of one index's command; None when it is more than a simple command."""
    text = command.format(experiment=shlex.quote(experiment), index=index)
    words = _simple_words(text)
    if not words:
        return None
    while words and _ASSIGNMENT.match(words[0]):  # FOO=1 python ...
        words = words[1:]
    while words and words[0] in _WRAPPERS:
        words = words[1:]
        while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):  # env -i A=1 prog
            words = words[1:]
    return words or None


def script_argument(words: Sequence[str]) -> str | None:
    """The script file an interpreter runs (`python -u src/main.py ...` -> `src/main.py`), if any."""
    name = os.path.basename(words[0])
    found = next(((i, a) for pattern, i, a in _INTERPRETERS if pattern.fullmatch(name)), None)
    if found is None:
        return None
    inline, with_argument = found
    arguments = iter(words[1:])
    for word in arguments:
        if word.startswith(inline):  # python -c '...', -mpkg; bash -c; node -e
            return None
        if word in with_argument:
            next(arguments, None)
        elif not word.startswith(("-", "+")):
            return word
    return None


def check_command(
    profile: ClusterProfile, experiment: str, root: Path, effect: SetupEffect, search_path: str
) -> list[Problem]:
    """The program resolves (PATH after setup, or a file under the root) and so does its script."""
    words = command_words(profile.command, experiment)
    if words is None or words[0] in _BUILTINS:
        return []
    where = _where(profile, "command")
    problems = []
    program = words[0]
    if "/" in program:
        if effect.cwd_known or os.path.isabs(program):
            problems += _file_problems(program, root, where, "program", executable=True)
    elif effect.path_known and not _which(program, (*effect.venv_bins, search_path)):
        after = " after the profile's setup" if effect.venv_bins else ""
        problems.append(Problem("command", where, f"program '{program}' is not on PATH{after}"))
    script = script_argument(words)
    if script is not None and "$" not in script and (effect.cwd_known or os.path.isabs(script)):
        problems += _file_problems(script, root, where, "script", executable=False)
    return problems


def _which(program: str, path_parts: Sequence[str]) -> str | None:
    return shutil.which(program, path=os.pathsep.join(p for p in path_parts if p))


def _file_problems(word: str, root: Path, where: str, what: str, executable: bool) -> list[Problem]:
    target = _relative_to(word, root)
    assert target is not None  # callers pass words without '$'
    if not target.exists():
        under = "" if os.path.isabs(os.path.expanduser(word)) else f" under the project root {root} (tasks run there)"
        return [Problem("command", where, f"{what} {word} not found{under}")]
    if target.is_dir():
        return [Problem("command", where, f"{what} {word} is a directory")]
    if executable and not os.access(target, os.X_OK):
        return [Problem("command", where, f"{what} {word} is not executable (chmod +x {word})")]
    return []


# -- per experiment ----------------------------------------------------------------------------


def check_save_paths(plan: ExperimentPlan, root: Path) -> list[Problem]:
    """The save paths of the first and last index render to a usable path (the first problem only)."""
    where = f"{root / 'config.json'}: save_path"
    for index in sorted({0, plan.total - 1}):
        try:
            path = plan.save_path(index)
        except UserError as e:
            return [Problem("save_path", where, f"{plan.path} index {index}: {e}")]
        problem = _save_path_problem(path)
        if problem:
            return [Problem("save_path", where, f"{plan.path} index {index}: '{path}' {problem}")]
    return []


def _save_path_problem(path: str) -> str | None:
    if not path.strip():
        return "is empty"
    if "//" in path:
        return "has an empty directory name ('//'): a value in it is empty or an absolute path"
    if not os.path.isabs(path) and os.path.normpath(path).split(os.sep)[0] == "..":
        return "leaves the project root"
    return None


def check_script(
    plan: ExperimentPlan, profile: ClusterProfile, root: Path, template_text: str, bash: str | None
) -> list[Problem]:
    """The job script renders, and (with `bash`) is valid bash with the profile's setup and command in it."""
    where = profile.template or f"the default template ({DEFAULT_TEMPLATE})"
    script = ArrayScript(
        tag=PREFLIGHT_TAG,
        project_root=str(root),
        experiment=plan.path,
        task_file=str(RunDirectory.of(root, PREFLIGHT_TAG).task_file),
        log_dir=str(_log_dir(plan, root) / PREFLIGHT_TAG),
        num_tasks=1,
        throttle=profile.throttle,
        parallel=profile.parallel,
        sbatch_options=profile.sbatch_options(),
        setup=profile.setup,
        command=profile.command,
    )
    try:
        text = render_script(script, template_text, profile.template)
    except UserError as e:
        return [Problem("template", where, f"{plan.path}: {e}")]
    error = _bash_syntax_error(text, bash) if bash else None
    if error:
        message = f"the job script for {plan.path} is not valid bash ({error}); check the profile's setup and command"
        return [Problem("template", where, message)]
    return []


def _bash_syntax_error(text: str, bash: str) -> str | None:
    """bash's first complaint about `text` (`bash -n`: parsed, nothing run); None when it parses."""
    try:
        result = subprocess.run(
            [bash, "-n"], input=text, capture_output=True, text=True, timeout=BASH_CHECK_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no bash here to ask: the check is skipped, not failed
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"bash -n exited {result.returncode}"


def _log_base(plan: ExperimentPlan, root: Path) -> Path:
    """`log_path` as an absolute, normalised directory (relative to the project root)."""
    return Path(os.path.normpath(root / plan.config.log_dir))


def _log_dir(plan: ExperimentPlan, root: Path) -> Path:
    """The experiment's log directory, as the submitter forms it (`<log_path>/<name>`), normalised."""
    return Path(os.path.normpath(_log_base(plan, root) / plan.name))


def check_log_dir(
    plan: ExperimentPlan, root: Path, probed: dict[Path, Problem | None], probe_writes: bool = True
) -> list[Problem]:
    """The experiment's log directory is inside `log_path` and can be created (nothing is left behind)."""
    where = f"{root / 'config.json'}: log_path"
    base, log_dir = _log_base(plan, root), _log_dir(plan, root)
    if base not in (log_dir, *log_dir.parents):
        return [Problem("log_dir", where, f"the logs of {plan.path} would go to {log_dir}, outside {base}")]
    existing = next(d for d in _self_and_parents(log_dir) if d.exists() or d == d.parent)
    if existing not in probed:
        probed[existing] = _creatable(existing, where, probe_writes)
    problem = probed[existing]
    return [problem] if problem else []


def _self_and_parents(path: Path) -> Iterator[Path]:
    yield path
    yield from path.parents


def _creatable(existing: Path, where: str, probe_writes: bool) -> Problem | None:
    """Whether directories can be made in `existing`: make one (hidden, empty) and remove it at once.

    The probe answers for ACLs, read-only mounts and root-squashed NFS, where permission bits mislead.
    """
    if not existing.is_dir():
        return Problem("log_dir", where, f"cannot create the log directory: {existing} is not a directory")
    if not probe_writes:
        if os.access(existing, os.W_OK | os.X_OK):
            return None
        return Problem("log_dir", where, f"cannot create the log directory in {existing}: permission denied")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".orchestrator-preflight-", dir=existing))
    except OSError as e:
        return Problem("log_dir", where, f"cannot create the log directory in {existing}: {e.strerror}")
    return None

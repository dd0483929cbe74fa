"""Rendering an array job script: a pure function from data (`ArrayScript`) to text.

The script never contains parameter values. It gets the experiment path and, through the task file,
the indices; the command reads the parameters itself (`orchestrator.load_experiment(path).params(i)`).
Everything that comes from the user is quoted for the reader that parses it: `shlex.quote` for bash,
`sbatch_quote` for sbatch's own parser of `#SBATCH` lines.

Template variables (the default is `templates/sbatch_array.sh.j2`; a profile's `template` replaces it):

    directives      list of `#SBATCH --name=value` lines (array, job name, comment, output, profile options)
    tag             unique id of this submission (also the job name and --comment); safe unquoted
    project_root_q  project root, shell-quoted: the script cd's here
    experiment_q    experiment path as the user gave it, shell-quoted
    task_file_q     task file, shell-quoted: line K+1 holds the space-separated indices of array task K
    log_dir_q       log directory, shell-quoted: `<index>.log`, `<index>.status`, `slurm-%A_%a.out`
    num_tasks       number of array tasks (ids 0..num_tasks-1)
    parallel        how many indices of one task run at once
    setup           list of shell lines to run before the indices (verbatim)
    command         the command for one index, with {experiment} -> "$ORCH_EXPERIMENT", {index} -> "$index"
    shell_quote     filter: `{{ value | shell_quote }}` is `shlex.quote(str(value))`

Templates are rendered with StrictUndefined (an unknown variable is an error), trim_blocks and
lstrip_blocks (a `{% ... %}` line leaves no blank line), a kept trailing newline, and no autoescape.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from orchestrator.errors import UserError
from orchestrator.experiment import read_user_file
from orchestrator.profile import OWN_SBATCH_OPTIONS, check_command, known_sbatch_options

DEFAULT_TEMPLATE = "sbatch_array.sh.j2"
TEMPLATE_PACKAGE = "orchestrator.templates"

# Characters sbatch's directive parser reads literally outside quotes (ASCII only: it tests bytes with isspace).
_SBATCH_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ArrayScript:
    """Everything one array job script depends on; `render_script` turns it into text."""

    tag: str  # unique id of this submission, e.g. "orch-dqn-1a2b3c4d"; also the job name and --comment
    project_root: str  # absolute; the script cd's here
    experiment: str  # experiment path as the user gave it (relative to project_root or absolute)
    task_file: str  # absolute; line k (1-based, k = task id + 1) holds the space-separated indices of task k-1
    log_dir: str  # absolute; `<log_dir>/<index>.log` and `<log_dir>/<index>.status`
    num_tasks: int  # array task ids are always 0..num_tasks-1
    throttle: int | None
    parallel: int  # indices run at once inside one task
    sbatch_options: Mapping[str, str | bool]  # from ClusterProfile.sbatch_options()
    setup: Sequence[str]
    command: str  # with {experiment} and {index} placeholders


def sbatch_quote(value: str) -> str:
    """`value` as one argument for sbatch's `#SBATCH` parser: bare when safe, else in escaped double quotes.

    sbatch splits a directive line on whitespace, groups characters in '...' or "...", takes a backslash
    as an escape for the next character (also inside quotes) and ends the line at an unquoted `#`. It
    expands nothing: `$`, backticks and `;` are literal.
    """
    if _SBATCH_SAFE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_one_line(value: str, what: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise UserError(f"{what} must be one line for an #SBATCH directive: {value!r}")


def _output_pattern(log_dir: str) -> str:
    """Slurm's --output for the log directory: `%` doubled (Slurm expands %A, %a, ...)."""
    if "\\" in log_dir:
        # Slurm drops every backslash of an --output path and then expands no %-pattern at all.
        raise UserError(f"the log directory contains a backslash, which Slurm's --output cannot express: {log_dir!r}")
    return log_dir.rstrip("/").replace("%", "%%") + "/slurm-%A_%a.out"


def sbatch_directives(script: ArrayScript) -> list[str]:
    """The `#SBATCH --name=value` lines: the orchestrator's own options, then the profile's.

    Option names are simple-slurm's (its `arguments.txt`). Its `Slurm.script()` is not used for the text:
    it writes `--name value` padded and unquoted, which sbatch splits at spaces in a value and which
    sbatch 22.05 rejects for options with an optional argument (`--exclusive user`: "Invalid directive
    found in batch script: user"); `--name=value` with quoting works for every option.
    """
    if script.num_tasks < 1:
        raise UserError(f"an array needs at least one task, not {script.num_tasks}")
    array = f"0-{script.num_tasks - 1}"
    if script.throttle is not None:
        if script.throttle < 1:
            raise UserError(f"the array throttle must be a positive integer, not {script.throttle}")
        array += f"%{script.throttle}"
    own: dict[str, str] = {
        "job-name": script.tag,
        "comment": script.tag,
        "array": array,
        "output": _output_pattern(script.log_dir),
    }
    known = known_sbatch_options()
    lines = []
    for name, value in [*own.items(), *script.sbatch_options.items()]:
        if name not in known:
            raise UserError(f"unknown sbatch option '{name}'")
        if name in script.sbatch_options and name in OWN_SBATCH_OPTIONS:
            raise UserError(f"sbatch option '{name}' is set by the orchestrator; a profile cannot set it")
        if value is False:
            continue
        if value is True:
            lines.append(f"#SBATCH --{name}")
            continue
        value = str(value)
        _check_one_line(value, f"sbatch option '{name}'")
        lines.append(f"#SBATCH --{name}={sbatch_quote(value)}")
    return lines


def shell_command(command: str) -> str:
    """The profile's command with its placeholders replaced by quoted shell variables."""
    check_command(command)
    return command.format(experiment='"$ORCH_EXPERIMENT"', index='"$index"')


def template_variables(script: ArrayScript) -> dict[str, object]:
    """The variables a template sees (listed in the module docstring)."""
    if script.parallel < 1:
        raise UserError(f"parallel must be a positive integer, not {script.parallel}")
    if not _TAG.fullmatch(script.tag):
        # the tag is written unquoted (job name, comments); it is generated, so this is a safety net
        raise UserError(f"a submission tag is letters, digits, '.', '_' and '-' only, not {script.tag!r}")
    return {
        "directives": sbatch_directives(script),
        "tag": script.tag,
        "project_root_q": shlex.quote(script.project_root),
        "experiment_q": shlex.quote(script.experiment),
        "task_file_q": shlex.quote(script.task_file),
        "log_dir_q": shlex.quote(script.log_dir),
        "num_tasks": script.num_tasks,
        "parallel": script.parallel,
        "setup": list(script.setup),
        "command": shell_command(script.command),
    }


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shell_quote"] = lambda value: shlex.quote(str(value))
    return env


@lru_cache(maxsize=16)
def _compiled(template_text: str, name: str) -> jinja2.Template:
    """A template compiled once per command: a submit renders one script per array, thousands of them."""
    try:
        return _environment().from_string(template_text)
    except jinja2.TemplateSyntaxError as e:
        raise UserError(f"template syntax error at line {e.lineno}: {e.message}", source=name) from None


def render_script(script: ArrayScript, template_text: str | None = None, template_name: str | None = None) -> str:
    """The job script for `script`, from `template_text` (default: the packaged template).

    `template_name` only names the template in error messages (e.g. the profile's template path).
    """
    if template_text is None:
        template_text = load_template(None)
        template_name = template_name or DEFAULT_TEMPLATE
    name = template_name or "template"
    variables = template_variables(script)
    template = _compiled(template_text, name)
    try:
        return template.render(variables)
    except jinja2.UndefinedError as e:
        raise UserError(
            f"{e.message}; available variables: {', '.join(sorted([*variables, 'shell_quote']))}", source=name
        ) from None
    except jinja2.TemplateError as e:
        raise UserError(f"cannot render template: {e}", source=name) from None


def load_template(path: str | Path | None) -> str:
    """A template's text: the file at `path` (UTF-8, a BOM allowed), or the packaged default for None."""
    if path is None:
        return _default_template()
    return read_user_file(path, "template file")[1]


@cache
def _default_template() -> str:
    try:
        return resources.files(TEMPLATE_PACKAGE).joinpath(DEFAULT_TEMPLATE).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        # a source checkout on sys.path without an install that maps `orchestrator.templates`
        return (Path(__file__).resolve().parent.parent / "templates" / DEFAULT_TEMPLATE).read_text(encoding="utf-8")

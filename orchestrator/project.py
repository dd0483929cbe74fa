"""Where the project is: its root (found as git finds `.git`) and experiment paths relative to it.

Commands work from any directory inside a project: the root is the nearest directory, walking up
from the current one, that holds `config.json`. Experiment paths are taken relative to where the
user typed them (the shell's current directory), and are then carried relative to the root, so
the ledger, `{name}`, the save paths and the job scripts see one spelling of each experiment
wherever the command was run from.

An experiment file outside the project root is refused: its `{name}` would be an absolute
directory (a `results//tmp/...` save path), its logs would land outside the project, and the
same file reached from two projects would share nothing but its path. A file reached through a
symbolic link is inside when either its path as written or its real path is inside the root
(an `experiments/` that links to a shared directory is part of the project).
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.config import CONFIG_FILE
from orchestrator.errors import UserError


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above `start` that holds `config.json` (absolute, not resolved)."""
    start = Path(os.path.abspath(start))
    for directory in (start, *start.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory
    raise UserError(
        f"not found in {start} or any directory above it: run inside a project "
        f"(the directory holding {CONFIG_FILE} with 'save_path', or any directory below it)",
        source=CONFIG_FILE,
    )


def resolve_experiment(typed: str, cwd: Path, root: Path) -> str:
    """`typed` (relative to `cwd`, or absolute) as a normalised POSIX path relative to `root`.

    `./experiments//x.json`, `../proj/experiments/x.json` from the root and `x.json` from
    `experiments/` all give `experiments/x.json`. Refused (exit 2) when the file is outside `root`.
    """
    if not typed.strip():
        raise UserError("an experiment path must not be empty")
    root_abs = os.path.abspath(root)
    written = os.path.normpath(os.path.join(os.path.abspath(cwd), os.path.expanduser(typed)))
    relative = _inside(written, root_abs)
    if relative is None:
        relative = _inside(os.path.realpath(written), os.path.realpath(root_abs))
    if relative is None:
        raise UserError(
            f"the experiment file is outside the project root {root_abs}; "
            "move or copy it into the project (e.g. under experiments/)",
            source=typed,
        )
    if relative == ".":
        raise UserError(f"is the project root {root_abs}, not an experiment file", source=typed)
    return relative.replace(os.sep, "/")


def _inside(path: str, root: str) -> str | None:
    """`path` relative to `root` when it is `root` or below it, else None (both absolute and normalised)."""
    try:
        if os.path.commonpath([path, root]) != root:
            return None
    except ValueError:  # different drives on Windows
        return None
    return os.path.relpath(path, root)

"""The project's `config.json`, in PyExpUtils' format (and only that: PyExpUtils rejects extra keys)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.experiment import decode_user_text

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ProjectConfig:
    """`save_path` is a template (`results/{name}/{params}/{run}`); the other two are directories."""

    root: Path
    save_path: str
    log_path: str = ".logs"
    experiment_directory: str = "experiments"

    @property
    def log_dir(self) -> Path:
        """`log_path` resolved against the project root, `~` and `$VARS` expanded."""
        import os

        expanded = os.path.expandvars(os.path.expanduser(self.log_path))
        return self.root / expanded


_FIELDS = {"save_path": True, "log_path": False, "experiment_directory": False}


def load_config(root: str | Path = ".") -> ProjectConfig:
    """Read `config.json` at the project root; every problem is a `UserError` naming the file."""
    root = Path(root)
    path = root / CONFIG_FILE
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            "not found: run inside a project (the directory holding config.json with 'save_path', or below it)",
            source=source,
        ) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", source=source) from None
    text = decode_user_text(raw, source)  # a BOM is dropped; one wording for undecodable files everywhere
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", source=source) from None
    if not isinstance(data, dict):
        raise UserError("the top level must be an object", source=source)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise UserError(
            f"unknown key(s) {', '.join(unknown)}: PyExpUtils accepts only "
            f"{', '.join(_FIELDS)}; orchestrator's settings go in pyproject.toml under [tool.orchestrator] "
            "or in a cluster profile",
            source=source,
        )
    for key, required in _FIELDS.items():
        if required and key not in data:
            raise UserError("missing required key", source=source, key_path=key)
        if key in data and not isinstance(data[key], str):
            raise UserError(f"must be a string, not {type(data[key]).__name__}", source=source, key_path=key)
    if not data["save_path"].strip():
        raise UserError("must not be empty", source=source, key_path="save_path")
    return ProjectConfig(root=root, **data)

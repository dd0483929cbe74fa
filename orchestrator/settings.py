"""Project settings: `[tool.orchestrator]` in the project's `pyproject.toml`.

`config.json` belongs to PyExpUtils, whose `Config` rejects unknown keys, so what a project wants
fixed for every command (how its results are stored, its usual `--runs` and `--keys`, a marker
file) lives here instead, where Python projects keep tool settings:

    [tool.orchestrator]
    results = "pyexputils-db"      # auto | paths | pyexputils-db | metadata-db
    runs = 5
    keys = ["metaParameters"]
    marker = "DONE"
    cluster = "clusters/cedar.yaml"
    executor = "auto"              # auto | slurm | local

Precedence, for every setting: the command line, then the cluster profile (for the keys a profile
has), then these settings, then the defaults. Every key is validated when the file is read, with a
did-you-mean for a misspelt one, so a typo fails before anything runs.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
SECTION = "tool.orchestrator"

RESULT_KINDS = ("paths", "pyexputils-db", "metadata-db")
RESULT_CHOICES = ("auto", *RESULT_KINDS)
EXECUTORS = ("auto", "slurm", "local")


@dataclass(frozen=True)
class ProjectSettings:
    """`[tool.orchestrator]`, validated; None means "not set here" (the next source decides)."""

    results: str | None = None
    runs: int | None = None
    keys: tuple[str, ...] | None = None
    marker: str | None = None
    cluster: str | None = None
    executor: str | None = None
    source: str | None = None

    def choose(self, name: str, given: Any, profile_value: Any = None, default: Any = None) -> Any:
        """The value of setting `name`: `given` (the command line), else the profile's, else ours, else `default`."""
        for value in (given, profile_value, getattr(self, name)):
            if value is not None:
                return value
        return default


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1)
    if not matches:
        matches = difflib.get_close_matches(word.replace("-", "_"), list(choices), n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _one_of(value: Any, choices: Sequence[str], key: str, source: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"must be a string, one of {', '.join(choices)}", source=source, key_path=f"{SECTION}.{key}")
    if value not in choices:
        raise UserError(
            f"'{value}' is not one of {', '.join(choices)}{_did_you_mean(value, choices)}",
            source=source,
            key_path=f"{SECTION}.{key}",
        )
    return value


def _runs(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"must be a positive integer, not {value!r}", source=source, key_path=f"{SECTION}.runs")
    return value


def _keys(value: Any, source: str) -> tuple[str, ...]:
    """A list of top-level keys, or one comma-separated string (as `--keys` takes them)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(k, str) for k in items):
        raise UserError("must be a list of strings (top-level keys)", source=source, key_path=f"{SECTION}.keys")
    keys = tuple(k.strip() for k in items if k.strip())
    if not keys:
        raise UserError("needs at least one key", source=source, key_path=f"{SECTION}.keys")
    return keys


def _path_text(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError("must be a non-empty string", source=source, key_path=f"{SECTION}.{key}")
    return value.strip()


def _marker(value: Any, source: str) -> str:
    text = _path_text(value, "marker", source)
    if Path(text).is_absolute() or ".." in Path(text).parts:
        raise UserError(
            f"must be a file name inside the save path, not {text!r}", source=source, key_path=f"{SECTION}.marker"
        )
    return text


_VALIDATORS = {
    "results": lambda v, s: _one_of(v, RESULT_CHOICES, "results", s),
    "runs": _runs,
    "keys": _keys,
    "marker": _marker,
    "cluster": lambda v, s: _path_text(v, "cluster", s),
    "executor": lambda v, s: _one_of(v, EXECUTORS, "executor", s),
}
SETTING_NAMES = tuple(_VALIDATORS)


def settings_from_mapping(table: Mapping[str, Any], source: str) -> ProjectSettings:
    """Validate a `[tool.orchestrator]` table; an unknown key is an error with a did-you-mean."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        validate = _VALIDATORS.get(key)
        if validate is None:
            raise UserError(
                f"unknown setting{_did_you_mean(key, SETTING_NAMES)}; known: {', '.join(SETTING_NAMES)}",
                source=source,
                key_path=f"{SECTION}.{key}",
            )
        values[key] = validate(value, source)
    return ProjectSettings(**values, source=source)


def load_settings(root: str | Path = ".") -> ProjectSettings:
    """`[tool.orchestrator]` of `<root>/pyproject.toml`; no file or no section gives empty settings."""
    path = Path(root) / PYPROJECT
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ProjectSettings()
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", source=source) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (byte {e.start})", source=source) from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"invalid TOML: {e}", source=source) from None
    tool = data.get("tool", {})
    table = tool.get("orchestrator") if isinstance(tool, dict) else None
    if table is None:
        return ProjectSettings()
    if not isinstance(table, dict):
        raise UserError("must be a table ([tool.orchestrator])", source=source, key_path=SECTION)
    return settings_from_mapping(table, source)

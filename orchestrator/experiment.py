"""Loading experiment files (JSON or YAML) with errors that point at the file, line and column."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import UserError

YAML_SUFFIXES = (".yaml", ".yml")


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's numbers, as JSON reads them.

    PyYAML follows YAML 1.1, where `1e-5` is the *string* "1e-5" (a learning rate would silently
    become a string in the params and the save path) and `1:30` is the base-60 integer 90 (a
    Slurm time `2:59:59` would become 10799). Here `1e-5` is a float and `1:30` stays a string.
    """


_YamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)

_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class ExperimentFile:
    """An experiment file as loaded: the path as the user gave it, its parsed content and a hash."""

    path: str
    data: dict[str, Any]
    content_hash: str = field(repr=False)


def parse_experiment_text(text: str, source: str) -> dict[str, Any]:
    """Parse JSON or YAML text (chosen by the file suffix) into the top-level dict."""
    if source.lower().endswith(YAML_SUFFIXES):
        data = _parse_yaml(text, source)
    else:
        data = _parse_json(text, source)
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "empty"
        raise UserError(f"the top level must be an object (a mapping of keys), not {kind}", source=source)
    return data


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", source=source) from None


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "syntax error"
        raise UserError(f"invalid YAML{where}: {problem}", source=source) from None
    except yaml.YAMLError as e:
        raise UserError(f"invalid YAML: {e}", source=source) from None


_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_user_text(raw: bytes, source: str) -> str:
    """UTF-8 text of a file the user wrote, a leading BOM dropped (editors on Windows add one).

    The one wording for an undecodable file, whatever its kind: `<file>: not UTF-8 text (byte N,
    line L: 0xXX); save it as UTF-8`, so the user can find the byte.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start + (len(_BOM) if raw.startswith(_BOM) else 0)  # utf-8-sig counts after the BOM
        if raw.startswith(_UTF16_BOMS):
            detail = "it is UTF-16"
        else:
            line = raw.count(b"\n", 0, offset) + 1
            detail = f"byte {offset}, line {line}: 0x{raw[offset]:02x}"
        raise UserError(f"not UTF-8 text ({detail}); save it as UTF-8", source=source) from None


def read_user_file(path: str | Path, what: str) -> tuple[bytes, str]:
    """The bytes and UTF-8 text of a file the user named; every failure is a `UserError` naming it."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} not found", source=source) from None
    except IsADirectoryError:
        raise UserError(f"is a directory, not {'an' if what[0] in 'aeiou' else 'a'} {what}", source=source) from None
    except OSError as e:
        raise UserError(f"cannot read {what}: {e.strerror}", source=source) from None
    return raw, decode_user_text(raw, source)


def read_experiment_file(path: str | Path) -> ExperimentFile:
    """Read and parse one experiment file; every failure is a `UserError` naming the file."""
    raw, text = read_user_file(path, "experiment file")
    data = parse_experiment_text(text, str(path))
    return ExperimentFile(path=str(path), data=data, content_hash=hashlib.sha256(raw).hexdigest())

"""Result paths: `{name}` of an experiment file and interpolation of the `save_path` template."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

# PyExpUtils' `interpolate`: non-greedy `{...}`, each replaced in turn by `str(value)`.
_PLACEHOLDER = re.compile(r"{.*?}")
_SCALARS = (str, int, float, bool, type(None))


def experiment_name(
    path: str | None, experiment_directory: str, root: str | Path = ".", data: Mapping[str, Any] | None = None
) -> str:
    """`{name}`: the experiment file's directory relative to `experiment_directory`.

    `experiments/X/y.json` -> `X`; `experiments/a/b/c.json` -> `a/b`; a file outside the
    experiment directory keeps its directory relative to the project root (`configs/X/y.json`
    -> `configs/X`). Where PyExpUtils crashes or mangles, our rule: a file directly inside the
    experiment directory is named by its stem (`experiments/dqn.json` -> `dqn`), and `..` paths
    are resolved first (`../proj/experiments/X/y.json`, run from `proj`, -> `X`); a file outside
    the project keeps its normalized directory as given.
    With no file, the experiment's own `name` key, else `unnamed` (as PyExpUtils).
    """
    if path is None:
        return str((data or {}).get("name", "unnamed"))
    root_abs = os.path.abspath(root)
    file_abs = os.path.abspath(os.path.join(root_abs, path))
    exp_dir_abs = os.path.abspath(os.path.join(root_abs, os.path.expanduser(experiment_directory or "")))
    if _is_within(file_abs, exp_dir_abs):
        relative_dir = os.path.relpath(os.path.dirname(file_abs), exp_dir_abs)
        if relative_dir == ".":
            return Path(file_abs).stem
        return relative_dir.replace(os.sep, "/")
    if _is_within(file_abs, root_abs):
        relative_dir = os.path.relpath(os.path.dirname(file_abs), root_abs)
        return "." if relative_dir == "." else relative_dir.replace(os.sep, "/")
    return os.path.normpath(os.path.dirname(path)).replace(os.sep, "/")


def pyexputils_name(path: str, experiment_directory: str, cwd: str | Path = ".") -> str | None:
    """`{name}` as PyExpUtils 8.1.2 computes it (`getExperimentName`), or None where it crashes.

    It removes the text `<cwd>/`, `<experiment_directory>/` and `./` wherever it occurs, then
    drops the file name: `experiments/old_experiments/X/y.json` -> `old_X`,
    `experiments/X/experiments/y.json` -> `X`. A file directly in the experiment directory makes
    it raise IndexError (None here). Used to warn where our `{name}` differs.
    """
    text = str(path).replace(os.path.abspath(cwd) + "/", "").replace((experiment_directory or "") + "/", "")
    parts = text.replace("./", "").split("/")
    if parts[0] == "":
        parts[0] = "/"
    kept = [re.sub(r"/+", "/", p).strip("/") for p in parts[:-1] if p != ""]
    if not parts[:-1]:
        return None
    joined = "/".join(p for p in kept if p != "")
    return "/" + joined if parts[0] == "/" else joined


def _is_within(path: str, directory: str) -> bool:
    try:
        return os.path.commonpath([path, directory]) == directory
    except ValueError:
        return False


class SavePathTemplate:
    """A compiled `save_path`: constants substituted once, `{params}` and `{run}` per index."""

    def __init__(self, template: str, constants: Mapping[str, Any], source: str = "config.json") -> None:
        self.template = template
        self.placeholders = [m.group(0) for m in _PLACEHOLDER.finditer(template)]
        available = {**{k: v for k, v in constants.items()}, "params": None, "run": None}
        for placeholder in self.placeholders:
            name = placeholder[1:-1]
            if name not in available:
                names = ", ".join("{" + n + "}" for n in sorted(available))
                raise UserError(
                    f"unknown placeholder {placeholder} in '{template}'; available: {names}",
                    source=source,
                    key_path="save_path",
                )
        self._constants = {k: str(v) for k, v in constants.items()}
        self._format = self._compile()

    def _compile(self) -> str | None:
        """A `str.format` text with fields `params` and `run`, or None when text could collide.

        PyExpUtils substitutes placeholders one after another over the growing string, so a value
        that itself contains `{name}` would be substituted again. The compiled form is used only
        when no constant holds a brace; `render` checks the params string for braces too.
        """
        if any("{" in v or "}" in v for v in self._constants.values()):
            return None
        parts = []
        position = 0
        for match in _PLACEHOLDER.finditer(self.template):
            parts.append(_escape(self.template[position : match.start()]))
            name = match.group(0)[1:-1]
            parts.append("{%s}" % name if name in ("params", "run") else _escape(self._constants[name]))
            position = match.end()
        parts.append(_escape(self.template[position:]))
        return "".join(parts)

    def bind_run(self, run: int) -> Callable[[str], str]:
        """`render` with the run fixed: for the bulk paths, where a run spans many indices."""
        if self._format is not None and self.placeholders.count("{params}") == 1:
            head, tail = self._format.split("{params}")
            head, tail = head.format(run=run), tail.format(run=run)
            exact = self.render

            def fast(params: str) -> str:
                if "{" in params or "}" in params:
                    return exact(params, run)
                return head + params + tail

            return fast
        return lambda params: self.render(params, run)

    def constant_prefix(self) -> str:
        """The text every save path starts with (up to the first `{params}` or `{run}`)."""
        if self._format is None:
            return ""
        cut = min((self._format.find(f) for f in ("{params}", "{run}") if f in self._format), default=None)
        head = self._format if cut is None else self._format[:cut]
        return head.replace("{{", "{").replace("}}", "}")

    def params_directory_base(self) -> str | None:
        """`base` when every save path is `base/<params>/<run>` (the common layout), else None.

        Then one listing of `base` says which permutations have any result at all, and the scan
        renders nothing for the others.
        """
        if self._format is None or not self._format.endswith("/{params}/{run}"):
            return None
        head = self._format[: -len("{params}/{run}")]
        if "{" in head.replace("{{", "").replace("}}", "") or self.placeholders.count("{params}") != 1:
            return None
        return head.replace("{{", "{").replace("}}", "}").rstrip("/")

    def run_leaf_parent(self) -> Callable[[str], str] | None:
        """`params -> parent` when `{run}` is exactly the last path component and nowhere else.

        Then every run of a permutation has the same parent directory, named by the run number,
        and the scan renders one parent per permutation instead of one path per index.
        """
        if self._format is None or not self._format.endswith("/{run}") or self._format.count("{run}") != 1:
            return None
        parent_format = self._format[: -len("/{run}")]
        if parent_format.count("{params}") != 1:
            return None
        head, tail = (part.replace("{{", "{").replace("}}", "}") for part in parent_format.split("{params}"))
        exact = self.render

        def parent(params: str) -> str:
            if "{" in params or "}" in params:
                return os.path.dirname(exact(params, 0))
            return head + params + tail

        return parent

    def render(self, params: str, run: int) -> str:
        if self._format is not None and "{" not in params and "}" not in params:
            return self._format.format(params=params, run=run)
        values = {**self._constants, "params": params, "run": str(run)}
        final = self.template
        for placeholder in self.placeholders:
            final = final.replace(placeholder, values[placeholder[1:-1]])
        return final


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def template_constants(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Names a `save_path` may use besides `{params}` and `{run}`: top-level scalars, then `{name}`."""
    constants = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, _SCALARS)}
    constants["name"] = name
    return constants

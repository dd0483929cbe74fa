"""Cluster profiles: the Slurm resources of a sweep and how one index is run, from a YAML or JSON file.

A profile is validated completely when it is loaded, so a typo fails before anything is submitted:

    account: def-someone
    hours: 3                 # -> --time=2:59:59 (hours(3)); or `time:` with Slurm's own value
    gigs: 4                  # -> --mem-per-cpu=4G (gigs(4)); or `mem_per_cpu:` with Slurm's own value
    gpus: 1                  # -> --gres=gpu:1 ('a100:2' -> --gres=gpu:a100:2)
    sbatch: {qos: normal, constraint: cascade, exclusive: true}
    indices_per_task: 4      # bundling: one array task runs 4 indices ...
    parallel: 2              # ... two at a time
    setup: [module load python/3.11, source .venv/bin/activate]
    command: python src/main.py -e {experiment} -i {index}

`time` and `mem_per_cpu` mean exactly what sbatch's --time and --mem-per-cpu mean: a bare number
of time is minutes (`90` is 1:30:00; `"1:30"` is M:S, 90 seconds), a bare number of memory is
megabytes. The design's formatting has keys of its own, `hours` and `gigs`, refused together with
`time` / `mem_per_cpu` (in 0.1.0 an integer `time` was hours: `time: 90` asked for 89:59:59).

`ClusterProfile()` is the default profile, used when no `--cluster` is given.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import string
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator import slurm_formats
from orchestrator.errors import UserError
from orchestrator.experiment import YAML_SUFFIXES, parse_experiment_text, read_user_file
from orchestrator.slurm_formats import parse_memory, parse_time

PROFILE_SUFFIXES = (*YAML_SUFFIXES, ".json")

COMMAND_PLACEHOLDERS = ("experiment", "index")
DEFAULT_COMMAND = "python src/main.py -e {experiment} -i {index}"

# Set by the orchestrator for every submission (it finds its jobs and logs through them).
OWN_SBATCH_OPTIONS = ("array", "job-name", "output", "error", "comment", "parsable", "wrap")
# They change what sbatch itself does, which the submitter relies on (a job id on stdout, at once).
_SUBMISSION_OPTIONS = {
    "test-only": "it would submit nothing",
    "wait": "sbatch would block until the whole array has finished",
}
# Options with a profile key of their own: the key is validated and used for escalation.
_PROFILE_KEY_OPTIONS = {
    "account": "account",
    "partition": "partition",
    "time": "time",
    "mem-per-cpu": "mem_per_cpu",
    "cpus-per-task": "cpus_per_task",
}
# They exclude --mem-per-cpu in sbatch, and memory escalation scales mem_per_cpu.
_MEMORY_OPTIONS = ("mem", "mem-per-gpu")

_GPUS = re.compile(r"(?:[A-Za-z0-9_.\-]+:)?[1-9][0-9]*")

RIGHT_SIZE_STATISTICS = ("max", "p95")  # usage.STATISTICS

DEFAULT_TIME = "0:59:59"
DEFAULT_MEMORY = "1G"
# A unit-less memory below this many MB is refused: nobody runs in 4 MB, but `mem_per_cpu: 4` meant 4G
# in 0.1.0, and sbatch would take it silently and every task would run out of memory.
_SMALLEST_BARE_MEGABYTES = 64


@cache
def known_sbatch_options() -> frozenset[str]:
    """The long sbatch option names simple-slurm knows (its `arguments.txt`), spelled as sbatch does."""
    text = resources.files("simple_slurm").joinpath("arguments.txt").read_text(encoding="utf-8")
    names = (line.split(",")[0].strip() for line in text.splitlines())
    return frozenset(name.replace("_", "-") for name in names if name)


def _did_you_mean(word: str, choices: Any) -> str:
    candidates = sorted(choices)
    matches = difflib.get_close_matches(word, candidates, n=1)
    if not matches:
        matches = difflib.get_close_matches(word.replace("_", "-"), candidates, n=1)
    if not matches:
        matches = difflib.get_close_matches(word.replace("-", "_"), candidates, n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


@dataclass(frozen=True)
class ClusterProfile:
    """Resources and run settings for one cluster; the defaults suit a small CPU job.

    Construction validates and normalises, so a profile built in code is as safe as one loaded with
    `load_profile`. `hours` and `gigs` are init-only: `hours=3` stores `time='2:59:59'`, `gigs=4` stores
    `mem_per_cpu='4G'`; afterwards `time` and `mem_per_cpu` are always Slurm strings (an integer `time`
    of minutes or `mem_per_cpu` of megabytes becomes its decimal string, which Slurm reads the same way).
    """

    account: str | None = None
    partition: str | None = None
    time: str | int | None = None  # None: hours, else DEFAULT_TIME
    mem_per_cpu: str | int | None = None  # None: gigs, else DEFAULT_MEMORY
    cpus_per_task: int = 1
    gpus: int | str | None = None
    sbatch: Mapping[str, str | bool] = field(default_factory=dict)
    indices_per_task: int = 1
    parallel: int = 1
    throttle: int | None = None
    setup: tuple[str, ...] = ()
    command: str = DEFAULT_COMMAND
    template: str | None = None
    max_array_tasks: int | None = None
    max_submit: int | None = None
    completion_marker: str | None = None
    max_attempts: int = 3
    escalate: bool = False
    time_factor: float = 2.0
    memory_factor: float = 2.0
    allocation: float | None = None  # core-years per year: the cost line shows the share
    confirm_above: float | None = None  # CPU-hours: a bigger submit asks first (or needs --yes)
    right_size: bool = False  # submit with the time and memory that earlier tasks' usage suggests
    right_size_headroom: float = 1.25  # usage.DEFAULT_HEADROOM
    right_size_statistic: str = "max"  # or p95
    source: str | None = field(default=None, compare=False)
    hours: InitVar[int | None] = None
    gigs: InitVar[int | None] = None

    def __post_init__(self, hours: int | None, gigs: int | None) -> None:
        if self.source is not None and not isinstance(self.source, str):
            object.__setattr__(self, "source", str(self.source))
        object.__setattr__(self, "time", self._time(hours))
        object.__setattr__(self, "mem_per_cpu", self._memory(gigs))
        for name, value in self._validated().items():
            object.__setattr__(self, name, value)

    # -- validation --------------------------------------------------------------------------------

    def _error(self, message: str, key_path: str) -> UserError:
        return UserError(message, source=self.source, key_path=key_path)

    def _validated(self) -> dict[str, Any]:
        """Every field checked and in its normal form (the caller stores them)."""
        out: dict[str, Any] = {
            "account": self._optional_word("account"),
            "partition": self._optional_word("partition"),
            "cpus_per_task": self._positive_int("cpus_per_task"),
            "gpus": self._gpus(),
            "indices_per_task": self._positive_int("indices_per_task"),
            "parallel": self._positive_int("parallel"),
            "throttle": self._positive_int("throttle", optional=True),
            "setup": self._setup(),
            "command": self._command(),
            "template": self._optional_word("template", allow_spaces=True),
            "max_array_tasks": self._positive_int("max_array_tasks", optional=True),
            "max_submit": self._positive_int("max_submit", optional=True),
            "completion_marker": self._completion_marker(),
            "max_attempts": self._positive_int("max_attempts"),
            "escalate": self._bool("escalate"),
            "time_factor": self._factor("time_factor"),
            "memory_factor": self._factor("memory_factor"),
            "allocation": self._number("allocation", positive=True),
            "confirm_above": self._number("confirm_above", positive=False),
            "right_size": self._bool("right_size"),
            "right_size_headroom": self._factor("right_size_headroom"),
            "right_size_statistic": self._choice("right_size_statistic", RIGHT_SIZE_STATISTICS),
        }
        if out["parallel"] > out["indices_per_task"]:
            raise self._error(
                f"must not exceed indices_per_task ({out['indices_per_task']}): a task runs only that many indices",
                "parallel",
            )
        out["sbatch"] = self._sbatch(gpus_set=out["gpus"] is not None)
        return out

    def _positive_int(self, name: str, optional: bool = False) -> int | None:
        value = getattr(self, name)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "a positive integer" + (" or null" if optional else "")
            raise self._error(f"must be {expected}, not {_type_name(value)} ({value!r})", name)
        if value < 1:
            raise self._error(f"must be a positive integer, not {value}", name)
        return value

    def _bool(self, name: str) -> bool:
        value = getattr(self, name)
        if not isinstance(value, bool):
            raise self._error(f"must be true or false, not {_type_name(value)} ({value!r})", name)
        return value

    def _factor(self, name: str) -> float:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(f"must be a number, not {_type_name(value)} ({value!r})", name)
        if not value >= 1.0 or value == float("inf"):
            raise self._error(f"must be a finite number of at least 1 (a multiplier), not {value}", name)
        return float(value)

    def _number(self, name: str, positive: bool) -> float | None:
        """An optional finite number, above 0 (`positive`) or at least 0."""
        value = getattr(self, name)
        if value is None:
            return None
        rule = "a positive number" if positive else "a number of at least 0"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(f"must be {rule} or null, not {_type_name(value)} ({value!r})", name)
        if not (value > 0 if positive else value >= 0) or value == float("inf"):
            raise self._error(f"must be {rule}, not {value}", name)
        return float(value)

    def _choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = getattr(self, name)
        if value not in choices:
            hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
            raise self._error(f"must be one of {', '.join(choices)}, not {value!r}{hint}", name)
        return value

    def _optional_word(self, name: str, allow_spaces: bool = False) -> str | None:
        value = getattr(self, name)
        if value is None:
            return None
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str):
            raise self._error(f"must be a string or null, not {_type_name(value)} ({value!r})", name)
        value = value.strip()
        if not value:
            raise self._error("must not be empty (leave the key out instead)", name)
        if not allow_spaces and re.search(r"\s", value):
            raise self._error(f"must not contain whitespace: {value!r}", name)
        if "\n" in value or "\r" in value or "\0" in value:
            raise self._error(f"must be one line: {value!r}", name)
        return value

    def _design_value(self, value: Any, key: str, slurm_key: str) -> int:
        """`hours` / `gigs`: a positive integer, and only without the Slurm key it would set."""
        if getattr(self, slurm_key) is not None:
            raise self._error(f"conflicts with '{slurm_key}' (both set the same limit); keep one of them", key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self._error(f"must be a positive integer, not {_type_name(value)} ({value!r})", key)
        return value

    def _time(self, hours: int | None) -> str:
        """`time` as sbatch reads it (a bare number is minutes), or `hours(n)` for `hours: n`."""
        if hours is not None:
            return slurm_formats.hours(self._design_value(hours, "hours", "time"))
        return self._slurm_text(
            "time",
            DEFAULT_TIME,
            "a Slurm time ('2:59:59', '1-00:00:00', or minutes: 90)",
            "a bare number is minutes, as in Slurm; or write 'hours: N'",
        )

    def _memory(self, gigs: int | None) -> str:
        """`mem_per_cpu` as sbatch reads it (a bare number is megabytes), or `gigs(n)` for `gigs: n`."""
        if gigs is not None:
            return slurm_formats.gigs(self._design_value(gigs, "gigs", "mem_per_cpu"))
        text = self._slurm_text(
            "mem_per_cpu",
            DEFAULT_MEMORY,
            "a Slurm memory size ('4G', '512M', or megabytes: 4096)",
            "a bare number is megabytes, as in Slurm; or write 'gigs: N'",
        )
        if text.isdigit() and int(text) < _SMALLEST_BARE_MEGABYTES:
            raise self._error(
                f"{text} without a unit is {text} megabytes, as in Slurm; write 'gigs: {text}' for {text}G, "
                f"or '{text}M' if you mean megabytes",
                "mem_per_cpu",
            )
        return text

    def _slurm_text(self, key: str, default: str, expected: str, hint: str) -> str:
        """The key's value as Slurm spells it, checked by the matching parser (time or memory)."""
        value = getattr(self, key)
        if value is None:
            return default
        unit, design = ("hours", "hours") if key == "time" else ("gigabytes", "gigs")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self._error(
                f"must be {expected}, not {_type_name(value)} ({value!r}); for whole {unit} write '{design}: N'", key
            )
        text = str(value).strip()
        try:
            parse_time(text) if key == "time" else parse_memory(text, "memory per CPU")
        except UserError as e:
            raise self._error(f"{e} ({hint})", key) from None
        return text

    def _gpus(self) -> int | str | None:
        value = self.gpus
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise self._error(f"must be a positive integer, not {value} (leave the key out for no GPUs)", "gpus")
            return value
        if isinstance(value, str) and _GPUS.fullmatch(value.strip()):
            return value.strip()
        raise self._error(
            f"must be a GPU count (1) or TYPE:COUNT ('a100:2') for --gres=gpu:..., not {value!r}",
            "gpus",
        )

    def _setup(self) -> tuple[str, ...]:
        value = self.setup
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise self._error(f"must be a list of shell lines (or one line), not {_type_name(value)}", "setup")
        for number, line in enumerate(value):
            if not isinstance(line, str):
                raise self._error(
                    f"must be a shell line (a string), not {_type_name(line)} ({line!r})", f"setup[{number}]"
                )
        return tuple(value)

    def _command(self) -> str:
        value = self.command
        if not isinstance(value, str):
            raise self._error(f"must be a string, not {_type_name(value)}", "command")
        if not value.strip():
            raise self._error("must not be empty", "command")
        check_command(value, source=self.source)
        return value

    def _completion_marker(self) -> str | None:
        value = self._optional_word("completion_marker", allow_spaces=True)
        if value is None:
            return None
        parts = Path(value).parts
        if Path(value).is_absolute() or ".." in parts:
            raise self._error(f"must be a file name inside the save path, not {value!r}", "completion_marker")
        return value

    def _sbatch(self, gpus_set: bool) -> dict[str, str | bool]:
        value = self.sbatch
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._error(f"must be a mapping of sbatch option -> value, not {_type_name(value)}", "sbatch")
        known = known_sbatch_options()
        out: dict[str, str | bool] = {}
        for name, option in value.items():
            key_path = f"sbatch.{name}"
            if not isinstance(name, str):
                raise self._error(f"option names are strings, not {_type_name(name)}", key_path)
            if name in OWN_SBATCH_OPTIONS:
                raise self._error("is set by the orchestrator for every submission; remove it", key_path)
            if name in _SUBMISSION_OPTIONS:
                raise self._error(f"is not allowed in a profile: {_SUBMISSION_OPTIONS[name]}", key_path)
            if name in _PROFILE_KEY_OPTIONS:
                raise self._error(f"use the profile key '{_PROFILE_KEY_OPTIONS[name]}' instead", key_path)
            if name in _MEMORY_OPTIONS:
                raise self._error(
                    "use the profile key 'mem_per_cpu' instead (sbatch refuses --mem with --mem-per-cpu, "
                    "and OUT_OF_MEMORY escalation scales mem_per_cpu)",
                    key_path,
                )
            if name == "gres" and gpus_set:
                raise self._error("conflicts with 'gpus' (also --gres); set one of them", key_path)
            if name not in known:
                raise self._error(
                    f"unknown sbatch option{_did_you_mean(name.lstrip('-'), known)}; options are sbatch's "
                    "long names without the leading '--' (e.g. 'qos', 'mail-type')",
                    key_path,
                )
            if isinstance(option, bool):
                out[name] = option
                continue
            if isinstance(option, int):
                option = str(option)
            if not isinstance(option, str):
                raise self._error(f"must be a string, an integer or true/false, not {_type_name(option)}", key_path)
            if "\n" in option or "\r" in option or "\0" in option:
                raise self._error(f"must be one line (an #SBATCH directive is one line): {option!r}", key_path)
            if not option.strip():
                raise self._error("must not be empty (use true for a flag)", key_path)
            out[name] = option.strip()
        return out

    # -- use -------------------------------------------------------------------------------------

    def sbatch_options(self) -> dict[str, str | bool]:
        """Every sbatch option this profile implies, by long name: its own keys first, then `sbatch` sorted.

        True means a flag without a value; options set to false are left out. GPUs are requested as
        `--gres=gpu:N`, which every Slurm version and select plugin understands (`--gpus-per-task` needs
        select/cons_tres), and which is per node, the same as per task for the one-task jobs used here.
        """
        options: dict[str, str | bool] = {}
        if self.account is not None:
            options["account"] = self.account
        if self.partition is not None:
            options["partition"] = self.partition
        options["time"] = self.time
        options["mem-per-cpu"] = self.mem_per_cpu
        options["cpus-per-task"] = str(self.cpus_per_task)
        if self.gpus is not None:
            options["gres"] = f"gpu:{self.gpus}"
        for name in sorted(self.sbatch):
            value = self.sbatch[name]
            if value is not False:
                options[name] = value
        return options

    def with_resources(self, time: str | None = None, mem_per_cpu: str | None = None) -> ClusterProfile:
        """A copy with another time limit and/or memory per CPU (validated like the originals)."""
        changes: dict[str, Any] = {}
        if time is not None:
            changes["time"] = time
        if mem_per_cpu is not None:
            changes["mem_per_cpu"] = mem_per_cpu
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> ClusterProfile:
        """A profile from parsed file content; unknown keys are errors with a did-you-mean."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
        names[names.index("time") + 1 : names.index("time") + 1] = ["hours"]
        names[names.index("mem_per_cpu") + 1 : names.index("mem_per_cpu") + 1] = ["gigs"]
        for key in data:
            if key not in names:
                raise UserError(
                    f"unknown profile key{_did_you_mean(str(key), names)}; known keys: {', '.join(names)}",
                    source=source,
                    key_path=str(key),
                )
        values = dict(data)
        template = values.get("template")
        if isinstance(template, str) and template.strip() and source is not None:
            # relative to the profile file, so a profile works from any directory
            values["template"] = str(Path(source).parent / Path(template.strip()).expanduser())
        return cls(**values, source=source)


@lru_cache(maxsize=64)
def check_command(command: str, source: str | None = None) -> None:
    """The command's only placeholders are {experiment} and {index}, unquoted (they are substituted quoted)."""
    available = ", ".join("{%s}" % p for p in COMMAND_PLACEHOLDERS)
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(command)
            if name is not None
        ]
    except ValueError as e:
        raise UserError(
            f"invalid placeholder syntax in {command!r}: {e}; write {{{{ and }}}} for literal braces",
            source=source,
            key_path="command",
        ) from None
    for name, spec, conversion in fields:
        if name not in COMMAND_PLACEHOLDERS:
            shown = "{%s}" % name if name else "{}"
            raise UserError(
                f"unknown placeholder {shown} in {command!r}; available: {available} "
                "(write {{ and }} for literal braces, e.g. ${{HOME}}, or use $HOME)",
                source=source,
                key_path="command",
            )
        if spec or conversion:
            raise UserError(
                f"placeholder {{{name}}} takes no format spec or conversion in {command!r}",
                source=source,
                key_path="command",
            )
    for name in COMMAND_PLACEHOLDERS:
        for quote in "'\"":
            if f"{quote}{{{name}}}{quote}" in command:
                raise UserError(
                    f"do not quote {{{name}}} in {command!r}: it is replaced by a quoted shell variable",
                    source=source,
                    key_path="command",
                )


def load_profile(path: str | Path) -> ClusterProfile:
    """Read, parse and validate a profile file; every problem is a `UserError` naming the file."""
    source = str(path)
    if not source.lower().endswith(PROFILE_SUFFIXES):
        raise UserError("a cluster profile must be a .yaml, .yml or .json file", source=source)
    _, text = read_user_file(path, "cluster profile")
    # the experiment files' loaders: line/column errors, YAML 1.2 numbers
    profile = ClusterProfile.from_dict(parse_experiment_text(text, source), source=source)
    if profile.template is not None and not Path(profile.template).is_file():
        raise UserError(f"template file not found: {profile.template}", source=source, key_path="template")
    return profile

"""The two kinds of failure the CLI distinguishes (see the exit codes in the CLI contract)."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class: an expected failure that the CLI reports in one line, without a traceback."""

    exit_code = 1


class UserError(OrchestratorError, ValueError):
    """Bad input or usage (exit 2): the message names the file, key path or line."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, key_path: str | None = None) -> None:
        self.source = source
        self.key_path = key_path
        prefix = ""
        if source:
            prefix += f"{source}: "
        if key_path:
            prefix += f"{key_path}: "
        super().__init__(prefix + message)


class EnvironmentFailure(OrchestratorError):
    """The environment failed (exit 1): Slurm refused or was unreachable, a write failed."""

    exit_code = 1


class SlurmError(EnvironmentFailure):
    """A Slurm command failed, timed out or is missing."""

    def __init__(self, message: str, *, command: str | None = None, stderr: str = "") -> None:
        self.command = command
        self.stderr = stderr
        super().__init__(message)

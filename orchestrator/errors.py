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


class SlurmUnavailable(SlurmError):
    """Slurm did not answer in time or could not be reached.

    `outcome_unknown` is True for commands that change state (sbatch, scancel): the change MAY have
    happened, so the caller must look (e.g. for its submission tag in squeue) before trying again.
    """

    def __init__(
        self, message: str, *, command: str | None = None, stderr: str = "", outcome_unknown: bool = False
    ) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message, command=command, stderr=stderr)


class SlurmRejected(SlurmError):
    """sbatch answered and refused the job (bad account, partition, array spec...): no job exists."""


class SubmitLimitReached(SlurmRejected):
    """sbatch refused because a per-user submit limit is full: no job exists, the rest waits for later.

    A subclass of SlurmRejected (nothing was created either way); catch it first to treat it as "try later".
    """

    def __init__(self, message: str, *, command: str | None = None, stderr: str = "", limit: str = "") -> None:
        self.limit = limit
        super().__init__(message, command=command, stderr=stderr)


class ChecksFailed(UserError):
    """Preflight found reasons the tasks would fail: each is one line; nothing was submitted (exit 2)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{len(problems)} problem(s) found before submitting; nothing was submitted"
            f" (--no-check skips these checks):\n{lines}"
        )

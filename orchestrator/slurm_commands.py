"""The only module that runs Slurm's commands (sbatch, squeue, sacct, scontrol, sacctmgr, scancel).

Each method makes one batched call (sacct: one per chunk of ids), never one per index: every call
loads the controller. Read commands are retried on transient failures with jittered exponential
backoff; sbatch and scancel never are, because a retry after an unanswered sbatch can duplicate a
job (the caller looks for its submission tag in squeue instead). Output is parsed by the pure
functions in `slurm_formats`.
"""

from __future__ import annotations

import collections
import ctypes
import getpass
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from random import uniform
from time import sleep

from orchestrator.errors import SlurmError, SlurmRejected, SlurmUnavailable, SubmitLimitReached, UserError
from orchestrator.slurm_formats import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    USAGE_FIELDS,
    AccountingRecord,
    PartitionLimits,
    QueuedTask,
    UsageRecord,
    array_limits,
    parse_assoc_qos,
    parse_max_submit,
    parse_partitions,
    parse_sacct,
    parse_sacct_usage,
    parse_sbatch_parsable,
    parse_scontrol_config,
    parse_squeue,
)

# stderr that means "Slurm did not answer this time", not "Slurm said no".
_TRANSIENT = re.compile(
    r"Socket timed out|Unable to contact slurm controller|Connection refused|Resource temporarily unavailable"
    r"|slurm_load_jobs error|Zero Bytes were transmitted or received|Communication connection failure",
    re.IGNORECASE,
)
# ... except these, which are answers (`squeue -j 99999` says `slurm_load_jobs error: Invalid job id specified`).
_PERMANENT = re.compile(r"Invalid job id|Invalid user|Invalid partition", re.IGNORECASE)

# The reason sbatch prints before "Job violates accounting/QOS policy" when a submit limit is full:
# AssocMaxSubmitJobLimit, AssocGrpSubmitJobsLimit, QOSMaxSubmitJobPerUserLimit, QOSGrpSubmitJobsLimit, ...
# The policy message itself is the same for every limit (also wall time, size), so it alone says nothing.
_SUBMIT_LIMIT = re.compile(r"\b(?:Assoc|QOS)\w*Submit\w*Limit\b")

# sacct answers, but there is no accounting to ask.
_NO_ACCOUNTING = re.compile(
    r"accounting storage is disabled|Problem talking to the database|slurmdbd|persistent connection",
    re.IGNORECASE,
)

# Job ids per sacct call. A call costs about 0.1 s against slurmdbd whatever the number of ids
# (2,000 ids: 0.08 s on the test cluster), so fewer, larger calls; 1,000 ids are ~10 kB of argv.
SACCT_CHUNK = 1000
# Submit in the ISO form parse_sacct reads (a user's SLURM_TIME_FORMAT could print `relative` or custom times)
_SACCT_ENV = {"SLURM_TIME_FORMAT": "standard"}

_MAY_EXIST = "the job may or may not have been created: look for its tag in squeue before submitting again"
_JOB_ID = re.compile(r"\d+(?:_\d+|\+\d+)?")
_MAX_BACKOFF = 30.0  # seconds: the cap on one jittered wait between attempts
_STDERR_SHOWN = 300  # characters of stderr quoted in a one-line message


# Linux: prctl(PR_SET_PDEATHSIG) asks the kernel to signal a child when its parent dies.
_PR_SET_PDEATHSIG = 1
try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that SIGKILLs the child (sbatch, scancel) when this process dies.

    Without it, a submit killed while sbatch is in flight leaves an orphaned sbatch that may create
    the job after the next submit has looked for the tag and found nothing: a duplicate. The
    library is loaded before fork, so the child only makes one foreign call before exec.
    """
    if _LIBC is None:
        return None
    libc = _LIBC

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _summary(stderr: str) -> str:
    """stderr as one line: `sbatch: error: ` prefixes dropped, lines joined with '; '."""
    lines = []
    for raw in stderr.splitlines():
        line = re.sub(r"^\s*\w+: (?:error|fatal): ", "", raw).strip()
        if line:
            lines.append(line)
    text = "; ".join(lines) or "(no message)"
    return text if len(text) <= _STDERR_SHOWN else text[:_STDERR_SHOWN] + "..."


def _is_transient(stderr: str) -> bool:
    return bool(_TRANSIENT.search(stderr)) and not _PERMANENT.search(stderr)


def _check_job_ids(job_ids: Sequence[str]) -> list[str]:
    """Ids deduplicated in order; anything that is not `123`, `123_4` or `123+0` is refused before it reaches argv."""
    out: dict[str, None] = {}  # ordered, and each membership test O(1): 10,000 ids took 3.5 s as a list
    for job_id in job_ids:
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise UserError(f"invalid Slurm job id {job_id!r}: expected 123, 123_4 or 123+0")
        out[job_id] = None
    return list(out)


class SlurmCommands:
    """Runs Slurm's commands with a timeout, retries reads, and turns failures into SlurmError subclasses.

    `env` replaces the environment of the commands (default: this process's, read at each call).
    `calls` counts the command runs (retries included) per command name.
    """

    def __init__(
        self,
        timeout: float = 60.0,
        attempts: int = 3,
        backoff: float = 1.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout <= 0 or attempts < 1 or backoff < 0:
            raise ValueError("SlurmCommands needs timeout > 0, attempts >= 1 and backoff >= 0")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.env = dict(env) if env is not None else None
        self.calls: collections.Counter[str] = collections.Counter()
        self.accounting_problem: str | None = None
        self._config: dict[str, str] | None = None

    @classmethod
    def from_environment(cls) -> SlurmCommands:
        """Settings from `ORCHESTRATOR_SLURM_TIMEOUT` (seconds per command, default 60) and
        `ORCHESTRATOR_SLURM_ATTEMPTS` (tries for read commands, default 3)."""
        try:
            timeout = float(os.environ.get("ORCHESTRATOR_SLURM_TIMEOUT", "60"))
            attempts = int(os.environ.get("ORCHESTRATOR_SLURM_ATTEMPTS", "3"))
        except ValueError as e:
            raise UserError(f"ORCHESTRATOR_SLURM_TIMEOUT / ORCHESTRATOR_SLURM_ATTEMPTS: {e}") from None
        if timeout <= 0 or attempts < 1:
            raise UserError("ORCHESTRATOR_SLURM_TIMEOUT must be > 0 and ORCHESTRATOR_SLURM_ATTEMPTS >= 1")
        return cls(timeout=timeout, attempts=attempts)

    # -- running -------------------------------------------------------------------------------

    def _environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        if extra:
            env.update(extra)
        return env

    def _run(
        self,
        argv: Sequence[str],
        *,
        retry: bool,
        extra_env: Mapping[str, str] | None = None,
        unknown_effect: str = "",
    ) -> subprocess.CompletedProcess[str]:
        """Run argv; return its result unless it timed out or failed transiently on every attempt.

        A missing binary is a SlurmError; no answer is SlurmUnavailable, with outcome_unknown for
        commands that are not retried (they change state; `unknown_effect` says what may have happened).
        A permanent failure (non-zero exit with any other stderr) is returned for the caller to interpret.
        """
        name = argv[0]
        env = self._environment(extra_env)
        tries = self.attempts if retry else 1
        for attempt in range(tries):
            self.calls[name] += 1
            result, stderr, message = self._run_once(argv, env, retry)
            if result is not None:
                return result
            if attempt + 1 < tries:
                sleep(uniform(0, min(_MAX_BACKOFF, self.backoff * 2**attempt)))
        if tries > 1:
            message += f" ({tries} attempts)"
        if not retry:
            message += f"; {unknown_effect or 'it may or may not have taken effect'}"
        raise SlurmUnavailable(message, command=shlex.join(argv), stderr=stderr, outcome_unknown=not retry)

    def _run_once(
        self, argv: Sequence[str], env: Mapping[str, str], retry: bool
    ) -> tuple[subprocess.CompletedProcess[str] | None, str, str]:
        """(the result, or None with stderr and why when Slurm did not answer)."""
        name, command = argv[0], shlex.join(argv)
        try:
            result = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
                stdin=subprocess.DEVNULL,
                check=False,
                # a command that changes state must not outlive us: see _die_with_parent
                preexec_fn=None if retry else _die_with_parent(os.getpid()),
            )
        except FileNotFoundError:
            raise SlurmError(f"{name} not found on PATH", command=command) from None
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return None, stderr, f"{name} did not answer within {self.timeout:g} s"
        except OSError as exc:
            raise SlurmError(f"{name} could not be run: {exc}", command=command) from None
        if result.returncode == 0 or not _is_transient(result.stderr):
            return result, result.stderr, ""
        return None, result.stderr, f"{name} could not reach Slurm: {_summary(result.stderr)}"

    def _read(self, argv: Sequence[str], extra_env: Mapping[str, str] | None = None) -> str:
        """stdout of a read command, retried; any failure is a SlurmError carrying stderr."""
        result = self._run(argv, retry=True, extra_env=extra_env)
        if result.returncode != 0:
            raise SlurmError(
                f"{argv[0]} failed (exit {result.returncode}): {_summary(result.stderr)}",
                command=shlex.join(argv),
                stderr=result.stderr,
            )
        return result.stdout

    def available(self) -> bool:
        """Whether sbatch is on PATH (the `--executor auto` test)."""
        return shutil.which("sbatch", path=self._environment().get("PATH")) is not None

    # -- submitting and cancelling ---------------------------------------------------------------

    def sbatch(self, script: Path) -> str:
        """Submit `script`; the job id. Never retried: on SlurmUnavailable the job MAY exist."""
        argv = ["sbatch", "--parsable", str(script)]
        command = shlex.join(argv)
        result = self._run(argv, retry=False, unknown_effect=_MAY_EXIST)
        stderr = result.stderr
        if result.returncode == 0:
            try:
                return parse_sbatch_parsable(result.stdout)
            except SlurmError as exc:
                raise SlurmUnavailable(
                    f"{exc}; {_MAY_EXIST}", command=command, stderr=stderr, outcome_unknown=True
                ) from None
        summary = _summary(stderr)
        limit = _SUBMIT_LIMIT.search(stderr)
        if limit:
            raise SubmitLimitReached(
                f"sbatch refused the job: submit limit {limit.group(0)} reached ({summary})",
                command=command,
                stderr=stderr,
                limit=limit.group(0),
            )
        if result.returncode > 0 and stderr.strip():
            raise SlurmRejected(f"sbatch refused the job: {summary}", command=command, stderr=stderr)
        # killed by a signal, or failed without a word: nothing says the job was not created
        raise SlurmUnavailable(
            f"sbatch failed (exit {result.returncode}): {summary}; {_MAY_EXIST}",
            command=command,
            stderr=stderr,
            outcome_unknown=True,
        )

    def scancel(self, job_ids: Sequence[str]) -> None:
        """Cancel jobs or tasks (`123`, `123_4`) in one call. Slurm ignores ids it no longer knows."""
        ids = _check_job_ids(job_ids)
        if not ids:
            return
        argv = ["scancel", *ids]
        result = self._run(argv, retry=False, unknown_effect="the jobs may or may not have been cancelled")
        if result.returncode != 0:
            raise SlurmError(
                f"scancel failed (exit {result.returncode}): {_summary(result.stderr)}",
                command=shlex.join(argv),
                stderr=result.stderr,
            )

    # -- reading ---------------------------------------------------------------------------------

    def squeue_me(self) -> list[QueuedTask]:
        """Every live task of this user, one per array task, in one squeue call."""
        # SLURM_BITSTR_LEN=0: array ranges are never cut at 64 characters
        text = self._read(["squeue", "--me", "-r", "-h", "-o", SQUEUE_FORMAT], extra_env={"SLURM_BITSTR_LEN": "0"})
        return parse_squeue(text)

    def sacct(self, job_ids: Sequence[str], chunk_size: int = SACCT_CHUNK) -> list[AccountingRecord] | None:
        """Accounting records of these jobs; None when there is no accounting (see `accounting_problem`).

        Pass array job ids (`123`): sacct does not find a task by its own id (`123_4`) while the
        task is still pending inside its array.
        """
        texts = self._sacct_texts(job_ids, ["-X"], SACCT_FIELDS, chunk_size)
        return None if texts is None else list(dict.fromkeys(r for text in texts for r in parse_sacct(text)))

    def _sacct_texts(
        self, job_ids: Sequence[str], options: list[str], fields: str, chunk_size: int
    ) -> list[str] | None:
        """sacct's output for these jobs, one call per chunk of ids; None when there is no accounting."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        ids = _check_job_ids(job_ids)
        self.accounting_problem = None
        if not ids:
            return []
        if shutil.which("sacct", path=self._environment().get("PATH")) is None:
            self.accounting_problem = "sacct not found on PATH"
            return None
        texts = []
        for start in range(0, len(ids), chunk_size):
            argv = ["sacct", *options, "-P", "-n", "-o", fields, "-j", ",".join(ids[start : start + chunk_size])]
            try:
                result = self._run(argv, retry=True, extra_env=_SACCT_ENV)
            except SlurmUnavailable as exc:
                self.accounting_problem = str(exc)
                return None
            if _NO_ACCOUNTING.search(result.stderr) and (result.returncode != 0 or not result.stdout.strip()):
                self.accounting_problem = f"sacct: {_summary(result.stderr)}"
                return None
            if result.returncode != 0:
                raise SlurmError(
                    f"sacct failed (exit {result.returncode}): {_summary(result.stderr)}",
                    command=shlex.join(argv),
                    stderr=result.stderr,
                )
            texts.append(result.stdout)
        return texts

    def config(self) -> dict[str, str]:
        """`scontrol show config` as a dict, read once per instance."""
        if self._config is None:
            self._config = parse_scontrol_config(self._read(["scontrol", "show", "config"]))
        return self._config

    def array_limits(self) -> tuple[int, int | None]:
        """(MaxArraySize, max_array_tasks or None): task ids must stay below MaxArraySize."""
        return array_limits(self.config())

    def partition_limits(self, partition: str | None) -> PartitionLimits | None:
        """The named partition's limits (the default partition for None); None when unknown."""
        try:
            partitions = parse_partitions(self._read(["scontrol", "show", "partition", "-o"]))
        except SlurmError:
            return None
        for p in partitions:
            if (partition is None and p.default) or p.name == partition:
                return p
        return None

    def jobs_named(self, names: Sequence[str], since: str) -> dict[str, str]:
        """Job name -> array job id for jobs with these names since `since` (ISO time), via sacct.

        After a crash between sbatch and the ledger write, the job is found by its unique tag.
        Returns {} when there is no accounting (see `accounting_problem`).
        """
        if not names:
            return {}
        self.accounting_problem = None
        if shutil.which("sacct", path=self._environment().get("PATH")) is None:
            self.accounting_problem = "sacct not found on PATH"
            return {}
        argv = ["sacct", "-X", "-P", "-n", "-o", SACCT_FIELDS, "-S", since, "--name", ",".join(names)]
        try:
            result = self._run(argv, retry=True, extra_env=_SACCT_ENV)
        except SlurmUnavailable as exc:
            self.accounting_problem = str(exc)
            return {}
        if result.returncode != 0:
            self.accounting_problem = f"sacct: {_summary(result.stderr)}"
            return {}
        return {r.name: r.array_job_id for r in parse_sacct(result.stdout) if r.name in names}

    def max_submit_jobs(self, user: str | None = None) -> int | None:
        """The user's tightest submit limit (association MaxSubmit, default QOS MaxSubmitPU); None if none or unknown.

        Never fails: without sacctmgr or slurmdbd the limit is unknown, and sbatch will say so itself
        (SubmitLimitReached) if it is reached.
        """
        if user is None:
            try:
                user = getpass.getuser()
            except (KeyError, OSError):
                return None
        try:
            assoc = self._read(
                ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=MaxSubmit,QOS,DefaultQOS"]
            )
            limits = [parse_max_submit(assoc)]
            qos_names = parse_assoc_qos(assoc)
            if qos_names:
                qos = self._read(["sacctmgr", "-n", "-P", "show", "qos", ",".join(qos_names), "format=MaxSubmitPU"])
                limits.append(parse_max_submit(qos))
        except SlurmError as exc:
            self.accounting_problem = str(exc)
            return None
        known = [n for n in limits if n is not None]
        return min(known) if known else None

    def sacct_usage(self, job_ids: Sequence[str], chunk_size: int = SACCT_CHUNK) -> list[UsageRecord] | None:
        """What each task of these jobs used (`USAGE_FIELDS`, one line per task and per step); None without accounting.

        No -X: MaxRSS is only on the steps. One call per chunk of ids, like `sacct`.
        """
        texts = self._sacct_texts(job_ids, [], USAGE_FIELDS, chunk_size)
        return None if texts is None else list(dict.fromkeys(r for text in texts for r in parse_sacct_usage(text)))

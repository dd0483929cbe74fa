"""The `orchestrator` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from orchestrator.config import load_config
from orchestrator.control import cancel, last_log
from orchestrator.errors import EnvironmentFailure, OrchestratorError
from orchestrator.executors import LocalExecutor, SlurmExecutor
from orchestrator.ledger import Ledger, submission_lock
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.profile import ClusterProfile, load_profile
from orchestrator.result_store import check_results, plan_warnings
from orchestrator.settings import RESULT_CHOICES, ProjectSettings, load_settings
from orchestrator.slurm_commands import SlurmCommands
from orchestrator.slurm_formats import format_ranges
from orchestrator.state import gather
from orchestrator.submit import SubmitFailed, SubmitOptions, SubmitReport, Submitter
from orchestrator.sweep import DEFAULT_SWEEP_KEYS


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type for integers >= `minimum`, with a one-line error naming the rule."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {words} integer, not '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a {words} integer, not {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive")
_non_negative_int = _int_at_least(0, "non-negative")


def _keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise argparse.ArgumentTypeError("needs at least one key")
    return keys


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="experiment files (JSON or YAML)")
    parser.add_argument("--runs", type=_positive_int, default=None, help="runs per permutation (default 1)")
    _add_keys_and_results(parser)


def _add_keys_and_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=_keys,
        default=None,
        help="comma-separated top-level keys to sweep (default metaParameters)",
    )
    parser.add_argument(
        "--results", choices=RESULT_CHOICES, default=None, help="how finished results are recognised (default auto)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="orchestrator", description="Plan, submit and track parameter sweeps on Slurm.")
    from orchestrator import __version__

    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = commands.add_parser("plan", help="show the indices of a sweep, their params and result paths")
    _add_common(plan)
    plan.add_argument("--jsonl", action="store_true", help="one JSON object per index on stdout")
    plan.set_defaults(handler=cmd_plan)

    submit = commands.add_parser("submit", help="submit the missing and failed indices as job arrays")
    _add_common(submit)
    _add_cluster(submit)
    submit.add_argument(
        "--executor", choices=("auto", "slurm", "local"), default=None, help="auto: Slurm where sbatch exists"
    )
    submit.add_argument("--dry-run", action="store_true", help="show the scripts and plan; submit and record nothing")
    submit.add_argument("--json", action="store_true", help="print one JSON object")
    submit.add_argument(
        "--escalate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="more time after TIMEOUT, more memory after OUT_OF_MEMORY (default: the profile's 'escalate')",
    )
    submit.add_argument("--retry-given-up", action="store_true", help="also resubmit indices past max_attempts")
    submit.add_argument("--max-parallel", type=_positive_int, help="local executor: tasks at once (default: cores)")
    submit.set_defaults(handler=cmd_submit)

    status = commands.add_parser("status", help="each index's state: done, running, pending, failed, missing")
    _add_common(status)
    _add_cluster(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=cmd_status)

    cancel = commands.add_parser("cancel", help="cancel our running and pending tasks of these experiments")
    _add_common(cancel)
    _add_cluster(cancel)
    cancel.add_argument("--json", action="store_true", help="print one JSON object")
    cancel.set_defaults(handler=cmd_cancel)

    logs = commands.add_parser("logs", help="the log of an index's last attempt")
    logs.add_argument("experiment", metavar="EXPERIMENT")
    logs.add_argument("index", type=_non_negative_int, metavar="INDEX")
    logs.add_argument("--runs", type=_positive_int, default=None, help=argparse.SUPPRESS)
    _add_keys_and_results(logs)
    logs.add_argument("--slurm-output", action="store_true", help="also print Slurm's own output for the task")
    logs.set_defaults(handler=cmd_logs)
    return parser


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="PROFILE", help="cluster profile (YAML or JSON)")
    parser.add_argument(
        "--marker", metavar="FILE", help="count an index done only when this file exists inside its save path"
    )


def _plans(args: argparse.Namespace, experiments: Sequence[str] | None = None) -> list[ExperimentPlan]:
    """The plans, with --runs, --keys and --results as given, else as pyproject.toml's [tool.orchestrator] says."""
    config, settings = load_config("."), _settings(args)
    runs = settings.choose("runs", args.runs, default=1)
    keys = settings.choose("keys", args.keys, default=DEFAULT_SWEEP_KEYS)
    results = settings.choose("results", args.results, default="auto")
    return [plan_experiment(path, config, runs, keys, results) for path in experiments or args.experiments]


def _settings(args: argparse.Namespace) -> ProjectSettings:
    if not hasattr(args, "settings"):
        args.settings = load_settings(".")
    return args.settings


def _warn(plans: Sequence[ExperimentPlan], refusals: bool) -> None:
    """plan and submit: a {name} that differs from PyExpUtils', and (plan) what submit would refuse."""
    for plan in plans:
        for warning in plan_warnings(plan, plan.results):
            print(f"orchestrator: warning: {warning}", file=sys.stderr)
        if refusals:
            try:
                check_results(plan, plan.results)
            except OrchestratorError as e:
                print(f"orchestrator: warning: {e}", file=sys.stderr)


# -- commands ----------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    plans = _plans(args)
    _warn(plans, refusals=True)
    out = sys.stdout
    if args.jsonl:
        for plan in plans:
            _write_in_chunks(out, plan.jsonl_lines())
        return 0
    for number, plan in enumerate(plans):
        if number:
            out.write("\n")
        out.write(
            f"{plan.path}\n"
            f"  permutations: {plan.num_permutations}   runs: {plan.runs}   total indices: {plan.total}"
            f" (0-{plan.total - 1})\n"
        )
        axes = [a for a in plan.sweep.axes if len(a.values) > 1]
        if axes:
            out.write("  swept: " + ", ".join(f"{a.name} ({len(a.values)})" for a in axes) + "\n")
        for index in _sample_indices(plan.total):
            info = plan.info(index)
            out.write(f"  [{index}] run {info.run}  {json.dumps(info.params)}\n      -> {info.save_path}\n")
    return 0


def _write_in_chunks(out: TextIO, lines: Iterator[str], chunk: int = 4096) -> None:
    """Stream lines, a few thousand per write: flat memory, few system calls."""
    while True:
        block = list(itertools.islice(lines, chunk))
        if not block:
            return
        block.append("")
        out.write("\n".join(block))
        out.flush()


def _profile(args: argparse.Namespace) -> ClusterProfile:
    settings = _settings(args)
    cluster = settings.choose("cluster", args.cluster)
    profile = load_profile(cluster) if cluster else ClusterProfile()
    marker = settings.choose("marker", args.marker, profile.completion_marker)
    if marker != profile.completion_marker:
        profile = dataclasses.replace(profile, completion_marker=marker)
    return profile


def _slurm_if_available() -> SlurmCommands | None:
    commands = SlurmCommands.from_environment()
    return commands if commands.available() else None


def cmd_submit(args: argparse.Namespace) -> int:
    plans = _plans(args)
    _warn(plans, refusals=False)
    for plan in plans:
        check_results(plan, plan.results)  # a shared save path without a database: refused before anything
    profile = _profile(args)
    ledger = Ledger(Path("."))
    executor_name = _settings(args).choose("executor", args.executor, default="auto")
    if executor_name == "auto":
        executor_name = "slurm" if shutil.which("sbatch") else "local"
    if executor_name == "slurm":
        commands = SlurmCommands.from_environment()
        if not commands.available():
            raise EnvironmentFailure("--executor slurm: sbatch is not on PATH; nothing was submitted")
        executor: SlurmExecutor | LocalExecutor = SlurmExecutor(commands)
    else:
        executor = LocalExecutor(max_parallel=args.max_parallel)
    options = SubmitOptions(dry_run=args.dry_run, escalate=args.escalate, retry_given_up=args.retry_given_up)
    # bad input (template, Slurm settings, a path the script cannot hold) fails here, before the lock
    submitter = Submitter(ledger, profile, executor, options)
    submitter.check(plans)
    # a dry run writes nothing, not even the lock
    with contextlib.nullcontext() if args.dry_run else submission_lock(ledger):
        try:
            report = submitter.submit(plans)
        except SubmitFailed as e:
            _print_submit(e.report, args.json, sys.stdout, failed=True)
            raise
    _print_submit(report, args.json, sys.stdout)
    return 0


def _print_submit(report: SubmitReport, as_json: bool, out: TextIO, failed: bool = False) -> None:
    if as_json:
        out.write(json.dumps(report.to_json()) + "\n")
        return
    for s in report.submissions:
        if report.dry_run:
            out.write(f"--- {s.experiment}: would submit {s.tasks} task(s), indices {format_ranges(s.indices)}\n")
            out.write(s.script_text)
            continue
        where = f"job {s.job_id}" if s.job_id else "ran locally"
        out.write(
            f"{s.experiment}: {where} ({s.tag}): {s.tasks} task(s), indices {format_ranges(s.indices)}"
            f"  [time {s.resources.time}, mem/cpu {s.resources.mem_per_cpu}]\n"
        )
        if s.failed_indices:
            out.write(f"  failed: {format_ranges(s.failed_indices)} (see: orchestrator logs {s.experiment} INDEX)\n")
    for o in report.outcomes:
        if o.not_yet_submitted:
            out.write(
                f"{o.experiment}: not yet submitted (submit limit): {format_ranges(o.not_yet_submitted)}; "
                "run submit again when jobs have finished\n"
            )
        if o.given_up:
            out.write(
                f"{o.experiment}: given up after max attempts: {format_ranges(o.given_up)}"
                " (--retry-given-up to resend)\n"
            )
    for note in report.notes:
        out.write(f"note: {note}\n")
    if not report.submissions and not failed:  # a failed submit says on stderr what was not submitted
        skipped = ", ".join(
            f"{o.experiment}: {o.skipped['done']} done, {o.skipped['running']} running, {o.skipped['pending']} pending"
            for o in report.outcomes
        )
        out.write(f"Nothing to submit ({skipped}).\n")


def cmd_status(args: argparse.Namespace) -> int:
    plans = _plans(args)
    profile = _profile(args)
    ledger = Ledger(Path("."))
    statuses = gather(plans, ledger, _slurm_if_available(), profile.completion_marker)
    if args.json:
        sys.stdout.write(json.dumps({"experiments": [s.to_json() for s in statuses]}) + "\n")
        return 0
    out = sys.stdout
    for status in statuses:
        counts = status.counts()
        total = status.plan.total
        width = 30
        filled = width * counts["done"] // max(total, 1)
        out.write(
            f"{status.plan.path}  [{'#' * filled}{'.' * (width - filled)}] {counts['done']}/{total} done"
            f"  running {counts['running']}  pending {counts['pending']}"
            f"  failed {counts['failed']}  missing {counts['missing']}"
            + (f"  unknown {counts['unknown']}" if counts["unknown"] else "")
            + "\n"
        )
        for reason, indices in sorted(status.failed_by_reason().items()):
            out.write(f"  failed, {reason}: {format_ranges(indices)}\n")
        if status.edited_since:
            out.write(
                f"  note: the experiment file changed since {len(status.edited_since)} submission(s); "
                "their indices are matched by params\n"
            )
        for note in dict.fromkeys(status.notes):
            out.write(f"  note: {note}\n")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    plans = _plans(args)
    profile = _profile(args)
    ledger = Ledger(Path("."))
    # not the lock around it all: a local run holds it until it ends (cancel takes it for Slurm's part)
    result = cancel(
        plans, ledger, _slurm_if_available(), profile.completion_marker, lock=lambda: submission_lock(ledger)
    )
    if args.json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return 0
    for experiment, indices in result.cancelled.items():
        if indices:
            out = f"{experiment}: cancelled {len(indices)} index(es): {format_ranges(indices)}"
        else:
            out = f"{experiment}: nothing running or pending"
        sys.stdout.write(out + "\n")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    (plan,) = _plans(args, [args.experiment])
    ledger = Ledger(Path("."))
    found = last_log(plan, args.index, ledger, _slurm_if_available())
    sys.stdout.write(found.header + "\n")
    if found.text is not None:
        sys.stdout.write(found.text if found.text.endswith("\n") or not found.text else found.text + "\n")
    if args.slurm_output and found.slurm_output is not None:
        sys.stdout.write(f"--- Slurm output ({found.slurm_output_path})\n{found.slurm_output}")
    return 0


def _sample_indices(total: int, count: int = 3) -> list[int]:
    if total <= count + 1:
        return list(range(total))
    return [*range(count - 1), total - 1]


# -- entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except OrchestratorError as e:
        print(f"orchestrator: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `plan --jsonl | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()

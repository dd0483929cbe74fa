"""The `orchestrator` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from orchestrator import breakdown, cost, display
from orchestrator.config import load_config
from orchestrator.control import cancel, last_log
from orchestrator.errors import ChecksFailed, EnvironmentFailure, OrchestratorError
from orchestrator.executors import Executor, LocalExecutor, SlurmExecutor
from orchestrator.ledger import Ledger
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.preflight import preflight
from orchestrator.profile import ClusterProfile, load_profile
from orchestrator.project import find_project_root, resolve_experiment
from orchestrator.remembered import PlanRequest, planned_as, submitted_experiments
from orchestrator.result_store import FindDone, check_results, finder, plan_warnings
from orchestrator.settings import RESULT_CHOICES, ProjectSettings, load_settings
from orchestrator.slurm import Slurm, connect
from orchestrator.slurm_formats import format_ranges
from orchestrator.state import gather
from orchestrator.submit import SubmitFailed, SubmitInterrupted, SubmitOptions, Submitter
from orchestrator.submit_lock import SubmitLock
from orchestrator.sweep import DEFAULT_SWEEP_KEYS
from orchestrator.usage import Sizing, collect, format_usage, usage_json

EXIT_TASKS_FAILED = 3  # a local run in which some indices failed


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


def _add_plan_options(parser: argparse.ArgumentParser, remembered: bool) -> None:
    said = " (default: as last submitted, else 1)" if remembered else " (default 1)"
    parser.add_argument("--runs", type=_positive_int, default=None, help="runs per permutation" + said)
    parser.add_argument(
        "--keys",
        type=_keys,
        default=None,
        help="comma-separated top-level keys to sweep (default: "
        + ("as last submitted, else " if remembered else "")
        + "metaParameters)",
    )
    parser.add_argument(
        "--results", choices=RESULT_CHOICES, default=None, help="how finished results are recognised (default auto)"
    )


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    help: str,
    handler: Callable[[argparse.Namespace], int],
    experiments: str = "+",
) -> argparse.ArgumentParser:
    """A subcommand on experiments that knows the cluster profile and prints JSON on request."""
    parser = commands.add_parser(name, help=help)
    parser.add_argument("experiments", nargs=experiments, metavar="EXPERIMENT", help="experiment files (JSON or YAML)")
    _add_plan_options(parser, remembered=name != "submit")
    parser.add_argument("--cluster", metavar="PROFILE", help="cluster profile (YAML or JSON)")
    parser.add_argument(
        "--marker", metavar="FILE", help="count an index done only when this file exists inside its save path"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=handler)
    return parser


def _profile_switch(parser: argparse.ArgumentParser, flag: str, what: str, key: str) -> None:
    """`--flag/--no-flag`, overriding the profile's `key` (not given: as the profile says)."""
    parser.add_argument(
        flag, action=argparse.BooleanOptionalAction, default=None, help=f"{what} (default: the profile's '{key}')"
    )


def _add_submit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor", choices=("auto", "slurm", "local"), default=None, help="auto: Slurm where sbatch exists"
    )
    parser.add_argument("--dry-run", action="store_true", help="show the scripts and plan; submit and record nothing")
    _profile_switch(parser, "--escalate", "more time after TIMEOUT, more memory after OUT_OF_MEMORY", "escalate")
    parser.add_argument("--retry-given-up", action="store_true", help="also resubmit indices past max_attempts")
    parser.add_argument("--max-parallel", type=_positive_int, help="local executor: tasks at once (default: cores)")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip the checks before submitting (the command's program, save paths, template, log directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="orchestrator", description="Plan, submit and track parameter sweeps on Slurm.")
    from orchestrator import __version__

    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = commands.add_parser("plan", help="show the indices of a sweep, their params and result paths")
    plan.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="experiment files (JSON or YAML)")
    _add_plan_options(plan, remembered=False)
    plan.add_argument("--jsonl", action="store_true", help="one JSON object per index on stdout")
    plan.set_defaults(handler=cmd_plan)

    submit = _command(commands, "submit", "submit the missing and failed indices as job arrays", cmd_submit)
    _add_submit_options(submit)
    status = _command(
        commands,
        "status",
        "each index's state (no EXPERIMENT: every experiment this project has submitted)",
        cmd_status,
        experiments="*",
    )
    _add_usage_options(commands, submit, status)
    _command(commands, "cancel", "cancel our running and pending tasks of these experiments", cmd_cancel)

    logs = commands.add_parser("logs", help="the log of an index's last attempt")
    logs.add_argument("experiments", nargs=1, metavar="EXPERIMENT")
    logs.add_argument("index", type=_non_negative_int, metavar="INDEX")
    _add_plan_options(logs, remembered=True)
    logs.add_argument("--slurm-output", action="store_true", help="also print Slurm's own output for the task")
    logs.set_defaults(handler=cmd_logs)

    completion = commands.add_parser(
        "completion", help='print the shell completion script: eval "$(orchestrator completion bash)" in ~/.bashrc'
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    completion.set_defaults(handler=cmd_completion)
    return parser


def _add_usage_options(
    commands: argparse._SubParsersAction, submit: argparse.ArgumentParser, status: argparse.ArgumentParser
) -> None:
    """What the cost and usage of a sweep add: `submit --yes/--right-size`, `status --by`, `usage`."""
    submit.add_argument("--yes", action="store_true", help="submit above the profile's confirm_above without asking")
    _profile_switch(submit, "--right-size", "time and memory from earlier tasks' usage", "right_size")
    status.add_argument(
        "--by", action="extend", type=_keys, default=[], metavar="AXIS", help="states per value of a swept parameter"
    )
    usage = _command(commands, "usage", "what finished tasks used against what they asked for", cmd_usage)
    usage.add_argument("--plot", metavar="FILE.png", help="draw requested vs used time and memory (needs matplotlib)")


# -- shared steps ------------------------------------------------------------------------------


def _enter_project(args: argparse.Namespace) -> Path:
    """Find the project root (as git finds `.git`) and run from it; paths the user typed are taken
    relative to where they were typed, then carried relative to the root."""
    cwd = Path.cwd()
    root = find_project_root(cwd)
    if getattr(args, "experiments", None):
        args.experiments = [resolve_experiment(e, cwd, root) for e in args.experiments]
    for name in ("cluster", "plot"):
        value = getattr(args, name, None)
        if value and not os.path.isabs(value):
            setattr(args, name, os.path.relpath(os.path.join(cwd, value), root))
    os.chdir(root)
    return root


def _requests(args: argparse.Namespace, ledger: Ledger, remember: bool) -> list[PlanRequest]:
    """How to plan each experiment named: as given (or as the project's settings fix it), else
    (`remember`) as last submitted, else the defaults; what was remembered is said on stderr."""
    settings = _settings(args)
    runs, keys = settings.choose("runs", args.runs), settings.choose("keys", args.keys)
    requests = []
    for experiment in args.experiments:
        if remember:
            request = planned_as(ledger, experiment, runs, keys)
        else:
            request = PlanRequest(experiment, runs or 1, tuple(keys or DEFAULT_SWEEP_KEYS))
        if request.note():
            print(f"orchestrator: {request.note()}", file=sys.stderr)
        requests.append(request)
    return requests


def _settings(args: argparse.Namespace) -> ProjectSettings:
    """pyproject.toml's [tool.orchestrator] at the project root, read once per command."""
    if not hasattr(args, "settings"):
        args.settings = load_settings(".")
    return args.settings


def _plans(requests: Iterable[PlanRequest], args: argparse.Namespace) -> list[ExperimentPlan]:
    config = load_config(".")
    results = _settings(args).choose("results", args.results, default="auto")
    return [plan_experiment(r.experiment, config, r.runs, r.keys, results) for r in requests]


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


def _profile(args: argparse.Namespace) -> ClusterProfile:
    settings = _settings(args)
    cluster = settings.choose("cluster", getattr(args, "cluster", None))
    profile = load_profile(cluster) if cluster else ClusterProfile()
    marker = settings.choose("marker", getattr(args, "marker", None), profile.completion_marker)
    if marker != profile.completion_marker:
        profile = dataclasses.replace(profile, completion_marker=marker)
    return profile


def _find_done(ledger: Ledger, profile: ClusterProfile) -> FindDone:
    """The result store's finder; on a terminal, a scan that takes over a second says how far it is."""
    progress = display.ScanProgress(sys.stderr) if sys.stderr.isatty() else None
    return finder(profile.completion_marker, str(ledger.root), progress)


def _executor(name: str | None, slurm: Slurm | None, max_parallel: int | None) -> Executor:
    if name in (None, "auto"):
        name = "slurm" if slurm is not None else "local"
    if name == "local":
        return LocalExecutor(max_parallel=max_parallel)
    if slurm is None:
        raise EnvironmentFailure("--executor slurm: sbatch is not on PATH; nothing was submitted")
    return SlurmExecutor(slurm)


def _check(
    plans: list[ExperimentPlan], profile: ClusterProfile, ledger: Ledger, executor: Executor, dry_run: bool
) -> None:
    """Before anything is sent: would the tasks find their program, save paths, template and logs?"""
    problems = preflight(plans, profile, ledger.root, search_path=executor.search_path(), probe_writes=not dry_run)
    if problems:
        raise ChecksFailed([str(p) for p in problems])


def _lock(ledger: Ledger) -> SubmitLock:
    def waiting(holder: str) -> None:
        print(f"orchestrator: waiting for another submit to finish ({holder})", file=sys.stderr, flush=True)

    return SubmitLock(ledger.root, on_wait=waiting)


def _print(lines: Iterable[str], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for line in lines:
        out.write(line + "\n")


# -- commands ----------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    plans = _plans(_requests(args, Ledger(Path(".")), remember=False), args)
    _warn(plans, refusals=True)
    if args.jsonl:
        for plan in plans:
            _write_in_chunks(sys.stdout, plan.jsonl_lines())
        return 0
    for number, plan in enumerate(plans):
        _print([""] if number else [])
        _print(display.plan_lines(plan))
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


def cmd_submit(args: argparse.Namespace) -> int:
    ledger = Ledger(Path("."))
    plans = _plans(_requests(args, ledger, remember=False), args)
    _warn(plans, refusals=False)
    for plan in plans:
        check_results(plan, plan.results)  # a shared save path without a database: refused before anything
    profile = _profile(args)
    slurm = connect()
    executor = _executor(_settings(args).choose("executor", args.executor), slurm, args.max_parallel)
    options = SubmitOptions(dry_run=args.dry_run, escalate=args.escalate, retry_given_up=args.retry_given_up)
    options.yes, options.right_size = args.yes, args.right_size
    confirm = cost.ask if cost.interactive() else None
    announce = None if args.json else lambda summary: _print([display.cost_line(summary)])
    # bad input (template, a path the script cannot hold) fails here, before the lock
    submitter = Submitter(ledger, profile, executor, slurm, _find_done(ledger, profile), options, confirm, announce)
    submitter.check(plans)
    if not args.no_check:
        problems = preflight(
            plans, profile, ledger.root, search_path=executor.search_path(), probe_writes=not args.dry_run
        )
        if problems:
            raise ChecksFailed([str(p) for p in problems])
    # a dry run writes nothing, not even the lock
    with contextlib.nullcontext() if args.dry_run else _lock(ledger):
        try:
            report = submitter.submit(plans)
        except SubmitFailed as e:
            _print([json.dumps(e.report.to_json())] if args.json else display.submit_lines(e.report, failed=True))
            raise
        except SubmitInterrupted as e:
            _print(display.interrupted_summary(e.report, e.left, ["orchestrator", *sys.argv[1:]]), sys.stderr)
            raise
    _print([json.dumps(report.to_json())] if args.json else display.submit_lines(report))
    failed = any(s.failed_indices for s in report.submissions)
    return EXIT_TASKS_FAILED if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    ledger = Ledger(Path("."))
    if args.experiments:
        requests = _requests(args, ledger, remember=True)
    else:
        requests = submitted_experiments(ledger)
        if not requests:
            _print(["No experiment of this project has been submitted yet (the ledger is empty)."])
            return 0
    plans = _plans(requests, args)
    profile = _profile(args)
    axes = [breakdown.resolve_axes(plan.sweep, args.by, plan.path) for plan in plans]  # before Slurm is asked
    statuses = gather(plans, ledger, connect(), _find_done(ledger, profile), profile.max_attempts)
    by = [breakdown.by_parameter(status, positions) for status, positions in zip(statuses, axes)]
    if args.json:
        _print([json.dumps({"experiments": [{**s.to_json(), **b.to_json()} for s, b in zip(statuses, by)]})])
        return 0
    for status, by_value in zip(statuses, by):
        _print(display.status_lines(status) if args.experiments else [display.status_line(status)])
        _print(display.by_parameter_lines(by_value) if args.experiments or args.by else [])
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    ledger = Ledger(Path("."))
    plans = _plans(_requests(args, ledger, remember=True), args)
    profile, slurm = _profile(args), connect()
    usages = collect(plans, ledger, slurm, Sizing(profile.right_size_headroom, profile.right_size_statistic))
    if args.plot:
        from orchestrator.plot import plot_experiments

        statuses = gather(plans, ledger, slurm, _find_done(ledger, profile), profile.max_attempts)
        plot_experiments(usages, statuses, args.plot)
    if args.json:
        _print([json.dumps({**usage_json(usages), "plot": args.plot})])
        return 0
    for number, usage in enumerate(usages):
        _print([""] if number else [])
        _print(format_usage(usage))
    _print([f"plot: {args.plot}"] if args.plot else [])
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    ledger = Ledger(Path("."))
    plans = _plans(_requests(args, ledger, remember=True), args)
    find_done = _find_done(ledger, _profile(args))
    # not the lock around it all: a local run holds it until it ends (cancel takes it for Slurm's part)
    result = cancel(plans, ledger, connect(), find_done, lock=lambda: _lock(ledger))
    if args.json:
        _print([json.dumps(result.to_json())])
        return 0
    for experiment, indices in result.cancelled.items():
        done = (
            f"cancelled {len(indices)} index(es): {format_ranges(indices)}" if indices else "nothing running or pending"
        )
        _print([f"{experiment}: {done}"])
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    ledger = Ledger(Path("."))
    (plan,) = _plans(_requests(args, ledger, remember=True), args)
    profile = _profile(args)
    found = last_log(plan, args.index, ledger, connect(), _find_done(ledger, profile), profile.max_attempts)
    sys.stdout.write(found.header + "\n")
    if found.text is not None:
        sys.stdout.write(found.text if found.text.endswith("\n") or not found.text else found.text + "\n")
    if args.slurm_output and found.slurm_output is not None:
        sys.stdout.write(f"--- Slurm output ({found.slurm_output_path})\n{found.slurm_output}")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from orchestrator.completion import completion_script

    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0


# -- entry point -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        if handler is not cmd_completion:
            _enter_project(args)
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

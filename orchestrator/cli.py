"""The `orchestrator` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn, TextIO

from orchestrator.config import load_config
from orchestrator.errors import OrchestratorError
from orchestrator.planner import ExperimentPlan, plan_experiment
from orchestrator.sweep import DEFAULT_SWEEP_KEYS


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def _keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise argparse.ArgumentTypeError("needs at least one key")
    return keys


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="experiment files (JSON or YAML)")
    parser.add_argument("--runs", type=_positive_int, default=1, help="runs per permutation (default 1)")
    parser.add_argument(
        "--keys",
        type=_keys,
        default=DEFAULT_SWEEP_KEYS,
        help="comma-separated top-level keys to sweep (default metaParameters)",
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
    return parser


def _plans(args: argparse.Namespace) -> list[ExperimentPlan]:
    config = load_config(".")
    return [plan_experiment(path, config, args.runs, args.keys) for path in args.experiments]


# -- commands ----------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    plans = _plans(args)
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

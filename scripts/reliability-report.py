#!/usr/bin/env python3
"""Turn the reliability suite's case log into docs/RELIABILITY.md.

    rm -f .reliability/cases.jsonl
    pytest -m reliability
    python scripts/reliability-report.py

The reliability tests (tests/test_reliability_*.py, marked `reliability`) append one JSON line per
case (tests/reliability.py) to $RELIABILITY_LOG, default .reliability/cases.jsonl; a case that ran
several times is shown with its latest result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = ROOT / ".reliability" / "cases.jsonl"
DEFAULT_OUTPUT = ROOT / "docs" / "RELIABILITY.md"
CATEGORY_ORDER = [
    "Kill during submit",
    "Slurm faults",
    "Concurrency",
    "Damaged state",
    "Bad input: experiment file",
    "Bad input: config.json",
    "Bad input: command line",
    "Bad input: environment",
    "Bad input: cluster profile",
    "Bad input: template",
    "Shell safety",
]
RESULT_TEXT = {
    "passed": "pass",
    "failed": "**FAIL**",
    "error": "**ERROR**",
    "xfail": "known bug (xfail)",
    "xpass": "**XPASS** (bug fixed? remove the xfail)",
    "skipped": "skipped",
}
REGENERATE = "rm -f .reliability/cases.jsonl && pytest -m reliability; python scripts/reliability-report.py"


def read_cases(path: Path) -> list[dict]:
    latest: dict[tuple[str, str, str], dict] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError:
            print(f"{path}:{number}: not JSON, skipped", file=sys.stderr)
            continue
        key = (case.get("nodeid", ""), case.get("category", ""), case.get("fault", ""))
        latest.pop(key, None)  # re-insert: a rerun keeps the latest result at its latest position
        latest[key] = case
    return list(latest.values())


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def category_rank(category: str) -> tuple[int, str]:
    return (CATEGORY_ORDER.index(category), "") if category in CATEGORY_ORDER else (len(CATEGORY_ORDER), category)


def render(cases: list[dict]) -> str:
    ordered = sorted(enumerate(cases), key=lambda nc: (category_rank(nc[1].get("category", "")), nc[0]))
    counts = Counter(c.get("result", "?") for c in cases)
    runs = sorted(c.get("time", "") for c in cases if c.get("time"))
    out = [
        "# Reliability: faults and bad inputs the test suite tries",
        "",
        "Generated from a test run by `scripts/reliability-report.py`; do not edit by hand. To regenerate:",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
        "The Slurm cases run against the real test cluster (`scripts/slurm-test-cluster.sh up`); each",
        'fault is followed by a recovery `submit`, and "exactly once" is counted independently of the',
        "orchestrator: the submission tags from `.orchestrator/runs/*/tasks.txt` and the ledger, the",
        "tasks from `squeue --me -r` and `sacct --name=<tags>`, cancelled tasks excluded.",
        "A row marked *known bug* is a test marked `xfail(strict=True)`: the behaviour is wrong today",
        "and the test will fail loudly once it is fixed (then remove the mark).",
        "",
        f"Cases: {len(cases)}"
        + "".join(f", {RESULT_TEXT.get(k, k)}: {n}" for k, n in sorted(counts.items()))
        + (f". Recorded {runs[0]} to {runs[-1]}." if runs else "."),
        "",
        "| Category | Fault or bad input | Expected outcome | Observed outcome | Result |",
        "|---|---|---|---|---|",
    ]
    for _, c in ordered:
        out.append(
            "| "
            + " | ".join(
                cell(x)
                for x in (
                    c.get("category", ""),
                    c.get("fault", ""),
                    c.get("expected", ""),
                    c.get("observed", ""),
                    RESULT_TEXT.get(c.get("result", ""), c.get("result", "")),
                )
            )
            + " |"
        )
    bugs: dict[str, list[str]] = {}
    for c in cases:
        if c.get("result") == "xfail" and c.get("bug"):
            bugs.setdefault(c["bug"], []).append(c.get("fault", ""))
    if bugs:
        out += ["", "## Known bugs (tests marked xfail)", ""]
        for reason, faults in bugs.items():
            out.append(f"- {cell(reason)} (cases: {'; '.join(cell(f) for f in dict.fromkeys(faults))})")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="docs/RELIABILITY.md from the reliability suite's case log")
    parser.add_argument(
        "log", nargs="?", type=Path, default=Path(os.environ.get("RELIABILITY_LOG", DEFAULT_LOG)), help="JSONL case log"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default docs/RELIABILITY.md")
    args = parser.parse_args(argv)
    try:
        cases = read_cases(args.log)
    except FileNotFoundError:
        print(f"reliability-report: error: {args.log}: not found; run the reliability tests first", file=sys.stderr)
        return 2
    if not cases:
        print(f"reliability-report: error: {args.log}: no cases recorded", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(cases), encoding="utf-8")
    print(f"{args.output}: {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())

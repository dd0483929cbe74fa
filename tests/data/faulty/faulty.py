"""A deliberately unreliable entry script for status tests: it does what its `behave` param says.

    python faulty.py -e experiments/faulty/sweep.json -i 3

It reads its parameters by index through `orchestrator.load_experiment` (run from the project
root, as the rendered job script does). `behave` is one of the words below, optionally followed by
a dot and anything (`ok.2`), so that several indices can behave alike and still have distinct
save paths:

- `ok`     writes its save path (the directory, `result.json`, then the marker file `DONE`), exits 0;
- `exit3`  prints `FAULTY-EXIT3-MARKER index=<i>` and exits 3 without writing anything;
- `sleep`  sleeps 600 s (outlives any short `--time`: Slurm ends it as TIMEOUT);
- `slow`   sleeps 30 s, then behaves like `ok` (long enough to be seen running or pending);
- `oom`    touches `FAULTY_OOM_MB` (default 2048) MB of memory and holds it for 60 s: only an
           OUT_OF_MEMORY on clusters that enforce memory (cgroups, or OverMemoryKill).

Besides orchestrator it uses only the standard library, so it runs with any project's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import orchestrator

MARKER = "DONE"
EXIT3_MARKER = "FAULTY-EXIT3-MARKER"


def write_result(save_path: Path, index: int, params: object) -> None:
    save_path.mkdir(parents=True, exist_ok=True)
    (save_path / "result.json").write_text(json.dumps({"index": index, "params": params}))
    (save_path / MARKER).write_text("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="an entry script that fails on purpose")
    parser.add_argument("-e", "--experiment", required=True)
    parser.add_argument("-i", "--index", required=True, type=int)
    args = parser.parse_args(argv)

    exp = orchestrator.load_experiment(args.experiment)
    params = exp.params(args.index)
    behave = str(params["behave"]).split(".", 1)[0]
    save_path = Path(exp.save_path(args.index))
    print(f"faulty: index {args.index} behave {params['behave']} -> {save_path}", flush=True)

    if behave == "ok":
        write_result(save_path, args.index, params)
        return 0
    if behave == "exit3":
        print(f"{EXIT3_MARKER} index={args.index}", flush=True)
        return 3
    if behave == "sleep":
        time.sleep(600)
        return 0
    if behave == "slow":
        time.sleep(30)
        write_result(save_path, args.index, params)
        return 0
    if behave == "oom":
        megabytes = int(os.environ.get("FAULTY_OOM_MB", "2048"))
        block = bytearray(megabytes * 1024 * 1024)
        for offset in range(0, len(block), 4096):  # touch every page: resident, not just reserved
            block[offset] = 1
        time.sleep(60)
        return 0
    print(f"faulty: unknown behave {params['behave']!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

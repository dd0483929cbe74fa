"""Entry script for usage measurements: hold 50 x `size` MB for 5 x `size` seconds, then write the result.

    python hog.py -e experiments/hog/sweep.json -i 3

It writes `truth.json` in its save path: its own peak RSS (getrusage, KB), wall time and CPU time,
so that tests compare sacct's figures with the truth. With a true `fail` param it then exits 1.
Besides orchestrator it uses only the standard library.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import orchestrator


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-e", "--experiment", required=True)
    parser.add_argument("-i", "--index", required=True, type=int)
    args = parser.parse_args()
    start = time.time()
    exp = orchestrator.load_experiment(args.experiment)
    params = exp.params(args.index)
    mb, seconds = 50 * params["size"], 5 * params["size"]
    block = b"\x01" * (mb * 1024 * 1024)  # written, so every page is resident
    time.sleep(seconds)
    own = resource.getrusage(resource.RUSAGE_SELF)
    out = Path(exp.save_path(args.index))
    out.mkdir(parents=True, exist_ok=True)
    truth = {
        "mb": mb,
        "seconds": seconds,
        "peak_rss_kb": own.ru_maxrss,
        "cpu_s": own.ru_utime + own.ru_stime,
        "wall_s": time.time() - start,
        "held": len(block),
    }
    (out / "truth.json").write_text(json.dumps(truth))
    return 1 if params.get("fail") else 0


if __name__ == "__main__":
    sys.exit(main())

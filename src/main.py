"""Example entry script: run one index of an experiment and write its results at its save path.

    python src/main.py -e experiments/example/linreg.json -i 7

It follows the PyExpUtils convention (`-e`, `-i`) and reads its parameters by index through
`orchestrator.load_experiment`, which maps index -> (params, run, save path) exactly as PyExpUtils.
The task: fit y = 3x - 1 from noisy samples with SGD or Adam, in pure Python (a second or less).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from pathlib import Path

import orchestrator

MARKER = "DONE"  # written last, so a run killed mid-write is never counted as finished


def train(optimizer: str, lr: float, batch_size: int, steps: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    w, b = 0.0, 0.0
    m = [0.0, 0.0]
    v = [0.0, 0.0]
    losses = []
    for step in range(1, steps + 1):
        xs = [rng.uniform(-1, 1) for _ in range(batch_size)]
        ys = [3 * x - 1 + rng.gauss(0, 0.1) for x in xs]
        errors = [w * x + b - y for x, y in zip(xs, ys)]
        grad = [2 * sum(e * x for e, x in zip(errors, xs)) / batch_size, 2 * sum(errors) / batch_size]
        if optimizer == "adam":
            for k in range(2):
                m[k] = 0.9 * m[k] + 0.1 * grad[k]
                v[k] = 0.999 * v[k] + 0.001 * grad[k] ** 2
            m_hat = [mk / (1 - 0.9**step) for mk in m]
            v_hat = [vk / (1 - 0.999**step) for vk in v]
            w -= lr * m_hat[0] / (math.sqrt(v_hat[0]) + 1e-8)
            b -= lr * m_hat[1] / (math.sqrt(v_hat[1]) + 1e-8)
        elif optimizer == "sgd":
            w -= lr * grad[0]
            b -= lr * grad[1]
        else:
            raise SystemExit(f"unknown optimizer {optimizer!r}")
        losses.append(sum(e * e for e in errors) / batch_size)
    return losses


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _replace_dir(staging: Path, out: Path) -> None:
    """A rerun over an existing result: swap the old directory out, the new one in."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(staging, out)
    for child in old.iterdir():
        child.unlink()
    old.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-e", "--experiment", required=True)
    parser.add_argument("-i", "--index", required=True, type=int)
    args = parser.parse_args(argv)

    exp = orchestrator.load_experiment(args.experiment)
    params = exp.params(args.index)
    run = exp.run(args.index)
    out = Path(exp.save_path(args.index))
    print(f"index {args.index}: run {run}, params {json.dumps(params)} -> {out}", flush=True)

    losses = train(params["optimizer"], params["lr"], params["batch_size"], exp.permutation(args.index)["steps"], run)
    # Build the results beside the save path and rename into place: the save path then exists
    # only when it is complete, which is what `orchestrator status` checks by default.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    write_atomically(staging / "results.json", json.dumps({"params": params, "run": run, "losses": losses}))
    write_atomically(staging / MARKER, "")
    staging.chmod(0o755)
    if out.exists():
        _replace_dir(staging, out)
    else:
        os.replace(staging, out)
    print(f"final loss {losses[-1]:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

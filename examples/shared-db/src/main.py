"""Example entry script for a shared save path: every index appends to one results.db.

    python src/main.py -e experiments/shared/bandit.json -i 7

The database is laid out as PyExpUtils 8's `saveCollector` lays it out, written with nothing but
`sqlite3`: table `metadata` (version `v2`), table `hyperparameters` (one column per flattened
parameter, sorted, plus `config_id`) and table `results` (`config_id`, `seed`, `frame`, metrics).
Like PyExpUtils, it finds a configuration's `config_id` by its parameter values, writing the values
into the SQL as text, so the stored values are exactly the ones PyExpUtils would store.
The task: an epsilon-greedy agent on a ten-armed bandit, in pure Python (well under a second).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import sys
from typing import Any

import orchestrator


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """PyExpUtils' flatKeys + get: nested keys joined by '.', list elements as '[i]'."""
    if isinstance(value, dict):
        return [leaf for key, sub in value.items() for leaf in flatten(f"{prefix}.{key}" if prefix else key, sub)]
    if isinstance(value, list):
        return [leaf for i, sub in enumerate(value) for leaf in flatten(f"{prefix}.[{i}]", sub)]
    return [(prefix, value)]


def quote(name: str) -> str:
    return f'"{name}"'


def sql(value: Any) -> str:
    """A value as PyExpUtils writes it into SQL: a string double-quoted, anything else as str()."""
    return f'"{value}"' if isinstance(value, str) else str(value)


def bandit(alpha: float, epsilon: float, initial: float, steps: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    means = [rng.gauss(0, 1) for _ in range(10)]
    estimates = [initial] * 10
    rewards = []
    for _ in range(steps):
        if rng.random() < epsilon:
            arm = rng.randrange(10)
        else:
            arm = max(range(10), key=estimates.__getitem__)
        reward = rng.gauss(means[arm], 1)
        estimates[arm] += alpha * (reward - estimates[arm])
        rewards.append(reward)
    return rewards


def config_id(con: sqlite3.Connection, header: list[str], values: list[Any]) -> int:
    """The configuration's id, found by its values; a new one is added (as PyExpUtils' get_cid)."""
    where = " AND ".join(f"{quote(k)}={sql(v)}" for k, v in zip(header, values)) or "1"
    row = con.execute(f"SELECT config_id FROM hyperparameters WHERE {where}").fetchone()
    if row is not None:
        return row[0]
    text = ",".join(map(str, values)).encode()
    new = int.from_bytes(hashlib.blake2b(text, digest_size=7).digest(), "big")
    columns = ", ".join(map(quote, [*header, "config_id"]))
    literals = ", ".join([*map(sql, values), str(new)])
    con.execute(f"INSERT INTO hyperparameters({columns}) VALUES({literals})")
    return new


def save(database: str, params: dict[str, Any], seed: int, metrics: dict[str, list[float]]) -> None:
    header_values = sorted(flatten("", params))
    header, values = [k for k, _ in header_values], [v for _, v in header_values]
    names = ["config_id", "seed", "frame", *metrics]
    con = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")  # one writer at a time: find-or-add the config_id, then append
        con.execute("CREATE TABLE IF NOT EXISTS metadata(version)")
        if con.execute("SELECT version FROM metadata").fetchone() is None:
            con.execute("INSERT INTO metadata(version) VALUES('v2')")
        columns = ", ".join(map(quote, [*header, "config_id"]))
        con.execute(f"CREATE TABLE IF NOT EXISTS hyperparameters({columns})")
        con.execute(f"CREATE TABLE IF NOT EXISTS results({', '.join(map(quote, names))})")
        cid = config_id(con, header, values)
        frames = len(next(iter(metrics.values())))
        rows = [(cid, seed, frame, *(m[frame] for m in metrics.values())) for frame in range(frames)]
        con.executemany(f"INSERT INTO results VALUES({', '.join('?' * len(names))})", rows)
        con.execute("COMMIT")
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-e", "--experiment", required=True)
    parser.add_argument("-i", "--index", required=True, type=int)
    args = parser.parse_args(argv)

    exp = orchestrator.load_experiment(args.experiment)
    params, run = exp.params(args.index), exp.run(args.index)
    rewards = bandit(params["alpha"], params["epsilon"], params["initial_value"], exp.permutation(0)["steps"], run)
    window = 30
    averages = [sum(rewards[k : k + window]) / window for k in range(0, len(rewards), window)]

    out = exp.save_path(args.index)  # shared by every index: results/<name>/<agent>
    os.makedirs(out, exist_ok=True)
    save(os.path.join(out, "results.db"), params, run, {"reward": averages})
    print(f"index {args.index}: run {run}, params {params}: mean reward {sum(rewards) / len(rewards):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

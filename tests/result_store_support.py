"""Shared helpers for the result store tests: projects, databases in both layouts, a lock holder."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import orchestrator

from orchestrator.config import ProjectConfig
from orchestrator.experiment import ExperimentFile
from orchestrator.planner import ExperimentPlan
from orchestrator.result_store import flat_keys, get_path

EXPERIMENT = "experiments/ex/DQN.json"


def make_project(root: Path, data: dict[str, Any], save_path: str, experiment: str = EXPERIMENT) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"save_path": save_path}))
    (root / experiment).parent.mkdir(parents=True, exist_ok=True)
    (root / experiment).write_text(json.dumps(data))
    return root


def plan_of(
    root: Path,
    data: dict[str, Any],
    runs: int = 1,
    save_path: str = "results/shared",
    results: str = "auto",
    experiment: str = EXPERIMENT,
) -> ExperimentPlan:
    """A plan over `data` in project `root` (no file needed: the store reads only the database)."""
    file = ExperimentFile(path=experiment, data=data, content_hash="test")
    return ExperimentPlan(file, ProjectConfig(root=root, save_path=save_path), runs, results=results)


def sql(value: Any) -> str:
    """How PyExpUtils writes a value into SQL text (`str(maybe_quote(value))`)."""
    return f'"{value}"' if isinstance(value, str) else str(value)


def header_of(plan: ExperimentPlan) -> list[str]:
    return sorted(flat_keys(plan.permutation(0)["metaParameters"]))


def values_of(plan: ExperimentPlan, index: int, header: Sequence[str]) -> list[Any]:
    return [get_path(plan.permutation(index)["metaParameters"], k) for k in header]


def write_pyexputils(database: Path, plan: ExperimentPlan, indices: Sequence[int], frames: int = 2) -> None:
    """`indices` saved as PyExpUtils' saveCollector saves them (tables, SQL text, one row per frame)."""
    header = header_of(plan)
    database.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(database, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS metadata(version)")
        if con.execute("SELECT version FROM metadata").fetchone() is None:
            con.execute("INSERT INTO metadata(version) VALUES('v2')")
        columns = ", ".join(f'"{k}"' for k in [*header, "config_id"])
        con.execute(f"CREATE TABLE IF NOT EXISTS hyperparameters({columns})")
        con.execute('CREATE TABLE IF NOT EXISTS results("config_id", "seed", "frame", "return")')
        for index in indices:
            values = values_of(plan, index, header)
            cid = _config_id(con, header, values)
            rows = [(cid, plan.run(index), frame, float(frame)) for frame in range(frames)]
            con.executemany("INSERT INTO results VALUES(?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    finally:
        con.close()


def _config_id(con: sqlite3.Connection, header: Sequence[str], values: Sequence[Any]) -> int:
    where = " AND ".join(f'"{k}"={sql(v)}' for k, v in zip(header, values))
    found = con.execute(f"SELECT config_id FROM hyperparameters{' WHERE ' + where if where else ''}").fetchone()
    if found is not None:
        return found[0]
    cid = int.from_bytes(hashlib.blake2b(",".join(map(str, values)).encode(), digest_size=7).digest(), "big")
    columns = ", ".join(f'"{k}"' for k in [*header, "config_id"])
    con.execute(f"INSERT INTO hyperparameters({columns}) VALUES({', '.join([*map(sql, values), str(cid)])})")
    return cid


def attach_metadata(database: Path, index: int, metadata: dict[str, Any]) -> None:
    """ml-instrumentation's `attach_metadata` (its package is not installable here): one `_metadata_` row.

    As its `metadata.py`: the table gets one column per key (added when missing), `id` is the
    index, values are bound as parameters (so booleans become 0/1, None becomes NULL).
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    row = {**metadata, "id": index}
    con = sqlite3.connect(database)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        if "_metadata_" not in tables:
            con.execute(f"CREATE TABLE _metadata_({', '.join(f'{chr(34)}{k}{chr(34)}' for k in row)})")
        present = {r[1] for r in con.execute("PRAGMA table_info(_metadata_)")}
        for column in set(row) - present:
            con.execute(f'ALTER TABLE _metadata_ ADD COLUMN "{column}"')
        header = ", ".join(f'"{k}"' for k in row)
        con.execute(f"INSERT INTO _metadata_ ({header}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        con.commit()
    finally:
        con.close()


def flat_params(plan: ExperimentPlan, index: int) -> dict[str, Any]:
    meta = plan.permutation(index)["metaParameters"]
    return {k: get_path(meta, k) for k in flat_keys(meta)}


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and directory under `root`: (size, mtime in ns, content)."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        out[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, content)
    return out


_HOLDER = r"""
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN " + sys.argv[2])
con.execute(sys.argv[3])
print("holding", flush=True)
if sys.argv[5] == "-":
    sys.stdin.readline()
else:
    time.sleep(float(sys.argv[5]))
con.execute("COMMIT" if sys.argv[4] == "commit" else "ROLLBACK")
"""


@contextmanager
def writer_holding(
    database: Path, mode: str, statement: str, end: str = "commit", hold_for: float | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Another process inside `BEGIN <mode>` on `database`, having run `statement`.

    It ends its transaction (`end`: commit or rollback) after `hold_for` seconds, or else when the block ends.
    """
    held = "-" if hold_for is None else str(hold_for)
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(database), mode, statement, end, held],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        yield process
    finally:
        process.communicate("\n", timeout=30)


def orchestrator_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_cli(project: Path, *args: str) -> tuple[int, str, str]:
    """`orchestrator ARGS` from the project root, through the one CLI runner: (exit code, stdout, stderr)."""
    result = orchestrator(*args, cwd=project)
    return result.returncode, result.stdout, result.stderr

"""Which indices are done in a PyExpUtils results.db: ours beside PyExpUtils' `detectMissingIndices`.

    python benchmarks/results_db_bench.py                  1e5 indices (1,000 settings x 100 runs), one database
    python benchmarks/results_db_bench.py --smoke          1e3 indices, a few seconds
    python benchmarks/results_db_bench.py --json out.json  also write the figures as JSON

Both answer the same question on the same database file: ours reads the two tables once and
matches in Python (`PyExpUtilsStore.done`, and `result_store.finder` as `status` and `submit` ask:
the store recognised from the file, then `done`); PyExpUtils runs two queries per setting (find its
`config_id`, then its seeds), each a scan of a table without an index. The database is written in
PyExpUtils' layout (the values in SQL text, as its `saveCollector` writes them) with a tenth of the
indices missing, and the two answers must agree index by index. `detectMissingIndices` writes into
the database while it reads, so it runs on a copy. Needs PyExpUtils and its runtime dependencies
(see tests/test_result_store_pyexputils.py); `benchmarks/run` installs them.

`benchmarks/run --only resultsdb` runs it as a part of the report (`section`): each shape in a
fresh interpreter, the figures read back from `--json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.config import load_config  # noqa: E402
from orchestrator.planner import plan_experiment  # noqa: E402
from orchestrator.result_store import PyExpUtilsStore, finder, flat_keys, get_path  # noqa: E402

EXPERIMENT = "experiments/bench/dqn.json"
SAVE_PATH = "results/{name}/{agent}"


def experiment(perms: int) -> dict[str, Any]:
    """Three swept axes whose sizes multiply to `perms` (10 x 10 x 10 for 1,000), plus fixed values."""
    sizes = [1, 1, 1]
    remaining, axis = perms, 0
    while remaining > 1:
        factor = next(f for f in range(2, remaining + 1) if remaining % f == 0)
        sizes[axis % 3] *= factor
        remaining //= factor
        axis += 1
    meta = {
        "alpha": [round(0.001 * (k + 1), 6) for k in range(sizes[0])],
        "optimizer": {"name": [f"opt{k}" for k in range(sizes[1])], "beta1": 0.9},
        "hidden": [16 * (k + 1) for k in range(sizes[2])],
        "double": True,
    }
    return {"agent": "DQN", "environment": "MountainCar", "metaParameters": meta}


def sql(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def write_database(database: Path, plan: Any, present: list[int], frames: int) -> None:
    """PyExpUtils' layout: metadata v2, hyperparameters (values as SQL text), results rows per frame."""
    meta = plan.permutation(0)["metaParameters"]
    header = sorted(flat_keys(meta))
    database.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(database)
    con.execute("CREATE TABLE metadata(version)")
    con.execute("INSERT INTO metadata VALUES('v2')")
    columns = ", ".join(f'"{k}"' for k in [*header, "config_id"])
    con.execute(f"CREATE TABLE hyperparameters({columns})")
    con.execute('CREATE TABLE results("config_id", "seed", "frame", "return")')
    ids = random.Random(1).sample(range(1, 2**62), plan.num_permutations)
    for perm in range(plan.num_permutations):
        values = [get_path(plan.permutation(perm)["metaParameters"], k) for k in header]
        con.execute(f"INSERT INTO hyperparameters({columns}) VALUES({', '.join([*map(sql, values), str(ids[perm])])})")
    rows = (
        (ids[i % plan.num_permutations], plan.run(i), frame, float(frame)) for i in present for frame in range(frames)
    )
    con.executemany("INSERT INTO results VALUES(?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def time_ours(plan: Any, root: Path, repeat: int) -> tuple[list[float], list[float], set[int]]:
    """Seconds per run of PyExpUtilsStore.done alone, and of a fresh `finder` (what status and submit ask)."""
    alone, auto, done = [], [], set()
    for _ in range(repeat):
        started = time.perf_counter()
        done = set(PyExpUtilsStore(None, 5.0).done(plan).done)
        alone.append(time.perf_counter() - started)
        started = time.perf_counter()
        answer = finder(None, str(root))(plan, None)
        auto.append(time.perf_counter() - started)
        if answer.kind != PyExpUtilsStore.kind or set(answer.done) != done:
            raise RuntimeError(f"the automatic choice answered {answer.kind} with {len(answer.done)} done")
    return alone, auto, done


def time_reference(data: dict[str, Any], runs: int, database: Path, scratch: Path) -> tuple[float, set[int]]:
    """Seconds of one `detectMissingIndices` on a copy of the database, and its missing set."""
    from PyExpUtils.models import ExperimentDescription as description_module
    from PyExpUtils.models.Config import Config
    from PyExpUtils.models.ExperimentDescription import ExperimentDescription
    from PyExpUtils.results import sqlite as reference

    logging.getLogger("PyExpUtils").setLevel(logging.ERROR)
    copy = scratch / "results/bench/DQN/results.db"
    copy.parent.mkdir(parents=True)
    shutil.copy(database, copy)
    exp = ExperimentDescription(data, save_key="results/bench/DQN")
    with mock.patch.object(description_module, "getConfig", lambda: Config(save_path="unused")):
        started = time.perf_counter()
        missing = set(reference.detectMissingIndices(exp, runs, base=str(scratch)))
        seconds = time.perf_counter() - started
    return seconds, missing


def measure(indices: int, perms: int, frames: int, repeat: int, workdir: Path) -> dict[str, Any]:
    runs = indices // perms
    data = experiment(perms)
    project = workdir / "project"
    (project / EXPERIMENT).parent.mkdir(parents=True)
    (project / EXPERIMENT).write_text(json.dumps(data))
    (project / "config.json").write_text(json.dumps({"save_path": SAVE_PATH}))
    plan = plan_experiment(str(project / EXPERIMENT), load_config(project), runs)
    database = project / "results/bench/DQN/results.db"
    present = sorted(random.Random(0).sample(range(plan.total), plan.total * 9 // 10))
    started = time.perf_counter()
    write_database(database, plan, present, frames)
    build = time.perf_counter() - started
    alone, auto, done = time_ours(plan, project, repeat)
    reference_seconds, missing = time_reference(data, runs, database, workdir / "copy")
    agree = set(range(plan.total)) - done == missing
    return {
        "indices": plan.total,
        "permutations": plan.num_permutations,
        "runs": runs,
        "frames": frames,
        "result_rows": len(present) * frames,
        "database_bytes": database.stat().st_size,
        "build_seconds": build,
        "ours_seconds": statistics.median(alone),
        "ours_status_seconds": statistics.median(auto),
        "pyexputils_seconds": reference_seconds,
        "ratio": reference_seconds / statistics.median(alone),
        "status_ratio": reference_seconds / statistics.median(auto),
        "repeat": repeat,
        "missing": len(missing),
        "agree": agree,
    }


def section(work: Path, sizes: list[int], runs: int, shapes: list[tuple[int, int]], repeat: int) -> dict[str, Any]:
    """The report's part: `sizes` indices at `runs` runs per setting, then the extra (indices, settings) shapes.

    Each shape runs in a fresh interpreter (this file), so neither side inherits the other's caches.
    """
    wanted = [(n, n // runs, "main") for n in sizes] + [(n, settings, "shape") for n, settings in shapes]
    rows = []
    for indices, perms, kind in wanted:
        out = work / f"resultsdb-{indices}-{perms}.json"
        argv = [sys.executable, __file__, "--indices", str(indices), "--perms", str(perms), "--repeat", str(repeat)]
        out.unlink(missing_ok=True)
        done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, check=False)
        if not out.exists():  # written before the exit code says whether the answers agree
            raise RuntimeError(f"results_db_bench {indices}/{perms} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        figures = {**json.loads(out.read_text()), "kind": kind}
        if not figures["agree"]:
            raise RuntimeError(f"ours and detectMissingIndices disagree on {indices:,} indices ({perms:,} settings)")
        rows.append(figures)
        print(
            f"  results.db {indices:>9,} ({perms:,} settings x {indices // perms:,} runs): ours"
            f" {figures['ours_seconds'] * 1000:.1f} ms, as status asks {figures['ours_status_seconds'] * 1000:.1f} ms,"
            f" detectMissingIndices {figures['pyexputils_seconds'] * 1000:.1f} ms ({figures['ratio']:.0f}x)",
            flush=True,
        )
    return {"rows": rows, "runs": runs, "repeat": repeat}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indices", type=int, default=100_000)
    parser.add_argument("--perms", type=int, default=1_000, help="settings (the rest of the indices are runs)")
    parser.add_argument("--frames", type=int, default=1, help="result rows per index")
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (the median is reported)")
    parser.add_argument("--smoke", action="store_true", help="1,000 indices (100 settings x 10 runs)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.indices, args.perms, args.repeat = 1_000, 100, 1
    if args.indices % args.perms:
        parser.error("--indices must be a multiple of --perms")
    with tempfile.TemporaryDirectory(prefix="orch-results-db-") as scratch:
        figures = measure(args.indices, args.perms, args.frames, args.repeat, Path(scratch))
    print(
        f"results.db, {figures['indices']:,} indices ({figures['permutations']:,} settings x {figures['runs']} runs, "
        f"{figures['result_rows']:,} result rows, {figures['database_bytes'] / 1e6:.1f} MB, "
        f"{figures['missing']:,} missing)\n"
        f"  ours (PyExpUtilsStore.done):            {figures['ours_seconds'] * 1000:10.1f} ms\n"
        f"  ours as status asks it (finder):         {figures['ours_status_seconds'] * 1000:9.1f} ms\n"
        f"  PyExpUtils detectMissingIndices:         {figures['pyexputils_seconds'] * 1000:9.1f} ms\n"
        f"  ratio: {figures['ratio']:.0f}x faster; answers agree index by index: {figures['agree']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if figures["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())

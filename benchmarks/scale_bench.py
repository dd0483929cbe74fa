"""Status and submit --dry-run at 1e4 to 1e7 indices (issue 11): whole processes, wall time and peak RSS.

Beside them, in the same run and on the same result trees, the two simple ways of finding missing
results: PyExpUtils' (`interpolateSavePath(i)` and `os.path.exists`, timed on the first indices and
extrapolated beyond) and a plain `os.path.exists` loop over our own `ExperimentPlan.save_paths()`.
Then the scan's metadata syscalls per index, counted with strace, on two shapes of result tree.

No Slurm is involved: every process runs with a PATH that holds none of Slurm's commands (so
`sbatch` being installed changes nothing), and submit runs with `--executor local --dry-run`.
Every process runs under an address-space limit and a timeout; one that hits either is reported
as killed, with its peak RSS, instead of failing the run.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import EXPERIMENT, HERE, PYTHON, RUNS, fmt_size, make_project, project_plan

SLURM_COMMANDS = frozenset(
    [
        "sacct",
        "sacctmgr",
        "salloc",
        "sattach",
        "sbatch",
        "sbcast",
        "scancel",
        "scontrol",
        "scrontab",
        "sdiag",
        "sh5util",
        "sinfo",
        "sprio",
        "squeue",
        "sreport",
        "srun",
        "sshare",
        "sstat",
        "strigger",
        "sview",
    ]
)
SEED = 4321


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    timeout: float

    @property
    def memory_gb(self) -> float:
        return self.memory_bytes / 1e9


def no_slurm_env(directory: Path) -> dict[str, str]:
    """The environment with PATH replaced by links to every command on it except Slurm's."""
    directory.mkdir(parents=True, exist_ok=True)
    for folder in [str(Path(PYTHON).parent), *os.environ.get("PATH", "").split(os.pathsep)]:
        if not folder or not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            link = directory / entry.name
            if entry.name in SLURM_COMMANDS or link.exists() or link.is_symlink():
                continue
            link.symlink_to(entry.path)
    env = {**os.environ, "PATH": str(directory)}
    if shutil.which("sbatch", path=env["PATH"]) or shutil.which("squeue", path=env["PATH"]):
        raise RuntimeError("Slurm's commands are still on the scale benchmark's PATH")
    return env


def measure(argv: list[str], cwd: Path, env: dict[str, str], limits: Limits, out: Path) -> dict[str, Any]:
    """One whole process: wall time, peak RSS (wait4), killed by the memory limit or the timeout or not.

    Its stdout goes to `out` (read by the caller to check the answer); stderr is kept for errors.
    """

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

    with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb+") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, preexec_fn=limit_memory)
        timer = threading.Timer(limits.timeout, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        timed_out = not timer.is_alive()
        timer.cancel()
        child.returncode = code = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")
    killed = "time" if timed_out else ("memory" if code != 0 and "MemoryError" in err else None)
    if code != 0 and killed is None:
        raise RuntimeError(f"{' '.join(argv[1:])} failed ({code}) in {cwd}:\n{err[-3000:]}")
    rss = usage.ru_maxrss * 1024 / 1e6
    return {"seconds": seconds, "peak_rss_mb": rss, "code": code, "killed": killed, "limit_gb": limits.memory_gb}


class ResultTree:
    """A benchmark project whose result directories are made present index by index."""

    def __init__(self, root: Path, indices: int, runs: int) -> None:
        self.root = make_project(root, indices, runs=runs)
        self.plan = project_plan(self.root, runs)
        self.runs = runs
        self.total = self.plan.total
        self.present = bytearray(self.total)
        self.count = 0
        self._parents: set[str] = set()

    def add(self, indices: list[int]) -> None:
        """Create the result directories of `indices` (a few by random access, many through the bulk paths)."""
        for index in indices:
            self.present[index] = 1
        if len(indices) * 20 < self.total:
            for index in indices:
                self._mkdir(self.plan.save_path(index))
        else:
            wanted = set(indices)
            for index, path in self.plan.save_paths():
                if index in wanted:
                    self._mkdir(path)
        self.count += len(indices)

    def add_random(self, count: int) -> None:
        self.add(random.Random(SEED).sample(range(self.total), count))

    def add_rest(self) -> None:
        self.add([i for i in range(self.total) if not self.present[i]])

    def missing_below(self, limit: int) -> int:
        return min(limit, self.total) - sum(self.present[:limit])

    def _mkdir(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent not in self._parents:
            os.makedirs(self.root / parent, exist_ok=True)
            self._parents.add(parent)
        os.mkdir(self.root / path)


# -- one state of a result tree: status, submit --dry-run, and the two simple loops -------------------


class Runner:
    """Runs the measured processes of one benchmark run: the same environment, limits and scratch files."""

    def __init__(self, work: Path, config: dict[str, Any]) -> None:
        self.work = work
        self.env = no_slurm_env(work / "no-slurm-bin")
        self.limits = Limits(int(config["scale_memory_gb"] * 1e9), config["scale_timeout"])
        self.ref_limit = config["scale_ref_limit"]
        self.out = work / "scale-stdout.json"

    def status(self, tree: ResultTree) -> dict[str, Any]:
        argv = [PYTHON, "-m", "orchestrator", "status", EXPERIMENT, "--runs", str(tree.runs), "--json"]
        m = measure(argv, tree.root, self.env, self.limits, self.out)
        if not m["killed"]:
            counts = json.loads(self.out.read_text())["experiments"][0]
            if (counts["total"], counts["done"]) != (tree.total, tree.count):
                raise RuntimeError(f"status counted {counts['done']} of {counts['total']} done, not {tree.count}")
        return m

    def submit(self, tree: ResultTree, max_array_tasks: int) -> dict[str, Any]:
        profile = self.work / f"scale-profile-{max_array_tasks}.yaml"
        profile.write_text(f"max_array_tasks: {max_array_tasks}\n")
        argv = [PYTHON, "-m", "orchestrator", "submit", EXPERIMENT, "--runs", str(tree.runs), "--dry-run", "--json"]
        argv += ["--executor", "local", "--cluster", str(profile)]
        m = measure(argv, tree.root, self.env, self.limits, self.out)
        m["max_array_tasks"] = max_array_tasks
        if not m["killed"]:
            from orchestrator.slurm_formats import parse_ranges

            arrays = json.loads(self.out.read_text())["submissions"]
            submitted = sum(len(parse_ranges(a["indices"])) for a in arrays)
            if submitted != tree.total - tree.count:
                raise RuntimeError(f"submit --dry-run would send {submitted}, not {tree.total - tree.count} indices")
            if any(a["tasks"] > max_array_tasks for a in arrays):
                raise RuntimeError(f"submit --dry-run made an array of more than {max_array_tasks} tasks")
            m["arrays"] = len(arrays)
        return m

    def exists_loop(self, tree: ResultTree) -> dict[str, Any]:
        argv = [PYTHON, str(HERE / "probes.py"), "missing-exists", "--runs", str(tree.runs)]
        m = measure(argv, tree.root, self.env, self.limits, self.out)
        if not m["killed"] and json.loads(self.out.read_text())["missing"] != tree.total - tree.count:
            raise RuntimeError("the exists loop found a different number of missing results")
        return m

    def reference(self, tree: ResultTree) -> dict[str, Any]:
        """PyExpUtils' loop on the first `ref_limit` indices; beyond that its time is extrapolated."""
        argv = [PYTHON, str(HERE / "probes.py"), "missing-ref", "--runs", str(tree.runs)]
        m = measure([*argv, "--limit", str(self.ref_limit)], tree.root, self.env, self.limits, self.out)
        if m["killed"]:
            return m
        answer = json.loads(self.out.read_text())
        if answer["missing"] != tree.missing_below(answer["measured"]):
            raise RuntimeError("PyExpUtils' loop found a different number of missing results")
        m["measured"] = answer["measured"]
        m["extrapolated"] = answer["measured"] < tree.total
        m["loop_seconds"] = answer["loop_seconds"]
        # the process as measured, with its loop stretched from the sample to every index
        m["seconds"] += answer["loop_seconds"] * (tree.total / answer["measured"] - 1)
        return m

    def state(self, tree: ResultTree, requested: float, pattern: str, array_tasks: int) -> dict[str, Any]:
        """Every measurement of one tree as it is now."""
        row = {
            "indices": tree.total,
            "runs": tree.runs,
            "requested": requested,
            "pattern": pattern,
            "present": tree.count,
            "fraction": tree.count / tree.total,
            "status": self.status(tree),
            "submit": self.submit(tree, array_tasks),
            "exists": self.exists_loop(tree),
            "reference": self.reference(tree),
        }
        print("  " + _summary(row), flush=True)
        return row


def _summary(row: dict[str, Any]) -> str:
    def one(m: dict[str, Any]) -> str:
        if m["killed"]:
            return f"killed ({m['killed']}) after {m['seconds']:.1f} s at {m['peak_rss_mb']:,.0f} MB"
        return f"{m['seconds']:.2f} s {m['peak_rss_mb']:,.0f} MB"

    done = f"{row['fraction']:.1%}" if row["pattern"] == "sparse" else f"{row['fraction']:.0%}"
    return (
        f"scale {row['indices']:>10,} at {done:>5}: status {one(row['status'])}; submit --dry-run "
        f"{one(row['submit'])}; exists loop {one(row['exists'])}; PyExpUtils "
        f"{'~' if row['reference'].get('extrapolated') else ''}{one(row['reference'])}"
    )


# -- the section: every size, the small arrays, the syscall counts -----------------------------------


def scale(work: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Issue 11's measurements; `config` is bench.py's sizes (the `scale*` keys)."""
    runner = Runner(work, config)
    rows: list[dict[str, Any]] = []
    for size in config["scale"]:
        rows += _one_size(runner, size, config)
    small_size, small_tasks = config["scale_small_arrays"]
    tree = ResultTree(work / f"scale-arrays-{small_size}", small_size, RUNS)
    small = {"indices": small_size, **runner.submit(tree, small_tasks)}
    shutil.rmtree(tree.root, ignore_errors=True)
    print(
        f"  submit --dry-run {small_size:,} indices into arrays of {small_tasks}: {small['seconds']:.2f} s", flush=True
    )
    syscalls = [scan_syscalls(work, config["scale_strace"], runs, runner.env) for runs in (1, RUNS)]
    return {
        "rows": rows,
        "small_arrays": small,
        "syscalls": [s for s in syscalls if s],
        "memory_limit_gb": runner.limits.memory_gb,
        "timeout": runner.limits.timeout,
        "ref_limit": runner.ref_limit,
        "sparse_from": config["scale_sparse_from"],
        "sparse_fraction": config["scale_sparse_fraction"],
        "array_tasks": config["scale_array_tasks"],
    }


def _one_size(runner: Runner, size: int, config: dict[str, Any]) -> list[dict[str, Any]]:
    """0 %, then 50 %, then 100 % present on one growing tree; above `scale_sparse_from` a sparse pattern."""
    tree = ResultTree(runner.work / f"scale-{size}", size, RUNS)
    sparse = size >= config["scale_sparse_from"]
    rows = []
    try:
        for fraction in sorted(config["scale_fractions"]):
            if sparse and fraction == 1:
                rows.append({"indices": size, "requested": 1.0, "pattern": "skipped"})
                print(f"  scale {size:>10,} at 100%: skipped ({fmt_size(size)} result directories)", flush=True)
                continue
            pattern = "none" if fraction == 0 else "sparse" if sparse else "random"
            count = round(size * (config["scale_sparse_fraction"] if sparse else fraction))
            if fraction == 0:
                count = 0
            if count == size:
                tree.add_rest()
            elif count > tree.count:
                tree.add_random(count - tree.count)
            rows.append(runner.state(tree, fraction, pattern, config["scale_array_tasks"]))
    finally:
        shutil.rmtree(tree.root, ignore_errors=True)
    return rows


_SYSCALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\(")


def scan_syscalls(work: Path, size: int, runs: int, env: dict[str, str]) -> dict[str, Any] | None:
    """Metadata syscalls on the result tree of `status` and of a plain exists loop, every result present."""
    if shutil.which("strace") is None:
        return None
    tree = ResultTree(work / f"scale-strace-{runs}", size, runs)
    try:
        tree.add_rest()
        status = [PYTHON, "-m", "orchestrator", "status", EXPERIMENT, "--runs", str(runs), "--json"]
        loop = [PYTHON, str(HERE / "probes.py"), "missing-exists", "--runs", str(runs)]
        ours = _traced(status, tree, env, work / "scale-trace.txt")
        stat = _traced(loop, tree, env, work / "scale-trace.txt")
    finally:
        shutil.rmtree(tree.root, ignore_errors=True)
    print(
        f"  scan syscalls, {size:,} indices x {runs} run(s), all present: status {ours['total']:,}, "
        f"exists loop {stat['total']:,}",
        flush=True,
    )
    return {"indices": size, "runs": runs, "result_dirs": size // runs, "ours": ours, "stat": stat}


@functools.cache
def _seccomp() -> tuple[str, ...]:
    """`--seccomp-bpf` where strace has it: only the traced calls stop the process (minutes faster)."""
    probe = subprocess.run(["strace", "--seccomp-bpf", "-f", "-qq", "-o", os.devnull, "true"], capture_output=True)
    return ("--seccomp-bpf",) if probe.returncode == 0 else ()


def _traced(argv: list[str], tree: ResultTree, env: dict[str, str], trace: Path) -> dict[str, Any]:
    """A whole process under strace; its metadata syscalls that name a path under results/, by name."""
    command = ["strace", *_seccomp(), "-f", "-qq", "-y", "-o", str(trace), "-e", "trace=%file,getdents64", *argv]
    result = subprocess.run(command, cwd=tree.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"strace {' '.join(argv)} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    absolute = str(tree.root.resolve() / "results")
    counts: dict[str, int] = {}
    with open(trace) as lines:
        for line in lines:
            if "resumed>" in line or ('"results' not in line and absolute not in line):
                continue
            match = _SYSCALL.match(line)
            if match:
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    trace.unlink(missing_ok=True)
    return {"total": sum(counts.values()), "by_call": counts}

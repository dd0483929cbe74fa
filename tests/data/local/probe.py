"""A stand-in entry script for the local-executor tests: it records what it saw and writes a result.

    python probe.py EXPERIMENT INDEX

The result is a directory at the index's save path holding `env.json` (argv, pid, process group and
the Slurm / orchestrator variables it was given), renamed into place so it exists only when complete.
Optional behaviour, from the environment:

    PROBE_EVENTS           a file; "start INDEX PID" and "end INDEX PID" lines are appended in the
                           order they happen (one O_APPEND write each), so overlap can be read from
                           the order of lines, not from clocks
    PROBE_PIDS             a directory; <index>.pid holds "PID PGID"
    PROBE_BARRIER          N: after "start", wait until N "start" lines exist (at most
                           PROBE_BARRIER_TIMEOUT seconds, default 60; then go on regardless)
    PROBE_SLEEP            seconds to sleep before writing the result
    PROBE_SLEEP_FROM       K: only indices K and above sleep (the others finish at once)
    PROBE_FAIL_DIR         a directory; when <index>.fail exists there, print a line and exit with
                           the code it holds, writing no result
    PROBE_IGNORE_TERM      when set, SIGTERM is ignored (as by a script busy saving a checkpoint)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import orchestrator

VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_CPUS_PER_TASK",
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_SUBMIT_DIR",
    "ORCH_INDEX",
    "ORCH_EXPERIMENT",
    "ORCH_ROOT",
)


def event(kind: str, index: int) -> None:
    path = os.environ.get("PROBE_EVENTS")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {index} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def starts() -> int:
    try:
        text = Path(os.environ["PROBE_EVENTS"]).read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if line.startswith("start "))


def main() -> int:
    experiment, index = sys.argv[1], int(sys.argv[2])
    if os.environ.get("PROBE_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pids = os.environ.get("PROBE_PIDS")
    if pids:
        Path(pids, f".{index}.pid.tmp").write_text(f"{os.getpid()} {os.getpgid(0)}\n")
        os.replace(Path(pids, f".{index}.pid.tmp"), Path(pids, f"{index}.pid"))  # never seen half written
    event("start", index)
    print(f"probe: index {index} of {experiment} started, pid {os.getpid()}", flush=True)

    barrier = int(os.environ.get("PROBE_BARRIER", "0"))
    if barrier:
        deadline = time.monotonic() + float(os.environ.get("PROBE_BARRIER_TIMEOUT", "60"))
        while starts() < barrier and time.monotonic() < deadline:
            time.sleep(0.02)
    if index >= int(os.environ.get("PROBE_SLEEP_FROM", "0")):
        time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))

    fail_dir = os.environ.get("PROBE_FAIL_DIR")
    if fail_dir and Path(fail_dir, f"{index}.fail").exists():
        code = int(Path(fail_dir, f"{index}.fail").read_text())
        print(f"probe: index {index} fails with exit {code}", flush=True)
        event("end", index)
        return code

    out = Path(orchestrator.load_experiment(experiment).save_path(index))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    seen = {
        "argv": sys.argv[1:],
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "env": {name: os.environ.get(name) for name in VARIABLES},
    }
    (staging / "env.json").write_text(json.dumps(seen))
    os.replace(staging, out)
    print(f"probe: index {index} wrote {out}", flush=True)
    event("end", index)
    return 0


if __name__ == "__main__":
    sys.exit(main())

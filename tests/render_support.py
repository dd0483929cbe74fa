"""Shared by the rendering tests (tests/test_render_*.py): array scripts built as the submitter builds
them, the golden cases, and a throwaway project whose rendered scripts run with plain bash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestrator.profile import ClusterProfile
from orchestrator.render import ArrayScript, render_script

HOSTILE = 'a b/$(touch PWNED)/`x`;rm -rf y\'"q"/é.json'


def make_script(profile: ClusterProfile, **fields: object) -> ArrayScript:
    """An ArrayScript the way the submitter builds one from a profile."""
    values: dict[str, object] = {
        "tag": "orch-test-00000000",
        "project_root": "/home/user/project",
        "experiment": "experiments/test.json",
        "task_file": "/home/user/project/.orchestrator/orch-test-00000000.tasks",
        "log_dir": "/home/user/project/.logs/orch-test-00000000",
        "num_tasks": 1,
        "throttle": profile.throttle,
        "parallel": profile.parallel,
        "sbatch_options": profile.sbatch_options(),
        "setup": profile.setup,
        "command": profile.command,
    }
    values.update(fields)
    return ArrayScript(**values)  # type: ignore[arg-type]


FULL_PROFILE = ClusterProfile(
    account="def-someone",
    partition="gpu",
    hours=12,
    mem_per_cpu="3500M",
    cpus_per_task=4,
    gpus="a100:1",
    sbatch={"qos": "high", "constraint": "[cascade|skylake]", "mail-type": "END,FAIL", "exclusive": True, "nice": 10},
    indices_per_task=4,
    parallel=2,
    throttle=20,
    setup=("module load python/3.11 cuda/12.2", "source .venv/bin/activate", "export OMP_NUM_THREADS=4"),
    command="python -m project.main --exp {experiment} --index {index}",
)
HOSTILE_ROOT = "/home/us er/proj 'single' \"double\" $(touch PWNED) `id`; rm -rf ~ é"

GOLDEN_CASES: dict[str, ArrayScript] = {
    "minimal": make_script(
        ClusterProfile(),
        tag="orch-minimal-1a2b3c4d",
        experiment="experiments/minimal.json",
        task_file="/home/user/project/.orchestrator/orch-minimal-1a2b3c4d.tasks",
        log_dir="/home/user/project/.logs/orch-minimal-1a2b3c4d",
    ),
    "full": make_script(
        FULL_PROFILE,
        tag="orch-dqn-5e6f7a8b",
        experiment="experiments/dqn/sweep.yaml",
        task_file="/home/user/project/.orchestrator/orch-dqn-5e6f7a8b.tasks",
        log_dir="/home/user/project/.logs/orch-dqn-5e6f7a8b",
        num_tasks=250,
    ),
    "hostile_paths": make_script(
        ClusterProfile(),
        tag="orch-e-9c0d1e2f",
        project_root=HOSTILE_ROOT,
        experiment=HOSTILE,
        task_file=HOSTILE_ROOT + "/.orchestrator/orch-e-9c0d1e2f.tasks",
        log_dir=HOSTILE_ROOT + "/.logs/100% sure #1",
        num_tasks=3,
    ),
}


# -- golden files ------------------------------------------------------------------------------


FAKE_ENTRY = r"""#!/bin/bash
# Records how it was called, then exits with the code chosen for its index in codes.txt.
index=$2
out="$ORCH_ROOT/calls/$index"
mkdir -p "$ORCH_ROOT/calls"
printf '%s\n' "$@" >"$out.argv"
printf '%s\n%s\n%s\n' "$ORCH_EXPERIMENT" "$ORCH_INDEX" "$PWD" >"$out.env"
echo "stdout of $index"
echo "stderr of $index" >&2
code=$(sed -n "$((index + 1))p" "$ORCH_ROOT/codes.txt")
exit "${code:-0}"
"""

OVERLAP_ENTRY = r"""#!/bin/bash
# Indices 2k and 2k+1 are partners: each marks its start, then waits for the other's start marker.
index=$2
dir="$ORCH_ROOT/marks"
mkdir -p "$dir"
partner=$((index ^ 1))
touch "$dir/start.$index"
started=$(find "$dir" -name 'start.*' | wc -l)
finished=$(find "$dir" -name 'done.*' | wc -l)
echo $((started - finished)) >"$dir/running_at_start.$index"
for _ in $(seq 600); do
    if [[ -e "$dir/start.$partner" ]]; then
        echo overlapped >"$dir/result.$index"
        touch "$dir/done.$index"
        exit 0
    fi
    sleep 0.05
done
echo alone >"$dir/result.$index"
touch "$dir/done.$index"
exit 1
"""


class Project:
    """A project root in tmp with a fake entry script; renders and runs array tasks with bash."""

    def __init__(self, root: Path, entry: str = FAKE_ENTRY, experiment: str = "experiments/e.json") -> None:
        self.root = root
        self.root.mkdir(parents=True)
        (root / "entry.sh").write_text(entry, encoding="utf-8")
        self.experiment = experiment
        self.logs = root / ".logs" / "run 1"
        self.task_file = root / ".orchestrator" / "tasks.txt"
        self.task_file.parent.mkdir()
        self.script_path = root / ".orchestrator" / "script.sh"

    def render(self, tasks: list[list[int]], parallel: int = 1, codes: dict[int, int] | None = None, **profile) -> str:
        self.task_file.write_text("".join(" ".join(map(str, t)) + "\n" for t in tasks), encoding="utf-8")
        codes = codes or {}
        top = max([i for t in tasks for i in t], default=0)
        (self.root / "codes.txt").write_text("".join(f"{codes.get(i, 0)}\n" for i in range(top + 1)), encoding="utf-8")
        cluster = ClusterProfile(
            command="bash entry.sh {experiment} {index}",
            indices_per_task=max(parallel, *map(len, tasks)),
            parallel=parallel,
            **profile,
        )
        script = make_script(
            cluster,
            project_root=str(self.root),
            experiment=self.experiment,
            task_file=str(self.task_file),
            log_dir=str(self.logs),
            num_tasks=len(tasks),
        )
        text = render_script(script)
        self.script_path.write_text(text, encoding="utf-8")
        return text

    def run(
        self, task_id: int | None, job_id: str = "77", cwd: Path | None = None, path_first: Path | None = None
    ) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "ORCH_"))}
        if path_first is not None:
            env["PATH"] = f"{path_first}:{env['PATH']}"
        if task_id is not None:
            env["SLURM_ARRAY_TASK_ID"] = str(task_id)
            env["SLURM_ARRAY_JOB_ID"] = job_id
        return subprocess.run(
            ["bash", str(self.script_path)],
            cwd=cwd or self.root.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def status(self, index: int) -> str:
        return (self.logs / f"{index}.status").read_text(encoding="utf-8")

    def log(self, index: int) -> str:
        return (self.logs / f"{index}.log").read_text(encoding="utf-8")

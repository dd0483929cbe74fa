"""Rendering array job scripts: golden files, shell linting, running the script with bash, and real sbatch.

The default template's output is compared with the files in tests/golden/. After an intended change
to the template or to rendering, rewrite them and review the diff:

    UPDATE_GOLDEN=1 pytest tests/test_render.py

Behaviour tests run rendered scripts with plain bash (the #SBATCH lines are comments to it), setting
SLURM_ARRAY_TASK_ID / SLURM_ARRAY_JOB_ID as Slurm and the local executor do. Tests marked `slurm` need
the test cluster (scripts/slurm-test-cluster.sh up); they skip when sbatch is missing, except under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.profile import ClusterProfile
from orchestrator.render import (
    ArrayScript,
    load_template,
    render_script,
    sbatch_directives,
    sbatch_quote,
    shell_command,
)

GOLDEN = Path(__file__).parent / "golden"
REPO_TEMPLATE = Path(__file__).parent.parent / "templates" / "sbatch_array.sh.j2"
IN_CI = os.environ.get("CI", "").lower() == "true"
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
    time=12,
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


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name):
    rendered = render_script(GOLDEN_CASES[name])
    path = GOLDEN / f"{name}.sh"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    assert rendered == path.read_text(encoding="utf-8"), f"{path} differs: review, then UPDATE_GOLDEN=1"


def test_rendering_is_pure():
    script = GOLDEN_CASES["full"]
    assert render_script(script) == render_script(script) == render_script(script, load_template(None))


def test_default_template_is_the_repository_copy():
    assert load_template(None) == REPO_TEMPLATE.read_text(encoding="utf-8")


def test_no_parameter_values_and_the_required_parts():
    text = render_script(GOLDEN_CASES["full"])
    assert text.startswith("#!/bin/bash\n")
    assert "set -uo pipefail\n" in text
    assert "set -e" not in text
    assert "wait -n" in text
    assert 'python -m project.main --exp "$ORCH_EXPERIMENT" --index "$index"' in text
    assert "ORCH_EXPERIMENT=experiments/dqn/sweep.yaml\n" in text
    for line in FULL_PROFILE.setup:
        assert f"\n{line}\n" in text


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_bash_syntax(tmp_path, name):
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_shellcheck(tmp_path, name):
    if shutil.which("shellcheck") is None:
        if IN_CI:
            pytest.fail("shellcheck is not installed (apt-get install -y shellcheck); CI must run it")
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["shellcheck", "--norc", "-f", "gcc", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- directives --------------------------------------------------------------------------------


def test_directives_minimal():
    assert sbatch_directives(GOLDEN_CASES["minimal"]) == [
        "#SBATCH --job-name=orch-minimal-1a2b3c4d",
        "#SBATCH --comment=orch-minimal-1a2b3c4d",
        "#SBATCH --array=0-0",
        "#SBATCH --output=/home/user/project/.logs/orch-minimal-1a2b3c4d/slurm-%A_%a.out",
        "#SBATCH --time=0:59:59",
        "#SBATCH --mem-per-cpu=1G",
        "#SBATCH --cpus-per-task=1",
    ]


def test_directives_throttle_flags_and_profile_options():
    lines = sbatch_directives(GOLDEN_CASES["full"])
    assert "#SBATCH --array=0-249%20" in lines
    assert "#SBATCH --exclusive" in lines
    assert "#SBATCH --gres=gpu:a100:1" in lines
    assert '#SBATCH --constraint="[cascade|skylake]"' in lines
    assert "#SBATCH --time=11:59:59" in lines
    assert lines.index("#SBATCH --account=def-someone") > lines.index("#SBATCH --job-name=orch-dqn-5e6f7a8b")


def test_output_path_is_quoted_and_percent_doubled():
    lines = sbatch_directives(GOLDEN_CASES["hostile_paths"])
    output = next(line for line in lines if line.startswith("#SBATCH --output="))
    assert "/.logs/100%% sure #1/slurm-%A_%a.out" in output
    assert output == "#SBATCH --output=" + sbatch_quote(
        HOSTILE_ROOT.replace("%", "%%") + "/.logs/100%% sure #1/slurm-%A_%a.out"
    )


def sbatch_split(line: str) -> list[str]:
    """sbatch's tokenizer for the text after `#SBATCH` (src/sbatch/opt.c, _get_argument), for checking quoting."""
    args, i = [], 0
    while i < len(line):
        while i < len(line) and line[i].isspace():
            i += 1
        if i >= len(line):
            break
        arg, quote, escape = "", "", False
        while i < len(line) and (quote or not line[i].isspace()):
            char = line[i]
            i += 1
            if escape:
                escape = False
            elif char == "\\":
                escape = True
                continue
            elif quote:
                if char == quote:
                    quote = ""
                    continue
            elif char in "\"'":
                quote = char
                continue
            elif char == "#":
                return [*args, arg] if arg else args
            arg += char
        assert not quote, f"unmatched quote in {line!r}"
        args.append(arg)
    return args


@pytest.mark.parametrize(
    "value",
    ["plain", "a b", "it's", 'say "hi"', "back\\slash", "#hash", "a#b", "$(id) `id`; rm -rf ~", "é ü", "x'\"#\\ y"],
)
def test_sbatch_quote_round_trips(value):
    assert sbatch_split(" --comment=" + sbatch_quote(value)) == ["--comment=" + value]


def test_sbatch_quote_leaves_safe_values_bare():
    assert sbatch_quote("gpu:a100:2") == "gpu:a100:2"
    assert sbatch_quote("END,FAIL") == "END,FAIL"
    assert sbatch_quote("/a/b/slurm-%A_%a.out") == "/a/b/slurm-%A_%a.out"
    assert sbatch_quote("a b") == '"a b"'


def test_directive_values_must_be_one_line():
    script = make_script(ClusterProfile(), sbatch_options={"qos": "a\n#SBATCH --uid=0"})
    with pytest.raises(UserError, match="one line"):
        sbatch_directives(script)


def test_log_dir_with_backslash_is_refused():
    # Slurm removes every backslash from an --output path and then expands no %A/%a
    with pytest.raises(UserError, match="backslash"):
        sbatch_directives(make_script(ClusterProfile(), log_dir="/tmp/a\\b"))


@pytest.mark.parametrize("name", ["array", "job-name", "output", "comment"])
def test_own_options_cannot_come_from_the_profile(name):
    with pytest.raises(UserError, match="set by the orchestrator"):
        sbatch_directives(make_script(ClusterProfile(), sbatch_options={name: "x"}))


def test_unknown_option_and_bad_counts():
    with pytest.raises(UserError, match="unknown sbatch option"):
        sbatch_directives(make_script(ClusterProfile(), sbatch_options={"constrant": "x"}))
    with pytest.raises(UserError, match="at least one task"):
        sbatch_directives(make_script(ClusterProfile(), num_tasks=0))
    with pytest.raises(UserError, match="throttle"):
        sbatch_directives(make_script(ClusterProfile(), throttle=0))
    with pytest.raises(UserError, match="parallel"):
        render_script(make_script(ClusterProfile(), parallel=0))


@pytest.mark.parametrize("tag", ["", "a b", "x\ny", "-x", "a;b"])
def test_tag_must_be_a_plain_word(tag):
    with pytest.raises(UserError, match="tag"):
        render_script(make_script(ClusterProfile(), tag=tag))


def test_shell_command():
    assert shell_command("python src/main.py -e {experiment} -i {index}") == (
        'python src/main.py -e "$ORCH_EXPERIMENT" -i "$index"'
    )
    assert shell_command("run --out ${{SCRATCH}} {index}") == 'run --out ${SCRATCH} "$index"'
    with pytest.raises(UserError, match="unknown placeholder"):
        shell_command("run {run}")


# -- templates ---------------------------------------------------------------------------------


def test_custom_template_variables_and_filter():
    script = replace(GOLDEN_CASES["minimal"], project_root="/a b")
    text = render_script(
        script,
        '{{ tag }} {{ num_tasks }} {{ parallel }} {{ project_root_q }} {{ "it\'s" | shell_quote }}\n'
        "{% for d in directives %}{{ d }}\n{% endfor %}{{ setup | length }} {{ command }}",
    )
    assert text.startswith("orch-minimal-1a2b3c4d 1 1 '/a b' 'it'\"'\"'s'\n#SBATCH --job-name=")
    assert text.endswith('0 python src/main.py -e "$ORCH_EXPERIMENT" -i "$index"')


def test_unknown_template_variable_names_template_and_variable():
    with pytest.raises(UserError) as info:
        render_script(GOLDEN_CASES["minimal"], "#!/bin/bash\n{{ project_root }}\n", template_name="my.sh.j2")
    message = str(info.value)
    assert message.startswith("my.sh.j2: ") and "'project_root' is undefined" in message
    assert "project_root_q" in message  # lists what is available


def test_template_syntax_error():
    with pytest.raises(UserError, match=r"my.sh.j2: template syntax error at line 2"):
        render_script(GOLDEN_CASES["minimal"], "ok\n{% for x in %}\n", template_name="my.sh.j2")


def test_load_template(tmp_path):
    path = tmp_path / "t.sh.j2"
    path.write_text("#!/bin/bash\n{{ tag }}\n", encoding="utf-8")
    assert load_template(path) == "#!/bin/bash\n{{ tag }}\n"
    assert render_script(GOLDEN_CASES["minimal"], load_template(str(path))) == "#!/bin/bash\norch-minimal-1a2b3c4d\n"
    with pytest.raises(UserError, match="template file not found") as info:
        load_template(tmp_path / "missing.j2")
    assert str(tmp_path / "missing.j2") in str(info.value)
    with pytest.raises(UserError, match="directory"):
        load_template(tmp_path)


# -- running the script with bash --------------------------------------------------------------

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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "my project")


def test_single_index_task(project):
    project.render([[0], [1]], codes={1: 3})
    ok = project.run(0)
    assert ok.returncode == 0, ok.stderr
    assert project.status(0) == "0\n"
    failed = project.run(1)
    assert failed.returncode == 3, "the task exits with its failing index's code (sacct: FAILED 3:0)"
    assert project.status(1) == "3\n"
    assert "failed: 1 (exit 3)" in failed.stdout

    log = project.log(1).splitlines()
    assert re.fullmatch(
        r"=== orchestrator: index 1 on \S+, job 77_1, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", log[0]
    )
    assert log[1:3] == ["stdout of 1", "stderr of 1"]
    assert re.fullmatch(r"=== orchestrator: index 1 exited with code 3, ended \S+", log[3])
    assert len(log) == 4
    assert sorted(p.name for p in project.logs.iterdir()) == ["0.log", "0.status", "1.log", "1.status"]


def test_command_arguments_environment_and_directory(project):
    project.render([[5]])
    assert project.run(0, cwd=Path("/")).returncode == 0
    calls = project.root / "calls"
    assert (calls / "5.argv").read_text().splitlines() == ["experiments/e.json", "5"]
    experiment, index, pwd = (calls / "5.env").read_text().splitlines()
    assert (experiment, index, pwd) == ("experiments/e.json", "5", str(project.root))


def test_bundle_runs_every_index_and_exits_with_the_first_failure(project):
    project.render([[0, 1, 2, 3], [4]], codes={1: 3, 3: 5})
    result = project.run(0)
    assert result.returncode == 3
    assert [project.status(i) for i in range(4)] == ["0\n", "3\n", "0\n", "5\n"], "a failure does not stop the bundle"
    assert not (project.logs / "4.status").exists()
    assert "failed: 1 (exit 3) 3 (exit 5)" in result.stdout
    assert not list(project.logs.glob("*.tmp"))


def test_first_failure_is_in_task_file_order_with_parallel(project):
    project.render([[0, 1, 2, 3]], parallel=2, codes={0: 0, 1: 7, 2: 4, 3: 0})
    result = project.run(0)
    assert result.returncode == 7
    assert [project.status(i) for i in range(4)] == ["0\n", "7\n", "4\n", "0\n"]


def test_rerun_appends_to_the_log_and_replaces_the_status(project):
    project.render([[0]], codes={0: 2})
    assert project.run(0).returncode == 2
    (project.root / "codes.txt").write_text("0\n")
    assert project.run(0, job_id="78").returncode == 0
    assert project.status(0) == "0\n"
    log = project.log(0)
    assert log.count("=== orchestrator: index 0 on") == 2
    assert "job 77_0" in log and "job 78_0" in log


def test_parallel_two_overlaps(tmp_path):
    project = Project(tmp_path / "p", entry=OVERLAP_ENTRY)
    project.render([[0, 1, 2, 3]], parallel=2)
    result = project.run(0)
    assert result.returncode == 0, (result.stdout, result.stderr, project.log(0))
    marks = project.root / "marks"
    assert [(marks / f"result.{i}").read_text() for i in range(4)] == ["overlapped\n"] * 4
    # never more than `parallel` indices between their start and done markers
    assert all(int((marks / f"running_at_start.{i}").read_text()) <= 2 for i in range(4))


def test_parallel_one_runs_one_at_a_time(tmp_path):
    project = Project(tmp_path / "p", entry=OVERLAP_ENTRY.replace("seq 600", "seq 2"))
    project.render([[0, 1]], parallel=1)
    assert project.run(0).returncode == 1
    marks = project.root / "marks"
    assert (marks / "result.0").read_text() == "alone\n"
    assert (marks / "running_at_start.1").read_text() == "1\n"


def test_hostile_experiment_path_is_one_verbatim_argument(tmp_path):
    project = Project(tmp_path / "root 'q' \"d\" $(touch PWNED2) `touch PWNED3`; é", experiment=HOSTILE)
    (project.root / HOSTILE).parent.mkdir(parents=True)
    (project.root / HOSTILE).write_text("{}")
    (project.root / "y").write_text("must survive")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "x").write_text(f"#!/bin/sh\ntouch {tmp_path}/X_RAN\n")
    (bin_dir / "x").chmod(0o755)
    project.render([[0]])
    result = project.run(0, cwd=project.root, path_first=bin_dir)
    assert result.returncode == 0, result.stderr
    argv = (project.root / "calls" / "0.argv").read_text(encoding="utf-8").splitlines()
    assert argv == [HOSTILE, "0"]
    assert (project.root / "calls" / "0.env").read_text(encoding="utf-8").splitlines()[0] == HOSTILE
    assert (project.root / "y").read_text() == "must survive"
    assert not list(tmp_path.rglob("PWNED*")) and not (tmp_path / "X_RAN").exists()


def test_missing_task_id_fails_clearly(project):
    project.render([[0]])
    result = project.run(None)
    assert result.returncode != 0
    assert "SLURM_ARRAY_TASK_ID is not set" in result.stderr
    assert not (project.root / "calls").exists()


def test_task_id_past_the_task_file_fails_clearly(project):
    project.render([[0], [1]])
    result = project.run(2)
    assert result.returncode != 0
    assert "line 3 of the task file" in result.stderr and "empty or missing" in result.stderr


def test_empty_task_line_and_bad_index_fail_clearly(project):
    project.render([[0]])
    project.task_file.write_text("\n0 x\n")
    assert "empty or missing" in project.run(0).stderr
    result = project.run(1)
    assert result.returncode != 0 and "holds 'x', not an index" in result.stderr
    assert not (project.root / "calls").exists(), "nothing runs when the task line is bad"


def test_setup_runs_first_in_the_project_root(project):
    project.render([[0]], setup=["echo setup ran in $PWD > setup.txt", "unset NOT_SET_ANYWHERE; : $NOT_SET_ANYWHERE"])
    result = project.run(0)
    assert result.returncode == 0, result.stderr
    assert (project.root / "setup.txt").read_text() == f"setup ran in {project.root}\n"


# -- real sbatch -------------------------------------------------------------------------------


def _need_slurm() -> None:
    if shutil.which("sbatch") is None:
        if IN_CI:
            pytest.fail(
                "sbatch is not on PATH under CI=true: start the test cluster (scripts/slurm-test-cluster.sh up)"
            )
        pytest.skip("sbatch is not on PATH (start the test cluster: scripts/slurm-test-cluster.sh up)")
    probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        if IN_CI:
            pytest.fail(f"the Slurm controller does not answer: {probe.stderr.strip()}")
        pytest.skip(f"the Slurm controller does not answer: {probe.stderr.strip()}")


def _job_id(stdout: str) -> str:
    return stdout.strip().splitlines()[-1].split(";")[0]


SPACED_LOG_DIR = "logs dir/with 'q' \"dq\" #hash 100%"


@pytest.mark.slurm
@pytest.mark.parametrize(
    "name", ["minimal", "hostile_paths"]
)  # "full" names an account and GPUs the test cluster lacks
def test_sbatch_test_only_accepts_golden_scripts(tmp_path, name):
    _need_slurm()
    path = tmp_path / "script.sh"
    path.write_text(render_script(GOLDEN_CASES[name]), encoding="utf-8")
    result = subprocess.run(["sbatch", "--test-only", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.slurm
def test_sbatch_test_only_accepts_the_script(tmp_path):
    _need_slurm()
    project = Project(tmp_path / "project root")
    project.logs = project.root / SPACED_LOG_DIR
    project.render([[0], [1], [2]], throttle=2, sbatch={"nice": 5})
    result = subprocess.run(
        ["sbatch", "--test-only", str(project.script_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slurm
def test_sbatch_reads_quoted_directive_values(tmp_path):
    _need_slurm()
    project = Project(tmp_path / "root")
    workdir = tmp_path / "work dir 'q' \"dq\" #h $(x) é"
    workdir.mkdir()
    project.render([[0]], sbatch={"chdir": str(workdir)})
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--hold", str(project.script_path)], capture_output=True, text=True, timeout=60
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = _job_id(submitted.stdout)
    try:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30).stdout
        fields = dict(re.findall(r"^\s*(WorkDir|Comment)=(.*?)\s*$", shown, re.MULTILINE))
        assert fields["WorkDir"] == str(workdir)
        assert fields["Comment"] == "orch-test-00000000"
        assert "JobName=orch-test-00000000" in shown
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)


@pytest.mark.slurm
def test_real_submission_writes_the_status(tmp_path):
    _need_slurm()
    project = Project(tmp_path / "project root")
    project.logs = project.root / SPACED_LOG_DIR
    project.logs.mkdir(parents=True)
    project.render([[0]])
    text = project.script_path.read_text()
    project.script_path.write_text(text.replace('bash entry.sh "$ORCH_EXPERIMENT" "$index"', "true"))
    submitted = subprocess.run(["sbatch", "--parsable", str(project.script_path)], capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    job_id = _job_id(submitted.stdout)
    status = project.logs / "0.status"
    # 60 s once the task runs; a busy shared test cluster may keep it pending for a while first
    deadline, hard_deadline = time.monotonic() + 60, time.monotonic() + 600
    try:
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(1)
            state = subprocess.run(
                ["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if state == "PENDING":
                deadline = min(hard_deadline, time.monotonic() + 60)
        assert status.exists(), f"no status file after 60 s; job {job_id}; logs: {os.listdir(project.logs)}"
        assert status.read_text() == "0\n"
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
    slurm_out = project.logs / f"slurm-{job_id}_0.out"
    for _ in range(30):  # Slurm may close the output file a moment after the script's last write
        if slurm_out.exists() and "all 1 indices exited 0" in slurm_out.read_text():
            break
        time.sleep(1)
    assert "all 1 indices exited 0" in slurm_out.read_text()

"""Cluster profiles: defaults, normalisation, and one precise UserError per kind of mistake."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.profile import OWN_SBATCH_OPTIONS, ClusterProfile, known_sbatch_options, load_profile
from orchestrator.slurm_formats import parse_memory, parse_time


def write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, name: str = "cluster.yaml") -> UserError:
    path = write(tmp_path, text, name)
    with pytest.raises(UserError) as info:
        load_profile(path)
    assert str(path) in str(info.value), "every profile error names the file"
    assert info.value.exit_code == 2
    return info.value


# -- defaults and normalisation ----------------------------------------------------------------


def test_default_profile():
    profile = ClusterProfile()
    assert profile.account is None and profile.partition is None
    assert profile.time == "0:59:59"
    assert profile.mem_per_cpu == "1G"
    assert profile.cpus_per_task == 1
    assert profile.gpus is None
    assert profile.sbatch == {}
    assert (profile.indices_per_task, profile.parallel, profile.throttle) == (1, 1, None)
    assert profile.setup == ()
    assert profile.command == "python src/main.py -e {experiment} -i {index}"
    assert profile.template is None
    assert (profile.max_array_tasks, profile.max_submit, profile.completion_marker) == (None, None, None)
    assert (profile.max_attempts, profile.escalate, profile.time_factor, profile.memory_factor) == (3, False, 2.0, 2.0)
    assert profile.source is None
    assert profile.sbatch_options() == {"time": "0:59:59", "mem-per-cpu": "1G", "cpus-per-task": "1"}


def test_profile_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ClusterProfile().time = "1:00:00"  # type: ignore[misc]


# -- time and memory: Slurm's meaning under Slurm's names, the design's formatting under its own ----


def test_bare_time_is_minutes_as_in_slurm(tmp_path):
    # the old trap: `time: 90` was 90 hours (--time=89:59:59); sbatch --time=90 is 90 minutes
    profile = load_profile(write(tmp_path, "time: 90\n"))
    assert profile.time == "90"
    assert profile.sbatch_options()["time"] == "90"
    assert parse_time(profile.time) == 90 * 60
    assert ClusterProfile(time=90) == profile


def test_bare_memory_is_megabytes_as_in_slurm(tmp_path):
    # the old trap's twin: `mem_per_cpu: 4096` was 4096 GB; sbatch --mem-per-cpu=4096 is 4096 MB
    profile = load_profile(write(tmp_path, "mem_per_cpu: 4096\n"))
    assert profile.mem_per_cpu == "4096"
    assert parse_memory(profile.mem_per_cpu) == 4096


def test_minutes_colon_seconds_is_kept_as_slurm_reads_it(tmp_path):
    profile = load_profile(write(tmp_path, "time: 1:30\n"))
    assert profile.time == "1:30"
    assert parse_time(profile.time) == 90  # M:S, as sbatch reads it: 1 min 30 s


def test_hours_and_gigs_keys(tmp_path):
    profile = load_profile(write(tmp_path, "hours: 3\ngigs: 4\n"))
    assert (profile.time, profile.mem_per_cpu) == ("2:59:59", "4G")
    assert profile == ClusterProfile(time="2:59:59", mem_per_cpu="4G")
    assert ClusterProfile(hours=1, gigs=16).sbatch_options()["time"] == "0:59:59"
    # the design keys are init-only: copies keep the limit they set
    assert dataclasses.replace(profile, parallel=1).time == "2:59:59"
    assert profile.with_resources(time="5:59:58").time == "5:59:58"


@pytest.mark.parametrize(
    ("text", "key", "other"),
    [("time: 90\nhours: 3\n", "hours", "time"), ("mem_per_cpu: 4G\ngigs: 4\n", "gigs", "mem_per_cpu")],
)
def test_design_key_and_slurm_key_together_are_refused(tmp_path, text, key, other):
    error = load_error(tmp_path, text)
    assert error.key_path == key
    assert f"'{other}'" in str(error)


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "'3'", "true", "null", "[3]"])
@pytest.mark.parametrize("key", ["hours", "gigs"])
def test_invalid_hours_and_gigs(tmp_path, key, value):
    if value == "null":  # null is "not set": the default applies
        assert load_profile(write(tmp_path, f"{key}: null\n")) == ClusterProfile()
        return
    error = load_error(tmp_path, f"{key}: {value}\n")
    assert error.key_path == key and "positive integer" in str(error)


@pytest.mark.parametrize("value", ["4", "63", "'4'"])
def test_tiny_unitless_memory_is_refused_as_the_old_gigabytes(tmp_path, value):
    error = load_error(tmp_path, f"mem_per_cpu: {value}\n")
    assert error.key_path == "mem_per_cpu"
    assert "gigs: " in str(error) and "megabytes" in str(error)
    assert ClusterProfile(mem_per_cpu="4M").mem_per_cpu == "4M"  # with a unit, Slurm's meaning is clear


def test_hours_and_gigs_are_known_keys_with_did_you_mean(tmp_path):
    error = load_error(tmp_path, "hour: 3\n")
    assert "did you mean 'hours'" in str(error)
    assert "time, hours, mem_per_cpu, gigs" in str(error)


def test_cedar_example_profile_loads():
    profile = load_profile(Path(__file__).resolve().parent.parent / "clusters" / "cedar.yaml")
    assert (profile.time, profile.mem_per_cpu) == ("2:59:59", "4G")


@pytest.mark.parametrize("text", ["30", "1:30", "2:59:59", "1-12", "1-12:30", "1-12:30:00", " 4:00:00 "])
def test_slurm_time_strings_are_kept(text):
    assert ClusterProfile(time=text).time == text.strip()


@pytest.mark.parametrize("text", ["2:59:59", "30:00", "1:30", "0:59:59", "1-12:00:00", "10:00:00"])
def test_unquoted_yaml_times_stay_strings(tmp_path, text):
    # YAML 1.1 (PyYAML) would read 2:59:59 as the base-60 integer 10799
    profile = load_profile(write(tmp_path, f"time: {text}\nsbatch: {{begin: 10:30}}\n"))
    assert profile.time == text
    assert profile.sbatch["begin"] == "10:30"


def test_other_yaml_numbers_are_unchanged(tmp_path):
    profile = load_profile(
        write(tmp_path, "cpus_per_task: 0x10\nthrottle: 1_000\ntime_factor: 1.5\nmemory_factor: 1e1\n")
    )
    assert (profile.cpus_per_task, profile.throttle, profile.time_factor, profile.memory_factor) == (
        16,
        1000,
        1.5,
        10.0,
    )


@pytest.mark.parametrize("text", ["4G", "512M", "2048", "1T", "4GB"])
def test_memory_strings_are_kept(text):
    assert ClusterProfile(mem_per_cpu=text).mem_per_cpu == text


@pytest.mark.parametrize("value", ["'2h'", "'1:75:00'", "'0'", "'1-25'", "2.5", "true", "0", "-1"])
def test_invalid_time(tmp_path, value):
    error = load_error(tmp_path, f"time: {value}\n")
    assert error.key_path == "time"


@pytest.mark.parametrize("value", ["'4 gigs'", "'4X'", "'-1G'", "'0'", "1.5", "0", "false"])
def test_invalid_memory(tmp_path, value):
    error = load_error(tmp_path, f"mem_per_cpu: {value}\n")
    assert error.key_path == "mem_per_cpu"


def test_full_profile_yaml(tmp_path):
    path = write(
        tmp_path,
        """
account: def-someone
partition: gpu
time: 1-00:00:00
mem_per_cpu: 3500M
cpus_per_task: 4
gpus: a100:2
sbatch:
  qos: high
  constraint: "[cascade|skylake]"
  exclusive: true
  requeue: false
  nice: 10
  mail-type: END,FAIL
indices_per_task: 8
parallel: 4
throttle: 50
setup: module load python/3.11
command: python -m project.main --exp {experiment} --idx {index}
max_array_tasks: 1000
max_submit: 900
completion_marker: done.txt
max_attempts: 5
escalate: true
time_factor: 1.5
memory_factor: 2
""",
    )
    profile = load_profile(path)
    assert profile.source == str(path)
    assert profile.setup == ("module load python/3.11",)
    assert profile.sbatch["nice"] == "10"
    assert profile.memory_factor == 2.0 and isinstance(profile.memory_factor, float)
    assert list(profile.sbatch_options().items()) == [
        ("account", "def-someone"),
        ("partition", "gpu"),
        ("time", "1-00:00:00"),
        ("mem-per-cpu", "3500M"),
        ("cpus-per-task", "4"),
        ("gres", "gpu:a100:2"),
        ("constraint", "[cascade|skylake]"),
        ("exclusive", True),
        ("mail-type", "END,FAIL"),
        ("nice", "10"),
        ("qos", "high"),
    ]


def test_json_profile_equals_yaml_profile(tmp_path):
    data = {
        "account": "acct",
        "hours": 2,
        "mem_per_cpu": "2G",
        "gpus": 1,
        "sbatch": {"qos": "normal", "exclusive": True},
        "setup": ["module load cuda", "source .venv/bin/activate"],
        "indices_per_task": 2,
        "parallel": 2,
    }
    from_json = load_profile(write(tmp_path, json.dumps(data), "cluster.json"))
    from_yaml = load_profile(
        write(
            tmp_path,
            "account: acct\nhours: 2\nmem_per_cpu: 2G\ngpus: 1\nsbatch: {qos: normal, exclusive: true}\n"
            "setup:\n  - module load cuda\n  - source .venv/bin/activate\nindices_per_task: 2\nparallel: 2\n",
            "cluster.yml",
        )
    )
    assert from_json == from_yaml
    assert from_json.sbatch_options()["gres"] == "gpu:1"
    assert from_json.time == "1:59:59"


def test_empty_sbatch_and_setup_are_allowed(tmp_path):
    profile = load_profile(write(tmp_path, "sbatch: {}\nsetup: []\n"))
    assert profile == ClusterProfile()


# -- sbatch options ----------------------------------------------------------------------------


def test_known_options_come_from_simple_slurm():
    known = known_sbatch_options()
    assert {"qos", "constraint", "mail-type", "exclusive", "gres", "array", "job-name"} <= known
    assert not any("_" in name for name in known)


def test_unknown_sbatch_option_did_you_mean(tmp_path):
    error = load_error(tmp_path, "sbatch:\n  constrant: cascade\n")
    assert error.key_path == "sbatch.constrant"
    assert "unknown sbatch option" in str(error)
    assert "did you mean 'constraint'" in str(error)


def test_underscore_spelling_suggests_the_dashed_name(tmp_path):
    error = load_error(tmp_path, "sbatch:\n  mail_type: END\n")
    assert error.key_path == "sbatch.mail_type"
    assert "did you mean 'mail-type'" in str(error)


@pytest.mark.parametrize("name", OWN_SBATCH_OPTIONS)
def test_own_options_are_refused(tmp_path, name):
    error = load_error(tmp_path, f"sbatch:\n  {name}: x\n")
    assert error.key_path == f"sbatch.{name}"
    assert "set by the orchestrator" in str(error)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("time", "'time'"),
        ("mem-per-cpu", "'mem_per_cpu'"),
        ("cpus-per-task", "'cpus_per_task'"),
        ("account", "'account'"),
        ("partition", "'partition'"),
        ("mem", "'mem_per_cpu'"),
        ("mem-per-gpu", "'mem_per_cpu'"),
        ("test-only", "submit nothing"),
        ("wait", "block"),
    ],
)
def test_options_with_profile_keys_or_that_break_submission_are_refused(tmp_path, name, hint):
    error = load_error(tmp_path, f"sbatch:\n  {name}: '1'\n")
    assert error.key_path == f"sbatch.{name}"
    assert hint in str(error)


def test_gres_conflicts_with_gpus(tmp_path):
    error = load_error(tmp_path, "gpus: 1\nsbatch:\n  gres: gpu:2\n")
    assert error.key_path == "sbatch.gres"
    assert ClusterProfile(sbatch={"gres": "gpu:2,tmpfs:10G"}).sbatch_options()["gres"] == "gpu:2,tmpfs:10G"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[1, 2]", "a string, an integer or true/false"),
        ("{a: 1}", "a string, an integer or true/false"),
        ("1.5", "a string, an integer or true/false"),
        ("null", "a string, an integer or true/false"),
        ("''", "empty"),
        ('"normal\\n#SBATCH --uid=0"', "one line"),
    ],
)
def test_bad_sbatch_values(tmp_path, value, expected):
    error = load_error(tmp_path, f"sbatch:\n  qos: {value}\n")
    assert error.key_path == "sbatch.qos"
    assert expected in str(error)


def test_sbatch_must_be_a_mapping(tmp_path):
    assert load_error(tmp_path, "sbatch: [qos]\n").key_path == "sbatch"


def test_false_flag_is_left_out():
    assert "requeue" not in ClusterProfile(sbatch={"requeue": False}).sbatch_options()
    assert ClusterProfile(sbatch={"requeue": True}).sbatch_options()["requeue"] is True


# -- top-level keys and types ------------------------------------------------------------------


def test_unknown_top_level_key_did_you_mean(tmp_path):
    error = load_error(tmp_path, "mem_per_cpus: 4G\n")
    assert error.key_path == "mem_per_cpus"
    assert "did you mean 'mem_per_cpu'" in str(error)


def test_dashed_top_level_key_suggests_underscores(tmp_path):
    error = load_error(tmp_path, "cpus-per-task: 4\n")
    assert "did you mean 'cpus_per_task'" in str(error)


def test_source_is_not_a_profile_key(tmp_path):
    assert load_error(tmp_path, "source: other.yaml\n").key_path == "source"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("cpus_per_task: '4'", "cpus_per_task", "positive integer"),
        ("cpus_per_task: 0", "cpus_per_task", "positive integer"),
        ("cpus_per_task: true", "cpus_per_task", "positive integer"),
        ("indices_per_task: -2", "indices_per_task", "positive integer"),
        ("throttle: 0", "throttle", "positive integer"),
        ("throttle: 2.0", "throttle", "positive integer"),
        ("max_array_tasks: '1000'", "max_array_tasks", "positive integer"),
        ("max_submit: 0", "max_submit", "positive integer"),
        ("max_attempts: 0", "max_attempts", "positive integer"),
        ("parallel: 2", "parallel", "indices_per_task"),
        ("escalate: 'yes'", "escalate", "true or false"),
        ("time_factor: '2'", "time_factor", "number"),
        ("memory_factor: 0.5", "memory_factor", "at least 1"),
        ("account: 5", "account", "string"),
        ("account: ''", "account", "empty"),
        ("partition: a b", "partition", "whitespace"),
        ("gpus: 0", "gpus", "positive"),
        ("gpus: two", "gpus", "GPU count"),
        ("gpus: true", "gpus", "GPU count"),
        ("setup: 3", "setup", "list of shell lines"),
        ("setup: [ok, 3]", "setup[1]", "string"),
        ("command: 5", "command", "string"),
        ("command: '  '", "command", "empty"),
        ("template: 3", "template", "string"),
        ("completion_marker: /abs/done", "completion_marker", "inside the save path"),
        ("completion_marker: ../done", "completion_marker", "inside the save path"),
    ],
)
def test_wrong_types_and_values(tmp_path, text, key, expected):
    error = load_error(tmp_path, text + "\n")
    assert error.key_path == key
    assert expected in str(error)


def test_wrong_type_names_the_type(tmp_path):
    assert "not a string ('4')" in str(load_error(tmp_path, "cpus_per_task: '4'\n"))


# -- command -----------------------------------------------------------------------------------


def test_unknown_command_placeholder(tmp_path):
    error = load_error(tmp_path, "command: python main.py -e {experiment} -i {index} --run {run}\n")
    assert error.key_path == "command"
    assert "{run}" in str(error)
    assert "{experiment}, {index}" in str(error)


def test_shell_braces_must_be_doubled(tmp_path):
    error = load_error(tmp_path, "command: python main.py --out ${SCRATCH} -i {index}\n")
    assert "{SCRATCH}" in str(error) and "{{" in str(error)
    profile = load_profile(write(tmp_path, "command: python main.py --out ${{SCRATCH}} -i {index}\n"))
    assert profile.command == "python main.py --out ${{SCRATCH}} -i {index}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run {index:03d}", "format spec"),
        ("run {index!r}", "format spec"),
        ("run {}", "{}"),
        ("run {0}", "{0}"),
        ("run {index", "placeholder syntax"),
        ("run '{experiment}'", "do not quote"),
        ('run "{index}"', "do not quote"),
    ],
)
def test_bad_commands(command, expected):
    with pytest.raises(UserError) as info:
        ClusterProfile(command=command)
    assert info.value.key_path == "command"
    assert expected in str(info.value)


def test_command_without_placeholders_is_allowed():
    # the entry script may read ORCH_EXPERIMENT and ORCH_INDEX from its environment instead
    assert ClusterProfile(command="python main.py").command == "python main.py"


# -- template path -----------------------------------------------------------------------------


def test_template_is_relative_to_the_profile(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "my.sh.j2").write_text("#!/bin/bash\n", encoding="utf-8")
    profile = load_profile(write(tmp_path, "template: my.sh.j2\n", "profiles/cluster.yaml"))
    assert profile.template == str(tmp_path / "profiles" / "my.sh.j2")


def test_absolute_template(tmp_path):
    template = tmp_path / "abs.sh.j2"
    template.write_text("#!/bin/bash\n", encoding="utf-8")
    assert load_profile(write(tmp_path, f"template: {template}\n")).template == str(template)


def test_missing_template(tmp_path):
    error = load_error(tmp_path, "template: nowhere.sh.j2\n")
    assert error.key_path == "template"
    assert "nowhere.sh.j2" in str(error)


# -- files -------------------------------------------------------------------------------------


def test_malformed_yaml_has_line_and_column(tmp_path):
    error = load_error(tmp_path, "account: x\ntime: [1, 2\nmem_per_cpu: 4G\n")
    assert "line 3, column" in str(error)


def test_malformed_json_has_line_and_column(tmp_path):
    error = load_error(tmp_path, '{\n  "account": "x",\n  "time": 3,\n}\n', "cluster.json")
    assert "line 4, column 1" in str(error)


def test_top_level_must_be_a_mapping(tmp_path):
    assert "top level" in str(load_error(tmp_path, "- a\n- b\n"))
    assert "top level" in str(load_error(tmp_path, ""))


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found") as info:
        load_profile(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)


def test_directory_and_unknown_suffix(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(UserError, match="directory"):
        load_profile(tmp_path / "dir.yaml")
    with pytest.raises(UserError, match=r"\.yaml, \.yml or \.json"):
        load_profile(write(tmp_path, "time: 1\n", "cluster.txt"))


def test_not_utf8(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_bytes(b"account: \xff\n")
    with pytest.raises(UserError, match="UTF-8"):
        load_profile(path)


# -- with_resources ----------------------------------------------------------------------------


def test_with_resources_copies():
    profile = ClusterProfile(account="a", time="1:00:00", mem_per_cpu="2G", sbatch={"qos": "q"}, source="p.yaml")
    bigger = profile.with_resources(time="2:00:00", mem_per_cpu="4G")
    assert (bigger.time, bigger.mem_per_cpu) == ("2:00:00", "4G")
    assert (profile.time, profile.mem_per_cpu) == ("1:00:00", "2G")
    assert bigger.account == "a" and bigger.sbatch == {"qos": "q"} and bigger.source == "p.yaml"
    assert profile.with_resources(time="3:00:00").mem_per_cpu == "2G"
    assert profile.with_resources() == profile


def test_with_resources_validates():
    with pytest.raises(UserError) as info:
        ClusterProfile(source="p.yaml").with_resources(time="forever")
    assert info.value.key_path == "time" and "p.yaml" in str(info.value)

"""The #SBATCH directives: what they hold, sbatch's quoting, and the values refused; the entry command."""

from __future__ import annotations

import pytest
from render_support import GOLDEN_CASES, HOSTILE_ROOT, make_script

from orchestrator.errors import UserError
from orchestrator.profile import ClusterProfile
from orchestrator.render import render_script, sbatch_directives, sbatch_quote, shell_command


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

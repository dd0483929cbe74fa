"""`orchestrator plan` through the real console entry point: output, exit codes, streaming."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from support import cli_argv, orchestrator, write_experiment

SWEEP = {"agent": "DQN", "metaParameters": {"alpha": [0.1, 0.01], "opt": {"name": "adam", "b1": [0.9, 0.99]}}}


def test_plan_jsonl_lists_every_index_with_params_and_save_path(project: Path) -> None:
    path = write_experiment(project, "experiments/X/dqn.json", SWEEP)
    result = orchestrator("plan", path, "--runs", "2", "--jsonl", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["index"] for line in lines] == list(range(8))
    assert lines[5] == {
        "experiment": "experiments/X/dqn.json",
        "index": 5,
        "run": 1,
        "params": {"alpha": 0.01, "opt": {"b1": 0.9, "name": "adam"}},
        "save_path": "results/X/alpha-0.01_opt.b1-0.9_opt.name-adam/1",
    }


def test_plan_human_output(project: Path) -> None:
    path = write_experiment(project, "experiments/X/dqn.json", SWEEP)
    result = orchestrator("plan", path, "--runs", "10", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "permutations: 4   runs: 10   total indices: 40 (0-39)" in result.stdout
    assert "results/X/alpha-0.01_opt.b1-0.99_opt.name-adam/9" in result.stdout  # the last index


def test_several_experiments_in_argument_order(project: Path) -> None:
    a = write_experiment(project, "experiments/B/b.json", {"metaParameters": {"x": [1, 2]}})
    b = write_experiment(project, "experiments/A/a.json", {"metaParameters": {"y": [3]}})
    result = orchestrator("plan", a, b, "--jsonl", cwd=project)
    assert [(d["experiment"], d["index"]) for d in map(json.loads, result.stdout.splitlines())] == [
        (a, 0),
        (a, 1),
        (b, 0),
    ]


def test_bad_input_exits_2_with_one_line(project: Path) -> None:
    bad = write_experiment(project, "experiments/X/bad.json", {"metaParameters": {"alpha": []}})
    cases = [
        (["plan", bad], "experiments/X/bad.json: metaParameters.alpha: empty list"),
        (["plan", "experiments/none.json"], "experiments/none.json: experiment file not found"),
        (["plan", bad, "--runs", "0"], "--runs: must be a positive integer, not 0"),
        (["plan", bad, "--bogus"], "unrecognized arguments: --bogus"),
    ]
    for args, message in cases:
        result = orchestrator(*args, cwd=project)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_unknown_placeholder_and_missing_config(project: Path) -> None:
    path = write_experiment(project, "experiments/X/dqn.json", SWEEP)
    (project / "config.json").write_text('{"save_path": "results/{agnet}/{params}"}')
    result = orchestrator("plan", path, cwd=project)
    assert result.returncode == 2
    assert "unknown placeholder {agnet}" in result.stderr and "{agent}" in result.stderr
    (project / "config.json").unlink()
    result = orchestrator("plan", path, cwd=project)
    assert result.returncode == 2
    assert "config.json: not found" in result.stderr


def test_jsonl_streams_a_huge_sweep(project: Path) -> None:
    """Ten million indices: the first lines arrive while the rest is still being computed."""
    huge = {"metaParameters": {f"p{k}": list(range(10)) for k in range(7)}}
    path = write_experiment(project, "experiments/H/huge.json", huge)
    process = subprocess.Popen(
        cli_argv("plan", path, "--jsonl"),
        cwd=project,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = [json.loads(process.stdout.readline()) for _ in range(3)]
    still_running = process.poll() is None
    process.kill()
    process.wait()
    assert [d["index"] for d in first] == [0, 1, 2]
    assert first[1]["params"]["p0"] == 1
    assert still_running


def test_reader_closing_the_pipe_is_not_an_error(project: Path) -> None:
    huge = {"metaParameters": {f"p{k}": list(range(10)) for k in range(6)}}
    path = write_experiment(project, "experiments/H/huge.json", huge)
    result = subprocess.run(
        shlex.join(cli_argv("plan", path, "--jsonl")) + " | head -n 2",
        shell=True,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""

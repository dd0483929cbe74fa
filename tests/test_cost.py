"""Cost before submitting: figures checked against hand computations, and the confirm_above rule,
with and without a terminal (a real pseudo-terminal, not a mock)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from support import run_on_a_pty

from orchestrator.cost import (
    ArrayRequest,
    Cost,
    Decision,
    ask,
    cost,
    decide,
    expected_cost,
    format_cost,
    gpu_count,
    refusal,
)
from orchestrator.errors import UserError


def test_upper_bound_by_hand() -> None:
    """30 tasks of hours(3) = 2:59:59 = 10,799 s on 1 CPU with 4G: 30 x 10,799 / 3,600 CPU-hours."""
    c = cost([ArrayRequest.of(30, "2:59:59", "4G")])
    assert c.tasks == 30
    assert c.cpu_hours == pytest.approx(89.991667, abs=1e-6)
    assert c.gpu_hours == 0
    assert c.core_years == pytest.approx(89.991667 / 8760, abs=1e-9)  # 4G per core: one core-equivalent
    assert c.to_json() == {"tasks": 30, "cpu_hours": 89.9917, "gpu_hours": 0.0, "core_years": 0.010273}
    assert format_cost(c) == "cost: 30 task(s), 89.99 CPU-hours at the requested limits (at most)"


def test_gpus_cpus_memory_and_several_arrays_by_hand() -> None:
    """11 + 11 + 8 tasks (three arrays); the last 8 escalated to 2 h. 2 CPUs, 8G per CPU, 2 GPUs each."""
    requests = [
        ArrayRequest.of(11, "1:00:00", "8G", cpus_per_task=2, gpus="a100:2"),
        ArrayRequest.of(11, "1:00:00", "8G", cpus_per_task=2, gpus="a100:2"),
        ArrayRequest.of(8, "2:00:00", "8G", cpus_per_task=2, gpus=2),
    ]
    c = cost(requests)
    assert c.tasks == 30
    assert c.cpu_hours == pytest.approx(22 * 1 * 2 + 8 * 2 * 2)  # 76
    assert c.gpu_hours == pytest.approx(22 * 1 * 2 + 8 * 2 * 2)  # 76
    # 8G per CPU is two core-equivalents of 4G: 2 CPUs x 2 = 4 per task
    assert c.core_equivalent_hours == pytest.approx(22 * 1 * 4 + 8 * 2 * 4)  # 152
    assert c.core_years == pytest.approx(152 / 8760)
    assert c.allocation_share(10) == pytest.approx(152 / 8760 / 10)
    assert c.to_json(allocation=10)["allocation_share"] == round(152 / 87600, 6)
    line = format_cost(c, allocation=10)
    assert line == (
        "cost: 30 task(s), 76.00 CPU-hours, 76.00 GPU-hours at the requested limits (at most); "
        "0.0174 core-years, 0.17% of the 10 core-year allocation"
    )


def test_core_years_as_pyexputils_computes_them() -> None:
    """PyExpUtils' approximate_cost(jobs, cores_per_job, mem_per_core MB, hours), by hand and (if installed) itself."""
    cases = [(30, 1, 4096, 3), (10, 4, 12288, 12), (5, 2, 1024, 1)]
    for jobs, cores, mem_mb, hours in cases:
        ours = cost([ArrayRequest(jobs, hours * 3600, cores, 0, mem_mb)]).core_years
        by_hand = jobs * cores * max(mem_mb / 1024 / 4, 1) * hours / (24 * 365)
        assert ours == pytest.approx(by_hand)
    try:
        from PyExpUtils.runner.utils import approximate_cost  # type: ignore[import-not-found]
    except ImportError:
        return
    for jobs, cores, mem_mb, hours in cases:
        assert cost([ArrayRequest(jobs, hours * 3600, cores, 0, mem_mb)]).core_years == pytest.approx(
            approximate_cost(jobs, cores, mem_mb, hours)
        )


def test_costs_add_up() -> None:
    a, b = Cost(2, 1.5, 0.5, 2.0), Cost(3, 2.0, 0.0, 2.5)
    assert a + b == Cost(5, 3.5, 0.5, 4.5)
    assert cost([]) == Cost()


def test_expected_cost_from_measured_times_by_hand() -> None:
    request = ArrayRequest(10, 3600, 1, 1, 1024)
    # 4 indices per task, 2 at a time, 600 s each: two rounds, 1,200 s per task
    c = expected_cost(request, [4] * 10, 600, parallel=2)
    assert (c.tasks, c.cpu_hours, c.gpu_hours) == (10, pytest.approx(10 * 1200 / 3600), pytest.approx(10 * 1200 / 3600))
    # a task is stopped at its limit: 3 rounds of 3,000 s count as 3,600 s
    assert expected_cost(request, [5], 3000, parallel=2).cpu_hours == pytest.approx(1.0)
    # a last task with fewer indices costs less
    assert expected_cost(request, [3, 1], 100).cpu_hours == pytest.approx(400 / 3600)
    line = format_cost(cost([request]), expected=c)
    assert line.endswith("; expected 3.33 CPU-hours from measured run times")
    with pytest.raises(ValueError):
        expected_cost(request, [1], 10, parallel=0)


@pytest.mark.parametrize(
    ("gpus", "count"), [(None, 0), (1, 1), (2, 2), ("2", 2), ("a100:2", 2), ("nvidia_a100-80gb:4", 4)]
)
def test_gpu_count(gpus: object, count: int) -> None:
    assert gpu_count(gpus) == count  # type: ignore[arg-type]


@pytest.mark.parametrize("gpus", ["a100", 0, "a100:0", True, "two"])
def test_gpu_count_refuses_what_is_not_a_count(gpus: object) -> None:
    with pytest.raises(UserError, match="invalid gpus"):
        gpu_count(gpus)  # type: ignore[arg-type]


def test_array_request_refuses_bad_limits() -> None:
    with pytest.raises(UserError, match="invalid time"):
        ArrayRequest.of(1, "three hours", "4G")
    with pytest.raises(UserError, match="invalid mem_per_cpu"):
        ArrayRequest.of(1, "1:00:00", "lots")


# -- confirm_above -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "above", "yes", "terminal", "decision"),
    [
        (100, None, False, False, Decision.PROCEED),  # no confirm_above
        (100, 100, False, False, Decision.PROCEED),  # not above
        (100.01, 100, False, True, Decision.ASK),
        (100.01, 100, False, False, Decision.REFUSE),
        (100.01, 100, True, False, Decision.PROCEED),  # --yes
        (100.01, 100, True, True, Decision.PROCEED),
        (0, 0, False, False, Decision.PROCEED),
    ],
)
def test_decide(hours: float, above: float | None, yes: bool, terminal: bool, decision: Decision) -> None:
    assert decide(hours, above, yes=yes, interactive=terminal) is decision


def test_refusal_is_one_line_saying_what_to_do() -> None:
    error = refusal(123.456, 100)
    assert error.exit_code == 2
    assert str(error) == (
        "this submission asks for up to 123.46 CPU-hours, above confirm_above (100); nothing was submitted: "
        "run it on a terminal to confirm, or pass --yes"
    )


@pytest.mark.parametrize(
    ("answer", "yes"),
    [("y\n", True), ("YES\n", True), (" yes \n", True), ("\n", False), ("n\n", False), ("no\n", False), ("", False)],
)
def test_ask_defaults_to_no(answer: str, yes: bool) -> None:
    out = io.StringIO()
    assert ask("Submit 100 CPU-hours?", read=lambda: answer, out=out) is yes
    assert out.getvalue().startswith("Submit 100 CPU-hours? [y/N] ")


def test_ask_end_of_input_is_no() -> None:
    def eof() -> str:
        raise EOFError

    out = io.StringIO()
    assert ask("Go?", read=eof, out=out) is False
    assert out.getvalue() == "Go? [y/N] \n"


PROBE = (
    "from orchestrator.cost import ask, interactive; t = interactive(); print('terminal', t, flush=True); "
    "print('answer', ask('Go?') if t else None, flush=True)"
)


def _run_on_a_pty(answer: bytes) -> str:
    return run_on_a_pty([sys.executable, "-c", PROBE], answer, timeout=30)[1]


@pytest.mark.parametrize(("answer", "expected"), [(b"y\n", "answer True"), (b"n\n", "answer False")])
def test_on_a_terminal_it_asks(answer: bytes, expected: str) -> None:
    output = _run_on_a_pty(answer)
    assert "terminal True" in output and "Go? [y/N]" in output, output
    assert expected in output, output


def test_without_a_terminal_it_does_not_ask() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert result.stdout.splitlines() == ["terminal False", "answer None"]
    assert "[y/N]" not in result.stderr

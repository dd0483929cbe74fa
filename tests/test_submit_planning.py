"""The pure steps of submission: selection, escalation, bundling, array splitting, capacity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.index_set import IndexSet
from orchestrator.profile import ClusterProfile
from orchestrator.slurm_formats import PartitionLimits
from orchestrator.submit import Resources, escalated, fit_capacity, split_arrays, tasks_of

BASE = Resources("0:59:59", "1G")


def _limits(max_time: int | None = None, per_cpu: int | None = None, per_node: int | None = None) -> PartitionLimits:
    return PartitionLimits("p", True, max_time, per_cpu, per_node)


def test_escalation_doubles_time_after_timeout_and_memory_after_oom() -> None:
    profile = ClusterProfile()
    last = Resources("0:01:00", "2G")
    assert escalated(BASE, last, "TIMEOUT", profile, None) == Resources("1:59:58", "1G")
    assert escalated(BASE, Resources("2:00:00", "1G"), "TIMEOUT", profile, None).time == "4:00:00"
    assert escalated(BASE, last, "OUT_OF_MEMORY", profile, None) == Resources("0:59:59", "4G")
    assert escalated(BASE, last, "FAILED", profile, None) == BASE
    assert escalated(BASE, None, "TIMEOUT", profile, None) == BASE


def test_escalation_is_capped_by_the_partition() -> None:
    profile = ClusterProfile(time_factor=10.0, memory_factor=10.0, cpus_per_task=2)
    capped = escalated(BASE, Resources("3:00:00", "1G"), "TIMEOUT", profile, _limits(max_time=4 * 3600))
    assert capped.time == "4:00:00"
    by_cpu = escalated(BASE, Resources("1:00:00", "2G"), "OUT_OF_MEMORY", profile, _limits(per_cpu=8192))
    assert by_cpu.mem_per_cpu == "8G"
    by_node = escalated(BASE, Resources("1:00:00", "2G"), "OUT_OF_MEMORY", profile, _limits(per_node=12288))
    assert by_node.mem_per_cpu == "6G"  # 12G per node over 2 CPUs


def test_bundle_and_split() -> None:
    assert list(tasks_of(IndexSet.of([5, 1, 2, 9, 3]), 2)) == [[1, 2], [3, 5], [9]]
    arrays = split_arrays(IndexSet.range(0, 30), 1, 11)
    assert [len(a) for a in arrays] == [11, 11, 8]
    assert [list(tasks_of(a, 4)) for a in split_arrays(IndexSet.range(0, 10), 4, 2)] == [
        [[0, 1, 2, 3], [4, 5, 6, 7]],
        [[8, 9]],
    ]


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=300), st.integers(1, 7), st.integers(1, 50))
def test_every_index_lands_in_exactly_one_task(indices: list[int], per_task: int, max_tasks: int) -> None:
    arrays = split_arrays(IndexSet.of(indices), per_task, max_tasks)
    tasks = [list(tasks_of(array, per_task)) for array in arrays]
    flat = [i for array in tasks for task in array for i in task]
    assert flat == sorted(indices)
    assert all(1 <= len(array) <= max_tasks for array in tasks)
    assert all(1 <= len(task) <= per_task for array in tasks for task in array)


@given(
    st.lists(st.integers(0, 5000), unique=True, max_size=200),
    st.integers(1, 20),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_capacity_submits_what_fits_and_keeps_the_rest(
    indices: list[int], max_tasks: int, per_task: int, capacity: int | None
) -> None:
    arrays = split_arrays(IndexSet.of(indices), per_task, max_tasks)
    fitted, left = fit_capacity(arrays, per_task, capacity)
    submitted = [i for array in fitted for i in array]
    assert sorted(submitted + list(left)) == sorted(indices)
    tasks = sum(len(list(tasks_of(a, per_task))) for a in fitted)
    if capacity is not None:
        assert tasks == min(capacity, -(-len(indices) // per_task))
    else:
        assert not left


def test_selection_takes_missing_and_failed_and_given_up_only_when_retried() -> None:
    from types import SimpleNamespace

    from orchestrator.submit import select_indices

    sets = {
        "done": IndexSet.of([0]),
        "running": IndexSet.of([1]),
        "pending": IndexSet.of([2]),
        "missing": IndexSet.of([3, 6]),
        "failed": IndexSet.of([4, 5]),
        "given_up": IndexSet.of([5]),  # a part of failed
        "unknown": IndexSet.of([7]),
    }
    status = SimpleNamespace(sets=sets)
    chosen, given_up = select_indices(status, retry_given_up=False)  # type: ignore[arg-type]
    assert (list(chosen), list(given_up)) == ([3, 4, 6], [5])
    chosen, given_up = select_indices(status, retry_given_up=True)  # type: ignore[arg-type]
    assert (list(chosen), list(given_up)) == ([3, 4, 5, 6], [])

"""The pure steps of submission: selection, escalation, bundling, array splitting, capacity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.profile import ClusterProfile
from orchestrator.slurm_formats import PartitionLimits
from orchestrator.submit import Resources, bundle, escalated, fit_capacity, split_arrays

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
    assert bundle([5, 1, 2, 9, 3], 2) == [[1, 2], [3, 5], [9]]
    tasks = bundle(range(30), 1)
    arrays = split_arrays(tasks, 11)
    assert [len(a) for a in arrays] == [11, 11, 8]


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=300), st.integers(1, 7), st.integers(1, 50))
def test_every_index_lands_in_exactly_one_task(indices: list[int], per_task: int, max_tasks: int) -> None:
    arrays = split_arrays(bundle(indices, per_task), max_tasks)
    flat = [i for array in arrays for task in array for i in task]
    assert sorted(flat) == sorted(indices)
    assert all(1 <= len(array) <= max_tasks for array in arrays)
    assert all(1 <= len(task) <= per_task for array in arrays for task in array)


@given(
    st.lists(st.integers(0, 5000), unique=True, max_size=200),
    st.integers(1, 20),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_capacity_submits_what_fits_and_keeps_the_rest(
    indices: list[int], max_tasks: int, capacity: int | None
) -> None:
    arrays = split_arrays(bundle(indices, 1), max_tasks)
    fitted, left = fit_capacity(arrays, capacity)
    submitted = [i for array in fitted for task in array for i in task]
    assert sorted(submitted + left) == sorted(indices)
    if capacity is not None:
        assert sum(len(a) for a in fitted) == min(capacity, len(indices))
    else:
        assert left == []


def test_selection_takes_missing_and_failed_until_given_up() -> None:
    from orchestrator.state import ExperimentStatus, IndexStatus

    statuses = [
        IndexStatus(0, "done", 1),
        IndexStatus(1, "running", 1),
        IndexStatus(2, "pending", 1),
        IndexStatus(3, "missing", 0),
        IndexStatus(4, "failed", 1, reason="TIMEOUT"),
        IndexStatus(5, "failed", 3, reason="FAILED exit 3"),
        IndexStatus(6, "missing", 5, reason="cancelled with orchestrator cancel"),
    ]
    status = ExperimentStatus(plan=None, indices=statuses)  # type: ignore[arg-type]
    from orchestrator.submit import select_indices

    chosen, given_up = select_indices(status, max_attempts=3, retry_given_up=False)
    assert [s.index for s in chosen] == [3, 4, 6]
    assert given_up == [5]
    chosen, given_up = select_indices(status, max_attempts=3, retry_given_up=True)
    assert [s.index for s in chosen] == [3, 4, 5, 6]
    assert given_up == []

"""The figures of a `docker stats` reading (runtime/stats.py): CPU % between two readings, memory without the
droppable page cache, network bytes over all interfaces, on cgroup v1 and v2 shapes of the engine's JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.runtime.stats import cpu_percent, memory_usage, network_bytes, sample_of


def reading(
    usage: int, before: int, system: int, system_before: int, cpus: int = 2, memory: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": usage}, "system_cpu_usage": system, "online_cpus": cpus},
        "precpu_stats": {"cpu_usage": {"total_usage": before}, "system_cpu_usage": system_before},
        "memory_stats": memory or {},
    }


def test_cpu_percent_is_the_share_of_the_system_delta_times_the_cpus() -> None:
    # 0.5 s of container CPU time while the 2-CPU system counted 2 s: one CPU half busy = 50 % (as `docker stats`).
    assert cpu_percent(reading(1_500_000_000, 1_000_000_000, 12_000_000_000, 10_000_000_000)) == 50.0


def test_a_first_streamed_reading_has_no_cpu_figure_and_no_sample() -> None:
    first = reading(1_000, 0, 5_000, 0)
    assert cpu_percent(first) is None
    assert sample_of(first) is None


def test_memory_leaves_out_the_inactive_page_cache_on_cgroup_v1_and_v2() -> None:
    v1 = {"usage": 10_000, "limit": 40_000, "stats": {"total_inactive_file": 4_000, "inactive_file": 1}}
    v2 = {"usage": 10_000, "limit": 40_000, "stats": {"inactive_file": 3_000}}
    assert memory_usage({"memory_stats": v1}) == (6_000, 40_000)
    assert memory_usage({"memory_stats": v2}) == (7_000, 40_000)
    assert memory_usage({}) == (0, 0)


def test_network_bytes_add_up_over_interfaces_and_are_zero_without_a_network() -> None:
    raw = {"networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 1}, "eth1": {"rx_bytes": 5, "tx_bytes": 2}}}
    assert network_bytes(raw) == (15, 3)
    assert network_bytes({}) == (0, 0)


def test_a_sample_has_every_figure() -> None:
    raw = reading(2, 1, 20, 10, cpus=1, memory={"usage": 50, "limit": 200, "stats": {}})
    raw["networks"] = {"eth0": {"rx_bytes": 7, "tx_bytes": 9}}
    assert sample_of(raw, now=123.0) == {
        "time": 123.0,
        "cpu_percent": 10.0,
        "memory_usage": 50,
        "memory_limit": 200,
        "memory_percent": 25.0,
        "network_rx": 7,
        "network_tx": 9,
    }


counts = st.integers(min_value=0, max_value=10**15)


@given(counts, counts, counts, st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=256))
def test_cpu_percent_is_never_negative_nor_more_than_all_cpus(
    before: int, used: int, system_before: int, system_delta: int, cpus: int
) -> None:
    used = min(used, system_delta)  # a container cannot use more CPU time than the whole system counted
    raw = reading(before + used, before, system_before + 1 + system_delta, system_before + 1, cpus=cpus)
    percent = cpu_percent(raw)
    assert percent is not None
    assert 0.0 <= percent <= cpus * 100.0 + 1e-6


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=4),
        lambda c: st.dictionaries(
            st.sampled_from(
                [
                    "cpu_stats",
                    "precpu_stats",
                    "memory_stats",
                    "networks",
                    "stats",
                    "usage",
                    "limit",
                    "cpu_usage",
                    "total_usage",
                    "system_cpu_usage",
                    "online_cpus",
                    "eth0",
                    "rx_bytes",
                ]
            ),
            c,
        ),
        max_leaves=20,
    )
)
def test_any_shape_of_reading_gives_a_sample_or_none_never_an_error(raw: object) -> None:
    if isinstance(raw, dict):
        sample = sample_of(raw)
        assert sample is None or sample["memory_usage"] >= 0

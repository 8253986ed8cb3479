"""The pure helpers of bench/c1m.py: stacks of services, the result summariser and the profile ranking.

Why here: bench/ scripts are not a package; the module is loaded from its file with bench/ on the path (as running
the script puts it), and only its pure functions are called (no server, no agents)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _load() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_c1m", BENCH / "c1m.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


c1m = _load()


def _measured(**overrides: Any) -> dict[str, Any]:
    measured: dict[str, Any] = {
        "server_running_seconds": 30.0,
        "agents_running_seconds": 29.5,
        "server_peak_rss_bytes": 500 * 2**20,
        "server_cpu_seconds": 20.0,
        "bench_cpu_seconds": 8.0,
        "deploy_messages": 1000,
        "deploy_bytes": 5_000_000,
        "total_messages": 1200,
        "total_bytes": 6_000_000,
        "reconnects": {"keepalive ping timeout": 2},
        "scale_by_one": {"up_desired_bytes": 800, "up_network_bytes": 100_000, "network_full_state_bytes": 1_000_000},
    }
    measured.update(overrides)
    return measured


@given(st.integers(1, 5000), st.integers(1, 300))
def test_stacks_hold_every_service_and_none_more_than_asked(services: int, per_stack: int) -> None:
    sizes = c1m.stack_sizes(services, per_stack)
    assert sum(sizes) == services
    assert all(1 <= size <= per_stack for size in sizes)
    assert len(sizes) == -(-services // per_stack)


def test_stack_sizes_refuse_nothing_to_submit() -> None:
    with pytest.raises(ValueError):
        c1m.stack_sizes(0, 10)


def test_compose_names_every_service_with_its_scale() -> None:
    compose, rancher = c1m.compose_of(3, 2, 1000)
    assert "c0003x000:" in compose and "c0003x001:" in compose
    assert rancher.count("scale: 1000") == 2


def test_summary_of_a_small_run_is_never_met_and_extrapolates_linearly() -> None:
    sizes = {"agents": 200, "services": 50, "per_service": 100}
    result = c1m.summarise(sizes, _measured())
    assert result["containers"] == 5000
    assert result["figure"] == 30.0
    assert not result["full_size"] and not result["met"]  # a small run says nothing about the target
    assert result["containers_per_second"] == round(5000 / 30, 1)
    estimate = result["estimate_at_full_size"]
    assert estimate["linear_seconds"] == 30 * 200  # 1,000,000 / 5,000 containers
    assert estimate["linear_server_cpu_seconds"] == round(_measured()["server_cpu_seconds"] * 200)
    assert set(estimate) == {"linear_seconds", "linear_server_cpu_seconds"}  # scoped states: bytes not extrapolated
    assert result["scale_by_one_bytes"] == 100_800 and not result["scale_by_one_met"]
    assert result["deploy_reconnects"] == 2


def test_full_size_is_met_only_when_every_target_holds() -> None:
    sizes = {"agents": 5000, "services": 1000, "per_service": 1000}
    quick = _measured(server_running_seconds=250.0, scale_by_one={"up_desired_bytes": 900, "up_network_bytes": 1000})
    assert c1m.summarise(sizes, quick)["met"]
    assert not c1m.summarise(sizes, {**quick, "server_running_seconds": 300.0})["met"]
    assert not c1m.summarise(sizes, {**quick, "server_peak_rss_bytes": 4 * 2**30 + 1})["met"]
    chatty = {**quick, "scale_by_one": {"up_desired_bytes": 900, "up_network_bytes": 1149}}
    assert not c1m.summarise(sizes, chatty)["met"]


def test_profile_ranks_innermost_corral_function_without_line_numbers() -> None:
    collapsed = [
        "run (corral/server/run.py:1);push (corral/server/network_pass.py:10);dumps (json/__init__.py:5) 6\n",
        "run (corral/server/run.py:1);push (corral/server/network_pass.py:12) 2\n",
        "run (corral/server/run.py:1);read (corral/store/keyed.py:3);fetch (sqlalchemy/x.py:9) 2\n",
        "garbage line\n",
    ]
    ranked = c1m.top_frames(collapsed, prefix="corral/")
    assert ranked[0] == ("push (corral/server/network_pass.py)", 80.0, 80.0)
    assert ranked[1] == ("read (corral/store/keyed.py)", 20.0, 20.0)
    assert ("run (corral/server/run.py)", 0.0, 100.0) not in ranked  # never innermost: no own time
    assert c1m.top_frames([]) == []

"""A host's resource use as the host page shows it: the sum of its containers' `docker stats` samples against the
machine's CPUs and memory that the agent reported in its hello.

Why summed from containers: agents report their machine's totals (CPUs, memory) once, at hello, and each
container's use on request (`/v1/containers/{id}/stats`); they report no machine-wide use and no disk figures. The
page says what its figures cover rather than showing a machine-wide number that nobody measured.
"""

from __future__ import annotations

from typing import Any


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def usage_summary(facts: dict[str, Any], samples: list[dict[str, Any]], asked: int) -> dict[str, Any]:
    """CPU in % of the whole machine (all its CPUs) and memory in bytes and % of its memory, over the samples that
    came back (`asked` is how many containers were asked, so the page can say when some did not answer)."""
    cpus = int(_number(facts.get("cpus")))
    memory_total = int(_number(facts.get("memory_bytes")))
    cpu_used = sum(_number(s.get("cpu_percent")) for s in samples)  # % of one CPU, summed
    memory_used = int(sum(_number(s.get("memory_usage")) for s in samples))
    return {
        "containers": len(samples),
        "missing": max(0, asked - len(samples)),
        "cpus": cpus,
        "cpu_percent": round(min(100.0, cpu_used / cpus), 1) if cpus else None,
        "cpu_cores": round(cpu_used / 100.0, 2),
        "memory_used": memory_used,
        "memory_total": memory_total,
        "memory_percent": round(min(100.0, memory_used / memory_total * 100.0), 1) if memory_total else None,
    }

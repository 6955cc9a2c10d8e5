"""One benchmark figure as one JSON line (DESIGN.md §9), the same shape for every bench."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {"cores": os.cpu_count(), "mem_gib": round(mem_kb / 2**20, 1)}


def bench_line(
    bench: str,
    metric: str,
    value: float,
    unit: str,
    params: dict[str, Any],
    baseline: str | None = None,
    baseline_value: float | None = None,
    higher_is_better: bool = True,
) -> dict[str, Any]:
    """`ratio` > 1 always means ours is better than the baseline."""
    ratio = None
    if baseline_value and value:
        ratio = round(value / baseline_value if higher_is_better else baseline_value / value, 4)
    return {
        "bench": bench,
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "params": params,
        "machine": machine(),
    }

"""Shared by the benchmarks: medians over repeats, peak memory of a call, and the closing JSON line."""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc


def median_seconds(func, repeats: int) -> tuple[float, object]:
    """Median wall time of ``func()`` over ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def peak_bytes(func) -> int:
    """Peak bytes Python and numpy allocated during one call of ``func()`` (tracemalloc sees both)."""
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def emit(figures: dict) -> None:
    """The benchmark's last line: one JSON object a script can read."""
    print(json.dumps(figures, sort_keys=False))

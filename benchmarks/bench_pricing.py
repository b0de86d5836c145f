"""The pricing kernel against an idiomatic pandas groupby of the same statistics, and against one
``np.argsort`` of the values as a floor, in one process on the same data.

Data: 10,000,000 log prices in about 5,000 groups with heavy-tailed (Zipf-like) sizes. Statistics per
group (count, median, Q1, Q3, MAD) and per row (log ratio, robust z, fence distance). Outputs are asserted
equal before any time is reported. Times are medians over repeats; peak memory is the rise of the process's
resident-set high-water mark during one run (reset through /proc/self/clear_refs), which sees numba's and
pandas' allocations alike.

    .venv/bin/python benchmarks/bench_pricing.py [--rows N] [--groups G] [--repeats R]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, median_seconds  # noqa: E402

from tbml import kernels  # noqa: E402
from tbml.peer_stats import deviations, group_statistics  # noqa: E402

MIN_SPREAD = 0.05


def make_data(rows: int, groups: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, groups + 1) ** 0.9  # heavy-tailed group sizes
    codes = rng.choice(groups, size=rows, p=weights / weights.sum()).astype(np.int64)
    centre = rng.normal(3, 2, groups)
    values = centre[codes] + rng.standard_t(4, rows) * 0.4
    return values, codes


def kernel_version(values, codes, groups):
    stats = group_statistics(values, codes, groups)
    rows = deviations(values, codes, stats, MIN_SPREAD)
    return (stats.count, stats.median, stats.q1, stats.q3, stats.mad), rows


def pandas_version(values, codes, groups):
    frame = pd.DataFrame({"g": codes, "x": values})
    by = frame.groupby("g")["x"]
    stats = by.agg(count="count", median="median", q1=lambda s: s.quantile(0.25), q3=lambda s: s.quantile(0.75))
    frame["dev"] = (frame["x"] - frame["g"].map(stats["median"])).abs()
    stats["mad"] = frame.groupby("g")["dev"].median()
    stats = stats.reindex(range(groups))
    per_row = stats.loc[frame["g"]].to_numpy()
    median, q1, q3, mad = per_row[:, 1], per_row[:, 2], per_row[:, 3], per_row[:, 4]
    iqr = np.maximum(q3 - q1, MIN_SPREAD)
    log_ratio = values - median
    robust_z = log_ratio / np.maximum(kernels.MAD_TO_SIGMA * mad, MIN_SPREAD)
    fence = np.where(values > q3, (values - q3) / iqr, np.where(values < q1, -(q1 - values) / iqr, 0.0))
    table = (stats["count"].fillna(0).to_numpy(np.int64), *(stats[c].to_numpy() for c in ("median", "q1", "q3", "mad")))
    return table, (log_ratio, robust_z, fence)


def peak_rise_bytes(func) -> int:
    """Rise of this process's peak RSS while ``func`` runs (Linux: VmHWM after resetting it)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    func()
    return (_status("VmHWM") - before) * 1024


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def second_process_start() -> float:
    """Wall time for a fresh interpreter to import tbml.kernels and score a tiny input (cache=True)."""
    code = ("import time; t=time.perf_counter(); import numpy as np; from tbml.peer_stats import *;"
            "v=np.arange(10.0); c=np.zeros(10, np.int64); s=group_statistics(v,c,1,medcouple=True);"
            "deviations(v,c,s,0.1); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--groups", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    values, codes = make_data(args.rows, args.groups)
    kernel_version(values[:1000], codes[:1000], args.groups)  # compile (or load from cache) outside the timing

    k_table, k_rows = kernel_version(values, codes, args.groups)
    p_table, p_rows = pandas_version(values, codes, args.groups)
    np.testing.assert_array_equal(k_table[0], p_table[0])
    for got, want in zip((*k_table[1:], *k_rows), (*p_table[1:], *p_rows)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)  # pandas interpolates its own way
    del k_table, k_rows, p_table, p_rows

    kernel_s, _ = median_seconds(lambda: kernel_version(values, codes, args.groups), args.repeats)
    pandas_s, _ = median_seconds(lambda: pandas_version(values, codes, args.groups), max(1, args.repeats // 2))
    argsort_s, _ = median_seconds(lambda: np.argsort(values), args.repeats)
    kernel_mem = peak_rise_bytes(lambda: kernel_version(values, codes, args.groups))
    pandas_mem = peak_rise_bytes(lambda: pandas_version(values, codes, args.groups))
    start_s = sorted(second_process_start() for _ in range(3))[1]

    print(f"{args.rows:,} rows, {args.groups:,} groups; medians over {args.repeats} runs")
    print(f"  kernel  {kernel_s:7.3f} s   peak +{kernel_mem / 2**20:7.0f} MiB")
    print(f"  pandas  {pandas_s:7.3f} s   peak +{pandas_mem / 2**20:7.0f} MiB   kernel is {pandas_s / kernel_s:.1f}x faster")
    print(f"  argsort {argsort_s:7.3f} s   (one np.argsort of the values)   kernel is {argsort_s / kernel_s:.2f}x its speed")
    print(f"  fresh process: import + first call {start_s:.2f} s (compiled code cached on disk)")
    emit({
        "rows": args.rows,
        "groups": args.groups,
        "kernel_s": round(kernel_s, 4),
        "pandas_s": round(pandas_s, 4),
        "argsort_s": round(argsort_s, 4),
        "speedup_vs_pandas": round(pandas_s / kernel_s, 2),
        "speedup_vs_argsort": round(argsort_s / kernel_s, 2),
        "kernel_peak_mib": round(kernel_mem / 2**20, 1),
        "pandas_peak_mib": round(pandas_mem / 2**20, 1),
        "peak_mem_ratio_vs_pandas": round(kernel_mem / pandas_mem, 3),
        "second_process_start_s": round(start_s, 3),
    })


if __name__ == "__main__":
    started = time.perf_counter()
    main()

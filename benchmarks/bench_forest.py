"""Forest scoring: scikit-learn's ``IsolationForest.score_samples`` against tbml's numba walk of the same trees.

One forest is fitted the way tbml fits its own (200 trees of 256 lines) on a synthetic matrix shaped like
tbml's features (21 columns: heavy-tailed measures, counts, 0/1 flags). Both then score the same float64
matrices of 100,000 and 1,000,000 lines, each converting them itself; the scores are asserted equal to the
last bit before any time is reported. Times are medians over repeats, wall and CPU; tbml is also timed on
one thread, which says what the walk gains per core when the machine's other core is busy, and scikit-learn
with ``n_jobs=-1`` (its default is one core).

Numba's compile is timed apart, in fresh processes: with an empty cache (the first run after an install or
an edit), and with the cache a previous process left (every later ``tbml score``).

    .venv/bin/python benchmarks/bench_forest.py [--rows 100000 1000000] [--repeats R] [--trees T]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from sklearn.ensemble import IsolationForest

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

from tbml.detectors.forest import IsolationTrees  # noqa: E402

N_FEATURES = 21


def feature_matrix(rows: int, rng: np.random.Generator) -> np.ndarray:
    """Lines shaped like tbml's scaled features: 9 heavy-tailed measures, 4 counts, 8 flags, 1% far out."""
    measures = rng.standard_t(3, size=(rows, 9))
    counts = rng.poisson(1.5, size=(rows, 4)).astype(float)
    flags = (rng.random((rows, 8)) < 0.1).astype(float)
    matrix = np.hstack([measures, counts, flags])
    far = rng.random(rows) < 0.01
    matrix[far, :9] *= 20
    return matrix


def median_times(func, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``func()`` over ``repeats`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def on_one_thread(func):
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return func()
    finally:
        numba.set_num_threads(before)


FIRST_CALL = """
import time
started = time.perf_counter()
import numpy as np
from tbml.detectors.forest import IsolationTrees
from tbml.peer_stats import group_statistics
imported = time.perf_counter()
group_statistics(np.arange(10.0), np.zeros(10, np.int64), 1)  # tbml score prices lines before the forest
priced = time.perf_counter()
trees = IsolationTrees.from_arrays({"tree": [0, 0, 0], "left": [1, -1, -1], "right": [2, -1, -1], "feature": [0, -2, -2],
                                    "threshold": [0.5, -2.0, -2.0], "n_node_samples": [4, 1, 3]}, 4, 1)
trees.score_samples(np.zeros((10, 1)))
first = time.perf_counter()
trees.score_samples(np.zeros((10, 1)))
print(imported - started, priced - imported, first - priced, time.perf_counter() - first)
"""


def fresh_process(cache_dir: str | None = None) -> tuple[float, ...]:
    """A new interpreter's seconds to import tbml's forest, to make the pricing kernels' first call (which
    starts numba's threads, as in ``tbml score``), the forest walk's first (tiny) call, and its second."""
    env = dict(os.environ)
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True, env=env)
    return tuple(float(x) for x in out.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--max-samples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    forest = IsolationForest(n_estimators=args.trees, max_samples=args.max_samples, random_state=args.seed)
    forest.fit(feature_matrix(50_000, rng))
    trees = IsolationTrees.from_sklearn(forest)
    trees.score_samples(feature_matrix(100, rng))  # compile, or load from the cache, outside the timing

    print(f"{trees.n_trees} trees of {args.max_samples} lines, {N_FEATURES} features; {numba.get_num_threads()} "
          f"numba threads; medians over {args.repeats} runs (wall, CPU)")
    runs = []
    for rows in args.rows:
        X = feature_matrix(rows, rng)
        sk_wall, sk_cpu, expected = median_times(lambda: forest.score_samples(X), args.repeats)
        tb_wall, tb_cpu, got = median_times(lambda: trees.score_samples(X), args.repeats)
        one_wall, one_cpu, alone = on_one_thread(lambda: median_times(lambda: trees.score_samples(X), args.repeats))
        assert np.array_equal(got, expected) and np.array_equal(alone, expected), "scores differ from scikit-learn's"
        # scikit-learn over every core too (its trees in parallel; not its default, and the order in which
        # the trees' depths are added then varies, so only close scores are asked of it)
        all_wall, _, spread = median_times(lambda: forest.set_params(n_jobs=-1).score_samples(X), args.repeats)
        forest.set_params(n_jobs=None)
        np.testing.assert_allclose(spread, expected, rtol=1e-12)
        print(f"  {rows:>9,} lines  scikit-learn {sk_wall:7.3f} s ({sk_cpu:6.2f} CPU)   tbml {tb_wall:6.3f} s "
              f"({tb_cpu:5.2f} CPU)  {sk_wall / tb_wall:4.1f}x faster   tbml on one thread {one_wall:6.3f} s "
              f"({sk_wall / one_wall:.1f}x)   scikit-learn n_jobs=-1 {all_wall:6.3f} s ({all_wall / tb_wall:.1f}x tbml's)")
        runs.append({"rows": rows, "sklearn_s": round(sk_wall, 4), "tbml_s": round(tb_wall, 4),
                     "tbml_one_thread_s": round(one_wall, 4), "sklearn_cpu_s": round(sk_cpu, 3),
                     "tbml_cpu_s": round(tb_cpu, 3), "speedup": round(sk_wall / tb_wall, 2),
                     "speedup_one_thread": round(sk_wall / one_wall, 2), "sklearn_all_cores_s": round(all_wall, 4),
                     "speedup_vs_sklearn_all_cores": round(all_wall / tb_wall, 2)})
        del X, expected, got, alone

    with tempfile.TemporaryDirectory() as empty:
        cold = fresh_process(empty)  # compiles every kernel and saves it to the empty cache
        from_it = fresh_process(empty)
    cached = sorted(fresh_process() for _ in range(3))[1]  # the cache beside tbml's source, as tbml score uses it
    print(f"  fresh process, empty numba cache: forest walk's first call {cold[2]:.2f} s (compiling it), "
          f"the next process's from that cache {from_it[2]:.3f} s")
    print(f"  fresh process, tbml's cache: import {cached[0]:.2f} s, pricing's first call {cached[1]:.2f} s (starts "
          f"numba's threads), forest walk's first {cached[2] * 1e3:.0f} ms, its second {cached[3] * 1e3:.0f} ms")
    emit({"trees": trees.n_trees, "max_samples": args.max_samples, "features": N_FEATURES,
          "threads": numba.get_num_threads(), "repeats": args.repeats, "runs": runs,
          "speedup_at_largest": runs[-1]["speedup"],
          "compile_first_call_s": round(cold[2], 3), "cached_first_call_s": round(cached[2], 3),
          "cached_second_call_s": round(cached[3], 3), "threads_start_s": round(cached[1], 3)})


if __name__ == "__main__":
    main()

"""``tbml score`` end to end, with transfers, at 0.1M, 0.3M and 1M invoices (3M and 10M with --large).

Every figure comes from a fresh process, medians over --repeats of them: wall seconds, CPU use (user +
system over wall; 200% is both cores) and peak resident memory, read from the process's own rusage when it
exits (``os.wait4``); the stage breakdown comes from the run's manifest.json ("seconds"). Beside each size,
from the same run on the same files:

- the floor: a process that reads the two files with pyarrow and nothing else;
- the two baselines of ``tbml evaluate`` (``tbml.evaluate``: the IQR price filter and an isolation forest
  on the raw columns), called in a process that first loads and validates the files as tbml does, timed
  apart from that load.

Data: ``tbml generate --invoices N --seed S --format parquet``, kept in --data (made once per size and seed).

    .venv/bin/python benchmarks/bench_end_to_end.py [--sizes 100000 300000] [--large] [--repeats R] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

TBML = str(Path(sys.executable).with_name("tbml"))
SIZES = [100_000, 300_000, 1_000_000]
LARGE = [3_000_000, 10_000_000]

FLOOR = """
import sys, time
import pyarrow.parquet as pq
started = time.perf_counter()
tables = [pq.read_table(path) for path in sys.argv[1:]]
print(time.perf_counter() - started)
"""

BASELINES = """
import json, sys, time
from tbml.api import validate_files
from tbml.evaluate import iqr_filter_scores, raw_forest_scores
started = time.perf_counter()
invoices = validate_files(sys.argv[1], sys.argv[2]).results[0].accepted
loaded = time.perf_counter()
iqr_filter_scores(invoices)
filtered = time.perf_counter()
raw_forest_scores(invoices)
print(json.dumps({"load": loaded - started, "iqr_filter": filtered - loaded,
                  "raw_forest": time.perf_counter() - filtered}))
"""


def fresh_process(argv: list[str]) -> dict:
    """Run ``argv`` to its end: wall and CPU seconds, peak RSS (MiB) and stdout; raise if it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}:\n{err.read()[-2000:]}")
        return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
                "stdout": out.read()}


def dataset(invoices: int, seed: int, root: Path) -> tuple[Path, Path]:
    folder = root / f"invoices-{invoices}-seed-{seed}"
    if not (folder / "generation.json").exists():
        print(f"generating {invoices:,} invoices into {folder} ...", flush=True)
        fresh_process([TBML, "generate", "--invoices", str(invoices), "--seed", str(seed), "--format", "parquet",
                       "-o", str(folder)])
    return folder / "invoices.parquet", folder / "transfers.parquet"


def measure(invoices: Path, transfers: Path, repeats: int) -> dict:
    """Medians over ``repeats`` rounds of three fresh processes each: the floor, tbml score, the baselines."""
    floor, score, baselines = [], [], []
    for _ in range(repeats):  # rounds interleaved, so a busy spell on the machine hits all three alike
        run = fresh_process([sys.executable, "-c", FLOOR, str(invoices), str(transfers)])
        floor.append({**run, "read_s": float(run["stdout"])})
        with tempfile.TemporaryDirectory() as out:
            run = fresh_process([TBML, "score", str(invoices), "--transfers", str(transfers), "-o", out])
            score.append({**run, "stages": json.loads((Path(out) / "manifest.json").read_text())["seconds"]})
        run = fresh_process([sys.executable, "-c", BASELINES, str(invoices), str(transfers)])
        baselines.append({**run, **json.loads(run["stdout"])})
    stages = {name: median(score, lambda r: r["stages"].get(name, 0.0)) for name in score[0]["stages"]}
    # what no stage times: starting Python, importing tbml and its libraries, printing the summary
    stages["outside the stages"] = median(score, lambda r: r["wall_s"] - sum(r["stages"].values()))
    return {
        "score_wall_s": median(score, "wall_s"), "score_cpu_s": median(score, "cpu_s"),
        "score_cpu_pct": median(score, lambda r: 100 * r["cpu_s"] / r["wall_s"]),
        "score_peak_rss_mib": median(score, "peak_rss_mib"), "stages_s": stages,
        "floor_read_s": median(floor, "read_s"), "floor_wall_s": median(floor, "wall_s"),
        "floor_peak_rss_mib": median(floor, "peak_rss_mib"),
        "baseline_load_s": median(baselines, "load"), "iqr_filter_s": median(baselines, "iqr_filter"),
        "raw_forest_s": median(baselines, "raw_forest"), "baselines_peak_rss_mib": median(baselines, "peak_rss_mib"),
    }


def median(runs: list[dict], field) -> float:
    pick = field if callable(field) else (lambda run: run[field])
    return round(statistics.median(pick(run) for run in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--large", action="store_true", help="add 3M and 10M invoices")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tbml-bench-data")
    args = parser.parse_args()
    sizes = args.sizes + (LARGE if args.large else [])
    results = []
    for size in sizes:
        invoices, transfers = dataset(size, args.seed, args.data)
        figures = {"invoices": size, "transfers": pq.ParquetFile(transfers).metadata.num_rows,
                   **measure(invoices, transfers, args.repeats)}
        results.append(figures)
        print(row(figures), flush=True)
    print(f"medians of {args.repeats} fresh processes each; {os.cpu_count()} cores; seed {args.seed}; parquet input")
    emit({"repeats": args.repeats, "seed": args.seed, "cores": os.cpu_count(), "sizes": results})


def row(f: dict) -> str:
    stages = ", ".join(f"{name} {seconds:.1f}" for name, seconds in f["stages_s"].items())
    return (f"{f['invoices']:>10,} invoices + {f['transfers']:,} transfers\n"
            f"    tbml score   {f['score_wall_s']:7.1f} s  CPU {f['score_cpu_s']:.1f} s ({f['score_cpu_pct']:.0f}%)  peak "
            f"{f['score_peak_rss_mib'] / 1024:5.2f} GiB   ({stages})\n"
            f"    floor        {f['floor_read_s']:7.2f} s  to read both files with pyarrow (process "
            f"{f['floor_wall_s']:.1f} s, peak {f['floor_peak_rss_mib'] / 1024:.2f} GiB)\n"
            f"    baselines    IQR filter {f['iqr_filter_s']:.1f} s, raw-column forest {f['raw_forest_s']:.1f} s, after "
            f"loading and validating {f['baseline_load_s']:.1f} s (peak {f['baselines_peak_rss_mib'] / 1024:.2f} GiB)")


if __name__ == "__main__":
    main()

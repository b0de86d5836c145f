"""What a case store costs: one day scored against a store holding a year, its size on disk, and ingesting
day by day as the store grows.

    .venv/bin/python benchmarks/bench_store.py                       # a year of 1,000,000 invoices
    .venv/bin/python benchmarks/bench_store.py --invoices 50000      # quick

A year and a day are generated (``tbml.synth.generate``, ``days=366``). The first ``--daily-days`` days
are ingested day by day into an empty store (the time of each day as the store grows); the rest of the
year follows as one file, the fastest way in (one run). Day 366 (about 3,000 invoices at 1,000,000 a
year) is then scored against the store and without one, each ``--repeats`` times in a fresh process on a
fresh copy of the store (medians: the machine is shared). Ingesting the whole year day by day is
estimated from the measured days (each day's time grows with the rows the store holds in its look-back);
it is not run. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402


def score_once(invoices: str, transfers: str, store: str | None) -> None:
    """In a fresh process: score one day, print its seconds and the rows it read from the store."""
    from tbml.api import score_files

    started, cpu = time.perf_counter(), time.process_time()
    result = score_files(invoices, transfers, store=store or None)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    history = result.manifest.get("store", {}).get("history_rows", {})
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "history_rows": history,
                      "stages": result.manifest["seconds"]}))


def fresh(invoices: Path, transfers: Path, store: Path | None, repeats: int, tmp: Path) -> list[dict]:
    """Score the day ``repeats`` times, each in a new process (and on a new copy of the store)."""
    runs = []
    for n in range(repeats):
        copy = None
        if store is not None:
            copy = tmp / f"copy-{n}.duckdb"
            shutil.copyfile(store, copy)
        done = subprocess.run([sys.executable, __file__, "--score-once", str(invoices), str(transfers),
                               str(copy or "")], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if copy is not None:
            copy.unlink()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000, help="invoices in the year")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--daily-days", type=int, default=30, help="days ingested one by one from an empty store")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measured day")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files and the store here")
    args = parser.parse_args()
    if args.invoices < 1000 or not 1 <= args.daily_days <= 300 or args.repeats < 1:
        parser.error("--invoices must be at least 1000, --daily-days within 1 to 300, --repeats at least 1")

    import pandas as pd

    from tbml.api import score_files
    from tbml.replay import split_by_period
    from tbml.store import Store
    from tbml.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data = generate(n_invoices=args.invoices, seed=args.seed, days=366)
        parts = split_by_period(data.invoices, data.transfers, "D")
        day_label, day_invoices, day_transfers = parts[-1]
        # the measured day: its own invoices and the payments dated that day (later ones are not in yet)
        day_transfers = day_transfers[pd.to_datetime(day_transfers["date"]) <= pd.Timestamp(day_label)]
        day = root / "day-invoices.csv", root / "day-transfers.csv"
        day_invoices.to_csv(day[0], index=False)
        day_transfers.to_csv(day[1], index=False)
        store = root / "cases.duckdb"
        store.unlink(missing_ok=True)

        daily = []
        for label, invoices, transfers in parts[:args.daily_days]:
            paths = root / f"inv-{label}.csv", root / f"tr-{label}.csv"
            invoices.to_csv(paths[0], index=False)
            transfers.to_csv(paths[1], index=False)
            started = time.perf_counter()
            result = score_files(*paths, store=store)
            daily.append({"day": label, "seconds": time.perf_counter() - started,
                          "lines_read": len(invoices) + len(transfers) + sum(result.manifest["store"]["history_rows"].values())})
            for path in paths:
                path.unlink()
        print(f"{args.daily_days} days one by one from an empty store: "
              + ", ".join(f"{d['seconds']:.1f}" for d in daily) + " s", flush=True)

        rest = parts[args.daily_days:-1]
        bulk = root / "rest-invoices.csv", root / "rest-transfers.csv"
        pd.concat([p[1] for p in rest]).to_csv(bulk[0], index=False)
        pd.concat([p[2] for p in rest]).to_csv(bulk[1], index=False)
        started = time.perf_counter()
        score_files(*bulk, store=store)
        bulk_s = time.perf_counter() - started
        with Store.open(store, read_only=True) as opened:
            info = opened.info()
        lines = info["invoices"]["rows"] + info["transfers"]["rows"]
        print(f"the rest of the year as one file: {bulk_s:.0f} s; store {info['bytes'] / 2**20:.0f} MiB for "
              f"{info['invoices']['rows']:,} invoices and {info['transfers']['rows']:,} transfers", flush=True)

        with_store = fresh(*day, store, args.repeats, Path(tmp))
        alone = fresh(*day, None, args.repeats, Path(tmp))
        store_s = statistics.median(r["seconds"] for r in with_store)
        alone_s = statistics.median(r["seconds"] for r in alone)
        # CPU seconds too: a busy shared machine stretches wall time, not the work done
        store_cpu = statistics.median(r["cpu_seconds"] for r in with_store)
        alone_cpu = statistics.median(r["cpu_seconds"] for r in alone)
        read = with_store[0]["history_rows"]
        print(f"day {day_label} ({len(day_invoices):,} invoices, {len(day_transfers):,} transfers): "
              f"{store_s:.1f} s against the store (read {sum(read.values()):,} stored lines), {alone_s:.1f} s "
              f"without: {store_s / alone_s:.1f}x (medians of {args.repeats} fresh processes; CPU {store_cpu:.1f} s "
              f"and {alone_cpu:.1f} s)", flush=True)

        # a day's time against the lines it reads, from every measured day: the year day by day, estimated
        x = np.array([d["lines_read"] for d in daily] + [len(day_invoices) + len(day_transfers) + sum(read.values())])
        y = np.array([d["seconds"] for d in daily] + [store_s])
        slope, intercept = np.polyfit(x, y, 1)
        # day k reads every line of days 1 to k: the look-back (545 days by default) holds the whole year
        lines_by_day = np.cumsum([len(p[1]) + len(p[2]) for p in parts[:-1]])
        year_s = float(np.sum(intercept + slope * lines_by_day))
        print(f"the year day by day, estimated: {year_s / 3600:.1f} h ({intercept:.2f} s + "
              f"{slope * 1e6:.1f} s per million lines read, a day)", flush=True)

    emit({"invoices": args.invoices, "seed": args.seed, "store_invoices": info["invoices"]["rows"],
          "store_transfers": info["transfers"]["rows"], "store_bytes": info["bytes"],
          "bytes_per_million_lines": round(info["bytes"] / lines * 1e6),
          "day": day_label, "day_invoices": len(day_invoices), "day_transfers": len(day_transfers),
          "day_with_store_s": round(store_s, 2), "day_without_store_s": round(alone_s, 2),
          "day_ratio": round(store_s / alone_s, 1), "day_with_store_cpu_s": round(store_cpu, 2),
          "day_without_store_cpu_s": round(alone_cpu, 2), "day_stored_lines_read": sum(read.values()),
          "day_with_store_stages": with_store[0]["stages"], "repeats": args.repeats,
          "daily_days": args.daily_days, "daily_s": [round(d["seconds"], 2) for d in daily],
          "daily_total_s": round(sum(d["seconds"] for d in daily), 1),
          "rest_as_one_file_s": round(bulk_s, 1),
          "year_day_by_day_estimated_s": round(year_s), "per_day_s_intercept": round(float(intercept), 2),
          "per_day_s_per_million_lines_read": round(float(slope) * 1e6, 1)})


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--score-once":
        score_once(*sys.argv[2:])
    else:
        main()

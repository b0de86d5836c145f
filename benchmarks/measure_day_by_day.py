"""The case store's acceptance measurement: a generated, labelled year split by day and scored day after day
against a store finds what scoring the whole file at once finds. Not a speed benchmark (`make bench` leaves
it out), though it says how long the days took.

    .venv/bin/python benchmarks/measure_day_by_day.py --invoices 100000 --seed 1
    .venv/bin/python benchmarks/measure_day_by_day.py --invoices 20000 --period W   # weekly files

The year is ``tbml.synth.generate(invoices, seed, days=365)`` (what `tbml generate --invoices N --seed S`
writes, over one year instead of two). Three scorings of it are compared: the whole file at once; the
days in date order with a store (each row as last judged; see ``tbml.replay``); the days alone, without a
store. For each: payments linked, phantom-payment alerts, re-invoiced lines and multiple-invoicing
alerts, ring lines and rings, alerts, invoice PR-AUC. Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

from tbml.api import score_files  # noqa: E402
from tbml.config import load_config  # noqa: E402
from tbml.replay import (COUNT_TOLERANCE, FIGURE_COLUMNS, PR_AUC_TOLERANCE, FinalJudgement, differences,  # noqa: E402
                         figures, split_by_period, within_tolerance)
from tbml.store import Store  # noqa: E402
from tbml.synth import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=365, help="days the generated file spans")
    parser.add_argument("--laundering-rate", type=float, default=0.02)
    parser.add_argument("--period", choices=["D", "W", "M"], default="D", help="one file per day, week or month")
    parser.add_argument("--skip-alone", action="store_true", help="leave out the days scored without a store")
    parser.add_argument("--forest-seeds", type=int, default=3,
                        help="score the whole file again with this many other forest seeds: how far its own "
                             "figures move when nothing but the forest's randomness changes")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files and the store here")
    args = parser.parse_args()
    if args.invoices < 100 or args.days < 1 or not 0 <= args.laundering_rate <= 0.5:
        parser.error("--invoices must be at least 100, --days at least 1, --laundering-rate within 0 to 0.5")
    config = load_config(None)
    threshold = config.fusion.alert_threshold

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        data = generate(n_invoices=args.invoices, seed=args.seed, laundering_rate=args.laundering_rate,
                        days=args.days)
        data.invoices.to_csv(root / "invoices.csv", index=False)
        data.transfers.to_csv(root / "transfers.csv", index=False)
        parts = []
        for label, invoices, transfers in split_by_period(data.invoices, data.transfers, args.period):
            paths = (root / f"invoices-{label}.csv", root / f"transfers-{label}.csv")
            invoices.to_csv(paths[0], index=False)
            transfers.to_csv(paths[1], index=False)
            parts.append((label, *paths))
        n_transfers = len(data.transfers)
        print(f"{args.invoices:,} invoices, {n_transfers:,} transfers over {args.days} days in {len(parts)} "
              f"files ({time.perf_counter() - started:.0f} s to generate and split)", flush=True)

        started = time.perf_counter()
        whole = figures(score_files(root / "invoices.csv", root / "transfers.csv").items, n_transfers, threshold)
        whole_s = time.perf_counter() - started
        print(f"whole file: {whole_s:.1f} s {whole}", flush=True)
        reseeded = []
        for seed in range(1, args.forest_seeds + 1):
            other = dataclasses.replace(config, forest=dataclasses.replace(config.forest, random_state=seed))
            reseeded.append(figures(score_files(root / "invoices.csv", root / "transfers.csv", config=other).items,
                                    n_transfers, threshold))
        spread = {k: max(abs(f[k] - whole[k]) for f in reseeded) for k in whole} if reseeded else {}
        print(f"whole file, {len(reseeded)} other forest seeds: largest move {spread}", flush=True)

        store = root / "cases.duckdb"
        store.unlink(missing_ok=True)
        final, seconds = FinalJudgement(), []
        started = time.perf_counter()
        for n, (label, invoices, transfers) in enumerate(parts, start=1):
            began = time.perf_counter()
            final.add(score_files(invoices, transfers, store=store).store_run)
            seconds.append(time.perf_counter() - began)
            if n % 25 == 0 or n == len(parts):
                print(f"  {label}: {n} files, last {seconds[-1]:.1f} s, {time.perf_counter() - started:.0f} s in all",
                      flush=True)
        store_s = time.perf_counter() - started
        with Store.open(store, read_only=True) as opened:
            info = opened.info()
        by_day = figures(final.items(), n_transfers, threshold)
        print(f"with a store: {store_s:.0f} s {by_day}; outside the tolerance: {within_tolerance(by_day, whole)}",
              flush=True)

        alone, alone_s = None, None
        if not args.skip_alone:
            started = time.perf_counter()
            items = [score_files(i, t).items.reindex(columns=FIGURE_COLUMNS) for _, i, t in parts]
            alone_s = time.perf_counter() - started
            alone = figures(pd.concat(items, ignore_index=True), n_transfers, threshold)
            print(f"without a store: {alone_s:.0f} s {alone}", flush=True)

    emit({"invoices": args.invoices, "transfers": n_transfers, "seed": args.seed, "days": args.days,
          "period": args.period, "files": len(parts), "whole": whole, "with_store": by_day,
          "with_store_vs_whole": differences(by_day, whole), "outside_tolerance": within_tolerance(by_day, whole),
          "tolerance": {"counts": COUNT_TOLERANCE, "counts_at_least": 3, "pr_auc": PR_AUC_TOLERANCE},
          "whole_other_forest_seeds_largest_move": spread,
          "without_store": alone, "without_store_vs_whole": differences(alone, whole) if alone else None,
          "whole_s": round(whole_s, 1), "with_store_s": round(store_s, 1),
          "with_store_file_s": {"median": round(statistics.median(seconds), 2), "last": round(seconds[-1], 2),
                                "max": round(max(seconds), 2)},
          "without_store_s": round(alone_s, 1) if alone_s is not None else None,
          "store_bytes": info["bytes"]})


if __name__ == "__main__":
    main()

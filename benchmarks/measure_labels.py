"""What labels add, measured on generated years whose second half tbml never saw labels of.

    python benchmarks/measure_labels.py                 # 100,000 invoices a world
    python benchmarks/measure_labels.py --invoices 30000

1. Labels known for the whole first half: on the second half, unsupervised, supervised and fused tbml, a
   plain gradient-boosting classifier on the raw columns, and the IQR filter (``tbml evaluate --split-date``).
2. Labels only where an investigator would have looked in the first half: the top 5% of the unsupervised
   ranking plus an exploration sample (10% of that budget, from the HS chapters the top leaves out). The
   ranker learns with unreviewed lines as clean by 1 - their unsupervised risk (tbml's default); then, to
   show the effect, from the reviewed lines alone, and reading every unreviewed line as clean.
3. A world where fraud follows who declares and where (``--declarants fraud``): supervised tbml against the
   plain classifier at the 5% budget.
4. Tempering: on a world with changed habits (traders in more chapters, high-risk corridors four times as
   common, fewer bank references, more split and cash payments), the precision of the default alert set with
   tempering and the alert cap, and without them (the behaviour before they existed).

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from tbml.api import evaluate_files, generate_files, score_files, validate_files  # noqa: E402
from tbml.config import load_config  # noqa: E402
from tbml.evaluate import compare_supervised, metrics  # noqa: E402
from tbml.model import TBMLModel  # noqa: E402
from tbml.synth import Habits  # noqa: E402

CHANGED = Habits(chapter_spread=0.7, high_risk_weight=4.0, ref_share=0.3, split_share=0.4, cash_share=0.1)


def year(root: Path, n: int, seed: int, **kwargs) -> tuple[Path, Path, str]:
    generate_files(root, n, seed, 0.02, days=365, **kwargs)
    dates = pd.to_datetime(pd.read_csv(root / "invoices.csv", usecols=["date"])["date"])
    return root / "invoices.csv", root / "transfers.csv", str(dates.quantile(0.5).date())


def halves(inv: Path, tr: Path, cut: str):
    config = load_config(None)
    v = validate_files(inv, tr, config=config)
    i, t = v.results[0].accepted, v.results[1].accepted
    when = pd.Timestamp(cut)
    return i[i["date"] < when], t[t["date"] < when], i[i["date"] >= when], t[t["date"] >= when]


def partial_labels(inv: Path, tr: Path, cut: str) -> dict:
    """Labels only on the first half's reviewed alerts: the top 5% plus 10% of that budget explored."""
    config = load_config(None)
    a_inv, a_tr, b_inv, b_tr = halves(inv, tr, cut)
    model = TBMLModel(dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, budget="5%",
                                                                              explore_share=0.1)))
    items = model.fit_score(a_inv, a_tr).items
    alerts = items[items["alert"]]
    reviewed = set(alerts["invoice_id"].dropna()) | set(alerts.get("transfer_id", pd.Series(dtype=object)).dropna())
    out = {"reviewed_lines": int(len(alerts)),
           "reviewed_laundering": int(alerts["is_laundering"].astype(bool).sum())}
    for name, unreviewed, mode in (("unreviewed_weighted_by_evidence", pd.NA, "evidence"),
                                   ("labelled_only", pd.NA, "ignore"), ("unreviewed_read_as_clean", False, "ignore")):
        inv_l = a_inv.assign(is_laundering=a_inv["is_laundering"].astype("boolean").where(
            a_inv["invoice_id"].isin(reviewed), unreviewed))
        tr_l = a_tr.assign(is_laundering=a_tr["is_laundering"].astype("boolean").where(
            a_tr["transfer_id"].isin(reviewed), unreviewed))
        trained = TBMLModel(config).fit_supervised(inv_l, tr_l, label_source="review decisions", unlabelled=mode)
        later = trained.score(b_inv, b_tr).items
        figures = compare_supervised(later, b_inv, a_inv, b_tr)["methods"]
        out[name] = {m: {"pr_auc": figures[m]["pr_auc"], "precision@5%": figures[m]["precision@5%"]}
                     for m in ("tbml_unsupervised", "tbml_supervised", "tbml_fused")}
    return out


def tempering(inv: Path, tr: Path) -> dict:
    """Alert-set precision at the default settings, with and without tempering and the alert cap."""
    out = {}
    for name, overrides in (("before", {"common_evidence_share": 1.0, "max_alert_share": 1.0}), ("after", {})):
        config = load_config(None)
        config = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, **overrides))
        result = score_files(inv, tr, config=config)
        alerts = result.alerts
        y = alerts["is_laundering"].fillna(False).astype(bool)
        out[name] = {"alerts": int(len(alerts)), "precision": round(float(y.mean()), 4) if len(alerts) else None,
                     "laundering_found": int(y.sum()), "tempered": result.manifest["evidence_tempered"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    figures: dict = {"invoices": args.invoices, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        inv, tr, cut = year(tmp / "default", args.invoices, args.seed)
        full = evaluate_files(inv, tr, split_date=cut)["methods"]
        figures["full_labels"] = {m: {"pr_auc": f["pr_auc"], "precision@5%": f["precision@5%"]} for m, f in full.items()}
        print("labels on the whole first half:", figures["full_labels"], flush=True)
        figures["partial_labels"] = partial_labels(inv, tr, cut)
        print("labels on reviewed alerts only:", figures["partial_labels"], flush=True)
        figures["default_world_tempering"] = tempering(inv, tr)
        print("default world, alert set:", figures["default_world_tempering"], flush=True)

        inv, tr, cut = year(tmp / "declarants", args.invoices, args.seed, declarants="fraud")
        decl = evaluate_files(inv, tr, split_date=cut)["methods"]
        figures["declarant_world"] = {m: {"pr_auc": f["pr_auc"], "precision@5%": f["precision@5%"],
                                          "positives": f["positives"]} for m, f in decl.items()}
        print("fraud follows declarants:", figures["declarant_world"], flush=True)

        inv, tr, _ = year(tmp / "changed", args.invoices, args.seed, habits=CHANGED)
        figures["changed_world"] = {"habits": CHANGED.changed(), **tempering(inv, tr)}
        print("changed world, alert set:", figures["changed_world"], flush=True)
        figures["seconds"] = round(time.perf_counter() - started, 1)
    emit(figures)


if __name__ == "__main__":
    main()

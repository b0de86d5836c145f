"""Measuring detectors against labels, side by side with the simple methods they must beat.

Items are what an investigator would be handed: invoice lines and the transfers that match no invoice.
The baselines see invoices only, as the methods in use today do; a transfer scores 0 for them. Every
figure is the same whatever the order of the items: a tie at a budget's cut counts by expected value.

- ``iqr_filter``: the plain interquartile-range price filter (Zdanowicz, Pak et al.): unit price per HS6
  and unit over the whole file, on the raw price scale.
- ``raw_forest``: an isolation forest on the raw numeric columns (log value, quantity, weight, unit price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score

BUDGETS = (0.005, 0.01, 0.02, 0.05)


def iqr_filter_scores(invoices: pd.DataFrame, fence: float = 1.5) -> np.ndarray:
    """How many IQRs each line's unit price lies outside [Q1, Q3] of its HS6 and unit (0 inside, and for
    lines without a unit price): ranking by it ranks the filter's alerts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        price = invoices["reporting_value"] / invoices["quantity"]
    frame = pd.DataFrame({"hs6": invoices["hs6"], "unit": invoices["quantity_unit"], "price": price})
    frame = frame[np.isfinite(frame["price"]) & (frame["price"] > 0)]
    grouped = frame.groupby(["hs6", "unit"])["price"]
    q1, q3 = grouped.transform(lambda s: s.quantile(0.25)), grouped.transform(lambda s: s.quantile(0.75))
    iqr = (q3 - q1).where(lambda s: s > 0)
    distance = np.maximum((frame["price"] - q3) / iqr, (q1 - frame["price"]) / iqr).clip(lower=0)
    scores = pd.Series(0.0, index=invoices.index)
    scores.loc[frame.index] = distance.fillna(0.0)
    return scores.to_numpy()


def raw_forest_scores(invoices: pd.DataFrame, random_state: int = 0) -> np.ndarray:
    """Anomaly score (higher = stranger) of an isolation forest on the raw numeric columns."""
    columns = {}
    value = invoices["reporting_value"].to_numpy(dtype=float)
    for name in ("quantity", "gross_weight_kg"):
        if name in invoices:
            columns[name] = invoices[name].to_numpy(dtype=float, na_value=np.nan)
    columns["value"] = value
    if "quantity" in columns:
        with np.errstate(divide="ignore", invalid="ignore"):
            columns["unit_price"] = value / columns["quantity"]
    matrix = np.log1p(np.clip(np.column_stack(list(columns.values())), 0, None))
    matrix = matrix[:, np.isfinite(matrix).any(axis=0)]  # a column the file leaves empty tells nothing
    matrix = np.where(np.isfinite(matrix), matrix, np.nanmedian(np.where(np.isfinite(matrix), matrix, np.nan), axis=0))
    forest = IsolationForest(n_estimators=200, random_state=random_state).fit(matrix)
    return -forest.score_samples(matrix)


def pr_auc(is_positive, scores) -> float:
    """Average precision of ranking by ``scores`` (higher = more suspicious)."""
    return float(average_precision_score(np.asarray(is_positive, dtype=bool), np.asarray(scores, dtype=float)))


def expected_top_k(weights, scores, k: int) -> float:
    """Expected sum of ``weights`` over the ``k`` items with the highest ``scores`` when ties are broken at
    random: items above the cut count in full, and the block tied at the cut contributes
    (k - n_above) x its mean weight. Ranking by a score says nothing about the order within a tie, so
    neither does this; the input's row order never matters."""
    w = np.asarray(weights, dtype=float)
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    k = min(int(k), len(s))
    if k <= 0:
        return 0.0
    cut = np.partition(s, len(s) - k)[len(s) - k]  # the k-th highest score
    above, tied = s > cut, s == cut
    return float(w[above].sum() + (k - above.sum()) * w[tied].sum() / tied.sum())


def metrics(is_positive, scores, value=None, typology=None, kind=None) -> dict:
    """Precision and recall at each inspection budget, PR-AUC, ROC-AUC, value-weighted recall at each
    budget, and per typology PR-AUC and recall at 5%: that typology against the honest items of the same
    ``kind`` (a phantom shipment is a transfer, over-invoicing an invoice). Scores tied at a budget's cut
    count by expected value (``expected_top_k``), so the figures do not depend on the items' order; PR-AUC
    and ROC-AUC treat a tie as one threshold, which is order-free too."""
    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=float)
    out: dict = {"items": int(len(y)), "positives": int(y.sum())}
    if y.any() and not y.all():
        out["pr_auc"] = round(pr_auc(y, s), 4)
        out["roc_auc"] = round(float(roc_auc_score(y, s)), 4)
    for budget in BUDGETS:
        k = max(1, int(round(budget * len(y))))
        found = expected_top_k(y, s, k)
        tag = f"{budget * 100:g}%"
        out[f"precision@{tag}"] = round(found / k, 4)
        out[f"recall@{tag}"] = round(found / max(1, int(y.sum())), 4)
        if value is not None:
            v = np.where(y, np.nan_to_num(np.asarray(value, dtype=float)), 0.0)
            out[f"value_recall@{tag}"] = round(expected_top_k(v, s, k) / max(1e-9, float(v.sum())), 4)
    if typology is not None:
        t = np.asarray(typology, dtype=object)
        kinds = np.asarray(kind, dtype=object) if kind is not None else np.zeros(len(y), dtype=object)
        honest = ~y
        per = {}
        k = max(1, int(round(0.05 * len(y))))
        for name in sorted(set(t[y])):
            mine = t == name
            keep = (mine | honest) & np.isin(kinds, list(set(kinds[mine])))
            per[name] = {"positives": int(mine.sum()),
                         "pr_auc": round(pr_auc(mine[keep], s[keep]), 4),
                         "recall@5%": round(expected_top_k(mine, s, k) / int(mine.sum()), 4)}
        out["per_typology"] = per
    return out


def compare(items: pd.DataFrame, invoices: pd.DataFrame, transfers: pd.DataFrame | None = None) -> dict:
    """tbml against both baselines on the same items (labels in ``is_laundering`` / ``typology``).

    ``items`` is the scored frame of ``TBMLModel.score`` (invoice lines and unmatched transfers);
    ``invoices`` the normalised invoices the baselines score. Labelled phantom payments that tbml linked
    to some invoice are not items, so they are added back as misses (score 0 for every method): a
    phantom payment hidden behind a real invoice is a phantom payment not found.
    """
    items = _with_hidden_phantoms(items, transfers)
    y = items["is_laundering"].fillna(False).astype(bool).to_numpy()
    typology = items["typology"].fillna("").to_numpy(dtype=object)
    value = items["reporting_value"].to_numpy(dtype=float)
    by_invoice = pd.Series(np.arange(len(invoices)), index=invoices["invoice_id"].astype(str).to_numpy())
    position = by_invoice.reindex(items["invoice_id"].astype(str)).to_numpy() if "invoice_id" in items else None
    is_invoice = (items["item"] == "invoice").to_numpy()

    def on_items(invoice_scores):
        out = np.zeros(len(items))
        out[is_invoice] = invoice_scores[position[is_invoice].astype(int)]
        return out

    scores = {"tbml": items["risk"].to_numpy(dtype=float),
              "iqr_filter": on_items(iqr_filter_scores(invoices)),
              "raw_forest": on_items(raw_forest_scores(invoices))}
    kind = items["item"].to_numpy(dtype=object)
    return {"methods": {name: metrics(y, s, value, typology, kind) for name, s in scores.items()}}


def _with_hidden_phantoms(items: pd.DataFrame, transfers: pd.DataFrame | None) -> pd.DataFrame:
    if transfers is None or "typology" not in transfers or "transfer_id" not in items:
        return items
    phantom = transfers[transfers["typology"].fillna("") == "phantom_shipment"]
    hidden = phantom[~phantom["transfer_id"].isin(items["transfer_id"].dropna())]
    if hidden.empty:
        return items
    missed = pd.DataFrame({"item": "transfer", "transfer_id": hidden["transfer_id"].to_numpy(), "risk": 0.0,
                           "is_laundering": True, "typology": "phantom_shipment",
                           "reporting_value": hidden["reporting_amount"].to_numpy(dtype=float)})
    return pd.concat([items, missed], ignore_index=True)


def table(result: dict) -> str:
    """A Markdown table: rows are metrics and typologies, columns are methods."""
    methods = list(result["methods"])
    first = result["methods"][methods[0]]
    keys = [k for k in first if k not in ("per_typology", "items", "positives")]
    lines = ["| metric | " + " | ".join(methods) + " |", "| --- |" + " --- |" * len(methods)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{result['methods'][m].get(key, float('nan')):.3f}" for m in methods) + " |")
    for name in first.get("per_typology", {}):
        cells = [f"{result['methods'][m]['per_typology'][name]['pr_auc']:.3f}" for m in methods]
        lines.append(f"| PR-AUC {name} ({first['per_typology'][name]['positives']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)

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
    on_items = invoice_scores_on(items, invoices)
    scores = {"tbml": items["risk"].to_numpy(dtype=float),
              "iqr_filter": on_items(iqr_filter_scores(invoices)),
              "raw_forest": on_items(raw_forest_scores(invoices))}
    kind = items["item"].to_numpy(dtype=object)
    return {"methods": {name: metrics(y, s, value, typology, kind) for name, s in scores.items()}}


def invoice_scores_on(items: pd.DataFrame, invoices: pd.DataFrame):
    """A function taking one score per row of ``invoices`` (a baseline's) to one per item: the invoice
    line's own score, 0 for a transfer (the baselines see invoices only) and for an item naming no row."""
    by_invoice = pd.Series(np.arange(len(invoices)), index=invoices["invoice_id"].astype(str).to_numpy())
    position = (by_invoice.reindex(items["invoice_id"].astype(str)).to_numpy() if "invoice_id" in items
                else np.full(len(items), np.nan))
    is_invoice = (items["item"] == "invoice").to_numpy() & np.isfinite(position)

    def on_items(invoice_scores):
        out = np.zeros(len(items))
        out[is_invoice] = np.asarray(invoice_scores)[position[is_invoice].astype(int)]
        return out

    return on_items


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


# the raw columns a data scientist would hand a classifier first: figures, and codes as categories
RAW_NUMBERS = ("reporting_value", "quantity", "gross_weight_kg", "net_weight_kg")
RAW_CODES = ("hs6", "hs2", "importer_id", "exporter_id", "declarant_id", "customs_office", "origin_country",
             "exporter_country", "importer_country", "quantity_unit", "transport_mode", "payment_terms", "currency")


def raw_classifier_scores(train: pd.DataFrame, test: pd.DataFrame, random_state: int = 0) -> np.ndarray:
    """Probability of laundering from a plain gradient-boosting classifier (scikit-learn's
    HistGradientBoostingClassifier with its native categorical splits) fitted on ``train``'s labelled
    invoice lines, raw columns only: the baseline a supervised tbml must beat."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OrdinalEncoder

    def frame(data):
        out = pd.DataFrame(index=data.index)
        for name in RAW_NUMBERS:
            if name in train and name in data:
                out[name] = np.log1p(pd.to_numeric(data[name], errors="coerce").clip(lower=0))
        if "reporting_value" in out and "quantity" in out:
            out["unit_price"] = out["reporting_value"] - out["quantity"]  # log value per unit
        return out

    codes = [c for c in RAW_CODES if c in train and c in test and train[c].notna().any()]
    labelled = train[train["is_laundering"].notna()]
    y = labelled["is_laundering"].astype(bool).to_numpy()
    # at most 250 categories per column (the rarest share one), as HistGradientBoosting requires
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan,
                             max_categories=250)
    as_text = lambda data: data[codes].astype("string").astype(object).where(data[codes].notna(), None)
    X_train = pd.concat([frame(labelled), pd.DataFrame(encoder.fit_transform(as_text(labelled)), index=labelled.index,
                                                       columns=codes)], axis=1)
    X_test = pd.concat([frame(test), pd.DataFrame(encoder.transform(as_text(test)), index=test.index, columns=codes)],
                       axis=1)
    model = HistGradientBoostingClassifier(categorical_features=[X_train.columns.get_loc(c) for c in codes],
                                           random_state=random_state, early_stopping=True)
    model.fit(X_train.to_numpy(dtype=float), y)
    return model.predict_proba(X_test.to_numpy(dtype=float))[:, 1]


def compare_supervised(items: pd.DataFrame, test_invoices: pd.DataFrame, train_invoices: pd.DataFrame,
                       test_transfers: pd.DataFrame | None = None) -> dict:
    """On a later period's ``items`` (scored by a model trained with labels on an earlier period):
    unsupervised tbml, the supervised ranker alone, fused tbml, a plain gradient-boosting classifier on the raw
    columns (trained on ``train_invoices``), and the IQR filter; every figure of ``metrics``, on the items
    with a label."""
    items = _with_hidden_phantoms(items, test_transfers)
    items = items[items["is_laundering"].notna()] if items["is_laundering"].isna().any() else items
    y = items["is_laundering"].astype(bool).to_numpy()
    typology = items["typology"].fillna("").to_numpy(dtype=object)
    value = items["reporting_value"].to_numpy(dtype=float)
    on_items = invoice_scores_on(items, test_invoices)
    scores = {"tbml_unsupervised": items["risk_unsupervised"].fillna(0).to_numpy(dtype=float),
              "tbml_supervised": items["supervised_probability"].fillna(0).to_numpy(dtype=float),
              "tbml_fused": items["risk"].to_numpy(dtype=float),
              "gradient_boosting_raw": on_items(raw_classifier_scores(train_invoices, test_invoices)),
              "iqr_filter": on_items(iqr_filter_scores(test_invoices))}
    kind = items["item"].to_numpy(dtype=object)
    return {"methods": {name: metrics(y, s, value, typology, kind) for name, s in scores.items()}}

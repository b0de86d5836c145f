"""Measuring detectors against labels, and the simple methods they must beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score


def iqr_filter_scores(invoices: pd.DataFrame, fence: float = 1.5) -> np.ndarray:
    """The plain interquartile-range price filter (Zdanowicz, Pak et al.): unit price per HS6 and unit over
    the whole file, on the raw price scale; the score is how many IQRs a price lies outside [Q1, Q3]
    (0 inside), so ranking by it ranks the filter's alerts. Lines without a unit price score 0."""
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


def pr_auc(is_positive, scores) -> float:
    """Average precision of ranking by ``scores`` (higher = more suspicious)."""
    return float(average_precision_score(np.asarray(is_positive, dtype=bool), np.asarray(scores, dtype=float)))

"""Counting events of the same key within a time window, vectorised (one sort, two searchsorted)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def count_within(keys, days: np.ndarray, window: int, mask: np.ndarray | None = None) -> np.ndarray:
    """For each row, how many rows (itself included) share its key and lie within ``window`` days of it.

    Rows outside ``mask`` neither count nor are counted (they get 0).
    """
    n = len(days)
    out = np.zeros(n, np.int64)
    rows = np.arange(n) if mask is None else np.flatnonzero(mask)
    if not len(rows):
        return out
    codes = pd.factorize(pd.Series(keys).iloc[rows], sort=False)[0].astype(np.int64)
    span = int(days[rows].max() - days[rows].min()) + 2 * window + 1
    combined = codes * span + (days[rows] - days[rows].min() + window)  # key-major, then day: one sort order
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    lo = np.searchsorted(ordered, combined - window, side="left")
    hi = np.searchsorted(ordered, combined + window, side="right")
    out[rows] = hi - lo
    return out


def day_number(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy(dtype="datetime64[D]").astype(np.int64)

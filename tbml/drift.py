"""Has the scored file moved away from what the model was trained on?

- ``psi_hs2``: population stability index of the mix of HS chapters;
- ``psi_value``: population stability index of line values, over the training deciles;
- ``price_shift``: median log ratio of the file's unit prices to the model's reference medians (0 when
  prices sit where they did; 0.1 is about 10% dearer).

By the usual reading of the PSI, under 0.1 is stable, 0.1-0.25 a moderate shift, above 0.25 a major one;
a major shift, or prices moved by more than ``price_shift_limit``, is reported as drift: the reference
prices and profiles may no longer describe this trade, and the model should be retrained.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PSI_LIMIT = 0.25
PRICE_SHIFT_LIMIT = 0.10
_FLOOR = 1e-4  # a category absent on one side would make the PSI infinite


def reference(invoices: pd.DataFrame) -> dict:
    """What drift is measured against, learned at fit time (plain numbers, saved with the model)."""
    values = np.log1p(invoices["reporting_value"].clip(lower=0).to_numpy(dtype=float))
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1])) if len(values) else np.array([])
    return {
        "hs2_shares": invoices["hs2"].astype(str).value_counts(normalize=True).to_dict(),
        "value_edges": edges.tolist(),
        "value_shares": _shares(values, edges).tolist(),
    }


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, float), _FLOOR)
    a = np.maximum(np.asarray(actual, float), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def measure(ref: dict, invoices: pd.DataFrame, price_log_ratio: np.ndarray) -> dict:
    """Drift figures of ``invoices`` against ``ref``, and whether any is past its limit."""
    chapters = sorted(set(ref["hs2_shares"]) | set(invoices["hs2"].astype(str)))
    now = invoices["hs2"].astype(str).value_counts(normalize=True)
    psi_hs2 = psi([ref["hs2_shares"].get(c, 0.0) for c in chapters], [now.get(c, 0.0) for c in chapters])
    values = np.log1p(invoices["reporting_value"].clip(lower=0).to_numpy(dtype=float))
    psi_value = psi(ref["value_shares"], _shares(values, np.asarray(ref["value_edges"])))
    ratios = np.asarray(price_log_ratio, float)
    shift = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else 0.0
    reasons = []
    if psi_hs2 > PSI_LIMIT:
        reasons.append(f"the HS chapter mix moved (PSI {psi_hs2:.2f} > {PSI_LIMIT})")
    if psi_value > PSI_LIMIT:
        reasons.append(f"line values moved (PSI {psi_value:.2f} > {PSI_LIMIT})")
    if abs(shift) > PRICE_SHIFT_LIMIT:
        reasons.append(f"unit prices sit {np.expm1(shift):+.0%} from the reference medians")
    return {"psi_hs2": round(psi_hs2, 4), "psi_value": round(psi_value, 4), "price_shift": round(shift, 4),
            "drift": bool(reasons), "reasons": reasons}


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(1, counts.sum())

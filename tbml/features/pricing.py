"""Price measures of each invoice line, and the keys its peers are found by.

Measures, all on the log scale where trade prices are close to symmetric:

- ``unit_price``: reporting value per declared canonical unit, compared only among lines of the same unit;
- ``value_per_kg``: reporting value per kg of gross weight, comparable across units;
- ``mirror_gap``: the line's value against the other side's declaration of the same shipment (see
  ``tbml.features.mirror``), present only when a file holds both export and import declarations.

A measure is NaN where it cannot be formed (no quantity or unit, no weight, zero value): the line is then
not judged on that measure, never on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tbml.features.mirror import has_both_sides, mirror_gaps
from tbml.peer_stats import group_statistics

MEASURES = ("unit_price", "value_per_kg", "mirror_gap")
# Peer keys a level may name. "origin" is the exporting country, "destination" the importing one.
KEY_COLUMNS = ("hs6", "hs4", "hs2", "origin", "destination", "period", "unit", "side")
DEFAULT_LEVELS = (
    ("hs6", "origin", "destination", "period"),
    ("hs6", "destination"),
    ("hs6",),
    ("hs4",),
    ("hs2",),
)


@dataclass
class Measure:
    """One price measure over all lines: its log values, the keys of each line, and the amount it is per."""

    name: str
    log_value: np.ndarray  # NaN where the measure cannot be formed
    keys: pd.DataFrame  # KEY_COLUMNS (strings), one row per line
    amount: np.ndarray  # quantity (unit_price) or kg (value_per_kg): turns a price gap into value moved
    unit: pd.Series  # the unit the price is per


def price_measures(invoices: pd.DataFrame, period: str = "quarter", cif_fob_margin: float = 0.06) -> list[Measure]:
    """The measures for normalised invoices (the ``accepted`` frame of ``tbml.ingest``); ``mirror_gap``
    only when the file holds both declaration sides."""
    n = len(invoices)
    value = invoices["reporting_value"].to_numpy(dtype=np.float64)
    quantity = _column(invoices, "quantity", n)
    weight = _column(invoices, "gross_weight_kg", n)
    unit = invoices["quantity_unit"].astype("string") if "quantity_unit" in invoices else pd.Series(pd.NA, index=invoices.index, dtype="string")
    keys = peer_keys(invoices, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_price = np.where((value > 0) & (quantity > 0) & unit.notna().to_numpy(), np.log(value / quantity), np.nan)
        per_kg = np.where((value > 0) & (weight > 0), np.log(value / weight), np.nan)
    unit_keys = keys.assign(unit=unit.fillna("").to_numpy())
    kg_keys = keys.assign(unit="KGM")
    measures = [
        Measure("unit_price", unit_price, unit_keys, quantity, unit.fillna("")),
        Measure("value_per_kg", per_kg, kg_keys, weight, pd.Series("KGM", index=invoices.index)),
    ]
    if has_both_sides(invoices):
        gaps = mirror_gaps(invoices, cif_fob_margin)
        # amount x exp(gap) is the line's value, so the value-moved sum works as for prices
        measures.append(Measure("mirror_gap", gaps["mirror_value_gap"].to_numpy(), keys.assign(unit="mirror"),
                                gaps["mirror_value"].to_numpy(), pd.Series("", index=invoices.index)))
    return measures


def period_keys(dates: pd.Series, period: str = "quarter") -> pd.Series:
    """Each date's peer period as text: "2023Q2", "2023-05" or "2023"."""
    dates = pd.to_datetime(dates)
    if period == "quarter":
        return dates.dt.year.astype(str) + "Q" + dates.dt.quarter.astype(str)
    if period == "month":
        return dates.dt.strftime("%Y-%m")
    if period == "year":
        return dates.dt.year.astype(str)
    raise ValueError(f"period must be 'month', 'quarter' or 'year', got {period!r}")


def peer_keys(invoices: pd.DataFrame, period: str = "quarter") -> pd.DataFrame:
    """The peer-group keys of each line as strings; ``side`` keeps export (FOB) and import (CIF) apart."""
    period_key = period_keys(invoices["date"], period)
    side = invoices["declaration_side"].astype("string").fillna("") if "declaration_side" in invoices else ""
    return pd.DataFrame(
        {
            "hs6": invoices["hs6"].astype("string").to_numpy(),
            "hs4": invoices["hs4"].astype("string").to_numpy(),
            "hs2": invoices["hs2"].astype("string").to_numpy(),
            "origin": invoices["exporter_country"].astype("string").to_numpy(),
            "destination": invoices["importer_country"].astype("string").to_numpy(),
            "period": period_key.to_numpy(),
            "unit": "",
            "side": np.asarray(side, dtype=object) if not isinstance(side, str) else side,
        },
        index=invoices.index,
    ).astype("string")


def _column(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name in frame:
        return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.full(n, np.nan)


def kg_per_unit_table(invoices: pd.DataFrame, min_lines: int = 10) -> pd.DataFrame:
    """Median, Q1 and Q3 of log kg per declared unit for each HS6 and unit with ``min_lines`` lines."""
    log_kpu = _log_kg_per_unit(invoices)
    ok = np.isfinite(log_kpu) & invoices["quantity_unit"].notna().to_numpy()  # a line needs a unit to compare
    keys = pd.DataFrame({"hs6": invoices["hs6"].astype(str).to_numpy()[ok],
                         "unit": invoices["quantity_unit"].astype(str).to_numpy()[ok]})
    codes = keys.groupby(["hs6", "unit"], sort=False).ngroup().to_numpy()
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    stats = group_statistics(log_kpu[ok], codes, n_groups)
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy() if len(codes) else np.empty(0, int)
    table = keys.iloc[first].reset_index(drop=True)
    table["count"], table["median"], table["q1"], table["q3"] = stats.count, stats.median, stats.q1, stats.q3
    return table[table["count"] >= min_lines].reset_index(drop=True)


def kg_per_unit_deviation(invoices: pd.DataFrame, table: pd.DataFrame, min_spread: float = 0.05) -> pd.DataFrame:
    """Per line: kg per unit, its peers' median, and the signed fence distance (over- or under-shipment:
    a quantity that does not fit the weight)."""
    log_kpu = _log_kg_per_unit(invoices)
    keys = pd.DataFrame({"hs6": invoices["hs6"].astype(str).to_numpy(),
                         "unit": invoices["quantity_unit"].astype(str).to_numpy()})
    ref = keys.merge(table, on=["hs6", "unit"], how="left")
    iqr = np.maximum((ref["q3"] - ref["q1"]).to_numpy(), min_spread)
    q1, q3 = ref["q1"].to_numpy(), ref["q3"].to_numpy()
    fence = np.where(log_kpu > q3, (log_kpu - q3) / iqr, np.where(log_kpu < q1, -(q1 - log_kpu) / iqr, 0.0))
    fence = np.where(np.isfinite(log_kpu) & np.isfinite(q1), fence, np.nan)
    return pd.DataFrame({"kg_per_unit": np.exp(log_kpu), "kg_per_unit_median": np.exp(ref["median"].to_numpy()),
                         "kg_per_unit_fence": fence}, index=invoices.index)


def _log_kg_per_unit(invoices: pd.DataFrame) -> np.ndarray:
    if "quantity_unit" not in invoices:
        return np.full(len(invoices), np.nan)
    quantity = _column(invoices, "quantity", len(invoices))
    weight = _column(invoices, "gross_weight_kg", len(invoices))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(weight / quantity)
    return np.where((quantity > 0) & (weight > 0), out, np.nan)

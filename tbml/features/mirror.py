"""Mirror-trade gaps: the same shipments as declared by the exporting side and by the importing side.

When a file holds both export and import declarations (``declaration_side``), each import line is set
against its export counterpart: by ``shipment_ref``, HS6 and quantity where both sides carry them, then by
``shipment_ref`` and HS6, then by ``shipment_ref`` alone for what is left of a shipment, otherwise in
aggregate by HS6 x corridor x month. Exports are valued FOB and imports CIF, so the export value is raised by
``cif_fob_margin`` (freight and insurance) before comparing.

    gap = log(import value / (export value x (1 + margin)))    0 when the two sides agree

Quantity and weight gaps are logs of import over export. Only import lines carry them: a shipment whose
two declarations disagree is one finding, on the import line, with the export declaration as its measure.
Export lines and lines with no counterpart get NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIRROR_COLUMNS = ("mirror_match", "mirror_value_gap", "mirror_quantity_gap", "mirror_weight_gap", "mirror_value")


def has_both_sides(invoices: pd.DataFrame) -> bool:
    if "declaration_side" not in invoices:
        return False
    sides = set(invoices["declaration_side"].dropna().unique())
    return {"export", "import"} <= sides


def counterpart_exports(invoices: pd.DataFrame) -> np.ndarray:
    """Export declarations of shipments the file also holds on the import side (by ``shipment_ref``): the
    same movement of goods a second time, so traders' histories and rings count it once, as the import."""
    if not has_both_sides(invoices) or "shipment_ref" not in invoices:
        return np.zeros(len(invoices), dtype=bool)
    side = invoices["declaration_side"].astype("string").fillna("").to_numpy()
    ref = invoices["shipment_ref"].astype("string")
    imported = set(ref[(side == "import") & ref.notna().to_numpy()].unique())
    return (side == "export") & ref.isin(imported).fillna(False).to_numpy(dtype=bool)


def mirror_gaps(invoices: pd.DataFrame, cif_fob_margin: float = 0.06) -> pd.DataFrame:
    """Per line: how it was matched (``shipment``, ``aggregate`` or empty), the log gaps, and the
    counterpart's value raised to CIF (``mirror_value``, in the reporting currency)."""
    n = len(invoices)
    out = pd.DataFrame({
        "mirror_match": pd.Series("", index=invoices.index, dtype=object),
        **{c: np.full(n, np.nan) for c in MIRROR_COLUMNS[1:]},
    }, index=invoices.index)
    if not has_both_sides(invoices):
        return out
    lines = pd.DataFrame({
        "side": invoices["declaration_side"].to_numpy(),
        "value": invoices["reporting_value"].to_numpy(dtype=float),
        "quantity": _numeric(invoices, "quantity"),
        "unit": invoices["quantity_unit"].astype(object).to_numpy() if "quantity_unit" in invoices else None,
        "weight": _numeric(invoices, "gross_weight_kg"),
        "shipment": invoices["shipment_ref"].astype(object).to_numpy() if "shipment_ref" in invoices else None,
        "aggregate": _aggregate_key(invoices),
    })
    matched = np.zeros(n, dtype=bool)
    if lines["shipment"].notna().any():
        # line by line first (shipment, HS6 and quantity), then the goods of one HS6 in a shipment, then
        # what is left of the shipment (a line whose code or quantity differs between the two sides): a gap
        # stays with the line it concerns, not with its honest neighbours in the same container
        goods = lines["shipment"].astype(str) + "|" + invoices["hs6"].astype(str).to_numpy()
        quantity = pd.Series(np.round(lines["quantity"].to_numpy(), 3)).astype(str)
        no_ref = pd.isna(lines["shipment"]).to_numpy()
        lines["shipment_line"] = np.where(no_ref, None, goods + "|" + quantity)
        lines["shipment_goods"] = np.where(no_ref, None, goods)
        for key in ("shipment_line", "shipment_goods", "shipment"):
            matched = _match(lines, key, "shipment", cif_fob_margin, out, matched)
    _match(lines, "aggregate", "aggregate", cif_fob_margin, out, matched)
    return out


def _match(lines: pd.DataFrame, key: str, label: str, margin: float, out: pd.DataFrame, done: np.ndarray):
    """Fill the gaps of lines whose ``key`` has both sides and that are not yet matched."""
    usable = lines[key].notna().to_numpy() & ~done
    part = lines[usable]
    totals = part.groupby([key, "side"]).agg(value=("value", "sum"), quantity=("quantity", "sum"),
                                             weight=("weight", "sum"), units=("unit", "nunique"))
    wide = totals.unstack("side")
    if ("value", "export") not in wide or ("value", "import") not in wide:
        return done
    wide = wide.dropna(subset=[("value", "export"), ("value", "import")])
    if wide.empty:
        return done
    export_cif = wide[("value", "export")] * (1 + margin)
    with np.errstate(divide="ignore", invalid="ignore"):
        value_gap = np.log(wide[("value", "import")] / export_cif)
        one_unit = (wide[("units", "export")] == 1) & (wide[("units", "import")] == 1)
        quantity_gap = np.log(wide[("quantity", "import")] / wide[("quantity", "export")]).where(one_unit)
        weight_gap = np.log(wide[("weight", "import")] / wide[("weight", "export")])
    per_key = pd.DataFrame({"value_gap": value_gap, "quantity_gap": quantity_gap, "weight_gap": weight_gap,
                            "export_cif": export_cif, "import_value": wide[("value", "import")]})
    per_key = per_key.replace([np.inf, -np.inf], np.nan)
    rows = np.flatnonzero(usable)
    joined = per_key.reindex(part[key].to_numpy())
    matched = joined["value_gap"].notna().to_numpy()
    done[rows[matched]] = True  # both sides are used up, so an aggregate match does not count them again
    # the gap is the import line's finding: the export declaration is what it is measured against (and
    # payments settle the import side), so one mismatched shipment makes one item, not two
    hit = matched & (part["side"].to_numpy() == "import")
    at = rows[hit]
    out.iloc[at, out.columns.get_loc("mirror_match")] = label
    out.iloc[at, out.columns.get_loc("mirror_value_gap")] = joined["value_gap"].to_numpy()[hit]
    out.iloc[at, out.columns.get_loc("mirror_quantity_gap")] = joined["quantity_gap"].to_numpy()[hit]
    out.iloc[at, out.columns.get_loc("mirror_weight_gap")] = joined["weight_gap"].to_numpy()[hit]
    # each line's share of the counterpart value, so line values times exp(gap) add up per shipment
    share = part["value"].to_numpy()[hit] / joined["import_value"].to_numpy()[hit]
    out.iloc[at, out.columns.get_loc("mirror_value")] = joined["export_cif"].to_numpy()[hit] * share
    return done


def _aggregate_key(invoices: pd.DataFrame) -> np.ndarray:
    month = pd.to_datetime(invoices["date"]).dt.strftime("%Y-%m")
    return (invoices["hs6"].astype(str) + "|" + invoices["exporter_country"].astype(str) + ">"
            + invoices["importer_country"].astype(str) + "|" + month).to_numpy(dtype=object)


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=float, na_value=np.nan) if name in frame else np.full(len(frame), np.nan)

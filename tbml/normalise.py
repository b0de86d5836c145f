"""Put accepted rows on one footing: reporting currency, HS levels, canonical quantity units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tbml.config import IngestConfig
from tbml.fx import FxTable
from tbml.units import normalise_units


def normalise(clean: pd.DataFrame, kind: str, fx: FxTable, config: IngestConfig) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Normalised copy of ``clean`` (validated rows), the mask of rows with no FX rate, and the mask of rows
    converted with a rate carried past the end of the rate table.

    Adds ``fx_rate`` (reporting currency per unit of the row's currency, so an investigator can redo the
    sum) and ``reporting_value`` (invoices) or ``reporting_amount`` (transfers). Invoices also get
    ``hs2``/``hs4``/``hs6`` and canonical units (see ``tbml.units``).
    """
    out = clean.copy()
    rate, carried = fx.rates_to(clean["currency"], clean["date"], config.reporting_currency, config.fx_max_age_days)
    no_rate = np.isnan(rate) & clean["currency"].notna().to_numpy() & clean["date"].notna().to_numpy()
    out["fx_rate"] = rate
    money = "value" if kind == "invoices" else "amount"
    out[f"reporting_{money}"] = clean[money].to_numpy(dtype=np.float64) * rate
    if kind == "invoices":
        # Net mass stands in where gross weight is not given; weight_basis says which, for the reasons.
        gross = clean["gross_weight_kg"] if "gross_weight_kg" in clean else pd.Series(np.nan, index=clean.index)
        basis = pd.Series(np.where(gross.notna(), "gross", ""), index=clean.index, dtype=object)
        if "net_weight_kg" in clean:
            use_net = gross.isna() & clean["net_weight_kg"].notna()
            out["gross_weight_kg"] = gross.where(~use_net, clean["net_weight_kg"])
            basis[use_net.to_numpy()] = "net"
        out["weight_basis"] = basis.replace("", None)
        hs = clean["hs_code"].astype("string")
        for digits in (2, 4, 6):
            out[f"hs{digits}"] = hs.str.slice(0, digits)
        quantity = clean["quantity"] if "quantity" in clean else pd.Series(np.nan, index=clean.index)
        unit = clean["quantity_unit"] if "quantity_unit" in clean else pd.Series(pd.NA, index=clean.index, dtype="string")
        units = normalise_units(quantity, unit)
        # A line with no quantity has no unit to speak of, whatever the unit column says.
        units.loc[quantity.isna().to_numpy(), "unit_status"] = "missing"
        for name in units.columns:
            out[name] = units[name]
    return out, no_rate, carried

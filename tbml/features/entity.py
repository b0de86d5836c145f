"""What each trader usually does, and how far a line strays from it.

Per line, looking only at the trader's earlier lines (so a new habit shows as new when it starts):

- ``importer_prior_lines`` / ``exporter_prior_lines``: the trader's lines before this one;
- ``chapter_prior_share``: the smaller, over importer and exporter, of the share of the trader's earlier
  lines in this HS chapter; 0 for an established trader means goods far from its line of business;
- ``new_relationship``: the first line between an importer and exporter who both traded before;
- ``importer_counterparties``, ``importer_volume_change`` (log of the line's month against the trader's
  median month);
- ``importer_deviation_share``: share of the importer's lines beyond the price fences (given the price scores).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tbml.features.keys import id_values


def entity_features(invoices: pd.DataFrame, price_fence: np.ndarray | None = None,
                    min_history: int = 5) -> pd.DataFrame:
    n = len(invoices)
    order = np.lexsort((np.arange(n), pd.to_datetime(invoices["date"]).to_numpy()))
    exporter, exporter_known = id_values(invoices, "exporter_id")
    frame = pd.DataFrame({
        "importer": id_values(invoices, "importer_id")[0],
        "exporter": exporter,
        "exporter_known": exporter_known,
        "hs2": invoices["hs2"].astype(str).to_numpy(),
        "month": pd.to_datetime(invoices["date"]).dt.strftime("%Y-%m").to_numpy(),
        "value": invoices["reporting_value"].to_numpy(dtype=float),
    }).iloc[order]
    out = pd.DataFrame(index=frame.index)
    shares = []
    for role in ("importer", "exporter"):
        prior = frame.groupby(role, sort=False).cumcount().to_numpy()
        in_chapter = frame.groupby([role, "hs2"], sort=False).cumcount().to_numpy()
        out[f"{role}_prior_lines"] = prior
        share = np.where(prior >= min_history, in_chapter / np.maximum(prior, 1), 1.0)
        if role == "exporter":  # an unnamed seller has no history to stray from
            known = frame["exporter_known"].to_numpy()
            share = np.where(known, share, 1.0)
            out[f"{role}_prior_lines"] = np.where(known, prior, 0)
        shares.append(share)
    out["chapter_prior_share"] = np.minimum(*shares)
    # history of whichever side is further from its usual chapters, for the reason text
    out["prior_lines"] = np.where(shares[0] <= shares[1], out["importer_prior_lines"], out["exporter_prior_lines"])
    pair_prior = frame.groupby(["importer", "exporter"], sort=False).cumcount().to_numpy()
    out["new_relationship"] = (pair_prior == 0) & (out["importer_prior_lines"] >= min_history) & (
        out["exporter_prior_lines"] >= min_history)
    sellers = frame["exporter"].where(frame["exporter_known"])
    out["importer_counterparties"] = sellers.groupby(frame["importer"]).transform("nunique").to_numpy()
    monthly = frame.groupby(["importer", "month"])["value"].sum()
    typical = monthly.groupby(level=0).median()
    month_value = monthly.reindex(pd.MultiIndex.from_arrays([frame["importer"], frame["month"]])).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["importer_volume_change"] = np.log(month_value / typical.reindex(frame["importer"]).to_numpy())
    out = out.sort_index()  # back to input order
    out.index = invoices.index
    if price_fence is not None:
        beyond = pd.Series(np.abs(np.nan_to_num(price_fence)) > 1.5, index=invoices.index)
        out["importer_deviation_share"] = beyond.groupby(id_values(invoices, "importer_id")[0]).transform("mean")
    return out

"""A labelled file replayed as daily (or weekly) files against a case store, and what the replay found set
beside scoring the whole file at once: the check behind tests/test_store.py and
benchmarks/measure_day_by_day.py.

    parts = split_by_period(invoices, transfers, "D")        # [(label, invoices, transfers), ...]
    final = FinalJudgement()
    for label, inv, tr in parts:                             # written to files, scored in date order
        final.add(score_files(inv_path, tr_path, store="cases.duckdb").store_run)
    found = figures(final.items(), final.transfers, threshold)

A store re-judges stored rows up to ``evidence_days`` back, so a row's final judgement is the one of the
last run that judged it; ``FinalJudgement`` keeps exactly that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tbml.evaluate import pr_auc

# The figures compared, and how far a store's may stand from the whole file's (see ``within_tolerance``).
COUNTED = ("linked_payments", "phantom_alerts", "reinvoiced_lines", "multiple_invoicing_alerts", "ring_lines",
           "rings")
# Counts come from windows the look-back always covers, so they match but for an item near a choice: a
# payment linked by parties and amount picks the closest invoice in its window (a later file can add one),
# and an alert counts only at or above the threshold, where the forest, fitted on other rows, moves risk a
# little. Measured: 1 of 591 phantom-payment alerts apart on 100,000 invoices by day, none monthly.
COUNT_TOLERANCE = 0.01
# Each run fits peer prices and the forest on its look-back, not on the whole file (which also sees every
# row's future), so risks move a little. Measured: 0.001 apart on 100,000 invoices by day; 0.018 on the
# 6,000-invoice test file over two years, whose own PR-AUC has a bootstrap standard error of 0.022 (392
# laundering lines). 0.03 is about that file's noise, and a twentieth of what is lost scoring the days
# without a store (0.72 -> 0.07 on the 100,000).
PR_AUC_TOLERANCE = 0.03

# what ``figures`` reads of a scored item
FIGURE_COLUMNS = ["alert_id", "item", "date", "risk", "suspected_typology", "is_laundering", "repeat_same_goods",
                  "cycle_length", "cycle_id"]


def split_by_period(invoices: pd.DataFrame, transfers: pd.DataFrame,
                    freq: str = "D") -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """The invoices and transfers cut into periods of their dates (``"D"`` days, ``"W"`` weeks, ``"M"``
    months), in date order, one part per period with invoices, labelled by its first day. A transfer dated before the first such
    period goes with the first part, one after the last with the last (every file needs invoices)."""
    inv_period = pd.to_datetime(invoices["date"]).dt.to_period(freq)
    tr_period = pd.to_datetime(transfers["date"]).dt.to_period(freq)
    periods = sorted(inv_period.unique())
    if not periods:
        raise ValueError("no invoice to split")
    tr_period = tr_period.clip(lower=periods[0], upper=periods[-1])
    by_invoice = invoices.groupby(inv_period.to_numpy(), sort=False)
    by_transfer = dict(list(transfers.groupby(tr_period.to_numpy(), sort=False)))
    empty = transfers.iloc[:0]
    return [(p.start_time.strftime("%Y-%m-%d"), by_invoice.get_group(p), by_transfer.get(p, empty)) for p in periods]


class FinalJudgement:
    """Every stored row's judgement as of the last run that judged it: invoice lines with their risk, and
    transfers either unmatched (an item, with a risk) or linked to an invoice (no risk)."""

    def __init__(self):
        self._rows = pd.DataFrame(columns=FIGURE_COLUMNS).set_index("alert_id")

    def add(self, run) -> None:
        """Take the judgements of one ``StoreRun`` (``Scoring.store_run``) after it was scored."""
        scored = run.scored[[c for c in FIGURE_COLUMNS if c in run.scored]].set_index("alert_id")
        judged = [scored]
        if run.transfers is not None:  # judged transfers that are no item were linked to an invoice
            at = run.judged(run.transfers)
            transfers, ids = run.transfers[at], run.union_ids["transfers"][at]
            linked = ~ids.isin(scored.index)
            judged.append(pd.DataFrame({"item": "transfer", "date": transfers["date"].to_numpy()[linked.to_numpy()]},
                                       index=pd.Index(ids[linked], name="alert_id")))
        judged = pd.concat(judged, sort=False)
        self._rows = pd.concat([self._rows[~self._rows.index.isin(judged.index)], judged], sort=False)

    def items(self) -> pd.DataFrame:
        """The final judgement of every row judged so far (transfers linked have no risk)."""
        return self._rows.reset_index()


def figures(items: pd.DataFrame, n_transfers: int, threshold: float) -> dict:
    """What a scoring found, from its items (invoice lines and unmatched transfers; a linked transfer may
    be a row without risk): payments linked, phantom-payment alerts, re-invoiced lines and
    multiple-invoicing alerts, ring lines and rings, and the invoice lines' PR-AUC against the labels."""
    invoices = items[items["item"] == "invoice"]
    transfers = items[items["item"] == "transfer"]
    unmatched = transfers[transfers["risk"].notna()]
    # at or above the threshold, before any budget: a budget caps alerts at a share of the items scored,
    # and a store's run scores its look-back, not the whole file, so its cap is not the whole file's
    alerted = items["risk"].to_numpy(dtype=float) >= threshold
    typology = items["suspected_typology"].astype(object).to_numpy()
    on_ring = invoices["cycle_length"].fillna(0).to_numpy(dtype=float) > 0
    labels = invoices["is_laundering"].astype(object).fillna(False).astype(bool)
    return {
        "invoices": int(len(invoices)),
        "transfers": int(n_transfers),
        "linked_payments": int(n_transfers - len(unmatched)),
        "phantom_alerts": int((alerted & (typology == "phantom_shipment")
                               & (items["item"] == "transfer").to_numpy()).sum()),
        "reinvoiced_lines": int((invoices["repeat_same_goods"].fillna(0).to_numpy(dtype=float) > 0).sum()),
        "multiple_invoicing_alerts": int((alerted & (typology == "multiple_invoicing")).sum()),
        "ring_lines": int(on_ring.sum()),
        "rings": int(invoices.loc[on_ring, "cycle_id"].nunique()),
        "alerts": int(alerted.sum()),
        "pr_auc": round(pr_auc(labels, invoices["risk"]), 4) if labels.any() else float("nan"),
    }


def differences(found: dict, reference: dict) -> dict:
    """Each figure's difference from the reference: relative for counts, absolute for PR-AUC."""
    out = {}
    for key, value in found.items():
        if key in ("invoices", "transfers") or key not in reference:
            continue
        if key == "pr_auc":
            out[key] = round(value - reference[key], 4)
        else:
            out[key] = round((value - reference[key]) / reference[key], 4) if reference[key] else \
                (0.0 if value == 0 else np.inf)
    return out


def within_tolerance(found: dict, reference: dict) -> dict:
    """The figures of ``found`` further from ``reference`` than the tolerance allows, with their difference
    (empty when all are within): each count within ``COUNT_TOLERANCE`` of the reference (and at least 3,
    so that a small count may move by a few), PR-AUC within ``PR_AUC_TOLERANCE``."""
    off = {}
    for key in COUNTED:
        if abs(found[key] - reference[key]) > max(COUNT_TOLERANCE * reference[key], 3):
            off[key] = found[key] - reference[key]
    if abs(found["pr_auc"] - reference["pr_auc"]) > PR_AUC_TOLERANCE:
        off["pr_auc"] = round(found["pr_auc"] - reference["pr_auc"], 4)
    return off

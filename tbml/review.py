"""Investigators' decisions on the alerts of a case store: list, decide, export and import.

    from tbml import review
    review.list_alerts("cases.duckdb", status="open", limit=20)
    review.decide("cases.duckdb", "A1b2c3...", "dismissed", note="known supplier", by="ana")
    review.export_decisions("cases.duckdb", "decisions.csv")
    review.import_decisions("decisions.csv", "cases.duckdb")   # every row or none

A decision sets the alert's status (confirmed or dismissed) and adds a line to its history. An alert
raised again keeps its decision; a dismissed one reopens (``re-raised``) only when its risk rises
``REOPEN_POINTS`` above its risk when dismissed, or another typology is suspected (``tbml.store``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tbml.errors import TBMLError
from tbml.store import DECISIONS, Store

STATUSES = ("open", "confirmed", "dismissed", "resolved")
# Columns of a decisions file: the alert by alert_id, or by invoice_id / transfer_id when unambiguous.
EXPORT_COLUMNS = ["alert_id", "invoice_id", "transfer_id", "decision", "note", "reviewer", "date"]


class ReviewError(TBMLError):
    """A decision or a decisions file that cannot be taken: which row, which column, what was expected."""


def list_alerts(store: str | Path, status: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The store's alerts, riskiest first, optionally of one status; at most ``limit``."""
    if status is not None and status not in STATUSES:
        raise ReviewError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    with Store.open(store, read_only=True) as opened:
        return opened.review_list(status, limit)


def decide(store: str | Path, alert_id: str, decision: str, note: str | None = None, by: str | None = None,
           at: pd.Timestamp | None = None) -> dict:
    """Record one decision; returns the alert as listed after it."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r}: expected {' or '.join(DECISIONS)}")
    with Store.open(store, create=False) as opened:
        opened.record_decisions(pd.DataFrame({"alert_id": [alert_id], "decision": [decision], "note": [note],
                                              "reviewer": [by], "decided_at": [at or pd.Timestamp.now()]}))
        listed = opened.review_list()
    return listed[listed["alert_id"] == alert_id].iloc[0].to_dict()


def export_decisions(store: str | Path, out: str | Path) -> int:
    """Write every decision of the store, oldest first, as a CSV ``import_decisions`` reads back."""
    with Store.open(store, read_only=True) as opened:
        taken = opened.decisions()
    frame = pd.DataFrame({"alert_id": taken["alert_id"],
                          "invoice_id": taken["item_id"].where(taken["item"] == "invoice"),
                          "transfer_id": taken["item_id"].where(taken["item"] == "transfer"),
                          "decision": taken["decision"], "note": taken["note"], "reviewer": taken["reviewer"],
                          "date": pd.to_datetime(taken["decided_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S")})
    frame.to_csv(out, index=False)
    return len(frame)


def import_decisions(path: str | Path, store: str | Path) -> int:
    """Take every decision of a CSV (alert_id, or invoice_id / transfer_id; decision; note, reviewer and
    date optional). A bad row is a ``ReviewError`` naming its line and column, and nothing is written."""
    path = Path(path)
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ReviewError(f"{path}: cannot read it as CSV: {str(exc).splitlines()[0]}") from None
    keys = [c for c in ("alert_id", "invoice_id", "transfer_id") if c in rows.columns]
    if not keys:
        raise ReviewError(f"{path}: no column alert_id, invoice_id or transfer_id (file has: "
                          f"{', '.join(rows.columns)})")
    if "decision" not in rows.columns:
        raise ReviewError(f"{path}: required column 'decision' is missing (file has: {', '.join(rows.columns)})")
    with Store.open(store, create=False) as opened:
        alerts = opened.alerts()
        by_item = {item: alerts[alerts["item"] == item].groupby("item_id")["alert_id"].agg(list).to_dict()
                   for item in ("invoice", "transfer")}
        known = set(alerts["alert_id"])
        taken = []
        for n, row in enumerate(rows.to_dict("records"), start=2):  # line 1 is the header
            where = f"{path}: line {n}"
            alert_id = _alert_of(row, where, known, by_item)
            decision = row["decision"].strip().lower()
            if decision not in DECISIONS:
                raise ReviewError(f"{where}, column decision: {row['decision']!r}; expected "
                                  f"{' or '.join(DECISIONS)}")
            date = (row.get("date") or "").strip()
            try:
                decided_at = pd.Timestamp(date) if date else pd.Timestamp.now()
            except ValueError:
                decided_at = pd.NaT
            if pd.isna(decided_at):
                raise ReviewError(f"{where}, column date: {date!r} is not a date (expected YYYY-MM-DD)")
            taken.append({"alert_id": alert_id, "decision": decision, "note": row.get("note") or None,
                          "reviewer": row.get("reviewer") or None, "decided_at": decided_at.tz_localize(None)})
        if not taken:
            return 0
        return opened.record_decisions(pd.DataFrame(taken))


def _alert_of(row: dict, where: str, known: set, by_item: dict) -> str:
    alert_id = (row.get("alert_id") or "").strip()
    if alert_id:
        if alert_id not in known:
            raise ReviewError(f"{where}, column alert_id: no alert {alert_id} in the store")
        return alert_id
    for column, item in (("invoice_id", "invoice"), ("transfer_id", "transfer")):
        value = (row.get(column) or "").strip()
        if not value:
            continue
        found = by_item[item].get(value, [])
        if len(found) != 1:
            raise ReviewError(f"{where}, column {column}: " + (f"no alert on {item} {value} in the store" if not found
                              else f"{item} {value} has {len(found)} alerts (declared in several files); "
                                   "give its alert_id"))
        return found[0]
    raise ReviewError(f"{where}, column alert_id: empty; give alert_id, invoice_id or transfer_id")

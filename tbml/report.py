"""One self-contained HTML report of a scored run, for investigators to open in a browser.

    tbml.report.write_report("alerts/")            # reads what `tbml score -o alerts/` wrote

It shows the run summary and row accounting, alert counts by typology and corridor, the top alerts with
their reasons and, for each, a chart of its price against its peers, the entity and network roll-ups,
drawings of circular trades, and the model used. Charts are inline SVG, styles inline, and the one small
script only checks that the page drew: the file needs no network. Every text is escaped (Jinja2
autoescaping; ``tbml.charts`` for the drawings), and a Content-Security-Policy lets the page load nothing
and run no script but its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from markupsafe import Markup

from tbml.charts import bar_chart, price_chart, ring_chart
from tbml.detectors.price import level_keys
from tbml.features.pricing import period_keys
from tbml.errors import TBMLError
from tbml.io import write_atomic
from tbml.networks import MAX_NETWORK_SIZE
from tbml.rollup import ITEM_COLUMNS, corridors as _corridors, rollup
from tbml.wording import GLOSSARY, TYPOLOGY_NAMES, number, price_unit, ratio, rule_name, typology_name, unit_name

REPORT_NAME = "report.html"
# The page's one script: sorts and filters the alerts table, opens drill-down targets, and marks on <body>
# whether the page drew (for a browser test). The CSP allows it by the sha256 of exactly this text.
_PAGE_SCRIPT = (Path(__file__).parent / "templates" / "report.js").read_text(encoding="utf-8")
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_PAGE_SCRIPT.encode()).digest()).decode()
# The alerts table lists every alert up to this many rows (the report stays a few MB); alerts.csv has them all.
MAX_TABLE_ROWS = 5000
ENTITIES_SHOWN, NETWORKS_SHOWN = 20, 15  # the roll-up tables' top rows; every one is in the drill-down too
_PRICE_DRIVERS = {"unit_price": "unit price", "value_per_kg": "value per kg"}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("tbml", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["count"] = lambda x: f"{int(x):,}"
    env.filters["typology"] = typology_name
    env.filters["typologies"] = typologies_in_words
    env.filters["rule"] = rule_name
    env.globals |= {"page_script": Markup(_PAGE_SCRIPT), "script_hash": _SCRIPT_HASH}
    return env


def render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)


def write_report(run_dir: str | Path, out: str | Path | None = None, top: int = 25, title: str | None = None) -> Path:
    """Write the HTML report of ``run_dir`` (a folder written by ``tbml score``) to ``out`` (default
    ``run_dir/report.html``), atomically; ``top`` alerts are shown in full with their charts."""
    run_dir = Path(run_dir)
    try:
        context = report_context(run_dir, top, title)
    except (pa.ArrowException, OSError) as exc:  # damage found while reading items.parquet's pages
        raise TBMLError(f"{run_dir}: cannot read the run's files ({exc}); score the files again"
                        .replace("\n", " ")) from None
    html = render("report.html.j2", **context)
    out = Path(out) if out is not None else run_dir / REPORT_NAME
    return write_atomic(out, lambda tmp: tmp.write_text(html, encoding="utf-8"))


# What the report reads from alerts.parquet; a file without them is not an alerts table of `tbml score`.
_ALERT_COLUMNS = ("rank", "item", "risk", "reasons", "suspected_typology")


def _read_run(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """The manifest and alerts of a folder ``tbml score`` wrote; anything missing, unreadable or not of
    tbml's making is one ``TBMLError`` line naming the file."""
    manifest_path, alerts_path = run_dir / "manifest.json", run_dir / "alerts.parquet"
    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "no such folder"
        raise TBMLError(f"{run_dir}: {what}; give the folder `tbml score -o` wrote")
    for path in (manifest_path, alerts_path):
        if not path.exists():
            raise TBMLError(f"{run_dir}: no {path.name}; is this a folder written by `tbml score -o`?")
        if not path.is_file():
            raise TBMLError(f"{path}: is not a regular file; is this a folder written by `tbml score -o`?")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise TBMLError(f"{manifest_path}: not valid JSON ({exc})".replace("\n", " ")) from None
    if not isinstance(manifest, dict):
        raise TBMLError(f"{manifest_path}: not a tbml manifest (a JSON object); score the files again")
    if manifest.get("command") != "score":
        raise TBMLError(f"{manifest_path}: written by `tbml {manifest.get('command')}`, not by `tbml score`")
    for key, kind in (("inputs", list), ("rows_scored", dict)):
        if not isinstance(manifest.get(key, kind()), kind):
            raise TBMLError(f"{manifest_path}: '{key}' is not what `tbml score` writes; score the files again")
    alerts = _parquet(alerts_path)
    missing = [c for c in _ALERT_COLUMNS if c not in alerts.columns]
    if missing:
        raise TBMLError(f"{alerts_path}: lacks column '{missing[0]}'; not an alerts table of `tbml score`: score "
                        "the files again")
    return manifest, alerts


def _parquet(path: Path, read=pd.read_parquet):
    """``read(path)`` (a frame, or ``ds.dataset`` for a lazy read); a corrupt file is one ``TBMLError`` line."""
    try:
        return read(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TBMLError(f"{path}: not a readable Parquet file ({exc}); score the files again to rewrite it"
                        .replace("\n", " ")) from None


def report_context(run_dir: Path, top: int = 25, title: str | None = None) -> dict:
    """Everything the template shows, computed from the run folder."""
    manifest, everything = _read_run(run_dir)
    config = manifest.get("config", {})
    currency = config.get("ingest", {}).get("reporting_currency", "USD")
    # with a case store, the run also lists earlier alerts it resolved: shown and counted, never as alerts
    resolved = _statuses(everything) == "resolved"
    alerts, resolved_alerts = everything[~resolved], everything[resolved]
    shown = alerts.head(top)
    peers = _peer_lines(run_dir / "items.parquet", shown, config.get("pricing", {}).get("period", "quarter"))
    fitted_on_input = manifest.get("model") in (None, "fitted on the input")
    rolled = rollup(alerts, _parquet(run_dir / "items.parquet", _rollup_items))
    in_network = dict(zip(rolled.entities["entity"], rolled.entities["network"]))
    networks = rolled.networks
    run_time = _run_time(manifest, run_dir)
    # alerts chosen by a budget may include explored ones below the threshold: the charts start where they do
    lowest = float(np.floor(min(manifest.get("alert_threshold", 30), alerts["risk"].min(skipna=True))))
    table = _alert_table(pd.concat([rolled.alerts, resolved_alerts]), rolled.entities, networks,
                         started=run_time["started"])
    payments = _payments_behind(run_dir, pd.concat([shown, table.pop("listed")]).drop_duplicates("rank"), config)
    transfers_file = next((s.get("path", "") for s in manifest.get("inputs", []) if s.get("kind") == "transfers"), None)
    for row in table["table_rows"]:
        row["payment_list"] = payments.get(row["rank"], _NO_PAYMENTS)
    return {
        "title": title or f"tbml alerts: {run_dir.resolve().name}",
        "manifest": manifest,
        "currency": currency,
        "accounting": _accounting(manifest),
        "risk_bands": _risk_bands(alerts, lowest),
        "band_meaning": _band_meaning(manifest.get("risk_bands") or []),
        "selection": _selection_text(manifest),
        "status_counts": _status_counts(everything),
        # where the payments that settle invoices are, when this folder does not hold them
        "payments_elsewhere": None if (run_dir / PAYMENTS_NAME).is_file() else transfers_file,
        "by_typology": bar_chart(_counts(alerts["suspected_typology"].map(typology_name)),
                                 "alerts by suspected typology"),
        "by_corridor": bar_chart(_counts(_corridors(alerts), 12), "alerts by corridor"),
        "n_alerts": len(alerts), "n_top": len(shown), "n_resolved": int(resolved.sum()),
        "top_alerts": [dict(_alert_card(a, peers, currency, fitted_on_input), first_seen=seen, age=age,
                            payment_list=payments.get(a["rank"], _NO_PAYMENTS))
                       for a, seen, age in zip(shown.to_dict("records"), *_ages(shown, run_time["started"]))],
        "entities": rolled.entities.head(ENTITIES_SHOWN).to_dict("records"),
        "networks": networks.head(NETWORKS_SHOWN).to_dict("records"),
        "n_networks": len(networks),
        "max_network_size": MAX_NETWORK_SIZE,
        "rings": [dict(r, network=", ".join(sorted({in_network[t] for t in r["traders"] if t in in_network})))
                  for r in _rings(run_dir / "items.parquet", alerts)],
        "model": _model_text(manifest),
        "drift": manifest.get("drift"),
        "skipped_rules": manifest.get("rules_skipped_for_missing_columns") or [],
        "seconds": manifest.get("seconds", {}),
        "glossary": GLOSSARY + (STATUS_GLOSSARY if "status" in everything else []),
        "run_time": run_time,
        "scored_at": run_time["text"],
        "by_risk": bar_chart(_risk_histogram(alerts, lowest), "alerts by risk"),
        "by_month": bar_chart(_by_month(alerts), "alerts by month of the invoice or payment"),
        **table,
    }


def _selection_text(manifest: dict) -> str:
    """How the run chose its alerts, in the words the console uses: "at risk >= 30 (at most 5% of the
    items)", or "by the budget 500", and how many of them were explored."""
    threshold, budget = manifest.get("alert_threshold", 30), manifest.get("budget") or {}
    chosen = str(budget.get("budget", "auto"))
    text = (f"at risk ≥ {threshold:g}" + (f" (at most {100 * budget['max_alert_share']:g}% of the items)"
                                         if _finite(budget.get("max_alert_share")) else "")
            if chosen == "auto" else f"by the budget {chosen}")
    explored = budget.get("explored") or 0
    return text + (f", {int(explored):,} of them explored (little evidence; reviewing them teaches the model)"
                   if explored else "")


def _run_time(manifest: dict, run_dir: Path) -> dict:
    """When the run was made: the start the manifest records (``started_at``, ISO 8601 UTC), or, for a run
    of a tbml that did not record it, when manifest.json (the run's last file) was written."""
    took = sum(v for v in manifest.get("seconds", {}).values() if isinstance(v, (int, float)))
    try:
        started = pd.Timestamp(manifest["started_at"])
        started = started.tz_localize("UTC") if started.tzinfo is None else started.tz_convert("UTC")
    except (KeyError, TypeError, ValueError):
        stamp = pd.Timestamp((run_dir / "manifest.json").stat().st_mtime, unit="s", tz="UTC")
        return {"started": None, "text": stamp.strftime("%Y-%m-%d %H:%M UTC"),
                "detail": f"{stamp:%Y-%m-%d %H:%M:%S} UTC, when its manifest.json was written (this run does "
                          "not record when it started)"}
    return {"started": started, "text": started.strftime("%Y-%m-%d %H:%M UTC"),
            "detail": f"started {started:%Y-%m-%d %H:%M:%S} UTC" + (f", took {took:,.1f} s" if took else "")}


# ---- statuses (with a case store) ----------------------------------------------------------------------

# The statuses ``tbml score --store`` gives a run's alerts, in the order the summary names them (the order
# the case store lists a run's alerts in).
STATUS_ORDER = ("new", "raised", "re-raised", "changed", "seen before", "resolved")
STATUS_GLOSSARY = [
    ("status", "Where an alert stands against the case store's history: new (a line or payment of this run's "
               "files, alerted for the first time); raised (an earlier line, alerted now that new evidence came "
               "in, such as the closing leg of a ring); seen before (alerted in an earlier run, unchanged); "
               "re-raised (resolved or dismissed before, alerted again; a dismissed alert comes back only when "
               "its risk rose 15 points or another typology is suspected); changed (its risk moved 10 points "
               "or more, or its suspected typology changed); resolved (alerted before, no longer: its reason "
               "says why, such as the invoice a payment was waiting for)."),
    ("age", "Days from the run in which the alert was first raised to this run."),
    ("decision", "An investigator's verdict on the alert (confirmed or dismissed, with tbml review decide), "
                 "shown beside its status; a decided alert keeps its decision when raised again."),
]


def _statuses(alerts: pd.DataFrame) -> pd.Series:
    if "status" not in alerts:
        return pd.Series("", index=alerts.index, dtype=object)
    return alerts["status"].astype("string").fillna("").astype(object)


def _status_counts(alerts: pd.DataFrame) -> list[tuple[str, int]]:
    """(status, count) in ``STATUS_ORDER`` (any other status after, by name); empty without a store."""
    counts = _statuses(alerts)[lambda s: s != ""].value_counts()
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts.index) - set(STATUS_ORDER))
    return [(s, int(counts[s])) for s in order]


def _ages(alerts: pd.DataFrame, started) -> tuple[pd.Series, pd.Series]:
    """Each alert's first-seen date (text) and age in whole days, where the run's alerts carry them: the age
    as given (``age_days``), else counted from ``first_seen`` to the run's start; blank / NaN otherwise."""
    first = pd.Series("", index=alerts.index, dtype=object)
    age = pd.Series(np.nan, index=alerts.index)
    if "first_seen" in alerts:
        seen = pd.to_datetime(alerts["first_seen"], errors="coerce", utc=True)
        first = seen.dt.strftime("%Y-%m-%d").fillna("").astype(object)
        if started is not None:
            age = ((started - seen).dt.total_seconds() // 86400).clip(lower=0)
    if "age_days" in alerts:
        age = pd.to_numeric(alerts["age_days"], errors="coerce").astype(float)
    return first, age


def _risk_histogram(alerts: pd.DataFrame, threshold: float) -> list[tuple[str, int]]:
    """Alert counts in risk bands of ten, riskiest first, from the alert threshold up."""
    risk = alerts["risk"].to_numpy(dtype=float)
    rows = []
    for low in range(90, -1, -10):
        lo, hi = max(low, threshold), low + 10
        if lo < hi:
            rows.append((f"{lo:g}-{100 if hi == 100 else hi - 1:g}", int(((risk >= lo) & (risk < hi + (hi == 100))).sum())))
    return rows


def _by_month(alerts: pd.DataFrame, n: int = 36) -> list[tuple[str, int]]:
    """Alert counts per calendar month, oldest first (the last ``n`` months with alerts)."""
    months = pd.to_datetime(alerts["date"], errors="coerce").dt.strftime("%Y-%m").dropna() if "date" in alerts else pd.Series(dtype=str)
    counts = months.value_counts().sort_index().tail(n)
    return [(str(k), int(v)) for k, v in counts.items()]


_PARTY_ROLES = (("importer_id", "importer"), ("exporter_id", "exporter"), ("payer_id", "payer"),
                ("payee_id", "payee"), ("third_party_id", "third party"))


def _text(value) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)) else str(value)


def _alert_table(alerts: pd.DataFrame, entities: pd.DataFrame, networks: pd.DataFrame,
                 limit: int | None = None, started=None) -> dict:
    """Every alert (up to ``limit``, default ``MAX_TABLE_ROWS``) as a table row, and the drill-down sections
    its links lead to: each entity named in those alerts and each network, with their alerts. ``started``
    (the run's start) dates the alerts' ages; ``listed`` is the frame of the rows listed."""
    limit = MAX_TABLE_ROWS if limit is None else limit
    listed = alerts.head(limit)
    first_seen, age = _ages(listed, started)
    decisions = listed["decision"].astype("string").fillna("").astype(object) if "decision" in listed else ""
    listed = listed.assign(_status=_statuses(listed), _first_seen=first_seen, _age=age, _decision=decisions)
    rows, by_entity, by_network = [], {}, {}
    for a in listed.to_dict("records"):
        is_invoice = a.get("item") == "invoice"
        parties = [(role, _text(a.get(col))) for col, role in _PARTY_ROLES if _text(a.get(col))]
        reasons = [r.strip() for r in _text(a.get("reasons")).split(" | ") if r.strip()]
        network = _text(a.get("network"))
        row = {"rank": int(a["rank"]), "risk": float(a["risk"]), "typology": _text(a.get("suspected_typology")),
               "item": _text(a.get("item")), "id": _text(a.get("invoice_id") if is_invoice else a.get("transfer_id")),
               "date": _text(a.get("date"))[:10], "parties": parties, "network": network,
               "corridor": " → ".join(x for x in (_text(a.get("exporter_country" if is_invoice else "payer_country")),
                                                  _text(a.get("importer_country" if is_invoice else "payee_country"))) if x),
               "value": _f(a.get("reporting_value") if is_invoice else a.get("reporting_amount")),
               "reasons": reasons, "payments": _payments(a),
               "status": a["_status"], "decision": a["_decision"], "first_seen": a["_first_seen"], "age": a["_age"]}
        rows.append(row)
        for _, party in parties:
            by_entity.setdefault(party, []).append(row)
        if network:
            by_network.setdefault(network, []).append(row)
    known = entities[entities["entity"].isin(by_entity)] if len(entities) else entities
    entity_sections = [dict(e, alert_rows=by_entity[e["entity"]]) for e in known.to_dict("records")]
    listed_entities = set(known["entity"]) if len(entities) else set()
    # a section for each network the page links to: of the listed alerts and entities, and the top ones
    linked = set(by_network) | {_text(n) for n in known.get("network", [])} | \
        {_text(n) for n in entities.head(ENTITIES_SHOWN).get("network", [])} | \
        {_text(n) for n in networks.head(NETWORKS_SHOWN).get("network", [])}
    members = {}  # network -> [(entity, role)], most suspicious first as the roll-up ranks them
    for e in entities.to_dict("records"):
        if _text(e.get("network")) in linked:
            members.setdefault(e["network"], []).append((e["entity"], _text(e.get("role"))))
    network_sections = [dict(n, alert_rows=by_network.get(n["network"], []), member_list=members.get(n["network"], []))
                        for n in networks.to_dict("records") if n["network"] in linked]
    statuses = {r["status"] for r in rows if r["status"]}
    return {"table_rows": rows, "n_table_cut": max(0, len(alerts) - len(listed)), "table_limit": limit,
            "n_table_alerts": len(alerts), "listed": listed,
            "table_typologies": sorted({r["typology"] for r in rows if r["typology"]}),
            "table_statuses": [s for s in STATUS_ORDER if s in statuses] + sorted(statuses - set(STATUS_ORDER)),
            "has_age": "age_days" in alerts or "first_seen" in alerts,
            "entity_sections": entity_sections, "listed_entities": listed_entities,
            "network_sections": network_sections}


def _payments(alert: dict) -> str:
    """What the run knows of the payments behind an invoice alert (the payments themselves are in the
    transfers file, not in the run): how many, how many split under the threshold, over how many days."""
    n = alert.get("n_payments")
    if not _finite(n) or float(n) <= 0:
        return ""
    text = f"{int(n)} payment(s)"
    if _finite(alert.get("split_payments")) and float(alert["split_payments"]) > 0:
        text += f", {int(alert['split_payments'])} split under the reporting threshold"
        if _finite(alert.get("split_span_days")):
            text += f" within {float(alert['split_span_days']):g} days"
    if _finite(alert.get("paid_ratio")):
        text += f"; paid {ratio(float(alert['paid_ratio']))} the invoice"
    return text


# ---- the payments behind an alert -----------------------------------------------------------------------

# Every accepted transfer with the invoice it was linked to, where a run folder holds it: the columns of a
# transfer, ``link`` (how it was linked, "" if not) and ``paid_invoice`` (the key payments cite: the invoice
# number, else the invoice id; null if unlinked), plus ``paid_invoice_file`` (that invoice's file sha256) in
# a run with a case store. Without it, the report has only the payments that settle no invoice (items.parquet).
PAYMENTS_NAME = "payments.parquet"
_PAYMENT_COLUMNS = ["transfer_id", "date", "payer_id", "payer_country", "payee_id", "payee_country", "amount",
                    "currency", "reporting_amount", "channel", "invoice_ref", "link", "paid_invoice",
                    "paid_invoice_file"]
_PAYMENTS_SHOWN = 12  # listed per alert; the others are counted
_NO_PAYMENTS = {"rows": [], "more": 0, "note": ""}


def _payments_behind(run_dir: Path, alerts: pd.DataFrame, config: dict) -> dict[int, dict]:
    """For each alert (by rank) the payments behind it: an invoice's payments, or for a payment with no
    invoice, it and the same payer's other payments to the same payee within the structuring window; each
    with its id, date, amount, payer and payee and what stands out. ``{"rows", "more", "note"}``. An invoice's
    payments are listed only where the run folder holds ``PAYMENTS_NAME``."""
    rec = config.get("reconciliation", {})
    rule = {"threshold": float(rec.get("reporting_threshold", 10_000.0)), "band": float(rec.get("structuring_band", 0.15)),
            "window": int(rec.get("structuring_window_days", 10)), "currency":
            config.get("ingest", {}).get("reporting_currency", "USD")}
    path = run_dir / PAYMENTS_NAME
    linked = path.is_file()
    source = _parquet(path, ds.dataset) if linked else _parquet(run_dir / "items.parquet", ds.dataset)
    names = source.schema.names
    columns = [c for c in _PAYMENT_COLUMNS if c in names]
    if "transfer_id" not in names:  # a run without transfers
        return {}
    is_invoice = (alerts["item"] == "invoice").to_numpy()
    out: dict[int, dict] = {}
    invoices = alerts[is_invoice]
    transfers = alerts[~is_invoice & alerts["payer_id"].notna().to_numpy()] if "payer_id" in alerts else alerts[:0]
    if len(invoices) and linked and "paid_invoice" in names:
        from tbml.features.reconciliation import invoice_keys

        keys = invoice_keys(invoices).to_numpy(dtype=object)
        paid = source.to_table(columns=columns, filter=ds.field("paid_invoice").isin(sorted(set(keys)))).to_pandas()
        by = ["paid_invoice", "paid_invoice_file"] if "paid_invoice_file" in paid and "file_sha256" in invoices \
            else ["paid_invoice"]
        groups = _records_by(paid, by)
        files = invoices["file_sha256"].to_numpy(dtype=object) if len(by) == 2 else [None] * len(invoices)
        for alert, key, file in zip(invoices.to_dict("records"), keys, files):
            group = groups.get((key, file) if len(by) == 2 else (key,))
            if group:
                out[int(alert["rank"])] = _payment_list(group, alert, rule, "")
    if len(transfers):
        wanted = ds.field("payer_id").isin(sorted(set(transfers["payer_id"].dropna().astype(str))))
        if not linked:
            wanted &= ds.field("item") == "transfer"
        pair = source.to_table(columns=columns, filter=wanted).to_pandas()
        pair = pair.merge(transfers[["rank", "payer_id", "payee_id", "date"]].rename(columns={"date": "alert_date"}),
                          on=["payer_id", "payee_id"])
        days = (pd.to_datetime(pair["date"]) - pd.to_datetime(pair["alert_date"])).dt.days.abs()
        groups = _records_by(pair[(days <= rule["window"]).to_numpy()], ["rank"])
        for alert in transfers.to_dict("records"):
            note = (f"Payments from {_text(alert.get('payer_id'))} to {_text(alert.get('payee_id'))} within "
                    f"{rule['window']} days of this one"
                    + ("." if linked else ", of those with no invoice behind them (the run folder does not hold "
                                          "the payments that settle invoices)."))
            out[int(alert["rank"])] = _payment_list(groups.get((alert["rank"],), []), alert, rule, note)
    return out


def _records_by(payments: pd.DataFrame, keys: list[str]) -> dict[tuple, list[dict]]:
    """The payments as records, earliest first, grouped by the values of ``keys``: one pass, not a frame per
    alert (thousands of alerts)."""
    payments = payments.sort_values(["date", "transfer_id"], kind="stable")
    groups: dict[tuple, list[dict]] = {}
    for key, record in zip(zip(*(payments[k].tolist() for k in keys)), payments.to_dict("records")):
        groups.setdefault(key, []).append(record)
    return groups


def _payment_list(payments: list[dict], alert: dict, rule: dict, note: str) -> dict:
    """Payments (records, earliest first) as rows for the page, each with what stands out for this alert."""
    rows = []
    threshold, near = rule["threshold"], rule["threshold"] * (1 - rule["band"])
    is_invoice = alert.get("item") == "invoice"
    corridor = {_text(alert.get("exporter_country")), _text(alert.get("importer_country"))} - {""}
    for p in payments[:_PAYMENTS_SHOWN]:
        reported = _f(p.get("reporting_amount"))
        marks = []
        if not is_invoice and p.get("transfer_id") == alert.get("transfer_id"):
            marks.append("this payment")
        if near <= reported < threshold:
            marks.append("just under the threshold")
        elif reported < threshold and is_invoice:
            marks.append("under the threshold")
        if is_invoice:
            if _text(p.get("payer_id")) != _text(alert.get("importer_id")):
                marks.append("paid by someone other than the importer")
            if _text(alert.get("exporter_id")) and _text(p.get("payee_id")) != _text(alert.get("exporter_id")):
                marks.append("paid to someone other than the exporter")
            outside = [c for c in (_text(p.get("payer_country")), _text(p.get("payee_country"))) if c and corridor and c not in corridor]
            if outside:
                marks.append(f"through {', '.join(dict.fromkeys(outside))}, outside the corridor")
        elif _text(p.get("paid_invoice")):
            marks.append(f"settles invoice {_text(p.get('paid_invoice'))}")
        elif not _text(p.get("link")):
            marks.append("no invoice found")
        amount = f"{number(_f(p.get('amount')))} {_text(p.get('currency'))}".strip()
        if _text(p.get("currency")) != rule["currency"] and np.isfinite(reported):
            amount += f" = {number(reported)} {rule['currency']}"
        rows.append({"id": _text(p.get("transfer_id")), "date": _text(p.get("date"))[:10], "amount": amount,
                     "payer": _party(p, "payer"), "payee": _party(p, "payee"),
                     "channel": _text(p.get("channel")).replace("_", " "),
                     "marks": marks})
    return {"rows": rows, "more": max(0, len(payments) - len(rows)), "note": note}


def _party(payment: dict, role: str) -> str:
    country = _text(payment.get(f"{role}_country"))
    return _text(payment.get(f"{role}_id")) + (f" ({country})" if country else "")


def _rollup_items(path: Path) -> pd.DataFrame:
    """The items' parties and values: the entity ranking counts each party's lines and volume in them."""
    names = ds.dataset(path).schema.names
    return pd.read_parquet(path, columns=[c for c in ITEM_COLUMNS if c in names])


def _accounting(manifest: dict) -> list[dict]:
    scored = manifest.get("rows_scored", {})
    rows = []
    for s in manifest.get("inputs", []):
        kind = s.get("kind", "")
        if kind == "transfers":
            detail = (f"{scored.get('transfers_unmatched', 0):,} scored as items (no invoice found), "
                      f"{scored.get('transfers_settling_invoices', 0):,} scored through the invoices they pay")
        else:
            detail = f"{scored.get('invoices', s['rows_accepted']):,} invoice lines scored"
        rows.append({"kind": kind, "path": s.get("path", ""), "sha256": s.get("sha256", "")[:16],
                     "dates": " to ".join(s.get("date_range", [])), "rows_in": s["rows_in"],
                     "accepted": s["rows_accepted"], "quarantined": s["rows_quarantined"], "detail": detail,
                     "balanced": s["rows_in"] == s["rows_accepted"] + s["rows_quarantined"],
                     "reasons": sorted(s.get("quarantine_reasons", {}).items(), key=lambda kv: -kv[1])})
    return rows


def _risk_bands(alerts: pd.DataFrame, threshold: float) -> list[tuple[str, int]]:
    risk = alerts["risk"].to_numpy(dtype=float)
    edges = [(80, 101, "80-100"), (60, 80, "60-79"), (threshold, 60, f"{threshold:g}-59")]
    return [(label, int(((risk >= lo) & (risk < hi)).sum())) for lo, hi, label in edges if lo < hi]


def _band_meaning(bands: list) -> str:
    """What a risk means in this run, from the manifest: with a model trained on labels, the share of
    laundering its held-out labelled lines had in each band; without, where a risk ranks in the file."""
    if not bands or not isinstance(bands, list) or not all(isinstance(b, dict) for b in bands):
        return ""
    if "precision" in bands[0]:
        parts = [f"risk {b.get('band')}: {100 * float(b.get('precision', 0)):.0f}% laundering among "
                 f"{int(b.get('lines', 0)):,} held-out labelled lines" for b in bands]
        return "What the risk means (measured on the model's held-out labels): " + "; ".join(parts) + "."
    parts = [f"the top {b.get('top')} of the items are at risk {float(b.get('risk_from', 0)):.4g} or more"
             for b in bands]
    return "What the risk means in this file (no labels to measure it by): " + "; ".join(parts) + "."


def _counts(values: pd.Series, n: int | None = None) -> list[tuple[str, int]]:
    counts = values[values.astype(str) != ""].value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")  # ties in name order: stable
    return [(str(k), int(v)) for k, v in (counts.head(n) if n else counts).items()]


def _model_text(manifest: dict) -> str:
    info = manifest.get("model_info") or {}
    text = str(manifest.get("model", "fitted on the input"))
    if info.get("version") is not None:
        text += f" = {info.get('name')} version {info['version']} (run {info.get('run_id', '?')})"
    elif info.get("sha256"):
        text += f" (model.json sha256 {info['sha256'][:16]}, trained with tbml {info.get('tbml_version', '?')})"
    return text


# ---- the top alerts and their peers --------------------------------------------------------------------

_PEER_COLUMNS = ["item", "invoice_id", "source_row", "date", "hs6", "exporter_country", "importer_country",
                 "declaration_side", "quantity", "quantity_unit", "gross_weight_kg", "reporting_value"]


def _peer_lines(items_path: Path, shown: pd.DataFrame, period: str) -> pd.DataFrame:
    """The invoice lines of the scored file that share an HS chapter with a shown alert (read from
    items.parquet, only the columns a price needs), with ``hs6`` as text and their ``period`` key."""
    if not items_path.exists() or "hs6" not in shown:
        return pd.DataFrame(columns=_PEER_COLUMNS)
    chapters = sorted({str(h)[:2] for h in shown["hs6"].dropna()})
    dataset = _parquet(items_path, ds.dataset)
    columns = [c for c in _PEER_COLUMNS if c in dataset.schema.names]
    if not chapters or "hs6" not in columns:
        return pd.DataFrame(columns=_PEER_COLUMNS)
    wanted = ds.field("item") == "invoice"
    if "hs2" in dataset.schema.names:  # read only the chapters shown, not a million lines
        wanted &= ds.field("hs2").isin(chapters)
    frame = dataset.to_table(columns=columns, filter=wanted).to_pandas()
    frame["hs6"] = frame["hs6"].astype(str)
    frame = frame[frame["hs6"].str[:2].isin(chapters)].copy()
    frame["period"] = period_keys(frame["date"], period)
    return frame


def _alert_card(alert: dict, peers: pd.DataFrame, currency: str, fitted_on_input: bool) -> dict:
    is_invoice = alert.get("item") == "invoice"
    card = {
        "rank": alert["rank"], "risk": alert["risk"], "typology": alert.get("suspected_typology", ""),
        "item": alert.get("item", ""), "status": alert.get("status") or "",  # with a store: new, seen before...
        "id": alert.get("invoice_id") if is_invoice else alert.get("transfer_id"),
        "reasons": [r.strip() for r in str(alert.get("reasons", "")).split(" | ") if r.strip()],
        "rules": [r for r in str(alert.get("rules_hit") or "").split(",") if r],
        "facts": _facts(alert, is_invoice, currency),
        "parties": [(role, _text(alert.get(col))) for col, role in _PARTY_ROLES if _text(alert.get(col))],
        "network": _text(alert.get("network")),
        "chart": None, "chart_note": "",
    }
    driver = alert.get("driver") or ""
    if is_invoice and driver in _PRICE_DRIVERS and _finite(alert.get("price")):
        prices, note = _peer_prices(alert, peers, driver)
        where = "the model's training data" if not fitted_on_input else "this file"
        box = f"box: Q1-median-Q3 of {int(alert.get('peers') or 0):,} reference lines ({alert.get('level', '')}, {where})"
        unit = alert.get("unit") or ("KGM" if driver == "value_per_kg" else "")
        card["chart"] = price_chart(prices, float(alert["price"]), _f(alert.get("reference_q1")),
                                    _f(alert.get("reference_median")), _f(alert.get("reference_q3")),
                                    _f(alert.get("fence_low")), _f(alert.get("fence_high")),
                                    f"{_PRICE_DRIVERS[driver]}, {price_unit(currency, unit)}")
        card["chart_note"] = (f"Red: this line. {box[0].upper() + box[1:]}; dashed: the fences beyond which a price "
                              f"is an outlier; dots: {note}.")
    return card


def typologies_in_words(text) -> str:
    """A roll-up's "over_invoicing (3), structuring (1)" as "over-invoicing (3), structuring (1)"."""
    return re.sub(r"[a-z_]+", lambda m: TYPOLOGY_NAMES.get(m.group(), m.group()), str(text or ""))


def _finite(x) -> bool:
    try:
        return bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def _f(x) -> float:
    return float(x) if _finite(x) else float("nan")


def _facts(alert: dict, is_invoice: bool, currency: str) -> list[tuple[str, str]]:
    def text(name):
        value = alert.get(name)
        return "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(value)

    if is_invoice:
        facts = [("date", text("date")[:10]), ("importer", text("importer_id")), ("exporter", text("exporter_id")),
                 ("corridor", f"{text('exporter_country')} → {text('importer_country')}"),
                 ("HS code", text("hs_code")), ("goods", text("goods_description")),
                 ("quantity", f"{number(_f(alert.get('quantity')))} "
                              f"{unit_name(alert.get('quantity_unit'), plural=True)}"),
                 ("gross weight", f"{number(_f(alert.get('gross_weight_kg')))} kg"),
                 ("value", f"{number(_f(alert.get('value')))} {text('currency')} = "
                           f"{number(_f(alert.get('reporting_value')))} {currency}"),
                 ("export declaration", _mirror_fact(alert, currency)),
                 ("shipment", text("shipment_ref")), ("source row", text("source_row"))]
    else:
        facts = [("date", text("date")[:10]), ("payer", f"{text('payer_id')} ({text('payer_country')})"),
                 ("payee", f"{text('payee_id')} ({text('payee_country')})"),
                 ("amount", f"{number(_f(alert.get('amount')))} {text('currency')}"),
                 ("channel", text("channel")), ("cites invoice", text("invoice_ref")), ("source row", text("source_row"))]
    return [(k, v) for k, v in facts if v.strip() and v.strip() not in ("→", "n/a", "n/a kg", "()")]


def _mirror_fact(alert: dict, currency: str) -> str:
    """The exporting side's value of the same goods, raised to CIF, and the import line's ratio to it."""
    counterpart, gap = _f(alert.get("mirror_value")), _f(alert.get("mirror_value_gap"))
    if not (np.isfinite(counterpart) and np.isfinite(gap)):
        return ""
    return (f"{number(counterpart)} {currency} with freight and insurance; this line declares "
            f"{ratio(np.exp(gap))} that")


def _peer_prices(alert: dict, peers: pd.DataFrame, driver: str) -> tuple[np.ndarray, str]:
    """This file's lines in the alert's peer group (same measure, unit, side and level keys), without the
    alert's own line, and a note saying what the dots are."""
    if peers.empty:
        return np.empty(0), "no peer lines available"
    value = peers["reporting_value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if driver == "unit_price":
            price = value / peers["quantity"].to_numpy(dtype=float)
            mask = np.array(peers["quantity_unit"].astype(str) == str(alert.get("unit")), dtype=bool)
        else:
            price = value / peers["gross_weight_kg"].to_numpy(dtype=float)
            mask = np.ones(len(peers), dtype=bool)
    side = peers["declaration_side"].astype("string").fillna("").to_numpy() if "declaration_side" in peers else None
    if side is not None:
        mask &= side == (alert.get("declaration_side") or "")
    mask &= (peers["source_row"] != alert.get("source_row")).to_numpy()
    keys = level_keys(alert.get("level", ""))
    note = "other lines of that group in this file"
    if keys is None:  # an external reference: show the file's own lines of the same HS6
        keys, note = {"hs6": str(alert.get("hs6"))}, "this file's lines of the same HS6"
    hs6 = peers["hs6"]
    for key, wanted in keys.items():
        if key in ("hs6", "hs4", "hs2"):
            mask &= (hs6.str[: int(key[2])] == wanted).to_numpy()
        elif key == "origin":
            mask &= (peers["exporter_country"].astype(str) == wanted).to_numpy()
        elif key == "destination":
            mask &= (peers["importer_country"].astype(str) == wanted).to_numpy()
        elif key == "period":
            mask &= (peers["period"] == wanted).to_numpy()
    chosen = price[mask]
    chosen = chosen[np.isfinite(chosen) & (chosen > 0)]
    return chosen, f"{len(chosen):,} {note}"


# ---- circular trade ------------------------------------------------------------------------------------

def _rings(items_path: Path, alerts: pd.DataFrame, n: int = 6) -> list[dict]:
    """The ``n`` rings with the most alerted risk, each with its legs in order round the ring."""
    if "cycle_id" not in alerts:
        return []
    ringed = alerts[alerts["cycle_id"].fillna("").astype(str) != ""]
    if ringed.empty:
        return []
    ranked = ringed.groupby("cycle_id")["risk"].agg(["sum", "size"]).sort_values(
        ["sum", "size"], ascending=False, kind="stable").head(n)
    names = ranked.index.tolist()
    legs = ringed[ringed["cycle_id"].isin(names)]
    if items_path.exists():  # every leg of the ring, alerted or not
        table = _parquet(items_path, ds.dataset).to_table(
            columns=["cycle_id", "exporter_id", "importer_id", "date", "risk"], filter=ds.field("cycle_id").isin(names))
        legs = table.to_pandas()
    out = []
    for rank, name in enumerate(names, start=1):
        mine = legs[legs["cycle_id"] == name]
        pairs = mine.groupby(["exporter_id", "importer_id"]).agg(lines=("risk", "size"), first=("date", "min"),
                                                                  last=("date", "max")).reset_index()
        ordered = _ring_order(list(zip(pairs["exporter_id"], pairs["importer_id"])))
        info = pairs.set_index(["exporter_id", "importer_id"])
        edges = []
        for seller, buyer in ordered:
            row = info.loc[(seller, buyer)]
            edges.append((seller, buyer, f"{int(row['lines'])} line(s), {str(row['first'])[:10]} to {str(row['last'])[:10]}"))
        hs6 = name.split(":", 1)[0]
        traders = sorted({t for e in ordered for t in e})
        out.append({"ring": name, "hs6": hs6, "traders": traders, "legs": edges,
                    "risk_sum": float(ranked.loc[name, "sum"]), "alerts": int(ranked.loc[name, "size"]),
                    "chart": ring_chart(edges, f"ring{rank}", f"HS6 {hs6}: goods round {len(traders)} traders")})
    return out


def _ring_order(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The legs in the order the goods travel, starting from the smallest trader; legs off the ring last."""
    if not pairs:
        return []
    following = {}
    for seller, buyer in sorted(pairs):
        following.setdefault(seller, buyer)
    start = min(following)
    ordered, node = [], start
    while node in following and (node, following[node]) not in ordered:
        ordered.append((node, following[node]))
        node = following[node]
    return ordered + [p for p in sorted(pairs) if p not in ordered]

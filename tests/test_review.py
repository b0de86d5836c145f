"""Investigators' decisions in the case store: they survive re-runs, a dismissed alert comes back only on
a real rise, decisions go out and back in as CSV (a bad row writes nothing), batch jobs keep a store, and
pruning keeps what was decided."""

import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.api import score_files
from tbml.cli import cli
from tbml.errors import TBMLError
from tbml.review import ReviewError, decide, export_decisions, import_decisions, list_alerts
from tbml.store import REOPEN_POINTS, Store, alert_changes
from tbml.synth import generate


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """1,500 generated invoices over half a year with transfers, split into two files at a day."""
    root = tmp_path_factory.mktemp("days")
    data = generate(n_invoices=1500, laundering_rate=0.05, seed=11, days=180)
    inv, tr = (f.assign(date=pd.to_datetime(f["date"])) for f in (data.invoices, data.transfers))
    cut = inv["date"].sort_values().iloc[len(inv) * 3 // 4]
    for name, rows in (("inv1", inv[inv["date"] <= cut]), ("tr1", tr[tr["date"] <= cut]),
                       ("inv2", inv[inv["date"] > cut]), ("tr2", tr[tr["date"] > cut])):
        rows.to_csv(root / f"{name}.csv", index=False)
    return root


@pytest.fixture()
def day1_store(two_days, tmp_path):
    store = tmp_path / "cases.duckdb"
    score_files(two_days / "inv1.csv", two_days / "tr1.csv", store=store, out_dir=tmp_path / "out1")
    return store


def _status(store, alert_id):
    with Store.open(store, read_only=True) as opened:
        return opened.con.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()[0]


def test_a_decision_survives_the_next_run(two_days, day1_store, tmp_path):
    alerts = list_alerts(day1_store, status="open")
    confirmed, dismissed = alerts["alert_id"].iloc[0], alerts["alert_id"].iloc[1]
    decide(day1_store, confirmed, "confirmed", note="no such shipment", by="ana")
    decide(day1_store, dismissed, "dismissed", by="ben")
    assert _status(day1_store, confirmed) == "confirmed"
    day2 = score_files(two_days / "inv2.csv", two_days / "tr2.csv", store=day1_store, out_dir=tmp_path / "out2")
    rejudged = day2.store_run.scored.set_index("alert_id")
    assert confirmed in rejudged.index and rejudged.loc[confirmed, "risk"] >= 30  # raised again on day 2
    assert _status(day1_store, confirmed) == "confirmed"
    assert _status(day1_store, dismissed) in ("dismissed", "open")  # open only if re-raised by the rule
    with Store.open(day1_store, read_only=True) as opened:
        history = opened.alert_history(confirmed)
    assert "confirmed" in history["change"].tolist()
    assert "confirmed by ana on " in history.loc[history["change"] == "confirmed", "why"].iloc[0]
    assert history["why"].str.endswith(": no such shipment").any()
    listed = CliRunner().invoke(cli, ["review", "list", "--store", str(day1_store), "--status", "confirmed"])
    assert listed.exit_code == 0
    assert listed.output.startswith(confirmed + "  confirmed") and "[ana: no such shipment]" in listed.output
    assert listed.output.endswith("1 alert(s) confirmed\n")


def test_unknown_alert_id_is_one_line(day1_store):
    result = CliRunner().invoke(cli, ["review", "decide", "Anope", "confirmed", "--store", str(day1_store)])
    assert result.exit_code == 1
    assert result.output == f"Error: {day1_store}: no alert Anope in the store (`tbml review list` shows them)\n"


def _one(risk, typology="over_invoicing", source_row=1):
    return pd.DataFrame({"alert_id": ["A1"], "item": ["invoice"], "invoice_id": ["INV1"], "file_sha256": ["old"],
                         "source_row": [source_row], "date": [pd.Timestamp("2026-11-01")], "risk": [risk],
                         "suspected_typology": [typology], "reasons": ["unit price high"]})


def _dismissed_at(risk, typology="over_invoicing"):
    return pd.DataFrame({"alert_id": ["A1"], "item": ["invoice"], "item_id": ["INV1"], "file_sha256": ["old"],
                         "source_row": [1], "date": [pd.Timestamp("2026-11-01")], "risk": [risk],
                         "typology": [typology], "reasons": ["unit price high"], "status": ["dismissed"],
                         "first_seen_run": ["r1"], "last_seen_run": ["r1"], "last_changed_run": ["r1"],
                         "decided_risk": [risk], "decided_typology": [typology]})


@pytest.mark.parametrize("now, typology, comes_back", [
    (50.0, "over_invoicing", False), (50.0 + REOPEN_POINTS - 1, "over_invoicing", False),
    (50.0 + REOPEN_POINTS, "over_invoicing", True), (52.0, "phantom_shipment", True)])
def test_a_dismissed_alert_comes_back_only_past_the_margin(now, typology, comes_back):
    state, history = alert_changes(_one(now, typology), _dismissed_at(50.0), 30.0, "r2", {"new": "day2.csv"}, {})
    assert state["status"].tolist() == (["open"] if comes_back else ["dismissed"])
    if comes_back:
        assert history["change"].tolist() == ["re-raised"]
        assert history["why"].iloc[0].startswith(f"dismissed at risk 50 (over_invoicing), now {now:.0f} ({typology}) "
                                                 "with day2.csv: ")
    else:
        assert "re-raised" not in history["change"].tolist()


def test_a_dismissed_alert_that_rises_is_re_raised_in_the_store(two_days, day1_store, tmp_path):
    alert = list_alerts(day1_store, status="open").iloc[0]
    decide(day1_store, alert["alert_id"], "dismissed", by="ana")
    with Store.open(day1_store) as opened:  # as if dismissed when it was 40 points less risky
        opened.con.execute("UPDATE decisions SET risk = risk - 40 WHERE alert_id = ?", [alert["alert_id"]])
    day2 = score_files(two_days / "inv2.csv", two_days / "tr2.csv", store=day1_store, out_dir=tmp_path / "out2")
    assert _status(day1_store, alert["alert_id"]) == "open"
    shown = day2.alerts.set_index("alert_id")
    assert shown.loc[alert["alert_id"], "status"] == "re-raised"
    with Store.open(day1_store, read_only=True) as opened:
        history = opened.alert_history(alert["alert_id"])
    assert history["change"].tolist()[-2:] == ["dismissed", "re-raised"]
    assert history["why"].iloc[-1].startswith(f"dismissed at risk {alert['risk'] - 40:.0f}")


def test_export_import_round_trip_and_a_bad_row_writes_nothing(two_days, day1_store, tmp_path):
    open_alerts = list_alerts(day1_store, status="open")
    decide(day1_store, open_alerts["alert_id"].iloc[0], "confirmed", note="seen, with, commas", by="ana",
           at=pd.Timestamp("2026-11-27 10:00"))
    decide(day1_store, open_alerts["alert_id"].iloc[1], "dismissed", by="ben", at=pd.Timestamp("2026-11-27 11:00"))
    exported = tmp_path / "decisions.csv"
    result = CliRunner().invoke(cli, ["review", "export", "--store", str(day1_store), "-o", str(exported)])
    assert result.exit_code == 0 and result.output == f"2 decision(s) written to {exported}\n"

    other = tmp_path / "other.duckdb"  # the same file scored into a new store: the same alert ids
    score_files(two_days / "inv1.csv", two_days / "tr1.csv", store=other, out_dir=tmp_path / "o")
    result = CliRunner().invoke(cli, ["review", "import", str(exported), "--store", str(other)])
    assert result.exit_code == 0 and result.output == f"2 decision(s) taken from {exported}\n"
    export_decisions(other, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == exported.read_text()

    # by invoice id instead of alert id, and a bad second row: nothing of the first is written
    invoice = open_alerts[open_alerts["item"] == "invoice"].iloc[2]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"invoice_id": [invoice["item_id"], invoice["item_id"]], "decision": ["confirmed", "maybe"],
                  "note": ["", ""], "reviewer": ["cy", "cy"], "date": ["2026-11-28", "2026-11-28"]}).to_csv(bad, index=False)
    result = CliRunner().invoke(cli, ["review", "import", str(bad), "--store", str(other)])
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}: line 3, column decision: 'maybe'; expected confirmed or dismissed\n"
    assert _status(other, invoice["alert_id"]) == "open"
    with Store.open(other, read_only=True) as opened:
        assert len(opened.decisions()) == 2
    with pytest.raises(ReviewError, match=r"line 2, column date: 'soon' is not a date"):
        pd.DataFrame({"alert_id": [invoice["alert_id"]], "decision": ["confirmed"], "date": ["soon"]}).to_csv(bad, index=False)
        import_decisions(bad, other)
    pd.DataFrame({"invoice_id": [invoice["item_id"]], "decision": ["Confirmed"]}).to_csv(bad, index=False)
    assert import_decisions(bad, other) == 1 and _status(other, invoice["alert_id"]) == "confirmed"


def test_prune_keeps_decided_alerts_and_their_rows(two_days, day1_store):
    alerts = list_alerts(day1_store)
    old = alerts.sort_values("date").iloc[0]
    decide(day1_store, old["alert_id"], "confirmed", by="ana")
    before = pd.Timestamp(alerts["date"].max()).normalize()
    with Store.open(day1_store, read_only=True) as opened:
        counts = {t: opened.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("invoices", "transfers", "alerts")}
        older = opened.con.execute("SELECT count(*) FROM invoices WHERE date < ?", [before.to_pydatetime()]).fetchone()[0]
    result = CliRunner().invoke(cli, ["store", "prune", "--before", str(before.date()), "--store", str(day1_store)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"removed before {before.date()}: ") and "decided alerts and their rows kept" in result.output
    with Store.open(day1_store, read_only=True) as opened:
        kept = opened.con.execute("SELECT alert_id, status FROM alerts WHERE date < ?", [before.to_pydatetime()]).fetchall()
        assert kept == [(old["alert_id"], "confirmed")]
        assert not opened.alert_history(old["alert_id"]).empty
        row = opened.con.execute("SELECT count(*) FROM alerts a JOIN invoices i ON i.file_sha256 = a.file_sha256 AND "
                                 "i.source_row = a.source_row WHERE a.alert_id = ?", [old["alert_id"]]).fetchone()[0]
        left = opened.con.execute("SELECT count(*) FROM invoices").fetchone()[0]
    assert row == (1 if old["item"] == "invoice" else 0) or old["item"] == "transfer"
    assert left == counts["invoices"] - older + (old["item"] == "invoice")
    assert f"{older - (old['item'] == 'invoice'):,} invoices" in result.output


def test_a_batch_job_with_a_store_scores_files_in_date_order_and_marks_statuses(two_days, tmp_path):
    from tbml.batch import load_job, run_batch

    for folder, day in (("a-later", "2"), ("b-earlier", "1")):  # by name the later day would come first
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "invoices.csv").write_bytes((two_days / f"inv{day}.csv").read_bytes())
        (tmp_path / folder / "transfers.csv").write_bytes((two_days / f"tr{day}.csv").read_bytes())
    job = tmp_path / "job.yaml"
    job.write_text("name: nightly\ninputs:\n  - invoices: '*/invoices.csv'\n    transfers: '{parent}/transfers.csv'\n"
                   "output: out\nstore: cases.duckdb\n")
    result = run_batch(job)
    assert [f.run_id for f in result.files] == ["b-earlier-invoices", "a-later-invoices"]
    assert [f.status for f in result.files] == ["scored", "scored"]
    first = pd.read_csv(tmp_path / "out/runs/b-earlier-invoices/alerts.csv")
    second = pd.read_csv(tmp_path / "out/runs/a-later-invoices/alerts.csv")
    assert set(first["status"]) == {"new"}
    assert "new" in set(second["status"]) and set(second["status"]) - {"new"}  # earlier alerts re-judged
    assert "[new]</span>" in (tmp_path / "out/runs/b-earlier-invoices/report.html").read_text()
    with Store.open(tmp_path / "cases.duckdb", read_only=True) as opened:
        assert opened.info()["runs"] == 2
    again = run_batch(job, force=True)  # every file already in the store: nothing added
    assert [f.status for f in again.files] == ["up to date", "up to date"]
    assert again.files[0].reason.startswith("already in the store (run ")
    job.write_text("inputs: [x.csv]\noutput: out\nstore: 3\n")
    with pytest.raises(TBMLError, match="'store' must be text"):
        load_job(job)

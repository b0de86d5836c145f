"""The HTML report: what it shows matches the run, its charts draw the right things, every text from the
data is escaped, and writing it is atomic."""

import dataclasses
import json
import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tbml import report
from tbml.errors import OutputError
from tbml.charts import bar_chart, price_chart, ring_chart
from tbml.cli import cli
from tbml.detectors.price import _level_label, level_keys
from tbml.features.pricing import period_keys

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


class _Page(HTMLParser):
    """Tags, ids and the text of a page, as a browser's parser sees them."""

    def __init__(self, html):
        super().__init__()
        self.tags, self.ids, self.text = [], set(), []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if dict(attrs).get("id"):
            self.ids.add(dict(attrs)["id"])

    def handle_data(self, data):
        self.text.append(data)


def test_report_shows_the_run_it_was_made_from(scored_run, tmp_path):
    out = report.write_report(scored_run, out=tmp_path / "r.html", top=7)
    html = out.read_text(encoding="utf-8")
    page = _Page(html)
    manifest = json.loads((scored_run / "manifest.json").read_text())
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    text = " ".join(page.text)
    # row accounting: every input's figures, and the check that they add up
    for s in manifest["inputs"]:
        assert f"{s['rows_in']:,}" in text and s["path"] in text
    assert text.count("in = accepted + quarantined") == len(manifest["inputs"])
    # the seven top alerts, in rank order, with their ids and first reasons
    cards = [attrs["id"] for tag, attrs in page.tags if tag == "section" and attrs.get("id", "").startswith("alert-")]
    assert cards == [f"alert-{i}" for i in range(1, 8)]
    for alert in alerts.head(7).itertuples():
        name = alert.invoice_id if alert.item == "invoice" else alert.transfer_id
        assert name in text and alert.reasons.split(" | ")[0] in text
    # a price chart for each shown invoice alert judged on its price
    priced = alerts.head(7)
    priced = priced[(priced["item"] == "invoice") & priced["driver"].isin(["unit_price", "value_per_kg"])]
    assert html.count('aria-label="price ') == len(priced) > 0
    # typology bars count every alert
    bars = re.search(r'aria-label="alerts by suspected typology">(.*?)</svg>', html).group(1)
    shown = [int(v.replace(",", "")) for v in re.findall(r'fill="#1f2933">([\d,]+)</text>', bars)]
    assert sum(shown) == len(alerts)
    # the model line and every section the investigator navigates to
    assert "fitted on the input" in text
    assert {"accounting", "overview", "alerts", "entities", "networks", "rings", "run"} <= page.ids


def test_report_draws_rings_from_the_alerted_cycles(scored_run, tmp_path):
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    rings = alerts["cycle_id"].fillna("").astype(str)
    assert (rings != "").any(), "the fixture should hold circular trade"
    html = report.write_report(scored_run, out=tmp_path / "r.html").read_text(encoding="utf-8")
    drawn = re.findall(r'aria-label="HS6 (\d{6}): goods round (\d) traders"', html)
    assert drawn
    for hs6, traders in drawn:
        members = {m for ring in rings[rings.str.startswith(hs6 + ":")] for m in ring.split(":")[1].split("-")}
        assert int(traders) <= len(members)


def test_every_text_from_the_data_is_escaped(scored_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("manifest.json", "items.parquet"):
        (run / name).write_bytes((scored_run / name).read_bytes())
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    for column in ("importer_id", "exporter_id", "goods_description", "exporter_country", "reasons"):
        alerts[column] = alerts[column].astype(object)
        alerts.loc[alerts.index[:3], column] = EVIL
    ringed = alerts.index[alerts["cycle_id"].fillna("") != ""][:2]
    alerts.loc[ringed, "exporter_id"] = EVIL  # into a ring drawing too
    alerts.to_parquet(run / "alerts.parquet")
    html = report.write_report(run, title=EVIL).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(" in html
    page = _Page(html)
    assert [tag for tag, _ in page.tags].count("script") == 1  # only the page's own check
    assert not any(tag == "img" for tag, _ in page.tags)
    assert any(EVIL in chunk for chunk in page.text)  # shown to the reader as text, exactly
    assert _dangling_links(page) == []  # links to a hostile entity name still land on its section


def test_the_page_allows_only_its_own_script(scored_run, tmp_path):
    html = report.write_report(scored_run, out=tmp_path / "r.html").read_text(encoding="utf-8")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in policy
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    import base64
    import hashlib
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert "https://" not in html


def test_a_crash_while_writing_leaves_the_previous_report(scored_run, tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    report.write_report(scored_run, out=out, top=3)
    before = out.read_bytes()

    def half_then_crash(self, text, encoding=None):
        with open(self, "w", encoding=encoding) as handle:
            handle.write(text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_crash)
    with pytest.raises(OutputError, match="report.html: cannot write: disk full"):  # one line, no traceback
        report.write_report(scored_run, out=out, top=10)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no half-written temporary left


def test_report_command(scored_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["report", str(scored_run), "-o", str(tmp_path / "r.html"), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"report: {re.escape(str(tmp_path / 'r.html'))} \([\d,]+ KiB\)\n", result.output)
    result = runner.invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path}: no manifest.json; is this a folder written by `tbml score -o`?\n"


# ---- charts ----------------------------------------------------------------------------------------------

def _xs(svg: str, pattern: str) -> list[float]:
    return [float(v) for v in re.findall(pattern, svg)]


def test_price_chart_places_price_box_and_fences_in_order():
    peers = np.exp(np.random.default_rng(0).normal(np.log(100), 0.2, 50))
    svg = str(price_chart(peers, 900.0, 88.0, 100.0, 113.0, 60.0, 165.0, "unit price, USD per NAR"))
    box_x = _xs(svg, r'<rect x="([\d.]+)" y="\d+" width="[\d.]+" height="\d+" fill="#bcccdc"')[0]
    fences = _xs(svg, r'<line x1="([\d.]+)" y1="\d+" x2="[\d.]+" y2="\d+" stroke="#7b8794" stroke-dasharray')
    price_x = _xs(svg, r'<circle cx="([\d.]+)" cy="[\d.]+" r="5" fill="#c62828"')[0]
    assert fences[0] < box_x < fences[1] < price_x  # lower fence, box, upper fence, then the over-priced line
    assert svg.count('r="2.2"') == 50  # one dot per peer


def test_price_chart_thins_many_peers_to_their_quantiles():
    peers = np.arange(1.0, 5001.0)
    svg = str(price_chart(peers, 10.0, 1000.0, 2500.0, 3750.0, 10.0, 9000.0, "x"))
    assert svg.count('r="2.2"') == 400


def test_bar_and_ring_charts_escape_and_count():
    svg = str(bar_chart([(EVIL, 3), ("b", 1)], "t"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<rect") == 2
    ring = str(ring_chart([("A", EVIL, "1 line"), (EVIL, "C", "2 lines"), ("C", "A", "1 line")], "r1", "ring"))
    assert ring.count("marker-end=") == 3 and ring.count("<circle") == 3 and "<script>" not in ring


def test_level_labels_read_back_as_peer_keys():
    keys = pd.DataFrame({"hs6": ["090111"], "origin": ["CN"], "destination": ["US"], "period": ["2023Q2"]})
    level = ("hs6", "origin", "destination", "period")
    label = _level_label(keys, level, np.array([True]))[0]
    assert label == "HS6 090111 from CN to US period 2023Q2"
    assert level_keys(label) == {"hs6": "090111", "origin": "CN", "destination": "US", "period": "2023Q2"}
    assert level_keys("all lines") == {} and level_keys("UN Comtrade 2023 HS6") is None


def test_peer_dots_are_the_lines_of_the_alerts_group():
    peers = pd.DataFrame({
        "item": "invoice", "invoice_id": ["a", "b", "c", "d", "e"], "source_row": [1, 2, 3, 4, 5],
        "date": pd.to_datetime(["2023-04-02", "2023-05-01", "2023-05-09", "2023-08-01", "2023-05-03"]),
        "hs6": ["090111", "090111", "090111", "090111", "090112"],
        "exporter_country": ["CN", "CN", "VN", "CN", "CN"], "importer_country": "US",
        "declaration_side": "import", "quantity": [10.0, 20.0, 10.0, 10.0, 10.0], "quantity_unit": "KGM",
        "gross_weight_kg": 10.0, "reporting_value": [100.0, 300.0, 50.0, 70.0, 80.0]})
    alert = {"source_row": 1, "unit": "KGM", "declaration_side": "import",
             "level": "HS6 090111 from CN to US period 2023Q2"}
    peers["period"] = period_keys(peers["date"], "quarter")
    prices, note = report._peer_prices(alert, peers, "unit_price")
    assert prices.tolist() == [15.0]  # b only: a is the line itself, c another origin, d another quarter, e another HS6
    assert note == "1 other lines of that group in this file"


def test_a_mirror_alert_shows_the_export_declaration_it_was_measured_against():
    alert = {"item": "invoice", "invoice_id": "I1", "value": 300.0, "currency": "USD", "reporting_value": 300.0,
             "mirror_value": 100.0, "mirror_value_gap": float(np.log(3.0))}
    facts = dict(report._facts(alert, True, "USD"))
    assert facts["export declaration"] == "100 USD with freight and insurance; this line declares 3x that"
    assert "export declaration" not in dict(report._facts({**alert, "mirror_value": float("nan")}, True, "USD"))


def _dangling_links(page: _Page) -> list[str]:
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a" and attrs.get("href", "").startswith("#")]
    return [h for h in hrefs if unquote(h[1:]) not in page.ids]


def test_every_alert_is_in_the_table_with_drill_down_to_its_entities_and_network(scored_run, tmp_path):
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    html = report.write_report(scored_run, out=tmp_path / "report.html", top=3).read_text(encoding="utf-8")
    page = _Page(html)
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and attrs.get("id", "").startswith("row-")]
    assert [r["id"] for r in rows] == [f"row-{k}" for k in alerts["rank"]]
    assert _dangling_links(page) == []  # every alert, entity and network link lands on a section
    first = alerts.iloc[0]
    for party in (first["importer_id"], first["exporter_id"]):
        assert f"entity-{party}" in page.ids and f'href="#entity-{party}"' in html
    assert f"network-{first['network']}" in page.ids
    section = html[html.index(f'id="entity-{first["importer_id"]}"'):]
    assert f'href="#row-{first["rank"]}"' in section[:section.index("</details>")]  # the entity lists its alerts
    assert "alerts by risk" in html and "alerts by month" in html and "scored 20" in html


def test_the_table_says_when_it_is_cut(scored_run, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_TABLE_ROWS", 40)
    n = len(pd.read_parquet(scored_run / "alerts.parquet"))
    html = report.write_report(scored_run, out=tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('<tr id="row-') == 40
    assert f"The first 40 of {n:,} alerts by rank; the other {n - 40:,} are in alerts.csv." in html


# ---- statuses with a case store, the run's time, the payments behind an alert ------------------------------

@pytest.fixture(scope="module")
def store_run(tmp_path_factory):
    """The second of two files scored with a case store (3,000 generated invoices over a year, split at the new
    year): its alerts carry statuses, some of them earlier alerts it resolved."""
    from tbml.api import score_files
    from tbml.synth import generate

    root = tmp_path_factory.mktemp("store_run")
    data = generate(n_invoices=3000, laundering_rate=0.04, seed=3, days=365)
    cut = pd.Timestamp("2022-12-31")
    for name, frame in (("inv", data.invoices), ("tr", data.transfers)):
        frame = frame.assign(date=pd.to_datetime(frame["date"]))
        frame[frame["date"] <= cut].to_csv(root / f"{name}0.csv", index=False)
        frame[frame["date"] > cut].to_csv(root / f"{name}1.csv", index=False)
    store = root / "cases.duckdb"
    score_files(root / "inv0.csv", root / "tr0.csv", store=store, out_dir=root / "first")
    score_files(root / "inv1.csv", root / "tr1.csv", store=store, out_dir=root / "run")
    return root / "run"


def _table_cells(html: str, column: str) -> dict[str, str]:
    """Row id -> the text of one column of the alerts table, found by its heading."""
    table = html[html.index('id="alert-table"'):]
    table = table[:table.index('<h2 id="alerts">')]  # rows hold tables of payments: their own </table>
    headings = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", table[:table.index("</thead>")])]
    at = headings.index(column)
    out = {}
    for row in table.split('<tr id="')[1:]:
        texts = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        out[row[:row.index('"')]] = re.sub(r"<[^>]+>", "", texts[at]).strip()
    return out


def test_a_store_run_shows_each_alerts_status_and_the_counts_by_status(store_run, tmp_path):
    alerts = pd.read_parquet(store_run / "alerts.parquet")
    counts = alerts["status"].value_counts()
    assert {"new", "resolved"} <= set(counts.index), "the fixture should resolve an earlier alert"
    html = report.write_report(store_run, out=tmp_path / "r.html").read_text(encoding="utf-8")
    # the summary names every status with its count, in the order new, raised, ..., resolved
    order = [s for s in report.STATUS_ORDER if s in counts.index]
    said = ", ".join(f"{counts[s]:,} {s}" for s in order)
    assert f"Against the case store: {said}." in html
    open_alerts = alerts[alerts["status"] != "resolved"]
    opened = ", ".join(f"{counts[s]:,} {s}" for s in order if s != "resolved")
    # resolved alerts are not counted as alerts
    assert f"{len(open_alerts):,} alerts at risk ≥ 30 (at most 5% of the items): {opened}; " in html
    assert f"; {counts['resolved']:,} earlier alert(s) resolved" in html
    # every alert is a row with its status, which the status filter offers
    statuses = _table_cells(html, "status")
    assert statuses == {f"row-{r}": s for r, s in zip(alerts["rank"], alerts["status"])}
    options = re.search(r'<select id="alert-status" data-filter="status">(.*?)</select>', html).group(1)
    assert re.findall(r'<option value="([^"]*)">', options) == [""] + order
    # a resolved alert's reason says why, and its missing risk is no "nan"
    resolved = alerts[alerts["status"] == "resolved"].iloc[0]
    assert resolved["reasons"] in html and ">nan<" not in html
    assert "re-raised (resolved or dismissed before" in html  # the glossary explains the statuses
    # the charts count open alerts only
    bars = re.search(r'aria-label="alerts by suspected typology">(.*?)</svg>', html).group(1)
    assert sum(int(v.replace(",", "")) for v in re.findall(r'fill="#1f2933">([\d,]+)</text>', bars)) == len(open_alerts)


def test_without_a_store_there_is_no_status_and_no_age(scored_run, tmp_path):
    html = report.write_report(scored_run, out=tmp_path / "r.html", top=3).read_text(encoding="utf-8")
    assert 'id="alert-status"' not in html and "Against the case store" not in html
    assert ">status</th>" not in html and "age (days)" not in html


def test_alerts_show_their_age_when_the_run_records_it(store_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(store_run, run)
    alerts = pd.read_parquet(run / "alerts.parquet")
    assert {"first_seen", "age_days"} <= set(alerts.columns)  # the case store gives them
    html = report.write_report(run, out=tmp_path / "store.html").read_text(encoding="utf-8")
    assert "age (days)" in html
    alerts = alerts.drop(columns=["first_seen", "age_days"])
    alerts.to_parquet(run / "alerts.parquet")
    html = report.write_report(run, out=tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "age (days)" not in html  # a run without ages gets no empty column
    started = pd.Timestamp(json.loads((run / "manifest.json").read_text())["started_at"])
    first_seen = started - pd.to_timedelta(alerts["rank"] % 40, unit="D")  # 0 to 39 days before the run
    alerts.assign(first_seen=first_seen).to_parquet(run / "alerts.parquet")
    html = report.write_report(run, out=tmp_path / "aged.html").read_text(encoding="utf-8")
    ages = _table_cells(html, "age (days)")
    assert ages == {f"row-{r}": str(r % 40) for r in alerts["rank"]}  # counted from first seen to the run's start
    assert f'title="first raised {first_seen.iloc[0]:%Y-%m-%d}"' in html
    # as the case store gives them: first seen as a date, the age in whole days (missing for none), a decision
    given = alerts.assign(first_seen=first_seen.dt.tz_localize(None).dt.normalize(),
                          age_days=pd.array([7] * (len(alerts) - 1) + [None], dtype="Int64"),
                          decision=pd.array(["dismissed"] + [None] * (len(alerts) - 1), dtype="string"))
    given.to_parquet(run / "alerts.parquet")
    html = report.write_report(run, out=tmp_path / "given.html").read_text(encoding="utf-8")
    assert list(_table_cells(html, "age (days)").values()) == ["7"] * (len(alerts) - 1) + [""]  # an age given wins
    assert "7 day(s) ago" in html  # in each top alert's card too
    statuses = _table_cells(html, "status")
    assert statuses[f"row-{alerts['rank'].iloc[0]}"] == f"{alerts['status'].iloc[0]} (dismissed)"
    assert sum("(dismissed)" in s for s in statuses.values()) == 1


def test_the_report_says_when_the_run_started(scored_run, tmp_path):
    manifest = json.loads((scored_run / "manifest.json").read_text())
    started = manifest["started_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started)  # ISO 8601, UTC
    when = pd.Timestamp(started)
    assert abs(when - pd.Timestamp((scored_run / "manifest.json").stat().st_mtime, unit="s", tz="UTC")) < pd.Timedelta("10min")
    html = report.write_report(scored_run, out=tmp_path / "r.html", top=2).read_text(encoding="utf-8")
    took = sum(manifest["seconds"].values())
    assert f"scored {when:%Y-%m-%d %H:%M} UTC" in html
    assert f"started {when:%Y-%m-%d %H:%M:%S} UTC, took {took:,.1f} s" in html
    # a run of an older tbml, without started_at: when its manifest was written, said as such
    run = tmp_path / "old"
    shutil.copytree(scored_run, run)
    (run / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "started_at"}))
    written = pd.Timestamp((run / "manifest.json").stat().st_mtime, unit="s", tz="UTC")
    html = report.write_report(run, out=tmp_path / "old.html", top=2).read_text(encoding="utf-8")
    assert f"{written:%Y-%m-%d %H:%M:%S} UTC, when its manifest.json was written" in html


def _payments_file(run: Path) -> pd.DataFrame:
    """payments.parquet as scoring wrote it; the run must hold it (tbml score writes it with transfers)."""
    path = run / report.PAYMENTS_NAME
    assert path.is_file(), "tbml score wrote no payments.parquet"
    return pd.read_parquet(path)


def _payment_rows(html: str, row_id: str) -> list[dict]:
    """The payments listed in a table row's drill-down: id, date, amount (in the reporting currency), payer,
    payee and the notes on each."""
    row = html[html.index(f'<tr id="{row_id}"'):]
    row = row[:row.index("</details>")]
    out = []
    for item in re.findall(r"<li>(.*?)</li>", row[row.index('<ul class="payments">'):] if 'class="payments"' in row else ""):
        notes = re.search(r"<em>(.*?)</em>", item)
        fields = unescape(re.sub(r"<[^>]+>", "", item)).split(" · ")
        payer, payee = fields[3].split(" → ")
        out.append({"id": fields[0], "date": fields[1], "amount": float(fields[2].split(" = ")[-1].split()[0].replace(",", "")),
                    "payer": payer, "payee": payee, "notes": unescape(notes.group(1)) if notes else ""})
    return out


def test_a_structuring_alert_lists_the_payments_it_was_split_into(scored_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    _payments_file(run)  # written by tbml score
    alerts = pd.read_parquet(run / "alerts.parquet")
    html = report.write_report(run, out=tmp_path / "r.html", top=3).read_text(encoding="utf-8")
    structuring = alerts[(alerts["suspected_typology"] == "structuring") & (alerts["item"] == "invoice")]
    assert len(structuring)
    for alert in structuring.itertuples():
        listed = _payment_rows(html, f"row-{alert.rank}")
        # what scoring counted is what the drill-down lists: the same payments, the same split
        assert len(listed) == min(alert.n_payments, report._PAYMENTS_SHOWN) > 0
        under = [p for p in listed if "under the threshold" in p["notes"]]
        assert len(under) == alert.split_payments >= 2
        for p in listed:
            assert p["payer"].startswith(str(alert.importer_id)) or "other than the importer" in p["notes"]
            assert p["id"].startswith("TR") and re.fullmatch(r"\d{4}-\d\d-\d\d", p["date"])
        assert sum(p["amount"] for p in listed) == pytest.approx(alert.paid, rel=1e-3)  # they add up to what was paid
    # a third-party payment's drill-down shows the outsider's payment, and says what is wrong with it
    third = alerts[(alerts["suspected_typology"] == "third_party_payment") & (alerts["item"] == "invoice")].iloc[0]
    listed = _payment_rows(html, f"row-{third['rank']}")
    outsider = [p for p in listed if third["third_party_id"] in (p["payer"].split()[0], p["payee"].split()[0])]
    assert outsider and all(re.search("other than the (importer|exporter)|outside the corridor", p["notes"])
                            for p in outsider)
    # the same payments in the top alerts' cards, as a table
    top = alerts.iloc[0]
    card = html[html.index(f'id="alert-{top["rank"]}"'):]
    card = card[:card.index("</section>")]
    assert card.count("<tr><td>TR") == min(int(top["n_payments"] or 0), report._PAYMENTS_SHOWN)


def test_a_payment_with_no_invoice_lists_the_payers_other_payments_to_that_payee(scored_run, tmp_path):
    """Without payments.parquet (a run of an earlier tbml), what the run holds: payments that settle no
    invoice (items.parquet)."""
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    (run / report.PAYMENTS_NAME).unlink()
    alerts = pd.read_parquet(run / "alerts.parquet")
    items = pd.read_parquet(run / "items.parquet")
    html = report.write_report(run, out=tmp_path / "r.html", top=3).read_text(encoding="utf-8")
    phantom = alerts[alerts["item"] == "transfer"]
    assert len(phantom)
    unmatched = items[items["item"] == "transfer"]
    for alert in phantom.head(20).itertuples():
        listed = _payment_rows(html, f"row-{alert.rank}")
        pair = unmatched[(unmatched["payer_id"] == alert.payer_id) & (unmatched["payee_id"] == alert.payee_id)
                         & ((unmatched["date"] - alert.date).abs() <= pd.Timedelta(days=10))]
        assert [p["id"] for p in listed] == pair.sort_values(["date", "transfer_id"])["transfer_id"].head(12).tolist()
        [mine] = [p["notes"] for p in listed if p["id"] == alert.transfer_id]
        assert mine.startswith("this payment; ") and mine.endswith("no invoice found")
    # the page says once where an invoice's payments are, rather than listing none
    transfers = json.loads((run / "manifest.json").read_text())["inputs"][1]["path"]
    assert html.count(f"the payments themselves are in {transfers}, which this run folder does not copy") == 1


def test_alerts_chosen_by_a_budget_with_exploration_are_all_shown_and_counted(tmp_path):
    """--budget 400 --explore 0.1 on 3,000 invoices: more alerts than items at risk >= 30, some explored."""
    from tbml.api import generate_files, score_files
    from tbml.config import Config

    generate_files(tmp_path / "data", n_invoices=3000, seed=4, laundering_rate=0.04)
    config = Config()
    config = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, budget="400", explore_share=0.1))
    score_files(tmp_path / "data" / "invoices.csv", tmp_path / "data" / "transfers.csv", config=config,
                out_dir=tmp_path / "run")
    alerts = pd.read_parquet(tmp_path / "run" / "alerts.parquet")
    explored = int((alerts["selected_by"] == "exploration").sum())
    assert len(alerts) == 400 and explored == 40 and (alerts["risk"] < 30).sum() > 20
    html = report.write_report(tmp_path / "run", out=tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"400 alerts by the budget 400, {explored} of them explored" in html
    bars = re.search(r'aria-label="alerts by risk">(.*?)</svg>', html).group(1)
    assert sum(int(v.replace(",", "")) for v in re.findall(r'fill="#1f2933">([\d,]+)</text>', bars)) == 400
    bands = re.findall(r'<span class="tag">risk [\d-]+: ([\d,]+)</span>', html)
    assert sum(int(b.replace(",", "")) for b in bands) == 400  # every alert in a band, the lowest too


def test_the_risk_bands_say_what_they_mean(scored_run, tmp_path):
    """Without labels: where a risk ranks in the file, as the manifest's percentiles give it."""
    html = report.write_report(scored_run, out=tmp_path / "r.html", top=1).read_text(encoding="utf-8")
    bands = json.loads((scored_run / "manifest.json").read_text())["risk_bands"]
    assert "What the risk means in this file (no labels to measure it by)" in html
    assert f"the top {bands[1]['top']} of the items are at risk {bands[1]['risk_from']:.4g} or more" in html
    items = pd.read_parquet(scored_run / "items.parquet")
    assert abs((items["risk"] >= bands[1]["risk_from"]).mean() - 0.01) < 0.005
    # with a model trained on labels: the measured share of laundering per band
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["risk_bands"] = [{"band": "80-100", "lines": 107, "precision": 0.94}]
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = report.write_report(run, out=tmp_path / "s.html", top=1).read_text(encoding="utf-8")
    assert "risk 80-100: 94% laundering among 107 held-out labelled lines" in html

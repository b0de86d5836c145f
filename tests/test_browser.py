"""The HTML report opened in a real browser (headless Chromium, Debian's `chromium` package, which `make test`
installs where it can): it loads with no error, its own check runs under its Content-Security-Policy, and
every chart is drawn with a size."""

import base64
import hashlib
import json
import re
import shutil
import subprocess

import pytest

from tbml import report
from tests.test_report import store_run  # noqa: F401 - a fixture shared with the report tests

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed and `make test` could not install it here "
                             "(apt-get install chromium); the report was not opened in a browser")
# As root, with no network: no sandbox, no background connections, a fresh profile
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _chromium(tmp_path, *args):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_report_renders_in_chromium_with_its_charts(scored_run, tmp_path):
    page = report.write_report(scored_run, out=tmp_path / "report.html", top=10)
    html = page.read_text(encoding="utf-8")
    charts = html.count('<svg class="chart"')
    assert charts >= 10  # typology, corridor, price charts and rings

    run = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", run.stdout)
    assert body, "Chromium printed no page"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    # the page's own script ran (so the CSP hash is right), saw no error and found every chart drawn
    assert attrs.get("data-errors") == "0", attrs
    assert attrs.get("data-charts") == str(charts)
    assert attrs.get("data-charts-drawn") == str(charts)

    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0 and shot.stat().st_size > 50_000  # a drawn page, not a blank one


# Plays an investigator: types a filter, picks a typology, sorts by risk (lowest first), then follows the first
# shown row's entity link; writes what it saw on <body> for --dump-dom. Added to a copy, allowed by its own hash.
_HARNESS = """window.addEventListener('load',function(){
  var text=document.getElementById('alert-filter'),kind=document.getElementById('alert-typology');
  text.value=%(text)s;text.dispatchEvent(new Event('input'));
  kind.value=%(typology)s;kind.dispatchEvent(new Event('change'));
  document.querySelector('#alert-table thead th:nth-child(2)').click();
  var link=document.querySelector('#alert-table tbody tr:not([hidden]) a[href^="#entity-"]');
  document.body.setAttribute('data-link',link.getAttribute('href'));link.click();
  setTimeout(function(){var target=document.getElementById(decodeURIComponent(location.hash.slice(1)));
    document.body.setAttribute('data-opened',target&&target.open?'yes':'no');},200);
});"""


def _with_harness(html: str, text: str, typology: str) -> str:
    script = _HARNESS % {"text": json.dumps(text), "typology": json.dumps(typology)}
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    html = html.replace("script-src 'sha256-", f"script-src 'sha256-{digest}' 'sha256-", 1)
    return html.replace("</body>", f"<script>{script}</script></body>", 1)


def _rows(dom: str) -> list[tuple[bool, str, float, str]]:
    """(shown, typology, risk, text) of each alerts-table row in page order."""
    table = dom[dom.index('id="alert-table"'):]
    table = table[:table.index('<h2 id="alerts">')]  # rows hold tables of payments: their own </table>
    rows = []
    for row in table.split("<tr id=")[1:]:
        attrs, cells = row.split(">", 1)
        risk = float(re.findall(r'data-value="([^"]*)"', cells)[0])
        typology = re.search(r'data-typology="([^"]*)"', attrs).group(1)
        rows.append(("hidden" not in attrs, typology, risk, re.sub(r"<[^>]+>", " ", cells).lower()))
    return rows


def test_the_alerts_table_filters_sorts_and_drills_down_in_chromium(scored_run, tmp_path):
    page = report.write_report(scored_run, out=tmp_path / "report.html", top=5)
    html = page.read_text(encoding="utf-8")
    before = _rows(html)
    typology = "structuring"
    party = next(re.search(r"importer\s+([\w-]+)|payee\s+([\w-]+)", t) for _, k, _, t in before if k == typology)
    text = next(g for g in party.groups() if g)  # a party of a structuring alert: the filter leaves some rows
    expected = [r for r in before if r[1] == typology and text.lower() in r[3]]
    assert expected and len(expected) < len(before)

    harnessed = tmp_path / "harnessed.html"
    harnessed.write_text(_with_harness(html, text, typology), encoding="utf-8")
    run = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", harnessed.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", run.stdout).group(1)))
    assert attrs.get("data-errors") == "0", attrs
    after = _rows(run.stdout)
    shown = [r for r in after if r[0]]
    assert len(after) == len(before) and attrs["data-rows-shown"] == str(len(shown)) == str(len(expected))
    assert all(r[1] == typology and text.lower() in r[3] for r in shown)
    assert [r[2] for r in shown] == sorted(r[2] for r in expected)  # sorted by risk, lowest first
    assert attrs["data-sorted-by"] == "risk ascending"
    # the drill-down link went to that entity's section and opened it
    assert attrs["data-link"].startswith("#entity-") and attrs.get("data-opened") == "yes", attrs
    assert f'<details class="drill" id="{attrs["data-link"][1:]}" open=""' in run.stdout


# Picks a status in the status filter, then a typology, and records what the page says it shows.
_STATUS_HARNESS = """window.addEventListener('load',function(){
  var status=document.getElementById('alert-status');status.value=%(status)s;status.dispatchEvent(new Event('change'));
  document.body.setAttribute('data-after-status',document.getElementById('alert-count').textContent);
  var kind=document.getElementById('alert-typology');kind.value=%(typology)s;kind.dispatchEvent(new Event('change'));
});"""


def test_the_status_filter_shows_the_alerts_of_one_status_in_chromium(store_run, tmp_path):
    page = report.write_report(store_run, out=tmp_path / "report.html", top=5)
    html = page.read_text(encoding="utf-8")
    statuses = re.findall(r'<tr id="row-\d+" data-typology="([^"]*)" data-status="([^"]*)"', html)
    status = "resolved"
    typology = next(t for t, s in statuses if s == status and t)
    script = _STATUS_HARNESS % {"status": json.dumps(status), "typology": json.dumps(typology)}
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    harnessed = tmp_path / "harnessed.html"
    harnessed.write_text(html.replace("script-src 'sha256-", f"script-src 'sha256-{digest}' 'sha256-", 1)
                         .replace("</body>", f"<script>{script}</script></body>", 1), encoding="utf-8")
    run = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", harnessed.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", run.stdout).group(1)))
    assert attrs.get("data-errors") == "0", attrs
    assert attrs["data-after-status"] == f"{sum(s == status for _, s in statuses):,}"
    shown = re.findall(r'<tr id="row-\d+" data-typology="([^"]*)" data-status="([^"]*)"(?! hidden)', run.stdout)
    assert shown == [(t, s) for t, s in statuses if s == status and t == typology]
    assert attrs["data-rows-shown"] == str(len(shown)) and 0 < len(shown) < len(statuses)

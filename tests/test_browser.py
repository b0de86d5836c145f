"""The HTML report opened in a real browser (headless Chromium, Debian's `chromium` package, which `make test`
installs where it can): it loads with no error, its own check runs under its Content-Security-Policy, and
every chart is drawn with a size."""

import re
import shutil
import subprocess

import pytest

from tbml import report

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

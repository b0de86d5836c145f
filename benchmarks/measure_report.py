"""The HTML report of a scored run: how long it takes to build, how big it is, and how long headless Chromium
takes to load it. Not in `make bench`: it needs a scored run and Chromium (Debian's `chromium`).

    tbml generate --invoices 1000000 --seed 1 -o /tmp/x
    tbml score /tmp/x/invoices.csv --transfers /tmp/x/transfers.csv -o /tmp/x/out
    .venv/bin/python benchmarks/measure_report.py /tmp/x/out --loads 3

Chromium opens a copy of the report with a probe script added (allowed by its own hash, as the browser
test does) that records, on the page's <body>: the time to DOMContentLoaded (the page parsed and its own
script run), to the load event, to the first contentful paint, and how long one filter and one sort take,
on the page's own clock; and Chromium's wall time from start to exit. Ends with one JSON line of figures
(medians over the loads).
"""

import argparse
import base64
import hashlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit  # noqa: E402

from tbml.report import write_report  # noqa: E402

# What an investigator does first: the page draws, a filter narrows the table, a click sorts it by risk.
PROBE = """window.addEventListener('load',function(){
  var b=document.body,timing=performance.timing,paints={};
  performance.getEntriesByType('paint').forEach(function(e){paints[e.name]=e.startTime;});
  b.setAttribute('data-dcl',timing.domContentLoadedEventEnd-timing.navigationStart);
  b.setAttribute('data-load',Math.round(performance.now()));
  b.setAttribute('data-fcp',Math.round(paints['first-contentful-paint']||-1));
  var t=performance.now(),f=document.getElementById('alert-filter');
  f.value='structuring';f.dispatchEvent(new Event('input'));
  b.setAttribute('data-filter',Math.round(performance.now()-t));
  t=performance.now();document.querySelector('#alert-table thead th:nth-child(2)').click();
  b.setAttribute('data-sort',Math.round(performance.now()-t));
});"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def load(page: Path, folder: Path) -> dict:
    """One load of ``page`` with the probe: the page's figures (ms) and Chromium's wall time, start to exit."""
    html = page.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    html = html.replace("script-src 'sha256-", f"script-src 'sha256-{digest}' 'sha256-", 1)
    probed = folder / "probed.html"
    probed.write_text(html.replace("</body>", f"<script>{PROBE}</script></body>", 1), encoding="utf-8")
    chromium = next(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n))
    started = time.perf_counter()
    run = subprocess.run([chromium, *FLAGS, f"--user-data-dir={folder / 'profile'}", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    body = run.stdout[run.stdout.index("<body"):run.stdout.index(">", run.stdout.index("<body"))]
    figures = {k: int(body.split(f'data-{k}="')[1].split('"')[0]) for k in ("dcl", "load", "fcp", "filter", "sort")}
    return {**figures, "chromium_wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tbml-report-measure-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        page = write_report(args.run_dir, out=folder / "report.html")
        build = time.perf_counter() - started
        loads = [load(page, folder) for _ in range(args.loads)]
        figures = {"report_bytes": page.stat().st_size, "build_s": round(build, 1),
                   "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                   "table_rows": page.read_text(encoding="utf-8").count('<tr id="row-')}
        for key in loads[0]:
            figures[key] = round(statistics.median(x[key] for x in loads), 2)
        print(f"report of {args.run_dir}: {figures['report_bytes'] / 1e6:.1f} MB in {build:.1f} s; "
              f"Chromium: DOMContentLoaded {figures['dcl']} ms, load {figures['load']} ms (median of {args.loads})")
        emit(figures)


if __name__ == "__main__":
    main()

"""The case store: files scored one after another find what one file would, ingest is idempotent and
all-or-nothing, one writer at a time, earlier alerts are re-judged when their evidence arrives."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from tbml.config import Config
from tbml.api import score_files
from tbml.cli import cli
from tbml.errors import TBMLError
from tbml.replay import COUNTED, FinalJudgement, figures, split_by_period, within_tolerance
from tbml.store import PAUSE_ENV, SCHEMA_VERSION, Store, StoreError
from tbml.synth import generate

THRESHOLD = 30.0


@pytest.fixture(scope="module")
def two_halves(tmp_path_factory):
    """3,000 generated invoices over a year, with transfers, split at the new year into two files each."""
    root = tmp_path_factory.mktemp("halves")
    data = generate(n_invoices=3000, laundering_rate=0.04, seed=3, days=365)
    inv, tr = _dated(data.invoices), _dated(data.transfers)
    cut = pd.Timestamp("2022-12-31")
    for name, rows in (("inv0", inv[inv["date"] <= cut]), ("tr0", tr[tr["date"] <= cut]),
                       ("inv1", inv[inv["date"] > cut]), ("tr1", tr[tr["date"] > cut])):
        rows.to_csv(root / f"{name}.csv", index=False)
    return root


def _dated(frame):
    return frame.assign(date=pd.to_datetime(frame["date"]))


def _counts(path):
    with Store.open(path, read_only=True) as store:
        info = store.info()
    return info["runs"], info["files"], info["invoices"]["rows"], info["transfers"]["rows"], info["alerts"]


def test_reingesting_a_file_adds_nothing_and_says_so(two_halves, tmp_path):
    store = tmp_path / "cases.duckdb"
    first = score_files(two_halves / "inv0.csv", two_halves / "tr0.csv", store=store, out_dir=tmp_path / "a")
    before = _counts(store)
    assert before[:4] == (1, 2, 1510, 1669)
    assert set(first.alerts["status"]) == {"new"} and first.alerts["alert_id"].is_unique
    again = score_files(two_halves / "inv0.csv", two_halves / "tr0.csv", store=store, out_dir=tmp_path / "b")
    assert _counts(store) == before
    assert again.manifest["store"]["already_in_store"] == {"invoices": first.manifest["store"]["run_id"],
                                                          "transfers": first.manifest["store"]["run_id"]}
    assert again.outputs == {} and not (tmp_path / "b").exists()
    result = CliRunner().invoke(cli, ["score", str(two_halves / "inv0.csv"), "--transfers", str(two_halves / "tr0.csv"),
                                      "--store", str(store), "-o", str(tmp_path / "c")])
    assert result.exit_code == 0
    assert result.stdout == (f"already in the store (run {first.manifest['store']['run_id']}): nothing added, "
                             "nothing scored, no output written\n")
    info = CliRunner().invoke(cli, ["store", "info", "--store", str(store)])
    assert info.exit_code == 0
    assert "1 runs, 2 files" in info.output and "invoices: 1,510 rows, 2022-07-01 to 2022-12-31" in info.output


def test_an_invoice_id_already_stored_from_another_file_is_reported_and_kept(two_halves, tmp_path):
    store = tmp_path / "cases.duckdb"
    score_files(two_halves / "inv0.csv", two_halves / "tr0.csv", store=store)
    later = pd.read_csv(two_halves / "inv1.csv")
    earlier = pd.read_csv(two_halves / "inv0.csv")
    later.loc[:1, "invoice_id"] = earlier["invoice_id"].iloc[:2].to_numpy()  # two ids declared again
    later.to_csv(tmp_path / "inv1.csv", index=False)
    result = score_files(tmp_path / "inv1.csv", two_halves / "tr1.csv", store=store)
    dup = result.manifest["store"]["duplicate_invoice_ids"]
    assert dup["count"] == 2
    first_id = earlier["invoice_id"].iloc[0]
    assert dup["examples"][0].startswith(f"{first_id} (already in ") and "inv0.csv" in dup["examples"][0]
    assert any("2 invoice id(s) already in the store" in n for n in result.manifest["inputs"][0]["notes"])
    mine = result.items[(result.items["invoice_id"] == first_id)
                        & (result.items["file_sha256"] == result.manifest["inputs"][0]["sha256"])]
    assert mine["reasons"].iloc[0].startswith(f"invoice id {first_id} was already declared in inv0.csv on 2022-")
    with Store.open(store, read_only=True) as opened:  # both lines kept: nothing overwritten
        rows = opened.con.execute("SELECT count(*) FROM invoices WHERE invoice_id = ?", [first_id]).fetchone()[0]
    assert rows == 2


def test_a_second_writer_is_refused_with_one_line(two_halves, tmp_path):
    store = tmp_path / "cases.duckdb"
    Store.open(store).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tbml.store import Store; "
                               f"s = Store.open({str(store)!r}); print('open', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="another tbml run is using this store; one run at a time"):
            Store.open(store)
        result = CliRunner().invoke(cli, ["score", str(two_halves / "inv0.csv"), "--store", str(store),
                                          "-o", str(tmp_path / "out")])
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and "Error: " in result.output and "another tbml run is using this store" in result.output
    finally:
        holder.kill()
        holder.wait()
    Store.open(store).close()  # free again once the first run ends


def test_kill_9_inside_the_transaction_leaves_the_store_as_it_was(two_halves, tmp_path):
    store = tmp_path / "cases.duckdb"
    score_files(two_halves / "inv0.csv", two_halves / "tr0.csv", store=store)
    before = _counts(store)
    marker = tmp_path / "inside-transaction"
    script = (f"from tbml.api import score_files; score_files({str(two_halves / 'inv1.csv')!r}, "
              f"{str(two_halves / 'tr1.csv')!r}, store={str(store)!r})")
    ingest = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, PAUSE_ENV: str(marker)})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert ingest.poll() is None and time.monotonic() < deadline, "the ingest ended before its transaction"
            time.sleep(0.05)
        ingest.send_signal(signal.SIGKILL)
    finally:
        ingest.wait()
    assert ingest.returncode == -signal.SIGKILL
    assert _counts(store) == before  # the rows, the run and the alert changes were all written, and none kept
    result = score_files(two_halves / "inv1.csv", two_halves / "tr1.csv", store=store)  # and the next run works
    assert result.manifest["store"]["already_in_store"] == {}
    assert _counts(store)[:4] == (2, 4, 3000, 3543)


def test_schema_version_is_checked_on_open(tmp_path):
    store = tmp_path / "cases.duckdb"
    with Store.open(store) as opened:
        opened.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, this tbml reads version "
                                         f"{SCHEMA_VERSION}: it was written by a newer tbml; upgrade tbml"):
        Store.open(store)
    (tmp_path / "other.duckdb").write_bytes(b"not a database at all" * 100)
    with pytest.raises(TBMLError, match="other.duckdb"):
        Store.open(tmp_path / "other.duckdb")


def test_a_payment_before_its_invoice_is_a_phantom_until_the_invoice_arrives(two_halves, tmp_path):
    """Day 1's file holds an advance payment citing an invoice that only day 2's file declares."""
    inv, tr = _dated(pd.read_csv(two_halves / "inv1.csv")), _dated(pd.read_csv(two_halves / "tr1.csv"))
    target = inv.sort_values("date").iloc[len(inv) // 2]
    payment = tr[tr["invoice_ref"] == target["invoice_id"]].iloc[[0]].assign(date=target["date"] - pd.Timedelta(days=5))
    cut = target["date"] - pd.Timedelta(days=1)
    rest = tr.drop(payment.index)
    inv[inv["date"] <= cut].to_csv(tmp_path / "day1.csv", index=False)
    pd.concat([rest[rest["date"] <= cut], payment]).to_csv(tmp_path / "pay1.csv", index=False)
    inv[inv["date"] > cut].to_csv(tmp_path / "day2.csv", index=False)
    rest[rest["date"] > cut].to_csv(tmp_path / "pay2.csv", index=False)
    store = tmp_path / "cases.duckdb"
    transfer_id = payment["transfer_id"].iloc[0]
    # every item at risk >= 30 is an alert here: the alert's life is under test, not the cap on how many
    everything = dataclasses.replace(Config(), fusion=dataclasses.replace(Config().fusion, max_alert_share=1.0))

    day1 = score_files(tmp_path / "day1.csv", tmp_path / "pay1.csv", store=store, config=everything)
    alert = day1.alerts[day1.alerts["transfer_id"] == transfer_id]
    assert len(alert) == 1 and alert["status"].iloc[0] == "new"
    assert alert["suspected_typology"].iloc[0] == "phantom_shipment"
    day2 = score_files(tmp_path / "day2.csv", tmp_path / "pay2.csv", store=store, config=everything)
    resolved = day2.alerts[day2.alerts["transfer_id"] == transfer_id]
    assert resolved["status"].tolist() == ["resolved"]
    assert resolved["reasons"].iloc[0] == (f"linked to invoice {target['invoice_id']} of {target['date'].date()}, "
                                           "which arrived in day2.csv")
    with Store.open(store, read_only=True) as opened:
        history = opened.alert_history(alert["alert_id"].iloc[0])
        status = opened.con.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert["alert_id"].iloc[0]]).fetchone()
    assert history["change"].tolist() == ["new", "resolved"] and status == ("resolved",)
    assert history["why"].iloc[1] == resolved["reasons"].iloc[0]


# ---- the day-by-day property --------------------------------------------------------------------------

def test_month_by_month_with_a_store_finds_what_the_whole_file_does(tmp_path):
    """6,000 invoices over two years scored as 24 monthly files, in date order, with a store, against the
    whole file at once; each row as the last run that judged it left it (``tbml.replay``). Two years, so
    that the look-back (545 days) does not cover the whole file: early rows are final long before the
    last file. The tolerances are ``COUNT_TOLERANCE`` and ``PR_AUC_TOLERANCE`` (their reasons are in
    tbml/replay.py); benchmarks/measure_day_by_day.py runs the same comparison day by day on 100,000."""
    data = generate(n_invoices=6000, laundering_rate=0.04, seed=5, days=730)
    data.invoices.to_csv(tmp_path / "inv.csv", index=False)
    data.transfers.to_csv(tmp_path / "tr.csv", index=False)
    n_transfers = len(data.transfers)
    whole = figures(score_files(tmp_path / "inv.csv", tmp_path / "tr.csv").items, n_transfers, THRESHOLD)

    final, alone = FinalJudgement(), []
    for n, (label, invoices, transfers) in enumerate(split_by_period(data.invoices, data.transfers, "M")):
        paths = tmp_path / f"inv-{label}.csv", tmp_path / f"tr-{label}.csv"
        invoices.to_csv(paths[0], index=False)
        transfers.to_csv(paths[1], index=False)
        final.add(score_files(*paths, store=tmp_path / "cases.duckdb").store_run)
        if n < 6:  # without a store, half a year is enough to see the difference
            alone.append((score_files(*paths).items, len(transfers)))
    by_month = figures(final.items(), n_transfers, THRESHOLD)

    assert by_month["transfers"] == whole["transfers"] and by_month["invoices"] == whole["invoices"]
    assert min(whole[k] for k in COUNTED) >= 20, whole  # enough of each for 1% to mean something
    off = within_tolerance(by_month, whole)
    assert not off, (off, by_month, whole)
    # and the first half-year without a store is nowhere near: phantoms everywhere, links lost (common
    # evidence is tempered, so fewer of those phantoms reach risk 30 than before, still many times more)
    first_half = figures(pd.concat([items for items, _ in alone]), sum(n for _, n in alone), THRESHOLD)
    rate = lambda f: f["phantom_alerts"] / f["transfers"]  # noqa: E731
    assert rate(first_half) > 5 * rate(whole)
    assert first_half["linked_payments"] < 0.7 * first_half["transfers"]

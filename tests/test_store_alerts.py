"""What an investigator sees of a store run's alerts: each alert's status (new, seen before, changed, ...),
the date it was first raised and its age, and the source columns a mapping kept, also on rows of earlier
files; and a store of the previous schema version, migrated on open."""

import hashlib

import duckdb
import numpy as np
import pandas as pd
import pytest

from tbml.api import score_files
from tbml.store import CHANGE_POINTS, RUN_STATUSES, SCHEMA_VERSION, Store, alert_changes, alert_ids
from tbml.synth import generate


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """1,500 generated invoices over half a year with transfers, split into two files at a day; each row
    has a ``branch`` column that only a mapping's ``keep:`` brings along."""
    root = tmp_path_factory.mktemp("days")
    data = generate(n_invoices=1500, laundering_rate=0.05, seed=11, days=180)
    inv, tr = (f.assign(date=pd.to_datetime(f["date"])) for f in (data.invoices, data.transfers))
    inv["branch"] = "inv-branch-" + inv["invoice_id"].astype(str)
    tr["branch"] = "tr-branch-" + tr["transfer_id"].astype(str)
    cut = inv["date"].sort_values().iloc[len(inv) * 3 // 4]
    for name, rows in (("inv1", inv[inv["date"] <= cut]), ("tr1", tr[tr["date"] <= cut]),
                       ("inv2", inv[inv["date"] > cut]), ("tr2", tr[tr["date"] > cut])):
        rows.to_csv(root / f"{name}.csv", index=False)
    for kind in ("invoices", "transfers"):
        (root / f"{kind}.yaml").write_text(f"kind: {kind}\nname: with-branch\nkeep: [branch]\n")
    return root


def _score(root, day, store, **kwargs):
    return score_files(root / f"inv{day}.csv", root / f"tr{day}.csv", store=store, mapping=root / "invoices.yaml",
                       transfers_mapping=root / "transfers.yaml", **kwargs)


def test_alert_ids_are_the_same_as_hashed_one_by_one():
    """Ids are stable across tbml versions: decisions exported from one store import into another."""
    item = pd.Series(["invoice", "transfer", "invoice"])
    sha = pd.Series(["ab" * 32, "cd" * 32, "ab" * 32], dtype="string")
    row = pd.Series([2, 10**12, 3])
    one_by_one = ["A" + hashlib.sha256(f"{i}\x1f{s}\x1f{r}".encode()).hexdigest()[:15] for i, s, r in zip(item, sha, row)]
    assert alert_ids(item, sha, row).tolist() == one_by_one


def test_an_open_alert_of_an_earlier_file_reads_seen_before_with_its_age(two_days, tmp_path):
    store = tmp_path / "cases.duckdb"
    day1 = _score(two_days, 1, store)
    today = pd.Timestamp.now().normalize()
    assert set(day1.alerts["status"]) == {"new"}
    assert (day1.alerts["first_seen"] == today).all() and (day1.alerts["age_days"] == 0).all()
    with Store.open(store) as opened:  # as if day 1 had been scored three days ago
        opened.con.execute("UPDATE runs SET started = started - INTERVAL 3 DAY")

    day2 = _score(two_days, 2, store, out_dir=tmp_path / "out2")
    alerts, run_id = day2.alerts, day2.manifest["store"]["run_id"]
    with Store.open(store, read_only=True) as opened:
        stored = opened.alerts()
        changed_now = set(opened.alert_history().query("run_id == @run_id")["alert_id"])
    # seen before: exactly the stored alerts of day 1 that day 2 judged, still open, with no change to tell
    judged = set(day2.store_run.scored["alert_id"])
    expected = stored[(stored["status"] == "open") & stored["alert_id"].isin(judged)
                      & ~stored["alert_id"].isin(changed_now)]
    seen = alerts[alerts["status"] == "seen before"]
    assert len(seen) > 10 and set(seen["alert_id"]) == set(expected["alert_id"])
    assert set(seen["alert_id"]) <= set(day1.alerts["alert_id"])
    assert (seen["first_seen"] == today - pd.Timedelta(days=3)).all() and (seen["age_days"] == 3).all()
    # new: day 2's own rows, raised today
    day2_file = day2.manifest["inputs"][0]["sha256"]
    new = alerts[alerts["status"] == "new"]
    assert len(new) and (new["file_sha256"].isin([day2_file, day2.manifest["inputs"][1]["sha256"]])).all()
    assert (new["age_days"] == 0).all()
    assert not set(new["alert_id"]) & set(day1.alerts["alert_id"])
    # listed in the order of RUN_STATUSES: news first, what the investigator already has after
    order = alerts["status"].map(RUN_STATUSES.index).to_numpy()
    assert (np.diff(order) >= 0).all() and alerts["rank"].tolist() == list(range(1, len(alerts) + 1))
    assert day2.manifest["store"]["alert_statuses"] == alerts["status"].value_counts().to_dict()
    written = pd.read_csv(tmp_path / "out2" / "alerts.csv", dtype=str, keep_default_na=False)
    row = written.set_index("alert_id").loc[seen["alert_id"].iloc[0]]
    assert (row["status"], row["first_seen"], row["age_days"]) == (
        "seen before", str((today - pd.Timedelta(days=3)).date()), "3")


def test_risk_that_creeps_up_day_after_day_is_a_change():
    """A change is measured from the risk the investigator was last told, not from yesterday's."""
    now = pd.DataFrame({"alert_id": ["A1"], "item": ["invoice"], "invoice_id": ["INV1"], "file_sha256": ["old"],
                        "source_row": [1], "date": [pd.Timestamp("2026-11-01")], "risk": [40.0 + CHANGE_POINTS],
                        "suspected_typology": ["over_invoicing"], "reasons": ["unit price high"]})
    stored = pd.DataFrame({"alert_id": ["A1"], "item": ["invoice"], "item_id": ["INV1"], "file_sha256": ["old"],
                           "source_row": [1], "date": [pd.Timestamp("2026-11-01")], "risk": [40.0 + CHANGE_POINTS - 2],
                           "typology": ["over_invoicing"], "reasons": ["unit price high"], "status": ["open"],
                           "first_seen_run": ["r1"], "last_seen_run": ["r5"], "last_changed_run": ["r1"],
                           "decided_risk": [np.nan], "decided_typology": [None]})
    for reported, change in ((40.0, "changed"), (40.0 + CHANGE_POINTS - 2, "")):
        state, history = alert_changes(now, stored.assign(reported_risk=reported), 30.0, "r6", {"new": "d.csv"}, {})
        assert state["change"].tolist() == [change] and len(history) == (change != "")
    assert history.empty  # a small move is no line of history


def test_kept_source_columns_travel_with_rows_of_earlier_files(two_days, tmp_path):
    store = tmp_path / "cases.duckdb"
    day1 = _score(two_days, 1, store)
    assert {"src:branch"} <= set(day1.alerts.columns)
    day2 = _score(two_days, 2, store)
    old = day2.alerts[day2.alerts["file_sha256"].isin({f["sha256"] for f in day1.manifest["inputs"]})]
    assert len(old) > 10  # seen before, changed or resolved: rows of day 1's files
    expected = np.where(old["item"] == "invoice", "inv-branch-" + old["invoice_id"].astype(str),
                        "tr-branch-" + old["transfer_id"].astype(str))
    assert old["src:branch"].tolist() == expected.tolist()
    resolved = old[old["status"] == "resolved"]
    assert resolved["src:branch"].notna().all()


def _as_older_version(opened: Store, version: int) -> None:
    """Make a store look as an older tbml left it: version 2 had no kept source columns, 1 no decisions."""
    indexes = opened.con.execute("SELECT sql FROM duckdb_indexes()").fetchall()
    opened.con.execute("DROP INDEX invoices_date; DROP INDEX transfers_date; DROP INDEX invoices_id")
    for table in ("invoices", "transfers"):  # a column cannot be dropped while an index is on its table
        opened.con.execute(f"ALTER TABLE {table} DROP COLUMN source_columns")
    for (sql,) in indexes:
        opened.con.execute(sql)
    if version < 2:
        opened.con.execute("DROP TABLE decisions")
    opened.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def _version(path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        con.close()


def test_a_version_1_store_is_migrated_on_open(tmp_path):
    path = tmp_path / "v1.duckdb"
    with Store.open(path) as opened:
        _as_older_version(opened, 1)
    with Store.open(path, read_only=True) as opened:
        assert opened.decisions().empty
    assert _version(path) == str(SCHEMA_VERSION)


def test_a_version_2_store_is_migrated_and_scores_on(two_days, tmp_path):
    path = tmp_path / "v2.duckdb"
    _score(two_days, 1, path)
    with Store.open(path) as opened:
        _as_older_version(opened, 2)
        rows = opened.info()
    with Store.open(path, read_only=True) as opened:
        migrated = opened.info()
        assert opened.con.execute("SELECT count(*) FROM invoices WHERE source_columns IS NOT NULL").fetchone() == (0,)
    assert (migrated["invoices"], migrated["transfers"]) == (rows["invoices"], rows["transfers"])
    assert _version(path) == str(SCHEMA_VERSION)
    day2 = _score(two_days, 2, path)  # rows stored before the migration have no kept columns to give
    new = day2.alerts["file_sha256"].isin({f["sha256"] for f in day2.manifest["inputs"]})
    assert new.any() and (~new).any()
    assert day2.alerts.loc[new, "src:branch"].notna().all() and day2.alerts.loc[~new, "src:branch"].isna().all()

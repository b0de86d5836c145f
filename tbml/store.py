"""The case store: every accepted invoice and transfer with where it came from, the runs, and the alerts
with their history, in one DuckDB file (no server).

    with Store.open("cases.duckdb") as store:          # one writer at a time: a second gets StoreError
        store.file_run(sha256)                          # the run that already ingested this file, or None
        history = store.history("invoices", since)      # accepted rows dated on or after ``since``
        store.record_run(run)                           # rows, run, alert changes: one transaction

This module owns every SQL statement of tbml. Statements are parameterised (never built from user text;
the only names spliced in are this module's own table and column names) and plain enough to run on a
server database behind the same interface later. Frames go in and out whole, through Arrow
(``con.register``), never row by row. Rows are keyed by (file sha256, source row) and never updated: an
invoice id seen again in another file is a second row, reported, not an overwrite.

``alert_changes`` (no SQL) decides how the alerts of a scored union of history and a new file differ from
what the store holds: new, raised (an earlier item alerted for the first time), re-raised, changed (other
typology, or risk moved by ``CHANGE_POINTS``), resolved (no longer alerted, or a payment now linked).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

import tbml
from tbml.errors import TBMLError
from tbml.io import KEPT_PREFIX
from tbml.schema import INVOICE_COLUMNS, TRANSFER_COLUMNS

# 2: investigators' decisions; 3: the source columns a mapping keeps (older stores are migrated on open)
SCHEMA_VERSION = 3
# A risk moving by at least this many points (or a new suspected typology) is a change worth a line in an
# alert's history; smaller moves (the forest refitted on one more day) only update the current risk.
CHANGE_POINTS = 10.0
# A dismissed alert comes back (re-raised, open again) only when its risk rises at least this far above its
# risk when dismissed, or a typology other than the one dismissed is suspected: smaller moves are the same
# judgement an investigator already weighed.
REOPEN_POINTS = 15.0
DECISIONS = ("confirmed", "dismissed")
# An alert's status in a run's alerts, in the order they are listed: what is news first, then what an
# investigator already has (open, risk within CHANGE_POINTS of what was last reported), then what ended.
RUN_STATUSES = ("new", "raised", "re-raised", "changed", "seen before", "resolved")
# Test-only: with this set to a file path, ``record_run`` creates that file and sleeps inside its
# transaction, so a test can kill the process mid-ingest (tests/test_store.py).
PAUSE_ENV = "TBML_TEST_PAUSE_IN_TRANSACTION"


class StoreError(TBMLError):
    """The store cannot be opened or written: locked by another run, another schema version, not a store."""


class _NeedsMigration(Exception):
    """A store of an older schema opened read-only (internal: ``Store.open`` migrates it first)."""


_SQL_TYPE = {"number": "DOUBLE", "date": "TIMESTAMP", "bool": "BOOLEAN"}


def _columns(canonical, derived: dict[str, str]) -> dict[str, str]:
    out = {c.name: _SQL_TYPE.get(c.kind, "VARCHAR") for c in canonical}
    out |= {"is_laundering": "BOOLEAN", "typology": "VARCHAR"} | derived
    return out


# The accepted, normalised rows as columns: canonical columns, labels, what normalisation derives, and
# the source columns a mapping keeps (``src:...``) as one JSON object per row (their names are the user's,
# so they are values here, never column names in SQL).
ROW_COLUMNS = {
    "invoices": _columns(INVOICE_COLUMNS, {"fx_rate": "DOUBLE", "reporting_value": "DOUBLE", "weight_basis": "VARCHAR",
                                           "hs2": "VARCHAR", "hs4": "VARCHAR", "hs6": "VARCHAR",
                                           "quantity_unit_declared": "VARCHAR", "unit_status": "VARCHAR",
                                           "source_columns": "VARCHAR"}),
    "transfers": _columns(TRANSFER_COLUMNS, {"fx_rate": "DOUBLE", "reporting_amount": "DOUBLE",
                                             "rejected_invoice": "VARCHAR", "source_columns": "VARCHAR"}),
}
PROVENANCE = {"file_sha256": "VARCHAR NOT NULL", "source_row": "BIGINT NOT NULL", "run_id": "VARCHAR NOT NULL"}
ALERT_COLUMNS = ["alert_id", "item", "item_id", "file_sha256", "source_row", "date", "risk", "typology", "reasons",
                 "status", "first_seen_run", "last_seen_run", "last_changed_run"]
HISTORY_COLUMNS = ["alert_id", "run_id", "risk", "typology", "change", "why"]
DECISION_COLUMNS = ["alert_id", "decision", "note", "reviewer", "decided_at", "run_id", "risk", "typology"]
_DECISIONS_TABLE = ("CREATE TABLE decisions (alert_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, note VARCHAR,"
                    " reviewer VARCHAR, decided_at TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL, risk DOUBLE,"
                    " typology VARCHAR)")
# Each migration takes a store from the version before it to this one; run in order, in one transaction.
_MIGRATIONS = {2: [_DECISIONS_TABLE],
               3: ["ALTER TABLE invoices ADD COLUMN source_columns VARCHAR",
                   "ALTER TABLE transfers ADD COLUMN source_columns VARCHAR"]}


def _schema() -> list[str]:
    rows = {kind: ", ".join(f'"{name}" {sql}' for name, sql in (PROVENANCE | cols).items())
            for kind, cols in ROW_COLUMNS.items()}
    return [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        "CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, started TIMESTAMP NOT NULL, tbml_version VARCHAR NOT NULL,"
        " manifest VARCHAR NOT NULL)",
        "CREATE TABLE files (sha256 VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, kind VARCHAR NOT NULL,"
        " run_id VARCHAR NOT NULL, rows BIGINT NOT NULL)",
        f"CREATE TABLE invoices ({rows['invoices']}, PRIMARY KEY (file_sha256, source_row))",
        f"CREATE TABLE transfers ({rows['transfers']}, PRIMARY KEY (file_sha256, source_row))",
        "CREATE TABLE alerts (alert_id VARCHAR PRIMARY KEY, item VARCHAR NOT NULL, item_id VARCHAR,"
        " file_sha256 VARCHAR NOT NULL, source_row BIGINT NOT NULL, date TIMESTAMP, risk DOUBLE, typology VARCHAR,"
        " reasons VARCHAR, status VARCHAR NOT NULL, first_seen_run VARCHAR NOT NULL, last_seen_run VARCHAR NOT NULL,"
        " last_changed_run VARCHAR NOT NULL)",
        "CREATE TABLE alert_history (alert_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, risk DOUBLE,"
        " typology VARCHAR, change VARCHAR NOT NULL, why VARCHAR)",
        _DECISIONS_TABLE,
        "CREATE INDEX invoices_date ON invoices (date)",
        "CREATE INDEX transfers_date ON transfers (date)",
        "CREATE INDEX invoices_id ON invoices (invoice_id)",
    ]


def alert_ids(item: pd.Series, file_sha256: pd.Series, source_row: pd.Series) -> pd.Series:
    """A stable id per scored item: the same stored row gives the same id in every run (rows are never
    rewritten), so an alert keeps its history and, later, its decision. The id is "A" and the first 15
    hex digits of sha256("item\\x1ffile_sha256\\x1fsource_row"), hashed by DuckDB (a union of a year's rows
    holds a few hundred thousand; hashlib one by one took a second of each run)."""
    import duckdb

    keys = pa.table({"item": pa.Array.from_pandas(item.astype(str)),  # no copy of Arrow-backed text
                     "file": pa.Array.from_pandas(file_sha256.astype(str)),
                     "row": pa.array(source_row.to_numpy(dtype="int64"), pa.int64())})
    with duckdb.connect() as con:
        con.register("item_keys", keys)
        ids = con.sql("SELECT 'A' || left(sha256(item || chr(31) || file || chr(31) || CAST(row AS VARCHAR)), 15)"
                      " AS alert_id FROM item_keys").fetchnumpy()["alert_id"]
    return pd.Series(np.asarray(ids, dtype=object), index=item.index, dtype=object)


@dataclass
class RunRecord:
    """What one run adds: its manifest, its files, their accepted rows, and the alerts' new state."""
    run_id: str
    manifest: dict
    files: list[dict]  # sha256, path, kind, rows
    invoices: pd.DataFrame  # with file_sha256 and source_row
    transfers: pd.DataFrame | None
    alerts: pd.DataFrame  # ALERT_COLUMNS: every alert this run created or touched, in its new state
    history: pd.DataFrame  # HISTORY_COLUMNS: one line per change
    started: pd.Timestamp | None = None  # when the run began (the date alerts it raised were first seen)


@dataclass
class Store:
    path: Path
    con: object
    read_only: bool = False
    _registered: list[str] = field(default_factory=list)

    # ---- open -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, create: bool = True) -> Store:
        """Open (or create) the store at ``path``; its schema version must be this tbml's."""
        import duckdb

        path = Path(path)
        if path.is_dir():
            raise StoreError(f"{path}: is a folder; --store takes a file (such as cases.duckdb)")
        if not path.exists() and (read_only or not create):
            raise StoreError(f"{path}: no store there; `tbml score ... --store {path}` creates one")
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"{path}: another tbml run is using this store; one run at a time writes to "
                                 f"it (wait for it to finish, then run again)") from None
            raise StoreError(f"{path}: cannot open the store: {str(exc).splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise StoreError(f"{path}: is not a tbml store (DuckDB: {str(exc).splitlines()[0]})") from None
        store = cls(path, con, read_only)
        try:
            store._check_schema()
        except _NeedsMigration:
            con.close()  # an older store read-only: migrate it once with a writing connection, then read
            cls.open(path).close()
            return cls.open(path, read_only=True)
        except BaseException:
            con.close()
            raise
        return store

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if not tables:
            if self.read_only:
                raise StoreError(f"{self.path}: the store is empty")
            self.con.execute("BEGIN TRANSACTION")
            for statement in _schema():
                self.con.execute(statement)
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                             [str(SCHEMA_VERSION), f"tbml {tbml.__version__}"])
            self.con.execute("COMMIT")
            return
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
            if "meta" in tables else None
        if row is None:
            raise StoreError(f"{self.path}: is a DuckDB file but not a tbml store (no schema version)")
        version = int(row[0])
        if version < SCHEMA_VERSION and all(v in _MIGRATIONS for v in range(version + 1, SCHEMA_VERSION + 1)):
            if self.read_only:
                raise _NeedsMigration(version)
            self._migrate(version)
            return
        if version != SCHEMA_VERSION:
            newer = "a newer tbml; upgrade tbml" if version > SCHEMA_VERSION else \
                "an older tbml; this tbml has no migration for it yet, so start a new store"
            raise StoreError(f"{self.path}: store schema version {version}, this tbml reads version "
                             f"{SCHEMA_VERSION}: it was written by {newer}")

    def _migrate(self, version: int) -> None:
        """Bring a store of an older schema to this one: every step or none (one transaction)."""
        with self._transaction():
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    self.con.execute(statement)
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])

    @contextmanager
    def _transaction(self):
        """All the statements of the block or none: a crash (even kill -9) leaves the store as it was."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self._unregister()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- read -------------------------------------------------------------------------------------

    def file_run(self, sha256: str) -> str | None:
        """The run that ingested the file with this content hash, or None."""
        row = self.con.execute("SELECT run_id FROM files WHERE sha256 = ?", [sha256]).fetchone()
        return row[0] if row else None

    def history(self, kind: str, since: pd.Timestamp) -> pd.DataFrame:
        """Stored accepted rows of ``kind`` dated on or after ``since``, oldest run first."""
        table = _table(kind)
        with self.con.cursor() as cursor:  # through Arrow: half the time of ``.df()`` on a year of rows
            frame = cursor.sql(f"SELECT * EXCLUDE (run_id) FROM {table} WHERE date >= $since"
                               " ORDER BY run_id, file_sha256, source_row",
                               params={"since": since.to_pydatetime()}).to_arrow_table().to_pandas()
        return _unpack_kept(frame)

    def earlier_invoice_ids(self, invoice_ids: pd.Series) -> pd.DataFrame:
        """Stored invoice lines whose id is among ``invoice_ids``: invoice_id, file path, date, run."""
        self._put("wanted_ids", pd.DataFrame({"invoice_id": invoice_ids.astype(str).unique()}))
        return self.con.execute(
            "SELECT i.invoice_id, f.path, i.date, i.run_id FROM invoices i"
            " JOIN wanted_ids w ON i.invoice_id = w.invoice_id JOIN files f ON f.sha256 = i.file_sha256"
            " ORDER BY i.invoice_id, i.date").df()

    # the latest decision of each alert, with the risk and typology it was taken on
    _LATEST_DECISION = ("LEFT JOIN (SELECT alert_id, risk AS decided_risk, typology AS decided_typology,"
                        " row_number() OVER (PARTITION BY alert_id ORDER BY decided_at DESC) AS latest"
                        " FROM decisions) d ON d.alert_id = a.alert_id AND d.latest = 1")

    # the risk of each alert's latest line of history: what an investigator was last told of it
    _LAST_REPORTED = ("LEFT JOIN (SELECT alert_id, arg_max(risk, run_id) AS reported_risk FROM alert_history"
                      " GROUP BY alert_id) h ON h.alert_id = a.alert_id")

    def alerts(self, file_sha256s: list[str] | None = None) -> pd.DataFrame:
        """Current alerts, all or those of rows from the given files, each with ``decided_risk`` and
        ``decided_typology`` of its latest decision (empty when undecided), ``reported_risk`` (its risk
        in its latest line of history) and ``first_seen_at`` (when the run that first raised it started)."""
        select = (f"SELECT a.*, d.decided_risk, d.decided_typology, h.reported_risk, r.started AS first_seen_at"
                  f" FROM alerts a {self._LATEST_DECISION} {self._LAST_REPORTED}"
                  f" LEFT JOIN runs r ON r.run_id = a.first_seen_run")
        if file_sha256s is None:
            frame = self.con.execute(select).df()
        else:
            self._put("wanted_files", pd.DataFrame({"sha256": pd.Series(file_sha256s, dtype=object)}))
            frame = self.con.execute(f"{select} JOIN wanted_files w ON a.file_sha256 = w.sha256").df()
        # as Python strings: ``isin`` of an Arrow string column against a year of ids converts each id alone
        return frame.assign(alert_id=frame["alert_id"].astype(object))

    def review_list(self, status: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Alerts for an investigator, riskiest first: all, or those of one status (open, confirmed,
        dismissed, resolved), with their latest decision's note, reviewer and date."""
        frame = self.con.execute(
            "SELECT a.alert_id, a.status, a.risk, a.item, a.item_id, a.date, a.typology, d.note, d.reviewer,"
            " d.decided_at, a.reasons FROM alerts a LEFT JOIN (SELECT alert_id, note, reviewer, decided_at,"
            " row_number() OVER (PARTITION BY alert_id ORDER BY decided_at DESC) AS latest FROM decisions) d"
            " ON d.alert_id = a.alert_id AND d.latest = 1 WHERE (? IS NULL OR a.status = ?)"
            " ORDER BY a.risk DESC NULLS LAST, a.alert_id LIMIT ?",
            [status, status, limit if limit is not None else 2**62]).df()
        return frame

    def decisions(self) -> pd.DataFrame:
        """Every decision taken, oldest first, with the alert's item and item id."""
        return self.con.execute(
            "SELECT d.alert_id, a.item, a.item_id, d.decision, d.note, d.reviewer, d.decided_at, d.run_id, d.risk,"
            " d.typology FROM decisions d LEFT JOIN alerts a ON a.alert_id = d.alert_id"
            " ORDER BY d.decided_at, d.alert_id").df()

    def alert_history(self, alert_id: str | None = None) -> pd.DataFrame:
        if alert_id is None:
            return self.con.execute("SELECT * FROM alert_history ORDER BY run_id").df()
        return self.con.execute("SELECT * FROM alert_history WHERE alert_id = ? ORDER BY run_id", [alert_id]).df()

    def info(self) -> dict:
        """Runs, files, rows, date range, alerts by status and size on disk."""
        one = lambda sql: self.con.execute(sql).fetchone()  # noqa: E731
        out = {"path": str(self.path), "schema_version": SCHEMA_VERSION,
               "bytes": self.path.stat().st_size + (self.path.with_name(self.path.name + ".wal").stat().st_size
                                                     if self.path.with_name(self.path.name + ".wal").exists() else 0),
               "runs": one("SELECT count(*) FROM runs")[0], "files": one("SELECT count(*) FROM files")[0]}
        last = one("SELECT run_id, started FROM runs ORDER BY started DESC, run_id DESC LIMIT 1")
        out["last_run"] = {"run_id": last[0], "started": str(last[1])} if last else None
        for kind in ("invoices", "transfers"):
            count, first, latest = one(f"SELECT count(*), min(date), max(date) FROM {_table(kind)}")
            out[kind] = {"rows": count, "from": str(first.date()) if first else None,
                         "to": str(latest.date()) if latest else None}
        out["alerts"] = dict(self.con.execute("SELECT status, count(*) FROM alerts GROUP BY status ORDER BY status")
                             .fetchall())
        return out

    # ---- write ------------------------------------------------------------------------------------

    def record_run(self, run: RunRecord) -> None:
        """Add the run, its files and rows, and the alerts' changes, in one transaction: all or nothing."""
        with self._transaction():
            self.con.execute("INSERT INTO runs VALUES (?, ?, ?, ?)",
                             [run.run_id, (run.started or pd.Timestamp.now()).to_pydatetime(), tbml.__version__,
                              json.dumps(run.manifest, default=str)])
            for f in run.files:
                self.con.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                                 [f["sha256"], str(f["path"]), f["kind"], run.run_id, int(f["rows"])])
            for kind, frame in (("invoices", run.invoices), ("transfers", run.transfers)):
                if frame is not None and len(frame):
                    self._insert_rows(kind, frame, run.run_id)
            if len(run.alerts):
                self._put("changed_alerts", run.alerts[ALERT_COLUMNS])
                self.con.execute("DELETE FROM alerts WHERE alert_id IN (SELECT alert_id FROM changed_alerts)")
                self.con.execute(f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)})"
                                 f" SELECT {', '.join(ALERT_COLUMNS)} FROM changed_alerts")
            if len(run.history):
                self._put("new_history", run.history[HISTORY_COLUMNS])
                self.con.execute(f"INSERT INTO alert_history ({', '.join(HISTORY_COLUMNS)})"
                                 f" SELECT {', '.join(HISTORY_COLUMNS)} FROM new_history")
            if os.environ.get(PAUSE_ENV):
                Path(os.environ[PAUSE_ENV]).touch()
                time.sleep(60)

    def record_decisions(self, decisions: pd.DataFrame) -> int:
        """Store investigators' decisions (alert_id, decision, note, reviewer, decided_at), each on the
        alert's current risk and typology: the alert takes the decision as its status and a line in its
        history. All or none (one transaction); an unknown alert id is a ``StoreError``. Returns the count."""
        wanted = decisions[["alert_id", "decision", "note", "reviewer", "decided_at"]].reset_index(drop=True)
        wanted = wanted.assign(position=np.arange(len(wanted)), decided_at=pd.to_datetime(wanted["decided_at"]))
        for column in ("alert_id", "decision", "note", "reviewer"):
            wanted[column] = wanted[column].astype(object).where(wanted[column].notna(), None)
        with self._transaction():
            self._put("new_decisions", wanted)
            missing = self.con.execute("SELECT n.alert_id FROM new_decisions n LEFT JOIN alerts a"
                                       " ON a.alert_id = n.alert_id WHERE a.alert_id IS NULL ORDER BY n.position"
                                       " LIMIT 1").fetchone()
            if missing:
                raise StoreError(f"{self.path}: no alert {missing[0]} in the store (`tbml review list` shows them)")
            self.con.execute(
                f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) SELECT n.alert_id, n.decision, n.note,"
                " n.reviewer, n.decided_at, a.last_seen_run, a.risk, a.typology FROM new_decisions n"
                " JOIN alerts a ON a.alert_id = n.alert_id ORDER BY n.position")
            self.con.execute(
                f"INSERT INTO alert_history ({', '.join(HISTORY_COLUMNS)}) SELECT n.alert_id, a.last_seen_run, a.risk,"
                " a.typology, n.decision, n.decision || ' by ' || coalesce(n.reviewer, 'unnamed reviewer')"
                " || ' on ' || strftime(n.decided_at, '%Y-%m-%d') || coalesce(': ' || n.note, '')"
                " FROM new_decisions n JOIN alerts a ON a.alert_id = n.alert_id ORDER BY n.position")
            # the latest decision of each alert sets its status
            self.con.execute(
                "UPDATE alerts SET status = l.decision FROM (SELECT alert_id, decision, row_number() OVER"
                " (PARTITION BY alert_id ORDER BY decided_at DESC, position DESC) AS latest FROM new_decisions) l"
                " WHERE l.alert_id = alerts.alert_id AND l.latest = 1")
        return len(wanted)

    def prune(self, before: pd.Timestamp) -> dict[str, int]:
        """Delete invoices, transfers and alerts (with their history) dated before ``before``, keeping
        every decided alert (confirmed or dismissed, or ever decided), its history and the row it refers to.
        Files and runs stay, so a pruned file given again is still known. One transaction; returns the
        counts removed per table."""
        cutoff = pd.Timestamp(before).to_pydatetime()
        kept = ("(SELECT alert_id, item, file_sha256, source_row FROM alerts WHERE status IN ('confirmed', 'dismissed')"
                " OR alert_id IN (SELECT alert_id FROM decisions))")
        removed = {}
        with self._transaction():
            self.con.execute(f"CREATE TEMP TABLE kept_alerts AS {kept}")
            old_alerts = ("SELECT alert_id FROM alerts WHERE date < ? AND alert_id NOT IN"
                          " (SELECT alert_id FROM kept_alerts)")
            removed["alert_history"] = self.con.execute(
                f"DELETE FROM alert_history WHERE alert_id IN ({old_alerts})", [cutoff]).fetchone()[0]
            removed["alerts"] = self.con.execute(
                "DELETE FROM alerts WHERE date < ? AND alert_id NOT IN (SELECT alert_id FROM kept_alerts)",
                [cutoff]).fetchone()[0]
            for kind, item in (("invoices", "invoice"), ("transfers", "transfer")):
                removed[kind] = self.con.execute(
                    f"DELETE FROM {_table(kind)} WHERE date < ? AND NOT EXISTS (SELECT 1 FROM kept_alerts k"
                    f" WHERE k.item = ? AND k.file_sha256 = {kind}.file_sha256"
                    f" AND k.source_row = {kind}.source_row)", [cutoff, item]).fetchone()[0]
            self.con.execute("DROP TABLE kept_alerts")
        return removed

    def _insert_rows(self, kind: str, frame: pd.DataFrame, run_id: str) -> None:
        columns = PROVENANCE | ROW_COLUMNS[kind]
        rows = pd.DataFrame(index=frame.index)
        for name, sql in columns.items():
            if name == "run_id":
                rows[name] = run_id
            elif name == "source_columns":
                rows[name] = _pack_kept(frame)
            elif name in frame:
                values = frame[name]
                rows[name] = values.astype(object).where(values.notna(), None) if sql == "VARCHAR" else values
            else:
                rows[name] = None
        self._put("new_rows", rows)
        names = ", ".join(f'"{c}"' for c in columns)
        casts = ", ".join(f'CAST("{c}" AS {sql.split()[0]})' for c, sql in columns.items())
        self.con.execute(f"INSERT INTO {_table(kind)} ({names}) SELECT {casts} FROM new_rows")

    def _put(self, name: str, frame: pd.DataFrame) -> None:
        """Hand ``frame`` to DuckDB as a view named ``name`` (through Arrow: no row-by-row insert)."""
        self.con.register(name, pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False))
        self._registered.append(name)

    def _unregister(self) -> None:
        for name in self._registered:
            self.con.unregister(name)
        self._registered.clear()


def _pack_kept(frame: pd.DataFrame) -> pd.Series:
    """Each row's kept source columns (``src:...``) as a JSON object, or None when the file kept none."""
    kept = [c for c in frame.columns if c.startswith(KEPT_PREFIX)]
    if not kept:
        return pd.Series(None, index=frame.index, dtype=object)
    # one record a line; JSON escapes every control character inside a string, so a line is a record
    lines = frame[kept].astype(object).to_json(orient="records", lines=True, force_ascii=True).rstrip("\n")
    return pd.Series(lines.split("\n"), index=frame.index, dtype=object)


def _unpack_kept(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored rows with their kept source columns back as ``src:...`` text columns."""
    packed = frame.pop("source_columns") if "source_columns" in frame else None
    if packed is None or packed.isna().all():
        return frame
    at = packed.notna().to_numpy()
    records = pd.DataFrame.from_records([json.loads(text) for text in packed[at]], index=frame.index[at])
    kept = records.reindex(frame.index).astype("string")
    return pd.concat([frame, kept[[c for c in kept.columns if c.startswith(KEPT_PREFIX)]]], axis=1)


def _table(kind: str) -> str:
    if kind not in ROW_COLUMNS:  # the only names spliced into SQL are this module's own
        raise ValueError(f"unknown kind {kind!r}")
    return kind


def alert_changes(items: pd.DataFrame, earlier: pd.DataFrame, threshold: float, run_id: str,
                  new_files: dict[str, str], linked_to: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How this run's judgement differs from the stored alerts.

    ``items``: the scored union (history and new rows) with ``alert_id``, ``file_sha256``, ``source_row``.
    ``earlier``: stored alerts of the rows in the union. ``new_files``: sha256 -> path of this run's files.
    ``linked_to``: alert id of an earlier unmatched payment -> words naming the invoice it is now linked to.
    Returns (alerts in their new state, ALERT_COLUMNS + ``change``; history lines, HISTORY_COLUMNS).
    """
    alerted = items[alerted_rows(items, threshold)]
    item_id = alerted["invoice_id"].astype(object)
    if "transfer_id" in alerted:
        item_id = item_id.where(alerted["item"] == "invoice", alerted["transfer_id"].astype(object))
    now = pd.DataFrame({"alert_id": alerted["alert_id"].to_numpy(), "item": alerted["item"].to_numpy(),
                        "item_id": item_id.to_numpy(),
                        "file_sha256": alerted["file_sha256"].to_numpy(),
                        "source_row": alerted["source_row"].to_numpy(dtype="int64"),
                        "date": pd.to_datetime(alerted["date"]).to_numpy(),
                        "risk": alerted["risk"].to_numpy(dtype=float),
                        "typology": alerted["suspected_typology"].astype(object).to_numpy(),
                        "reasons": alerted["reasons"].astype(object).to_numpy()})
    before = earlier.set_index("alert_id")
    prior = before.reindex(now["alert_id"])
    was_open = (prior["status"] == "open").to_numpy()
    was_resolved = (prior["status"] == "resolved").to_numpy()
    was_decided = prior["status"].isin(DECISIONS).to_numpy()
    was_known = was_open | was_resolved | was_decided
    is_new_row = now["file_sha256"].isin(list(new_files)).to_numpy()
    # measured from the risk last reported (new, changed, ...), not last stored: small daily moves that add
    # up to CHANGE_POINTS are a change too
    reported = _column(prior, "reported_risk").fillna(prior["risk"]).to_numpy(dtype=float)
    moved = (np.abs(now["risk"].to_numpy() - reported) >= CHANGE_POINTS) | \
        (now["typology"].to_numpy() != prior["typology"].to_numpy())
    decided_risk = _column(prior, "decided_risk").to_numpy(dtype=float)
    decided_typology = _column(prior, "decided_typology").to_numpy(dtype=object)
    comes_back = (prior["status"] == "dismissed").to_numpy() & (
        (now["risk"].to_numpy() - decided_risk >= REOPEN_POINTS) | (now["typology"].to_numpy() != decided_typology))
    change = np.select([is_new_row & ~was_known, ~was_known, was_resolved | comes_back,
                        (was_open | was_decided) & moved], ["new", "raised", "re-raised", "changed"], "")
    evidence = "; ".join(new_files.values())
    first_reason = now["reasons"].fillna("").astype(str).str.split(" | ", regex=False).str[0].to_numpy(dtype=object)
    was = reported
    why = np.array([{"new": "first scored",
                     "raised": f"re-judged with {evidence}: {reason}",
                     "re-raised": f"alerted again with {evidence}: {reason}",
                     "changed": f"risk {before:.0f} -> {after:.0f} ({typology}) with {evidence}"}.get(c, "")
                    for c, reason, before, after, typology in zip(change, first_reason, was, now["risk"],
                                                                  now["typology"])], dtype=object)
    why = np.where(comes_back, [f"dismissed at risk {d:.0f} ({dt}), now {r:.0f} ({t}) with {evidence}: "
                                + (f"risk rose {REOPEN_POINTS:.0f} points or more" if r - d >= REOPEN_POINTS
                                   else "another typology")
                                for d, dt, r, t in zip(decided_risk, decided_typology, now["risk"], now["typology"])],
                   why) if len(now) else why
    # a decision stands when the alert is raised again; a dismissed alert reopens only as said above
    now["status"] = np.where(was_decided & ~comes_back, prior["status"].to_numpy(dtype=object), "open")
    now["first_seen_run"] = prior["first_seen_run"].fillna(run_id).to_numpy()
    now["last_seen_run"] = run_id
    now["last_changed_run"] = np.where(change != "", run_id, prior["last_changed_run"].fillna(run_id).to_numpy())
    now["change"] = change
    now["why"] = why

    # stored open alerts of rows in the union that this run no longer alerts
    dropped = earlier[(earlier["status"] == "open") & ~earlier["alert_id"].isin(now["alert_id"])].copy()
    risk_now = items.set_index("alert_id")["risk"].reindex(dropped["alert_id"]).to_numpy(dtype=float)
    dropped_why = [linked_to.get(a) or (f"risk fell to {r:.0f} with {evidence}" if np.isfinite(r) else
                                        f"no longer an item with {evidence}")
                   for a, r in zip(dropped["alert_id"], risk_now)]
    dropped["risk"] = risk_now
    dropped["status"] = "resolved"
    dropped["last_seen_run"] = run_id
    dropped["last_changed_run"] = run_id
    dropped["change"] = "resolved"
    dropped["why"] = dropped_why
    state = pd.concat([now, dropped[now.columns]], ignore_index=True)
    changed = state[state["change"] != ""]
    history = pd.DataFrame({"alert_id": changed["alert_id"], "run_id": run_id, "risk": changed["risk"],
                            "typology": changed["typology"], "change": changed["change"], "why": changed["why"]})
    return state, history


def alerted_rows(items: pd.DataFrame, threshold: float) -> np.ndarray:
    """The items chosen as alerts: by the budget where scoring marked them (``alert``, see ``tbml.budget``),
    else those at or above ``threshold``."""
    if "alert" in items:
        return items["alert"].fillna(False).to_numpy(dtype=bool)
    return (items["risk"] >= threshold).to_numpy()


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(np.nan, index=frame.index)


# Trader profiles (chapters a trader deals in, first dealings between two traders) read this far back.
PROFILE_DAYS = 365


def evidence_days(config) -> int:
    """How far back a new file can change a judgement: the longest configured window (a payment up to
    ``window_after_days`` after its invoice, an advance payment up to ``window_before_days`` before it,
    rings, repeated invoices, structuring). Stored rows this recent are judged again with the new file."""
    r = config.reconciliation
    return int(max(r.window_before_days, r.window_after_days, r.cycle_window_days, r.repeat_window_days,
                   r.structuring_window_days))


def lookback_days(config) -> int:
    """How many days before a new file's first date stored rows are read: the rows judged again
    (``evidence_days``) and, before them, their own context (their payments and invoices within the windows,
    and ``PROFILE_DAYS`` of trader history). Rows read only as context keep their stored judgement: at
    the edge of what was read, a payment would lack its invoice and be judged a phantom for want of it."""
    return evidence_days(config) + max(evidence_days(config), PROFILE_DAYS)


def with_history(store: Store, config, validation, invoices: pd.DataFrame,
                 transfers: pd.DataFrame | None) -> StoreRun:
    """The new files' accepted rows joined with the stored rows of the look-back (``StoreRun``).

    A file whose content hash is already stored adds no row (its rows are in the history instead); when
    every file is, ``already_in_store`` names the run that took them and nothing else is done."""
    files = {r.kind: {"sha256": r.stats["sha256"], "path": r.stats["path"], "kind": r.kind,
                      "rows": r.stats["rows_accepted"]} for r in validation.results}
    known = {kind: store.file_run(f["sha256"]) for kind, f in files.items()}
    run = StoreRun(store, config, validation, files, known)
    if all(known.values()):
        run.already_in_store = sorted(set(known.values()))[-1]
        return run
    new = {"invoices": invoices if not known["invoices"] else invoices.iloc[:0],
           "transfers": transfers if transfers is not None and not known.get("transfers") else None}
    dates = pd.concat([f["date"] for f in new.values() if f is not None and len(f)])
    since = dates.min().normalize() - pd.Timedelta(days=lookback_days(config))
    run.since = since
    run.rejudge_from = dates.min().normalize() - pd.Timedelta(days=evidence_days(config))
    for kind, frame in new.items():
        if frame is not None:
            frame = frame.assign(file_sha256=files[kind]["sha256"])
        run.new_rows[kind] = frame
        earlier = store.history(kind, since)
        run.history_rows[kind] = len(earlier)
        run.union[kind] = _union(earlier, frame)
        if run.union[kind] is not None:
            union = run.union[kind]
            run.union_ids[kind] = alert_ids(pd.Series(kind[:-1], index=union.index), union["file_sha256"],
                                            union["source_row"])
    if len(run.new_rows["invoices"]):
        run.duplicates = store.earlier_invoice_ids(run.new_rows["invoices"]["invoice_id"])
        if len(run.duplicates):
            examples = run.summary()["duplicate_invoice_ids"]["examples"]
            validation.results[0].stats.setdefault("notes", []).append(
                f"{run.duplicates['invoice_id'].nunique():,} invoice id(s) already in the store from another file, "
                f"kept as new lines and said in their reasons: " + "; ".join(examples[:3]))
    return run


def _union(earlier: pd.DataFrame, new: pd.DataFrame | None) -> pd.DataFrame | None:
    """Stored rows then new rows, with the new rows' dtypes; a column no row fills and the new file
    lacks is left out, as it would be from a file without it (features skip absent columns)."""
    if new is None and earlier.empty:
        return None
    if new is None:
        new = earlier.iloc[:0]
    earlier = earlier[[c for c in earlier.columns if c in new.columns or earlier[c].notna().any()]]
    for column in earlier.columns:
        if column in new.columns and earlier[column].dtype != new[column].dtype:
            earlier[column] = earlier[column].astype(new[column].dtype)
        elif column not in new.columns and earlier[column].dtype == object:
            earlier[column] = earlier[column].astype("string")
    return pd.concat([earlier, new], ignore_index=True, sort=False)


@dataclass
class StoreRun:
    """One scoring run against the store: the union to score, then its alert changes and the commit."""
    store: Store
    config: object
    validation: object
    files: dict[str, dict]
    known: dict[str, str | None]
    already_in_store: str | None = None
    since: pd.Timestamp | None = None  # stored rows from this date on are read
    rejudge_from: pd.Timestamp | None = None  # and from this date on judged again
    new_rows: dict = field(default_factory=dict)
    history_rows: dict = field(default_factory=dict)
    union: dict = field(default_factory=dict)
    union_ids: dict = field(default_factory=dict)  # kind -> each union row's alert id
    duplicates: pd.DataFrame | None = None
    started: pd.Timestamp | None = None
    run_id: str = ""
    _first_seen_at: pd.Series | None = None  # alert id -> when the run that first raised it started
    scored: pd.DataFrame | None = None  # every item of the union as judged in this run, with alert_id
    state: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    statuses: dict = field(default_factory=dict)  # the run's alerts by status, in RUN_STATUSES order

    @property
    def invoices(self) -> pd.DataFrame:
        return self.union["invoices"]

    @property
    def transfers(self) -> pd.DataFrame | None:
        return self.union.get("transfers")

    def summary(self) -> dict:
        """The store's part of the run manifest."""
        out = {"path": str(self.store.path), "run_id": self.run_id or None,
               "already_in_store": {k: v for k, v in self.known.items() if v}}
        if self.already_in_store:
            return out
        out |= {"lookback_days": lookback_days(self.config), "history_from": str(self.since.date()),
                "rejudged_from": str(self.rejudge_from.date()),
                "history_rows": self.history_rows,
                "new_rows": {k: int(len(v)) if v is not None else 0 for k, v in self.new_rows.items()}}
        dup = self.duplicates if self.duplicates is not None else pd.DataFrame()
        out["duplicate_invoice_ids"] = {
            "count": int(dup["invoice_id"].nunique()) if len(dup) else 0,
            "examples": [f"{r.invoice_id} (already in {r.path}, {pd.Timestamp(r.date).date()})"
                         for r in dup.drop_duplicates("invoice_id").head(5).itertuples()]}
        if self.changes is not None:
            out["alert_changes"] = {k: int(v) for k, v in self.changes["change"].value_counts().items()}
        if self.statuses:  # the run's alerts by status, seen before included (no change, so no line above)
            out["alert_statuses"] = self.statuses
        return out

    def rejudge(self, items: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
        """This run's items and alerts from the scored union: the new rows, the earlier rows whose alert
        changed, and the earlier rows still alerted and open, each with ``alert_id``, ``status`` (see
        ``RUN_STATUSES``), ``first_seen`` (the date the alert was first raised), ``age_days`` and
        ``decision``. Alerts come in the order of ``RUN_STATUSES``, riskiest first within each."""
        self.started = pd.Timestamp.now()
        self.run_id = self.started.strftime("%Y%m%dT%H%M%S%f") + "-" + self.files["invoices"]["sha256"][:8]
        new_files = {f["sha256"]: Path(f["path"]).name for k, f in self.files.items() if not self.known.get(k)}
        items = items.assign(alert_id=alert_ids(items["item"], items["file_sha256"], items["source_row"]))
        # rows read only as context keep their stored judgement (see ``lookback_days``)
        items = items[(pd.to_datetime(items["date"]) >= self.rejudge_from).to_numpy()
                      | items["file_sha256"].isin(list(new_files)).to_numpy()]
        self.scored = items
        in_union = pd.concat([self.union_ids[kind][self.judged(frame)]
                              for kind, frame in self.union.items() if frame is not None])
        shas = pd.concat([f["file_sha256"] for f in self.union.values() if f is not None]).unique().tolist()
        earlier = self.store.alerts(shas)
        earlier = earlier[earlier["alert_id"].isin(set(in_union))]
        self._first_seen_at = earlier.set_index("alert_id")["first_seen_at"]
        threshold = config.fusion.alert_threshold
        self.state, self.changes = alert_changes(items, earlier, threshold, self.run_id, new_files,
                                                 self._now_linked(items, earlier))
        state = self.state.set_index("alert_id")
        change = items["alert_id"].map(state["change"]).fillna("")
        # still alerted, no change worth a line, still open (a decided alert keeps its decision unlisted)
        seen = ((change == "") & (items["alert_id"].map(state["status"]) == "open")).to_numpy()
        is_new = items["file_sha256"].isin(list(new_files)).to_numpy()
        run_items = items[is_new | (change != "").to_numpy() | seen].copy()
        run_items["status"] = change.mask(seen, "seen before")[run_items.index]
        self._mark_duplicates(run_items)
        alerts = run_items[alerted_rows(run_items, threshold) & (run_items["status"] != "resolved").to_numpy()].copy()
        resolved = self.state[self.state["change"] == "resolved"]
        gone = resolved[~resolved["alert_id"].isin(run_items["alert_id"])]  # payments now linked: no item
        resolved_rows = pd.concat([run_items[run_items["status"] == "resolved"],
                                   self._linked_rows(gone, run_items.columns)], ignore_index=True)
        resolved_rows["reasons"] = resolved_rows["alert_id"].map(self.state.set_index("alert_id")["why"])
        alerts = pd.concat([alerts, resolved_rows], ignore_index=True, sort=False)
        order = alerts["status"].map({s: n for n, s in enumerate(RUN_STATUSES)})
        alerts = alerts.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
        for frame in (alerts, run_items):
            self._mark_age(frame)
        alerts["rank"] = np.arange(1, len(alerts) + 1)
        run_items["rank"] = np.arange(1, len(run_items) + 1)
        counts = alerts["status"].value_counts()
        self.statuses = {s: int(counts[s]) for s in RUN_STATUSES if s in counts}
        first = ["rank", "alert_id", "status"]  # beside the rank, where an investigator looks first
        return (run_items[first + [c for c in run_items.columns if c not in first]].reset_index(drop=True),
                alerts[first + [c for c in alerts.columns if c not in first]])

    def _linked_rows(self, gone: pd.DataFrame, columns) -> pd.DataFrame:
        """Resolved alerts that are no item this run (payments now linked) as their transfers' rows: parties,
        amounts and kept source columns, as the alert showed them."""
        ids = self.union_ids.get("transfers", pd.Series(dtype=object))
        at = ids.isin(set(gone["alert_id"])).to_numpy()
        rows = self.transfers[at] if at.any() else pd.DataFrame()
        keep = [c for c in rows.columns if c in columns or c.startswith(KEPT_PREFIX)]
        rows = rows[keep].assign(item="transfer", alert_id=ids[at].to_numpy())
        rest = gone[~gone["alert_id"].isin(rows["alert_id"])]  # not read this run (not expected): as stored
        rest = pd.DataFrame({"item": rest["item"], "date": rest["date"], "file_sha256": rest["file_sha256"],
                             "source_row": rest["source_row"], "alert_id": rest["alert_id"],
                             "invoice_id": rest["item_id"].where(rest["item"] == "invoice"),
                             "transfer_id": rest["item_id"].where(rest["item"] == "transfer")})
        return pd.concat([rows, rest], ignore_index=True).assign(status="resolved")

    def _mark_age(self, frame: pd.DataFrame) -> None:
        """Add ``first_seen``, ``age_days`` and ``decision`` to rows of this run's items or alerts."""
        state = self.state.set_index("alert_id")
        today = self.started.normalize()
        first_run = frame["alert_id"].map(state["first_seen_run"])
        earlier = pd.to_datetime(self._first_seen_at.reindex(frame["alert_id"].to_numpy())).dt.normalize()
        first_seen = np.where(first_run == self.run_id, today.to_datetime64(), earlier.to_numpy(dtype="datetime64[ns]"))
        frame["first_seen"] = pd.Series(first_seen, index=frame.index, dtype="datetime64[ns]").where(first_run.notna())
        frame["age_days"] = (today - frame["first_seen"]).dt.days.astype("Int64")
        decision = frame["alert_id"].map(state["status"])
        frame["decision"] = decision.where(decision.isin(DECISIONS)).astype("string")

    def judged(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of a union frame this run judges (the rest are context): new, or recent enough."""
        new = [f["sha256"] for k, f in self.files.items() if not self.known.get(k)]
        return ((frame["date"] >= self.rejudge_from) | frame["file_sha256"].isin(new)).to_numpy()

    def _now_linked(self, items: pd.DataFrame, earlier: pd.DataFrame) -> dict[str, str]:
        """Earlier unmatched payments that are no item now: the words naming the invoice now linked."""
        gone = earlier[(earlier["item"] == "transfer") & (earlier["status"] == "open")
                       & ~earlier["alert_id"].isin(items["alert_id"])]
        transfers = self.transfers
        if gone.empty or transfers is None:
            return {}
        from tbml.features.reconciliation import LinkRule, link_transfers

        r = self.config.reconciliation
        ids = self.union_ids["transfers"]
        rows = transfers[ids.isin(set(gone["alert_id"])).to_numpy()]
        links = link_transfers(self.invoices, rows, LinkRule(r.amount_tolerance, r.window_before_days,
                                                             r.window_after_days))
        paths = {f["sha256"]: Path(f["path"]).name for f in self.files.values()}
        out = {}
        for alert_id, pos in zip(ids[rows.index], links["invoice_pos"].to_numpy()):
            if pos < 0:
                continue
            invoice = self.invoices.iloc[pos]
            where = paths.get(invoice["file_sha256"], "an earlier file")
            out[alert_id] = (f"linked to invoice {invoice['invoice_id']} of {pd.Timestamp(invoice['date']).date()}, "
                             f"which arrived in {where}")
        return out

    def _mark_duplicates(self, run_items: pd.DataFrame) -> None:
        """Say, in the reasons of a new line, that its invoice id was declared before in another file."""
        dup = self.duplicates
        if dup is None or dup.empty or "invoice_id" not in run_items:
            return
        first = dup.drop_duplicates("invoice_id").set_index("invoice_id")
        said = ("invoice id " + first.index.astype(str) + " was already declared in " + first["path"].map(
            lambda p: Path(p).name) + " on " + pd.to_datetime(first["date"]).dt.strftime("%Y-%m-%d"))
        new_sha = self.files["invoices"]["sha256"]
        at = (run_items["item"] == "invoice") & (run_items["file_sha256"] == new_sha)
        words = run_items.loc[at, "invoice_id"].astype(str).map(said)
        has = words.notna()
        idx = words.index[has]
        before = run_items.loc[idx, "reasons"].fillna("").astype(str)
        run_items.loc[idx, "reasons"] = np.where(before == "", words[has], words[has] + " | " + before)

    def commit(self, manifest: dict) -> None:
        """Store the new rows, the run and the alerts' changes: one transaction."""
        files = [f for k, f in self.files.items() if not self.known.get(k)]
        self.store.record_run(RunRecord(self.run_id, manifest, files, self.new_rows["invoices"],
                                        self.new_rows.get("transfers"),
                                        self.state.drop(columns=["change", "why"]), self.changes, self.started))

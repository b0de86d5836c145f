"""Labels from where users hold them: a column of the file (an inspection outcome, mapped to
``is_laundering``), a labels file, or investigators' decisions in a case store.

A labels file has a header and one row per item: ``id`` (an invoice_id or transfer_id of the files),
``label`` (true/false, yes/no, 1/0, or the store's words confirmed/dismissed), and optionally ``typology``
and ``date``. An id that matches no item is counted and said, never silently dropped; an id labelled twice
with different labels is refused. A label in the file replaces the file's own column for that item.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tbml.errors import InputFileError, TBMLError

YES = {"true", "1", "yes", "y", "t", "confirmed", "fraud", "laundering"}
NO = {"false", "0", "no", "n", "f", "dismissed", "clean"}


def read_labels(path: str | Path) -> pd.DataFrame:
    """``id``, ``label`` (bool), ``typology`` from a CSV or Parquet labels file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: labels file not found")
    try:
        frame = (pd.read_parquet(path) if path.suffix.lower() == ".parquet"
                 else pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the labels file ({exc})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    for needed in ("id", "label"):
        if needed not in frame:
            raise InputFileError(f"{path}: no '{needed}' column; a labels file has id, label[, typology, date]")
    text = frame["label"].astype(str).str.strip().str.lower()
    known = text.isin(YES | NO)
    if not known.all():
        row = int(np.flatnonzero(~known.to_numpy())[0])
        raise InputFileError(f"{path}: row {row + 2}, column label: {frame['label'].iloc[row]!r} is not a label "
                             f"(true/false, yes/no, 1/0, confirmed/dismissed)")
    out = pd.DataFrame({"id": frame["id"].astype(str).str.strip(), "label": text.isin(YES).to_numpy()})
    out["typology"] = frame["typology"].astype(str).str.strip() if "typology" in frame else ""
    clash = out.groupby("id")["label"].nunique()
    if (clash > 1).any():
        raise InputFileError(f"{path}: id {clash[clash > 1].index[0]!r} is labelled both true and false")
    return out.drop_duplicates("id", keep="last")


def store_labels(store_path: str | Path) -> pd.DataFrame:
    """Investigators' decisions in a case store as labels: confirmed = laundering, dismissed = not; open
    alerts and items nobody reviewed stay unlabelled."""
    from tbml.store import Store

    with Store.open(store_path, read_only=True, create=False) as store:
        decided = store.review_list()
    decided = decided[decided["status"].isin(["confirmed", "dismissed"])]
    return pd.DataFrame({"id": decided["item_id"].astype(str).to_numpy(),
                         "label": (decided["status"] == "confirmed").to_numpy(),
                         "typology": ""})  # what tbml suspected is not what the investigator found


def apply_labels(frame: pd.DataFrame, labels: pd.DataFrame, id_column: str) -> tuple[pd.DataFrame, int]:
    """``frame`` with ``is_laundering`` (nullable) and ``typology`` set from ``labels`` where ids match; the
    number of ``labels`` rows it used."""
    if id_column not in frame:
        return frame, 0
    by_id = labels.set_index("id")
    ids = frame[id_column].astype(str)
    found = ids.isin(by_id.index).to_numpy()
    out = frame.copy()
    current = (out["is_laundering"].astype("boolean") if "is_laundering" in out
               else pd.Series(pd.NA, index=out.index, dtype="boolean"))
    current[found] = by_id["label"].reindex(ids[found]).to_numpy(dtype=bool)
    out["is_laundering"] = current
    typology = out["typology"].astype(object) if "typology" in out else pd.Series("", index=out.index, dtype=object)
    given = by_id["typology"].reindex(ids[found]).fillna("").to_numpy(dtype=object)
    typology[found] = np.where(given != "", given, typology[found].to_numpy())
    out["typology"] = typology.fillna("")
    return out, int(ids[found].nunique())


def label_files(invoices: pd.DataFrame, transfers: pd.DataFrame | None, source: str | Path,
                say=lambda line: None) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Apply labels from ``source`` ("store:PATH" for a case store's decisions, otherwise a labels file) to
    the accepted frames; returns them and a word for where the labels came from."""
    text = str(source)
    if text.startswith("store:"):
        labels, kind = store_labels(text[len("store:"):]), "review decisions"
    else:
        labels, kind = read_labels(text), "labels file"
    if labels.empty:
        raise TBMLError(f"{text}: holds no labels")
    invoices, used = apply_labels(invoices, labels, "invoice_id")
    if transfers is not None:
        transfers, more = apply_labels(transfers, labels, "transfer_id")
        used += more
    unmatched = len(labels) - used
    say(f"{used:,} of {len(labels):,} labels matched an item" + (f"; {unmatched:,} name no item of these files"
                                                                  if unmatched else ""))
    return invoices, transfers, kind

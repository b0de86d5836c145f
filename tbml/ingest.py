"""Files in, accepted rows and quarantined rows out, with counts that always add up.

    read (tbml.io) -> map columns (tbml.mapping) -> validate (tbml.validate) -> normalise (tbml.normalise)

Every input row ends in exactly one of ``accepted`` or ``quarantined``:
``rows_in == rows_accepted + rows_quarantined`` holds for every result, and is checked before returning.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tbml.config import Config
from tbml.errors import StrictModeError
from tbml.fx import FxTable
from tbml.io import MALFORMED_TEXT, SOURCE_ROW, read_raw, sha256_file
from tbml.mapping import Mapping
from tbml.normalise import normalise
from tbml.schema import columns
from tbml.validate import validate


@dataclass
class LoadResult:
    kind: str
    path: Path
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    stats: dict = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return self.stats["rows_in"]


def load_table(
    path: str | Path,
    kind: str,
    mapping: Mapping | str | Path | None = None,
    config: Config | None = None,
    fx: FxTable | None = None,
    strict: bool = False,
    **read_overrides,
) -> LoadResult:
    """Read, map, validate and normalise one file of ``kind`` ('invoices' or 'transfers').

    ``read_overrides`` (delimiter, encoding, decimal, date_format, ...) replace the mapping's read options.
    Raises ``TBMLError`` for file-level problems, and ``StrictModeError`` when ``strict`` and any row was
    quarantined.
    """
    started = time.perf_counter()
    path = Path(path)
    config = config or Config()
    if mapping is None:
        mapping = Mapping.identity(kind)
    elif not isinstance(mapping, Mapping):
        mapping = Mapping.load(mapping, kind)
    overrides = {k: v for k, v in read_overrides.items() if v is not None}
    if overrides:
        mapping = dataclasses.replace(mapping, read=dataclasses.replace(mapping.read, **overrides))
    fx = fx or FxTable.load(config.ingest.fx_rates)

    raw = read_raw(path, delimiter=mapping.read.delimiter, encoding=mapping.read.encoding)
    mapped, matched = mapping.apply(raw, path)
    checked = validate(mapped, mapping, config.ingest, path)
    rejected = checked.problems.rejected()
    normalised, no_rate = normalise(checked.clean[~rejected], kind, fx, config.ingest)
    no_rate_full = np.zeros(len(raw), dtype=bool)
    no_rate_full[np.flatnonzero(~rejected)[no_rate]] = True
    checked.problems.add("no_fx_rate", "currency", no_rate_full)
    rejected |= no_rate_full

    accepted = normalised[~no_rate].reset_index(drop=True)
    quarantined = _quarantine_frame(raw, mapped, mapping, checked.problems, np.flatnonzero(rejected))
    repairs = {name: int(mask[~rejected].sum()) for name, mask in checked.repairs.items()}
    if "unit_status" in accepted:
        repairs["unit_status"] = {k: int(v) for k, v in accepted["unit_status"].value_counts().sort_index().items()}
    stats = _stats(path, kind, mapping, mapped, accepted, quarantined, repairs, config)
    stats["columns_matched"] = {k: v for k, v in matched.items() if k != v}
    stats["seconds"] = round(time.perf_counter() - started, 3)
    if stats["rows_in"] != stats["rows_accepted"] + stats["rows_quarantined"]:
        raise AssertionError(f"row accounting broke for {path}: {stats}")  # a bug in tbml, never in the input
    if strict and len(quarantined):
        first = quarantined.iloc[0]
        raise StrictModeError(
            f"{path}: {len(quarantined)} row(s) quarantined in strict mode; first: row {first[SOURCE_ROW]}: "
            f"{first['detail']}"
        )
    return LoadResult(kind, path, accepted, quarantined, stats)


def load_invoices(path, mapping=None, config=None, fx=None, strict=False, **read_overrides) -> LoadResult:
    return load_table(path, "invoices", mapping, config, fx, strict, **read_overrides)


def load_transfers(path, mapping=None, config=None, fx=None, strict=False, **read_overrides) -> LoadResult:
    return load_table(path, "transfers", mapping, config, fx, strict, **read_overrides)


def _quarantine_frame(raw: pd.DataFrame, mapped: pd.DataFrame, mapping: Mapping, problems, rows: np.ndarray) -> pd.DataFrame:
    """The rejected rows exactly as read, with their source row and why they were set aside."""
    why = problems.describe(mapped, rows, mapping)
    original = raw.iloc[rows].drop(columns=[SOURCE_ROW, MALFORMED_TEXT], errors="ignore")
    out = pd.concat(
        [
            pd.DataFrame({SOURCE_ROW: raw[SOURCE_ROW].iloc[rows].to_numpy()}),
            why.reset_index(drop=True),
            original.reset_index(drop=True).astype("string"),
        ],
        axis=1,
    )
    if MALFORMED_TEXT in raw.columns:
        out["malformed_text"] = raw[MALFORMED_TEXT].iloc[rows].to_numpy()
    return out


def _stats(path, kind, mapping, mapped, accepted, quarantined, counts, config) -> dict:
    present = [c.name for c in columns(kind) if c.name in mapped.columns]
    absent_optional = [c.name for c in columns(kind) if not c.required and c.name not in mapped.columns]
    primary = quarantined["reason"].value_counts() if len(quarantined) else pd.Series(dtype=int)
    every = quarantined["reasons"].str.split(";").explode().value_counts() if len(quarantined) else primary
    stats = {
        "kind": kind,
        "path": str(path),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "mapping": mapping.name,
        "rows_in": int(len(mapped)),
        "rows_accepted": int(len(accepted)),
        "rows_quarantined": int(len(quarantined)),
        "quarantine_reasons": {k: int(v) for k, v in primary.items()},
        "quarantine_reason_hits": {k: int(v) for k, v in every.items()},
        "columns_present": present,
        "optional_columns_absent": absent_optional,
        "reporting_currency": config.ingest.reporting_currency,
        "repairs": counts,
    }
    if len(accepted):
        stats["date_range"] = [str(accepted["date"].min().date()), str(accepted["date"].max().date())]
    return stats

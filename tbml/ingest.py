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
from tbml.errors import AllRowsQuarantinedError, ConfigError, InputFileError, StrictModeError
from tbml.fx import FxTable
from tbml.io import MALFORMED_TEXT, SOURCE_ROW, read_raw, sha256_file
from tbml.mapping import Mapping, ReadOptions, read_option_problem
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
    # the quarantined rows' canonical ids (and invoice numbers) with their reason: a payment citing one of
    # them pays an invoice that exists but failed validation
    rejected_keys: pd.DataFrame | None = None

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
    option_prefix = "--" if kind == "invoices" else f"--{kind}-"  # the command-line options for this file
    for name, value in overrides.items():
        if name not in READ_OPTIONS:
            raise InputFileError(f"{path}: {name!r} is not a read option; use one of {', '.join(READ_OPTIONS)}")
        problem = read_option_problem(name, value)
        if problem:
            raise InputFileError(f"{path}: {option_prefix}{name.replace('_', '-')} {value!r} {problem}")
    if overrides:
        mapping = dataclasses.replace(mapping, read=dataclasses.replace(mapping.read, **overrides))
    fx = fx or FxTable.load(config.ingest.fx_rates)
    if config.ingest.reporting_currency not in fx.currencies:
        raise ConfigError(f"ingest.reporting_currency: {config.ingest.reporting_currency!r} has no exchange rate "
                          f"in {fx.source}; choose one of {', '.join(sorted(fx.currencies))}")

    raw = read_raw(path, delimiter=mapping.read.delimiter, encoding=mapping.read.encoding,
                   option_prefix=option_prefix)
    # what the file was read with (a byte-order mark decides the encoding; the header the delimiter)
    mapping = dataclasses.replace(mapping, read=dataclasses.replace(
        mapping.read, delimiter=raw.attrs.get("delimiter") or mapping.read.delimiter,
        encoding=raw.attrs.get("encoding") or mapping.read.encoding))
    mapped, matched = mapping.apply(raw, path)
    checked = validate(mapped, mapping, config.ingest, path)
    rejected = checked.problems.rejected()
    normalised, no_rate, carried = normalise(checked.clean[~rejected], kind, fx, config.ingest)
    no_rate_full = np.zeros(len(raw), dtype=bool)
    no_rate_full[np.flatnonzero(~rejected)[no_rate]] = True
    checked.problems.add("no_fx_rate", "currency", no_rate_full)
    rejected |= no_rate_full

    accepted = normalised[~no_rate].reset_index(drop=True)
    notes = (_renamed_notes(raw.attrs.get("renamed", {})) + checked.notes
             + _fx_notes(normalised, no_rate, carried, fx, config) + _blank_notes(accepted, kind))
    quarantined = _quarantine_frame(raw, mapped, mapping, checked.problems, np.flatnonzero(rejected))
    repairs = {name: int(mask[~rejected].sum()) for name, mask in checked.repairs.items()}
    if "unit_status" in accepted:
        repairs["unit_status"] = {k: int(v) for k, v in accepted["unit_status"].value_counts().sort_index().items()}
    unknown_codes = dict(checked.unknown_codes)
    if "unit_status" in accepted and (accepted["unit_status"] == "unknown").any():
        strange = accepted["unit_status"] == "unknown"
        counts = accepted.loc[strange, "quantity_unit"].astype("string").value_counts().head(20)
        unknown_codes["quantity_unit"] = {str(k): int(v) for k, v in counts.items()}
    stats = _stats(path, kind, mapping, mapped, accepted, quarantined, repairs, config)
    stats["unknown_codes"] = unknown_codes
    stats["read"] = {"delimiter": mapping.read.delimiter, "encoding": mapping.read.encoding,
                     "decimal": checked.decimal, "date_format": mapping.read.date_format}
    stats["columns_renamed"] = dict(raw.attrs.get("renamed", {}))
    notes += [_unknown_note(column, codes) for column, codes in unknown_codes.items()]
    stats["columns_matched"] = {k: v for k, v in matched.items() if k != v}
    stats["fx_rates_carried_forward"] = int(carried[~no_rate].sum())
    stats["notes"] = notes
    stats["seconds"] = round(time.perf_counter() - started, 3)
    if stats["rows_in"] != stats["rows_accepted"] + stats["rows_quarantined"]:
        raise AssertionError(f"row accounting broke for {path}: {stats}")  # a bug in tbml, never in the input
    if strict and len(quarantined):
        first = quarantined.iloc[0]
        raise StrictModeError(
            f"{path}: {len(quarantined)} row(s) quarantined in strict mode; first: row {first[SOURCE_ROW]}: "
            f"{first['detail']}"
        )
    keys = [c for c in ("invoice_id", "invoice_number", "transfer_id") if c in mapped.columns]
    rejected_keys = mapped.loc[rejected, keys].astype("string").reset_index(drop=True)
    rejected_keys["reason"] = quarantined["reason"].to_numpy() if len(quarantined) else []
    rejected_keys["source_row"] = quarantined[SOURCE_ROW].to_numpy() if len(quarantined) else []
    result = LoadResult(kind, path, accepted, quarantined, stats, rejected_keys)
    _check_whole_file(result)
    return result


# What most often makes every row of a file fail: a setting for the whole file, not the rows.
_WHOLE_FILE_HINTS = {
    "malformed_row": "wrong delimiter? pass --delimiter (or set read.delimiter in the mapping)",
    "bad_number": "decimal mark? set read.decimal (and read.thousands) in the mapping, e.g. decimal: ','",
    "non_finite": "are the number columns mapped to the right source columns? check the mapping",
    "bad_date": "date format? pass --date-format, e.g. %d/%m/%Y",
    "missing_field": "is a required column mapped to an empty source column? check the mapping",
    "no_fx_rate": "supply exchange rates with ingest.fx_rates in a --config file",
    "unknown_currency": "translate the file's currency codes with a values: section in the mapping",
    "bad_country": "translate the file's country codes with a values: section in the mapping",
    "bad_hs_code": "is hs_code mapped to the right source column? check the mapping",
}


def _check_whole_file(result: LoadResult) -> None:
    """A file whose every row fails is a mistake about the whole file (delimiter, decimal mark, date
    format, mapping): one error with a hint, not a run that "succeeds" on zero rows. A file with no data
    rows at all (a 0-row Parquet file) is refused as a header-only CSV is."""
    stats = result.stats
    if stats["rows_in"] == 0:
        raise InputFileError(f"{result.path}: has a header but no data rows")
    if stats["rows_accepted"] or not stats["rows_quarantined"]:
        return
    reasons = stats["quarantine_reasons"]
    reason = max(reasons, key=reasons.get)
    first = result.quarantined[result.quarantined["reason"] == reason].iloc[0]
    hint = _WHOLE_FILE_HINTS.get(reason, "check the mapping and read options (tbml init writes examples)")
    raise AllRowsQuarantinedError(
        f"{result.path}: every one of the {stats['rows_in']:,} rows was quarantined, {reasons[reason]:,} as "
        f"{reason} (first: row {first[SOURCE_ROW]}: {first['detail']}); {hint}", result)


READ_OPTIONS = tuple(ReadOptions.__dataclass_fields__)


def load_invoices(path, mapping=None, config=None, fx=None, strict=False, **read_overrides) -> LoadResult:
    return load_table(path, "invoices", mapping, config, fx, strict, **read_overrides)


def load_transfers(path, mapping=None, config=None, fx=None, strict=False, **read_overrides) -> LoadResult:
    return load_table(path, "transfers", mapping, config, fx, strict, **read_overrides)


def _renamed_notes(renamed: dict[str, str]) -> list[str]:
    if not renamed:
        return []
    pairs = ", ".join(f"{old} as {new}" for old, new in renamed.items())
    return [f"columns named like tbml's own were read under new names, apart from tbml's: {pairs}"]


# What tbml cannot do when an optional column is blank, in the words the console and manifest use.
_WITHOUT = {
    "exporter_id": "payments are matched to those lines by importer and amount only; seller histories, "
                   "third-party payee checks and circular-trade rings leave them out",
    "origin_country": "the round-trip check leaves them out",
    "shipment_ref": "same-shipment invoicing and mirror matching by shipment leave them out",
    "quantity": "no unit price can be formed for them; their price is judged per kg of gross weight",
    "gross_weight_kg": "value per kg and weight per unit leave them out",
    "quantity_unit": "their quantities are compared only with others that give no unit",
    "declaration_side": "they are read as import declarations",
    "invoice_ref": "those payments are matched to invoices by parties, amount and date",
    "channel": "the cash and exchange-house check leaves them out",
}


_UNKNOWN_MEANS = {
    "channel": "read as an ordinary payment channel (not cash-like)",
    "quantity_unit": "compared only with lines that wrote the same unit",
    "origin_country": "not country codes: left blank on those rows",
    "exporter_country": "not country codes",
}


def _unknown_note(column: str, codes: dict[str, int]) -> str:
    shown = ", ".join(f"{code!r} ({count:,})" for code, count in list(codes.items())[:8])
    more = "" if len(codes) <= 8 else ", ..."
    return (f"{column}: {sum(codes.values()):,} rows hold codes tbml does not know: {shown}{more}; "
            f"{_UNKNOWN_MEANS.get(column, 'kept as written')}. Translate them with a values: section in the mapping")


def _blank_notes(accepted: pd.DataFrame, kind: str) -> list[str]:
    """One line per consequential optional column that is absent or blank on accepted rows."""
    notes = []
    n = len(accepted)
    for col in columns(kind):
        if col.required or col.name not in _WITHOUT or not n:
            continue
        values = accepted[col.name] if col.name in accepted else None
        blank = n if values is None else int(values.isna().sum())
        if col.name == "quantity_unit" and "quantity" in accepted:
            blank = int((values.isna() & accepted["quantity"].notna()).sum()) if values is not None else blank
        if not blank:
            continue
        where = "every row" if blank == n else f"{blank:,} of {n:,} rows"
        notes.append(f"{col.name} is blank on {where}: {_WITHOUT[col.name]}")
    return notes


def _fx_notes(normalised: pd.DataFrame, no_rate: np.ndarray, carried: np.ndarray, fx: FxTable, config: Config) -> list[str]:
    """What the console and the manifest say about exchange rates: rows converted with a rate carried
    past the table's end, and currencies the rates do not know."""
    notes = []
    key = "ingest.fx_rates"
    used = carried & ~no_rate
    if used.any():
        currencies = sorted(normalised["currency"][used].unique())
        last = fx.last_dates()
        ends = sorted({last.get(c, last.get("EUR", "")) for c in currencies} - {""})
        notes.append(
            f"{int(used.sum()):,} rows dated after the rate table ends ({', '.join(ends)}) were converted with "
            f"the last published rate, at most {config.ingest.fx_max_age_days} days old "
            f"(ingest.fx_max_age_days); for casework set {key} to your own rates")
    if no_rate.any():
        missing = normalised.loc[no_rate, ["currency", "date"]]
        known = fx.currencies
        parts = []
        for cur, dates in missing.groupby("currency", sort=True)["date"]:
            span = f"{dates.min().date()} to {dates.max().date()}"
            why = "not in the built-in rates" if cur not in known else "no rate in force"
            parts.append(f"{cur} ({len(dates):,} rows, {span}: {why})")
        notes.append(
            f"{int(no_rate.sum()):,} rows quarantined as no_fx_rate: {'; '.join(parts)}. Supply rates with "
            f"{key} in a --config file (a CSV of date, currency, per_usd: units of the currency per US dollar)")
    return notes


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

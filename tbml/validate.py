"""Row-level checks: parse every canonical column and decide, per row, accept or quarantine with reasons.

Everything is vectorised over columns; text is built only for the rows that fail. A problem that hits
(nearly) every row is a file-level mistake, such as a wrong date format, and raises one error instead of
quarantining the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tbml.config import IngestConfig
from tbml.errors import InputFileError, MappingError
from tbml.io import MALFORMED_TEXT, SOURCE_ROW
from tbml.mapping import KEPT_PREFIX, Mapping, ReadOptions
from tbml.schema import (
    COUNTRY_ALIASES,
    ID_COLUMN,
    KNOWN_CHANNELS,
    REJECT_REASONS,
    columns,
    country_codes,
    currency_codes,
)

_REASON_ORDER = {code: i for i, code in enumerate(REJECT_REASONS)}
_TRUE = {"true", "1", "yes", "y", "t"}
_NON_FINITE_TEXT = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_SIDES = {
    "export": "export", "exports": "export", "x": "export", "e": "export", "ex": "export", "exp": "export",
    "import": "import", "imports": "import", "m": "import", "i": "import", "im": "import", "imp": "import",
}


@dataclass
class Problems:
    """Reason masks collected column by column; turned into per-row reasons at the end."""

    n_rows: int
    items: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    # Rows whose fields could not be split: their only reason is malformed_row, not the empty cells.
    malformed: np.ndarray | None = None

    def add(self, code: str, column: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        if self.malformed is not None and code != "malformed_row":
            mask = mask & ~self.malformed
        if mask.any():
            self.items.append((code, column, mask))

    def rejected(self) -> np.ndarray:
        out = np.zeros(self.n_rows, dtype=bool)
        for _, _, mask in self.items:
            out |= mask
        return out

    def describe(self, mapped: pd.DataFrame, rows: np.ndarray, mapping: Mapping) -> pd.DataFrame:
        """``reason``, ``reasons`` and ``detail`` for the positions ``rows`` (which must be rejected).

        ``mapped`` holds the canonical columns with their values as read; the detail names the canonical
        column, the source column it came from when they differ, and the value.
        """
        reasons = pd.Series("", index=rows, dtype=object)
        details = pd.Series("", index=rows, dtype=object)
        for code, column, mask in sorted(self.items, key=lambda item: _REASON_ORDER[item[0]]):
            hit = rows[mask[rows]]
            if not len(hit):
                continue
            sep = np.where(reasons.loc[hit] == "", "", ";")
            reasons.loc[hit] = reasons.loc[hit] + sep + code
            if column == MALFORMED_TEXT:
                text = "row has the wrong number of fields: " + mapped[MALFORMED_TEXT].iloc[hit].astype(str)
            else:
                sources = mapping.columns.get(column, ())
                label = f"{column} [{'+'.join(sources)}]" if sources and sources != (column,) else column
                if column in mapped.columns:
                    shown = mapped[column].iloc[hit].astype("string").fillna("").str.slice(0, 60)
                else:  # a check on a column the file does not have (no quantity column at all)
                    shown = pd.Series("", index=hit, dtype="string")
                text = label + "=" + shown.map(repr) + ": " + REJECT_REASONS[code]
            dsep = np.where(details.loc[hit] == "", "", "; ")
            details.loc[hit] = details.loc[hit] + dsep + np.asarray(text, dtype=object)
        return pd.DataFrame(
            {
                "reason": reasons.str.split(";").str[0].to_numpy(),
                "reasons": reasons.to_numpy(),
                "detail": details.to_numpy(),
            },
            index=rows,
        )


@dataclass
class Validated:
    clean: pd.DataFrame  # every row, typed; meaningful only where ``rejected`` is False
    problems: Problems
    repairs: dict[str, np.ndarray]  # rows repaired, by repair: hs leading zero restored, country alias fixed
    unknown_codes: dict[str, dict[str, int]] = field(default_factory=dict)  # per coded column, codes tbml does not know


def validate(mapped: pd.DataFrame, mapping: Mapping, config: IngestConfig, path) -> Validated:
    """Parse and check ``mapped`` (the output of ``Mapping.apply``)."""
    kind = mapping.kind
    n = len(mapped)
    problems = Problems(n)
    repairs: dict[str, np.ndarray] = {}
    unknown_codes: dict[str, dict[str, int]] = {}
    clean = pd.DataFrame({SOURCE_ROW: mapped[SOURCE_ROW].to_numpy()}, index=mapped.index)
    if MALFORMED_TEXT in mapped.columns:
        problems.malformed = mapped[MALFORMED_TEXT].notna().to_numpy()
        problems.add("malformed_row", MALFORMED_TEXT, problems.malformed)
    opts = mapping.read
    for col in columns(kind):
        if col.name not in mapped.columns:
            continue
        raw = mapped[col.name]
        if col.kind == "number":
            values, present = _parse_number(raw, col.name, opts, problems)
        elif col.kind == "date":
            values, present = _parse_date(raw, col.name, opts, config, problems, path)
        else:
            values = _text(raw)
            present = values.notna().to_numpy()
            if col.kind == "country":
                values, fixed, unknown = _check_country(values, col.name, problems, col.required)
                repairs["country_alias_fixed"] = repairs.get("country_alias_fixed", False) | fixed
                if unknown.any():  # an optional field: the code is dropped, the row kept, the code counted
                    repairs[f"{col.name}_unknown_blanked"] = unknown
                    unknown_codes[col.name] = _counts(values, unknown)
                    values = values.mask(unknown)
            elif col.kind == "currency":
                values = values.str.upper()
                problems.add("unknown_currency", col.name, present & ~values.isin(currency_codes()).fillna(False).to_numpy())
            elif col.kind == "hs":
                values, repairs["hs_leading_zero_restored"] = _check_hs(values, col.name, config, problems)
            elif col.kind == "side":
                lowered = values.str.lower()
                values = lowered.map(_SIDES, na_action="ignore").astype("string")
                problems.add("bad_declaration_side", col.name, present & values.isna().to_numpy())
            elif col.kind == "channel":
                values = values.str.lower().str.replace(r"[\s\-]+", "_", regex=True)
                strange = (present & ~values.isin(KNOWN_CHANNELS).fillna(False)).to_numpy()
                if strange.any():
                    unknown_codes[col.name] = _counts(values, strange)
        if col.required:
            problems.add("missing_field", col.name, ~present)
        clean[col.name] = values
    if "is_laundering" in mapped.columns:
        flag = _text(mapped["is_laundering"]).str.lower()
        clean["is_laundering"] = flag.isin(_TRUE).fillna(False).to_numpy()
    if "typology" in mapped.columns:
        clean["typology"] = _text(mapped["typology"]).fillna("")
    for name in mapped.columns:
        if name.startswith(KEPT_PREFIX):
            clean[name] = mapped[name].astype("string")
    _check_ranges(clean, kind, problems)
    id_col = ID_COLUMN[kind]
    ids = clean[id_col]
    problems.add("duplicate_id", id_col, ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy())
    _check_constants(mapping, problems, n)
    return Validated(clean, problems, repairs, unknown_codes)


def _text(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip()
    return text.mask(text == "")


def _parse_number(raw: pd.Series, name: str, opts: ReadOptions, problems: Problems):
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values)
        problems.add("non_finite", name, np.isinf(values))
        return np.where(np.isinf(values), np.nan, values), present
    text = _text(raw)
    present = text.notna().to_numpy()
    cleaned = text.str.replace("\u00a0", "", regex=False).str.replace(" ", "", regex=False)
    if opts.thousands:
        cleaned = cleaned.str.replace(opts.thousands, "", regex=False)
    else:
        # well-formed digit groups ("9,000.50" with a "." decimal mark, "9.000,50" with ",") are unambiguous
        group = "," if opts.decimal == "." else "."
        grouped = cleaned.str.fullmatch(rf"[+-]?\d{{1,3}}(\{group}\d{{3}})+(\{opts.decimal}\d*)?").fillna(False)
        cleaned = cleaned.mask(grouped, cleaned.str.replace(group, "", regex=False))
    if opts.decimal != ".":
        cleaned = cleaned.str.replace(opts.decimal, ".", regex=False)
    values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    textual_non_finite = cleaned.str.lower().isin(_NON_FINITE_TEXT).fillna(False).to_numpy()
    non_finite = np.isinf(values) | textual_non_finite
    problems.add("non_finite", name, non_finite)
    problems.add("bad_number", name, present & np.isnan(values) & ~non_finite)
    return np.where(np.isfinite(values), values, np.nan), present


def _parse_date(raw, name, opts: ReadOptions, config: IngestConfig, problems: Problems, path) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        return parsed.dt.normalize().astype("datetime64[ns]"), parsed.notna().to_numpy()
    text = _text(raw)
    present = text.notna()
    fmt = opts.date_format or "ISO8601"
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_localize(None).dt.normalize()
    failed = present & parsed.isna()
    n_present = int(present.sum())
    if n_present >= 3 and failed.sum() > config.date_failure_file_error_share * n_present:
        example = text[failed].iloc[0]
        expected = opts.date_format or "ISO 8601 (YYYY-MM-DD)"
        raise InputFileError(
            f"{path}: column '{name}': {int(failed.sum())} of {n_present} dates do not match {expected}, "
            f"e.g. {example!r} in row {int(failed.to_numpy().argmax()) + 1}; "
            "set read.date_format in the mapping (e.g. '%d/%m/%Y') or pass --date-format"
        )
    problems.add("bad_date", name, failed.to_numpy())
    return parsed.astype("datetime64[ns]"), present.to_numpy()


def _check_country(values: pd.Series, name: str, problems: Problems, required: bool):
    """Upper-cased codes, the rows whose alias was fixed, and (optional columns) the rows whose code is not a
    country, which the caller blanks instead of quarantining the row."""
    upper = values.str.upper()
    aliased = upper.isin(COUNTRY_ALIASES).fillna(False)
    upper = upper.replace(COUNTRY_ALIASES)
    bad = upper.notna().to_numpy() & ~upper.isin(country_codes()).fillna(False).to_numpy()
    if required:
        problems.add("bad_country", name, bad)
        bad = np.zeros(len(values), dtype=bool)
    return upper, aliased.to_numpy(), bad


def _counts(values: pd.Series, rows: np.ndarray, most: int = 20) -> dict[str, int]:
    """How often each of the ``rows``' values occurs, the most common first."""
    counts = values[rows].astype("string").fillna("").value_counts().head(most)
    return {str(k): int(v) for k, v in counts.items()}


def _check_hs(values: pd.Series, name: str, config: IngestConfig, problems: Problems) -> tuple[pd.Series, np.ndarray]:
    digits = values.str.replace(r"[\s.\-]", "", regex=True)
    numeric = digits.str.fullmatch(r"\d+").fillna(False).to_numpy()
    length = digits.str.len().fillna(0).astype(np.int64).to_numpy()
    restore = np.zeros(len(values), dtype=bool)
    if config.restore_hs_leading_zero != "never":
        counts = np.bincount(length[numeric], minlength=12)
        for short in (5, 7, 9):
            # 5 digits cannot be a code; 7 and 9 are restored when the file's own scheme is one digit longer.
            wanted = (
                short == 5
                or config.restore_hs_leading_zero == "always"
                or counts[short + 1] > counts[short]
            )
            if wanted:
                restore |= numeric & (length == short)
    # a spreadsheet drops a leading zero; a code that still starts with one lost nothing
    restore &= ~digits.str.startswith("0").fillna(False).to_numpy()
    digits = digits.mask(restore, "0" + digits)
    length = np.where(restore, length + 1, length)
    valid = numeric & (length >= 6) & (length <= 10) & ~digits.str.startswith("00").fillna(False).to_numpy()
    problems.add("bad_hs_code", name, digits.notna().to_numpy() & ~valid)
    return digits, restore


def _check_ranges(clean: pd.DataFrame, kind: str, problems: Problems) -> None:
    if kind == "invoices":
        q = clean["quantity"].to_numpy() if "quantity" in clean else np.full(len(clean), np.nan)
        w = clean["gross_weight_kg"].to_numpy() if "gross_weight_kg" in clean else np.full(len(clean), np.nan)
        net = clean["net_weight_kg"].to_numpy() if "net_weight_kg" in clean else np.full(len(clean), np.nan)
        problems.add("nonpositive_quantity", "quantity", q <= 0)
        problems.add("nonpositive_weight", "gross_weight_kg", w <= 0)
        problems.add("nonpositive_weight", "net_weight_kg", net <= 0)
        problems.add("no_quantity_or_weight", "quantity", np.isnan(q) & np.isnan(w) & np.isnan(net))
        problems.add("negative_value", "value", clean["value"].to_numpy() < 0)
    else:
        problems.add("nonpositive_amount", "amount", clean["amount"].to_numpy() <= 0)


def _check_constants(mapping: Mapping, problems: Problems, n: int) -> None:
    """A bad constant would quarantine every row; it is the mapping's mistake, so say so once."""
    for code, column, mask in problems.items:
        if column in mapping.constants and n and mask.all():
            raise MappingError(
                f"mapping '{mapping.name}': constant {column}={mapping.constants[column]!r}: {REJECT_REASONS[code]}"
            )

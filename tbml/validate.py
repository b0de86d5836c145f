"""Row-level checks: parse every canonical column and decide, per row, accept or quarantine with reasons.

Everything is vectorised over columns; text is built only for the rows that fail. A problem that hits
(nearly) every row is a file-level mistake, such as a wrong date format, and raises one error instead of
quarantining the file.

Cells arrive as the text the file holds. What counts as missing is decided here, per column: "NULL",
"N/A" or "nan" are missing values, but "NA" in a country column is Namibia. Codes, ids, numbers and dates
are Unicode-normalised first (NFKC, every script's decimal digits as ASCII digits, invisible format
characters removed), so that a full-width or Arabic-Indic HS code means the same as the ASCII one.
"""

from __future__ import annotations

import unicodedata
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
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_NON_FINITE_TEXT = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
# What spreadsheets and databases write for "no value" (pandas' and pyarrow's defaults, lower-cased): a missing
# value in every column but a country code, where "NA" is Namibia.
_MISSING_TOKENS = frozenset({"#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan",
                             "<na>", "n/a", "na", "nan", "none", "null"})
_MISSING_COUNTRY_TOKENS = _MISSING_TOKENS - {"na"}
# Columns whose text is normalised before it is read: codes, ids, numbers and dates (not free text).
_FOLDED_KINDS = frozenset({"id", "date", "country", "hs", "number", "currency", "unit", "side", "channel"})
# Magnitudes no trade value, quantity or weight reaches: beyond them a number is a sentinel or a misread,
# and arithmetic on it (unit prices, logs, sums) overflows to infinity or underflows to zero.
_LARGEST = 1e18
_SMALLEST = 1e-9
# The days a pandas timestamp (nanoseconds since 1970 in 64 bits) can hold.
_FIRST_DAY, _LAST_DAY = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
# How a number column's text shows its decimal mark: unambiguous writings of each, and "1,500", which is
# a decimal comma or a thousands separator depending on the file's convention.
_COMMA_DECIMAL = r"[+-]?(?:\d*,\d{1,2}|\d*,\d{4,}|\d{1,3}(?:\.\d{3})+,\d*|\d+(?:\.\d{3}){2,})"
_DOT_DECIMAL = r"[+-]?(?:\d*\.\d{1,2}|\d*\.\d{4,}|\d{1,3}(?:,\d{3})+\.\d*|\d+(?:,\d{3}){2,}|\d*\.\d+[eE][+-]?\d+)"
_COMMA_GROUPS = r"[+-]?\d{1,3},\d{3}"
_SIDES = {
    "export": "export", "exports": "export", "x": "export", "e": "export", "ex": "export", "exp": "export",
    "import": "import", "imports": "import", "m": "import", "i": "import", "im": "import", "imp": "import",
}


@dataclass
class Problems:
    """Reason masks collected column by column; turned into per-row reasons at the end."""

    n_rows: int
    # (reason code, column, rows, what the detail says instead of the reason's general text, if anything)
    items: list[tuple[str, str, np.ndarray, str | None]] = field(default_factory=list)
    # Rows whose fields could not be split: their only reason is malformed_row, not the empty cells.
    malformed: np.ndarray | None = None

    def add(self, code: str, column: str, mask, why: str | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if self.malformed is not None and code != "malformed_row":
            mask = mask & ~self.malformed
        if mask.any():
            self.items.append((code, column, mask, why))

    def rejected(self) -> np.ndarray:
        out = np.zeros(self.n_rows, dtype=bool)
        for _, _, mask, _ in self.items:
            out |= mask
        return out

    def describe(self, mapped: pd.DataFrame, rows: np.ndarray, mapping: Mapping) -> pd.DataFrame:
        """``reason``, ``reasons`` and ``detail`` for the positions ``rows`` (which must be rejected).

        ``mapped`` holds the canonical columns with their values as read; the detail names the canonical
        column, the source column it came from when they differ, and the value.
        """
        reasons = pd.Series("", index=rows, dtype=object)
        details = pd.Series("", index=rows, dtype=object)
        for code, column, mask, why in sorted(self.items, key=lambda item: _REASON_ORDER[item[0]]):
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
                text = label + "=" + shown.map(repr) + ": " + (why or REJECT_REASONS[code])
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
    decimal: str = "."  # the decimal mark numbers were read with (the mapping's, or the file's own)
    notes: list[str] = field(default_factory=list)  # what the console and manifest say about how the file was read


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
    texts: dict[str, pd.Series] = {}
    folded = np.zeros(n, dtype=bool)
    for col in columns(kind):
        if col.name in mapped.columns and not _typed(mapped[col.name], col.kind):
            texts[col.name], changed = _cell_text(mapped[col.name], col.kind)
            folded |= changed
    repairs["unicode_normalised"] = folded
    numbers = {c.name: texts[c.name] for c in columns(kind) if c.kind == "number" and c.name in texts}
    prefix = "--" if kind == "invoices" else f"--{kind}-"  # the command-line options for this file
    decimal, notes = _decimal_mark(numbers, opts, path, prefix)
    for col in columns(kind):
        if col.name not in mapped.columns:
            continue
        raw = texts.get(col.name, mapped[col.name])
        if col.kind == "number":
            values, present = _parse_number(raw, col.name, decimal, opts.thousands, problems)
            if decimal == "," and opts.decimal is None:
                comma = raw.str.contains(",", regex=False).fillna(False).to_numpy()
                repairs["decimal_comma_read"] = repairs.get("decimal_comma_read", False) | comma
        elif col.kind == "date":
            values, present = _parse_date(raw, col.name, opts, config, problems, path, f"{prefix}date-format")
        else:
            values = raw
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
        clean["is_laundering"] = _labels(mapped["is_laundering"], path, mapping)
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
    return Validated(clean, problems, repairs, unknown_codes, decimal, notes)


def _labels(raw: pd.Series, path, mapping: Mapping) -> pd.Series | np.ndarray:
    """``is_laundering`` as booleans: a plain bool column when every row is labelled, pandas' nullable
    "boolean" with <NA> for the blank rows otherwise (unlabelled: not inspected, never "clean"). A value
    that is neither yes nor no is not guessed: the file is refused, naming the row and the setting that
    translates a file's own codes (a mapping's ``values:``)."""
    if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
        return raw.to_numpy(dtype=bool)
    flag = _text(raw).str.lower()
    flag = flag.mask(flag.isin(_MISSING_TOKENS))
    known = flag.isin(_TRUE | _FALSE).fillna(False) | flag.isna()
    if not known.all():
        at = int(np.flatnonzero(~known.to_numpy())[0])
        source = "+".join(mapping.columns.get("is_laundering", ("is_laundering",)))
        raise InputFileError(
            f"{path}: row {at + 1}, column {source} (is_laundering): {str(raw.iloc[at])[:40]!r} is not a label tbml "
            f"reads (true/false, yes/no, 1/0, or blank for not inspected); translate the file's own codes in a "
            f"mapping's values: section")
    labelled = flag.isin(_TRUE).fillna(False).to_numpy()
    if flag.isna().any():
        return pd.array(np.where(flag.isna(), None, labelled), dtype="boolean")
    return labelled


def _text(raw: pd.Series) -> pd.Series:
    text = raw.astype("string").str.strip()
    return text.mask(text == "")


def _typed(raw: pd.Series, kind: str) -> bool:
    """True for a Parquet number or date column that already holds numbers or timestamps rather than text."""
    if kind == "number":
        return pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
    return kind == "date" and pd.api.types.is_datetime64_any_dtype(raw)


def _cell_text(raw: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """The cells of a column of ``kind`` as stripped text, missing where empty or a missing-value token, and
    the rows whose text Unicode normalisation changed (codes, ids, numbers and dates only)."""
    text = raw.astype("string")
    changed = np.zeros(len(text), dtype=bool)
    if kind in _FOLDED_KINDS:
        odd = text.str.contains(r"[^\x20-\x7e]", regex=True).fillna(False).to_numpy()
        if odd.any():
            before = text[odd]
            after = before.map(_fold, na_action="ignore").astype("string")
            changed[np.flatnonzero(odd)] = (after != before).fillna(False).to_numpy()
            text = text.copy()
            text[odd] = after
    text = text.str.strip()
    tokens = _MISSING_COUNTRY_TOKENS if kind == "country" else _MISSING_TOKENS
    missing = (text == "") | text.str.lower().isin(tokens)
    return text.mask(missing.fillna(False)), changed


class _Folding(dict):
    """``str.translate`` table built as characters are met: any script's decimal digit to its ASCII digit
    (NFKC leaves Arabic-Indic and Devanagari digits as they are), format and control characters (zero-width
    spaces, direction marks, NUL) to nothing."""

    def __missing__(self, code: int):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Nd":
            value: int | None = ord(str(unicodedata.digit(char)))
        elif category in ("Cf", "Cc") and char not in "\t\n\r":
            value = None
        else:
            value = code
        self[code] = value
        return value


_FOLDING = _Folding()


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).translate(_FOLDING)


def _decimal_mark(numbers: dict[str, pd.Series], opts: ReadOptions, path, prefix: str = "--") -> tuple[str, list[str]]:
    """The decimal mark of the file's number columns, and a note when it was read from the file.

    The mapping's ``read.decimal`` wins; then its thousands separator implies the other mark. Otherwise the
    numbers tell: values such as "12,75" or "1.500,5" say comma, "12.75" or "1,500.5" say dot, and the more
    common writing wins (numbers written the other way are quarantined). "1,500" alone says nothing: in a
    comma-separated file it is a thousands separator (a decimal comma would need quotes there); elsewhere
    tbml refuses to guess between 1.5 and 1500.
    """
    if opts.decimal:
        return opts.decimal, []
    if opts.thousands in (".", ","):
        return ("," if opts.thousands == "." else "."), []
    if not numbers:
        return ".", []
    stacked = pd.concat([t.str.replace(r"\s", "", regex=True) for t in numbers.values()],
                        keys=list(numbers), names=["column", "row"]).dropna()
    comma = stacked.str.fullmatch(_COMMA_DECIMAL)
    dot = stacked.str.fullmatch(_DOT_DECIMAL)
    n_comma, n_dot = int(comma.sum()), int(dot.sum())

    def example(mask: pd.Series) -> str:
        (column, row), value = next(iter(stacked[mask].items()))
        return f"{value!r} (column {column}, row {row + 1})"

    if n_comma > n_dot:
        other = f"; {n_dot:,} written with '.' were quarantined as bad_number" if n_dot else ""
        return ",", [f"numbers were read with ',' as the decimal mark, as the file writes them (e.g. {example(comma)})"
                     f"{other}; if that is wrong, set read.decimal in a mapping or pass {prefix}decimal ."]
    if n_dot > n_comma:
        return ".", []
    if n_comma:
        raise InputFileError(
            f"{path}: numbers use both decimal marks as often, e.g. {example(comma)} and {example(dot)}: "
            f"say which is the decimal mark with read.decimal ('.' or ',') in a mapping, or pass {prefix}decimal")
    groups = stacked.str.fullmatch(_COMMA_GROUPS)
    if not groups.any():
        return ".", []
    if opts.delimiter == ",":
        return ".", [f"{int(groups.sum()):,} numbers such as {example(groups)} were read with ',' as a thousands "
                     "separator (1,500 = 1500); if they are decimal commas, set read.decimal: ',' in a mapping "
                     f"or pass {prefix}decimal ,"]
    raise InputFileError(
        f"{path}: numbers such as {example(groups)} could mean 1.5 (a decimal comma) or 1500 (a thousands "
        "separator), and no other number in the file says which: set read.decimal (',' or '.') in a mapping, "
        f"or pass {prefix}decimal")


def _parse_number(raw: pd.Series, name: str, decimal: str, thousands: str | None, problems: Problems):
    """Numbers of a column (float64, NaN where missing or refused) and the rows where one was written.

    ``raw`` is a column of numbers (Parquet) or the column's text from ``_cell_text``."""
    if _typed(raw, "number"):
        with np.errstate(all="ignore"):
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values)
        return _in_range(values, name, problems)[0], present
    present = raw.notna().to_numpy()
    cleaned = raw.str.replace(r"\s", "", regex=True)
    if thousands:
        cleaned = cleaned.str.replace(thousands, "", regex=False)
    else:
        # well-formed digit groups ("9,000.50" with a "." decimal mark, "9.000,50" with ",") are unambiguous
        group = "," if decimal == "." else "."
        grouped = cleaned.str.fullmatch(rf"[+-]?\d{{1,3}}(\{group}\d{{3}})+(\{decimal}\d*)?").fillna(False)
        cleaned = cleaned.mask(grouped, cleaned.str.replace(group, "", regex=False))
    other_mark = "." if decimal == "," else ","
    wrong_mark = cleaned.str.fullmatch(_DOT_DECIMAL if decimal == "," else _COMMA_DECIMAL).fillna(False).to_numpy()
    problems.add("bad_number", name, wrong_mark,
                 f"written with {other_mark!r} as the decimal mark, but the file's numbers use {decimal!r}")
    if decimal != ".":
        cleaned = cleaned.mask(cleaned.str.contains(".", regex=False).fillna(False))  # a dot is not a decimal mark here
        cleaned = cleaned.str.replace(decimal, ".", regex=False)
    with np.errstate(all="ignore"):
        values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    textual = cleaned.str.lower().isin(_NON_FINITE_TEXT).fillna(False).to_numpy()
    # "1e-400" is not zero: it underflowed on the way in
    mantissa = cleaned.str.replace(r"[eE].*$", "", regex=True).str.contains(r"[1-9]").fillna(False).to_numpy()
    values, refused = _in_range(values, name, problems, textual, (values == 0) & mantissa)
    problems.add("bad_number", name, present & np.isnan(values) & ~refused & ~wrong_mark)
    return values, present


def _in_range(values: np.ndarray, name: str, problems: Problems, textual: np.ndarray | None = None,
              underflow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``values`` with NaN where a number is infinite, written as NaN or infinity (``textual``), or beyond
    the magnitudes trade data reaches (``underflow``: parsed as zero from a nonzero text); those rows are
    quarantined as non_finite and returned as the second array."""
    none = np.zeros(len(values), dtype=bool)
    textual = none if textual is None else textual
    underflow = none if underflow is None else underflow
    with np.errstate(all="ignore"):
        magnitude = np.abs(values)
        infinite = np.isinf(values) | textual
        huge = np.isfinite(values) & (magnitude > _LARGEST)
        tiny = (np.isfinite(values) & (magnitude > 0) & (magnitude < _SMALLEST)) | underflow
    problems.add("non_finite", name, infinite)
    problems.add("non_finite", name, huge,
                 f"a number above {_LARGEST:g} in magnitude: a placeholder or a misread, not a trade figure")
    problems.add("non_finite", name, tiny,
                 f"a number below {_SMALLEST:g} in magnitude (but not zero): too small to compute with")
    refused = infinite | huge | tiny
    return np.where(refused, np.nan, values), refused


def _parse_date(raw, name, opts: ReadOptions, config: IngestConfig, problems: Problems, path,
                flag: str = "--date-format") -> pd.Series:
    """Dates of a column (datetime64[ns] at midnight, NaT where missing or refused) and the rows where one
    was written. A date outside what a pandas timestamp holds (a 0001-01-01 or 9999-12-31 placeholder) is
    quarantined as bad_date; most dates not matching the format at all are one file-level error."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        present = parsed.notna()
        parsed = parsed.dt.normalize()
        failed = present & ((parsed < _FIRST_DAY) | (parsed > _LAST_DAY))
    else:
        present = raw.notna()
        fmt = opts.date_format or "ISO8601"
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce", utc=True).dt.tz_localize(None).dt.normalize()
        out_of_range = parsed.notna() & ((parsed < _FIRST_DAY) | (parsed > _LAST_DAY))
        unreadable = present & parsed.isna()
        n_present = int(present.sum())
        if n_present >= 3 and unreadable.sum() > config.date_failure_file_error_share * n_present:
            example = raw[unreadable].iloc[0]
            expected = opts.date_format or "ISO 8601 (YYYY-MM-DD)"
            raise InputFileError(
                f"{path}: column '{name}': {int(unreadable.sum())} of {n_present} dates do not match {expected}, "
                f"e.g. {example!r} in row {int(unreadable.to_numpy().argmax()) + 1}; "
                f"set read.date_format in the mapping (e.g. '%d/%m/%Y') or pass {flag}"
            )
        problems.add("bad_date", name, unreadable.to_numpy())
        failed = out_of_range
    problems.add("bad_date", name, failed.to_numpy(),
                 f"outside the dates tbml can hold ({_FIRST_DAY.date()} to {_LAST_DAY.date()}): a placeholder date?")
    return parsed.mask(failed).astype("datetime64[ns]"), present.to_numpy()


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
    numeric = digits.str.fullmatch(r"[0-9]+").fillna(False).to_numpy()  # \d would pass Arabic-Indic digits
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
    for code, column, mask, _ in problems.items:
        if column in mapping.constants and n and mask.all():
            raise MappingError(
                f"mapping '{mapping.name}': constant {column}={mapping.constants[column]!r}: {REJECT_REASONS[code]}"
            )

"""Column mappings: how a user's file layout becomes tbml's canonical columns.

A mapping YAML (shipped examples: ``tbml/data/mappings``, copied out by ``tbml init``) names, for each canonical column, the source column holding it,
a list of source columns joined into one (a declaration id and its item number), or a constant for a
column the file lacks (the importing country of a national import file). Its ``read`` section says how
to read the file: delimiter, encoding, decimal mark, date format.

Without a mapping, source headers are matched to canonical names case-insensitively, with spaces and
hyphens read as underscores ("Invoice ID" -> invoice_id); a canonical column still missing is looked for
under the common names in ``SYNONYMS`` ("Commodity Code" -> hs_code). ``Mapping.apply`` also says which
source column fed each canonical column, and the run manifest records it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from tbml.defaults import mapping_path
from tbml.errors import InputFileError, MappingError
from tbml.io import KEPT_PREFIX, MALFORMED_TEXT, SOURCE_ROW, delimiter_problem, encoding_problem, read_yaml
from tbml.schema import LABEL_COLUMNS, columns, required_columns

__all__ = ["KEPT_PREFIX", "Mapping", "ReadOptions", "SYNONYMS", "date_format_problem", "read_option_problem"]

# Names trade, customs and payment files commonly use, tried only when the canonical name is absent.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "invoice_id": ("invoice_no", "invoice_number", "invoice", "declaration_id", "declaration_number", "line_id"),
    "date": ("invoice_date", "declaration_date", "transaction_date", "value_date", "shipment_date"),
    "importer_id": ("importer", "importer_name", "buyer", "buyer_id", "consignee", "consignee_id"),
    "exporter_id": ("exporter", "exporter_name", "seller", "seller_id", "shipper", "consignor", "supplier"),
    "exporter_country": ("export_country", "country_of_export", "dispatch_country", "seller_country",
                         "partner_country"),
    "importer_country": ("import_country", "country_of_import", "destination_country", "buyer_country",
                         "reporter_country"),
    "origin_country": ("country_of_origin", "origin"),
    "hs_code": ("hs", "hscode", "hs_6", "commodity_code", "tariff_code", "cn_code", "taric_code", "product_code"),
    "goods_description": ("description", "goods", "product_description", "commodity"),
    "quantity": ("qty", "supplementary_quantity", "quantity_value"),
    "quantity_unit": ("unit", "uom", "qty_unit", "unit_of_measure", "supplementary_unit"),
    "gross_weight_kg": ("gross_weight", "weight_kg", "weight", "gross_mass", "gross_mass_kg"),
    "net_weight_kg": ("net_weight", "net_mass", "net_mass_kg", "net_kg"),
    "invoice_number": ("commercial_invoice", "commercial_invoice_number", "invoice_no_commercial"),
    "value": ("invoice_value", "total_value", "declared_value", "customs_value", "trade_value", "amount_value"),
    "currency": ("currency_code", "invoice_currency", "ccy"),
    "shipment_ref": ("bill_of_lading", "bl_number", "awb", "shipment_id", "transport_document"),
    "declaration_side": ("flow", "trade_flow", "direction"),
    "transfer_id": ("payment_id", "transaction_id", "txn_id", "reference", "wire_id"),
    "payer_id": ("payer", "ordering_customer", "originator", "sender", "debtor"),
    "payer_country": ("ordering_country", "originator_country", "sender_country", "debtor_country"),
    "payee_id": ("payee", "beneficiary", "beneficiary_id", "receiver", "creditor"),
    "payee_country": ("beneficiary_country", "receiver_country", "creditor_country"),
    "amount": ("payment_amount", "transfer_amount", "settled_amount"),
    "invoice_ref": ("invoice_reference", "remittance_info", "payment_reference"),
    "channel": ("payment_channel", "payment_type", "instrument"),
}


@dataclass(frozen=True)
class ReadOptions:
    delimiter: str | None = None  # None: guessed from the header line among , ; tab |
    encoding: str = "utf-8"  # a byte-order mark (UTF-8, UTF-16, UTF-32) overrides it
    decimal: str | None = None  # "." or ","; None: told by the file's numbers (tbml.validate)
    thousands: str | None = None
    date_format: str | None = None  # a strftime pattern; None means ISO 8601
    composite_separator: str = "-"


def read_option_problem(name: str, value) -> str | None:
    """Why ``value`` cannot be the read option ``name`` (a ``ReadOptions`` field), or None when it can."""
    if value is None:
        return None if name in ("delimiter", "decimal", "thousands", "date_format") else "must be given"
    if name == "delimiter":
        return delimiter_problem(value)
    if name == "encoding":
        return encoding_problem(value)
    if name == "decimal":
        return None if value in (".", ",") else "must be '.' or ','"
    if name == "thousands":
        return None if value in (".", ",", " ", "'", "\u00a0") else "must be one of . , ' or a space"
    if name == "composite_separator":
        return None if isinstance(value, str) else "must be text"
    if name == "date_format":
        return date_format_problem(value)
    return "is not a read option"


def date_format_problem(pattern) -> str | None:
    """Why ``pattern`` cannot parse dates (it must be a strftime pattern with at least one directive that
    reads back a date it wrote), or None when it can."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "must be a strftime pattern such as %d/%m/%Y"
    if pattern == "ISO8601":
        return None
    if not re.search(r"%[A-Za-z]", pattern):
        return "has no strftime directive (such as %d, %m or %Y); write e.g. %d/%m/%Y"
    try:
        sample = datetime(2023, 1, 31, 13, 45, 30).strftime(pattern)
        datetime.strptime(sample, pattern)
        pd.to_datetime(pd.Series([sample]), format=pattern)
    except (ValueError, TypeError) as exc:
        return f"is not a strftime pattern dates can be read with ({exc}); write e.g. %d/%m/%Y"
    return None


@dataclass(frozen=True)
class Mapping:
    kind: str
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, object] = field(default_factory=dict)
    read: ReadOptions = field(default_factory=ReadOptions)
    name: str = "identity"
    # per canonical column, what a file's codes mean in tbml's terms (None: the value is missing)
    values: dict[str, dict[str, object]] = field(default_factory=dict)
    # source columns carried untouched to items and alerts, as "src:<name>"
    keep: tuple[str, ...] = ()
    # a regular expression finding the invoice number inside payment references (first group, or the match)
    invoice_ref_pattern: str | None = None

    def columns_used(self) -> list[str]:
        return [source for sources in self.columns.values() for source in sources]

    @classmethod
    def identity(cls, kind: str) -> Mapping:
        columns(kind)  # checks the kind
        return cls(kind=kind)

    @classmethod
    def load(cls, path: str | Path, kind: str | None = None) -> Mapping:
        path = mapping_path(path)
        data = read_yaml(path, MappingError, "mapping")
        if not isinstance(data, dict):
            raise MappingError(f"{path}: expected keys kind, columns, constants, read")
        unknown = set(data) - {"kind", "name", "description", "columns", "constants", "read", "values", "keep",
                               "invoice_ref_pattern"}
        if unknown:
            raise MappingError(f"{path}: unknown key {sorted(unknown)[0]!r}")
        file_kind = data.get("kind", kind)
        if file_kind not in ("invoices", "transfers"):
            raise MappingError(f"{path}: kind must be 'invoices' or 'transfers', got {file_kind!r}")
        if kind is not None and file_kind != kind:
            raise MappingError(f"{path}: is a mapping for {file_kind}, but it was given for {kind}")
        canonical = {c.name for c in columns(file_kind)} | {c.name for c in LABEL_COLUMNS}
        mapped: dict[str, tuple[str, ...]] = {}
        for target, source in (data.get("columns") or {}).items():
            if target not in canonical:
                raise MappingError(f"{path}: columns: {target!r} is not a canonical {file_kind} column")
            sources = (source,) if isinstance(source, str) else tuple(source or ())
            if not sources or not all(isinstance(s, str) and s for s in sources):
                raise MappingError(f"{path}: columns: {target} must name a source column or a list of them")
            mapped[target] = sources
        constants = dict(data.get("constants") or {})
        for target in constants:
            if target not in canonical:
                raise MappingError(f"{path}: constants: {target!r} is not a canonical {file_kind} column")
            if target in mapped:
                raise MappingError(f"{path}: {target!r} is both mapped to a column and set as a constant")
        read_keys = set(ReadOptions.__dataclass_fields__)
        read = data.get("read") or {}
        if not isinstance(read, dict):
            raise MappingError(f"{path}: read must map options ({', '.join(sorted(read_keys))}) to values")
        if set(read) - read_keys:
            raise MappingError(f"{path}: read: unknown key {sorted(set(read) - read_keys)[0]!r}")
        for key, value in read.items():
            problem = read_option_problem(key, value)
            if problem:
                raise MappingError(f"{path}: read.{key}: {value!r} {problem}")
        if read.get("thousands") is not None and read.get("thousands") == read.get("decimal"):
            raise MappingError(f"{path}: read.thousands and read.decimal are both {read['decimal']!r}")
        values = {}
        for target, table in (data.get("values") or {}).items():
            if target not in canonical:
                raise MappingError(f"{path}: values: {target!r} is not a canonical {file_kind} column")
            if not isinstance(table, dict):
                raise MappingError(f"{path}: values: {target} must map each code to its meaning (CODE: meaning)")
            values[target] = {str(code).strip().upper(): meaning for code, meaning in table.items()}
        keep = data.get("keep") or []
        if not isinstance(keep, list) or not all(isinstance(k, str) and k for k in keep):
            raise MappingError(f"{path}: keep must be a list of source column names")
        pattern = data.get("invoice_ref_pattern")
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise MappingError(f"{path}: invoice_ref_pattern is not a valid regular expression: {exc}") from None
            if file_kind != "transfers":
                raise MappingError(f"{path}: invoice_ref_pattern belongs in a transfers mapping")
        return cls(file_kind, mapped, constants, ReadOptions(**read), data.get("name", path.stem), values,
                   tuple(keep), None if pattern is None else str(pattern))

    def apply(self, raw: pd.DataFrame, path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
        """Canonical columns (those the file or the constants provide) plus ``source_row``, and for each
        canonical column the source column(s) it came from."""
        header = [c for c in raw.columns if c not in (SOURCE_ROW, MALFORMED_TEXT)]
        by_normal = {_normal(c): c for c in header}
        renamed = raw.attrs.get("renamed", {})  # a column named like tbml's own, read as src:<name>

        def find(source: str) -> str | None:
            source = renamed.get(source, source)
            return source if source in raw.columns else by_normal.get(_normal(source))

        taken = set(self.columns_used())
        out = pd.DataFrame({SOURCE_ROW: raw[SOURCE_ROW]})
        matched: dict[str, str] = {}
        for col in (*columns(self.kind), *LABEL_COLUMNS):
            name = col.name
            if name in self.constants:
                out[name] = pd.Series(str(self.constants[name]), index=raw.index, dtype="string")
                continue
            sources = self.columns.get(name)
            if sources is None:
                found = name if name in raw.columns else by_normal.get(_normal(name))
                if found is None and self.name == "identity":
                    found = next((by_normal[s] for s in SYNONYMS.get(name, ()) if s in by_normal
                                  and by_normal[s] not in taken and _normal(by_normal[s]) not in _CANONICAL), None)
                if found is not None:
                    out[name] = raw[found]
                    taken.add(found)
                    matched[name] = found
                continue
            resolved = []
            for source in sources:
                found = find(source)
                if found is None:
                    raise InputFileError(
                        f"{path}: mapping '{self.name}' maps {name} to column {source!r}, "
                        f"which the file does not have (it has: {', '.join(header)})"
                    )
                resolved.append(found)
            matched[name] = "+".join(resolved)
            if len(resolved) == 1:
                out[name] = raw[resolved[0]]
            else:
                parts = [raw[c].astype("string").str.strip() for c in resolved]
                joined = parts[0]
                for part in parts[1:]:
                    joined = joined + self.read.composite_separator + part
                out[name] = joined
        for name, table in self.values.items():
            if name in out.columns:
                text = out[name].astype("string").str.strip()
                meaning = text.str.upper().map(table)
                known = text.str.upper().isin(list(table)).fillna(False)
                out[name] = text.mask(known, meaning.astype("string"))
        for source in self.keep:
            found = find(source)
            if found is None:
                raise InputFileError(f"{path}: mapping '{self.name}' keeps column {source!r}, which the file does "
                                     f"not have (it has: {', '.join(header)})")
            out[KEPT_PREFIX + source] = raw[found]
        if self.invoice_ref_pattern and "invoice_ref" in out.columns:
            text = out["invoice_ref"].astype("string")
            found_ref = text.str.extract(f"({self.invoice_ref_pattern})", flags=re.IGNORECASE)
            # the pattern's own first group when it has one, else the whole match
            cited = found_ref[1] if found_ref.shape[1] > 1 else found_ref[0]
            out[KEPT_PREFIX + "invoice_ref"] = text
            out["invoice_ref"] = cited
        missing = [c for c in required_columns(self.kind) if c not in out.columns]
        if missing:
            hint = "" if self.name != "identity" else "; map it with --mapping (tbml init writes example mappings)"
            raise InputFileError(
                f"{path}: required column '{missing[0]}' is missing (file has: {', '.join(header)}){hint}"
            )
        if MALFORMED_TEXT in raw.columns:
            out[MALFORMED_TEXT] = raw[MALFORMED_TEXT]
        return out, matched


_CANONICAL = {c.name for kind in ("invoices", "transfers") for c in columns(kind)} | {c.name for c in LABEL_COLUMNS}


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())

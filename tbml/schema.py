"""The data contract: canonical columns for invoices and transfers, and the reasons a row is quarantined.

Column names here are the ones every later stage uses. Users map their own names onto them with a
mapping YAML (see ``tbml.mapping``). ``kind`` says how a column is parsed and checked in
``tbml.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pycountry


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | date | country | hs | text | number | currency | unit | side | channel | label
    required: bool = False
    doc: str = ""


INVOICE_COLUMNS: tuple[Column, ...] = (
    Column("invoice_id", "id", True, "line item id, unique within a file"),
    Column("invoice_number", "id", False, "the commercial invoice number payments cite, when not invoice_id "
                                          "(a customs declaration's lines share one)"),
    Column("date", "date", True, "invoice or declaration date"),
    Column("importer_id", "id", True, "importing entity"),
    Column("exporter_id", "id", False, "exporting entity; customs import files often lack it"),
    Column("exporter_country", "country", True, "ISO 3166-1 alpha-2"),
    Column("importer_country", "country", True, "ISO 3166-1 alpha-2"),
    Column("origin_country", "country", False, "country of origin of the goods"),
    Column("hs_code", "hs", True, "HS / national tariff code, 6 to 10 digits"),
    Column("goods_description", "text", False),
    Column("quantity", "number", False, "> 0; one of quantity or gross_weight_kg is required"),
    Column("quantity_unit", "unit", False, "UNECE Rec 20 code or a common alias"),
    Column("gross_weight_kg", "number", False, "> 0; one of quantity or gross_weight_kg is required"),
    Column("net_weight_kg", "number", False, "> 0; used where gross weight is absent"),
    Column("value", "number", True, ">= 0, in `currency`"),
    Column("currency", "currency", True, "ISO 4217"),
    Column("shipment_ref", "id", False, "bill of lading / shipment id"),
    Column("declaration_side", "side", False, "export or import"),
    Column("payment_terms", "text", False),
    Column("transport_mode", "text", False),
    Column("port_of_loading", "text", False),
    Column("port_of_discharge", "text", False),
    Column("declarant_id", "id", False, "who lodged the declaration (customs broker or the trader itself)"),
    Column("customs_office", "id", False, "the customs office of the declaration"),
)

TRANSFER_COLUMNS: tuple[Column, ...] = (
    Column("transfer_id", "id", True, "unique within a file"),
    Column("date", "date", True),
    Column("payer_id", "id", True),
    Column("payer_country", "country", True),
    Column("payee_id", "id", True),
    Column("payee_country", "country", True),
    Column("amount", "number", True, "> 0, in `currency`"),
    Column("currency", "currency", True, "ISO 4217"),
    Column("invoice_ref", "id", False, "the invoice it pays, when known"),
    Column("channel", "channel", False, "wire, lc, cash, exchange_house, ..."),
)

# Labels travel with synthetic data, inspection results and investigator feedback; they are carried through,
# never required. A blank is_laundering is unlabelled (not inspected), never "clean".
LABEL_COLUMNS: tuple[Column, ...] = (
    Column("is_laundering", "label"),
    Column("typology", "label"),
)

# The ten typologies of the data contract: what `typology` labels hold and what tbml suspects.
TYPOLOGIES: tuple[str, ...] = (
    "over_invoicing",
    "under_invoicing",
    "multiple_invoicing",
    "over_under_shipment",
    "phantom_shipment",
    "misdescribed_goods",
    "third_party_payment",
    "structuring",
    "circular_trade",
    "unrelated_goods",
)

SCHEMAS: dict[str, tuple[Column, ...]] = {"invoices": INVOICE_COLUMNS, "transfers": TRANSFER_COLUMNS}
ID_COLUMN = {"invoices": "invoice_id", "transfers": "transfer_id"}

# Why a row was quarantined. Codes are stable and machine-readable; the order is the order of precedence
# when a row has several problems (the first is reported as `reason`, all of them in `reasons`).
REJECT_REASONS: dict[str, str] = {
    "malformed_row": "the CSV row has the wrong number of fields",
    "missing_field": "a required field is empty",
    "bad_number": "a number could not be parsed",
    "non_finite": "a number is infinite, or beyond the magnitudes trade data reaches",
    "bad_date": "a date could not be parsed",
    "bad_country": "not an ISO 3166-1 alpha-2 country code",
    "unknown_currency": "not an ISO 4217 currency code",
    "bad_hs_code": "HS code is not 6 to 10 digits",
    "no_quantity_or_weight": "neither quantity nor gross weight is given",
    "nonpositive_quantity": "quantity is zero or negative",
    "nonpositive_weight": "gross weight is zero or negative",
    "negative_value": "invoice value is negative",
    "nonpositive_amount": "transfer amount is zero or negative",
    "bad_declaration_side": "declaration side is neither export nor import",
    "duplicate_id": "the id appeared earlier in the file",
    "no_fx_rate": "no exchange rate for this currency at this date; supply one with ingest.fx_rates in a --config file",
}

# Payment channels tbml reads (after lower-casing, spaces and hyphens as underscores); a mapping's
# `values:` section translates a bank's own codes into these. Others are counted and said, never dropped.
KNOWN_CHANNELS = frozenset({
    "wire", "swift", "sepa", "ach", "lc", "letter_of_credit", "documentary_collection", "open_account",
    "cheque", "check", "card", "direct_debit", "internal_transfer", "cash", "exchange_house",
    "money_transfer", "hawala", "crypto",
})

# Codes that are not a country, or that trade files write for one: fixed with a count, never silently.
COUNTRY_ALIASES: dict[str, str] = {"UK": "GB", "EL": "GR"}

# ISO 4217 codes that are not money a trader invoices in (precious metals, testing, bond-market units).
_NON_TRADE_CURRENCIES = {"XAU", "XAG", "XPT", "XPD", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA"}


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, plus XK (Kosovo), which customs and banks use though ISO has not assigned it."""
    return frozenset(c.alpha_2 for c in pycountry.countries) | {"XK"}


@cache
def currency_codes() -> frozenset[str]:
    """Active ISO 4217 currency codes that can denominate an invoice or a payment."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NON_TRADE_CURRENCIES


def columns(kind: str) -> tuple[Column, ...]:
    """The canonical columns of ``kind`` ('invoices' or 'transfers')."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"unknown table kind {kind!r}; expected one of {sorted(SCHEMAS)}") from None


def required_columns(kind: str) -> list[str]:
    return [c.name for c in columns(kind) if c.required]

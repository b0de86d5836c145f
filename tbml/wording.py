"""Words and figures for what an investigator reads: one number format, unit names, the isolation forest's
features and the typologies in plain words, and the glossary the README and the HTML report show.

    number(0.000412) -> "0.000412"    number(41234.6) -> "41,235"    ratio(890.2) -> "890x"
    price_unit("USD", "NAR") -> "USD per piece"    price_unit("USD", "XYZ") -> "USD per unit written 'XYZ'"

Machine columns (``rules_hit``, ``suspected_typology``, ``driver``, the ``*_fence`` features) keep their
codes; only sentences use these words. Plain Python only, so the CLI may import it without loading numpy.
"""

from __future__ import annotations

import math

SIGNIFICANT_DIGITS = 4


def number(x, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``x`` with at least ``digits`` significant digits at any magnitude and no exponent: whole numbers
    with thousands separators from 1,000 up (every digit kept), else rounded to ``digits`` significant
    digits without trailing zeros: 1,234,568 / 412.3 / 4.12 / 0.0004123. "n/a" for a missing value."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    rounded = float(f"{x:.{digits}g}")  # round first: 999.96 becomes 1000, written as a whole number
    if abs(rounded) >= 10 ** (digits - 1):
        text = f"{round(x):,}"
        return "0" if text == "-0" else text
    if rounded == 0:
        return "0"
    decimals = digits - 1 - math.floor(math.log10(abs(rounded)))
    text = f"{rounded:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def ratio(x, digits: int = 3) -> str:
    """A multiple, to three significant digits unless told: "8.13x", "890x", "0.0123x", "1,234x"."""
    text = number(x, digits)
    return text if text == "n/a" else text + "x"


def percent(share) -> str:
    """A share in [0, 1] as a percentage to two significant digits: 0.00699 -> "0.7%", 0.123 -> "12%"."""
    text = number(100 * float(share), 2)
    return text if text == "n/a" else text + "%"


# ---- units ---------------------------------------------------------------------------------------------

# canonical unit code (tbml.units.CANONICAL_UNITS): (one, several)
UNIT_NAMES: dict[str, tuple[str, str]] = {
    "KGM": ("kg", "kg"),
    "LTR": ("litre", "litres"),
    "MTK": ("m²", "m²"),
    "MTR": ("metre", "metres"),
    "NAR": ("piece", "pieces"),
    "NPR": ("pair", "pairs"),
    "SET": ("set", "sets"),
    "KWH": ("kWh", "kWh"),
}


def unit_name(code, plural: bool = False) -> str:
    """A unit code in words: "piece" / "pieces"; a code tbml does not know is quoted as written:
    "unit written 'XYZ'"; "" for no unit."""
    if code is None or (isinstance(code, float) and math.isnan(code)) or str(code).strip() in ("", "<NA>"):
        return ""
    code = str(code).strip()
    if code in UNIT_NAMES:
        return UNIT_NAMES[code][1 if plural else 0]
    return ("units" if plural else "unit") + f" written '{code}'"


def per_unit(code) -> str:
    """ "per piece", "per kg", "per unit written 'XYZ'"; "" for no unit."""
    name = unit_name(code)
    return f"per {name}" if name else ""


def price_unit(currency: str, code) -> str:
    """What a unit price is measured in: "USD per piece"; just the currency when there is no unit."""
    per = per_unit(code)
    return f"{currency} {per}" if per else currency


# ---- typologies ----------------------------------------------------------------------------------------

TYPOLOGY_NAMES: dict[str, str] = {
    "over_invoicing": "over-invoicing",
    "under_invoicing": "under-invoicing",
    "multiple_invoicing": "multiple invoicing",
    "over_under_shipment": "over- or under-shipment",
    "phantom_shipment": "phantom shipment",
    "misdescribed_goods": "misdescribed goods",
    "third_party_payment": "third-party payment",
    "structuring": "structuring",
    "circular_trade": "circular (carousel) trade",
    "unrelated_goods": "unrelated goods lines",
    "unusual_profile": "unusual profile",
    "learned_pattern": "like earlier laundering cases in the labels",
    "exploration": "explored (little evidence; reviewing it teaches the model)",
    "misdeclaration": "misdeclaration",
}


def typology_name(code) -> str:
    """A typology code in words ("over_invoicing" -> "over-invoicing"); an unknown code with spaces."""
    code = "" if code is None else str(code)
    return TYPOLOGY_NAMES.get(code, code.replace("_", " "))


def rule_name(code) -> str:
    """A red-flag rule's code in words, for people: "paid_more_than_once" -> "paid more than once"."""
    return str(code or "").replace("_", " ")


# ---- the isolation forest's features -------------------------------------------------------------------

def _fence(what: str, scale: str):
    def say(value, typical, currency):
        if value > 0:
            return f"{what} {number(value, 2)} IQRs above Q3 of its peers ({scale})"
        if value < 0:
            return f"{what} {number(-value, 2)} IQRs below Q1 of its peers ({scale})"
        return f"{what} inside the middle half of its peers"
    return say


def _count(text: str):
    def say(value, typical, currency):
        return f"{text.format(n=number(value))} (typically {number(typical)})"
    return say


def _flag(text: str):
    def say(value, typical, currency):
        return text if value >= 0.5 else f"not {text}"
    return say


def _days(value) -> str:
    return f"{number(abs(value), 3)} days {'after' if value >= 0 else 'before'}"


def _lag(value, typical, currency):
    return f"first payment {_days(value)} the invoice date (typically {_days(typical)})"


def _value(value, typical, currency):
    return (f"invoice value {number(math.expm1(value))} {currency} "
            f"(typically {number(math.expm1(typical))} {currency})")


def _paid(value, typical, currency):
    return f"paid {number(math.exp(value), 3)} times the invoice value (typically {number(math.exp(typical), 3)})"


def _share(text: str):
    def say(value, typical, currency):
        return f"{percent(value)} {text} (typically {percent(typical)})"
    return say


def _volume(value, typical, currency):
    return (f"the importer's trade in this month is {number(math.exp(value), 3)} times its usual month "
            f"(typically {number(math.exp(typical), 3)})")


def _ring(value, typical, currency):
    return f"the goods went round a ring of {number(value)} traders" if value >= 2 else "not part of a ring of traders"


# feature name (tbml.config.ForestConfig.features) -> words with the line's figure and the typical one
FOREST_FEATURES = {
    "unit_price_fence": _fence("unit price", "on log prices"),
    "value_per_kg_fence": _fence("value per kg", "on log prices"),
    "kg_per_unit_fence": _fence("weight per unit", "on log weights"),
    "log_value": _value,
    "log_paid_ratio": _paid,
    "n_payments": _count("{n} payments"),
    "n_full_payments": _count("{n} payments each of at least 90% of the invoice value"),
    "first_payment_lag_days": _lag,
    "third_party_payer": _flag("paid by someone other than the importer"),
    "payer_outside_corridor": _flag("paid from a country outside the trade corridor"),
    "cash_like": _flag("paid in cash or through an exchange house"),
    "high_risk_country": _flag("a payment involves a high-risk jurisdiction"),
    "split_payments": _count("settled in {n} payments under the reporting threshold"),
    "repeat_same_goods": _count("the same goods invoiced {n} more time(s) between the same traders"),
    "shipment_invoice_count": _count("{n} other invoice(s) for the same goods on its shipment"),
    "chapter_prior_share": _share("of the trader's earlier lines in this HS chapter"),
    "new_relationship": _flag("first trade between this importer and exporter"),
    "cycle_length": _ring,
    "round_trip": _flag("goods shipped back into their country of origin"),
    "importer_volume_change": _volume,
    "importer_deviation_share": _share("of the importer's lines priced beyond the fences"),
}


def feature_phrase(name: str, value: float, typical: float, currency: str = "USD") -> str:
    """One isolation-forest feature of a line in words, with the line's figure and the typical one:
    ("log_paid_ratio", 0.833, 0) -> "paid 2.3 times the invoice value (typically 1)". A feature tbml has
    no words for (a user's own column) is named as it is, with its figures."""
    say = FOREST_FEATURES.get(name)
    if say is None or not (math.isfinite(value) and math.isfinite(typical)):
        return f"{name.replace('_', ' ')} {number(value)} (typically {number(typical)})"
    return say(float(value), float(typical), currency)


# ---- the glossary --------------------------------------------------------------------------------------

GLOSSARY: list[tuple[str, str]] = [
    ("risk", "0 to 100: how strongly the evidence on an item points at laundering. Each piece of evidence "
             "(a price beyond its fence, the money beyond the fence, an unusual profile, each red flag) counts "
             "as independent evidence, so more evidence only raises it; evidence found on more than 5% of the "
             "items counts for less. By default the alerts are the items at 30 or more, at most 5% of the file; "
             "with a budget, the riskiest N."),
    ("exploration", "Alerts chosen not for their risk but to learn from: the riskiest items of goods the other "
                    "alerts leave out or, with a model trained on labels, the items it is least sure of or has "
                    "seen nothing like. Reviewing them gives labels that do not only confirm the model."),
    ("learned from labels", "With a model trained on inspection results or investigators' decisions, part of "
                            "the risk is the probability learned from those labels; the reason quotes what it "
                            "learned from, e.g. how many earlier labelled lines of the same declarant were "
                            "laundering."),
    ("peer group", "The lines a price is compared with: the same goods (HS6, or HS4 or HS2 when too few), the "
                   "same unit and declaration side, and where it prices differently the same corridor and quarter. "
                   "A line is never its own peer. The reason names the group, e.g. \"HS6 610910 to US\"."),
    ("median, Q1, Q3", "Of the peers' prices: the middle one, and the prices a quarter and three quarters of the "
                       "way up. Half of the peers lie between Q1 and Q3 (their middle half)."),
    ("IQR on log prices", "The spread of the middle half, measured on the logarithm of price: "
                          "IQR = ln(Q3) - ln(Q1) = ln(Q3 / Q1), at least 0.05 (about 5%) by default. Log prices "
                          "make \"twice the price\" and \"half the price\" equally far. A price d IQRs above "
                          "Q3 is Q3 x exp(d x IQR); d IQRs below Q1 is Q1 / exp(d x IQR)."),
    ("fence", "The prices beyond which a line is an outlier: upper fence = Q3 x exp(1.5 x IQR), lower fence "
              "= Q1 / exp(1.5 x IQR) (Tukey's fences on log prices; the skew-adjusted ones when so configured). "
              "\"5.5x the upper fence\" is the price divided by the upper fence price; \"the lower fence is "
              "3x the price\" the lower fence divided by the price."),
    ("value beyond the fence", "(price - fence price) x quantity (or kg): the part of the invoice value beyond "
                               "the fence, a deliberately low estimate of the money moved."),
    ("mirror gap", "An import declaration's value against the exporting country's declaration of the same "
                   "shipment, after adding freight and insurance to the export value; compared with the gaps "
                   "of other shipments of the same goods."),
    ("third-party payment", "A payment for the goods made by someone who is neither the importer nor the "
                            "exporter, or received by someone other than the exporter; stronger when that party "
                            "is in a country outside the trade corridor."),
    ("unusual profile", "The isolation forest, a method that finds lines unlike the others across many features "
                        "at once (prices, payments, the trader's history), put the line among the 5% strangest "
                        "of the lines it learned from; the reason names the features furthest from typical, "
                        "with the line's figure and the typical one."),
    ("red flag", "One of the FATF / Egmont indicators of trade-based money laundering that the data can show, "
                 "each with a severity (high, medium, low); the rules_hit column lists them by code."),
    ("typologies", "over- and under-invoicing (price far from peers), multiple invoicing (one shipment invoiced "
                   "or paid more than once), over- or under-shipment (quantity that does not fit the weight or "
                   "value), phantom shipment (payment with no shipment), misdescribed goods (HS code that does "
                   "not fit the price or the trader), third-party payment, structuring (payments split under "
                   "the reporting threshold), circular (carousel) trade (goods round a ring of traders), "
                   "unrelated goods lines (a trader suddenly in goods far from its usual ones)."),
]

"""Quantity units to a small canonical set of UNECE Recommendation 20 codes.

Units of one dimension convert to one canonical code (grams, tonnes, pounds -> KGM), so unit prices of
lines declared in different units of the same dimension compare. Units of different dimensions never
compare: pieces (NAR), pairs (NPR) and sets (SET) stay apart. A unit we do not recognise is kept as
written (upper-cased) with status ``unknown``: such a line is compared only with lines that wrote the same
unit, and its value per kg still works.

Conversion factors are the definitions in UNECE Rec 20 Annex II/III (rev. 17).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# canonical code: the dimension it measures
CANONICAL_UNITS: dict[str, str] = {
    "KGM": "mass",
    "LTR": "volume",
    "MTK": "area",
    "MTR": "length",
    "NAR": "count",
    "NPR": "count of pairs",
    "SET": "count of sets",
    "KWH": "energy",
}

# Rec 20 code -> (canonical code, factor to multiply the quantity by)
_CONVERSIONS: dict[str, tuple[str, float]] = {
    "KGM": ("KGM", 1.0),
    "GRM": ("KGM", 1e-3),
    "MGM": ("KGM", 1e-6),
    "TNE": ("KGM", 1e3),
    "DTN": ("KGM", 100.0),  # decitonne / quintal
    "LBR": ("KGM", 0.45359237),
    "ONZ": ("KGM", 0.028349523125),
    "APZ": ("KGM", 0.0311034768),  # troy ounce (gold, silver)
    "CTM": ("KGM", 2e-4),  # metric carat (diamonds, gems)
    "LTR": ("LTR", 1.0),
    "MLT": ("LTR", 1e-3),
    "HLT": ("LTR", 100.0),
    "MTQ": ("LTR", 1e3),
    "CMQ": ("LTR", 1e-3),
    "GLL": ("LTR", 3.785411784),  # US gallon
    "BLL": ("LTR", 158.987294928),  # US petroleum barrel
    "MTK": ("MTK", 1.0),
    "CMK": ("MTK", 1e-4),
    "FTK": ("MTK", 0.09290304),
    "MTR": ("MTR", 1.0),
    "CMT": ("MTR", 1e-2),
    "MMT": ("MTR", 1e-3),
    "KMT": ("MTR", 1e3),
    "FOT": ("MTR", 0.3048),
    "YRD": ("MTR", 0.9144),
    "NAR": ("NAR", 1.0),
    "C62": ("NAR", 1.0),
    "H87": ("NAR", 1.0),  # piece
    "DZN": ("NAR", 12.0),
    "GRO": ("NAR", 144.0),
    "MIL": ("NAR", 1e3),  # thousand pieces
    "NPR": ("NPR", 1.0),
    "PR": ("NPR", 1.0),
    "DPR": ("NPR", 12.0),  # dozen pairs
    "SET": ("SET", 1.0),
    "KWH": ("KWH", 1.0),
    "MWH": ("KWH", 1e3),
}

# Spellings found in real trade and customs files, mapped to a Rec 20 code. "MT" is the trade press's
# metric tonne, not metre; customs files write metres as "M".
_ALIASES: dict[str, str] = {
    "KG": "KGM", "KGS": "KGM", "KILO": "KGM", "KILOS": "KGM", "KILOGRAM": "KGM", "KILOGRAMS": "KGM",
    "G": "GRM", "GR": "GRM", "GRAM": "GRM", "GRAMS": "GRM",
    "T": "TNE", "TON": "TNE", "TONS": "TNE", "TONNE": "TNE", "TONNES": "TNE", "MT": "TNE",
    "LB": "LBR", "LBS": "LBR", "OZ": "ONZ", "OZT": "APZ", "TROY OZ": "APZ",
    "CT": "CTM", "CTS": "CTM", "CARAT": "CTM", "CARATS": "CTM",
    "L": "LTR", "LT": "LTR", "LITRE": "LTR", "LITRES": "LTR", "LITER": "LTR", "LITERS": "LTR",
    "ML": "MLT", "HL": "HLT",
    "M3": "MTQ", "CBM": "MTQ", "CUBIC METRE": "MTQ",
    "M2": "MTK", "SQM": "MTK", "SQ M": "MTK", "SQFT": "FTK",
    "M": "MTR", "METRE": "MTR", "METRES": "MTR", "METER": "MTR", "METERS": "MTR", "CM": "CMT", "MM": "MMT",
    "PCS": "NAR", "PC": "NAR", "PCE": "NAR", "PIECE": "NAR", "PIECES": "NAR", "U": "NAR", "UNIT": "NAR",
    "UNITS": "NAR", "EA": "NAR", "EACH": "NAR", "NO": "NAR", "NOS": "NAR", "NMB": "NAR", "P/ST": "NAR",
    "PAIR": "NPR", "PAIRS": "NPR", "PRS": "NPR",
    "DZ": "DZN", "DOZ": "DZN", "DOZEN": "DZN",
    "SETS": "SET", "ST": "SET",
    "KW/H": "KWH", "1000 KWH": "MWH",
}

UNIT_STATUSES = ("canonical", "converted", "unknown", "missing")


def normalise_units(quantity: pd.Series, unit: pd.Series) -> pd.DataFrame:
    """Canonical unit and quantity for each line.

    Returns a frame with ``quantity`` (converted), ``quantity_unit`` (canonical code, the upper-cased unit
    as written when unknown, NA when missing), ``quantity_unit_declared`` (as written) and ``unit_status``
    (one of ``UNIT_STATUSES``).
    """
    declared = unit.astype("string").str.strip()
    cleaned = declared.str.upper().str.replace(r"\s+", " ", regex=True)
    missing = cleaned.isna() | (cleaned == "")
    # Work on the distinct spellings only: a million rows carry a few dozen units.
    codes, uniques = pd.factorize(cleaned.fillna(""), sort=False)
    rec20 = [(_ALIASES.get(u, u)) for u in uniques]
    known = np.array([c in _CONVERSIONS for c in rec20], dtype=bool)
    canon = np.array([_CONVERSIONS[c][0] if ok else u for c, u, ok in zip(rec20, uniques, known)], dtype=object)
    factor = np.array([_CONVERSIONS[c][1] if ok else 1.0 for c, ok in zip(rec20, known)], dtype=np.float64)

    row_known = known[codes] if len(uniques) else np.zeros(len(unit), dtype=bool)
    row_factor = factor[codes] if len(uniques) else np.ones(len(unit))
    status = np.where(row_known, np.where(row_factor == 1.0, "canonical", "converted"), "unknown")
    status[missing.to_numpy()] = "missing"
    canonical = pd.Series(canon[codes] if len(uniques) else [], index=unit.index, dtype="string")
    canonical[missing] = pd.NA
    return pd.DataFrame(
        {
            "quantity": quantity.to_numpy(dtype=np.float64) * row_factor,
            "quantity_unit": canonical,
            "quantity_unit_declared": declared,
            "unit_status": pd.Series(status, index=unit.index, dtype="string"),
        },
        index=unit.index,
    )

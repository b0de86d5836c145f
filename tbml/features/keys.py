"""Identifier columns as join keys: plain Python strings, with a mask of which rows have one.

Optional identifiers (a seller on a customs import file, a shipment reference) are often blank on some
rows. A blank is unknown, never a value: it must not join two unrelated lines, make a payee differ from
a seller nobody named, or reach a string operation as a missing value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def id_values(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``column`` as an object array of strings ("" where blank or absent) and the mask of known rows."""
    if column not in frame:
        return np.full(len(frame), "", dtype=object), np.zeros(len(frame), dtype=bool)
    text = frame[column].astype("string")
    known = (text.notna() & (text.str.strip() != "")).fillna(False).to_numpy()
    return text.fillna("").to_numpy(dtype=object), known

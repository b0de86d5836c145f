"""Who declares and where: customs brokers (declarants) and customs offices on generated declarations, and a
mode where fraud follows them rather than price.

Customs fraud that inspections find is often not in the price at all: a misdeclared origin or tariff
line, a broker who files for many importers and cuts corners, an office where checks are light. Labels
of that kind can only be learned from history (which declarants, offices and importers were caught
before), never seen in one line's figures. ``fraud="declarant"`` makes such a world: each line's chance
of being misdeclared rises with its declarant, office and importer, and nothing in its value, quantity
or weight changes. It is tbml's test of learning from labels that are not about price.

Drawn from its own random stream, so a file with declarants keeps every other column of the file
without them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MISDECLARATION = "misdeclaration"


def add_declarants(invoices: pd.DataFrame, rng: np.random.Generator, fraud: bool) -> pd.DataFrame:
    """``invoices`` with ``declarant_id`` and ``customs_office``; with ``fraud``, a share of lines labelled
    ``misdeclaration`` by who declared them, where, and for whom."""
    out = invoices.copy()
    importers, which = np.unique(out["importer_id"].to_numpy(dtype=str), return_inverse=True)
    n_brokers = max(20, len(importers) // 15)
    size = rng.pareto(1.2, n_brokers) + 1.0
    main_broker = rng.choice(n_brokers, size=len(importers), p=size / size.sum())
    usual = rng.random(len(out)) < 0.8
    broker = np.where(usual, main_broker[which], rng.choice(n_brokers, size=len(out), p=size / size.sum()))
    out["declarant_id"] = np.char.add("DCL", np.char.zfill(broker.astype(str), 5))

    country = out["importer_country"].to_numpy(dtype=str)
    home = rng.integers(0, 12, len(importers))
    office_no = np.where(rng.random(len(out)) < 0.7, home[which], rng.integers(0, 12, len(out)))
    office = np.char.add(np.char.add(country, "OFF"), np.char.zfill(office_no.astype(str), 2))
    out["customs_office"] = office
    if not fraud:
        return out
    offices = np.unique(office)
    complicit = rng.random(n_brokers) < 0.10
    lax = dict(zip(offices, rng.random(len(offices)) < 0.15))
    repeat = rng.random(len(importers)) < 0.03
    chance = 1 - ((1 - 0.01) * (1 - 0.30 * complicit[broker]) * (1 - 0.10 * np.array([lax[o] for o in office]))
                  * (1 - 0.25 * repeat[which]))
    caught = (rng.random(len(out)) < chance) & ~out["is_laundering"].to_numpy(dtype=bool)
    out.loc[caught, "is_laundering"] = True
    out.loc[caught, "typology"] = MISDECLARATION
    out.loc[caught, "strength"] = 0.0
    return out

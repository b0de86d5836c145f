"""Goods going round: circular trade among related traders, and round trips to the country of origin.

A ring is 2 to ``max_length`` distinct traders through which the same goods (same HS6) pass, A -> B ->
... -> A, within one time window. Windows are ``window_days`` long and start every ``window_days / 2`` days
(counted from 1970-01-01), so any ring whose legs fall within half a window of each other is seen whole in
some window, and the same legs are judged alike whatever other rows share the frame.

In each window and HS6, invoices collapse to distinct trading pairs (a pair's fifty invoices are one edge),
and every trader who only buys or only sells there is pruned, repeatedly, for all windows and codes at
once (nobody else can be on a ring). A depth-bounded search then runs from each remaining trader over
partners larger than itself, so each ring is found once. Work depends on the distinct pairs left after
pruning, not on the number of invoices; ``max_paths`` caps the search per window and code all the same.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from tbml.features.keys import id_values
from tbml.features.windows import day_number


def cycle_features(invoices: pd.DataFrame, max_length: int = 5, window_days: int = 180,
                   max_paths: int = 100_000) -> pd.DataFrame:
    """Per line: ``cycle_length`` (shortest ring it is a leg of, 0 if none), ``cycle_id`` and
    ``round_trip`` (the goods arrive back in their country of origin from elsewhere)."""
    n = len(invoices)
    length = np.zeros(n, np.int64)
    cycle_id = np.full(n, "", dtype=object)
    if "exporter_id" in invoices and n:
        _mark_rings(invoices, max_length, window_days, max_paths, length, cycle_id)
    origin = invoices["origin_country"].astype("string") if "origin_country" in invoices else None
    round_trip = (np.zeros(n, dtype=bool) if origin is None else
                  (origin.notna() & (origin == invoices["importer_country"].astype("string"))
                   & (invoices["exporter_country"].astype("string") != origin)).fillna(False).to_numpy())
    return pd.DataFrame({"cycle_length": length, "cycle_id": cycle_id, "round_trip": round_trip},
                        index=invoices.index)


def _mark_rings(invoices, max_length, window_days, max_paths, length, cycle_id) -> None:
    keep = id_values(invoices, "exporter_id")[1]
    if "declaration_side" in invoices:  # one declaration per movement: the import side
        keep &= (invoices["declaration_side"].astype("string").fillna("") != "export").to_numpy()
    rows = np.flatnonzero(keep)
    if not len(rows):
        return
    day = day_number(invoices["date"])[rows]
    step = max(1, window_days // 2)
    # windows start at fixed days (counted from 1970), not at the frame's first date: the same legs fall in
    # the same windows whatever else is scored with them (a case store scores a sliding look-back)
    bucket = day // step
    lines = pd.DataFrame({
        "hs6": invoices["hs6"].astype(str).to_numpy()[rows],
        "seller": id_values(invoices, "exporter_id")[0][rows],
        "buyer": id_values(invoices, "importer_id")[0][rows],
        "row": rows,
    })
    # each line belongs to the window starting at its bucket and to the one starting a bucket earlier
    lines = pd.concat([lines.assign(window=bucket), lines.assign(window=bucket - 1)], ignore_index=True)
    lines = lines[lines["seller"] != lines["buyer"]]
    edges = _prune(lines[["window", "hs6", "seller", "buyer"]].drop_duplicates())
    if edges.empty:
        return
    rings: dict[tuple, tuple[int, str]] = {}  # (window, hs6, seller, buyer) -> (shortest ring, its name)
    for (window, hs6), group in edges.groupby(["window", "hs6"], sort=False):
        for ring in _rings(group, max_length, max_paths):
            name = f"{hs6}:" + "-".join(sorted(ring))
            for seller, buyer in zip(ring, ring[1:] + ring[:1]):
                key = (window, hs6, seller, buyer)
                if key not in rings or rings[key][0] > len(ring):
                    rings[key] = (len(ring), name)
    found = pd.DataFrame([(*k, v[0], v[1]) for k, v in rings.items()],
                         columns=["window", "hs6", "seller", "buyer", "ring_length", "ring_name"])
    hit = lines.merge(found, on=["window", "hs6", "seller", "buyer"], how="inner")
    hit = hit.sort_values("ring_length", kind="stable").drop_duplicates("row")
    length[hit["row"].to_numpy()] = hit["ring_length"].to_numpy()
    cycle_id[hit["row"].to_numpy()] = hit["ring_name"].to_numpy()


def _prune(edges: pd.DataFrame) -> pd.DataFrame:
    """Drop, until none is left, every edge touching a trader who only buys or only sells in its window
    and HS6; all windows and codes at once."""
    while len(edges):
        place = edges["window"].astype(str) + "|" + edges["hs6"]
        sells = place + "|" + edges["seller"]
        buys = place + "|" + edges["buyer"]
        keep = sells.isin(set(buys)).to_numpy() & buys.isin(set(sells)).to_numpy()
        if keep.all():
            break
        edges = edges[keep]
    return edges


def _rings(edges: pd.DataFrame, max_length: int, max_paths: int):
    """Yield each simple ring (a tuple of traders, smallest first) of 2..max_length traders, once."""
    partners: dict[str, list[str]] = defaultdict(list)
    for seller, buyer in zip(edges["seller"], edges["buyer"]):
        partners[seller].append(buyer)
    budget = max_paths
    for start in sorted(partners):
        stack = [(start, (start,))]
        while stack and budget > 0:
            node, path = stack.pop()
            budget -= 1
            for nxt in partners.get(node, ()):
                if nxt == start and len(path) >= 2:
                    yield path
                elif nxt > start and nxt not in path and len(path) < max_length:
                    stack.append((nxt, path + (nxt,)))

"""Goods going round: circular trade among related traders, and round trips to the country of origin.

A cycle is a ring of 2 to ``max_length`` traders through which the same goods (same HS6) pass in date
order, A -> B -> ... -> A, all within ``window_days`` of the first leg. The search is a depth-bounded DFS
per HS6, after pruning every trader that does not both buy and sell that HS6 (nobody else can be on a
ring); it starts from every trader, since a ring's first leg in time can start anywhere, and keeps each set
of legs once. Work grows with the edges left after pruning,
times the branching up to ``max_length``, and is capped per HS6 at ``max_paths`` partial paths; in trade
data the pruned graphs are small, so the search is close to linear in the number of lines (see the
benchmark in the README).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from tbml.features.windows import day_number


def cycle_features(invoices: pd.DataFrame, max_length: int = 5, window_days: int = 180,
                   max_paths: int = 200_000) -> pd.DataFrame:
    """Per line: ``cycle_length`` (shortest ring it is a leg of, 0 if none), ``cycle_id`` and
    ``round_trip`` (the goods arrive back in their country of origin)."""
    n = len(invoices)
    length = np.zeros(n, np.int64)
    cycle_id = np.full(n, "", dtype=object)
    if "exporter_id" in invoices and n:
        edges = pd.DataFrame({
            "hs6": invoices["hs6"].astype(str).to_numpy(),
            "seller": invoices["exporter_id"].astype(str).to_numpy(),
            "buyer": invoices["importer_id"].astype(str).to_numpy(),
            "day": day_number(invoices["date"]),
            "row": np.arange(n),
        })
        if "declaration_side" in invoices:  # one declaration per movement: the import side
            edges = edges[(invoices["declaration_side"].astype("string").fillna("") != "export").to_numpy()]
        for hs6, group in edges.groupby("hs6", sort=False):
            group = _prune(group)
            if len(group) >= 2:
                for ring_rows, ring_len, ring_name in _rings(group, max_length, window_days, max_paths):
                    better = (length[ring_rows] == 0) | (length[ring_rows] > ring_len)
                    length[ring_rows[better]] = ring_len
                    cycle_id[ring_rows[better]] = f"{hs6}:{ring_name}"
    origin = invoices["origin_country"].astype("string") if "origin_country" in invoices else None
    round_trip = (np.zeros(n, dtype=bool) if origin is None else
                  (origin.notna() & (origin == invoices["importer_country"].astype("string"))
                   & (invoices["exporter_country"].astype("string") != origin)).fillna(False).to_numpy())
    return pd.DataFrame({"cycle_length": length, "cycle_id": cycle_id, "round_trip": round_trip},
                        index=invoices.index)


def _prune(edges: pd.DataFrame) -> pd.DataFrame:
    """Drop, until none is left, every edge touching a trader who only buys or only sells this HS6."""
    while len(edges):
        sellers, buyers = set(edges["seller"]), set(edges["buyer"])
        both = sellers & buyers
        keep = edges["seller"].isin(both).to_numpy() & edges["buyer"].isin(both).to_numpy()
        if keep.all():
            break
        edges = edges[keep]
    return edges


def _rings(edges: pd.DataFrame, max_length: int, window: int, max_paths: int):
    """Yield (rows, length, name) for each time-ordered ring, each set of legs once."""
    out_edges: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for seller, buyer, day, row in zip(edges["seller"], edges["buyer"], edges["day"], edges["row"]):
        if seller != buyer:
            out_edges[seller].append((buyer, int(day), int(row)))
    budget = max_paths
    seen: set[frozenset[int]] = set()
    for start in sorted(out_edges):
        # stack of (node, first_day, last_day, visited traders, rows so far)
        stack = [(nxt, day, day, (start, nxt), (row,)) for nxt, day, row in out_edges[start]]
        while stack and budget > 0:
            node, first, last, visited, rows = stack.pop()
            budget -= 1
            for nxt, day, row in out_edges.get(node, ()):
                if day < last or day - first > window:
                    continue
                if nxt == start:
                    legs = frozenset(rows + (row,))
                    if legs not in seen:
                        seen.add(legs)
                        yield np.array(rows + (row,)), len(visited), "-".join(sorted(visited))
                elif len(visited) < max_length and nxt not in visited:
                    stack.append((nxt, first, day, visited + (nxt,), rows + (row,)))

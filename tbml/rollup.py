"""Alerts rolled up to the organisations and the pathways behind them: investigators work on those.

- entities: every trader or payment party named in an alert, with its alert count, summed and highest
  risk, value involved, typologies and roles, ranked by summed risk;
- networks: traders joined by alerted trades and payments (connected components of the graph whose edges
  are importer-exporter, payer-payee and third-party links of alerted items), ranked by summed risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLES = {"importer_id": "importer", "exporter_id": "exporter", "payer_id": "payer", "payee_id": "payee",
         "third_party_id": "third party"}


def _involvements(alerts: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for column, role in ROLES.items():
        if column not in alerts:
            continue
        part = alerts[[column, "risk", "reporting_value", "suspected_typology"]].dropna(subset=[column])
        part = part[part[column].astype(str) != ""]
        parts.append(part.rename(columns={column: "entity"}).assign(role=role, alert=part.index))
    if not parts:
        return pd.DataFrame(columns=["entity", "risk", "reporting_value", "suspected_typology", "role", "alert"])
    return pd.concat(parts, ignore_index=True)


def _top(groups: pd.Series, values: pd.Series, n: int = 3) -> pd.Series:
    """Per group, its ``n`` most frequent non-empty values with their counts, "a (5), b (2)" (ties by
    name), for all groups at once: a Python call per group costs seconds at a million alerts."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "value": values.astype("string").fillna("").to_numpy()})
    frame = frame[frame["value"] != ""]
    counts = frame.groupby(["group", "value"]).size().reset_index(name="n")
    counts = counts.sort_values(["group", "n", "value"], ascending=[True, False, True], kind="stable")
    counts = counts[counts.groupby("group").cumcount() < n]
    text = counts["value"].astype(str) + " (" + counts["n"].astype(str) + ")"
    return text.groupby(counts["group"].to_numpy()).agg(", ".join)


def _distinct(groups: pd.Series, values: pd.Series) -> pd.Series:
    """Per group, its distinct values sorted and joined: "exporter, payee"."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "value": values.astype(str).to_numpy()}).drop_duplicates()
    frame = frame.sort_values(["group", "value"], kind="stable")
    return frame["value"].groupby(frame["group"].to_numpy()).agg(", ".join)


def entity_rollup(alerts: pd.DataFrame) -> pd.DataFrame:
    inv = _involvements(alerts)
    if inv.empty:
        return pd.DataFrame(columns=["rank", "entity", "alerts", "risk_sum", "risk_max", "value", "roles", "typologies"])
    # an entity that is importer and payer of one alert has that alert's risk and value once
    unique = inv.drop_duplicates(["entity", "alert"])
    once = unique.groupby("entity")
    out = pd.DataFrame({
        "alerts": once["alert"].size(),
        "risk_sum": once["risk"].sum().round(1),
        "risk_max": once["risk"].max(),
        "value": once["reporting_value"].sum().round(2),
        "roles": _distinct(inv["entity"], inv["role"]),
        "typologies": _top(unique["entity"], unique["suspected_typology"]),
    })
    out.index.name = "entity"
    out["typologies"] = out["typologies"].fillna("")
    out = out.sort_values(["risk_sum", "risk_max"], ascending=False, kind="stable").reset_index()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def network_rollup(alerts: pd.DataFrame, max_listed: int = 12) -> pd.DataFrame:
    return networks_and_members(alerts, max_listed)[0]


def networks_and_members(alerts: pd.DataFrame, max_listed: int = 12) -> tuple[pd.DataFrame, dict[str, str]]:
    """The network roll-up, and every entity of a rolled-up network with its network's name (the table
    lists ``max_listed`` members of each)."""
    inv = _networked(alerts)
    names = _network_names(inv)
    members_of = {e: names[n] for e, n in zip(inv["entity"], inv["network"]) if n in names}
    if not names:
        return pd.DataFrame(columns=["rank", "network", "entities", "alerts", "risk_sum", "value", "members",
                                     "typologies"]), members_of
    inv = inv[inv["network"].isin(names)]
    grouped = inv.groupby("network")
    once = inv.drop_duplicates(["network", "alert"])
    members = inv[["network", "entity"]].drop_duplicates().sort_values(["network", "entity"], kind="stable")
    listed = members[members.groupby("network").cumcount() < max_listed]
    out = pd.DataFrame({
        "entities": grouped["entity"].nunique(),
        "alerts": grouped["alert"].nunique(),
        "risk_sum": once.groupby("network")["risk"].sum().round(1),
        "value": once.groupby("network")["reporting_value"].sum().round(2),
        "members": listed["entity"].astype(str).groupby(listed["network"].to_numpy()).agg(", ".join),
        "typologies": _top(once["network"], once["suspected_typology"]),
    })
    out.index.name = "network"
    out["members"] = out["members"].where(out["entities"] <= max_listed, out["members"] + " ...")
    out["typologies"] = out["typologies"].fillna("")
    out = out.loc[list(names)].reset_index()
    out["network"] = out["network"].map(names)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out, members_of


def _network_names(inv: pd.DataFrame) -> dict[str, str]:
    """Components of two or more entities, by summed risk of their alerts (ties by smallest member), named
    N1, N2, ... in that order."""
    if inv.empty:
        return {}
    sizes = inv.groupby("network")["entity"].nunique()
    risk = inv.drop_duplicates(["network", "alert"]).groupby("network")["risk"].sum().round(1)
    kept = risk[sizes >= 2].sort_values(ascending=False, kind="stable")
    return {root: f"N{i}" for i, root in enumerate(kept.index, start=1)}


def _networked(alerts: pd.DataFrame) -> pd.DataFrame:
    """The involvements of ``_involvements`` with the connected component (its smallest member) of each."""
    parent: dict[str, str] = {}

    def find(x):
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    pairs = [("importer_id", "exporter_id"), ("payer_id", "payee_id"), ("importer_id", "third_party_id")]
    for left, right in pairs:
        if left in alerts and right in alerts:
            for a, b in zip(alerts[left], alerts[right]):
                if isinstance(a, str) and isinstance(b, str) and a and b:
                    union(a, b)
    inv = _involvements(alerts)
    inv["network"] = [find(e) for e in inv["entity"]]
    return inv

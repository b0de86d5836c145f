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


def _top(values: pd.Series, n: int = 3) -> str:
    counts = values[values.astype(str) != ""].value_counts()
    return ", ".join(f"{k} ({v})" for k, v in counts.head(n).items())


def entity_rollup(alerts: pd.DataFrame) -> pd.DataFrame:
    inv = _involvements(alerts)
    if inv.empty:
        return pd.DataFrame(columns=["rank", "entity", "alerts", "risk_sum", "risk_max", "value", "roles", "typologies"])
    grouped = inv.groupby("entity")
    out = pd.DataFrame({
        "alerts": grouped["alert"].nunique(),
        "risk_sum": grouped["risk"].sum().round(1),
        "risk_max": grouped["risk"].max(),
        "value": grouped["reporting_value"].sum().round(2),
        "roles": grouped["role"].agg(lambda s: ", ".join(sorted(set(s)))),
        "typologies": grouped["suspected_typology"].agg(_top),
    }).sort_values(["risk_sum", "risk_max"], ascending=False, kind="stable").reset_index()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def network_rollup(alerts: pd.DataFrame, max_listed: int = 12) -> pd.DataFrame:
    inv = _networked(alerts)
    names = _network_names(inv)
    if not names:
        return pd.DataFrame(columns=["rank", "network", "entities", "alerts", "risk_sum", "value", "members", "typologies"])
    grouped = inv[inv["network"].isin(names)].groupby("network")
    out = pd.DataFrame({
        "entities": grouped["entity"].nunique(),
        "alerts": grouped["alert"].nunique(),
        "risk_sum": grouped.apply(lambda g: g.drop_duplicates("alert")["risk"].sum(), include_groups=False).round(1),
        "value": grouped.apply(lambda g: g.drop_duplicates("alert")["reporting_value"].sum(), include_groups=False).round(2),
        "members": grouped["entity"].agg(lambda s: ", ".join(sorted(set(s))[:max_listed])
                                         + (" ..." if s.nunique() > max_listed else "")),
        "typologies": grouped["suspected_typology"].agg(_top),
    }).loc[list(names)].reset_index()
    out["network"] = out["network"].map(names)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def network_of_entity(alerts: pd.DataFrame) -> dict[str, str]:
    """Every entity of a rolled-up network, with the network's name in ``network_rollup`` (N1, N2, ...)."""
    inv = _networked(alerts)
    names = _network_names(inv)
    return {e: names[n] for e, n in zip(inv["entity"], inv["network"]) if n in names}


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

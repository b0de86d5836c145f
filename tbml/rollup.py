"""Alerts rolled up to the organisations and the networks behind them: investigators work on those.

- entities: every trader or payment party named in an alert, ranked by ``suspicion``, evidence that does
  not grow with volume alone (see ``suspicion``), with its volume beside it, its network and its role there;
- networks: communities of the graph of alerted trades and payments, each small enough for one case
  (``tbml.networks``), with all their members, typologies, corridors and value, ranked by the summed
  suspicion of their members;
- alerts: each with the ``network`` where it weighs most (``tbml.networks.alert_networks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tbml.networks import MAX_NETWORK_SIZE, PARTY_COLUMNS, alert_networks, communities, member_roles

ROLES = {"importer_id": "importer", "exporter_id": "exporter", "payer_id": "payer", "payee_id": "payee",
         "third_party_id": "third party"}
# lines of evidence a trader's alerted share is shrunk with: a party with 1 line alerted out of 1 is not
# judged as surely as one with 25 of 30
PRIOR_LINES = 10
# a member with at least this many lines, at most this share of them alerted, looks like an ordinary
# business drawn into the network
DRAWN_IN_LINES, DRAWN_IN_SHARE = 20, 0.10

# what ``rollup`` reads of the scored items
ITEM_COLUMNS = (*PARTY_COLUMNS, "reporting_value")
ENTITY_COLUMNS = ["rank", "entity", "network", "role", "drawn_in", "suspicion", "alerts", "lines",
                  "alerted_share", "strongest_risk", "typology_count", "risk_max", "risk_sum", "value", "volume",
                  "volume_rank", "roles", "typologies"]
NETWORK_COLUMNS = ["rank", "network", "evidence", "entities", "alerts", "risk_sum", "value", "drawn_in",
                   "members", "typologies", "corridors"]


@dataclass
class Rollup:
    alerts: pd.DataFrame    # the alerts, with ``network``
    entities: pd.DataFrame
    networks: pd.DataFrame


def rollup(alerts: pd.DataFrame, items: pd.DataFrame | None = None,
           max_network_size: int = MAX_NETWORK_SIZE) -> Rollup:
    """Entities and networks of ``alerts``; ``items`` (everything scored, at least its party columns and
    ``reporting_value``) gives each entity's lines and volume: without it, only alerted lines count."""
    given = alerts
    alerts = alerts.reset_index(drop=True)  # rows by position: an alerts frame may come with any index
    if items is not None:
        items = items[[c for c in ITEM_COLUMNS if c in items]].reset_index(drop=True)
    community = communities(alerts, max_network_size)
    entities = _entities(alerts, items)
    if entities.empty:
        return Rollup(given.assign(network=pd.Series(pd.NA, index=given.index, dtype="string")),
                      entities, pd.DataFrame(columns=NETWORK_COLUMNS))
    entities["community"] = community.reindex(entities["entity"].to_numpy()).to_numpy()
    entities["role"] = member_roles(alerts, community).reindex(entities["entity"].to_numpy()).to_numpy()
    by_alert = alert_networks(alerts, community)
    networks = _networks(alerts, by_alert, entities)
    name = pd.Series(networks["network"].to_numpy(), index=networks.pop("community").to_numpy())
    entities["network"] = entities.pop("community").map(name).astype("string")
    with_network = given.assign(network=pd.array(by_alert.map(name).to_numpy(), dtype="string"))
    return Rollup(with_network, entities[ENTITY_COLUMNS], networks[NETWORK_COLUMNS])


def entity_rollup(alerts: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    return rollup(alerts, items).entities


def network_rollup(alerts: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    return rollup(alerts, items).networks


def suspicion(alerted: pd.Series, lines: pd.Series, strongest_risk: pd.Series, typology_count: pd.Series,
              base_rate: float) -> pd.Series:
    """0-100: the share of a party's lines alerted, shrunk towards the file's ``base_rate`` by
    ``PRIOR_LINES`` lines of prior (a beta prior's posterior mean), times the mean risk of its three
    strongest alerts, times breadth: 0.6 for one suspected typology, 0.8 for two, 1 for three or more.
    Ten alerts on a trader's 2,000 lines weigh less than five on its ten: it ranks suspicion, not size."""
    share = (alerted + PRIOR_LINES * base_rate) / (lines + PRIOR_LINES)
    breadth = (2 + typology_count.clip(upper=3)) / 5
    return (100 * share * strongest_risk / 100 * breadth).round(2)


def _parties(frame: pd.DataFrame) -> pd.DataFrame:
    """(row, entity, role) for every party named on a row of ``frame``."""
    parts = []
    for column, role in ROLES.items():
        if column in frame:
            party = frame[column].astype("string")
            keep = party.notna() & (party != "")
            parts.append(pd.DataFrame({"row": frame.index[keep], "entity": party[keep].to_numpy(), "role": role}))
    if not parts:
        return pd.DataFrame({"row": pd.Series(dtype="int64"), "entity": pd.Series(dtype="string"),
                             "role": pd.Series(dtype=str)})
    return pd.concat(parts, ignore_index=True)


def _entities(alerts: pd.DataFrame, items: pd.DataFrame | None) -> pd.DataFrame:
    involved = _parties(alerts)
    if involved.empty:
        return pd.DataFrame(columns=ENTITY_COLUMNS)
    # an entity that is importer and payer of one alert has that alert's risk and value once
    once = involved.drop_duplicates(["entity", "row"])
    once = once.assign(risk=alerts["risk"].reindex(once["row"]).to_numpy(dtype=float),
                       value=alerts["reporting_value"].reindex(once["row"]).to_numpy(dtype=float),
                       typology=alerts["suspected_typology"].reindex(once["row"]).to_numpy())
    per = once.groupby("entity")
    strongest = once.sort_values("risk", ascending=False, kind="stable")
    strongest = strongest[strongest.groupby("entity").cumcount() < 3].groupby("entity")["risk"].mean()
    typed = once[once["typology"].astype("string").fillna("") != ""]
    out = pd.DataFrame({
        "alerts": per.size(),
        "risk_sum": per["risk"].sum().round(1),
        "risk_max": per["risk"].max(),
        "strongest_risk": strongest.round(1),
        "typology_count": typed.groupby("entity")["typology"].nunique(),
        "value": per["value"].sum().round(2),
        "roles": _distinct(involved["entity"], involved["role"]),
        "typologies": _top(once["entity"], once["typology"]),
    })
    out["typology_count"] = out["typology_count"].fillna(0).astype("int64")
    if items is not None and len(items):
        seen = _parties(items[[c for c in PARTY_COLUMNS if c in items]]).drop_duplicates(["entity", "row"])
        value = items["reporting_value"].reindex(seen["row"]).to_numpy(dtype=float)
        lines = seen.assign(value=value).groupby("entity").agg(lines=("row", "size"), volume=("value", "sum"))
        lines["volume_rank"] = lines["volume"].rank(ascending=False, method="min").astype("int64")
        out = out.join(lines)
        base_rate = len(alerts) / len(items)
    else:
        out["lines"], out["volume"], out["volume_rank"] = out["alerts"], out["value"], np.nan
        base_rate = 0.0
    # a party only in alerts (items not given for it) counts its alerts as its lines
    out["lines"] = out["lines"].fillna(out["alerts"]).clip(lower=out["alerts"]).astype("int64")
    out["volume"] = out["volume"].fillna(out["value"]).round(2)
    out["alerted_share"] = (out["alerts"] / out["lines"]).round(3)
    out["drawn_in"] = (out["lines"] >= DRAWN_IN_LINES) & (out["alerted_share"] <= DRAWN_IN_SHARE)
    out["suspicion"] = suspicion(out["alerts"], out["lines"], out["strongest_risk"], out["typology_count"],
                                 base_rate)
    out.index.name = "entity"
    out["typologies"] = out["typologies"].fillna("")
    out = out.reset_index().sort_values(["suspicion", "risk_max", "entity"], ascending=[False, False, True],
                                        kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _networks(alerts: pd.DataFrame, by_alert: pd.Series, entities: pd.DataFrame) -> pd.DataFrame:
    """One row per community, ranked by ``evidence`` (its members' summed suspicion), named N1, N2, ...
    in that order; ``community`` holds the number ``communities`` gave it."""
    members = entities.sort_values(["community", "suspicion", "entity"], ascending=[True, False, True],
                                   kind="stable")
    listed = members["entity"].astype(str) + " (" + members["role"].astype(str) + ")"
    grouped = members.groupby("community")
    alerted = alerts.assign(community=by_alert.to_numpy())
    per_alert = alerted.groupby("community")
    out = pd.DataFrame({
        "evidence": grouped["suspicion"].sum().round(2),
        "entities": grouped.size(),
        "drawn_in": grouped["drawn_in"].sum().astype("int64"),
        "members": listed.groupby(members["community"].to_numpy()).agg(", ".join),
    })
    out = out.join(pd.DataFrame({
        "alerts": per_alert.size(),
        "risk_sum": per_alert["risk"].sum().round(1),
        "value": per_alert["reporting_value"].sum().round(2),
        "typologies": _top(alerted["community"], alerted["suspected_typology"], n=None),
        "corridors": _top(alerted["community"], corridors(alerted), n=5),
    }))
    out["alerts"] = out["alerts"].fillna(0).astype("int64")
    out[["risk_sum", "value"]] = out[["risk_sum", "value"]].fillna(0.0)
    out[["typologies", "corridors"]] = out[["typologies", "corridors"]].fillna("")
    out.index.name = "community"
    out = out.reset_index().sort_values(["evidence", "risk_sum", "community"], ascending=[False, False, True],
                                        kind="stable").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.insert(1, "network", "N" + out["rank"].astype(str))
    return out


def corridors(alerts: pd.DataFrame) -> pd.Series:
    """Per alert, "exporter country → importer country", or "payer country → payee country (payment)"."""
    def pair(a, b):
        left = alerts[a].astype("string") if a in alerts else pd.Series(pd.NA, index=alerts.index, dtype="string")
        right = alerts[b].astype("string") if b in alerts else pd.Series(pd.NA, index=alerts.index, dtype="string")
        return left + " → " + right
    invoice = pair("exporter_country", "importer_country")
    transfer = pair("payer_country", "payee_country")
    is_invoice = alerts["item"] == "invoice" if "item" in alerts else pd.Series(True, index=alerts.index)
    return invoice.where(is_invoice, transfer + " (payment)").fillna("")


def _top(groups: pd.Series, values: pd.Series, n: int | None = 3) -> pd.Series:
    """Per group, its ``n`` (all with None) most frequent non-empty values with their counts,
    "a (5), b (2)" (ties by name), for all groups at once: a Python call per group costs seconds at a
    million alerts."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "value": values.astype("string").fillna("").to_numpy()})
    frame = frame[(frame["value"] != "") & frame["group"].notna()]
    counts = frame.groupby(["group", "value"]).size().reset_index(name="n")
    counts = counts.sort_values(["group", "n", "value"], ascending=[True, False, True], kind="stable")
    if n is not None:
        counts = counts[counts.groupby("group").cumcount() < n]
    text = counts["value"].astype(str) + " (" + counts["n"].astype(str) + ")"
    return text.groupby(counts["group"].to_numpy()).agg(", ".join)


def _distinct(groups: pd.Series, values: pd.Series) -> pd.Series:
    """Per group, its distinct values sorted and joined: "exporter, payee"."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "value": values.astype(str).to_numpy()}).drop_duplicates()
    frame = frame.sort_values(["group", "value"], kind="stable")
    return frame["value"].groupby(frame["group"].to_numpy()).agg(", ".join)

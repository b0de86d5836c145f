"""Networks an analyst can take on: the traders and payment parties joined by alerted trades and payments,
split into communities no larger than a case one investigator can work.

The graph's nodes are the parties of alerts; its links are importer-exporter, payer-payee and
third party-importer/exporter pairs of alerted items, each weighted by the summed risk of the alerts on it
(the evidence on that link). Each connected component of at most ``max_size`` parties is one network.
A larger one is split by Louvain modularity (networkx) at the standard resolution 1; every community
is cut into its connected pieces (Louvain can leave one disconnected), and a piece still larger than
``max_size`` is split again on its own subgraph, the resolution doubling while a split finds nothing.
So the resolution is never a global knob: it is 1 wherever the data's communities are small enough, and
rises only inside the parts of the graph that are not.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

# parties a single investigator can map and interview in one case file; measured against the alerted
# traders of a 200,000-invoice file in the README (under 1% of them)
MAX_NETWORK_SIZE = 50

# alert columns that name a party, in the order that breaks ties when an alert's parties sit in
# different networks
PARTY_COLUMNS = ("importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id")
LINKS = (("importer_id", "exporter_id"), ("payer_id", "payee_id"), ("third_party_id", "importer_id"),
         ("third_party_id", "exporter_id"))


def evidence_links(alerts: pd.DataFrame) -> pd.DataFrame:
    """One row per linked pair of parties (``a`` < ``b``) with ``weight``: the summed risk / 100 of the
    alerts that join them."""
    parts = []
    for left, right in LINKS:
        if left in alerts and right in alerts:
            pair = pd.DataFrame({"a": alerts[left].astype("string"), "b": alerts[right].astype("string"),
                                 "weight": alerts["risk"].to_numpy(dtype=float) / 100})
            pair = pair[pair["a"].notna() & pair["b"].notna() & (pair["a"] != "") & (pair["b"] != "")
                        & (pair["a"] != pair["b"])]
            parts.append(pair)
    if not parts:
        return pd.DataFrame({"a": pd.Series(dtype="string"), "b": pd.Series(dtype="string"),
                             "weight": pd.Series(dtype=float)})
    links = pd.concat(parts, ignore_index=True)
    low = links[["a", "b"]].min(axis=1)
    high = links[["a", "b"]].max(axis=1)
    links = pd.DataFrame({"a": low, "b": high, "weight": links["weight"]})
    return links.groupby(["a", "b"], as_index=False, sort=True)["weight"].sum()


def communities(alerts: pd.DataFrame, max_size: int = MAX_NETWORK_SIZE, seed: int = 0) -> pd.Series:
    """Every party named in ``alerts`` -> an integer community (0, 1, ...; numbered by smallest member),
    each community connected and of at most ``max_size`` parties (``max_size`` >= 2)."""
    if max_size < 2:
        raise ValueError("max_size must be at least 2: a network joins two or more parties")
    graph = nx.Graph()
    parties = sorted({str(p) for c in PARTY_COLUMNS if c in alerts for p in alerts[c].dropna() if str(p)})
    # nodes are numbers: sets of strings iterate in an order that changes with each process's hash seed,
    # and Louvain's result with it
    number = {p: i for i, p in enumerate(parties)}
    graph.add_nodes_from(range(len(parties)))
    links = evidence_links(alerts)
    graph.add_weighted_edges_from(zip(links["a"].map(number), links["b"].map(number), links["weight"]))
    groups: list[set] = []
    pending = [(set(c), 1.0) for c in nx.connected_components(graph)]
    while pending:
        nodes, resolution = pending.pop()
        if len(nodes) <= max_size:
            groups.append(nodes)
            continue
        found = nx.community.louvain_communities(graph.subgraph(nodes), weight="weight",
                                                 resolution=resolution, seed=seed)
        pieces = [set(p) for c in found for p in nx.connected_components(graph.subgraph(c))]
        if len(pieces) == 1:  # no split at this resolution: look for smaller communities
            pending.append((nodes, resolution * 2))
        else:
            pending.extend((p, 1.0) for p in pieces)
    groups = _attach_strays(graph, groups, max_size)
    groups.sort(key=min)
    return pd.Series({parties[p]: i for i, g in enumerate(groups) for p in g}, dtype="int64").sort_index()


def _attach_strays(graph: nx.Graph, groups: list[set], max_size: int) -> list[set]:
    """A party a split left alone joins the group it has the most evidence with, while that group has
    room: a network of one is no network."""
    group_of = {p: i for i, g in enumerate(groups) for p in g}
    for i, g in enumerate(groups):
        if len(g) != 1:
            continue
        (party,) = g
        pull: dict[int, float] = {}
        for other, link in graph[party].items():
            j = group_of[other]
            if j != i and len(groups[j]) < max_size:
                pull[j] = pull.get(j, 0.0) + link["weight"]
        if pull:
            j = max(sorted(pull), key=pull.get)
            groups[j].add(party)
            groups[i] = set()
            group_of[party] = j
    return [g for g in groups if g]


def alert_networks(alerts: pd.DataFrame, community: pd.Series) -> pd.Series:
    """Per alert (``alerts``' index), the community holding most of its parties; ties go to the party
    that comes first in ``PARTY_COLUMNS`` (the importer's, for an invoice)."""
    parts = []
    for order, column in enumerate(PARTY_COLUMNS):
        if column in alerts:
            party = alerts[column].astype("string")
            keep = party.notna() & (party != "")
            parts.append(pd.DataFrame({"alert": alerts.index[keep], "order": order,
                                       "community": community.reindex(party[keep].to_numpy()).to_numpy()}))
    if not parts:
        return pd.Series(np.nan, index=alerts.index)
    involved = pd.concat(parts, ignore_index=True).dropna(subset=["community"])
    involved = involved.drop_duplicates(["alert", "community"], keep="first").merge(
        involved.groupby(["alert", "community"]).size().rename("n").reset_index(), on=["alert", "community"])
    involved = involved.sort_values(["alert", "n", "order"], ascending=[True, False, True], kind="stable")
    chosen = involved.drop_duplicates("alert")
    return pd.Series(chosen["community"].to_numpy(), index=chosen["alert"].to_numpy()).reindex(alerts.index)


# a member's role, from what it does in its network's alerts; first match wins
ROLE_ORDER = ("money", "trading company", "importer", "exporter")


def member_roles(alerts: pd.DataFrame, community: pd.Series) -> pd.Series:
    """Per party, what it does in its network: ``money`` (a third party paying or paid for others'
    invoices, or a party only to alerted payments), ``trading company`` (both buys and sells there),
    ``importer`` or ``exporter``, from all its alerts. tbml has no carrier or shipper column, so no
    member is called a shipper."""
    acts = []
    for column, act in (("importer_id", "buys"), ("exporter_id", "sells"), ("third_party_id", "pays"),
                        ("payer_id", "transfers"), ("payee_id", "transfers")):
        if column in alerts:
            party = alerts[column].astype("string")
            keep = party.notna() & (party != "")
            acts.append(pd.DataFrame({"party": party[keep].to_numpy(), "act": act}))
    if not acts:
        return pd.Series(dtype="string")
    done = pd.concat(acts, ignore_index=True).drop_duplicates()
    does = done.assign(yes=True).pivot_table(index="party", columns="act", values="yes", aggfunc="any",
                                             fill_value=False)
    for act in ("buys", "sells", "pays", "transfers"):
        if act not in does:
            does[act] = False
    does = does.astype(bool)
    trades = does["buys"] | does["sells"]
    role = np.select([does["pays"] | (does["transfers"] & ~trades), does["buys"] & does["sells"], does["buys"]],
                     ["money", "trading company", "importer"], "exporter")
    return pd.Series(role, index=does.index, dtype="string").reindex(community.index)

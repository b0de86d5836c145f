"""Networks an analyst can take on: the traders and payment parties joined by alerted trades and payments,
split into communities no larger than a case one investigator can work.

The graph's nodes are the parties of alerts; its links are importer-exporter, payer-payee and
third party-importer/exporter pairs of alerted items (a third party is linked to both parties of the
invoice it paid or was paid for), each weighted by the summed risk of the alerts on it (the evidence on
that link). Each connected component of at most ``max_size`` parties is one network. A larger one is
split by Louvain modularity (networkx) at the standard resolution 1, every community cut into its
connected pieces (Louvain can leave one disconnected), and a piece still larger than ``max_size`` split
again on its own. A piece Louvain leaves whole (a star round a party with hundreds of counterparties) is
cut by the cap instead: its strongest party keeps the parties it shares the most evidence with. Then
linked networks merge, largest modularity gain first, while the whole graph's modularity rises and the
merged network stays within ``max_size``: a split judges each piece on its own and cuts more than the
whole graph asks for. The resolution is 1 throughout: no setting is chosen by looking at labels.
"""

from __future__ import annotations

import heapq

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
    pending = [set(c) for c in nx.connected_components(graph)]
    while pending:
        nodes = pending.pop()
        if len(nodes) <= max_size:
            groups.append(nodes)
            continue
        found = nx.community.louvain_communities(graph.subgraph(nodes), weight="weight", seed=seed)
        pieces = [set(p) for c in found for p in nx.connected_components(graph.subgraph(c))]
        if len(pieces) == 1:  # modularity keeps it whole: the cap decides who stays with its centre
            core = _strongest_core(graph, nodes, max_size)
            groups.append(core)
            pieces = [set(p) for p in nx.connected_components(graph.subgraph(nodes - core))]
        pending.extend(pieces)
    groups = _merge_linked(graph, groups, max_size)
    groups.sort(key=min)
    return pd.Series({parties[p]: i for i, g in enumerate(groups) for p in g}, dtype="int64").sort_index()


def _strongest_core(graph: nx.Graph, nodes: set, max_size: int) -> set:
    """``max_size`` connected parties of ``nodes``: the one with the most evidence there, then, one at a
    time, the party with the most evidence with those already taken (ties: the lowest number)."""
    part = graph.subgraph(nodes)
    centre = max(sorted(nodes), key=lambda n: part.degree(n, weight="weight"))
    core, pull = {centre}, {}
    while len(core) < max_size:
        for other, link in part[centre].items():
            if other not in core:
                pull[other] = pull.get(other, 0.0) + link["weight"]
        if not pull:
            break
        centre = max(sorted(pull), key=pull.get)
        del pull[centre]
        core.add(centre)
    return core


def _merge_linked(graph: nx.Graph, groups: list[set], max_size: int) -> list[set]:
    """Greedy modularity agglomeration (Clauset, Newman and Moore) from ``groups``, capped: the linked
    pair whose merge raises the whole graph's modularity most merges first, while the gain is positive
    and the merged group has at most ``max_size`` parties."""
    strength = dict(graph.degree(weight="weight"))
    total = sum(strength.values())  # twice the summed link weight
    if not total:
        return groups
    groups = [set(g) for g in groups]
    group_of = {p: i for i, g in enumerate(groups) for p in g}
    group_strength = [sum(strength[p] for p in g) for g in groups]
    between: list[dict[int, float]] = [{} for _ in groups]
    for a, b, link in graph.edges(data=True):
        i, j = group_of[a], group_of[b]
        if i != j:
            between[i][j] = between[i].get(j, 0.0) + link["weight"]
            between[j][i] = between[i][j]

    def gain(i: int, j: int) -> float:  # modularity change of merging groups i and j, resolution 1
        return 2 * (between[i][j] / total - group_strength[i] * group_strength[j] / total**2)

    queue = [(-gain(i, j), i, j) for i in range(len(groups)) for j in between[i] if i < j]
    heapq.heapify(queue)
    while queue:
        loss, i, j = heapq.heappop(queue)
        if loss >= 0:
            break
        if j not in between[i] or -loss != gain(i, j) or len(groups[i]) + len(groups[j]) > max_size:
            continue  # merged away, changed since queued, or too large together
        groups[i] |= groups[j]
        groups[j] = set()
        group_strength[i] += group_strength[j]
        for k, weight in between[j].items():
            del between[k][j]
            if k != i:
                between[i][k] = between[i].get(k, 0.0) + weight
                between[k][i] = between[i][k]
        between[j] = {}
        for k in between[i]:
            heapq.heappush(queue, (-gain(i, k), min(i, k), max(i, k)))
    return [g for g in groups if g]


def alert_networks(alerts: pd.DataFrame, community: pd.Series) -> pd.Series:
    """Per alert (``alerts``' index), the community where it weighs most: each of its parties counts for
    its own community with the alert's share of that party's summed risk, so a third party's one alert
    goes to the third party's network, not to that of a large trader for whom it is one of hundreds.
    Ties go to the party that comes first in ``PARTY_COLUMNS`` (the importer's, for an invoice)."""
    parts = []
    for order, column in enumerate(PARTY_COLUMNS):
        if column in alerts:
            party = alerts[column].astype("string")
            keep = (party.notna() & (party != "")).to_numpy()
            parts.append(pd.DataFrame({"alert": alerts.index[keep], "party": party[keep].to_numpy(),
                                       "order": order, "risk": alerts["risk"].to_numpy(dtype=float)[keep]}))
    if not parts:
        return pd.Series(np.nan, index=alerts.index)
    # a party named twice on one alert (importer and payer) counts once
    involved = pd.concat(parts, ignore_index=True).drop_duplicates(["alert", "party"])
    summed = involved.groupby("party")["risk"].transform("sum")
    involved["share"] = (involved["risk"] / summed.where(summed > 0)).fillna(0.0)
    involved["community"] = community.reindex(involved["party"].to_numpy()).to_numpy()
    votes = involved.dropna(subset=["community"]).groupby(["alert", "community"]).agg(
        share=("share", "sum"), order=("order", "min")).reset_index()
    votes = votes.sort_values(["alert", "share", "order"], ascending=[True, False, True], kind="stable")
    chosen = votes.drop_duplicates("alert")
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

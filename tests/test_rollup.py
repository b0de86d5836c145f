"""Roll-ups: networks an analyst can take on, members' roles, entities ranked by suspicion."""

import networkx as nx
import pandas as pd
import pytest

from tbml.networks import MAX_NETWORK_SIZE, communities, evidence_links
from tbml.rollup import ITEM_COLUMNS, entity_rollup, network_rollup, rollup


def alert_frame(rows):
    """Alerts from (importer, exporter, payer, payee, third party, risk, typology) rows."""
    cols = ["importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id", "risk", "suspected_typology"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["item"] = frame["importer_id"].notna().map({True: "invoice", False: "transfer"})
    frame["reporting_value"] = 100.0
    return frame


def test_rollups_group_alerts_by_entity_and_network():
    alerts = pd.DataFrame({
        "importer_id": ["A", "A", "X"], "exporter_id": ["B", "C", "Y"], "payer_id": [None, None, None],
        "risk": [90.0, 50.0, 40.0], "reporting_value": [100.0, 10.0, 5.0],
        "suspected_typology": ["over_invoicing", "structuring", "circular_trade"],
    })
    entities = entity_rollup(alerts)
    a = entities.set_index("entity").loc["A"]
    assert (a["alerts"], a["risk_sum"], a["value"], a["network"]) == (2, 140.0, 110.0, "N1")
    networks = network_rollup(alerts)
    assert networks["entities"].tolist() == [3, 2]
    assert networks["members"].iloc[0] == "A (importer), B (exporter), C (exporter)"
    assert networks["risk_sum"].tolist() == [140.0, 40.0]
    assert networks["typologies"].iloc[0] == "over_invoicing (1), structuring (1)"


def test_a_large_component_is_split_into_communities_of_at_most_the_cap():
    # two dense cliques of 6 joined by one weak link: one component, two communities
    rows = [(f"L{i}", f"L{j}", None, None, None, 90.0, "over_invoicing") for i in range(6) for j in range(i + 1, 6)]
    rows += [(f"R{i}", f"R{j}", None, None, None, 90.0, "over_invoicing") for i in range(6) for j in range(i + 1, 6)]
    rows += [("L0", "R0", None, None, None, 31.0, "structuring")]
    alerts = alert_frame(rows)
    whole = communities(alerts, max_size=50)
    assert whole.nunique() == 1
    split = communities(alerts, max_size=6)
    assert split.groupby(split).size().max() <= 6
    assert split[[f"L{i}" for i in range(6)]].nunique() == 1 and split["L0"] != split["R0"]


def test_a_star_louvain_keeps_whole_is_still_cut_to_the_cap():
    alerts = alert_frame([("HUB", f"S{i:02d}", None, None, None, 50.0, "") for i in range(30)])
    found = communities(alerts, max_size=8)
    assert found.groupby(found).size().max() <= 8
    assert set(found.index) == {"HUB", *(f"S{i:02d}" for i in range(30))}


def test_links_are_weighted_by_the_risk_of_their_alerts():
    alerts = alert_frame([("A", "B", None, None, None, 80.0, ""), ("B", "A", None, None, None, 40.0, ""),
                          (None, None, "P", "B", None, 50.0, "")])
    links = evidence_links(alerts).set_index(["a", "b"])["weight"]
    assert links.to_dict() == {("A", "B"): pytest.approx(1.2), ("B", "P"): pytest.approx(0.5)}


def test_roles_in_a_network():
    alerts = alert_frame([
        ("IMP", "EXP", None, None, "PAYER", 70.0, "third_party_payment"),  # PAYER pays IMP's invoice
        ("IMP", "TRADER", None, None, None, 60.0, "circular_trade"),
        ("TRADER", "EXP", None, None, None, 60.0, "circular_trade"),    # TRADER buys and sells
        ("IMP2", "EXP", None, None, None, 40.0, "over_invoicing"),
        (None, None, "CASH", "EXP", None, 50.0, "phantom_shipment"),    # only ever a party to a payment
    ])
    roles = rollup(alerts).entities.set_index("entity")["role"]
    assert roles.to_dict() == {"PAYER": "money", "CASH": "money", "TRADER": "trading company",
                               "IMP": "importer", "IMP2": "importer", "EXP": "exporter"}


def test_ranking_puts_a_small_trader_mostly_alerted_above_a_large_one_with_a_few_alerts():
    alerts = alert_frame([("SMALL", f"X{i}", None, None, None, 70.0, "over_invoicing") for i in range(25)]
                         + [("LARGE", f"Y{i}", None, None, None, 90.0, "over_invoicing") for i in range(30)])
    items = pd.concat([alerts,
                       alert_frame([("SMALL", "X0", None, None, None, 0.0, "")] * 5
                                   + [("LARGE", "Y0", None, None, None, 0.0, "")] * 2970)], ignore_index=True)
    entities = rollup(alerts, items).entities.set_index("entity")
    small, large = entities.loc["SMALL"], entities.loc["LARGE"]
    assert small["rank"] < large["rank"] and small["rank"] == 1
    assert (small["alerts"], small["lines"], large["alerts"], large["lines"]) == (25, 30, 30, 3000)
    # volume beside it: the large trader moves far more
    assert large["volume"] == 300_000.0 and large["volume_rank"] == 1 and small["volume"] == 3000.0
    assert large["drawn_in"] and not small["drawn_in"]
    # the risk sum alone would have put the large trader first
    assert large["risk_sum"] > small["risk_sum"]


def test_a_scored_file_gives_every_alert_and_entity_a_network_of_the_table(scored_run):
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    entities = pd.read_csv(scored_run / "entities.csv")
    networks = pd.read_csv(scored_run / "networks.csv")
    named = set(networks["network"])
    assert alerts["network"].notna().all() and set(alerts["network"]) <= named
    assert entities["network"].notna().all() and set(entities["network"]) == named
    assert networks["entities"].max() <= MAX_NETWORK_SIZE
    # every member listed, each network's entities counted from the entity table
    listed = networks.set_index("network")["members"].str.split(", ").map(lambda m: {x.split(" (")[0] for x in m})
    for network, members in entities.groupby("network")["entity"]:
        assert listed[network] == set(members)
    assert networks.set_index("network")["entities"].to_dict() == entities.groupby("network").size().to_dict()
    assert (networks.set_index("network")["alerts"].sum()) == len(alerts)
    assert networks["rank"].tolist() == list(range(1, len(networks) + 1))
    assert networks["evidence"].is_monotonic_decreasing and entities["suspicion"].is_monotonic_decreasing


def test_a_smaller_cap_on_a_scored_file_is_kept_and_each_network_is_connected(scored_run):
    alerts = pd.read_parquet(scored_run / "alerts.parquet")
    items = pd.read_parquet(scored_run / "items.parquet", columns=list(ITEM_COLUMNS))
    rolled = rollup(alerts, items, max_network_size=10)
    assert rolled.networks["entities"].max() <= 10
    links = evidence_links(alerts)
    graph = nx.Graph(list(zip(links["a"], links["b"])))
    for _, members in rolled.entities.groupby("network")["entity"]:
        if len(members) > 1:
            assert nx.is_connected(graph.subgraph(members))

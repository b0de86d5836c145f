"""How the graph of alerted evidence is split into networks: hand-built cases where the split could go
wrong."""

import pandas as pd

from tbml.networks import alert_networks, communities


def invoices(rows):
    """Invoice alerts from (importer, exporter, third party, risk) rows."""
    frame = pd.DataFrame(rows, columns=["importer_id", "exporter_id", "third_party_id", "risk"])
    frame["item"] = "invoice"
    return frame


def test_a_third_party_paying_several_traders_invoices_is_in_one_network_with_them():
    # PAYER pays the invoices of three unrelated trading pairs; importer I1 also trades with a tight group
    # of four, so the whole (11 parties) is over the cap of 10 and must be split; 40 unrelated alerted
    # pairs stand for the rest of the file
    paid = [(f"I{k}", f"E{k}", "PAYER", 70.0) for k in (1, 2, 3)]
    group = [(f"G{i}", f"G{j}", None, 50.0) for i in range(4) for j in range(i + 1, 4)]
    elsewhere = [(f"A{i}", f"B{i}", None, 60.0) for i in range(40)]
    alerts = invoices(paid + group + [("I1", "G0", None, 70.0)] + elsewhere)
    found = communities(alerts, max_size=10)
    assert found[["PAYER", "I1", "E1", "I2", "E2", "I3", "E3"]].nunique() == 1
    assert found.groupby(found).size().max() <= 10
    # and every invoice it paid is filed with it
    assert (alert_networks(alerts, found)[:3] == found["PAYER"]).all()


def test_the_cap_keeps_a_busy_trader_with_the_partner_it_has_most_evidence_with():
    # HUB has 40 one-off counterparties and one partner, BIG, with whom it shares many strong alerts;
    # modularity keeps the star whole, so the cap must decide who stays with HUB
    rows = [("HUB", f"S{i:02d}", None, 35.0) for i in range(40)] + [("HUB", "BIG", None, 90.0)] * 20
    found = communities(invoices(rows), max_size=8)
    assert found["HUB"] == found["BIG"]
    assert found.groupby(found).size().max() <= 8


def test_an_alert_goes_to_the_network_where_it_weighs_most():
    # T's only alert is on an invoice between two busy traders filed elsewhere: it is T's case, though
    # two of its three parties (and the importer, who breaks ties) are in other networks
    rows = [("BUSY_I", "BUSY_E", "T", 60.0)] + [("BUSY_I", f"X{i}", None, 50.0) for i in range(5)]
    rows += [(f"Y{i}", "BUSY_E", None, 50.0) for i in range(5)]
    community = pd.Series({"BUSY_I": 0, "BUSY_E": 1, "T": 2, **{f"X{i}": 0 for i in range(5)},
                           **{f"Y{i}": 1 for i in range(5)}})
    networks = alert_networks(invoices(rows), community)
    assert networks.tolist() == [2] + [0] * 5 + [1] * 5

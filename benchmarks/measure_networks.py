"""Networks and the entity ranking measured on a labelled scored run (labels only measure: nothing here
chooses a parameter). Not a speed benchmark, so `make bench` leaves it out.

    tbml generate --invoices 200000 --seed 1 -o /tmp/net && \\
      tbml score /tmp/net/invoices.csv --transfers /tmp/net/transfers.csv -o /tmp/net/out
    .venv/bin/python benchmarks/measure_networks.py /tmp/net/out

Ends with one JSON line of figures.

A scheme is "inside one network" when all its alerted members are in one (``*_all_in_one``; the mean
share of its members in its most common network beside it). A party with at least as many alerted
counterparties as a network holds (a hub: here large, ordinary traders) can share a network with only a
few of them, so the strict figure is also given for schemes none of whose members is a hub, and a
third-party scheme is also judged as an investigator opens it: does the third party's network hold the
alert of the invoice it paid (``third_party_payer_holds_alert``) and one of its two traders?
"""

import json
import sys
import time

import networkx as nx
import numpy as np
import pandas as pd

from tbml.networks import MAX_NETWORK_SIZE, evidence_links
from tbml.rollup import rollup

PARTIES = ["importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id"]


def main(run: str) -> dict:
    alerts = pd.read_parquet(f"{run}/alerts.parquet")
    columns = ["item", *PARTIES, "reporting_value", "is_laundering", "typology", "hs6", "invoice_id"]
    items = pd.read_parquet(f"{run}/items.parquet", columns=columns)
    started = time.perf_counter()
    result = rollup(alerts, items)
    seconds = time.perf_counter() - started
    entities, networks = result.entities, result.networks
    member = dict(zip(entities["entity"], entities["network"]))
    alerted = set(pd.concat([alerts[c] for c in PARTIES if c in alerts]).dropna().astype(str))
    sizes = pd.Series(member).value_counts()
    links = evidence_links(alerts)
    inside = links["a"].map(member) == links["b"].map(member)
    figures = {"alerts": len(alerts), "alerted_parties": len(alerted), "networks": len(networks),
               "largest_network": int(sizes.max()), "largest_share": round(float(sizes.max() / len(alerted)), 4),
               "median_network": int(sizes.median()), "single_party_networks": int((sizes == 1).sum()),
               "networks_without_alerts": int((networks["alerts"] == 0).sum()),
               "evidence_inside": round(float(links["weight"][inside].sum() / links["weight"].sum()), 3),
               "rollup_seconds": round(seconds, 2)}
    print(f"roll-up {seconds:.1f} s; {figures}")
    # labelled schemes: a ring is the connected traders of one HS6's circular-trade lines; a third-party
    # scheme is an invoice's importer, exporter and third party
    invoices = items[items["item"] == "invoice"]
    schemes = []
    for _, legs in invoices[invoices["typology"] == "circular_trade"].groupby("hs6"):
        graph = nx.Graph()
        graph.add_edges_from(zip(legs["importer_id"], legs["exporter_id"]))
        schemes += [("ring", set(c)) for c in nx.connected_components(graph)]
    third = invoices[invoices["typology"] == "third_party_payment"]
    schemes += [("third_party", {a, b, c}) for a, b, c in
                zip(third["importer_id"], third["exporter_id"], third["third_party_id"]) if isinstance(c, str)]
    counterparties = pd.concat([links["a"], links["b"]]).value_counts()
    hubs = set(counterparties.index[counterparties >= MAX_NETWORK_SIZE])
    for kind in ("ring", "third_party"):
        purity, on_hub = [], []
        for k, members in schemes:
            nets = pd.Series([member[m] for m in members if m in member])
            if k == kind and len(nets) >= 2:
                purity.append(nets.value_counts().iloc[0] / len(nets))
                on_hub.append(bool(members & hubs))
        purity, on_hub = np.array(purity), np.array(on_hub, dtype=bool)
        figures[f"{kind}_schemes"] = len(purity)
        figures[f"{kind}_mean_share_in_one_network"] = round(float(purity.mean()), 3) if len(purity) else None
        figures[f"{kind}_all_in_one"] = round(float(np.mean(purity == 1)), 3) if len(purity) else None
        figures[f"{kind}_schemes_with_a_hub"] = int(on_hub.sum())
        off_hub = purity[~on_hub]
        figures[f"{kind}_all_in_one_without_hubs"] = round(float(np.mean(off_hub == 1)), 3) if len(off_hub) else None
    # as an investigator opens a third-party scheme: from the third party's network
    network_of_invoice = dict(zip(result.alerts["invoice_id"], result.alerts["network"]))
    paid = third[third["third_party_id"].notna() & third["invoice_id"].isin(network_of_invoice.keys())]
    payer_net = paid["third_party_id"].map(member)
    figures["third_party_payer_holds_alert"] = round(float(
        (paid["invoice_id"].map(network_of_invoice) == payer_net).mean()), 3)
    figures["third_party_payer_with_a_trader"] = round(float(
        ((paid["importer_id"].map(member) == payer_net) | (paid["exporter_id"].map(member) == payer_net)).mean()), 3)
    lines = pd.concat([items[[c, "is_laundering"]].rename(columns={c: "entity"}) for c in PARTIES if c in items])
    share = lines.dropna(subset=["entity"]).groupby("entity")["is_laundering"].mean()
    top = entities.head(20)["entity"].astype(str)
    figures["top20_laundering_share"] = round(float(share.reindex(top).mean()), 3)
    figures["base_rate"] = round(float(items["is_laundering"].mean()), 3)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))

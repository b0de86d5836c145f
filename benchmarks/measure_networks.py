"""Networks and the entity ranking measured on a labelled scored run (labels only measure: nothing here
chooses a parameter). Not a speed benchmark, so `make bench` leaves it out.

    tbml generate --invoices 200000 --seed 1 -o /tmp/net && \\
      tbml score /tmp/net/invoices.csv --transfers /tmp/net/transfers.csv -o /tmp/net/out
    .venv/bin/python benchmarks/measure_networks.py /tmp/net/out

Ends with one JSON line of figures.
"""

import json
import sys
import time

import networkx as nx
import numpy as np
import pandas as pd

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
    figures = {"alerts": len(alerts), "alerted_parties": len(alerted), "networks": len(networks),
               "largest_network": int(sizes.max()), "largest_share": round(float(sizes.max() / len(alerted)), 4),
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
    for kind in ("ring", "third_party"):
        purity = []
        for k, members in schemes:
            nets = pd.Series([member[m] for m in members if m in member])
            if k == kind and len(nets) >= 2:
                purity.append(nets.value_counts().iloc[0] / len(nets))
        purity = np.array(purity)
        figures[f"{kind}_schemes"] = len(purity)
        figures[f"{kind}_mean_share_in_one_network"] = round(float(purity.mean()), 3) if len(purity) else None
        figures[f"{kind}_all_in_one"] = round(float(np.mean(purity == 1)), 3) if len(purity) else None
    lines = pd.concat([items[[c, "is_laundering"]].rename(columns={c: "entity"}) for c in PARTIES if c in items])
    share = lines.dropna(subset=["entity"]).groupby("entity")["is_laundering"].mean()
    top = entities.head(20)["entity"].astype(str)
    figures["top20_laundering_share"] = round(float(share.reindex(top).mean()), 3)
    figures["base_rate"] = round(float(items["is_laundering"].mean()), 3)
    return figures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))

"""Networks and entity ranking measured against a labelled scored run: .venv/bin/python benchmarks/bench_networks.py RUN_DIR

Labels only measure: nothing here chooses a parameter."""
import sys, time
import numpy as np, pandas as pd

run = sys.argv[1]
alerts = pd.read_parquet(f"{run}/alerts.parquet")
cols = ["item", "importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id", "reporting_value",
        "is_laundering", "typology", "hs6", "invoice_id"]
items = pd.read_parquet(f"{run}/items.parquet", columns=cols)
from tbml import rollup as R
t = time.perf_counter()
if hasattr(R, "rollup"):
    r = R.rollup(alerts, items); ents, nets = r.entities, r.networks
    member = dict(zip(ents["entity"], ents["network"]))
else:
    ents = R.entity_rollup(alerts); nets, member = R.networks_and_members(alerts)
print(f"roll-up {time.perf_counter()-t:.1f} s")
parties = ["importer_id", "exporter_id", "payer_id", "payee_id", "third_party_id"]
def named(frame):
    return pd.concat([frame[[c, "is_laundering", "reporting_value"]].rename(columns={c: "entity"}) for c in parties if c in frame]).dropna(subset=["entity"])
alerted = set(pd.concat([alerts[c] for c in parties]).dropna().astype(str))
traders = set(pd.concat([alerts[c] for c in ["importer_id", "exporter_id"]]).dropna().astype(str))
sizes = pd.Series(member).value_counts()
print(f"alerts {len(alerts)}, alerted parties {len(alerted)} (traders {len(traders)}); networks {len(nets)}; "
      f"largest {sizes.max()} parties = {sizes.max()/len(alerted):.1%} of alerted parties; "
      f"networks of >=2: {(sizes>=2).sum()}; parties in a network {len(member)}")
# labelled schemes: rings = connected groups of labelled circular_trade invoices per hs6
inv = items[items["item"] == "invoice"]
ring = inv[inv["typology"] == "circular_trade"]
import networkx as nx
schemes = []
for hs6, legs in ring.groupby("hs6"):
    g = nx.Graph(); g.add_edges_from(zip(legs["importer_id"], legs["exporter_id"]))
    schemes += [("ring", set(c)) for c in nx.connected_components(g)]
tp = inv[(inv["typology"] == "third_party_payment")]
schemes += [("third party", {a, b, c}) for a, b, c in zip(tp["importer_id"], tp["exporter_id"], tp["third_party_id"]) if isinstance(c, str)]
for kind in ("ring", "third party"):
    purity, size, kept = [], [], 0
    for k, members in schemes:
        if k != kind: continue
        nets_of = [member[m] for m in members if m in member]
        if len(nets_of) < 2: continue
        kept += 1
        top, n = pd.Series(nets_of).value_counts().index[0], pd.Series(nets_of).value_counts().iloc[0]
        purity.append(n / len(nets_of)); size.append(sizes[top])
    purity = np.array(purity)
    print(f"{kind}: {kept} schemes with >=2 alerted members; share of alerted members in their most common network "
          f"mean {purity.mean():.2f}, median {np.median(purity):.2f}, all in one {np.mean(purity==1):.0%}; median size of that network {np.median(size):.0f}")
# entity ranking
lab = named(items).groupby("entity")["is_laundering"].agg(["mean", "size"])
base = items["is_laundering"].mean()
top = ents.head(20)["entity"].astype(str)
share = lab.reindex(top)["mean"]
pooled = named(items)[lambda d: d["entity"].isin(set(top))]["is_laundering"].mean()
print(f"top-20 entities: mean laundering share of their lines {share.mean():.3f}, pooled {pooled:.3f}; base rate {base:.3f}; "
      f"their lines median {lab.reindex(top)['size'].median():.0f}")

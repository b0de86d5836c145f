"""Labelled synthetic trade invoices and payments with injected TBML typologies.

    data = generate(n_invoices=100_000, laundering_rate=0.02, seed=7)
    data.invoices, data.transfers   # canonical columns + is_laundering, typology, strength

Honest trade is not trivially separable from laundering: prices are log-normal per product with corridor,
trend and seasonal effects, bulk discounts, discounts and a few honest odd prices; entity sizes are
heavy-tailed; payments come late, early, in parts, with bank charges, or not yet; some honest payments
have no invoice or come from a parent company. Each injected case has a strength in [0, 1], from subtle
(inside honest noise) to blatant. The same seed gives the same data.

``laundering_rate`` is the number of injected cases per invoice, spread evenly over the typologies; cases
that append invoices (multiple invoicing, circular trade, unrelated goods) label several invoices each, and
phantom shipments label only transfers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tbml.fx import FxTable
from tbml.synth import typologies as ty
from tbml.synth.customs import add_declarants
from tbml.synth.habits import Habits
from tbml.synth.trade import Cols, concat, honest_unmatched, legit_invoices, settle
from tbml.synth.typologies import TYPOLOGIES
from tbml.synth.world import UNIT_SPELLINGS, build_world

__all__ = ["SyntheticData", "generate", "TYPOLOGIES", "Habits"]


@dataclass
class SyntheticData:
    invoices: pd.DataFrame
    transfers: pd.DataFrame
    summary: dict


def generate(
    n_invoices: int = 100_000,
    laundering_rate: float = 0.02,
    seed: int = 0,
    start: str = "2022-07-01",
    days: int = 730,
    typologies: tuple[str, ...] = TYPOLOGIES,
    fx: FxTable | None = None,
    mirror_share: float = 0.0,
    sample: int = 0,
    habits: Habits | None = None,
    declarants: str = "none",
) -> SyntheticData:
    """Generate ``n_invoices`` invoice lines with their transfers; deterministic for a given ``seed``.

    Invoices are in currencies ``fx`` (default: the built-in rates) can convert. With ``mirror_share``,
    that share of import lines also gets the exporting country's export declaration (FOB, same shipment
    reference, a few days earlier, honest figures), appended after the ``n_invoices`` import lines.

    ``seed`` fixes the world (products, prices, traders, relationships); ``sample`` draws another file
    from that same world: ``generate(50_000, seed=42, sample=1)`` is a new file from the market that
    ``generate(50_000, seed=42)`` came from. Sample 0 is the seed's own file. The world's size (traders,
    relationships) follows ``n_invoices``, so only files of the same size share a world.

    ``habits`` changes the world's knobs (see ``tbml.synth.habits``); ``declarants`` adds who declared each
    line and where: "listed" adds the columns, "fraud" also labels lines misdeclared by declarant, office
    and importer, not by price (see ``tbml.synth.customs``).
    """
    habits = habits or Habits()
    if declarants not in ("none", "listed", "fraud"):
        raise ValueError(f"declarants must be none, listed or fraud, not {declarants!r}")
    if n_invoices < 100:
        raise ValueError("n_invoices must be at least 100")
    if not 0 <= laundering_rate <= 0.5:
        raise ValueError("laundering_rate must be between 0 and 0.5")
    unknown = set(typologies) - set(TYPOLOGIES)
    if unknown:
        raise ValueError(f"unknown typology {sorted(unknown)[0]!r}; choose from {', '.join(TYPOLOGIES)}")
    rng = np.random.default_rng(seed)
    fx = fx or FxTable.load()
    world = build_world(rng, n_invoices, habits)
    # Traders whose own currency the rates do not know invoice in US dollars, as most such trade is.
    world.rel_currency = np.where(np.isin(world.rel_currency, sorted(fx.currencies)), world.rel_currency, "USD")
    if sample:
        rng = np.random.default_rng([seed, sample])
    third_parties, parents, providers = np.array_split(world.id_pool, 3)

    n_cases = round(laundering_rate * n_invoices)
    cases = {t: n_cases // len(typologies) + (i < n_cases % len(typologies)) for i, t in enumerate(typologies)}
    cases = {t: cases.get(t, 0) for t in TYPOLOGIES}
    strength = {t: rng.uniform(0, 1, cases[t]) for t in TYPOLOGIES}
    # sizes of the appended schemes are drawn first, so the honest part fills the file to n_invoices exactly
    s = strength["multiple_invoicing"]
    copies = 1 + (s > 0.7) + (s > 0.9)
    ring_sizes = rng.integers(2, 6, cases["circular_trade"])
    cycles = 1 + (strength["circular_trade"] > 0.6)
    unrelated_counts = rng.integers(1, 5, cases["unrelated_goods"])
    appended = int(copies.sum() + (ring_sizes * cycles).sum() + unrelated_counts.sum())
    n_legit = n_invoices - appended
    if n_legit < n_invoices // 2:
        raise ValueError("laundering_rate too high for this many invoices")

    inv = legit_invoices(world, rng, n_legit, days)
    honest_keys = ("value_usd", "quantity", "gross_weight_kg", "product")
    honest = {k: inv[k].copy() for k in honest_keys}
    victims = _pick_victims(inv, rng, cases)
    ty.mispricing(inv, victims["over_invoicing"], strength["over_invoicing"], +1)
    ty.mispricing(inv, victims["under_invoicing"], strength["under_invoicing"], -1)
    ty.shipment_mismatch(inv, world, rng, victims["over_under_shipment"], strength["over_under_shipment"])
    ty.misdescribe(inv, world, rng, victims["misdescribed_goods"], strength["misdescribed_goods"])
    special = [
        ty.third_party(inv, world, rng, victims["third_party_payment"], strength["third_party_payment"], third_parties),
        ty.structuring(inv, rng, victims["structuring"], strength["structuring"]),
        ty.phantom(inv, world, rng, strength["phantom_shipment"], days),
    ]
    duplicates = ty.multiple_invoicing(inv, rng, victims["multiple_invoicing"], strength["multiple_invoicing"], copies, days)
    importers = np.unique(inv["importer_id"])
    circles = ty.circular(world, rng, strength["circular_trade"], ring_sizes, cycles, days, inv)
    unrelated = ty.unrelated_goods(world, rng, strength["unrelated_goods"], unrelated_counts, days, importers, inv)
    new_shipments = len(circles["day"]) + len(unrelated["day"])
    fresh = inv["shipment"].max() + 1 + np.arange(new_shipments)
    circles["shipment"], unrelated["shipment"] = fresh[: len(circles["day"])], fresh[len(circles["day"]) :]
    inv = concat(inv, duplicates, circles, unrelated)
    honest = {k: np.concatenate([honest[k], duplicates[k], circles[k], unrelated[k]]) for k in honest_keys}

    pay = concat(
        settle(inv, rng, parents, habits),
        *special,
        honest_unmatched(inv, world, rng, max(1, n_invoices // 50), providers),
    )
    if mirror_share > 0:
        copies = np.zeros(len(inv["day"]), dtype=bool)
        copies[n_legit : n_legit + len(duplicates["day"])] = True
        inv = concat(inv, _export_declarations(inv, honest, rng, mirror_share, copies))
    invoices, invoice_ids = _invoice_frame(inv, world, rng, fx, start)
    transfers = _transfer_frame(pay, invoice_ids, rng, fx, start, habits.ref_share)
    if declarants != "none":
        invoices = add_declarants(invoices, np.random.default_rng([seed, sample, 77]), declarants == "fraud")
    summary = {
        "seed": seed,
        "n_invoices": len(invoices),
        "n_transfers": len(transfers),
        "export_declarations": int((invoices["declaration_side"] == "export").sum()),
        "laundering_rate": laundering_rate,
        "world": habits.changed(),
        "declarants": declarants,
        "period": [str(invoices["date"].min()), str(invoices["date"].max())],
        "cases": cases,
        "labelled_invoices": {k: int(v) for k, v in invoices["typology"].value_counts().items() if k},
        "labelled_transfers": {k: int(v) for k, v in transfers["typology"].value_counts().items() if k},
    }
    return SyntheticData(invoices, transfers, summary)


def _export_declarations(inv: Cols, honest: Cols, rng, share: float, copies: np.ndarray) -> Cols:
    """The exporting side's declaration of a share of shipments, every line of each: FOB (the import side is
    CIF), a few days before arrival, with what really shipped (``honest``: quantity, weight, value and goods
    before any scheme). A re-invoiced shipment is declared once, as it left."""
    shipment = inv["shipment"]
    chosen = rng.random(int(shipment.max()) + 1) < share
    picked = np.flatnonzero(chosen[shipment] & ~copies)
    exp = {k: v[picked].copy() for k, v in inv.items()}
    for key, values in honest.items():
        exp[key] = values[picked].copy()
    exp["value_usd"] = exp["value_usd"] / rng.uniform(1.02, 1.12, len(picked))  # less freight and insurance
    exp["day"] = np.maximum(exp["day"] - rng.integers(3, 35, len(picked)), 0)
    exp["side"] = np.full(len(picked), "export", dtype=object)
    exp["typology"] = np.full(len(picked), "", dtype=object)  # the export figures are the true ones
    exp["strength"] = np.zeros(len(picked))
    exp["special_payment"] = np.ones(len(picked), dtype=bool)  # payments settle the import invoice
    return exp


def _pick_victims(inv: Cols, rng, cases: dict[str, int]) -> dict[str, np.ndarray]:
    """Disjoint honest invoices to turn into each in-place scheme."""
    order = rng.permutation(len(inv["day"]))
    # structuring needs an invoice worth a few times the threshold, so the pieces are many but not absurd
    worth = (inv["value_usd"][order] > 2.5 * ty.REPORTING_THRESHOLD_USD) & (
        inv["value_usd"][order] < 15 * ty.REPORTING_THRESHOLD_USD
    )
    victims = {"structuring": order[worth][: cases["structuring"]]}
    rest = order[~np.isin(order, victims["structuring"])]
    at = 0
    for name in ty.IN_PLACE:
        if name == "structuring":
            continue
        victims[name] = rest[at : at + cases[name]]
        at += cases[name]
    return victims


def _invoice_frame(inv: Cols, world, rng, fx: FxTable, start: str) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(inv["day"])
    order = np.lexsort((rng.random(n), inv["day"]))  # by date; ties in random order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    invoice_id = _ids("INV", rank, 8)
    ship_numbers = rng.permutation(int(inv["shipment"].max()) + 1) + 10_000_000
    date = pd.Timestamp(start) + pd.to_timedelta(inv["day"], unit="D")
    product = inv["product"]
    unit = world.unit_of_product[product]
    spelled = np.empty(n, dtype=object)
    divisor = np.ones(n)
    for code, spellings in UNIT_SPELLINGS.items():
        rows = unit == code
        names = np.array([sp[0] for sp in spellings], dtype=object)
        spelled[rows] = names[inv["spelling"][rows]]
    tonnes = (spelled == "TNE") & (inv["quantity"] >= 1000)
    spelled[(spelled == "TNE") & ~tonnes] = "KGM"
    divisor[tonnes] = 1000.0
    currency = pd.Series(inv["currency"], dtype="string")
    per_usd = fx.per_usd(currency, pd.Series(date), max_age_days=31)
    frame = pd.DataFrame(
        {
            "invoice_id": invoice_id,
            "date": date.strftime("%Y-%m-%d"),
            "importer_id": inv["importer_id"],
            "exporter_id": inv["exporter_id"],
            "exporter_country": inv["exporter_country"],
            "importer_country": inv["importer_country"],
            "origin_country": inv["origin_country"],
            "hs_code": world.hs6[product] + inv["hs_suffix"],
            "goods_description": world.description[product],
            "quantity": np.round(inv["quantity"] / divisor, 3),
            "quantity_unit": spelled,
            "gross_weight_kg": inv["gross_weight_kg"],
            "value": np.round(inv["value_usd"] * per_usd, 2),
            "currency": inv["currency"],
            "shipment_ref": _ids("BL", ship_numbers[inv["shipment"]], 8),
            "declaration_side": inv["side"],
            "payment_terms": inv["payment_terms"],
            "transport_mode": inv["transport_mode"],
            "is_laundering": inv["typology"] != "",
            "typology": inv["typology"],
            "strength": np.round(inv["strength"], 3),
        }
    )
    return frame.iloc[order].reset_index(drop=True), invoice_id


def _transfer_frame(pay: Cols, invoice_ids: np.ndarray, rng, fx: FxTable, start: str,
                    ref_share: float) -> pd.DataFrame:
    n = len(pay["day"])
    order = np.lexsort((rng.random(n), pay["day"]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    date = pd.Timestamp(start) + pd.to_timedelta(pay["day"], unit="D")
    per_usd = fx.per_usd(pd.Series(pay["currency"], dtype="string"), pd.Series(date), max_age_days=31)
    linked = pay["invoice"] >= 0
    # banks carry the invoice number on three payments in four; the rest must be linked by parties
    cites = linked & (rng.random(n) < ref_share)
    ref = np.full(n, "", dtype=object)
    ref[cites] = invoice_ids[pay["invoice"][cites]]
    fake = pay["fake_ref"] == "missing"
    ref[fake] = _ids("INV", rng.integers(len(invoice_ids) + 1, 10 * len(invoice_ids) + 10, fake.sum()), 8)
    frame = pd.DataFrame(
        {
            "transfer_id": _ids("TR", rank, 9),
            "date": date.strftime("%Y-%m-%d"),
            "payer_id": pay["payer"],
            "payer_country": pay["payer_country"],
            "payee_id": pay["payee"],
            "payee_country": pay["payee_country"],
            "amount": np.round(pay["amount_usd"] * per_usd, 2),
            "currency": pay["currency"],
            "invoice_ref": ref,
            "channel": pay["channel"],
            "is_laundering": pay["typology"] != "",
            "typology": pay["typology"],
            "strength": np.round(pay["strength"], 3),
        }
    )
    return frame.iloc[order].reset_index(drop=True)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers).astype(str).str.zfill(width)).to_numpy(dtype=object)

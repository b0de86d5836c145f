"""The ten TBML typologies of DESIGN.md, injected into honest trade with a strength from subtle (0) to
blatant (1). In-place schemes alter chosen invoices; the others append invoices or payments.

Every function returns what it adds: ``(invoices, transfers)``, either possibly empty. Labels go on every
invoice and transfer that is part of a scheme.
"""

from __future__ import annotations

import numpy as np

from tbml.schema import TYPOLOGIES
from tbml.synth.trade import Cols, expected_log_price, take, transfer_table
from tbml.synth.world import World

IN_PLACE = ("over_invoicing", "under_invoicing", "over_under_shipment", "misdescribed_goods",
            "third_party_payment", "structuring", "multiple_invoicing")
# hubs that trade-finance typology reports name often as third-party payers
PAYMENT_HUBS = ("AE", "HK", "PA", "TR", "SG")
REPORTING_THRESHOLD_USD = 10_000.0  # the common currency-transaction-report threshold (e.g. US CTR)


def _mark(inv: Cols, idx: np.ndarray, name: str, strength: np.ndarray) -> None:
    inv["typology"][idx] = name
    inv["strength"][idx] = strength


def mispricing(inv: Cols, idx, strength, direction: int) -> None:
    """Over- (+1) or under-invoicing (-1): the unit price moves by 1.4x (subtle) to 9.5x (blatant)."""
    inv["value_usd"][idx] *= np.exp(direction * (0.35 + 1.9 * strength))
    _mark(inv, idx, "over_invoicing" if direction > 0 else "under_invoicing", strength)


def shipment_mismatch(inv: Cols, world: World, rng, idx, strength) -> None:
    """Declared quantity (with value) or declared weight disagrees with the goods actually shipped."""
    factor = np.exp(rng.choice([-1, 1], len(idx)) * (0.4 + 1.6 * strength))
    weight = inv["gross_weight_kg"][idx]
    unknown = np.isnan(weight)
    weight[unknown] = inv["quantity"][idx][unknown] * world.kg_per_unit[inv["product"][idx][unknown]] * 1.05
    by_quantity = rng.random(len(idx)) < 0.5
    counted = np.isin(world.unit_of_product[inv["product"][idx]], ["NAR", "NPR"])
    new_q = inv["quantity"][idx] * factor
    new_q = np.where(counted, np.maximum(1, np.round(new_q)), np.round(new_q, 1).clip(0.1))
    scale = new_q / inv["quantity"][idx]
    inv["quantity"][idx] = np.where(by_quantity, new_q, inv["quantity"][idx])
    inv["value_usd"][idx] *= np.where(by_quantity, scale, 1.0)
    inv["gross_weight_kg"][idx] = np.round(np.where(by_quantity, weight, weight * factor), 1).clip(0.1)
    _mark(inv, idx, "over_under_shipment", strength)


def misdescribe(inv: Cols, world: World, rng, idx, strength) -> None:
    """Declared HS code of other goods in the same unit; value and weight stay those of the real goods."""
    product = inv["product"][idx]
    for k, (p, s) in enumerate(zip(product, strength)):
        same_unit = np.flatnonzero(
            (world.unit_of_product == world.unit_of_product[p])
            & (world.chapter_of_product != world.chapter_of_product[p])
        )
        if not len(same_unit):
            continue
        gap = np.abs(world.log_price[same_unit] - world.log_price[p])
        target = 0.5 + 2.5 * s  # subtle: a cousin product; blatant: goods priced an order of magnitude apart
        near = same_unit[np.argsort(np.abs(gap - target))[:3]]
        product[k] = rng.choice(near)
    inv["product"][idx] = product
    _mark(inv, idx, "misdescribed_goods", strength)


def third_party(inv: Cols, world: World, rng, idx, strength, payers: np.ndarray) -> Cols:
    """Paid by (or to) someone who is neither party to the trade, often from a payment hub."""
    n = len(idx)
    inv["special_payment"][idx] = True
    _mark(inv, idx, "third_party_payment", strength)
    hub = np.array([c for c in PAYMENT_HUBS if c in set(world.country)])
    outsider = np.where(rng.random(n) < 0.6, rng.choice(hub, n), rng.choice(world.country, n))
    # subtle cases pay from the importer's own country, as a related company would
    outsider = np.where(strength < 0.3, inv["importer_country"][idx], outsider)
    swap_payee = rng.random(n) < 0.25
    third = rng.choice(payers, n)
    return transfer_table(
        invoice=idx,
        day=inv["day"][idx] + rng.integers(0, 60, n),
        payer=np.where(swap_payee, inv["importer_id"][idx], third),
        payer_country=np.where(swap_payee, inv["importer_country"][idx], outsider),
        payee=np.where(swap_payee, third, inv["exporter_id"][idx]),
        payee_country=np.where(swap_payee, outsider, inv["exporter_country"][idx]),
        amount_usd=inv["value_usd"][idx],
        currency=np.where(rng.random(n) < 0.7, "USD", inv["currency"][idx]),
        channel=np.where(rng.random(n) < 0.7, "wire", "exchange_house").astype(object),
        typology=np.full(n, "third_party_payment", dtype=object),
        strength=strength,
    )


def structuring(inv: Cols, rng, idx, strength) -> Cols:
    """One invoice paid in many transfers each just under the reporting threshold, within days."""
    inv["special_payment"][idx] = True
    _mark(inv, idx, "structuring", strength)
    value = inv["value_usd"][idx]
    pieces = np.ceil(value / rng.uniform(0.80, 0.98, len(idx)) / REPORTING_THRESHOLD_USD).astype(np.int64)
    invoice = np.repeat(idx, pieces)
    s = np.repeat(strength, pieces)
    amount = np.repeat(value / pieces, pieces) * np.exp(rng.normal(0, 0.02, len(invoice)))
    amount = np.minimum(amount, REPORTING_THRESHOLD_USD * rng.uniform(0.95, 0.999, len(invoice)))
    window = np.round(2 + (1 - s) * 25).astype(np.int64)  # blatant: all in two days
    channel = np.where(rng.random(len(invoice)) < 0.3 + 0.6 * s, "cash", "wire").astype(object)
    channel[rng.random(len(invoice)) < 0.3] = "exchange_house"
    return transfer_table(
        invoice=invoice,
        day=inv["day"][invoice] + rng.integers(0, 1 << 20, len(invoice)) % (window + 1),
        payer=inv["importer_id"][invoice],
        payer_country=inv["importer_country"][invoice],
        payee=inv["exporter_id"][invoice],
        payee_country=inv["exporter_country"][invoice],
        amount_usd=amount,
        currency=np.full(len(invoice), "USD", dtype=object),
        channel=channel,
        typology=np.full(len(invoice), "structuring", dtype=object),
        strength=s,
    )


def multiple_invoicing(inv: Cols, rng, idx, strength, copies: np.ndarray, n_days: int) -> Cols:
    """The same shipment invoiced again (same shipment reference and goods), each invoice paid."""
    _mark(inv, idx, "multiple_invoicing", strength)
    src = np.repeat(idx, copies)
    dup = take(inv, src)
    dup["day"] = np.minimum(dup["day"] + rng.integers(0, 46, len(src)), n_days - 1)
    subtle = dup["strength"] < 0.5
    dup["value_usd"] = dup["value_usd"] * np.where(subtle, rng.uniform(0.97, 1.03, len(src)), 1.0)
    return dup


def phantom(inv: Cols, world: World, rng, strength, n_days: int) -> Cols:
    """Payments for shipments that never happened: no invoice, or a reference to one that does not exist."""
    n = len(strength)
    exporters = world.trader_id[world.trader_exports]
    importers = world.trader_id[world.trader_imports]
    payer_idx = rng.integers(0, len(importers), n)
    # subtle phantoms pay a real trading partner; blatant ones pay strangers
    partner = rng.integers(0, len(inv["day"]), n)
    use_partner = strength < 0.5
    payer = np.where(use_partner, inv["importer_id"][partner], importers[payer_idx])
    payee = np.where(use_partner, inv["exporter_id"][partner], rng.choice(exporters, n))
    country_of = dict(zip(world.trader_id, world.country[world.trader_country]))
    fake = np.where(rng.random(n) < 0.4, "missing", "").astype(object)
    return transfer_table(
        invoice=np.full(n, -1),
        day=rng.integers(0, n_days, n),
        payer=payer,
        payer_country=np.array([country_of[p] for p in payer], dtype=object),
        payee=payee,
        payee_country=np.array([country_of[p] for p in payee], dtype=object),
        amount_usd=np.exp(rng.normal(np.log(30_000), 1.0, n)),
        currency=np.where(rng.random(n) < 0.8, "USD", "EUR").astype(object),
        channel=np.where(rng.random(n) < 0.8, "wire", "exchange_house").astype(object),
        typology=np.full(n, "phantom_shipment", dtype=object),
        strength=strength,
        fake_ref=fake,
    )


def circular(world: World, rng, strength, ring_sizes, cycles, n_days: int, template: Cols) -> Cols:
    """Goods going round a ring of traders (A -> B -> ... -> A), origin the first trader's country."""
    rows = []
    for s, k, c in zip(strength, ring_sizes, cycles):
        ring = rng.choice(len(world.trader_id), size=k, replace=False)
        product = rng.integers(0, len(world.hs6))
        legs = k * c
        gaps = rng.integers(3, 8 + int((1 - s) * 25), legs)
        start = rng.integers(0, max(1, n_days - gaps.sum()))
        day = start + np.cumsum(gaps) - gaps[0]
        seller = ring[np.arange(legs) % k]
        buyer = ring[(np.arange(legs) + 1) % k]
        quantity = np.exp(world.log_qty[product] + rng.normal(0, 0.5)) * np.exp(rng.normal(0, 0.03, legs))
        exp_c = world.trader_country[seller]
        markup = np.cumprod(np.full(legs, 1.0 + 0.08 * s))  # blatant rings inflate value each hop
        log_p = expected_log_price(world, np.full(legs, product), exp_c, day) + rng.normal(0, 0.15, legs)
        rows.append(
            dict(
                day=day, seller=seller, buyer=buyer, product=np.full(legs, product),
                quantity=quantity, value_usd=np.exp(log_p) * quantity * markup, strength=np.full(legs, s),
                origin=np.full(legs, world.trader_country[ring[0]]),
            )
        )
    return _as_invoices(world, rng, rows, "circular_trade", template)


def unrelated_goods(world: World, rng, strength, counts, n_days: int, importers: np.ndarray, template: Cols) -> Cols:
    """A trader suddenly buying goods far from its usual chapters, late in the period."""
    rows = []
    tid = {t: i for i, t in enumerate(world.trader_id)}
    for s, m in zip(strength, counts):
        buyer = tid[rng.choice(importers)]
        usual = set(world.trader_chapters[buyer][world.trader_chapters[buyer] >= 0])
        foreign = np.flatnonzero(~np.isin(world.chapter_of_product, list(usual)))
        product = rng.choice(foreign, size=m)
        sellers = np.flatnonzero(world.trader_exports & (world.trader_country != world.trader_country[buyer]))
        seller = rng.choice(sellers, size=m)
        day = rng.integers(int(n_days * 0.6), n_days, m)
        quantity = np.exp(world.log_qty[product] + rng.normal(0, 0.6, m))
        log_p = expected_log_price(world, product, world.trader_country[seller], day)
        log_p += rng.normal(0, 1, m) * world.price_sigma[product] + (0.6 * s if s > 0.6 else 0.0)
        rows.append(
            dict(
                day=day, seller=seller, buyer=np.full(m, buyer), product=product, quantity=quantity,
                value_usd=np.exp(log_p) * quantity, strength=np.full(m, s), origin=world.trader_country[seller],
            )
        )
    return _as_invoices(world, rng, rows, "unrelated_goods", template)


def _as_invoices(world: World, rng, rows: list[dict], typology: str, template: Cols) -> Cols:
    if not rows:
        return {k: v[:0] for k, v in template.items()}
    r = {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}
    n = len(r["day"])
    counted = np.isin(world.unit_of_product[r["product"]], ["NAR", "NPR"])
    quantity = np.where(counted, np.maximum(1, np.round(r["quantity"])), np.round(r["quantity"], 1).clip(0.1))
    weight = np.round(quantity * world.kg_per_unit[r["product"]] * rng.uniform(1.01, 1.12, n), 1).clip(0.1)
    return {
        "day": r["day"].astype(np.int64),
        "shipment": np.full(n, -1),  # given fresh numbers by the caller
        "exporter_id": world.trader_id[r["seller"]],
        "importer_id": world.trader_id[r["buyer"]],
        "exporter_country": world.country[world.trader_country[r["seller"]]],
        "importer_country": world.country[world.trader_country[r["buyer"]]],
        "origin_country": world.country[r["origin"]],
        "product": r["product"],
        "quantity": quantity,
        "gross_weight_kg": weight,
        "value_usd": r["value_usd"],
        "currency": np.where(rng.random(n) < 0.7, "USD", "EUR").astype(object),
        "spelling": np.zeros(n, dtype=np.int64),
        "hs_suffix": np.full(n, "", dtype=object),
        "payment_terms": np.full(n, "open_account", dtype=object),
        "transport_mode": np.full(n, "sea", dtype=object),
        "typology": np.full(n, typology, dtype=object),
        "strength": r["strength"],
        "special_payment": np.zeros(n, dtype=bool),
        "side": np.full(n, "import", dtype=object),
    }

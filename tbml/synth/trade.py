"""Legitimate invoices and the payments that settle them, as columns of numpy arrays.

A table here is a dict of equal-length arrays (``Cols``); ``take`` and ``concat`` are all it needs.
Money is kept in USD until the end, when ``tbml.synth`` converts it to each invoice's currency.
"""

from __future__ import annotations

import numpy as np

from tbml.synth.world import World

Cols = dict[str, np.ndarray]
NO_TYPOLOGY = ""


def take(cols: Cols, idx: np.ndarray) -> Cols:
    return {k: v[idx] for k, v in cols.items()}


def concat(*tables: Cols) -> Cols:
    keys = tables[0].keys()
    return {k: np.concatenate([t[k] for t in tables]) for k in keys}


def expected_log_price(world: World, product: np.ndarray, exporter_country: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Log USD price per canonical unit an honest trader would charge: product level, trend, season, corridor."""
    years = day / 365.25
    season = world.season_amp[product] * np.sin(2 * np.pi * (day % 365.25) / 365.25 + world.season_phase[product])
    corridor = world.corridor_effect[exporter_country, world.chapter_of_product[product]]
    return world.log_price[product] + world.price_trend[product] * years + season + corridor


def legit_invoices(world: World, rng: np.random.Generator, n: int, n_days: int) -> Cols:
    """``n`` honest invoice lines; shipments carry 1-3 lines of different products."""
    lines_per_shipment = rng.choice([1, 2, 3], size=n, p=[0.85, 0.10, 0.05])
    lines_per_shipment = lines_per_shipment[: np.searchsorted(np.cumsum(lines_per_shipment), n) + 1]
    n_ship = len(lines_per_shipment)
    rel = rng.choice(len(world.rel_exporter), size=n_ship, p=world.rel_weight / world.rel_weight.sum())
    ship_day = rng.integers(0, n_days, size=n_ship)
    shipment = np.repeat(np.arange(n_ship), lines_per_shipment)[:n]
    line_no = np.arange(n) - np.repeat(np.cumsum(lines_per_shipment) - lines_per_shipment, lines_per_shipment)[:n]
    rel = rel[shipment]
    day = ship_day[shipment]

    n_rel_products = (world.rel_products[rel] >= 0).sum(axis=1)
    first_slot = rng.integers(0, 3, size=n) % n_rel_products
    product = world.rel_products[rel, (first_slot + line_no) % n_rel_products]
    exporter, importer = world.rel_exporter[rel], world.rel_importer[rel]
    exp_c, imp_c = world.trader_country[exporter], world.trader_country[importer]

    # quantity: product's typical lot, bigger for bigger relationships
    scale = np.log(world.rel_weight[rel] / np.median(world.rel_weight))
    log_q = world.log_qty[product] + 0.3 * scale + rng.normal(0, 0.8, n)
    quantity = _round_quantity(np.exp(log_q), world.unit_of_product[product])

    log_p = expected_log_price(world, product, exp_c, day) + world.rel_effect[rel]
    log_p += -0.04 * (np.log(quantity) - world.log_qty[product])  # bulk discount
    log_p += rng.normal(0, 1, n) * world.price_sigma[product]
    discount = rng.random(n) < 0.10
    log_p[discount] += np.log1p(-rng.uniform(0.02, 0.15, discount.sum()))
    # honest odd prices: samples, clearance sales, related-party pricing the tax office accepted
    odd = rng.random(n) < 0.008
    log_p[odd] += rng.normal(0, 0.9, odd.sum())
    value_usd = np.exp(log_p) * quantity

    return {
        "day": day,
        "shipment": shipment,
        "exporter_id": world.trader_id[exporter],
        "importer_id": world.trader_id[importer],
        "exporter_country": world.country[exp_c],
        "importer_country": world.country[imp_c],
        "origin_country": world.country[exp_c],
        "product": product,
        "quantity": quantity,
        "gross_weight_kg": _gross_weight(world, rng, product, quantity, world.rel_kg_factor[rel]),
        "value_usd": value_usd,
        "currency": world.rel_currency[rel],
        "spelling": world.rel_spelling[rel],
        "hs_suffix": world.rel_hs_suffix[rel],
        "payment_terms": world.rel_terms[rel],
        "transport_mode": world.rel_transport[rel],
        "typology": np.full(n, NO_TYPOLOGY, dtype=object),
        "strength": np.zeros(n),
        "special_payment": np.zeros(n, dtype=bool),  # a typology pays this invoice its own way
        "side": np.full(n, "import", dtype=object),
    }


def _round_quantity(quantity: np.ndarray, unit: np.ndarray) -> np.ndarray:
    counted = np.isin(unit, ["NAR", "NPR"])
    return np.where(counted, np.maximum(1.0, np.round(quantity)), np.maximum(0.1, np.round(quantity, 1)))


def _gross_weight(world: World, rng: np.random.Generator, product: np.ndarray, quantity: np.ndarray,
                  model_factor: np.ndarray) -> np.ndarray:
    n = len(product)
    packaging = rng.uniform(1.01, 1.12, n)
    spread = np.exp(rng.normal(0, 0.08, n))
    per_unit = world.kg_per_unit[product] * np.where(world.unit_of_product[product] == "KGM", 1.0, model_factor)
    weight = np.round(quantity * per_unit * packaging * spread, 1)
    weight = np.maximum(weight, 0.1)
    weight[rng.random(n) < 0.04] = np.nan  # declarations without a weight
    return weight


def settle(inv: Cols, rng: np.random.Generator, world_parents: np.ndarray, habits=None) -> Cols:
    """Honest payments for every invoice not flagged ``special_payment``: delays by payment terms,
    deposits and balances, bank charges, early-payment discounts, some invoices still unpaid."""
    n = len(inv["day"])
    split_share = habits.split_share if habits is not None else 0.15
    split_share = min(split_share, 0.97)
    pays = rng.choice([0, 1, 2], size=n, p=[0.03, 0.82, 0.15] if split_share == 0.15 else
                      [0.03, 0.97 - split_share, split_share])
    pays[inv["special_payment"]] = 0
    invoice = np.repeat(np.arange(n), pays)
    nth = np.arange(len(invoice)) - np.repeat(np.cumsum(pays) - pays, pays)
    split = pays[invoice] == 2
    deposit_share = rng.uniform(0.2, 0.4, len(invoice))
    share = np.where(split, np.where(nth == 0, deposit_share, 1.0), 1.0)
    # the balance of a split payment is whatever the deposit left
    prev_share = np.where(split & (nth == 1), np.roll(deposit_share, 1), 0.0)
    share = np.where(split & (nth == 1), 1.0 - prev_share, share)

    terms = inv["payment_terms"][invoice]
    delay = np.round(rng.lognormal(np.log(30), 0.5, len(invoice))).clip(0, 120)
    delay = np.where(terms == "advance", -rng.integers(3, 31, len(invoice)), delay)
    delay = np.where(terms == "letter_of_credit", rng.integers(0, 16, len(invoice)), delay)
    delay = np.where(split & (nth == 0), -rng.integers(10, 41, len(invoice)), delay)

    payer = inv["importer_id"][invoice].copy()
    # a parent or sister company at home pays for the importer now and then: honest, but a third party
    by_parent = rng.random(len(invoice)) < (habits.parent_share if habits is not None else 0.015)
    payer[by_parent] = rng.choice(world_parents, size=int(by_parent.sum())) if len(world_parents) else payer[by_parent]

    charge = np.where(rng.random(len(invoice)) < 0.25, rng.uniform(0, 0.004, len(invoice)), 0.0)
    charge = np.where(rng.random(len(invoice)) < 0.05, 0.02, charge)
    channel = np.where(terms == "letter_of_credit", "lc", "wire").astype(object)
    cash_like = rng.random(len(invoice))
    cash_share = habits.cash_share if habits is not None else 0.03
    cash_only = 0.01 if cash_share == 0.03 else cash_share / 3  # a third of it cash, the rest exchange houses
    channel[cash_like < cash_only] = "cash"
    channel[(cash_like >= cash_only) & (cash_like < cash_share)] = "exchange_house"
    return transfer_table(
        invoice=invoice,
        day=inv["day"][invoice] + delay.astype(np.int64),
        payer=payer,
        payer_country=inv["importer_country"][invoice],
        payee=inv["exporter_id"][invoice],
        payee_country=inv["exporter_country"][invoice],
        amount_usd=inv["value_usd"][invoice] * share * (1 - charge),
        currency=inv["currency"][invoice],
        channel=channel,
        typology=inv["typology"][invoice],
        strength=inv["strength"][invoice],
    )


def honest_unmatched(inv: Cols, world: World, rng: np.random.Generator, n: int, providers: np.ndarray) -> Cols:
    """Honest payments with no invoice in the file: freight, insurance, agents' fees. They keep
    phantom-shipment detection honest, since not every unmatched payment is a crime."""
    src = rng.integers(0, len(inv["day"]), size=n)
    return transfer_table(
        invoice=np.full(n, -1),
        day=inv["day"][src] + rng.integers(-10, 60, n),
        payer=inv["importer_id"][src],
        payer_country=inv["importer_country"][src],
        payee=rng.choice(providers, size=n),
        payee_country=np.where(rng.random(n) < 0.5, inv["exporter_country"][src], rng.choice(world.country, size=n)),
        amount_usd=inv["value_usd"][src] * rng.uniform(0.02, 0.12, n),
        currency=np.where(rng.random(n) < 0.7, "USD", inv["currency"][src]),
        channel=np.full(n, "wire", dtype=object),
        typology=np.full(n, NO_TYPOLOGY, dtype=object),
        strength=np.zeros(n),
    )


def transfer_table(**columns) -> Cols:
    n = len(columns["day"])
    columns.setdefault("fake_ref", np.full(n, "", dtype=object))
    return {k: np.asarray(v) for k, v in columns.items()}

"""The legitimate world the generator draws from: countries, products, traders and trading relationships.

Everything here is random but seeded. Numbers are chosen to look like trade data, not to match any
country's statistics: prices are log-normal per product, entity sizes heavy-tailed (Pareto), and each
trader deals in a few HS chapters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (ISO country, currency, relative trade weight)
COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("CN", "CNY", 14), ("US", "USD", 10), ("DE", "EUR", 8), ("JP", "JPY", 4), ("NL", "EUR", 4),
    ("FR", "EUR", 3.5), ("IT", "EUR", 3.5), ("GB", "GBP", 3.5), ("IN", "INR", 3.5), ("KR", "KRW", 3),
    ("ES", "EUR", 2.5), ("AE", "AED", 2.5), ("HK", "HKD", 2.5), ("CA", "CAD", 2.5), ("MX", "MXN", 2.5),
    ("SG", "SGD", 2), ("BR", "BRL", 2), ("TR", "TRY", 2), ("VN", "VND", 2), ("CH", "CHF", 1.5),
    ("TH", "THB", 1.5), ("MY", "MYR", 1.5), ("PL", "PLN", 1.5), ("AU", "AUD", 1.5), ("ID", "IDR", 1.2),
    ("SA", "SAR", 1.2), ("SE", "SEK", 1), ("ZA", "ZAR", 1), ("NG", "NGN", 0.8), ("BD", "BDT", 0.8),
    ("PK", "PKR", 0.6), ("EG", "EGP", 0.6), ("IL", "ILS", 0.6), ("CO", "COP", 0.6), ("CL", "CLP", 0.6),
    ("PE", "PEN", 0.5), ("KE", "KES", 0.4), ("PA", "USD", 0.4),
)

# HS chapter: (description, canonical unit, USD per unit, kg per unit, popularity)
CHAPTERS: dict[str, tuple[str, str, float, float, float]] = {
    "03": ("Fish and crustaceans", "KGM", 6.0, 1.0, 2),
    "08": ("Edible fruit and nuts", "KGM", 3.0, 1.0, 3),
    "09": ("Coffee, tea, mate and spices", "KGM", 5.0, 1.0, 2),
    "10": ("Cereals", "KGM", 0.3, 1.0, 2),
    "15": ("Animal or vegetable fats and oils", "KGM", 1.2, 1.0, 2),
    "17": ("Sugars and sugar confectionery", "KGM", 0.6, 1.0, 1),
    "22": ("Beverages, spirits and vinegar", "LTR", 3.0, 1.3, 2),
    "27": ("Mineral fuels and oils", "KGM", 0.7, 1.0, 3),
    "30": ("Pharmaceutical products", "KGM", 80.0, 1.0, 2),
    "39": ("Plastics and articles thereof", "KGM", 2.0, 1.0, 4),
    "40": ("Rubber and articles thereof", "KGM", 3.0, 1.0, 2),
    "44": ("Wood and articles of wood", "KGM", 0.8, 1.0, 2),
    "52": ("Cotton fabrics", "MTK", 3.0, 0.2, 2),
    "61": ("Knitted apparel", "NAR", 8.0, 0.3, 3),
    "62": ("Woven apparel", "NAR", 12.0, 0.5, 3),
    "64": ("Footwear", "NPR", 15.0, 1.0, 2),
    "71": ("Precious stones and metals", "KGM", 30000.0, 1.0, 0.7),
    "72": ("Iron and steel", "KGM", 0.9, 1.0, 3),
    "73": ("Articles of iron or steel", "KGM", 3.0, 1.0, 3),
    "76": ("Aluminium", "KGM", 3.0, 1.0, 2),
    "84": ("Machinery and mechanical appliances", "NAR", 800.0, 40.0, 6),
    "85": ("Electrical machinery and electronics", "NAR", 150.0, 3.0, 7),
    "87": ("Vehicles", "NAR", 15000.0, 1400.0, 3),
    "90": ("Optical and medical instruments", "NAR", 900.0, 5.0, 2),
    "94": ("Furniture and bedding", "NAR", 120.0, 25.0, 2),
    "95": ("Toys, games and sports goods", "NAR", 10.0, 0.8, 2),
}

# How files write each canonical unit; a relationship keeps one spelling, as a company's system would.
UNIT_SPELLINGS: dict[str, tuple[tuple[str, float], ...]] = {
    "KGM": (("KGM", 0.55), ("KG", 0.3), ("KGS", 0.05), ("TNE", 0.1)),
    "LTR": (("LTR", 0.7), ("L", 0.3)),
    "MTK": (("MTK", 0.6), ("M2", 0.3), ("SQM", 0.1)),
    "NAR": (("NAR", 0.4), ("PCS", 0.35), ("U", 0.15), ("C62", 0.1)),
    "NPR": (("NPR", 0.5), ("PR", 0.3), ("PAIRS", 0.2)),
}

TYPICAL_INVOICE_USD = 30_000.0


@dataclass
class World:
    country: np.ndarray  # (n_countries,) ISO codes
    currency: np.ndarray  # (n_countries,) currency of each country
    # products
    hs6: np.ndarray
    chapter_of_product: np.ndarray  # index into chapters
    unit_of_product: np.ndarray  # canonical unit code
    log_price: np.ndarray  # USD per canonical unit, log
    price_sigma: np.ndarray  # honest dispersion of log price
    price_trend: np.ndarray  # log change per year
    season_amp: np.ndarray
    season_phase: np.ndarray
    kg_per_unit: np.ndarray
    log_qty: np.ndarray  # typical log quantity of one invoice line
    description: np.ndarray
    chapters: np.ndarray  # chapter codes
    corridor_effect: np.ndarray  # (n_countries, n_chapters) exporter-country price effect
    # traders
    trader_id: np.ndarray
    trader_country: np.ndarray  # index into countries
    trader_size: np.ndarray
    trader_chapters: np.ndarray  # (n_traders, 4) chapter indices, -1 = none
    trader_exports: np.ndarray  # bool
    trader_imports: np.ndarray  # bool
    # relationships: exporter -> importer in one chapter
    rel_exporter: np.ndarray
    rel_importer: np.ndarray
    rel_products: np.ndarray  # (n_rel, 3) product indices, -1 = none
    rel_weight: np.ndarray
    rel_effect: np.ndarray
    rel_currency: np.ndarray  # currency code string
    rel_terms: np.ndarray
    rel_transport: np.ndarray
    rel_spelling: np.ndarray  # unit spelling index
    rel_hs_suffix: np.ndarray  # national digits the exporter's system appends ("" or 2 digits)
    rel_kg_factor: np.ndarray  # models and grades within one HS6 weigh differently
    id_pool: np.ndarray  # unused entity ids, for third parties and logistics firms


def build_world(rng: np.random.Generator, n_invoices: int, habits=None) -> World:
    country = np.array([c[0] for c in COUNTRIES])
    currency = np.array([c[1] for c in COUNTRIES])
    c_weight = np.array([c[2] for c in COUNTRIES], dtype=float)
    if habits is not None and habits.high_risk_weight != 1.0:
        from tbml.model import load_high_risk

        c_weight[np.isin(country, sorted(load_high_risk("builtin")))] *= habits.high_risk_weight
    c_weight /= c_weight.sum()

    chapters = np.array(list(CHAPTERS))
    ch_info = list(CHAPTERS.values())
    ch_pop = np.array([c[4] for c in ch_info], dtype=float)
    ch_pop /= ch_pop.sum()

    # products: 6-24 HS6 codes per chapter, each with its own price level and dispersion
    per_chapter = rng.integers(6, 25, size=len(chapters))
    chapter_of_product = np.repeat(np.arange(len(chapters)), per_chapter)
    n_products = len(chapter_of_product)
    hs6 = np.empty(n_products, dtype=object)
    start = 0
    for ci, n in enumerate(per_chapter):
        headings = rng.choice(np.arange(1, 90), size=n, replace=False)
        subs = rng.choice(np.arange(10, 99, 10), size=n)
        hs6[start : start + n] = [f"{chapters[ci]}{h:02d}{s:02d}" for h, s in zip(headings, subs)]
        start += n
    unit = np.array([ch_info[c][1] for c in chapter_of_product])
    log_price = np.log([ch_info[c][2] for c in chapter_of_product]) + rng.normal(0, 0.6, n_products)
    kg_per_unit = np.where(
        unit == "KGM", 1.0, np.array([ch_info[c][3] for c in chapter_of_product]) * np.exp(rng.normal(0, 0.4, n_products))
    )
    agricultural = np.array([int(chapters[c]) < 25 for c in chapter_of_product])
    season_amp = np.where(agricultural, rng.uniform(0.03, 0.15, n_products), rng.uniform(0.0, 0.04, n_products))
    grades = rng.integers(1, 9, n_products)
    description = np.array([f"{ch_info[c][0]}, grade {g}" for c, g in zip(chapter_of_product, grades)], dtype=object)

    # traders: heavy-tailed sizes, a home country, 1-4 usual chapters
    n_traders = int(np.clip(n_invoices // 30, 300, 300_000))
    n_ids = n_traders * 2 + 1000
    ids = rng.choice(np.arange(1_000_000, 9_999_999), size=n_ids, replace=False)
    trader_country = rng.choice(len(country), size=n_traders, p=c_weight)
    trader_size = rng.pareto(1.16, n_traders) + 1.0
    n_ch = 1 + rng.binomial(3, habits.chapter_spread if habits is not None else 0.3, n_traders)
    gumbel = rng.gumbel(size=(n_traders, len(chapters))) + np.log(ch_pop)
    top = np.argsort(-gumbel, axis=1)[:, :4]
    trader_chapters = np.where(np.arange(4) < n_ch[:, None], top, -1)
    role = rng.choice(3, size=n_traders, p=[0.45, 0.45, 0.10])  # exporter, importer, both
    exports, imports = role != 1, role != 0

    # relationships, chapter by chapter so both sides deal in the goods
    n_rel = int(np.clip(n_invoices // 5, 500, 1_000_000))
    rel_chapter = rng.choice(len(chapters), size=n_rel, p=ch_pop)
    rel_exporter = np.full(n_rel, -1)
    rel_importer = np.full(n_rel, -1)
    for ci in range(len(chapters)):
        rows = np.flatnonzero(rel_chapter == ci)
        deals = (trader_chapters == ci).any(axis=1)
        sellers, buyers = np.flatnonzero(deals & exports), np.flatnonzero(deals & imports)
        if not len(rows) or len(sellers) < 1 or len(buyers) < 2:
            continue
        rel_exporter[rows] = rng.choice(sellers, size=len(rows), p=_share(trader_size[sellers]))
        buyer_p = _share(trader_size[buyers])
        picked = rng.choice(buyers, size=len(rows), p=buyer_p)
        for _ in range(6):  # redraw importers in the exporter's own country: trade crosses a border
            same = trader_country[picked] == trader_country[rel_exporter[rows]]
            if not same.any():
                break
            picked[same] = rng.choice(buyers, size=int(same.sum()), p=buyer_p)
        rel_importer[rows] = picked
    ok = (rel_exporter >= 0) & (trader_country[rel_importer] != trader_country[rel_exporter])
    rel_exporter, rel_importer, rel_chapter = rel_exporter[ok], rel_importer[ok], rel_chapter[ok]
    n_rel = len(rel_exporter)

    # each relationship trades 1-3 products of its chapter
    starts = np.concatenate([[0], np.cumsum(per_chapter)[:-1]])
    n_prod = rng.choice([1, 2, 3], size=n_rel, p=[0.5, 0.3, 0.2])
    slot = rng.random((n_rel, 3)) * per_chapter[rel_chapter][:, None]
    rel_products = np.where(np.arange(3) < n_prod[:, None], starts[rel_chapter][:, None] + slot.astype(int), -1)

    exporter_currency = currency[trader_country[rel_exporter]]
    currency_pick = rng.choice(3, size=n_rel, p=[0.55, 0.15, 0.30])
    rel_currency = np.where(currency_pick == 0, "USD", np.where(currency_pick == 1, "EUR", exporter_currency))
    units_of_rel = unit[starts[rel_chapter]]
    rel_spelling = np.zeros(n_rel, dtype=np.int64)
    for u, spellings in UNIT_SPELLINGS.items():
        rows = np.flatnonzero(units_of_rel == u)
        rel_spelling[rows] = rng.choice(len(spellings), size=len(rows), p=[s[1] for s in spellings])

    return World(
        country=country,
        currency=currency,
        hs6=hs6,
        chapter_of_product=chapter_of_product,
        unit_of_product=unit,
        log_price=log_price,
        price_sigma=rng.uniform(0.12, 0.40, n_products),
        price_trend=rng.normal(0.03, 0.05, n_products),
        season_amp=season_amp,
        season_phase=rng.uniform(0, 2 * np.pi, n_products),
        kg_per_unit=kg_per_unit,
        log_qty=np.log(TYPICAL_INVOICE_USD) - log_price + rng.normal(0, 0.4, n_products),
        description=description,
        chapters=chapters,
        corridor_effect=rng.normal(0, 0.10, (len(country), len(chapters))),
        trader_id=np.array([f"T{i}" for i in ids[:n_traders]], dtype=object),
        trader_country=trader_country,
        trader_size=trader_size,
        trader_chapters=trader_chapters,
        trader_exports=exports,
        trader_imports=imports,
        rel_exporter=rel_exporter,
        rel_importer=rel_importer,
        rel_products=rel_products,
        rel_weight=np.sqrt(trader_size[rel_exporter] * trader_size[rel_importer]) * rng.lognormal(0, 1, n_rel),
        # one HS6 lumps grades and brands: each relationship trades its own quality level
        rel_effect=rng.normal(0, 0.20, n_rel),
        rel_currency=rel_currency,
        rel_terms=rng.choice(
            np.array(["open_account", "letter_of_credit", "advance", "documentary_collection"]),
            size=n_rel, p=[0.6, 0.15, 0.15, 0.10],
        ),
        rel_transport=rng.choice(np.array(["sea", "air", "road", "rail"]), size=n_rel, p=[0.65, 0.17, 0.13, 0.05]),
        rel_spelling=rel_spelling,
        rel_hs_suffix=rng.choice(np.array(["", "00", "10", "90"]), size=n_rel, p=[0.5, 0.3, 0.1, 0.1]),
        rel_kg_factor=np.exp(rng.normal(0, 0.3, n_rel)),
        id_pool=np.array([f"T{i}" for i in ids[n_traders:]], dtype=object),
    )


def _share(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()

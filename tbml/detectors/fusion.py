"""One risk score, 0-100, from the price detector, the isolation forest and the red-flag rules.

Each component says how strongly it points at laundering as a number p in [0, 1]:

- price: ``price_weight`` x (1 - exp(-(distance beyond the fence) / ``price_scale``)): 0 at Tukey's
  fence (1.5 IQR), 63% of the weight ``price_scale`` IQRs further out, approaching the full weight;
- money at stake: ``money_weight`` x (1 - exp(-value moved / (``money_scale`` x the median invoice value
  of the fitted data))): a large sum beyond the fence counts, as it does for an investigator;
- isolation forest: ``forest_weight`` x how far the line's anomaly score lies in the top of the fitted
  lines' scores: 0 below the ``forest_from_percentile`` percentile, the full weight at the very top;
- each rule hit: the weight of its severity (high, medium, low).

They combine as independent pieces of evidence (a noisy-OR): risk = 100 x (1 - product of (1 - p)).
So one high-severity rule alone gives 60, a medium one 35; a price 3 IQR beyond its fence gives 54;
both a high rule and that price give 82. More evidence can only raise the score, never past 100. The reasons listed are the components in order of their p, and
the typology shown is the one of the strongest component. Each component's sentence is written only where
its p is above 0 (``money_reasons``, ``forest_reasons``; the price detector and the rules write their own),
in the words of ``tbml.wording``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tbml.config import FusionConfig
from tbml.wording import number, percent


def price_component(fence: np.ndarray, threshold: float, weights: FusionConfig) -> np.ndarray:
    beyond = np.clip(np.abs(np.nan_to_num(fence)) - threshold, 0.0, None)
    return weights.price_weight * (1.0 - np.exp(-beyond / weights.price_scale))


def money_component(value_moved: np.ndarray, typical_value: float, weights: FusionConfig) -> np.ndarray:
    moved = np.clip(np.nan_to_num(value_moved), 0.0, None)
    return weights.money_weight * (1.0 - np.exp(-moved / (weights.money_scale * max(typical_value, 1e-9))))


def forest_component(percentile: np.ndarray, weights: FusionConfig) -> np.ndarray:
    top = (np.nan_to_num(percentile) - weights.forest_from_percentile) / (1 - weights.forest_from_percentile)
    return weights.forest_weight * np.clip(top, 0.0, 1.0)


def money_reasons(component: np.ndarray, value_moved: pd.Series, typical_value: float, currency: str) -> pd.Series:
    """Where ``component`` > 0: "about 1,755,501 USD beyond the price fence, 33.3 times the median invoice
    value (52,710 USD)"; "" elsewhere."""
    text = pd.Series("", index=value_moved.index, dtype=object)
    rows = np.flatnonzero(np.asarray(component) > 0)
    moved = value_moved.to_numpy(dtype=float)[rows]
    typical = f" times the median invoice value ({number(typical_value)} {currency})"
    text.iloc[rows] = [f"about {number(m)} {currency} beyond the price fence"
                       + (f", {number(m / typical_value, 3)}{typical}" if typical_value > 0 else "") for m in moved]
    return text


def forest_reasons(component: np.ndarray, percentile: pd.Series, detail: pd.Series) -> pd.Series:
    """Where ``component`` > 0: "unusual profile (isolation forest: among the 0.2% strangest lines): " and the
    forest's ``detail``, the features furthest from typical in words; "" elsewhere."""
    text = pd.Series("", index=percentile.index, dtype=object)
    rows = np.flatnonzero(np.asarray(component) > 0)
    share = 1.0 - percentile.to_numpy(dtype=float)[rows]
    said = detail.fillna("").astype(str).to_numpy()[rows]
    # the percentile is read off 1,001 quantiles: the strangest lines share the top 0.1%
    text.iloc[rows] = [f"unusual profile (isolation forest: among the {percent(max(s, 0.001))} strangest lines)"
                       + (f": {d}" if d else "") for s, d in zip(share, said)]
    return text


def fuse(components: pd.DataFrame) -> np.ndarray:
    """Noisy-OR of the component columns (each p in [0, 1]) as a 0-100 risk score."""
    p = np.clip(components.to_numpy(dtype=float), 0.0, 1.0)
    return 100.0 * (1.0 - np.prod(1.0 - p, axis=1))


def ranked_reasons(components: pd.DataFrame, texts: dict[str, pd.Series], typologies: dict[str, pd.Series],
                   top: int = 3) -> tuple[list[str], list[str]]:
    """Per item: its ``top`` reasons joined by ' | ', strongest first, and the strongest component's typology."""
    values = components.to_numpy(dtype=float)
    names = list(components.columns)
    text = {name: texts[name].astype(object).to_numpy() for name in names}  # plain arrays: fast per element
    kind = {name: typologies[name].astype(object).to_numpy() for name in names}
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    reasons, typology = [""] * len(values), [""] * len(values)
    for i in np.flatnonzero(values.max(axis=1, initial=0.0) > 0):
        chosen = [names[c] for c in order[i] if values[i, c] > 0]
        reasons[i] = " | ".join(str(text[name][i]) for name in chosen)
        typology[i] = str(kind[chosen[0]][i])
    return reasons, typology

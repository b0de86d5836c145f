"""One risk score, 0-100, from the price detector, the isolation forest and the red-flag rules.

Each component says how strongly it points at laundering as a number p in [0, 1]:

- price: ``price_weight`` x the distance beyond the price fence, scaled so that ``threshold`` IQRs
  (Tukey's 1.5) gives 0 and ``price_full_at`` IQRs gives the full weight;
- isolation forest: ``forest_weight`` x how far the line's anomaly score lies in the top of the fitted
  lines' scores: 0 below the ``forest_from_percentile`` percentile, the full weight at the very top;
- each rule hit: the weight of its severity (high, medium, low).

They combine as independent pieces of evidence (a noisy-OR): risk = 100 x (1 - product of (1 - p)).
So one high-severity rule alone gives 60, a price far beyond its fence 85, both 94; a second rule
can only raise the score, never past 100. The reasons listed are the components in order of their p, and
the typology shown is the one of the strongest component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FusionWeights:
    price_weight: float = 0.85
    price_full_at: float = 6.0
    forest_weight: float = 0.4
    forest_from_percentile: float = 0.95
    high: float = 0.6
    medium: float = 0.35
    low: float = 0.1


def price_component(fence: np.ndarray, threshold: float, weights: FusionWeights) -> np.ndarray:
    beyond = (np.abs(np.nan_to_num(fence)) - threshold) / (weights.price_full_at - threshold)
    return weights.price_weight * np.clip(beyond, 0.0, 1.0)


def forest_component(percentile: np.ndarray, weights: FusionWeights) -> np.ndarray:
    top = (np.nan_to_num(percentile) - weights.forest_from_percentile) / (1 - weights.forest_from_percentile)
    return weights.forest_weight * np.clip(top, 0.0, 1.0)


def fuse(components: pd.DataFrame) -> np.ndarray:
    """Noisy-OR of the component columns (each p in [0, 1]) as a 0-100 risk score."""
    p = np.clip(components.to_numpy(dtype=float), 0.0, 1.0)
    return 100.0 * (1.0 - np.prod(1.0 - p, axis=1))


def ranked_reasons(components: pd.DataFrame, texts: dict[str, pd.Series], typologies: dict[str, pd.Series],
                   top: int = 3) -> tuple[list[str], list[str]]:
    """Per item: its ``top`` reasons joined by ' | ', strongest first, and the strongest component's typology."""
    values = components.to_numpy(dtype=float)
    names = list(components.columns)
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    reasons, typology = [], []
    for i, cols in enumerate(order):
        chosen = [names[c] for c in cols if values[i, c] > 0]
        reasons.append(" | ".join(str(texts[name].iat[i]) for name in chosen))
        typology.append(str(typologies[chosen[0]].iat[i]) if chosen else "")
    return reasons, typology

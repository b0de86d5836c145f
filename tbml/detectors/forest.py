"""Isolation forest over the engineered feature matrix, with the features that made a line unusual.

Each feature is centred on its median and scaled by its IQR (learned in ``fit``); a missing value is read as
the median, so it never makes a line look strange. ``explain`` names the features furthest from typical,
in words (``tbml.wording``), with the line's figure and the typical one: "paid 2.3 times the invoice value
(typically 1)".
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from tbml.detectors.base import BaseDetector
from tbml.wording import feature_phrase


class ForestDetector(BaseDetector):
    """Parameters: ``features`` (column names; None = every numeric column of the frame given to fit),
    ``n_estimators``, ``max_samples``, ``contamination`` ("auto" keeps IsolationForest's own cut) and
    ``random_state`` (explicit, so the same input gives the same scores)."""

    def __init__(self, features=None, n_estimators=200, max_samples="auto", contamination="auto", random_state=0):
        self.features = features
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.random_state = random_state

    def _accepts_frame(self, X: pd.DataFrame) -> bool:
        # a frame with some of the features is scored, the others read as typical (a file without
        # transfers has no payment features); a frame with none of them is not this detector's input
        needed = getattr(self, "features_", None) or self.features
        return needed is None or bool(set(needed) & set(X.columns))

    def _matrix(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            values = X.reindex(columns=list(self.features_)).astype(float).to_numpy()
        else:
            values = np.asarray(X, dtype=float)
        scaled = (values - self.center_) / self.scale_
        return np.where(np.isfinite(scaled), scaled, 0.0)

    def _fit(self, X) -> None:
        if isinstance(X, pd.DataFrame):
            numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]
            self.features_ = tuple(self.features) if self.features is not None else tuple(numeric)
            values = X[list(self.features_)].astype(float).to_numpy()
        else:
            values = np.asarray(X, dtype=float)
            self.features_ = tuple(f"x{i}" for i in range(values.shape[1]))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # a feature the data cannot form (all NaN: no transfers given) is centred on 0 and never stands out
            warnings.simplefilter("ignore", RuntimeWarning)
            self.center_ = np.nan_to_num(np.nanmedian(values, axis=0)) if len(values) else np.zeros(values.shape[1])
            q1, q3 = (np.nan_to_num(np.nanpercentile(values, q, axis=0)) for q in (25, 75))
            fallback = np.nan_to_num(np.nanstd(values, axis=0)) if len(values) else np.ones(values.shape[1])
        spread = q3 - q1
        self.scale_ = np.where(spread > 0, spread, np.where(fallback > 0, fallback, 1.0))
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                       contamination=self.contamination, random_state=self.random_state)
        self.forest_.fit(self._matrix(X))

    def _score_samples(self, X) -> np.ndarray:
        return self.forest_.score_samples(self._matrix(X))

    def _auto_offset(self) -> float:
        return float(self.forest_.offset_)

    def explain(self, X, top: int = 3) -> pd.DataFrame:
        """Per row: anomaly score (higher = stranger) and the ``top`` features furthest from typical."""
        X = self._validate(X, reset=False)
        return pd.DataFrame({"forest_score": -self._score_samples(X), "forest_detail": self.describe(X, top=top)},
                            index=X.index if isinstance(X, pd.DataFrame) else None)

    def describe(self, X, rows=None, top: int = 3, currency: str = "USD") -> np.ndarray:
        """For the rows selected by the boolean mask ``rows`` (default all), the ``top`` features furthest
        from typical in words: "paid 2.3 times the invoice value (typically 1)"; other rows get ""."""
        X = self._validate(X, reset=False)
        scaled = self._matrix(X)
        raw = (X.reindex(columns=list(self.features_)).astype(float).to_numpy() if isinstance(X, pd.DataFrame)
               else np.asarray(X, float))
        texts = np.full(len(scaled), "", dtype=object)
        rows = np.arange(len(scaled)) if rows is None else np.flatnonzero(rows)
        far = np.argsort(-np.abs(scaled[rows]), axis=1)[:, :top]
        for i, cols in zip(rows, far):
            texts[i] = "; ".join(feature_phrase(self.features_[c], raw[i, c], self.center_[c], currency)
                                 for c in cols if abs(scaled[i, c]) >= 1.5)
        return texts

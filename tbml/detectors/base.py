"""One small base class for tbml's detectors, after PyOD's BaseDetector with scikit-learn's sign.

The base owns ``fit`` (validate, call ``_fit``, set ``offset_``), ``score_samples``, ``decision_function``
and ``predict``. A detector implements ``_fit``, ``_score_samples`` and ``explain``, plus
``_auto_offset`` for ``contamination="auto"``. Scores are layered as in IsolationForest:

    score_samples   higher = more normal
    decision_function = score_samples - offset_    below 0 = anomaly
    predict         +1 normal, -1 anomaly

``__init__`` stores its keyword arguments unchanged; what ``fit`` learns ends in an underscore.
Scoring never changes ``self``.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class BaseDetector(OutlierMixin, BaseEstimator):
    contamination: str | float

    def fit(self, X, y=None):
        """Learn from ``X`` (a DataFrame of normalised invoices, or a numeric matrix); ``y`` is ignored."""
        if not (self.contamination == "auto" or (
            isinstance(self.contamination, numbers.Real) and 0 < self.contamination <= 0.5
        )):
            raise ValueError(f"contamination must be 'auto' or in (0, 0.5], got {self.contamination!r}")
        X = self._validate(X, reset=True)
        self._fit(X)
        if self.contamination == "auto":
            self.offset_ = self._auto_offset()
        else:
            self.offset_ = float(np.percentile(self._score_samples(X), 100 * self.contamination))
        return self

    def score_samples(self, X) -> np.ndarray:
        """Normality of each row: higher is more normal."""
        check_is_fitted(self)
        return self._score_samples(self._validate(X, reset=False))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples - offset_``: below 0 is an anomaly."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for a normal row, -1 for an anomaly."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def _validate(self, X, reset: bool):
        """DataFrames with the detector's named columns pass as they are; anything else must be numeric."""
        if isinstance(X, pd.DataFrame) and self._accepts_frame(X):
            if reset:
                self.n_features_in_ = X.shape[1]
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            if len(X) == 0:
                raise ValueError("X has 0 rows; at least 1 is required")
            return X
        return validate_data(self, X, reset=reset, dtype=np.float64)

    # what each detector provides
    def _accepts_frame(self, X: pd.DataFrame) -> bool:
        return False

    def _fit(self, X) -> None:
        raise NotImplementedError

    def _score_samples(self, X) -> np.ndarray:
        raise NotImplementedError

    def _auto_offset(self) -> float:
        raise NotImplementedError

    def explain(self, X) -> pd.DataFrame:
        raise NotImplementedError

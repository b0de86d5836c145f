"""Detectors with the scikit-learn estimator contract (see base.py)."""

from tbml.detectors.base import BaseDetector
from tbml.detectors.price import PriceDeviationDetector

__all__ = ["BaseDetector", "PriceDeviationDetector"]

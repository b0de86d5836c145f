"""Peer-group statistics on the numba kernels: the Python side that checks input and orchestrates.

    stats = group_statistics(values, codes, n_groups)            # per group
    log_ratio, robust_z, fence = deviations(values, codes, stats)  # per row
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tbml import kernels

# Segments up to this length are insertion-sorted in numba (parallel); longer ones by numpy's sort.
_SMALL_SEGMENT = 32
MEDCOUPLE_POINTS = 128


@dataclass(frozen=True)
class GroupStats:
    count: np.ndarray
    median: np.ndarray
    q1: np.ndarray
    q3: np.ndarray
    mad: np.ndarray
    medcouple: np.ndarray  # zeros unless asked for

    def fence_scales(self, skew_adjusted: bool) -> tuple[np.ndarray, np.ndarray]:
        """IQR multipliers below Q1 and above Q3: ones for Tukey's boxplot; with ``skew_adjusted``, the
        adjusted boxplot of Hubert & Vandervieren (2008): exp(-4 MC), exp(3 MC) for MC >= 0 and
        exp(-3 MC), exp(4 MC) for MC < 0, so a skewed group gets a longer fence on its long side."""
        if not skew_adjusted:
            ones = np.ones_like(self.median)
            return ones, ones
        mc = self.medcouple
        lower = np.where(mc >= 0, np.exp(-4 * mc), np.exp(-3 * mc))
        upper = np.where(mc >= 0, np.exp(3 * mc), np.exp(4 * mc))
        return lower, upper


def sorted_groups(values: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Values grouped by code and sorted within each group, and the group offsets."""
    values, codes = _checked(values, codes, n_groups)
    grouped, offsets = kernels.group_by_code(values, codes, n_groups)
    kernels.sort_small_segments(grouped, offsets, _SMALL_SEGMENT)
    lengths = np.diff(offsets)
    for g in np.flatnonzero(lengths > _SMALL_SEGMENT):
        grouped[offsets[g] : offsets[g + 1]].sort()  # numpy's SIMD sort, in place on the segment
    return grouped, offsets


def group_statistics(values, codes, n_groups: int, medcouple: bool = False) -> GroupStats:
    """Count, median, Q1, Q3 and MAD per group (quantiles exactly numpy's ``linear`` method), and the
    medcouple when asked (on up to ``MEDCOUPLE_POINTS`` order statistics per group)."""
    grouped, offsets = sorted_groups(values, codes, n_groups)
    count, median, q1, q3, mad = kernels.segment_stats(grouped, offsets)
    mc = (
        kernels.segment_medcouple(grouped, offsets, median, MEDCOUPLE_POINTS)
        if medcouple
        else np.zeros(n_groups)
    )
    return GroupStats(count, median, q1, q3, mad, mc)


def deviations(values, codes, stats: GroupStats, min_spread: float, skew_adjusted: bool = False):
    """Per row: log ratio to its group median, robust z, signed fence distance (see kernels.row_deviations)."""
    values, codes = _checked(values, codes, len(stats.median))
    lower, upper = stats.fence_scales(skew_adjusted)
    return kernels.row_deviations(values, codes, stats.median, stats.q1, stats.q3, stats.mad, lower, upper,
                                  float(min_spread))


def _checked(values, codes, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.ascontiguousarray(values, dtype=np.float64)
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if values.shape != codes.shape or values.ndim != 1:
        raise ValueError("values and codes must be 1-D arrays of the same length")
    if len(values) and (not np.isfinite(values).all()):
        raise ValueError("values must be finite; drop NaN and infinite values before grouping")
    if len(codes) and (codes.min() < 0 or codes.max() >= n_groups):
        raise ValueError(f"group codes must lie in [0, {n_groups})")
    return values, codes

"""Slow, obviously-correct numpy twins of the numba kernels in tbml.kernels. Tests compare the two."""

import numpy as np

MAD_TO_SIGMA = 1.4826


def group_stats(values, codes, n_groups):
    count = np.zeros(n_groups, np.int64)
    median, q1, q3, mad = (np.full(n_groups, np.nan) for _ in range(4))
    for g in range(n_groups):
        x = values[codes == g]
        count[g] = len(x)
        if len(x):
            median[g] = np.quantile(x, 0.5, method="linear")
            q1[g] = np.quantile(x, 0.25, method="linear")
            q3[g] = np.quantile(x, 0.75, method="linear")
            mad[g] = np.quantile(np.abs(x - median[g]), 0.5, method="linear")
    return count, median, q1, q3, mad


def medcouple(x):
    """The definition, over all pairs xi <= median <= xj; pairs tied at the median count 0."""
    x = np.sort(x)
    if len(x) < 3:
        return 0.0
    m = np.median(x)
    lows, highs = x[x <= m], x[x >= m]
    values = []
    for xi in lows:
        for xj in highs:
            values.append(((xj - m) - (m - xi)) / (xj - xi) if xj > xi else 0.0)
    return float(np.median(values)) if values else 0.0


def row_deviations(values, codes, median, q1, q3, mad, lower_scale, upper_scale, min_spread):
    med, lo, hi = median[codes], q1[codes], q3[codes]
    iqr = np.maximum(hi - lo, min_spread)
    log_ratio = values - med
    robust_z = log_ratio / np.maximum(MAD_TO_SIGMA * mad[codes], min_spread)
    fence = np.where(values > hi, (values - hi) / (iqr * upper_scale[codes]),
                     np.where(values < lo, -(lo - values) / (iqr * lower_scale[codes]), 0.0))
    return log_ratio, robust_z, fence

"""The numba kernels against their numpy twins (tests/reference.py), on random data and edge cases."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tbml import kernels
from tbml.peer_stats import sorted_groups

from . import reference

# Kernels see log prices (|x| < ~50). Subnormals (below 2.2e-308) are no such value, and there the medcouple
# kernel and its reference disagree only through underflow in (x_j - m) / (x_j - x_i).
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def grouped_values(draw):
    """Values with group codes: groups of size 0, 1, 2 and more, ties and all-equal groups likely."""
    n_groups = draw(st.integers(1, 8))
    n = draw(st.integers(0, 60))
    pool = draw(arrays(np.float64, draw(st.integers(1, 6)), elements=finite))  # few distinct values: ties
    use_pool = draw(st.booleans())
    values = draw(arrays(np.float64, n, elements=st.sampled_from(list(pool)) if use_pool else finite))
    codes = draw(arrays(np.int64, n, elements=st.integers(0, n_groups - 1)))
    return values, codes, n_groups


def _stats(values, codes, n_groups):
    grouped, offsets = sorted_groups(values, codes, n_groups)
    return kernels.segment_stats(grouped, offsets), grouped, offsets


@settings(max_examples=300, deadline=None)
@given(grouped_values())
def test_group_stats_equal_numpy_exactly(case):
    values, codes, n_groups = case
    (count, median, q1, q3, mad), _, _ = _stats(values, codes, n_groups)
    expected = reference.group_stats(values, codes, n_groups)
    np.testing.assert_array_equal(count, expected[0])
    for got, want in zip((median, q1, q3, mad), expected[1:]):
        np.testing.assert_array_equal(got, want)  # bit for bit, NaN where a group is empty


@settings(max_examples=200, deadline=None)
@given(grouped_values(), st.floats(0, 1))
def test_row_deviations_equal_reference(case, min_spread):
    values, codes, n_groups = case
    (count, median, q1, q3, mad), grouped, offsets = _stats(values, codes, n_groups)
    mc = kernels.segment_medcouple(grouped, offsets, median, 64)
    lower, upper = np.exp(-4 * np.clip(mc, 0, None) + 3 * np.clip(mc, None, 0)), np.exp(3 * mc)
    args = (values, codes, median, q1, q3, mad, lower, upper, min_spread + 1e-9)
    got = kernels.row_deviations(*args)
    want = reference.row_deviations(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, st.integers(0, 40), elements=finite))
def test_medcouple_equals_the_definition(values):
    grouped, offsets = sorted_groups(values, np.zeros(len(values), np.int64), 1)
    _, median, *_ = kernels.segment_stats(grouped, offsets)
    got = kernels.segment_medcouple(grouped, offsets, median, 1000)[0]
    assert np.isclose(got, reference.medcouple(values), rtol=1e-9, atol=1e-12)


def test_edge_cases_by_hand():
    values = np.array([5.0, 1.0, 2.0, 2.0, 7.0, 7.0, 7.0, 3.0])
    codes = np.array([0, 1, 1, 2, 3, 3, 3, 2])
    (count, median, q1, q3, mad), grouped, offsets = _stats(values, codes, 5)
    assert count.tolist() == [1, 2, 2, 3, 0]
    assert median[0] == 5.0 and mad[0] == 0.0  # one value
    assert median[1] == 1.5 and q1[1] == 1.25 and q3[1] == 1.75 and mad[1] == 0.5  # two values
    assert median[3] == 7.0 and q1[3] == q3[3] == 7.0 and mad[3] == 0.0  # all equal
    assert np.isnan(median[4])  # empty group
    assert offsets.tolist() == [0, 1, 3, 5, 8, 8]
    assert grouped.tolist() == [5.0, 1.0, 2.0, 2.0, 3.0, 7.0, 7.0, 7.0]


def test_group_by_code_is_a_stable_counting_sort():
    grouped, offsets = kernels.group_by_code(np.array([3.0, 1.0, 2.0, 0.5]), np.array([1, 0, 1, 0]), 3)
    assert grouped.tolist() == [1.0, 0.5, 3.0, 2.0] and offsets.tolist() == [0, 2, 4, 4]


def test_small_and_large_segments_are_both_sorted():
    rng = np.random.default_rng(1)
    codes = np.repeat(np.arange(4), [1, 5, 40, 500])  # either side of the 32-value switch to numpy's sort
    values = rng.normal(size=len(codes))
    grouped, offsets = sorted_groups(values, codes, 4)
    for g in range(4):
        np.testing.assert_array_equal(grouped[offsets[g]:offsets[g + 1]], np.sort(values[codes == g]))


def test_empty_input():
    grouped, offsets = sorted_groups(np.empty(0), np.empty(0, np.int64), 3)
    count, median, *_ = kernels.segment_stats(grouped, offsets)
    assert count.tolist() == [0, 0, 0] and np.isnan(median).all()
    out = kernels.row_deviations(np.empty(0), np.empty(0, np.int64), median, median, median, median,
                                 np.ones(3), np.ones(3), 0.1)
    assert all(len(a) == 0 for a in out)


def test_fence_distance_is_signed_in_iqr_units():
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0, -6.0])
    codes = np.zeros(7, np.int64)
    median, q1, q3, mad = np.array([2.0]), np.array([1.0]), np.array([3.0]), np.array([1.0])
    _, z, fence = kernels.row_deviations(values, codes, median, q1, q3, mad, np.ones(1), np.ones(1), 0.01)
    assert fence.tolist() == [-0.5, 0.0, 0.0, 0.0, 0.5, 3.5, -3.5]
    assert z[5] == (10 - 2) / 1.4826


def test_medcouple_sign_follows_skew():
    rng = np.random.default_rng(0)
    right_skewed = rng.lognormal(0, 1, 2000)
    grouped, offsets = sorted_groups(np.concatenate([right_skewed, -right_skewed]),
                                          np.repeat([0, 1], 2000), 2)
    _, median, *_ = kernels.segment_stats(grouped, offsets)
    sampled = kernels.segment_medcouple(grouped, offsets, median, 200)
    full = kernels.segment_medcouple(grouped, offsets, median, 4000)
    assert full[0] > 0.3 and full[1] < -0.3 and np.isclose(full[0], -full[1])
    np.testing.assert_allclose(sampled, full, atol=0.01)  # 200 order statistics stand in for 2,000 values

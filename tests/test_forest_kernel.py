"""The numba forest walk (tbml.forest_kernel) against scikit-learn's own ``IsolationForest.score_samples``.

scikit-learn is the reference: every test fits an ``IsolationForest``, lays its trees out as ``IsolationTrees``
and asks for the same numbers to the last bit, on forests of several shapes, on extreme values, on a single
line and on none; ``ForestDetector`` keeps scikit-learn's estimator contract; broken trees are refused when
built or loaded, the checked trees cannot be changed afterwards, and a fresh process takes the compiled
walk from numba's cache.
"""

import copy
import os
import pickle
import subprocess
import sys

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

from tbml.detectors.forest import TREE_COLUMNS, ForestDetector, IsolationTrees
from tbml.forest_kernel import BLOCK, LANES


def fitted(n_features=5, n_estimators=20, max_samples="auto", max_features=1.0, rows=1_000, seed=0):
    """A fitted scikit-learn forest, its tbml trees, and a random generator for test lines."""
    rng = np.random.default_rng(seed)
    train = rng.standard_t(3, size=(rows, n_features))
    train[:, ::3] = np.round(train[:, ::3])  # ties and repeated values, as in counts and flags
    forest = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, max_features=max_features,
                             random_state=seed).fit(train)
    return forest, IsolationTrees.from_sklearn(forest), train, rng


def assert_same_scores(forest, trees, X):
    expected = forest.score_samples(X)
    got = trees.score_samples(X)
    assert got.dtype == np.float64 and got.shape == (len(X),)
    assert np.array_equal(got, expected), f"{np.sum(got != expected)} of {len(X)} scores differ"


# ---- the same scores as scikit-learn ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [
    dict(),  # tbml's own forest in miniature: every feature, 256 lines a tree
    dict(n_features=21, n_estimators=60),
    dict(max_samples=16, n_estimators=7),  # shallow trees (depth 4)
    dict(max_samples=1.0, n_estimators=3, rows=3_000),  # deep trees: depth 12, many leaves above it
    dict(max_features=0.5, n_features=8),  # each tree sees some of the columns
    dict(max_features=1, n_features=3, max_samples=2),  # one split per tree on one column
    dict(n_features=1, n_estimators=1),
])
def test_scores_equal_scikit_learns_on_forests_of_several_shapes(shape):
    forest, trees, train, rng = fitted(**shape)
    lines = len(train)
    spread = rng.standard_t(2, size=train.shape) * rng.choice([0.1, 1.0, 30.0], size=(lines, 1))
    # a number of lines that leaves the last block, and its last group of side-by-side lines, part-filled
    odd = rng.normal(size=(2 * BLOCK + LANES + 3, train.shape[1]))
    for X in (train, spread, odd):
        assert_same_scores(forest, trees, X)


def test_extreme_values_score_as_scikit_learn_scores_them():
    forest, trees, train, _ = fitted(n_features=4)
    extremes = np.array([[1e300] * 4, [-1e300] * 4, [np.inf] * 4, [-np.inf] * 4, [0.0] * 4,
                         [np.finfo(np.float32).max] * 4, [np.finfo(np.float64).tiny] * 4, [-0.0] * 4])
    for X in (extremes, train[:1], train.astype(np.float32)):
        assert_same_scores(forest, trees, X)


def lines_at_splits(forest, train, value) -> np.ndarray:
    """Per split of every tree, a training line that reaches it, with the split's feature set to
    ``value(threshold)``: lines that test which way a split sends a value at or beside its threshold."""
    lines, splits = [], 0
    for estimator in forest.estimators_:
        nodes = estimator.tree_
        through = estimator.decision_path(train.astype(np.float32)).tocsc()
        for node in np.flatnonzero(nodes.children_left != -1):
            splits += 1
            reaching = through.indices[through.indptr[node]:through.indptr[node + 1]]
            if len(reaching):  # a threshold moved (below) can leave a split no training line reaches
                line = train[reaching[0]].astype(np.float32)
                line[nodes.feature[node]] = value(nodes.threshold[node])
                lines.append(line)
    assert len(lines) > 0.9 * splits
    return np.array(lines)


def float32_below(threshold: float) -> np.float32:
    """The largest float32 not above ``threshold``, found among the nearest float32 and its neighbours."""
    nearest = np.float32(threshold)
    return max(c for c in (np.nextafter(nearest, np.float32(-np.inf)), nearest, np.nextafter(nearest, np.float32(np.inf)))
               if c <= threshold)


@pytest.mark.parametrize("on_float32", [False, True])
def test_a_value_at_or_beside_a_threshold_goes_the_way_scikit_learn_sends_it(on_float32):
    forest, _, train, _ = fitted(n_features=4)
    if on_float32:  # scikit-learn's thresholds lie between float32 values; moved onto them, a line can sit
        for estimator in forest.estimators_:  # exactly on a threshold (it goes left)
            estimator.tree_.threshold[:] = estimator.tree_.threshold.astype(np.float32)
    trees = IsolationTrees.from_sklearn(forest)
    for value in (float32_below, lambda t: np.nextafter(float32_below(t), np.float32(np.inf))):
        X = lines_at_splits(forest, train, value)
        assert_same_scores(forest, trees, X)
        # fewer lines than walk side by side: the same numbers from the one-at-a-time walk
        few = np.concatenate([trees.score_samples(X[i:i + LANES - 1]) for i in range(0, len(X), LANES - 1)])
        assert np.array_equal(few, forest.score_samples(X))


def test_one_line_and_no_lines():
    forest, trees, train, _ = fitted()
    assert_same_scores(forest, trees, train[:1])
    none = trees.score_samples(np.empty((0, train.shape[1])))
    assert none.shape == (0,) and none.dtype == np.float64


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_features=st.integers(1, 6), n_estimators=st.integers(1, 12), max_samples=st.integers(2, 300),
       rows=st.integers(2, 400), seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 1.0, 1e6]))
def test_random_forests_score_as_scikit_learn(n_features, n_estimators, max_samples, rows, seed, scale):
    rng = np.random.default_rng(seed)
    train = np.round(rng.normal(size=(rows, n_features)) * scale, int(rng.integers(0, 3)))  # ties, all-equal columns
    forest = IsolationForest(n_estimators=n_estimators, max_samples=min(max_samples, rows), random_state=seed)
    forest.fit(train)
    assert_same_scores(forest, IsolationTrees.from_sklearn(forest), np.vstack([train, rng.normal(size=(9, n_features))]))


def test_scores_do_not_depend_on_the_number_of_threads():
    forest, trees, _, rng = fitted(n_features=6, n_estimators=30)
    X = rng.normal(size=(5 * BLOCK + 1, 6))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = trees.score_samples(X)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, trees.score_samples(X))
    assert np.array_equal(one, forest.score_samples(X))


def test_the_detector_reads_nan_and_inf_as_typical_and_scores_as_scikit_learn():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.lognormal(size=(800, 4)), columns=["a", "b", "c", "d"])
    frame.loc[rng.random(800) < 0.1, "a"] = np.nan
    frame.loc[rng.random(800) < 0.05, "b"] = np.inf
    frame.loc[rng.random(800) < 0.05, "c"] = -np.inf
    frame["d"] = np.nan  # a feature the data cannot form
    detector = ForestDetector(n_estimators=25, max_samples=128, random_state=3).fit(frame)
    # the same forest, grown by scikit-learn on the matrix the detector grew its forest on
    forest = IsolationForest(n_estimators=25, max_samples=128, random_state=3).fit(detector._matrix(frame))
    assert np.array_equal(detector.score_samples(frame), forest.score_samples(detector._matrix(frame)))
    assert np.array_equal(detector.score_samples(frame.iloc[:1]), forest.score_samples(detector._matrix(frame.iloc[:1])))


def test_scoring_refuses_a_matrix_the_trees_cannot_walk():
    _, trees, train, _ = fitted(n_features=3)
    with pytest.raises(ValueError, match="lines x 3 features, got shape"):
        trees.score_samples(train[:, :2])
    with pytest.raises(ValueError, match="lines x 3 features"):
        trees.score_samples(train[0])
    with pytest.raises(ValueError, match="NaN"):
        trees.score_samples(np.where(np.arange(3) == 1, np.nan, train[:4]))


def test_a_read_only_matrix_scores_the_same():
    forest, trees, train, _ = fitted()
    frozen = np.ascontiguousarray(train, dtype=np.float32)
    frozen.setflags(write=False)
    assert_same_scores(forest, trees, frozen)


@parametrize_with_checks([ForestDetector(n_estimators=20), ForestDetector(n_estimators=20, contamination=0.1)])
def test_the_forest_detector_keeps_the_estimator_contract(estimator, check):
    check(estimator)  # the walk through scikit-learn's odd inputs: one row, one feature, copies, pickles


# ---- checked once, when built or loaded -----------------------------------------------------------------

def _broken(trees, name, position, value):
    arrays = {column: np.array(values) for column, values in trees.to_arrays().items()}
    arrays[name][position] = value
    return arrays


@pytest.mark.parametrize("name, position, value, message", [
    ("left", 0, 10**6, "tree 0 node 0 has children 1000000"),  # out of the arrays
    ("right", 1, 0, "has children"),  # back up to the root: a loop
    ("left", 0, 0, "has children 0"),  # a node its own child
    ("feature", 0, 99, "splits on feature 99, outside the 5 features"),  # a column the matrix lacks
    ("feature", 0, -3, "splits on feature -3"),
    ("threshold", 0, np.nan, "not a finite number"),
    ("tree", 0, 1, "numbered 0, 1, 2"),
    ("n_node_samples", 0, 3, "training lines"),
])
def test_broken_trees_are_refused_when_loaded_or_built(name, position, value, message):
    _, trees, _, _ = fitted()
    broken = _broken(trees, name, position, value)
    with pytest.raises(ValueError, match=message):
        IsolationTrees.from_arrays(broken, trees.max_samples, trees.n_features)
    with pytest.raises(ValueError, match=message):  # built directly, not through from_arrays: checked the same
        IsolationTrees(**broken, max_samples=trees.max_samples, n_features=trees.n_features)


def test_checked_trees_cannot_be_changed_after_the_check():
    _, trees, train, _ = fitted()
    arrays = {name: np.array(values) for name, values in trees.to_arrays().items()}
    again = IsolationTrees.from_arrays(arrays, trees.max_samples, trees.n_features)
    arrays["left"][0] = 10**6  # the caller's arrays were copied: changing them changes nothing here
    assert np.array_equal(again.score_samples(train), trees.score_samples(train))
    for name in TREE_COLUMNS:
        with pytest.raises(ValueError, match="read-only"):
            getattr(again, name)[0] = 10**6
    for values in again._walk:
        with pytest.raises(ValueError, match="read-only"):
            values[0] = 10**6
    for copied in (copy.deepcopy(again), pickle.loads(pickle.dumps(again))):  # built again, so checked again
        assert not any(values.flags.writeable for values in (*copied.to_arrays().values(), *copied._walk))
        assert np.array_equal(copied.score_samples(train), trees.score_samples(train))


# ---- numba compiles once, not in every process ------------------------------------------------------------

def test_a_fresh_process_loads_the_compiled_walk_from_the_cache():
    _, trees, train, _ = fitted()
    trees.score_samples(train[:10])  # compiled and cached here, if no earlier process did it
    code = ("import numpy as np; from tbml.detectors.forest import IsolationTrees;"
            "t = IsolationTrees.from_arrays({'tree': [0, 0, 0], 'left': [1, -1, -1], 'right': [2, -1, -1],"
            " 'feature': [0, -2, -2], 'threshold': [0.5, -2.0, -2.0], 'n_node_samples': [4, 1, 3]}, 4, 1);"
            "print(t.score_samples(np.array([[0.0], [1.0]])).tolist())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_DEBUG_CACHE": "1"})
    walk = [line for line in run.stdout.splitlines() if "forest_path_lengths" in line]
    assert any(line.startswith("[cache] data loaded") for line in walk), run.stdout
    assert not any("saved" in line for line in walk), run.stdout

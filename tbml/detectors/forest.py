"""Isolation forest over the engineered feature matrix, with the features that made a line unusual.

Each feature is centred on its median and scaled by its IQR (learned in ``fit``); a missing value is read as
the median, so it never makes a line look strange. ``explain`` names the features furthest from typical,
in words (``tbml.wording``), with the line's figure and the typical one: "paid 2.3 times the invoice value
(typically 1)".

The fitted forest is kept as plain arrays (``IsolationTrees``: per node, its children, split feature and
threshold, and the training lines it held) and scored by a numba walk (``tbml.forest_kernel``) that gives the
scores of scikit-learn's ``IsolationForest.score_samples`` to the last bit, several times faster. A saved
model therefore holds numbers that ``IsolationTrees._check`` proves form trees when they are built or
loaded, never an object that could point a walk outside its arrays or round a cycle; scoring trusts them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from tbml.detectors.base import BaseDetector
from tbml.forest_kernel import forest_path_lengths
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
        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 contamination=self.contamination, random_state=self.random_state)
        self.forest_ = IsolationTrees.from_sklearn(forest.fit(self._matrix(X)))

    def _score_samples(self, X) -> np.ndarray:
        return self.forest_.score_samples(self._matrix(X))

    def _auto_offset(self) -> float:
        return AUTO_OFFSET

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


AUTO_OFFSET = -0.5  # IsolationForest's cut with contamination="auto" (the original paper's)
TREE_COLUMNS = ("tree", "left", "right", "feature", "threshold", "n_node_samples")
LEAF = -1  # children_left / children_right of a leaf, as in sklearn.tree._tree


@dataclass(frozen=True, eq=False)
class IsolationTrees:
    """A fitted isolation forest as plain arrays, all trees' nodes one after another.

    ``tree`` (which tree a node is in; a tree's nodes are consecutive, its root first), ``left``/``right``
    (children as node numbers within the tree, ``LEAF`` at a leaf), ``feature`` and ``threshold`` (a line
    goes left when ``x[feature] <= threshold``, x as float32 as scikit-learn compares it), ``n_node_samples``
    (training lines that reached the node) and ``max_samples`` (lines each tree was grown on). These are
    scikit-learn's ``tree_`` arrays; build with ``from_sklearn`` or ``from_arrays``.

    Building checks the arrays (``ValueError`` saying what is wrong) and keeps read-only copies of them with
    the layout the numba walk needs: the only check, so scoring pays for none.
    """

    tree: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    n_node_samples: np.ndarray
    max_samples: int
    n_features: int

    def __post_init__(self):
        for name, value in (("max_samples", self.max_samples), ("n_features", self.n_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= 2**31:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in TREE_COLUMNS:
            object.__setattr__(self, name, _node_column(name, getattr(self, name)))
        lengths = {len(getattr(self, name)) for name in TREE_COLUMNS}
        if len(lengths) != 1:
            raise ValueError(f"the node arrays differ in length ({sorted(lengths)})")
        self._check()
        object.__setattr__(self, "_walk", tuple(_read_only(a) for a in self._layout()))

    def __reduce__(self):
        # a copy or a pickle is built again from the node arrays: checked and laid out as any other
        return (IsolationTrees.from_arrays, (self.to_arrays(), self.max_samples, self.n_features))

    @classmethod
    def from_sklearn(cls, forest: IsolationForest) -> IsolationTrees:
        """The trees of a fitted ``IsolationForest`` (feature indices mapped to the columns it was fitted on)."""
        subsampled = forest._max_features != forest.n_features_in_
        parts = {name: [] for name in TREE_COLUMNS}
        for number, (estimator, features) in enumerate(zip(forest.estimators_, forest.estimators_features_)):
            nodes = estimator.tree_
            inner = nodes.children_left != LEAF
            feature = nodes.feature.astype(np.int64)
            if subsampled:  # the tree was grown on X[:, features]; name the columns of X itself
                feature = np.where(inner, np.asarray(features)[np.where(inner, feature, 0)], feature)
            for name, values in (("tree", np.full(nodes.node_count, number)), ("left", nodes.children_left),
                                 ("right", nodes.children_right), ("feature", feature),
                                 ("threshold", nodes.threshold), ("n_node_samples", nodes.n_node_samples)):
                parts[name].append(values)
        arrays = {name: np.concatenate(values) for name, values in parts.items()}
        return cls.from_arrays(arrays, int(forest._max_samples), int(forest.n_features_in_))

    @classmethod
    def from_arrays(cls, arrays: dict, max_samples: int, n_features: int) -> IsolationTrees:
        """Trees from plain arrays (``TREE_COLUMNS``), checked: ``ValueError`` saying what is wrong unless every
        tree is a tree (see ``_check``), so that scoring can neither leave the arrays nor loop."""
        missing = [name for name in TREE_COLUMNS if name not in arrays]
        if missing:
            raise ValueError(f"no {missing[0]!r} array")
        return cls(**{name: arrays[name] for name in TREE_COLUMNS}, max_samples=max_samples, n_features=n_features)

    def _check(self) -> None:
        """Raise ``ValueError`` unless each tree is a tree: its nodes consecutive and numbered from its root,
        each node a leaf (both children ``LEAF``) or split (both children later in the same tree: a child
        after its parent cannot lead back to it), every node but the root the child of exactly one node, each
        split on a feature in range at a finite threshold, and the training lines of a split shared by its
        children, the root holding ``max_samples``."""
        tree, left, right = self.tree, self.left, self.right
        if not len(tree):
            raise ValueError("the forest has no trees")
        starts = np.flatnonzero(np.r_[True, tree[1:] != tree[:-1]])
        if tree[0] != 0 or np.any(np.diff(tree) < 0) or not np.array_equal(tree[starts], np.arange(len(starts))):
            raise ValueError("trees must be numbered 0, 1, 2... with each tree's nodes together")
        sizes = np.diff(np.r_[starts, len(tree)])
        size = sizes[tree]  # per node, the number of nodes in its tree
        node = np.arange(len(tree)) - starts[tree]  # per node, its number within its tree
        leaf = (left == LEAF) & (right == LEAF)
        split = (left > node) & (left < size) & (right > node) & (right < size) & (left != right)
        bad = np.flatnonzero(~(leaf | split))
        if len(bad):
            raise ValueError(_at(bad[0], tree, node) + f"has children {left[bad[0]]} and {right[bad[0]]}: each must be "
                             f"{LEAF} (a leaf) or a later node of the same tree (of {size[bad[0]]})")
        children = np.concatenate([(starts[tree] + left)[split], (starts[tree] + right)[split]])
        parents = np.bincount(children, minlength=len(tree))
        orphans = np.flatnonzero(parents != (node != 0))
        if len(orphans):
            raise ValueError(_at(orphans[0], tree, node) + f"is the child of {parents[orphans[0]]} nodes; every node "
                             "but a root must be the child of exactly one")
        bad = np.flatnonzero(split & ~((self.feature >= 0) & (self.feature < self.n_features)))
        if len(bad):
            raise ValueError(_at(bad[0], tree, node) + f"splits on feature {self.feature[bad[0]]}, "
                             f"outside the {self.n_features} features")
        bad = np.flatnonzero(split & ~np.isfinite(self.threshold))
        if len(bad):
            raise ValueError(_at(bad[0], tree, node) + f"splits at threshold {self.threshold[bad[0]]}, not a finite number")
        held = self.n_node_samples
        first = starts[tree]
        shared = np.where(split, held - held[np.where(split, first + left, 0)] - held[np.where(split, first + right, 0)], 0)
        bad = np.flatnonzero((held < 1) | (held > self.max_samples) | (shared != 0) | ((node == 0) & (held != self.max_samples)))
        if len(bad):
            raise ValueError(_at(bad[0], tree, node) + f"holds {held[bad[0]]} training lines, which does not fit its "
                             f"parent, its children or the {self.max_samples} lines a tree was grown on")

    @property
    def n_trees(self) -> int:
        return int(self.tree[-1]) + 1

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in TREE_COLUMNS}

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``IsolationForest.score_samples`` of the matrix ``X`` (lines x ``n_features``, no NaN): the same
        numbers, to the last bit. ``ValueError`` for another shape or a NaN."""
        with np.errstate(over="ignore"):  # beyond float32's range is +-inf, as in scikit-learn
            X = np.ascontiguousarray(X, dtype=np.float32)  # the trees compare float32 values, as scikit-learn's do
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of lines x {self.n_features} features, got shape {X.shape}")
        if np.isnan(X).any():  # scikit-learn would route a NaN by rules these arrays do not keep
            raise ValueError("the matrix holds NaN; ForestDetector reads a missing value as typical before scoring")
        if not X.flags.writeable:  # one compiled (and cached) kernel: numba types a read-only array apart
            X = X.copy()
        depths = forest_path_lengths(X, *self._walk)
        denominator = self.n_trees * _average_path_length(np.array([self.max_samples]))
        scores = 2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
        return -scores

    def _layout(self):
        """What the numba walk reads (see ``tbml.forest_kernel``), from the checked arrays: nodes renumbered tree
        by tree, level by level, each node's children side by side (left first); per tree its root and depth;
        per node its first child (a leaf: itself), feature (0 at a leaf), threshold as float32 (+inf at a
        leaf, so a line stays there) and path length: its depth (the root's is 1) plus the average path length
        of the training lines it held, minus 1, the number scikit-learn adds for a line ending there."""
        starts = np.flatnonzero(np.r_[True, self.tree[1:] != self.tree[:-1]])
        first = starts[self.tree]
        inner = self.left != LEAF
        left, right = first + self.left, first + self.right  # positions in the arrays, where inner
        place = np.empty(len(self.tree), np.int64)  # each node's number in the walk's order
        depth = np.zeros(len(self.tree))
        place[starts] = np.arange(len(starts))
        depth[starts] = 1
        placed, level = len(starts), starts
        while len(level):  # a level's nodes in walk order, so their children are placed in walk order too
            level = level[inner[level]]
            children = np.column_stack([left[level], right[level]]).ravel()
            place[children] = placed + np.arange(len(children))
            depth[children] = np.repeat(depth[level] + 1, 2)
            placed, level = placed + len(children), children
        walk = [np.empty(len(self.tree), kind) for kind in (np.uint64, np.uint64, np.float32, np.float64)]
        first_child, feature, threshold, path_length = walk
        first_child[place] = np.where(inner, place[np.where(inner, left, 0)], place)
        feature[place] = np.where(inner, self.feature, 0)
        threshold[place] = np.where(inner, _float32_at_most(self.threshold), np.float32(np.inf))
        path_length[place] = depth + _average_path_length(self.n_node_samples.astype(np.float64)) - 1.0
        steps = np.maximum.reduceat(depth, starts).astype(np.int64) - 1
        return place[starts].astype(np.uint64), steps, first_child, feature, threshold, path_length


def _float32_at_most(values: np.ndarray) -> np.ndarray:
    """Per float64 value t, the largest float32 not above it: for a float32 x, ``x <= t`` exactly when
    ``x <= _float32_at_most(t)``, so the walk compares float32 with float32 and routes every line as before."""
    with np.errstate(over="ignore"):  # beyond float32's range: +-inf, then one step down from +inf
        nearest = values.astype(np.float32)
    return np.where(nearest.astype(np.float64) > values, np.nextafter(nearest, np.float32(-np.inf)), nearest)


def _average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """Average path length of an unsuccessful search in a binary search tree of ``n_samples`` lines
    (scikit-learn's ``_average_path_length``, the same arithmetic in the same order)."""
    n_samples = np.asarray(n_samples, dtype=np.float64)
    average = np.zeros(n_samples.shape)
    more = n_samples > 2
    average[n_samples == 2] = 1.0
    average[more] = 2.0 * (np.log(n_samples[more] - 1.0) + np.euler_gamma) - 2.0 * (n_samples[more] - 1.0) / n_samples[more]
    return average


def _node_column(name: str, values) -> np.ndarray:
    """A read-only copy of one node array as int64 (float64 for ``threshold``), or ``ValueError``."""
    values = np.asarray(values)
    kind = np.float64 if name == "threshold" else np.int64
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.dtype == kind
                                or (kind is np.float64 and np.issubdtype(values.dtype, np.floating))):
        raise ValueError(f"{name!r} must be a column of {'numbers' if kind is np.float64 else 'whole numbers'}")
    if np.issubdtype(values.dtype, np.unsignedinteger) and len(values) and values.max() > 2**62:
        raise ValueError(f"{name!r} holds a number too large for a node")
    return _read_only(np.array(values, dtype=kind, order="C"))


def _read_only(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    values.setflags(write=False)  # checked once: nothing may change a node after the check
    return values


def _at(position: int, tree: np.ndarray, node: np.ndarray) -> str:
    return f"tree {tree[position]} node {node[position]} "

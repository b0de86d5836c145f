"""Numba kernel that walks a fitted isolation forest. Numba code only: arrays in, an array out.

The caller (``tbml.detectors.forest.IsolationTrees``) checks the trees once, when they are built or loaded,
and lays them out for this walk; the kernel trusts that layout and says so.

The layout: nodes are numbered tree by tree, level by level, so that a node's two children sit side by
side: a line at ``node`` goes to ``first_child[node] + (x[feature[node]] > threshold[node])``. A leaf is its
own first child with an infinite threshold, so a line reaching it stays there: each line takes exactly its
tree's depth in steps, with no "is this a leaf?" test and no branch on the comparison. Eight lines walk a
tree side by side, so the CPU overlaps their chains of dependent loads; lines go in blocks over the cores,
and a block meets one tree after another, so a tree's nodes and the block's lines stay in cache. Indices
are unsigned because numba wraps a negative index around, a test and a select per index that unsigned ones
skip. On one core this measured 3.8x less CPU than scikit-learn's walk of the same trees (a plain
node-by-node walk with a branch per step: no faster than scikit-learn's).

Each line's path lengths are added in tree order, from 0.0, as scikit-learn adds them, so the sums are the
same to the last bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LANES = 8  # lines walked side by side: 4 measured 1.5x slower, 16 ran out of registers and was slower still
BLOCK = 512  # lines per parallel task: 512 lines of features (tens of KB) stay in cache across the trees


@njit(parallel=True, cache=True)
def forest_path_lengths(X, roots, steps, first_child, feature, threshold, path_length):
    """Per line (row) of ``X``, the sum over the trees, in tree order, of the path length of the leaf it reaches.

    ``X`` is float32 (lines x features); per tree ``roots`` (its root's node number) and ``steps`` (its
    depth in edges); per node ``first_child``, ``feature``, ``threshold`` (float32: the largest float32 not
    above scikit-learn's float64 threshold, which sends every float32 value the same way) and ``path_length``.
    Node numbers and features are uint64.
    Clean input assumed: C-contiguous, no NaN in ``X``, and checked trees in the layout above (every child a
    node, every feature a column of ``X``, no tree deeper than its ``steps``).
    """
    n = X.shape[0]
    sums = np.zeros(n)
    n_blocks = (n + BLOCK - 1) // BLOCK
    lanes = np.zeros((n_blocks, LANES), np.uint64)  # each block's own nodes-in-progress: no thread shares one
    for b in prange(n_blocks):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        at = lanes[b]
        for t in range(roots.shape[0]):
            i = start
            while i + LANES <= stop:
                for r in range(LANES):
                    at[r] = roots[t]
                for _ in range(steps[t]):
                    for r in range(LANES):
                        node = at[r]
                        go_right = X[np.uint64(i + r), feature[node]] > threshold[node]
                        at[r] = first_child[node] + np.uint64(go_right)
                for r in range(LANES):
                    sums[i + r] += path_length[at[r]]
                i += LANES
            while i < stop:  # the block's last few lines, one at a time
                node = roots[t]
                for _ in range(steps[t]):
                    node = first_child[node] + np.uint64(X[np.uint64(i), feature[node]] > threshold[node])
                sums[i] += path_length[node]
                i += 1
    return sums

"""Drawing indices from a labelled pool: a smaller pool, a first labelled set.

:func:`subsample_indices` shrinks a pool (keeping the class proportions);
:func:`initial_labeled_indices` draws the first labelled set of active
learning (as balanced over the classes as possible). Both are seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state, resample

from .._validation import check_integer
from ..exceptions import MoBYALError

__all__ = ["subsample_indices", "initial_labeled_indices"]


def _check_pool_args(y: Any, n: Any, minimum: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise MoBYALError(f"y must be 1-D, got shape {arr.shape}")
    n = check_integer(n, "n", minimum=minimum)
    if n > len(arr):
        raise MoBYALError(f"n={n} is larger than y, which holds {len(arr)} samples")
    return arr, n


def subsample_indices(
    y: Any, n: int, random_state: Any = None, stratified: bool = True
) -> np.ndarray:
    """Draw ``n`` distinct indices of ``y``, e.g. to shrink a pool.

    Parameters
    ----------
    y : array-like of shape (N,)
        Labels (any values that :func:`numpy.unique` can sort).
    n : int
        How many indices, 0 <= n <= N; ``n == N`` returns every index.
    random_state : int, RandomState or None
        Seed (:func:`sklearn.utils.check_random_state`); an int is reproducible.
    stratified : bool, default True
        Keep the class proportions with :func:`sklearn.utils.resample`: each
        class gets ``n * count / N`` rounded down, and the leftover indices go
        to the classes with the largest remainders (ties broken at random).
        This works for ``n`` below the number of classes and for classes with
        a single member. False draws uniformly.

    Returns
    -------
    ndarray of int64, shape (n,)
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or ``n`` is negative or larger than ``len(y)``.
    TypeError
        If ``n`` is not an integer.
    """
    arr, n = _check_pool_args(y, n, minimum=0)
    rng = check_random_state(random_state)
    total = len(arr)
    if n == total:
        return np.arange(total, dtype=np.int64)
    if n == 0 or not stratified:
        return np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    picked = resample(np.arange(total), replace=False, n_samples=n, stratify=arr, random_state=rng)
    return np.sort(picked).astype(np.int64)


def initial_labeled_indices(
    y: Any, n: int, random_state: Any = None, stratified: bool = True
) -> np.ndarray:
    """Draw ``n`` distinct indices for the first labelled set of active learning.

    Parameters
    ----------
    y : array-like of shape (N,)
        Labels of the pool (the oracle's, used only to balance the draw).
    n : int
        Size of the set, 1 <= n <= N.
    random_state : int, RandomState or None
        Seed (:func:`sklearn.utils.check_random_state`); an int is reproducible.
    stratified : bool, default True
        As balanced over the K classes as possible: each class gets
        ``n // K`` indices and ``n % K`` classes, chosen at random, one more.
        A class with too few samples gives all it has and the shortfall is
        drawn at random from the remaining samples. False draws uniformly.

    Returns
    -------
    ndarray of int64, shape (n,)
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, ``n < 1`` or ``n > len(y)``.
    TypeError
        If ``n`` is not an integer.
    """
    arr, n = _check_pool_args(y, n, minimum=1)
    rng = check_random_state(random_state)
    total = len(arr)
    if not stratified:
        return np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    n_classes = len(counts)
    want = np.full(n_classes, n // n_classes, dtype=np.int64)
    want[rng.choice(n_classes, size=n % n_classes, replace=False)] += 1
    take = np.minimum(want, counts)
    chosen = np.zeros(total, dtype=bool)
    for k in range(n_classes):
        if take[k]:
            members = np.flatnonzero(inverse == k)
            chosen[rng.choice(members, size=int(take[k]), replace=False)] = True
    shortfall = n - int(take.sum())
    if shortfall:
        # small classes could not fill their share: top up from everything left
        rest = np.flatnonzero(~chosen)
        chosen[rng.choice(rest, size=shortfall, replace=False)] = True
    return np.flatnonzero(chosen).astype(np.int64)

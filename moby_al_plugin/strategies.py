"""modAL query strategies: distribution-based selection with k-Center-Greedy.

Each strategy is a plain function ``(classifier, X_pool, n_instances=1, **kwargs)``
as modAL expects. ``classifier`` is usually the modAL learner (its
``estimator`` is the network and ``X_training`` the labelled set), but a bare
estimator works too, with the labelled set passed as ``X_labeled``.

The strategies return ``(indices, X_pool[indices])``. modAL 0.4.1 returns such
a tuple from ``learner.query`` as it is, and modAL 0.4.2.1 unpacks it as
(indices, metrics) on its first call, so either version calls the strategy
exactly once and hands back the right indices (an index array alone would be
unpacked wrongly by 0.4.2.1 when ``n_instances == 2``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from ._validation import check_n_instances
from .kcenter import k_center_greedy

__all__ = ["mobyv2al_sampling", "coreset_sampling", "random_sampling"]

DEFAULT_SUBSET_SIZE = 10_000


def _take(X: Any, indices: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    return X[indices]


def _unwrap(classifier: Any, X_labeled: Any) -> tuple[Any, Any]:
    """The estimator and the labelled set, from a modAL learner or a bare estimator."""
    estimator = getattr(classifier, "estimator", classifier)
    if X_labeled is None:
        X_labeled = getattr(classifier, "X_training", None)
    return estimator, X_labeled


def _candidate_indices(n_pool: int, subset_size: int | None, n_instances: int, rng) -> np.ndarray:
    if subset_size is None or subset_size >= n_pool:
        return np.arange(n_pool)
    if subset_size < n_instances:
        raise ValueError(
            f"subset_size={subset_size} is smaller than n_instances={n_instances}; "
            "raise subset_size or pass subset_size=None to use the whole pool."
        )
    return np.sort(rng.choice(n_pool, size=subset_size, replace=False))


def _features(estimator: Any, X: Any) -> np.ndarray:
    if estimator is not None and hasattr(estimator, "transform"):
        return np.asarray(estimator.transform(X))
    # no feature extractor: k-center on the raw inputs, one row per sample
    X = np.asarray(X)
    return X.reshape(X.shape[0], -1)


def _kcenter_query(
    estimator: Any,
    X_pool: Any,
    X_labeled: Any,
    n_instances: int,
    subset_size: int | None,
    random_state: Any,
    device: Any,
) -> tuple[np.ndarray, Any]:
    n_instances = check_n_instances(n_instances, len(X_pool))
    rng = check_random_state(random_state)
    candidates = _candidate_indices(len(X_pool), subset_size, n_instances, rng)
    pool_features = _features(estimator, _take(X_pool, candidates))
    centers = None
    if X_labeled is not None and len(X_labeled):
        centers = _features(estimator, X_labeled)
    picks = k_center_greedy(pool_features, n_instances, initial_centers=centers, device=device)
    indices = candidates[picks]
    return indices, _take(X_pool, indices)


def coreset_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    random_state: Any = None,
    X_labeled: Any = None,
    device: Any = None,
    **kwargs: Any,
) -> tuple[np.ndarray, Any]:
    """CoreSet selection: k-Center-Greedy in the estimator's feature space.

    Features come from ``estimator.transform`` (a ``MoBYClassifier``, an sklearn
    ``Pipeline`` ending in a transformer, ...) or, when the estimator has no
    ``transform``, from the flattened raw inputs. Every labelled sample is an
    initial centre.

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator`` and ``X_training``.
    X_pool : array-like of shape (N, ...)
        The unlabelled pool.
    n_instances : int, default=1
        How many samples to select.
    subset_size : int or None, default=10000
        Size of the random subset of the pool searched (None: the whole pool).
    random_state : int, RandomState instance or None
        Seeds the candidate subset.
    X_labeled : array-like or None
        Labelled samples, when ``classifier`` is a bare estimator.
    device : str or None
        Where k-Center-Greedy runs (``"cuda"`` for a GPU; None: the CPU).
    **kwargs
        Ignored; accepted so modAL may pass its own keywords.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If ``n_instances`` is not an integer.
    ValueError
        If the pool is empty, ``n_instances`` is below 1 or above the pool
        size, or above ``subset_size``.
    """
    estimator, X_labeled = _unwrap(classifier, X_labeled)
    return _kcenter_query(
        estimator, X_pool, X_labeled, n_instances, subset_size, random_state, device
    )


def mobyv2al_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    random_state: Any = None,
    X_labeled: Any = None,
    device: Any = None,
    **kwargs: Any,
) -> tuple[np.ndarray, Any]:
    """MoBYv2AL selection: k-Center-Greedy on a ``MoBYClassifier``'s features.

    The same selection as :func:`coreset_sampling`, in the feature space of the
    jointly (self-supervised and supervised) trained encoder, computed on
    clean images in eval mode. Parameters, returns and errors are those of
    :func:`coreset_sampling`.

    Raises
    ------
    TypeError
        If the estimator is not a :class:`moby_al_plugin.MoBYClassifier`.
    """
    from .estimator import MoBYClassifier

    estimator, X_labeled = _unwrap(classifier, X_labeled)
    if not isinstance(estimator, MoBYClassifier):
        raise TypeError(
            "mobyv2al_sampling needs a MoBYClassifier (or a modAL learner wrapping one); "
            f"got {type(estimator).__name__}. Use coreset_sampling for other estimators."
        )
    return _kcenter_query(
        estimator, X_pool, X_labeled, n_instances, subset_size, random_state, device
    )


def random_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    random_state: Any = None,
    **kwargs: Any,
) -> tuple[np.ndarray, Any]:
    """Uniform selection without replacement, the baseline of every comparison.

    Parameters
    ----------
    classifier : modAL learner or estimator
        Unused; present for modAL's signature.
    X_pool : array-like of shape (N, ...)
    n_instances : int, default=1
    random_state : int, RandomState instance or None

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError, ValueError
        As :func:`coreset_sampling` for ``n_instances`` and an empty pool.
    """
    n_instances = check_n_instances(n_instances, len(X_pool))
    rng = check_random_state(random_state)
    indices = rng.choice(len(X_pool), size=n_instances, replace=False)
    return indices, _take(X_pool, indices)

"""modAL query strategies: k-Center-Greedy, typicality, herding, by budget, BADGE.

Each strategy is a plain function ``(classifier, X_pool, n_instances=1, *,
options...)`` as modAL expects. Its options are keyword-only and named, so a
misspelt option is a ``TypeError`` that names it. ``classifier`` is usually
the modAL learner (its ``estimator`` is the model and ``X_training`` the
labelled set, ``None`` before the first label), but a bare estimator works
too, with the labelled set passed as ``X_labeled``.

Features come from :func:`moby_al_plugin.selection.features.extract_features`: the
estimator's ``transform``, the steps of a ``Pipeline`` before its final
classifier, or the raw flattened inputs when neither is available or fitted
(a cold start without a pretrained encoder).

Randomness: every strategy draws from ``random_state`` through scikit-learn's
``check_random_state``, so None means numpy's global random state, as in
scikit-learn; pass an integer for picks that repeat. Candidates: by default a
random subset of ``subset_size`` pool samples drawn from ``random_state``;
``candidates=`` fixes the subset instead.

The strategies return ``(indices, X_pool[indices])``. modAL 0.4.1 returns such
a tuple from ``learner.query`` as it is, and modAL 0.4.2.1 unpacks it as
(indices, metrics) on its first call, so either version calls the strategy
exactly once and hands back the right indices (an index array alone would be
unpacked wrongly by 0.4.2.1 when ``n_instances == 2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from .._validation import check_integer, check_n_instances
from ..data.pools import check_pool, is_image_pool_on_disk
from ..exceptions import MoBYALError
from .badge import gradient_embedding, kmeans_plus_plus_seeds
from .features import apply_feature_map, l2_normalize, resolve_feature_map
from .herding import max_herding_select
from .kcenter import k_center_greedy
from .typicality import kmeans_labels, typiclust_select

__all__ = [
    "mobyv2al_sampling",
    "coreset_sampling",
    "typiclust_sampling",
    "maxherding_sampling",
    "budget_aware_sampling",
    "badge_sampling",
    "random_sampling",
    "labels_per_class",
]

DEFAULT_SUBSET_SIZE = 10_000
# k-Center-Greedy on L2-normalised features by default in coreset_sampling
# (contrastive features live on the sphere; benchmarks/selection_probe.py
# compares both); normalize=False is the paper's Euclidean k-center
# (mobyv2al_sampling's default).
NORMALIZE_DEFAULT = True
# budget_aware_sampling: typicality below this many labels per class, then
# diverse margin (see the docstring for the measurement).
DEFAULT_SWITCH_AT = 20
DEFAULT_AFTER = "margin"


def _take(X: Any, indices: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    return X[indices]


def _candidate_rows(X: Any, indices: np.ndarray) -> Any:
    """The candidates' rows; of a pool on disk a view, read later in chunks."""
    if len(indices) == len(X) and np.array_equal(indices, np.arange(len(X))):
        return X  # the whole pool: no copy, whatever its kind
    if is_image_pool_on_disk(X):
        return check_pool(X).take(indices)
    return _take(X, indices)


def _unwrap(classifier: Any, X_labeled: Any) -> tuple[Any, Any]:
    """The estimator and the labelled set, from a modAL learner or a bare estimator."""
    estimator = getattr(classifier, "estimator", classifier)
    if X_labeled is None:
        X_labeled = getattr(classifier, "X_training", None)
    if X_labeled is not None and len(X_labeled) == 0:
        X_labeled = None
    return estimator, X_labeled


def _candidate_indices(
    n_pool: int,
    n_instances: int,
    subset_size: int | None,
    candidates: Any,
    rng: np.random.RandomState,
) -> np.ndarray:
    """Positions in the pool that may be picked, sorted."""
    if candidates is not None:
        cand = np.asarray(candidates)
        if cand.ndim != 1 or not (cand.size == 0 or np.issubdtype(cand.dtype, np.integer)):
            raise MoBYALError(
                f"candidates must be a 1-D array of integer indices into X_pool; got an array "
                f"of shape {cand.shape} and dtype {cand.dtype}."
            )
        if cand.size and (cand.min() < 0 or cand.max() >= n_pool):
            raise MoBYALError(
                f"candidates holds indices outside [0, {n_pool}), the positions of X_pool."
            )
        cand = np.unique(cand)
        if cand.size < n_instances:
            raise MoBYALError(
                f"candidates holds {cand.size} distinct indices, fewer than "
                f"n_instances={n_instances}."
            )
        return cand.astype(np.intp)
    if subset_size is None:
        return np.arange(n_pool)
    check_integer(subset_size, "subset_size", minimum=None)
    if subset_size < n_instances:
        raise MoBYALError(
            f"subset_size={subset_size} is smaller than n_instances={n_instances}; "
            "raise subset_size or pass subset_size=None to use the whole pool."
        )
    if subset_size >= n_pool:
        return np.arange(n_pool)
    return np.sort(rng.choice(n_pool, size=subset_size, replace=False))


@dataclass
class _Query:
    """What every strategy works from: candidates, their features, the labelled ones."""

    estimator: Any
    n_instances: int
    candidates: np.ndarray  # positions in X_pool
    X_candidates: Any
    features: np.ndarray  # of the candidates
    labeled_features: np.ndarray | None
    rng: np.random.RandomState

    def result(self, X_pool: Any, picks: np.ndarray) -> tuple[np.ndarray, Any]:
        indices = self.candidates[np.asarray(picks, dtype=np.intp)]
        return indices, _take(X_pool, indices)


def _prepare(
    classifier: Any,
    X_pool: Any,
    n_instances: Any,
    *,
    subset_size: int | None,
    candidates: Any,
    random_state: Any,
    X_labeled: Any,
    normalize: bool,
) -> _Query:
    estimator, X_labeled = _unwrap(classifier, X_labeled)
    n = check_n_instances(n_instances, len(X_pool))
    rng = check_random_state(random_state)
    cand = _candidate_indices(len(X_pool), n, subset_size, candidates, rng)
    X_cand = _candidate_rows(X_pool, cand)
    features, feature_map, source = resolve_feature_map(estimator, X_cand)
    labeled = None
    if X_labeled is not None:
        labeled = apply_feature_map(feature_map, X_labeled, source)
        if labeled.shape[1] != features.shape[1]:
            raise MoBYALError(
                f"The labelled samples give {labeled.shape[1]} features and the pool "
                f"{features.shape[1]}; they must come from the same feature space."
            )
    if normalize:
        features = l2_normalize(features)
        labeled = None if labeled is None else l2_normalize(labeled)
    return _Query(estimator, n, cand, X_cand, features, labeled, rng)


def _kcenter(query: _Query, device: Any) -> np.ndarray:
    """k-Center-Greedy picks; from zero labels the first pick is a random candidate."""
    if query.labeled_features is not None:
        picks = k_center_greedy(
            query.features,
            query.n_instances,
            initial_centers=query.labeled_features,
            device=device,
        )
        return np.asarray(picks, dtype=np.intp)
    # without centres k_center_greedy starts at row 0: shuffle the rows first
    order = query.rng.permutation(len(query.candidates))
    picks = k_center_greedy(query.features[order], query.n_instances, device=device)
    return order[np.asarray(picks, dtype=np.intp)]


_COMMON_PARAMETERS = """
    subset_size : int or None, default=10000
        Size of the random subset of the pool searched (None: the whole pool),
        drawn from ``random_state``. Ignored when ``candidates`` is given.
    candidates : array-like of int or None, default=None
        Positions in ``X_pool`` that may be picked, instead of a random subset.
    random_state : int, RandomState instance or None, default=None
        Seeds the candidate subset and any clustering. None: numpy's global
        random state, as scikit-learn does.
    X_labeled : array-like or None, default=None
        Labelled samples, when ``classifier`` is a bare estimator (a learner's
        ``X_training`` is used otherwise). None or empty: no label yet."""


def coreset_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    normalize: bool = NORMALIZE_DEFAULT,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
    X_labeled: Any = None,
    device: Any = None,
) -> tuple[np.ndarray, Any]:
    """CoreSet selection: k-Center-Greedy in the estimator's feature space.

    Every labelled sample is an initial centre; each pick is the candidate
    farthest from its nearest centre. With no label yet, the first pick is a
    random candidate.

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator`` and ``X_training``. Features: see
        :func:`moby_al_plugin.selection.features.extract_features` (an unfitted
        estimator without fitted feature steps gives the raw inputs).
    X_pool : array-like of shape (N, ...)
        The unlabelled pool.
    n_instances : int, default=1
        How many samples to select.
    normalize : bool, default=True
        Run k-Center-Greedy on L2-normalised features (the unit sphere where
        a contrastive loss works). False: Euclidean distances on the features
        as they are, as in the MoBYv2AL paper. The default is the module's
        ``NORMALIZE_DEFAULT``, chosen by measurement (see its comment).
    device : str or None, default=None
        Where k-Center-Greedy runs (``"cuda"`` for a GPU; None: the CPU).
    {common}

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If ``n_instances`` or ``subset_size`` is not an integer, or an
        unknown keyword is passed.
    MoBYALError
        If the pool is empty, ``n_instances`` is below 1 or above the pool
        size or the candidates, ``candidates`` is not valid, or the features
        hold NaN or infinite values.
    """
    query = _prepare(
        classifier,
        X_pool,
        n_instances,
        subset_size=subset_size,
        candidates=candidates,
        random_state=random_state,
        X_labeled=X_labeled,
        normalize=normalize,
    )
    return query.result(X_pool, _kcenter(query, device))


def mobyv2al_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    normalize: bool = False,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
    X_labeled: Any = None,
    device: Any = None,
) -> tuple[np.ndarray, Any]:
    """MoBYv2AL selection: k-Center-Greedy on a ``MoBYClassifier``'s features.

    The same selection as :func:`coreset_sampling`, in the feature space of the
    jointly (self-supervised and supervised) trained encoder, computed on
    clean images in eval mode. By default it is the paper's selection:
    Euclidean distances on unnormalised features (``normalize=False``, unlike
    :func:`coreset_sampling`'s default) over a random 10,000 candidates.
    ``normalize=True`` works on the unit sphere instead. Other parameters,
    returns and errors are those of :func:`coreset_sampling`.

    Raises
    ------
    TypeError
        If the estimator is not a :class:`moby_al_plugin.MoBYClassifier`.
    """
    estimator, _ = _unwrap(classifier, None)
    # by name: selection reads estimators through their methods, never imports them
    if not any(
        cls.__name__ == "MoBYClassifier" and cls.__module__.startswith("moby_al_plugin.")
        for cls in type(estimator).__mro__
    ):
        raise TypeError(
            "mobyv2al_sampling needs a MoBYClassifier (or a modAL learner wrapping one); "
            f"got {type(estimator).__name__}. Use coreset_sampling for other estimators."
        )
    return coreset_sampling(
        classifier,
        X_pool,
        n_instances,
        normalize=normalize,
        subset_size=subset_size,
        candidates=candidates,
        random_state=random_state,
        X_labeled=X_labeled,
        device=device,
    )


def typiclust_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    n_neighbors: int = 20,
    normalize: bool = True,
    scale: str = "auto",
    # the defaults of typiclust_select (tests/test_typicality.py checks they agree)
    sampled_above: int = 100_000,
    kmeans_sample_size: int = 100_000,
    cluster_sample_size: int = 2_000,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
    X_labeled: Any = None,
) -> tuple[np.ndarray, Any]:
    """TypiClust: the most typical candidate of the least-labelled clusters.

    The labelled samples and the candidates are clustered together (k-means,
    MiniBatchKMeans above 50 clusters) into ``min(n_labeled + n_instances,
    max_clusters)`` clusters. Clusters of ``min_cluster_size`` points or fewer
    are skipped, unless no larger one has a candidate left (a small pool).
    The clusters with the fewest labelled members are visited first, the
    largest first among equals; each visit takes the candidate of highest
    typicality, ``1 / (mean distance to its K nearest neighbours inside the
    cluster + 1e-5)``, ``K = min(n_neighbors, cluster size // 2)``. Works from
    zero labels (a cold start). Above ``sampled_above`` points (with
    ``subset_size=None`` on a large pool) a sampled version with bounded time
    and memory runs instead: see :mod:`moby_al_plugin.selection.typicality`.

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator`` and ``X_training``. Features: see
        :func:`moby_al_plugin.selection.features.extract_features` (an unfitted
        estimator without fitted feature steps gives the raw inputs).
    X_pool : array-like of shape (N, ...)
    n_instances : int, default=1
    max_clusters : int, default=500
        Cap on the number of clusters.
    min_cluster_size : int, default=5
        Clusters of at most this many points are skipped (see above).
    n_neighbors : int, default=20
        ``K`` of the typicality.
    normalize : bool, default=True
        L2-normalise the features first, as TypiClust does.
    scale : {"auto", "exact", "sampled"}, default="auto"
        ``"exact"``: the published algorithm on every point; ``"sampled"``:
        k-means fitted on a sample of the points, and typicality measured
        against a sample of each large cluster; ``"auto"``: exact up to
        ``sampled_above`` points (labelled and candidates), sampled above.
    sampled_above : int, default=100000
        The most points that ``scale="auto"`` runs exactly.
    kmeans_sample_size : int, default=100000
        Sampled version: the points k-means is fitted on (every labelled
        sample and random candidates), at least the number of clusters.
    cluster_sample_size : int, default=2000
        Sampled version: the members of a larger cluster that typicality is
        measured against.
    {common}

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``, in pick order.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If an integer option is not an integer, or an unknown keyword is
        passed.
    MoBYALError
        As :func:`coreset_sampling`, or if an option is out of range or
        ``scale`` is not one of ``"auto"``, ``"exact"``, ``"sampled"``.
    """
    query = _prepare(
        classifier,
        X_pool,
        n_instances,
        subset_size=subset_size,
        candidates=candidates,
        random_state=random_state,
        X_labeled=X_labeled,
        normalize=normalize,
    )
    picks = typiclust_select(
        query.labeled_features,
        query.features,
        query.n_instances,
        max_clusters=max_clusters,
        min_cluster_size=min_cluster_size,
        n_neighbors=n_neighbors,
        scale=scale,
        sampled_above=sampled_above,
        kmeans_sample_size=kmeans_sample_size,
        cluster_sample_size=cluster_sample_size,
        random_state=query.rng,
    )
    return query.result(X_pool, picks)


def maxherding_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    n_neighbors: int = 50,
    bandwidth: float | None = None,
    normalize: bool = True,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
    X_labeled: Any = None,
) -> tuple[np.ndarray, Any]:
    """MaxHerding: greedy kernel herding, a soft coverage of the data.

    Maximises ``sum_x max_{s in S} k(x, s)`` over the labelled samples and the
    candidates (``S``: the labelled samples and the picks), greedily, with an
    RBF kernel kept sparse on the ``n_neighbors`` nearest-neighbour graph
    (memory ``O(N n_neighbors)``). When nothing adds coverage any more, the
    remaining picks are uniform among the candidates. Works from zero labels.

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator`` and ``X_training``. Features: see
        :func:`moby_al_plugin.selection.features.extract_features`.
    X_pool : array-like of shape (N, ...)
    n_instances : int, default=1
    n_neighbors : int, default=50
        Neighbours per point in the kernel graph (chosen with
        ``benchmarks/selection_probe.py``).
    bandwidth : float or None, default=None
        Kernel ``sigma``; None: the median distance to the ``n_neighbors``-th
        neighbour (see :func:`moby_al_plugin.selection.herding.knn_rbf_kernel`).
    normalize : bool, default=True
        L2-normalise the features first.
    {common}

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``, in pick order.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If ``n_neighbors`` is not an integer, or an unknown keyword is passed.
    MoBYALError
        As :func:`coreset_sampling`, or if ``bandwidth`` is not positive.
    """
    query = _prepare(
        classifier,
        X_pool,
        n_instances,
        subset_size=subset_size,
        candidates=candidates,
        random_state=random_state,
        X_labeled=X_labeled,
        normalize=normalize,
    )
    picks = max_herding_select(
        query.labeled_features,
        query.features,
        query.n_instances,
        n_neighbors=n_neighbors,
        bandwidth=bandwidth,
        random_state=query.rng,
    )
    return query.result(X_pool, picks)


def _count_classes(classifier: Any, estimator: Any, n_classes: Any) -> int | None:
    """The number of classes: given, from the fitted estimator, or from the labels seen."""
    if n_classes is not None:
        return check_integer(n_classes, "n_classes")
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        classes = getattr(estimator, "classes", None)  # skorch / MoBYClassifier parameter
    if classes is not None and len(classes):
        return len(classes)
    y = getattr(classifier, "y_training", None)
    if y is not None and len(y):
        return len(np.unique(np.asarray(y)))
    return None


def labels_per_class(
    classifier: Any, *, n_classes: int | None = None, X_labeled: Any = None
) -> float:
    """Labelled samples per class, the quantity :func:`budget_aware_sampling` switches on.

    Parameters
    ----------
    classifier : modAL learner or estimator
    n_classes : int or None, default=None
        The number of classes; None: ``len(estimator.classes_)`` (or the
        estimator's ``classes`` parameter), else the distinct labels of the
        learner's ``y_training``.
    X_labeled : array-like or None, default=None
        Labelled samples, for a bare estimator.

    Returns
    -------
    float
        ``n_labeled / n_classes``; 0.0 when nothing is labelled.

    Raises
    ------
    MoBYALError
        If samples are labelled but the number of classes cannot be found.
    """
    estimator, X_labeled = _unwrap(classifier, X_labeled)
    n_labeled = 0 if X_labeled is None else len(X_labeled)
    if n_labeled == 0:
        return 0.0
    k = _count_classes(classifier, estimator, n_classes)
    if k is None:
        raise MoBYALError(
            "Cannot count the labels per class: pass n_classes= (the estimator has no "
            "classes_ and no labels were given)."
        )
    return n_labeled / k


def _diverse_margin(query: _Query, uncertain_factor: int) -> np.ndarray:
    """k-means (weighted by uncertainty) over the least-margin candidates, one pick each."""
    estimator, n = query.estimator, query.n_instances
    if not hasattr(estimator, "predict_proba"):
        raise MoBYALError(
            f"after='margin' needs an estimator with predict_proba; "
            f"{type(estimator).__name__} has none."
        )
    try:
        proba = np.asarray(estimator.predict_proba(query.X_candidates), dtype=np.float64)
    except NotFittedError:
        raise MoBYALError(
            "after='margin' needs a fitted estimator (predict_proba); fit it on the "
            "labelled set first, or use after='kcenter'."
        ) from None
    top2 = np.sort(proba, axis=1)[:, -2:] if proba.shape[1] > 1 else np.c_[0 * proba, proba]
    margin = top2[:, 1] - top2[:, 0]
    n_uncertain = min(len(margin), uncertain_factor * n)
    uncertain = np.argsort(margin, kind="stable")[:n_uncertain]
    features = query.features[uncertain]
    weights = 1.0 - margin[uncertain] + 1e-6
    labels = kmeans_labels(features, n, sample_weight=weights, random_state=query.rng)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        centre = np.average(features[members], axis=0, weights=weights[members])
        nearest = members[np.argmin(((features[members] - centre) ** 2).sum(axis=1))]
        picks.append(uncertain[nearest])
    if len(picks) < n:  # empty clusters (duplicated points): the most uncertain others
        rest = [i for i in uncertain if i not in set(picks)]
        picks.extend(rest[: n - len(picks)])
    picks = np.asarray(picks, dtype=np.intp)
    return picks[np.argsort(margin[picks], kind="stable")]


_AFTER = ("kcenter", "margin")


def budget_aware_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    switch_at: float = DEFAULT_SWITCH_AT,
    after: str = DEFAULT_AFTER,
    n_classes: int | None = None,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    n_neighbors: int = 20,
    uncertain_factor: int = 10,
    normalize: bool = True,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
    X_labeled: Any = None,
    device: Any = None,
) -> tuple[np.ndarray, Any]:
    """Typicality while labels per class are few, then coverage or diverse uncertainty.

    The rule: with ``n_labeled / n_classes < switch_at`` (see
    :func:`labels_per_class`; zero labels count as 0 per class) the batch
    comes from :func:`typiclust_sampling`; from ``switch_at`` labels per class
    on, from ``after``:

    - ``"kcenter"``: k-Center-Greedy, as :func:`coreset_sampling`;
    - ``"margin"``: diverse uncertainty: the ``uncertain_factor * n_instances``
      candidates of smallest margin (top-two class probabilities) are
      clustered by k-means into ``n_instances`` clusters, weighted by
      ``1 - margin``, and the candidate nearest each cluster's centre is
      picked (Zhdanov, arXiv 1901.05954). Needs a fitted ``predict_proba``.

    The defaults come from ``benchmarks/selection_probe.py`` on Fashion-MNIST
    (the README's "Which strategy when" has the figures): typicality led at
    10 labels per class, diverse margin from 20 on. On the digits diverse
    margin led much earlier, so the best switch depends on the data and the
    features; a coverage-based rule is not implemented.

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator``, ``X_training`` and ``y_training``.
    X_pool : array-like of shape (N, ...)
    n_instances : int, default=1
    switch_at : float, default=20
        Labels per class from which ``after`` replaces typicality (0: never
        typicality; ``inf``: always).
    after : {"margin", "kcenter"}, default="margin"
    n_classes : int or None, default=None
        Number of classes, for the rule; None: from the estimator's
        ``classes_`` or the labels seen (see :func:`labels_per_class`).
    max_clusters, min_cluster_size, n_neighbors : int
        Options of :func:`typiclust_sampling`.
    uncertain_factor : int, default=10
        ``after="margin"``: how many uncertain candidates per pick enter the
        clustering.
    normalize : bool, default=True
        L2-normalised features in both phases.
    device : str or None, default=None
        Where k-Center-Greedy runs.
    {common}

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If an integer option is not an integer, or an unknown keyword is
        passed.
    MoBYALError
        As the strategy of the phase, if ``after`` is unknown, if ``switch_at``
        is negative, or if labels exist but the number of classes cannot be
        found.
    """
    if after not in _AFTER:
        raise MoBYALError(f"after must be one of {_AFTER}, got {after!r}.")
    if not switch_at >= 0:
        raise MoBYALError(f"switch_at must be a non-negative number, got {switch_at!r}.")
    check_integer(uncertain_factor, "uncertain_factor")
    query = _prepare(
        classifier,
        X_pool,
        n_instances,
        subset_size=subset_size,
        candidates=candidates,
        random_state=random_state,
        X_labeled=X_labeled,
        normalize=normalize,
    )
    typical = labels_per_class(classifier, n_classes=n_classes, X_labeled=X_labeled) < switch_at
    if typical:
        picks = typiclust_select(
            query.labeled_features,
            query.features,
            query.n_instances,
            max_clusters=max_clusters,
            min_cluster_size=min_cluster_size,
            n_neighbors=n_neighbors,
            random_state=query.rng,
        )
    elif after == "kcenter":
        picks = _kcenter(query, device)
    else:
        picks = _diverse_margin(query, int(uncertain_factor))
    return query.result(X_pool, picks)


def badge_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    subset_size: int | None = DEFAULT_SUBSET_SIZE,
    candidates: Any = None,
    random_state: Any = None,
) -> tuple[np.ndarray, Any]:
    """BADGE: k-means++ seeding on gradient embeddings (Ash et al., ICLR 2020).

    Each candidate's embedding is the gradient of the cross-entropy with
    respect to the last linear layer at the predicted label,
    ``(p - onehot(argmax p)) outer h`` (:func:`moby_al_plugin.selection.badge.gradient_embedding`),
    from the estimator's ``predict_proba`` (``p``) and its penultimate
    features ``h`` (its ``transform``, or the steps of a ``Pipeline`` before
    the classifier: see :func:`moby_al_plugin.selection.features.extract_features`).
    The batch is the k-means++ seeding of those embeddings
    (:func:`moby_al_plugin.selection.badge.kmeans_plus_plus_seeds`): the
    first pick is the candidate of largest gradient, each next one is drawn
    in proportion to its squared distance to the picks so far, so the batch
    is uncertain and diverse at once. It needs a classifier trained on
    labels: it cannot pick the first labelled set (a cold start).

    Parameters
    ----------
    classifier : modAL learner or estimator
        A learner supplies ``estimator``. The estimator must be fitted and
        have ``predict_proba``, and a feature map whose output feeds its last
        linear layer (a ``MoBYClassifier``'s ``transform`` does).
    X_pool : array-like of shape (N, ...)
        The unlabelled pool.
    n_instances : int, default=1
        How many samples to select.
    subset_size : int or None, default=10000
        Size of the random subset of the pool searched (None: the whole pool),
        drawn from ``random_state``. Ignored when ``candidates`` is given.
    candidates : array-like of int or None, default=None
        Positions in ``X_pool`` that may be picked, instead of a random subset.
    random_state : int, RandomState instance or None, default=None
        Seeds the candidate subset and the k-means++ draws. None: numpy's
        global random state, as scikit-learn does.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``, in pick order.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If the estimator has no ``predict_proba`` or offers no features (only
        its raw inputs), if ``n_instances`` or ``subset_size`` is not an
        integer, or an unknown keyword is passed.
    MoBYALError
        If the estimator is not fitted (a cold start), if the pool is empty,
        ``n_instances`` is below 1 or above the pool size or the candidates,
        ``candidates`` is not valid, or the features or probabilities hold
        NaN or infinite values.
    """
    estimator, _ = _unwrap(classifier, None)
    name = type(estimator).__name__
    if not hasattr(estimator, "predict_proba"):
        raise TypeError(f"badge_sampling needs an estimator with predict_proba; {name} has none.")
    n = check_n_instances(n_instances, len(X_pool))
    rng = check_random_state(random_state)
    cand = _candidate_indices(len(X_pool), n, subset_size, candidates, rng)
    X_cand = _candidate_rows(X_pool, cand)
    try:
        proba = estimator.predict_proba(X_cand)
    except NotFittedError:
        raise MoBYALError(
            f"badge_sampling needs a classifier fitted on labelled samples, and this {name} "
            "is not fitted: BADGE cannot start cold. Pick the first labelled set with a "
            "cold-start strategy (random_sampling, typiclust_sampling, ...)."
        ) from None
    features, _, source = resolve_feature_map(estimator, X_cand)
    if source == "raw":
        # the raw pixels are not what the last layer sees: the gradients would be wrong
        raise TypeError(
            f"badge_sampling needs the penultimate features of the estimator (its transform, "
            f"or the steps of a Pipeline before the classifier); {name} offers none."
        )
    try:
        embedding = gradient_embedding(proba, features)
    except ValueError as error:
        raise MoBYALError(f"badge_sampling: {error}") from None
    picks = kmeans_plus_plus_seeds(embedding, n, random_state=rng)
    indices = cand[picks]
    return indices, _take(X_pool, indices)


def random_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    *,
    candidates: Any = None,
    random_state: Any = None,
) -> tuple[np.ndarray, Any]:
    """Uniform selection without replacement, the baseline of every comparison.

    Parameters
    ----------
    classifier : modAL learner or estimator
        Unused; present for modAL's signature.
    X_pool : array-like of shape (N, ...)
    n_instances : int, default=1
    candidates : array-like of int or None, default=None
        Positions in ``X_pool`` to draw from (None: the whole pool).
    random_state : int, RandomState instance or None, default=None
        None: numpy's global random state, as scikit-learn does.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Distinct indices into ``X_pool``.
    instances : array-like
        ``X_pool[indices]``.

    Raises
    ------
    TypeError
        If ``n_instances`` is not an integer, or an unknown keyword is passed.
    MoBYALError
        If the pool is empty, ``n_instances`` is below 1 or above the pool or
        the candidates, or ``candidates`` is not valid.
    """
    n = check_n_instances(n_instances, len(X_pool))
    rng = check_random_state(random_state)
    cand = _candidate_indices(len(X_pool), n, None, candidates, rng)
    indices = cand[rng.choice(len(cand), size=n, replace=False)]
    return indices, _take(X_pool, indices)


for _strategy in (coreset_sampling, typiclust_sampling, maxherding_sampling, budget_aware_sampling):
    if _strategy.__doc__:  # None under python -OO
        _strategy.__doc__ = _strategy.__doc__.replace(
            "    {common}", _COMMON_PARAMETERS.strip("\n")
        )
del _strategy

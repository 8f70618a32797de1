"""Typicality-based selection (TypiClust) on precomputed features.

TypiClust (Hacohen, Dekel and Weinshall, "Active Learning on a Budget:
Opposite Strategies Suit High and Low Budgets", ICML 2022, arXiv 2202.02794)
picks, at low budgets, points that are both typical (in a dense region) and
diverse (one per cluster):

1. cluster the labelled and the candidate points together into
   ``min(n_labeled + n, max_clusters)`` clusters;
2. ignore the clusters of ``min_cluster_size`` points or fewer;
3. repeatedly take the cluster with the fewest labelled members (the
   largest among equals) and, in it, the candidate of highest typicality
   ``1 / (mean distance to its K nearest neighbours in the cluster + eps)``.

Memory stays ``O(N K)``: the neighbours come from scikit-learn's
``NearestNeighbors`` run inside one cluster at a time, never from an
``N x N`` matrix.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ._validation import check_integer, stack_features
from .exceptions import MoBYALError

__all__ = ["kmeans_labels", "typicality", "typiclust_select"]

# Above this many clusters MiniBatchKMeans replaces KMeans (as in TypiClust).
MINIBATCH_ABOVE = 50
_EPS = 1e-5


def kmeans_labels(
    features: np.ndarray,
    n_clusters: int,
    *,
    sample_weight: np.ndarray | None = None,
    random_state: Any = None,
) -> np.ndarray:
    """Cluster labels from k-means (MiniBatchKMeans above 50 clusters).

    Parameters
    ----------
    features : ndarray of shape (N, d)
    n_clusters : int
        At least 1 and at most ``N``.
    sample_weight : ndarray of shape (N,) or None
        Weights of the points in the k-means objective.
    random_state : int, RandomState instance or None

    Returns
    -------
    ndarray of int of shape (N,)
        Cluster ids in ``[0, n_clusters)``; a cluster may be empty when the
        points hold fewer distinct values than ``n_clusters``.

    Raises
    ------
    MoBYALError
        If there are fewer points than clusters.
    """
    n_points = features.shape[0]
    n_clusters = check_integer(n_clusters, "n_clusters")
    if n_points < n_clusters:
        raise MoBYALError(
            f"Cannot form {n_clusters} clusters from {n_points} points: there are fewer "
            "candidates than clusters."
        )
    if n_clusters == 1:
        return np.zeros(n_points, dtype=np.intp)
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    if n_clusters <= MINIBATCH_ABOVE:
        model = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed)
    else:
        # one k-means++ start and small batches: more starts and larger batches
        # cost several times as much for picks of the same kind
        model = MiniBatchKMeans(n_clusters=n_clusters, n_init=1, batch_size=1024, random_state=seed)
    with warnings.catch_warnings():
        # duplicated points: fewer distinct values than clusters is harmless here
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit_predict(features, sample_weight=sample_weight).astype(np.intp)


def typicality(features: np.ndarray, n_neighbors: int = 20) -> np.ndarray:
    """Typicality of every point among the others: inverse mean kNN distance.

    ``typicality(x) = 1 / (mean Euclidean distance from x to its K nearest
    other points + 1e-5)`` with ``K = min(n_neighbors, N // 2)`` (at least 1).

    Parameters
    ----------
    features : ndarray of shape (N, d)
    n_neighbors : int, default=20

    Returns
    -------
    ndarray of shape (N,)
        Zero for a single point, which has no neighbour.
    """
    n_points = features.shape[0]
    if n_points < 2:
        return np.zeros(n_points)
    k = max(1, min(n_neighbors, n_points // 2))
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    # the nearest point of each query is itself, at distance 0
    return 1.0 / (distances[:, 1:].mean(axis=1) + _EPS)


def typiclust_select(
    labeled_features: np.ndarray | None,
    candidate_features: np.ndarray,
    n: int,
    *,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    n_neighbors: int = 20,
    random_state: Any = None,
) -> np.ndarray:
    """TypiClust picks among candidate points, given the labelled points.

    Parameters
    ----------
    labeled_features : ndarray of shape (M, d) or None
        Features of the labelled points (``None`` or ``M == 0``: none yet).
    candidate_features : ndarray of shape (N, d)
        Features of the points that may be picked.
    n : int
        How many to pick, ``1 <= n <= N``.
    max_clusters : int, default=500
        Cap on the number of clusters ``min(M + n, max_clusters)``.
    min_cluster_size : int, default=5
        Clusters of this many points or fewer (labelled and candidates
        together) are skipped while a larger cluster still has a candidate;
        when none has (a small pool), the small clusters are used too.
    n_neighbors : int, default=20
        ``K`` of the typicality (capped at half the cluster).
    random_state : int, RandomState instance or None
        Seeds k-means.

    Returns
    -------
    ndarray of int of shape (n,)
        Distinct indices into ``candidate_features``, in pick order.

    Raises
    ------
    MoBYALError
        If ``n`` is outside ``[1, N]``, the feature widths differ, or an
        option is out of range.
    TypeError
        If ``n`` or an option is not an integer.

    Notes
    -----
    A cluster's labelled count grows with every pick in it, so when the
    clusters are fewer than the picks (``max_clusters`` below ``n``) the
    visits go round the clusters again, fewest labelled members first.
    Typicality is measured among all members of a cluster, labelled or not.
    """
    candidate_features = np.asarray(candidate_features)
    n_candidates = candidate_features.shape[0]
    n = check_integer(n, "n")
    if n > n_candidates:
        raise MoBYALError(f"Cannot pick {n} of {n_candidates} candidates.")
    max_clusters = check_integer(max_clusters, "max_clusters")
    min_cluster_size = check_integer(min_cluster_size, "min_cluster_size", minimum=0)
    n_neighbors = check_integer(n_neighbors, "n_neighbors")
    features, n_labeled = stack_features(labeled_features, candidate_features)
    n_clusters = min(n_labeled + n, max_clusters)
    labels = kmeans_labels(features, n_clusters, random_state=random_state)

    sizes = np.bincount(labels, minlength=n_clusters)
    labeled_counts = np.bincount(labels[:n_labeled], minlength=n_clusters)
    # candidate members of every cluster, as positions into candidate_features
    cand_labels = labels[n_labeled:]
    order = np.argsort(cand_labels, kind="stable")
    bounds = np.searchsorted(cand_labels[order], np.arange(n_clusters + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(n_clusters)]
    remaining = np.array([len(m) for m in members])
    large = sizes > min_cluster_size
    taken = np.zeros(n_candidates, dtype=bool)
    scores: dict[int, np.ndarray] = {}
    picks = []
    for _ in range(n):
        open_ = remaining > 0
        eligible = open_ & large if (open_ & large).any() else open_
        ids = np.flatnonzero(eligible)
        # fewest labelled members first, then the largest cluster, then the lowest id
        cluster = ids[np.lexsort((ids, -sizes[ids], labeled_counts[ids]))[0]]
        if cluster not in scores:
            in_cluster = np.flatnonzero(labels == cluster)
            typ = typicality(features[in_cluster], n_neighbors)
            scores[cluster] = typ[in_cluster >= n_labeled]  # the candidates' scores
        cand = members[cluster]
        free = ~taken[cand]
        best = cand[free][np.argmax(scores[cluster][free])]
        taken[best] = True
        picks.append(best)
        remaining[cluster] -= 1
        labeled_counts[cluster] += 1
    return np.asarray(picks, dtype=np.intp)

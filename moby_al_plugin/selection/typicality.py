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

Two ways to run it (``scale=`` of :func:`typiclust_select`):

``"exact"``
    The algorithm above as published: k-means on every point, then
    scikit-learn's ``NearestNeighbors`` inside each visited cluster, one
    cluster at a time (memory ``O(N K)``, never an ``N x N`` matrix). Its
    cost grows with the pool: k-means over all ``N`` points, and a kNN search
    that is quadratic in the size of a cluster (a cold start of 10 picks on
    1,000,000 points makes clusters of 100,000).

``"sampled"``
    The same steps with both costs bounded, for pools of millions:

    - k-means is fitted on a seeded uniform sample of ``kmeans_sample_size``
      points (every labelled point and random candidates), and then every
      point is given its nearest centre, in chunks. That is how k-means
      labels points anyway; a uniform sample of 100,000 points leaves about
      200 per cluster at the 500-cluster cap, so the centres differ from a
      fit on everything by their sampling error only (MiniBatchKMeans itself
      sees one batch of 1,024 points per step).
    - Typicality is computed only for the clusters the picks visit. A
      cluster of at most ``cluster_sample_size`` members is scored exactly as
      above. In a larger one, every candidate is scored against a seeded
      uniform sample of ``cluster_sample_size`` of its members (labelled or
      not, itself left out): ``K`` nearest of ``s`` sampled members estimate
      the same density as the ``K m / s`` nearest of all ``m`` members, with
      a wider bandwidth, and all candidates of the cluster are ranked against
      the same sample, so the pick is still the candidate at the densest
      place of the cluster.

    Cost: the k-means fit depends on ``kmeans_sample_size`` only; the
    assignment is ``O(N k d)``; the typicality is at most
    ``O(N cluster_sample_size d)`` over all visited clusters. Memory: the
    features as given (a ``np.memmap`` stays on disk and is read in chunks,
    float16 rows are turned into float32 a chunk at a time), the fit sample
    (``kmeans_sample_size x d`` float32), a few tens of bytes per point for
    the labels, members and rankings, and work blocks of about 16 MiB.

``"auto"`` (the default) runs ``"exact"`` up to ``sampled_above`` points
(labelled and candidates together) and ``"sampled"`` above: below 100,000
points the exact algorithm takes seconds, so it keeps the published picks.

Measured by ``benchmarks/typiclust_scale.py`` (2-core VM, one thread): on
1,000,000 x 128 float16 memmap features, 1,000 picks take 10-20 s with a
peak RSS of about 510 MiB (160 MiB of imports, 244 MiB of mapped features),
against 143 s and 2.7 GiB exactly, with the same coverage and 72 % of the
picks shared. On 50,000-point pools (Fashion-MNIST PCA features and a
Gaussian mixture), with the samples scaled down so that they sample, the
mean typicality of the sampled picks (exact definition) is within 8 % of the
exact picks' (2 % in four cases of five; random picks: 17-45 % lower), and
their mean distance from a pool point to the nearest pick within 1.2 %.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from .._validation import check_integer, stack_features
from ..exceptions import MoBYALError

__all__ = [
    "SCALES",
    "SAMPLED_ABOVE",
    "KMEANS_SAMPLE_SIZE",
    "CLUSTER_SAMPLE_SIZE",
    "kmeans_labels",
    "typicality",
    "typiclust_select",
]

# Above this many clusters MiniBatchKMeans replaces KMeans (as in TypiClust).
MINIBATCH_ABOVE = 50
_EPS = 1e-5

#: The values of ``scale`` in :func:`typiclust_select`.
SCALES = ("auto", "exact", "sampled")
#: ``scale="auto"``: the sampled algorithm above this many points.
SAMPLED_ABOVE = 100_000
#: Points that the sampled algorithm fits k-means on.
KMEANS_SAMPLE_SIZE = 100_000
#: Members of a cluster that the sampled algorithm measures typicality against.
CLUSTER_SAMPLE_SIZE = 2_000
# Entries (float32) of one work block of the sampled algorithm: 16 MiB.
_BLOCK = 1 << 22


def _fit_kmeans(
    features: np.ndarray,
    n_clusters: int,
    *,
    sample_weight: np.ndarray | None,
    random_state: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centres of k-means (see :func:`kmeans_labels`)."""
    n_points = features.shape[0]
    n_clusters = check_integer(n_clusters, "n_clusters")
    if n_points < n_clusters:
        raise MoBYALError(
            f"Cannot form {n_clusters} clusters from {n_points} points: there are fewer "
            "candidates than clusters."
        )
    if n_clusters == 1:
        return np.zeros(n_points, dtype=np.intp), np.mean(features, axis=0, keepdims=True)
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
        labels = model.fit_predict(features, sample_weight=sample_weight).astype(np.intp)
    return labels, model.cluster_centers_


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
    labels, _ = _fit_kmeans(
        features, n_clusters, sample_weight=sample_weight, random_state=random_state
    )
    return labels


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


def _rows(features: np.ndarray, index: Any) -> np.ndarray:
    """Rows of ``features`` (an array or a memmap) as a float32 array."""
    return np.asarray(features[index], dtype=np.float32)


def _nearest_centre(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every row, a chunk of rows at a time."""
    centres = np.asarray(centres, dtype=np.float32)
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    labels = np.empty(features.shape[0], dtype=np.intp)
    step = max(1, _BLOCK // max(len(centres), features.shape[1]))
    for start in range(0, features.shape[0], step):
        x = _rows(features, slice(start, start + step))
        # |x|^2 is the same for every centre, so it drops out of the argmin
        labels[start : start + step] = np.argmin(centre_sq - 2.0 * (x @ centres.T), axis=1)
    return labels


def _sampled_typicality(
    labeled: np.ndarray,
    candidates: np.ndarray,
    lab_members: np.ndarray,
    cand_members: np.ndarray,
    n_neighbors: int,
    sample_size: int,
    seed: int,
) -> np.ndarray:
    """Typicality of a cluster's candidates, against a sample of its members.

    Exact (:func:`typicality` over all members) when the cluster holds at most
    ``sample_size`` members; otherwise each candidate's ``K`` nearest
    neighbours are searched among ``sample_size`` members drawn with ``seed``.
    """
    n_lab = len(lab_members)
    n_members = n_lab + len(cand_members)
    if n_members <= sample_size:
        members = np.concatenate([labeled[lab_members], _rows(candidates, cand_members)])
        return typicality(members, n_neighbors)[n_lab:]
    drawn = np.sort(np.random.RandomState(seed).choice(n_members, sample_size, replace=False))
    ref_lab, ref_cand = drawn[drawn < n_lab], drawn[drawn >= n_lab] - n_lab
    reference = np.concatenate(
        [labeled[lab_members[ref_lab]], _rows(candidates, cand_members[ref_cand])]
    )
    # distances from |x|^2 + |r|^2 - 2 x.r lose less to rounding near the origin
    centre = reference.mean(axis=0)
    reference -= centre
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    k = max(1, min(n_neighbors, sample_size // 2))
    # the column of each candidate in the reference (-1: not in it), left out of its own search
    own_column = np.full(len(cand_members), -1, dtype=np.intp)
    own_column[ref_cand] = len(ref_lab) + np.arange(len(ref_cand))
    scores = np.empty(len(cand_members))
    step = max(1, _BLOCK // sample_size)
    for start in range(0, len(cand_members), step):
        x = _rows(candidates, cand_members[start : start + step]) - centre
        sq = np.einsum("ij,ij->i", x, x)[:, None] + ref_sq[None, :] - 2.0 * (x @ reference.T)
        own = own_column[start : start + step]
        inside = np.flatnonzero(own >= 0)
        sq[inside, own[inside]] = np.inf
        nearest = np.partition(sq, k - 1, axis=1)[:, :k]
        distances = np.sqrt(np.maximum(nearest, 0.0))
        scores[start : start + step] = 1.0 / (distances.mean(axis=1) + _EPS)
    return scores


def _group(labels: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    """Positions of each cluster's points, ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_clusters)]


def _visit(
    n: int,
    sizes: np.ndarray,
    labeled_counts: np.ndarray,
    members: list[np.ndarray],
    min_cluster_size: int,
    score: Callable[[int], np.ndarray],
) -> np.ndarray:
    """Step 3 of TypiClust: ``n`` picks, the best candidate of the least-labelled cluster.

    ``score(c)`` gives the typicality of ``members[c]`` (candidate positions),
    and is called once per visited cluster.
    """
    labeled_counts = labeled_counts.copy()
    remaining = np.array([len(m) for m in members])
    large = sizes > min_cluster_size
    # a cluster's candidates, best first: only its own visits take them, best first
    ranked: dict[int, np.ndarray] = {}
    taken = np.zeros(len(members), dtype=np.intp)
    picks = []
    for _ in range(n):
        open_ = remaining > 0
        eligible = open_ & large if (open_ & large).any() else open_
        ids = np.flatnonzero(eligible)
        # fewest labelled members first, then the largest cluster, then the lowest id
        cluster = ids[np.lexsort((ids, -sizes[ids], labeled_counts[ids]))[0]]
        if cluster not in ranked:
            # stable: among equal scores the lowest position first
            ranked[cluster] = members[cluster][np.argsort(-score(cluster), kind="stable")]
        picks.append(ranked[cluster][taken[cluster]])
        taken[cluster] += 1
        remaining[cluster] -= 1
        labeled_counts[cluster] += 1
    return np.asarray(picks, dtype=np.intp)


def _exact(
    labeled_features: Any,
    candidate_features: np.ndarray,
    n: int,
    n_clusters_cap: int,
    min_cluster_size: int,
    n_neighbors: int,
    random_state: Any,
) -> np.ndarray:
    features, n_labeled = stack_features(labeled_features, candidate_features)
    n_clusters = min(n_labeled + n, n_clusters_cap)
    labels = kmeans_labels(features, n_clusters, random_state=random_state)
    sizes = np.bincount(labels, minlength=n_clusters)
    labeled_counts = np.bincount(labels[:n_labeled], minlength=n_clusters)
    lab_members = _group(labels[:n_labeled], n_clusters)
    members = _group(labels[n_labeled:], n_clusters)

    def score(cluster: int) -> np.ndarray:
        # all members, labelled first, ascending: the rows of labels == cluster
        in_cluster = np.concatenate([lab_members[cluster], n_labeled + members[cluster]])
        return typicality(features[in_cluster], n_neighbors)[len(lab_members[cluster]) :]

    return _visit(n, sizes, labeled_counts, members, min_cluster_size, score)


def _sampled(
    labeled: np.ndarray,
    candidates: np.ndarray,
    n: int,
    n_clusters_cap: int,
    min_cluster_size: int,
    n_neighbors: int,
    kmeans_sample_size: int,
    cluster_sample_size: int,
    random_state: Any,
) -> np.ndarray:
    rng = check_random_state(random_state)
    n_labeled, n_candidates = len(labeled), len(candidates)
    n_clusters = min(n_labeled + n, n_clusters_cap)
    if kmeans_sample_size < n_clusters:
        raise MoBYALError(
            f"kmeans_sample_size={kmeans_sample_size} is smaller than the {n_clusters} "
            "clusters to form; raise kmeans_sample_size or lower max_clusters."
        )
    # every labelled point and a uniform draw of candidates: labelled regions keep a centre
    n_drawn = min(n_candidates, max(0, kmeans_sample_size - n_labeled))
    if n_drawn == n_candidates:
        drawn: Any = slice(None)
    else:
        # sorted: a memmap is read front to back
        drawn = np.sort(rng.choice(n_candidates, size=n_drawn, replace=False))
    sample = np.empty((n_labeled + n_drawn, candidates.shape[1]), dtype=np.float32)
    sample[:n_labeled] = labeled
    sample[n_labeled:] = candidates[drawn]
    _, centres = _fit_kmeans(sample, n_clusters, sample_weight=None, random_state=rng)
    del sample
    cand_labels = _nearest_centre(candidates, centres)
    lab_labels = _nearest_centre(labeled, centres)
    sizes = np.bincount(cand_labels, minlength=n_clusters) + np.bincount(
        lab_labels, minlength=n_clusters
    )
    lab_members = _group(lab_labels, n_clusters)
    members = _group(cand_labels, n_clusters)
    del cand_labels
    # one seed per cluster: its reference sample does not depend on the visit order
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_clusters)

    def score(cluster: int) -> np.ndarray:
        return _sampled_typicality(
            labeled,
            candidates,
            lab_members[cluster],
            members[cluster],
            n_neighbors,
            cluster_sample_size,
            int(seeds[cluster]),
        )

    labeled_counts = np.array([len(m) for m in lab_members], dtype=np.intp)
    return _visit(n, sizes, labeled_counts, members, min_cluster_size, score)


def typiclust_select(
    labeled_features: np.ndarray | None,
    candidate_features: np.ndarray,
    n: int,
    *,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    n_neighbors: int = 20,
    scale: str = "auto",
    sampled_above: int = SAMPLED_ABOVE,
    kmeans_sample_size: int = KMEANS_SAMPLE_SIZE,
    cluster_sample_size: int = CLUSTER_SAMPLE_SIZE,
    random_state: Any = None,
) -> np.ndarray:
    """TypiClust picks among candidate points, given the labelled points.

    Parameters
    ----------
    labeled_features : ndarray of shape (M, d) or None
        Features of the labelled points (``None`` or ``M == 0``: none yet).
    candidate_features : ndarray of shape (N, d)
        Features of the points that may be picked; a ``np.memmap`` (float16
        or float32) is read in chunks by the sampled algorithm.
    n : int
        How many to pick, ``1 <= n <= N``.
    max_clusters : int, default=500
        Cap on the number of clusters ``min(M + n, max_clusters)``.
    min_cluster_size : int, default=5
        Clusters of this many points or fewer (labelled and candidates
        together) are skipped while a larger cluster still has a candidate;
        when none has (a small pool), the small clusters are used too.
    n_neighbors : int, default=20
        ``K`` of the typicality (capped at half the cluster, or at half its
        sample).
    scale : {"auto", "exact", "sampled"}, default="auto"
        ``"exact"``: the published algorithm on every point; ``"sampled"``:
        k-means fitted on a sample and typicality against a sample of each
        cluster (see the module docstring); ``"auto"``: exact up to
        ``sampled_above`` points, sampled above.
    sampled_above : int, default=100000
        With ``scale="auto"``, the most points (``M + N``) run exactly.
    kmeans_sample_size : int, default=100000
        Sampled algorithm: how many points k-means is fitted on (every
        labelled point, the rest random candidates; all points when they are
        fewer); at least the number of clusters.
    cluster_sample_size : int, default=2000
        Sampled algorithm: a cluster of more members than this measures the
        typicality of its candidates against this many of its members, drawn
        at random; smaller clusters are measured exactly.
    random_state : int, RandomState instance or None
        Seeds k-means and the samples; an integer gives the same picks on
        every call.

    Returns
    -------
    ndarray of int of shape (n,)
        Distinct indices into ``candidate_features``, in pick order.

    Raises
    ------
    MoBYALError
        If ``n`` is outside ``[1, N]``, the feature widths differ, ``scale``
        is not one of :data:`SCALES`, an option is out of range, or
        ``kmeans_sample_size`` is below the number of clusters of a sampled
        run.
    TypeError
        If ``n`` or an option is not an integer.

    Notes
    -----
    A cluster's labelled count grows with every pick in it, so when the
    clusters are fewer than the picks (``max_clusters`` below ``n``) the
    visits go round the clusters again, fewest labelled members first.
    Typicality is measured among all members of a cluster, labelled or not.
    """
    # np.asarray keeps a memmap mapped: nothing is read yet
    candidate_features = np.asarray(candidate_features)
    n_candidates = candidate_features.shape[0]
    n = check_integer(n, "n")
    if n > n_candidates:
        raise MoBYALError(f"Cannot pick {n} of {n_candidates} candidates.")
    max_clusters = check_integer(max_clusters, "max_clusters")
    min_cluster_size = check_integer(min_cluster_size, "min_cluster_size", minimum=0)
    n_neighbors = check_integer(n_neighbors, "n_neighbors")
    if not isinstance(scale, str) or scale not in SCALES:
        raise MoBYALError(f"scale must be one of {', '.join(map(repr, SCALES))}; got {scale!r}.")
    sampled_above = check_integer(sampled_above, "sampled_above")
    kmeans_sample_size = check_integer(kmeans_sample_size, "kmeans_sample_size")
    # one neighbour besides the candidate itself at the least
    cluster_sample_size = check_integer(cluster_sample_size, "cluster_sample_size", minimum=2)
    # the widths checked, the labelled rows as an array; the candidates are not copied
    labeled, n_labeled = stack_features(labeled_features, candidate_features[:0])
    if scale == "exact" or (scale == "auto" and n_labeled + n_candidates <= sampled_above):
        return _exact(
            labeled_features,
            candidate_features,
            n,
            max_clusters,
            min_cluster_size,
            n_neighbors,
            random_state,
        )
    return _sampled(
        labeled.astype(np.float32).reshape(n_labeled, candidate_features.shape[1]),
        candidate_features,
        n,
        max_clusters,
        min_cluster_size,
        n_neighbors,
        kmeans_sample_size,
        cluster_sample_size,
        random_state,
    )

"""MaxHerding: greedy kernel herding for low-budget selection, on a sparse kNN kernel.

MaxHerding (Bae, Kim, Jeong, Hwang, Lee, "Generalized Coverage for More
Robust Low-Budget Active Learning", ECCV 2024, arXiv 2407.12212) picks the
points that best cover the data in a soft sense: with an RBF kernel
``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))`` it maximises the generalised
coverage

    C(S) = sum over all points x of max_{s in S} k(x, s),

greedily, one point at a time. Unlike ProbCover it needs no ball radius: the
kernel's bandwidth only sets how fast coverage fades with distance.

Here the kernel is kept sparse: ``k(x, y)`` is taken as zero unless ``y`` is
among the ``n_neighbors`` nearest neighbours of ``x`` or ``x`` among those of
``y``. Memory is ``O(N n_neighbors)``, and each pick updates only the gains
of the points near the newly covered ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from .._validation import check_integer, stack_features
from ..exceptions import MoBYALError

__all__ = ["knn_rbf_kernel", "max_herding_select"]


def knn_rbf_kernel(
    features: np.ndarray, n_neighbors: int = 20, bandwidth: float | None = None
) -> sp.csr_matrix:
    """A symmetric sparse RBF kernel restricted to the kNN graph.

    Parameters
    ----------
    features : ndarray of shape (N, d)
    n_neighbors : int, default=20
        Neighbours of every point, itself excluded (capped at ``N - 1``).
    bandwidth : float or None, default=None
        ``sigma`` of the kernel. None: the median distance from a point to
        its ``n_neighbors``-th nearest neighbour, so that a typical point's
        neighbourhood keeps a kernel value of about ``exp(-1/2)`` at its edge.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (N, N)
        Holds ``exp(-d^2 / (2 sigma^2))`` for every pair in the symmetrised
        kNN graph, and 1 on the diagonal.

    Raises
    ------
    MoBYALError
        If ``bandwidth`` is not positive or ``n_neighbors`` is below 1.
    """
    n_points = features.shape[0]
    k = min(check_integer(n_neighbors, "n_neighbors"), n_points - 1)
    if k < 1:
        return sp.identity(n_points, format="csr")
    distances, neighbors = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    distances, neighbors = distances[:, 1:], neighbors[:, 1:]  # drop each point itself
    if bandwidth is None:
        bandwidth = float(np.median(distances[:, -1]))
        if bandwidth <= 0.0:  # many duplicates: fall back to the mean neighbour distance
            bandwidth = float(distances.mean()) or 1.0
    elif not bandwidth > 0.0:
        raise MoBYALError(f"bandwidth must be positive, got {bandwidth}.")
    values = np.exp(-(distances**2) / (2.0 * bandwidth**2))
    rows = np.repeat(np.arange(n_points), k)
    graph = sp.csr_matrix((values.ravel(), (rows, neighbors.ravel())), shape=(n_points, n_points))
    # k(x, y) = k(y, x), and k(x, x) = 1
    graph = graph.maximum(graph.T).maximum(sp.identity(n_points, format="csr"))
    return graph.tocsr()


def max_herding_select(
    labeled_features: np.ndarray | None,
    candidate_features: np.ndarray,
    n: int,
    *,
    n_neighbors: int = 20,
    bandwidth: float | None = None,
    random_state: Any = None,
) -> np.ndarray:
    """Greedy MaxHerding picks among candidates, the labelled points already covering.

    The kernel graph spans the labelled and the candidate points: coverage is
    measured over both. Each step picks the candidate whose addition raises
    ``sum_x max_{s in S} k(x, s)`` the most, ``S`` holding the labelled points
    and the picks so far. Once no candidate adds coverage (every point's
    neighbourhood is covered), the remaining picks are drawn uniformly from
    the unpicked candidates.

    Parameters
    ----------
    labeled_features : ndarray of shape (M, d) or None
    candidate_features : ndarray of shape (N, d)
    n : int
        How many to pick, ``1 <= n <= N``.
    n_neighbors : int, default=20
        Neighbours per point in the sparse kernel.
    bandwidth : float or None, default=None
        Kernel ``sigma``; see :func:`knn_rbf_kernel`.
    random_state : int, RandomState instance or None
        Seeds the uniform fallback.

    Returns
    -------
    ndarray of int of shape (n,)
        Distinct indices into ``candidate_features``, in pick order.

    Raises
    ------
    MoBYALError
        If ``n`` is outside ``[1, N]``, the widths differ or an option is out
        of range.
    TypeError
        If ``n`` or ``n_neighbors`` is not an integer.
    """
    candidate_features = np.asarray(candidate_features)
    n_candidates = candidate_features.shape[0]
    if not 1 <= check_integer(n, "n", minimum=None) <= n_candidates:
        raise MoBYALError(f"Cannot pick {n} of {n_candidates} candidates.")
    features, n_labeled = stack_features(labeled_features, candidate_features)
    kernel = knn_rbf_kernel(features, n_neighbors, bandwidth)  # symmetric: rows = columns
    indptr, indices, values = kernel.indptr, kernel.indices, kernel.data

    # coverage[x] = max over selected s of k(x, s)
    coverage = np.zeros(features.shape[0])
    for s in range(n_labeled):
        row = slice(indptr[s], indptr[s + 1])
        np.maximum.at(coverage, indices[row], values[row])
    # gain[j] = sum_x max(0, k(x, j) - coverage[x]); k is symmetric, so row j lists the x
    row_of = np.repeat(np.arange(features.shape[0]), np.diff(indptr))
    gain = np.bincount(
        row_of, weights=np.maximum(values - coverage[indices], 0.0), minlength=features.shape[0]
    )
    selectable = np.zeros(features.shape[0], dtype=bool)
    selectable[n_labeled:] = True
    rng = check_random_state(random_state)
    picks = []
    for _ in range(n):
        masked = np.where(selectable, gain, -np.inf)
        best = int(np.argmax(masked))
        if not masked[best] > 1e-12:
            # nothing adds coverage: uniform picks among the rest
            rest = np.flatnonzero(selectable)
            extra = rng.choice(rest, size=n - len(picks), replace=False)
            picks.extend(int(i) for i in extra)
            break
        picks.append(best)
        selectable[best] = False
        # the points x whose coverage rises: neighbours of best with k(x, best) > coverage[x]
        row = slice(indptr[best], indptr[best + 1])
        xs, kx = indices[row], values[row]
        rising = kx > coverage[xs]
        xs, new_cov = xs[rising], kx[rising]
        old_cov = coverage[xs]
        # every j near such an x loses max(0, k(x,j) - old) - max(0, k(x,j) - new) of gain
        starts, stops = indptr[xs], indptr[xs + 1]
        lengths = stops - starts
        flat = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
            lengths.sum()
        )
        js, kj = indices[flat], values[flat]
        old_rep, new_rep = np.repeat(old_cov, lengths), np.repeat(new_cov, lengths)
        loss = np.maximum(kj - old_rep, 0.0) - np.maximum(kj - new_rep, 0.0)
        np.subtract.at(gain, js, loss)
        coverage[xs] = new_cov
    return np.asarray(picks, dtype=np.intp) - n_labeled

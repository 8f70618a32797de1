"""Nearest neighbours by cosine similarity, exact or approximate, and the kNN graph.

The graph step of :class:`~moby_al_plugin.LabelSpreadingClassifier` needs, for
every image of the pool, its ``k`` most similar images, and later the nearest
pool images of new ones. Exact search (scikit-learn's ``NearestNeighbors``)
compares every pair: fine for tens of thousands of images, hours for a
million. Past that the neighbours come from faiss's HNSW index, an
approximate search whose cost grows about as ``n log n``; faiss is an optional
dependency (``pip install faiss-cpu``, or the ``scale`` extra).

Features are compared by cosine similarity: they are L2-normalised first, so
the inner product is the cosine.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ..exceptions import MoBYALError
from ..selection.features import l2_normalize

__all__ = ["NEIGHBOR_METHODS", "EXACT_LIMIT", "NeighborIndex", "knn_graph"]

NeighborMethod = Literal["auto", "exact", "faiss"]
#: How neighbours are searched: ``"exact"`` (scikit-learn, every pair),
#: ``"faiss"`` (faiss HNSW, approximate) or ``"auto"`` (exact up to
#: :data:`EXACT_LIMIT` indexed images, faiss above).
NEIGHBOR_METHODS: tuple[str, ...] = ("auto", "exact", "faiss")
#: The largest number of indexed images that ``"auto"`` searches exactly; at
#: 100,000 images of 512 features an exact graph takes about a minute on two cores.
EXACT_LIMIT = 100_000
# HNSW: links per node, and the candidate lists while building and searching;
# at these values recall@10 on encoder features is above 0.95 (faiss's own guide)
_HNSW_LINKS = 32
_HNSW_EF_CONSTRUCTION = 80
_HNSW_EF_SEARCH = 128


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise MoBYALError(
            "neighbors='faiss' needs the faiss library: pip install faiss-cpu "
            "(or moby-al-plugin[scale])"
        ) from exc
    return faiss


class NeighborIndex:
    """The indexed images' features and a search for their nearest neighbours.

    Parameters
    ----------
    features : ndarray of shape (n, d)
        Finite features; they are L2-normalised and stored as float32.
    method : {"auto", "exact", "faiss"}, default="auto"
        See :data:`NEIGHBOR_METHODS`.

    Attributes
    ----------
    features : ndarray of shape (n, d)
        The normalised features.
    method : {"exact", "faiss"}
        The search in use (``"auto"`` resolved).

    Notes
    -----
    The search structure is built on first use and is not pickled (a faiss
    index is a C++ object); an unpickled index builds it again when searched.
    """

    def __init__(self, features: np.ndarray, method: NeighborMethod = "auto") -> None:
        if method not in NEIGHBOR_METHODS:
            raise MoBYALError(
                f"unknown neighbors method {method!r}; valid values: {', '.join(NEIGHBOR_METHODS)}"
            )
        self.features = np.ascontiguousarray(l2_normalize(np.asarray(features, np.float32)))
        if method == "auto":
            method = "exact" if len(self.features) <= EXACT_LIMIT else "faiss"
        if method == "faiss":
            _import_faiss()  # a missing library is named now, not at the first search
        self.method = method
        self._search: Any = None

    def __len__(self) -> int:
        return len(self.features)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_search": None}

    def _build(self) -> Any:
        if self.method == "exact":
            from sklearn.neighbors import NearestNeighbors

            # brute force on unit vectors: the Euclidean order is the cosine order
            return NearestNeighbors(algorithm="brute").fit(self.features)
        faiss = _import_faiss()
        index = faiss.IndexHNSWFlat(self.features.shape[1], _HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
        index.add(self.features)
        index.hnsw.efSearch = _HNSW_EF_SEARCH
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar indexed images of every query.

        Parameters
        ----------
        queries : ndarray of shape (m, d)
            Finite features in the space of the indexed ones (normalised here).
        k : int
            Neighbours per query, at most the number of indexed images.

        Returns
        -------
        similarities : ndarray of shape (m, k)
            Cosine similarities, most similar first.
        indices : ndarray of shape (m, k)
            Rows of the indexed images.
        """
        if not 1 <= k <= len(self):
            raise MoBYALError(f"k={k} neighbours asked of an index of {len(self)} images")
        queries = np.ascontiguousarray(l2_normalize(np.asarray(queries, np.float32)))
        if self._search is None:
            self._search = self._build()
        if self.method == "exact":
            distances, indices = self._search.kneighbors(queries, n_neighbors=k)
            # |a - b|^2 = 2 - 2 cos(a, b) for unit vectors
            return (1.0 - distances**2 / 2.0).astype(np.float32), indices
        similarities, indices = self._search.search(queries, k)
        return similarities, indices.astype(np.int64)


def knn_graph(index: NeighborIndex, n_neighbors: int) -> sp.csr_matrix:
    """The symmetric kNN graph of the indexed images, without self-loops.

    Nodes ``i`` and ``j`` are joined (weight 1) when either is among the other's
    ``n_neighbors`` most similar images. An image found as its own neighbour
    (the usual case) is skipped, so every node has at least ``n_neighbors - 1``
    links; duplicates of an image are linked to it.

    Parameters
    ----------
    index : NeighborIndex
    n_neighbors : int
        Neighbours per image, at most ``len(index) - 1``.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, n)
        Symmetric, float64, ones where two images are linked.
    """
    n = len(index)
    if not 1 <= n_neighbors < n:
        raise MoBYALError(
            f"n_neighbors={n_neighbors} must be at least 1 and smaller than the {n} images "
            "of the graph (labelled and unlabelled together)"
        )
    _, neighbors = index.search(index.features, n_neighbors + 1)  # +1: the image itself
    rows = np.repeat(np.arange(n), neighbors.shape[1])
    cols = neighbors.ravel()
    keep = (cols != rows) & (cols >= 0)  # faiss marks missing neighbours with -1
    directed = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n, n))
    graph = directed.maximum(directed.T).tocsr()
    graph.data[:] = 1.0  # duplicate (i, j) entries were summed by the constructor
    return graph

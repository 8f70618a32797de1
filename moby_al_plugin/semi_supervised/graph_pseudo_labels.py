"""Pseudo-labels from a label-spreading graph of the pool.

With a handful of labels a network's own predictions are poor targets for
self-training. A kNN graph over the whole pool spreads the few labels to the
images near them, and the images the graph is surest of make better targets
(on Fashion-MNIST with TypiClust's 10 picks, the graph's most confident half
of the pool is about 72 % right against 54 % for all of it). The graph is
built over PCA-50 of the pool's pixels, which scored above the pretrained
small encoder's features in the graph-step table (docs/results.md).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

from .knn_graph import NeighborIndex, knn_graph
from .label_spreading import spread_label_distributions
from .pseudo_labels import most_confident_targets

__all__ = [
    "GRAPH_ALPHA",
    "GRAPH_NEIGHBORS",
    "GRAPH_PCA_COMPONENTS",
    "graph_targets",
    "pixel_pca_features",
    "pool_graph",
]

#: Components kept of the pixels, as in the graph-step benchmark.
GRAPH_PCA_COMPONENTS = 50
#: Neighbours per image and spreading strength: ``LabelSpreadingClassifier``'s defaults.
GRAPH_NEIGHBORS = 10
GRAPH_ALPHA = 0.9


def pixel_pca_features(X: np.ndarray, n_components: int = GRAPH_PCA_COMPONENTS) -> np.ndarray:
    """PCA of the flattened pixels of every pool image, float32, seed 0."""
    flat = np.asarray(X).reshape(len(X), -1).astype(np.float32)
    n_components = min(n_components, flat.shape[0], flat.shape[1])
    return PCA(n_components, random_state=0).fit_transform(flat).astype(np.float32)


def pool_graph(features: np.ndarray, n_neighbors: int = GRAPH_NEIGHBORS) -> sp.csr_matrix:
    """The kNN graph of the pool's images, node ``i`` for pool row ``i``.

    Finding the neighbours is nearly all of the graph step's time (about 15 s
    of 15.2 for 60,000 images on one core); the labels change every cycle,
    the graph never does, so an experiment builds it once.
    """
    return knn_graph(NeighborIndex(np.asarray(features, dtype=np.float32)), n_neighbors)


def graph_targets(
    graph: sp.spmatrix,
    y: np.ndarray,
    labeled: np.ndarray,
    unlabeled: np.ndarray,
    classes: np.ndarray,
    share: float,
    class_mass_normalization: bool = False,
) -> np.ndarray:
    """Targets for ``MoBYClassifier.fit(..., unlabeled_proba=...)`` from the graph.

    Parameters
    ----------
    graph : sparse matrix of shape (n_pool, n_pool)
        The pool's graph, from :func:`pool_graph`.
    y : ndarray of shape (n_pool,)
        Pool labels; only ``y[labeled]`` is read.
    labeled, unlabeled : ndarray of int
        Pool rows with and without a label; the targets follow ``unlabeled``.
    classes : ndarray
        Every class, so a first set that misses one still gives full rows.
    share : float
        The share of ``unlabeled`` that gets a target, the graph's most
        confident first.
    class_mass_normalization : bool, default=False
        Every class's spread scores scaled to the same total first (see
        :class:`~moby_al_plugin.LabelSpreadingClassifier`).

    Returns
    -------
    ndarray of shape (len(unlabeled), len(classes)), float32
        One-hot rows for the chosen images, zeros for the others.
    """
    classes = np.asarray(classes)
    labeled = np.asarray(labeled)
    distributions, _ = spread_label_distributions(
        graph, labeled, np.searchsorted(classes, y[labeled]), len(classes), GRAPH_ALPHA,
        class_mass_normalization=class_mass_normalization,
    )  # fmt: skip
    return most_confident_targets(distributions[np.asarray(unlabeled)], share)

"""Pseudo-labels from a label-spreading graph of the pool, for the experiments.

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
from sklearn.decomposition import PCA

from ..semi_supervised.label_spreading import LabelSpreadingClassifier
from ..semi_supervised.pseudo_labels import most_confident_targets

__all__ = ["GRAPH_PCA_COMPONENTS", "pixel_pca_features", "graph_targets"]

#: Components kept of the pixels, as in the graph-step benchmark.
GRAPH_PCA_COMPONENTS = 50


def pixel_pca_features(X: np.ndarray, n_components: int = GRAPH_PCA_COMPONENTS) -> np.ndarray:
    """PCA of the flattened pixels of every pool image, float32, seed 0."""
    flat = np.asarray(X).reshape(len(X), -1).astype(np.float32)
    n_components = min(n_components, flat.shape[0], flat.shape[1])
    return PCA(n_components, random_state=0).fit_transform(flat).astype(np.float32)


def graph_targets(
    features: np.ndarray,
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
    features : ndarray of shape (n_pool, d)
        One row per pool image.
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
    graph = LabelSpreadingClassifier(
        classes=classes, class_mass_normalization=class_mass_normalization
    )
    graph.fit(features[labeled], y[labeled], X_unlabeled=features[unlabeled])
    return most_confident_targets(graph.label_distributions_[graph.n_labeled_ :], share)

"""Label spreading over the pool: every unlabelled image takes part in the prediction.

A classifier trained on the labelled images alone ignores the thousands of
images nobody labelled. Label spreading (Zhou, Bousquet, Lal, Weston,
Schölkopf, "Learning with Local and Global Consistency", NIPS 2003) puts the
labelled and the unlabelled images in one kNN graph and lets every label flow
along it: with ``W`` the graph, ``S = D^-1/2 W D^-1/2`` and ``Y`` the one-hot
labels (zero rows for unlabelled images), the spread labels are

    F = (I - alpha S)^-1 Y,

found here by conjugate gradients, one class at a time (``I - alpha S`` is
symmetric positive definite for ``0 < alpha < 1``). A new image gets the mean
of the spread labels of its ``n_neighbors`` nearest graph images.

In deep active learning the graph is built over the features of a network
(Iscen, Tolias, Avrithis, Chum, "Label Propagation for Deep Semi-supervised
Learning", CVPR 2019): here those of a fitted :class:`~moby_al_plugin.MoBYEncoder`,
a fitted :class:`~moby_al_plugin.MoBYClassifier` or any fitted transformer,
compared by cosine similarity.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from .._validation import is_finite_number
from ..exceptions import MoBYALError
from ..selection.features import _raw, apply_feature_map, l2_normalize
from .knn_graph import NEIGHBOR_METHODS, NeighborIndex, knn_graph

__all__ = [
    "LabelSpreadingClassifier",
    "class_mass_normalized",
    "spread_label_distributions",
    "spread_labels",
    "UNLABELED",
]

#: The label that marks an unlabelled row of ``y``, as in ``sklearn.semi_supervised``.
UNLABELED = -1


def spread_labels(
    graph: sp.spmatrix, Y: np.ndarray, alpha: float, *, tol: float = 1e-6, max_iter: int = 1000
) -> tuple[np.ndarray, int]:
    """Solve ``(I - alpha S) F = Y`` on a symmetric graph ``W``, ``S = D^-1/2 W D^-1/2``.

    Parameters
    ----------
    graph : sparse matrix of shape (n, n)
        Symmetric, non-negative weights, no self-loops.
    Y : ndarray of shape (n, c)
        One-hot rows for labelled nodes, zero rows for the others.
    alpha : float
        In (0, 1): how much of a node's value comes from its neighbours.
    tol : float, default=1e-6
        Relative residual at which conjugate gradients stop.
    max_iter : int, default=1000
        Iterations of conjugate gradients per class, at most.

    Returns
    -------
    F : ndarray of shape (n, c)
        Non-negative spread label scores (not normalised).
    n_iter : int
        The most iterations any class needed.
    """
    graph = sp.csr_matrix(graph, dtype=np.float64)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    S = sp.diags(scale) @ graph @ sp.diags(scale)
    A = (sp.identity(graph.shape[0], format="csr") - alpha * S).tocsr()
    F = np.zeros(Y.shape, dtype=np.float64)
    most = 0
    for c in range(Y.shape[1]):
        iterations = 0

        def count(_x: np.ndarray) -> None:
            nonlocal iterations
            iterations += 1

        # start from Y: the solution is Y plus what flows in from the neighbours
        F[:, c], info = cg(
            A, Y[:, c].astype(np.float64), x0=Y[:, c].astype(np.float64), rtol=tol,
            atol=0.0, maxiter=max_iter, callback=count,
        )  # fmt: skip
        if info > 0:
            raise MoBYALError(
                f"label spreading did not converge in {max_iter} iterations (class {c}); "
                "lower alpha or raise max_iter"
            )
        most = max(most, iterations)
    # (I - alpha S)^-1 = sum of alpha^k S^k has no negative entry; clip round-off
    return np.clip(F, 0.0, None), most


def class_mass_normalized(F: np.ndarray) -> np.ndarray:
    """Every class column scaled to the same total: class mass normalisation.

    Zhu, Ghahramani and Lafferty (ICML 2003) scale each class's propagated
    scores so that the classes' masses match a prior; with a uniform prior
    that is one over the column's sum. Without it a class whose few labels
    sit in a dense part of the graph takes over its neighbours' images, and
    a class labelled more often than others (TypiClust's first picks are not
    balanced) spreads further. A column with no mass (a class with no label)
    stays zero.

    Parameters
    ----------
    F : ndarray of shape (n, c)
        Non-negative spread label scores.

    Returns
    -------
    ndarray of shape (n, c)
    """
    mass = F.sum(axis=0, keepdims=True)
    return F / np.where(mass > 0, mass, 1.0)


def spread_label_distributions(
    graph: sp.spmatrix,
    labeled: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    alpha: float,
    *,
    class_mass_normalization: bool = False,
    tol: float = 1e-6,
    max_iter: int = 1000,
) -> tuple[np.ndarray, int]:
    """Every node's class distribution after spreading the labels of ``labeled``.

    Parameters
    ----------
    graph : sparse matrix of shape (n, n)
        As in :func:`spread_labels`; built once, it can serve many label sets.
    labeled : ndarray of int
        The labelled nodes.
    codes : ndarray of int
        Their classes, as column numbers below ``n_classes``.
    n_classes : int
    alpha, tol, max_iter
        As in :func:`spread_labels`.
    class_mass_normalization : bool, default=False
        See :func:`class_mass_normalized`.

    Returns
    -------
    distributions : ndarray of shape (n, n_classes)
        Rows summing to 1 (uniform where no label reached).
    n_iter : int
    """
    Y = np.zeros((graph.shape[0], n_classes))
    Y[np.asarray(labeled), np.asarray(codes)] = 1.0
    F, n_iter = spread_labels(graph, Y, alpha, tol=tol, max_iter=max_iter)
    if class_mass_normalization:
        F = class_mass_normalized(F)
    return _normalized_rows(F), n_iter


def _normalized_rows(F: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; a row that no label reached becomes uniform."""
    totals = F.sum(axis=1, keepdims=True)
    uniform = np.full_like(F, 1.0 / F.shape[1])
    return np.where(totals > 0, F / np.where(totals > 0, totals, 1.0), uniform)


class LabelSpreadingClassifier(ClassifierMixin, BaseEstimator):
    """Label spreading over a kNN graph of labelled and unlabelled images.

    A scikit-learn classifier for a modAL ``ActiveLearner``: ``fit`` takes the
    labelled images and, as ``X_unlabeled``, the pool (modAL passes it on
    from ``ActiveLearner(..., X_unlabeled=...)`` and ``teach(...,
    X_unlabeled=...)``, as for :class:`~moby_al_plugin.MoBYClassifier`);
    ``predict_proba`` serves margin and budget-aware selection; ``transform``
    gives the encoder's features, so that k-Center-Greedy, TypiClust and
    budget-aware compare images in that space. It also follows
    ``sklearn.semi_supervised``: rows of ``y`` equal to ``-1`` are
    unlabelled, which is how a ``Pipeline`` passes the pool.

    Parameters
    ----------
    encoder : estimator or None, default=None
        A fitted feature map with ``transform``: a ``MoBYEncoder``, a fitted
        ``MoBYClassifier``, a scikit-learn transformer or ``Pipeline``. Wrap
        it in ``sklearn.frozen.FrozenEstimator`` to keep it fitted through
        ``clone`` (``GridSearchCV``). ``None``: the inputs themselves,
        flattened (after a feature step of a ``Pipeline``).
    n_neighbors : int, default=10
        Neighbours of every image in the graph, and of a new image when it is
        predicted.
    alpha : float, default=0.9
        In (0, 1): the share of a node's labels that comes from its
        neighbours; near 1 labels travel far along the graph.
    neighbors : {"auto", "exact", "faiss"}, default="auto"
        Neighbour search: exact (scikit-learn) up to 100,000 images, faiss's
        approximate HNSW index above (``pip install faiss-cpu``).
    tol : float, default=1e-6
        Relative residual at which the conjugate gradients stop.
    max_iter : int, default=1000
        Iterations of conjugate gradients per class, at most.
    classes : array-like or None, default=None
        Every class label. Give them when the labelled images may miss a
        class (a first batch of 10 images rarely holds all ten), so that
        ``predict_proba`` always has one column per class (zero for a class
        with no label yet) and lines up with a network's; None: the labels
        seen in ``fit``.
    class_mass_normalization : bool, default=False
        Scale every class's spread scores to the same total over the graph
        before each row is normalised (``class_mass_normalized``): with
        few labels, unevenly spread over the classes, it labels more of the
        pool correctly (Fashion-MNIST, TypiClust's 10 and 20 picks over
        PCA-50 of the pixels: +2 to +5.5 points over the whole pool, +3 to +7
        on the surest half).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        ``classes`` sorted, or the labels seen in ``fit``.
    label_distributions_ : ndarray of shape (n_nodes, n_classes)
        Spread labels of the graph's images, rows summing to 1 (uniform where
        no label reached); the labelled images come first.
    transduction_ : ndarray of shape (n_nodes,)
        The label each graph image receives.
    n_labeled_ : int
        Labelled images in the graph.
    n_iter_ : int
        Conjugate-gradient iterations of the slowest class.
    index_ : NeighborIndex
        The graph images' normalised features and their neighbour search.

    Examples
    --------
    >>> import numpy as np
    >>> from moby_al_plugin import LabelSpreadingClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 0.1, (20, 2)) + [1, 0], rng.normal(0, 0.1, (20, 2)) + [0, 1]]
    >>> clf = LabelSpreadingClassifier(n_neighbors=5)
    >>> clf.fit(X[[0, 20]], [0, 1], X_unlabeled=X).predict(X[[5, 25]]).tolist()
    [0, 1]
    """

    def __init__(
        self,
        encoder: Any = None,
        n_neighbors: int = 10,
        alpha: float = 0.9,
        neighbors: str = "auto",
        tol: float = 1e-6,
        max_iter: int = 1000,
        classes: Any = None,
        class_mass_normalization: bool = False,
    ) -> None:
        self.encoder = encoder
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.neighbors = neighbors
        self.tol = tol
        self.max_iter = max_iter
        self.classes = classes
        self.class_mass_normalization = class_mass_normalization

    def _check_params(self) -> None:
        for name, value in (("n_neighbors", self.n_neighbors), ("max_iter", self.max_iter)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise MoBYALError(f"{name} must be a positive integer, got {value!r}")
        if not is_finite_number(self.alpha) or not 0.0 < self.alpha < 1.0:
            raise MoBYALError(
                f"alpha must be a number strictly between 0 and 1, got {self.alpha!r}"
            )
        if not is_finite_number(self.tol) or not self.tol > 0:
            raise MoBYALError(f"tol must be a positive number, got {self.tol!r}")
        if not isinstance(self.class_mass_normalization, (bool, np.bool_)):
            raise MoBYALError(
                "class_mass_normalization must be True or False, got "
                f"{self.class_mass_normalization!r}"
            )
        if self.neighbors not in NEIGHBOR_METHODS:
            raise MoBYALError(
                f"unknown neighbors {self.neighbors!r}; valid values: {', '.join(NEIGHBOR_METHODS)}"
            )

    def _features(self, X: Any) -> np.ndarray:
        if self.encoder is None:
            return apply_feature_map(_raw, X, "the inputs")
        try:
            return apply_feature_map(self.encoder.transform, X, "the encoder")
        except NotFittedError as exc:
            raise NotFittedError(
                f"the encoder ({type(self.encoder).__name__}) is not fitted: pass a fitted "
                "encoder, wrapped in sklearn.frozen.FrozenEstimator to keep it fitted "
                "through clone"
            ) from exc

    def __sklearn_is_fitted__(self) -> bool:
        # transform needs only a (fitted) encoder: TypiClust can pick the very
        # first labels in its space; predicting needs fit
        return hasattr(self, "label_distributions_") or self.encoder is not None

    def fit(self, X: Any, y: Any, X_unlabeled: Any = None) -> LabelSpreadingClassifier:
        """Spread the labels of ``X`` over the graph of ``X`` and ``X_unlabeled``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Images (or features when ``encoder`` is None).
        y : array-like of shape (n,)
            Their labels; ``-1`` marks an unlabelled row.
        X_unlabeled : array-like of shape (m, ...) or None, default=None
            The unlabelled pool; images that are also in ``X`` may stay in it.

        Returns
        -------
        self
        """
        self._check_params()
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise MoBYALError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise MoBYALError("y contains NaN or infinite values; use -1 for unlabelled rows")
        unlabeled = (y == UNLABELED) if y.dtype.kind in "iuf" else np.zeros(len(y), bool)
        order = np.r_[np.flatnonzero(~unlabeled), np.flatnonzero(unlabeled)]
        labels = y[~unlabeled]
        if len(labels) == 0:
            raise MoBYALError("y holds no labelled row (every label is -1)")
        features = self._features(X)[order]
        if X_unlabeled is not None and len(X_unlabeled):
            features = np.concatenate([features, self._features(X_unlabeled)])
        n_nodes = len(features)
        if self.n_neighbors >= n_nodes:
            raise MoBYALError(
                f"n_neighbors={self.n_neighbors} must be smaller than the {n_nodes} images of "
                "the graph (labelled and unlabelled together); lower n_neighbors or pass the "
                "pool as X_unlabeled"
            )
        self.classes_ = np.unique(labels if self.classes is None else np.asarray(self.classes))
        unknown = np.setdiff1d(labels, self.classes_)
        if unknown.size:
            raise MoBYALError(
                f"y holds labels {unknown.tolist()} not among classes {self.classes_.tolist()}"
            )
        codes = np.searchsorted(self.classes_, labels)
        self.index_ = NeighborIndex(features, self.neighbors)
        self.label_distributions_, self.n_iter_ = spread_label_distributions(
            knn_graph(self.index_, self.n_neighbors), np.arange(len(labels)), codes,
            len(self.classes_), self.alpha, class_mass_normalization=self.class_mass_normalization,
            tol=self.tol, max_iter=self.max_iter,
        )  # fmt: skip
        self.transduction_ = self.classes_[self.label_distributions_.argmax(axis=1)]
        self.n_labeled_ = len(labels)
        return self

    def _check_predictable(self) -> None:
        if not hasattr(self, "label_distributions_"):
            raise NotFittedError(
                "This LabelSpreadingClassifier is not fitted yet; call fit with labelled images"
            )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean spread labels of the ``n_neighbors`` nearest graph images of each image.

        Parameters
        ----------
        X : array-like of shape (m, ...)

        Returns
        -------
        ndarray of shape (m, n_classes)
        """
        self._check_predictable()
        k = min(self.n_neighbors, len(self.index_))
        _, neighbors = self.index_.search(self._features(X), k)
        return self.label_distributions_[neighbors].mean(axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each image."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def transform(self, X: Any) -> np.ndarray:
        """The features the graph is built on (L2-normalised), one row per image."""
        if self.encoder is None and not hasattr(self, "index_"):
            raise NotFittedError("without an encoder the features are known only after fit")
        return l2_normalize(self._features(X))

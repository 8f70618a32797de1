"""Features of samples as an estimator sees them, for distribution-based selection.

Selection strategies compare samples in a feature space. Which space an
estimator offers depends on its kind and on whether it has been fitted;
:func:`extract_features` applies one fixed set of rules, so that every
strategy of the package reads the same features from the same estimator.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..exceptions import MoBYALError

__all__ = [
    "extract_features",
    "l2_normalize",
    "resolve_feature_map",
    "apply_feature_map",
    "write_features",
]

FeatureMap = Callable[[Any], Any]


def _raw(X: Any) -> np.ndarray:
    """The inputs themselves, one flattened row per sample."""
    if hasattr(X, "to_numpy"):  # pandas
        X = X.to_numpy()
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # torch
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    return X.reshape(X.shape[0], -1)


def _is_skorch(estimator: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "skorch" for cls in type(estimator).__mro__)


def _check_fitted(estimator: Any) -> None:
    """Raise ``NotFittedError`` for an unfitted scikit-learn estimator.

    scikit-learn transformers do not all raise ``NotFittedError`` from an
    unfitted ``transform`` (PCA raises ``AttributeError``), so every
    ``BaseEstimator`` is asked first; duck-typed estimators must raise
    ``NotFittedError`` themselves. skorch nets are left to their own
    ``transform``: an unfitted ``MoBYClassifier`` with a pretrained encoder has
    features, one without raises skorch's ``NotInitializedError``, a
    ``NotFittedError``.
    """
    if estimator is None or estimator == "passthrough" or _is_skorch(estimator):
        return
    if isinstance(estimator, BaseEstimator):  # duck-typed ones raise from transform
        check_is_fitted(estimator)


def _checked(steps: list[Any], feature_map: FeatureMap) -> FeatureMap:
    def apply(X: Any) -> Any:
        for step in steps:
            _check_fitted(step)
        return feature_map(X)

    return apply


def _feature_maps(estimator: Any) -> list[tuple[str, FeatureMap]]:
    """The feature maps to try for ``estimator``, most specific first.

    The raw inputs always come last; they never raise ``NotFittedError``.
    """
    maps: list[tuple[str, FeatureMap]] = []
    if estimator is not None:
        is_pipeline = isinstance(estimator, Pipeline)
        steps = [step for _, step in estimator.steps] if is_pipeline else [estimator]
        if hasattr(estimator, "transform"):
            maps.append(("transform", _checked(steps, estimator.transform)))
        if is_pipeline and len(steps) > 1:
            # the steps before the final estimator (usually a classifier)
            maps.append(("pipeline[:-1].transform", _checked(steps[:-1], estimator[:-1].transform)))
    maps.append(("raw", _raw))
    return maps


def _as_feature_matrix(F: Any, n_samples: int, source: str) -> np.ndarray:
    if hasattr(F, "toarray"):  # scipy sparse output of a transformer
        F = F.toarray()
    if hasattr(F, "detach") and hasattr(F, "cpu"):
        F = F.detach().cpu().numpy()
    F = np.asarray(F)
    if F.ndim == 0 or F.shape[0] != n_samples:
        raise MoBYALError(
            f"The features from {source} have shape {F.shape}; expected one row per "
            f"sample ({n_samples} rows)."
        )
    F = F.reshape(n_samples, -1)
    if not (np.issubdtype(F.dtype, np.number) or F.dtype == np.bool_):
        raise MoBYALError(f"The features from {source} are not numeric (dtype {F.dtype}).")
    F = F.astype(np.float64 if F.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(F).all():
        raise MoBYALError(
            f"The features from {source} contain NaN or infinite values; selection needs "
            "finite features (check the inputs and the estimator)."
        )
    return F


def resolve_feature_map(estimator: Any, X: Any) -> tuple[np.ndarray, FeatureMap, str]:
    """Features of ``X`` and the map that produced them.

    The map is returned so that a second set (the labelled samples) goes
    through exactly the same map as the first (the candidates).

    Parameters
    ----------
    estimator : estimator or None
    X : array-like of shape (N, ...)

    Returns
    -------
    features : ndarray of shape (N, d)
    feature_map : callable
        Applied to another array-like of samples, returns their features.
    source : str
        ``"transform"``, ``"pipeline[:-1].transform"`` or ``"raw"``.

    Raises
    ------
    MoBYALError
        If the features are not one finite numeric row per sample.
    """
    n_samples = len(X)
    for source, feature_map in _feature_maps(estimator):
        try:
            F = feature_map(X)
        except NotFittedError:
            continue  # cold start: this part of the estimator has not been fitted
        return _as_feature_matrix(F, n_samples, source), feature_map, source
    raise AssertionError("unreachable: the raw inputs are always available")


def apply_feature_map(feature_map: FeatureMap, X: Any, source: str) -> np.ndarray:
    """Features of ``X`` through a map returned by :func:`resolve_feature_map`.

    Parameters
    ----------
    feature_map : callable
    X : array-like of shape (N, ...)
    source : str
        Name of the map, for error messages.

    Returns
    -------
    ndarray of shape (N, d)

    Raises
    ------
    MoBYALError
        If the features are not one finite numeric row per sample.
    """
    return _as_feature_matrix(feature_map(X), len(X), source)


def extract_features(estimator: Any, X: Any) -> np.ndarray:
    """Features of ``X`` in the space that ``estimator`` offers for selection.

    The first rule that applies and does not raise sklearn's
    ``NotFittedError`` (or a subclass, such as skorch's
    ``NotInitializedError``) gives the features:

    1. ``estimator.transform(X)`` when the estimator has ``transform``: a
       ``MoBYClassifier`` (its encoder's pooled features; an unfitted one
       given a pretrained encoder returns the pretrained features), a
       ``MoBYEncoder``, any transformer, or a ``Pipeline`` whose last step
       is a transformer.
    2. ``estimator[:-1].transform(X)`` when the estimator is a scikit-learn
       ``Pipeline`` of at least two steps: the steps before the final
       estimator, which is usually a classifier without ``transform``. This
       also serves a cold start, when the feature steps are fitted (for
       example a pretrained encoder) but the classifier is not yet.
    3. The raw inputs, flattened to one row per sample: for estimators with no
       feature map (a bare classifier), for ``None``, and for estimators whose
       feature steps are not fitted yet (a cold start without a pretrained
       encoder).

    "Not fitted" is decided by scikit-learn's ``check_is_fitted`` for every
    ``BaseEstimator`` involved (pipeline steps included), except skorch nets,
    whose own ``transform`` decides; duck-typed estimators must raise
    ``NotFittedError`` from ``transform``. Any other error propagates.

    Parameters
    ----------
    estimator : estimator or None
        The model whose feature space is wanted (for a modAL learner, pass
        ``learner.estimator``).
    X : array-like of shape (N, ...)
        Samples in the estimator's input format.

    Returns
    -------
    ndarray of shape (N, d)
        float32, or float64 when the map returns float64.

    Raises
    ------
    MoBYALError
        If the features are not one numeric row per sample or contain NaN or
        infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> X = np.random.RandomState(0).normal(size=(20, 5))
    >>> pipe = make_pipeline(PCA(n_components=2), LogisticRegression())
    >>> _ = pipe[:-1].fit(X)  # the classifier is not fitted yet
    >>> extract_features(pipe, X).shape
    (20, 2)
    """
    return resolve_feature_map(estimator, X)[0]


def l2_normalize(features: np.ndarray, *, eps: float = 1e-12) -> np.ndarray:
    """Scale every row to unit Euclidean norm (zero rows stay zero).

    Parameters
    ----------
    features : ndarray of shape (N, d)
    eps : float, default=1e-12
        Norms below ``eps`` are treated as zero.

    Returns
    -------
    ndarray of shape (N, d), same dtype as ``features``.
    """
    features = np.asarray(features)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    norms = np.where(norms < eps, 1.0, norms)
    return (features / norms).astype(features.dtype, copy=False)


def write_features(
    estimator: Any,
    X: Any,
    path: str | os.PathLike,
    *,
    chunk_size: int = 4096,
    dtype: Any = np.float16,
) -> np.memmap:
    """Features of a large pool, computed chunk by chunk into a ``.npy`` file on disk.

    The images are read one chunk at a time (a memmap or an
    :class:`moby_al_plugin.ImagePool` is never held whole) and each chunk's
    features, from the same map as :func:`extract_features`, are written to
    ``path``; the images and the features are never in memory together.
    float16 halves the file; k-Center-Greedy and TypiClust read such a
    memmap chunk-wise.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator with features (see :func:`extract_features`).
    X : array-like, memmap or ImagePool
        The pool.
    path : str or os.PathLike
        The ``.npy`` file to write (replaced if it exists).
    chunk_size : int, default 4096
        Images per chunk.
    dtype : numpy dtype, default float16

    Returns
    -------
    numpy.memmap of shape (N, d)
        The features, opened read-only.
    """
    from .._validation import check_integer
    from ..data.pools import check_pool, is_image_pool_on_disk

    chunk_size = check_integer(chunk_size, "chunk_size")
    n = len(X)
    if n == 0:
        raise MoBYALError("X is empty: it holds 0 images.")
    # an image folder has no raw array: its chunks are the checked images
    chunks = (
        check_pool(X).chunks(chunk_size)
        if is_image_pool_on_disk(X) and not isinstance(X, np.memmap)
        else (X[start : start + chunk_size] for start in range(0, n, chunk_size))
    )
    out = None
    feature_map, source, start = None, "", 0
    for chunk in chunks:
        if feature_map is None:
            features, feature_map, source = resolve_feature_map(estimator, chunk)
            out = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.dtype(dtype), shape=(n, features.shape[1])
            )
        else:
            features = apply_feature_map(feature_map, chunk, source)
        out[start : start + len(features)] = features
        start += len(features)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")

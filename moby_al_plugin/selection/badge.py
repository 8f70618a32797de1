"""BADGE: k-means++ seeding on gradient embeddings (Ash et al., ICLR 2020).

A candidate's gradient embedding is the gradient of the cross-entropy loss
with respect to the weights of the network's last linear layer, taken at the
label the network predicts. Its norm grows with the network's uncertainty
(``1 - p_max`` of the predicted class) and its direction follows the
candidate's penultimate features, so k-means++ seeding in that space picks
samples that are both uncertain and diverse.

Pure numpy, no estimator: :func:`moby_al_plugin.selection.strategies.badge_sampling`
is the modAL query strategy built on these.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_integer

__all__ = ["gradient_embedding", "kmeans_plus_plus_seeds"]


def _check_matrix(values: Any, name: str) -> np.ndarray:
    """A finite 2-D float array, or a ValueError naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric; got dtype {array.dtype}.")
    # float32 stays float32: the embedding of 10,000 candidates is large
    array = array.astype(np.result_type(array.dtype, np.float32), copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def gradient_embedding(proba: Any, features: Any) -> np.ndarray:
    """Gradients of the cross-entropy w.r.t. the last linear layer, at the predicted labels.

    For logits ``z = W h`` (``W`` of shape ``(C, D)``) and the label
    ``y = argmax p``, ``d loss / d W = (p - onehot(y)) h^T``; row ``i`` of the
    result is that ``C x D`` matrix of sample ``i``, flattened class by class.

    Parameters
    ----------
    proba : array-like of shape (N, C)
        Class probabilities (softmax outputs) of the samples.
    features : array-like of shape (N, D)
        Penultimate features: the inputs of the last linear layer.

    Returns
    -------
    ndarray of shape (N, C * D)
        Columns ``c * D : (c + 1) * D`` hold ``(p_c - [c == y]) * h``.
        float32 when both inputs are float32 (or narrower), float64 otherwise.

    Raises
    ------
    ValueError
        If an input is not a finite numeric 2-D array (the message names it),
        or the two do not have the same number of rows.

    Examples
    --------
    >>> gradient_embedding([[0.7, 0.3]], [[1.0, 2.0]]).round(2).tolist()
    [[-0.3, -0.6, 0.3, 0.6]]
    """
    proba = _check_matrix(proba, "proba")
    features = _check_matrix(features, "features")
    if len(proba) != len(features):
        raise ValueError(
            f"proba has {len(proba)} rows and features {len(features)}; "
            "they must describe the same samples."
        )
    dtype = np.result_type(proba.dtype, features.dtype)
    scale = proba.astype(dtype, copy=True)
    # p - onehot(argmax p): the output-layer error at the predicted label
    scale[np.arange(len(scale)), scale.argmax(axis=1)] -= 1.0
    n, c, d = len(scale), scale.shape[1], features.shape[1]
    return (scale[:, :, None] * features.astype(dtype, copy=False)[:, None, :]).reshape(n, c * d)


def _squared_distances(embedding: np.ndarray, sq_norms: np.ndarray, row: int) -> np.ndarray:
    """Squared distances (float64) of every row to row ``row``.

    ``|x|^2 - 2 x.c + |c|^2``: one matrix-vector product in the embedding's
    own dtype, so no temporary of the embedding's size (a difference
    ``embedding - c`` would copy all of it for every seed).
    """
    dots = (embedding @ embedding[row]).astype(np.float64, copy=False)
    out = sq_norms - 2.0 * dots + sq_norms[row]
    # rounding can leave tiny negatives
    return np.maximum(out, 0.0, out=out)


def kmeans_plus_plus_seeds(embedding: Any, n: int, random_state: Any = None) -> np.ndarray:
    """``n`` distinct rows chosen by k-means++ seeding.

    The first seed is the row of largest norm (the most uncertain sample in
    a gradient embedding, as BADGE's reference code starts); each next seed
    is drawn with probability proportional to its squared distance to the
    nearest seed so far (D^2 sampling). When every unpicked row lies on a
    seed (all distances zero, as when every embedding is zero), the next seed
    is drawn uniformly among the unpicked rows, so no row is picked twice.

    Each distance update is one matrix-vector product, so memory beyond the
    embedding is ``O(N)`` (10,000 x 1,280 float32 values: 51 MB, plus a few
    vectors of 10,000); time is ``O(n N E)``.

    Parameters
    ----------
    embedding : array-like of shape (N, E)
    n : int
        Number of seeds, ``1 <= n <= N``.
    random_state : int, RandomState instance or None, default=None
        Draws the seeds after the first, through scikit-learn's
        ``check_random_state`` (None: numpy's global random state).

    Returns
    -------
    ndarray of shape (n,)
        Distinct row indices, in the order picked.

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    ValueError
        If ``embedding`` is not a finite numeric 2-D array, or ``n`` is not
        between 1 and the number of rows.
    """
    embedding = _check_matrix(embedding, "embedding")
    check_integer(n, "n", minimum=None)
    n_rows = len(embedding)
    if not 1 <= n <= n_rows:
        raise ValueError(f"n must be between 1 and the {n_rows} rows of embedding; got {n}.")
    rng = check_random_state(random_state)
    sq_norms = np.einsum("ij,ij->i", embedding, embedding, dtype=np.float64)
    picked = np.empty(int(n), dtype=np.intp)
    taken = np.zeros(n_rows, dtype=bool)
    picked[0] = int(np.argmax(sq_norms))
    taken[picked[0]] = True
    nearest = _squared_distances(embedding, sq_norms, picked[0])
    for k in range(1, int(n)):
        nearest[taken] = 0.0  # a seed never comes back, whatever the rounding
        total = nearest.sum()
        if total > 0.0 and np.isfinite(total):
            row = int(rng.choice(n_rows, p=nearest / total))
        else:
            row = int(rng.choice(np.flatnonzero(~taken)))
        picked[k] = row
        taken[row] = True
        np.minimum(nearest, _squared_distances(embedding, sq_norms, row), out=nearest)
    return picked

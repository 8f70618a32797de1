"""Input checks shared by the estimator, the query strategies and the runner.

scikit-learn style: every check raises :class:`~moby_al_plugin.MoBYALError`
(a ``ValueError``) or ``TypeError`` for a wrong type, with a message that
names the problem, before any work starts.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_scalar

from .exceptions import MoBYALError

__all__ = [
    "stack_features",
    "check_images",
    "check_image_values",
    "check_labels",
    "check_n_instances",
    "check_integer",
    "is_finite_number",
    "check_device",
]


def _to_numpy(X: Any) -> np.ndarray:
    # torch tensors (CPU or CUDA) and array-likes all become numpy arrays
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    return np.asarray(X)


def check_images(X: Any, *, name: str = "X", allow_empty: bool = False) -> np.ndarray:
    """Return images as a float32 ``(N, C, H, W)`` array with values in [0, 1].

    Parameters
    ----------
    X : array-like of shape (N, H, W), (N, C, H, W) or (N, H, W, C)
        ``uint8`` images are divided by 255; float images must already lie in
        [0, 1]. A 4-D array whose last axis has at most 4 entries while its
        second has more is read as channels-last.
    name : str
        Name of the argument, used in error messages.
    allow_empty : bool
        Whether ``N == 0`` is accepted.

    Returns
    -------
    ndarray of shape (N, C, H, W), float32, C-contiguous

    Raises
    ------
    TypeError
        If the array is not numeric.
    MoBYALError
        If the rank is wrong, the array is empty, holds NaN or inf, or float
        values lie outside [0, 1].
    """
    arr = _to_numpy(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric image array, got dtype {arr.dtype}.")
    if arr.ndim not in (3, 4):
        raise MoBYALError(
            f"{name} must be images of shape (N, H, W), (N, C, H, W) or (N, H, W, C); "
            f"got a {arr.ndim}-D array of shape {arr.shape}. Flat rows such as the "
            "64 features of the digits must be reshaped, e.g. X.reshape(-1, 8, 8)."
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise MoBYALError(f"{name} is empty: it holds 0 images.")
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    elif arr.shape[-1] <= 4 < arr.shape[1]:
        # channels-last (N, H, W, C): the usual layout of image files
        arr = np.moveaxis(arr, -1, 1)
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / np.float32(255.0)
    else:
        out = check_image_values(arr.astype(np.float32), name=name)
    return np.ascontiguousarray(out)


def check_image_values(X: np.ndarray, *, name: str = "X") -> np.ndarray:
    """Check the values of an image array without converting it.

    ``uint8`` arrays pass as they are; any other array must be finite with
    values in [0, 1]. The loaders use it to keep ``uint8`` images compact.

    Returns
    -------
    ndarray
        ``X`` itself.

    Raises
    ------
    MoBYALError
        If non-``uint8`` values are NaN, infinite or outside [0, 1].
    """
    if X.dtype == np.uint8 or not X.size:
        return X
    if not np.isfinite(X).all():
        raise MoBYALError(f"{name} contains NaN or infinite values.")
    if X.min() < 0 or X.max() > 1:
        raise MoBYALError(
            f"{name} holds float values in [{X.min():.4g}, {X.max():.4g}]; "
            "float images must be scaled to [0, 1] (or pass uint8 images)."
        )
    return X


def check_labels(y: Any, n_samples: int, *, min_classes: int = 2, name: str = "y") -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n_samples``.

    Raises
    ------
    MoBYALError
        If ``y`` is not 1-D, its length differs from ``n_samples``, it holds
        NaN, or it has fewer than ``min_classes`` distinct classes.
    """
    arr = _to_numpy(y)
    if arr.ndim != 1:
        raise MoBYALError(f"{name} must be 1-D, got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise MoBYALError(
            f"y has {arr.shape[0]} labels but X has {n_samples} images; "
            "they must have the same length."
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise MoBYALError(f"{name} contains NaN or infinite values.")
    n_classes = np.unique(arr).shape[0]
    if n_classes < min_classes:
        raise MoBYALError(
            f"y holds a single class ({arr[0]!r}); a classifier needs at least "
            f"{min_classes} classes to train."
        )
    return arr


def is_finite_number(value: Any) -> bool:
    """A real number that is finite and not a bool (``True`` is never a weight or a rate)."""
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))
    )


def check_integer(
    value: Any, name: str, *, minimum: int | None = 1, maximum: int | None = None
) -> int:
    """The one check of an integer parameter: an integer, not a bool, within bounds.

    A bool is refused: Python counts it as an integer, but ``True`` is never a
    count. The bounds are checked by scikit-learn's ``check_scalar``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (or is a bool).
    MoBYALError
        If it lies outside ``[minimum, maximum]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r}).")
    try:
        return int(check_scalar(value, name, numbers.Integral, min_val=minimum, max_val=maximum))
    except ValueError as error:
        raise MoBYALError(str(error)) from None


def check_n_instances(n_instances: Any, n_pool: int) -> int:
    """Validate a query size against the pool size.

    Raises
    ------
    TypeError
        If ``n_instances`` is not an integer.
    MoBYALError
        If the pool is empty, ``n_instances < 1`` or it exceeds the pool.
    """
    check_integer(n_instances, "n_instances", minimum=None)
    if n_pool == 0:
        raise MoBYALError("The pool is empty: there is nothing left to query.")
    if n_instances < 1:
        raise MoBYALError(f"n_instances must be at least 1, got {n_instances}.")
    if n_instances > n_pool:
        raise MoBYALError(
            f"n_instances={n_instances} is larger than the pool, which holds {n_pool} samples."
        )
    return int(n_instances)


def check_device(device: Any) -> None:
    """Raise :class:`MoBYALError` when a CUDA device is asked for and none is present."""
    import torch

    if device is None:
        return
    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        raise MoBYALError(
            f"device={device!r} was requested but no CUDA GPU is available; use device='cpu'."
        )


def stack_features(labeled: Any, candidates: np.ndarray) -> tuple[np.ndarray, int]:
    """Labelled rows (None: none) on top of the candidates, and how many they are.

    Raises
    ------
    MoBYALError
        If the two have different feature widths.
    """
    labeled = candidates[:0] if labeled is None else np.asarray(labeled)
    if labeled.shape[1:] != candidates.shape[1:]:
        raise MoBYALError(
            f"Labelled features of width {labeled.shape[1:]} and candidate "
            f"features of width {candidates.shape[1:]} differ."
        )
    return np.concatenate([labeled, candidates]), labeled.shape[0]

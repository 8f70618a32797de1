"""The container every loader returns, and the checks the loaders share.

An :class:`ImageDataset` holds a train/test split: images ``(N, H, W)`` for
one channel or ``(N, H, W, C)`` for colour, ``uint8`` where the source is
``uint8`` (Fashion-MNIST's training images take 47 MB so, four times that as
``float32``) and ``float32`` in [0, 1] otherwise; labels ``int64``.

The private helpers below are what the loaders in :mod:`moby_al_plugin.data.loaders`
have in common: checking a path argument, a seeded (stratified when possible)
train/test split, and turning user arrays into checked images and labels.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from .._validation import check_image_values, check_labels
from ..exceptions import MoBYALError

__all__ = ["ImageDataset"]

#: What the loaders accept as a location: a string or an :class:`os.PathLike`.
PathLike = str | os.PathLike


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare by identity
class ImageDataset:
    """A train/test split of images and labels.

    Attributes
    ----------
    X_train, X_test : ndarray
        Images, float32 in [0, 1] or uint8.
    y_train, y_test : ndarray of int64
    name : str
    view_preset : str
        The augmentation preset that suits these images.
    class_names : tuple of str
        Name of each class, indexed by label; empty when the source has none.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    view_preset: str = "auto"
    class_names: tuple[str, ...] = ()


# ------------------------------------------------ helpers shared by the loaders
def _as_path(root: PathLike, what: str) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(root).__name__}")
    return Path(os.fspath(root)).expanduser()


def _check_fraction(test_fraction: Any) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a number, got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise MoBYALError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    return float(test_fraction)


def _split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, random_state: Any, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified whenever scikit-learn can stratify."""

    test_fraction = _check_fraction(test_fraction)
    n = len(y)
    # the same rounding as train_test_split, so the checks below match it
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    if n_train < 1 or n_test < 1:
        raise MoBYALError(
            f"{source}: {n} image(s) cannot be split into a non-empty training and test "
            f"set with test_fraction={test_fraction}"
        )
    counts = np.unique(y, return_counts=True)[1]
    # stratifying needs two members per class and room for every class in both
    # parts; otherwise train_test_split raises, so fall back to a plain shuffle
    stratify = y if counts.min() >= 2 and min(n_test, n_train) >= len(counts) else None
    return train_test_split(X, y, test_size=n_test, random_state=random_state, stratify=stratify)


def _labels_int64(y: Any, source: str) -> np.ndarray:
    """Labels as a 1-D int64 array; integral floats are accepted, other values not."""
    arr = check_labels(y, len(y), min_classes=0, name=f"{source}: labels")
    if arr.dtype.kind not in "biuf" or not np.array_equal(arr, np.round(arr)):
        raise MoBYALError(f"{source}: labels must be whole numbers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise MoBYALError(f"{source}: labels must be >= 0, found {int(out.min())}")
    return out


def _images_and_labels(
    X: Any, y: Any, source: str, part: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Checked images and labels of one part (``X{part}``, ``y{part}``) of equal length."""
    X, y = _images(X, f"{source} X{part}"), _labels_int64(y, f"{source} y{part}")
    if len(X) != len(y):
        raise MoBYALError(
            f"{source}: X{part} holds {len(X)} images but y{part} holds {len(y)} labels"
        )
    return X, y


def _images(X: Any, source: str) -> np.ndarray:
    """Images of rank 3 or 4: uint8 kept, integers 0..255 as uint8, floats as float32."""
    arr = np.asarray(X)
    if arr.ndim not in (3, 4):
        raise MoBYALError(
            f"{source}: images must have rank 3 (N, H, W) or 4 (N, H, W, C), got shape {arr.shape}"
        )
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise MoBYALError(
                f"{source}: integer images must hold values in 0..255, "
                f"found [{arr.min()}, {arr.max()}]"
            )
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype != np.uint8:
        raise MoBYALError(f"{source}: expected uint8 or float images, got dtype {arr.dtype}")
    return check_image_values(arr, name=source)


def _need_root(name: str, root: PathLike | None) -> PathLike:
    """``root``, or an error saying how to give it, for the loaders that require one."""
    if root is None:
        raise MoBYALError(
            f"data set {name!r} needs a data location: pass --data-root (command line) "
            "or root= (Python)"
        )
    return root

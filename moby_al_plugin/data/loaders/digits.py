"""scikit-learn's bundled 8x8 digits as an :class:`~moby_al_plugin.ImageDataset`."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ..image_dataset import ImageDataset

__all__ = ["load_digits_dataset"]


def load_digits_dataset(test_size: float = 0.25, random_state: int = 0) -> ImageDataset:
    """scikit-learn's 8x8 digits (1,797 images) with a fixed, stratified split.

    Pixels (0-16 in the source) are scaled to [0, 1].
    """
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return ImageDataset(X_train, y_train, X_test, y_test, name="digits", view_preset="digits")

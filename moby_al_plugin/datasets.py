"""Data sets as plain arrays: images (N, H, W) or (N, H, W, C) and integer labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageDataset", "load_digits_dataset"]


@dataclass(frozen=True)
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
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    view_preset: str = "auto"


def load_digits_dataset(test_size: float = 0.25, random_state: int = 0) -> ImageDataset:
    """scikit-learn's 8x8 digits (1,797 images) with a fixed, stratified split.

    Pixels (0-16 in the source) are scaled to [0, 1].
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    return ImageDataset(X_train, y_train, X_test, y_test, name="digits", view_preset="digits")

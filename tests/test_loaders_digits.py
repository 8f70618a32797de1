"""Tests of ``moby_al_plugin.data.loaders.digits``: scikit-learn's bundled digits."""

from __future__ import annotations

import numpy as np

from moby_al_plugin.data.loaders.digits import load_digits_dataset


def test_digits_unchanged():
    data = load_digits_dataset()
    assert data.X_train.shape == (1347, 8, 8)
    assert data.X_test.shape == (450, 8, 8)
    assert data.X_train.dtype == np.float32
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    assert data.y_train.dtype == np.int64
    assert data.name == "digits" and data.view_preset == "digits"
    assert data.class_names == ()

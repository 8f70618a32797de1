"""Tests of the container ``moby_al_plugin.data.image_dataset.ImageDataset``."""

from __future__ import annotations

import numpy as np

from moby_al_plugin.data.image_dataset import ImageDataset


def test_image_dataset_positional_fields_unchanged():
    a = np.zeros((2, 3, 3), np.uint8)
    y = np.zeros(2, np.int64)
    data = ImageDataset(a, y, a, y, "x")
    assert data.view_preset == "auto" and data.class_names == ()


def test_image_datasets_compare_by_identity():
    a = np.zeros((2, 3, 3), np.uint8)
    y = np.zeros(2, np.int64)
    data, same_values = ImageDataset(a, y, a, y, "x"), ImageDataset(a, y, a, y, "x")
    assert data == data and data != same_values  # no "truth value of an array" error
    assert len({data, same_values}) == 2

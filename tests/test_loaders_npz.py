"""Tests of ``moby_al_plugin.data.loaders.npz``: NumPy ``.npz`` archives written in ``tmp_path``."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.data.loaders.npz import load_npz


def test_npz_xy_layout(tmp_path):
    X = np.arange(20 * 4 * 4, dtype=np.int64).reshape(20, 4, 4) % 256
    y = np.repeat([0, 1], 10)
    path = tmp_path / "toy.npz"
    np.savez(path, X=X, y=y, class_names=np.array(["a", "b"]))
    data = load_npz(path, test_fraction=0.3, random_state=1)
    assert data.X_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.X_train.shape == (14, 4, 4) and data.X_test.shape == (6, 4, 4)
    assert np.array_equal(np.bincount(data.y_test), [3, 3])
    assert data.name == "toy" and data.class_names == ("a", "b")
    again = load_npz(str(path), test_fraction=0.3, random_state=1)
    assert np.array_equal(again.y_train, data.y_train)


def test_npz_split_layout(tmp_path):
    rng = np.random.default_rng(0)
    parts = {
        "X_train": rng.random((8, 5, 5, 3)).astype(np.float64),
        "y_train": np.arange(8) % 2,
        "X_test": rng.random((4, 5, 5, 3)).astype(np.float64),
        "y_test": np.array([0.0, 1.0, 1.0, 0.0]),
        # the explicit split wins when X / y are there too
        "X": np.zeros((3, 2, 2), np.uint8),
        "y": np.zeros(3),
    }
    path = tmp_path / "split.npz"
    np.savez_compressed(path, **parts)
    data = load_npz(path)
    assert data.X_train.dtype == np.float32 and data.X_train.shape == (8, 5, 5, 3)
    assert np.allclose(data.X_train, parts["X_train"])
    assert np.array_equal(data.y_test, [0, 1, 1, 0]) and data.y_test.dtype == np.int64
    assert data.class_names == ()


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_npz(tmp_path / "nope.npz")
    path = tmp_path / "keys.npz"
    np.savez(path, images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"found keys \[images, labels\].*X and y.*X_train"):
        load_npz(path)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(ValueError, match="corrupt.npz"):
        load_npz(corrupt)
    good = tmp_path / "good.npz"
    np.savez(good, X=np.zeros((10, 3, 3), np.uint8), y=np.arange(10) % 2)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.npz"):
        load_npz(cut)
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="single.npz.*not an .npz"):
        load_npz(npy)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((4, 9)), np.zeros(4), "rank 3"),
        (np.full((4, 2, 2), 2.0), np.zeros(4), r"\[0, 1\]"),
        (np.full((4, 2, 2), 300), np.zeros(4), "0..255"),
        (np.zeros((4, 2, 2)), np.zeros(3), "4 images.*3 labels"),
        (np.zeros((4, 2, 2)), np.array([0, 1, -1, 0]), ">= 0"),
        (np.zeros((4, 2, 2)), np.array([0, 0.5, 1, 0]), "whole numbers"),
    ],
)
def test_npz_content_checks(tmp_path, X, y, match):
    path = tmp_path / "bad.npz"
    np.savez(path, X=X, y=y)
    with pytest.raises(ValueError, match=match):
        load_npz(path)

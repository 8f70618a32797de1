"""Tests of ``moby_al_plugin.data.loaders.fashion_mnist``: the IDX reader and the loader.

Small IDX files are written in ``tmp_path``; the real files are used when
Debian's ``dataset-fashion-mnist`` is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from moby_al_plugin.data.loaders.fashion_mnist import (
    DEFAULT_FASHION_MNIST_ROOT,
    FASHION_MNIST_CLASSES,
    load_fashion_mnist,
)

from .fake_data import IMAGES_MAGIC, LABELS_MAGIC, fake_fashion, write_idx


@pytest.fixture(scope="module")
def real_fashion():
    if not Path(DEFAULT_FASHION_MNIST_ROOT).is_dir():
        pytest.skip(
            f"{DEFAULT_FASHION_MNIST_ROOT} is absent (apt-get install dataset-fashion-mnist)"
        )
    return load_fashion_mnist()


def test_fashion_mnist_real_files(real_fashion):
    data = real_fashion
    assert data.X_train.shape == (60000, 28, 28) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (10000, 28, 28) and data.X_test.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert np.array_equal(np.bincount(data.y_train), np.full(10, 6000))
    assert set(np.unique(data.y_test)) == set(range(10))
    assert data.view_preset == "fashion_mnist" and data.name == "fashion-mnist"
    assert data.class_names == FASHION_MNIST_CLASSES and len(data.class_names) == 10
    assert data.X_train.max() > 0


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arrays = fake_fashion(tmp_path, gz=gz)
    data = load_fashion_mnist(tmp_path)
    assert np.array_equal(data.X_train, arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(data.X_test, arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.X_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.X_train.flags.writeable


def test_idx_plain_file_preferred_over_gz(tmp_path):
    fake_fashion(tmp_path, gz=True)
    plain = np.full((20, 4, 5), 42, np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", plain, IMAGES_MAGIC)
    assert (load_fashion_mnist(str(tmp_path)).X_train == 42).all()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file(tmp_path, gz):
    fake_fashion(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=name) as info:
        load_fashion_mnist(tmp_path)
    assert ("gzip" if gz else "truncated") in str(info.value)


def test_idx_truncated_header_and_trailing_bytes(tmp_path):
    fake_fashion(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(ValueError, match="trailing"):
        load_fashion_mnist(tmp_path)
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*header"):
        load_fashion_mnist(tmp_path)


def test_idx_wrong_magic(tmp_path):
    fake_fashion(tmp_path, gz=False)
    # a labels file written with the images magic number
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((20, 1, 1), np.uint8), IMAGES_MAGIC)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic.*0x00000801"):
        load_fashion_mnist(tmp_path)


def test_idx_label_checks(tmp_path):
    fake_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19, np.uint8), LABELS_MAGIC)
    with pytest.raises(ValueError, match="19 labels.*20 images"):
        load_fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(20, 10, np.uint8), LABELS_MAGIC)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        load_fashion_mnist(tmp_path)


def test_fashion_missing_folder_and_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        load_fashion_mnist(missing)
    assert str(missing) in str(info.value) and "root=" in str(info.value)
    fake_fashion(tmp_path, gz=True)
    os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)

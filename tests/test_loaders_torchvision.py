"""Tests of ``moby_al_plugin.data.loaders.torchvision_sets``: torchvision data on disk.

Everything runs offline: small IDX, pickle and .mat files in torchvision's
layouts are written in ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from moby_al_plugin.data.datasets import load_dataset
from moby_al_plugin.data.loaders import torchvision_sets as tvs
from moby_al_plugin.data.loaders.fashion_mnist import FASHION_MNIST_CLASSES
from moby_al_plugin.data.loaders.torchvision_sets import load_torchvision_dataset

from .fake_data import fake_fashion


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100", "cifar-100-python/train"),
        ("svhn", "train_32x32.mat"),
        ("torchvision-fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ],
)
def test_torchvision_missing_files(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        load_dataset(name, root=tmp_path)
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or created
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_torchvision_dataset(name, tmp_path / "absent")


def test_torchvision_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="cifar10, cifar100, svhn"):
        load_torchvision_dataset("imagenet", tmp_path)


def test_torchvision_fashion_mnist_fake_files(tmp_path):
    # torchvision only checks that the raw IDX files exist, so tiny ones work
    arrays = fake_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    data = load_dataset("torchvision-fashion-mnist", root=tmp_path)
    assert data.X_train.dtype == np.uint8 and data.X_train.shape == (20, 4, 5)
    assert np.array_equal(data.X_train, arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.y_test.dtype == np.int64
    assert data.view_preset == "fashion_mnist"
    assert data.class_names == FASHION_MNIST_CLASSES


def write_cifar(root: Path, hundred: bool, n: int = 4) -> np.ndarray:
    """CIFAR python batches with pixel rows (N, 3 * 32 * 32), channels first."""
    rng = np.random.default_rng(1)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    batches = (
        ["train", "test"] if hundred else [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    )
    rows = rng.integers(0, 256, (len(batches), n, 3 * 32 * 32), dtype=np.uint8)
    for i, batch in enumerate(batches):
        entry = {"data": rows[i], key: [int(v) for v in (np.arange(n) + i) % 3]}
        (folder / batch).write_bytes(pickle.dumps(entry))
    meta_key = "fine_label_names" if hundred else "label_names"
    meta = folder / ("meta" if hundred else "batches.meta")
    meta.write_bytes(pickle.dumps({meta_key: ["x", "y", "z"]}))
    return rows


@pytest.mark.parametrize("hundred", [False, True])
def test_torchvision_cifar_fake_files(tmp_path, monkeypatch, hundred):
    import torchvision.datasets.cifar as cifar

    rows = write_cifar(tmp_path, hundred)
    name = "cifar100" if hundred else "cifar10"
    # without the real files' MD5 sums torchvision calls them corrupted
    with pytest.raises(ValueError, match="checksum"):
        load_dataset(name, root=tmp_path)
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    data = load_dataset(name, root=tmp_path)
    n_train = 4 if hundred else 20
    assert data.X_train.shape == (n_train, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (4, 32, 32, 3)
    expected = rows[-1][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(data.X_test[0], expected)
    assert data.y_train.dtype == np.int64 and set(data.y_train) <= {0, 1, 2}
    assert data.view_preset == "natural" and data.class_names == ("x", "y", "z")


def test_torchvision_svhn_fake_files(tmp_path, monkeypatch):
    import scipy.io
    import torchvision.datasets.svhn as svhn

    rng = np.random.default_rng(2)
    images = {}
    for split, n in (("train", 5), ("test", 3)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's (H, W, C, N)
        y = np.arange(1, n + 1, dtype=np.uint8).reshape(-1, 1)
        y[0] = 10  # SVHN's label for the digit 0
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
        images[split] = X
    monkeypatch.setattr(svhn, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    data = load_dataset("svhn", root=tmp_path)
    assert data.X_train.shape == (5, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert np.array_equal(data.X_train[2], images["train"][..., 2])
    assert np.array_equal(data.y_train, [0, 2, 3, 4, 5])
    assert data.view_preset == "digits" and data.class_names == tuple("0123456789")


def test_torchvision_conversion_helper():
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    X, y = tvs._torchvision_arrays(SimpleNamespace(data=nchw, labels=np.array([1, 0])), "svhn")
    assert X.shape == (2, 4, 5, 3) and X.flags.c_contiguous
    assert np.array_equal(X[1, 2, 3], nchw[1, :, 2, 3])
    fm = SimpleNamespace(
        data=torch.zeros(3, 6, 6, dtype=torch.uint8), targets=torch.tensor([1, 2, 9])
    )
    X, y = tvs._torchvision_arrays(fm, "torchvision-fashion-mnist")
    assert X.shape == (3, 6, 6) and X.dtype == np.uint8 and y.dtype == np.int64
    cifar = SimpleNamespace(data=np.zeros((2, 8, 8, 3), np.uint8), targets=[0, 1])
    X, y = tvs._torchvision_arrays(cifar, "cifar10")
    assert X.shape == (2, 8, 8, 3) and list(y) == [0, 1]
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        tvs._torchvision_arrays(SimpleNamespace(data=nchw, targets=[0, 1]), "cifar10")
    with pytest.raises(ValueError, match="2 images but y holds 3 labels"):
        tvs._torchvision_arrays(SimpleNamespace(data=cifar.data, targets=[0, 1, 2]), "cifar10")

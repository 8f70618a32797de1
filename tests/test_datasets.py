"""Tests of the name registry in ``moby_al_plugin.data.datasets``.

The loaders themselves are tested in ``test_loaders_*.py``, the container in
``test_image_dataset.py``, image reading in ``test_image_reading.py`` and the
pool helpers in ``test_pool_sampling.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.data import datasets
from moby_al_plugin.data.datasets import DATASETS, available_datasets, load_dataset, load_npz
from moby_al_plugin.data.loaders import fashion_mnist

from .fake_data import fake_fashion, image_folder


def test_registry_names():
    names = [
        "digits",
        "fashion-mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "torchvision-fashion-mnist",
        "image-folder",
        "npz",
    ]
    assert available_datasets() == names
    assert list(DATASETS) == names
    with pytest.raises(TypeError):
        DATASETS["mine"] = load_npz  # read-only mapping


@pytest.mark.parametrize(
    "name", ["fashion-mnist", "Fashion-MNIST", "fashion_mnist", "fashionmnist", " FashionMNIST "]
)
def test_registry_fashion_aliases(tmp_path, monkeypatch, name):
    arrays = fake_fashion(tmp_path, gz=True)
    # the default root is read at call time, so point it at the fake files
    monkeypatch.setattr(fashion_mnist, "DEFAULT_FASHION_MNIST_ROOT", str(tmp_path))
    data = load_dataset(name)
    assert np.array_equal(data.X_test, arrays["t10k-images-idx3-ubyte"])
    assert load_dataset(name, root=tmp_path).name == "fashion-mnist"


def test_registry_dispatch(tmp_path):
    assert load_dataset("DIGITS", root="/ignored/anyway").X_train.shape == (1347, 8, 8)
    assert load_dataset("digits", test_size=0.5).X_test.shape == (899, 8, 8)
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((10, 3, 3), np.uint8), y=np.arange(10) % 2)
    assert load_dataset("npz", root=path, test_fraction=0.5).X_test.shape == (5, 3, 3)
    root = image_folder(tmp_path / "imgs")
    assert load_dataset("image_folder", root, image_size=3).X_train.shape[1:] == (3, 3)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown data set 'mnist'") as info:
        load_dataset("mnist")
    for name in available_datasets():
        assert name in str(info.value)
    for name in ("cifar10", "cifar100", "svhn", "torchvision-fashion-mnist", "image-folder", "npz"):
        with pytest.raises(ValueError, match="--data-root"):
            load_dataset(name)
    with pytest.raises(TypeError):
        load_dataset(3)


def test_datasets_reexports_the_public_names_of_the_data_modules():
    # `from moby_al_plugin.data.datasets import X` keeps working for every public name
    from moby_al_plugin.data import image_dataset, image_reading, loaders, pool_sampling

    defined_here = {"DATASETS", "available_datasets", "load_dataset"}
    modules = (image_dataset, image_reading, loaders, pool_sampling)
    reexported = [name for module in modules for name in module.__all__]
    assert sorted(datasets.__all__) == sorted(defined_here | set(reexported))
    assert len(set(datasets.__all__)) == len(datasets.__all__)
    for module in modules:
        for name in module.__all__:
            assert getattr(datasets, name) is getattr(module, name), name

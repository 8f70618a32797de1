"""One loader per data source, each returning an :class:`~moby_al_plugin.ImageDataset`.

========================  =========================================================
module                    loader
========================  =========================================================
:mod:`.digits`            :func:`load_digits_dataset`: scikit-learn's 8x8 digits
:mod:`.fashion_mnist`     :func:`load_fashion_mnist`: the four IDX files
:mod:`.torchvision_sets`  :func:`load_torchvision_dataset`: CIFAR, SVHN, FashionMNIST
:mod:`.image_folder`      :func:`load_image_folder`: one sub-folder per class
:mod:`.npz`               :func:`load_npz`: a NumPy ``.npz`` archive
========================  =========================================================

Nothing is downloaded: a missing file raises
:class:`~moby_al_plugin.DataNotFoundError`, whose message says where the files
are expected and how to get them. To pick a loader by name, use
:func:`moby_al_plugin.data.datasets.load_dataset`.
"""

from __future__ import annotations

from .digits import load_digits_dataset
from .fashion_mnist import DEFAULT_FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES, load_fashion_mnist
from .image_folder import load_image_folder
from .npz import load_npz
from .torchvision_sets import TORCHVISION_DATASETS, load_torchvision_dataset

__all__ = [
    "load_digits_dataset",
    "DEFAULT_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "TORCHVISION_DATASETS",
    "load_torchvision_dataset",
    "load_image_folder",
    "load_npz",
]

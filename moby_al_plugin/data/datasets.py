"""Data sets by name, as plain arrays: the entry point, like ``sklearn.datasets``.

:func:`load_dataset` picks a loader by name (:data:`DATASETS`,
:func:`available_datasets`) and returns an :class:`ImageDataset`. The pieces
live in their own modules and are re-exported here, so that
``from moby_al_plugin.data.datasets import X`` finds every public name:

- :mod:`moby_al_plugin.data.image_dataset`: :class:`ImageDataset`, the container;
- :mod:`moby_al_plugin.data.loaders`: one module per source (digits,
  Fashion-MNIST, torchvision, image folder, ``.npz``);
- :mod:`moby_al_plugin.data.image_reading`: :func:`read_image`, one image file as
  an array;
- :mod:`moby_al_plugin.data.pool_sampling`: :func:`subsample_indices` and
  :func:`initial_labeled_indices` draw a pool and a first labelled set.

Nothing is downloaded: a missing file raises
:class:`~moby_al_plugin.DataNotFoundError`, whose message says where the
files are expected and how to get them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..exceptions import MoBYALError
from .image_dataset import ImageDataset, PathLike, _need_root
from .image_reading import (
    IMAGE_EXTENSIONS,
    MAX_DECODED_PIXELS,
    READ_ERRORS,
    ImageTooLargeError,
    describe_image,
    list_image_files,
    read_image,
    single_channel_mode,
)
from .loaders import (
    DEFAULT_FASHION_MNIST_ROOT,
    FASHION_MNIST_CLASSES,
    TORCHVISION_DATASETS,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_torchvision_dataset,
)
from .pool_sampling import initial_labeled_indices, subsample_indices

__all__ = [
    # the registry, defined here
    "DATASETS",
    "available_datasets",
    "load_dataset",
    # re-exported from moby_al_plugin.data.image_dataset
    "ImageDataset",
    # re-exported from moby_al_plugin.data.loaders
    "load_digits_dataset",
    "DEFAULT_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "TORCHVISION_DATASETS",
    "load_torchvision_dataset",
    "load_image_folder",
    "load_npz",
    # re-exported from moby_al_plugin.data.image_reading
    "IMAGE_EXTENSIONS",
    "MAX_DECODED_PIXELS",
    "READ_ERRORS",
    "ImageTooLargeError",
    "describe_image",
    "list_image_files",
    "read_image",
    "single_channel_mode",
    # re-exported from moby_al_plugin.data.pool_sampling
    "subsample_indices",
    "initial_labeled_indices",
]


#: Loader of each data set name, called as ``DATASETS[name](root, **kwargs)``.
#: ``"digits"`` ignores ``root``; ``"fashion-mnist"`` defaults it to
#: :data:`DEFAULT_FASHION_MNIST_ROOT`; the others require it (for ``"npz"``
#: it is the file). Read-only: :func:`load_dataset` is the usual entry point.
DATASETS: Mapping[str, Callable[..., ImageDataset]] = MappingProxyType(
    {
        "digits": lambda root=None, **kwargs: load_digits_dataset(**kwargs),
        "fashion-mnist": lambda root=None, **kwargs: load_fashion_mnist(root, **kwargs),
        **{
            name: functools.partial(
                lambda name, root=None: load_torchvision_dataset(name, root), name
            )
            for name in TORCHVISION_DATASETS
        },
        "image-folder": lambda root=None, **kwargs: load_image_folder(
            _need_root("image-folder", root), **kwargs
        ),
        "npz": lambda root=None, **kwargs: load_npz(_need_root("npz", root), **kwargs),
    }
)
_ALIASES = {"fashionmnist": "fashion-mnist"}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in registry order."""
    return list(DATASETS)


def load_dataset(name: str, root: PathLike | None = None, **kwargs: Any) -> ImageDataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`, case-insensitive; ``_`` and ``-``
        are interchangeable, and ``"fashionmnist"`` means ``"fashion-mnist"``.
    root : str or os.PathLike, optional
        Where the data lie: ignored for ``"digits"``, optional for
        ``"fashion-mnist"``, the ``.npz`` file for ``"npz"``, and the data
        folder for the others.
    **kwargs
        Passed to the loader, e.g. ``image_size=32`` for ``"image-folder"`` or
        ``test_fraction=0.3`` for ``"npz"`` (the torchvision sets take none).

    Returns
    -------
    ImageDataset

    Raises
    ------
    MoBYALError
        Unknown name (the message lists the valid ones), a required ``root``
        not given, or what the loader raises.
    DataNotFoundError
        If the data are not where ``root`` says.
    TypeError
        If ``name`` is not a string, or a keyword is not one the loader takes.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise MoBYALError(
            f"unknown data set {name!r}; valid names: {', '.join(available_datasets())}"
        )
    return DATASETS[key](root, **kwargs)

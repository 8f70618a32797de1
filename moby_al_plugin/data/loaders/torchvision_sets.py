"""torchvision data sets already on disk (CIFAR-10/100, SVHN, FashionMNIST) as arrays.

torchvision reads the files; this module checks they are there, never
downloads, and converts torchvision's objects into uint8 numpy arrays.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets as tvd

from ...exceptions import DataNotFoundError, MoBYALError
from ..image_dataset import ImageDataset, PathLike, _as_path, _images_and_labels, _need_root
from .fashion_mnist import _FASHION_FILES

__all__ = ["TORCHVISION_DATASETS", "load_torchvision_dataset"]

_CIFAR10 = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
# name -> (torchvision class, files expected under root, view preset); SVHN gets
# no flips ("digits") because a mirrored digit can read as another digit
_TV_LAYOUT: dict[str, tuple[str, tuple[str, ...], str]] = {
    "cifar10": ("CIFAR10", tuple(f"cifar-10-batches-py/{f}" for f in _CIFAR10), "natural"),
    "cifar100": (
        "CIFAR100",
        tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta")),
        "natural",
    ),
    "svhn": ("SVHN", ("train_32x32.mat", "test_32x32.mat"), "digits"),
    "torchvision-fashion-mnist": (
        "FashionMNIST",
        tuple(f"FashionMNIST/raw/{f}" for f in _FASHION_FILES),
        "fashion_mnist",
    ),
}
# torchvision still reads the pre-0.8 cache of FashionMNIST when it is present
_TV_LEGACY = ("FashionMNIST/processed/training.pt", "FashionMNIST/processed/test.pt")

#: Names accepted by :func:`load_torchvision_dataset`.
TORCHVISION_DATASETS: tuple[str, ...] = tuple(_TV_LAYOUT)


def _tv_download_hint(name: str, root: Path) -> str:
    split = ("split='train'", "split='test'") if name == "svhn" else ("train=True", "train=False")
    return (
        "This library never downloads data; fetching it is your choice: run once, yourself, "
        f"torchvision.datasets.{_TV_LAYOUT[name][0]}({str(root)!r}, {split[0]}, download=True) "
        f"and the same with {split[1]}."
    )


def _torchvision_arrays(ds: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W[, C]) and int64 labels of a torchvision data set object.

    Reads ``.data`` and ``.targets`` (``.labels`` for SVHN, whose ``.data`` is
    channels-first and is made channels-last).
    """
    source = f"torchvision {name}"
    X = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    y = np.asarray(ds.labels if name == "svhn" else ds.targets)
    expected = {"svhn": "(N, 3, H, W)", "torchvision-fashion-mnist": "(N, H, W)"}
    layout = expected.get(name, "(N, H, W, 3)")
    colour_axis = {"svhn": 1}.get(name, 3)
    if (X.ndim != 3) if layout == "(N, H, W)" else (X.ndim != 4 or X.shape[colour_axis] != 3):
        raise MoBYALError(f"{source}: expected images {layout}, got shape {X.shape}")
    if name == "svhn":
        X = np.ascontiguousarray(X.transpose(0, 2, 3, 1))
    return _images_and_labels(X, y, source)


def load_torchvision_dataset(name: str, root: PathLike) -> ImageDataset:
    """A torchvision data set already on disk, as uint8 numpy arrays (never downloaded).

    Parameters
    ----------
    name : {"cifar10", "cifar100", "svhn", "torchvision-fashion-mnist"}
        Case-insensitive; ``_`` and ``-`` are interchangeable.
    root : str or os.PathLike
        The ``root`` torchvision was given when the files were downloaded.

    Returns
    -------
    ImageDataset
        Train and test splits (not SVHN's ``extra``): CIFAR and SVHN images
        (N, 32, 32, 3), Fashion-MNIST (N, 28, 28). View presets ``"natural"``
        for CIFAR, ``"digits"`` for SVHN (no flips), ``"fashion_mnist"``.

    Raises
    ------
    MoBYALError
        Unknown name, no ``root``, or torchvision rejects the files (checksum
        mismatch, corrupt content).
    DataNotFoundError
        If ``root`` or an expected file is missing; the message shows the
        expected layout and how to download it.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in _TV_LAYOUT:
        raise MoBYALError(
            f"unknown torchvision data set {name!r}; valid names: {', '.join(_TV_LAYOUT)}"
        )
    folder = _as_path(_need_root(key, root), "root")
    cls_name, files, preset = _TV_LAYOUT[key]
    missing = [f for f in files if not (folder / f).is_file()]
    if key == "torchvision-fashion-mnist" and all((folder / f).is_file() for f in _TV_LEGACY):
        missing = []
    if not folder.is_dir() or missing:
        what = "folder not found" if not folder.is_dir() else "missing " + ", ".join(missing)
        raise DataNotFoundError(
            f"{key} under {folder}: {what}. torchvision expects, under root: "
            f"{', '.join(files)}. {_tv_download_hint(key, folder)}"
        )
    splits = (
        [{"split": "train"}, {"split": "test"}]
        if key == "svhn"
        else [{"train": True}, {"train": False}]
    )
    try:
        train, test = (getattr(tvd, cls_name)(str(folder), download=False, **s) for s in splits)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as exc:
        # the files exist, so torchvision's "not found or corrupted" means corrupted
        raise MoBYALError(
            f"torchvision could not read {key} under {folder} (checksum mismatch or corrupt "
            f"file): {exc}. {_tv_download_hint(key, folder)}"
        ) from exc
    classes = tuple("0123456789") if key == "svhn" else tuple(map(str, train.classes))
    return ImageDataset(
        *_torchvision_arrays(train, key),
        *_torchvision_arrays(test, key),
        name=key,
        view_preset=preset,
        class_names=classes,
    )

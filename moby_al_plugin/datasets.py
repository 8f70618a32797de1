"""Data sets as plain arrays: images (N, H, W) or (N, H, W, C) and integer labels.

Every loader returns an :class:`ImageDataset`. Images follow the library's
convention: ``(N, H, W)`` for one channel or ``(N, H, W, C)`` for colour,
either ``uint8`` (0-255) or ``float32`` in [0, 1]; labels are ``int64``.
Loaders keep ``uint8`` where the source is ``uint8`` (Fashion-MNIST's 60,000
training images take 47 MB as ``uint8``, four times that as ``float32``).

Nothing here downloads anything: files must already be on disk, and the
error raised when they are not says where they are expected and how to get
them.

Sources
-------
``load_digits_dataset``
    scikit-learn's bundled 8x8 digits.
``load_fashion_mnist``
    The four Fashion-MNIST IDX files (plain or gzipped), by default from
    :data:`DEFAULT_FASHION_MNIST_ROOT`, where Debian's
    ``dataset-fashion-mnist`` package installs them.
``load_torchvision_dataset``
    CIFAR-10, CIFAR-100, SVHN and Fashion-MNIST in torchvision's on-disk
    layout (always ``download=False``).
``load_image_folder``
    One sub-folder of image files per class.
``load_npz``
    A NumPy ``.npz`` archive.

:func:`load_dataset` picks one of them by name (see :data:`DATASETS`), and
:func:`subsample_indices` / :func:`initial_labeled_indices` draw a pool and a
first labelled set from it.
"""

from __future__ import annotations

import gzip
import math
import numbers
import os
import pickle
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ImageDataset",
    "load_digits_dataset",
    "DEFAULT_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "TORCHVISION_DATASETS",
    "load_torchvision_dataset",
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_npz",
    "DATASETS",
    "available_datasets",
    "load_dataset",
    "subsample_indices",
    "initial_labeled_indices",
]

PathLike = str | os.PathLike


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare by identity
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
    class_names : tuple of str
        Name of each class, indexed by label; empty when the source has none.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    view_preset: str = "auto"
    class_names: tuple[str, ...] = ()


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


# ------------------------------------------------------------------ helpers
def _as_path(root: PathLike, what: str) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(root).__name__}")
    return Path(os.fspath(root)).expanduser()


def _check_fraction(test_fraction: Any) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a number, got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    return float(test_fraction)


def _split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, random_state: Any, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified whenever scikit-learn can stratify."""
    from sklearn.model_selection import train_test_split

    test_fraction = _check_fraction(test_fraction)
    n = len(y)
    # the same rounding as train_test_split, so the checks below match it
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    if n_train < 1 or n_test < 1:
        raise ValueError(
            f"{source}: {n} image(s) cannot be split into a non-empty training and test "
            f"set with test_fraction={test_fraction}"
        )
    _, counts = np.unique(y, return_counts=True)
    n_classes = len(counts)
    # stratifying needs two members per class and room for every class in both
    # parts; otherwise train_test_split raises, so fall back to a plain shuffle
    stratify = y if counts.min() >= 2 and min(n_test, n_train) >= n_classes else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=n_test, random_state=random_state, stratify=stratify
    )
    return X_train, X_test, y_train, y_test


def _labels_int64(y: Any, source: str) -> np.ndarray:
    """Labels as a 1-D int64 array; integral floats are accepted, other values not."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{source}: labels must be 1-D, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        out = arr.astype(np.int64)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{source}: labels must be whole numbers, got non-integral floats")
        out = arr.astype(np.int64)
    else:
        raise ValueError(f"{source}: labels must be integers, got dtype {arr.dtype}")
    if out.size and out.min() < 0:
        raise ValueError(f"{source}: labels must be >= 0, found {int(out.min())}")
    return out


def _images_uint8(X: Any, source: str) -> np.ndarray:
    """An integer image array as uint8; values outside 0..255 are an error."""
    arr = np.asarray(X)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{source}: expected uint8 images, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(
            f"{source}: integer images must hold values in 0..255, found [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.uint8)


# ---------------------------------------------------------------- Fashion-MNIST
#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
DEFAULT_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

#: The ten Fashion-MNIST classes, indexed by label.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), the rank
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _fashion_help(root: Path) -> str:
    return (
        "To get the files: on Debian/Ubuntu run 'apt-get install dataset-fashion-mnist' "
        f"(it installs them in {DEFAULT_FASHION_MNIST_ROOT}), or download the four IDX "
        "files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, gzipped or not) from the Fashion-MNIST project "
        f"(github.com/zalandoresearch/fashion-mnist) into {root} and pass that folder "
        "as --data-root / root=."
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one uint8 IDX file (gzipped when its name ends in ``.gz``).

    Raises
    ------
    ValueError
        If the file cannot be decompressed, has the wrong magic number, or its
        payload length disagrees with the dimensions in its header.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        # a truncated .gz ends early (EOFError); a corrupt one fails to inflate
        raise ValueError(f"{path}: not a valid gzip file ({exc})") from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX file: {len(raw)} bytes, shorter than its {header}-byte header"
        )
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        kind = "images" if magic == _IDX_IMAGES_MAGIC else "labels"
        raise ValueError(
            f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"(an IDX file of uint8 {kind} with {ndim} dimension(s))"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims)
    payload = len(raw) - header
    if payload < expected:
        raise ValueError(
            f"{path}: truncated IDX file: the header declares shape {dims} "
            f"({expected} bytes of data) but only {payload} bytes follow"
        )
    if payload > expected:
        raise ValueError(
            f"{path}: corrupt IDX file: {payload - expected} unexpected trailing bytes after "
            f"the {expected} bytes declared by the header (shape {dims})"
        )
    # copy: frombuffer over bytes is read-only, and users may edit their arrays
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def load_fashion_mnist(root: PathLike | None = None) -> ImageDataset:
    """Fashion-MNIST from its four IDX files: 60,000 + 10,000 uint8 28x28 images.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or
        gzipped (``.gz``; the plain file wins when both exist). Defaults to
        :data:`DEFAULT_FASHION_MNIST_ROOT`.

    Returns
    -------
    ImageDataset
        ``uint8`` images of shape (N, 28, 28), ``int64`` labels 0-9, the
        ``"fashion_mnist"`` view preset and :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the files is missing; the message says how to
        get them.
    ValueError
        If a file is corrupt or truncated, the label and image counts differ,
        the train and test image sizes differ, or a label lies outside 0-9.
    TypeError
        If ``root`` is not a path.
    """
    folder = _as_path(DEFAULT_FASHION_MNIST_ROOT if root is None else root, "root")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder not found: {folder}. {_fashion_help(folder)}"
        )
    paths: dict[str, Path] = {}
    missing = []
    for base in _FASHION_FILES:
        for candidate in (folder / base, folder / f"{base}.gz"):
            if candidate.is_file():
                paths[base] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files missing in {folder}: {', '.join(missing)}. "
            f"{_fashion_help(folder)}"
        )

    def pair(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        img_path = paths[f"{prefix}-images-idx3-ubyte"]
        lab_path = paths[f"{prefix}-labels-idx1-ubyte"]
        X = _read_idx(img_path, _IDX_IMAGES_MAGIC)
        y = _read_idx(lab_path, _IDX_LABELS_MAGIC).astype(np.int64)
        if len(X) != len(y):
            raise ValueError(
                f"{lab_path} holds {len(y)} labels but {img_path} holds {len(X)} images"
            )
        if y.size and y.max() > 9:
            raise ValueError(f"{lab_path}: labels must lie in 0..9, found {int(y.max())}")
        return X, y

    X_train, y_train = pair("train")
    X_test, y_test = pair("t10k")
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(
            f"Fashion-MNIST in {folder}: training images are {X_train.shape[1:]} but test "
            f"images are {X_test.shape[1:]}"
        )
    return ImageDataset(
        X_train,
        y_train,
        X_test,
        y_test,
        name="fashion-mnist",
        view_preset="fashion_mnist",
        class_names=FASHION_MNIST_CLASSES,
    )


# ---------------------------------------------------------------- torchvision
# name -> (torchvision class, files expected under root, view preset)
_TV_LAYOUT: dict[str, tuple[str, tuple[str, ...], str]] = {
    "cifar10": (
        "CIFAR10",
        tuple(
            f"cifar-10-batches-py/{f}"
            for f in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            )
        ),
        "natural",
    ),
    "cifar100": (
        "CIFAR100",
        ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        "natural",
    ),
    # SVHN: no flips ("digits" preset) because a mirrored digit can be another digit
    "svhn": ("SVHN", ("train_32x32.mat", "test_32x32.mat"), "digits"),
    "torchvision-fashion-mnist": (
        "FashionMNIST",
        tuple(f"FashionMNIST/raw/{f}" for f in _FASHION_FILES),
        "fashion_mnist",
    ),
}
# torchvision still reads the pre-0.8 cache of FashionMNIST when it is present
_TV_FASHION_LEGACY = ("FashionMNIST/processed/training.pt", "FashionMNIST/processed/test.pt")

#: Names accepted by :func:`load_torchvision_dataset`.
TORCHVISION_DATASETS: tuple[str, ...] = tuple(_TV_LAYOUT)


def _tv_download_hint(name: str, root: Path) -> str:
    cls = _TV_LAYOUT[name][0]
    if name == "svhn":
        call = (
            f"torchvision.datasets.SVHN({str(root)!r}, split='train', download=True) and "
            "the same with split='test'"
        )
    else:
        call = f"torchvision.datasets.{cls}({str(root)!r}, train=True, download=True)"
        if name == "torchvision-fashion-mnist":
            call += " and the same with train=False"
    text = (
        "This library never downloads data; fetching it is your choice: run once, "
        f"yourself, {call}."
    )
    if name == "torchvision-fashion-mnist":
        text += (
            " Alternatively the dataset 'fashion-mnist' reads the IDX files directly "
            "(e.g. from Debian's dataset-fashion-mnist package)."
        )
    return text


def _to_array(obj: Any) -> np.ndarray:
    # torch tensors become numpy without a copy; lists and arrays via asarray
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return obj.detach().cpu().numpy()
    return np.asarray(obj)


def _torchvision_arrays(ds: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W[, C]) uint8 and int64 labels from a torchvision data set object.

    Reads ``.data`` and ``.targets`` (``.labels`` for SVHN, whose ``.data`` is
    channels-first and is transposed to channels-last).

    Raises
    ------
    ValueError
        If the arrays have an unexpected rank, dtype or length.
    """
    source = f"torchvision {name}"
    X = _to_array(ds.data)
    y = _to_array(ds.labels if name == "svhn" else ds.targets)
    if name == "torchvision-fashion-mnist":
        if X.ndim != 3:
            raise ValueError(f"{source}: expected images (N, H, W), got shape {X.shape}")
    else:
        if X.ndim != 4 or X.shape[1 if name == "svhn" else 3] != 3:
            layout = "(N, 3, H, W)" if name == "svhn" else "(N, H, W, 3)"
            raise ValueError(f"{source}: expected images {layout}, got shape {X.shape}")
        if name == "svhn":
            X = np.ascontiguousarray(X.transpose(0, 2, 3, 1))
    X = _images_uint8(X, source)
    y = _labels_int64(y, source)
    if len(X) != len(y):
        raise ValueError(f"{source}: {len(X)} images but {len(y)} labels")
    return X, y


def load_torchvision_dataset(name: str, root: PathLike) -> ImageDataset:
    """Load a torchvision data set already on disk, as uint8 numpy arrays.

    Parameters
    ----------
    name : {"cifar10", "cifar100", "svhn", "torchvision-fashion-mnist"}
        Case-insensitive; ``_`` and ``-`` are interchangeable.
    root : str or os.PathLike
        The ``root`` torchvision was given when the files were downloaded:
        ``root/cifar-10-batches-py/``, ``root/cifar-100-python/``,
        ``root/train_32x32.mat`` + ``root/test_32x32.mat`` (SVHN) or
        ``root/FashionMNIST/raw/`` (uncompressed IDX files).

    Returns
    -------
    ImageDataset
        Train and test splits (SVHN's ``extra`` split is not used). CIFAR and
        SVHN images are (N, 32, 32, 3), Fashion-MNIST (N, 28, 28), all uint8.
        View presets: ``"natural"`` for CIFAR, ``"digits"`` for SVHN (no
        flips: a mirrored digit can read as another one), ``"fashion_mnist"``.

    Raises
    ------
    ValueError
        Unknown name, ``root`` is None, or torchvision rejects the files
        (checksum mismatch, corrupt content).
    FileNotFoundError
        If ``root`` or an expected file is missing; the message shows the
        expected layout. Nothing is downloaded (``download=False``).
    TypeError
        If ``root`` is not a path.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in _TV_LAYOUT:
        raise ValueError(
            f"unknown torchvision data set {name!r}; valid names: {', '.join(_TV_LAYOUT)}"
        )
    if root is None:
        raise ValueError(
            f"data set {key!r} needs the folder holding its files: pass --data-root / root="
        )
    folder = _as_path(root, "root")
    cls_name, files, preset = _TV_LAYOUT[key]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing and key == "torchvision-fashion-mnist":
        if all((folder / f).is_file() for f in _TV_FASHION_LEGACY):
            missing = []
    if not folder.is_dir() or missing:
        what = "folder not found" if not folder.is_dir() else "missing " + ", ".join(missing)
        raise FileNotFoundError(
            f"{key} under {folder}: {what}. torchvision expects, under root: "
            f"{', '.join(files)}. {_tv_download_hint(key, folder)}"
        )

    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        if key == "svhn":
            train = cls(str(folder), split="train", download=False)
            test = cls(str(folder), split="test", download=False)
        else:
            train = cls(str(folder), train=True, download=False)
            test = cls(str(folder), train=False, download=False)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as exc:
        # the files exist, so torchvision's "not found or corrupted" means corrupted
        raise ValueError(
            f"torchvision could not read {key} under {folder} (checksum mismatch or corrupt "
            f"file): {exc}. {_tv_download_hint(key, folder)}"
        ) from exc
    X_train, y_train = _torchvision_arrays(train, key)
    X_test, y_test = _torchvision_arrays(test, key)
    if key == "svhn":
        class_names: tuple[str, ...] = tuple(str(d) for d in range(10))
    else:
        class_names = tuple(str(c) for c in getattr(train, "classes", ()))
    return ImageDataset(
        X_train, y_train, X_test, y_test, name=key, view_preset=preset, class_names=class_names
    )


# ---------------------------------------------------------------- image folder
#: File name endings (lower case) read by :func:`load_image_folder`.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
# PIL modes with a single colour channel (alpha, if any, is dropped)
_SINGLE_CHANNEL_MODES = frozenset(
    {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
)
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(f"image_size must be an int or a (height, width) pair, got {image_size!r}")
    if min(size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return size


def _pil_to_array(img: Any, mode: str, path: Path) -> np.ndarray:
    """A loaded PIL image as a uint8 array of mode ``"L"`` (H, W) or ``"RGB"`` (H, W, 3)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # PIL's convert("L") clips 16-bit values at 255; rescale 0..65535 instead
        wide = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
        gray = ((wide + 128) // 257).astype(np.uint8)
        return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=-1)
    if img.mode == "F":
        raise ValueError(f"{path}: 32-bit float images (PIL mode 'F') are not supported")
    return np.asarray(img.convert(mode), dtype=np.uint8)


def load_image_folder(
    root: PathLike,
    image_size: int | tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    random_state: Any = 0,
    grayscale: bool | None = None,
) -> ImageDataset:
    """Images sorted into one sub-folder per class, split into train and test.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with one sub-folder per class; the sorted folder names give the
        labels 0..K-1 and :attr:`ImageDataset.class_names`. Files directly in
        ``root``, hidden entries and files whose ending is not in
        :data:`IMAGE_EXTENSIONS` (case-insensitive) are ignored.
    image_size : int or (int, int), optional
        Resize every image to this (height, width) (an int: square) with
        bilinear filtering. Without it all images must share one size.
    test_fraction : float, default 0.2
        Share of the images in the test split (rounded up).
    random_state : int, RandomState or None, default 0
        Seed of the split. The split is stratified when every class has at
        least two images and both parts can hold every class.
    grayscale : bool, optional
        True: convert to one channel ("L"); False: to RGB. None: one channel
        when every image is single-channel (modes "1", "L", "LA", "I", "I;16",
        ...), else RGB. Palette ("P") images count as colour. Alpha is
        dropped; 16-bit images are scaled to 8 bits.

    Returns
    -------
    ImageDataset
        uint8 images (N, H, W) or (N, H, W, 3), view preset ``"auto"``.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    ValueError
        If ``root`` is not a folder, holds no class folders, a class folder
        holds no images, an image cannot be read, sizes differ without
        ``image_size``, or there are too few images to split.
    TypeError
        If ``root`` is not a path or ``test_fraction`` is not a number.
    """
    from PIL import Image, ImageOps

    folder = _as_path(root, "root")
    size = _check_image_size(image_size)
    _check_fraction(test_fraction)
    if grayscale not in (None, True, False):
        raise ValueError(f"grayscale must be True, False or None, got {grayscale!r}")
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} is not a directory")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(
            f"{folder} holds no class folders; expected one sub-folder of images per class, "
            "e.g. root/cat/001.png, root/dog/001.png"
        )

    arrays: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[Path] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            p
            for p in class_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise ValueError(
                f"class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        for path in files:
            try:
                with Image.open(path) as img:
                    # honour the camera's orientation tag, as image viewers do
                    img = ImageOps.exif_transpose(img)
                    img.load()
                    single = img.mode in _SINGLE_CHANNEL_MODES
                    mode = "L" if grayscale or (grayscale is None and single) else "RGB"
                    arr = _pil_to_array(img, mode, path)
            except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
                raise ValueError(f"cannot read image {path}: {exc}") from exc
            if size is not None and arr.shape[:2] != size:
                resized = Image.fromarray(arr).resize((size[1], size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(resized, dtype=np.uint8)
            arrays.append(arr)
            labels.append(label)
            sources.append(path)

    if size is None:
        first = arrays[0].shape[:2]
        for arr, path in zip(arrays, sources):
            if arr.shape[:2] != first:
                raise ValueError(
                    f"images differ in size: {sources[0]} is {first[0]}x{first[1]} (HxW) but "
                    f"{path} is {arr.shape[0]}x{arr.shape[1]}; pass image_size= to resize them"
                )
    if grayscale is None and any(a.ndim == 3 for a in arrays):
        # a mixed folder: single-channel images join the colour ones as grey RGB
        arrays = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1) for a in arrays]
    X = np.stack(arrays)
    y = np.asarray(labels, dtype=np.int64)
    X_train, X_test, y_train, y_test = _split(X, y, test_fraction, random_state, str(folder))
    return ImageDataset(
        X_train,
        y_train,
        X_test,
        y_test,
        name=folder.resolve().name or str(folder),
        view_preset="auto",
        class_names=tuple(p.name for p in class_dirs),
    )


# ---------------------------------------------------------------- npz
_NPZ_SPLIT_KEYS = ("X_train", "y_train", "X_test", "y_test")
_NPZ_FLAT_KEYS = ("X", "y")


def _npz_images(X: np.ndarray, source: str) -> np.ndarray:
    """uint8 kept, other integers checked to 0..255, floats as float32 in [0, 1]."""
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{source}: images must have rank 3 (N, H, W) or 4 (N, H, W, C), got shape {X.shape}"
        )
    if np.issubdtype(X.dtype, np.floating):
        out = X.astype(np.float32, copy=False)
        if out.size and not np.isfinite(out).all():
            raise ValueError(f"{source}: images contain NaN or infinite values")
        if out.size and (out.min() < 0.0 or out.max() > 1.0):
            raise ValueError(
                f"{source}: float images must lie in [0, 1], found "
                f"[{out.min():.4g}, {out.max():.4g}]"
            )
        return out
    return _images_uint8(X, source)


def load_npz(path: PathLike, test_fraction: float = 0.2, random_state: Any = 0) -> ImageDataset:
    """Images and labels from a NumPy ``.npz`` archive.

    Parameters
    ----------
    path : str or os.PathLike
        An archive holding either ``X_train``, ``y_train``, ``X_test`` and
        ``y_test`` (used as they are; preferred when both layouts are present)
        or ``X`` and ``y`` (split here). An optional ``class_names`` string
        array fills :attr:`ImageDataset.class_names`. Read with
        ``allow_pickle=False``.
    test_fraction : float, default 0.2
        Test share when splitting ``X``/``y``.
    random_state : int, RandomState or None, default 0
        Seed of that split (stratified when every class has two members).

    Returns
    -------
    ImageDataset
        Images of rank 3 (N, H, W) or 4 (N, H, W, C): uint8 stays uint8,
        other integer images must lie in 0..255 and become uint8, float
        images must lie in [0, 1] and become float32. Labels int64. The name
        is the file name without ``.npz``; view preset ``"auto"``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a readable ``.npz`` archive, lacks the expected
        keys (the message lists those found and those expected), or holds
        images or labels of the wrong rank, dtype, range or length.
    TypeError
        If ``path`` is not a path or ``test_fraction`` is not a number.
    """
    file = _as_path(path, "path")
    if not file.is_file():
        raise FileNotFoundError(f".npz file not found: {file}")
    wanted: tuple[str, ...] | None = None
    try:
        # our own handle: np.load leaks the one it opens when the zip is damaged
        with open(file, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                # np.load also reads .npy files, whatever their name ends in
                raise ValueError("it holds a single array (.npy), not an .npz archive")
            with loaded as archive:
                keys = sorted(archive.files)
                if set(_NPZ_SPLIT_KEYS) <= set(keys):
                    wanted = _NPZ_SPLIT_KEYS
                elif set(_NPZ_FLAT_KEYS) <= set(keys):
                    wanted = _NPZ_FLAT_KEYS
                data = {k: archive[k] for k in wanted or ()}
                names = archive["class_names"] if "class_names" in keys else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # np.load raises several types for damaged archives; the cause goes in the text
        raise ValueError(f"cannot read {file} as an .npz archive: {exc}") from exc
    if wanted is None:
        raise ValueError(
            f"{file}: found keys [{', '.join(keys)}], expected either X and y, or "
            "X_train, y_train, X_test and y_test"
        )

    source = str(file)
    if wanted == _NPZ_FLAT_KEYS:
        X = _npz_images(data["X"], f"{source} X")
        y = _labels_int64(data["y"], f"{source} y")
        if len(X) != len(y):
            raise ValueError(f"{source}: X holds {len(X)} images but y holds {len(y)} labels")
        X_train, X_test, y_train, y_test = _split(X, y, test_fraction, random_state, source)
    else:
        X_train = _npz_images(data["X_train"], f"{source} X_train")
        X_test = _npz_images(data["X_test"], f"{source} X_test")
        y_train = _labels_int64(data["y_train"], f"{source} y_train")
        y_test = _labels_int64(data["y_test"], f"{source} y_test")
        for X_part, y_part, part in ((X_train, y_train, "train"), (X_test, y_test, "test")):
            if len(X_part) != len(y_part):
                raise ValueError(
                    f"{source}: X_{part} holds {len(X_part)} images but y_{part} holds "
                    f"{len(y_part)} labels"
                )
        if X_train.shape[1:] != X_test.shape[1:]:
            raise ValueError(
                f"{source}: X_train images have shape {X_train.shape[1:]} but X_test images "
                f"{X_test.shape[1:]}"
            )
    class_names = () if names is None else tuple(str(n) for n in np.ravel(names))
    stem = file.name[: -len(".npz")] if file.name.lower().endswith(".npz") else file.name
    return ImageDataset(
        X_train, y_train, X_test, y_test, name=stem, view_preset="auto", class_names=class_names
    )


# ---------------------------------------------------------------- registry
def _need_root(name: str, root: PathLike | None) -> PathLike:
    if root is None:
        raise ValueError(
            f"data set {name!r} needs a data location: pass --data-root (command line) "
            "or root= (Python)"
        )
    return root


def _entry_digits(root: PathLike | None = None, **kwargs: Any) -> ImageDataset:
    # bundled with scikit-learn: root is ignored
    return load_digits_dataset(**kwargs)


def _entry_fashion(root: PathLike | None = None, **kwargs: Any) -> ImageDataset:
    return load_fashion_mnist(root, **kwargs)


def _entry_torchvision(name: str) -> Callable[..., ImageDataset]:
    def entry(root: PathLike | None = None) -> ImageDataset:
        return load_torchvision_dataset(name, _need_root(name, root))

    entry.__name__ = f"_entry_{name.replace('-', '_')}"
    entry.__doc__ = f"Load {name!r} with :func:`load_torchvision_dataset` (root required)."
    return entry


def _entry_folder(root: PathLike | None = None, **kwargs: Any) -> ImageDataset:
    return load_image_folder(_need_root("image-folder", root), **kwargs)


def _entry_npz(root: PathLike | None = None, **kwargs: Any) -> ImageDataset:
    return load_npz(_need_root("npz", root), **kwargs)


#: Loader of each data set name, called as ``DATASETS[name](root, **kwargs)``.
#: ``"digits"`` ignores ``root``; ``"fashion-mnist"`` defaults it to
#: :data:`DEFAULT_FASHION_MNIST_ROOT`; the others require it (for ``"npz"``
#: it is the file). Read-only: :func:`load_dataset` is the usual entry point.
DATASETS: Mapping[str, Callable[..., ImageDataset]] = MappingProxyType(
    {
        "digits": _entry_digits,
        "fashion-mnist": _entry_fashion,
        **{name: _entry_torchvision(name) for name in _TV_LAYOUT},
        "image-folder": _entry_folder,
        "npz": _entry_npz,
    }
)
_ALIASES = {"fashionmnist": "fashion-mnist"}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in registry order.

    Returns
    -------
    list of str
    """
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
    ValueError
        Unknown name (the message lists the valid ones), a required ``root``
        not given, or anything the loader raises as ``ValueError``.
    FileNotFoundError
        If the data are not where ``root`` says.
    TypeError
        If ``name`` is not a string, or a keyword is not one the loader takes.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; valid names: {', '.join(available_datasets())}"
        )
    return DATASETS[key](root, **kwargs)


# ---------------------------------------------------------------- pool helpers
def _check_pool_args(y: Any, n: Any, minimum: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {arr.shape}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < minimum:
        raise ValueError(f"n must be at least {minimum}, got {n}")
    if n > len(arr):
        raise ValueError(f"n={n} is larger than y, which holds {len(arr)} samples")
    return arr, n


def subsample_indices(
    y: Any, n: int, random_state: Any = None, stratified: bool = True
) -> np.ndarray:
    """Draw ``n`` distinct indices of ``y``, e.g. to shrink a pool.

    Parameters
    ----------
    y : array-like of shape (N,)
        Labels (any values that :func:`numpy.unique` can sort).
    n : int
        How many indices, 0 <= n <= N; ``n == N`` returns every index.
    random_state : int, RandomState or None
        Seed (:func:`sklearn.utils.check_random_state`); an int is reproducible.
    stratified : bool, default True
        Keep the class proportions: each class gets ``n * count / N`` rounded
        down, and the leftover indices go to the classes with the largest
        remainders (ties broken at random). Unlike scikit-learn's splitters
        this also works for ``n`` below the number of classes and for classes
        with a single member. False draws uniformly.

    Returns
    -------
    ndarray of int64, shape (n,)
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or ``n`` is negative or larger than ``len(y)``.
    TypeError
        If ``n`` is not an integer.
    """
    from sklearn.utils import check_random_state

    arr, n = _check_pool_args(y, n, minimum=0)
    rng = check_random_state(random_state)
    total = len(arr)
    if n == total:
        return np.arange(total, dtype=np.int64)
    if n == 0 or not stratified:
        return np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    # exact integer quotas (largest-remainder method): no float rounding drift
    quota = n * counts // total
    remainder = n * counts % total
    extra = n - int(quota.sum())
    if extra:
        # random tie-breaking: shuffle first, then a stable sort by remainder
        order = rng.permutation(len(counts))
        order = order[np.argsort(-remainder[order], kind="stable")]
        # a positive remainder means quota < count, so +1 never exceeds a class
        quota[order[:extra]] += 1
    picked = [
        rng.choice(np.flatnonzero(inverse == k), size=int(q), replace=False)
        for k, q in enumerate(quota)
        if q
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def initial_labeled_indices(
    y: Any, n: int, random_state: Any = None, stratified: bool = True
) -> np.ndarray:
    """Draw ``n`` distinct indices for the first labelled set of active learning.

    Parameters
    ----------
    y : array-like of shape (N,)
        Labels of the pool (the oracle's, used only to balance the draw).
    n : int
        Size of the set, 1 <= n <= N.
    random_state : int, RandomState or None
        Seed (:func:`sklearn.utils.check_random_state`); an int is reproducible.
    stratified : bool, default True
        As balanced over the K classes as possible: each class gets
        ``n // K`` indices and ``n % K`` classes, chosen at random, one more.
        A class with too few samples gives all it has and the shortfall is
        drawn at random from the remaining samples. False draws uniformly.

    Returns
    -------
    ndarray of int64, shape (n,)
        Sorted indices into ``y``.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, ``n < 1`` or ``n > len(y)``.
    TypeError
        If ``n`` is not an integer.
    """
    from sklearn.utils import check_random_state

    arr, n = _check_pool_args(y, n, minimum=1)
    rng = check_random_state(random_state)
    total = len(arr)
    if not stratified:
        return np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    n_classes = len(counts)
    want = np.full(n_classes, n // n_classes, dtype=np.int64)
    want[rng.choice(n_classes, size=n % n_classes, replace=False)] += 1
    take = np.minimum(want, counts)
    chosen = np.zeros(total, dtype=bool)
    for k in range(n_classes):
        if take[k]:
            members = np.flatnonzero(inverse == k)
            chosen[rng.choice(members, size=int(take[k]), replace=False)] = True
    shortfall = n - int(take.sum())
    if shortfall:
        # small classes could not fill their share: top up from everything left
        rest = np.flatnonzero(~chosen)
        chosen[rng.choice(rest, size=shortfall, replace=False)] = True
    return np.flatnonzero(chosen).astype(np.int64)

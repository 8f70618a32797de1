"""Data sets as plain arrays, as ``sklearn.datasets`` gives them.

Every loader returns an :class:`ImageDataset`: images ``(N, H, W)`` for one
channel or ``(N, H, W, C)`` for colour, ``uint8`` where the source is
``uint8`` (Fashion-MNIST's training images take 47 MB so, four times that as
``float32``) and ``float32`` in [0, 1] otherwise; labels ``int64``. Nothing is
downloaded: a missing file raises :class:`DataNotFoundError`, whose message
says where the files are expected and how to get them.
:func:`load_dataset` picks a loader by name (:data:`DATASETS`);
:func:`subsample_indices` and :func:`initial_labeled_indices` draw a pool and
a first labelled set.
"""

from __future__ import annotations

import functools
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
import torchvision.datasets as tvd
from PIL import Image, ImageMode, ImageOps
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, resample

from ._validation import check_image_values, check_labels
from .exceptions import DataNotFoundError, MoBYALError

__all__ = [
    "ImageDataset",
    "load_digits_dataset",
    "DEFAULT_FASHION_MNIST_ROOT",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "TORCHVISION_DATASETS",
    "load_torchvision_dataset",
    "IMAGE_EXTENSIONS",
    "single_channel_mode",
    "load_image_folder",
    "read_image",
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
        raise MoBYALError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    return float(test_fraction)


def _split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, random_state: Any, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/test split, stratified whenever scikit-learn can stratify."""

    test_fraction = _check_fraction(test_fraction)
    n = len(y)
    # the same rounding as train_test_split, so the checks below match it
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    if n_train < 1 or n_test < 1:
        raise MoBYALError(
            f"{source}: {n} image(s) cannot be split into a non-empty training and test "
            f"set with test_fraction={test_fraction}"
        )
    counts = np.unique(y, return_counts=True)[1]
    # stratifying needs two members per class and room for every class in both
    # parts; otherwise train_test_split raises, so fall back to a plain shuffle
    stratify = y if counts.min() >= 2 and min(n_test, n_train) >= len(counts) else None
    return train_test_split(X, y, test_size=n_test, random_state=random_state, stratify=stratify)


def _labels_int64(y: Any, source: str) -> np.ndarray:
    """Labels as a 1-D int64 array; integral floats are accepted, other values not."""
    arr = check_labels(y, len(y), min_classes=0, name=f"{source}: labels")
    if arr.dtype.kind not in "biuf" or not np.array_equal(arr, np.round(arr)):
        raise MoBYALError(f"{source}: labels must be whole numbers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise MoBYALError(f"{source}: labels must be >= 0, found {int(out.min())}")
    return out


def _images_and_labels(
    X: Any, y: Any, source: str, part: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Checked images and labels of one part (``X{part}``, ``y{part}``) of equal length."""
    X, y = _images(X, f"{source} X{part}"), _labels_int64(y, f"{source} y{part}")
    if len(X) != len(y):
        raise MoBYALError(
            f"{source}: X{part} holds {len(X)} images but y{part} holds {len(y)} labels"
        )
    return X, y


def _images(X: Any, source: str) -> np.ndarray:
    """Images of rank 3 or 4: uint8 kept, integers 0..255 as uint8, floats as float32."""
    arr = np.asarray(X)
    if arr.ndim not in (3, 4):
        raise MoBYALError(
            f"{source}: images must have rank 3 (N, H, W) or 4 (N, H, W, C), got shape {arr.shape}"
        )
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise MoBYALError(
                f"{source}: integer images must hold values in 0..255, "
                f"found [{arr.min()}, {arr.max()}]"
            )
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype != np.uint8:
        raise MoBYALError(f"{source}: expected uint8 or float images, got dtype {arr.dtype}")
    return check_image_values(arr, name=source)


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
        "To get the files: on Debian/Ubuntu run 'apt-get install dataset-fashion-mnist' (it "
        f"installs them in {DEFAULT_FASHION_MNIST_ROOT}), or download the four IDX files "
        f"({', '.join(_FASHION_FILES)}, gzipped or not) from the Fashion-MNIST project "
        f"(github.com/zalandoresearch/fashion-mnist) into {root} and pass that folder as "
        "--data-root / root=."
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """One uint8 IDX file (gzipped when its name ends in ``.gz``), its header checked."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        # a truncated .gz ends early (EOFError); a corrupt one fails to inflate
        raise MoBYALError(f"{path}: not a valid gzip file ({exc})") from exc
    ndim, header = magic & 0xFF, 4 + 4 * (magic & 0xFF)
    if len(raw) < header:
        raise MoBYALError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than its header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise MoBYALError(
            f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} (an IDX file of "
            f"uint8 {'images' if magic == _IDX_IMAGES_MAGIC else 'labels'})"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected, payload = math.prod(dims), len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "corrupt (trailing bytes)"
        raise MoBYALError(
            f"{path}: {what} IDX file: the header declares shape {dims} ({expected} bytes of "
            f"data) but {payload} bytes follow"
        )
    # a copy: frombuffer over bytes is read-only, and users may edit their arrays
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def load_fashion_mnist(root: PathLike | None = None) -> ImageDataset:
    """Fashion-MNIST from its four IDX files: 60,000 + 10,000 uint8 28x28 images.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder of the four IDX files, each plain or gzipped (``.gz``; the
        plain file wins when both exist); default
        :data:`DEFAULT_FASHION_MNIST_ROOT`.

    Returns
    -------
    ImageDataset
        uint8 images (N, 28, 28), int64 labels 0-9, the ``"fashion_mnist"``
        view preset and :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    DataNotFoundError
        If the folder or a file is missing; the message says how to get them.
    MoBYALError
        If a file is corrupt or truncated, counts or image sizes disagree, or
        a label lies outside 0-9.
    TypeError
        If ``root`` is not a path.
    """
    folder = _as_path(DEFAULT_FASHION_MNIST_ROOT if root is None else root, "root")
    if not folder.is_dir():
        raise DataNotFoundError(
            f"Fashion-MNIST folder not found: {folder}. {_fashion_help(folder)}"
        )
    paths = {
        b: next((p for p in (folder / b, folder / f"{b}.gz") if p.is_file()), None)
        for b in _FASHION_FILES
    }
    missing = [f"{b}[.gz]" for b, p in paths.items() if p is None]
    if missing:
        raise DataNotFoundError(
            f"Fashion-MNIST files missing in {folder}: {', '.join(missing)}. "
            f"{_fashion_help(folder)}"
        )
    parts = []
    for prefix in ("train", "t10k"):
        images, labels = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        X, y = _read_idx(images, _IDX_IMAGES_MAGIC), _read_idx(labels, _IDX_LABELS_MAGIC)
        if len(X) != len(y):
            raise MoBYALError(f"{labels} holds {len(y)} labels but {images} holds {len(X)} images")
        if y.size and y.max() > 9:
            raise MoBYALError(f"{labels}: labels must lie in 0..9, found {int(y.max())}")
        parts += [X, y.astype(np.int64)]
    if parts[0].shape[1:] != parts[2].shape[1:]:
        raise MoBYALError(
            f"Fashion-MNIST in {folder}: training images are {parts[0].shape[1:]} but test "
            f"images are {parts[2].shape[1:]}"
        )
    return ImageDataset(
        *parts, name="fashion-mnist", view_preset="fashion_mnist", class_names=FASHION_MNIST_CLASSES
    )


# ---------------------------------------------------------------- torchvision
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


# ---------------------------------------------------------------- image folder
#: File name endings (lower case) read by :func:`load_image_folder`.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    pair = (image_size, image_size) if not isinstance(image_size, (tuple, list)) else image_size
    if len(pair) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair
    ):
        raise MoBYALError(
            f"image_size must be an int or a (height, width) pair, got {image_size!r}"
        )
    if min(pair) < 1:
        raise MoBYALError(f"image_size must be positive, got {image_size!r}")
    return int(pair[0]), int(pair[1])


def read_image(
    path: PathLike, mode: str = "RGB", size: int | tuple[int, int] | None = None
) -> np.ndarray:
    """Read one image file as a ``uint8`` array, as an image viewer shows it.

    The camera's EXIF orientation is applied, the image is converted to
    ``mode`` (alpha is dropped) and, when ``size`` is given, resized with
    bilinear filtering.

    Parameters
    ----------
    path : str or os.PathLike
        An image file that PIL can open.
    mode : {"RGB", "L"}, default "RGB"
        Colour (H, W, 3) or one channel (H, W).
    size : int or (int, int), optional
        Output (height, width); an int gives a square. None keeps the size.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3) for "RGB" or (H, W) for "L"

    Raises
    ------
    MoBYALError
        If the file cannot be opened or decoded, or ``mode`` or ``size`` is
        invalid.
    """
    if mode not in ("RGB", "L"):
        raise MoBYALError(f"mode must be 'RGB' or 'L', got {mode!r}")
    target = _check_image_size(size)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert(mode)
            if target is not None and img.size != (target[1], target[0]):
                img = img.resize((target[1], target[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MoBYALError(f"cannot read image {path}: {exc}") from exc


def single_channel_mode(mode: str) -> bool:
    """Whether images of PIL ``mode`` have one colour band (alpha aside, palette is colour)."""
    return mode != "P" and len(set(ImageMode.getmode(mode).bands) - {"A", "a"}) == 1


def _is_single_channel(path: str) -> bool:
    # the header is enough: no pixel is decoded
    try:
        with Image.open(path) as img:
            return single_channel_mode(img.mode)
    except (OSError, SyntaxError, ValueError) as exc:
        raise MoBYALError(f"cannot read image {path}: {exc}") from exc


class _VisibleImageFolder(tvd.ImageFolder):
    # hidden folders (.git, .ipynb_checkpoints) are not classes
    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        classes = sorted(
            e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")
        )
        if not classes:
            raise MoBYALError(
                f"{directory} holds no class folders; expected one sub-folder of images "
                "per class, e.g. root/cat/001.png, root/dog/001.png"
            )
        return classes, {name: i for i, name in enumerate(classes)}


def _image_folder_samples(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, label) pairs and class names of a class-per-folder tree."""

    def is_image(path: str) -> bool:
        name = os.path.basename(path)
        return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS

    try:
        tree = _VisibleImageFolder(str(folder), loader=str, is_valid_file=is_image)
    except FileNotFoundError as exc:  # a class folder without images
        raise MoBYALError(
            f"a class folder in {folder} holds no images ({exc}); image files end in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
        ) from exc
    return tree.samples, tree.classes


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
        Folder with one sub-folder per class (read with
        :class:`torchvision.datasets.ImageFolder`); the sorted folder names
        give the labels 0..K-1 and :attr:`ImageDataset.class_names`. Files
        directly in ``root``, hidden entries and files whose ending is not in
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
        True: one channel ("L"); False: RGB. None: one channel when every
        image has one colour band, else RGB (palette images count as colour).

    Returns
    -------
    ImageDataset
        uint8 images (N, H, W) or (N, H, W, 3), each read with
        :func:`read_image`; view preset ``"auto"``.

    Raises
    ------
    DataNotFoundError
        If ``root`` does not exist.
    MoBYALError
        If ``root`` is not a folder, holds no class folders, a class folder
        holds no images, an image cannot be read, sizes differ without
        ``image_size``, or there are too few images to split.
    TypeError
        If ``root`` is not a path or ``test_fraction`` is not a number.
    """
    folder = _as_path(root, "root")
    size = _check_image_size(image_size)
    _check_fraction(test_fraction)
    if grayscale not in (None, True, False):
        raise MoBYALError(f"grayscale must be True, False or None, got {grayscale!r}")
    if not folder.exists():
        raise DataNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise MoBYALError(f"image folder {folder} is not a directory")
    samples, classes = _image_folder_samples(folder)
    if grayscale is None:
        grayscale = all(_is_single_channel(path) for path, _ in samples)
    mode = "L" if grayscale else "RGB"
    # decoded one at a time into one array: the images are held once, not twice
    first = read_image(samples[0][0], mode, size)
    X = np.empty((len(samples), *first.shape), dtype=np.uint8)
    for i, (path, _) in enumerate(samples):
        image = first if i == 0 else read_image(path, mode, size)
        if image.shape != first.shape:
            raise MoBYALError(
                f"images differ in size: {samples[0][0]} is {first.shape[0]}x{first.shape[1]} "
                f"(HxW) but {path} is {image.shape[0]}x{image.shape[1]}; pass image_size= to "
                "resize them"
            )
        X[i] = image
    y = np.array([label for _, label in samples], dtype=np.int64)
    X_train, X_test, y_train, y_test = _split(X, y, test_fraction, random_state, str(folder))
    return ImageDataset(
        X_train,
        y_train,
        X_test,
        y_test,
        name=folder.resolve().name or str(folder),
        view_preset="auto",
        class_names=tuple(classes),
    )


# ---------------------------------------------------------------- npz
# the explicit split wins when both layouts are present
_NPZ_LAYOUTS = (("X_train", "y_train", "X_test", "y_test"), ("X", "y"))


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
        Images (N, H, W) or (N, H, W, C): uint8 kept, other integers in
        0..255 as uint8, floats in [0, 1] as float32; int64 labels; the file
        name without ``.npz``; view preset ``"auto"``.

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    MoBYALError
        If the file is not a readable ``.npz`` archive, lacks the expected
        keys (the message lists both), or holds images or labels of the
        wrong rank, dtype, range or length.
    TypeError
        If ``path`` is not a path or ``test_fraction`` is not a number.
    """
    file = _as_path(path, "path")
    if not file.is_file():
        raise DataNotFoundError(f".npz file not found: {file}")
    try:
        # our own handle: np.load leaks the one it opens when the zip is damaged
        with open(file, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                # np.load also reads .npy files, whatever their name ends in
                raise MoBYALError("it holds a single array (.npy), not an .npz archive")
            with loaded as archive:
                keys = sorted(archive.files)
                layout = next((k for k in _NPZ_LAYOUTS if set(k) <= set(keys)), ())
                data = {k: archive[k] for k in (*layout, "class_names") if k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # np.load raises several types for damaged archives; the cause goes in the text
        raise MoBYALError(f"cannot read {file} as an .npz archive: {exc}") from exc
    if not layout:
        raise MoBYALError(
            f"{file}: found keys [{', '.join(keys)}], expected either X and y, or "
            "X_train, y_train, X_test and y_test"
        )
    source = str(file)
    if layout == ("X", "y"):
        X, y = _images_and_labels(data["X"], data["y"], source)
        parts = _split(X, y, test_fraction, random_state, source)
        parts = [parts[0], parts[2], parts[1], parts[3]]
    else:
        parts = [
            *_images_and_labels(data["X_train"], data["y_train"], source, "_train"),
            *_images_and_labels(data["X_test"], data["y_test"], source, "_test"),
        ]
        if parts[0].shape[1:] != parts[2].shape[1:]:
            raise MoBYALError(
                f"{source}: X_train images have shape {parts[0].shape[1:]} but X_test images "
                f"{parts[2].shape[1:]}"
            )
    names = tuple(str(n) for n in np.ravel(data.get("class_names", ())))
    stem = file.name[: -len(".npz")] if file.name.lower().endswith(".npz") else file.name
    return ImageDataset(*parts, name=stem, view_preset="auto", class_names=names)


# ---------------------------------------------------------------- registry
def _need_root(name: str, root: PathLike | None) -> PathLike:
    if root is None:
        raise MoBYALError(
            f"data set {name!r} needs a data location: pass --data-root (command line) "
            "or root= (Python)"
        )
    return root


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
            for name in _TV_LAYOUT
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


# ---------------------------------------------------------------- pool helpers
def _check_pool_args(y: Any, n: Any, minimum: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise MoBYALError(f"y must be 1-D, got shape {arr.shape}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < minimum:
        raise MoBYALError(f"n must be at least {minimum}, got {n}")
    if n > len(arr):
        raise MoBYALError(f"n={n} is larger than y, which holds {len(arr)} samples")
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
        Keep the class proportions with :func:`sklearn.utils.resample`: each
        class gets ``n * count / N`` rounded down, and the leftover indices go
        to the classes with the largest remainders (ties broken at random).
        This works for ``n`` below the number of classes and for classes with
        a single member. False draws uniformly.

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
    arr, n = _check_pool_args(y, n, minimum=0)
    rng = check_random_state(random_state)
    total = len(arr)
    if n == total:
        return np.arange(total, dtype=np.int64)
    if n == 0 or not stratified:
        return np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    picked = resample(np.arange(total), replace=False, n_samples=n, stratify=arr, random_state=rng)
    return np.sort(picked).astype(np.int64)


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

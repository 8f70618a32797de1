"""Images sorted into one sub-folder per class, as an :class:`~moby_al_plugin.ImageDataset`.

Each file is read with :func:`moby_al_plugin.data.image_reading.read_image`, the reader
the labelling application uses too (16-bit, float, transparent, CMYK, animated and
EXIF-oriented images mapped to 8 bits by the rules of
:mod:`moby_al_plugin.data.image_reading`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torchvision.datasets as tvd
from PIL import Image

from ...exceptions import DataNotFoundError, MoBYALError
from ..image_dataset import ImageDataset, PathLike, _as_path, _check_fraction, _split
from ..image_reading import (
    IMAGE_EXTENSIONS,
    READ_ERRORS,
    _check_image_size,
    read_image,
    single_channel_mode,
)

__all__ = ["load_image_folder"]


def _is_single_channel(path: str) -> bool:
    # the header is enough: no pixel is decoded (read_image decodes them)
    try:
        with Image.open(path) as img:
            return single_channel_mode(img.mode)
    except READ_ERRORS as exc:
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

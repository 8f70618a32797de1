"""Reading one image file into a ``uint8`` array, as an image viewer shows it.

Shared by the image-folder loader (:mod:`moby_al_plugin.loaders.image_folder`)
and the labelling application, so that both see the same pixels.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from PIL import Image, ImageMode, ImageOps

from .exceptions import MoBYALError
from .image_dataset import PathLike

__all__ = ["IMAGE_EXTENSIONS", "read_image", "single_channel_mode"]

#: File name endings (lower case) read by
#: :func:`~moby_al_plugin.loaders.load_image_folder` and the labelling application.
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

"""Reading one image file into a ``uint8`` array, as an image viewer shows it.

Shared by the image-folder loader (:mod:`moby_al_plugin.data.loaders.image_folder`)
and the labelling application (:mod:`moby_al_plugin.labelling.folder`), so
that both see the same pixels.

How each kind of image becomes 8-bit (:func:`read_image`):

- 8-bit images (``L``, ``RGB``) are kept as they are; bilevel (``1``) gives
  0 and 255; palette images (``P``), ``CMYK`` (PIL's conversion,
  R = (255 - C) (255 - K) / 255; an embedded ICC profile is not applied) and
  the other colour modes are converted to RGB.
- Integer images with more than 8 bits are scaled by the full range of their
  declared bit depth: ``I;16``, ``I;16B`` (16-bit PNG and TIFF) map 0..65535
  to 0..255, ``v8 = floor(v * 255 / 65535 + 1/2)``; a 32-bit ``I`` image
  whose file declares at most 16 bits (a TIFF's BitsPerSample, a 16-bit PNG
  that an older Pillow opens as ``I``) maps that depth's range (signed when
  the TIFF says so). The same sensor value gives the same grey in every image
  of a folder, so differences in brightness between images, which may be what
  tells the classes apart, survive; a dark 12-bit image stays dark.
- Images with no nominal white, float (``F``) and 32-bit integer (``I``
  without a smaller declared depth), are scaled by their own finite minimum
  and maximum: ``v8 = floor((v - min) * 255 / (max - min) + 1/2)``. A
  constant image (max = min) is all 0; NaN and -inf give 0, +inf gives 255.
  The full int32 or float range would squash any real data into one grey.
- Transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``,
  ``P``, ``L`` or ``RGB`` with a transparent colour) is composited on white,
  ``c8 = floor((c * a + 255 * (255 - a)) / 255 + 1/2)``: the background of
  pages and of most viewers, where dark drawings, text and cut-outs on a
  transparent background stay visible. The colour under fully transparent
  pixels is arbitrary (often black) and is never shown.
- The EXIF orientation is applied; an animated image (GIF, WebP, PNG) gives
  its first frame.

Grey images stay one channel until the caller's ``mode`` asks for RGB (three
equal channels); colour images become grey by PIL's ITU-R 601-2 luma.
"""

from __future__ import annotations

import numbers
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageMode

from ..exceptions import MoBYALError

if TYPE_CHECKING:  # annotations only: image_dataset imports scikit-learn, slow to load
    from .image_dataset import PathLike

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_DECODED_PIXELS",
    "READ_ERRORS",
    "ImageTooLargeError",
    "describe_image",
    "list_image_files",
    "read_image",
    "single_channel_mode",
]

#: File name endings (lower case) read by
#: :func:`~moby_al_plugin.data.loaders.load_image_folder` and the labelling application.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})

#: The most pixels decoded from one file: a JPEG declaring more is decoded at a
#: reduced scale (1/2 to 1/8, the JPEG decoder's own), any other file is refused.
#: A few hundred megabytes at most, whatever the file declares (a 243 KB PNG may
#: declare 8,000 x 8,000 pixels, 256 MB once decoded).
MAX_DECODED_PIXELS = 40_000_000
# rows composited on white at a time: the uint16 arithmetic of one block stays small
_COMPOSITE_ROWS = 512


class ImageTooLargeError(ValueError):
    """A file declares more pixels than :data:`MAX_DECODED_PIXELS` and cannot be reduced."""


#: What PIL raises for a file it cannot open or decode (truncated, not an image, too big).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,  # ImageTooLargeError among them
    Image.DecompressionBombError,
)

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the PIL operation that shows the image upright
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TIFF_BITS_PER_SAMPLE = 258
_TIFF_SAMPLE_FORMAT = 339  # 1 unsigned integer, 2 signed integer, 3 float


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


def _declared_range(img: Image.Image) -> tuple[int, int] | None:
    """The nominal (black, white) of a mode-``I`` image, if its file declares one."""
    if img.format == "PNG":  # older Pillow versions open 16-bit grey PNG as "I"
        return 0, 65535
    if img.format == "TIFF":
        tags = getattr(img, "tag_v2", {})
        bits = tags.get(_TIFF_BITS_PER_SAMPLE)
        bits = bits[0] if isinstance(bits, (tuple, list)) and bits else bits
        sample_format = tags.get(_TIFF_SAMPLE_FORMAT, 1)
        if isinstance(sample_format, (tuple, list)):
            sample_format = sample_format[0] if sample_format else 1
        if isinstance(bits, numbers.Integral) and 8 < bits <= 16:
            if sample_format == 2:
                return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            return 0, (1 << bits) - 1
    return None


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` from ``low``..``high`` to 0..255, rounded half up; a constant image is 0."""
    values = np.asarray(values, dtype=np.float64)
    if not high > low:
        return np.zeros(values.shape, np.uint8)
    scaled = (values - low) * (255.0 / (high - low))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def _on_white(img: Image.Image, grey: bool) -> Image.Image:
    """An image with alpha or a transparent colour composited on white, "L" or "RGB"."""
    with_alpha = np.asarray(img.convert("LA" if img.mode in ("LA", "La") else "RGBA"))
    shown = np.empty(with_alpha.shape[:2] + (with_alpha.shape[2] - 1,), np.uint8)
    # block by block in uint16 (c * a + 255 * (255 - a) + 127 <= 65,152): a large image
    # never holds a wide integer copy of itself
    for top in range(0, with_alpha.shape[0], _COMPOSITE_ROWS):
        block = with_alpha[top : top + _COMPOSITE_ROWS].astype(np.uint16)
        channels, alpha = block[..., :-1], block[..., -1:]
        shown[top : top + _COMPOSITE_ROWS] = (channels * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(shown[..., 0], "L") if grey else Image.fromarray(shown, "RGB")


def _eight_bit(img: Image.Image) -> Image.Image:
    """A decoded image as the "L" or "RGB" image shown, by the rules of the module docstring."""
    mode = img.mode
    transparent = "transparency" in img.info
    if mode in ("L", "RGB") and not transparent:
        return img
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I;16"):
        return Image.fromarray(_scale(np.asarray(img), 0, 65535), "L")
    if mode in ("I", "F"):
        values = np.asarray(img)
        declared = _declared_range(img) if mode == "I" else None
        if declared is None:
            finite = values[np.isfinite(values)]
            declared = (finite.min(), finite.max()) if finite.size else (0, 0)
        return Image.fromarray(_scale(values, *declared), "L")
    if mode in ("LA", "La") or (mode == "L" and transparent):
        return _on_white(img, grey=True)
    if mode in ("RGBA", "RGBa", "PA") or transparent:  # or P, RGB with a transparent colour
        return _on_white(img, grey=False)
    return img.convert("RGB")  # P, CMYK, YCbCr, HSV, RGBX, ...


def _bound_pixels(img: Image.Image) -> None:
    """Keep the decoding of ``img`` (opened, not loaded) under :data:`MAX_DECODED_PIXELS`."""
    width, height = img.size
    if width * height <= MAX_DECODED_PIXELS:
        return
    if img.format == "JPEG":
        scale = 2
        while scale < 8 and (width // scale) * (height // scale) > MAX_DECODED_PIXELS:
            scale *= 2
        img.draft(img.mode, (width // scale, height // scale))  # decoded at 1/scale
        if img.size[0] * img.size[1] <= MAX_DECODED_PIXELS:
            return
    raise ImageTooLargeError(
        f"image too large: {width} x {height} pixels declared, more than the "
        f"{MAX_DECODED_PIXELS:,} decoded from one file"
    )


@contextmanager
def _opened(path: PathLike) -> Iterator[tuple[Image.Image, str]]:
    """The first frame of a file, upright, as the 8-bit "L" or "RGB" image shown, and its mode.

    The image is valid inside the ``with`` block only. PIL's errors
    (:data:`READ_ERRORS`) are raised for a file that cannot be decoded whole.
    """
    with Image.open(path) as img:  # the header only, so far
        _bound_pixels(img)
        img.load()  # every pixel: a truncated file fails here
        shown = _eight_bit(img)
        method = _UPRIGHT.get(img.getexif().get(_ORIENTATION_TAG))
        yield (shown if method is None else shown.transpose(method)), img.mode


def read_image(
    path: PathLike, mode: str = "RGB", size: int | tuple[int, int] | None = None
) -> np.ndarray:
    """Read one image file as a ``uint8`` array, as an image viewer shows it.

    The first frame is decoded, mapped to 8 bits by its real range (16-bit by
    0..65535, float by its own min-max; see the rules in
    :mod:`moby_al_plugin.data.image_reading`), transparency composited on white,
    the camera's EXIF orientation applied, the image converted to ``mode``
    and, when ``size`` is given, resized with bilinear filtering.

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
        If the file cannot be opened or decoded (the message names it), or
        ``mode`` or ``size`` is invalid.
    """
    if mode not in ("RGB", "L"):
        raise MoBYALError(f"mode must be 'RGB' or 'L', got {mode!r}")
    target = _check_image_size(size)
    try:
        with _opened(path) as (shown, _):
            img = shown.convert(mode)  # a copy, valid after the file is closed
            if target is not None and img.size != (target[1], target[0]):
                img = img.resize((target[1], target[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except READ_ERRORS as exc:
        raise MoBYALError(f"cannot read image {path}: {exc}") from exc


def describe_image(path: PathLike) -> dict[str, Any]:
    """``width`` and ``height`` as shown (EXIF orientation applied) and PIL's ``mode``.

    Decodes and maps the file as :func:`read_image` does, so that a file
    described here also reads there. Raises PIL's errors
    (:data:`READ_ERRORS`), not :class:`MoBYALError`.
    """
    with _opened(path) as (shown, mode):
        width, height = shown.size
    return {"width": width, "height": height, "mode": mode}


def single_channel_mode(mode: str) -> bool:
    """Whether images of PIL ``mode`` have one colour band (alpha aside, palette is colour)."""
    return not mode.startswith("P") and len(set(ImageMode.getmode(mode).bands) - {"A", "a"}) == 1


def list_image_files(
    root: str | os.PathLike,
) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """The image files under ``root``, recursively, in sorted order.

    Hidden files and folders are left out, and so are files whose ending is
    not one of :data:`~moby_al_plugin.data.image_reading.IMAGE_EXTENSIONS`. Refused
    without being opened: links that lead outside ``root`` (a pool must not
    read a system file through a link), links that loop or lead nowhere,
    pipes, devices and sockets (a pipe would block the first read), and names
    that are not valid UTF-8 (no database or page could name them).

    Returns
    -------
    files : list of Path
        The image files, in the order of a sorted walk.
    ignored : list of str
        Files that are not images, relative to ``root``.
    refused : list of (str, str)
        The refused files, relative to ``root`` (bytes that are not UTF-8
        written as ``\\xNN``), with the reason.
    """
    folder = Path(root)
    real_root = folder.resolve()
    files: list[Path] = []
    ignored: list[str] = []
    refused: list[tuple[str, str]] = []
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(directory) / name
            raw = path.relative_to(folder).as_posix()
            relative = printable_name(raw)
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.append(relative)
                continue
            reason = (
                "a file name that is not valid UTF-8"
                if relative != raw
                else _refusal(path, real_root)
            )
            if reason is None:
                files.append(path)
            else:
                refused.append((relative, reason))
    return files, ignored, refused


def printable_name(name: str) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 become ``\\xNN`` escapes.

    ``os.walk`` hands such bytes over as lone surrogates, which neither a
    terminal nor SQLite can take.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _refusal(path: Path, real_root: Path) -> str | None:
    """Why an image-named file is not read (None: it is), without ever opening it."""
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError) as exc:  # a link loop, a dangling link, no permission
        return f"a link that cannot be followed or a file that cannot be read ({exc})"
    if not target.is_relative_to(real_root):
        return "a link to a file outside the images folder"
    if not stat.S_ISREG(mode):
        # a pipe would block the first read; devices and sockets are not images
        return "not a regular file (a pipe, device, socket or folder)"
    return None

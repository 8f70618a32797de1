"""Fashion-MNIST read from its four IDX files (the IDX format reader lives here).

The default folder, :data:`DEFAULT_FASHION_MNIST_ROOT`, is read when
:func:`load_fashion_mnist` is called, from this module.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ...exceptions import DataNotFoundError, MoBYALError
from ..image_dataset import ImageDataset, PathLike, _as_path

__all__ = ["DEFAULT_FASHION_MNIST_ROOT", "FASHION_MNIST_CLASSES", "load_fashion_mnist"]

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

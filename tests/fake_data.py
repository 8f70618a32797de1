"""Small data files written in ``tmp_path`` for the loader tests: IDX, PNG folders.

Everything the loaders read is made here, offline and tiny.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "FASHION_FILES",
    "idx_bytes",
    "write_idx",
    "fake_fashion",
    "save_png",
    "image_folder",
]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, big-endian uint32 dims, then the uint8 data."""
    dims = np.asarray(arr.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray, magic: int) -> Path:
    data = idx_bytes(arr, magic)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def fake_fashion(folder: Path, gz: bool, n_train: int = 20, n_test: int = 10, hw=(4, 5)):
    """Four small IDX files; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for base, arr in arrays.items():
        magic = IMAGES_MAGIC if "images" in base else LABELS_MAGIC
        write_idx(folder / (base + (".gz" if gz else "")), arr, magic)
    return arrays


def save_png(path: Path, value: int, size=(6, 5), mode: str = "L") -> None:
    """A constant image of ``size`` (H, W); RGB gets (value, 255 - value, 7)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    if mode == "L":
        arr = np.full((h, w), value, dtype=np.uint8)
    else:
        arr = np.empty((h, w, 3), dtype=np.uint8)
        arr[...] = (value, 255 - value, 7)
    Image.fromarray(arr, mode=mode).save(path)


def image_folder(root: Path, mode: str = "L", per_class: int = 4, size=(6, 5)) -> Path:
    """Two classes 'cat' and 'dog'; pixel value 10 * i (+100 for dogs) identifies each image."""
    for label, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            save_png(root / name / f"{i}.png", 100 * label + 10 * i, size=size, mode=mode)
    return root

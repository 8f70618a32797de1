"""Pools read lazily from disk: a numpy memmap or a folder of image files.

A pool of a million images does not fit in memory as float32 (a million
3x32x32 images are 12 GB), so the estimators and the query strategies also
accept a pool that is read on demand:

* a :class:`numpy.memmap` (for example ``np.load("pool.npy", mmap_mode="r")``,
  or :func:`open_memmap_pool` for a raw file) of ``uint8`` images, or float
  images in [0, 1], of shape (N, H, W), (N, C, H, W) or (N, H, W, C);
* an :class:`ImagePool`: the image files under a folder, decoded by
  :func:`moby_al_plugin.data.image_reading.read_image` and resized, a
  :class:`torch.utils.data.Dataset` read by ``DataLoader`` workers.

Both are indexed like arrays (``X_pool[idx]`` gives the images as a numpy
array), so modAL's loop keeps working. Inside the package a lazy pool is
wrapped by :func:`check_pool` in :class:`LazyImages`, which reads rows as the
checked float32 (N, C, H, W) images the networks take, one chunk at a time:
fitting, ``transform`` and ``predict_proba`` never hold the whole pool.
"""

from __future__ import annotations

import hashlib
import numbers
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .._validation import check_image_values, check_images, check_integer
from ..exceptions import DataNotFoundError, MoBYALError
from .image_reading import (
    IMAGE_EXTENSIONS,
    READ_ERRORS,
    _check_image_size,
    list_image_files,
    read_image,
    single_channel_mode,
)

__all__ = [
    "CHUNK_SIZE",
    "STATISTICS_SAMPLE",
    "ImagePool",
    "LazyImages",
    "check_pool",
    "images_fingerprint",
    "is_image_pool_on_disk",
    "iter_chunks",
    "open_memmap_pool",
]

#: Images read at a time when a lazy pool is swept (features, statistics).
CHUNK_SIZE = 1024
#: A lazy pool larger than this gives its per-channel input statistics from
#: this many evenly spaced images: the statistics only standardise the
#: inputs, and a sample of 50,000 fixes them to about 0.5 % of their spread.
STATISTICS_SAMPLE = 50_000


class _DecodeCheck(torch.utils.data.Dataset):
    """Decodes every file once (in ``DataLoader`` workers): "" or the reason it fails."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> str:
        try:
            read_image(self.paths[index], "L")
        except MoBYALError as exc:
            return str(exc.__cause__ or exc)
        return ""


def _stack(images: list[np.ndarray]) -> np.ndarray:
    # DataLoader's collate_fn: numpy in, numpy out (no tensor round trip)
    return np.stack(images)


class ImagePool(torch.utils.data.Dataset):
    """The image files under a folder, as a pool that is read on demand.

    Indexed like an array: ``pool[i]`` is one image of shape (C, H, W) and
    ``pool[indices]`` (a slice, a list, an integer or boolean array) a
    ``uint8`` array of shape (n, C, H, W), so that ``X_pool[idx]`` works in
    a modAL loop. As a :class:`torch.utils.data.Dataset` it can be read by a
    ``DataLoader``; the package does so with ``num_workers`` worker
    processes when it sweeps the pool (features, statistics).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of image files, searched recursively (see
        :func:`~moby_al_plugin.data.image_reading.list_image_files`); sub-folders are not
        classes here.
    image_size : int or (int, int), default 32
        Every image is resized to this (height, width) (bilinear) so that
        the pool has one shape.
    grayscale : bool or None, default None
        True: one channel; False: RGB. None: one channel when every file has
        one colour band (read from the headers), else RGB.
    check : {"header", "decode"}, default "header"
        "header": files whose header cannot be read are skipped (fast: no
        pixel is decoded). "decode": every file is decoded once, in
        ``num_workers`` processes, and truncated or corrupt files are skipped
        too. With "header", a file that fails to decode later raises an error
        that names it.
    num_workers : int, default 0
        ``DataLoader`` worker processes that decode images when the pool is
        swept in chunks (0: in the calling process).

    Attributes
    ----------
    paths : list of str
        The images of the pool, relative to ``folder``, in pool order.
    skipped : list of (str, str)
        Image files left out, with the reason (unreadable, links outside).
    ignored : list of str
        Files that are not images.
    shape : tuple
        (N, C, H, W).

    Raises
    ------
    DataNotFoundError
        If ``folder`` does not exist.
    MoBYALError
        If it is not a folder, holds no readable image, or a parameter is
        invalid.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(
        self,
        folder: str | os.PathLike,
        image_size: int | tuple[int, int] = 32,
        *,
        grayscale: bool | None = None,
        check: str = "header",
        num_workers: int = 0,
    ) -> None:
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"folder must be a str or os.PathLike, got {type(folder).__name__}")
        self.folder = Path(folder).expanduser()
        size = _check_image_size(image_size)
        if size is None:
            raise MoBYALError("image_size must be given: a pool needs one image size.")
        self.image_size = size
        if grayscale not in (None, True, False):
            raise MoBYALError(f"grayscale must be True, False or None, got {grayscale!r}.")
        if check not in ("header", "decode"):
            raise MoBYALError(f"check must be 'header' or 'decode', got {check!r}.")
        self.check = check
        self.num_workers = check_integer(num_workers, "num_workers", minimum=0)
        if not self.folder.exists():
            raise DataNotFoundError(f"image folder not found: {self.folder}")
        if not self.folder.is_dir():
            raise MoBYALError(f"image folder {self.folder} is not a directory.")
        files, self.ignored, self.skipped = list_image_files(self.folder)
        kept, single = [], []
        for path in files:
            try:
                with Image.open(path) as img:  # the header only: no pixel is decoded
                    single.append(single_channel_mode(img.mode))
                kept.append(path)
            except READ_ERRORS as exc:
                self.skipped.append((self._relative(path), f"{type(exc).__name__}: {exc}"))
        if check == "decode" and kept:
            reasons = torch.utils.data.DataLoader(
                _DecodeCheck(kept),
                batch_size=64,
                num_workers=self.num_workers,
                collate_fn=list,
            )
            failed = [r for batch in reasons for r in batch]
            self.skipped += [(self._relative(p), r) for p, r in zip(kept, failed) if r]
            single = [s for s, r in zip(single, failed) if not r]
            kept = [p for p, r in zip(kept, failed) if not r]
        if not kept:
            raise MoBYALError(
                f"{self.folder} holds no readable image ({len(self.skipped)} skipped); image "
                f"files end in {', '.join(sorted(IMAGE_EXTENSIONS))}."
            )
        self.grayscale = all(single) if grayscale is None else grayscale
        self._files = kept
        self.paths = [self._relative(p) for p in kept]
        self.shape = (len(kept), 1 if self.grayscale else 3, *size)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        where = os.fspath(self.folder)
        return f"ImagePool({where!r}, {len(self)} images of {self.shape[1:]}{skipped})"

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as a ``uint8`` array of shape (C, H, W)."""
        path = self._files[index]
        try:
            image = read_image(path, "L" if self.grayscale else "RGB", self.image_size)
        except MoBYALError as exc:
            raise MoBYALError(
                f"{exc}. Build the pool with check='decode' to skip files that cannot be "
                "decoded before any training."
            ) from exc
        return image[None] if image.ndim == 2 else np.ascontiguousarray(image.transpose(2, 0, 1))

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (numbers.Integral, np.integer)) and not isinstance(key, bool):
            index = int(key)
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} is out of range for a pool of {len(self)} images")
            return self.read(index % len(self))
        return self.read_rows(_positions(key, len(self)))

    def read_rows(self, rows: np.ndarray, chunk_size: int = 256) -> np.ndarray:
        """Images ``rows`` as a ``uint8`` array (n, C, H, W), decoded by the workers."""
        rows = np.asarray(rows, dtype=np.intp)
        if self.num_workers == 0 or rows.size <= chunk_size:
            out = np.empty((rows.size, *self.shape[1:]), dtype=np.uint8)
            for i, row in enumerate(rows):
                out[i] = self.read(int(row))
            return out
        return np.concatenate(list(self.chunks(rows, chunk_size)))

    def chunks(self, rows: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
        """Images ``rows`` in chunks of ``chunk_size``, decoded by ``num_workers`` processes."""
        if self.num_workers == 0:
            for start in range(0, len(rows), chunk_size):
                yield self.read_rows(rows[start : start + chunk_size])
            return
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(self, np.asarray(rows, dtype=np.intp).tolist()),
            batch_size=chunk_size,
            num_workers=self.num_workers,
            collate_fn=_stack,
        )
        yield from loader

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        images = self.read_rows(np.arange(len(self)))
        return images if dtype is None else images.astype(dtype)


def _positions(key: Any, n: int) -> np.ndarray:
    """The rows that ``key`` (a slice, integer or boolean array, list) selects of ``n``."""
    if isinstance(key, slice):
        return np.arange(*key.indices(n))
    key_array = np.asarray(key) if isinstance(key, (list, np.ndarray)) else None
    if key_array is not None and key_array.ndim == 1 and key_array.dtype.kind in "iu":
        # every training batch comes here: no arange of the whole pool per read
        if key_array.size and (key_array.min() < -n or key_array.max() >= n):
            bad = key_array[(key_array < -n) | (key_array >= n)][0]
            raise IndexError(f"index {bad} is out of bounds for a pool of {n} images")
        return np.where(key_array < 0, key_array + n, key_array).astype(np.intp, copy=False)
    try:
        rows = np.arange(n)[key]
    except IndexError as exc:
        raise IndexError(f"{exc} (a pool of {n} images)") from None
    if rows.ndim != 1:
        raise IndexError(f"a pool is indexed by one axis of rows; got a key of shape {rows.shape}")
    return rows


# ---------------------------------------------------------------- memmaps
def _disk_layout(X: Any, name: str) -> tuple[tuple[int, int, int, int], str]:
    """(N, C, H, W) and axis layout of a memmap of images, or an error naming dtype and shape."""
    ok_dtype = X.dtype == np.uint8 or np.issubdtype(X.dtype, np.floating)
    if not ok_dtype or X.ndim not in (3, 4):
        raise MoBYALError(
            f"{name} is a memmap of dtype {X.dtype} and shape {X.shape}; a pool on disk must "
            "hold uint8 images, or float images in [0, 1], of shape (N, H, W), (N, C, H, W) "
            "or (N, H, W, C)."
        )
    if X.ndim == 3:
        return (X.shape[0], 1, X.shape[1], X.shape[2]), "nhw"
    if X.shape[-1] <= 4 < X.shape[1]:  # channels-last, the rule of check_images
        return (X.shape[0], X.shape[3], X.shape[1], X.shape[2]), "nhwc"
    return tuple(X.shape), "nchw"


def open_memmap_pool(
    path: str | os.PathLike, shape: tuple[int, ...] | None = None, dtype: Any = None
) -> np.memmap:
    """Open an image pool stored on disk, read-only, without reading it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file (its header gives the shape and dtype), or a raw file
        of images in C order (``shape`` and ``dtype`` required).
    shape : tuple of int, optional
        (N, H, W), (N, C, H, W) or (N, H, W, C). For a ``.npy`` file, the
        shape it must have.
    dtype : numpy dtype, optional
        ``uint8`` or a float type. For a ``.npy`` file, the dtype it must have.

    Returns
    -------
    numpy.memmap

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    MoBYALError
        If the file's shape or dtype differs from the one asked for, a raw
        file's size does not match ``shape`` and ``dtype`` (the message names
        both), or the array is not images.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"pool file not found: {path}")
    want_dtype = None if dtype is None else np.dtype(dtype)
    want_shape = None if shape is None else tuple(int(s) for s in shape)
    if path.suffix == ".npy":
        X = np.load(path, mmap_mode="r")
        if (want_shape is not None and X.shape != want_shape) or (
            want_dtype is not None and X.dtype != want_dtype
        ):
            raise MoBYALError(
                f"{path} holds an array of shape {X.shape} and dtype {X.dtype}, not the "
                f"shape {want_shape or X.shape} and dtype {want_dtype or X.dtype} asked for."
            )
    else:
        if want_shape is None or want_dtype is None:
            raise MoBYALError(
                f"{path} is a raw file: give its shape and dtype (or store the pool as .npy)."
            )
        needed = int(np.prod(want_shape)) * want_dtype.itemsize
        size = path.stat().st_size
        if size != needed:
            raise MoBYALError(
                f"{path} holds {size} bytes, but shape {want_shape} of dtype {want_dtype} "
                f"needs {needed}; the shape or the dtype is wrong."
            )
        X = np.memmap(path, dtype=want_dtype, mode="r", shape=want_shape)
    _disk_layout(X, os.fspath(path))
    return X


# ------------------------------------------------------------ lazy images
class LazyImages:
    """A lazy pool as the networks read it: float32 (N, C, H, W) in [0, 1], checked per read.

    Made by :func:`check_pool` from a memmap or an :class:`ImagePool`;
    ``images[rows]`` reads and checks those rows only, :meth:`take` gives a
    view of a subset without reading it, :meth:`chunks` sweeps it.
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, source: Any, rows: np.ndarray | None = None, name: str = "X") -> None:
        self.source = source
        self.name = name
        if isinstance(source, ImagePool):
            full, self._layout = source.shape, "nchw"
        else:
            full, self._layout = _disk_layout(source, name)
        self.rows = rows
        self.shape = (full[0] if rows is None else len(rows), *full[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyImages({type(self.source).__name__}, shape={self.shape})"

    def _source_rows(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.rows is None else self.rows[rows]

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw)
        if self._layout == "nhw":
            raw = raw[:, None]
        elif self._layout == "nhwc":
            raw = np.moveaxis(raw, -1, 1)
        if raw.dtype == np.uint8:
            out = raw.astype(np.float32) / np.float32(255.0)
        else:
            out = check_image_values(raw.astype(np.float32), name=self.name)
        return np.ascontiguousarray(out)

    def _read(self, source_rows: np.ndarray) -> np.ndarray:
        if isinstance(self.source, ImagePool):
            return self._convert(self.source.read_rows(source_rows))
        return self._convert(self.source[source_rows])

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice) and self.rows is None and not isinstance(self.source, ImagePool):
            return self._convert(self.source[key])  # a memmap reads a slice in one go
        return self._read(self._source_rows(_positions(key, len(self))))

    def take(self, indices: Any) -> LazyImages:
        """The images ``indices`` (positions in this pool) as a view; nothing is read."""
        rows = self._source_rows(_positions(indices, len(self)))
        return LazyImages(self.source, rows, self.name)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[np.ndarray]:
        """The whole pool in order, ``chunk_size`` images at a time."""
        rows = np.arange(len(self))
        if isinstance(self.source, ImagePool):
            for raw in self.source.chunks(self._source_rows(rows), chunk_size):
                yield self._convert(raw)
            return
        for start in range(0, len(self), chunk_size):
            yield self[start : start + chunk_size]

    def statistics_chunks(self, sample: int = STATISTICS_SAMPLE) -> Iterator[np.ndarray]:
        """The images that give the input statistics: all, or ``sample`` evenly spaced ones."""
        if len(self) <= sample:
            yield from self.chunks()
            return
        view = self.take(np.linspace(0, len(self) - 1, sample).round().astype(np.intp))
        yield from view.chunks()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        images = np.concatenate(list(self.chunks()))
        return images if dtype is None else images.astype(dtype)


def is_image_pool_on_disk(X: Any) -> bool:
    """Whether ``X`` is a pool of images read on demand.

    An :class:`ImagePool`, :class:`LazyImages`, or a memmap of rank 3 or 4
    (images; a 2-D memmap holds feature rows, which stay a plain array).
    """
    if isinstance(X, np.memmap):
        return X.ndim in (3, 4)
    return isinstance(X, (ImagePool, LazyImages))


def check_pool(X: Any, *, name: str = "X", allow_empty: bool = False) -> np.ndarray | LazyImages:
    """Images as the networks read them: checked in memory, or lazily for a pool on disk.

    An in-memory array goes through
    :func:`~moby_al_plugin._validation.check_images` (a float32 copy); a
    memmap or an :class:`ImagePool` becomes :class:`LazyImages`, whose
    dtype and shape are checked now and whose values are checked as they are
    read.

    Raises
    ------
    MoBYALError
        A memmap of the wrong dtype or rank (the message names both), an
        empty pool, or bad in-memory images.
    """
    if isinstance(X, (np.memmap, ImagePool)):
        X = LazyImages(X, name=name)
    if isinstance(X, LazyImages):
        if len(X) == 0 and not allow_empty:
            raise MoBYALError(f"{name} is empty: it holds 0 images.")
        return X
    return check_images(X, name=name, allow_empty=allow_empty)


def images_fingerprint(X: np.ndarray | LazyImages) -> str:
    """The identity of checked images ``X``: every image counts.

    Arrays and memmaps (also lazily read): SHA-1 of every pixel as float32 in
    [0, 1] and of the shape, so that a memmap and the same images in memory
    agree. An image folder (:class:`ImagePool`): SHA-1 of every file's path,
    size and modification time, the rows taken and the shape; decoding a
    million files for an identity would cost as much as an epoch.
    """
    digest = hashlib.sha1(b"images-v2")
    digest.update(repr(tuple(X.shape)).encode())
    if isinstance(X, LazyImages) and isinstance(X.source, ImagePool):
        pool = X.source
        rows = np.arange(len(pool)) if X.rows is None else X.rows
        digest.update(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
        for path in pool._files:
            stat = path.stat()
            digest.update(f"{pool._relative(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    for chunk in iter_chunks(X, CHUNK_SIZE):
        digest.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    return digest.hexdigest()


def iter_chunks(X: np.ndarray | LazyImages, chunk_size: int) -> Iterator[np.ndarray]:
    """Checked images ``X`` in order, ``chunk_size`` at a time (in memory or lazy)."""
    if isinstance(X, LazyImages):
        yield from X.chunks(chunk_size)
        return
    for start in range(0, X.shape[0], chunk_size):
        yield X[start : start + chunk_size]

"""The image folder behind a work folder: indexing it, and noticing later changes."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np

from ..data.image_reading import (
    IMAGE_EXTENSIONS,
    READ_ERRORS,
    describe_image,
    list_image_files,
    read_image,
    single_channel_mode,
)
from .store import LabellingError, LabelStore

__all__ = ["FolderIndex", "index_folder", "read_pixels", "verify_image", "verify_images"]


@dataclass
class FolderIndex:
    """What ``init`` found under an image folder.

    Attributes
    ----------
    images : list of dict
        One per readable image: ``path`` (relative, POSIX), ``sha256``,
        ``bytes``, ``mtime_ns``, ``width``, ``height`` (as shown, after the
        EXIF orientation), ``mode`` (PIL's).
    unreadable : list of (str, str)
        Relative paths of image files that could not be decoded, and why.
    ignored : list of str
        Files whose ending is not an image ending.
    duplicates : list of list of str
        Groups of paths whose files have the same content.
    """

    images: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)

    @property
    def single_channel(self) -> bool:
        """Whether every image has one colour band (palette images count as colour)."""
        return all(single_channel_mode(i["mode"]) for i in self.images)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: Path) -> dict[str, Any]:
    """Size and mode of an image as a viewer shows it; decodes and maps it as training reads it."""
    return describe_image(path)


def index_folder(root: str | os.PathLike, progress: Any = None) -> FolderIndex:
    """Every image file under ``root`` (recursively), with its content hash and size.

    Hidden files and folders are left out; so are links that lead outside
    ``root``. Files that cannot be decoded are listed in
    :attr:`FolderIndex.unreadable` rather than stopping the index.

    Raises
    ------
    LabellingError
        If ``root`` is not a folder or holds no readable image.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise LabellingError(f"image folder not found or not a folder: {folder}")
    files, ignored, refused = list_image_files(folder)
    index = FolderIndex(ignored=ignored, unreadable=refused)
    by_hash: dict[str, list[str]] = defaultdict(list)
    for count, path in enumerate(files, start=1):
        relative = path.relative_to(folder).as_posix()
        try:
            stat = path.stat()
            described = _describe(path)
            digest = _sha256(path)
        except READ_ERRORS as exc:
            index.unreadable.append((relative, f"{type(exc).__name__}: {exc}"))
            continue
        index.images.append(
            {
                "path": relative,
                "sha256": digest,
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                **described,
            }
        )
        by_hash[digest].append(relative)
        if progress is not None and count % 500 == 0:
            progress(count, len(files))
    index.duplicates = [paths for paths in by_hash.values() if len(paths) > 1]
    if not index.images:
        found = (
            f"{len(index.unreadable)} unreadable image file(s)"
            if index.unreadable
            else ("no image file")
        )
        raise LabellingError(
            f"{folder} holds {found}; image files end in {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return index


def verify_images(store: LabelStore) -> dict[str, list[str]]:
    """Compare every indexed image with the file on disk and record its state.

    A file whose size or modification time moved is hashed again; only a
    different content marks it ``changed``. Changed and missing images are
    never shown, answered, trained on or queried. Returns the paths that
    are ``changed`` and ``missing`` now.
    """
    root = store.images_root
    found: dict[str, list[str]] = {"changed": [], "missing": []}
    updates = []
    for row in store.image_records():
        state, update = _check_file(root, row)
        if state != "ok":
            found[state].append(row["path"])
        if update is not None:
            updates.append(update)
    store.record_image_states(updates)
    return found


def verify_image(store: LabelStore, image_id: int) -> str:
    """Compare one indexed image with its file on disk and record its state.

    The check of :func:`verify_images` for this image alone: its file is
    hashed again only if its size or modification time moved, and no other
    file is looked at.

    Parameters
    ----------
    store : LabelStore
        The work folder's database.
    image_id : int
        The image's id.

    Returns
    -------
    str
        The image's state now: ``'ok'``, ``'changed'`` or ``'missing'``.

    Raises
    ------
    UnknownImageError
        If no image has the id ``image_id``.
    """
    state, update = _check_file(store.images_root, store.image(image_id))
    if update is not None:
        store.record_image_states([update])
    return state


def _check_file(root: Path, row: Any) -> tuple[str, tuple[int, str, int] | None]:
    """The state of an indexed image's file now, and the update of its record (None: none).

    ``row`` holds the image's ``id``, ``path``, ``sha256``, ``bytes``,
    ``mtime_ns`` and ``state`` as recorded; the update is the
    ``(image_id, state, mtime_ns)`` of :meth:`LabelStore.record_image_states`.
    """
    path = root / row["path"]
    try:
        stat = path.stat()
        if not S_ISREG(stat.st_mode):  # replaced by a pipe or a device: never opened
            raise FileNotFoundError(path)
    except OSError:
        state, mtime = "missing", row["mtime_ns"]
    else:
        mtime = stat.st_mtime_ns
        if stat.st_size == row["bytes"] and mtime == row["mtime_ns"]:
            state = "ok"
        else:
            try:
                state = "ok" if _sha256(path) == row["sha256"] else "changed"
            except OSError:
                state = "missing"
    # the content decides: a file put back as it was is ok again
    if state != row["state"] or (state == "ok" and mtime != row["mtime_ns"]):
        return state, (int(row["id"]), state, mtime if state == "ok" else row["mtime_ns"])
    return state, None


def read_pixels(store: LabelStore, image_ids: list[int]) -> np.ndarray:
    """The images as one uint8 array in the work folder's mode and size.

    Read with :func:`moby_al_plugin.read_image` (first frame, mapped to 8 bits
    by its real range, transparency on white, EXIF orientation applied, one
    mode, one size), as the image-folder loader reads them.
    """
    mode = store.meta("mode")
    size = int(store.meta("image_size"))
    root = store.images_root
    paths = store.image_paths()
    first = read_image(root / paths[image_ids[0]], mode, size) if image_ids else None
    X = np.empty(
        (len(image_ids), *(first.shape if first is not None else (size, size))), dtype=np.uint8
    )
    for i, image_id in enumerate(image_ids):
        X[i] = first if i == 0 else read_image(root / paths[image_id], mode, size)
    return X

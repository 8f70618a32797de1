"""Images and labels from a NumPy ``.npz`` archive, split or to be split."""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

import numpy as np

from ...exceptions import DataNotFoundError, MoBYALError
from ..image_dataset import ImageDataset, PathLike, _as_path, _images_and_labels, _split

__all__ = ["load_npz"]

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

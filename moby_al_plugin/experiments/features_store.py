"""Features of the training pool after each cycle, kept for the pictures.

After every cycle of a run the runner can store the network's features of
the whole training pool (``net.transform(X_pool)``) so that ``moby-al plot
RUN --pictures`` draws feature maps without training again.

File format: ``features/<strategy>-trial<trial>-cycle<cycle>.npy`` under the
results folder, a NumPy ``.npy`` array of dtype float16 and shape
``(n_pool, n_features)``; row ``i`` belongs to pool image ``i``, the index
the records' ``queried`` lists use. Each file is written to a temporary name
and renamed, so a killed run leaves a whole file or none.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .config import ExperimentError
from .results import atomic_write_bytes

__all__ = [
    "AUTO_FEATURES_MAX_POOL",
    "features_enabled",
    "features_path",
    "save_cycle_features",
    "load_cycle_features",
]

#: With ``save_features=None`` features are stored for pools up to this size.
AUTO_FEATURES_MAX_POOL = 20_000


def features_enabled(save_features: bool | None, n_pool: int) -> bool:
    """Whether a run stores its features (None: only for pools up to 20,000 images)."""
    if save_features is None:
        return n_pool <= AUTO_FEATURES_MAX_POOL
    return bool(save_features)


def features_path(folder: str | os.PathLike, strategy: str, trial: int, cycle: int) -> Path:
    """Where the features of one cycle of one (strategy, trial) run are stored."""
    return Path(folder) / "features" / f"{strategy}-trial{int(trial)}-cycle{int(cycle)}.npy"


def save_cycle_features(
    folder: str | os.PathLike,
    strategy: str,
    trial: int,
    cycle: int,
    net: Any,
    X_pool: Any,
    *,
    batch_size: int = 1024,
) -> Path:
    """Store ``net.transform(X_pool)`` as float16, atomically.

    Parameters
    ----------
    folder : str or path-like
        The results folder.
    strategy : str
    trial, cycle : int
    net : estimator with ``transform``
        The network after this cycle's training.
    X_pool : array-like of shape (n_pool, ...)
        The whole training pool, in the order the records index it.
    batch_size : int, default=1024
        Images transformed at once (bounds the memory of one call).

    Returns
    -------
    Path
        The file written.
    """
    parts = [
        np.asarray(net.transform(X_pool[start : start + batch_size]), dtype=np.float32)
        for start in range(0, len(X_pool), batch_size)
    ]
    features = np.concatenate(parts).astype(np.float16)
    path = features_path(folder, strategy, trial, cycle)
    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_cycle_features(
    folder: str | os.PathLike, strategy: str, trial: int, cycle: int, *, n_pool: int | None = None
) -> np.ndarray:
    """The stored features of one cycle, as float32 of shape (n_pool, n_features).

    Raises
    ------
    ExperimentError
        If the file is missing, unreadable, not 2-D or has another number of
        rows than ``n_pool``.
    """
    path = features_path(folder, strategy, trial, cycle)
    if not path.is_file():
        raise ExperimentError(
            f"{path} is missing: this run stored no features for {strategy!r}, trial {trial}, "
            f"cycle {cycle} (run with --save-features)"
        )
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"{path} is unreadable ({exc})") from exc
    if features.ndim != 2 or (n_pool is not None and len(features) != n_pool):
        raise ExperimentError(
            f"{path} holds an array of shape {features.shape}; expected ({n_pool}, n_features)"
        )
    return features.astype(np.float32)

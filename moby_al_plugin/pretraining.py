"""The pool's encoder, pretrained once: a given file, a cached checkpoint, or a fit now.

One step for every caller (the experiment runner, ``moby-al label`` and
``moby-al pretrain``): an encoder file a person gives is checked against the
pool's images; otherwise the encoder trains with its ``checkpoint`` in a cache
folder, named by a key of what the pretraining depends on, so that a second
call finds it finished and an interrupted one continues after its last epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._validation import check_images
from .encoder import MoBYEncoder, load_encoder
from .exceptions import MoBYALError

__all__ = ["cached_encoder_path", "given_encoder", "pretrain_encoder", "pretraining_key"]


def pretraining_key(settings: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-1 over ``settings`` as sorted JSON."""
    return hashlib.sha1(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:16]


def cached_encoder_path(cache_dir: str | os.PathLike, settings: Mapping[str, Any]) -> Path:
    """Where the encoder pretrained with ``settings`` lives: ``cache_dir/encoder-<key>.pt``."""
    return Path(cache_dir) / f"encoder-{pretraining_key(settings)}.pt"


def given_encoder(path: str | os.PathLike, X: Any) -> MoBYEncoder:
    """A person's encoder file, checked against the images it will embed.

    Raises
    ------
    MoBYALError
        The file is missing or not an encoder, or its images have another
        shape than ``X``'s; the message names the file.
    """
    try:
        encoder = load_encoder(path)
        encoder.check_image_shape(check_images(X[:1]))  # (N, C, H, W), as it was trained
    except MoBYALError as exc:
        raise MoBYALError(f"encoder {os.fspath(path)}: {exc}") from exc
    return encoder


def pretrain_encoder(
    X: Any,
    *,
    checkpoint: str | os.PathLike | None,
    on_epoch_end: Callable[[MoBYEncoder, int], Any] | None = None,
    **params: Any,
) -> MoBYEncoder:
    """Fit a :class:`MoBYEncoder` on ``X`` with ``params``, resuming ``checkpoint``.

    ``random_state`` defaults to 0: one pretraining serves every trial that
    shares the pool. A finished checkpoint is only loaded (``fit_seconds_``
    is then 0).
    """
    params.setdefault("random_state", 0)
    encoder = MoBYEncoder(checkpoint=checkpoint, **params)
    return encoder.fit(X, on_epoch_end=on_epoch_end)

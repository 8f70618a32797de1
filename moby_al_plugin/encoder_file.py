"""The file a :class:`~moby_al_plugin.MoBYEncoder` is saved to and resumed from.

One ``torch.save`` dictionary: a format name and version, the estimator's
parameters, its fitted attributes (the history too), the network's weights
and, for a checkpoint written during ``fit``, the training state (optimizer,
generators, the identity of the pool). Written atomically.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch.history import History

from ._atomic import atomic_write
from .exceptions import MoBYALError

if TYPE_CHECKING:
    from .data.pools import LazyImages

# the encoder is passed in (and its class, to build one): this module never
# imports the estimator, which imports it
Encoder = Any

__all__ = [
    "encoder_from_payload",
    "encoder_payload",
    "read_encoder_file",
    "sampled_fingerprint",
    "save_encoder_file",
]

_FILE_FORMAT = "moby_al_plugin.MoBYEncoder"
_FILE_VERSION = 1


def sampled_fingerprint(X: np.ndarray | LazyImages) -> str:
    """0.1.0's identity of a pool (its shape and 64 spread-out images).

    Only to resume a checkpoint written by 0.1.0: it misses a change to any
    other image, which :func:`~moby_al_plugin.data.pools.images_fingerprint` sees.
    """
    rows = X[:: max(1, X.shape[0] // 64)]
    digest = hashlib.sha1(np.ascontiguousarray(rows).tobytes())
    digest.update(repr(X.shape).encode())
    return digest.hexdigest()


def save_encoder_file(payload: dict, path: str | os.PathLike) -> None:
    """``torch.save`` whole or not at all: an interruption keeps the previous file."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


def read_encoder_file(path: str | os.PathLike) -> dict:
    """The payload of an encoder file; a :class:`MoBYALError` for anything else."""
    if not os.path.isfile(path):
        raise MoBYALError(f"no saved MoBYEncoder at {os.fspath(path)!r}.")
    # the file holds the estimator's parameters as well as its weights, so it
    # is unpickled: load only files you wrote or trust
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
        raise MoBYALError(f"{os.fspath(path)!r} is not a file written by MoBYEncoder.save.")
    if payload.get("version", 0) > _FILE_VERSION:
        raise MoBYALError(f"{os.fspath(path)!r} was written by a newer version of the package.")
    return payload


def encoder_payload(encoder: Encoder, training: dict | None = None) -> dict:
    """What a file holds: parameters, fitted attributes, weights, a checkpoint's training."""
    attributes = {
        name: getattr(encoder, name)
        for name in (
            "n_channels_in_",
            "image_shape_",
            "input_mean_",
            "input_std_",
            "feature_dim_",
            "n_epochs_done_",
        )
    }
    attributes["history_"] = [dict(epoch) for epoch in encoder.history_]
    return {
        "format": _FILE_FORMAT,
        "version": _FILE_VERSION,
        "params": encoder.get_params(deep=False),
        "attributes": attributes,
        "state": {k: v.detach().cpu() for k, v in encoder.network_.state_dict().items()},
        "training": training,
    }


def encoder_from_payload(cls: type, payload: dict, device: str | None) -> Encoder:
    """The fitted encoder a file describes (``device`` None: the saved one)."""
    params = dict(payload["params"])
    params.pop("refit", None)  # files saved before FrozenEstimator replaced it
    if device is not None:
        params["device"] = device
    encoder = cls(**params)
    attributes = dict(payload["attributes"])
    history = attributes.pop("history_")
    for name, value in attributes.items():
        setattr(encoder, name, value)
    encoder.image_shape_ = tuple(encoder.image_shape_)
    # the saved weights follow: pretrained backbone weights are not read (nor downloaded)
    encoder._initialize_for_state()
    encoder.module_.load_state_dict(payload["state"])
    encoder.module_.eval()
    encoder.history_ = History(history)
    encoder.fit_seconds_ = 0.0
    return encoder

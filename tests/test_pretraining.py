"""The pretraining step every caller shares: a given file, a cached checkpoint, a fit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.pretraining import (
    cached_encoder_path,
    given_encoder,
    pretrain_encoder,
    pretraining_key,
)

SMALL = dict(backbone="small_cnn", max_epochs=2, batch_size=32, queue_size=64, views="digits")


def test_the_key_is_sha1_of_the_sorted_settings():
    expected = hashlib.sha1(b'{"a": 1, "b": [2, 3]}').hexdigest()[:16]
    assert pretraining_key({"b": [2, 3], "a": 1}) == expected
    assert cached_encoder_path("cache", {"a": 1, "b": [2, 3]}).as_posix() == (
        f"cache/encoder-{expected}.pt"
    )


def test_a_second_pretraining_with_the_same_checkpoint_only_loads(digits, tmp_path):
    X = digits.X_train[:96]
    path = cached_encoder_path(tmp_path, {"pool": "digits", **SMALL})
    first = pretrain_encoder(X, checkpoint=path, **SMALL)
    assert first.random_state == 0 and first.fit_seconds_ > 0 and path.is_file()
    again = pretrain_encoder(X, checkpoint=path, **SMALL)
    assert again.fit_seconds_ == 0.0
    np.testing.assert_array_equal(again.transform(X[:5]), first.transform(X[:5]))
    assert given_encoder(path, X).n_epochs_done_ == 2


def test_a_given_encoder_is_checked_against_the_pool(digits, tmp_path):
    path = tmp_path / "enc.pt"
    pretrain_encoder(digits.X_train[:64], checkpoint=None, **SMALL).save(path)
    other_shape = np.zeros((4, 3, 16, 16), dtype=np.float32)
    with pytest.raises(MoBYALError, match=f"encoder {path}: .*shape"):
        given_encoder(path, other_shape)
    with pytest.raises(MoBYALError, match="encoder missing.pt"):
        given_encoder("missing.pt", digits.X_train[:4])

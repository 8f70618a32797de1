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


def test_the_runners_cache_key_is_the_one_0_1_0_wrote():
    # keys computed by release 0.1.0's runner: its cached encoders are still found
    from moby_al_plugin.experiments.config import ExperimentConfig
    from moby_al_plugin.experiments.runner import PreparedData, _pretrain_settings

    for config, key in (
        (ExperimentConfig(), "6cb545bacb51e218"),
        (
            ExperimentConfig(
                dataset="digits", strategies=("typiclust",), pool_size=300, test_size=100
            ),
            "6099cf869cf029e3",
        ),
    ):
        assert pretraining_key(_pretrain_settings(config, PreparedData(config))) == key

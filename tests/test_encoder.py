"""MoBYEncoder: the transformer contract, files, resume, pipelines and pretrained starts."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from moby_al_plugin import MoBYEncoder, load_encoder
from moby_al_plugin.data.pools import LazyImages, images_fingerprint
from moby_al_plugin.encoder_file import sampled_fingerprint as _sampled_fingerprint
from moby_al_plugin.exceptions import MoBYALError

from .conftest import small_encoder, small_net


@pytest.fixture(scope="module")
def pool(digits):
    return digits.X_train[:192]


@pytest.fixture(scope="module")
def fitted_encoder(pool):
    return small_encoder().fit(pool)


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------ transformer
def test_fit_transform_features(fitted_encoder, pool, digits):
    features = fitted_encoder.transform(digits.X_test[:20])
    assert features.shape == (20, 128) and features.dtype == np.float32
    assert fitted_encoder.feature_dim_ == 128
    assert fitted_encoder.n_epochs_done_ == 2 and len(fitted_encoder.history_) == 2
    names = fitted_encoder.get_feature_names_out()
    assert names.shape == (128,) and names[0] == "mobyencoder0"
    short = small_encoder(max_epochs=1)
    again = short.fit_transform(pool[:128])
    np.testing.assert_allclose(again, short.transform(pool[:128]), rtol=1e-5, atol=1e-6)
    # clean images in eval mode: the same call twice gives the same features
    np.testing.assert_array_equal(
        fitted_encoder.transform(pool[:5]), fitted_encoder.transform(pool[:5])
    )


def test_training_lowers_the_loss_and_moves_the_key_branch(pool):
    # "mlp": a ReLU-ending head starts with a low loss against the random
    # initial queue (non-negative keys against mixed-sign ones), which rises
    # as real keys fill it, so a falling loss is read on the linear-ending head
    encoder = small_encoder(max_epochs=3, lr=0.1, head_layout="mlp")
    encoder.fit(pool)
    losses = [h["loss"] for h in encoder.history_]
    assert losses[-1] < losses[0]
    net = encoder.network_
    gaps = [
        (m - o).norm() for m, o in zip(net.encoder_momentum.parameters(), net.encoder.parameters())
    ]
    assert max(gaps) > 0  # the key branch lags behind: it is an average, not a copy
    assert int(net.queue_pointer) == (3 * 192) % 64


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.99])
def test_one_step_moves_the_key_branch_to_the_ema_of_the_online_one(pool, momentum):
    # 32 images in batches of 32: one optimiser step, at which the momentum is
    # momentum_base. The key branch starts as a copy of the online one (k0 = o0)
    # and must end at k1 = m * k0 + (1 - m) * o1, o1 the online weights after the step.
    X = pool[:32]
    still = small_encoder(max_epochs=1, batch_size=32, momentum_base=1.0).fit(X)
    moved = small_encoder(max_epochs=1, batch_size=32, momentum_base=momentum).fit(X)
    k0 = [p.detach().clone() for p in still.network_.momentum_parameters()]
    o1_still = [p.detach().clone() for p in still.network_.online_modules().parameters()]
    o1 = [p.detach().clone() for p in moved.network_.online_modules().parameters()]
    k1 = [p.detach().clone() for p in moved.network_.momentum_parameters()]
    assert len(k0) == len(o1) == len(k1) > 0
    # the step's keys come from k0 in both fits: the online weights after it agree
    for a, b in zip(o1_still, o1):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    changed = 0
    for start, online, key in zip(k0, o1, k1):
        expected = momentum * start + (1.0 - momentum) * online
        torch.testing.assert_close(key, expected, rtol=1e-5, atol=1e-6)
        lo, hi = torch.minimum(start, online), torch.maximum(start, online)
        assert bool(((key >= lo - 1e-6) & (key <= hi + 1e-6)).all())  # between k0 and o1
        changed += int(not torch.equal(key, start))
    if momentum < 1.0:
        assert changed > len(k1) // 2  # most tensors moved away from their start


def test_unfitted_transform_raises(digits):
    with pytest.raises(NotFittedError):
        small_encoder().transform(digits.X_test[:3])


def test_random_state_makes_fits_identical(pool):
    a = small_encoder(max_epochs=1).fit(pool[:128])
    b = small_encoder(max_epochs=1).fit(pool[:128])
    c = small_encoder(max_epochs=1, random_state=1).fit(pool[:128])
    assert _same(_params(a.network_), _params(b.network_))
    assert not _same(_params(a.network_), _params(c.network_))


def test_params_clone_and_pickle(fitted_encoder, digits):
    params = fitted_encoder.get_params()
    assert "refit" not in params and params["max_epochs"] == 2
    # scikit-learn's rule: a clone is unfitted; FrozenEstimator keeps the fit
    assert not hasattr(clone(fitted_encoder), "network_")
    frozen = FrozenEstimator(fitted_encoder)
    assert clone(frozen) is frozen
    X = digits.X_test[:10]
    restored = pickle.loads(pickle.dumps(fitted_encoder))
    np.testing.assert_array_equal(restored.transform(X), fitted_encoder.transform(X))
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(frozen)).transform(X), fitted_encoder.transform(X)
    )


def test_progress_bar_when_verbose(pool, capsys):
    small_encoder(max_epochs=1, verbose=1).fit(pool[:64])
    assert "MoBYEncoder" in capsys.readouterr().err
    small_encoder(max_epochs=1, verbose=0).fit(pool[:64])
    assert "MoBYEncoder" not in capsys.readouterr().err


def test_frozen_encoder_keeps_its_weights_in_a_refitted_pipeline(fitted_encoder, pool):
    encoder = copy.deepcopy(fitted_encoder)
    before = _params(encoder.network_)
    pipe = make_pipeline(FrozenEstimator(encoder), LogisticRegression(max_iter=200))
    labels = np.arange(10) % 2
    pipe.fit(pool[:10], labels)  # a Pipeline refit on ten labelled images
    assert _same(before, _params(encoder.network_))
    assert pipe[-1].coef_.shape[1] == encoder.transform(pool[:1]).shape[1]
    encoder.set_params(max_epochs=1).fit(pool[:64])  # a bare encoder trains anew
    assert not _same(before, _params(encoder.network_))
    with pytest.raises(MoBYALError, match=r"\(3, 8, 8\)"):
        encoder.transform(np.zeros((4, 3, 8, 8), dtype=np.float32))


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, params, match",
    [
        (lambda X: X[:1], {}, "at least 2 images"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), {}, "NaN"),
        (lambda X: X.reshape(len(X), -1), {}, "2-D array"),
        (lambda X: X[:, None, None], {}, "5-D array"),
        (lambda X: X, {"batch_size": 1}, "batch_size must be at least 2"),
        (lambda X: X * 16, {}, r"\[0, 1\]"),
    ],
)
def test_bad_input_raises_before_training(pool, make, params, match):
    encoder = small_encoder(**params)
    with pytest.raises(MoBYALError, match=match):
        encoder.fit(make(pool[:20]))
    assert not hasattr(encoder, "network_")


# ------------------------------------------------------------------ files
def test_save_load_round_trip(fitted_encoder, tmp_path, digits):
    path = tmp_path / "enc.pt"
    fitted_encoder.save(path)
    for loaded in (MoBYEncoder.load(path), load_encoder(str(path))):
        assert loaded.get_params() == fitted_encoder.get_params()
        # the training history too: every epoch's loss, time and batches
        assert list(loaded.history_) == list(fitted_encoder.history_)
        assert [e["loss"] for e in loaded.history_] == [e["loss"] for e in fitted_encoder.history_]
        assert len(loaded.history_[-1]["batches"]) > 0
        np.testing.assert_array_equal(
            loaded.transform(digits.X_test[:10]), fitted_encoder.transform(digits.X_test[:10])
        )
    with pytest.raises(MoBYALError, match="no saved MoBYEncoder"):
        MoBYEncoder.load(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(MoBYALError, match="not a file written by"):
        MoBYEncoder.load(tmp_path / "other.pt")
    with pytest.raises(NotFittedError):
        small_encoder().save(tmp_path / "never.pt")


def test_interrupted_save_keeps_the_last_complete_file(fitted_encoder, tmp_path, monkeypatch):
    path = tmp_path / "enc.pt"
    fitted_encoder.save(path)
    good = path.read_bytes()

    def crash(obj, handle, *args, **kwargs):
        handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        fitted_encoder.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.pt"]  # no temporary left


def test_resume_after_interruption_matches_an_uninterrupted_fit(pool, tmp_path):
    path = tmp_path / "ckpt.pt"

    def stop_after_two(encoder, epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_encoder(max_epochs=3, checkpoint=path).fit(pool[:128], on_epoch_end=stop_after_two)
    assert MoBYEncoder.load(path).n_epochs_done_ == 2
    resumed = small_encoder(max_epochs=3, checkpoint=path, verbose=0).fit(pool[:128])
    assert resumed.n_epochs_done_ == 3 and len(resumed.history_) == 3
    straight = small_encoder(max_epochs=3).fit(pool[:128])
    assert _same(_params(resumed.network_), _params(straight.network_))
    # a finished checkpoint is only loaded
    again = small_encoder(max_epochs=3, checkpoint=path).fit(pool[:128])
    assert again.fit_seconds_ == 0.0
    assert _same(_params(again.network_), _params(straight.network_))
    with pytest.raises(MoBYALError, match="other settings or other images"):
        small_encoder(max_epochs=3, checkpoint=path, lr=0.2).fit(pool[:128])
    with pytest.raises(MoBYALError, match="other settings or other images"):
        small_encoder(max_epochs=3, checkpoint=path).fit(pool[128:256])


def _interrupted_fit(images, path):
    """One epoch of two, then the checkpoint stays to be resumed."""

    def stop_after_one(encoder, epoch):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_encoder(max_epochs=2, checkpoint=path).fit(images, on_epoch_end=stop_after_one)


def test_a_checkpoint_is_refused_on_a_pool_that_differs_in_any_one_image(pool, tmp_path):
    # 0.1.0 identified a pool by 64 spread-out images: with 192 images, every
    # third one; image 100 was never looked at
    path = tmp_path / "ckpt.pt"
    images = np.ascontiguousarray(pool)
    _interrupted_fit(images, path)
    other = images.copy()
    other[100] = 1.0 - other[100]
    assert _sampled_fingerprint(other) == _sampled_fingerprint(images)
    with pytest.raises(MoBYALError, match="other settings or other images"):
        small_encoder(max_epochs=2, checkpoint=path).fit(other)
    assert small_encoder(max_epochs=2, checkpoint=path).fit(images).n_epochs_done_ == 2
    # a lazy read of the same images is the same pool (both as checked: N, C, H, W)
    checked = images[:, None]
    assert images_fingerprint(checked) == images_fingerprint(LazyImages(images))
    assert images_fingerprint(checked) != images_fingerprint(other[:, None])


def test_a_checkpoint_of_0_1_0_still_resumes(pool, tmp_path):
    # its "data" key was the 64-image identity
    path = tmp_path / "ckpt.pt"
    images = np.ascontiguousarray(pool[:128])
    _interrupted_fit(images, path)
    saved = torch.load(path, weights_only=False)
    saved["training"]["data"] = _sampled_fingerprint(images[:, None])  # as the fit checks them
    torch.save(saved, path)
    resumed = small_encoder(max_epochs=2, checkpoint=path).fit(images)
    assert resumed.n_epochs_done_ == 2


def test_optimizer_settings_are_parameters_that_survive_clone():
    encoder = MoBYEncoder(optimizer__momentum=0.5)
    assert encoder.get_params()["optimizer__momentum"] == 0.5
    assert clone(encoder).get_params()["optimizer__momentum"] == 0.5
    assert MoBYEncoder().get_params()["optimizer__momentum"] == 0.9
    later = MoBYEncoder().set_params(optimizer__momentum=0.3)
    assert clone(later).optimizer__momentum == 0.3
    with pytest.raises(TypeError, match="optimizer__"):
        MoBYEncoder(momentum=0.5)


def test_the_optimizer_uses_the_momentum_given(pool):
    encoder = small_encoder(max_epochs=1, optimizer__momentum=0.5).fit(pool[:64])
    group = encoder.optimizer_.param_groups[0]
    assert group["momentum"] == 0.5 and group["weight_decay"] == encoder.weight_decay


# ---------------------------------------------------------------- modAL
def test_pipeline_in_a_real_modal_loop_keeps_the_pretraining(fitted_encoder, digits):
    from modAL.uncertainty import uncertainty_sampling

    from moby_al_plugin import ActiveLearner

    encoder = copy.deepcopy(fitted_encoder)
    before = _params(encoder.network_)
    X_pool, y_pool = digits.X_train[300:800], digits.y_train[300:800]
    learner = ActiveLearner(
        estimator=make_pipeline(FrozenEstimator(encoder), LogisticRegression(max_iter=2000)),
        query_strategy=uncertainty_sampling,
        X_training=digits.X_train[:50],
        y_training=digits.y_train[:50],
    )
    for _ in range(2):
        idx, _ = learner.query(X_pool, n_instances=25)
        learner.teach(X_pool[idx], y_pool[idx])
        X_pool, y_pool = np.delete(X_pool, idx, axis=0), np.delete(y_pool, idx)
    assert len(learner.X_training) == 100
    assert learner.estimator[0].estimator is encoder
    assert _same(before, _params(encoder.network_))  # teach refitted only the classifier
    assert learner.score(digits.X_test, digits.y_test) > 0.6


# ------------------------------------------------------------ pretrained=
def test_classifier_starts_from_the_pretrained_encoder(fitted_encoder, tiny_digits, tmp_path):
    path = tmp_path / "enc.pt"
    fitted_encoder.save(path)
    source = _params(fitted_encoder.network_)
    for pretrained in (fitted_encoder, str(path)):
        net = small_net(
            pretrained=pretrained, projection_dim=16, lr=0.0, max_epochs=1, contrastive_weight=0.0
        )
        net.fit(tiny_digits["X"], tiny_digits["y"])
        got = dict(net.module_.named_parameters())
        for name, value in got.items():
            if name.startswith(("encoder.", "encoder_momentum.", "projector", "predictor")):
                assert torch.equal(value, source[name]), name
        assert torch.equal(net.module_.input_mean, source["input_mean"])
    scratch = small_net(lr=0.0, max_epochs=1, projection_dim=16, contrastive_weight=0.0)
    scratch.fit(tiny_digits["X"], tiny_digits["y"])
    first = "encoder.features.0.weight"
    assert not torch.equal(dict(scratch.module_.named_parameters())[first], source[first])


def test_transform_before_fit_uses_the_pretrained_encoder(fitted_encoder, tiny_digits):
    net = small_net(pretrained=fitted_encoder)
    np.testing.assert_array_equal(
        net.transform(tiny_digits["X_test"]), fitted_encoder.transform(tiny_digits["X_test"])
    )
    with pytest.raises(NotFittedError):
        small_net().transform(tiny_digits["X_test"])


def test_clone_keeps_a_frozen_pretrained_encoder(fitted_encoder, tiny_digits):
    frozen = FrozenEstimator(fitted_encoder)
    net = clone(small_net(pretrained=frozen, max_epochs=1))
    assert net.pretrained is frozen
    net.fit(tiny_digits["X"], tiny_digits["y"])
    assert net.transform(tiny_digits["X"][:3]).shape[0] == 3
    # a bare encoder clones unfitted, as scikit-learn's rule says: the error shows the ways out
    cloned = clone(small_net(pretrained=fitted_encoder, max_epochs=1))
    with pytest.raises(MoBYALError, match="FrozenEstimator.*pretrained=path"):
        cloned.fit(tiny_digits["X"], tiny_digits["y"])


def test_pretrained_shape_mismatch_names_both_shapes(fitted_encoder, tmp_path):
    path = tmp_path / "enc.pt"
    fitted_encoder.save(path)
    X = np.random.default_rng(0).random((20, 3, 16, 16), dtype=np.float32)
    y = np.arange(20) % 2
    with pytest.raises(MoBYALError, match=r"\(3, 16, 16\).*\(1, 8, 8\)"):
        small_net(pretrained=path, max_epochs=1, views="natural").fit(X, y)
    with pytest.raises(MoBYALError, match="backbone"):
        small_net(pretrained=path, backbone="lenet5", max_epochs=1).fit(
            np.zeros((20, 1, 8, 8), dtype=np.float32), y
        )


def test_every_init_argument_is_documented():
    import inspect

    for name, param in inspect.signature(MoBYEncoder.__init__).parameters.items():
        if param.kind is param.VAR_KEYWORD:
            assert f"**{name}\n" in MoBYEncoder.__doc__, name
        elif name != "self":
            assert f"{name} :" in MoBYEncoder.__doc__, name


# ------------------------------------------------------ one training core
def test_pretraining_runs_on_skorch_with_the_shared_schedule(pool, tmp_path):
    from skorch import NeuralNet

    from moby_al_plugin.callbacks import EpochProgress, LRSchedule
    from moby_al_plugin.schedule import lr_factor

    encoder = small_encoder(max_epochs=2, lr=0.1).fit(pool[:128])
    assert isinstance(encoder, NeuralNet) and encoder.network_ is encoder.module_
    kinds = {type(cb) for _, cb in encoder.callbacks_}
    assert {LRSchedule, EpochProgress} <= kinds
    assert repr(encoder).startswith("MoBYEncoder(") and "module_" not in repr(encoder)
    # two batches of 64 per epoch: the rate of every step is lr * lr_factor(step, 4)
    lrs = [b["lr"] for epoch in encoder.history_ for b in epoch["batches"]]
    assert lrs == pytest.approx([0.1 * lr_factor(s, 4) for s in range(4)])
    assert encoder.momentum_step_ == encoder.total_steps_ == 4
    assert not [k for k in vars(encoder) if k.startswith("_fit")]  # no scratch left
    # a resumed fit continues the schedule where the interrupted one stopped
    path = tmp_path / "ckpt.pt"

    def stop_after_one(enc, epoch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_encoder(max_epochs=2, lr=0.1, checkpoint=path).fit(
            pool[:128], on_epoch_end=stop_after_one
        )
    resumed = small_encoder(max_epochs=2, lr=0.1, checkpoint=path).fit(pool[:128])
    assert [b["lr"] for b in resumed.history_[-1]["batches"]] == pytest.approx(lrs[2:])
    assert resumed.momentum_step_ == 4
    assert _same(_params(resumed.network_), _params(encoder.network_))

"""MoBYClassifier: joint training, inference, the sklearn contract, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from moby_al_plugin import MoBYClassifier
from moby_al_plugin.classifier import UnlabeledBatch
from moby_al_plugin.exceptions import MoBYALError

from .conftest import small_net


@pytest.fixture(scope="module")
def fitted(tiny_digits):
    net = small_net(max_epochs=3, lr=0.05, min_samples_per_epoch=480)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    return net


def _state(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def test_transform_straight_after_fit_gives_eval_features_and_keeps_the_statistics(
    tiny_digits,
):
    # skorch leaves the network in train mode after fit; features taken so would
    # depend on the batch and rewrite batch norm's running statistics
    net = small_net(max_epochs=1, train_samples=200)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    assert net.module_.training
    before = _state(net)
    X = tiny_digits["X_test"][:12]
    together = net.transform(X)
    one_by_one = np.concatenate([net.transform(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-5)
    after = _state(net)
    assert all(torch.equal(before[k], after[k]) for k in before), "transform changed the net"
    assert net.module_.training  # the mode it found is given back


def test_fit_predict_transform_shapes(fitted, tiny_digits):
    X_test = tiny_digits["X_test"]
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (150, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(fitted.predict(X_test)) <= set(range(10))
    features = fitted.transform(X_test)
    assert features.shape == (150, fitted.module_.feature_dim) and features.dtype == np.float32
    # measured: 0.68 trained, 0.09 for the same seeded net with lr=0
    assert fitted.score(X_test, tiny_digits["y_test"]) > 0.4
    untrained = small_net(max_epochs=3, lr=0.0, min_samples_per_epoch=480)
    untrained.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert untrained.score(X_test, tiny_digits["y_test"]) < 0.25


def test_step_counts_interleave_labelled_and_unlabelled(fitted):
    # 480 labelled draws / 32 -> 15 batches; ratio 1 -> 480 unlabelled -> 15; 3 epochs
    assert fitted.epoch_samples_ == 480
    assert fitted.total_steps_ == 3 * (15 + 15)
    assert fitted.momentum_step_ == fitted.total_steps_
    assert len(fitted.history[:, "unlabeled_loss"]) == 3
    assert fitted.history[-1, "train_batch_count"] == 30  # every step is a skorch batch


class _Recorder(Callback):
    """Records, at every optimiser step, the optimiser's rate and the batch kind."""

    def initialize(self):
        self.lrs, self.kinds, self.grads, self.ends = [], [], 0, 0
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.kinds.append("u" if isinstance(batch, UnlabeledBatch) else "l")

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        self.grads += 1
        self.lrs.append(net.optimizer_.param_groups[0]["lr"])

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.ends += training


def test_learning_rate_follows_milestones_over_real_steps(tiny_digits):
    recorder = _Recorder()
    net = small_net(
        max_epochs=2,
        lr=0.1,
        lr_milestones=(0.4, 0.8),
        lr_gamma=0.5,
        min_samples_per_epoch=320,
        callbacks=[("rec", recorder)],
    )
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    total = net.total_steps_
    assert total == 2 * (10 + 10) == len(recorder.lrs)
    expected = [
        0.1 * 0.5 ** ((i >= round(0.4 * total)) + (i >= round(0.8 * total))) for i in range(total)
    ]
    np.testing.assert_allclose(recorder.lrs, expected)


def test_every_optimiser_step_is_a_skorch_batch(tiny_digits):
    recorder = _Recorder()
    net = small_net(
        max_epochs=2, unlabeled_ratio=0.5, min_samples_per_epoch=256, callbacks=[("rec", recorder)]
    )
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    # 256 labelled draws -> 8 batches, 128 unlabelled -> 4 batches, per epoch
    assert net.total_steps_ == 2 * 12 == net.momentum_step_
    assert recorder.grads == recorder.ends == len(recorder.kinds) == net.total_steps_
    assert recorder.kinds == list("llu" * 8)  # unlabelled batches spread evenly
    assert sum(net.history[:, "train_batch_count"]) == net.total_steps_
    sizes = [b["train_batch_size"] for epoch in net.history for b in epoch["batches"]]
    assert sum(sizes) == 2 * (256 + 128)


def test_gradient_clipping_sees_unlabelled_steps(tiny_digits):
    from skorch.callbacks import GradientNormClipping

    calls = []
    original = GradientNormClipping.on_grad_computed

    def counting(self, net, named_parameters, **kwargs):
        calls.append(1)
        return original(self, net, named_parameters, **kwargs)

    GradientNormClipping.on_grad_computed = counting
    try:
        net = small_net(
            max_epochs=1, min_samples_per_epoch=None, callbacks=[GradientNormClipping(1.0)]
        )
        net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    finally:
        GradientNormClipping.on_grad_computed = original
    assert len(calls) == net.total_steps_ == 8


def _steps(n_labels: int, **params) -> int:
    """Optimiser steps of a 1-epoch supervised fit on ``n_labels`` tiny images."""
    rng = np.random.default_rng(0)
    X = rng.random((n_labels, 1, 8, 8), dtype=np.float32)
    y = np.arange(n_labels) % 3
    recorder = _Recorder()
    net = small_net(
        backbone=torch.nn.Flatten(),
        contrastive_weight=0.0,
        max_epochs=1,
        callbacks=[("rec", recorder)],
        **params,
    )
    net.fit(X, y)
    assert recorder.grads == net.total_steps_
    return recorder.grads


def test_small_labelled_sets_get_the_minimum_epoch():
    # counted on a fit with a linear "backbone": only the schedule matters here
    assert _steps(100, min_samples_per_epoch=640) == 20
    assert _steps(640, min_samples_per_epoch=640) == 20
    assert _steps(10_000, min_samples_per_epoch=640) == 313
    assert _steps(100, min_samples_per_epoch=None) == 4


def test_partial_fit_twice_continues_from_current_weights(tiny_digits):
    X, y, pool = tiny_digits["X"], tiny_digits["y"], tiny_digits["X_pool"]
    net = small_net(max_epochs=1, lr=0.05)
    net.partial_fit(X, y, X_unlabeled=pool)
    first = {k: p.detach().clone() for k, p in net.module_.named_parameters()}
    net.set_params(lr=0.0)
    net.partial_fit(X, y, X_unlabeled=pool)
    for name, p in net.module_.named_parameters():
        if "momentum" not in name:  # the key branch keeps moving towards the online one
            assert torch.equal(p, first[name]), name
    net.set_params(lr=0.05)
    net.partial_fit(X[:60], y[:60])
    moved = net.module_.classifier.weight
    assert not torch.equal(moved, first["classifier.weight"])
    assert net.total_steps_ == net.momentum_step_ == 2  # 60 labels, batch 32, one epoch


def _snapshot_at_start():
    class Snapshot(Callback):
        def on_train_begin(self, net, **kwargs):
            self.state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    return Snapshot()


def test_fit_moves_momentum_branch_and_fills_queues(tiny_digits):
    snap = _snapshot_at_start()
    net = small_net(max_epochs=2, lr=0.05, callbacks=[("snap", snap)])
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    before, after = snap.state_, net.module_.state_dict()
    for online, key in [("encoder", "encoder_momentum"), ("projector", "projector_momentum")]:
        names = [
            k
            for k in after
            if k.startswith(key + ".") and "running" not in k and "num_batches" not in k
        ]
        assert names
        for name in names:
            twin = online + name[len(key) :]
            assert not torch.equal(after[name], before[name]), name  # it moved ...
            gap_before = (before[name] - after[twin]).norm()
            gap_after = (after[name] - after[twin]).norm()
            assert gap_after < gap_before, name  # ... towards the online branch
    # 16 steps of 30 or 32 keys into queues of 64: every column was written
    written = (after["queue_strong"] != before["queue_strong"]).any(dim=0)
    assert bool(written.all())
    assert bool((after["queue_weak"] != before["queue_weak"]).any(dim=0).all())
    assert int(after["queue_pointer"]) == (2 * 240) % 64


def test_network_parameters_have_one_route(tiny_digits):
    X, y = tiny_digits["X"], tiny_digits["y"]
    with pytest.raises(MoBYALError, match="projection_dim.*module__projection_dim"):
        small_net(projection_dim=64, module__projection_dim=32, max_epochs=1).fit(X, y)
    for name, top, sub in [
        ("head_layout", "bn_relu", "linear"),
        ("queue_size", 64, 32),
        ("temperature", 0.2, 0.1),
    ]:
        with pytest.raises(MoBYALError, match=name):
            small_net(**{name: top, f"module__{name}": sub}, max_epochs=1).fit(X, y)
    net = small_net(projection_dim=16, module__projection_dim=16, max_epochs=1).fit(X, y)
    assert net.module_.queue_strong.shape == (16, 64)
    net = small_net(projection_dim=24, max_epochs=1).fit(X, y)
    assert net.module_.queue_strong.shape == (24, 64)


def test_backbone_module_is_copied_at_every_cold_fit(tiny_digits):
    from moby_al_plugin.network.backbones import SmallCNN

    template = SmallCNN(1, widths=(8, 16))
    original = {k: v.clone() for k, v in template.state_dict().items()}
    net = small_net(backbone=template, max_epochs=1, lr=0.05)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    assert net.module_.encoder is not template
    assert net.module_.feature_dim == 16
    for name, value in template.state_dict().items():
        assert torch.equal(value, original[name]), name  # the template is never trained
    trained = net.module_.encoder.features[0].weight.detach().clone()
    net.set_params(lr=0.0)
    net.fit(tiny_digits["X"], tiny_digits["y"])  # cold: starts from the template again
    assert torch.equal(net.module_.encoder.features[0].weight, original["features.0.weight"])
    assert not torch.equal(trained, original["features.0.weight"])
    twin = clone(net)
    assert twin.backbone is not template


def test_torch_tensors_are_accepted(tiny_digits):
    X = torch.from_numpy(tiny_digits["X"])
    net = small_net(max_epochs=1).fit(
        X, torch.from_numpy(tiny_digits["y"]), X_unlabeled=torch.from_numpy(tiny_digits["X_pool"])
    )
    reference = small_net(max_epochs=1).fit(
        tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"]
    )
    np.testing.assert_allclose(net.predict_proba(X[:5]), reference.predict_proba(X[:5].numpy()))


def test_unfitted_transform_raises_not_fitted(tiny_digits):
    with pytest.raises(NotFittedError):
        small_net().transform(tiny_digits["X"])


def test_unlabeled_ratio_sets_unlabelled_steps(tiny_digits):
    net = small_net(max_epochs=1, unlabeled_ratio=2.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 4 + 8  # 240 unlabelled samples in batches of 32
    net = small_net(max_epochs=1, unlabeled_ratio=0.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 4


def test_contrastive_every_keeps_the_loss_on_every_kth_labelled_batch(tiny_digits, monkeypatch):
    passes = []
    original = MoBYClassifier._contrastive_pass

    def counting_pass(self, batch):
        passes.append("u" if isinstance(batch, UnlabeledBatch) else "l")
        return original(self, batch)

    monkeypatch.setattr(MoBYClassifier, "_contrastive_pass", counting_pass)
    # 120 labels -> 4 labelled batches an epoch; ratio 0.5 -> 60 unlabelled -> 2 batches
    net = small_net(max_epochs=2, contrastive_every=3, unlabeled_ratio=0.5)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 2 * (4 + 2)
    # labelled batches 1, 4, 7 of 8 (counted over the fit) and every unlabelled one
    assert passes.count("l") == 3 and passes.count("u") == 4
    assert len(net.history[:, "contrastive_loss"]) == 2  # recorded in both epochs
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="contrastive_every"):
            small_net(contrastive_every=bad).fit(tiny_digits["X"], tiny_digits["y"])


def test_no_labelled_loss_on_unlabelled_batches(tiny_digits, monkeypatch):
    net = small_net(max_epochs=2)
    calls = []
    original = MoBYClassifier.get_loss

    def counting_get_loss(self, y_pred, y_true, *args, **kwargs):
        calls.append(len(y_true))
        return original(self, y_pred, y_true, *args, **kwargs)

    monkeypatch.setattr(MoBYClassifier, "get_loss", counting_get_loss)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    # only the 120 labelled images, twice, ever reach the cross-entropy
    assert sum(calls) == 2 * 120
    assert net.total_steps_ == 2 * 8


def test_classifier_head_is_trained(tiny_digits):
    net = small_net(max_epochs=1)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    net_again = small_net(max_epochs=1, lr=0.0)
    net_again.fit(tiny_digits["X"], tiny_digits["y"])
    # same seed, same initial head: only training moves it
    initial = net_again.module_.classifier.weight
    assert not torch.allclose(net.module_.classifier.weight, initial)


def test_inference_leaves_queues_and_momentum_branch_alone(fitted, tiny_digits):
    before = _state(fitted)
    fitted.predict_proba(tiny_digits["X_test"])
    fitted.transform(tiny_digits["X_test"])
    fitted.score(tiny_digits["X_test"], tiny_digits["y_test"])
    after = _state(fitted)
    for name, value in before.items():
        assert torch.equal(value, after[name]), name


def test_same_random_state_gives_identical_fits(tiny_digits):
    nets = []
    for _ in range(2):
        net = small_net(max_epochs=2)
        net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
        nets.append(net)
    for (name, a), b in zip(_state(nets[0]).items(), _state(nets[1]).values()):
        assert torch.equal(a, b), name
    other = small_net(max_epochs=2, random_state=1)
    other.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert not torch.equal(other.module_.classifier.weight, nets[0].module_.classifier.weight)


def test_warm_start_continues_from_previous_fit(tiny_digits):
    net = small_net(max_epochs=2, warm_start=True)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    trained = net.module_.encoder.state_dict()
    first_conv = next(iter(trained))
    snapshot = trained[first_conv].clone()
    net.set_params(lr=0.0)
    net.fit(tiny_digits["X"][:60], tiny_digits["y"][:60])
    assert torch.equal(net.module_.encoder.state_dict()[first_conv], snapshot)
    cold = small_net(max_epochs=2, lr=0.0)
    cold.fit(tiny_digits["X"], tiny_digits["y"])
    assert not torch.equal(cold.module_.encoder.state_dict()[first_conv], snapshot)


def test_warm_start_rejects_new_class_without_classes(tiny_digits):
    X, y = tiny_digits["X"], tiny_digits["y"]
    keep = y < 5
    net = small_net(max_epochs=1, warm_start=True)
    net.fit(X[keep], y[keep])
    with pytest.raises(ValueError, match="not among the classes"):
        net.fit(X, y)
    net = small_net(max_epochs=1, warm_start=True, classes=list(range(10)))
    net.fit(X[keep], y[keep])
    net.fit(X, y)
    assert net.predict_proba(X[:3]).shape == (3, 10)


def test_string_labels_round_trip(tiny_digits):
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    net = small_net(max_epochs=1)
    net.fit(tiny_digits["X"], names[tiny_digits["y"]])
    assert set(net.predict(tiny_digits["X_test"])) <= set(names)


@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc", "uint8"])
def test_array_layouts_are_equivalent(tiny_digits, layout):
    X = tiny_digits["X"]
    variants = {
        "nhw": X,
        "nchw": X[:, None],
        "nhwc": X[..., None],
        "uint8": np.round(X * 255).astype(np.uint8),
    }
    reference = small_net(max_epochs=1).fit(X, tiny_digits["y"]).predict_proba(X[:10])
    got = small_net(max_epochs=1).fit(variants[layout], tiny_digits["y"])
    got = got.predict_proba(variants[layout][:10])
    np.testing.assert_allclose(got, reference, atol=1e-2 if layout == "uint8" else 1e-6)


def test_rgb_images_with_natural_views():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    net = small_net(max_epochs=1, views="natural")
    net.fit(X, y, X_unlabeled=X[:20])
    assert net.n_channels_in_ == 3
    assert net.transform(X).shape[0] == 40


# ---------------------------------------------------------------- contract
def test_clone_and_params_round_trip():
    net = small_net(max_epochs=3, unlabeled_ratio=2.0, optimizer__momentum=0.5)
    params = net.get_params()
    for key in [
        "backbone",
        "unlabeled_ratio",
        "contrastive_weight",
        "views",
        "random_state",
        "lr_milestones",
        "optimizer__momentum",
        "projection_dim",
        "max_epochs",
        "min_samples_per_epoch",
        "pretrained",
    ]:
        assert key in params, key
    assert params["unlabeled_ratio"] == 2.0
    twin = clone(net)
    assert twin.get_params()["optimizer__momentum"] == 0.5
    twin.set_params(unlabeled_ratio=0.5, lr=0.2)
    assert twin.unlabeled_ratio == 0.5 and twin.lr == 0.2
    assert net.unlabeled_ratio == 2.0


def test_pickle_fitted_net(fitted, tiny_digits):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(
        restored.predict_proba(tiny_digits["X_test"]), fitted.predict_proba(tiny_digits["X_test"])
    )


def test_a_net_pickled_before_precision_existed_loads_as_float32(fitted, tiny_digits):
    state = fitted.__getstate__()
    added = ("contrastive_every", "pseudo_label_weight", "pseudo_label_threshold")
    for name in ("precision", "n_threads", "pseudo_label_thresholds", *added):
        del state[name]
    old = MoBYClassifier.__new__(MoBYClassifier)
    old.__setstate__(state)
    assert (old.precision, old.n_threads) == ("fp32", None)
    assert (old.contrastive_every, old.pseudo_label_weight) == (1, 0.0)
    assert (old.pseudo_label_threshold, old.pseudo_label_thresholds) == (0.95, "fixed")
    assert old.predict(tiny_digits["X_test"]).shape == (150,)


def test_grid_search_over_one_parameter(tiny_digits):
    X, y = tiny_digits["X"][:100], tiny_digits["y"][:100]
    search = GridSearchCV(small_net(max_epochs=1), {"lr": [0.01, 0.05]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["lr"] in (0.01, 0.05)
    assert search.predict(X[:5]).shape == (5,)


def test_every_init_argument_is_documented():
    import inspect

    doc = MoBYClassifier.__doc__
    for name in inspect.signature(MoBYClassifier.__init__).parameters:
        if name in ("self", "kwargs"):
            continue
        assert f"{name} :" in doc, name


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (X.reshape(len(X), -1), y), "2-D array"),
        (lambda X, y: (X[:, None, None], y), "5-D array"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y), "NaN"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y), "inf"),
        (lambda X, y: (X, y[:-1]), "same length"),
        (lambda X, y: (X, np.zeros_like(y)), "single class"),
        (lambda X, y: (X[:0], y[:0]), "empty"),
        (lambda X, y: (X * 16, y), "scaled to \\[0, 1\\]"),
        (lambda X, y: (X.astype(str), y), "numeric"),
    ],
)
def test_bad_training_input_raises_before_training(tiny_digits, make, match):
    X, y = make(tiny_digits["X"], tiny_digits["y"])
    net = small_net()
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(X, y)
    assert not hasattr(net, "module_")


def test_unknown_backbone(tiny_digits):
    with pytest.raises(ValueError, match="small_cnn"):
        small_net(backbone="no_such_net").fit(tiny_digits["X"], tiny_digits["y"])


def test_images_too_small_for_backbone(tiny_digits):
    with pytest.raises(ValueError, match="too small"):
        small_net(backbone="vgg11").fit(tiny_digits["X"], tiny_digits["y"])


def test_channel_count_must_match_fitted(fitted, tiny_digits):
    rgb = np.repeat(tiny_digits["X_test"][:, None], 3, axis=1)
    with pytest.raises(ValueError, match="3 channels"):
        fitted.predict(rgb)
    with pytest.raises(ValueError, match="fitted on 8x8"):
        fitted.transform(np.zeros((2, 1, 16, 16), dtype=np.float32))


def test_unlabeled_pool_must_match_labelled_images(tiny_digits):
    with pytest.raises(ValueError, match="X_unlabeled"):
        small_net().fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=np.zeros((5, 3, 8, 8)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(tiny_digits):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        small_net(device="cuda").fit(tiny_digits["X"], tiny_digits["y"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_cuda(tiny_digits):
    net = small_net(device="cuda").fit(
        tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"]
    )
    assert net.transform(tiny_digits["X_test"]).shape[0] == 150


def test_zero_contrastive_weight_is_a_supervised_baseline(tiny_digits, monkeypatch):
    from moby_al_plugin.network.moby_network import MoBYNetwork

    def fail(*args, **kwargs):
        raise AssertionError("the contrastive pass ran")

    monkeypatch.setattr(MoBYNetwork, "contrastive_forward", fail)
    net = small_net(max_epochs=6, lr=0.05, contrastive_weight=0.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 6 * 4  # labelled batches only (no padding in small_net)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]  # it learns
    assert net.score(tiny_digits["X"], tiny_digits["y"]) > 0.5

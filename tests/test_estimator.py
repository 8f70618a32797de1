"""MoBYClassifier: joint training, inference, the sklearn contract, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from moby_al_plugin import MoBYClassifier

from .conftest import small_net


@pytest.fixture(scope="module")
def fitted(tiny_digits):
    net = small_net(max_epochs=3)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    return net


def _state(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def test_fit_predict_transform_shapes(fitted, tiny_digits):
    X_test = tiny_digits["X_test"]
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (150, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(fitted.predict(X_test)) <= set(range(10))
    assert fitted.transform(X_test).shape == (150, fitted.module_.feature_dim)
    assert 0.0 <= fitted.score(X_test, tiny_digits["y_test"]) <= 1.0


def test_step_counts_interleave_labelled_and_unlabelled(fitted):
    # 120 labelled / 32 -> 4 batches; ratio 1 -> 120 unlabelled -> 4 batches; 3 epochs
    assert fitted.total_steps_ == 3 * (4 + 4)
    assert fitted.momentum_step_ == fitted.total_steps_
    assert len(fitted.history[:, "unlabeled_loss"]) == 3
    assert fitted.history[-1, "train_batch_count"] == 4


def test_learning_rate_follows_milestones(tiny_digits):
    net = small_net(max_epochs=5, lr=0.1, lr_milestones=(0.4, 0.8), lr_gamma=0.5)
    net.fit(tiny_digits["X"], tiny_digits["y"])
    np.testing.assert_allclose(net.history[:, "lr"], [0.1, 0.1, 0.05, 0.05, 0.025])


def test_unlabeled_ratio_sets_unlabelled_steps(tiny_digits):
    net = small_net(max_epochs=1, unlabeled_ratio=2.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 4 + 8  # 240 unlabelled samples in batches of 32
    net = small_net(max_epochs=1, unlabeled_ratio=0.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 4


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
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
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
    for key in ["backbone", "unlabeled_ratio", "contrastive_weight", "views", "random_state",
                "lr_milestones", "optimizer__momentum", "module__projection_dim", "max_epochs"]:
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
    net = small_net(device="cuda").fit(tiny_digits["X"], tiny_digits["y"],
                                        X_unlabeled=tiny_digits["X_pool"])
    assert net.transform(tiny_digits["X_test"]).shape[0] == 150


def test_zero_contrastive_weight_is_a_supervised_baseline(tiny_digits, monkeypatch):
    from moby_al_plugin.moby import MoBYNetwork

    def fail(*args, **kwargs):
        raise AssertionError("the contrastive pass ran")

    monkeypatch.setattr(MoBYNetwork, "contrastive_forward", fail)
    net = small_net(max_epochs=6, lr=0.05, contrastive_weight=0.0)
    net.fit(tiny_digits["X"], tiny_digits["y"], X_unlabeled=tiny_digits["X_pool"])
    assert net.total_steps_ == 6 * 4  # labelled batches only
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0]  # it learns
    assert net.score(tiny_digits["X"], tiny_digits["y"]) > 0.5

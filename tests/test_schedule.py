"""The training schedule: the converged rule, epochs, learning rates and bad values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moby_al_plugin import MoBYClassifier
from moby_al_plugin.schedule import (
    check_schedule,
    converged_train_samples,
    epoch_size,
    even_batches,
    lr_factor,
)

from .conftest import small_net

# The least compute (labelled samples per fit) that benchmarks/learner.py
# --study convergence found converged at its smallest budget, 200 labels
# (batch 32: 75.49 at 100,000 samples, 75.56 at 200,000; 3 seeds).
STUDY_CONVERGED_AT_200 = 100_000


def test_rule_at_10_1000_and_10000_labels():
    # hand-computed: max(100,000, min(100,000 * (n / 600)^2, 400,000 * sqrt(n / 1,200)))
    assert converged_train_samples(10) == 100_000
    assert converged_train_samples(300) == 100_000
    assert converged_train_samples(600) == 100_000  # the floor, exactly
    assert converged_train_samples(800) == 177_778  # 100,000 * (4/3)^2
    assert converged_train_samples(1_000) == 277_778  # 100,000 * (5/3)^2
    assert converged_train_samples(1_200) == 400_000  # both branches meet
    assert converged_train_samples(4_800) == 800_000  # 400,000 * sqrt(4)
    assert converged_train_samples(10_000) == 1_154_701  # 400,000 * 2.8867513
    # optimiser steps of the default fit (10 epochs, batch 32): 10 epochs of
    # 10,000 samples (313 batches), of 27,778 (869) and of 115,471 (3,609)
    steps = {n: 10 * len(even_batches(epoch_size(n, 10), 32)) for n in (10, 1_000, 10_000)}
    assert steps == {10: 3_130, 1_000: 8_690, 10_000: 36_090}


def test_the_rules_batch_is_every_learners_default():
    from moby_al_plugin.experiments import ExperimentConfig
    from moby_al_plugin.labelling.training import RoundSettings
    from moby_al_plugin.schedule import RULE_BATCH_SIZE, RULE_LR

    net = MoBYClassifier()
    config = ExperimentConfig()
    assert (net.batch_size, net.lr) == (config.batch_size, config.lr) == (32, 0.05)
    assert (RULE_BATCH_SIZE, RULE_LR) == (32, 0.05)
    assert RoundSettings().batch_size == RULE_BATCH_SIZE


def test_max_epochs_splits_the_rule_and_adds_compute_only_past_it():
    # fewer, longer epochs or more, shorter ones: the same samples
    assert 5 * epoch_size(100, 5) == 50 * epoch_size(100, 50) == 100_000
    # skorch's epochs (one pass each) once they exceed the rule
    assert epoch_size(100, 1_000) == 100
    assert epoch_size(1_000, 10, train_samples=None) == 1_000
    assert epoch_size(1_000, 10, train_samples=None, min_samples_per_epoch=3_000) == 3_000
    assert epoch_size(1_000, 10, train_samples=20_001) == 2_001


def test_lr_factor_against_hand_values():
    # past the last step the cosine stays at 0; it does not climb back up
    assert lr_factor(10, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(15, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(20, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 10) == 1.0
    assert lr_factor(5, 10) == pytest.approx(0.5)
    assert lr_factor(2, 8) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert [lr_factor(s, 10, "step") for s in (5, 6, 7, 8, 9)] == pytest.approx(
        [1.0, 0.1, 0.1, 0.01, 0.01]
    )


def _default_net(**params) -> MoBYClassifier:
    # a linear "backbone": the schedule is what is measured, not the network
    return MoBYClassifier(
        backbone=torch.nn.Flatten(), contrastive_weight=0.0, random_state=0, **params
    )


def test_default_fit_at_100_labels_trains_what_the_study_says_converges():
    rng = np.random.default_rng(0)
    X = rng.random((100, 1, 8, 8), dtype=np.float32)
    y = np.arange(100) % 4
    net = _default_net().fit(X, y)
    seen = net.epoch_samples_ * net.max_epochs
    assert seen >= STUDY_CONVERGED_AT_200
    assert net.total_steps_ >= STUDY_CONVERGED_AT_200 / net.batch_size
    assert net.history[-1, "lr"] < net.lr / 10  # cosine: nearly annealed at the end
    # a user's max_epochs splits the same compute
    net_50 = _default_net(max_epochs=50).fit(X, y)
    assert net_50.epoch_samples_ * 50 == seen and len(net_50.history) == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("train_samples", 0),
        ("train_samples", -5),
        ("train_samples", "many"),
        ("train_samples", 2.5),
        ("max_epochs", 0),
        ("batch_size", -1),
        ("batch_size", True),
        ("lr", float("nan")),
        ("lr", -0.1),
        ("lr_gamma", 0),
        ("min_samples_per_epoch", -1),
        ("lr_schedule", "linear"),
        ("lr_milestones", (0.5, 1.5)),
    ],
)
def test_bad_schedule_values_are_named_before_training(tiny_digits, name, value):
    net = small_net(**{name: value})
    with pytest.raises(ValueError, match=name):
        net.fit(tiny_digits["X"], tiny_digits["y"])
    assert not getattr(net, "initialized_", False)  # refused before any training


def test_check_schedule_accepts_the_defaults_and_a_zero_lr():
    params = {
        k: MoBYClassifier().get_params()[k]
        for k in (
            "max_epochs",
            "batch_size",
            "lr",
            "train_samples",
            "min_samples_per_epoch",
            "lr_schedule",
            "lr_milestones",
            "lr_gamma",
        )
    }
    check_schedule(**params)
    check_schedule(**{**params, "lr": 0.0, "train_samples": None})


def test_supervised_and_pretrained_learners_get_the_same_rule(digits):
    from moby_al_plugin.experiments import ExperimentConfig
    from moby_al_plugin.experiments.runner import PreparedData, _make_net
    from moby_al_plugin.selection.registry import STRATEGIES

    config = ExperimentConfig(dataset="digits", strategies=("random", "random_pretrained"))
    data = PreparedData(config)
    nets = {
        name: _make_net(config, STRATEGIES[name], data, False, "encoder.pt")
        for name in ("random", "random_pretrained", "mobyv2al")
    }
    keys = (
        "train_samples",
        "max_epochs",
        "batch_size",
        "lr",
        "lr_schedule",
        "min_samples_per_epoch",
    )
    schedules = {name: {k: net.get_params()[k] for k in keys} for name, net in nets.items()}
    assert schedules["random"] == schedules["random_pretrained"] == schedules["mobyv2al"]
    assert schedules["random"]["train_samples"] == "auto"
    assert nets["random_pretrained"].pretrained == "encoder.pt"
    assert nets["random"].pretrained is None


class _InputRecorder(torch.nn.Module):
    """A linear "backbone" that keeps every training batch it sees."""

    def __init__(self):
        super().__init__()
        self.flatten = torch.nn.Flatten()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.flatten(x)


@pytest.mark.parametrize(("views", "flips"), [("digits", False), ("grayscale", True)])
def test_supervised_augmentation_flips_only_where_the_views_allow(views, flips):
    # left half bright, right half dark: a mirrored image is bright on the right
    X = np.zeros((64, 1, 8, 8), dtype=np.float32)
    X[:, :, :, :4] = 1.0
    y = np.arange(64) % 2
    net = MoBYClassifier(
        backbone=_InputRecorder(),
        contrastive_weight=0.0,
        views=views,
        train_samples=None,
        max_epochs=4,
        random_state=0,
    )
    net.fit(X, y)
    batches = torch.cat(net.module_.encoder.seen)
    mirrored = batches[..., 4:].mean(dim=(1, 2, 3)) > batches[..., :4].mean(dim=(1, 2, 3))
    assert batches.shape[0] == 4 * 64
    assert bool(mirrored.any()) is flips

"""Graph pseudo-labels for the experiments: features, targets, and a real run."""

from __future__ import annotations

import numpy as np

from moby_al_plugin.experiments import ExperimentConfig, run_experiment
from moby_al_plugin.semi_supervised.graph_pseudo_labels import (
    graph_targets,
    pixel_pca_features,
    pool_graph,
)

from .test_runner import TINY


def _two_chains(n: int = 15) -> np.ndarray:
    """Two arcs of the unit circle, 2 degrees apart within, opposite each other: the
    graph compares directions, and each point's 10 nearest lie on its own arc."""
    angles = np.radians(np.r_[np.arange(n) * 2.0, 180 + np.arange(n) * 2.0])
    return np.c_[np.cos(angles), np.sin(angles)]


def test_each_chain_takes_the_label_of_its_labelled_end():
    graph = pool_graph(_two_chains())
    y = np.r_[np.zeros(15, int), np.ones(15, int)]
    labeled, unlabeled = np.array([0, 15]), np.r_[1:15, 16:30]
    targets = graph_targets(graph, y, labeled, unlabeled, np.arange(3), share=1.0)
    assert targets.shape == (28, 3)  # a column for the class with no label too
    np.testing.assert_array_equal(targets.argmax(axis=1), y[unlabeled])
    np.testing.assert_array_equal(targets.sum(axis=1), np.ones(28))
    # half the pool: 14 rows get a target, the rest none
    half = graph_targets(graph, y, labeled, unlabeled, np.arange(3), share=0.5)
    assert targets_count(half) == 14
    # with class mass normalisation the same two chains, each by its own label
    cmn = graph_targets(graph, y, labeled, unlabeled, np.arange(3), 1.0, True)
    np.testing.assert_array_equal(cmn.argmax(axis=1), y[unlabeled])


def test_class_mass_normalization_reaches_the_targets(digits):
    """Eight labels of digit 0, one of each other digit (seed 4): the normalised graph
    gives more right targets (measured on the same graph through
    LabelSpreadingClassifier: 80.0 % of the pool against 75.9 %)."""
    graph = pool_graph(digits.X_train.reshape(len(digits.X_train), -1))
    y = digits.y_train
    rng = np.random.default_rng(4)
    zeros = rng.choice(np.flatnonzero(y == 0), 8, replace=False)
    labeled = np.r_[zeros, [rng.choice(np.flatnonzero(y == c)) for c in range(1, 10)]]
    unlabeled = np.setdiff1d(np.arange(len(y)), labeled)
    right = {
        cmn: np.mean(
            graph_targets(graph, y, labeled, unlabeled, np.arange(10), 1.0, cmn).argmax(1)
            == y[unlabeled]
        )
        for cmn in (False, True)
    }
    assert right[True] > right[False] + 0.02, right


def test_the_pool_graph_links_each_image_to_its_nearest():
    graph = pool_graph(_two_chains())
    assert graph.shape == (30, 30) and (graph != graph.T).nnz == 0
    assert graph.diagonal().sum() == 0
    # no link between the arcs: every neighbour of the first arc's points is on it
    assert graph[:15, 15:].nnz == 0 and graph[:15, :15].nnz > 0


def targets_count(targets: np.ndarray) -> int:
    return int((targets.sum(axis=1) > 0).sum())


def test_pixel_pca_features_keep_fifty_components_at_most(digits):
    features = pixel_pca_features(digits.X_train[:200])
    assert features.shape == (200, 50) and features.dtype == np.float32
    assert pixel_pca_features(digits.X_train[:20]).shape == (20, 20)


def test_a_run_trains_on_the_graph_pseudo_labels(tmp_path):
    """Half the pool gets a one-hot target and the rest none, so about half of each
    unlabelled batch passes the fixed threshold: the network's own predictions after
    two tiny epochs pass it for almost no image."""
    config = ExperimentConfig(
        **{**TINY, "strategies": ("random",), "cycles": 1},
        contrastive_weight=0.0,
        pseudo_label_weight=1.0,
        graph_pseudo_labels=0.5,
        pseudo_label_mode="consistency",
    )
    run_experiment(config, tmp_path / "graph", progress=False, log=None, plot=False)
    own = ExperimentConfig(
        **{**TINY, "strategies": ("random",), "cycles": 1},
        contrastive_weight=0.0,
        pseudo_label_weight=1.0,
        graph_pseudo_labels=0.0,
        pseudo_label_mode="consistency",
    )
    run_experiment(own, tmp_path / "own", progress=False, log=None, plot=False)
    graph_share = _last_shares(tmp_path / "graph")
    own_share = _last_shares(tmp_path / "own")
    assert all(0.3 < share < 0.7 for share in graph_share), graph_share
    assert all(share < 0.2 for share in own_share), own_share


def test_a_run_learns_the_graph_labels_as_extra_labels_by_default(tmp_path):
    """The library's default learner: half the unlabelled pool joins each fit as labels,
    at the compute of the real labels; pseudo_label_weight 0 turns it all off."""
    config = ExperimentConfig(**{**TINY, "strategies": ("random",), "cycles": 1})
    assert (config.pseudo_label_mode, config.graph_pseudo_labels) == ("labels", 0.5)
    run_experiment(config, tmp_path / "default", progress=False, log=None, plot=False)
    plain = ExperimentConfig(
        **{**TINY, "strategies": ("random",), "cycles": 1}, pseudo_label_weight=0.0
    )
    run_experiment(plain, tmp_path / "plain", progress=False, log=None, plot=False)
    assert _last_shares(tmp_path / "default") == [0.5]
    nets = [_last_net(tmp_path / name) for name in ("default", "plain")]
    assert "pseudo_label_share" not in nets[1].history[-1]
    assert nets[0].epoch_samples_ == nets[1].epoch_samples_
    assert nets[0].total_steps_ == nets[1].total_steps_


def test_an_old_configuration_loads_without_self_training():
    stored = ExperimentConfig(**TINY).to_dict()
    for name in ("pseudo_label_weight", "graph_pseudo_labels", "graph_class_mass_normalization",
                 "pseudo_label_mode"):  # fmt: skip
        del stored[name]
    old = ExperimentConfig.from_dict(stored)
    assert old.pseudo_label_weight == 0.0 and old.graph_pseudo_labels == 0.0
    assert old.graph_class_mass_normalization is False
    assert old.pseudo_label_mode == "consistency"


def _last_net(folder):
    import pickle

    (path,) = sorted((folder / "state").glob("random-trial*.pkl"))
    with open(path, "rb") as f:
        return pickle.load(f).net


def _last_shares(folder) -> list[float]:
    import pickle

    shares = []
    for path in sorted((folder / "state").glob("random-trial*.pkl")):
        with open(path, "rb") as f:
            state = pickle.load(f)
        shares.append(state.net.history[-1]["pseudo_label_share"])
    return shares

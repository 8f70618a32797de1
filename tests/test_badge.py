"""BADGE: gradient embeddings, k-means++ seeding and the modAL query strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modAL.uncertainty import margin_sampling
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from moby_al_plugin import ActiveLearner, badge_sampling
from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.selection.badge import gradient_embedding, kmeans_plus_plus_seeds
from moby_al_plugin.selection.registry import STRATEGIES

from .conftest import small_net
from .mock import FakeLearner, FeatureEstimator, ProbaEstimator


def _ids(n, offset=0):
    return np.arange(offset, offset + n).reshape(-1, 1)


# ---------------------------------------------------------------- embedding
def test_gradient_embedding_hand_computed():
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    features = np.array([[1.0, 2.0], [3.0, -1.0]])
    # row 0 predicts class 0: p - onehot = (-0.3, 0.3); times (1, 2), class by class
    # row 1 predicts class 1: p - onehot = (0.2, -0.2); times (3, -1)
    expected = np.array(
        [
            [-0.3, -0.6, 0.3, 0.6],
            [0.6, -0.2, -0.6, 0.2],
        ]
    )
    np.testing.assert_allclose(gradient_embedding(proba, features), expected)


def test_gradient_embedding_is_the_cross_entropy_gradient_of_the_last_layer():
    rng = np.random.default_rng(0)
    h = torch.tensor(rng.normal(size=(5, 3)))
    layer = torch.nn.Linear(3, 4, bias=False).double()
    logits = layer(h)
    proba = torch.softmax(logits, dim=1).detach().numpy()
    expected = []
    for i in range(5):
        layer.zero_grad()
        label = torch.tensor([int(proba[i].argmax())])
        torch.nn.functional.cross_entropy(layer(h[i : i + 1]), label).backward()
        expected.append(layer.weight.grad.numpy().reshape(-1).copy())
    np.testing.assert_allclose(gradient_embedding(proba, h.numpy()), expected, atol=1e-12)


def test_gradient_embedding_validates_its_inputs():
    with pytest.raises(ValueError, match="proba must be a 2-D"):
        gradient_embedding(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="features must be a 2-D"):
        gradient_embedding(np.zeros((3, 2)), np.zeros((3, 2, 1)))
    with pytest.raises(ValueError, match="3 rows and features 4"):
        gradient_embedding(np.zeros((3, 2)), np.zeros((4, 2)))
    bad = np.ones((3, 2))
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="features contains NaN"):
        gradient_embedding(np.ones((3, 2)) / 2, bad)
    with pytest.raises(ValueError, match="proba contains NaN"):
        gradient_embedding(bad, np.ones((3, 2)))
    half, ones = np.full((2, 2), 0.5, np.float32), np.ones((2, 3), np.float32)
    assert gradient_embedding(half, ones).dtype == np.float32  # no float64 copy


# ------------------------------------------------------------------ k-means++
def test_kmeans_plus_plus_distinct_and_reproducible():
    X = np.random.default_rng(1).normal(size=(60, 5))
    a = kmeans_plus_plus_seeds(X, 60, random_state=3)
    assert sorted(a.tolist()) == list(range(60))
    b = kmeans_plus_plus_seeds(X, 15, random_state=7)
    c = kmeans_plus_plus_seeds(X, 15, random_state=7)
    assert b.tolist() == c.tolist() and len(set(b.tolist())) == 15
    assert b[0] == np.argmax((X**2).sum(axis=1))  # the largest norm first


def test_kmeans_plus_plus_spreads_over_separated_groups():
    rng = np.random.default_rng(2)
    near = 0.01 * rng.normal(size=(50, 3))
    far = 100.0 + 0.01 * rng.normal(size=(50, 3))
    X = np.concatenate([near, far])
    for seed in range(5):
        picks = kmeans_plus_plus_seeds(X, 2, random_state=seed)
        assert sorted(p >= 50 for p in picks) == [False, True], picks


def test_kmeans_plus_plus_never_repeats_on_zero_distances():
    # every embedding zero (a classifier certain of every candidate), or duplicates
    picks = kmeans_plus_plus_seeds(np.zeros((10, 4)), 10, random_state=0)
    assert sorted(picks.tolist()) == list(range(10))
    X = np.repeat(np.eye(2), 4, axis=0)
    picks = kmeans_plus_plus_seeds(X, 8, random_state=0)
    assert sorted(picks.tolist()) == list(range(8))
    assert {int(X[p].argmax()) for p in picks[:2]} == {0, 1}


def test_kmeans_plus_plus_validates_its_inputs():
    with pytest.raises(ValueError, match="between 1 and the 3 rows"):
        kmeans_plus_plus_seeds(np.zeros((3, 2)), 4)
    with pytest.raises(TypeError, match="n must be an integer"):
        kmeans_plus_plus_seeds(np.zeros((3, 2)), 1.5)
    with pytest.raises(ValueError, match="embedding contains NaN"):
        kmeans_plus_plus_seeds(np.full((3, 2), np.nan), 1)


def test_kmeans_plus_plus_at_the_size_of_a_real_query():
    # 10,000 candidates, 10 classes and 128 features: no copy of the embedding per seed
    X = np.random.default_rng(0).normal(size=(10_000, 1_280)).astype(np.float32)
    picks = kmeans_plus_plus_seeds(X, 20, random_state=0)
    assert len(set(picks.tolist())) == 20


# ----------------------------------------------------------------- the strategy
def _two_regions():
    """40 candidates: 20 predicted class 0, all very uncertain, 20 predicted class 1, surer.

    Features: class 0 near (1, 0), class 1 near (0, 1). Margin's most uncertain
    candidates all lie in class 0; the gradients of the two regions are far apart.
    """
    rng = np.random.default_rng(0)
    features = np.concatenate(
        [[1.0, 0.0] + 0.01 * rng.normal(size=(20, 2)), [0.0, 1.0] + 0.01 * rng.normal(size=(20, 2))]
    )
    p0 = np.concatenate([0.51 + 0.02 * rng.random(20), 0.25 + 0.05 * rng.random(20)])
    proba = np.c_[p0, 1 - p0]
    return ProbaEstimator(features, proba), _ids(40)


def test_badge_covers_both_classes_where_margin_does_not():
    estimator, pool = _two_regions()
    margin = margin_sampling(estimator, pool, n_instances=4)
    margin = np.asarray(margin[0] if isinstance(margin, tuple) else margin)  # modAL versions
    assert margin.shape == (4,)
    assert all(i < 20 for i in margin)  # the four most uncertain: all class 0
    for seed in range(5):
        idx, rows = badge_sampling(FakeLearner(estimator, _ids(2)), pool, 4, random_state=seed)
        assert len(set(idx.tolist())) == 4
        assert {i < 20 for i in idx} == {True, False}, idx
        np.testing.assert_array_equal(rows, pool[idx])


def test_badge_candidates_and_subset():
    estimator, pool = _two_regions()
    idx, _ = badge_sampling(estimator, pool, 3, candidates=[1, 5, 30, 31], random_state=0)
    assert set(idx.tolist()) <= {1, 5, 30, 31} and len(set(idx.tolist())) == 3
    a, _ = badge_sampling(estimator, pool, 3, subset_size=10, random_state=4)
    b, _ = badge_sampling(estimator, pool, 3, subset_size=10, random_state=4)
    assert a.tolist() == b.tolist()
    subset = np.sort(np.random.RandomState(4).choice(40, size=10, replace=False))
    assert set(a.tolist()) <= set(subset.tolist())
    with pytest.raises(MoBYALError, match="larger than the pool"):
        badge_sampling(estimator, pool, 41)
    with pytest.raises(TypeError, match="X_labeled"):
        badge_sampling(estimator, pool, 1, X_labeled=pool)


def test_badge_bad_inputs_name_the_problem(digits):
    X = digits.X_train.reshape(len(digits.X_train), -1)[:200]
    y = digits.y_train[:200]
    # no predict_proba
    with pytest.raises(TypeError, match="predict_proba; FeatureEstimator has none"):
        badge_sampling(FeatureEstimator(np.zeros((3, 2))), _ids(3), 1)
    # fitted, but no feature map: the raw inputs are not the last layer's inputs
    with pytest.raises(TypeError, match="penultimate features.*LogisticRegression offers none"):
        badge_sampling(LogisticRegression(max_iter=200).fit(X, y), X, 2)
    # a cold start: the features exist (PCA fitted on the pool), the classifier does not
    pipe = make_pipeline(PCA(n_components=8, random_state=0), LogisticRegression())
    pipe[:-1].fit(X)
    with pytest.raises(MoBYALError, match="not fitted: BADGE cannot start cold"):
        badge_sampling(ActiveLearner(estimator=pipe), X, 2)
    with pytest.raises(MoBYALError, match="cannot start cold"):
        badge_sampling(small_net(), digits.X_train[:20], 2)
    # NaN features and NaN probabilities
    estimator, pool = _two_regions()
    estimator.features[3, 0] = np.nan
    with pytest.raises(MoBYALError, match="features from transform contain NaN"):
        badge_sampling(estimator, pool, 2)
    estimator, pool = _two_regions()
    estimator.proba[3, 0] = np.nan
    with pytest.raises(MoBYALError, match="proba contains NaN"):
        badge_sampling(estimator, pool, 2)


def test_badge_on_a_fitted_pipeline(digits):
    X = digits.X_train.reshape(len(digits.X_train), -1)[:300]
    y = digits.y_train[:300]
    pipe = make_pipeline(PCA(n_components=8, random_state=0), LogisticRegression(max_iter=500))
    pipe.fit(X[:50], y[:50])
    idx, _ = badge_sampling(pipe, X[50:], 20, random_state=0)
    assert len(set(idx.tolist())) == 20
    expected = kmeans_plus_plus_seeds(
        gradient_embedding(pipe.predict_proba(X[50:]), pipe[:-1].transform(X[50:])),
        20,
        random_state=np.random.RandomState(0),
    )
    # subset_size (10,000) exceeds the pool: no candidate draw before k-means++
    assert idx.tolist() == expected.tolist()


def test_badge_in_a_modal_loop_with_a_moby_classifier(tiny_digits):
    data = tiny_digits
    net = small_net(max_epochs=1, classes=list(range(10)), train_samples=256)
    learner = ActiveLearner(
        estimator=net,
        query_strategy=badge_sampling,
        X_training=data["X"][:40],
        y_training=data["y"][:40],
    )
    pool, y_pool = data["X_pool"].copy(), data["y_pool"].copy()
    for cycle in range(2):
        idx, rows = learner.query(pool, n_instances=10, random_state=cycle)
        idx = np.asarray(idx)
        assert idx.shape == (10,) and len(set(idx.tolist())) == 10
        np.testing.assert_array_equal(np.asarray(rows), pool[idx])
        learner.teach(pool[idx], y_pool[idx])
        pool, y_pool = np.delete(pool, idx, axis=0), np.delete(y_pool, idx)
    assert len(learner.X_training) == 60


def test_badge_in_the_experiment_runner(tmp_path):
    from moby_al_plugin.experiments import ExperimentConfig, run_experiment

    from .test_runner import TINY

    assert not STRATEGIES["badge_pretrained"].cold_start
    config = ExperimentConfig(
        **{**TINY, "strategies": ("badge_pretrained", "badge"), "cycles": 1, "epochs": 1}
    )
    records = run_experiment(config, tmp_path / "badge", progress=False, log=None, plot=False)
    assert {r["strategy"] for r in records} == {"badge", "badge_pretrained"}
    for r in records:
        if r["cycle"] == 1:
            assert len(set(r["queried"])) == 20

"""Query strategies with stand-in estimators: picks, subsets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moby_al_plugin import (
    coreset_sampling,
    k_center_greedy,
    mobyv2al_sampling,
    random_sampling,
)

from .mock import FakeLearner, FeatureEstimator


def _ids(n, offset=0):
    return np.arange(offset, offset + n).reshape(-1, 1)


def test_coreset_on_a_line_hand_computed():
    # features on a line: labelled at 0; pool at 1, 2, 10, 11, 5
    features = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [5.0]])
    learner = FakeLearner(FeatureEstimator(features), _ids(1))
    pool = _ids(5, offset=1)
    idx, rows = coreset_sampling(learner, pool, n_instances=3, subset_size=None)
    # farthest from {0}: 11 (pool 3); then from {0, 11}: 5 (pool 4); then {0, 5, 11}: 2 or 10
    # -> 2 is 2 from 0... distances: 1->1, 2->2, 10->1; so pool index 1 (feature 2)
    assert idx.tolist() == [3, 4, 1]
    assert rows.reshape(-1).tolist() == [4, 5, 2]


def test_coreset_matches_k_center_with_labelled_centres():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(70, 5))
    learner = FakeLearner(FeatureEstimator(features), _ids(20))
    pool = _ids(50, offset=20)
    idx, _ = coreset_sampling(learner, pool, n_instances=7, subset_size=None)
    expected = k_center_greedy(features[20:], 7, initial_centers=features[:20])
    assert idx.tolist() == expected.tolist()


def test_subset_limits_candidates_and_is_seeded():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 4))
    learner = FakeLearner(FeatureEstimator(features), _ids(10))
    pool = _ids(290, offset=10)
    a, _ = coreset_sampling(learner, pool, n_instances=5, subset_size=40, random_state=3)
    b, _ = coreset_sampling(learner, pool, n_instances=5, subset_size=40, random_state=3)
    assert a.tolist() == b.tolist()
    assert len(set(a.tolist())) == 5
    assert learner.estimator.transform_calls == 4  # pool subset and labelled set, twice
    subset = np.sort(np.random.RandomState(3).choice(290, size=40, replace=False))
    assert set(a.tolist()) <= set(subset.tolist())
    with pytest.raises(ValueError, match="subset_size=3 is smaller than n_instances=5"):
        coreset_sampling(learner, pool, n_instances=5, subset_size=3)


def test_coreset_on_raw_features_with_bare_estimator():
    X_pool = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.0, 0.2]])
    idx, _ = coreset_sampling(object(), X_pool, n_instances=1, X_labeled=np.zeros((1, 2)))
    assert idx.tolist() == [2]


def test_coreset_with_sklearn_pipeline(digits):
    X = digits.X_train.reshape(len(digits.X_train), -1)
    pipe = make_pipeline(StandardScaler(), PCA(n_components=8, random_state=0)).fit(X)
    learner = FakeLearner(pipe, X[:50])
    idx, rows = coreset_sampling(learner, X[50:], n_instances=20, random_state=0)
    assert len(set(idx.tolist())) == 20
    np.testing.assert_array_equal(rows, X[50:][idx])
    expected = k_center_greedy(pipe.transform(X[50:]), 20, initial_centers=pipe.transform(X[:50]))
    assert idx.tolist() == expected.tolist()


def test_mobyv2al_needs_a_moby_classifier():
    learner = FakeLearner(FeatureEstimator(np.zeros((3, 2))), _ids(1))
    with pytest.raises(TypeError, match="MoBYClassifier"):
        mobyv2al_sampling(learner, _ids(2, 1), n_instances=1)


def test_random_sampling_distinct_and_reproducible():
    pool = np.zeros((50, 3))
    a, rows = random_sampling(None, pool, n_instances=50, random_state=0)
    assert sorted(a.tolist()) == list(range(50))  # without replacement
    b, _ = random_sampling(None, pool, n_instances=10, random_state=0)
    c, _ = random_sampling(None, pool, n_instances=10, random_state=0)
    assert b.tolist() == c.tolist()
    assert rows.shape == (50, 3)


@pytest.mark.parametrize("strategy", [coreset_sampling, random_sampling])
@pytest.mark.parametrize(
    "pool_size, n, error, match",
    [
        (5, 0, ValueError, "at least 1"),
        (5, -2, ValueError, "at least 1"),
        (5, 6, ValueError, "larger than the pool"),
        (0, 1, ValueError, "pool is empty"),
        (5, 1.5, TypeError, "integer"),
    ],
)
def test_bad_n_instances_and_empty_pool(strategy, pool_size, n, error, match):
    learner = FakeLearner(FeatureEstimator(np.zeros((10, 2))), _ids(2))
    with pytest.raises(error, match=match):
        strategy(learner, _ids(pool_size, 2), n_instances=n)

"""Query strategies with stand-in estimators: picks, subsets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moby_al_plugin import (
    budget_aware_sampling,
    coreset_sampling,
    k_center_greedy,
    maxherding_sampling,
    mobyv2al_sampling,
    random_sampling,
    typiclust_sampling,
)
from moby_al_plugin.exceptions import MoBYALError

from .mock import FakeLearner, FeatureEstimator


def _ids(n, offset=0):
    return np.arange(offset, offset + n).reshape(-1, 1)


def test_coreset_on_a_line_hand_computed():
    # features on a line: labelled at 0; pool at 1, 2, 10, 11, 5
    features = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [5.0]])
    learner = FakeLearner(FeatureEstimator(features), _ids(1))
    pool = _ids(5, offset=1)
    idx, rows = coreset_sampling(learner, pool, n_instances=3, subset_size=None, normalize=False)
    # farthest from {0}: 11 (pool 3); then from {0, 11}: 5 (pool 4); then {0, 5, 11}: 2 or 10
    # -> 2 is 2 from 0... distances: 1->1, 2->2, 10->1; so pool index 1 (feature 2)
    assert idx.tolist() == [3, 4, 1]
    assert rows.reshape(-1).tolist() == [4, 5, 2]


def test_coreset_matches_k_center_with_labelled_centres():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(70, 5))
    learner = FakeLearner(FeatureEstimator(features), _ids(20))
    pool = _ids(50, offset=20)
    idx, _ = coreset_sampling(learner, pool, n_instances=7, subset_size=None, normalize=False)
    expected = k_center_greedy(features[20:], 7, initial_centers=features[:20])
    assert idx.tolist() == expected.tolist()
    idx, _ = coreset_sampling(learner, pool, n_instances=7, subset_size=None, normalize=True)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    expected = k_center_greedy(unit[20:], 7, initial_centers=unit[:20])
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
    with pytest.raises(MoBYALError, match="subset_size=3 is smaller than n_instances=5"):
        coreset_sampling(learner, pool, n_instances=5, subset_size=3)


def test_coreset_on_raw_features_with_bare_estimator():
    X_pool = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [0.0, 0.2]])
    idx, _ = coreset_sampling(
        object(), X_pool, n_instances=1, X_labeled=np.zeros((1, 2)), normalize=False
    )
    assert idx.tolist() == [2]


def test_coreset_with_sklearn_pipeline(digits):
    X = digits.X_train.reshape(len(digits.X_train), -1)
    pipe = make_pipeline(StandardScaler(), PCA(n_components=8, random_state=0)).fit(X)
    learner = FakeLearner(pipe, X[:50])
    idx, rows = coreset_sampling(learner, X[50:], n_instances=20, random_state=0, normalize=False)
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


ALL = [
    coreset_sampling,
    typiclust_sampling,
    maxherding_sampling,
    budget_aware_sampling,
    random_sampling,
]


@pytest.mark.parametrize("strategy", ALL)
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


# ---------------------------------------------------------------- new strategies
def _three_clusters_and_outlier(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])
    points = np.concatenate([c + 0.3 * rng.normal(size=(30, 3)) for c in centres])
    return np.concatenate([points, [[-6.0, -6.0, -6.0]]])


@pytest.mark.parametrize("strategy", [typiclust_sampling, maxherding_sampling])
def test_one_pick_per_cluster_never_the_outlier(strategy):
    features = _three_clusters_and_outlier()
    learner = FakeLearner(FeatureEstimator(features), None)  # zero labels
    idx, rows = strategy(learner, _ids(91), n_instances=3, random_state=0)
    assert sorted((idx // 30).tolist()) == [0, 1, 2]  # the outlier is index 90
    np.testing.assert_array_equal(rows, _ids(91)[idx])


def test_normalised_kcenter_on_points_at_different_norms():
    # labelled at (1, 0); pool: (100, 1) points the same way, (0, 0.5) is orthogonal
    features = np.array([[1.0, 0.0], [100.0, 1.0], [0.0, 0.5]])
    learner = FakeLearner(FeatureEstimator(features), _ids(1))
    raw, _ = coreset_sampling(learner, _ids(2, 1), n_instances=1, normalize=False)
    unit, _ = coreset_sampling(learner, _ids(2, 1), n_instances=1, normalize=True)
    assert raw.tolist() == [0]  # 99 away in Euclidean space
    assert unit.tolist() == [1]  # sqrt(2) away on the sphere, the other 0.01


class _Scale(TransformerMixin, BaseEstimator):
    """A transformer that stretches the first feature a hundredfold."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return np.asarray(X) * np.array([100.0, 1.0])


def test_pipeline_ending_in_a_classifier_uses_its_feature_steps():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X_train = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    pipe = Pipeline([("scale", _Scale()), ("clf", LogisticRegression())])
    pipe.fit(X_train, [0, 1, 1, 0])
    # raw: (0, 5) is farthest from the label at the origin; scaled: (1, 0) is (100 away)
    pool = np.array([[1.0, 0.0], [0.0, 5.0]])
    learner = FakeLearner(pipe, np.zeros((1, 2)))
    idx, _ = coreset_sampling(learner, pool, n_instances=1, normalize=False)
    assert idx.tolist() == [0]


def test_cold_start_pipeline_with_unfitted_classifier(digits):
    from sklearn.linear_model import LogisticRegression

    X = digits.X_train.reshape(len(digits.X_train), -1)
    pipe = make_pipeline(PCA(n_components=8, random_state=0), LogisticRegression())
    pipe[:-1].fit(X)
    for strategy in ALL[:-1]:
        a, _ = strategy(FakeLearner(pipe, None), X, n_instances=10, random_state=0)
        b, _ = strategy(FakeLearner(pipe[0], None), X, n_instances=10, random_state=0)
        assert a.tolist() == b.tolist(), strategy.__name__  # the PCA features, not pixels


@pytest.mark.parametrize("strategy", ALL)
def test_misspelt_keyword_is_a_type_error(strategy):
    learner = FakeLearner(FeatureEstimator(np.zeros((10, 2))), _ids(2))
    with pytest.raises(TypeError, match="subset_sise"):
        strategy(learner, _ids(5, 2), n_instances=1, subset_sise=3)


@pytest.mark.parametrize("strategy", [coreset_sampling, mobyv2al_sampling])
def test_normalise_spelling_is_refused(strategy):
    learner = FakeLearner(FeatureEstimator(np.zeros((10, 2))), _ids(2))
    with pytest.raises(TypeError, match="normalise"):
        strategy(learner, _ids(5, 2), n_instances=1, normalise=True)


@pytest.mark.parametrize("strategy", ALL)
def test_random_state_follows_scikit_learn(strategy):
    # one rule for every strategy: None is numpy's global state, an int repeats
    features = np.random.default_rng(6).normal(size=(60, 3))
    learner = FakeLearner(FeatureEstimator(features), _ids(5))
    extra = {"n_classes": 10} if strategy is budget_aware_sampling else {}
    if strategy is not random_sampling:
        extra["subset_size"] = 20

    def picks(global_seed, **options):
        np.random.seed(global_seed)
        chosen, _ = strategy(learner, _ids(55, 5), n_instances=4, **extra, **options)
        return chosen.tolist()

    assert picks(1) == picks(1)
    assert len({tuple(picks(seed)) for seed in range(6)}) > 1
    assert picks(1, random_state=3) == picks(2, random_state=3)


@pytest.mark.parametrize("strategy", ALL)
def test_candidates_fix_the_subset(strategy):
    features = np.random.default_rng(7).normal(size=(60, 3))
    learner = FakeLearner(FeatureEstimator(features), None)
    chosen = np.array([3, 9, 14, 20, 33, 41, 47, 50, 52])
    idx, rows = strategy(learner, _ids(60), n_instances=4, candidates=chosen, random_state=0)
    assert set(idx.tolist()) <= set(chosen.tolist()) and len(set(idx.tolist())) == 4
    np.testing.assert_array_equal(rows, _ids(60)[idx])


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize(
    "candidates, match",
    [
        ([1, 2], "fewer than n_instances=3"),
        ([0, 99], "outside"),
        ([[1, 2, 3]], "1-D array of integer"),
        ([0.5, 1.0, 2.0], "1-D array of integer"),
    ],
)
def test_bad_candidates(strategy, candidates, match):
    learner = FakeLearner(FeatureEstimator(np.zeros((10, 2))), None)
    with pytest.raises(MoBYALError, match=match):
        strategy(learner, _ids(10), n_instances=3, candidates=candidates)


@pytest.mark.parametrize("strategy", ALL[:-1])
def test_nan_features_are_refused(strategy):
    features = np.zeros((10, 2))
    features[4, 1] = np.nan
    learner = FakeLearner(FeatureEstimator(features), None)
    with pytest.raises(MoBYALError, match="NaN"):
        strategy(learner, _ids(10), n_instances=2)


@pytest.mark.parametrize("after", ["kcenter", "margin"])
def test_budget_aware_switches_exactly_at_the_rule(digits, after):
    from sklearn.linear_model import LogisticRegression

    X = digits.X_train.reshape(len(digits.X_train), -1)
    pipe = make_pipeline(PCA(n_components=8, random_state=0), LogisticRegression(max_iter=500))
    pipe.fit(X[:300], digits.y_train[:300])
    pool = X[300:800]
    opts = dict(n_instances=10, random_state=0)

    def after_phase(learner):
        if after == "kcenter":
            return coreset_sampling(learner, pool, **opts)[0]
        return budget_aware_sampling(learner, pool, switch_at=0, after="margin", **opts)[0]

    for n_labeled, typical in [(19, True), (20, False)]:
        learner = FakeLearner(pipe, X[:n_labeled])
        got, _ = budget_aware_sampling(
            learner, pool, switch_at=2, after=after, n_classes=10, **opts
        )
        by_typicality = typiclust_sampling(learner, pool, **opts)[0]
        by_after = after_phase(learner)
        assert by_typicality.tolist() != by_after.tolist()
        expected = by_typicality if typical else by_after
        assert got.tolist() == expected.tolist(), n_labeled


def test_budget_aware_counts_classes_from_the_labels_seen():
    features = np.random.default_rng(8).normal(size=(40, 3))
    # 4 labels of 2 classes = 2 per class: below switch_at=3 typicality, at 2 k-center
    learner = FakeLearner(FeatureEstimator(features), _ids(4), np.array([0, 1, 0, 1]))
    pool = _ids(36, 4)
    for switch_at, phase in [(3, typiclust_sampling), (2, coreset_sampling)]:
        got, _ = budget_aware_sampling(
            learner, pool, n_instances=3, switch_at=switch_at, after="kcenter", random_state=0
        )
        assert got.tolist() == phase(learner, pool, n_instances=3, random_state=0)[0].tolist()
    bare = FakeLearner(FeatureEstimator(features), _ids(4))  # no labels, no classes_
    with pytest.raises(MoBYALError, match="n_classes"):
        budget_aware_sampling(bare, pool, n_instances=3)


def test_budget_aware_margin_is_uncertain_and_diverse():
    from .mock import ProbaEstimator

    rng = np.random.default_rng(9)
    # groups A and B of uncertain points far apart; the rest certain
    features = np.concatenate(
        [
            [10.0, 0.0] + 0.1 * rng.normal(size=(5, 2)),
            [0.0, 10.0] + 0.1 * rng.normal(size=(5, 2)),
            rng.normal(size=(30, 2)),
        ]
    )
    proba = np.tile([0.95, 0.05], (40, 1))
    proba[:10] = [0.5, 0.5]
    est = ProbaEstimator(features, proba)
    learner = FakeLearner(est, None)
    idx, _ = budget_aware_sampling(
        learner,
        _ids(40),
        n_instances=2,
        switch_at=0,
        after="margin",
        uncertain_factor=5,
        random_state=0,
    )
    assert sorted((idx // 5).tolist()) == [0, 1]


def test_budget_aware_bad_options():
    learner = FakeLearner(FeatureEstimator(np.zeros((10, 2))), None)
    with pytest.raises(MoBYALError, match="after"):
        budget_aware_sampling(learner, _ids(10), after="entropy")
    with pytest.raises(MoBYALError, match="switch_at"):
        budget_aware_sampling(learner, _ids(10), switch_at=-1)
    with pytest.raises(MoBYALError, match="predict_proba"):
        budget_aware_sampling(learner, _ids(10), switch_at=0, after="margin")
    from sklearn.linear_model import LogisticRegression

    unfitted = make_pipeline(LogisticRegression())
    with pytest.raises(MoBYALError, match="fitted"):
        budget_aware_sampling(unfitted, np.zeros((10, 2)), switch_at=0, after="margin")


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("n_labeled", [0, 3])
def test_whole_small_pool(strategy, n_labeled):
    features = np.random.default_rng(10).normal(size=(12, 2))
    learner = FakeLearner(FeatureEstimator(features), _ids(n_labeled) if n_labeled else None)
    kwargs = {"n_classes": 3} if strategy is budget_aware_sampling else {}
    idx, _ = strategy(learner, _ids(7, 5), n_instances=7, random_state=0, **kwargs)
    assert sorted(idx.tolist()) == list(range(7))


def test_cold_kcenter_on_duplicates_stays_distinct():
    learner = FakeLearner(FeatureEstimator(np.ones((6, 2))), None)
    for seed in range(4):
        idx, _ = coreset_sampling(learner, _ids(6), n_instances=6, random_state=seed)
        assert sorted(idx.tolist()) == list(range(6))


def _farthest_first(points, first, n):
    """Farthest-first traversal of 1-D points from ``first``, in plain Python."""
    picks = [first]
    while len(picks) < n:
        gaps = [
            min(abs(p - points[c]) for c in picks) if i not in picks else -1.0
            for i, p in enumerate(points)
        ]
        picks.append(max(range(len(points)), key=lambda i: (gaps[i], -i)))
    return picks


def test_cold_kcenter_returns_pool_positions_not_shuffled_ones():
    # twenty points near 0 and three far ones at pool positions 3, 11 and 16: from
    # zero labels, whatever the random first pick, four picks hold all three far ones
    points = [0.01 * i for i in range(20)]
    far = {3: 50.0, 11: -40.0, 16: 100.0}
    for position, value in far.items():
        points[position] = value
    learner = FakeLearner(FeatureEstimator(np.array(points)[:, None]), None)
    pool = _ids(20)
    firsts = set()
    for seed in range(6):
        for strategy in (coreset_sampling, budget_aware_sampling):
            kwargs = (
                {"switch_at": 0, "after": "kcenter", "n_classes": 2}
                if strategy is budget_aware_sampling
                else {}
            )
            idx, rows = strategy(
                learner,
                pool,
                n_instances=4,
                normalize=False,
                subset_size=None,
                random_state=seed,
                **kwargs,
            )
            assert set(far) <= set(idx.tolist()), (strategy.__name__, seed, idx)
            assert idx.tolist() == _farthest_first(points, int(idx[0]), 4)
            np.testing.assert_array_equal(rows, pool[idx])
            firsts.add(int(idx[0]))
    assert len(firsts) > 1  # the first pick is random, not always position 0

"""The stabilizing-predictions stopping rule."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin import StabilizingPredictions
from moby_al_plugin.stopping import prediction_agreement, stable_rounds


class _Fixed:
    """A 'model' that predicts what it is told, for the rule's bookkeeping."""

    def __init__(self, predictions, n_labeled=None):
        self.predictions = np.asarray(predictions)
        if n_labeled is not None:
            self.y_training = np.zeros(n_labeled)

    def predict(self, X):
        return self.predictions[: len(X)]


def test_kappa_of_a_hand_computed_pair():
    # 10 images, two classes. previous: 0 0 0 0 0 1 1 1 1 1; current differs at
    # positions 4 and 5. Observed agreement 8/10 = 0.8. Both predict class 0 on
    # 5 of 10, so chance agreement 0.5 * 0.5 + 0.5 * 0.5 = 0.5;
    # kappa = (0.8 - 0.5) / (1 - 0.5) = 0.6.
    previous = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    current = [0, 0, 0, 0, 1, 0, 1, 1, 1, 1]
    assert prediction_agreement(previous, current) == pytest.approx(0.6)
    # three classes: agreement at positions 0, 1 and 4, observed 3/6; previous
    # counts (2, 2, 2), current (3, 1, 2): chance (2*3 + 2*1 + 2*2) / 36 = 1/3;
    # kappa = (1/2 - 1/3) / (2/3) = 0.25
    assert prediction_agreement([0, 0, 1, 1, 2, 2], [0, 0, 0, 2, 2, 1]) == pytest.approx(0.25)


def test_identical_predictions_agree_fully_even_on_one_class():
    assert prediction_agreement([3, 3, 3], [3, 3, 3]) == 1.0
    assert prediction_agreement([0, 1, 2], [0, 1, 2]) == 1.0


def test_agreement_refuses_different_or_empty_stop_sets():
    with pytest.raises(ValueError, match="different stop sets: 3 and 2"):
        prediction_agreement([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        prediction_agreement([], [])


def test_stable_rounds_count_only_the_latest_run():
    assert stable_rounds([], 0.9) == 0
    assert stable_rounds([None, 0.95, 0.5, 0.92, 0.99], 0.9) == 2
    assert stable_rounds([0.95, float("nan")], 0.9) == 0
    assert stable_rounds([0.95, 0.96, None], 0.9) == 0
    assert stable_rounds([0.9], 0.9) == 1  # reaching the threshold counts


def test_the_rule_fires_on_the_third_stable_round_and_not_before():
    X_stop = np.zeros((10, 2))
    rule = StabilizingPredictions(X_stop, threshold=0.99, window=3)
    a = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    b = [0, 0, 0, 0, 1, 0, 1, 1, 1, 1]  # kappa 0.6 against a
    answers = [
        rule.update(_Fixed(a, 20)),  # nothing to compare with
        rule.update(_Fixed(b, 40)),  # unstable
        rule.update(_Fixed(b, 60)),  # stable 1
        rule.update(_Fixed(b, 80)),  # stable 2
        rule.update(_Fixed(b, 100)),  # stable 3: stop
    ]
    assert answers == [False, False, False, False, True]
    assert rule.kappas_ == pytest.approx([0.6, 1.0, 1.0, 1.0])
    assert rule.n_labeled_ == [20, 40, 60, 80, 100]
    assert rule.stopped_at_ == 4 and rule.should_stop_ and rule.stable_rounds_ == 3
    # a change of mind starts the count again, but the first stop is remembered
    assert rule.update(_Fixed(a, 120)) is False
    assert rule.stable_rounds_ == 0 and rule.stopped_at_ == 4


def test_a_window_of_one_fires_on_the_first_stable_round():
    rule = StabilizingPredictions(np.zeros((3, 1)), threshold=1.0, window=1)
    assert rule.record([0, 1, 2]) is False
    assert rule.record([0, 1, 2]) is True and rule.stopped_at_ == 1


def test_the_rule_in_a_real_modal_loop(digits):
    from modAL.uncertainty import margin_sampling
    from sklearn.linear_model import LogisticRegression

    from moby_al_plugin import ActiveLearner

    X, y = digits.X_train.reshape(len(digits.X_train), -1), digits.y_train
    rng = np.random.RandomState(0)
    start = rng.choice(len(X), size=20, replace=False)
    learner = ActiveLearner(
        estimator=LogisticRegression(max_iter=500),
        query_strategy=margin_sampling,
        X_training=X[start],
        y_training=y[start],
    )
    pool = np.setdiff1d(np.arange(len(X)), start)
    rule = StabilizingPredictions(X[pool[:200]], threshold=0.9, window=2)
    stopped_at = None
    for _ in range(15):
        if rule.update(learner):
            stopped_at = len(learner.y_training)
            break
        idx, _ = learner.query(X[pool], n_instances=20)
        learner.teach(X[pool[idx]], y[pool[idx]])
        pool = np.delete(pool, idx)
    # the digits are easy: the predictions settle well within 15 rounds of 20
    assert stopped_at is not None and stopped_at <= 20 + 14 * 20
    assert rule.n_labeled_[0] == 20 and len(rule.kappas_) == len(rule.n_labeled_) - 1
    assert all(k >= 0.9 for k in rule.kappas_[-2:])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(threshold=0.0), ValueError, r"threshold must lie in \(0, 1\], got 0.0"),
        (dict(threshold=1.5), ValueError, "threshold must lie in"),
        (dict(threshold=float("nan")), ValueError, "threshold must lie in"),
        (dict(threshold="high"), TypeError, "threshold must be a number"),
        (dict(window=0), ValueError, "window must be at least 1, got 0"),
        (dict(window=2.5), TypeError, "window must be an integer"),
    ],
)
def test_bad_settings_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        StabilizingPredictions(np.zeros((5, 2)), **kwargs)


def test_bad_stop_sets_are_named():
    with pytest.raises(ValueError, match="X_stop is empty"):
        StabilizingPredictions(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"shape \(n, \.\.\.\); got shape \(5,\)"):
        StabilizingPredictions(np.zeros(5))
    with pytest.raises(TypeError, match="X_stop must be an array"):
        StabilizingPredictions(3)
    rule = StabilizingPredictions(np.zeros((5, 2)))
    with pytest.raises(TypeError, match="has no predict method"):
        rule.update(object())
    with pytest.raises(ValueError, match="returned 2 predictions for a stop set of 5"):
        rule.update(_Fixed([0, 1]))

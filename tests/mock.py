"""Stand-ins for estimators and learners, in the manner of modAL's own tests."""

from __future__ import annotations

import numpy as np


class FeatureEstimator:
    """An estimator whose ``transform`` looks features up by row id.

    Samples are 1-element rows holding an integer id; ``transform`` returns
    ``features[id]``. Calls are counted.
    """

    def __init__(self, features: np.ndarray) -> None:
        self.features = np.asarray(features, dtype=np.float64)
        self.transform_calls = 0

    def transform(self, X):
        self.transform_calls += 1
        ids = np.asarray(X).reshape(-1).astype(int)
        return self.features[ids]


class FakeLearner:
    """What a strategy reads from a modAL learner: ``estimator`` and ``X_training``."""

    def __init__(self, estimator, X_training, y_training=None) -> None:
        self.estimator = estimator
        self.X_training = X_training
        self.y_training = y_training


class UnfittedFeatureEstimator:
    """An estimator whose ``transform`` raises ``error`` (a ``NotFittedError``), as
    ``MoBYClassifier.transform`` does before fitting without a pretrained encoder."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise self.error("not fitted")


class ProbaEstimator(FeatureEstimator):
    """A ``FeatureEstimator`` that also looks class probabilities up by row id."""

    def __init__(self, features: np.ndarray, proba: np.ndarray) -> None:
        super().__init__(features)
        self.proba = np.asarray(proba, dtype=np.float64)
        self.classes_ = np.arange(self.proba.shape[1])

    def predict_proba(self, X):
        ids = np.asarray(X).reshape(-1).astype(int)
        return self.proba[ids]

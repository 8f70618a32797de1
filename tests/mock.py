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

    def __init__(self, estimator, X_training) -> None:
        self.estimator = estimator
        self.X_training = X_training

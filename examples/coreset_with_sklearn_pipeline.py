"""Teaching example 3: ``coreset_sampling`` with any scikit-learn model.

``coreset_sampling`` needs only a ``transform``: here a scikit-learn pipeline
(scaling + PCA) gives the feature space in which k-Center-Greedy spreads the queries
out, and a logistic regression is the classifier that modAL trains. No neural network
is involved, so this runs in seconds.

Run:  python examples/coreset_with_sklearn_pipeline.py
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moby_al_plugin import ActiveLearner, coreset_sampling, load_digits_dataset, random_sampling


class PCALogistic:
    """A classifier whose ``transform`` is the PCA space of its own pipeline."""

    def __init__(self) -> None:
        self.features = make_pipeline(StandardScaler(), PCA(n_components=16, random_state=0))
        self.classifier = LogisticRegression(max_iter=2000)

    def fit(self, X, y):
        self.classifier.fit(self.features.fit_transform(X), y)
        return self

    def transform(self, X):
        return self.features.transform(X)

    def predict(self, X):
        return self.classifier.predict(self.transform(X))

    def predict_proba(self, X):
        return self.classifier.predict_proba(self.transform(X))

    def score(self, X, y):
        return float(np.mean(self.predict(X) == y))


def run(strategy, data, cycles: int = 5) -> list[float]:
    X = data.X_train.reshape(len(data.X_train), -1)  # flat 64-pixel rows
    X_test = data.X_test.reshape(len(data.X_test), -1)
    rng = np.random.default_rng(0)
    start = rng.choice(len(X), size=20, replace=False)
    pool = np.delete(np.arange(len(X)), start)
    learner = ActiveLearner(
        estimator=PCALogistic(),
        query_strategy=strategy,
        X_training=X[start],
        y_training=data.y_train[start],
    )
    scores = [learner.score(X_test, data.y_test)]
    for _ in range(cycles):
        idx, _ = learner.query(X[pool], n_instances=20, random_state=0)
        learner.teach(X[pool[idx]], data.y_train[pool[idx]])
        pool = np.delete(pool, idx)
        scores.append(learner.score(X_test, data.y_test))
    return scores


def main() -> dict:
    data = load_digits_dataset()
    results = {
        name: run(strategy, data)
        for name, strategy in [("coreset", coreset_sampling), ("random", random_sampling)]
    }
    for name, scores in results.items():
        print(f"{name:8s}", " ".join(f"{s:.3f}" for s in scores))
    print("labels:  ", " ".join(f"{20 * (i + 1):5d}" for i in range(len(scores))))
    return results


if __name__ == "__main__":
    main()

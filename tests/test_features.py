"""Which features an estimator offers for selection, fitted or not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from skorch.exceptions import NotInitializedError

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.selection.features import extract_features, l2_normalize, resolve_feature_map

from .mock import FeatureEstimator, UnfittedFeatureEstimator


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(40, 6))


def test_transformer_uses_transform(X):
    pca = PCA(n_components=3, random_state=0).fit(X)
    np.testing.assert_allclose(extract_features(pca, X), pca.transform(X), rtol=1e-6)
    assert resolve_feature_map(pca, X)[2] == "transform"


def test_pipeline_ending_in_classifier_uses_the_steps_before_it(X):
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(
        StandardScaler(), PCA(n_components=2, random_state=0), LogisticRegression()
    ).fit(X, y)
    assert not hasattr(pipe, "transform")
    F, _, source = resolve_feature_map(pipe, X)
    assert source == "pipeline[:-1].transform"
    np.testing.assert_allclose(F, pipe[:-1].transform(X), rtol=1e-6)


def test_pipeline_with_fitted_features_and_unfitted_classifier(X):
    # a cold start: the encoder is fitted on the pool, the classifier has no label yet
    pipe = make_pipeline(PCA(n_components=2, random_state=0), LogisticRegression())
    pipe[:-1].fit(X)
    np.testing.assert_allclose(extract_features(pipe, X), pipe[0].transform(X), rtol=1e-6)


def test_unfitted_pipeline_falls_back_to_raw_inputs(X):
    pipe = make_pipeline(PCA(n_components=2), LogisticRegression())
    F, _, source = resolve_feature_map(pipe, X)
    assert source == "raw"
    np.testing.assert_array_equal(F, X)


@pytest.mark.parametrize("error", [NotFittedError, NotInitializedError])
def test_transform_raising_not_fitted_falls_back_to_raw(error):
    images = np.random.RandomState(1).rand(5, 1, 4, 4)
    F, _, source = resolve_feature_map(UnfittedFeatureEstimator(error), images)
    assert source == "raw"
    assert F.shape == (5, 16)


def test_other_errors_propagate():
    class Broken:
        def transform(self, X):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        extract_features(Broken(), np.zeros((2, 2)))


def test_bare_classifier_and_none_give_flattened_inputs():
    images = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(extract_features(None, images), images.reshape(2, 12))
    np.testing.assert_array_equal(
        extract_features(LogisticRegression(), images), images.reshape(2, 12)
    )


def test_nan_features_are_refused():
    est = FeatureEstimator(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(MoBYALError, match="NaN"):
        extract_features(est, np.array([[0], [1]]))


def test_wrong_number_of_rows_is_refused():
    bad = FunctionTransformer(lambda X: X[:1])
    with pytest.raises(MoBYALError, match="one row per"):
        extract_features(bad.fit(np.zeros((3, 2))), np.zeros((3, 2)))


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])

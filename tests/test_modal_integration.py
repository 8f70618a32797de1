"""Real modAL ActiveLearner loops on the digits with every strategy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from modAL.models import ActiveLearner
from modAL.uncertainty import margin_sampling

from moby_al_plugin import (
    budget_aware_sampling,
    coreset_sampling,
    maxherding_sampling,
    mobyv2al_sampling,
    random_sampling,
    typiclust_sampling,
)

from .conftest import small_net

MODAL_0421 = Path(__file__).resolve().parents[1] / ".ci-cache" / "modal-0.4.2.1"


# Enough training for the digits' ten classes to be told apart from 40-60
# labels: measured 0.50-0.59 test accuracy after the loop (7 epochs per cycle,
# lr 0.05, warm start so that each cycle continues the last one's training, which
# costs a third of three full trainings), while the same seeded net before any
# optimiser step scores 0.067 (one class for all).
TRAINED = dict(max_epochs=7, lr=0.05, warm_start=True)
ACCURACY_BAR = 0.3


def _run_loop(strategy, data, n_cycles=2, n_instances=10, **net_params):
    X_pool, y_pool = data["X_pool"].copy(), data["y_pool"].copy()
    calls = []

    def counted(classifier, X, n_instances=1, **kwargs):
        calls.append(n_instances)
        return strategy(classifier, X, n_instances=n_instances, **kwargs)

    net = small_net(**{"max_epochs": 1, "classes": list(range(10)), **net_params})
    learner = ActiveLearner(
        estimator=net,
        query_strategy=counted,
        X_training=data["X"][:40],
        y_training=data["y"][:40],
        X_unlabeled=X_pool,
    )
    labelled = 40
    scores = []
    for _ in range(n_cycles):
        idx, rows = learner.query(X_pool, n_instances=n_instances)
        idx = np.asarray(idx)
        assert len(set(idx.tolist())) == n_instances
        np.testing.assert_array_equal(np.asarray(rows), X_pool[idx])
        remaining = np.delete(X_pool, idx, axis=0)
        learner.teach(X_pool[idx], y_pool[idx], X_unlabeled=remaining)
        X_pool, y_pool = remaining, np.delete(y_pool, idx)
        labelled += n_instances
        assert len(learner.X_training) == labelled
        scores.append(learner.score(data["X_test"], data["y_test"]))
    assert calls == [n_instances] * n_cycles  # one strategy call per query
    return scores


@pytest.mark.parametrize(
    "strategy",
    [
        mobyv2al_sampling,
        coreset_sampling,
        typiclust_sampling,
        budget_aware_sampling,
        random_sampling,
        margin_sampling,
    ],
    ids=["mobyv2al", "coreset", "typiclust", "budget_aware", "random", "modal_margin"],
)
def test_active_learner_loop(tiny_digits, strategy):
    scores = _run_loop(strategy, tiny_digits, **TRAINED)
    assert scores[-1] > ACCURACY_BAR, scores


def test_untrained_net_misses_the_accuracy_bar(tiny_digits):
    # the same seeded network with a zero learning rate (its weights never move): what
    # the bar above rules out
    net = small_net(classes=list(range(10)), **{**TRAINED, "max_epochs": 1, "lr": 0.0})
    net.fit(tiny_digits["X"][:40], tiny_digits["y"][:40], X_unlabeled=tiny_digits["X_pool"])
    assert net.score(tiny_digits["X_test"], tiny_digits["y_test"]) < ACCURACY_BAR / 2


def test_query_with_two_instances_returns_two_indices(tiny_digits):
    # the case that modAL 0.4.2.1 would unpack wrongly from a bare index array
    _run_loop(mobyv2al_sampling, tiny_digits, n_cycles=1, n_instances=2)


COLD_START_STRATEGIES = [
    typiclust_sampling,
    maxherding_sampling,
    budget_aware_sampling,
    coreset_sampling,
    random_sampling,
]


def _cold_start_loop(strategy, X, y, n_instances=20, n_cycles=2):
    """A modAL loop from zero labels: a pipeline whose PCA is fitted on the pool only."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pool, y_pool = X.copy(), y.copy()
    pipe = make_pipeline(PCA(n_components=16, random_state=0), LogisticRegression(max_iter=500))
    pipe[:-1].fit(pool)  # unsupervised, no label needed
    learner = ActiveLearner(estimator=pipe, query_strategy=strategy)
    assert learner.X_training is None
    picked = []
    for cycle in range(n_cycles):
        idx, rows = learner.query(pool, n_instances=n_instances, random_state=cycle)
        idx = np.asarray(idx)
        assert idx.shape == (n_instances,) and len(set(idx.tolist())) == n_instances
        np.testing.assert_array_equal(np.asarray(rows), pool[idx])
        learner.teach(pool[idx], y_pool[idx])
        picked.append(y_pool[idx])
        pool, y_pool = np.delete(pool, idx, axis=0), np.delete(y_pool, idx)
    assert len(learner.X_training) == n_instances * n_cycles
    return np.concatenate(picked)


@pytest.mark.parametrize(
    "strategy", COLD_START_STRATEGIES, ids=lambda s: s.__name__.replace("_sampling", "")
)
def test_cold_start_pipeline_loop(digits, strategy):
    X = digits.X_train.reshape(len(digits.X_train), -1)[:600]
    labels = _cold_start_loop(strategy, X, digits.y_train[:600])
    assert len(np.unique(labels)) >= 5


@pytest.mark.skipif(not MODAL_0421.is_dir(), reason="modAL 0.4.2.1 not unpacked by .ci/run")
def test_cold_start_under_modal_0421():
    script = textwrap.dedent(
        """
        import numpy as np, modAL
        assert modAL.__file__.startswith(MODAL_DIR), modAL.__file__
        from modAL.models import ActiveLearner
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from moby_al_plugin import (budget_aware_sampling, coreset_sampling, load_digits_dataset,
                                    maxherding_sampling, random_sampling, typiclust_sampling)
        d = load_digits_dataset()
        X, y = d.X_train.reshape(len(d.X_train), -1)[:300], d.y_train[:300]
        for strategy in (typiclust_sampling, maxherding_sampling, budget_aware_sampling,
                         coreset_sampling, random_sampling):
            calls = []
            def counted(clf, X, n_instances=1, **kw):
                calls.append(1)
                return strategy(clf, X, n_instances=n_instances, **kw)
            pipe = make_pipeline(PCA(n_components=8, random_state=0),
                                 LogisticRegression(max_iter=300))
            pipe[:-1].fit(X)
            learner = ActiveLearner(pipe, counted)
            pool, y_pool = X, y
            for n in (12, 2):  # teach refits the PCA: 12 rows are enough for it
                idx, rows = learner.query(pool, n_instances=n, random_state=0)
                idx = np.asarray(idx)
                assert idx.shape == (n,) and len(set(idx.tolist())) == n, idx
                np.testing.assert_array_equal(np.asarray(rows), pool[idx])
                learner.teach(pool[idx], y_pool[idx])
                pool, y_pool = np.delete(pool, idx, axis=0), np.delete(y_pool, idx)
            assert len(calls) == 2, calls
        print("ok")
        """
    ).replace("MODAL_DIR", repr(str(MODAL_0421)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(MODAL_0421), os.getcwd()]))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.skipif(not MODAL_0421.is_dir(), reason="modAL 0.4.2.1 not unpacked by .ci/run")
def test_strategies_under_modal_0421():
    script = textwrap.dedent(
        """
        import numpy as np, modAL
        assert modAL.__file__.startswith(MODAL_DIR), modAL.__file__
        from importlib.metadata import version
        from modAL.models import ActiveLearner
        from moby_al_plugin import (MoBYClassifier, load_digits_dataset,
                                    mobyv2al_sampling, random_sampling, typiclust_sampling)
        d = load_digits_dataset()
        for strategy in (mobyv2al_sampling, typiclust_sampling, random_sampling):
            calls = []
            def counted(clf, X, n_instances=1, **kw):
                calls.append(1)
                return strategy(clf, X, n_instances=n_instances, **kw)
            net = MoBYClassifier(max_epochs=1, train_samples=2000, batch_size=32, queue_size=64,
                                 views="digits", random_state=0, classes=list(range(10)))
            learner = ActiveLearner(net, counted, X_training=d.X_train[:40],
                                    y_training=d.y_train[:40], X_unlabeled=d.X_train[40:200])
            pool = d.X_train[40:200]
            for n in (2, 5):
                idx, rows = learner.query(pool, n_instances=n)
                idx = np.asarray(idx)
                assert idx.shape == (n,) and len(set(idx.tolist())) == n, idx
                np.testing.assert_array_equal(np.asarray(rows), pool[idx])
                learner.teach(pool[idx], d.y_train[40:200][idx],
                              X_unlabeled=np.delete(pool, idx, axis=0))
                pool = np.delete(pool, idx, axis=0)
            assert len(calls) == 2, calls
        print("ok")
        """
    ).replace("MODAL_DIR", repr(str(MODAL_0421)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(MODAL_0421), os.getcwd()]))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")

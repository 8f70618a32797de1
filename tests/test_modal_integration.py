"""Real modAL ActiveLearner loops on the digits with every strategy.

The loops use ``moby_al_plugin.ActiveLearner`` (modAL's learner with the
labelled-row check that scikit-learn >= 1.8 accepts), on whichever
scikit-learn is installed: .ci/run runs this file once more on the other end
of the supported range, with ``MOBY_AL_EXPECT_SKLEARN`` naming the version
that must be imported.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import modAL.models
import numpy as np
import pytest
import sklearn
from modAL.uncertainty import margin_sampling

from moby_al_plugin import (
    ActiveLearner,
    budget_aware_sampling,
    coreset_sampling,
    maxherding_sampling,
    mobyv2al_sampling,
    random_sampling,
    typiclust_sampling,
)

from .conftest import small_net

MODAL_0421 = Path(__file__).resolve().parents[1] / ".ci-cache" / "modal-0.4.2.1"
# .ci/run unpacks modAL 0.4.2.1 there: under CI its absence is a failure, not a skip
needs_modal_0421 = pytest.mark.skipif(
    not MODAL_0421.is_dir() and not os.environ.get("CI"),
    reason="modAL 0.4.2.1 not unpacked into .ci-cache by .ci/run",
)


def _modal_0421_path() -> str:
    # modAL 0.4.2.1 first, then this checkout, then what PYTHONPATH held (the extra
    # run's scikit-learn)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([str(MODAL_0421), os.getcwd(), *rest])


def test_mobyv2al_defaults_to_the_papers_unnormalised_features():
    assert inspect.signature(mobyv2al_sampling).parameters["normalize"].default is False
    assert inspect.signature(coreset_sampling).parameters["normalize"].default is True


def _sklearn_version() -> tuple[int, int]:
    major, minor = sklearn.__version__.split(".")[:2]
    return int(major), int(minor)


def test_the_expected_scikit_learn_is_imported():
    # .ci/run's extra run puts another scikit-learn first on PYTHONPATH and names it here
    expected = os.environ.get("MOBY_AL_EXPECT_SKLEARN")
    if not expected:
        pytest.skip("MOBY_AL_EXPECT_SKLEARN not set (only .ci/run's extra run sets it)")
    assert sklearn.__version__ == expected, (sklearn.__version__, sklearn.__file__)


def test_learner_is_modals_and_teaches_on_installed_sklearn(digits):
    X = digits.X_train.reshape(len(digits.X_train), -1)[:300].astype(np.float64)
    y = digits.y_train[:300]
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(PCA(n_components=8, random_state=0), LogisticRegression(max_iter=300))
    pipe[:-1].fit(X)
    learner = ActiveLearner(estimator=pipe, query_strategy=coreset_sampling)
    assert isinstance(learner, modAL.models.ActiveLearner)
    idx, _ = learner.query(X, n_instances=20)
    learner.teach(X[idx], y[idx])
    rest = np.setdiff1d(np.arange(len(X)), idx)[:10]
    learner.teach(X[rest], y[rest], only_new=True)  # fits on these alone, keeps all rows
    assert len(learner.X_training) == len(learner.y_training) == 30
    learner.fit(X[:40], y[:40])  # forgets the rows taught so far
    assert len(learner.X_training) == 40
    assert learner.score(X, y) > 0.5
    bad = X[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        learner.teach(bad, y[:2])
    with pytest.raises(ValueError):
        learner.teach(X[:3], y[:2])  # rows and labels disagree
    assert len(learner.X_training) == 40


def test_modals_own_learner_runs_the_documented_loop(digits):
    # modAL's documented loop, its own ActiveLearner: once the plug-in is imported
    # it works on every supported scikit-learn (patched only where it must be)
    from moby_al_plugin import modal_compat

    net = small_net(max_epochs=1, train_samples=600)
    X, y = digits.X_train[:160], digits.y_train[:160]
    learner = modAL.models.ActiveLearner(
        estimator=net, query_strategy=mobyv2al_sampling, X_training=X[:20], y_training=y[:20]
    )
    pool, y_pool = X[20:], y[20:]
    for _ in range(2):
        idx, _ = learner.query(pool, n_instances=5)
        learner.teach(pool[idx], y_pool[idx])
        pool, y_pool = np.delete(pool, idx, axis=0), np.delete(y_pool, idx)
    assert len(learner.X_training) == 30
    assert modal_compat.modal_is_patched() == (_sklearn_version() >= (1, 8))
    bad = X[:2].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # modAL's own check still runs
        learner.teach(bad, y[:2])


def _teach_in_a_fresh_process(first_import: str, env: dict | None = None):
    script = textwrap.dedent(
        f"""
        {first_import}
        import numpy as np
        from modAL.models import ActiveLearner
        from sklearn.linear_model import LogisticRegression
        learner = ActiveLearner(LogisticRegression())
        learner.teach(np.random.default_rng(0).random((6, 2)), np.array([0, 1] * 3))
        import moby_al_plugin.modal_compat as compat
        print(compat.modal_is_patched())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
        timeout=300,
    )


@pytest.mark.parametrize(
    "first_import",
    ["import moby_al_plugin; import modAL.models", "import modAL.models; import moby_al_plugin"],
)
def test_the_modal_patch_applies_in_either_import_order(first_import):
    done = _teach_in_a_fresh_process(first_import)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(_sklearn_version() >= (1, 8))]


@pytest.mark.skipif(_sklearn_version() < (1, 8), reason="modAL's own check works before 1.8")
def test_opting_out_leaves_modal_as_installed():
    # and shows why the patch exists (modAL issue #196): if this starts to pass, a
    # modAL release has fixed teach and the patch can go
    done = _teach_in_a_fresh_process("import moby_al_plugin", env={"MOBY_AL_NO_MODAL_PATCH": "1"})
    assert done.returncode != 0
    assert "force_all_finite" in done.stderr
    from moby_al_plugin import modal_compat

    modal_compat.unpatch_modal()
    try:
        learner = modAL.models.ActiveLearner(estimator=make_logistic())
        with pytest.raises(TypeError, match="force_all_finite"):
            learner.teach(np.zeros((2, 3)), np.array([0, 1]))
    finally:
        modal_compat.install()
    assert modal_compat.modal_is_patched()


def make_logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=300)


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


@needs_modal_0421
def test_cold_start_under_modal_0421():
    assert MODAL_0421.is_dir(), "CI is set: .ci/run must unpack modAL 0.4.2.1 there"
    script = textwrap.dedent(
        """
        import os, numpy as np, modAL, sklearn
        assert modAL.__file__.startswith(MODAL_DIR), modAL.__file__
        expected = os.environ.get("MOBY_AL_EXPECT_SKLEARN") or sklearn.__version__
        assert sklearn.__version__ == expected, (sklearn.__version__, expected)
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from moby_al_plugin import (ActiveLearner, budget_aware_sampling, coreset_sampling,
                                    load_digits_dataset, maxherding_sampling, random_sampling,
                                    typiclust_sampling)
        import inspect
        assert inspect.getfile(ActiveLearner.__mro__[1]).startswith(MODAL_DIR)
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
    env = dict(os.environ, PYTHONPATH=_modal_0421_path())
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@needs_modal_0421
def test_strategies_under_modal_0421():
    assert MODAL_0421.is_dir(), "CI is set: .ci/run must unpack modAL 0.4.2.1 there"
    script = textwrap.dedent(
        """
        import os, numpy as np, modAL, sklearn
        assert modAL.__file__.startswith(MODAL_DIR), modAL.__file__
        expected = os.environ.get("MOBY_AL_EXPECT_SKLEARN") or sklearn.__version__
        assert sklearn.__version__ == expected, (sklearn.__version__, expected)
        from moby_al_plugin import (ActiveLearner, MoBYClassifier, load_digits_dataset,
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
    env = dict(os.environ, PYTHONPATH=_modal_0421_path())
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@needs_modal_0421
def test_modals_own_learner_under_modal_0421():
    # 0.4.2.1 calls check_X_y from modAL.models.learners, not base: patched there
    assert MODAL_0421.is_dir(), "CI is set: .ci/run must unpack modAL 0.4.2.1 there"
    script = textwrap.dedent(
        """
        import numpy as np, modAL
        assert modAL.__file__.startswith(MODAL_DIR), modAL.__file__
        import moby_al_plugin
        from modAL.models import ActiveLearner
        from sklearn.linear_model import LogisticRegression
        learner = ActiveLearner(LogisticRegression())
        learner.teach(np.random.default_rng(0).random((6, 2)), np.array([0, 1] * 3))
        from moby_al_plugin import modal_compat
        print(modal_compat.modal_is_patched())
        """
    ).replace("MODAL_DIR", repr(str(MODAL_0421)))
    env = dict(os.environ, PYTHONPATH=_modal_0421_path())
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [str(_sklearn_version() >= (1, 8))]

"""modAL's ``ActiveLearner`` on every supported scikit-learn.

Both modAL releases (0.4.1 and 0.4.2.1, the last, from 2023) validate the
labelled rows with ``check_X_y(..., force_all_finite=...)``. scikit-learn 1.6
renamed that argument ``ensure_all_finite`` and 1.8 removed the old name, so
modAL's own ``ActiveLearner.teach`` and ``fit`` raise ``TypeError`` there
(modAL issue #196). :class:`ActiveLearner` is modAL's learner with only those
checks replaced: it passes ``ensure_all_finite`` where scikit-learn knows it
and ``force_all_finite`` where it does not. Everything else (``query``,
``score``, the query strategies, ``X_unlabeled`` passed on to ``fit``) is
modAL's, whichever modAL release is installed.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from modAL.models import ActiveLearner as _ModALActiveLearner
from modAL.utils.data import data_vstack
from sklearn.utils import check_X_y

__all__ = ["ActiveLearner", "check_labelled_rows"]

# scikit-learn >= 1.6 names the argument ensure_all_finite; older releases
# only know force_all_finite
_FINITE_ARG = (
    "ensure_all_finite"
    if "ensure_all_finite" in inspect.signature(check_X_y).parameters
    else "force_all_finite"
)


def check_labelled_rows(X: Any, y: Any, *, all_finite: bool | str = True) -> None:
    """Check labelled rows as modAL does, under the installed scikit-learn.

    The same checks as modAL's ``check_X_y`` call (any rank, sparse accepted,
    any dtype, several outputs allowed): ``X`` and ``y`` must have the same
    number of rows and, while ``all_finite`` is true, no NaN or infinity.
    ``all_finite="allow-nan"`` lets NaN through.
    """
    check_X_y(
        X,
        y,
        accept_sparse=True,
        ensure_2d=False,
        allow_nd=True,
        multi_output=True,
        dtype=None,
        **{_FINITE_ARG: all_finite},
    )


class ActiveLearner(_ModALActiveLearner):
    """``modAL.models.ActiveLearner`` that also runs on scikit-learn >= 1.8.

    A drop-in replacement: the same constructor, ``query``, ``teach``,
    ``fit``, ``predict`` and ``score`` as modAL's learner, of which it is a
    subclass (``isinstance(learner, modAL.models.ActiveLearner)`` holds, and
    modAL's query strategies take it). Only the validation of labelled rows
    differs: it goes through :func:`check_labelled_rows`.

    ``teach(X, y, only_new=True)`` adds ``X`` and ``y`` to ``X_training`` and
    ``y_training`` and fits on them alone, as modAL 0.4.1 does (modAL 0.4.2.1
    leaves them out of ``X_training``).

    Examples
    --------
    ::

        from moby_al_plugin import ActiveLearner, typiclust_sampling

        learner = ActiveLearner(estimator=pipeline, query_strategy=typiclust_sampling)
        idx, _ = learner.query(X_pool, n_instances=20)
        learner.teach(X_pool[idx], y_oracle[idx])
    """

    def query(self, X_pool: Any, *query_args: Any, **query_kwargs: Any):
        """modAL's ``query``; a :class:`moby_al_plugin.ImagePool` gives its own rows.

        modAL reads the picked rows with ``retrieve_rows``, which knows
        arrays (memmaps included), data frames, lists and sparse matrices
        only; the rows of an image folder are read here, by the pool.
        Returns ``(indices, rows)``.
        """
        if not isinstance(X_pool, (np.ndarray, list)):
            from .data.pools import ImagePool  # torch is imported only for a pool that needs it

            if isinstance(X_pool, ImagePool):
                if query_kwargs.pop("return_metrics", False):
                    raise TypeError("return_metrics is not supported for an ImagePool pool")
                result = self.query_strategy(self, X_pool, *query_args, **query_kwargs)
                # strategies return the indices, or (indices, rows) as modAL's older ones did
                indices = np.asarray(result[0] if isinstance(result, tuple) else result)
                return indices, X_pool[indices]
        return super().query(X_pool, *query_args, **query_kwargs)

    def _check_rows(self, X: Any, y: Any) -> None:
        check_labelled_rows(X, y, all_finite=getattr(self, "force_all_finite", True))

    def _add_training_data(self, X: Any, y: Any) -> None:
        self._check_rows(X, y)
        if self.X_training is None:
            self.X_training, self.y_training = X, y
            return
        try:
            self.X_training = data_vstack((self.X_training, X))
            self.y_training = data_vstack((self.y_training, y))
        except ValueError as exc:
            raise ValueError(
                "the dimensions of the new training data and labels must agree with "
                "the training data and labels provided so far"
            ) from exc

    def _fit_on_new(self, X: Any, y: Any, bootstrap: bool = False, **fit_kwargs: Any):
        self._check_rows(X, y)
        if bootstrap:
            rows = np.random.choice(X.shape[0], X.shape[0], replace=True)
            X, y = X[rows], y[rows]
        self.estimator.fit(X, y, **fit_kwargs)
        return self

    def fit(self, X: Any, y: Any, bootstrap: bool = False, **fit_kwargs: Any):
        """Forget the labelled rows so far, keep ``X``/``y`` and fit on them."""
        self._check_rows(X, y)
        self.X_training, self.y_training = X, y
        return self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)

    def teach(
        self, X: Any, y: Any, bootstrap: bool = False, only_new: bool = False, **fit_kwargs: Any
    ) -> None:
        """Add the newly labelled ``X``/``y`` and refit (on all rows, or on them alone)."""
        self._add_training_data(X, y)
        if only_new:
            self._fit_on_new(X, y, bootstrap=bootstrap, **fit_kwargs)
        else:
            self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)

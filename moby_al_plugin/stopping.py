"""When to stop labelling: the stabilizing-predictions rule.

Bloodgood and Vijay-Shanker (CoNLL 2009) stop active learning once the
models of successive rounds agree on a fixed *stop set* of unlabelled
images: Cohen's kappa between their predictions has stayed at or above a
threshold (0.99 in the paper) for a window of rounds (3). The stop set needs
no labels, so the rule works where no test set exists, as in a person's own
labelling.

:class:`StabilizingPredictions` is the object a modAL user calls once per
cycle; :func:`prediction_agreement` and :func:`stable_rounds` are the two
steps it takes, shared with the experiment runner and ``moby-al label``,
which keep their history in their own files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_STOP_THRESHOLD",
    "DEFAULT_STOP_WINDOW",
    "StabilizingPredictions",
    "check_stopping_rule",
    "prediction_agreement",
    "stable_rounds",
]

#: Bloodgood and Vijay-Shanker's values.
DEFAULT_STOP_THRESHOLD = 0.99
DEFAULT_STOP_WINDOW = 3


def check_stopping_rule(
    threshold: float, window: int, *, names: tuple[str, str] = ("threshold", "window")
) -> None:
    """Raise a ``ValueError`` or ``TypeError`` naming the setting that is out of range.

    Parameters
    ----------
    threshold : float
        Must lie in (0, 1].
    window : int
        Must be an integer of at least 1.
    names : tuple of str
        How the caller spells the two settings in its errors (the experiment
        configuration's are ``stop_threshold`` and ``stop_window``).
    """
    threshold_name, window_name = names
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise TypeError(f"{threshold_name} must be a number in (0, 1], got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:  # NaN fails this too
        raise ValueError(f"{threshold_name} must lie in (0, 1], got {threshold!r}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"{window_name} must be an integer of at least 1, got {window!r}")
    if window < 1:
        raise ValueError(f"{window_name} must be at least 1, got {window!r}")


def prediction_agreement(previous: Any, current: Any) -> float:
    """Cohen's kappa between two models' predictions on the same images.

    Parameters
    ----------
    previous, current : array-like of shape (n,)
        Predicted labels of the same stop set, in the same order.

    Returns
    -------
    float
        Kappa in [-1, 1]; 1.0 when the predictions are identical, even when
        both models predict one class everywhere (where kappa's chance
        agreement is 1 and the formula is undefined).

    Raises
    ------
    ValueError
        If the two differ in length or are empty.
    """
    a, b = np.asarray(previous).ravel(), np.asarray(current).ravel()
    if len(a) != len(b):
        raise ValueError(
            f"the two predictions cover different stop sets: {len(a)} and {len(b)} images"
        )
    if len(a) == 0:
        raise ValueError("the stop set is empty: no predictions to compare")
    if np.array_equal(a, b):
        return 1.0
    from sklearn.metrics import cohen_kappa_score  # on first use: configs import this module

    return float(cohen_kappa_score(a, b))


def stable_rounds(kappas: Sequence[float | None], threshold: float) -> int:
    """How many of the latest rounds in a row reached ``threshold``.

    ``None`` (a round with no earlier model to compare with) and NaN end the
    run of stable rounds.
    """
    count = 0
    for kappa in reversed(list(kappas)):
        if kappa is None or math.isnan(kappa) or kappa < threshold:
            break
        count += 1
    return count


class StabilizingPredictions:
    """Stop once successive models agree on a fixed stop set (stabilizing predictions).

    Call :meth:`update` once per active-learning cycle, after the learner is
    taught; it predicts the stop set, compares with the previous cycle's
    predictions by Cohen's kappa and returns whether the rule fires: the last
    ``window`` kappas all reached ``threshold``. With the paper's window of 3
    it fires at the fourth update at the earliest (the first has nothing to
    compare with).

    Parameters
    ----------
    X_stop : array-like of shape (n, ...)
        The stop set: unlabelled images, fixed for the whole run (a few
        hundred to a few thousand; they need no labels and may later be
        labelled).
    threshold : float, default=0.99
        Kappa a round must reach to count as stable, in (0, 1].
    window : int, default=3
        Stable rounds in a row that stop the labelling, at least 1.

    Attributes
    ----------
    kappas_ : list of float
        Kappa of every update after the first, in order.
    n_labeled_ : list of int or None
        The learner's labelled-set size at every update (None where the
        learner does not say).
    predictions_ : ndarray or None
        The latest predictions of the stop set.
    stopped_at_ : int or None
        The index of the update (0-based) at which the rule first fired.

    Examples
    --------
    >>> rule = StabilizingPredictions(X_pool[:1000])      # doctest: +SKIP
    >>> for cycle in range(20):                           # doctest: +SKIP
    ...     idx, _ = learner.query(X_pool, n_instances=100)
    ...     learner.teach(X_pool[idx], y_oracle[idx])
    ...     if rule.update(learner):
    ...         break
    """

    def __init__(
        self,
        X_stop: Any,
        threshold: float = DEFAULT_STOP_THRESHOLD,
        window: int = DEFAULT_STOP_WINDOW,
    ) -> None:
        check_stopping_rule(threshold, window)
        if not hasattr(X_stop, "__len__") or not hasattr(X_stop, "__getitem__"):
            raise TypeError(
                f"X_stop must be an array of stop-set images, got {type(X_stop).__name__}"
            )
        if len(X_stop) == 0:
            raise ValueError("X_stop is empty: the rule needs a stop set of unlabelled images")
        shape = getattr(X_stop, "shape", None)
        if shape is not None and len(shape) < 2:
            raise ValueError(
                f"X_stop must hold one image (or feature row) per sample, shape (n, ...); "
                f"got shape {tuple(shape)}"
            )
        self.X_stop = X_stop
        self.threshold = threshold
        self.window = window
        self.kappas_: list[float] = []
        self.n_labeled_: list[int | None] = []
        self.predictions_: np.ndarray | None = None
        self.stopped_at_: int | None = None

    @property
    def stable_rounds_(self) -> int:
        """The latest rounds in a row whose kappa reached the threshold."""
        return stable_rounds(self.kappas_, self.threshold)

    @property
    def should_stop_(self) -> bool:
        """Whether the rule fires now."""
        return self.stable_rounds_ >= self.window

    def update(self, learner: Any) -> bool:
        """Predict the stop set with ``learner`` and say whether to stop.

        Parameters
        ----------
        learner : modAL learner or fitted estimator
            Anything with ``predict``; a modAL learner's labelled-set size is
            recorded too.

        Returns
        -------
        bool
            True once the last ``window`` kappas reached ``threshold``.
        """
        if not hasattr(learner, "predict"):
            raise TypeError(f"{type(learner).__name__} has no predict method")
        predictions = np.asarray(learner.predict(self.X_stop))
        if len(predictions) != len(self.X_stop):
            raise ValueError(
                f"the learner returned {len(predictions)} predictions for a stop set of "
                f"{len(self.X_stop)} images"
            )
        y_training = getattr(learner, "y_training", None)
        return self.record(predictions, None if y_training is None else len(y_training))

    def record(self, predictions: Any, n_labeled: int | None = None) -> bool:
        """Add one round's predictions of the stop set, made elsewhere.

        Returns
        -------
        bool
            Whether the rule fires after this round.
        """
        predictions = np.asarray(predictions).ravel()
        if self.predictions_ is not None:
            self.kappas_.append(prediction_agreement(self.predictions_, predictions))
        self.predictions_ = predictions
        self.n_labeled_.append(n_labeled)
        stop = self.should_stop_
        if stop and self.stopped_at_ is None:
            self.stopped_at_ = len(self.n_labeled_) - 1
        return stop

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(<{len(self.X_stop)} images>, threshold={self.threshold}, "
            f"window={self.window}; {len(self.kappas_)} kappas, "
            f"{self.stable_rounds_} stable)"
        )

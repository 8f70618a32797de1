"""Pseudo-labels for self-training: which unlabelled images count, and as what.

FixMatch (Sohn et al., NeurIPS 2020) trains on an unlabelled image only when
the network's prediction on its weak view is confident: the predicted class,
if its probability reaches a threshold, is the target of the prediction on
the strong view. FlexMatch (Zhang et al., NeurIPS 2021) lowers the threshold
of the classes the network has learnt least: with ``sigma_c`` the unlabelled
images whose latest prediction is class ``c`` with confidence above the
threshold ``tau``, and ``unused`` those with no such prediction yet,

    beta_c = sigma_c / max(max_c sigma_c, unused),    T_c = tau * beta_c / (2 - beta_c).

These are pure functions of arrays; :class:`~moby_al_plugin.MoBYClassifier`
(``pseudo_label_weight``) calls them on every unlabelled batch.

Targets can also come from outside the network: label spreading's class
distributions are smooth (their largest entry rarely nears a threshold like
0.95), so :func:`most_confident_targets` turns them into one-hot targets for
the share of images the graph is surest of and no target for the rest, for
``MoBYClassifier.fit(..., unlabeled_proba=...)``. Such targets can also
join the labelled set as plain labels (``pseudo_label_mode="labels"``): the
strong views of the consistency term roughly double a fit's cost, extra
labels cost nothing beyond the fit the real labels already pay for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import is_finite_number
from ..exceptions import MoBYALError

__all__ = [
    "PSEUDO_LABEL_MODES",
    "PSEUDO_LABEL_THRESHOLDS",
    "NOT_CONFIDENT",
    "check_pseudo_label_params",
    "flexmatch_thresholds",
    "most_confident_targets",
    "record_confident",
]

#: ``"fixed"``: one threshold for every class (FixMatch); ``"flexmatch"``: class-wise.
PSEUDO_LABEL_THRESHOLDS: tuple[str, ...] = ("fixed", "flexmatch")
#: ``"consistency"``: a target is learnt on the image's strong view (FixMatch);
#: ``"labels"``: images with a target from outside join the labelled set.
PSEUDO_LABEL_MODES: tuple[str, ...] = ("consistency", "labels")
#: The latest prediction of an image that has none above the threshold (yet).
NOT_CONFIDENT = -1


def check_pseudo_label_params(
    weight: Any, threshold: Any, thresholds: Any, mode: Any = "consistency"
) -> None:
    """Raise a ``ValueError`` naming a bad pseudo-label parameter."""
    if not is_finite_number(weight) or weight < 0:
        raise MoBYALError(f"pseudo_label_weight must be a number >= 0, got {weight!r}.")
    if not is_finite_number(threshold) or not 0.0 <= threshold <= 1.0:
        raise MoBYALError(f"pseudo_label_threshold must be a number in [0, 1], got {threshold!r}.")
    if thresholds not in PSEUDO_LABEL_THRESHOLDS:
        raise MoBYALError(
            f"unknown pseudo_label_thresholds {thresholds!r}; valid values: "
            f"{', '.join(PSEUDO_LABEL_THRESHOLDS)}"
        )
    if mode not in PSEUDO_LABEL_MODES:
        raise MoBYALError(
            f"unknown pseudo_label_mode {mode!r}; valid values: {', '.join(PSEUDO_LABEL_MODES)}"
        )
    if mode == "labels" and thresholds != "fixed" and weight > 0:
        raise MoBYALError(
            "pseudo_label_thresholds='flexmatch' adapts to the network's own predictions; "
            "pseudo_label_mode='labels' takes targets from outside, so it needs 'fixed'"
        )


def record_confident(
    latest: np.ndarray, rows: np.ndarray, confidence: np.ndarray, predicted: np.ndarray,
    threshold: float,
) -> None:  # fmt: skip
    """Store, in place, each image's latest confident class (or :data:`NOT_CONFIDENT`).

    Parameters
    ----------
    latest : ndarray of shape (n_unlabeled,)
        One entry per unlabelled image.
    rows : ndarray of shape (B,)
        The batch's images.
    confidence, predicted : ndarray of shape (B,)
        Their highest class probability and its class.
    threshold : float
        ``tau``.
    """
    latest[rows] = np.where(confidence >= threshold, predicted, NOT_CONFIDENT)


def flexmatch_thresholds(latest: np.ndarray, n_classes: int, threshold: float) -> np.ndarray:
    """FlexMatch's class-wise thresholds from the latest confident class of every image.

    Parameters
    ----------
    latest : ndarray of shape (n_unlabeled,)
        Latest confident class of each unlabelled image, or :data:`NOT_CONFIDENT`.
    n_classes : int
    threshold : float
        ``tau``, the threshold of the best-learnt class.

    Returns
    -------
    ndarray of shape (n_classes,)
        ``T_c``; all zero before any image is confident (FlexMatch's warm-up).
    """
    sigma = np.bincount(latest[latest >= 0], minlength=n_classes).astype(float)
    unused = float(np.sum(latest < 0))
    denominator = max(sigma.max(), unused)
    beta = sigma / denominator if denominator > 0 else np.zeros(n_classes)
    return threshold * beta / (2.0 - beta)


def most_confident_targets(proba: Any, share: float) -> np.ndarray:
    """One-hot targets for the ``share`` of rows with the highest top probability.

    Parameters
    ----------
    proba : array-like of shape (n, n_classes)
        Class scores of unlabelled images, for example label spreading's
        ``label_distributions_`` or ``predict_proba``.
    share : float
        In [0, 1]: the fraction of rows that get a target, the most confident
        first (ties broken by row order); 0 gives none, 1 every row.

    Returns
    -------
    ndarray of shape (n, n_classes), float32
        A one-hot row (the row's most probable class) for each chosen image,
        a row of zeros, which ``MoBYClassifier`` skips, for the others.
    """
    if not is_finite_number(share) or not 0.0 <= share <= 1.0:
        raise MoBYALError(f"share must be a number in [0, 1], got {share!r}.")
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise MoBYALError(f"proba must be 2-D (images, classes), got shape {proba.shape}.")
    if not np.isfinite(proba).all():
        raise MoBYALError("proba contains NaN or infinite values.")
    targets = np.zeros(proba.shape, dtype=np.float32)
    n_chosen = int(round(share * len(proba)))
    # stable sort on the negated confidence: equal confidences keep row order
    chosen = np.argsort(-proba.max(axis=1), kind="stable")[:n_chosen]
    targets[chosen, proba[chosen].argmax(axis=1)] = 1.0
    return targets

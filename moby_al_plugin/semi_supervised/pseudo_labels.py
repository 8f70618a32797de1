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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import is_finite_number
from ..exceptions import MoBYALError

__all__ = [
    "PSEUDO_LABEL_THRESHOLDS",
    "NOT_CONFIDENT",
    "check_pseudo_label_params",
    "flexmatch_thresholds",
    "record_confident",
]

#: ``"fixed"``: one threshold for every class (FixMatch); ``"flexmatch"``: class-wise.
PSEUDO_LABEL_THRESHOLDS: tuple[str, ...] = ("fixed", "flexmatch")
#: The latest prediction of an image that has none above the threshold (yet).
NOT_CONFIDENT = -1


def check_pseudo_label_params(weight: Any, threshold: Any, thresholds: Any) -> None:
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

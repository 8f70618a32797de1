"""The training schedule of one fit: how much it trains, in epochs and batches, at what rate.

Active learning refits the network on labelled sets of very different sizes,
from ten images to tens of thousands, and has no large validation set to
stop on. The schedule therefore fixes the compute of a fit in advance, as a
number of labelled samples seen (:func:`converged_train_samples`, measured
by ``benchmarks/learner.py``: the least compute after which doubling it no
longer raises test accuracy), and splits it into ``max_epochs`` epochs
(:func:`epoch_size`). The learning rate follows the fit's true number of
optimiser steps (:func:`lr_factor`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ._validation import check_integer
from .exceptions import MoBYALError

__all__ = [
    "LR_SCHEDULES",
    "RULE_BATCH_SIZE",
    "RULE_LR",
    "check_schedule",
    "converged_train_samples",
    "epoch_size",
    "even_batches",
    "lr_factor",
    "padded_epoch_size",
]

#: Learning-rate schedules: ``"cosine"`` anneals to zero over the fit,
#: ``"step"`` multiplies by ``gamma`` at fractions of the fit (the paper's).
LR_SCHEDULES = ("cosine", "step")

#: Batch size and initial learning rate of the converged rule: at equal
#: samples, batch 32 ends 0.7-1.8 points above batch 128 (four times the
#: steps) at the same images per second on CPU (benchmarks/learner.py).
RULE_BATCH_SIZE = 32
RULE_LR = 0.05

# The rule's constants (labelled samples seen per fit); see converged_train_samples.
RULE_FLOOR = 100_000
RULE_FLOOR_LABELS = 600  # the floor is enough up to here (measured at 200 and 600)
RULE_KNEE_LABELS = 1_200
RULE_KNEE_SAMPLES = 400_000


def converged_train_samples(n_labeled: int) -> int:
    """Labelled samples a fit on ``n_labeled`` images sees to converge.

    ``max(100_000, min(100_000 * (n / 600) ** 2, 400_000 * sqrt(n / 1_200)))``,
    rounded: 100,000 samples up to 600 labels, then growing with the square
    of the set to 400,000 at 1,200 labels (177,778 at 800, 277,778 at
    1,000), then with its square root (816,497 at 5,000 labels, 1,154,701
    at 10,000), at batch :data:`RULE_BATCH_SIZE` from lr :data:`RULE_LR`
    (cosine, Nesterov momentum, bfloat16 where the CPU has it). The
    constants come from ``benchmarks/learner.py --study convergence`` (the
    table is in docs/results.md, "Speed"; 3 seeds a cell): 100,000 samples are
    needed at 200 labels (50,000: 0.4 points less) and enough at 600
    (200,000: no better); 400,000 are needed at 1,200 labels (200,000: 0.5
    points less); at 5,000 labels 800,000 samples still gain 0.34 over
    400,000 (3 seeds), so the rule keeps growing past 1,200 labels. The
    rule before (333 samples a label from 300 labels on) spent twice this
    at 600 labels for the same accuracy.

    >>> converged_train_samples(10), converged_train_samples(1000), converged_train_samples(10000)
    (100000, 277778, 1154701)
    """
    n = _positive_int("n_labeled", n_labeled)
    grown = RULE_FLOOR * (n / RULE_FLOOR_LABELS) ** 2
    capped = RULE_KNEE_SAMPLES * math.sqrt(n / RULE_KNEE_LABELS)
    return int(round(max(RULE_FLOOR, min(grown, capped))))


def epoch_size(
    n_labeled: int,
    max_epochs: int,
    train_samples: int | str | None = "auto",
    min_samples_per_epoch: int | None = None,
) -> int:
    """Labelled samples drawn per epoch, so that ``max_epochs`` epochs see ``train_samples``.

    An epoch is at least one pass over the labelled set (skorch's epoch), at
    least ``min_samples_per_epoch``, and long enough that the fit's
    ``max_epochs`` epochs together reach ``train_samples`` (``"auto"``: the
    rule of :func:`converged_train_samples`; None: no such floor). So
    ``max_epochs`` sets how the fit is split (how often epoch callbacks run)
    and only adds compute when ``max_epochs`` passes over the labelled set
    exceed the rule.

    >>> epoch_size(100, 10, 50_000), epoch_size(100, 10, None), epoch_size(20_000, 10, 50_000)
    (5000, 100, 20000)
    """
    n = _positive_int("n_labeled", n_labeled)
    epochs = _positive_int("max_epochs", max_epochs)
    size = n
    if min_samples_per_epoch:
        size = max(size, int(min_samples_per_epoch))
    if train_samples == "auto":
        train_samples = converged_train_samples(n)
    if train_samples is not None:
        size = max(size, math.ceil(int(train_samples) / epochs))
    return int(size)


def padded_epoch_size(n_labeled: int, min_samples_per_epoch: int | None) -> int:
    """Labelled samples drawn per epoch: the set, padded to the minimum.

    >>> padded_epoch_size(100, 2048), padded_epoch_size(10000, 2048), padded_epoch_size(100, None)
    (2048, 10000, 100)
    """
    if not min_samples_per_epoch:
        return int(n_labeled)
    return max(int(n_labeled), int(min_samples_per_epoch))


def even_batches(n_samples: int, batch_size: int) -> list[int]:
    """Split ``n_samples`` into ``ceil(n / batch_size)`` batches of near-equal size.

    >>> even_batches(129, 128)
    [65, 64]
    """
    n_batches = math.ceil(n_samples / batch_size)
    if n_batches == 0:
        return []
    base, extra = divmod(n_samples, n_batches)
    return [base + 1] * extra + [base] * (n_batches - extra)


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str = "cosine",
    milestones: Sequence[float] = (0.6, 0.8),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate before optimiser step ``step`` (from 0).

    ``"cosine"``: ``(1 + cos(pi * step / total_steps)) / 2``, from 1 towards 0.
    ``"step"``: ``gamma ** k`` after ``k`` of the ``milestones`` (fractions
    of ``total_steps``, rounded to steps) have passed.

    >>> lr_factor(0, 100), lr_factor(50, 100), lr_factor(60, 100, "step")
    (1.0, 0.5, 0.1)
    """
    total = max(int(total_steps), 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if schedule == "step":
        return float(gamma) ** sum(step >= round(f * total) for f in milestones)
    raise MoBYALError(f"unknown lr_schedule {schedule!r}; valid names: {', '.join(LR_SCHEDULES)}")


def check_schedule(
    *,
    max_epochs: Any,
    batch_size: Any,
    lr: Any,
    train_samples: Any,
    min_samples_per_epoch: Any,
    lr_schedule: Any,
    lr_milestones: Any,
    lr_gamma: Any,
) -> None:
    """Refuse a schedule parameter that is zero, negative or not a number, naming it.

    ``lr`` may be 0 (it freezes the weights); every other value must be positive.

    Raises
    ------
    MoBYALError
        (a ``ValueError``) naming the first bad parameter.
    """
    _positive_int("max_epochs", max_epochs)
    _positive_int("batch_size", batch_size)
    _number("lr", lr, allow_zero=True)  # 0 freezes the weights: a legitimate probe
    if train_samples != "auto" and train_samples is not None:
        _positive_int("train_samples", train_samples, hint=' (or "auto", or None)')
    if min_samples_per_epoch is not None:
        _positive_int("min_samples_per_epoch", min_samples_per_epoch, " or None", minimum=0)
    if lr_schedule not in LR_SCHEDULES:
        raise MoBYALError(
            f"unknown lr_schedule {lr_schedule!r}; valid names: {', '.join(LR_SCHEDULES)}"
        )
    for fraction in lr_milestones:
        if not isinstance(fraction, numbers.Real) or not 0.0 < fraction <= 1.0:
            raise MoBYALError(f"lr_milestones must be fractions in (0, 1], got {fraction!r}.")
    _number("lr_gamma", lr_gamma)


def _positive_int(name: str, value: Any, hint: str = "", minimum: int = 1) -> int:
    # a schedule value of the wrong type is a ValueError too: it names the parameter
    try:
        return check_integer(value, name, minimum=minimum)
    except (TypeError, ValueError):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise MoBYALError(f"{name} must be {kind}{hint}, got {value!r}.") from None


def _number(name: str, value: Any, allow_zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a number >= 0" if allow_zero else "a positive number"
        raise MoBYALError(f"{name} must be {kind}, got {value!r}.")
    return float(value)

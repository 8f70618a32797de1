"""The stopping rule of a labelling folder: its stop set and the kappa of every round.

Every round of ``moby-al label next`` that trains a model predicts a fixed
stop set of the folder's images (up to :data:`STOP_SET_SIZE`, drawn once)
and compares with the previous round by Cohen's kappa
(:mod:`moby_al_plugin.stopping`). The history lives in the database's
``meta`` table under :data:`META_KEY`, as JSON; it is bookkeeping only, so a
damaged or missing history starts again and never touches an answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..stopping import (
    DEFAULT_STOP_THRESHOLD,
    DEFAULT_STOP_WINDOW,
    prediction_agreement,
    stable_rounds,
)
from .store import LabelStore

__all__ = ["META_KEY", "STOP_SET_SIZE", "stop_set", "record_round", "stopping_summary"]

META_KEY = "stopping"
#: Images whose predictions are compared round to round; enough for a kappa
#: that moves by less than a point from sampling alone, cheap to predict.
STOP_SET_SIZE = 1000


def _history(store: LabelStore) -> dict[str, Any]:
    try:
        history = json.loads(store.meta(META_KEY) or "{}")
    except json.JSONDecodeError:
        return {}
    return history if isinstance(history, dict) else {}


def stop_set(store: LabelStore, usable: Sequence[int], seed: int) -> list[int]:
    """The folder's stop set (image ids), drawn once from the usable images and kept.

    Images that became unusable since (moved or changed on disk) drop out;
    the rest stay, labelled or not, as in Bloodgood and Vijay-Shanker.
    """
    kept = _history(store).get("stop_ids")
    usable_set = set(int(i) for i in usable)
    if isinstance(kept, list) and kept:
        return [int(i) for i in kept if int(i) in usable_set]
    ids = np.asarray(sorted(usable_set), dtype=np.int64)
    rng = np.random.RandomState(seed)
    chosen = rng.choice(ids, size=min(STOP_SET_SIZE, len(ids)), replace=False)
    stop_ids = sorted(int(i) for i in chosen)
    store.set_meta(META_KEY, json.dumps({**_history(store), "stop_ids": stop_ids}))
    return stop_ids


def record_round(
    store: LabelStore,
    ids: Sequence[int],
    predictions: Sequence[int],
    *,
    n_labelled: int,
    classes: Sequence[str],
) -> dict[str, Any]:
    """Add one round's stop-set predictions and return :func:`stopping_summary`.

    The kappa compares the images both rounds predicted; a changed class
    list makes the predictions incomparable, so the history starts again.
    """
    history = _history(store)
    previous = history.get("last") or {}
    rounds = list(history.get("rounds") or [])
    if history.get("classes") != list(classes):
        previous, rounds = {}, []
    current = {int(i): int(p) for i, p in zip(ids, predictions)}
    before = {int(i): int(p) for i, p in zip(previous.get("ids", []), previous.get("labels", []))}
    common = sorted(set(current) & set(before))
    kappa = None
    if common:
        kappa = prediction_agreement([before[i] for i in common], [current[i] for i in common])
    rounds.append({"labelled": int(n_labelled), "kappa": kappa})
    history.update(
        classes=list(classes),
        rounds=rounds,
        last={"ids": sorted(current), "labels": [current[i] for i in sorted(current)]},
        threshold=history.get("threshold", DEFAULT_STOP_THRESHOLD),
        window=history.get("window", DEFAULT_STOP_WINDOW),
    )
    store.set_meta(META_KEY, json.dumps(history))
    return stopping_summary(store)


def stopping_summary(store: LabelStore) -> dict[str, Any] | None:
    """What the rule says now, for ``label status`` and the page; None before any round.

    Returns
    -------
    dict or None
        ``rounds`` (labelled count and kappa of every round), ``threshold``,
        ``window``, ``stable`` (latest stable rounds in a row), ``stop``
        (whether the rule fires) and ``message``, one sentence for a person.
    """
    history = _history(store)
    rounds = history.get("rounds") or []
    if not rounds:
        return None
    threshold = float(history.get("threshold", DEFAULT_STOP_THRESHOLD))
    window = int(history.get("window", DEFAULT_STOP_WINDOW))
    kappas = [r.get("kappa") for r in rounds]
    stable = stable_rounds(kappas, threshold)
    stop = stable >= window
    last = kappas[-1]
    if stop:
        message = (
            f"predictions unchanged for the last {window} rounds: more labels are unlikely "
            "to change this model"
        )
    elif last is None:
        message = "first trained round: the stopping rule compares from the next round on"
    else:
        message = (
            f"predictions still changing: agreement with the previous round kappa {last:.3f} "
            f"({stable} of {window} stable rounds at kappa >= {threshold})"
        )
    return {
        "rounds": rounds,
        "threshold": threshold,
        "window": window,
        "stable": stable,
        "stop": stop,
        "message": message,
    }

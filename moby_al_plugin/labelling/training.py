"""One round of the labelling loop: pretrain once, fine-tune, query, queue the batch."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from .._atomic import atomic_write
from .._validation import check_integer
from ..encoder import MoBYEncoder
from ..estimator import MoBYClassifier
from ..learner import ActiveLearner
from ..registry import STRATEGIES, StrategyEntry
from .folder import read_pixels, verify_images
from .store import LabellingError, LabelStore

__all__ = [
    "DEFAULT_STRATEGY",
    "LABEL_STRATEGIES",
    "RoundSettings",
    "RoundResult",
    "query_next_batch",
]

#: Strategies of ``moby-al label next`` by their names there: the registry's
#: strategies of the pretrained network, without the ``_pretrained`` suffix
#: (every strategy of a folder sees the pretrained encoder's features).
LABEL_STRATEGIES: dict[str, StrategyEntry] = {
    entry.name.removesuffix("_pretrained"): entry
    for entry in STRATEGIES.values()
    if entry.network == "pretrained"
}
#: The selection benchmark's best plug-in strategy on Fashion-MNIST:
#: typicality at few labels per class, then diverse margin.
DEFAULT_STRATEGY = "budget_aware"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class RoundSettings:
    """The learner of ``next``; defaults finish in minutes for 1,000 images on 2 cores."""

    n: int = 50
    strategy: str = DEFAULT_STRATEGY
    backbone: str = "small_cnn"
    epochs: int = 10
    pretrain_epochs: int | None = None
    pretrain_samples: int = 40_000
    # the converged rule of the library (moby_al_plugin.schedule), as for every learner
    train_samples: int | str = "auto"
    batch_size: int = 128
    random_state: int = 0

    def pretrain_epochs_for(self, n_images: int) -> int:
        """Explicit ``pretrain_epochs``, else enough epochs for ``pretrain_samples`` views."""
        if self.pretrain_epochs is not None:
            return self.pretrain_epochs
        return int(min(200, max(2, math.ceil(self.pretrain_samples / max(n_images, 1)))))

    def validate(self) -> None:
        if self.strategy not in LABEL_STRATEGIES:
            raise LabellingError(
                f"unknown strategy {self.strategy!r}; choose one of "
                f"{', '.join(sorted(LABEL_STRATEGIES))}"
            )
        counts = ["n", "epochs", "pretrain_samples", "batch_size"]
        counts += [
            name
            for name in ("train_samples", "pretrain_epochs")
            if getattr(self, name) not in ("auto", None)
        ]
        for name in counts:
            value = getattr(self, name)
            try:
                check_integer(value, name)
            except (TypeError, ValueError):
                hint = {"train_samples": " or 'auto'", "pretrain_epochs": " or None"}
                raise LabellingError(
                    f"{name} must be a positive integer{hint.get(name, '')}, got {value!r}"
                ) from None


@dataclass(frozen=True)
class RoundResult:
    """What one ``next`` did."""

    batch_id: int | None
    queued: list[int]
    cold_start: bool
    pending_before: int
    n_labelled: int
    seconds: dict[str, float]


class _EpochReport(Callback):
    """Reports each finished epoch of a fine-tuning to the job's progress."""

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report

    def on_epoch_end(self, net, **kwargs) -> None:
        self.report(len(net.history), net.max_epochs)


def _cache_key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _pixels(store: LabelStore, ids: list[int], cache: Path) -> np.ndarray:
    """All usable images, decoded once and cached by their content and the size."""
    hashes = store.image_hashes()
    key = _cache_key(
        {
            "images": [hashes[i] for i in ids],
            "mode": store.meta("mode"),
            "size": store.meta("image_size"),
        }
    )
    path = cache / f"pixels-{key}.npy"
    if path.exists():
        return np.load(path)
    X = read_pixels(store, ids)
    atomic_write(path, lambda handle: np.save(handle, X))
    return X


def _encoder(
    store: LabelStore, X: np.ndarray, settings: RoundSettings, cache: Path, progress: Progress
) -> MoBYEncoder:
    """The encoder pretrained once per image folder, from its checkpoint or trained now.

    The key is the folder's images at ``init`` and the settings, so later
    changes to a few files do not start a new pretraining. The file is the
    encoder's own checkpoint: a killed pretraining continues where it stopped.
    """
    every = list(store.image_hashes().values())  # in image id order
    epochs = settings.pretrain_epochs_for(len(X))
    key = _cache_key(
        {
            "images": every,
            "backbone": settings.backbone,
            "epochs": epochs,
            "mode": store.meta("mode"),
            "size": store.meta("image_size"),
        }
    )
    path = cache / f"encoder-{key}.pt"
    encoder = MoBYEncoder(
        backbone=settings.backbone,
        queue_size=int(min(4096, max(256, len(X) // 2))),
        max_epochs=epochs,
        batch_size=int(min(128, max(2, len(X) // 2))),
        checkpoint=path,
        random_state=0,
    )
    if not path.exists():
        progress(0.05, f"pretraining the encoder on {len(X)} images ({epochs} epochs)")

    def report(enc: MoBYEncoder, epoch: int) -> None:
        progress(0.05 + 0.55 * epoch / epochs, f"pretraining: epoch {epoch} of {epochs}")

    return encoder.fit(X, on_epoch_end=report)


def query_next_batch(
    store: LabelStore,
    settings: RoundSettings,
    progress: Progress | None = None,
) -> RoundResult:
    """Fine-tune on the answers so far and queue the next ``settings.n`` images.

    Before two classes have labels there is nothing to fine-tune: the batch
    then comes from the pretrained encoder's features alone (cold start),
    and no class is suggested. Images still waiting in an earlier batch stay
    queued; the new batch is added after them.

    Raises
    ------
    LabellingError
        An unknown strategy, a strategy that needs a trained model before
        two classes have labels, or no image left to query.
    """
    settings.validate()
    report = progress or (lambda fraction, message: None)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    cache = store.workdir / "cache"
    cache.mkdir(exist_ok=True)
    report(0.0, "checking the images on disk")
    verify_images(store)
    usable = store.usable_images()
    candidates = store.candidates()
    if not candidates:
        raise LabellingError("every usable image is labelled, skipped or queued already")
    pending_before = len(store.pending())
    report(0.02, f"reading {len(usable)} images")
    X = _pixels(store, usable, cache)
    row_of = {image_id: row for row, image_id in enumerate(usable)}
    seconds["read"] = time.perf_counter() - started

    clock = time.perf_counter()
    encoder = _encoder(store, X, settings, cache, report)
    seconds["pretrain"] = time.perf_counter() - clock

    entry = LABEL_STRATEGIES[settings.strategy]
    query, seeded = entry.query, entry.seeded
    classes = store.classes
    if settings.strategy == "budget_aware":
        query = functools.partial(query, n_classes=len(classes))
    labelled, labels = store.labelled()
    cold = len(set(labels)) < 2
    if cold and not entry.cold_start:
        first = ", ".join(n for n, e in LABEL_STRATEGIES.items() if e.cold_start)
        raise LabellingError(
            f"strategy {settings.strategy!r} needs a trained model, and fewer than two classes "
            f"have labels yet; use one of {first} first"
        )
    net = MoBYClassifier(
        backbone=settings.backbone,
        pretrained=encoder,
        max_epochs=settings.epochs,
        batch_size=settings.batch_size,
        train_samples=settings.train_samples,
        contrastive_weight=0.0,
        classes=list(range(len(classes))),
        random_state=settings.random_state,
        callbacks=[
            (
                "report",
                _EpochReport(
                    lambda epoch, total: report(
                        0.6 + 0.3 * epoch / total, f"fine-tuning: epoch {epoch} of {total}"
                    )
                ),
            )
        ],
    )
    clock = time.perf_counter()
    if cold:
        learner = ActiveLearner(estimator=net, query_strategy=query)
    else:
        report(0.6, f"fine-tuning on {len(labelled)} labelled images")
        rows = [row_of[i] for i in labelled]
        learner = ActiveLearner(
            estimator=net,
            query_strategy=query,
            X_training=X[rows],
            y_training=np.asarray(labels, dtype=np.int64),
        )
    seconds["fine_tune"] = time.perf_counter() - clock

    clock = time.perf_counter()
    report(0.9, f"choosing {min(settings.n, len(candidates))} images ({settings.strategy})")
    pool_rows = np.asarray([row_of[i] for i in candidates])
    n = min(settings.n, len(candidates))
    kwargs = {"random_state": settings.random_state + len(labelled)} if seeded else {}
    picked, _ = learner.query(X[pool_rows], n_instances=n, **kwargs)
    picked = np.asarray(picked, dtype=np.intp)
    chosen = [candidates[i] for i in picked]
    suggestions: list[int | None] = [None] * len(chosen)
    if not cold:
        suggestions = [int(c) for c in net.predict(X[pool_rows[picked]])]
    seconds["query"] = time.perf_counter() - clock
    batch_id = store.add_batch(chosen, suggestions, strategy=settings.strategy, cold_start=cold)
    seconds["total"] = time.perf_counter() - started
    return RoundResult(batch_id, chosen, cold, pending_before, len(labelled), seconds)

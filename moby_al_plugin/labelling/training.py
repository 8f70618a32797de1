"""One round of the labelling loop: pretrain once, fine-tune, query, queue the batch."""

from __future__ import annotations

import functools
import hashlib
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import MoBYALError
from ..selection.registry import STRATEGIES, StrategyEntry
from .stopping_history import record_round, stop_set
from .store import LabellingError, LabelStore

if TYPE_CHECKING:
    import numpy as np

    from ..classifier import MoBYClassifier
    from ..encoder import MoBYEncoder

# torch, skorch, the network and the image reading are imported by
# query_next_batch: the settings and the strategy names (what the command's
# parser needs) cost nothing to import

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

# the fine-tuned model of the last round, continued by the next one
_MODEL_FILE = "finetuned-model.pkl"
# 2: the converged rule's batch 32 at lr 0.05 (a kept model of format 1 has lr 0.1);
# 3: Nesterov momentum and the precision setting
_MODEL_FORMAT = 3


@dataclass(frozen=True)
class RoundSettings:
    """The learner of ``next``; defaults finish in minutes for 1,000 images on 2 cores.

    Pretraining size (:meth:`pretrain_views_for`): the encoder sees
    ``clip(pretrain_views_per_image * n_images, pretrain_min_views,
    pretrain_max_views)`` augmented views, 25 per image, at least 10,000 and
    at most 40,000, in whole epochs (``ceil(views / n_images)``, 1 to 200).
    So 100 images get 100 epochs (10,000 views), 400 images 25 epochs
    (10,000), 1,000 images 25 epochs (25,000), and from 1,600 images on the
    views stay at 40,000 (10,000 images: 4 epochs; past 40,000 images one
    pass). The cost grows with the folder up to a bound instead of being
    40,000 views for every folder. The floor is what 400 images can afford:
    on the digits (2-core VM beside other work, one torch thread) 10, 30 and
    50 epochs took 27, 70 and 91 s, and a 5-nearest-neighbour classifier on
    the features scored 69, 80 and 87 % (100 epochs: 92 %, in 150 s).
    ``pretrain_epochs`` overrides the rule.

    Warm start (``warm_start``): the fine-tuned model of a round is kept in
    the work folder's cache, and the next round continues from it rather
    than from the encoder, with ``clip(new / labelled, 1/4, 1)`` of the
    fine-tuning samples (``train_samples``, or the library's converged rule
    for ``"auto"``), where ``new`` counts the answers the kept model has not
    been trained on (new or changed). A different encoder (other images,
    backbone, size or pretraining) or class list starts again from the
    encoder.

    Two legs (``first_leg_samples``): a round fine-tunes at most 25,000
    labelled samples before it chooses the batch, queues the batch (the page
    shows it), and then runs the rest of its fine-tuning (a warm continuation
    of the same model) while the person labels; the model kept for the next
    round is the one that saw all of the round's samples. So the batch is
    chosen by the model after the first leg, and every later round starts
    from the fully fine-tuned one. None runs everything before the choice.

    The folder's graph (``graph_labels``): before each fine-tuning, the
    labels spread over a kNN graph of every usable image (PCA-50 of the
    pixels, class mass normalised), and that share of the unlabelled images,
    the graph's surest first, joins the fine-tuning as labels: half of its
    samples, the other half the person's labels, at the cost of a plain
    fine-tuning plus the graph (``MoBYClassifier(pseudo_label_mode="labels")``;
    seconds for thousands of images). 0 turns it off.

    Pretrained weights (``weights``): the backbone starts from them before the
    pretraining on the folder (a torchvision weights name of a torchvision
    ``backbone``, say ``resnet18`` with ``IMAGENET1K_V1``, or a state-dict
    file; see :class:`moby_al_plugin.MoBYEncoder`), and the fine-tuned
    network starts from that encoder. They are part of the cached encoder's
    key (a name as it is, a file by its content), so other weights start a
    new pretraining. Not with ``encoder``, which was pretrained already.
    """

    n: int = 50
    strategy: str = DEFAULT_STRATEGY
    backbone: str = "small_cnn"
    # pretrained weights of the backbone: a torchvision weights name or a state-dict file
    weights: str | None = None
    epochs: int = 10
    pretrain_epochs: int | None = None
    pretrain_views_per_image: int = 25
    pretrain_min_views: int = 10_000
    pretrain_max_views: int = 40_000
    # the converged rule of the library (moby_al_plugin.schedule), as for every learner
    train_samples: int | str = "auto"
    batch_size: int = 32  # moby_al_plugin.schedule.RULE_BATCH_SIZE (not imported: start time)
    random_state: int = 0
    warm_start: bool = True
    # a MoBYEncoder file pretrained elsewhere (e.g. `moby-al pretrain` under torchrun)
    encoder: str | None = None
    # moby_al_plugin.hardware: bfloat16 where the hardware has it; torch threads (None:
    # the machine's cores, or OMP_NUM_THREADS when set)
    precision: str = "auto"
    threads: int | None = None
    # labelled samples fine-tuned before the batch is chosen; the rest of the round's
    # fine-tuning runs after the batch is queued, while the person labels (None: all first)
    first_leg_samples: int | None = 25_000
    # the share of the unlabelled images that join the fine-tuning with the graph's label
    # (0: none); the benchmarks' best learner at the cost of a plain fit
    graph_labels: float = 0.5

    def pretrain_views_for(self, n_images: int) -> int:
        """Views the pretraining aims at: ``clip(per_image * n, min_views, max_views)``."""
        views = self.pretrain_views_per_image * max(n_images, 1)
        return int(min(self.pretrain_max_views, max(self.pretrain_min_views, views)))

    def pretrain_epochs_for(self, n_images: int) -> int:
        """Explicit ``pretrain_epochs``, else the epochs of :meth:`pretrain_views_for`."""
        if self.pretrain_epochs is not None:
            return self.pretrain_epochs
        views = self.pretrain_views_for(n_images)
        return int(min(200, max(1, math.ceil(views / max(n_images, 1)))))

    def validate(self) -> None:
        from .._validation import check_integer

        if self.strategy not in LABEL_STRATEGIES:
            raise LabellingError(
                f"unknown strategy {self.strategy!r}; choose one of "
                f"{', '.join(sorted(LABEL_STRATEGIES))}"
            )
        counts = ["n", "epochs", "batch_size"]
        counts += ["pretrain_views_per_image", "pretrain_min_views", "pretrain_max_views"]
        counts += [
            name
            for name in ("train_samples", "pretrain_epochs", "first_leg_samples")
            if getattr(self, name) not in ("auto", None)
        ]
        for name in counts:
            value = getattr(self, name)
            try:
                check_integer(value, name)
            except (TypeError, ValueError):
                hint = {
                    "train_samples": " or 'auto'",
                    "pretrain_epochs": " or None",
                    "first_leg_samples": " or None",
                }
                raise LabellingError(
                    f"{name} must be a positive integer{hint.get(name, '')}, got {value!r}"
                ) from None
        if self.encoder is not None and not Path(self.encoder).is_file():
            raise LabellingError(f"--encoder {self.encoder}: no such file")
        if self.weights is not None:
            if self.encoder is not None:
                raise LabellingError(
                    "--weights starts the pretraining on the folder from them, and --encoder "
                    "replaces that pretraining (the file has its own start): give one of them"
                )
            from ..network.pretrained_weights import resolve_weights

            try:  # the name, or that the file exists; the tensors are checked when loaded
                resolve_weights(self.backbone, self.weights)
            except MoBYALError as exc:
                raise LabellingError(f"--weights {self.weights}: {exc}") from None
        from ..hardware import PRECISIONS, check_n_threads

        if self.precision not in PRECISIONS:
            raise LabellingError(
                f"unknown precision {self.precision!r}; valid values: {', '.join(PRECISIONS)}"
            )
        try:
            check_n_threads(self.threads)
        except MoBYALError as exc:
            raise LabellingError(str(exc).replace("n_threads", "threads")) from None
        from .._validation import is_finite_number

        if not is_finite_number(self.graph_labels) or not 0.0 <= self.graph_labels <= 1.0:
            raise LabellingError(
                f"graph_labels must be a number in [0, 1], got {self.graph_labels!r}"
            )
        if self.pretrain_min_views > self.pretrain_max_views:
            raise LabellingError(
                f"pretrain_min_views ({self.pretrain_min_views}) is above pretrain_max_views "
                f"({self.pretrain_max_views})"
            )


@dataclass(frozen=True)
class RoundResult:
    """What one ``next`` did.

    ``warm_start``: the fine-tuning continued the previous round's model;
    ``train_samples``: the labelled samples it saw (0 at a cold start).
    """

    batch_id: int | None
    queued: list[int]
    cold_start: bool
    pending_before: int
    n_labelled: int
    seconds: dict[str, float]
    warm_start: bool = False
    train_samples: int = 0


def _epoch_report(report: Callable[[int, int], None]) -> Any:
    """A skorch callback that reports each finished epoch of the current fit."""
    from skorch.callbacks import Callback

    class EpochReport(Callback):
        def __init__(self, report: Callable[[int, int], None]) -> None:
            self.report = report

        def on_train_begin(self, net, **kwargs) -> None:
            # a warm start continues the history of the earlier fits
            self.first = len(net.history)

        def on_epoch_end(self, net, **kwargs) -> None:
            self.report(len(net.history) - self.first, net.max_epochs)

    return EpochReport(report)


def _cache_key(payload: dict) -> str:
    from ..pretraining import pretraining_key  # one key scheme for every cached file

    return pretraining_key(payload)


def _pixels(store: LabelStore, ids: list[int], cache: Path) -> np.ndarray:
    """All usable images, decoded once and cached by their content and the size."""
    import numpy as np

    from .._atomic import atomic_write
    from .folder import read_pixels

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
) -> tuple[MoBYEncoder, Path]:
    """The encoder pretrained once per image folder, from its checkpoint or trained now.

    The key is the folder's images at ``init`` and the settings, so later
    changes to a few files do not start a new pretraining. The file is the
    encoder's own checkpoint: a killed pretraining continues where it stopped.
    """
    from ..pretraining import cached_encoder_path, given_encoder, pretrain_encoder

    if settings.encoder is not None:
        try:
            given = given_encoder(settings.encoder, X)
        except MoBYALError as exc:
            raise LabellingError(f"--{exc}") from exc  # "--encoder FILE: ...", the option
        progress(0.6, f"using the pretrained encoder {settings.encoder}")
        return given, Path(settings.encoder)
    every = list(store.image_hashes().values())  # in image id order
    epochs = settings.pretrain_epochs_for(len(X))
    key = {
        "images": every,
        "backbone": settings.backbone,
        "epochs": epochs,
        "mode": store.meta("mode"),
        "size": store.meta("image_size"),
    }
    if settings.weights is not None:  # none: the key of the encoders cached before weights
        from ..network.pretrained_weights import weights_identity

        key["weights"] = weights_identity(settings.weights)
    path = cached_encoder_path(cache, key)
    if not path.exists():
        progress(
            0.05,
            f"pretraining the encoder on {len(X)} images ({epochs} epochs, "
            f"{epochs * len(X)} views)",
        )

    def report(enc: MoBYEncoder, epoch: int) -> None:
        progress(0.05 + 0.55 * epoch / epochs, f"pretraining: epoch {epoch} of {epochs}")

    # a folder of a few hundred images: queue and batch no larger than half of it
    encoder = pretrain_encoder(
        X,
        checkpoint=path,
        on_epoch_end=report,
        backbone=settings.backbone,
        weights=settings.weights,
        queue_size=int(min(4096, max(256, len(X) // 2))),
        max_epochs=epochs,
        batch_size=int(min(128, max(2, len(X) // 2))),
        precision=settings.precision,
    )
    return encoder, path


def _model_key(encoder_file: Path, classes: list[str], settings: RoundSettings) -> str:
    """What a kept fine-tuned model depends on: the encoder's bytes, the classes, the network."""
    digest = hashlib.sha1(encoder_file.read_bytes()).hexdigest()
    return _cache_key({"encoder": digest, "classes": classes, "backbone": settings.backbone})


def _kept_model(path: Path, key: str) -> tuple[MoBYClassifier, set[tuple[int, int]]] | None:
    """The previous round's fine-tuned model and its training answers, if it still fits."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as handle:
            payload = pickle.load(handle)  # the work folder's own file
        if payload.get("format") != _MODEL_FORMAT or payload.get("key") != key:
            return None
        return payload["net"], {(int(i), int(c)) for i, c in payload["trained_on"]}
    except Exception:  # unreadable or from another version: start from the encoder
        return None


def _keep_model(path: Path, key: str, net: MoBYClassifier, trained_on: list) -> None:
    from .._atomic import atomic_write

    # the progress callback holds this process's job and the encoder is in
    # its own file: neither goes into the pickle
    net.set_params(callbacks=[], pretrained=None)
    net.initialize_callbacks()  # skorch's set_params builds them from the old list
    payload = {"format": _MODEL_FORMAT, "key": key, "trained_on": trained_on, "net": net}
    atomic_write(path, lambda handle: pickle.dump(payload, handle))


def _graph_labels(
    X: np.ndarray, labelled_rows: list[int], labels: list[int], n_classes: int, share: float
) -> dict[str, Any]:
    """``fit`` keywords: the unlabelled images and the graph's targets for its surest ``share``."""
    import numpy as np

    from ..semi_supervised.graph_pseudo_labels import (
        GRAPH_NEIGHBORS,
        graph_targets,
        pixel_pca_features,
        pool_graph,
    )

    if len(X) <= GRAPH_NEIGHBORS:  # a graph needs more images than neighbours per image
        return {}
    rows = np.asarray(labelled_rows)
    unlabelled = np.setdiff1d(np.arange(len(X)), rows)
    y = np.zeros(len(X), dtype=np.int64)
    y[rows] = labels
    graph = pool_graph(pixel_pca_features(X))
    targets = graph_targets(
        graph, y, rows, unlabelled, np.arange(n_classes), share, class_mass_normalization=True,
    )  # fmt: skip
    return {"X_unlabeled": X[unlabelled], "unlabeled_proba": targets}


def _fine_tune_samples(settings: RoundSettings, n_labelled: int, new: int, warm: bool) -> int | str:
    """Labelled samples of this round's fine-tuning (see :class:`RoundSettings`)."""
    if not warm:
        return settings.train_samples
    from ..schedule import converged_train_samples

    full = (
        converged_train_samples(n_labelled)
        if settings.train_samples == "auto"
        else int(settings.train_samples)
    )
    share = min(1.0, max(0.25, new / max(n_labelled, 1)))
    return max(1, math.ceil(share * full))


def _legs(settings: RoundSettings, samples: int | str, n_labelled: int) -> tuple[int, int]:
    """The round's fine-tuning samples in all, and those run before the batch is chosen."""
    from ..schedule import converged_train_samples

    total = converged_train_samples(max(n_labelled, 1)) if samples == "auto" else int(samples)
    if settings.first_leg_samples is None:
        return total, total
    return total, min(total, int(settings.first_leg_samples))


def query_next_batch(
    store: LabelStore,
    settings: RoundSettings,
    progress: Progress | None = None,
) -> RoundResult:
    """Fine-tune on the answers so far and queue the next ``settings.n`` images.

    Before two classes have labels there is nothing to fine-tune: the batch
    then comes from the pretrained encoder's features alone (cold start),
    and no class is suggested. Images still waiting in an earlier batch stay
    queued; the new batch is added after them. The fine-tuned model is kept
    in the work folder's cache, and the next round continues from it (see
    :class:`RoundSettings`).

    Raises
    ------
    LabellingError
        An unknown strategy, a strategy that needs a trained model before
        two classes have labels, or no image left to query.
    """
    from ..hardware import thread_report, torch_threads

    settings.validate()
    report = progress or (lambda fraction, message: None)
    with torch_threads(settings.threads):
        report(0.0, thread_report(settings.threads))
        return _query_next_batch(store, settings, report)


def _query_next_batch(store: LabelStore, settings: RoundSettings, report: Progress) -> RoundResult:
    """The body of :func:`query_next_batch`, once the settings are checked and threads set."""
    import numpy as np

    from ..classifier import MoBYClassifier
    from ..learner import ActiveLearner
    from .folder import verify_images

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
    encoder, encoder_file = _encoder(store, X, settings, cache, report)
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
    model_file = cache / _MODEL_FILE
    model_key = _model_key(encoder_file, classes, settings)
    answers = [(int(i), int(c)) for i, c in zip(labelled, labels)]
    kept = None if cold or not settings.warm_start else _kept_model(model_file, model_key)
    warm = kept is not None
    new = len(set(answers) - kept[1]) if warm else len(answers)
    samples = _fine_tune_samples(settings, len(answers), new, warm)
    total, samples = _legs(settings, samples, len(answers))
    callback = _epoch_report(
        lambda epoch, total: report(
            0.6 + 0.3 * epoch / total, f"fine-tuning: epoch {epoch} of {total}"
        )
    )
    graph_fit = {}  # the folder's graph: its surest labels join the fine-tuning
    if not cold and settings.graph_labels > 0:
        report(0.58, "spreading the labels over the folder's graph")
        graph_fit = _graph_labels(
            X, [row_of[i] for i in labelled], labels, len(classes), settings.graph_labels
        )
    # a kept model of a round without the graph (or with it) follows this round's setting
    pseudo = {"pseudo_label_weight": 1.0 if graph_fit else 0.0, "pseudo_label_mode": "labels"}
    if warm:
        net = kept[0]
        net.set_params(
            **pseudo,
            warm_start=True,
            max_epochs=settings.epochs,
            batch_size=settings.batch_size,
            train_samples=samples,
            random_state=settings.random_state,
            precision=settings.precision,
            callbacks=[("report", callback)],
        )
        net.initialize_callbacks()  # a warm fit does not initialise them again
    else:
        net = MoBYClassifier(
            backbone=settings.backbone,
            pretrained=encoder,
            max_epochs=settings.epochs,
            batch_size=settings.batch_size,
            train_samples=samples,
            contrastive_weight=0.0,
            **pseudo,
            classes=list(range(len(classes))),
            random_state=settings.random_state,
            precision=settings.precision,
            callbacks=[("report", callback)],
        )
    clock = time.perf_counter()
    seen = 0
    if cold:
        # no fine-tuning: the queries see the encoder's features
        learner = ActiveLearner(estimator=net, query_strategy=query)
    else:
        report(
            0.6,
            f"fine-tuning on {len(labelled)} labelled images"
            + (f" (continuing the last model: {new} new answers)" if warm else ""),
        )
        rows = [row_of[i] for i in labelled]
        learner = ActiveLearner(
            estimator=net,
            query_strategy=query,
            X_training=X[rows],
            y_training=np.asarray(labels, dtype=np.int64),
            **graph_fit,
        )
        seen = int(net.epoch_samples_) * int(net.max_epochs)
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
    seconds["to_batch"] = time.perf_counter() - started
    if not cold and total > samples:
        # the batch is on the page: the rest of the fine-tuning runs while the person
        # labels, and the next round continues from that model
        clock = time.perf_counter()
        report(0.95, f"batch queued; fine-tuning on for {total - samples} more samples")
        net.set_params(warm_start=True, train_samples=total - samples, callbacks=[])
        net.initialize_callbacks()
        net.fit(X[rows], np.asarray(labels, dtype=np.int64), **graph_fit)
        seen += int(net.epoch_samples_) * int(net.max_epochs)
        seconds["fine_tune_after_batch"] = time.perf_counter() - clock
    if not cold:
        # after the batch: a failure here costs the next round its warm start only
        _keep_model(model_file, model_key, net, answers)
        clock = time.perf_counter()
        stop_ids = stop_set(store, usable, settings.random_state)
        predictions = net.predict(X[[row_of[i] for i in stop_ids]]) if stop_ids else []
        record_round(store, stop_ids, predictions, n_labelled=len(labelled), classes=classes)
        seconds["stopping_rule"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started
    return RoundResult(batch_id, chosen, cold, pending_before, len(labelled), seconds, warm, seen)

"""Reproducible active-learning experiments that survive interruption.

An experiment runs, for every seed (trial) and every strategy, a modAL
``ActiveLearner`` loop in which the held-back training labels play the
annotator. All strategies of a trial start from the same initial labelled
set, train the same backbone for the same epochs, and see candidate subsets
drawn from the same seeds, so their curves are comparable.

After every cycle the state of that run (fitted network, labelled indices,
records) is pickled atomically, then ``results.jsonl``/``results.csv`` are
rewritten atomically from all runs. A run killed at any moment resumes from
its last finished cycle, and, because every random choice is derived from
(seed, cycle), ends with the same results as an uninterrupted run.
"""

from __future__ import annotations

import json
import pickle
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..callbacks import EpochProgress
from ..classifier import MoBYClassifier
from ..data.datasets import load_dataset
from ..data.image_dataset import ImageDataset
from ..data.pool_sampling import initial_labeled_indices, subsample_indices
from ..exceptions import MoBYALError
from ..hardware import check_n_threads, resolve_precision, thread_report, torch_threads
from ..learner import ActiveLearner
from ..pretraining import cached_encoder_path, given_encoder, pretrain_encoder
from ..selection.registry import STRATEGIES, StrategyEntry
from ..semi_supervised.graph_pseudo_labels import graph_targets, pixel_pca_features, pool_graph
from ..stopping import prediction_agreement, stable_rounds
from .config import ExperimentConfig, ExperimentError
from .features_store import features_enabled, save_cycle_features
from .plots import plot_learning_curves
from .results import atomic_pickle, atomic_write_text, read_records, write_records

__all__ = [
    "run_experiment",
    "load_experiment",
    "PreparedData",
    "pseudo_label_targets",
]


def _derive_seed(seed: int, cycle: int, purpose: str) -> int:
    """An independent seed for one purpose of one cycle of one trial."""
    tag = zlib.crc32(purpose.encode())
    return int(np.random.SeedSequence([seed, cycle, tag]).generate_state(1)[0] % (2**31 - 1))


@dataclass
class _RunState:
    """What one (trial, strategy) run needs to continue: pickled after every cycle."""

    cycle: int
    labeled: np.ndarray
    records: list[dict]
    net: MoBYClassifier
    # the stop set's predictions of this cycle's model (None: no stop set, or
    # a state written before the stopping rule was recorded)
    stop_predictions: np.ndarray | None = None


class PreparedData:
    """The pool and test images of an experiment, as every run of it sees them.

    Loads ``config.dataset`` and shrinks the training split to
    ``config.pool_size`` and the test split to ``config.test_size`` (a fixed,
    stratified draw), so that a later reader (e.g. the pictures of a results
    folder) gets the same pool, in the same order, as the runs had.

    Parameters
    ----------
    config : ExperimentConfig

    Attributes
    ----------
    X, y : ndarray
        The pool: images and the oracle's labels.
    X_test, y_test : ndarray
        The test images and labels.
    classes : ndarray
        Every label found in the pool or the test set, sorted.
    view_preset : str
        ``config.views``, or else the data set's own preset.

    Raises
    ------
    ExperimentError
        If the labelling budget (initial set plus all cycles) exceeds the pool.
    """

    def __init__(self, config: ExperimentConfig) -> None:
        data: ImageDataset = load_dataset(config.dataset, root=config.data_root)
        X, y = data.X_train, data.y_train
        if config.pool_size is not None and config.pool_size < len(y):
            keep = subsample_indices(y, config.pool_size, random_state=0)
            X, y = X[keep], y[keep]
        X_test, y_test = data.X_test, data.y_test
        if config.test_size is not None and config.test_size < len(y_test):
            keep = subsample_indices(y_test, config.test_size, random_state=0)
            X_test, y_test = X_test[keep], y_test[keep]
        self.X, self.y, self.X_test, self.y_test = X, y, X_test, y_test
        self._graph: Any = None
        self.classes = np.unique(np.concatenate([y, y_test]))
        self.view_preset = config.views or data.view_preset
        needed = config.initial_size + config.cycles * config.query_size
        if needed > len(y):
            raise ExperimentError(
                f"the budget needs {needed} labels ({config.initial_size} initial + "
                f"{config.cycles} cycles x {config.query_size}) but the pool holds {len(y)} "
                "images; lower --cycles, --query-size or --initial-size"
            )

    def graph(self) -> Any:
        """The kNN graph of the pool over PCA-50 of its pixels, built on first use."""
        if self._graph is None:
            self._graph = pool_graph(pixel_pca_features(self.X))
        return self._graph


def pseudo_label_targets(config: ExperimentConfig, data: PreparedData, labeled, unlabeled) -> dict:
    """``fit`` keywords for the graph's pseudo-labels; none without a graph.

    A refit of a run's network (as ``benchmarks/stopping_table.py`` does) passes
    them too, so that it trains what the run trained.
    """
    if config.graph_pseudo_labels == 0 or config.pseudo_label_weight == 0:
        return {}
    targets = graph_targets(
        data.graph(), data.y, np.asarray(labeled), unlabeled, data.classes,
        config.graph_pseudo_labels, config.graph_class_mass_normalization,
    )  # fmt: skip
    return {"unlabeled_proba": targets}


def _make_net(
    config: ExperimentConfig,
    spec: StrategyEntry,
    data: PreparedData,
    progress: bool | None,
    encoder_file: Path | None,
) -> MoBYClassifier:
    if spec.network == "moby":
        weight = config.contrastive_weight
    elif spec.network == "pretrained":
        weight = config.finetune_contrastive_weight
    else:
        weight = 0.0
    return MoBYClassifier(
        backbone=config.backbone,
        weights=config.weights,
        max_epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        queue_size=config.queue_size,
        head_layout=config.head_layout,
        unlabeled_ratio=config.unlabeled_ratio,
        contrastive_every=config.contrastive_every,
        contrastive_weight=weight,
        pseudo_label_weight=config.pseudo_label_weight,
        pseudo_label_threshold=config.pseudo_label_threshold,
        pseudo_label_thresholds=config.pseudo_label_thresholds,
        pseudo_label_mode=config.pseudo_label_mode,
        min_samples_per_epoch=config.min_samples_per_epoch,
        train_samples=config.train_samples,
        lr_schedule=config.lr_schedule,
        # a path, not the encoder: it survives clone and pickling unchanged
        pretrained=str(encoder_file) if spec.network == "pretrained" else None,
        views=data.view_preset,
        warm_start=config.warm_start,
        classes=data.classes.tolist(),
        device=config.device,
        precision=config.precision,
        callbacks=[("progress", EpochProgress(disable=None if progress is None else not progress))],
    )


def _pretrain_settings(config: ExperimentConfig, data: PreparedData) -> dict:
    """What the pretraining depends on: the pool and its settings, nothing else."""
    settings = {
        "dataset": config.dataset,
        "data_root": config.data_root,
        "pool_size": config.pool_size,
        "data_version": config.data_version,
        "pool_shape": list(data.X.shape),
        "backbone": config.backbone,
        "head_layout": config.head_layout,
        "queue_size": config.queue_size,
        "views": data.view_preset,
        "epochs": config.pretrain_epochs,
        "size": config.pretrain_size,
        "device": config.device,
    }
    if config.weights is not None:  # none: the keys of the caches written before weights
        from ..network.pretrained_weights import weights_identity

        settings["weights"] = weights_identity(config.weights)
    return settings


def _pretrain(session: _Session) -> Path:
    """The encoder pretrained once on the pool, from the cache or trained now.

    One pretraining (seed 0) serves every trial and strategy of the pool:
    it uses no label, so it does not depend on the trial. The file is the
    encoder's own checkpoint, written after every epoch, so an interrupted
    pretraining continues where it stopped.
    """
    config, data = session.config, session.data
    if config.encoder is not None:
        try:
            given_encoder(config.encoder, data.X)
        except MoBYALError as exc:
            raise ExperimentError(str(exc)) from exc
        session.log(f"fine-tuning from the pretrained encoder {config.encoder}")
        return Path(config.encoder)
    path = cached_encoder_path(session.cache_dir, _pretrain_settings(config, data))
    images = data.X
    if config.pretrain_size is not None and config.pretrain_size < len(images):
        rows = np.random.default_rng(0).choice(len(images), config.pretrain_size, replace=False)
        images = images[np.sort(rows)]
    started = time.perf_counter()
    encoder = pretrain_encoder(
        images,
        checkpoint=path,
        backbone=config.backbone,
        weights=config.weights,
        head_layout=config.head_layout,
        queue_size=config.queue_size,
        views=data.view_preset,
        max_epochs=config.pretrain_epochs,
        device=config.device,
        precision=config.precision,
        verbose=int(session.progress is not False),
    )
    seconds = time.perf_counter() - started
    if encoder.fit_seconds_ > 0:
        session.log(
            f"pretrained {config.backbone} on {len(images)} pool images for "
            f"{config.pretrain_epochs} epochs in {seconds:.0f} s -> {path}"
        )
    return path


class _OutputFolder:
    """The results folder: its configuration, run states and result files."""

    def __init__(self, path: str | Path, config: ExperimentConfig, resume: bool) -> None:
        self.path = Path(path)
        self.config = config
        config_file = self.path / "config.json"
        if config_file.exists():
            try:
                stored = ExperimentConfig.from_dict(json.loads(config_file.read_text()))
            except (ValueError, TypeError) as exc:
                raise ExperimentError(
                    f"{config_file} is unreadable ({exc}); choose another --output"
                ) from exc
            changed = [k for k, v in config.to_dict().items() if stored.to_dict().get(k) != v]
            if "data_version" in changed:
                raise ExperimentError(
                    f"{self.path} holds results drawn with data_version {stored.data_version} "
                    f"(an older sub-sampling of the pool and test set) and cannot be continued "
                    f"with data_version {config.data_version}; choose another --output"
                )
            # more cycles continue a finished or interrupted run: every choice of
            # a cycle depends only on (seed, cycle), so the earlier ones stand
            more_cycles = resume and changed == ["cycles"] and config.cycles > stored.cycles
            if changed and not more_cycles:
                raise ExperimentError(
                    f"{self.path} holds results of another configuration (differs in: "
                    f"{', '.join(changed)}); choose another --output, or resume with the "
                    "same settings (only --cycles may grow on --resume)"
                )
            if not resume and any(self.state_dir.glob("*.pkl")):
                raise ExperimentError(
                    f"{self.path} already holds results of this configuration; pass --resume "
                    "to continue them, or choose another --output"
                )
        elif self.path.exists() and any(self.path.iterdir()):
            raise ExperimentError(
                f"{self.path} is not empty and holds no experiment configuration; "
                "choose another --output"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_file, json.dumps(config.to_dict(), indent=2, sort_keys=True))

    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    def state_file(self, strategy: str, trial: int) -> Path:
        return self.state_dir / f"{strategy}-trial{trial}.pkl"

    def load_state(self, strategy: str, trial: int) -> _RunState | None:
        return self._load(self.state_file(strategy, trial))

    @staticmethod
    def _load(path: Path) -> _RunState | None:
        if not path.exists():
            return None
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except Exception as exc:  # a damaged state cannot be trusted for resuming
            raise ExperimentError(f"{path} is damaged ({exc}); it was left in place") from exc

    def first_cycle_file(self, kind: str, trial: int) -> Path:
        return self.state_dir / f"cycle0-{kind}-trial{trial}.pkl"

    def load_first_cycle(self, kind: str, trial: int) -> _RunState | None:
        """The shared cycle-0 state of one network kind, if it was trained already."""
        return self._load(self.first_cycle_file(kind, trial))

    def save_first_cycle(self, kind: str, trial: int, state: _RunState) -> None:
        atomic_pickle(self.first_cycle_file(kind, trial), state)

    def save(
        self,
        strategy: str,
        trial: int,
        state: _RunState,
        all_records: dict[tuple[str, int], list[dict]],
    ) -> None:
        atomic_pickle(self.state_file(strategy, trial), state)
        write_records(self.path, [r for rows in all_records.values() for r in rows])


def run_experiment(
    config: ExperimentConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], Any] | None = print,
    plot: bool = True,
    cache_dir: str | Path | None = None,
    n_threads: int | None = None,
) -> list[dict]:
    """Run (or resume) an experiment and write its results to ``output_dir``.

    Parameters
    ----------
    config : ExperimentConfig
    output_dir : str or Path
        Results folder: ``config.json``, ``results.jsonl``, ``results.csv``,
        ``state/`` and the learning-curve plots.
    resume : bool
        Continue the runs found in ``output_dir``.
    progress : bool or None
        Progress bars; None shows them only on a terminal.
    log : callable or None
        Receives one line per finished cycle.
    plot : bool
        Draw the learning curves at the end.
    cache_dir : str, Path or None
        Where the pretrained encoder is kept, keyed by the pool and the
        pretraining settings, so other experiments on the same pool reuse it
        (None: ``output_dir/cache``).
    n_threads : int or None
        torch threads for the whole run (restored after); None: torch's
        count, the machine's cores unless ``OMP_NUM_THREADS`` says otherwise.
        The log's first line says how many.

    Returns
    -------
    list of dict
        One record per (strategy, trial, cycle): strategy, trial, seed, cycle,
        n_labeled, accuracy, train_seconds, query_seconds, queried (indices
        into the training pool; at cycle 0 the initial set), queried_classes
        (how many of them belong to each class, in ``classes`` order),
        classes and, unless ``config.stop_set_size`` is 0, the stopping rule's
        ``stop_kappa``, ``stop_stable_rounds`` and ``stop`` (see
        :class:`~moby_al_plugin.stopping.StabilizingPredictions`).

    Raises
    ------
    ExperimentError
        Bad configuration, a budget larger than the pool, an output folder
        holding another configuration's results.
    FileNotFoundError, ValueError
        Missing or corrupt data files.
    """
    config.validate()
    check_n_threads(n_threads)
    needs_encoder = any(STRATEGIES[s].network == "pretrained" for s in config.strategies)
    if needs_encoder and config.pretrain_epochs < 1 and config.encoder is None:
        pretrained = [s for s in config.strategies if STRATEGIES[s].network == "pretrained"]
        raise ExperimentError(
            f"{', '.join(pretrained)} fine-tune the pretrained encoder, but pretrain_epochs is "
            f"{config.pretrain_epochs}; give --pretrain-epochs 1 or more"
        )
    data = PreparedData(config)
    folder = _OutputFolder(output_dir, config, resume)
    log = log or (lambda line: None)
    with torch_threads(n_threads):
        log(f"{thread_report(n_threads)}, {resolve_precision(config.precision, config.device)}")
        return _run_all(config, data, folder, progress, log, plot, cache_dir, needs_encoder)


def _run_all(
    config: ExperimentConfig,
    data: PreparedData,
    folder: _OutputFolder,
    progress: bool | None,
    log: Callable[[str], Any],
    plot: bool,
    cache_dir: str | Path | None,
    needs_encoder: bool,
) -> list[dict]:
    """The body of :func:`run_experiment`, once the threads are set."""
    from tqdm.auto import tqdm

    states: dict[tuple[str, int], _RunState | None] = {}
    for trial in range(len(config.seeds)):
        for strategy in config.strategies:
            states[(strategy, trial)] = folder.load_state(strategy, trial)
    all_records = {key: list(s.records) if s else [] for key, s in states.items()}

    total = len(states) * (config.cycles + 1)
    done = sum(len(rows) for rows in all_records.values())
    with tqdm(
        total=total,
        initial=done,
        desc="cycles",
        unit="cycle",
        disable=None if progress is None else not progress,
    ) as bar:
        session = _Session(
            config,
            data,
            folder,
            all_records,
            progress,
            log,
            bar,
            Path(cache_dir) if cache_dir is not None else folder.path / "cache",
        )
        if needs_encoder and not all(
            s is not None and s.cycle >= config.cycles for s in states.values()
        ):
            session.encoder_file = _pretrain(session)
        for trial, seed in enumerate(config.seeds):
            for strategy in config.strategies:
                _run_one(_Run(session, strategy, trial, seed), states[(strategy, trial)])
    records = [r for rows in all_records.values() for r in rows]
    write_records(folder.path, records)
    if plot:
        plot_learning_curves(
            records, folder.path / "learning_curves", title=f"{config.dataset}, {config.backbone}"
        )
    return records


@dataclass
class _Session:
    """What every run of one experiment shares."""

    config: ExperimentConfig
    data: PreparedData
    folder: _OutputFolder
    all_records: dict[tuple[str, int], list[dict]]
    progress: bool | None
    log: Callable[[str], Any]
    bar: Any  # the tqdm bar of finished cycles
    cache_dir: Path
    encoder_file: Path | None = None


@dataclass(frozen=True)
class _Run:
    """One (trial, strategy) run of an experiment."""

    session: _Session
    strategy: str
    trial: int
    seed: int

    @property
    def spec(self) -> StrategyEntry:
        return STRATEGIES[self.strategy]

    @property
    def key(self) -> tuple[str, int]:
        return (self.strategy, self.trial)


def _run_one(run: _Run, state: _RunState | None) -> None:
    config, data = run.session.config, run.session.data
    spec, seed = run.spec, run.seed
    if state is not None and state.cycle >= config.cycles:
        return
    if state is None:
        state = _first_cycle(run)
        _finish_cycle(run, state)
    learner = ActiveLearner(estimator=state.net, query_strategy=spec.query)
    learner.X_training, learner.y_training = data.X[state.labeled], data.y[state.labeled]
    labeled = state.labeled
    for cycle in range(state.cycle + 1, config.cycles + 1):
        unlabeled = np.setdiff1d(np.arange(len(data.y)), labeled)
        rng = np.random.RandomState(_derive_seed(seed, cycle, "candidates"))
        candidates = unlabeled
        if config.subset_size is not None and config.subset_size < len(unlabeled):
            candidates = np.sort(rng.choice(unlabeled, size=config.subset_size, replace=False))
        kwargs = {"random_state": _derive_seed(seed, cycle, "query")} if spec.seeded else {}
        started = time.perf_counter()
        picked, _ = learner.query(data.X[candidates], n_instances=config.query_size, **kwargs)
        query_seconds = time.perf_counter() - started
        new = candidates[np.asarray(picked)]
        remaining = np.setdiff1d(unlabeled, new)
        learner.estimator.set_params(random_state=_derive_seed(seed, cycle, "net"))
        started = time.perf_counter()
        targets = pseudo_label_targets(config, data, np.concatenate([labeled, new]), remaining)
        learner.teach(data.X[new], data.y[new], X_unlabeled=data.X[remaining], **targets)
        train_seconds = time.perf_counter() - started
        labeled = np.concatenate([labeled, new])
        record = _record(run, learner, cycle, new.tolist(), train_seconds, query_seconds)
        predictions = _stop_predictions(run, learner)
        record.update(_stopping_fields(run, state, predictions))
        state = _RunState(cycle, labeled, state.records + [record], learner.estimator, predictions)
        _finish_cycle(run, state)


def _first_cycle(run: _Run) -> _RunState:
    """Cycle 0: the initial labelled set and its trained network.

    It depends only on the seed, the kind of network and how the initial
    set is chosen, so it is trained once per (trial, network kind) and every
    strategy of that kind starts from a copy; its ``train_seconds`` is the
    cost of that one training. A strategy that chooses its own initial set
    (``initial_set="strategy"``) has a cycle 0 of its own.
    """
    config, data, folder = run.session.config, run.session.data, run.session.folder
    spec = run.spec
    chooses = config.initial_set == "strategy" and spec.cold_start
    kind = f"{spec.network}-{run.strategy}" if chooses else spec.network
    shared = folder.load_first_cycle(kind, run.trial)
    if shared is not None:
        predictions = shared.stop_predictions
        if predictions is None:  # a cycle 0 saved before the stopping rule was recorded
            predictions = _stop_predictions(run, shared.net)
        first = {**shared.records[0], "strategy": run.strategy}
        first.update(_stopping_fields(run, None, predictions))
        return _RunState(0, shared.labeled, [first], shared.net, predictions)
    net = _make_net(config, spec, data, run.session.progress, run.session.encoder_file)
    net.set_params(random_state=_derive_seed(run.seed, 0, "net"))
    query_seconds = 0.0
    if chooses:
        started = time.perf_counter()
        labeled = _cold_start_indices(run, net)
        query_seconds = time.perf_counter() - started
    else:
        labeled = initial_labeled_indices(
            data.y,
            config.initial_size,
            random_state=run.seed,
            stratified=config.initial_set == "stratified",
        )
    unlabeled = np.setdiff1d(np.arange(len(data.y)), labeled)
    started = time.perf_counter()
    learner = ActiveLearner(
        estimator=net,
        query_strategy=spec.query,
        X_training=data.X[labeled],
        y_training=data.y[labeled],
        X_unlabeled=data.X[unlabeled],
        **pseudo_label_targets(config, data, labeled, unlabeled),
    )
    train_seconds = time.perf_counter() - started
    record = _record(run, learner, 0, list(labeled), train_seconds, query_seconds)
    predictions = _stop_predictions(run, learner)
    record.update(_stopping_fields(run, None, predictions))
    state = _RunState(0, np.asarray(labeled), [record], net, predictions)
    folder.save_first_cycle(kind, run.trial, state)
    return state


def _stop_set(config: ExperimentConfig, n_pool: int, seed: int) -> np.ndarray:
    """The trial's stop set: pool positions drawn from the seed alone.

    Every strategy of a trial predicts the same images, and the draw uses a
    generator of its own, so no other choice of the run changes with it.
    """
    size = min(config.stop_set_size, n_pool)
    rng = np.random.RandomState(_derive_seed(seed, 0, "stop set"))
    return np.sort(rng.choice(n_pool, size=size, replace=False))


def _stop_predictions(run: _Run, model: Any) -> np.ndarray | None:
    """This cycle's predictions of the stop set (None when it is switched off)."""
    config, data = run.session.config, run.session.data
    if config.stop_set_size < 1:
        return None
    rows = _stop_set(config, len(data.y), run.seed)
    return np.asarray(model.predict(data.X[rows]))


def _stopping_fields(run: _Run, previous: _RunState | None, predictions: np.ndarray | None) -> dict:
    """The stabilizing-predictions rule's figures of one cycle, for its record.

    ``stop_kappa`` compares this cycle's model with the previous cycle's on
    the stop set (None at cycle 0, or when the previous state holds no
    predictions); ``stop`` says whether the rule fires at this cycle: the
    last ``stop_window`` kappas all reached ``stop_threshold``.
    """
    config = run.session.config
    if predictions is None:
        return {}
    kappa = None
    if previous is not None and previous.stop_predictions is not None:
        kappa = prediction_agreement(previous.stop_predictions, predictions)
    earlier = [] if previous is None else [r.get("stop_kappa") for r in previous.records]
    stable = stable_rounds([*earlier, kappa], config.stop_threshold)
    return {
        "stop_kappa": None if kappa is None else round(kappa, 6),
        "stop_stable_rounds": stable,
        "stop": stable >= config.stop_window,
    }


def _cold_start_indices(run: _Run, net: MoBYClassifier) -> np.ndarray:
    """The first labelled set chosen by the strategy itself, with no label.

    The unfitted network gives the pretrained encoder's features when it has
    one, and the strategies fall back to the raw images otherwise.
    """
    config, data = run.session.config, run.session.data
    rng = np.random.RandomState(_derive_seed(run.seed, 0, "candidates"))
    candidates = np.arange(len(data.y))
    if config.subset_size is not None and config.subset_size < len(candidates):
        candidates = np.sort(rng.choice(candidates, size=config.subset_size, replace=False))
    learner = ActiveLearner(estimator=net, query_strategy=run.spec.query)
    kwargs = {"random_state": _derive_seed(run.seed, 0, "query")} if run.spec.seeded else {}
    picked, _ = learner.query(data.X[candidates], n_instances=config.initial_size, **kwargs)
    return candidates[np.asarray(picked)]


def _record(
    run: _Run,
    learner: ActiveLearner,
    cycle: int,
    queried: list[int],
    train_seconds: float,
    query_seconds: float,
) -> dict:
    data = run.session.data
    picked_labels = data.y[np.asarray(queried, dtype=np.int64)]
    counts = [int(np.sum(picked_labels == c)) for c in data.classes]
    return {
        "strategy": run.strategy,
        "trial": run.trial,
        "seed": run.seed,
        "cycle": cycle,
        "n_labeled": int(len(learner.y_training)),
        "accuracy": float(learner.score(data.X_test, data.y_test)),
        "train_seconds": round(train_seconds, 3),
        "query_seconds": round(query_seconds, 3),
        "queried": [int(i) for i in queried],
        "queried_classes": counts,
        "classes": [c.item() if hasattr(c, "item") else c for c in data.classes],
    }


def _finish_cycle(run: _Run, state: _RunState) -> None:
    session = run.session
    record = state.records[-1]
    session.all_records[run.key] = list(state.records)
    if features_enabled(session.config.save_features, len(session.data.y)):
        # before the state: a resumed run never lacks a finished cycle's features
        save_cycle_features(
            session.folder.path, run.strategy, run.trial, record["cycle"], state.net, session.data.X
        )
    session.folder.save(run.strategy, run.trial, state, session.all_records)
    session.bar.update(1)
    kappa = record.get("stop_kappa")
    session.log(
        f"[{record['strategy']} trial {record['trial']}] cycle {record['cycle']}: "
        f"{record['n_labeled']} labels, accuracy {100 * record['accuracy']:.1f}% "
        f"(train {record['train_seconds']:.1f} s, query {record['query_seconds']:.2f} s)"
        + (f", kappa {kappa:.3f}" if kappa is not None else "")
        + (" - predictions stable: the stopping rule would stop here" if record.get("stop") else "")
    )


def load_experiment(output_dir: str | Path) -> tuple[ExperimentConfig, list[dict]]:
    """The configuration and records of a results folder (for ``moby-al plot``)."""
    path = Path(output_dir)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ExperimentError(f"{path} holds no experiment (config.json is missing)")
    config = ExperimentConfig.from_dict(json.loads(config_file.read_text()))
    return config, read_records(path)

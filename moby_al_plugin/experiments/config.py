"""Experiment configuration: what defines an experiment's results.

It imports neither torch nor modAL at module level: reading a results
folder's ``config.json`` needs neither.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .._validation import is_finite_number
from ..exceptions import MoBYALError
from ..hardware import DEFAULT_PRECISION, PRECISIONS
from ..schedule import RULE_BATCH_SIZE, RULE_LR, check_schedule
from ..selection.registry import STRATEGIES
from ..semi_supervised.pseudo_labels import check_pseudo_label_params
from ..stopping import DEFAULT_STOP_THRESHOLD, DEFAULT_STOP_WINDOW, check_stopping_rule

__all__ = [
    "ExperimentError",
    "ExperimentConfig",
    "STRATEGY_NAMES",
    "INITIAL_SETS",
    "DATA_VERSION",
]

#: Strategy names, in the order of the registry (moby_al_plugin.selection.registry).
STRATEGY_NAMES = tuple(STRATEGIES)

#: How the first labelled set is chosen: uniformly at random (what a user
#: without labels has), class-balanced (needs the labels, so only for
#: studies), or by the strategy itself from the features (cold start).
INITIAL_SETS = ("random", "stratified", "strategy")


#: How pools and test sets are sub-sampled: 1 was the package's own stratified
#: draw, 2 is :func:`sklearn.utils.resample`. Results of different versions
#: were drawn from different images, so a run never resumes across versions.
DATA_VERSION = 2


class ExperimentError(MoBYALError):
    """A problem with an experiment's set-up, reported to the user in one line."""


def _listed(names) -> str:
    return ", ".join(sorted(names))


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines an experiment's results (not where they go).

    Attributes
    ----------
    dataset : str
        A name from :func:`moby_al_plugin.data.datasets.available_datasets`.
    data_root : str or None
        Folder or file of the data set, where it needs one.
    backbone : str
        Encoder name.
    strategies : tuple of str
        Names from :data:`STRATEGY_NAMES`.
    initial_size, query_size, cycles : int
        First labelled set, images queried per cycle, query cycles.
    epochs, batch_size : int
        Epochs each fit is split into, and batch size.
    lr : float
        SGD learning rate.
    lr_schedule : {"cosine", "step"}
        Cosine annealing over each fit, or x0.1 at 60 % and 80 % of its steps.
    train_samples : int, "auto" or None
        Labelled samples each fit sees (:class:`moby_al_plugin.MoBYClassifier`'s
        ``train_samples``): "auto" is the converged rule of
        :func:`moby_al_plugin.schedule.converged_train_samples`, the same for
        every strategy; None leaves ``epochs`` passes over the labelled set.
    subset_size : int or None
        Random candidates drawn from the pool before each query (None: all).
    warm_start : bool
        Continue training from the previous cycle's weights.
    unlabeled_ratio, contrastive_weight : float
        MoBY training settings (paper: 1 and 0.5).
    contrastive_every : int
        Labelled batches carry the MoBY loss on every k-th of them (1: all,
        the paper); see :class:`moby_al_plugin.MoBYClassifier`.
    head_layout : str
        Projector layout, "bn_relu" (paper) or "linear" (authors' code).
    queue_size : int
        Keys per MoBY queue.
    views : str or None
        Augmentation preset; None takes the data set's.
    pool_size, test_size : int or None
        Stratified sub-samples of the training pool and test set (None: all),
        drawn with seed 0 so every trial sees the same data.
    initial_set : {"random", "stratified", "strategy"}
        How the first labelled set is chosen (:data:`INITIAL_SETS`):
        uniformly at random, class-balanced (uses labels nobody has yet:
        for studies only), or by each strategy that can pick without labels
        (the others then take the random set).
    min_samples_per_epoch : int or None
        Every epoch draws at least this many labelled samples (with
        repetition when the labelled set is smaller); None: no such floor
        beyond ``train_samples``.
    pretrain_epochs : int
        Epochs of self-supervised pretraining (:class:`MoBYEncoder`) on the
        pool, done once per pool and shared by every trial and by every
        strategy whose network starts from it; 0 disables the pretrained
        strategies.
    pretrain_size : int or None
        Pool images the pretraining sees (a seeded random subset; None: all).
    encoder : str or None
        A saved :class:`MoBYEncoder` file (for example written by ``moby-al
        pretrain``, in one process or several under ``torchrun``) that the
        pretrained strategies start from instead of a pretraining on the
        pool; its images must have the pool's channels and size. None:
        pretrain on the pool.
    weights : str or None
        Pretrained weights every network's backbone starts from, before the
        pretraining on the pool and the fine-tuning: a torchvision weights
        name of a torchvision ``backbone`` (``"DEFAULT"``,
        ``"IMAGENET1K_V1"``, ...) or a state-dict file (see
        :class:`moby_al_plugin.MoBYClassifier`'s ``weights``). None: random
        initialisation. A ``config.json`` without it had none.
    finetune_contrastive_weight : float
        Weight of the MoBY loss while a pretrained network is fine-tuned
        (0: cross-entropy only).
    pseudo_label_weight, pseudo_label_threshold : float
        Self-training of every strategy's network on pseudo-labels of the
        pool; 0 turns every form of it off (and the graph settings below do
        nothing then). The default, 1, with the graph's labels as extra
        labels, costs what a plain fit costs (see
        :class:`moby_al_plugin.MoBYClassifier`). A ``config.json`` without
        it had none.
    pseudo_label_thresholds : {"fixed", "flexmatch"}
        One threshold for every class, or FlexMatch's class-wise ones.
    graph_pseudo_labels : float
        In [0, 1]: take the pseudo-labels from label spreading over a kNN
        graph of the pool (PCA-50 of the pixels) instead of the network's
        own predictions: this share of the unlabelled pool, the graph's most
        confident images first, gets the graph's label as target (see
        :mod:`moby_al_plugin.semi_supervised.graph_pseudo_labels`). 0: no
        graph, the network's own predictions (with ``pseudo_label_mode=
        "consistency"``). Default 0.5; a ``config.json`` without it had 0.
    graph_class_mass_normalization : bool
        Scale every class's spread scores to the same total before the
        graph's targets are chosen (``LabelSpreadingClassifier``'s
        ``class_mass_normalization``). Default true; a ``config.json``
        without it had none.
    pseudo_label_mode : {"consistency", "labels"}
        How the graph's targets are learnt: on the strong views of the
        unlabelled batches (about 2.3 times a plain fit), or as extra labels
        at the cost of a plain fit (``"labels"``, the default; needs
        ``graph_pseudo_labels > 0``); see :class:`moby_al_plugin.MoBYClassifier`.
        A ``config.json`` without it had ``"consistency"``.
    stop_set_size, stop_threshold, stop_window : int, float, int
        The stabilizing-predictions stopping rule, recorded in every cycle
        (:class:`moby_al_plugin.StabilizingPredictions`): kappa between
        successive cycles' predictions of ``stop_set_size`` pool images
        drawn from the seed (0: not recorded), and whether the last
        ``stop_window`` kappas reached ``stop_threshold``. The runs go on
        to the last cycle either way, so the accuracy a stop would leave on
        the table can be read off.
    device : str
        "cpu" or "cuda".
    precision : {"auto", "bf16", "fp32"}
        Arithmetic of every fit and feature pass (see
        :mod:`moby_al_plugin.hardware`); a ``config.json`` without it ran in
        float32.
    seeds : tuple of int
        One trial per seed.
    save_features : bool or None
        Store the network's features of the whole pool after every cycle
        (float16 ``.npy`` files under ``features/``, for the feature maps of
        ``moby-al plot --pictures``); None stores them for pools up to 20,000
        images.
    data_version : int
        How ``pool_size`` and ``test_size`` are drawn (:data:`DATA_VERSION`);
        a ``config.json`` without it was written with version 1.
    """

    dataset: str = "digits"
    data_root: str | None = None
    backbone: str = "small_cnn"
    strategies: tuple[str, ...] = ("typiclust", "random", "mobyv2al")
    initial_size: int = 20
    query_size: int = 20
    cycles: int = 5
    epochs: int = 10
    batch_size: int = RULE_BATCH_SIZE
    lr: float = RULE_LR
    lr_schedule: str = "cosine"
    train_samples: int | str | None = "auto"
    subset_size: int | None = 10_000
    warm_start: bool = False
    unlabeled_ratio: float = 1.0
    contrastive_every: int = 1
    contrastive_weight: float = 0.5
    head_layout: str = "bn_relu"
    queue_size: int = 1024
    views: str | None = None
    pool_size: int | None = None
    test_size: int | None = None
    initial_set: str = "random"
    min_samples_per_epoch: int | None = None
    pretrain_epochs: int = 10
    pretrain_size: int | None = 20_000
    encoder: str | None = None
    weights: str | None = None
    finetune_contrastive_weight: float = 0.0
    # the graph's surest half of the pool as extra labels: the benchmarks' best learner
    # at the cost of a plain fit (docs/results.md)
    pseudo_label_weight: float = 1.0
    pseudo_label_threshold: float = 0.95
    pseudo_label_thresholds: str = "fixed"
    graph_pseudo_labels: float = 0.5
    graph_class_mass_normalization: bool = True
    pseudo_label_mode: str = "labels"
    stop_set_size: int = 1000
    stop_threshold: float = DEFAULT_STOP_THRESHOLD
    stop_window: int = DEFAULT_STOP_WINDOW
    device: str = "cpu"
    precision: str = DEFAULT_PRECISION
    seeds: tuple[int, ...] = field(default=(0,))
    save_features: bool | None = None
    data_version: int = DATA_VERSION

    def __post_init__(self) -> None:
        # lists from JSON or argparse become tuples, so configs compare equal
        object.__setattr__(self, "strategies", tuple(self.strategies))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    def validate(self) -> None:
        """Check names and sizes that need no data.

        Raises
        ------
        ExperimentError
            Unknown backbone, weights or strategy (with the valid names),
            non-positive sizes, no seeds, duplicate seeds or strategies, a
            ``data_version`` other than :data:`DATA_VERSION`.
        """
        if self.encoder is not None and not Path(self.encoder).is_file():
            raise ExperimentError(f"encoder {self.encoder}: no such file")
        unknown = [s for s in self.strategies if s not in STRATEGY_NAMES]
        if unknown or not self.strategies:
            raise ExperimentError(
                f"unknown strategy {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"valid names: {_listed(STRATEGY_NAMES)}"
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise ExperimentError("a strategy is listed twice")
        if not _backbone_exists(self.backbone):
            raise ExperimentError(
                f"unknown backbone {self.backbone!r}; valid names: "
                f"{_listed(_registered_backbones())}, or any torchvision classification model"
            )
        if self.weights is not None:
            from ..network.pretrained_weights import resolve_weights

            try:  # the name, or that the file exists; its tensors are checked at the first fit
                resolve_weights(self.backbone, self.weights)
            except MoBYALError as exc:
                raise ExperimentError(str(exc)) from None
        for name in ("initial_size", "query_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ExperimentError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.cycles < 0:
            raise ExperimentError(f"cycles must be >= 0, got {self.cycles}")
        if self.subset_size is not None and self.subset_size < self.query_size:
            raise ExperimentError(
                f"subset_size={self.subset_size} is smaller than query_size={self.query_size}"
            )
        if self.initial_set not in INITIAL_SETS:
            raise ExperimentError(
                f"unknown initial set {self.initial_set!r}; valid names: {_listed(INITIAL_SETS)}"
            )
        try:
            check_schedule(
                max_epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                train_samples=self.train_samples,
                min_samples_per_epoch=self.min_samples_per_epoch,
                lr_schedule=self.lr_schedule,
                lr_milestones=(0.6, 0.8),
                lr_gamma=0.1,
            )
        except MoBYALError as exc:
            raise ExperimentError(str(exc).replace("max_epochs", "epochs")) from None
        if self.min_samples_per_epoch is not None and self.min_samples_per_epoch < 1:
            raise ExperimentError(
                f"min_samples_per_epoch must be at least 1 or None, got "
                f"{self.min_samples_per_epoch}"
            )
        if (
            isinstance(self.contrastive_every, bool)
            or not isinstance(self.contrastive_every, int)
            or self.contrastive_every < 1
        ):
            raise ExperimentError(
                f"contrastive_every must be a positive integer, got {self.contrastive_every!r}"
            )
        if self.pretrain_epochs < 0:
            raise ExperimentError(f"pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        if self.pretrain_size is not None and self.pretrain_size < 2:
            raise ExperimentError(f"pretrain_size must be at least 2, got {self.pretrain_size}")
        if self.finetune_contrastive_weight < 0:
            raise ExperimentError(
                f"finetune_contrastive_weight must be >= 0, got {self.finetune_contrastive_weight}"
            )
        try:
            check_pseudo_label_params(
                self.pseudo_label_weight, self.pseudo_label_threshold, self.pseudo_label_thresholds,
                self.pseudo_label_mode,
            )  # fmt: skip
        except MoBYALError as exc:
            raise ExperimentError(str(exc)) from None
        if not is_finite_number(self.graph_pseudo_labels) or not (
            0.0 <= self.graph_pseudo_labels <= 1.0
        ):
            raise ExperimentError(
                f"graph_pseudo_labels must be a number in [0, 1], got {self.graph_pseudo_labels!r}"
            )
        if not isinstance(self.graph_class_mass_normalization, bool):
            raise ExperimentError(
                "graph_class_mass_normalization must be true or false, got "
                f"{self.graph_class_mass_normalization!r}"
            )
        # pseudo_label_weight 0 is the one switch that turns self-training off: the
        # graph's settings then do nothing (they are on by default)
        if (
            self.pseudo_label_mode == "labels"
            and self.graph_pseudo_labels == 0
            and self.pseudo_label_weight > 0
        ):
            raise ExperimentError(
                "pseudo_label_mode 'labels' learns the graph's labels: give "
                "graph_pseudo_labels > 0, or pseudo_label_mode 'consistency' to self-train "
                "on the network's own predictions, or pseudo_label_weight 0 for none"
            )
        if self.stop_set_size < 0:
            raise ExperimentError(f"stop_set_size must be >= 0, got {self.stop_set_size}")
        try:
            check_stopping_rule(
                self.stop_threshold, self.stop_window, names=("stop_threshold", "stop_window")
            )
        except (TypeError, ValueError) as exc:
            raise ExperimentError(str(exc)) from None
        if self.precision not in PRECISIONS:
            raise ExperimentError(
                f"unknown precision {self.precision!r}; valid values: {_listed(PRECISIONS)}"
            )
        if not self.seeds:
            raise ExperimentError("at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ExperimentError("a seed is listed twice")
        if self.data_version != DATA_VERSION:
            raise ExperimentError(
                f"data_version {self.data_version} drew its pool and test set with an older "
                f"sub-sampling; this version draws with data_version {DATA_VERSION}"
            )

    def to_dict(self) -> dict:
        """The configuration as JSON-ready values (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict) -> ExperimentConfig:
        """The configuration stored by :meth:`to_dict`; unknown keys are ignored.

        A mapping without ``data_version`` predates the field and gets 1; one
        without ``train_samples`` predates the converged rule and gets the
        schedule it ran with (no rule, step decay); one without ``precision``
        ran in float32; one without a self-training field ran without it.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"data_version": 1, "precision": "fp32", **_BEFORE_SELF_TRAINING, **values}
        if "train_samples" not in values:
            # written before the converged rule: epochs x padded epochs, step decay
            values.update(train_samples=None, lr_schedule="step")
        if "stratified_initial" in values and "initial_set" not in values:
            # written before initial_set replaced the flag
            values["initial_set"] = "stratified" if values["stratified_initial"] else "random"
            values.setdefault("min_samples_per_epoch", None)
            values.setdefault("pretrain_epochs", 0)
        return cls(**{k: v for k, v in values.items() if k in known})


#: What a ``config.json`` written before these fields ran with.
_BEFORE_SELF_TRAINING = {
    "pseudo_label_weight": 0.0,
    "graph_pseudo_labels": 0.0,
    "graph_class_mass_normalization": False,
    "pseudo_label_mode": "consistency",
}


def _backbone_exists(name: str) -> bool:
    if name in _registered_backbones():
        return True
    import torchvision

    return name in torchvision.models.list_models(module=torchvision.models)


def _registered_backbones() -> list[str]:
    from ..network.backbones import available_backbones

    return available_backbones()

"""``MoBYClassifier``: the MoBY network trained jointly, as a skorch estimator."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._validation import check_device, check_images, check_integer, check_labels
from .augment import get_view_pair
from .callbacks import LRSchedule
from .data.pools import CHUNK_SIZE, LazyImages, check_pool
from .encoder import MoBYEncoder, check_fitted_encoder, load_pretrained_weights
from .exceptions import MoBYALError
from .hardware import DEFAULT_PRECISION
from .network.moby_network import DEFAULT_HEAD_LAYOUT, MoBYNetwork
from .network.pretrained_weights import resolve_weights
from .schedule import RULE_BATCH_SIZE, RULE_LR, check_schedule, epoch_size, even_batches
from .semi_supervised.pseudo_labels import (
    NOT_CONFIDENT,
    check_pseudo_label_params,
    flexmatch_thresholds,
    record_confident,
)
from .skorch_base import (
    UNLABELED,
    FitState,
    IndexStream,
    MoBYNetBase,
    UnlabeledBatch,
    unlabeled_batch,
)

__all__ = ["MoBYClassifier", "UnlabeledBatch", "UNLABELED"]


class _LabeledBatchSampler(torch.utils.data.Sampler):
    """Batches of near-equal size over ``epoch_size`` draws from an :class:`IndexStream`.

    With a second stream (the pool images that joined as labels: the dataset's
    rows after the ``stream.n`` real ones) each batch takes its share of them:
    ``pseudo_fraction`` of the epoch's draws, spread evenly over the batches.
    """

    def __init__(
        self,
        stream: IndexStream,
        epoch_size: int,
        batch_size: int,
        pseudo_stream: IndexStream | None = None,
        pseudo_fraction: float = 0.0,
    ) -> None:
        self.stream = stream
        self.sizes = even_batches(epoch_size, batch_size)
        self.pseudo_stream = pseudo_stream
        self.pseudo_fraction = pseudo_fraction

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self):
        if self.pseudo_stream is None:
            for size in self.sizes:
                yield self.stream.take(size).tolist()
            return
        drawn = pseudo_drawn = 0
        empty = torch.empty(0, dtype=torch.long)
        for size in self.sizes:
            drawn += size
            # rounding the running total keeps the epoch's share exact
            pseudo = round(drawn * self.pseudo_fraction) - pseudo_drawn
            pseudo_drawn += pseudo
            rows = self.stream.take(size - pseudo) if size > pseudo else empty
            extra = self.pseudo_stream.take(pseudo) + self.stream.n if pseudo else empty
            yield torch.cat([rows, extra]).tolist()


class _InterleavedEpoch:
    """The training iterator of one fit: labelled and unlabelled batches, interleaved.

    Each pass is one epoch. The epoch's unlabelled batches are spread evenly
    between its labelled ones; unlabelled batches are :class:`UnlabeledBatch`.
    """

    def __init__(self, labeled: torch.utils.data.DataLoader, state: _FitState) -> None:
        self.labeled = labeled
        self.state = state

    def __len__(self) -> int:
        return self.state.batches_per_epoch

    def __iter__(self):
        state = self.state
        n_l, n_u = state.labeled_batches, state.unlabeled_batches
        unlabeled_sizes = iter(state.unlabeled_sizes)
        for index, batch in enumerate(self.labeled):
            yield batch
            # (index + 1) * n_u // n_l unlabelled batches after this labelled one
            for _ in range((index + 1) * n_u // n_l - index * n_u // n_l):
                yield unlabeled_batch(
                    state.X_unlabeled, state.unlabeled_stream, next(unlabeled_sizes)
                )


class _FitState(FitState):
    """Per-fit scratch state of the classifier: the schedule and the unlabelled pool.

    Lives only during ``fit``/``partial_fit`` (torch generators do not pickle).
    """

    def __init__(
        self,
        X_unlabeled: np.ndarray | None,
        n_labeled: int,
        batch_size: int,
        unlabeled_ratio: float,
        train_samples: int | str | None,
        min_samples_per_epoch: int | None,
        max_epochs: int,
        seeds: np.ndarray,
        device: str,
        shuffle: bool,
        views: tuple,
        n_pseudo: int = 0,
        pseudo_fraction: float = 0.0,
    ) -> None:
        super().__init__(int(seeds[0]), int(seeds[1]), device, views)
        self.X_unlabeled = X_unlabeled
        # the pool images that joined as labels add no compute: the rule counts real labels
        self.epoch_size = epoch_size(n_labeled, max_epochs, train_samples, min_samples_per_epoch)
        self.labeled_stream = IndexStream(n_labeled, shuffle, self.loader_generator)
        self.pseudo_stream = (
            IndexStream(n_pseudo, True, torch.Generator().manual_seed(int(seeds[2]) + 1))
            if n_pseudo
            else None
        )
        self.pseudo_fraction = pseudo_fraction
        self.labeled_batches = len(even_batches(self.epoch_size, batch_size))
        n_unlabeled = 0 if X_unlabeled is None else X_unlabeled.shape[0]
        # the paper draws as many unlabelled samples per epoch as labelled ones;
        # the ratio applies to the padded epoch, so both streams follow the steps
        self.unlabeled_per_epoch = (
            int(round(unlabeled_ratio * self.epoch_size)) if n_unlabeled else 0
        )
        if self.unlabeled_per_epoch == 1:
            self.unlabeled_per_epoch = 2  # batch norm needs two samples
        self.unlabeled_sizes = even_batches(self.unlabeled_per_epoch, batch_size)
        self.unlabeled_batches = len(self.unlabeled_sizes)
        self.unlabeled_stream = IndexStream(
            max(n_unlabeled, 1), True, torch.Generator().manual_seed(int(seeds[2]))
        )
        self.batches_per_epoch = self.labeled_batches + self.unlabeled_batches
        self.total_steps = max_epochs * self.batches_per_epoch


_CLASSIFIER_ADDED_PARAMS = {
    "contrastive_every": 1,
    "pseudo_label_weight": 0.0,
    "pseudo_label_threshold": 0.95,
    "pseudo_label_thresholds": "fixed",
    "pseudo_label_mode": "consistency",
}


class MoBYClassifier(MoBYNetBase, NeuralNetClassifier):
    """MoBYv2AL's jointly trained network as an sklearn-style classifier.

    Each ``fit`` trains, from scratch, from a pretrained :class:`MoBYEncoder`
    (``pretrained``) or (``warm_start=True``) from the previous fit, the
    cross-entropy on labelled batches plus ``contrastive_weight`` times the
    MoBY contrastive loss, interleaved with batches of ``X_unlabeled`` that
    carry only the contrastive term. ``transform`` returns the encoder's pooled
    features of clean images, the space in which
    :func:`moby_al_plugin.mobyv2al_sampling` selects.

    Schedule: each fit sees ``train_samples`` labelled samples, by default
    the converged rule of :func:`moby_al_plugin.schedule.converged_train_samples`
    (the least compute after which more no longer raises test accuracy,
    from ``benchmarks/learner.py --study convergence``), split into
    ``max_epochs`` epochs. An epoch draws ``max(len(X), min_samples_per_epoch,
    ceil(train_samples / max_epochs))`` labelled samples (whole passes over a
    fresh permutation, the last one partial), and the unlabelled stream
    draws ``unlabeled_ratio`` times that many. So ``max_epochs`` only sets
    how a converged fit is split, as long as ``max_epochs`` passes over the
    labelled set stay below the rule; above it, each epoch is one skorch
    pass and ``max_epochs`` adds compute, as skorch users expect. Every optimiser step is one skorch
    batch: labelled batches are plain ``(X, y)`` tuples, unlabelled ones
    :class:`UnlabeledBatch` tuples whose ``y`` is all ``UNLABELED`` (-1), so
    batch callbacks, gradient clipping and the batch history see them all.
    The learning-rate milestones and the cosine momentum of the key branch
    are fractions of the true number of steps of each ``fit``/``partial_fit``.

    Parameters
    ----------
    backbone : str or nn.Module
        Encoder name (``"small_cnn"``, ``"lenet5"``, ``"resnet18"`` or any
        torchvision classification model) or a module mapping (B, C, H, W)
        images to (B, F) features; a module is deep-copied at every cold fit,
        so a fit never starts from the previous fit's weights, and its width
        is measured with one dummy forward.
    weights : str, path or None, default=None
        Pretrained weights the backbone starts from at every cold fit, before
        fine-tuning on the pool: the name of torchvision weights of a
        torchvision ``backbone`` (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ... as
        ``torchvision.models.get_model_weights(backbone)`` lists them) or the
        path of a state-dict file (``torch.save(model.state_dict(), path)``)
        that fits the backbone. With weights, ``"resnet18"`` is torchvision's
        ImageNet ResNet-18, not the CIFAR-style one. A name's tensors come
        from torch's cache (``torch.hub.get_dir()/checkpoints``), downloaded
        there the first time (internet once); the network then standardises
        its inputs with the weights' mean and std and resizes them to their
        crop size (224x224 for most) in front of the encoder, which costs
        the encoder's work at that size (several times ``small_cnn``'s on a
        CPU). A file keeps the pool's size and statistics. Images with another
        number of channels get the first convolution adapted (summed RGB
        filters for grey-scale). The name or file is checked when ``fit``
        starts, the tensors against the backbone when the network is built,
        both before any training (a ``ValueError``: an unknown name lists
        the valid ones). With ``pretrained``, the network is built for the
        encoder's weights and starts from the encoder: ``weights`` must then
        be None or the encoder's. See
        :mod:`moby_al_plugin.network.pretrained_weights`.
    projection_dim : int, default=128
        Width of the projector and predictor outputs. The only route to the
        network: ``module__projection_dim`` is refused unless equal.
    head_layout : {"bn_relu", "mlp", "linear"}, default="bn_relu"
        Projector/predictor layout: the paper's Linear+BN+ReLU (the default,
        measured ahead of ``"mlp"`` in a short run, see
        ``moby_al_plugin.network.DEFAULT_HEAD_LAYOUT``), Linear-BN-ReLU-Linear
        (MoCo v2, BYOL and MoBY style, ending in a linear layer), or the bare
        Linear of the authors' code (see :class:`~moby_al_plugin.network.ProjectionHead`).
    queue_size : int, default=4096
        Keys per queue.
    temperature : float, default=0.2
        InfoNCE temperature.
    contrastive_weight : float, default=0.5
        Weight of the contrastive loss on every batch. 0 turns the estimator
        into the supervised-only baseline of the same backbone (no
        contrastive pass, no unlabelled batches, the same labelled schedule).
    contrastive_every : int, default=1
        Labelled batches carry the contrastive term on every
        ``contrastive_every``-th of them; the others are plain cross-entropy
        steps (one view, no key branch), which cost about a third of a
        contrastive step. Unlabelled batches always carry it. With
        ``unlabeled_ratio`` below 1 this is how the MoBY loss is kept at a
        fraction of its cost (docs/results.md, "Speed").
    unlabeled_ratio : float, default=1.0
        Unlabelled samples drawn per epoch, as a multiple of the labelled
        samples of the (padded) epoch (the paper uses 1). 0 disables the
        unlabelled batches.
    pseudo_label_weight : float, default=0.0
        Self-training: weight of the pseudo-label loss on unlabelled batches
        (FixMatch). The network's prediction on an image's weak view, where
        its probability reaches the threshold, is the target of the
        cross-entropy on its strong view, averaged over the batch. Targets
        from elsewhere (the graph step of
        :class:`~moby_al_plugin.LabelSpreadingClassifier`) come through
        ``fit(..., unlabeled_proba=...)``. 0 (the default) turns it off.
        With ``contrastive_weight=0`` the unlabelled batches carry this term
        alone; ``unlabeled_ratio`` sets how many there are. The share of the
        unlabelled images that passed the threshold is in the history
        (``pseudo_label_share``, every epoch).
    pseudo_label_threshold : float, default=0.95
        In [0, 1]: the confidence a pseudo-label needs (FixMatch's ``tau``;
        with ``"flexmatch"``, the threshold of the best-learnt class); 0
        takes every unlabelled image, 1 none.
    pseudo_label_thresholds : {"fixed", "flexmatch"}, default="fixed"
        One threshold for every class, or FlexMatch's class-wise thresholds,
        lower for the classes with fewer confident images (see
        :mod:`moby_al_plugin.semi_supervised.pseudo_labels`).
    pseudo_label_mode : {"consistency", "labels"}, default="consistency"
        How the targets are learnt. ``"consistency"``: on the strong view of
        each unlabelled batch, as above (about 2.3 times a plain fit).
        ``"labels"``: the pool images whose ``unlabeled_proba`` row reaches
        the threshold (rows of zeros never do) join the labelled set with
        their most probable class, and make up ``w / (1 + w)`` of the
        labelled draws (``w = pseudo_label_weight``; 1: half of every
        batch); the fit's ``train_samples`` still follow the real labels, so
        it costs what a plain fit costs. Needs ``unlabeled_proba`` and
        ``pseudo_label_thresholds="fixed"``; the chosen images are read into
        memory. On Fashion-MNIST the graph's surest half as labels gave
        68.0 % at 20 labels against 57.1 % for the plain fit
        (docs/results.md).
    train_samples : int, "auto" or None, default="auto"
        Labelled samples seen per fit, at least. ``"auto"``: the converged
        rule, ``max(100_000, min(100_000 * (n / 600) ** 2, 400_000 * sqrt(n / 1_200)))``
        for ``n = len(X)`` (see
        :func:`moby_al_plugin.schedule.converged_train_samples`), the same
        for every strategy and learner. None: no such floor, ``max_epochs``
        passes over the labelled set.
    min_samples_per_epoch : int or None, default=None
        Labelled samples per epoch at least (drawn with repeats across
        passes, never within one), beyond what ``train_samples`` asks.
    pretrained : MoBYEncoder, FrozenEstimator, str, path or None, default=None
        A fitted :class:`moby_al_plugin.MoBYEncoder` or the file written by
        its ``save``. Every cold fit starts the encoder, the key branch, the
        projector and predictor (where their shapes fit), the queues and the
        input standardisation from it; only the classifier head starts from
        random weights. Before the first fit, ``transform`` returns the
        pretrained encoder's features (cold start). The images must have the
        encoder's channels and size. ``sklearn.base.clone`` keeps a fitted
        encoder fitted only inside ``sklearn.frozen.FrozenEstimator``, which
        ``pretrained`` accepts too; a path is the lighter route for grid
        searches and pickles.
    views : str or (callable, callable), default="auto"
        Augmentation preset (``"auto"``, ``"natural"``, ``"grayscale"``,
        ``"fashion_mnist"``, ``"digits"``) or a ``(weak, strong)`` pair of
        callables ``f(x, generator) -> x`` on (B, C, H, W) tensors in [0, 1].
        ``"auto"`` never flips images that are not RGB.
    lr_schedule : {"cosine", "step"}, default="cosine"
        Cosine annealing over the optimiser steps of each fit, or the
        paper's step decay at ``lr_milestones``.
    lr_milestones : sequence of float, default=(0.6, 0.8)
        With ``lr_schedule="step"``: fractions of the optimiser steps of a
        fit after which the learning rate is multiplied by ``lr_gamma`` (the
        paper: epochs 120 and 160 of 200).
    lr_gamma : float, default=0.1
        Learning-rate decay factor of the step schedule.
    momentum_base : float, default=0.99
        Momentum of the key branch at the first step; it rises to 1 along a
        cosine over the steps of each fit.
    precision : {"auto", "bf16", "fp32"}, default="auto"
        Arithmetic of the forward passes (training, ``predict_proba``,
        ``transform``): ``"bf16"`` is bfloat16 autocast (weights, optimiser
        and losses stay float32), ``"auto"`` uses it where the CPU or GPU
        has native bfloat16 and float32 elsewhere (see
        :mod:`moby_al_plugin.hardware`). ``"bf16"`` on hardware without it
        warns once and trains in float32.
    n_threads : int or None, default=None
        torch threads during a fit or an inference pass (restored after).
        None: torch's count, the machine's cores unless ``OMP_NUM_THREADS``
        says otherwise.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, augmentations and the
        unlabelled stream; an int makes two CPU fits identical.
    module : type, default=MoBYNetwork
        The network class; its ``module__`` parameters reach it.
    criterion : type, default=torch.nn.CrossEntropyLoss
        Loss of the labelled batches.
    optimizer : type, default=torch.optim.SGD
        With ``optimizer__momentum=0.9``, ``optimizer__nesterov=True`` and
        ``optimizer__weight_decay=5e-4`` unless given.
    lr : float, default=0.05
        Learning rate (for ``batch_size=32``, the converged rule's; scale it
        with the batch).
    max_epochs : int, default=10
        Epochs each fit is split into (see Schedule above).
    batch_size : int, default=32
        Size of labelled and unlabelled batches (the converged rule's:
        batch 32 ends higher than 128 at equal samples, at the same speed
        on CPU).
    train_split : callable or None, default=None
        skorch's validation split; None trains on all labelled data.
    device : str, default="cpu"
        ``"cpu"`` or ``"cuda"``.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    classes : array-like or None, default=None
        All class labels. Give them when an early labelled set may miss a
        class and ``warm_start=True``.
    warm_start : bool, default=False
        Continue from the previous fit instead of re-initialising.
    **kwargs
        Further skorch parameters (``callbacks``, ``iterator_train__*``,
        ``module__*``, ``optimizer__*``, ...).

    Attributes
    ----------
    module_ : MoBYNetwork
        The fitted network.
    classes_ : ndarray of shape (n_classes,)
        Class labels in the order of ``predict_proba``'s columns.
    n_channels_in_ : int
        Channels of the training images.
    image_shape_ : tuple of int
        (H, W) of the training images.
    momentum_step_, total_steps_ : int
        Optimiser steps taken in the last fit and planned for it.
    epoch_samples_ : int
        Labelled samples per epoch in the last fit (``max_epochs`` times
        this is the labelled samples it saw).
    precision_ : {"bf16", "fp32"}
        The precision the last fit ran in.

    Raises
    ------
    ValueError
        From ``fit``: a schedule parameter (``max_epochs``, ``batch_size``,
        ``lr``, ``train_samples``, ``min_samples_per_epoch``,
        ``lr_schedule``, ``lr_milestones``, ``lr_gamma``) that is zero,
        negative or not a number, named in the message, before any training.
    """

    def __init__(
        self,
        backbone: Any = "small_cnn",
        *,
        weights: str | os.PathLike | None = None,
        projection_dim: int = 128,
        head_layout: str = DEFAULT_HEAD_LAYOUT,
        queue_size: int = 4096,
        temperature: float = 0.2,
        contrastive_weight: float = 0.5,
        contrastive_every: int = 1,
        unlabeled_ratio: float = 1.0,
        pseudo_label_weight: float = 0.0,
        pseudo_label_threshold: float = 0.95,
        pseudo_label_thresholds: str = "fixed",
        pseudo_label_mode: str = "consistency",
        train_samples: int | str | None = "auto",
        min_samples_per_epoch: int | None = None,
        pretrained: Any = None,
        views: Any = "auto",
        lr_schedule: str = "cosine",
        lr_milestones: Sequence[float] = (0.6, 0.8),
        lr_gamma: float = 0.1,
        momentum_base: float = 0.99,
        precision: str = DEFAULT_PRECISION,
        n_threads: int | None = None,
        random_state: Any = None,
        module: Any = MoBYNetwork,
        criterion: Any = torch.nn.CrossEntropyLoss,
        optimizer: Any = torch.optim.SGD,
        lr: float = RULE_LR,
        max_epochs: int = 10,
        batch_size: int = RULE_BATCH_SIZE,
        train_split: Any = None,
        device: str = "cpu",
        verbose: int = 0,
        classes: Any = None,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("optimizer__momentum", 0.9)
        # Nesterov: the convergence study of the bf16 default ran with it (no loss, no gain)
        kwargs.setdefault("optimizer__nesterov", True)
        kwargs.setdefault("optimizer__weight_decay", 5e-4)
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            classes=classes,
            warm_start=warm_start,
            **kwargs,
        )
        self.backbone = backbone
        self.weights = weights
        self.projection_dim = projection_dim
        self.head_layout = head_layout
        self.queue_size = queue_size
        self.temperature = temperature
        self.contrastive_weight = contrastive_weight
        self.contrastive_every = contrastive_every
        self.unlabeled_ratio = unlabeled_ratio
        self.pseudo_label_weight = pseudo_label_weight
        self.pseudo_label_threshold = pseudo_label_threshold
        self.pseudo_label_thresholds = pseudo_label_thresholds
        self.pseudo_label_mode = pseudo_label_mode
        self.train_samples = train_samples
        self.min_samples_per_epoch = min_samples_per_epoch
        self.pretrained = pretrained
        self.views = views
        self.lr_schedule = lr_schedule
        self.lr_milestones = lr_milestones
        self.lr_gamma = lr_gamma
        self.momentum_base = momentum_base
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state

    def __setstate__(self, state):
        # pickled before these parameters existed: what such an estimator trained with
        for name, value in _CLASSIFIER_ADDED_PARAMS.items():
            state.setdefault(name, value)
        super().__setstate__(state)

    # ------------------------------------------------------------------ setup
    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("lr_decay", LRSchedule(self.lr_schedule, self.lr_milestones, self.lr_gamma)),
            ("print_log", PrintLog()),
        ]

    def _n_classes(self) -> int:
        return len(self.classes_)

    def _start_weights(self, module: torch.nn.Module) -> None:
        """With ``pretrained``, every weight but the classifier head's comes from the encoder."""
        if self.pretrained is not None:
            load_pretrained_weights(module, self._pretrained_encoder())

    def _backbone_weights(self) -> tuple[Any, bool]:
        """``weights``, or with ``pretrained`` the encoder's, not read (its state follows).

        Raises
        ------
        MoBYALError
            ``weights`` and the pretrained encoder's weights differ.
        """
        if self.pretrained is None:
            return self.weights, True
        encoder = self._pretrained_encoder()
        theirs = getattr(encoder, "weights", None)
        if self.weights is not None and (
            theirs is None
            or resolve_weights(self.backbone, self.weights, check_file=False).source
            != resolve_weights(encoder.backbone, theirs, check_file=False).source
        ):
            raise MoBYALError(
                f"weights={self.weights!r} but the pretrained encoder was built from "
                f"weights={theirs!r}; the network starts from the encoder: leave weights=None "
                "or give the encoder's"
            )
        return theirs, False

    def _pretrained_encoder(self) -> MoBYEncoder:
        """The fitted encoder of ``pretrained`` (a file is read once and kept)."""
        source = self.pretrained
        if isinstance(source, FrozenEstimator):
            source = source.estimator
        if isinstance(source, MoBYEncoder):
            return check_fitted_encoder(source)
        key = os.fspath(source)
        cached = getattr(self, "_pretrained_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, MoBYEncoder.load(key))
            self._pretrained_cache = cached
        return cached[1]

    def _check_pretrained_shape(self, X: np.ndarray) -> None:
        if self.pretrained is not None:
            self._pretrained_encoder().check_image_shape(X)

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; during ``fit`` the training batches follow the schedule.

        The training iterator yields the padded, seeded labelled batches of
        near-equal size (``even_batches``: every batch holds two samples or
        more, which batch norm needs) with the unlabelled batches interleaved.
        """
        state = getattr(self, "_fit_state", None)
        if not training or state is None:
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train")
        for key in ("shuffle", "batch_size", "generator", "drop_last", "sampler"):
            kwargs.pop(key, None)
        sampler = _LabeledBatchSampler(
            state.labeled_stream, state.epoch_size, self.batch_size,
            state.pseudo_stream, state.pseudo_fraction,
        )  # fmt: skip
        labeled = self.iterator_train(dataset, batch_sampler=sampler, **kwargs)
        return _InterleavedEpoch(labeled, state)

    def check_data(self, X, y):
        # classes are recorded by fit (they must survive warm starts), so
        # skorch's inference from the encoded y is skipped on purpose
        return None

    # -------------------------------------------------------------- training
    def fit(self, X, y, X_unlabeled=None, unlabeled_proba=None, **fit_params):
        """Train on labelled ``(X, y)`` and, contrastively, on ``X_unlabeled``.

        All inputs are checked before any training starts; the work itself
        is skorch's ``fit``.

        Parameters
        ----------
        X : array-like of shape (N, H, W), (N, C, H, W) or (N, H, W, C)
            Labelled images, uint8 or float in [0, 1] (numpy or torch).
        y : array-like of shape (N,)
            Labels.
        X_unlabeled : array-like of images or None
            Unlabelled pool, same channels and size as ``X``.
        unlabeled_proba : array-like of shape (len(X_unlabeled), n_classes) or None
            Class probabilities of the pool images (columns in ``classes_``
            order), the pseudo-label targets when ``pseudo_label_weight > 0``,
            for example ``LabelSpreadingClassifier.predict_proba`` passed
            through :func:`~moby_al_plugin.semi_supervised.pseudo_labels.most_confident_targets`;
            a row of zeros gives its image no target. None: the network's own
            predictions on the weak views.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Wrong rank, NaN/inf, empty X, length mismatch, a single class,
            channels or size different from ``X`` (or from the previous fit
            when warm-starting, or from ``pretrained``), new classes in a warm
            start without ``classes``, ``device="cuda"`` without a GPU,
            unknown backbone, images too small for the backbone, a
            network parameter given twice with different values.
        """
        cold = not (self.warm_start and getattr(self, "initialized_", False))
        self._start_fit(X, y, X_unlabeled, cold=cold, unlabeled_proba=unlabeled_proba)
        try:
            with self._threads():
                super().fit(self._fit_state.X, self._fit_state.y, **fit_params)
        finally:
            self._end_fit()
        return self

    def partial_fit(self, X, y, classes=None, X_unlabeled=None, unlabeled_proba=None, **fit_params):
        """Continue training from the current weights on the data given.

        Runs ``max_epochs`` epochs of the schedule (learning-rate milestones
        and momentum restart with each call), like :meth:`fit` without the
        re-initialisation. The first call on an unfitted net initialises it.

        Parameters
        ----------
        X, y, X_unlabeled, unlabeled_proba
            As in :meth:`fit`.
        classes : array-like or None
            Accepted for scikit-learn compatibility; give ``classes`` to the
            constructor instead when later calls bring new labels.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self
        """
        if getattr(self, "_fit_state", None) is not None:  # called from fit
            return super().partial_fit(X, y, classes=classes, **fit_params)
        cold = not getattr(self, "initialized_", False)
        self._start_fit(X, y, X_unlabeled, cold=cold, unlabeled_proba=unlabeled_proba)
        try:
            with self._threads():
                super().partial_fit(self._fit_state.X, self._fit_state.y, **fit_params)
        finally:
            self._end_fit()
        return self

    def _start_fit(self, X, y, X_unlabeled, cold: bool, unlabeled_proba=None) -> None:
        """Check every input and build the fit's schedule (``_fit_state``)."""
        X = check_images(X)
        y = check_labels(y, X.shape[0])
        if X_unlabeled is not None:
            # a pool on disk (memmap, ImagePool) stays there: batches read their rows
            X_unlabeled = check_pool(X_unlabeled, name="X_unlabeled", allow_empty=True)
            if X_unlabeled.shape[1:] != X.shape[1:]:
                raise MoBYALError(
                    f"X_unlabeled images have shape {X_unlabeled.shape[1:]} (C, H, W) but "
                    f"X images have {X.shape[1:]}; they must match."
                )
            if X_unlabeled.shape[0] == 0:
                X_unlabeled = None
        check_device(self.device)
        self._resolve_hardware()
        if self.unlabeled_ratio < 0:
            raise MoBYALError(f"unlabeled_ratio must be >= 0, got {self.unlabeled_ratio}.")
        if self.contrastive_weight < 0:
            raise MoBYALError(f"contrastive_weight must be >= 0, got {self.contrastive_weight}.")
        try:
            check_integer(self.contrastive_every, "contrastive_every", minimum=1)
        except (TypeError, ValueError):
            raise MoBYALError(
                f"contrastive_every must be a positive integer, got {self.contrastive_every!r}."
            ) from None
        check_pseudo_label_params(
            self.pseudo_label_weight, self.pseudo_label_threshold, self.pseudo_label_thresholds,
            self.pseudo_label_mode,
        )  # fmt: skip
        as_labels = self.pseudo_label_mode == "labels" and self.pseudo_label_weight > 0
        if as_labels and (X_unlabeled is None or unlabeled_proba is None):
            raise MoBYALError(
                "pseudo_label_mode='labels' needs the pool and its targets: pass X_unlabeled "
                "and unlabeled_proba (for example from LabelSpreadingClassifier); the "
                "network's own predictions need pseudo_label_mode='consistency'"
            )
        if (
            self.pseudo_label_weight > 0
            and not as_labels
            and (X_unlabeled is None or self.unlabeled_ratio == 0)
        ):
            raise MoBYALError(
                "pseudo_label_weight > 0 needs unlabelled images: pass X_unlabeled (the pool) "
                "and keep unlabeled_ratio above 0"
            )
        check_schedule(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            train_samples=self.train_samples,
            min_samples_per_epoch=self.min_samples_per_epoch,
            lr_schedule=self.lr_schedule,
            lr_milestones=self.lr_milestones,
            lr_gamma=self.lr_gamma,
        )
        self._check_pretrained_shape(X)
        if cold:
            self._check_weights()
            self._backbone_weights()  # agrees with the pretrained encoder's
            self._record_data(X, y, X_unlabeled)
            y_encoded = self._encode_labels(y, allow_new=True)
        else:
            self._check_fitted_shape(X)
            y_encoded = self._encode_labels(y, allow_new=False)
        seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, size=4)
        if cold:
            self.init_seed_ = None if self.random_state is None else int(seeds[3])
        pseudo_X, pseudo_codes, pseudo_share = None, None, None
        if as_labels:
            pseudo_X, pseudo_codes = self._pseudo_labelled_rows(X_unlabeled, unlabeled_proba)
            pseudo_share = len(pseudo_codes) / X_unlabeled.shape[0]
            unlabeled_proba = None  # learnt as labels, not on the unlabelled batches
        if self.contrastive_weight == 0 and (self.pseudo_label_weight == 0 or as_labels):
            X_unlabeled = None  # unlabelled batches would carry no loss at all
        n_unlabeled = 0 if X_unlabeled is None else X_unlabeled.shape[0]
        if unlabeled_proba is not None and self.pseudo_label_weight > 0:
            unlabeled_proba = self._check_unlabeled_proba(unlabeled_proba, n_unlabeled)
        n_pseudo = 0 if pseudo_codes is None else len(pseudo_codes)
        shuffle = self.get_params_for("iterator_train").get("shuffle", True)
        state = _FitState(
            X_unlabeled,
            n_labeled=X.shape[0],
            batch_size=self.batch_size,
            unlabeled_ratio=self.unlabeled_ratio,
            train_samples=self.train_samples,
            min_samples_per_epoch=self.min_samples_per_epoch,
            max_epochs=self.max_epochs,
            seeds=seeds,
            device=self.device,
            shuffle=bool(shuffle),
            # built once per fit, not once per batch
            views=get_view_pair(self.views, self.n_channels_in_),
            n_pseudo=n_pseudo,
            # weight w: w pseudo-labelled draws per real one, as the consistency term with
            # unlabeled_ratio=1 weighs the pool w times the labels (a third of the labels
            # at 600 lost 3.5 points when 30,000 images drew as often as each real label)
            pseudo_fraction=self.pseudo_label_weight / (1.0 + self.pseudo_label_weight),
        )
        state.X, state.y = X, y_encoded
        if n_pseudo:  # rows past the real labels: the pool images taken as labels
            state.X = np.concatenate([X, pseudo_X])
            state.y = np.concatenate([y_encoded, pseudo_codes.astype(y_encoded.dtype)])
        state.pseudo_share = pseudo_share
        state.labeled_steps = 0  # labelled batches so far: contrastive_every counts them
        state.unlabeled_proba = unlabeled_proba
        # FlexMatch: each pool image's latest confident class
        state.latest_confident = np.full(n_unlabeled, NOT_CONFIDENT, dtype=np.int32)
        self._fit_state = state
        self.total_steps_ = state.total_steps
        self.epoch_samples_ = state.epoch_size
        self.momentum_step_ = 0

    def _pseudo_labelled_rows(self, X_unlabeled, proba: Any) -> tuple[np.ndarray, np.ndarray]:
        """The pool images whose target reaches the threshold, and their class codes."""
        proba = self._check_unlabeled_proba(proba, X_unlabeled.shape[0])
        confidence = proba.max(axis=1)
        # as in the consistency term: 1 takes no image, a row of zeros never counts
        keep = (confidence >= self.pseudo_label_threshold) & (proba.sum(axis=1) > 0)
        rows = np.flatnonzero(keep) if self.pseudo_label_threshold < 1 else np.zeros(0, int)
        return np.asarray(X_unlabeled[rows], dtype=np.float32), proba[rows].argmax(axis=1)

    def _check_unlabeled_proba(self, proba: Any, n_unlabeled: int) -> np.ndarray:
        proba = np.asarray(proba, dtype=np.float32)
        expected = (n_unlabeled, len(self.classes_))
        if proba.shape != expected:
            raise MoBYALError(
                f"unlabeled_proba has shape {proba.shape}; expected {expected}: one row per "
                "X_unlabeled image, one column per class in classes_ order"
            )
        if not np.isfinite(proba).all() or (proba < 0).any():
            raise MoBYALError("unlabeled_proba must hold finite, non-negative probabilities")
        return proba

    def _record_data(self, X: np.ndarray, y: np.ndarray, X_unlabeled: np.ndarray | None) -> None:
        if self.classes is None:
            self.classes_inferred_ = np.unique(y)
        # per-channel moments summed part by part: no copy of the whole pool
        self._record_images([X] if X_unlabeled is None else [X, X_unlabeled])

    def _check_fitted_shape(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_channels_in_:
            raise MoBYALError(
                f"X has {X.shape[1]} channels but the network was fitted on {self.n_channels_in_}."
            )
        if tuple(X.shape[2:]) != tuple(self.image_shape_):
            raise MoBYALError(
                f"X images are {X.shape[2]}x{X.shape[3]} but the network was fitted on "
                f"{self.image_shape_[0]}x{self.image_shape_[1]}."
            )

    def _encode_labels(self, y: np.ndarray, allow_new: bool) -> np.ndarray:
        classes = np.asarray(self.classes_)
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            hint = (
                " Pass classes=[...] with every label when warm-starting."
                if not allow_new or self.classes is None
                else ""
            )
            raise MoBYALError(
                f"y holds labels {unknown.tolist()} not among the classes {classes.tolist()}.{hint}"
            )
        # classes given by the user need not be sorted
        order = np.argsort(classes, kind="stable")
        return order[np.searchsorted(classes, y, sorter=order)].astype(np.int64)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Record the epoch's mean contrastive losses from the batch history.

        ``contrastive_loss``: the labelled batches'; ``unlabeled_loss``: the
        unlabelled batches'; ``pseudo_label_share``: the share of unlabelled
        images that passed the pseudo-label threshold.
        """
        super().on_epoch_end(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        batches = self.history[-1, "batches"]
        for key in ("contrastive_loss", "unlabeled_loss", "pseudo_label_share"):
            values = [batch[key] for batch in batches if key in batch]
            if values:
                self.history.record(key, float(np.mean(values)))
        state = getattr(self, "_fit_state", None)
        if state is not None and state.pseudo_share is not None:  # the pool's images as labels
            self.history.record("pseudo_label_share", float(state.pseudo_share))

    def train_step_single(self, batch, **fit_params):
        """One batch: labelled (cross-entropy plus the contrastive term) or unlabelled.

        An :class:`UnlabeledBatch` carries only ``contrastive_weight`` times
        the contrastive loss. With ``contrastive_weight=0`` the net is a plain
        supervised baseline: only the weak view goes through the online
        encoder and the classifier. The batch's keys are kept for
        :meth:`train_step`, which enqueues them after the optimiser step.
        """
        with self._autocast():  # the forward pass and the losses; backward outside
            loss, y_pred = self._batch_loss(batch)
        if loss.requires_grad:  # an unlabelled batch with no confident image has no graph
            loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _batch_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The loss of one batch and its class logits (None for an unlabelled batch)."""
        state = self._fit_state
        if isinstance(batch, UnlabeledBatch):
            # no prediction: nothing downstream may score labels here
            return self._unlabeled_loss(batch), None
        state.labeled_steps += 1
        supervised_only = (
            self.contrastive_weight == 0 or (state.labeled_steps - 1) % self.contrastive_every != 0
        )
        if supervised_only:
            self._set_training(True)
            Xi, yi = unpack_data(batch)
            weak, _ = self._fit_state.views
            x = to_tensor(Xi, device=self.device)
            y_pred = self.module_(weak(x, self._fit_state.view_generator)).float()
            return self.get_loss(y_pred, yi, X=Xi, training=True), y_pred
        contrastive, weak_features, yi = self._contrastive_pass(batch)
        y_pred = self.module_.classifier(weak_features).float()
        loss = self.get_loss(y_pred, yi, X=batch[0], training=True)
        self.history.record_batch("contrastive_loss", float(contrastive.detach()))
        return loss + self.contrastive_weight * contrastive, y_pred

    def _unlabeled_loss(self, batch) -> torch.Tensor:
        """The MoBY term and the pseudo-label term of an unlabelled batch, as weighted."""
        loss = torch.zeros((), device=self.device)
        if self.contrastive_weight > 0:
            contrastive, _, _ = self._contrastive_pass(batch)
            self.history.record_batch("unlabeled_loss", float(contrastive.detach()))
            loss = loss + self.contrastive_weight * contrastive
        if self.pseudo_label_weight > 0 and self.pseudo_label_mode == "consistency":
            loss = loss + self.pseudo_label_weight * self._pseudo_label_loss(batch)
        return loss

    def _pseudo_label_loss(self, batch) -> torch.Tensor:
        """FixMatch's term: confident weak-view predictions as targets of the strong view."""
        self._set_training(True)
        state = self._fit_state
        weak, strong = state.views
        x = to_tensor(unpack_data(batch)[0], device=self.device)
        rows = state.unlabeled_stream.last.numpy()  # the pool images of this batch
        if state.unlabeled_proba is not None:  # targets from outside (the graph step)
            proba = torch.from_numpy(state.unlabeled_proba[rows]).to(self.device)
        else:
            with torch.no_grad():
                proba = torch.softmax(self.module_(weak(x, state.view_generator)).float(), dim=1)
        confidence, targets = proba.max(dim=1)
        if self.pseudo_label_thresholds == "flexmatch":
            record_confident(
                state.latest_confident, rows, confidence.cpu().numpy(), targets.cpu().numpy(),
                self.pseudo_label_threshold,
            )  # fmt: skip
            thresholds = flexmatch_thresholds(
                state.latest_confident, len(self.classes_), self.pseudo_label_threshold
            )
            threshold = torch.as_tensor(thresholds, dtype=confidence.dtype)[targets.cpu()]
            threshold = threshold.to(self.device)
        else:
            threshold = torch.full_like(confidence, self.pseudo_label_threshold)
        # a threshold of 1 takes no image, even where float32 rounds a probability to 1
        mask = (confidence >= threshold) & (threshold < 1)
        if state.unlabeled_proba is not None:  # a row of zeros: no target for that image
            mask &= proba.sum(dim=1) > 0
        self.history.record_batch("pseudo_label_share", float(mask.float().mean()))
        if not mask.any():  # nothing to learn from: spare the strong view's pass
            return torch.zeros((), device=self.device)
        logits = self.module_(strong(x, state.view_generator)).float()
        return (F.cross_entropy(logits, targets, reduction="none") * mask).mean()

    # ------------------------------------------------------------- inference
    def _check_inference_input(self, X) -> np.ndarray | LazyImages:
        self.check_is_fitted()
        X = check_pool(X)
        self._check_fitted_shape(X)
        return X

    def predict_proba(self, X):
        """Class probabilities of shape (N, n_classes), columns in ``classes_`` order.

        A pool on disk (memmap, :class:`moby_al_plugin.ImagePool`) is read
        in chunks.
        """
        X = self._check_inference_input(X)
        with self._threads():
            if isinstance(X, LazyImages):
                chunk = max(int(self.batch_size), CHUNK_SIZE)
                parent = super().predict_proba  # (a comprehension has no zero-argument super)
                return np.concatenate([parent(part) for part in X.chunks(chunk)])
            return super().predict_proba(X)

    def predict(self, X):
        """Predicted labels of shape (N,), taken from ``classes_``."""
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def transform(self, X) -> np.ndarray:
        """Encoder features of clean images in eval mode.

        Before the first fit, a classifier with ``pretrained`` returns the
        pretrained encoder's features (a strategy can then pick the first
        batch before any label exists).

        Parameters
        ----------
        X : array-like of images

        Returns
        -------
        ndarray of shape (N, feature_dim), float32

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Not fitted and no ``pretrained`` (skorch's ``NotInitializedError``
            is a subclass of it).
        """
        if self.pretrained is not None and not getattr(self, "initialized_", False):
            return self._pretrained_encoder().transform(X)
        return self._embed(self._check_inference_input(X))

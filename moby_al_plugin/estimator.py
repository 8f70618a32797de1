"""``MoBYClassifier``: the MoBY network trained jointly, as a skorch estimator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._validation import check_device, check_images, check_labels
from .augment import get_view_pair
from .callbacks import MilestoneLRDecay
from .moby import MoBYNetwork, cosine_momentum, momentum_update

__all__ = ["MoBYClassifier"]


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


class _EvenBatchSampler(torch.utils.data.Sampler):
    """Batches of near-equal size over a (seeded) permutation of the samples."""

    def __init__(self, n_samples: int, batch_size: int, shuffle: bool,
                 generator: torch.Generator) -> None:
        self.sizes = even_batches(n_samples, batch_size)
        self.n_samples = n_samples
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n_samples, generator=self.generator).tolist()
        else:
            order = list(range(self.n_samples))
        start = 0
        for size in self.sizes:
            yield order[start : start + size]
            start += size


class _FitState:
    """Per-fit scratch state: random generators and the unlabelled stream.

    Lives only during ``fit`` (torch generators do not pickle).
    """

    def __init__(
        self,
        X_unlabeled: np.ndarray | None,
        n_labeled: int,
        batch_size: int,
        unlabeled_ratio: float,
        max_epochs: int,
        seeds: np.ndarray,
        device: str,
    ) -> None:
        self.loader_generator = torch.Generator().manual_seed(int(seeds[0]))
        self.view_generator = torch.Generator(device=torch.device(device)).manual_seed(
            int(seeds[1])
        )
        self.unlabeled_rng = np.random.default_rng(int(seeds[2]))
        self.X_unlabeled = X_unlabeled
        self.batch_size = batch_size
        self.labeled_batches = math.ceil(n_labeled / batch_size)
        n_unlabeled = 0 if X_unlabeled is None else X_unlabeled.shape[0]
        # the paper draws as many unlabelled samples per epoch as labelled ones
        self.unlabeled_per_epoch = (
            int(round(unlabeled_ratio * n_labeled)) if n_unlabeled else 0
        )
        if self.unlabeled_per_epoch == 1:
            self.unlabeled_per_epoch = 2  # batch norm needs two samples
        self.unlabeled_sizes = even_batches(self.unlabeled_per_epoch, batch_size)
        self.unlabeled_batches = len(self.unlabeled_sizes)
        self.total_steps = max_epochs * (self.labeled_batches + self.unlabeled_batches)
        self.views: tuple | None = None  # (weak, strong), set by fit
        self.step = 0
        self.batch_in_epoch = 0
        self.unlabeled_in_epoch = 0
        self._order = np.empty(0, dtype=np.int64)
        self._position = 0

    def start_epoch(self) -> None:
        self.batch_in_epoch = 0
        self.unlabeled_in_epoch = 0

    def unlabeled_batches_after(self, labeled_index: int) -> int:
        """How many unlabelled batches follow labelled batch ``labeled_index``.

        Spreads the epoch's unlabelled batches evenly between labelled ones.
        """
        n_l, n_u = self.labeled_batches, self.unlabeled_batches
        return (labeled_index + 1) * n_u // n_l - labeled_index * n_u // n_l

    def next_unlabeled_indices(self) -> np.ndarray:
        size = self.unlabeled_sizes[self.unlabeled_in_epoch]
        self.unlabeled_in_epoch += 1
        chunks = []
        while size > 0:
            if self._position >= self._order.shape[0]:
                # a fresh permutation each pass: sampling without replacement
                self._order = self.unlabeled_rng.permutation(self.X_unlabeled.shape[0])
                self._position = 0
            take = self._order[self._position : self._position + size]
            self._position += take.shape[0]
            size -= take.shape[0]
            chunks.append(take)
        return np.concatenate(chunks)


class MoBYClassifier(NeuralNetClassifier):
    """MoBYv2AL's jointly trained network as an sklearn-style classifier.

    Each ``fit`` trains, from scratch or (``warm_start=True``) from the previous
    fit, the cross-entropy on labelled batches plus ``contrastive_weight`` times
    the MoBY contrastive loss, alternating with batches of ``X_unlabeled`` that
    carry only the contrastive term. ``transform`` returns the encoder's pooled
    features of clean images, the space in which
    :func:`moby_al_plugin.mobyv2al_sampling` selects.

    Parameters
    ----------
    backbone : str or nn.Module
        Encoder name (``"small_cnn"``, ``"lenet5"``, ``"resnet18"`` or any
        torchvision classification model) or a module; a module needs
        ``module__feature_dim``.
    projection_dim : int, default=128
        Width of the projector and predictor.
    head_layout : {"bn_relu", "linear"}, default="bn_relu"
        Projector/predictor layers: the paper's Linear+BN+ReLU, or the bare
        Linear of the authors' code.
    queue_size : int, default=4096
        Keys per queue.
    temperature : float, default=0.2
        InfoNCE temperature.
    contrastive_weight : float, default=0.5
        Weight of the contrastive loss on every batch. 0 turns the estimator
        into the supervised-only baseline of the same backbone (no
        contrastive pass, no unlabelled batches).
    unlabeled_ratio : float, default=1.0
        Unlabelled samples drawn per epoch, as a multiple of the labelled set
        size (the paper uses 1). 0 disables the unlabelled batches.
    views : str or (callable, callable), default="auto"
        Augmentation preset (``"auto"``, ``"natural"``, ``"grayscale"``,
        ``"fashion_mnist"``, ``"digits"``) or a ``(weak, strong)`` pair of
        callables ``f(x, generator) -> x`` on (B, C, H, W) tensors in [0, 1].
    lr_milestones : sequence of float, default=(0.6, 0.8)
        Fractions of ``max_epochs`` after which the learning rate is
        multiplied by ``lr_gamma`` (the paper: epochs 120 and 160 of 200).
    lr_gamma : float, default=0.1
        Learning-rate decay factor.
    momentum_base : float, default=0.99
        Momentum of the key branch at the first step; it rises to 1 along a
        cosine over the steps of each fit.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, augmentations and the
        unlabelled stream; an int makes two CPU fits identical.
    module : type, default=MoBYNetwork
        The network class; its ``module__`` parameters reach it.
    criterion : type, default=torch.nn.CrossEntropyLoss
        Loss of the labelled batches.
    optimizer : type, default=torch.optim.SGD
        With ``optimizer__momentum=0.9`` and ``optimizer__weight_decay=5e-4``
        unless given.
    lr : float, default=0.01
        Learning rate.
    max_epochs : int, default=200
        Epochs per fit.
    batch_size : int, default=128
        Size of labelled and unlabelled batches.
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
    """

    def __init__(
        self,
        backbone: Any = "small_cnn",
        *,
        projection_dim: int = 128,
        head_layout: str = "bn_relu",
        queue_size: int = 4096,
        temperature: float = 0.2,
        contrastive_weight: float = 0.5,
        unlabeled_ratio: float = 1.0,
        views: Any = "auto",
        lr_milestones: Sequence[float] = (0.6, 0.8),
        lr_gamma: float = 0.1,
        momentum_base: float = 0.99,
        random_state: Any = None,
        module: Any = MoBYNetwork,
        criterion: Any = torch.nn.CrossEntropyLoss,
        optimizer: Any = torch.optim.SGD,
        lr: float = 0.01,
        max_epochs: int = 200,
        batch_size: int = 128,
        train_split: Any = None,
        device: str = "cpu",
        verbose: int = 0,
        classes: Any = None,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("optimizer__momentum", 0.9)
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
        self.projection_dim = projection_dim
        self.head_layout = head_layout
        self.queue_size = queue_size
        self.temperature = temperature
        self.contrastive_weight = contrastive_weight
        self.unlabeled_ratio = unlabeled_ratio
        self.views = views
        self.lr_milestones = lr_milestones
        self.lr_gamma = lr_gamma
        self.momentum_base = momentum_base
        self.random_state = random_state

    # ------------------------------------------------------------------ setup
    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("lr_decay", MilestoneLRDecay(self.lr_milestones, self.lr_gamma)),
            ("print_log", PrintLog()),
        ]

    def initialize_module(self):
        """Build the network from the shapes recorded by ``fit``.

        The weights are drawn from a generator seeded by ``random_state``, so
        the global torch seed is left alone.
        """
        if not hasattr(self, "n_channels_in_"):
            raise ValueError(
                "MoBYClassifier builds its network from the training data: call fit(X, y)."
            )
        kwargs = {
            "backbone": self.backbone,
            "in_channels": self.n_channels_in_,
            "n_classes": len(self.classes_),
            "image_size": self.image_shape_,
            "projection_dim": self.projection_dim,
            "head_layout": self.head_layout,
            "queue_size": self.queue_size,
            "temperature": self.temperature,
            "input_mean": self.input_mean_,
            "input_std": self.input_std_,
        }
        kwargs.update(self.get_params_for("module"))
        seed = int(self.init_seed_) if getattr(self, "init_seed_", None) is not None else None
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; during ``fit`` the training batches are seeded and even.

        Even batch sizes (``even_batches``) keep every batch at two samples or
        more, which batch norm in the projector needs.
        """
        state = getattr(self, "fit_state_", None)
        if not training or state is None:
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train")
        shuffle = kwargs.pop("shuffle", True)
        for key in ("batch_size", "generator", "drop_last", "sampler"):
            kwargs.pop(key, None)
        sampler = _EvenBatchSampler(len(dataset), self.batch_size, shuffle,
                                    state.loader_generator)
        return self.iterator_train(dataset, batch_sampler=sampler, **kwargs)

    def check_data(self, X, y):
        # classes are recorded by fit (they must survive warm starts), so
        # skorch's inference from the encoded y is skipped on purpose
        return None

    # -------------------------------------------------------------- training
    def fit(self, X, y, X_unlabeled=None, **fit_params):
        """Train on labelled ``(X, y)`` and, contrastively, on ``X_unlabeled``.

        All inputs are checked before any training starts; the work itself
        is skorch's ``fit``.

        Parameters
        ----------
        X : array-like of shape (N, H, W), (N, C, H, W) or (N, H, W, C)
            Labelled images, uint8 or float in [0, 1].
        y : array-like of shape (N,)
            Labels.
        X_unlabeled : array-like of images or None
            Unlabelled pool, same channels and size as ``X``.
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
            when warm-starting), new classes in a warm start without
            ``classes``, ``device="cuda"`` without a GPU, unknown backbone,
            images too small for the backbone.
        """
        X = check_images(X)
        y = check_labels(y, X.shape[0])
        if X_unlabeled is not None:
            X_unlabeled = check_images(X_unlabeled, name="X_unlabeled", allow_empty=True)
            if X_unlabeled.shape[1:] != X.shape[1:]:
                raise ValueError(
                    f"X_unlabeled images have shape {X_unlabeled.shape[1:]} (C, H, W) but "
                    f"X images have {X.shape[1:]}; they must match."
                )
            if X_unlabeled.shape[0] == 0:
                X_unlabeled = None
        check_device(self.device)
        if self.unlabeled_ratio < 0:
            raise ValueError(f"unlabeled_ratio must be >= 0, got {self.unlabeled_ratio}.")
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {self.contrastive_weight}.")
        reuse = self.warm_start and getattr(self, "initialized_", False)
        if reuse:
            self._check_fitted_shape(X)
            y_encoded = self._encode_labels(y, allow_new=False)
        else:
            self._record_data(X, y, X_unlabeled)
            y_encoded = self._encode_labels(y, allow_new=True)

        seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, size=4)
        self.init_seed_ = None if self.random_state is None else int(seeds[3])
        if self.contrastive_weight == 0:
            X_unlabeled = None  # unlabelled batches would carry no loss at all
        self.fit_state_ = _FitState(
            X_unlabeled,
            n_labeled=X.shape[0],
            batch_size=self.batch_size,
            unlabeled_ratio=self.unlabeled_ratio,
            max_epochs=self.max_epochs,
            seeds=seeds,
            device=self.device,
        )
        # built once per fit, not once per batch
        self.fit_state_.views = get_view_pair(self.views, self.n_channels_in_)
        self.total_steps_ = self.fit_state_.total_steps
        self.momentum_step_ = 0
        try:
            super().fit(X, y_encoded, **fit_params)
        finally:
            self.fit_state_ = None
        return self

    def _record_data(self, X: np.ndarray, y: np.ndarray, X_unlabeled: np.ndarray | None) -> None:
        self.n_channels_in_ = int(X.shape[1])
        self.image_shape_ = (int(X.shape[2]), int(X.shape[3]))
        if self.classes is None:
            self.classes_inferred_ = np.unique(y)
        # per-channel moments summed part by part: no copy of the whole pool
        parts = [X] if X_unlabeled is None else [X, X_unlabeled]
        count = sum(p.shape[0] * p.shape[2] * p.shape[3] for p in parts)
        total = sum(p.sum(axis=(0, 2, 3), dtype=np.float64) for p in parts)
        squares = sum(np.einsum("nchw,nchw->c", p, p, dtype=np.float64) for p in parts)
        mean = total / count
        self.input_mean_ = mean.tolist()
        self.input_std_ = np.sqrt(np.maximum(squares / count - mean**2, 0.0)).tolist()

    def _check_fitted_shape(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_channels_in_:
            raise ValueError(
                f"X has {X.shape[1]} channels but the network was fitted on "
                f"{self.n_channels_in_}."
            )
        if tuple(X.shape[2:]) != tuple(self.image_shape_):
            raise ValueError(
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
            raise ValueError(f"y holds labels {unknown.tolist()} not among the classes "
                             f"{classes.tolist()}.{hint}")
        # classes given by the user need not be sorted
        order = np.argsort(classes, kind="stable")
        return order[np.searchsorted(classes, y, sorter=order)].astype(np.int64)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        self.fit_state_.start_epoch()
        self.epoch_contrastive_ = []
        self.epoch_unlabeled_ = []

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                             **kwargs)
        if self.epoch_contrastive_:
            self.history.record("contrastive_loss", float(np.mean(self.epoch_contrastive_)))
        if self.epoch_unlabeled_:
            self.history.record("unlabeled_loss", float(np.mean(self.epoch_unlabeled_)))

    def _augment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weak, strong = self.fit_state_.views
        generator = self.fit_state_.view_generator
        return weak(x, generator), strong(x, generator)

    def train_step_single(self, batch, **fit_params):
        """One labelled batch: cross-entropy on the weak view plus the contrastive loss.

        With ``contrastive_weight=0`` the net is a plain supervised baseline:
        only the weak view goes through the online encoder and the classifier.
        """
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        if self.contrastive_weight == 0:
            weak, _ = self.fit_state_.views
            y_pred = self.module_(weak(x, self.fit_state_.view_generator))
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            loss.backward()
            return {"loss": loss, "y_pred": y_pred}
        x_weak, x_strong = self._augment(x)
        contrastive, weak_features, k_strong, k_weak = self.module_.contrastive_forward(
            x_weak, x_strong
        )
        y_pred = self.module_.classifier(weak_features)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss = loss + self.contrastive_weight * contrastive
        loss.backward()
        self.module_.enqueue_keys(k_strong, k_weak)
        self.epoch_contrastive_.append(float(contrastive.detach()))
        return {"loss": loss, "y_pred": y_pred}

    def _unlabeled_step(self, indices: np.ndarray) -> float:
        """One unlabelled batch: only the contrastive term, one optimiser step."""
        x = torch.as_tensor(self.fit_state_.X_unlabeled[indices], device=self.device)
        x_weak, x_strong = self._augment(x)
        self.optimizer_.zero_grad()
        contrastive, _, k_strong, k_weak = self.module_.contrastive_forward(x_weak, x_strong)
        (self.contrastive_weight * contrastive).backward()
        self.optimizer_.step()
        self.module_.enqueue_keys(k_strong, k_weak)
        return float(contrastive.detach())

    def _update_momentum_branch(self) -> None:
        state = self.fit_state_
        m = cosine_momentum(state.step, state.total_steps, base=self.momentum_base)
        momentum_update(self.module_.online_modules(), self.module_.momentum_modules(), m)
        state.step += 1
        self.momentum_step_ = state.step

    def train_step(self, batch, **fit_params):
        """A labelled step, then the unlabelled steps interleaved after it.

        Every optimiser step is followed by the momentum update of the key
        branch.
        """
        step = super().train_step(batch, **fit_params)
        self._update_momentum_branch()
        state = self.fit_state_
        n_unlabeled = state.unlabeled_batches_after(state.batch_in_epoch)
        state.batch_in_epoch += 1
        for _ in range(n_unlabeled):
            self._set_training(True)
            loss = self._unlabeled_step(state.next_unlabeled_indices())
            self.epoch_unlabeled_.append(loss)
            self._update_momentum_branch()
        return step

    # ------------------------------------------------------------- inference
    def _check_inference_input(self, X) -> np.ndarray:
        self.check_is_fitted()
        X = check_images(X)
        self._check_fitted_shape(X)
        return X

    def predict_proba(self, X):
        """Class probabilities of shape (N, n_classes), columns in ``classes_`` order."""
        return super().predict_proba(self._check_inference_input(X))

    def predict(self, X):
        """Predicted labels of shape (N,), taken from ``classes_``."""
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def transform(self, X) -> np.ndarray:
        """Encoder features of clean images in eval mode.

        Parameters
        ----------
        X : array-like of images

        Returns
        -------
        ndarray of shape (N, feature_dim), float32
        """
        X = self._check_inference_input(X)
        self._set_training(False)
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                batch = torch.as_tensor(X[start : start + self.batch_size], device=self.device)
                out.append(self.module_.embed(batch).float().cpu().numpy())
        return np.concatenate(out)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("fit_state_", None)  # generators and the pool stay out of pickles
        return state

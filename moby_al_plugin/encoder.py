"""``MoBYEncoder``: the MoBY network trained on unlabelled images, as a transformer.

Pretraining once on the pool and fine-tuning in every cycle is how the
published studies that combine self-supervised and active learning work. The
encoder here is that pretraining: ``fit(X)`` trains the contrastive objective
alone (no label), ``transform(X)`` returns the encoder's pooled features of
clean images. It is a scikit-learn transformer, so it works in a
``Pipeline`` in front of any classifier, and it is what
:class:`moby_al_plugin.MoBYClassifier` starts from with ``pretrained=``.
"""

from __future__ import annotations

import inspect
import os
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from . import distributed
from ._validation import check_device, check_integer
from .augment import get_view_pair
from .callbacks import EpochProgress, LRSchedule
from .data.pools import LazyImages, check_pool, images_fingerprint
from .encoder_file import (
    encoder_from_payload,
    encoder_payload,
    read_encoder_file,
    sampled_fingerprint,
    save_encoder_file,
)
from .exceptions import MoBYALError
from .hardware import DEFAULT_PRECISION
from .network.moby_network import DEFAULT_HEAD_LAYOUT, MoBYNetwork
from .schedule import even_batches
from .skorch_base import FitState, IndexStream, MoBYNetBase, unlabeled_batch

__all__ = ["MoBYEncoder", "load_encoder", "check_fitted_encoder", "load_pretrained_weights"]

# parameters that do not change what a fit computes: a checkpoint written
# with other values of these still resumes
# a fit may continue on other threads or in another precision
_RESUME_NEUTRAL = ("verbose", "checkpoint", "precision", "n_threads")


class _PoolState(FitState):
    """Per-fit scratch state of the encoder: the pool, its batch sizes and order."""

    def __init__(
        self,
        X: np.ndarray,
        batch_size: int,
        seeds: np.ndarray,
        device: str,
        views: tuple,
        on_epoch_end: Callable | None,
    ) -> None:
        super().__init__(int(seeds[1]), int(seeds[2]), device, views)
        self.X = X
        self.sizes = even_batches(X.shape[0], batch_size)
        self.stream = IndexStream(X.shape[0], True, self.loader_generator)
        self.on_epoch_end = on_epoch_end
        self.epoch_began = 0.0


class _PoolEpoch:
    """The training iterator of one pretraining: one pass over the pool per epoch.

    Batches of near-equal size (``even_batches``), each the next rows of a
    fresh permutation read in index order, as :class:`moby_al_plugin.skorch_base.UnlabeledBatch`.
    """

    def __init__(self, state: _PoolState) -> None:
        self.state = state

    def __len__(self) -> int:
        return len(self.state.sizes)

    def __iter__(self):
        for size in self.state.sizes:
            yield unlabeled_batch(self.state.X, self.state.stream, size, sort=True)


class MoBYEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, MoBYNetBase):
    """The MoBY contrastive network trained on unlabelled images, as a transformer.

    ``fit(X)`` trains the online encoder, projector and predictor with the
    symmetric MoBY loss between a weak and a strong view of each image, the
    key branch following as a moving average; no label is used.
    ``transform(X)`` returns the encoder's pooled features of clean images.

    It is a skorch net on the training core it shares with
    :class:`moby_al_plugin.MoBYClassifier` (:mod:`moby_al_plugin.skorch_base`):
    skorch's loop runs the epochs, every batch an
    :class:`moby_al_plugin.skorch_base.UnlabeledBatch` of the pool, the
    learning rate follows :class:`moby_al_plugin.callbacks.LRSchedule` and
    the progress bar :class:`moby_al_plugin.callbacks.EpochProgress`. Its
    parameters are the ones below only (skorch's ``module``, ``criterion``,
    ``optimizer`` and ``callbacks`` are fixed).

    Inside a ``Pipeline`` that is refitted on labelled data (modAL refits its
    estimator at every ``teach``), wrap the fitted encoder in
    ``sklearn.frozen.FrozenEstimator``: the pipeline's ``fit`` then leaves the
    pretraining as it is instead of replacing it by one on the few labelled
    images, and ``clone`` (``GridSearchCV``, committees) keeps it fitted.
    A bare encoder behaves as every scikit-learn estimator: ``fit`` trains,
    ``clone`` returns an unfitted copy.

    Under an initialised ``torch.distributed`` process group of two or more
    processes (``torchrun``; :mod:`moby_al_plugin.distributed`), ``fit`` and
    ``transform`` are collective: every process calls them with the same
    images and settings (checked before training, refused on every rank).
    Each step then takes ``batch_size`` images per process, so a global batch
    of ``batch_size`` times the number of processes; the gradients are
    averaged by ``DistributedDataParallel``, the keys of all processes enter
    the queues, and every process ends with the same weights. Rank 0 alone
    writes the ``checkpoint``; it continues only with the same number of
    processes. ``transform`` embeds one block of ``X`` per process and
    returns all features, in order, on every process.

    Parameters
    ----------
    backbone : str or nn.Module, default="small_cnn"
        Encoder name (see :func:`moby_al_plugin.available_backbones`) or a
        module mapping (B, C, H, W) images to (B, F) features (deep-copied
        at every fit).
    weights : str, path or None, default=None
        Pretrained weights the backbone starts from before the MoBY
        pretraining on the pool: a torchvision weights name of a torchvision
        ``backbone`` (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...; the tensors
        come from torch's cache, downloaded there the first time: internet
        once) or a state-dict file that fits the backbone. A name also sets
        the input normalisation and size (resized to the weights' crop size,
        224x224 for most, in front of the encoder: the encoder's work at that
        size); as in :class:`moby_al_plugin.MoBYClassifier`, and see
        :mod:`moby_al_plugin.network.pretrained_weights`. Checked before any
        training; kept in the saved file (:meth:`load` does not read the
        weights again).
    projection_dim : int, default=128
        Width of the projector and predictor outputs.
    head_layout : {"bn_relu", "mlp", "linear"}, default="bn_relu"
        Projector/predictor layout (see :class:`~moby_al_plugin.network.ProjectionHead`).
    queue_size : int, default=4096
        Keys per queue.
    temperature : float, default=0.2
        InfoNCE temperature.
    views : str or (callable, callable), default="auto"
        Augmentation preset or a ``(weak, strong)`` pair, as in
        :class:`moby_al_plugin.MoBYClassifier`.
    max_epochs : int, default=10
        Passes over ``X``.
    batch_size : int, default=128
        Images per optimiser step (at least 2).
    lr : float, default=0.05
        Initial learning rate of SGD, decayed along a cosine to 0 over the
        steps of the fit.
    weight_decay : float, default=5e-4
        SGD weight decay.
    momentum_base : float, default=0.99
        Momentum of the key branch at the first step; a cosine takes it to 1.
    checkpoint : str, path or None, default=None
        File written atomically after every epoch with the training state.
        A ``fit`` that finds it, written with the same settings and data,
        continues after its last complete epoch (a finished one is only
        loaded); other settings or data are refused. The finished file is
        also readable with :meth:`load`.
    device : str, default="cpu"
        ``"cpu"`` or ``"cuda"``.
    precision : {"auto", "bf16", "fp32"}, default="auto"
        bfloat16 autocast of the forward passes (``"bf16"``), float32, or
        bfloat16 where the hardware has it natively (``"auto"``); as in
        :class:`moby_al_plugin.MoBYClassifier`. A checkpoint continues in
        any precision.
    n_threads : int or None, default=None
        torch threads during ``fit`` and ``transform``; None: torch's count.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order and views.
    verbose : int, default=0
        1 shows a progress bar over the epochs (tqdm).
    **kwargs
        ``optimizer__`` settings of SGD, skorch-style: ``optimizer__momentum``
        (default 0.9), ``optimizer__nesterov``, ... They are parameters like
        the others (``get_params``, ``set_params``, ``clone``).

    Attributes
    ----------
    network_ : MoBYNetwork
        The trained network (its classifier head is unused).
    feature_dim_ : int
        Width of the features ``transform`` returns.
    n_channels_in_ : int
        Channels of the training images.
    image_shape_ : tuple of int
        (H, W) of the training images.
    input_mean_, input_std_ : list of float
        Per-channel statistics of the training images (the network
        standardises its input with them, unless ``weights`` names
        torchvision weights, which bring their own).
    n_epochs_done_ : int
        Complete epochs of training.
    history_ : skorch.history.History
        Per epoch (a list of dicts): ``epoch``, mean contrastive ``loss``,
        ``seconds``, and skorch's ``train_loss``, ``lr`` and ``batches``.
    fit_seconds_ : float
        Training time of the epochs run by this process (resumed epochs
        keep their recorded time in ``history_``).
    momentum_step_, total_steps_ : int
        Optimiser steps taken so far in the fit (resumed ones included) and
        planned for it.
    module_ : MoBYNetwork
        skorch's name of ``network_``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression  # doctest: +SKIP
    >>> from sklearn.pipeline import make_pipeline
    >>> enc = MoBYEncoder(random_state=0).fit(X_pool)       # no labels
    >>> clf = make_pipeline(enc, LogisticRegression(max_iter=1000)).fit(X_few, y_few)
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
        views: Any = "auto",
        max_epochs: int = 10,
        batch_size: int = 128,
        lr: float = 0.05,
        weight_decay: float = 5e-4,
        momentum_base: float = 0.99,
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        precision: str = DEFAULT_PRECISION,
        n_threads: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(k for k in kwargs if not k.startswith("optimizer__"))
        if unknown:
            raise TypeError(
                f"MoBYEncoder got unexpected keyword arguments {unknown}; besides its own "
                "parameters it takes only optimizer__ settings (optimizer__momentum=...)"
            )
        kwargs.setdefault("optimizer__momentum", 0.9)
        super().__init__(
            MoBYNetwork,
            # the contrastive loss comes from the network itself
            criterion=torch.nn.Identity,
            optimizer=torch.optim.SGD,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=None,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.backbone = backbone
        self.weights = weights
        self.projection_dim = projection_dim
        self.head_layout = head_layout
        self.queue_size = queue_size
        self.temperature = temperature
        self.views = views
        self.weight_decay = weight_decay
        self.momentum_base = momentum_base
        self.checkpoint = checkpoint
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------ sklearn
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    @classmethod
    def _init_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind != p.VAR_KEYWORD
        )

    def _get_param_names(self):
        # the parameters are the constructor's, as in scikit-learn, and the
        # optimizer__ settings given; skorch's own (module, criterion, ...) are fixed
        given = sorted(k for k in vars(self) if k.startswith("optimizer__"))
        return self._init_param_names() + given

    def _get_params_callbacks(self, deep=True):
        return {}  # the callbacks are part of the method, not parameters

    # scikit-learn's repr (the parameters), not skorch's (the whole module)
    __repr__ = BaseEstimator.__repr__

    @property
    def network_(self) -> MoBYNetwork:
        """The trained network (skorch's ``module_``)."""
        return self.module_

    @property
    def _n_features_out(self) -> int:
        return self.feature_dim_

    @property
    def _default_callbacks(self):
        world = distributed.current_world()
        return [
            ("lr_schedule", LRSchedule("cosine")),
            # over several processes, rank 0 alone shows the bar
            (
                "progress",
                EpochProgress(
                    "MoBYEncoder",
                    disable=not self.verbose or (world.initialized and not world.is_main),
                    key="loss",
                ),
            ),
        ]

    # ------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        for name in ("max_epochs", "batch_size", "projection_dim", "queue_size"):
            value = getattr(self, name)
            try:
                check_integer(value, name, minimum=None)
            except TypeError:  # a setting: reported as the user's error, before training
                raise MoBYALError(f"{name} must be an int, got {value!r}.") from None
        if self.batch_size < 2:
            raise MoBYALError(
                f"batch_size must be at least 2 (batch norm and the contrastive loss need "
                f"two images per step), got {self.batch_size}."
            )
        if self.max_epochs < 1:
            raise MoBYALError(f"max_epochs must be at least 1, got {self.max_epochs}.")
        if not self.lr > 0:
            raise MoBYALError(f"lr must be positive, got {self.lr}.")
        if not 0.0 <= self.momentum_base <= 1.0:
            raise MoBYALError(f"momentum_base must lie in [0, 1], got {self.momentum_base}.")
        check_device(self.device)
        self._resolve_hardware()
        self._check_weights()

    @staticmethod
    def _checked_images(X: Any) -> np.ndarray | LazyImages:
        # a memmap or an ImagePool stays on disk, read batch by batch
        try:
            return check_pool(X)
        except MoBYALError:
            raise
        except ValueError as err:  # the shared checks predate MoBYALError
            raise MoBYALError(str(err)) from err

    def check_image_shape(self, X: np.ndarray) -> None:
        """Refuse images whose (C, H, W) differ from the training images.

        Parameters
        ----------
        X : ndarray of shape (N, C, H, W)

        Raises
        ------
        MoBYALError
            The shapes differ; the message names both.
        """
        fitted = (self.n_channels_in_, *self.image_shape_)
        if tuple(X.shape[1:]) != fitted:
            raise MoBYALError(
                f"images of shape (C, H, W) = {tuple(X.shape[1:])} do not fit the MoBYEncoder "
                f"trained on images of shape {fitted}."
            )

    # ------------------------------------------------------------ training
    def _resume_key(self) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in _RESUME_NEUTRAL}
        if params.get("optimizer__momentum") == 0.9:
            # 0.1.0's checkpoints had no such parameter and always used 0.9
            del params["optimizer__momentum"]
        if params.get("weights") is None:
            params.pop("weights", None)  # nor weights: checkpoints without them still resume
        return repr(sorted(params.items()))

    def _shared_settings(self) -> dict[str, str]:
        """The parameters every process of a distributed fit must agree on, as text.

        All but ``verbose`` (rank 0 alone shows a bar) and ``random_state``
        (rank 0's seeds are broadcast, so ``None`` works too); the
        ``checkpoint`` path too, since writing it is a step of every rank.
        """
        params = self.get_params(deep=False)
        if params["checkpoint"] is not None:
            params["checkpoint"] = os.fspath(params["checkpoint"])
        # "<function f at 0x...>": the address differs between processes, the function not
        return {
            k: re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v))
            for k, v in sorted(params.items())
            if k not in ("verbose", "random_state")
        }

    def get_params_for_optimizer(self, prefix, named_parameters):
        """SGD with ``optimizer__momentum`` (0.9) and ``weight_decay``, at ``lr`` (set per step)."""
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        kwargs.setdefault("weight_decay", self.weight_decay)
        return args, kwargs

    def check_data(self, X, y=None):
        # the batches come from the pool (get_iterator); there is no y
        return None

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; during ``fit`` one seeded pass over the pool per epoch."""
        state = getattr(self, "_fit_state", None)
        if not training or state is None:
            return super().get_iterator(dataset, training=training)
        return _PoolEpoch(state)

    def fit(
        self, X: Any, y: Any = None, on_epoch_end: Callable[[MoBYEncoder, int], None] | None = None
    ) -> MoBYEncoder:
        """Train the contrastive network on the images ``X``; labels are ignored.

        All inputs are checked, and a checkpoint is read, before any training;
        the epochs themselves are skorch's loop (``partial_fit``).

        Parameters
        ----------
        X : array-like of shape (N, H, W), (N, C, H, W) or (N, H, W, C)
            Unlabelled images, uint8 or float in [0, 1], N >= 2. A pool
            on disk (a numpy memmap or a :class:`moby_al_plugin.ImagePool`)
            is read batch by batch, never whole.
        y : ignored
            Accepted for ``Pipeline`` compatibility.
        on_epoch_end : callable or None
            Called as ``on_epoch_end(self, epoch)`` after every complete epoch
            (1-based), when ``transform`` and :meth:`save` already work; for
            example to save snapshots at chosen epochs. Over several
            processes it is called on every rank and must act alike on all
            (a rank that stops alone leaves the others waiting).

        Returns
        -------
        self

        Raises
        ------
        MoBYALError
            Fewer than two images, NaN/inf, a wrong rank, values outside
            [0, 1], ``batch_size`` < 2 or another bad setting, images of
            another shape than a kept fit's, or a checkpoint written with
            other settings or data; over several processes, also other
            images or settings on another rank, a pool too small for the
            processes, or an unfinished checkpoint of another number of
            processes. Raised before any training.
        KeyboardInterrupt
            The training was interrupted (skorch's loop stops quietly on
            one; the encoder passes it on, so that a partial pretraining is
            never taken for a finished one).
        """
        self._check_settings()
        X = self._checked_images(X)
        world = distributed.current_world()
        # a sweep over every image: only where a checkpoint or the other ranks need it
        needs_key = self.checkpoint is not None or world.active
        data_key = images_fingerprint(X) if needs_key else None
        if world.active:  # the same pool and settings on every rank, before any training
            distributed.check_pool(len(X), data_key, self._shared_settings(), training=True)
        if X.shape[0] < 2:
            raise MoBYALError(f"MoBYEncoder.fit needs at least 2 images, got {X.shape[0]}.")
        saved = None
        if self.checkpoint is not None and os.path.isfile(self.checkpoint):
            saved = read_encoder_file(self.checkpoint)
            training = saved.get("training") or {}
            stored = training.get("data")
            # a checkpoint of 0.1.0 identified its pool by 64 images; one of today never does
            same_images = stored == data_key or stored == sampled_fingerprint(X)
            if training.get("settings") != self._resume_key() or not same_images:
                raise MoBYALError(
                    f"the checkpoint {os.fspath(self.checkpoint)!r} was written with other "
                    "settings or other images; delete it or choose another checkpoint path."
                )
            if int(saved["attributes"]["n_epochs_done_"]) < self.max_epochs:  # to continue
                distributed.check_checkpoint_world(training, world, self.checkpoint)
        self._record_images([X])
        seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, size=3)
        if world.active:  # rank 0's seeds: the same network, queues and batches everywhere
            seeds = distributed.broadcast_value(seeds)
        self.init_seed_ = int(seeds[0])
        state = _PoolState(
            X,
            self.batch_size,
            seeds,
            self.device,
            get_view_pair(self.views, self.n_channels_in_),
            on_epoch_end,
        )
        state.data_key = data_key  # what every checkpoint of this fit stores
        if world.active:
            state.sync = distributed.TrainingSync(
                world, len(X), self.batch_size, shuffle_seed=int(seeds[1]) + 1
            )
            state.sync.shard(state)
        self.initialized_ = False  # a new fit builds every part anew, silently
        if saved is not None:  # the checkpoint's weights follow: the backbone's are not read
            self._initialize_for_state()
        else:
            self.initialize()
        self.feature_dim_ = int(self.module_.feature_dim)
        done = 0
        if saved is not None:
            training = saved["training"]
            self.module_.load_state_dict(saved["state"])
            self.optimizer_.load_state_dict(training["optimizer"])
            state.loader_generator.set_state(training["loader_generator"])
            state.view_generator.set_state(
                training["view_generator"].to(state.view_generator.get_state().device)
            )
            self.history_ = History(saved["attributes"]["history_"])
            done = int(saved["attributes"]["n_epochs_done_"])
            if state.sync is not None and done < self.max_epochs:
                state.sync.resume(training, state.view_generator)
        if state.sync is not None:
            state.sync.check_same_start(done, self.checkpoint)
            state.sync.attach(self.module_)
        self.n_epochs_done_ = done
        self.fit_seconds_ = 0.0
        self.total_steps_ = self.max_epochs * len(state.sizes)
        self.momentum_step_ = done * len(state.sizes)
        self._fit_state = state
        try:
            if done < self.max_epochs:
                with self._threads():
                    self.partial_fit(X, epochs=self.max_epochs - done)
        finally:
            self._end_fit()
            self.module_.eval()
        if self.n_epochs_done_ < self.max_epochs:
            raise KeyboardInterrupt(
                f"MoBYEncoder.fit stopped after {self.n_epochs_done_} of {self.max_epochs} "
                "epochs; with a checkpoint, the next fit continues from there."
            )
        return self

    def train_step_single(self, batch, **fit_params):
        """One batch of the pool: the contrastive loss alone, backpropagated.

        Its keys wait for :meth:`train_step`, which enqueues them and moves
        the key branch after the optimiser step.
        """
        with self._autocast():  # the forward pass and the loss; backward outside
            contrastive, _, _ = self._contrastive_pass(batch)
        contrastive.backward()
        return {"loss": contrastive, "y_pred": None}

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        self._fit_state.epoch_began = time.perf_counter()

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Record the epoch, write the checkpoint, then call the fit's ``on_epoch_end``.

        The epoch's ``loss`` (mean over its batches) and ``seconds`` go into
        the history; the checkpoint file holds everything a later ``fit``
        needs to continue after this epoch.
        """
        super().on_epoch_end(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        state = self._fit_state
        seconds = time.perf_counter() - state.epoch_began
        losses = self.history[-1, "batches", :, "train_loss"]
        self.history.record("loss", float(np.mean(losses)))
        self.history.record("seconds", seconds)
        self.fit_seconds_ += seconds
        self.n_epochs_done_ = len(self.history)
        if self.checkpoint is not None:
            training = {
                "settings": self._resume_key(),
                "data": state.data_key,
                "optimizer": self.optimizer_.state_dict(),
                "loader_generator": state.loader_generator.get_state(),
                "view_generator": state.view_generator.get_state(),
            }
            if state.sync is not None:  # every rank's generators; rank 0 alone writes
                training["distributed"] = state.sync.checkpoint_state(state.view_generator)
            if state.sync is None or state.sync.world.is_main:
                save_encoder_file(self._payload(training=training), self.checkpoint)
            if state.sync is not None:
                distributed.barrier()  # no rank goes on before the epoch's file is whole
        if state.on_epoch_end is not None:
            self.module_.eval()
            state.on_epoch_end(self, self.n_epochs_done_)

    # ----------------------------------------------------------- inference
    def transform(self, X: Any) -> np.ndarray:
        """Encoder features of clean (un-augmented) images, in eval mode.

        Parameters
        ----------
        X : array-like of images
            Same channels and size as the training images; a memmap or an
            :class:`moby_al_plugin.ImagePool` is read in chunks.

        Returns
        -------
        ndarray of shape (N, ``feature_dim_``), float32
            Over several processes: every row, in order, on every process
            (each embeds one block of rows).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The encoder is not fitted.
        MoBYALError
            Bad images, or images of another shape than the training images;
            over several processes, other images on another rank.
        """
        check_is_fitted(self)
        X = self._checked_images(X)
        self.check_image_shape(X)
        if distributed.current_world().active:  # each rank embeds its block, all get all
            return distributed.gather_rows(self._embed, X, images_fingerprint(X))
        return self._embed(X)

    # ----------------------------------------------------------- files
    def _payload(self, training: dict | None = None) -> dict:
        return encoder_payload(self, training)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted encoder to ``path`` (atomically: a crash keeps the old file).

        Parameters
        ----------
        path : str or path

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The encoder is not fitted.
        """
        check_is_fitted(self)
        save_encoder_file(self._payload(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> MoBYEncoder:
        """Read an encoder written by :meth:`save` (or a finished ``checkpoint``).

        The file is unpickled: load only files you trust.

        Parameters
        ----------
        path : str or path
        device : str or None
            Where to put the network; None keeps the saved ``device``.

        Returns
        -------
        MoBYEncoder
            Fitted, ready for ``transform``.

        Raises
        ------
        MoBYALError
            No such file, or not a file written by this class.
        """
        return encoder_from_payload(cls, read_encoder_file(path), device)


def load_encoder(path: str | os.PathLike, device: str | None = None) -> MoBYEncoder:
    """Read a saved :class:`MoBYEncoder` (the same as ``MoBYEncoder.load``)."""
    return MoBYEncoder.load(path, device=device)


def check_fitted_encoder(encoder: MoBYEncoder) -> MoBYEncoder:
    """Return ``encoder`` if it is fitted; refuse an unfitted one with the way out.

    Raises
    ------
    MoBYALError
        The encoder is not fitted.
    """
    if not encoder.__sklearn_is_fitted__():
        raise MoBYALError(
            "pretrained= holds a MoBYEncoder that is not fitted (a clone of a fitted one, "
            "for instance). Fit it first and pass FrozenEstimator(encoder), which clone "
            "keeps fitted, or save it with encoder.save(path) and pass pretrained=path, "
            "which survives clone, pickling and grid searches."
        )
    return encoder


def load_pretrained_weights(network: MoBYNetwork, encoder: MoBYEncoder) -> None:
    """Copy a fitted encoder's weights into ``network``, all but its classifier head.

    The encoder, key encoder and input standardisation must fit; the
    projector, predictor, key projector and queues are copied where their
    shapes fit (same ``projection_dim`` and ``head_layout``) and keep their
    fresh values otherwise.

    Raises
    ------
    MoBYALError
        The encoder parts do not fit (another backbone or image shape).
    """
    source = encoder.network_.state_dict()
    target = network.state_dict()
    required = [
        k
        for k in target
        if k.split(".")[0] in ("encoder", "encoder_momentum") or k in ("input_mean", "input_std")
    ]
    missing = [k for k in required if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise MoBYALError(
            f"the pretrained encoder (backbone {encoder.backbone!r}) does not fit this "
            f"network's encoder; first mismatch: {missing[0]!r}. Use the same backbone."
        )
    chosen = {
        k: v
        for k, v in source.items()
        if not k.startswith("classifier.") and k in target and v.shape == target[k].shape
    }
    network.load_state_dict(chosen, strict=False)

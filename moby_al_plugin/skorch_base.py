"""The training core of both MoBY estimators: one skorch net over :class:`MoBYNetwork`.

:class:`moby_al_plugin.MoBYClassifier` (joint training on labelled and
unlabelled batches) and :class:`moby_al_plugin.MoBYEncoder` (contrastive
pretraining on an unlabelled pool) are both skorch nets that train through
skorch's own loop (``fit_loop``, ``run_single_epoch``, ``train_step``) and
its hooks. What they share lives here, in :class:`MoBYNetBase`:

* the network built from the training images: shapes, per-channel input
  statistics (:func:`channel_statistics`) and weights drawn from a seeded
  generator, so the global torch seed is left alone;
* the per-fit scratch state (:class:`FitState`): seeded batch order, the
  views and their generator, the keys of the last batch;
* the contrastive pass of one batch and the optimiser step followed by the
  momentum (EMA) update of the key branch, with the cosine momentum of
  :func:`moby_al_plugin.network.momentum.cosine_momentum` over the true steps of the fit;
* features of clean images in eval mode.

The learning rate follows :class:`moby_al_plugin.callbacks.LRSchedule`
(:func:`moby_al_plugin.schedule.lr_factor`) and a progress bar
:class:`moby_al_plugin.callbacks.EpochProgress`, both skorch callbacks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from .data.pools import LazyImages, iter_chunks
from .exceptions import MoBYALError
from .hardware import autocast, check_n_threads, resolve_precision, torch_threads
from .network.moby_network import advance_key_branch
from .network.momentum import cosine_momentum
from .network.pretrained_weights import resolve_weights

__all__ = [
    "UNLABELED",
    "FitState",
    "IndexStream",
    "MoBYNetBase",
    "UnlabeledBatch",
    "channel_statistics",
    "unlabeled_batch",
]

#: Label value that marks the rows of an unlabelled batch.
UNLABELED = -1

#: Parameters added after estimators were first pickled, with what those ran with.
_ADDED_PARAMS = {"precision": "fp32", "n_threads": None, "weights": None}

#: Network parameters that are top-level estimator parameters (one route only).
NETWORK_PARAMS = ("projection_dim", "head_layout", "queue_size", "temperature", "weights")

# set on an estimator while it builds a network whose saved state follows
_STATE_FOLLOWS = "_state_follows"


class UnlabeledBatch(tuple):
    """An ``(X, y)`` training batch of unlabelled images; ``y`` is all ``UNLABELED``.

    Labelled batches are plain tuples. The subclass lets the training step
    (and any callback that wants to) tell the two kinds apart without looking
    at the values.
    """

    __slots__ = ()


class IndexStream:
    """Endless stream of indices in ``range(n)``: one fresh permutation per pass.

    Every index appears once per pass (sampling without replacement); a
    padded epoch continues into the next pass.

    Parameters
    ----------
    n : int
        Number of rows.
    shuffle : bool
        False: passes in order.
    generator : torch.Generator
        Source of the permutations.
    """

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator) -> None:
        self.n = n
        self.shuffle = shuffle
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0
        self.last = torch.empty(0, dtype=torch.long)

    def take(self, size: int) -> torch.Tensor:
        """The next ``size`` indices, shape (size,), int64."""
        chunks = []
        while size > 0:
            if self._position >= self._order.shape[0]:
                self._order = (
                    torch.randperm(self.n, generator=self.generator)
                    if self.shuffle
                    else torch.arange(self.n)
                )
                self._position = 0
            chunk = self._order[self._position : self._position + size]
            self._position += chunk.shape[0]
            size -= chunk.shape[0]
            chunks.append(chunk)
        self.last = torch.cat(chunks)  # the rows of the batch being trained on
        return self.last


def unlabeled_batch(
    X: np.ndarray | LazyImages, stream: IndexStream, size: int, sort: bool = False
) -> UnlabeledBatch:
    """The next ``size`` images of ``X`` drawn by ``stream``, as an :class:`UnlabeledBatch`.

    ``sort=True`` reads the rows in index order (friendlier to a memmap).
    ``X`` may be a lazy pool: only the batch's rows are read.
    """
    rows = stream.take(size).numpy()
    if sort:
        rows = np.sort(rows)
    x = torch.from_numpy(X[rows])
    return UnlabeledBatch((x, torch.full((x.shape[0],), UNLABELED)))


def channel_statistics(parts: Iterable[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over image arrays, without joining them.

    Parameters
    ----------
    parts : iterable of ndarray of shape (N_i, C, H, W)
        Same C, H and W in every part; read once, one part at a time (the
        chunks of a lazy pool work).

    Returns
    -------
    mean, std : list of float, length C
    """
    count, total, squares = 0, 0.0, 0.0
    for p in parts:
        count += p.shape[0] * p.shape[2] * p.shape[3]
        total = total + p.sum(axis=(0, 2, 3), dtype=np.float64)
        squares = squares + np.einsum("nchw,nchw->c", p, p, dtype=np.float64)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.tolist(), std.tolist()


def _statistics_parts(parts: Iterable[np.ndarray | LazyImages]) -> Iterator[np.ndarray]:
    # a lazy pool gives its statistics chunk by chunk (a sample of a large one)
    for part in parts:
        if isinstance(part, LazyImages):
            yield from part.statistics_chunks()
        else:
            yield part


class FitState:
    """Per-fit scratch state: seeded generators, the views and the last batch's keys.

    Lives only during a fit (torch generators do not pickle); subclasses add
    their batch schedule.

    Parameters
    ----------
    loader_seed, view_seed : int
        Seeds of the batch order and of the augmentations.
    device : str
        Device of the view generator (the views run on the model's device).
    views : (callable, callable)
        The weak and the strong view.
    """

    def __init__(self, loader_seed: int, view_seed: int, device: str, views: tuple) -> None:
        self.loader_generator = torch.Generator().manual_seed(int(loader_seed))
        self.view_generator = torch.Generator(device=torch.device(device)).manual_seed(
            int(view_seed)
        )
        self.views = views
        self.pending_keys: tuple[torch.Tensor, torch.Tensor] | None = None
        # a moby_al_plugin.distributed.TrainingSync when the fit runs over several processes
        self.sync: Any = None


class MoBYNetBase(NeuralNet):
    """What both MoBY estimators share on top of skorch's ``NeuralNet``.

    Not an estimator on its own: subclasses set the hyper-parameters
    (``backbone``, ``weights``, ``projection_dim``, ``head_layout``, ``queue_size``,
    ``temperature``, ``views``, ``momentum_base``, ``precision``,
    ``n_threads``, ``random_state``), call
    :meth:`_record_images` and set ``init_seed_``, ``total_steps_`` and
    ``momentum_step_`` before training, and keep a :class:`FitState` in
    ``_fit_state`` while a fit runs.
    """

    # ---------------------------------------------------------- parameters
    def __setattr__(self, name: str, value: Any) -> None:
        # skorch registers every torch module set on a net as one of its
        # components and refuses one outside ``initialize``; ``backbone`` is a
        # hyper-parameter (a template copied at each cold fit), not a component
        if name == "backbone":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _get_param_names(self):
        # skorch takes every attribute not ending in "_" as a parameter;
        # private scratch values (a leading "_") are none
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_fit_state", None)  # generators and the pool stay out of pickles
        return state

    def __setstate__(self, state):
        # pickled before these parameters existed: float32, torch's threads, the loss on
        # every labelled batch (what such an estimator trained with)
        for name, value in _ADDED_PARAMS.items():
            state.setdefault(name, value)
        super().__setstate__(state)

    # ------------------------------------------------------------- network
    def _record_images(self, parts: list[np.ndarray | LazyImages]) -> None:
        """Record the image shape and the per-channel statistics of the training images.

        ``parts`` are checked images in memory or lazy pools
        (:class:`moby_al_plugin.data.pools.LazyImages`); a lazy pool of more than
        :data:`~moby_al_plugin.data.pools.STATISTICS_SAMPLE` images gives its
        statistics from that many evenly spaced images.
        """
        self.n_channels_in_ = int(parts[0].shape[1])
        self.image_shape_ = (int(parts[0].shape[2]), int(parts[0].shape[3]))
        self.input_mean_, self.input_std_ = channel_statistics(_statistics_parts(parts))

    def _network_kwargs(self, n_classes: int = 1) -> dict[str, Any]:
        """The network's arguments: each of the shared names has one route."""
        module_params = self.get_params_for("module")
        for name in NETWORK_PARAMS:
            if name in module_params:
                if module_params[name] != getattr(self, name):
                    raise MoBYALError(
                        f"{name} is given twice with different values: {name}="
                        f"{getattr(self, name)!r} and module__{name}={module_params[name]!r}. "
                        f"Set only {name}=..."
                    )
                del module_params[name]
        backbone = self.backbone
        if isinstance(backbone, torch.nn.Module):
            backbone = copy.deepcopy(backbone)  # every cold fit starts from the given weights
        kwargs = {
            "backbone": backbone,
            "in_channels": self.n_channels_in_,
            "n_classes": n_classes,
            "image_size": tuple(self.image_shape_),
            "projection_dim": self.projection_dim,
            "head_layout": self.head_layout,
            "queue_size": self.queue_size,
            "temperature": self.temperature,
            "input_mean": self.input_mean_,
            "input_std": self.input_std_,
        }
        weights, read = self._backbone_weights()
        if weights is not None:  # only then: a custom module class need not know them
            kwargs["weights"] = weights
            # a saved state or a pretrained encoder's weights follow: nothing to read
            kwargs["load_weights"] = read and not self.__dict__.get(_STATE_FOLLOWS, False)
        kwargs.update(module_params)
        return kwargs

    def _n_classes(self) -> int:
        """Width of the classifier head (1 for a net without classes)."""
        return 1

    def _backbone_weights(self) -> tuple[Any, bool]:
        """The network's backbone weights and whether to read them (``weights``, True)."""
        return self.weights, True

    def _check_weights(self) -> None:
        """Refuse bad ``weights`` before any training: unknown, misplaced or missing.

        Only the name or the file is checked here (no tensor is read); whether
        the tensors fit the backbone is checked when the network is built,
        still before the first step.

        Raises
        ------
        MoBYALError
            An unknown weights name (with the valid ones), a name for a
            backbone without torchvision weights, or no file at the path.
        """
        if self.weights is not None:
            resolve_weights(self.backbone, self.weights)

    def _initialize_for_state(self) -> MoBYNetBase:
        """``initialize()`` for a saved state loaded next: the backbone's weights are not read."""
        self.__dict__[_STATE_FOLLOWS] = True
        try:
            return self.initialize()
        finally:
            self.__dict__.pop(_STATE_FOLLOWS, None)

    def _start_weights(self, module: torch.nn.Module) -> None:
        """Overwrite fresh weights before training (a pretrained start); none by default."""

    def initialize_module(self):
        """Build the network from the shapes recorded by ``fit``.

        The weights are drawn from a generator seeded by ``init_seed_`` (None:
        torch's global generator), so the global torch seed is left alone;
        :meth:`_start_weights` may then overwrite them.
        """
        if not hasattr(self, "n_channels_in_"):
            raise MoBYALError(
                f"{type(self).__name__} builds its network from the training data: call fit first."
            )
        kwargs = self._network_kwargs(self._n_classes())
        seed = getattr(self, "init_seed_", None)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(int(seed))
            # skorch's initialized_instance only instantiates a class; given an
            # instance it would keep it, so the module is always built here
            module = self.module(**kwargs) if isinstance(self.module, type) else self.module
        self._start_weights(module)
        self.module_ = module.to(self.device)
        return self

    # ------------------------------------------------------------ hardware
    def _resolve_hardware(self) -> None:
        """Check ``precision`` and ``n_threads`` and record the precision of this fit.

        Raises
        ------
        MoBYALError
            (a ``ValueError``) an unknown precision or a bad thread count, by name.
        """
        self.precision_ = resolve_precision(self.precision, self.device)
        check_n_threads(self.n_threads)

    def _autocast(self):
        """The forward pass's autocast: bfloat16 where ``precision`` resolves to it here.

        During a fit, the precision resolved when it started (no check per batch);
        at inference it is resolved anew, so a model fitted in bfloat16 and
        unpickled on a machine without it predicts in float32.
        """
        if getattr(self, "_fit_state", None) is not None:
            return autocast(self.precision_, self.device)
        return autocast(resolve_precision(self.precision, self.device), self.device)

    def _threads(self):
        """torch's threads for a fit or an inference pass (``n_threads``), restored after."""
        return torch_threads(self.n_threads)

    def infer(self, x, **fit_params):
        """skorch's forward pass, under the estimator's autocast; the output is float32."""
        with self._autocast():
            out = super().infer(x, **fit_params)
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out

    # ------------------------------------------------------------ training
    def _contrastive_pass(self, batch) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Both views of a batch through the network; the keys wait for :meth:`train_step`.

        Returns
        -------
        contrastive : torch.Tensor
            The symmetric MoBY loss of the batch (scalar).
        weak_features : torch.Tensor of shape (B, F)
            Online encoder features of the weak view.
        y : Any
            The batch's targets, as skorch gave them.
        """
        self._set_training(True)
        state = self._fit_state
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        weak, strong = state.views
        x_weak = weak(x, state.view_generator)
        x_strong = strong(x, state.view_generator)
        if state.sync is not None:
            # over several processes: shuffled keys of the global batch, gradients through DDP
            contrastive, weak_features, state.pending_keys = state.sync.contrastive_forward(
                x_weak, x_strong
            )
            return contrastive, weak_features, yi
        contrastive, weak_features, k_strong, k_weak = self.module_.contrastive_forward(
            x_weak, x_strong
        )
        state.pending_keys = (k_strong, k_weak)
        return contrastive, weak_features, yi

    def train_step(self, batch, **fit_params):
        """skorch's optimiser step, then the queues and the momentum update.

        The momentum follows a cosine over the true number of steps of the
        fit (``total_steps_``); ``momentum_step_`` counts the steps taken.
        Over several processes the queues take the keys of the global batch,
        the batch-norm statistics are averaged over the ranks and the loss
        recorded is the global batch's (:mod:`moby_al_plugin.distributed`).
        """
        step = super().train_step(batch, **fit_params)
        state = self._fit_state
        if state.pending_keys is not None:
            m = cosine_momentum(self.momentum_step_, self.total_steps_, base=self.momentum_base)
            advance_key_branch(self.module_, *state.pending_keys, momentum=m)
            state.pending_keys = None
        if state.sync is not None:
            step["loss"] = state.sync.after_step(step["loss"])
        self.momentum_step_ += 1
        return step

    def _end_fit(self) -> None:
        self.__dict__.pop("_fit_state", None)

    # ----------------------------------------------------------- inference
    def _embed(self, X: np.ndarray | LazyImages) -> np.ndarray:
        """Encoder features of clean images in eval mode, shape (N, F), float32.

        ``X`` is read in chunks, so a lazy pool is never held whole. The pass
        runs in the estimator's precision (bfloat16 features are returned as
        float32) on its ``n_threads``.
        """
        module = self.module_
        was_training = module.training
        module.eval()
        chunk = max(int(self.batch_size), 256)
        out = []
        try:
            with torch.no_grad(), self._threads(), self._autocast():
                for images in iter_chunks(X, chunk):
                    batch = torch.as_tensor(images, device=self.device)
                    out.append(module.embed(batch).float().cpu().numpy())
        finally:
            module.train(was_training)
        return np.concatenate(out).astype(np.float32, copy=False)

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

import copy
import hashlib
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._atomic import atomic_write
from ._validation import check_device, check_images
from .augment import get_view_pair
from .exceptions import MoBYALError
from .moby import DEFAULT_HEAD_LAYOUT, MoBYNetwork, advance_key_branch, cosine_momentum

__all__ = ["MoBYEncoder", "load_encoder", "check_fitted_encoder", "load_pretrained_weights"]

_FILE_FORMAT = "moby_al_plugin.MoBYEncoder"
_FILE_VERSION = 1
# parameters that do not change what a fit computes: a checkpoint written
# with other values of these still resumes
_RESUME_NEUTRAL = ("verbose", "checkpoint", "refit")


def _even_sizes(n: int, batch_size: int) -> list[int]:
    batches = math.ceil(n / batch_size)
    base, extra = divmod(n, batches)
    return [base + 1] * extra + [base] * (batches - extra)


def _fingerprint(X: np.ndarray) -> str:
    """A cheap identity of an image array: its shape and 64 spread-out images."""
    rows = X[:: max(1, X.shape[0] // 64)]
    digest = hashlib.sha1(np.ascontiguousarray(rows).tobytes())
    digest.update(repr(X.shape).encode())
    return digest.hexdigest()


def _atomic_save(payload: dict, path: str | os.PathLike) -> None:
    """``torch.save`` whole or not at all: an interruption keeps the previous file."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


def _read(path: str | os.PathLike) -> dict:
    if not os.path.isfile(path):
        raise MoBYALError(f"no saved MoBYEncoder at {os.fspath(path)!r}.")
    # the file holds the estimator's parameters as well as its weights, so it
    # is unpickled: load only files you wrote or trust
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
        raise MoBYALError(f"{os.fspath(path)!r} is not a file written by MoBYEncoder.save.")
    if payload.get("version", 0) > _FILE_VERSION:
        raise MoBYALError(f"{os.fspath(path)!r} was written by a newer version of the package.")
    return payload


class MoBYEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """The MoBY contrastive network trained on unlabelled images, as a transformer.

    ``fit(X)`` trains the online encoder, projector and predictor with the
    symmetric MoBY loss between a weak and a strong view of each image, the
    key branch following as a moving average; no label is used.
    ``transform(X)`` returns the encoder's pooled features of clean images.

    Inside a ``Pipeline`` that is refitted on labelled data (modAL refits its
    estimator at every ``teach``), the default ``refit=False`` keeps a fitted
    encoder as it is: later ``fit`` calls return at once and the pretraining
    is never replaced by one on the few labelled images. ``clone`` keeps it
    too (see :meth:`__sklearn_clone__`).

    Parameters
    ----------
    backbone : str or nn.Module, default="small_cnn"
        Encoder name (see :func:`moby_al_plugin.available_backbones`) or a
        module mapping (B, C, H, W) images to (B, F) features (deep-copied
        at every fit).
    projection_dim : int, default=128
        Width of the projector and predictor outputs.
    head_layout : {"bn_relu", "mlp", "linear"}, default="bn_relu"
        Projector/predictor layout (see :class:`moby_al_plugin.moby.ProjectionHead`).
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
        Initial learning rate of SGD (momentum 0.9), decayed along a cosine
        to 0 over the steps of the fit.
    weight_decay : float, default=5e-4
        SGD weight decay.
    momentum_base : float, default=0.99
        Momentum of the key branch at the first step; a cosine takes it to 1.
    refit : bool, default=False
        False: once fitted, ``fit`` keeps the weights and returns ``self``
        (the images it receives are only checked for shape). True: every
        ``fit`` trains anew.
    checkpoint : str, path or None, default=None
        File written atomically after every epoch with the training state.
        A ``fit`` that finds it, written with the same settings and data,
        continues after its last complete epoch (a finished one is only
        loaded); other settings or data are refused. The finished file is
        also readable with :meth:`load`.
    device : str, default="cpu"
        ``"cpu"`` or ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order and views.
    verbose : int, default=0
        1 shows a progress bar over the epochs (tqdm).

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
    n_epochs_done_ : int
        Complete epochs of training.
    history_ : list of dict
        Per epoch: ``epoch``, mean contrastive ``loss``, ``seconds``.
    fit_seconds_ : float
        Training time of the epochs run by this process (resumed epochs
        keep their recorded time in ``history_``).

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
        refit: bool = False,
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.backbone = backbone
        self.projection_dim = projection_dim
        self.head_layout = head_layout
        self.queue_size = queue_size
        self.temperature = temperature
        self.views = views
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum_base = momentum_base
        self.refit = refit
        self.checkpoint = checkpoint
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ sklearn
    def __sklearn_clone__(self) -> MoBYEncoder:
        """A fitted encoder with ``refit=False`` clones into a fitted copy.

        ``clone`` normally returns an unfitted estimator; here that would
        throw away a pretraining that ``GridSearchCV``, ``cross_val_score``
        or modAL's committees never mean to redo, and that a later ``fit``
        with ``refit=False`` would keep anyway. The copy is deep, so clones
        stay independent. Unfitted encoders, and any with ``refit=True``,
        clone as usual.
        """
        if not self.refit and self.__sklearn_is_fitted__():
            return copy.deepcopy(self)
        return super().__sklearn_clone__()

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    @property
    def _n_features_out(self) -> int:
        return self.feature_dim_

    # ------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        for name in ("max_epochs", "batch_size", "projection_dim", "queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise MoBYALError(f"{name} must be an int, got {value!r}.")
        if self.batch_size < 2:
            raise MoBYALError(
                f"batch_size must be at least 2 (batch norm and the contrastive loss need "
                f"two images per step), got {self.batch_size}.")
        if self.max_epochs < 1:
            raise MoBYALError(f"max_epochs must be at least 1, got {self.max_epochs}.")
        if not self.lr > 0:
            raise MoBYALError(f"lr must be positive, got {self.lr}.")
        if not 0.0 <= self.momentum_base <= 1.0:
            raise MoBYALError(f"momentum_base must lie in [0, 1], got {self.momentum_base}.")
        check_device(self.device)

    @staticmethod
    def _checked_images(X: Any) -> np.ndarray:
        try:
            return check_images(X)
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
    def _network_kwargs(self) -> dict[str, Any]:
        backbone = self.backbone
        if isinstance(backbone, torch.nn.Module):
            backbone = copy.deepcopy(backbone)
        return {
            "backbone": backbone,
            "in_channels": self.n_channels_in_,
            "n_classes": 1,
            "image_size": tuple(self.image_shape_),
            "projection_dim": self.projection_dim,
            "head_layout": self.head_layout,
            "queue_size": self.queue_size,
            "temperature": self.temperature,
            "input_mean": self.input_mean_,
            "input_std": self.input_std_,
        }

    def _resume_key(self) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in _RESUME_NEUTRAL}
        return repr(sorted(params.items()))

    def fit(self, X: Any, y: Any = None,
            on_epoch_end: Callable[[MoBYEncoder, int], None] | None = None) -> MoBYEncoder:
        """Train the contrastive network on the images ``X``; labels are ignored.

        Parameters
        ----------
        X : array-like of shape (N, H, W), (N, C, H, W) or (N, H, W, C)
            Unlabelled images, uint8 or float in [0, 1], N >= 2.
        y : ignored
            Accepted for ``Pipeline`` compatibility.
        on_epoch_end : callable or None
            Called as ``on_epoch_end(self, epoch)`` after every complete epoch
            (1-based), when ``transform`` and :meth:`save` already work; for
            example to save snapshots at chosen epochs.

        Returns
        -------
        self

        Raises
        ------
        MoBYALError
            Fewer than two images, NaN/inf, a wrong rank, values outside
            [0, 1], ``batch_size`` < 2 or another bad setting, images of
            another shape than a kept fit's, or a checkpoint written with
            other settings or data. Raised before any training.
        """
        if not self.refit and self.__sklearn_is_fitted__():
            self.check_image_shape(self._checked_images(X))
            return self
        self._check_settings()
        X = self._checked_images(X)
        if X.shape[0] < 2:
            raise MoBYALError(
                f"MoBYEncoder.fit needs at least 2 images, got {X.shape[0]}.")
        for name in ("network_", "feature_dim_"):
            self.__dict__.pop(name, None)
        self.n_channels_in_ = int(X.shape[1])
        self.image_shape_ = (int(X.shape[2]), int(X.shape[3]))
        mean = X.mean(axis=(0, 2, 3), dtype=np.float64)
        squares = np.einsum("nchw,nchw->c", X, X, dtype=np.float64) / (
            X.shape[0] * X.shape[2] * X.shape[3])
        self.input_mean_ = mean.tolist()
        self.input_std_ = np.sqrt(np.maximum(squares - mean**2, 0.0)).tolist()
        seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, size=3)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeds[0]))
            network = MoBYNetwork(**self._network_kwargs()).to(self.device)
        weak, strong = get_view_pair(self.views, self.n_channels_in_)
        optimizer = torch.optim.SGD(network.parameters(), lr=self.lr, momentum=0.9,
                                    weight_decay=self.weight_decay)
        loader_gen = torch.Generator().manual_seed(int(seeds[1]))
        view_gen = torch.Generator(device=torch.device(self.device)).manual_seed(int(seeds[2]))
        sizes = _even_sizes(X.shape[0], self.batch_size)
        total_steps = self.max_epochs * len(sizes)
        self.history_ = []
        start_epoch = 0
        data_key = _fingerprint(X)
        if self.checkpoint is not None and os.path.isfile(self.checkpoint):
            saved = _read(self.checkpoint)
            training = saved.get("training") or {}
            if training.get("settings") != self._resume_key() or \
                    training.get("data") != data_key:
                raise MoBYALError(
                    f"the checkpoint {os.fspath(self.checkpoint)!r} was written with other "
                    "settings or other images; delete it or choose another checkpoint path.")
            network.load_state_dict(saved["state"])
            optimizer.load_state_dict(training["optimizer"])
            loader_gen.set_state(training["loader_generator"])
            view_gen.set_state(training["view_generator"].to(view_gen.get_state().device))
            self.history_ = list(saved["attributes"]["history_"])
            start_epoch = int(saved["attributes"]["n_epochs_done_"])
        self.network_ = network
        self.feature_dim_ = int(network.feature_dim)
        self.n_epochs_done_ = start_epoch
        self.fit_seconds_ = 0.0

        from tqdm.auto import tqdm

        bar = tqdm(total=self.max_epochs, initial=start_epoch, desc="MoBYEncoder",
                   unit="epoch", disable=not self.verbose, leave=False)
        step = start_epoch * len(sizes)
        try:
            for epoch in range(start_epoch, self.max_epochs):
                began = time.perf_counter()
                network.train()
                order = torch.randperm(X.shape[0], generator=loader_gen).numpy()
                losses = []
                position = 0
                for size in sizes:
                    rows = np.sort(order[position : position + size])
                    position += size
                    x = torch.from_numpy(X[rows]).to(self.device)
                    lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * step / total_steps))
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    loss, _, k_strong, k_weak = network.contrastive_forward(
                        weak(x, view_gen), strong(x, view_gen))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    momentum = cosine_momentum(step, total_steps, base=self.momentum_base)
                    advance_key_branch(network, k_strong, k_weak, momentum)
                    step += 1
                    losses.append(float(loss.detach()))
                seconds = time.perf_counter() - began
                self.fit_seconds_ += seconds
                self.n_epochs_done_ = epoch + 1
                self.history_.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                                      "seconds": seconds})
                if self.checkpoint is not None:
                    _atomic_save(self._payload(training={
                        "settings": self._resume_key(),
                        "data": data_key,
                        "optimizer": optimizer.state_dict(),
                        "loader_generator": loader_gen.get_state(),
                        "view_generator": view_gen.get_state(),
                    }), self.checkpoint)
                bar.set_postfix(loss=f"{self.history_[-1]['loss']:.3f}", refresh=False)
                bar.update(1)
                if on_epoch_end is not None:
                    network.eval()
                    on_epoch_end(self, epoch + 1)
        finally:
            bar.close()
        network.eval()
        return self

    # ----------------------------------------------------------- inference
    def transform(self, X: Any) -> np.ndarray:
        """Encoder features of clean (un-augmented) images, in eval mode.

        Parameters
        ----------
        X : array-like of images
            Same channels and size as the training images.

        Returns
        -------
        ndarray of shape (N, feature_dim_), float32

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The encoder is not fitted.
        MoBYALError
            Bad images, or images of another shape than the training images.
        """
        check_is_fitted(self)
        X = self._checked_images(X)
        self.check_image_shape(X)
        network = self.network_
        was_training = network.training
        network.eval()
        out = []
        try:
            with torch.no_grad():
                for start in range(0, X.shape[0], max(self.batch_size, 256)):
                    batch = torch.from_numpy(X[start : start + max(self.batch_size, 256)])
                    out.append(network.embed(batch.to(self.device)).float().cpu().numpy())
        finally:
            network.train(was_training)
        return np.concatenate(out).astype(np.float32, copy=False)

    # ----------------------------------------------------------- files
    def _payload(self, training: dict | None = None) -> dict:
        attributes = {name: getattr(self, name) for name in (
            "n_channels_in_", "image_shape_", "input_mean_", "input_std_", "feature_dim_",
            "n_epochs_done_", "history_")}
        return {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "params": self.get_params(deep=False),
            "attributes": attributes,
            "state": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "training": training,
        }

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
        _atomic_save(self._payload(), path)

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
        payload = _read(path)
        params = dict(payload["params"])
        if device is not None:
            params["device"] = device
        encoder = cls(**params)
        for name, value in payload["attributes"].items():
            setattr(encoder, name, value)
        encoder.image_shape_ = tuple(encoder.image_shape_)
        encoder.fit_seconds_ = 0.0
        network = MoBYNetwork(**encoder._network_kwargs())
        network.load_state_dict(payload["state"])
        encoder.network_ = network.to(encoder.device).eval()
        return encoder


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
            "pretrained= holds a MoBYEncoder that is not fitted (a clone with refit=True, "
            "for instance). Fit it first, or save it with encoder.save(path) and pass "
            "pretrained=path, which survives clone, pickling and grid searches.")
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
    required = [k for k in target if k.split(".")[0] in ("encoder", "encoder_momentum")
                or k in ("input_mean", "input_std")]
    missing = [k for k in required if k not in source or source[k].shape != target[k].shape]
    if missing:
        raise MoBYALError(
            f"the pretrained encoder (backbone {encoder.backbone!r}) does not fit this "
            f"network's encoder; first mismatch: {missing[0]!r}. Use the same backbone.")
    chosen = {k: v for k, v in source.items()
              if not k.startswith("classifier.") and k in target and v.shape == target[k].shape}
    network.load_state_dict(chosen, strict=False)

"""The MoBY network: online and momentum branches, key queues and a classifier head.

The pieces follow the MoBYv2AL paper (Caramalau et al., BMVC 2022):

* online branch: encoder -> projector -> predictor, plus a classifier head on
  the encoder's pooled features;
* momentum (key) branch: encoder and projector, an exponential moving average
  of the online ones, never trained by gradient;
* two queues of past keys, one per view, used as negatives.

The module's ``forward`` only classifies. Everything that changes state (the
momentum update, the queues) is an explicit free function that the training
step calls, so evaluation can never alter the model.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import build_backbone, check_input_size
from .input_resize import ResizeImages
from .moby_loss import moby_contrastive_loss, unit_rows
from .momentum import enqueue, frozen_running_stats, momentum_update
from .pretrained_weights import BackboneWeights, load_backbone_weights, resolve_weights

__all__ = [
    "DEFAULT_HEAD_LAYOUT",
    "HEAD_LAYOUTS",
    "ProjectionHead",
    "MoBYNetwork",
    "advance_key_branch",
]

#: Projector/predictor layouts. "mlp" (Linear-BN-ReLU-Linear, as in MoCo v2,
#: BYOL and MoBY) ends in a linear layer; "bn_relu" is the MoBYv2AL paper's
#: single Linear-BN-ReLU layer, whose final ReLU makes every query-key
#: similarity non-negative; "linear" is the bare Linear of the authors' code.
HEAD_LAYOUTS = ("mlp", "bn_relu", "linear")
#: The layout used when none is given: the paper's, which led "mlp" in a
#: short one-seed probe (docs/results.md); the learner benchmark's
#: ``--head-layout`` reruns the comparison at full length.
DEFAULT_HEAD_LAYOUT = "bn_relu"


class ProjectionHead(nn.Module):
    """A projector or predictor head.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths.
    layout : {"mlp", "bn_relu", "linear"}
        ``"mlp"``: Linear(in, hidden) + BatchNorm + ReLU + Linear(hidden, out);
        ``"bn_relu"``: the paper's Linear + BatchNorm + ReLU; ``"linear"``: the
        bare Linear of the authors' released code.
    hidden_dim : int or None
        Hidden width of ``"mlp"``; None means ``2 * out_dim``.

    Raises
    ------
    ValueError
        If ``layout`` is unknown.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        layout: str = DEFAULT_HEAD_LAYOUT,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if layout not in HEAD_LAYOUTS:
            raise ValueError(f"Unknown head layout {layout!r}; choose one of {HEAD_LAYOUTS}.")
        if layout == "mlp":
            hidden = 2 * out_dim if hidden_dim is None else int(hidden_dim)
            self.layers = nn.Sequential(
                nn.Linear(in_dim, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, out_dim),
            )
        elif layout == "bn_relu":
            self.layers = nn.Sequential(
                nn.Linear(in_dim, out_dim, bias=False),
                nn.BatchNorm1d(out_dim),
                nn.ReLU(inplace=True),
            )
        else:
            self.layers = nn.Sequential(nn.Linear(in_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MoBYNetwork(nn.Module):
    """Online and momentum branches of MoBY with a classifier head.

    Parameters
    ----------
    backbone : str or nn.Module
        Encoder name for :func:`moby_al_plugin.network.backbones.build_backbone`, or a
        module mapping (B, C, H, W) images to (B, F) features (then give
        ``feature_dim``).
    in_channels : int
        Channels of the input images.
    n_classes : int
        Number of classes of the classifier head.
    image_size : tuple of int or None
        (H, W) of the inputs, used to check that the backbone accepts them.
    feature_dim : int or None
        Width of a user-supplied encoder's output; None measures it with one
        dummy forward at ``image_size`` (32x32 when that is None too).
    projection_dim : int
        Width of the projector and predictor outputs (128 in the paper).
    head_layout : {"mlp", "bn_relu", "linear"}
        Layout of the projector and predictor (see :class:`ProjectionHead`).
    queue_size : int
        Number of keys per queue (4096 in the paper).
    temperature : float
        InfoNCE temperature (0.2 in the paper).
    input_mean, input_std : sequence of float or None
        Per-channel statistics used to standardise [0, 1] inputs (not with
        torchvision weights by name, which bring their own).
    strong_view_running_stats : bool
        Whether strong views update the online branch's batch-norm running
        averages. False (default) keeps them to weak views, the ones closest
        to the clean images evaluation sees; True is the original behaviour.
    channels_last : bool
        Keep the convolution weights and the standardised inputs in
        ``torch.channels_last`` memory format (True by default): the same
        results, and about 1.4 times the training throughput of ``small_cnn``
        on CPU (``benchmarks/learner.py --study throughput``).
    weights : str, path, BackboneWeights or None
        Pretrained weights of the encoder, loaded into it before the key
        branch copies it: a torchvision weights name (``"DEFAULT"``,
        ``"IMAGENET1K_V1"``, ...) of a torchvision ``backbone`` or a
        state-dict file (see :mod:`moby_al_plugin.network.pretrained_weights`).
        With a name, the inputs are standardised with the weights' mean and
        std instead of ``input_mean``/``input_std`` and then resized to the
        weights' crop size (224x224 for most; :class:`ResizeImages`), so the
        encoder sees what the weights were trained on, at the cost of its
        work at that size. A file keeps the inputs as they are.
    load_weights : bool
        False builds the network for ``weights`` (architecture, input size
        and normalisation) without reading them: a saved state follows.

    Attributes
    ----------
    queue_strong, queue_weak : Tensor of shape (projection_dim, queue_size)
        Registered buffers of past keys of each view.
    queue_pointer : Tensor of shape (1,)
        Write position shared by both queues (they receive equal batches).
    input_resize : ResizeImages or None
        The resize in front of the encoder (torchvision weights by name).
    """

    def __init__(
        self,
        backbone: str | nn.Module = "small_cnn",
        in_channels: int = 3,
        n_classes: int = 10,
        image_size: tuple[int, int] | None = None,
        feature_dim: int | None = None,
        projection_dim: int = 128,
        head_layout: str = DEFAULT_HEAD_LAYOUT,
        queue_size: int = 4096,
        temperature: float = 0.2,
        input_mean: Sequence[float] | None = None,
        input_std: Sequence[float] | None = None,
        strong_view_running_stats: bool = False,
        channels_last: bool = True,
        weights: str | os.PathLike | BackboneWeights | None = None,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        self.strong_view_running_stats = strong_view_running_stats
        self.channels_last = bool(channels_last)
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        spec = weights
        if weights is not None and not isinstance(weights, BackboneWeights):
            spec = resolve_weights(backbone, weights, check_file=load_weights)
        crop = None if spec is None else spec.crop_size
        # with weights by name, the encoder sees images at their crop size
        encoder_size = (crop, crop) if crop is not None else image_size
        if isinstance(backbone, str):
            self.encoder, feature_dim = build_backbone(
                backbone, in_channels, encoder_size, weights=spec, load_weights=load_weights
            )
        else:
            if spec is not None and load_weights:
                load_backbone_weights(
                    backbone, spec.read_state_dict(), name=type(backbone).__name__
                )
            if feature_dim is None:
                feature_dim = check_input_size(
                    backbone, in_channels, encoder_size or (32, 32), type(backbone).__name__
                )
            self.encoder = backbone
        self.register_module("input_resize", None if crop is None else ResizeImages(crop))
        statistics = None if spec is None else spec.input_statistics(in_channels)
        if statistics is not None:  # the weights' own, in place of the pool's
            input_mean, input_std = statistics
        self.feature_dim = int(feature_dim)
        self.temperature = float(temperature)
        self.projector = ProjectionHead(self.feature_dim, projection_dim, head_layout)
        self.predictor = ProjectionHead(projection_dim, projection_dim, head_layout)
        self.classifier = nn.Linear(self.feature_dim, n_classes)

        self.encoder_momentum = copy.deepcopy(self.encoder)
        self.projector_momentum = copy.deepcopy(self.projector)
        for p in self.momentum_parameters():
            p.requires_grad_(False)

        mean = torch.zeros(in_channels) if input_mean is None else torch.as_tensor(input_mean)
        std = torch.ones(in_channels) if input_std is None else torch.as_tensor(input_std)
        self.register_buffer("input_mean", mean.float().view(1, -1, 1, 1))
        self.register_buffer("input_std", std.float().clamp_min(1e-6).view(1, -1, 1, 1))
        self.register_buffer(
            "queue_strong", F.normalize(torch.randn(projection_dim, queue_size), dim=0)
        )
        self.register_buffer(
            "queue_weak", F.normalize(torch.randn(projection_dim, queue_size), dim=0)
        )
        self.register_buffer("queue_pointer", torch.zeros(1, dtype=torch.long))
        if self.channels_last:
            self.to(memory_format=torch.channels_last)  # 4-D weights only

    def momentum_parameters(self):
        """Parameters of the key branch (excluded from the optimiser's updates)."""
        yield from self.encoder_momentum.parameters()
        yield from self.projector_momentum.parameters()

    def online_modules(self) -> nn.Module:
        """The online encoder and projector as one module, for the momentum update."""
        return nn.ModuleList([self.encoder, self.projector])

    def momentum_modules(self) -> nn.Module:
        """The key encoder and projector, in the same order as :meth:`online_modules`."""
        return nn.ModuleList([self.encoder_momentum, self.projector_momentum])

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "input_resize" not in self._modules:  # pickled before weights existed
            self.register_module("input_resize", None)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images as the encoder takes them: standardised, then resized if weights ask."""
        x = (x - self.input_mean) / self.input_std
        if self.input_resize is not None:  # after the cheap standardisation, at the small size
            x = self.input_resize(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features (B, F) of [0, 1] images (B, C, H, W)."""
        return self.encoder(self.standardise(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes). Touches no queue and no momentum weight."""
        return self.classifier(self.embed(x))

    @torch.no_grad()
    def momentum_keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised keys (B, projection_dim) of [0, 1] views from the key branch."""
        features = self.encoder_momentum(self.standardise(x))
        return unit_rows(self.projector_momentum(features))

    def contrastive_forward(
        self,
        x_weak: torch.Tensor,
        x_strong: torch.Tensor,
        keys: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both views through both branches.

        Parameters
        ----------
        x_weak, x_strong : Tensor of shape (B, C, H, W)
            The two views of a batch, in [0, 1].
        keys : (Tensor, Tensor) or None
            ``(k_strong, k_weak)`` already computed by :meth:`momentum_keys`
            (training over several processes computes them on a shuffled
            batch, :mod:`moby_al_plugin.distributed`); None computes them here.

        Returns
        -------
        loss : Tensor, scalar
            The symmetric InfoNCE loss against the current queues.
        weak_features : Tensor of shape (B, F)
            Online encoder features of the weak view, for the classifier head.
        k_strong, k_weak : Tensor of shape (B, projection_dim)
            Normalised keys, to be enqueued by the caller after the loss.
        """
        feats_weak = self.embed(x_weak)
        q_weak = unit_rows(self.predictor(self.projector(feats_weak)))
        if self.strong_view_running_stats:
            feats_strong = self.embed(x_strong)
            q_strong = unit_rows(self.predictor(self.projector(feats_strong)))
        else:
            with frozen_running_stats(self.encoder, self.projector, self.predictor):
                feats_strong = self.embed(x_strong)
                q_strong = unit_rows(self.predictor(self.projector(feats_strong)))
        if keys is None:
            keys = (self.momentum_keys(x_strong), self.momentum_keys(x_weak))
        k_strong, k_weak = keys
        loss = moby_contrastive_loss(
            q_strong,
            q_weak,
            k_strong,
            k_weak,
            # the buffers need no copy: keys are enqueued after backward
            self.queue_strong.detach(),
            self.queue_weak.detach(),
            self.temperature,
        )
        return loss, feats_weak, k_strong, k_weak

    def enqueue_keys(self, k_strong: torch.Tensor, k_weak: torch.Tensor) -> None:
        """Push a batch of keys into both queues (one shared pointer)."""
        start = self.queue_pointer.clone()  # advanced by the first call only
        enqueue(self.queue_strong, start, k_strong)
        enqueue(self.queue_weak, self.queue_pointer, k_weak)


def advance_key_branch(
    network: MoBYNetwork, k_strong: torch.Tensor, k_weak: torch.Tensor, momentum: float
) -> None:
    """After an optimiser step: enqueue the step's keys, then move the key branch.

    The one place where a training step changes the non-trained state of a
    :class:`MoBYNetwork`; shared by every estimator that trains one.
    """
    network.enqueue_keys(k_strong, k_weak)
    momentum_update(network.online_modules(), network.momentum_modules(), momentum)

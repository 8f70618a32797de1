"""Encoder backbones for MoBYv2AL.

This module only *builds encoders*: networks that map a batch of images of
shape ``(B, C, H, W)`` to pooled feature vectors of shape ``(B, feature_dim)``
(global average pooling, flattened).  Projection/prediction heads, the
momentum encoder and the task classifier live elsewhere in the library.

Backbones are looked up in a registry in the style of timm's: builders are
added to a dictionary with the :func:`register_backbone` decorator and looked
up by name in :func:`build_backbone`.  Names that are not registered fall
back to torchvision's classification models (``torchvision.models``), built
with their classification layer removed, and without pretrained weights
unless ``weights`` asks for some (:mod:`moby_al_plugin.network.pretrained_weights`).

Registered backbones
--------------------
``resnet18``
    CIFAR-style ResNet-18 (3x3 stride-1 stem, no max-pool), 512 features.
``small_cnn``
    Three conv/BatchNorm/ReLU blocks (32-64-128 channels), 128 features.
``lenet5``
    LeNet-5 for small grey-scale images (final map flattened), 84 features.
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torchvision
from torch import nn

from .._validation import check_integer
from .pretrained_weights import BackboneWeights, load_backbone_weights, resolve_weights

__all__ = [
    "LeNet5",
    "SmallCNN",
    "available_backbones",
    "build_backbone",
    "check_input_size",
    "register_backbone",
]

#: A backbone builder takes ``in_channels`` (keyword) and returns
#: ``(encoder, feature_dim)``.
BackboneBuilder = Callable[..., tuple[nn.Module, int]]
_BuilderT = TypeVar("_BuilderT", bound=BackboneBuilder)

_REGISTRY: dict[str, BackboneBuilder] = {}

# Image size used to find the feature width of a torchvision model when the
# caller gives no ``image_size``; models that cannot take 32x32 images
# (e.g. ViT, which needs its configured 224x224) are retried at 224x224.
_DEFAULT_PROBE_SIZES: tuple[int, ...] = (32, 224)

# Extra constructor arguments for torchvision models whose defaults do not
# suit a plain encoder: auxiliary classifiers would make the training-mode
# output a named tuple, and ``init_weights=True`` silences the warning about
# a future change of their default initialisation.
_TORCHVISION_KWARGS: dict[str, dict[str, object]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}
# ... so the keys of those auxiliary classifiers in pretrained weights are
# not the encoder's, like the classification layer's
_AUXILIARY_PREFIXES: dict[str, tuple[str, ...]] = {
    "googlenet": ("aux1.", "aux2."),
    "inception_v3": ("AuxLogits.",),
}


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
def register_backbone(name: str) -> Callable[[_BuilderT], _BuilderT]:
    """Register a backbone builder under ``name`` (decorator).

    Parameters
    ----------
    name : str
        Name used with :func:`build_backbone`.  A registered name takes
        precedence over a torchvision model of the same name.

    Returns
    -------
    Callable
        Decorator that stores the builder in the registry and returns it
        unchanged.  The builder is called as ``builder(in_channels=C)`` and
        must return ``(encoder, feature_dim)``, where ``encoder`` maps
        ``(B, C, H, W)`` images to ``(B, feature_dim)`` features.  A builder
        with an ``image_size`` parameter also receives the ``(H, W)`` given to
        :func:`build_backbone` (or None), to size layers from the data.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is empty or already registered.

    Examples
    --------
    >>> @register_backbone("tiny")  # doctest: +SKIP
    ... def build_tiny(in_channels: int) -> tuple[nn.Module, int]:
    ...     net = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1),
    ...                         nn.AdaptiveAvgPool2d(1), nn.Flatten())
    ...     return net, 8
    """
    if not isinstance(name, str):
        raise TypeError(f"backbone name must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError("backbone name must be a non-empty string")

    def decorator(builder: _BuilderT) -> _BuilderT:
        if not callable(builder):
            raise TypeError(f"backbone builder for {name!r} must be callable")
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return decorator


def available_backbones() -> list[str]:
    """List the registered backbone names.

    Returns
    -------
    list of str
        Sorted registered names.  Torchvision classification model names
        (``torchvision.models.list_models(module=torchvision.models)``) are
        accepted by :func:`build_backbone` as well but are not listed here.
    """
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------
# Building and checking
# --------------------------------------------------------------------------
def build_backbone(
    name: str,
    in_channels: int = 3,
    image_size: tuple[int, int] | int | None = None,
    weights: str | os.PathLike | BackboneWeights | None = None,
    *,
    load_weights: bool = True,
) -> tuple[nn.Module, int]:
    """Build an encoder by name.

    Parameters
    ----------
    name : str
        A registered backbone (see :func:`available_backbones`) or a
        torchvision classification model name such as ``"resnet34"``,
        ``"vgg16_bn"`` or ``"mobilenet_v3_small"`` (built with
        ``weights=None`` unless ``weights`` is given).
    in_channels : int, default 3
        Number of input image channels.
    image_size : tuple of (int, int) or int or None, default None
        Height and width of the images the encoder will see.  When given,
        the encoder is checked to accept that size (see
        :func:`check_input_size`) so that a too-small input fails here with a
        clear message rather than during training.  With torchvision weights
        by name, the encoder expects inputs resized and normalised as they
        say (``BackboneWeights.crop_size``, ``mean``, ``std``): the caller
        does that (:class:`~moby_al_plugin.network.MoBYNetwork` does).
    weights : str, path, BackboneWeights or None, default None
        Pretrained weights loaded into the encoder: a torchvision weights
        name of a torchvision model (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...)
        or a state-dict file (see
        :func:`~moby_al_plugin.network.pretrained_weights.resolve_weights`).
        With weights, a name that is a torchvision model is built as that
        model, also ``"resnet18"`` (torchvision's ImageNet ResNet-18, not the
        CIFAR-style registered one); the classification layer's keys are
        ignored and every other key must fit; the first convolution is
        adapted to ``in_channels`` (summed RGB filters for one channel).
    load_weights : bool, default True
        False builds the encoder for ``weights`` (its architecture and first
        convolution) without reading them, for a saved state loaded next.

    Returns
    -------
    encoder : torch.nn.Module
        Module mapping ``(B, in_channels, H, W)`` float images to
        ``(B, feature_dim)`` features.
    feature_dim : int
        Width of the feature vectors.

    Raises
    ------
    TypeError
        If ``name`` is not a string, or ``in_channels``/``image_size`` are not
        integers.
    ValueError
        If ``name`` is unknown, ``in_channels`` < 1, ``image_size`` is not
        positive, or the encoder cannot process images of ``image_size``;
        a :class:`~moby_al_plugin.MoBYALError` (a ``ValueError``) for
        ``weights`` that are unknown, missing or do not fit (see
        :func:`~moby_al_plugin.network.pretrained_weights.resolve_weights` and
        :func:`~moby_al_plugin.network.pretrained_weights.load_backbone_weights`).
    """
    if not isinstance(name, str):
        raise TypeError(f"backbone name must be a str, got {type(name).__name__}")
    in_channels = _as_in_channels(in_channels)
    size = None if image_size is None else _as_hw(image_size)
    spec = weights
    if weights is not None and not isinstance(weights, BackboneWeights):
        spec = resolve_weights(name, weights, check_file=load_weights)

    feature_dim: int | None
    head: frozenset[str] = frozenset()
    if spec is not None and spec.architecture is not None:
        # the weights are a torchvision model's: built as that model
        encoder, head = _torchvision_encoder_and_head(spec.architecture, in_channels)
        feature_dim = None
    elif name in _REGISTRY:
        encoder, feature_dim = _call_builder(name, in_channels, size)
    elif name in _torchvision_names():
        encoder = _build_torchvision_encoder(name, in_channels)
        feature_dim = None  # measured below by a dummy forward
    else:
        raise ValueError(
            f"unknown backbone {name!r}; registered backbones: "
            f"{', '.join(available_backbones())}. Torchvision classification "
            "model names (torchvision.models.list_models("
            "module=torchvision.models), e.g. 'resnet34', 'vgg16_bn', "
            "'mobilenet_v3_small') are accepted too."
        )
    if spec is not None and load_weights:
        note = ""
        if name in _REGISTRY and spec.architecture is not None:
            note = (
                f". With weights, {name!r} is torchvision's model of that name (ImageNet "
                "stem), not the registered CIFAR-style one"
            )
        load_backbone_weights(encoder, spec.read_state_dict(), ignore=head, name=name, note=note)

    if size is not None:
        measured = check_input_size(encoder, in_channels, size, name)
        if feature_dim is not None and measured != feature_dim:
            raise ValueError(
                f"backbone {name!r} declares feature_dim={feature_dim} but its "
                f"encoder outputs {measured} features"
            )
        feature_dim = measured
    elif feature_dim is None:
        feature_dim = _measure_feature_dim(encoder, in_channels, name)
    return encoder, feature_dim


def check_input_size(
    encoder: nn.Module,
    in_channels: int,
    image_size: tuple[int, int] | int,
    name: str,
) -> int:
    """Check that ``encoder`` accepts images of ``image_size``.

    Runs one dummy forward pass (a batch of 2 zero images, eval mode, no
    gradients) and restores every submodule's training mode afterwards.  The
    global random number generator is not touched.

    Parameters
    ----------
    encoder : torch.nn.Module
        Encoder mapping ``(B, in_channels, H, W)`` to ``(B, feature_dim)``.
    in_channels : int
        Number of input channels.
    image_size : tuple of (int, int) or int
        Image height and width (an int means a square image).
    name : str
        Backbone name, used in error messages.

    Returns
    -------
    int
        The feature width produced for this input size.

    Raises
    ------
    ValueError
        If the forward pass fails (typically a feature map shrinking below a
        kernel's size), an intermediate feature map collapses to zero size,
        or the output is not a non-empty ``(B, feature_dim)`` tensor.
    """
    in_channels = _as_in_channels(in_channels)
    height, width = _as_hw(image_size)
    ref = next(encoder.parameters(), None)
    if ref is None:
        ref = next(encoder.buffers(), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    # Zeros rather than random values: the check must not consume the global
    # RNG, or merely building a backbone would change later random draws.
    dummy = torch.zeros(2, in_channels, height, width, device=device, dtype=dtype)

    too_small = (
        f"images of {height}x{width} are too small for backbone {name!r} "
        f"(or not accepted by it) with {in_channels} input channel(s)"
    )
    small = [f"{n!r}" for n in ("small_cnn", "lenet5", "resnet18") if n != name]
    advice = (
        "Use larger images (resize or pad them) or a backbone meant for small "
        f"inputs such as {' or '.join(small)}."
    )
    modes = {module: module.training for module in encoder.modules()}
    hooks = [
        module.register_forward_hook(_make_collapse_hook(module_name))
        for module_name, module in encoder.named_modules()
    ]
    encoder.eval()
    try:
        with torch.no_grad():
            out = encoder(dummy)
    except _CollapsedFeatureMap as err:
        raise ValueError(f"{too_small}: {err}. {advice}") from err
    except (RuntimeError, AssertionError) as err:
        # RuntimeError: kernel/pooling larger than the remaining feature map;
        # AssertionError: e.g. ViT's torch._assert on a fixed image size.
        raise ValueError(f"{too_small}: {err}. {advice}") from err
    finally:
        for hook in hooks:
            hook.remove()
        for module, mode in modes.items():
            module.training = mode

    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"backbone {name!r} must return features of shape (batch, "
            f"feature_dim); got {got} for a batch of 2 images of {height}x{width}"
        )
    if out.shape[1] == 0:
        raise ValueError(f"{too_small}: the feature vector is empty. {advice}")
    return int(out.shape[1])


class _CollapsedFeatureMap(RuntimeError):
    """Raised from a forward hook when a feature map has zero size."""


def _make_collapse_hook(module_name: str) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and output.numel() == 0:
            where = module_name or type(module).__name__
            raise _CollapsedFeatureMap(
                f"the output of {where!r} collapsed to shape {tuple(output.shape)}"
            )

    return hook


def _measure_feature_dim(encoder: nn.Module, in_channels: int, name: str) -> int:
    """Feature width by a dummy forward at the first size the model accepts."""
    last_error: ValueError | None = None
    for size in _DEFAULT_PROBE_SIZES:
        try:
            return check_input_size(encoder, in_channels, size, name)
        except ValueError as err:
            last_error = err
    raise ValueError(
        f"could not determine the feature width of backbone {name!r} at image "
        f"sizes {_DEFAULT_PROBE_SIZES}; pass image_size explicitly"
    ) from last_error


def _call_builder(
    name: str, in_channels: int, image_size: tuple[int, int] | None = None
) -> tuple[nn.Module, int]:
    builder = _REGISTRY[name]
    kwargs: dict[str, object] = {"in_channels": in_channels}
    if "image_size" in inspect.signature(builder).parameters:
        kwargs["image_size"] = image_size  # builders sized from the data
    result = builder(**kwargs)
    if (
        not isinstance(result, tuple)
        or len(result) != 2
        or not isinstance(result[0], nn.Module)
        or isinstance(result[1], bool)
        or not isinstance(result[1], numbers.Integral)
        or result[1] < 1
    ):
        raise TypeError(
            f"builder of backbone {name!r} must return (nn.Module, positive int), "
            f"got {result!r:.200}"
        )
    return result[0], int(result[1])


def _as_in_channels(in_channels: int) -> int:
    return check_integer(in_channels, "in_channels")


def _as_hw(image_size: tuple[int, int] | int) -> tuple[int, int]:
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        size: Sequence[object] = (image_size, image_size)
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        size = image_size
    else:
        raise TypeError(f"image_size must be an int or a (height, width) pair, got {image_size!r}")
    height, width = (check_integer(value, "image_size") for value in size)
    return height, width


# --------------------------------------------------------------------------
# torchvision models
# --------------------------------------------------------------------------
def _torchvision_names() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def _build_torchvision_encoder(name: str, in_channels: int) -> nn.Module:
    return _torchvision_encoder_and_head(name, in_channels)[0]


def _torchvision_encoder_and_head(name: str, in_channels: int) -> tuple[nn.Module, frozenset[str]]:
    """The encoder and the state-dict keys of what it left out (the classifier)."""
    kwargs = _TORCHVISION_KWARGS.get(name, {})
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    if in_channels != 3:
        _replace_first_conv(model, in_channels, name)
    whole = set(model.state_dict())
    _remove_classifier(model, name)
    head = whole - set(model.state_dict())
    return model, frozenset(head) | frozenset(_AUXILIARY_PREFIXES.get(name, ()))


def _replace_first_conv(model: nn.Module, in_channels: int, name: str) -> None:
    """Swap the first Conv2d (module order) for one with ``in_channels`` inputs."""
    found = next(
        ((path, module) for path, module in model.named_modules() if isinstance(module, nn.Conv2d)),
        None,
    )
    if found is None:
        raise ValueError(f"torchvision model {name!r} has no Conv2d to adapt")
    path, old = found
    if in_channels % old.groups:
        raise ValueError(
            f"cannot adapt the first convolution of {name!r} (groups={old.groups}) "
            f"to {in_channels} input channels"
        )
    # Fresh weights with PyTorch's default initialisation: pretrained weights,
    # when asked for, are adapted to the channels as they are loaded.
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=old.groups,
        bias=old.bias is not None,
        padding_mode=old.padding_mode,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, new)


def _remove_classifier(model: nn.Module, name: str) -> None:
    """Replace the final classification layer by Identity (in place)."""
    for attr in ("fc", "classifier", "head"):
        layer = getattr(model, attr, None)
        if isinstance(layer, nn.Linear):
            setattr(model, attr, nn.Identity())
            # GoogLeNet/Inception apply a top-level dropout just before fc;
            # features should not be randomly zeroed.
            if isinstance(getattr(model, "dropout", None), nn.Dropout):
                model.dropout = nn.Identity()
            return
        if isinstance(layer, nn.Sequential) and _strip_sequential_head(layer):
            return
    heads = getattr(model, "heads", None)  # VisionTransformer
    if isinstance(heads, nn.Module):
        model.heads = nn.Identity()
        return
    raise ValueError(f"cannot locate the classification layer of torchvision model {name!r}")


def _strip_sequential_head(head: nn.Sequential) -> bool:
    """Drop the last Linear (or 1x1 Conv2d, SqueezeNet) and the dropout before it.

    Layers after it (SqueezeNet's ReLU and pooling) are kept, so the module
    still outputs pooled features; for VGG/AlexNet this yields the 4096-d
    penultimate features.
    """
    layers = list(head)
    for index in range(len(layers) - 1, -1, -1):
        if isinstance(layers[index], (nn.Linear, nn.Conv2d)):
            head[index] = nn.Identity()
            before = index - 1
            while before >= 0 and isinstance(layers[before], nn.Dropout):
                head[before] = nn.Identity()
                before -= 1
            return True
    return False


# --------------------------------------------------------------------------
# Registered backbones
# --------------------------------------------------------------------------
@register_backbone("resnet18")
def _build_cifar_resnet18(in_channels: int = 3) -> tuple[nn.Module, int]:
    """CIFAR-style ResNet-18 (512 features).

    The ImageNet stem (7x7 stride-2 conv + stride-2 max-pool) shrinks a 32x32
    image to 8x8 before the first residual stage, losing most spatial detail
    of small images; the CIFAR variant used by MoBYv2AL keeps full resolution
    with a 3x3 stride-1 conv and no max-pool.
    """
    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    # Same initialisation torchvision's ResNet gives its own convolutions.
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()  # forward() already average-pools and flattens
    return net, 512


class SmallCNN(nn.Module):
    """Small conv net for small images.

    Each block is a 3x3 conv (padding 1), BatchNorm and ReLU; a 2x2 max-pool
    follows every block but the last, so with three blocks an 8x8 image is
    still 2x2 before global average pooling.

    Parameters
    ----------
    in_channels : int, default 3
        Number of input channels.
    widths : sequence of int, default (32, 64, 128)
        Output channels of the blocks; the last is the feature width.

    Attributes
    ----------
    feature_dim : int
        Width of the output features (``widths[-1]``).
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        in_channels = _as_in_channels(in_channels)
        widths = tuple(widths)
        if not widths:
            raise ValueError("widths must be a non-empty sequence of positive ints, got ()")
        widths = tuple(check_integer(w, "widths") for w in widths)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate(widths):
            layers += [
                # No conv bias: the following BatchNorm has its own shift.
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if index < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = int(widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, feature_dim)`` features."""
        return torch.flatten(self.pool(self.features(x)), 1)


class LeNet5(nn.Module):
    """LeNet-5 for small grey-scale images (84 features).

    Two 5x5 convs (6 and 16 channels, ReLU, 2x2 max-pool), the final map
    flattened, then Linear -> 120, ReLU, Linear -> 84, ReLU. As in the classic
    net, the 16x5x5 = 400 flattened inputs appear at 32x32, and also at 28x28,
    where the first conv is padded by 2 as LeNet-5 is usually run on MNIST.
    Smaller images (the 8x8 digits) get padding on the second conv too; the
    first linear layer is sized from ``image_size`` when the net is built.

    Parameters
    ----------
    in_channels : int, default 1
        Number of input channels.
    image_size : (int, int) or int, default (32, 32)
        Height and width of the input images.

    Attributes
    ----------
    feature_dim : int
        Width of the output features (84).
    flat_dim : int
        Number of inputs of the first linear layer (16 x h x w).
    """

    def __init__(self, in_channels: int = 1, image_size: tuple[int, int] | int = (32, 32)) -> None:
        super().__init__()
        in_channels = _as_in_channels(in_channels)
        height, width = _as_hw(image_size)
        pad1 = 2 if min(height, width) < 32 else 0
        h, w = (height + 2 * pad1 - 4) // 2, (width + 2 * pad1 - 4) // 2
        pad2 = 2 if min(h, w) < 10 else 0
        h, w = (h + 2 * pad2 - 4) // 2, (w + 2 * pad2 - 4) // 2
        if h < 1 or w < 1:
            raise ValueError(f"images of {height}x{width} are too small for backbone 'lenet5'")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=pad2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.flat_dim = 16 * h * w
        self.head = nn.Sequential(
            nn.Linear(self.flat_dim, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
        )
        self.feature_dim = 84

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, 84)`` features."""
        return self.head(torch.flatten(self.features(x), 1))


@register_backbone("small_cnn")
def _build_small_cnn(in_channels: int = 3) -> tuple[nn.Module, int]:
    net = SmallCNN(in_channels)
    return net, net.feature_dim


@register_backbone("lenet5")
def _build_lenet5(
    in_channels: int = 1, image_size: tuple[int, int] | None = None
) -> tuple[nn.Module, int]:
    net = LeNet5(in_channels, (32, 32) if image_size is None else image_size)
    return net, net.feature_dim

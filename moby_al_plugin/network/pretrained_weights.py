"""Pretrained weights for a backbone: torchvision's, by name, or a state-dict file.

A ``weights`` setting (the estimators' ``weights=``, ``--weights`` of the
``moby-al`` command) is either

* the name of weights of a torchvision classification model, as
  ``torchvision.models.get_model_weights(backbone)`` lists them (``"DEFAULT"``,
  ``"IMAGENET1K_V1"``, ... or the qualified ``"ResNet18_Weights.IMAGENET1K_V1"``).
  The backbone is then built as that torchvision model (also for ``"resnet18"``,
  whose registered builder is otherwise the CIFAR-style variant), and its inputs
  are resized and normalised as the weights expect (their ``transforms()``: crop
  size, mean and standard deviation). The tensors are read from torch's cache,
  ``torch.hub.get_dir()/checkpoints/``, where torchvision keeps its downloads;
  weights not there yet are downloaded into it once, which needs internet that
  one time (copying the file there from another machine works as well);
* or the path of a file saved with ``torch.save(model.state_dict(), path)``, read
  with ``torch.load(path, weights_only=True)``. Its keys and shapes must match the
  backbone: a torchvision model's (the backbone name is a torchvision model
  name) or a registered backbone's (``small_cnn``, ``lenet5``). A file carries no
  preprocessing: the inputs keep the pool's size and channel statistics.

The classification layer of a torchvision model is not part of the backbone, so
its keys are ignored; every other key must be there with the backbone's shape.
Images with another number of channels than the weights' (grey-scale digits or
Fashion-MNIST and RGB weights) get the first convolution adapted: see
:func:`adapt_input_channels`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import urllib.parse
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from ..exceptions import DataNotFoundError, MoBYALError

__all__ = [
    "BackboneWeights",
    "adapt_input_channels",
    "load_backbone_weights",
    "read_state_dict",
    "resolve_weights",
    "torchvision_state_dict",
    "weights_identity",
    "weights_names",
]

# what makes a ``weights`` string a file rather than a weights name
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl")

# DenseNet's published weights predate a renaming of its layers: torchvision
# renames "denselayer1.norm.1.weight" to "denselayer1.norm1.weight" on loading
_DENSENET_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


@dataclass(frozen=True)
class BackboneWeights:
    """A ``weights`` setting resolved for one backbone, before any tensor is read.

    Made by :func:`resolve_weights`; :meth:`read_state_dict` reads the tensors.

    Attributes
    ----------
    backbone : str
        The backbone's name (a module's class name for a module).
    source : str
        What the weights are: the qualified torchvision name (for example
        ``"ResNet18_Weights.IMAGENET1K_V1"``, also when ``"DEFAULT"`` was
        given) or the file's absolute path.
    architecture : str or None
        The torchvision model the backbone is built as; None: the registered
        backbone (or the given module) itself.
    torchvision_weights : torchvision.models.WeightsEnum or None
        The torchvision weights of a name; None for a file.
    path : str or None
        The state-dict file; None for a name.
    crop_size : int or None
        Height and width the weights expect their inputs at (their
        ``transforms().crop_size``); None for a file (the pool's size is kept).
    mean, std : tuple of float or None
        Per-channel normalisation the weights were trained with (their
        ``transforms()``); None for a file (the pool's statistics are kept).
    """

    backbone: str
    source: str
    architecture: str | None
    torchvision_weights: Any = None
    path: str | None = None
    crop_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def read_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights' tensors (on the CPU).

        A name goes through :func:`torchvision_state_dict` (torch's cache, or a
        download into it); a file through :func:`read_state_dict`.
        """
        if self.torchvision_weights is not None:
            state = dict(torchvision_state_dict(self.torchvision_weights))
        else:
            state = read_state_dict(str(self.path))
        return _renamed_legacy_keys(self.architecture, state)

    def input_statistics(self, in_channels: int) -> tuple[list[float], list[float]] | None:
        """The weights' mean and std for ``in_channels`` input channels, or None (a file).

        With another channel count than the weights', the statistics follow
        the first convolution's adaptation (:func:`adapt_input_channels`): one
        channel takes the average of the weights' means and of their stds;
        more channels repeat them in turn.
        """
        if self.mean is None or self.std is None:
            return None
        return _adapt_statistics(self.mean, in_channels), _adapt_statistics(self.std, in_channels)


def weights_names(backbone: str) -> list[str]:
    """The weights names torchvision has for ``backbone``, ``"DEFAULT"`` first.

    Parameters
    ----------
    backbone : str
        A torchvision classification model name, for example ``"resnet18"``.

    Returns
    -------
    list of str
        ``["DEFAULT", "IMAGENET1K_V1", ...]``; empty for a name that is not a
        torchvision classification model (the registered ``small_cnn`` and
        ``lenet5``), which has no weights by name.
    """
    if not isinstance(backbone, str) or backbone not in _torchvision_models():
        return []
    members = torchvision.models.get_model_weights(backbone).__members__
    return ["DEFAULT", *(name for name in members if name != "DEFAULT")]


def resolve_weights(
    backbone: str | nn.Module,
    weights: str | os.PathLike,
    *,
    check_file: bool = True,
) -> BackboneWeights:
    """What ``weights`` means for ``backbone``: checked, but no tensor read.

    Parameters
    ----------
    backbone : str or nn.Module
        The backbone name (registered or torchvision) or a module.
    weights : str or path
        A torchvision weights name of that backbone (see :func:`weights_names`)
        or the path of a state-dict file. A string is taken for a file when
        such a file exists, when it holds a path separator or when it ends in
        ``.pt``, ``.pth``, ``.bin``, ``.ckpt``, ``.tar`` or ``.pkl``.
    check_file : bool, default True
        Refuse a file that does not exist. False resolves a setting whose
        tensors will not be read (a saved network's state follows).

    Returns
    -------
    BackboneWeights

    Raises
    ------
    MoBYALError
        (a ``ValueError``) an unknown weights name (the message lists the
        backbone's names), a name for a backbone that has no torchvision
        weights (the message names the backbone), or a value that is neither
        a string nor a path.
    DataNotFoundError
        (a ``MoBYALError``) ``check_file`` and no file at the path given; the
        message names the path.
    """
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str) or not weights:
        raise MoBYALError(
            f"weights must be a torchvision weights name or a file path, got {weights!r}"
        )
    name = backbone if isinstance(backbone, str) else type(backbone).__name__
    architecture = backbone if isinstance(backbone, str) and _is_torchvision(backbone) else None
    if os.path.isfile(weights) or _looks_like_path(weights):
        if check_file and not os.path.isfile(weights):
            raise DataNotFoundError(f"weights file {weights!r}: no such file")
        return BackboneWeights(name, os.path.abspath(weights), architecture, path=weights)
    if architecture is None:
        raise MoBYALError(
            f"backbone {name!r} has no pretrained weights by name ({weights!r}): names are "
            "torchvision's, for torchvision classification models such as 'resnet18', "
            "'resnet50' or 'mobilenet_v3_small'; give one of those as the backbone, or a "
            "state-dict file that fits this backbone"
        )
    enum = torchvision.models.get_model_weights(architecture)
    member = weights.removeprefix(f"{enum.__name__}.")
    if member not in enum.__members__:
        if not check_file:  # a file on another machine: nothing will be read from it
            return BackboneWeights(name, os.path.abspath(weights), architecture, path=weights)
        raise MoBYALError(
            f"unknown weights {weights!r} for backbone {name!r} (and no such file); valid "
            f"names: {', '.join(weights_names(architecture))}"
        )
    chosen = enum[member]
    crop, mean, std = _preprocessing(chosen)
    return BackboneWeights(
        name,
        f"{enum.__name__}.{chosen.name}",
        architecture,
        torchvision_weights=chosen,
        crop_size=crop,
        mean=mean,
        std=std,
    )


def weights_identity(weights: str | os.PathLike) -> str:
    """What identifies ``weights`` in a cache key: the name, or the file's content.

    Parameters
    ----------
    weights : str or path
        A weights name or an existing state-dict file.

    Returns
    -------
    str
        The name as given, or ``"sha1:<hex digest of the file's bytes>"``: a
        file changed in place gives another key.
    """
    text = os.fspath(weights)
    if not os.path.isfile(text):
        return text
    digest = hashlib.sha1()
    with open(text, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha1:{digest.hexdigest()}"


def torchvision_state_dict(weights: Any, progress: bool = True) -> Mapping[str, torch.Tensor]:
    """The tensors of torchvision weights, from torch's cache or downloaded into it.

    Looks for the file where torchvision keeps it,
    ``torch.hub.get_dir()/checkpoints/<the file name of weights.url>``. When it
    is not there, downloads it into that place (so this needs internet once
    per weights and machine; the hash in the file name is checked). Tests
    replace this function: nothing else downloads.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum
        For example ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1``.
    progress : bool, default True
        Show a progress bar while downloading.

    Returns
    -------
    mapping of str to torch.Tensor

    Raises
    ------
    MoBYALError
        The download failed (no internet, for example); the message names
        the URL and the file to copy there instead.
    """
    url = weights.url
    file_name = os.path.basename(urllib.parse.urlparse(url).path)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", file_name)
    if os.path.isfile(cached):
        return torch.load(cached, map_location="cpu", weights_only=True)
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=progress, check_hash=True, weights_only=True
        )
    except (urllib.error.URLError, OSError) as exc:
        raise MoBYALError(
            f"could not download the weights {weights} from {url} ({exc}); they are read "
            f"from {cached}: copy that file there from a machine with internet, or give "
            "the path of a state-dict file instead"
        ) from exc


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save``, read with ``weights_only=True`` onto the CPU.

    Raises
    ------
    DataNotFoundError
        No file at ``path`` (the message names it).
    MoBYALError
        The file is not a mapping of names to tensors (a MoBYEncoder file
        belongs to ``pretrained=`` or ``--encoder``, for example).
    """
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise DataNotFoundError(f"weights file {text!r}: no such file")
    try:
        state = torch.load(text, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise MoBYALError(
            f"weights file {text!r} is not a state dict torch can read safely "
            f"(save one with torch.save(model.state_dict(), path)): {exc}"
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise MoBYALError(
            f"weights file {text!r} does not hold a state dict (a mapping of names to "
            "tensors); save one with torch.save(model.state_dict(), path)"
        )
    return dict(state)


def load_backbone_weights(
    encoder: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    ignore: Collection[str] = (),
    name: str = "backbone",
    note: str = "",
) -> None:
    """Copy ``state_dict`` into ``encoder``, every key and shape checked first.

    The first convolution is adapted when the weights have another number of
    input channels than ``encoder`` (:func:`adapt_input_channels`); nothing
    else is changed. ``encoder`` is left untouched when the check fails.

    Parameters
    ----------
    encoder : torch.nn.Module
        The backbone.
    state_dict : mapping of str to torch.Tensor
        The weights.
    ignore : collection of str
        Keys of ``state_dict`` the encoder does not have on purpose (the
        classification layer of a torchvision model); one that ends in ``"."``
        is a prefix and ignores every key under it.
    name : str
        The backbone's name, for the messages.
    note : str
        Appended to a mismatch's message (a hint about the backbone).

    Raises
    ------
    MoBYALError
        (a ``ValueError``) a key of the encoder missing from the weights, a
        key of the weights the encoder lacks, or a shape mismatch; the
        message names the first (in the encoder's order, then the weights')
        with both shapes, and how many there are in all.
    """
    target = encoder.state_dict()
    prefixes = tuple(key for key in ignore if key.endswith("."))
    given = {
        key: value
        for key, value in state_dict.items()
        if key not in ignore and not key.startswith(prefixes)
    }
    first_conv = _first_conv_key(encoder)
    if first_conv is not None and first_conv in given:
        weight, wanted = given[first_conv], target[first_conv]
        if (
            weight.ndim == 4
            and weight.shape[1] != wanted.shape[1]
            and (weight.shape[0], *weight.shape[2:]) == (wanted.shape[0], *wanted.shape[2:])
        ):
            given[first_conv] = adapt_input_channels(weight, int(wanted.shape[1]))
    problems = []
    for key, value in target.items():
        if key not in given:
            problems.append(
                f"{key!r} is missing from the weights (the backbone has shape {tuple(value.shape)})"
            )
        elif tuple(given[key].shape) != tuple(value.shape):
            problems.append(
                f"{key!r} has shape {tuple(given[key].shape)} in the weights and "
                f"{tuple(value.shape)} in the backbone"
            )
    problems += [
        f"{key!r} (shape {tuple(value.shape)}) is in the weights but not in the backbone"
        for key, value in given.items()
        if key not in target
    ]
    if problems:
        more = f" ({len(problems)} mismatches in all)" if len(problems) > 1 else ""
        raise MoBYALError(f"the weights do not fit backbone {name!r}: {problems[0]}{more}{note}")
    with torch.no_grad():
        for key, value in target.items():
            value.copy_(given[key].to(dtype=value.dtype))


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first convolution's kernel for ``in_channels`` inputs instead of its own.

    Input channel ``i`` of the pretrained kernel goes to channel
    ``i % in_channels``: for one channel (grey-scale images and RGB weights)
    the RGB filters are summed, so a grey image gives the response the RGB
    network gives the same image in colour-less RGB. For more channels than
    the weights have, the filters repeat in turn, scaled by ``old / new``
    channels so that the response keeps its size.

    Parameters
    ----------
    weight : torch.Tensor of shape (out, old_channels, kh, kw)
    in_channels : int

    Returns
    -------
    torch.Tensor of shape (out, in_channels, kh, kw)
    """
    old = int(weight.shape[1])
    if in_channels == old:
        return weight
    if in_channels < old:
        out = weight.new_zeros((weight.shape[0], in_channels, *weight.shape[2:]))
        for index in range(old):
            out[:, index % in_channels] += weight[:, index]
        return out
    rows = [index % old for index in range(in_channels)]
    return weight[:, rows] * (old / in_channels)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _torchvision_models() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


def _is_torchvision(name: str) -> bool:
    return name in _torchvision_models()


def _looks_like_path(text: str) -> bool:
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    return any(sep in text for sep in separators) or text.lower().endswith(_FILE_SUFFIXES)


def _preprocessing(weights: Any) -> tuple[int | None, tuple | None, tuple | None]:
    """Crop size, mean and std of torchvision weights (their ``transforms()``)."""
    transform = weights.transforms()
    crop = getattr(transform, "crop_size", None)
    mean = getattr(transform, "mean", None)
    std = getattr(transform, "std", None)
    if isinstance(crop, Sequence):
        crop = crop[0]
    return (
        None if crop is None else int(crop),
        None if mean is None else tuple(float(v) for v in mean),
        None if std is None else tuple(float(v) for v in std),
    )


def _adapt_statistics(values: Sequence[float], in_channels: int) -> list[float]:
    old = len(values)
    if in_channels >= old:
        return [float(values[index % old]) for index in range(in_channels)]
    groups: list[list[float]] = [[] for _ in range(in_channels)]
    for index, value in enumerate(values):
        groups[index % in_channels].append(float(value))
    return [sum(group) / len(group) for group in groups]


def _first_conv_key(encoder: nn.Module) -> str | None:
    """The state-dict key of the first Conv2d's kernel (module order), or None."""
    for path, module in encoder.named_modules():
        if isinstance(module, nn.Conv2d) and module.groups == 1:
            return f"{path}.weight" if path else "weight"
        if isinstance(module, nn.Conv2d):
            return None  # a grouped first convolution is not adapted
    return None


def _renamed_legacy_keys(
    architecture: str | None, state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    if architecture is None or not architecture.startswith("densenet"):
        return state
    return {_DENSENET_KEY.sub(r"\1\2.", key): value for key, value in state.items()}

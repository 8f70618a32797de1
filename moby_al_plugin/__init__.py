"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator); ``mobyv2al_sampling``, ``coreset_sampling`` and
``random_sampling`` are modAL query strategies.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Public names and their modules. They are imported on first use, so the
# command line starts at once instead of waiting for torch and torchvision.
_PUBLIC = {
    "ViewAugmenter": "augment",
    "get_view_pair": "augment",
    "available_backbones": "backbones",
    "build_backbone": "backbones",
    "register_backbone": "backbones",
    "ImageDataset": "datasets",
    "available_datasets": "datasets",
    "initial_labeled_indices": "datasets",
    "load_dataset": "datasets",
    "load_digits_dataset": "datasets",
    "load_fashion_mnist": "datasets",
    "load_image_folder": "datasets",
    "load_npz": "datasets",
    "load_torchvision_dataset": "datasets",
    "subsample_indices": "datasets",
    "MoBYClassifier": "estimator",
    "MoBYEncoder": "encoder",
    "load_encoder": "encoder",
    "STRATEGIES": "experiment",
    "ExperimentConfig": "config",
    "ExperimentError": "config",
    "run_experiment": "experiment",
    "k_center_greedy": "kcenter",
    "MoBYNetwork": "moby",
    "plot_learning_curves": "plots",
    "coreset_sampling": "strategies",
    "mobyv2al_sampling": "strategies",
    "random_sampling": "strategies",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # static tools see the real imports
    from .augment import ViewAugmenter, get_view_pair
    from .backbones import available_backbones, build_backbone, register_backbone
    from .config import ExperimentConfig, ExperimentError
    from .datasets import (
        ImageDataset,
        available_datasets,
        initial_labeled_indices,
        load_dataset,
        load_digits_dataset,
        load_fashion_mnist,
        load_image_folder,
        load_npz,
        load_torchvision_dataset,
        subsample_indices,
    )
    from .encoder import MoBYEncoder, load_encoder
    from .estimator import MoBYClassifier
    from .experiment import STRATEGIES, run_experiment
    from .kcenter import k_center_greedy
    from .moby import MoBYNetwork
    from .plots import plot_learning_curves
    from .strategies import coreset_sampling, mobyv2al_sampling, random_sampling

__version__ = "0.1.0"

__all__ = [
    "MoBYClassifier",
    "MoBYEncoder",
    "load_encoder",
    "MoBYNetwork",
    "mobyv2al_sampling",
    "coreset_sampling",
    "random_sampling",
    "k_center_greedy",
    "ViewAugmenter",
    "get_view_pair",
    "available_backbones",
    "build_backbone",
    "register_backbone",
    "ImageDataset",
    "available_datasets",
    "load_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_torchvision_dataset",
    "load_image_folder",
    "load_npz",
    "subsample_indices",
    "initial_labeled_indices",
    "ExperimentConfig",
    "ExperimentError",
    "STRATEGIES",
    "run_experiment",
    "plot_learning_curves",
    "__version__",
]

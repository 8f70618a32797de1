"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator); ``mobyv2al_sampling``, ``coreset_sampling`` and
``random_sampling`` are modAL query strategies.
"""

from .augment import ViewAugmenter, get_view_pair
from .backbones import available_backbones, build_backbone, register_backbone
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
from .estimator import MoBYClassifier
from .experiment import STRATEGIES, ExperimentConfig, ExperimentError, run_experiment
from .kcenter import k_center_greedy
from .moby import MoBYNetwork
from .plots import plot_learning_curves
from .strategies import coreset_sampling, mobyv2al_sampling, random_sampling

__version__ = "0.1.0"

__all__ = [
    "MoBYClassifier",
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

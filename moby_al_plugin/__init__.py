"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator); ``mobyv2al_sampling``, ``coreset_sampling`` and
``random_sampling`` are modAL query strategies. The data loaders return
plain arrays, as ``sklearn.datasets`` does.

This package is the library. The experiment runner, its results, plots and
the ``moby-al`` command live in :mod:`moby_al_plugin.experiments`, which
builds on the library; the library never imports it.
"""

from .augment import ViewAugmenter, get_view_pair
from .backbones import available_backbones, build_backbone, register_backbone
from .datasets import available_datasets, load_dataset
from .encoder import MoBYEncoder, load_encoder
from .estimator import MoBYClassifier
from .exceptions import DataNotFoundError, MoBYALError
from .features import extract_features
from .image_dataset import ImageDataset
from .image_reading import read_image
from .kcenter import k_center_greedy
from .learner import ActiveLearner
from .loaders import (
    load_digits_dataset,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_torchvision_dataset,
)
from .moby import MoBYNetwork
from .pool_sampling import initial_labeled_indices, subsample_indices
from .registry import STRATEGIES, StrategyEntry, get_strategy
from .strategies import (
    budget_aware_sampling,
    coreset_sampling,
    maxherding_sampling,
    mobyv2al_sampling,
    random_sampling,
    typiclust_sampling,
)

__version__ = "0.1.0"

__all__ = [
    "MoBYClassifier",
    "MoBYEncoder",
    "load_encoder",
    "MoBYNetwork",
    "ActiveLearner",
    "mobyv2al_sampling",
    "coreset_sampling",
    "random_sampling",
    "typiclust_sampling",
    "maxherding_sampling",
    "budget_aware_sampling",
    "STRATEGIES",
    "StrategyEntry",
    "get_strategy",
    "extract_features",
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
    "read_image",
    "subsample_indices",
    "initial_labeled_indices",
    "MoBYALError",
    "DataNotFoundError",
    "__version__",
]

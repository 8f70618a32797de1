"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator), fine-tunes it from a ``MoBYEncoder`` pretrained on the
pool, and self-trains on pseudo-labels; ``LabelSpreadingClassifier`` spreads
the labels over a kNN graph of the pool. ``mobyv2al_sampling``,
``coreset_sampling``, ``typiclust_sampling``, ``maxherding_sampling``,
``budget_aware_sampling`` and ``random_sampling`` are modAL query
strategies (``STRATEGIES`` lists them by name). The data loaders return
plain arrays, as ``sklearn.datasets`` does.

This package is the library. The applications build on it and the library
never imports them: :mod:`moby_al_plugin.experiments` (the experiment
runner, its results and plots), :mod:`moby_al_plugin.labelling` (labelling
a folder of images) and :mod:`moby_al_plugin.cli`, the ``moby-al`` command.

The public names are imported on first use (PEP 562), so that
``import moby_al_plugin`` and the ``moby-al`` command's help and bookkeeping
subcommands do not wait for torch: ``from moby_al_plugin import
MoBYClassifier`` imports what it needs then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

__version__ = "0.1.0"

# public name -> the submodule that defines it
_SOURCES = {
    "MoBYClassifier": "estimator",
    "MoBYEncoder": "encoder",
    "load_encoder": "encoder",
    "MoBYNetwork": "moby",
    "LabelSpreadingClassifier": "label_spreading",
    "ActiveLearner": "learner",
    "mobyv2al_sampling": "strategies",
    "coreset_sampling": "strategies",
    "random_sampling": "strategies",
    "typiclust_sampling": "strategies",
    "maxherding_sampling": "strategies",
    "budget_aware_sampling": "strategies",
    "STRATEGIES": "registry",
    "StrategyEntry": "registry",
    "get_strategy": "registry",
    "extract_features": "features",
    "k_center_greedy": "kcenter",
    "ViewAugmenter": "augment",
    "get_view_pair": "augment",
    "available_backbones": "backbones",
    "build_backbone": "backbones",
    "register_backbone": "backbones",
    "ImageDataset": "image_dataset",
    "available_datasets": "datasets",
    "load_dataset": "datasets",
    "load_digits_dataset": "loaders",
    "load_fashion_mnist": "loaders",
    "load_torchvision_dataset": "loaders",
    "load_image_folder": "loaders",
    "load_npz": "loaders",
    "ImagePool": "pools",
    "open_memmap_pool": "pools",
    "write_features": "features",
    "read_image": "image_reading",
    "subsample_indices": "pool_sampling",
    "initial_labeled_indices": "pool_sampling",
    "MoBYALError": "exceptions",
    "DataNotFoundError": "exceptions",
}

__all__ = [
    "MoBYClassifier",
    "MoBYEncoder",
    "load_encoder",
    "MoBYNetwork",
    "LabelSpreadingClassifier",
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
    "ImagePool",
    "open_memmap_pool",
    "write_features",
    "read_image",
    "subsample_indices",
    "initial_labeled_indices",
    "MoBYALError",
    "DataNotFoundError",
    "__version__",
]


__getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())


if TYPE_CHECKING:  # what type checkers and IDEs see: the eager imports
    from .augment import ViewAugmenter, get_view_pair
    from .backbones import available_backbones, build_backbone, register_backbone
    from .datasets import available_datasets, load_dataset
    from .encoder import MoBYEncoder, load_encoder
    from .estimator import MoBYClassifier
    from .exceptions import DataNotFoundError, MoBYALError
    from .features import extract_features, write_features
    from .image_dataset import ImageDataset
    from .image_reading import read_image
    from .kcenter import k_center_greedy
    from .label_spreading import LabelSpreadingClassifier
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
    from .pools import ImagePool, open_memmap_pool
    from .registry import STRATEGIES, StrategyEntry, get_strategy
    from .strategies import (
        budget_aware_sampling,
        coreset_sampling,
        maxherding_sampling,
        mobyv2al_sampling,
        random_sampling,
        typiclust_sampling,
    )

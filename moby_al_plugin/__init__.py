"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator), fine-tunes it from a ``MoBYEncoder`` pretrained on the
pool, and self-trains on pseudo-labels; ``LabelSpreadingClassifier`` spreads
the labels over a kNN graph of the pool. ``mobyv2al_sampling``,
``coreset_sampling``, ``typiclust_sampling``, ``maxherding_sampling``,
``budget_aware_sampling``, ``badge_sampling`` and ``random_sampling`` are
modAL query strategies (``STRATEGIES`` lists them by name). The data loaders
return plain arrays, as ``sklearn.datasets`` does.

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

from . import _moved_modules, modal_compat
from ._lazy import lazy_attributes

__version__ = "0.1.0"

# public name -> the submodule that defines it
_SOURCES = {
    "MoBYClassifier": "classifier",
    "MoBYEncoder": "encoder",
    "load_encoder": "encoder",
    "MoBYNetwork": "network.moby_network",
    "LabelSpreadingClassifier": "semi_supervised.label_spreading",
    "most_confident_targets": "semi_supervised.pseudo_labels",
    "graph_targets": "semi_supervised.graph_pseudo_labels",
    "pool_graph": "semi_supervised.graph_pseudo_labels",
    "pixel_pca_features": "semi_supervised.graph_pseudo_labels",
    "ActiveLearner": "learner",
    "mobyv2al_sampling": "selection.strategies",
    "coreset_sampling": "selection.strategies",
    "random_sampling": "selection.strategies",
    "typiclust_sampling": "selection.strategies",
    "maxherding_sampling": "selection.strategies",
    "budget_aware_sampling": "selection.strategies",
    "badge_sampling": "selection.strategies",
    "STRATEGIES": "selection.registry",
    "StrategyEntry": "selection.registry",
    "get_strategy": "selection.registry",
    "extract_features": "selection.features",
    "k_center_greedy": "selection.kcenter",
    "ViewAugmenter": "augment",
    "get_view_pair": "augment",
    "available_backbones": "network.backbones",
    "build_backbone": "network.backbones",
    "register_backbone": "network.backbones",
    "BackboneWeights": "network.pretrained_weights",
    "resolve_weights": "network.pretrained_weights",
    "weights_names": "network.pretrained_weights",
    "load_backbone_weights": "network.pretrained_weights",
    "ImageDataset": "data.image_dataset",
    "available_datasets": "data.datasets",
    "load_dataset": "data.datasets",
    "load_digits_dataset": "data.loaders",
    "load_fashion_mnist": "data.loaders",
    "load_torchvision_dataset": "data.loaders",
    "load_image_folder": "data.loaders",
    "load_npz": "data.loaders",
    "ImagePool": "data.pools",
    "open_memmap_pool": "data.pools",
    "write_features": "selection.features",
    "read_image": "data.image_reading",
    "subsample_indices": "data.pool_sampling",
    "initial_labeled_indices": "data.pool_sampling",
    "StabilizingPredictions": "stopping",
    "MoBYALError": "exceptions",
    "DataNotFoundError": "exceptions",
}

__all__ = [
    "MoBYClassifier",
    "MoBYEncoder",
    "load_encoder",
    "MoBYNetwork",
    "LabelSpreadingClassifier",
    "most_confident_targets",
    "graph_targets",
    "pool_graph",
    "pixel_pca_features",
    "ActiveLearner",
    "mobyv2al_sampling",
    "coreset_sampling",
    "random_sampling",
    "typiclust_sampling",
    "maxherding_sampling",
    "budget_aware_sampling",
    "badge_sampling",
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
    "BackboneWeights",
    "resolve_weights",
    "weights_names",
    "load_backbone_weights",
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
    "StabilizingPredictions",
    "MoBYALError",
    "DataNotFoundError",
    "__version__",
]


__getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())
_moved_modules.install()  # the module paths of 0.1.0, for a release
modal_compat.install()  # modAL's own ActiveLearner on scikit-learn >= 1.8


if TYPE_CHECKING:  # what type checkers and IDEs see: the eager imports
    from .augment import ViewAugmenter, get_view_pair
    from .classifier import MoBYClassifier
    from .data.datasets import available_datasets, load_dataset
    from .data.image_dataset import ImageDataset
    from .data.image_reading import read_image
    from .data.loaders import (
        load_digits_dataset,
        load_fashion_mnist,
        load_image_folder,
        load_npz,
        load_torchvision_dataset,
    )
    from .data.pool_sampling import initial_labeled_indices, subsample_indices
    from .data.pools import ImagePool, open_memmap_pool
    from .encoder import MoBYEncoder, load_encoder
    from .exceptions import DataNotFoundError, MoBYALError
    from .learner import ActiveLearner
    from .network.backbones import available_backbones, build_backbone, register_backbone
    from .network.moby_network import MoBYNetwork
    from .network.pretrained_weights import (
        BackboneWeights,
        load_backbone_weights,
        resolve_weights,
        weights_names,
    )
    from .selection.features import extract_features, write_features
    from .selection.kcenter import k_center_greedy
    from .selection.registry import STRATEGIES, StrategyEntry, get_strategy
    from .selection.strategies import (
        badge_sampling,
        budget_aware_sampling,
        coreset_sampling,
        maxherding_sampling,
        mobyv2al_sampling,
        random_sampling,
        typiclust_sampling,
    )
    from .semi_supervised.graph_pseudo_labels import graph_targets, pixel_pca_features, pool_graph
    from .semi_supervised.label_spreading import LabelSpreadingClassifier
    from .semi_supervised.pseudo_labels import most_confident_targets
    from .stopping import StabilizingPredictions

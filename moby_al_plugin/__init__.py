"""Self-supervised active learning (MoBYv2AL) as a modAL plug-in.

``MoBYClassifier`` trains the network jointly with the MoBY contrastive loss
(a skorch estimator); ``mobyv2al_sampling``, ``coreset_sampling`` and
``random_sampling`` are modAL query strategies.
"""

from .augment import ViewAugmenter, get_view_pair
from .backbones import available_backbones, build_backbone, register_backbone
from .datasets import ImageDataset, load_digits_dataset
from .estimator import MoBYClassifier
from .kcenter import k_center_greedy
from .moby import MoBYNetwork
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
    "load_digits_dataset",
    "__version__",
]

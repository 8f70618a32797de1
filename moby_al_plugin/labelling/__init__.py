"""``moby-al label``: label a folder of images in a local page, with active learning.

Part of the application: it uses the library as any modAL user would
(:class:`~moby_al_plugin.MoBYEncoder` pretrained once per folder,
:class:`~moby_al_plugin.MoBYClassifier` fine-tuned on the answers, a
query strategy in a modAL ``ActiveLearner``) and keeps every answer in an
SQLite database in the work folder. The web page (Flask) is imported only
by ``serve``.
"""

from .folder import FolderIndex, index_folder, read_pixels, verify_image, verify_images
from .store import (
    DATABASE_NAME,
    SCHEMA_VERSION,
    Answer,
    ImageChangedError,
    LabellingError,
    LabelStore,
    StatusCounts,
    UnknownImageError,
)
from .training import (
    DEFAULT_STRATEGY,
    LABEL_STRATEGIES,
    RoundResult,
    RoundSettings,
    query_next_batch,
)

__all__ = [
    "Answer",
    "DATABASE_NAME",
    "DEFAULT_STRATEGY",
    "FolderIndex",
    "ImageChangedError",
    "LABEL_STRATEGIES",
    "LabelStore",
    "LabellingError",
    "RoundResult",
    "RoundSettings",
    "SCHEMA_VERSION",
    "StatusCounts",
    "UnknownImageError",
    "index_folder",
    "query_next_batch",
    "read_pixels",
    "verify_image",
    "verify_images",
]

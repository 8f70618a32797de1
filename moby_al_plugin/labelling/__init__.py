"""``moby-al label``: label a folder of images in a local page, with active learning.

Part of the application: it uses the library as any modAL user would
(:class:`~moby_al_plugin.MoBYEncoder` pretrained once per folder,
:class:`~moby_al_plugin.MoBYClassifier` fine-tuned on the answers, a
query strategy in a modAL ``ActiveLearner``) and keeps every answer in an
SQLite database in the work folder. The web page (Flask) is imported only
by ``serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

# public name -> the submodule that defines it; imported on first use (PEP 562)
_SOURCES = {
    "Answer": "store",
    "DATABASE_NAME": "store",
    "DEFAULT_STRATEGY": "training",
    "FolderIndex": "folder",
    "ImageChangedError": "store",
    "LABEL_STRATEGIES": "training",
    "LabelStore": "store",
    "LabellingError": "store",
    "RoundResult": "training",
    "RoundSettings": "training",
    "SCHEMA_VERSION": "store",
    "StatusCounts": "store",
    "UnknownImageError": "store",
    "index_folder": "folder",
    "query_next_batch": "training",
    "read_pixels": "folder",
    "verify_image": "folder",
    "verify_images": "folder",
}

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


__getattr__, __dir__ = lazy_attributes(__name__, _SOURCES, globals())


if TYPE_CHECKING:
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

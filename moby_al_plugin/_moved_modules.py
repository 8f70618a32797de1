"""The module paths of release 0.1.0, kept importable for one release.

Release 0.2.0 put the modules in families (``selection``, ``data``,
``network``, ``semi_supervised``) and renamed two (``core`` is
``skorch_base``, ``estimator`` is ``classifier``). Pickles name the module a
class was defined in: a ``finetuned-model.pkl`` of an earlier run folder
names ``moby_al_plugin.estimator.MoBYClassifier`` and
``moby_al_plugin.moby.MoBYNetwork``. A meta-path finder answers those old
names with the new modules themselves (the same module object, so a patch
through either name reaches both), and warns once per name that the path is
deprecated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED_MODULES", "install"]

_PACKAGE = __name__.rpartition(".")[0]

#: old module (relative to the package) -> where it lives now
MOVED_MODULES = {
    "strategies": "selection.strategies",
    "registry": "selection.registry",
    "features": "selection.features",
    "kcenter": "selection.kcenter",
    "typicality": "selection.typicality",
    "herding": "selection.herding",
    "datasets": "data.datasets",
    "image_dataset": "data.image_dataset",
    "image_reading": "data.image_reading",
    "loaders": "data.loaders",
    "pools": "data.pools",
    "pool_sampling": "data.pool_sampling",
    "knn_graph": "semi_supervised.knn_graph",
    "label_spreading": "semi_supervised.label_spreading",
    "pseudo_labels": "semi_supervised.pseudo_labels",
    "core": "skorch_base",
    "estimator": "classifier",
    "backbones": "network.backbones",
    # one module then, four now: the package re-exports all of their names
    "moby": "network",
}


def _new_name(fullname: str) -> str | None:
    """The current name of an old module path, or None if it did not move."""
    prefix = _PACKAGE + "."
    if not fullname.startswith(prefix):
        return None
    relative = fullname[len(prefix) :]
    for old, new in MOVED_MODULES.items():
        if relative == old or relative.startswith(old + "."):
            return prefix + new + relative[len(old) :]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec) -> ModuleType:
        warnings.warn(
            f"{spec.name} is now {self.target}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the target ran when it was imported; the import system has just set
        # its __spec__ to the old name's, which reload() and pickle must not see
        module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = _new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Answer the old module paths (idempotent; done by ``import moby_al_plugin``)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        # first: the path finder would otherwise load a submodule of a moved
        # package (``loaders.digits``) a second time under its old name
        sys.meta_path.insert(0, _MovedModuleFinder())

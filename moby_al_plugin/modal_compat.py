"""modAL's own ``ActiveLearner`` on scikit-learn >= 1.8, once the plug-in is imported.

modAL (0.4.1 and 0.4.2.1, the last release) validates labelled rows with
``sklearn.utils.check_X_y(..., force_all_finite=...)``. scikit-learn 1.6
renamed the argument ``ensure_all_finite`` and 1.8 removed the old name, so
modAL's documented loop (``from modAL.models import ActiveLearner``) raises
``TypeError`` in ``teach`` (modAL issue #196).

``import moby_al_plugin`` fixes that narrowly: only when the installed
scikit-learn has no ``force_all_finite``, only the ``check_X_y`` name inside
the modAL module that calls it (``modAL.models.base`` in 0.4.1,
``modAL.models.learners`` in 0.4.2.1) is replaced, by a function that passes
the argument on under its new name. Nothing else in modAL or scikit-learn
changes. When that module is not imported yet, the replacement happens the
moment it is (an import hook), so importing the plug-in stays free of modAL's
import time.

Opting out: set the environment variable ``MOBY_AL_NO_MODAL_PATCH=1`` before
the first import, or call :func:`unpatch_modal`. :class:`moby_al_plugin.ActiveLearner`
needs no patch either way.
"""

from __future__ import annotations

import importlib.abc
import inspect
import os
import sys
from types import ModuleType
from typing import Any

__all__ = ["OPT_OUT_VARIABLE", "install", "modal_is_patched", "unpatch_modal"]

#: Set to 1 to leave modAL as installed.
OPT_OUT_VARIABLE = "MOBY_AL_NO_MODAL_PATCH"
# where modAL's releases call check_X_y: 0.4.1 in base, 0.4.2.1 in learners
_TARGETS = ("modAL.models.base", "modAL.models.learners")


def check_X_y_for_modal(*args: Any, force_all_finite: Any = True, **kwargs: Any) -> Any:
    """``sklearn.utils.check_X_y`` that also takes modAL's ``force_all_finite``."""
    from sklearn.utils import check_X_y

    kwargs.setdefault("ensure_all_finite", force_all_finite)
    return check_X_y(*args, **kwargs)


def _sklearn_lacks_force_all_finite() -> bool:
    from sklearn.utils import check_X_y

    return "force_all_finite" not in inspect.signature(check_X_y).parameters


def _patch(module: ModuleType) -> None:
    current = getattr(module, "check_X_y", None)
    if current is None or current is check_X_y_for_modal:
        return  # this release calls check_X_y elsewhere, or done already
    if _sklearn_lacks_force_all_finite():
        module._moby_al_original_check_X_y = current
        module.check_X_y = check_X_y_for_modal


def _patched_modules() -> list[ModuleType]:
    found = (sys.modules.get(name) for name in _TARGETS)
    return [m for m in found if getattr(m, "check_X_y", None) is check_X_y_for_modal]


def modal_is_patched() -> bool:
    """Whether modAL's learner currently goes through :func:`check_X_y_for_modal`."""
    return bool(_patched_modules())


def unpatch_modal() -> None:
    """Give modAL back its own ``check_X_y`` and stop patching it on import."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PatchOnImport)]
    for module in _patched_modules():
        module.check_X_y = module._moby_al_original_check_X_y


class _PatchingLoader(importlib.abc.Loader):
    """The real loader of a module of :data:`_TARGETS`, patching the module it ran."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...
        return getattr(self._loader, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Patch modAL now if it is imported, else when it is (done on ``import moby_al_plugin``)."""
    if os.environ.get(OPT_OUT_VARIABLE, "").strip() not in ("", "0"):
        return
    for name in _TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)
    # a target not imported yet (or one of another release) is patched when it is
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())

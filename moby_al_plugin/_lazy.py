"""Module attributes imported on first use (PEP 562), so that a command starts fast.

``import moby_al_plugin`` must not import torch: ``moby-al --help`` and the
labelling commands that only read the database start in a fraction of a
second. A package lists where each public name lives, and this module
supplies the ``__getattr__`` and ``__dir__`` that load it when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, sources: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a module whose names load on first use.

    Parameters
    ----------
    package : str
        The module's ``__name__``; ``sources`` are relative to it.
    sources : mapping of str to str
        Public name to the module, relative to ``package`` (``"estimator"``,
        ``"experiments.runner"``), that defines it.
    namespace : dict
        The module's ``globals()``: a loaded name is stored there, so later
        look-ups never reach ``__getattr__`` again.
    """

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{source}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return __getattr__, __dir__

"""The strategies by name: which network each trains, how it picks, what it needs.

One table serves everyone who chooses a strategy by name: the experiment
runner and its configuration, the ``moby-al`` command's help and
``moby-al label``. Adding a strategy means adding one entry here.

Query functions are named by import path and imported on first use, so the
table can list modAL's own strategies without importing modAL.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ..exceptions import MoBYALError

__all__ = ["NETWORKS", "StrategyEntry", "STRATEGIES", "get_strategy", "strategy_names"]

Network = Literal["supervised", "moby", "pretrained"]

#: The networks a strategy trains: the supervised baseline (cross-entropy
#: only), the MoBY network trained jointly from scratch in every cycle (the
#: paper), or the network fine-tuned from the encoder pretrained once on the
#: pool (:class:`~moby_al_plugin.MoBYEncoder`).
NETWORKS: tuple[Network, ...] = ("supervised", "moby", "pretrained")


@dataclass(frozen=True)
class StrategyEntry:
    """One strategy: its query function, the network it trains, what it needs.

    Attributes
    ----------
    name : str
        The strategy's name, as configurations and commands spell it.
    function : str
        Import path ``"module:function"`` of the modAL query strategy.
    network : {"supervised", "moby", "pretrained"}
        The network the strategy trains and queries (:data:`NETWORKS`).
    cold_start : bool
        Whether it can pick with no label at all (the first labelled set),
        that is without a trained classifier.
    seeded : bool
        Whether the query draws from a ``random_state`` (the runner and the
        labelling round pass one derived from the seed). k-Center-Greedy does
        when it starts with no label: its first centre is drawn.
    options : mapping
        Keyword options bound to the query function.
    description : str
        One line for help texts.
    """

    name: str
    function: str
    network: Network
    cold_start: bool
    seeded: bool
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")

    @property
    def query(self) -> Callable:
        """The query function with :attr:`options` bound, imported now."""
        return _bind(self.function, tuple(sorted(self.options.items())))

    @property
    def self_supervised(self) -> bool:
        """Whether the network is trained with the MoBY loss from scratch."""
        return self.network == "moby"


@functools.cache
def _bind(path: str, options: tuple[tuple[str, Any], ...]) -> Callable:
    module, _, name = path.partition(":")
    function = getattr(importlib.import_module(module), name)
    return functools.partial(function, **dict(options)) if options else function


_OURS = "moby_al_plugin.selection.strategies"
# the runner and the labelling round draw or search the candidates themselves
_ALL_CANDIDATES = {"subset_size": None}

_ENTRIES = (
    # the paper's method: joint training from scratch, unnormalised k-center
    StrategyEntry(
        "mobyv2al",
        f"{_OURS}:mobyv2al_sampling",
        "moby",
        True,
        True,
        "k-Center-Greedy on the MoBY-trained net's features (the paper)",
        {**_ALL_CANDIDATES, "normalize": False},
    ),
    StrategyEntry(
        "moby_random",
        f"{_OURS}:random_sampling",
        "moby",
        True,
        True,
        "random picks, MoBY-trained net (separates training from selection)",
    ),
    StrategyEntry(
        "coreset",
        f"{_OURS}:coreset_sampling",
        "supervised",
        True,
        True,
        "k-Center-Greedy on a supervised-only net's features",
        {**_ALL_CANDIDATES, "normalize": False},
    ),
    StrategyEntry(
        "random",
        f"{_OURS}:random_sampling",
        "supervised",
        True,
        True,
        "random picks, supervised-only net",
    ),
    StrategyEntry(
        "entropy",
        "modAL.uncertainty:entropy_sampling",
        "supervised",
        False,
        False,
        "modAL entropy",
    ),
    StrategyEntry(
        "margin",
        "modAL.uncertainty:margin_sampling",
        "supervised",
        False,
        False,
        "modAL margin",
    ),
    StrategyEntry(
        "least_confidence",
        "modAL.uncertainty:uncertainty_sampling",
        "supervised",
        False,
        False,
        "modAL least confidence",
    ),
    StrategyEntry(
        "uncertainty_batch",
        "modAL.batch:uncertainty_batch_sampling",
        "supervised",
        False,
        False,
        "modAL's ranked batch of uncertain, diverse images",
    ),
    StrategyEntry(
        "badge",
        f"{_OURS}:badge_sampling",
        "supervised",
        False,
        True,
        "BADGE: k-means++ on last-layer gradient embeddings, supervised-only net",
        _ALL_CANDIDATES,
    ),
    StrategyEntry(
        "random_pretrained",
        f"{_OURS}:random_sampling",
        "pretrained",
        True,
        True,
        "random picks, pretrained net",
    ),
    StrategyEntry(
        "margin_pretrained",
        "modAL.uncertainty:margin_sampling",
        "pretrained",
        False,
        False,
        "modAL margin, pretrained net",
    ),
    StrategyEntry(
        "kcenter_pretrained",
        f"{_OURS}:coreset_sampling",
        "pretrained",
        True,
        True,
        "k-Center-Greedy on normalised features of the pretrained net",
        {**_ALL_CANDIDATES, "normalize": True},
    ),
    StrategyEntry(
        "typiclust",
        f"{_OURS}:typiclust_sampling",
        "pretrained",
        True,
        True,
        "TypiClust: the most typical image of each least-labelled cluster",
        _ALL_CANDIDATES,
    ),
    StrategyEntry(
        "maxherding",
        f"{_OURS}:maxherding_sampling",
        "pretrained",
        True,
        True,
        "MaxHerding: greedy kernel coverage of the pool",
        _ALL_CANDIDATES,
    ),
    StrategyEntry(
        "budget_aware",
        f"{_OURS}:budget_aware_sampling",
        "pretrained",
        True,
        True,
        "typicality while labels per class are few, then diverse margin",
        _ALL_CANDIDATES,
    ),
    StrategyEntry(
        "badge_pretrained",
        f"{_OURS}:badge_sampling",
        "pretrained",
        False,
        True,
        "BADGE: k-means++ on last-layer gradient embeddings, pretrained net",
        _ALL_CANDIDATES,
    ),
)

#: Every strategy by name, in the order help texts list them.
STRATEGIES: Mapping[str, StrategyEntry] = MappingProxyType({e.name: e for e in _ENTRIES})


def get_strategy(name: str) -> StrategyEntry:
    """The entry of ``name``; a :class:`MoBYALError` listing the valid names otherwise."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise MoBYALError(
            f"unknown strategy {name!r}; valid names: {', '.join(STRATEGIES)}"
        ) from None


def strategy_names(
    network: Network | None = None, cold_start: bool | None = None
) -> tuple[str, ...]:
    """Names of the strategies that train ``network`` and/or can start cold."""
    return tuple(_select(network, cold_start))


def _select(network: Network | None, cold_start: bool | None) -> Iterator[str]:
    for entry in _ENTRIES:
        if network is not None and entry.network != network:
            continue
        if cold_start is not None and entry.cold_start != cold_start:
            continue
        yield entry.name

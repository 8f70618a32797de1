"""What each strategy picked: per strategy, the pool indices labelled cycle by cycle.

A :class:`PickHistory` holds, per strategy, the pool indices labelled in
each cycle (cycle 0: the initial labelled set), checked against the pool;
:meth:`PickHistory.from_records` reads one trial's history from the
runner's records. The pictures (:mod:`.pictures`) draw from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .config import ExperimentError

__all__ = ["PickHistory"]


def _as_indices(values: Any, n_pool: int | None, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ExperimentError(f"{what} must be a 1-D array of integer pool indices, got {arr!r}")
    arr = arr.astype(np.int64)
    if n_pool is not None and (arr.min() < 0 or arr.max() >= n_pool):
        bad = arr[(arr < 0) | (arr >= n_pool)][0]
        raise ExperimentError(f"{what} holds index {bad}, outside the pool of {n_pool} images")
    if len(np.unique(arr)) != len(arr):
        raise ExperimentError(f"{what} holds an index twice")
    return arr


class PickHistory:
    """The pool indices each strategy labelled, cycle by cycle.

    Parameters
    ----------
    picks : mapping of str to sequence of array-like of int
        ``picks[strategy][c]`` are the indices into the training pool labelled
        in cycle ``c``; cycle 0 is the initial labelled set (empty for a cold
        start whose first picks come in cycle 1, or the strategy's first picks
        when it starts from zero labels).
    n_pool : int or None
        Images in the pool; indices are checked against it when given.

    Raises
    ------
    ExperimentError
        No strategy, a strategy without cycles, indices that are not integers,
        out of range, or labelled twice within one strategy.

    Examples
    --------
    >>> history = PickHistory({"random": [[3, 7], [1, 4]]}, n_pool=10)
    >>> history.labeled_before("random", 1).tolist()
    [3, 7]
    """

    def __init__(self, picks: Mapping[str, Sequence[Any]], n_pool: int | None = None) -> None:
        if not picks:
            raise ExperimentError("a pick history needs at least one strategy")
        self.n_pool = None if n_pool is None else int(n_pool)
        self._picks: dict[str, list[np.ndarray]] = {}
        for strategy, cycles in picks.items():
            cycles = [
                _as_indices(c, self.n_pool, f"the picks of {strategy!r} in cycle {i}")
                for i, c in enumerate(cycles)
            ]
            if not cycles:
                raise ExperimentError(f"strategy {strategy!r} has no cycles")
            _as_indices(np.concatenate(cycles), self.n_pool, f"the labelled set of {strategy!r}")
            self._picks[str(strategy)] = cycles

    @classmethod
    def from_records(
        cls, records: Iterable[dict], *, trial: int = 0, n_pool: int | None = None
    ) -> PickHistory:
        """The history of one trial from the runner's records.

        Every cycle takes its record's ``queried``: at cycle 0 the initial
        labelled set, later the cycle's picks.

        Raises
        ------
        ExperimentError
            If the trial has no records, a strategy misses a cycle, or cycle 0
            does not hold the initial set (a run written before it was recorded).
        """
        rows: dict[str, dict[int, dict]] = {}
        for r in records:
            if r["trial"] == trial:
                rows.setdefault(r["strategy"], {})[int(r["cycle"])] = r
        if not rows:
            raise ExperimentError(f"the records hold no trial {trial}")
        picks = {}
        for strategy, by_cycle in rows.items():
            if sorted(by_cycle) != list(range(len(by_cycle))):
                raise ExperimentError(
                    f"{strategy!r}, trial {trial}: the records miss a cycle "
                    f"(found {sorted(by_cycle)})"
                )
            first = by_cycle[0]
            if len(first["queried"]) != first["n_labeled"]:
                raise ExperimentError(
                    f"{strategy!r}, trial {trial}: cycle 0 does not hold the initial set (the "
                    "run was written by an older version); its pictures cannot be drawn"
                )
            picks[strategy] = [by_cycle[c]["queried"] for c in range(len(by_cycle))]
        return cls(picks, n_pool=n_pool)

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies, in the order given."""
        return tuple(self._picks)

    def n_cycles(self, strategy: str) -> int:
        """Cycles recorded for ``strategy``, cycle 0 included."""
        return len(self._picks[self._check_strategy(strategy)])

    def _check_strategy(self, strategy: str) -> str:
        if strategy not in self._picks:
            raise ExperimentError(
                f"the run has no strategy {strategy!r}; it has: {', '.join(self._picks)}"
            )
        return strategy

    def _check(self, strategy: str, cycle: int) -> list[np.ndarray]:
        cycles = self._picks[self._check_strategy(strategy)]
        if isinstance(cycle, bool) or not isinstance(cycle, (int, np.integer)):
            raise ExperimentError(f"a cycle is an integer, got {cycle!r}")
        if not 0 <= cycle < len(cycles):
            raise ExperimentError(
                f"the run has no cycle {cycle} for {strategy!r}; it has cycles 0-{len(cycles) - 1}"
            )
        return cycles

    def picked(self, strategy: str, cycle: int) -> np.ndarray:
        """Pool indices labelled in ``cycle``, in pick order."""
        return self._check(strategy, cycle)[cycle].copy()

    def labeled_before(self, strategy: str, cycle: int) -> np.ndarray:
        """Pool indices labelled before ``cycle`` (empty for cycle 0)."""
        cycles = self._check(strategy, cycle)
        return np.concatenate([np.zeros(0, np.int64)] + cycles[:cycle])

    def labeled_after(self, strategy: str, cycle: int) -> np.ndarray:
        """Pool indices labelled up to and including ``cycle``."""
        cycles = self._check(strategy, cycle)
        return np.concatenate(cycles[: cycle + 1])

    def all_labeled(self) -> np.ndarray:
        """Sorted union of every index any strategy labelled."""
        return np.unique(np.concatenate([np.concatenate(c) for c in self._picks.values()]))

    def _strategies(self, strategies: Iterable[str] | None) -> list[str]:
        chosen = list(self.strategies if strategies is None else strategies)
        if not chosen:
            raise ExperimentError("no strategy to draw")
        return [self._check_strategy(s) for s in chosen]

"""One 2-D projection of a run's features (PCA or t-SNE), shared by all its maps.

A :class:`FeatureProjection` is fitted once on one feature matrix or on
several keyed by ``(strategy, cycle)`` (:func:`features_key` names the set a
cycle's map draws); pools larger than ``max_points`` are drawn as a seeded
sample that always holds the labelled images. The feature maps
(:func:`.pictures.plot_feature_map`) draw its coordinates.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from .config import ExperimentError
from .pick_history import _as_indices

__all__ = ["FeatureProjection", "features_key"]


Key = tuple[str, int]


class FeatureProjection:
    """One 2-D projection of a run's features, fitted once, shared by all its maps.

    Parameters
    ----------
    method : {"pca", "tsne"}, default="pca"
        scikit-learn's :class:`~sklearn.decomposition.PCA` or
        :class:`~sklearn.manifold.TSNE`. PCA is fitted on the sampled rows of
        every feature set together and then applied to each set; t-SNE embeds
        all sampled rows of all sets at once (its cost grows with sets x rows).
    max_points : int, default=5000
        Pools larger than this are drawn as a seeded random sample of this
        many images (always including ``include``); the caption says so.
    random_state : int, default=0
        Seed of the sample and of t-SNE.
    perplexity : float, default=30.0
        t-SNE's perplexity.

    Attributes
    ----------
    sample_ : ndarray of int64
        Sorted pool indices drawn on the maps.
    n_pool_ : int
    caption_ : str
        What the maps show, for their caption.
    """

    def __init__(
        self,
        method: str = "pca",
        *,
        max_points: int = 5000,
        random_state: int = 0,
        perplexity: float = 30.0,
    ) -> None:
        self.method = method
        self.max_points = max_points
        self.random_state = random_state
        self.perplexity = perplexity

    def fit(
        self, features: np.ndarray | Mapping[Hashable, np.ndarray], *, include: Any = None
    ) -> FeatureProjection:
        """Fit on one feature matrix or on several keyed ones (the union).

        Parameters
        ----------
        features : ndarray of shape (n_pool, d), or mapping of key to such
            One matrix for the whole run (e.g. a frozen encoder's features),
            or one per ``(strategy, cycle)`` key.
        include : array-like of int or None
            Pool indices always drawn, e.g. :meth:`PickHistory.all_labeled`.

        Returns
        -------
        self

        Raises
        ------
        ExperimentError
            Unknown method, no features, sets of different shapes, non-finite
            values, ``include`` out of range.
        """
        if self.method not in ("pca", "tsne"):
            raise ExperimentError(f"unknown projection {self.method!r}; valid: pca, tsne")
        sets = {None: features} if not isinstance(features, Mapping) else dict(features)
        if not sets:
            raise ExperimentError("no features to project")
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in sets.items()}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ExperimentError(
                f"every feature set must be one (n_pool, d) matrix of the same shape, got "
                f"{sorted(shapes)}"
            )
        n_pool, dim = next(iter(shapes))
        if n_pool < 3:
            raise ExperimentError(f"a map needs at least 3 images, got {n_pool}")
        if not all(np.isfinite(a).all() for a in arrays.values()):
            raise ExperimentError("the features hold NaN or inf")
        keep = _as_indices(
            np.unique(np.asarray(include if include is not None else [], dtype=np.int64)),
            n_pool,
            "include",
        )
        rng = np.random.RandomState(self.random_state)
        if n_pool <= self.max_points:
            sample = np.arange(n_pool)
        else:
            rest = np.setdiff1d(np.arange(n_pool), keep)
            extra = max(0, self.max_points - len(keep))
            sample = np.union1d(keep, rng.choice(rest, size=min(extra, len(rest)), replace=False))
        stacked = np.concatenate([a[sample] for a in arrays.values()])
        if self.method == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=2, random_state=self.random_state).fit(stacked)
            coords = pca.transform(stacked)
            explained = pca.explained_variance_ratio_.sum()
            how = f"PCA of {dim}-d features ({100 * explained:.0f}% of the variance)"
        else:
            from sklearn.manifold import TSNE

            perplexity = min(self.perplexity, (len(stacked) - 1) / 3)
            coords = TSNE(
                n_components=2, perplexity=perplexity, init="pca", random_state=self.random_state
            ).fit_transform(stacked)
            how = f"t-SNE of {dim}-d features (perplexity {perplexity:g})"
        split = np.split(coords.astype(np.float32), len(arrays))
        self.coordinates_ = dict(zip(arrays, split))
        self.sample_ = sample.astype(np.int64)
        self.n_pool_ = int(n_pool)
        if len(sample) < n_pool:
            how += (
                f"; {len(sample):,} of {n_pool:,} pool images drawn at random "
                f"(seed {self.random_state}), every labelled one included"
            )
        if len(arrays) > 1:
            how += f"; one projection for all {len(arrays)} feature sets"
        self.caption_ = how
        return self

    def coordinates(self, key: Hashable = None) -> np.ndarray:
        """Map positions of the sampled images (rows follow ``sample_``) for one set.

        A projection fitted on a single matrix returns it for every key.

        Raises
        ------
        ExperimentError
            If the projection is not fitted or has no set under ``key``.
        """
        if not hasattr(self, "coordinates_"):
            raise ExperimentError("the projection is not fitted yet; call fit first")
        if None in self.coordinates_ and len(self.coordinates_) == 1:
            return self.coordinates_[None]
        if key not in self.coordinates_:
            raise ExperimentError(f"the projection holds no features for {key!r}")
        return self.coordinates_[key]

    def rows(self, indices: np.ndarray, what: str) -> np.ndarray:
        """Positions in ``sample_`` of pool indices (all must be drawn)."""
        pos = np.searchsorted(self.sample_, indices)
        pos = np.minimum(pos, len(self.sample_) - 1)
        missing = indices[self.sample_[pos] != indices]
        if missing.size:
            raise ExperimentError(
                f"{what}: pool index {missing[0]} is not on the map (pass the labelled indices as "
                "include= when fitting the projection)"
            )
        return pos


def features_key(strategy: str, cycle: int) -> Key:
    """The feature set a cycle's map draws: what the strategy queried with.

    The picks of cycle ``c`` were chosen on the network trained in cycle
    ``c - 1``, so the map of cycle ``c >= 1`` uses that cycle's features;
    cycle 0 uses its own.
    """
    return (strategy, max(0, int(cycle) - 1))

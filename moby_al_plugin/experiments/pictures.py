"""Teaching pictures: what each strategy picked, where it lies, how classes fill up.

Three drawings, each on a bare :class:`matplotlib.figure.Figure` that is
created (or given with ``fig=``) and returned; no backend is switched and no
pyplot state is touched, so they work in a notebook and in a script alike:

- :func:`plot_gallery`: one cycle's picks as a grid of images, one block per
  strategy, each image titled with its label when labels are given;
- :func:`plot_feature_map`: a 2-D map of the features (PCA, or t-SNE) with
  the pool faint, the labelled images coloured by class and this cycle's
  picks marked; one :class:`FeatureProjection` is fitted once for a whole
  run so that every map of it shares the same axes;
- :func:`plot_class_histogram`: per strategy and cycle, the picks per class
  stacked on the labels per class so far.

What was picked is a :class:`~.pick_history.PickHistory` (per strategy, the
pool indices labelled in each cycle, cycle 0 the initial labelled set); the
maps' coordinates come from a :class:`~.projection.FeatureProjection`. Both
live in modules of their own and are re-exported here.
:func:`draw_run_pictures` draws every picture of a finished results folder
(``moby-al plot RUN --pictures``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .config import ExperimentError
from .pick_history import PickHistory
from .projection import FeatureProjection, features_key
from .results import atomic_write_bytes

__all__ = [
    "PickHistory",
    "FeatureProjection",
    "features_key",
    "plot_gallery",
    "plot_feature_map",
    "plot_class_histogram",
    "save_figure",
    "draw_run_pictures",
]


def _check_labels(labels: Any, n_pool: int | None, what: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ExperimentError(f"{what} must be a 1-D array of integer classes")
    if n_pool is not None and len(arr) != n_pool:
        raise ExperimentError(f"{what} hold {len(arr)} entries but the pool has {n_pool} images")
    if arr.size and arr.min() < 0:
        raise ExperimentError(f"{what} must be non-negative class indices")
    return arr.astype(np.int64)


def _class_colors(n_classes: int) -> np.ndarray:
    cmap = colormaps["tab10" if n_classes <= 10 else "tab20" if n_classes <= 20 else "turbo"]
    if n_classes <= 20:
        return np.asarray([cmap(k) for k in range(n_classes)])
    return cmap(np.linspace(0, 1, n_classes))


def _class_name(k: int, class_names: Sequence[str] | None) -> str:
    return str(class_names[k]) if class_names and k < len(class_names) else str(k)


# ------------------------------------------------------------------ gallery


def _displayable(images: np.ndarray, what: str) -> np.ndarray:
    """Images of shape (n, H, W) or (n, H, W, 3) in [0, 1] for ``imshow``."""
    if images.ndim == 4:
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = np.moveaxis(images, -1, 1)  # channels-last
        if images.shape[1] not in (1, 3):
            raise ExperimentError(
                f"{what}: cannot show images of shape {images.shape[1:]}; expected 1 or 3 "
                "channels, as (C, H, W) or (H, W, C)"
            )
        images = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images, 1, -1)
    elif images.ndim != 3:
        raise ExperimentError(
            f"{what}: cannot show an array of shape {images.shape}; expected images of shape "
            "(N, H, W), (N, C, H, W) or (N, H, W, C)"
        )
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if not np.issubdtype(images.dtype, np.number):
        raise ExperimentError(f"{what}: images must be numeric, got dtype {images.dtype}")
    images = images.astype(np.float32)
    if images.size and (not np.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise ExperimentError(f"{what}: float images must lie in [0, 1]")
    return images


def plot_gallery(
    history: PickHistory,
    images: Any,
    cycle: int,
    *,
    strategies: Iterable[str] | None = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    columns: int = 10,
    max_images: int | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """One cycle's picks as a grid of images, strategies side by side.

    Parameters
    ----------
    history : PickHistory
    images : array-like of shape (n_pool, H, W), (n_pool, C, H, W) or (n_pool, H, W, C)
        The training pool; ``uint8`` or float in [0, 1], C in {1, 3}.
    cycle : int
        0 shows the initial labelled set.
    strategies : iterable of str or None
        Blocks from left to right; None: all of the history.
    labels : array-like of int, shape (n_pool,), or None
        Each image is titled with its label (or its name from
        ``class_names``) when given.
    class_names : sequence of str or None
    columns : int, default=10
        Images per row in each block.
    max_images : int or None
        Show only the first picks of each strategy (None: all); the block's
        title says how many of how many are shown.
    title : str or None
    fig : Figure or None
        Drawn on (cleared first) when given; else a new figure is made.

    Returns
    -------
    Figure
        One axes per shown image, in pick order; each axes' label
        (``ax.get_label()``) is ``"<strategy>:<pool index>"``.

    Raises
    ------
    ExperimentError
        A strategy or cycle the history lacks, labels or images whose length
        is not the pool's, images the gallery cannot show.
    """
    chosen = history._strategies(strategies)
    n_pool = len(images)
    if history.n_pool is not None and n_pool != history.n_pool:
        raise ExperimentError(f"images hold {n_pool} images but the pool has {history.n_pool}")
    if labels is not None:
        labels = _check_labels(labels, n_pool)
    if columns < 1:
        raise ExperimentError(f"columns must be at least 1, got {columns}")
    picks = {}
    for s in chosen:
        idx = history.picked(s, cycle)
        if idx.size and idx.max() >= n_pool:
            raise ExperimentError(f"{s!r} picked index {idx.max()}, outside {n_pool} images")
        picks[s] = idx if max_images is None else idx[:max_images]
    shown = {
        s: _displayable(np.asarray(images)[idx], f"images of {s!r}") for s, idx in picks.items()
    }
    rows = max(1, max(math.ceil(len(idx) / columns) for idx in picks.values()))
    cols = max(1, min(columns, max(len(idx) for idx in picks.values())))
    cell, top = 0.62, 0.35 if title else 0.0
    body_height = rows * cell + 0.6
    if fig is None:
        fig = Figure(figsize=(len(chosen) * (cols * cell + 0.3), body_height + top))
    else:
        fig.clear()
    body = fig
    if title:
        # the title gets a row of its own, above the strategies' headings
        heading, body = fig.subfigures(2, 1, height_ratios=[top, body_height])
        heading.suptitle(title, fontsize=10, y=0.5, va="center")
    blocks = np.atleast_1d(body.subfigures(1, len(chosen), squeeze=False)[0])
    for block, s in zip(blocks, chosen):
        idx, pixels = picks[s], shown[s]
        total = len(history.picked(s, cycle))
        heading = (
            f"{s}: {total} picks" if len(idx) == total else f"{s}: first {len(idx)} of {total}"
        )
        block.suptitle(heading if cycle else f"{s}: initial set of {total}", fontsize=9)
        if not len(idx):
            continue
        grid = block.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(grid.flat):
            ax.set_axis_off()
            if k >= len(idx):
                continue
            ax.set_label(f"{s}:{idx[k]}")
            ax.imshow(pixels[k], cmap="gray" if pixels[k].ndim == 2 else None, vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(_class_name(int(labels[idx[k]]), class_names), fontsize=7, pad=1)
        block.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.85, wspace=0.1, hspace=0.4)
    return fig


# ------------------------------------------------------------------ maps


def plot_feature_map(
    history: PickHistory,
    projection: FeatureProjection,
    cycle: int,
    *,
    labels: Any,
    strategies: Iterable[str] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """A 2-D map per strategy: pool faint, labelled by class, this cycle's picks marked.

    Parameters
    ----------
    history : PickHistory
    projection : FeatureProjection
        Fitted on one matrix, or on ``(strategy, cycle)`` keys; the map of
        cycle ``c`` draws the set :func:`features_key` names (the features the
        strategy queried with).
    cycle : int
    labels : array-like of int, shape (n_pool,)
        Classes; only those of labelled and picked images are drawn.
    strategies : iterable of str or None
        One panel each, left to right; None: all.
    class_names : sequence of str or None
    title : str or None
    fig : Figure or None

    Returns
    -------
    Figure
        One axes per strategy, each with three scatter collections, by gid:
        ``"pool"`` (drawn images neither labelled nor picked, grey),
        ``"labeled"`` (labelled before this cycle, coloured by class) and
        ``"picked"`` (this cycle's picks, coloured by class, black edge). The
        axes' label is the strategy. The caption says how the map was made.

    Raises
    ------
    ExperimentError
        A strategy or cycle the history lacks, labels of the wrong length, an
        unfitted projection, a projection of another pool or without the
        needed features, labelled images missing from its sample.
    """
    chosen = history._strategies(strategies)
    if not hasattr(projection, "coordinates_"):
        raise ExperimentError("the projection is not fitted yet; call fit first")
    n_pool = projection.n_pool_
    if history.n_pool is not None and history.n_pool != n_pool:
        raise ExperimentError(f"the projection has {n_pool} pool images, the run {history.n_pool}")
    labels = _check_labels(labels, n_pool)
    colors = _class_colors(int(labels.max()) + 1 if labels.size else 1)
    if fig is None:
        fig = Figure(figsize=(3.6 * len(chosen) + 1.4, 4.0))
    else:
        fig.clear()
    axes = np.atleast_1d(fig.subplots(1, len(chosen), squeeze=False)[0])
    for ax, s in zip(axes, chosen):
        before, picked = history.labeled_before(s, cycle), history.picked(s, cycle)
        for what, idx in (("labelled", before), ("picked", picked)):
            if idx.size and idx.max() >= n_pool:
                raise ExperimentError(f"{s!r}: {what} index {idx.max()} outside {n_pool} images")
        xy = projection.coordinates(features_key(s, cycle))
        rows_before = projection.rows(before, f"{s!r}, labelled")
        rows_picked = projection.rows(picked, f"{s!r}, picked")
        rest = np.setdiff1d(
            np.arange(len(projection.sample_)), np.union1d(rows_before, rows_picked)
        )
        ax.scatter(*xy[rest].T, s=4, c="0.7", alpha=0.5, linewidths=0, gid="pool")
        ax.scatter(
            *xy[rows_before].reshape(-1, 2).T,
            s=14,
            c=colors[labels[before]].reshape(-1, 4),
            linewidths=0,
            gid="labeled",
        )
        ax.scatter(
            *xy[rows_picked].reshape(-1, 2).T,
            s=46,
            marker="D",
            c=colors[labels[picked]].reshape(-1, 4),
            edgecolors="black",
            linewidths=0.8,
            gid="picked",
        )
        ax.set_label(s)
        ax.set_title(f"{s}: {len(picked)} picks, {len(before)} labelled before", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        Line2D([], [], ls="", marker="o", ms=5, color=colors[k], label=_class_name(k, class_names))
        for k in range(len(colors))
    ]
    handles += [
        Line2D([], [], ls="", marker="o", ms=3, color="0.7", label="pool"),
        Line2D([], [], ls="", marker="D", ms=6, mfc="white", mec="black", label="picked"),
    ]
    fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    fig.text(0.01, 0.01, projection.caption_, fontsize=7, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.02, right=1 - 1.3 / fig.get_figwidth(), bottom=0.08, top=0.86)
    return fig


# ------------------------------------------------------------------ histograms


def plot_class_histogram(
    history: PickHistory,
    labels: Any,
    *,
    strategies: Iterable[str] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Per strategy (row) and cycle (column): picks per class on top of labels so far.

    Parameters
    ----------
    history : PickHistory
    labels : array-like of int, shape (n_pool,)
    strategies : iterable of str or None
    class_names : sequence of str or None
    title : str or None
    fig : Figure or None

    Returns
    -------
    Figure
        A grid of axes, label ``"<strategy>:<cycle>"``. Each holds two bar
        containers, one bar per class: ``ax.containers[0]`` the labels before
        this cycle (faint), ``ax.containers[1]`` this cycle's picks stacked on
        them (their heights sum to the cycle's batch size). A dashed line marks
        an even share of the labels so far.

    Raises
    ------
    ExperimentError
        A strategy the history lacks, labels of the wrong length.
    """
    chosen = history._strategies(strategies)
    labels = _check_labels(labels, history.n_pool)
    n_classes = int(labels.max()) + 1 if labels.size else 1
    colors = _class_colors(n_classes)
    n_cols = max(history.n_cycles(s) for s in chosen)
    for s in chosen:
        for idx in (history.labeled_after(s, history.n_cycles(s) - 1),):
            if idx.size and idx.max() >= len(labels):
                raise ExperimentError(f"{s!r} labelled index {idx.max()}, outside the labels")
    if fig is None:
        fig = Figure(figsize=(2.2 * n_cols + 0.6, 1.9 * len(chosen) + 0.8))
    else:
        fig.clear()
    grid = fig.subplots(len(chosen), n_cols, squeeze=False, sharey="row")
    classes = np.arange(n_classes)
    for r, s in enumerate(chosen):
        for c in range(n_cols):
            ax = grid[r, c]
            if c >= history.n_cycles(s):
                ax.set_axis_off()
                continue
            before = np.bincount(labels[history.labeled_before(s, c)], minlength=n_classes)
            picked = np.bincount(labels[history.picked(s, c)], minlength=n_classes)
            ax.bar(classes, before, color=colors, alpha=0.3, label="labelled before")
            ax.bar(classes, picked, bottom=before, color=colors, label="picked")
            total = before.sum() + picked.sum()
            ax.axhline(total / n_classes, color="0.3", lw=0.8, ls="--")
            ax.set_label(f"{s}:{c}")
            ax.set_xticks(classes, [_class_name(k, class_names) for k in classes], fontsize=6)
            ax.tick_params(axis="y", labelsize=7)
            heading = f"cycle {c}: +{picked.sum()}" if c else f"cycle 0: {picked.sum()} initial"
            ax.set_title(f"{heading} ({total} labels)", fontsize=8)
            if c == 0:
                ax.set_ylabel(s, fontsize=9)
    fig.text(
        0.01,
        0.005,
        "solid: picked in the cycle; faint: labelled before; dashed: an even share per class",
        fontsize=7,
        color="0.3",
    )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


# ------------------------------------------------------------------ files


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) atomically.

    The image is rendered in memory and then written to a temporary file that
    is renamed over ``path``: a failure leaves no half-written file.
    """
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # a picture is for sharing: not the temp file's 0600
    return path


def draw_run_pictures(
    folder: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    trial: int = 0,
    method: str = "pca",
    max_images: int | None = 50,
    dpi: int = 100,
) -> list[Path]:
    """Draw every picture of a finished run without training again.

    The data set is reloaded from the stored configuration (for the images
    and labels); the features come from ``features/`` (see
    :mod:`.features_store`). Written: ``gallery-cycle<c>.png`` and, when
    features were stored, ``map-cycle<c>.png`` for every cycle, and
    ``class_histogram.png``.

    Parameters
    ----------
    folder : str or path-like
        A results folder of ``moby-al run`` or ``compare``.
    output : str or path-like or None
        Where the pictures go (default: ``<folder>/pictures``).
    trial : int, default=0
    method : {"pca", "tsne"}
    max_images : int or None, default=50
        Images per strategy in a gallery.
    dpi : int, default=100

    Returns
    -------
    list of Path

    Raises
    ------
    ExperimentError
        Not a results folder, no such trial, records without the initial
        labelled set, unreadable feature files. Cycles without stored features
        get no map.
    """
    from .features_store import features_path, load_cycle_features
    from .runner import PreparedData, load_experiment

    folder = Path(folder)
    config, records = load_experiment(folder)
    data = PreparedData(config)
    n_pool = len(data.y)
    history = PickHistory.from_records(records, trial=trial, n_pool=n_pool)
    names = None
    out = Path(output) if output is not None else folder / "pictures"
    written = []
    last = max(history.n_cycles(s) for s in history.strategies)
    name = f"{config.dataset}, trial {trial}"
    for cycle in range(last):
        present = [s for s in history.strategies if cycle < history.n_cycles(s)]
        fig = plot_gallery(
            history,
            data.X,
            cycle,
            strategies=present,
            labels=data.y,
            class_names=names,
            max_images=max_images,
            title=f"{name}: cycle {cycle}" + (" (initial set)" if cycle == 0 else " picks"),
        )
        written.append(save_figure(fig, out / f"gallery-cycle{cycle}.png", dpi=dpi))
    keys = [(s, c) for s in history.strategies for c in range(history.n_cycles(s))]
    stored = [k for k in keys if features_path(folder, k[0], trial, k[1]).is_file()]
    if stored:
        features = {
            (s, c): load_cycle_features(folder, s, trial, c, n_pool=n_pool) for s, c in stored
        }
        projection = FeatureProjection(method).fit(features, include=history.all_labeled())
        for cycle in range(last):
            present = [
                s
                for s in history.strategies
                if cycle < history.n_cycles(s) and features_key(s, cycle) in features
            ]
            if not present:
                continue
            fig = plot_feature_map(
                history,
                projection,
                cycle,
                labels=data.y,
                strategies=present,
                class_names=names,
                title=f"{name}: cycle {cycle}, on the features the picks were chosen with",
            )
            written.append(save_figure(fig, out / f"map-cycle{cycle}.png", dpi=dpi))
    fig = plot_class_histogram(
        history, data.y, class_names=names, title=f"{name}: labels per class, cycle by cycle"
    )
    written.append(save_figure(fig, out / "class_histogram.png", dpi=dpi))
    return written

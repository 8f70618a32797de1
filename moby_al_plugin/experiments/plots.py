"""Learning curves: accuracy against the number of labelled images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from .config import ExperimentError
from .results import median_stop, summarize

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    records: Iterable[dict], path_stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Draw one line per strategy (mean over trials, band of +-1 std).

    Where the records hold the stabilizing-predictions rule, a downward
    triangle on each line marks the labels at which it says stop (the median
    over trials), and the legend gives that number.

    Parameters
    ----------
    records : iterable of dict
        Result records with ``strategy``, ``trial``, ``n_labeled``, ``accuracy``.
    path_stem : str or Path
        Output path without suffix; ``.png`` and ``.svg`` are written.
    title : str or None

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ExperimentError
        If there are no records.

    Notes
    -----
    The figure is a bare :class:`matplotlib.figure.Figure`, not a pyplot one:
    nothing changes the caller's backend or opens a window, and no figure is
    left registered with pyplot.
    """
    summary = summarize(records)
    if not summary:
        raise ExperimentError("No results to plot.")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for strategy in sorted(summary):
        stats = summary[strategy]
        x = stats["n_labeled"]
        mean = [100 * m for m in stats["mean"]]
        std = [100 * s for s in stats["std"]]
        trials = max(stats["trials"])
        stop = median_stop(stats.get("stop_at", []))
        label = f"{strategy} (AUC {100 * stats['auc_mean']:.1f}"
        label += f", stops at {stop:.0f})" if stop is not None else ")"
        (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
        if stop is not None:
            ax.plot(
                [stop],
                [float(np.interp(stop, x, mean))],
                marker="v",
                markersize=9,
                color=line.get_color(),
                markeredgecolor="black",
                linestyle="none",
            )
        if trials > 1:
            ax.fill_between(
                x,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy (%)")
    n_trials = max(max(s["trials"]) for s in summary.values())
    subtitle = f"mean over {n_trials} trial{'s' if n_trials > 1 else ''}" + (
        ", band = ±1 std" if n_trials > 1 else ""
    )
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    # text stays text in the SVG, so it can be searched and edited
    with rc_context({"svg.fonttype": "none"}):
        for suffix in (".png", ".svg"):
            # write beside, then rename: a killed run never leaves half an image
            target = stem.with_suffix(suffix)
            tmp = target.with_name(f".{target.name}.tmp")
            fig.savefig(tmp, dpi=150, format=suffix[1:])
            tmp.replace(target)
            written.append(target)
    return written

"""Learning curves: accuracy against the number of labelled images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .results import summarize

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    records: Iterable[dict], path_stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Draw one line per strategy (mean over trials, band of +-1 std).

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
    ValueError
        If there are no records.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or wanted
    import matplotlib.pyplot as plt

    summary = summarize(records)
    if not summary:
        raise ValueError("No results to plot.")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for strategy in sorted(summary):
        stats = summary[strategy]
        x = stats["n_labeled"]
        mean = [100 * m for m in stats["mean"]]
        std = [100 * s for s in stats["std"]]
        trials = max(stats["trials"])
        (line,) = ax.plot(x, mean, marker="o", markersize=3,
                          label=f"{strategy} (AUC {100 * stats['auc_mean']:.1f})")
        if trials > 1:
            ax.fill_between(x, [m - s for m, s in zip(mean, std)],
                            [m + s for m, s in zip(mean, std)], color=line.get_color(),
                            alpha=0.15, linewidth=0)
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy (%)")
    n_trials = max(max(s["trials"]) for s in summary.values())
    subtitle = f"mean over {n_trials} trial{'s' if n_trials > 1 else ''}" + (
        ", band = ±1 std" if n_trials > 1 else "")
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    # text stays text in the SVG, so it can be searched and edited
    with plt.rc_context({"svg.fonttype": "none"}):
        for suffix in (".png", ".svg"):
            # write beside, then rename: a killed run never leaves half an image
            target = stem.with_suffix(suffix)
            tmp = target.with_name(f".{target.name}.tmp")
            fig.savefig(tmp, dpi=150, format=suffix[1:])
            tmp.replace(target)
            written.append(target)
    plt.close(fig)
    return written

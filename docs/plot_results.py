"""Draw the figures of the Results page from the committed result files.

    python docs/plot_results.py            # writes docs/pictures/results/*.png

Each figure reads the summaries (``summary``: mean and standard deviation of the
test accuracy per labelled-set size) of current result files under
``benchmarks/results/`` (see ``benchmarks/results/INDEX.md``):

- ``fashion-mnist-mid-budget.png``: random, margin and budget-aware picks from 200
  to 1,200 labels, batch-32 rule, three trials (``label_efficiency-b32-joined.json``);
- ``fashion-mnist-low-budget.png``: one batch chosen from zero labels at 10 to 100
  labels, five trials (``label_efficiency-b32-low-budget-joined.json``);
- ``fashion-mnist-self-training.png``: the same picks with and without self-training
  at 10 to 100 labels, three seeds (``label_efficiency-low-budget-fast-<n>.json`` and
  ``label_efficiency-low-budget-flexmatch-<n>.json``).

Run it again after one of these files changes, and commit the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUTPUT = ROOT / "docs" / "pictures" / "results"
LOW_BUDGETS = (10, 20, 50, 100)

# row name in the summaries -> label in the figures
LABELS = {
    "random": "random, from scratch",
    "margin": "margin (modAL), from scratch",
    "budget_aware_cold": "budget-aware, pretrained, cold start",
    "random_pretrained": "random, pretrained",
    "typiclust_cold": "TypiClust, pretrained, cold start",
    "maxherding_cold": "MaxHerding, pretrained, cold start",
    "typiclust": "TypiClust, pretrained, cold start",
}


def read_summary(name: str) -> dict:
    """The ``summary`` of ``benchmarks/results/<name>``."""
    return json.loads((RESULTS / name).read_text())["summary"]


def percent(values) -> list[float]:
    return [100 * v for v in values]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # no software version in the file: the same results give the same bytes
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _grouped_bars(ax, groups: dict[str, tuple[list[float], list[float]]], ticks) -> None:
    """Bars of mean ± std per tick, one colour per group."""
    width = 0.8 / len(groups)
    for i, (label, (means, stds)) in enumerate(groups.items()):
        xs = [t + (i - (len(groups) - 1) / 2) * width for t in range(len(ticks))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(range(len(ticks)), [str(t) for t in ticks])
    ax.set_xlabel("labels (one batch chosen from zero labels)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)


def mid_budget(output: Path) -> Path:
    summary = read_summary("label_efficiency-b32-joined.json")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in ("random", "margin", "budget_aware_cold"):
        row = summary[name]
        mean, std = percent(row["mean"]), percent(row["std"])
        ax.plot(row["n_labeled"], mean, marker="o", label=LABELS[name])
        ax.fill_between(
            row["n_labeled"],
            [m - s for m, s in zip(mean, std)],
            [m + s for m, s in zip(mean, std)],
            alpha=0.2,
        )
    random_final = 100 * summary["random"]["mean"][-1]
    ax.axhline(random_final, color="grey", linestyle="--", linewidth=1)
    ax.annotate(
        f"random at 1,200 labels ({random_final:.1f} %)",
        (200, random_final),
        xytext=(0, 4),
        textcoords="offset points",
        color="grey",
        fontsize=8,
    )
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fashion-MNIST, batch-32 rule, mean ± std of 3 trials")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, output / "fashion-mnist-mid-budget.png")


def low_budget(output: Path) -> Path:
    summary = read_summary("label_efficiency-b32-low-budget-joined.json")
    groups = {}
    for name in ("random", "random_pretrained", "maxherding_cold", "typiclust_cold"):
        row = summary[name]
        assert tuple(row["n_labeled"]) == LOW_BUDGETS, (name, row["n_labeled"])
        groups[LABELS[name]] = (percent(row["mean"]), percent(row["std"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _grouped_bars(ax, groups, LOW_BUDGETS)
    ax.set_title("Fashion-MNIST, a first batch, mean ± std of 5 trials")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, output / "fashion-mnist-low-budget.png")


def _low_budget_row(kind: str, name: str) -> tuple[list[float], list[float]]:
    means, stds = [], []
    for budget in LOW_BUDGETS:
        row = read_summary(f"label_efficiency-low-budget-{kind}-{budget}.json")[name]
        means.append(100 * row["mean"][0])
        stds.append(100 * row["std"][0])
    return means, stds


def self_training(output: Path) -> Path:
    groups = {
        "random, pretrained, plain": _low_budget_row("fast", "random_pretrained"),
        "random, pretrained, self-trained": _low_budget_row("flexmatch", "random_pretrained"),
        "TypiClust, plain": _low_budget_row("fast", "typiclust"),
        "TypiClust, self-trained": _low_budget_row("flexmatch", "typiclust"),
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _grouped_bars(ax, groups, LOW_BUDGETS)
    ax.set_title("Self-training (FlexMatch thresholds), mean ± std of 3 seeds")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, output / "fashion-mnist-self-training.png")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder of the figures")
    args = parser.parse_args(argv)
    written = [mid_budget(args.output), low_budget(args.output), self_training(args.output)]
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()

"""Teaching example 2: compare query strategies and plot their learning curves.

Every strategy starts from the same labelled images, trains the same network for the
same epochs, and is scored on the same test set; only the choice of images differs.
The runner writes results.csv (open it in a spreadsheet or pandas) and
learning_curves.png.

Run:  python examples/compare_strategies.py [--output DIR] [--tiny]
"""

from __future__ import annotations

import argparse
import warnings

from moby_al_plugin.experiments import ExperimentConfig, format_table, run_experiment, summarize

warnings.filterwarnings("ignore", message="'force_all_finite' was renamed")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="moby-al-results/compare-example")
    parser.add_argument("--tiny", action="store_true", help="seconds, for a quick look")
    args = parser.parse_args(argv)

    config = ExperimentConfig(
        dataset="digits",
        strategies=("mobyv2al", "coreset", "margin", "random"),
        initial_size=30 if args.tiny else 100,
        query_size=20 if args.tiny else 100,
        cycles=1 if args.tiny else 3,
        epochs=1 if args.tiny else 10,
        pool_size=300 if args.tiny else None,
        train_samples=64 if args.tiny else "auto",  # the converged rule
        pretrain_epochs=1 if args.tiny else 10,
        seeds=(0, 1),  # two trials: the plot shows the mean and the spread
    )
    records = run_experiment(config, args.output, log=print)
    summary = summarize(records)
    print(format_table(summary))
    print(f"plot: {args.output}/learning_curves.png")
    return summary


if __name__ == "__main__":
    main()

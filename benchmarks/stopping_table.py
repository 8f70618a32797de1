"""Where the stabilizing-predictions rule would stop, read from finished runs.

Every run of the experiment runner records, per cycle, Cohen's kappa between
that cycle's model and the previous one on a fixed stop set of pool images
(``stop_kappa``). This script replays the rule on those kappas for several
thresholds and windows, without training anything, and prints for each
strategy and trial: the labels at which it would stop, the accuracy then, the
accuracy at the last cycle, and what stopping leaves on the table.

Usage::

    python benchmarks/stopping_table.py benchmarks/results/label_efficiency-stopping-recipe-s0 \\
        benchmarks/results/label_efficiency-stopping-recipe-cold-budget_aware-s0 \\
        --thresholds 0.99,0.95,0.9,0.85 --window 3 --output stopping.json

``--noise-floor`` measures how far kappa can rise at all when every cycle
trains its network anew: it takes a finished run's last model (its pickled
state), fits the same network on the same labels again with other seeds, and
prints kappa between those models on a fixed set of 1,000 pool images. Two
models that saw the same labels disagree by seed alone, so a rule whose
threshold lies above that kappa cannot fire::

    python benchmarks/stopping_table.py --noise-floor \
        benchmarks/results/label_efficiency-stopping-recipe-cold-budget_aware-s0 \
        --strategy budget_aware --refits 2 --output noise-floor.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moby_al_plugin.experiments import load_experiment  # noqa: E402
from moby_al_plugin.stopping import stable_rounds  # noqa: E402


def stop_rows(records: list[dict], thresholds: list[float], window: int) -> list[dict]:
    """One row per (strategy, trial, threshold): where the rule stops and what it costs."""
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if "stop_kappa" in record:
            runs[(record["strategy"], record["trial"], record.get("seed"))].append(record)
    rows = []
    for (strategy, trial, seed), cycles in sorted(runs.items(), key=str):
        cycles.sort(key=lambda r: r["cycle"])
        kappas = [r["stop_kappa"] for r in cycles]
        last = cycles[-1]
        for threshold in thresholds:
            stop = next(
                (
                    r
                    for i, r in enumerate(cycles)
                    if stable_rounds(kappas[: i + 1], threshold) >= window
                ),
                None,
            )
            rows.append(
                {
                    "strategy": strategy,
                    "trial": trial,
                    "seed": seed,
                    "threshold": threshold,
                    "window": window,
                    "kappas": kappas,
                    "stop_labels": None if stop is None else stop["n_labeled"],
                    "stop_accuracy": None if stop is None else stop["accuracy"],
                    "last_labels": last["n_labeled"],
                    "last_accuracy": last["accuracy"],
                    "left_on_table": None
                    if stop is None
                    else round(last["accuracy"] - stop["accuracy"], 4),
                }
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [
        "| strategy | seed | kappa by cycle | threshold | stops at | accuracy then | "
        "last cycle | left on the table |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        kappas = " / ".join("-" if k is None else f"{k:.3f}" for k in r["kappas"])
        stopped = r["stop_labels"] is not None
        lines.append(
            f"| {r['strategy']} | {r['seed']} | {kappas} | {r['threshold']} | "
            + (
                f"{r['stop_labels']} | {100 * r['stop_accuracy']:.1f} | "
                if stopped
                else "never | - | "
            )
            + f"{r['last_labels']}: {100 * r['last_accuracy']:.1f} | "
            + (f"{100 * r['left_on_table']:.1f} points |" if stopped else "- |")
        )
    return "\n".join(lines)


def noise_floor(folder: str, strategy: str, refits: int, stop_set_size: int = 1000) -> dict:
    """Kappa between models fitted on the same labels with different seeds."""
    import itertools
    import pickle
    import time

    import numpy as np
    from sklearn.base import clone

    from moby_al_plugin.experiments.runner import PreparedData, pseudo_label_targets
    from moby_al_plugin.stopping import prediction_agreement

    config, _ = load_experiment(folder)
    with open(Path(folder) / "state" / f"{strategy}-trial0.pkl", "rb") as handle:
        state = pickle.load(handle)
    data = PreparedData(config)
    labeled = np.asarray(state.labeled)
    rest = np.setdiff1d(np.arange(len(data.y)), labeled)
    size = min(stop_set_size, len(data.y))
    stop = np.sort(np.random.RandomState(0).choice(len(data.y), size, replace=False))
    models = {"the run's": state.net}
    accuracy = {"the run's": float(state.net.score(data.X_test, data.y_test))}
    seconds = []
    for seed in range(1, refits + 1):
        net = clone(state.net).set_params(random_state=10_000 + seed, callbacks=[])
        started = time.perf_counter()
        targets = pseudo_label_targets(config, data, labeled, rest)  # as the run trained
        net.fit(data.X[labeled], data.y[labeled], X_unlabeled=data.X[rest], **targets)
        seconds.append(time.perf_counter() - started)
        models[f"refit {seed}"] = net
        accuracy[f"refit {seed}"] = float(net.score(data.X_test, data.y_test))
        print(f"refit {seed}: {accuracy[f'refit {seed}']:.4f} in {seconds[-1]:.0f} s", flush=True)
    predictions = {name: np.asarray(m.predict(data.X[stop])) for name, m in models.items()}
    pairs = [
        {"a": a, "b": b, "kappa": round(prediction_agreement(predictions[a], predictions[b]), 4)}
        for a, b in itertools.combinations(predictions, 2)
    ]
    for pair in pairs:
        print(f"kappa {pair['a']} vs {pair['b']}: {pair['kappa']:.3f}")
    return {
        "folder": folder,
        "strategy": strategy,
        "labels": int(len(labeled)),
        "stop_set_size": int(size),
        "accuracy": accuracy,
        "fit_seconds": [round(x, 1) for x in seconds],
        "pairs": pairs,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="results folders of the runner")
    parser.add_argument("--thresholds", default="0.99,0.95,0.9,0.85")
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--output", default=None, help="JSON file for the rows")
    parser.add_argument(
        "--noise-floor", action="store_true", help="refit the last model of one folder instead"
    )
    parser.add_argument("--strategy", default=None, help="--noise-floor: the run's strategy")
    parser.add_argument("--refits", type=int, default=2, help="--noise-floor: fits with new seeds")
    args = parser.parse_args(argv)
    if args.noise_floor:
        if len(args.folders) != 1 or args.strategy is None:
            parser.error("--noise-floor takes one folder and --strategy")
        result = noise_floor(args.folders[0], args.strategy, args.refits)
        if args.output:
            Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        return result["pairs"]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    records = [r for folder in args.folders for r in load_experiment(folder)[1]]
    rows = stop_rows(records, thresholds, args.window)
    if not rows:
        raise SystemExit("no run in these folders recorded the stopping rule (stop_kappa)")
    print(format_rows(rows))
    if args.output:
        Path(args.output).write_text(
            json.dumps({"folders": args.folders, "rows": rows}, indent=1) + "\n"
        )
    return rows


if __name__ == "__main__":
    main()

"""A quick probe of the selection strategies on fixed features (no network training).

Features: PCA of the pool's pixels, fitted on the pool alone (no label), the
stand-in for a pretrained encoder. Learner: logistic regression on those
features (a linear probe). Two settings, each over several trials (a fresh
random pool per trial):

- cold start: one batch of B labels chosen from zero labels;
- sequential: a random initial set, then batches chosen with the labels so far.

Prints a Markdown table of test accuracy (mean and standard deviation over
trials) and writes the figures as JSON.

    python benchmarks/selection_probe.py --dataset fashion_mnist --trials 3
    python benchmarks/selection_probe.py --dataset digits --trials 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from moby_al_plugin import (
    budget_aware_sampling,
    coreset_sampling,
    load_digits_dataset,
    load_fashion_mnist,
    maxherding_sampling,
    random_sampling,
    typiclust_sampling,
)


def _strategies():
    return {
        "random": lambda est, X, n, L, seed: random_sampling(est, X, n, random_state=seed),
        "kcenter": lambda est, X, n, L, seed: coreset_sampling(
            est, X, n, normalize=False, subset_size=None, X_labeled=L, random_state=seed
        ),
        "kcenter_norm": lambda est, X, n, L, seed: coreset_sampling(
            est, X, n, normalize=True, subset_size=None, X_labeled=L, random_state=seed
        ),
        "typiclust": lambda est, X, n, L, seed: typiclust_sampling(
            est, X, n, subset_size=None, X_labeled=L, random_state=seed
        ),
        "maxherding": lambda est, X, n, L, seed: maxherding_sampling(
            est, X, n, subset_size=None, X_labeled=L, random_state=seed
        ),
        # diverse uncertainty: needs a fitted classifier, so sequential only
        "margin_diverse": lambda est, X, n, L, seed: budget_aware_sampling(
            est,
            X,
            n,
            switch_at=0,
            after="margin",
            subset_size=None,
            X_labeled=L,
            random_state=seed,
        ),
        "budget_aware": lambda est, X, n, L, seed: budget_aware_sampling(
            est, X, n, n_classes=10, subset_size=None, X_labeled=L, random_state=seed
        ),
    }


SEQUENTIAL_ONLY = {"margin_diverse"}


def _load(name: str, pool_size: int, test_size: int, seed: int):
    data = load_fashion_mnist() if name == "fashion_mnist" else load_digits_dataset()

    def flat(images):
        images = np.asarray(images).reshape(len(images), -1)
        return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images

    X, y, X_test, y_test = flat(data.X_train), data.y_train, flat(data.X_test), data.y_test
    rng = np.random.RandomState(seed)
    pool = rng.choice(len(X), size=min(pool_size, len(X)), replace=False)
    test = rng.choice(len(X_test), size=min(test_size, len(X_test)), replace=False)
    return X[pool], y[pool], X_test[test], y_test[test]


def _accuracy(F, y, labelled, F_test, y_test) -> float:
    if len(np.unique(y[labelled])) < 2:
        return float(np.mean(y_test == y[labelled][0]))
    clf = LogisticRegression(max_iter=2000).fit(F[labelled], y[labelled])
    return float(clf.score(F_test, y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion_mnist", "digits"], default="digits")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--pool-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--cold", default="10,20,50,100", help="cold-start budgets")
    parser.add_argument("--initial", type=int, default=100, help="sequential: random start")
    parser.add_argument("--step", type=int, default=100, help="sequential: batch size")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--strategies", default=None, help="comma-separated subset")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    strategies = _strategies()
    if args.strategies:
        strategies = {name: strategies[name] for name in args.strategies.split(",")}
    cold_budgets = [int(b) for b in args.cold.split(",") if b]
    results: dict[str, dict[str, list[float]]] = {}
    started = time.perf_counter()
    for trial in range(args.trials):
        X, y, X_test, y_test = _load(args.dataset, args.pool_size, args.test_size, trial)
        pca = PCA(n_components=min(args.components, X.shape[1]), random_state=trial).fit(X)
        F, F_test = pca.transform(X), pca.transform(X_test)
        for name, query in strategies.items():
            for budget in [] if name in SEQUENTIAL_ONLY else cold_budgets:
                idx, _ = query(pca, X, budget, None, trial)
                acc = _accuracy(F, y, idx, F_test, y_test)
                results.setdefault(f"cold {budget}", {}).setdefault(name, []).append(acc)
            labelled = np.random.RandomState(1000 + trial).choice(
                len(X), args.initial, replace=False
            )
            for cycle in range(1, args.cycles + 1):
                rest = np.setdiff1d(np.arange(len(X)), labelled)
                # the learner of this cycle: the fixed PCA, then a probe on the labels so far
                clf = LogisticRegression(max_iter=2000).fit(F[labelled], y[labelled])
                learner = make_pipeline(pca, clf)
                idx, _ = query(learner, X[rest], args.step, X[labelled], trial * 100 + cycle)
                labelled = np.concatenate([labelled, rest[idx]])
                acc = _accuracy(F, y, labelled, F_test, y_test)
                key = f"seq {len(labelled)}"
                results.setdefault(key, {}).setdefault(name, []).append(acc)
        print(f"trial {trial} done, {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started

    names = list(strategies)
    print(f"| {args.dataset} labels | " + " | ".join(names) + " |")
    print("|" + " --- |" * (len(names) + 1))
    for key, row in results.items():
        cells = [
            f"{100 * np.mean(row[n]):.1f} ± {100 * np.std(row[n]):.1f}" if n in row else "-"
            for n in names
        ]
        print(f"| {key} | " + " | ".join(cells) + " |")
    print(f"{args.trials} trials, {seconds:.0f} s")
    if args.output is not None:
        payload = {
            "args": {k: str(v) for k, v in vars(args).items() if k != "output"},
            "accuracy": results,
            "seconds": seconds,
        }
        args.output.write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""The graph step at low budgets: label spreading over the pool against a classifier on the picks.

One batch from zero labels (default 10, 20, 50 and 100 Fashion-MNIST labels),
picked at random or by TypiClust, in two feature spaces: PCA-50 of the
pixels (no network at all) and the features of a pretrained ``MoBYEncoder``
(``--encoder``, for example the encoder that ``label_efficiency.py`` caches
under ``benchmarks/results/cache``). Each set of picks is scored twice on the
test set: logistic regression trained on the picks' features alone, and
:class:`~moby_al_plugin.LabelSpreadingClassifier` spreading the picks' labels
over the whole pool, then predicting each test image from its nearest pool
images. The logistic regression reads the features as they come (as
``selection_probe.py`` does: normalised features would need another
regularisation), TypiClust and the spreading compare them by cosine.

Usage::

    python benchmarks/graph_step.py --encoder benchmarks/results/cache/encoder-<key>.pt
    python benchmarks/graph_step.py --features pca --alphas 0.2,0.99 --trials 3
    python benchmarks/graph_step.py --quick   # digits, seconds; used by the tests
    python benchmarks/graph_step.py --scale 100000,1000000 --methods faiss  # time and memory

Writes ``benchmarks/results/graph_step[-quick].json`` (or ``--output``) and
prints one Markdown table: test accuracy %, mean ± std over the trials.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, machine_info

from moby_al_plugin import LabelSpreadingClassifier, load_dataset, subsample_indices
from moby_al_plugin.selection.features import l2_normalize
from moby_al_plugin.selection.typicality import typiclust_select

PICKS = ("random", "typiclust")


def _features(kind: str, X_pool, X_test, encoder: str | None, seed: int = 0):
    """Features of the pool and the test set in the space ``kind``, as they come."""
    if kind == "pca":
        from sklearn.decomposition import PCA

        flat_pool = X_pool.reshape(len(X_pool), -1).astype(np.float32)
        pca = PCA(n_components=min(50, flat_pool.shape[1]), random_state=seed).fit(flat_pool)
        F_pool, F_test = pca.transform(flat_pool), pca.transform(X_test.reshape(len(X_test), -1))
    else:
        from moby_al_plugin import load_encoder

        model = load_encoder(encoder)
        F_pool, F_test = model.transform(X_pool), model.transform(X_test)
    return np.asarray(F_pool, np.float32), np.asarray(F_test, np.float32)


def _picks(how: str, F_pool: np.ndarray, budget: int, seed: int) -> np.ndarray:
    if how == "random":
        return np.random.default_rng(seed).choice(len(F_pool), budget, replace=False)
    # on the unit sphere, as typiclust_sampling's normalize=True does
    return typiclust_select(None, l2_normalize(F_pool), budget, random_state=seed)


def _scores(F_pool, y_pool, F_test, y_test, picks, alphas, n_neighbors) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    scores = {}
    if len(np.unique(y_pool[picks])) > 1:
        logreg = LogisticRegression(max_iter=2000).fit(F_pool[picks], y_pool[picks])
        scores["logreg"] = float((logreg.predict(F_test) == y_test).mean())
    else:  # a single class picked: the classifier can only say that class
        scores["logreg"] = float((y_test == y_pool[picks][0]).mean())
    for alpha in alphas:
        spreading = LabelSpreadingClassifier(n_neighbors=n_neighbors, alpha=alpha)
        spreading.fit(F_pool[picks], y_pool[picks], X_unlabeled=F_pool)
        scores[f"spreading a{alpha:g}"] = float((spreading.predict(F_test) == y_test).mean())
    return scores


def _table(rows: list[dict], budgets: list[int]) -> str:
    keys = sorted({(r["features"], r["picks"], r["learner"]) for r in rows})
    lines = [
        "| features | picks | learner | " + " | ".join(str(b) for b in budgets) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in budgets) + " |",
    ]
    for key in keys:
        cells = []
        for b in budgets:
            acc = [r["accuracy"] for r in rows if (r["features"], r["picks"], r["learner"]) == key
                   and r["budget"] == b]  # fmt: skip
            cells.append(f"{100 * np.mean(acc):.1f} ± {100 * np.std(acc):.1f}" if acc else "")
        lines.append(f"| {' | '.join(key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scale(sizes: list[int], methods: list[str], dim: int = 128, seed: int = 0) -> list[dict]:
    """Seconds of the graph step on synthetic features: ten Gaussian clusters, 1,000 labels.

    For each pool size and neighbour search: the kNN graph with the spreading
    (``fit``), then 10,000 new images predicted; the peak resident memory of
    the process so far, and the accuracy on the clusters (a check, not a figure).
    """
    import resource

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dim)).astype(np.float32)
    rows = []
    for n in sizes:
        labels = rng.integers(0, 10, size=n + 10_000)
        features = centres[labels] + rng.normal(scale=4.0, size=(n + 10_000, dim)).astype(
            np.float32
        )
        pool, new = features[:n], features[n:]
        for method in methods:
            clf = LabelSpreadingClassifier(neighbors=method, classes=list(range(10)))
            started = time.perf_counter()
            clf.fit(pool[:1000], labels[:1000], X_unlabeled=pool[1000:])
            fitted = time.perf_counter()
            accuracy = float((clf.predict(new) == labels[n:]).mean())
            predicted = time.perf_counter()
            rows.append(dict(
                n=n, method=clf.index_.method, fit_seconds=round(fitted - started, 1),
                predict_10000_seconds=round(predicted - fitted, 1), accuracy=round(accuracy, 4),
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            ))  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--pool-size", type=int, default=20_000, help="the prototype's pool")
    p.add_argument("--budgets", default="10,20,50,100")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--features", default="pca,encoder", help="pca, encoder or both")
    p.add_argument("--encoder", default=None, help="a saved MoBYEncoder (for --features encoder)")
    p.add_argument("--picks", default="random,typiclust")
    p.add_argument("--alphas", default="0.2,0.99", help="label spreading's alpha values")
    p.add_argument("--n-neighbors", type=int, default=10)
    p.add_argument("--output", default=None, help="JSON path (default results/graph_step.json)")
    p.add_argument("--quick", action="store_true", help="digits, tiny; for the tests")
    p.add_argument(
        "--scale",
        default=None,
        help="pool sizes, e.g. 100000,1000000: time the graph step on synthetic features instead",
    )
    p.add_argument("--methods", default="exact,faiss", help="--scale: neighbour searches")
    args = p.parse_args(argv)
    if args.scale:
        sizes = [int(n) for n in args.scale.split(",")]
        methods = [m for m in args.methods.split(",") if m]
        payload = dict(machine=machine_info(), rows=scale(sizes, methods))
        output = Path(args.output) if args.output else RESULTS / "graph_step-scale.json"
        output.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {output}")
        return payload
    if args.quick:
        args.dataset, args.pool_size, args.budgets, args.trials = "digits", 600, "10,30", 2
        args.features = "pca" if args.encoder is None else args.features
    features = [f for f in args.features.split(",") if f]
    if "encoder" in features and args.encoder is None:
        p.error("--features encoder needs --encoder PATH (a saved MoBYEncoder)")
    budgets = [int(b) for b in args.budgets.split(",")]
    alphas = [float(a) for a in args.alphas.split(",")]
    data = load_dataset(args.dataset)
    X, y = data.X_train, data.y_train
    if args.pool_size < len(y):
        keep = subsample_indices(y, args.pool_size, random_state=0)
        X, y = X[keep], y[keep]
    rows, started = [], time.perf_counter()
    for kind in features:
        t0 = time.perf_counter()
        F_pool, F_test = _features(kind, X, data.X_test, args.encoder)
        print(f"{kind} features of {len(F_pool)} pool and {len(F_test)} test images: "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        for how in (h for h in args.picks.split(",") if h):
            for budget in budgets:
                cell = dict(features=kind, picks=how, budget=budget)
                trials = []
                for trial in range(args.trials):
                    picks = _picks(how, F_pool, budget, seed=trial)
                    scores = _scores(F_pool, y, F_test, data.y_test, picks, alphas,
                                     args.n_neighbors)  # fmt: skip
                    trials.append(scores)
                    rows += [
                        dict(cell, learner=k, trial=trial, accuracy=a) for k, a in scores.items()
                    ]
                means = {k: 100 * np.mean([t[k] for t in trials]) for k in trials[0]}
                listed = ", ".join(f"{k} {v:.1f}" for k, v in means.items())
                print(f"  {kind} {how} {budget} labels: {listed}", flush=True)
    table = _table(rows, budgets)
    print(table)
    payload = dict(
        settings={k: v for k, v in vars(args).items() if k != "output"},
        machine=machine_info(),
        wall_seconds=round(time.perf_counter() - started, 1),
        rows=rows,
        table=table,
    )
    output = Path(args.output) if args.output else RESULTS / (
        "graph_step" + ("-quick" if args.quick else "") + ".json")  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {output}")
    return payload


if __name__ == "__main__":
    main()

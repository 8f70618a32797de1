"""What the MoBY loss costs, part by part, and what its cheaper settings cost in a fit.

1. ``parts``: one training step of the joint net at batch 32, cut into its
   parts and each timed on its own (median over ``--steps`` steps after a
   warm-up): the two augmented views, the online branch forward of each
   view (encoder, projector, predictor), the key (momentum) branch forward
   of both views, the InfoNCE loss against the queues, the backward pass,
   the optimiser step and the momentum update with the enqueue; beside it a
   plain cross-entropy step (weak view, forward, loss, backward, step).
2. ``fits``: seconds per labelled sample of ``MoBYClassifier.fit`` with the
   loss settings of ``--variants`` (``contrastive_weight``,
   ``unlabeled_ratio``, ``contrastive_every``), against the plain
   cross-entropy fit of the same net and samples, interleaved ``--repeats``
   times in one process; the figure is the median ratio to the plain fit.
   The ``selftrain`` variants price self-training (``pseudo_label_weight=1``,
   FlexMatch thresholds) the same way; ``graph_selftrain`` self-trains on the
   graph's pseudo-labels instead (label spreading over PCA-50 of the pixels,
   the surest half of the pool, as ``--graph-pseudo-labels 0.5``), its
   seconds including the graph's; ``graph_labels`` learns the same targets
   as extra labels (``pseudo_label_mode="labels"``).

Both in float32 and in bfloat16 autocast (``--precisions``). Accuracy of the
same settings comes from ``benchmarks/learner.py --study convergence
--inits pretrained --contrastive-weight ...``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/moby_cost.py --threads 1    # about 10 minutes
    python benchmarks/moby_cost.py --quick                           # seconds; the tests
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import RESULTS, machine_info, write_json

from moby_al_plugin import MoBYClassifier, load_digits_dataset, load_fashion_mnist
from moby_al_plugin._validation import check_images
from moby_al_plugin.augment import get_view_pair
from moby_al_plugin.hardware import autocast, resolve_precision
from moby_al_plugin.network import advance_key_branch, moby_contrastive_loss
from moby_al_plugin.semi_supervised.graph_pseudo_labels import (
    graph_targets,
    pixel_pca_features,
    pool_graph,
)

#: name: (contrastive_weight, unlabeled_ratio, contrastive_every, pseudo_label_weight);
#: self-training with FlexMatch thresholds (most pool images pass them after warm-up)
VARIANTS = {
    "plain": (0.0, 1.0, 1, 0.0),
    "moby": (0.5, 1.0, 1, 0.0),
    "moby_u0.25": (0.5, 0.25, 1, 0.0),
    "moby_u0.25_every4": (0.5, 0.25, 4, 0.0),
    "moby_u0.25_every8": (0.5, 0.25, 8, 0.0),
    "moby_u0.5_every4": (0.5, 0.5, 4, 0.0),
    "selftrain": (0.0, 1.0, 1, 1.0),
    "selftrain_u0.5": (0.0, 0.5, 1, 1.0),
    "graph_selftrain": (0.0, 1.0, 1, 1.0),
    "graph_labels": (0.0, 1.0, 1, 1.0),
}
#: variants whose pseudo-labels come from the graph, and the share of the pool they cover
GRAPH_SHARE = {"graph_selftrain": 0.5, "graph_labels": 0.5}
#: variants that learn the graph's labels as extra labels (``pseudo_label_mode="labels"``)
AS_LABELS = ("graph_labels",)


def graph_pseudo_targets(X_train, y_train, pool, share: float) -> np.ndarray:
    """The runner's graph targets for ``pool``: PCA-50 of the pixels, label spreading."""
    features = pixel_pca_features(np.concatenate([X_train, pool]))
    n = len(X_train)
    rows = np.arange(len(features))
    y = np.r_[y_train, np.zeros(len(pool), y_train.dtype)]
    return graph_targets(pool_graph(features), y, rows[:n], rows[n:], np.unique(y_train), share)


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=60, help="parts: timed steps")
    p.add_argument("--samples", type=int, default=12_800, help="fits: labelled samples a fit")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--labels", type=int, default=600, help="fits: labelled images")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--quick", action="store_true", help="tiny settings on the digits")
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    args.precisions = [x for x in args.precisions.split(",") if x]
    args.variants = [x for x in args.variants.split(",") if x]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variants {unknown}; choose among {', '.join(VARIANTS)}")
    if args.quick:
        args.steps, args.samples, args.repeats, args.labels = 4, 256, 1, 100
        args.variants = ["plain", "moby_u0.25_every4", "graph_selftrain", "graph_labels"]
    return args


class _Laps:
    """Seconds since the previous lap, by name."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now


def step_parts(net: MoBYClassifier, X: torch.Tensor, y: torch.Tensor, args, precision) -> dict:
    """Median seconds of each part of a joint step and of a plain step."""
    module = net.module_
    module.train()
    weak, strong = get_view_pair(net.views, net.n_channels_in_)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    parts: dict[str, list[float]] = {}
    for step in range(args.steps + 2):
        rows = torch.randint(0, X.shape[0], (32,), generator=generator)
        x, target = X[rows], y[rows]
        lap = _Laps()
        x_weak = weak(x, generator)
        lap("weak view")
        x_strong = strong(x, generator)
        lap("strong view")
        with autocast(precision):
            f_weak, q_weak = _online(module, x_weak)
            lap("online forward, weak")
            _, q_strong = _online(module, x_strong)
            lap("online forward, strong")
            k_strong, k_weak = module.momentum_keys(x_strong), module.momentum_keys(x_weak)
            lap("key branch forward, both")
            ce = torch.nn.functional.cross_entropy(module.classifier(f_weak).float(), target)
            contrastive = moby_contrastive_loss(
                q_strong, q_weak, k_strong, k_weak,
                module.queue_strong, module.queue_weak, module.temperature,
            )  # fmt: skip
            loss = ce + 0.5 * contrastive
            lap("losses")
        loss.backward()
        lap("backward")
        optimizer.step()
        optimizer.zero_grad()
        lap("optimiser step")
        advance_key_branch(module, k_strong, k_weak, momentum=0.99)
        lap("momentum update and enqueue")
        # the plain step of the same batch
        with autocast(precision):
            plain = torch.nn.functional.cross_entropy(module(weak(x, generator)).float(), target)
        plain.backward()
        optimizer.step()
        optimizer.zero_grad()
        lap("plain step")
        if step >= 2:  # warm-up
            for name, seconds in lap.times.items():
                parts.setdefault(name, []).append(seconds)
    medians = {name: statistics.median(v) for name, v in parts.items()}
    joint = sum(v for k, v in medians.items() if k != "plain step")
    return {
        "median_seconds": {k: round(v * 1e3, 3) for k, v in medians.items()},
        "unit": "ms",
        "joint_step_ms": round(joint * 1e3, 3),
        "joint_over_plain": round(joint / medians["plain step"], 3),
        "share_of_joint": {k: round(v / joint, 3) for k, v in medians.items() if k != "plain step"},
    }


def _online(module, x):
    features = module.embed(x)
    query = torch.nn.functional.normalize(
        module.predictor(module.projector(features)).float(), dim=1
    )
    return features, query


def fit_costs(data, args, precision: str) -> dict:
    """Seconds per labelled sample of each variant, and the ratio to the plain fit."""
    X_train, y_train, pool, views = data
    rows = []
    for repeat in range(args.repeats):
        plain_seconds = None
        for name in args.variants:
            weight, ratio, every, pseudo = VARIANTS[name]
            net = MoBYClassifier(
                contrastive_weight=weight,
                unlabeled_ratio=ratio,
                contrastive_every=every,
                pseudo_label_weight=pseudo,
                pseudo_label_thresholds="flexmatch",
                train_samples=args.samples,
                max_epochs=2,
                views=views,
                precision=precision,
                random_state=repeat,
                **(dict(queue_size=64, projection_dim=16) if args.quick else {}),
            )
            started = time.perf_counter()
            targets = None
            if name in GRAPH_SHARE:
                targets = graph_pseudo_targets(X_train, y_train, pool, GRAPH_SHARE[name])
                net.set_params(pseudo_label_thresholds="fixed")
            if name in AS_LABELS:
                net.set_params(pseudo_label_mode="labels")
            net.fit(X_train, y_train, X_unlabeled=pool, unlabeled_proba=targets)
            seconds = time.perf_counter() - started
            per_sample = seconds / (net.epoch_samples_ * net.max_epochs)
            if name == "plain":
                plain_seconds = per_sample
            rows.append(
                {
                    "variant": name,
                    "repeat": repeat,
                    "seconds": round(seconds, 2),
                    "ms_per_labelled_sample": round(per_sample * 1e3, 4),
                    "steps": int(net.total_steps_),
                    "over_plain": round(per_sample / plain_seconds, 3) if plain_seconds else None,
                }
            )
            print(
                f"{precision} {name:>20} repeat {repeat}: {seconds:6.1f} s, "
                f"{rows[-1]['over_plain']} x plain",
                flush=True,
            )
    summary = {}
    for name in args.variants:
        sel = [r for r in rows if r["variant"] == name]
        ratios = [r["over_plain"] for r in sel if r["over_plain"] is not None]
        summary[name] = {
            "ms_per_labelled_sample": statistics.median(r["ms_per_labelled_sample"] for r in sel),
            "over_plain_median": statistics.median(ratios) if ratios else None,
        }
    return {"rows": rows, "summary": summary}


def main(argv=None) -> dict:
    args = _parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        d = load_digits_dataset()
        views = "digits"
    else:
        d = load_fashion_mnist()
        views = "fashion_mnist"
    rng = np.random.default_rng(0)
    idx = rng.choice(d.X_train.shape[0], args.labels, replace=False)
    X_l, y_l = d.X_train[idx], d.y_train[idx]
    pool = np.delete(d.X_train, idx, axis=0)[: 20 * args.labels]
    payload = {"machine": machine_info(), "threads": args.threads, "labels": args.labels}
    for precision in args.precisions:
        resolved = resolve_precision(precision)
        net = MoBYClassifier(
            train_samples=64,
            max_epochs=1,
            views=views,
            precision=precision,
            random_state=0,
            **(dict(queue_size=64, projection_dim=16) if args.quick else {}),
        ).fit(X_l, y_l)
        X = torch.as_tensor(check_images(X_l))
        y = torch.as_tensor(net._encode_labels(y_l, allow_new=False))
        parts = step_parts(net, X, y, args, resolved)
        print(f"{precision}: {parts}", flush=True)
        payload[precision] = {
            "resolved": resolved,
            "parts": parts,
            "fits": fit_costs((X_l, y_l, pool, views), args, precision),
        }
    output = args.output or (None if args.quick else RESULTS / "moby_cost.json")
    if output:
        write_json(output, payload)
        print(f"wrote {output}")
    return payload


if __name__ == "__main__":
    main()

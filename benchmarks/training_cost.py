"""Training cost: a MoBY joint step against a supervised step, and warm starts.

1. Images per second of MoBY joint training steps (two views through the
   online branch, two through the momentum branch, one backward pass)
   against supervised steps (one weak view, cross-entropy) of the same
   backbone, batch and data. Each training step is timed on its own
   (augmentations, forward, backward, optimiser and momentum updates
   included); the first epoch is warm-up and left out, and so are network
   construction and the per-epoch bookkeeping, which do not grow with the
   data. The two fits are interleaved ``--repeats`` times; the figure is the
   median of the per-pair ratios of median step times.
2. Time to reach the same test accuracy for an active-learning cycle trained
   from scratch against one warm-started from the previous cycle's weights.

Usage::

    python benchmarks/training_cost.py            # Fashion-MNIST if installed, else digits
    python benchmarks/training_cost.py --quick    # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import machine_info, write_json
from skorch.callbacks import Callback

from moby_al_plugin import MoBYClassifier, load_dataset


class _AccuracyTrace(Callback):
    """Test accuracy and elapsed seconds after every epoch."""

    def __init__(self, X_test, y_test):
        self.X_test = X_test
        self.y_test = y_test

    def on_train_begin(self, net, **kwargs):
        self.trace_ = []
        self.start_ = time.perf_counter()
        self.paused_ = 0.0

    def on_epoch_end(self, net, **kwargs):
        paused = time.perf_counter()
        accuracy = float((net.predict(self.X_test) == self.y_test).mean())
        self.paused_ += time.perf_counter() - paused  # evaluation is not training time
        self.trace_.append((time.perf_counter() - self.start_ - self.paused_, accuracy))


class _StepTimer(Callback):
    """Seconds of every training step after the first (warm-up) epoch."""

    def on_train_begin(self, net, **kwargs):
        self.seconds_ = []
        self.epoch_ = 0

    def on_epoch_begin(self, net, **kwargs):
        self.epoch_ += 1

    def on_batch_begin(self, net, training=False, **kwargs):
        self.started_ = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.epoch_ > 1:
            self.seconds_.append(time.perf_counter() - self.started_)


def _net(args, **params) -> MoBYClassifier:
    defaults = dict(
        backbone=args.backbone,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        queue_size=args.queue_size,
        views=args.views,
        random_state=0,
        classes=list(range(10)),
        # one pass per epoch: steps are timed one by one, and the
        # quick mode stays quick
        min_samples_per_epoch=None,
        train_samples=None,
    )
    defaults.update(params)
    return MoBYClassifier(**defaults)


def step_cost(args, X, y) -> dict:
    """Per-step images/s of MoBY joint steps and supervised steps, median ratio.

    ``moby_step_s`` and ``supervised_step_s`` hold each repeat's median step.
    """
    moby_s, supervised_s = [], []
    for _ in range(args.repeats):
        for weight, sink in ((0.5, moby_s), (0.0, supervised_s)):
            # unlabeled_ratio=0: the same labelled batches, so the same step count
            timer = _StepTimer()
            net = _net(
                args,
                contrastive_weight=weight,
                unlabeled_ratio=0.0,
                callbacks=[("step_timer", timer)],
            )
            net.fit(X, y)
            sink.append(statistics.median(timer.seconds_))
    ratios = [m / s for m, s in zip(moby_s, supervised_s)]
    return {
        "batch_size": args.batch_size,
        "moby_step_s": moby_s,
        "supervised_step_s": supervised_s,
        "moby_images_per_s": args.batch_size / statistics.median(moby_s),
        "supervised_images_per_s": args.batch_size / statistics.median(supervised_s),
        "ratio_per_repeat": ratios,
        "median_ratio": statistics.median(ratios),
    }


def warm_start_cost(args, X, y, X_pool, X_test, y_test) -> dict:
    """Seconds of training until cycle 2 reaches the from-scratch run's final accuracy."""
    first, second = args.labels, 2 * args.labels
    warm = _net(args, warm_start=True)
    warm.fit(X[:first], y[:first], X_unlabeled=X_pool)
    runs = {}
    for name, net in (("scratch", _net(args)), ("warm", warm)):
        trace = _AccuracyTrace(X_test, y_test)
        net.set_params(callbacks=[("trace", trace)])
        net.initialize_callbacks()
        net.fit(X[:second], y[:second], X_unlabeled=X_pool)
        runs[name] = trace.trace_
    target = runs["scratch"][-1][1]

    def time_to(trace):
        return next((t for t, acc in trace if acc >= target), None)

    return {
        "labels_first_cycle": first,
        "labels_second_cycle": second,
        "target_accuracy": target,
        "scratch_seconds_to_target": time_to(runs["scratch"]),
        "warm_seconds_to_target": time_to(runs["warm"]),
        "scratch_trace": runs["scratch"],
        "warm_trace": runs["warm"],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="fashion-mnist if installed, else digits")
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--labels", type=int, default=1000, help="labels of the first cycle")
    parser.add_argument("--queue-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.epochs, args.labels, args.repeats = "digits", 2, 64, 1
        args.batch_size, args.queue_size = 32, 128
    if args.dataset is None:
        from pathlib import Path

        installed = Path("/usr/share/datasets/fashion-mnist").is_dir()
        args.dataset = "fashion-mnist" if installed else "digits"
    data = load_dataset(args.dataset)
    args.views = data.view_preset
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.y_train))
    X, y = data.X_train[order], data.y_train[order]
    X_pool = X[2 * args.labels : 2 * args.labels + 2 * args.labels]
    X_test, y_test = data.X_test[:2000], data.y_test[:2000]

    result = {
        "machine": machine_info(),
        "dataset": args.dataset,
        "backbone": args.backbone,
        "epochs": args.epochs,
        "quick": args.quick,
    }
    result["step_cost"] = step_cost(args, X[: args.labels], y[: args.labels])
    s = result["step_cost"]
    print(
        f"{args.backbone}, batch {args.batch_size}: MoBY joint step "
        f"{s['moby_images_per_s']:.0f} images/s, supervised step "
        f"{s['supervised_images_per_s']:.0f} images/s, median cost ratio "
        f"{s['median_ratio']:.2f}x over {args.repeats} repeats"
    )
    result["warm_start"] = warm_start_cost(args, X, y, X_pool, X_test, y_test)
    w = result["warm_start"]
    print(
        f"cycle {w['labels_first_cycle']} -> {w['labels_second_cycle']} labels: target "
        f"{100 * w['target_accuracy']:.1f}% (scratch, {args.epochs} epochs); seconds to "
        f"reach it: scratch {w['scratch_seconds_to_target']}, warm start "
        f"{w['warm_seconds_to_target']}"
    )
    path = write_json("training_cost_quick.json" if args.quick else "training_cost.json", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()

"""Teaching example 1: a plain modAL loop with MoBYv2AL on Fashion-MNIST.

Read it top to bottom:
1. load real images (Debian's dataset-fashion-mnist package puts them on disk);
2. wrap the self-supervised network as a modAL estimator;
3. let the learner ask for labels, cycle after cycle, and watch test accuracy.

Run:  python examples/fashion_mnist_modal_loop.py            (a few minutes)
      python examples/fashion_mnist_modal_loop.py --tiny     (seconds)
"""

from __future__ import annotations

import argparse

import numpy as np

from moby_al_plugin import (
    ActiveLearner,
    MoBYClassifier,
    initial_labeled_indices,
    load_fashion_mnist,
    mobyv2al_sampling,
)


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few hundred images, 1 epoch")
    args = parser.parse_args(argv)
    pool_size, test_size = (600, 300) if args.tiny else (10_000, 2_000)
    # labelled samples each fit sees: "auto" is the library's rule, enough to
    # converge at any labelled-set size
    train_samples = 64 if args.tiny else "auto"

    # 1. Data: 28x28 grey images of clothes, as uint8 arrays; y_pool plays the annotator.
    data = load_fashion_mnist()
    X_pool, y_pool = data.X_train[:pool_size], data.y_train[:pool_size]
    X_test, y_test = data.X_test[:test_size], data.y_test[:test_size]

    # The first labelled set: 10 images of each class.
    start = initial_labeled_indices(y_pool, 100, random_state=0)
    X_start, y_start = X_pool[start], y_pool[start]
    X_pool, y_pool = np.delete(X_pool, start, axis=0), np.delete(y_pool, start)

    # 2. The network: a small CNN trained with cross-entropy on labelled images and the
    #    MoBY contrastive loss on labelled and unlabelled ones.
    net = MoBYClassifier(
        backbone="small_cnn",
        train_samples=train_samples,
        max_epochs=1 if args.tiny else 10,
        views="fashion_mnist",
        classes=list(range(10)),
        random_state=0,
    )
    learner = ActiveLearner(
        estimator=net,
        query_strategy=mobyv2al_sampling,
        X_training=X_start,
        y_training=y_start,
        X_unlabeled=X_pool,
    )

    # 3. The loop: query, "annotate" (look the labels up), teach, evaluate.
    accuracies = [learner.score(X_test, y_test)]
    print(f"{len(learner.X_training)} labels: accuracy {accuracies[-1]:.3f}")
    for _ in range(3):
        idx, _ = learner.query(X_pool, n_instances=100, random_state=0)
        remaining = np.delete(X_pool, idx, axis=0)
        learner.teach(X_pool[idx], y_pool[idx], X_unlabeled=remaining)
        X_pool, y_pool = remaining, np.delete(y_pool, idx)
        accuracies.append(learner.score(X_test, y_test))
        print(
            f"{len(learner.X_training)} labels: accuracy {accuracies[-1]:.3f}, "
            f"classes picked: {np.bincount(learner.y_training[-100:], minlength=10)}"
        )
    return accuracies


if __name__ == "__main__":
    main()

"""MoBYv2AL in a plain modAL loop on the scikit-learn digits.

Start from 100 labelled images, then ask for 100 more per cycle: the network
trains jointly on the labelled images (cross-entropy + contrastive loss) and on
the unlabelled pool (contrastive loss only), and ``mobyv2al_sampling`` picks the
next batch with k-Center-Greedy in its feature space.

Run:  python examples/quickstart_modal.py [--cycles 4] [--train-samples auto]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from moby_al_plugin import ActiveLearner, MoBYClassifier, load_digits_dataset, mobyv2al_sampling


def build_net(seed: int, train_samples: int | str = "auto") -> MoBYClassifier:
    """The network of this example: a small CNN for the 8x8 digits.

    Each fit sees ``train_samples`` labelled samples: ``"auto"`` is the
    library's rule, enough for the net to converge at any labelled-set size.
    """
    return MoBYClassifier(
        backbone="small_cnn",
        train_samples=train_samples,
        queue_size=1024,
        views="digits",  # no flips: a mirrored 2 is not a 2
        classes=list(range(10)),
        random_state=seed,
    )


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initial", type=int, default=100, help="initial labelled images")
    parser.add_argument("--per-cycle", type=int, default=100, help="images queried per cycle")
    parser.add_argument("--cycles", type=int, default=4, help="query cycles")
    parser.add_argument(
        "--train-samples",
        default="auto",
        type=lambda t: t if t == "auto" else int(t),
        help="labelled samples each fit sees (default: the converged rule)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_digits_dataset()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(data.X_train))
    start, rest = order[: args.initial], order[args.initial :]
    X_pool, y_oracle = data.X_train[rest], data.y_train[rest]  # y_oracle plays the annotator

    net = build_net(args.seed, args.train_samples)
    t0 = time.perf_counter()
    learner = ActiveLearner(
        estimator=net,
        query_strategy=mobyv2al_sampling,
        X_training=data.X_train[start],
        y_training=data.y_train[start],
        X_unlabeled=X_pool,
    )
    accuracies = [learner.score(data.X_test, data.y_test)]
    print(f"cycle 0: {len(learner.X_training):4d} labels, test accuracy {accuracies[-1]:.3f}")
    for cycle in range(1, args.cycles + 1):
        idx, _ = learner.query(X_pool, n_instances=args.per_cycle, random_state=args.seed)
        remaining = np.delete(X_pool, idx, axis=0)
        learner.teach(X_pool[idx], y_oracle[idx], X_unlabeled=remaining)
        X_pool, y_oracle = remaining, np.delete(y_oracle, idx)
        accuracies.append(learner.score(data.X_test, data.y_test))
        print(
            f"cycle {cycle}: {len(learner.X_training):4d} labels, "
            f"test accuracy {accuracies[-1]:.3f}"
        )
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return accuracies


if __name__ == "__main__":
    main()

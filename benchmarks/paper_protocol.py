"""The paper's Fashion-MNIST protocol on a GPU: ResNet-18, 1,000 initial + 1,000 per cycle.

MoBYv2AL (BMVC 2022) trains ResNet-18 for 200 epochs per cycle (lr 0.01,
x0.1 at epochs 120 and 160, batch 128), 10 cycles, candidate subset 10,000,
5 trials. ``--cycles`` and ``--epochs`` cut a slice that fits a short GPU
run; ``--resume`` with the same output and a larger ``--cycles`` continues it
later (every other setting must stay as it was).

Usage::

    python benchmarks/paper_protocol.py --device cuda --cycles 2 --epochs 15
    python benchmarks/paper_protocol.py --device cuda --cycles 4 --epochs 15 --resume
    python benchmarks/paper_protocol.py --quick        # CPU, digits, seconds; for the tests
"""

from __future__ import annotations

import argparse

from _common import run_and_report

from moby_al_plugin.experiments import ExperimentConfig


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--strategies", default="mobyv2al,random")
    parser.add_argument("--output", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder of the Fashion-MNIST IDX files (default: Debian's)",
    )
    parser.add_argument("--quick", action="store_true", help="CPU, digits, lenet5; for tests")
    args = parser.parse_args(argv)
    config = ExperimentConfig(
        dataset="digits" if args.quick else "fashion-mnist",
        data_root=None if args.quick else args.data_root,
        backbone="lenet5" if args.quick else "resnet18",
        strategies=tuple(args.strategies.split(",")),
        initial_size=30 if args.quick else 1000,
        query_size=20 if args.quick else 1000,
        cycles=1 if args.quick else args.cycles,
        epochs=1 if args.quick else args.epochs,
        batch_size=32 if args.quick else 128,
        lr=0.01,
        subset_size=200 if args.quick else 10_000,
        queue_size=64 if args.quick else 4096,
        pool_size=300 if args.quick else None,
        test_size=150 if args.quick else None,
        device="cpu" if args.quick else args.device,
        seeds=tuple(range(args.trials)),
        # the paper's recipe, whatever the library's defaults become: one pass
        # over the labelled set per epoch, its heads, no separate pretraining
        min_samples_per_epoch=None,
        train_samples=None,
        lr_schedule="step",
        head_layout="bn_relu",
        pretrain_epochs=0,
        initial_set="random",
        pseudo_label_weight=0.0,  # nor the library's self-training on the graph's labels
    )
    name = "paper_protocol" + ("-quick" if args.quick else "")
    payload = run_and_report(config, name, args.output, resume=args.resume, quick=args.quick)
    return payload


if __name__ == "__main__":
    main()

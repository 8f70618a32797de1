"""The ``moby-al`` command: ``run``, ``compare``, ``plot``, ``label`` and ``pretrain``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._lazy import lazy_attributes

# only what every parser needs: the experiments' configuration (scikit-learn),
# the runner, the plots and torch are imported by the commands that use them,
# so that --help and the labelling bookkeeping answer at once
from .exceptions import MoBYALError
from .hardware import DEFAULT_PRECISION
from .labelling.commands import add_label_command, run_label_command
from .selection.registry import STRATEGIES

if TYPE_CHECKING:
    from .experiments.config import ExperimentConfig

__all__ = ["main", "build_parser"]

# the functions of run, compare and plot, module attributes imported on first use
_COMMAND_FUNCTIONS = {
    "run_experiment": "experiments.runner",
    "load_experiment": "experiments.runner",
    "plot_learning_curves": "experiments.plots",
    "format_table": "experiments.results",
    "summarize": "experiments.results",
}


__getattr__, _ = lazy_attributes(__package__, _COMMAND_FUNCTIONS, globals())


def _command_function(name: str) -> Callable:
    # through the module's namespace, where a test may have replaced it
    return globals()[name] if name in globals() else __getattr__(name)


# one line per registry entry: name, network, whether it picks with no label
_STRATEGY_HELP = "strategies (network; * picks the first labels too):\n" + "\n".join(
    f"  {e.name:<19} {e.network:<11}{'*' if e.cold_start else ' '} {e.description}"
    for e in STRATEGIES.values()
)
RUN_STRATEGIES = ("typiclust", "random", "mobyv2al")
COMPARE_STRATEGIES = (
    "random",
    "margin",
    "random_pretrained",
    "kcenter_pretrained",
    "typiclust",
    "budget_aware",
    "mobyv2al",
)


def _positive_or_all(text: str) -> int | None:
    if text.lower() in ("all", "none"):
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text}")
    return value


def _train_samples(text: str) -> int | str | None:
    if text.lower() in ("auto", "none"):
        return text.lower() if text.lower() == "auto" else None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, 'auto' or 'none', got {text}"
        )
    return value


def _strategy_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


class _SubcommandParser(argparse.ArgumentParser):
    """A parser that adds its options the first time it parses or prints its help.

    ``run`` and ``compare`` take their defaults from
    :class:`~moby_al_plugin.experiments.ExperimentConfig`, whose module
    imports scikit-learn (seconds): adding those options only when one of
    them is used keeps ``moby-al --help`` and ``moby-al label ...`` fast.
    """

    def __init__(self, *args: Any, add_options: Callable | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_options = add_options

    def _complete(self) -> None:
        if self._add_options is not None:
            add, self._add_options = self._add_options, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete()
        return super().format_help()


def _typed_options(group: argparse._ArgumentGroup, *rows: tuple[str, type, str]) -> None:
    """Options whose default is the configuration's field of the same name."""
    from .experiments.config import ExperimentConfig

    defaults = ExperimentConfig()
    for flag, kind, text in rows:
        default = getattr(defaults, flag[2:].replace("-", "_"))
        group.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")


def _add_experiment_options(
    parser: argparse.ArgumentParser, strategies: tuple[str, ...], trials: int
) -> None:
    from .experiments.config import INITIAL_SETS, ExperimentConfig

    d = ExperimentConfig()
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default=d.dataset,
        help="digits (embedded), fashion-mnist, cifar10, cifar100, svhn, "
        "torchvision-fashion-mnist, image-folder, npz (default: %(default)s)",
    )
    data.add_argument(
        "--data-root",
        default=None,
        help="folder (or .npz file) of the data set, where it needs one",
    )
    data.add_argument(
        "--pool-size",
        type=_positive_or_all,
        default=None,
        help="stratified sub-sample of the training pool (default: all)",
    )
    data.add_argument(
        "--test-size",
        type=_positive_or_all,
        default=None,
        help="stratified sub-sample of the test set (default: all)",
    )
    loop = parser.add_argument_group("active learning")
    loop.add_argument(
        "--strategies",
        type=_strategy_list,
        default=strategies,
        help=f"comma-separated names, listed below (default: {','.join(strategies)})",
    )
    _typed_options(
        loop,
        ("--initial-size", int, "initial labelled images"),
        ("--query-size", int, "images queried per cycle"),
        ("--cycles", int, "query cycles"),
    )
    loop.add_argument(
        "--subset-size",
        type=_positive_or_all,
        default=d.subset_size,
        help="random candidates per query, or 'all' (default: %(default)s)",
    )
    loop.add_argument(
        "--initial-set",
        choices=INITIAL_SETS,
        default=d.initial_set,
        help="first labelled set: uniform random (what a user without labels has), "
        "stratified (class-balanced: uses labels nobody has yet, for studies only) or "
        "strategy (each strategy that can pick without labels chooses it: cold start) "
        "(default: %(default)s)",
    )
    _typed_options(
        loop,
        (
            "--stop-set-size",
            int,
            "pool images whose predictions the stopping rule compares cycle to cycle (0: off)",
        ),
        ("--stop-threshold", float, "stopping rule: kappa a cycle needs to count as stable"),
        ("--stop-window", int, "stopping rule: stable cycles in a row that say stop"),
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--backbone",
        default=d.backbone,
        help="small_cnn, lenet5, resnet18 or a torchvision model (default: %(default)s)",
    )
    _add_weights_option(train)
    _typed_options(
        train,
        ("--epochs", int, "epochs per cycle"),
        ("--batch-size", int, "images per batch"),
        ("--lr", float, "SGD learning rate"),
    )
    train.add_argument(
        "--train-samples",
        type=_train_samples,
        default=d.train_samples,
        help="labelled samples each fit sees: 'auto' (the converged rule, the same for every "
        "strategy), a number, or 'none' for --epochs passes over the labels "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--lr-schedule",
        choices=("cosine", "step"),
        default=d.lr_schedule,
        help="cosine annealing, or x0.1 at 60 %% and 80 %% of each fit (default: %(default)s)",
    )
    train.add_argument(
        "--warm-start",
        action="store_true",
        help="continue training from the previous cycle's weights",
    )
    _typed_options(
        train,
        ("--unlabeled-ratio", float, "unlabelled samples per labelled one per epoch"),
        ("--contrastive-weight", float, "weight of the MoBY loss"),
        ("--contrastive-every", int, "labelled batches carry the MoBY loss every k-th one"),
        ("--pseudo-label-weight", float, "self-training: weight of the pseudo-label loss"),
        ("--pseudo-label-threshold", float, "confidence a pseudo-label needs"),
        (
            "--graph-pseudo-labels",
            float,
            "share of the pool whose labels spread over a kNN graph are the pseudo-labels "
            "(0: the network's own predictions)",
        ),
    )
    train.add_argument(
        "--graph-class-mass-normalization",
        action=argparse.BooleanOptionalAction,
        default=d.graph_class_mass_normalization,
        help="scale every class's spread labels to the same total before the graph's "
        "pseudo-labels are chosen (default: %(default)s)",
    )
    train.add_argument(
        "--pseudo-label-thresholds",
        choices=("fixed", "flexmatch"),
        default=d.pseudo_label_thresholds,
        help="one threshold for all classes, or FlexMatch's class-wise ones (default: %(default)s)",
    )
    train.add_argument(
        "--pseudo-label-mode",
        choices=("consistency", "labels"),
        default=d.pseudo_label_mode,
        help="learn the graph's pseudo-labels on strong views, or as extra labels at the cost "
        "of a plain fit (default: %(default)s)",
    )
    train.add_argument(
        "--head-layout",
        choices=("bn_relu", "linear"),
        default=d.head_layout,
        help="projector layout: paper (bn_relu) or authors' code (linear)",
    )
    _typed_options(train, ("--queue-size", int, "keys per MoBY queue"))
    train.add_argument(
        "--min-samples-per-epoch",
        type=_positive_or_all,
        default=d.min_samples_per_epoch,
        help="labelled samples drawn per epoch at least, beyond --train-samples; 'none' for "
        "no such floor (default: %(default)s)",
    )
    pretrain = parser.add_argument_group("pretraining (strategies on the pretrained net)")
    _typed_options(
        pretrain,
        ("--pretrain-epochs", int, "epochs of self-supervised pretraining on the pool"),
        ("--finetune-contrastive-weight", float, "MoBY loss weight while fine-tuning"),
    )
    pretrain.add_argument(
        "--pretrain-size",
        type=_positive_or_all,
        default=d.pretrain_size,
        help="pool images the pretraining sees, or 'all' (default: %(default)s)",
    )
    pretrain.add_argument(
        "--encoder",
        default=None,
        metavar="FILE",
        help="a pretrained MoBYEncoder file (e.g. from `moby-al pretrain`, one process or "
        "several under torchrun) used instead of pretraining on the pool",
    )
    pretrain.add_argument(
        "--cache-dir",
        default=None,
        help="folder of pretrained encoders shared between runs on the same pool "
        "(default: <output>/cache)",
    )
    train.add_argument(
        "--views",
        default=None,
        help="augmentation preset: natural, grayscale, fashion_mnist, digits "
        "(default: the data set's)",
    )
    train.add_argument("--device", default=d.device, help="cpu or cuda (default: %(default)s)")
    _add_hardware_options(train, d.precision)
    runs = parser.add_argument_group("runs and output")
    runs.add_argument(
        "--trials", type=int, default=trials, help="trials with seeds 0..N-1 (default: %(default)s)"
    )
    runs.add_argument(
        "--seeds",
        type=lambda t: tuple(int(s) for s in t.split(",")),
        default=None,
        help="comma-separated seeds (overrides --trials)",
    )
    runs.add_argument(
        "--output",
        default=None,
        help="results folder (default: moby-al-results/<command>-<dataset>-<time>)",
    )
    runs.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --output"
    )
    runs.add_argument(
        "--save-features",
        action=argparse.BooleanOptionalAction,
        default=d.save_features,
        help="store the pool's features after every cycle, for plot --pictures "
        "(default: for pools up to 20,000 images)",
    )
    runs.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_weights_option(group: Any) -> None:
    """``--weights``: the backbone's pretrained start, the same for every command that trains."""
    from .labelling.commands import WEIGHTS_HELP

    group.add_argument("--weights", default=None, metavar="NAME_OR_FILE", help=WEIGHTS_HELP)


def _threads(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_hardware_options(group: Any, precision: str) -> None:
    """``--precision`` and ``--threads``, the same for every command that trains."""
    group.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default=precision,
        help="bf16: bfloat16 autocast; auto: bf16 where the CPU or GPU has it natively, "
        "else fp32 (default: %(default)s)",
    )
    group.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help="torch threads (default: the machine's cores, or OMP_NUM_THREADS when set)",
    )


def _add_debug_option(parser: argparse.ArgumentParser, default: object) -> None:
    # accepted before and after the command; SUPPRESS keeps a sub-command's
    # default from overwriting a --debug given before it
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the full traceback of an error instead of one line",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moby-al",
        description="Self-supervised active learning (MoBYv2AL) with modAL.",
    )
    _add_debug_option(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_SubcommandParser
    )
    run = commands.add_parser(
        "run",
        help="run an active-learning experiment (default: digits, TypiClust on the "
        "pretrained net vs random vs MoBYv2AL)",
        description="Run an active-learning experiment and write results and plots. With no "
        "arguments: the digits and a small CNN; TypiClust picks on the network pretrained "
        "once on the pool, against random picks and the paper's MoBYv2AL.",
        epilog=_STRATEGY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_options=functools.partial(_add_experiment_options, strategies=RUN_STRATEGIES, trials=1),
    )
    compare = commands.add_parser(
        "compare",
        help="compare several strategies over several trials",
        description="Compare strategies on the same data, backbone, epochs, seeds and initial "
        "sets; print a table with the area under each learning curve.",
        epilog=_STRATEGY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_options=functools.partial(
            _add_experiment_options, strategies=COMPARE_STRATEGIES, trials=3
        ),
    )
    plot = commands.add_parser(
        "plot",
        help="redraw the learning curves of a results folder",
        description="Redraw learning_curves.png/.svg and print the table of a results folder.",
    )
    plot.add_argument("folder", help="results folder written by run or compare")
    plot.add_argument(
        "--markdown", action="store_true", help="print the table in Markdown, ready for a report"
    )
    plot.add_argument(
        "--pictures",
        action="store_true",
        help="also draw the teaching pictures: galleries of each cycle's picks, feature maps "
        "(when the run stored features) and class histograms",
    )
    plot.add_argument(
        "--pictures-dir",
        default=None,
        help="folder of the pictures (default: FOLDER/pictures)",
    )
    plot.add_argument(
        "--projection",
        choices=("pca", "tsne"),
        default="pca",
        help="2-D projection of the feature maps (default: %(default)s)",
    )
    pretrain = _add_pretrain_command(commands)
    for sub in (run, compare, plot, *add_label_command(commands), pretrain):
        _add_debug_option(sub, default=argparse.SUPPRESS)
    return parser


def _add_pretrain_command(commands: Any) -> argparse.ArgumentParser:
    """``moby-al pretrain``: a MoBYEncoder trained on a pool, in one process or under torchrun."""
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a MoBYEncoder on a pool of images (one process, or several under torchrun)",
        description="Pretrain a MoBYEncoder (self-supervised, no label) on a pool of images and "
        "write it with MoBYEncoder.save; load it with MoBYEncoder.load or pass the file as "
        "MoBYClassifier(pretrained=FILE). Run it as one process, or over several with "
        "torchrun --nproc-per-node N -m moby_al_plugin pretrain ...: every process trains on "
        "its own part of the pool, and rank 0 alone prints and writes the files.",
    )
    pretrain.add_argument(
        "--images",
        required=True,
        help="the pool: a .npy array of shape (N, H, W), (N, C, H, W) or (N, H, W, C), read as "
        "a memory map; an .npz archive of the package's format (X and y, or X_train, y_train, "
        "X_test and y_test; its training split); or a folder of image files, searched "
        "recursively and read as an ImagePool (resized to --image-size; unreadable files are "
        "skipped and listed)",
    )
    pretrain.add_argument(
        "--image-size",
        type=int,
        default=32,
        help="a folder's images are resized to this height and width (default: %(default)s)",
    )
    pretrain.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that decode a folder's images (default: %(default)s)",
    )
    pretrain.add_argument("--output", required=True, help="the encoder file to write")
    pretrain.add_argument(
        "--epochs", type=int, default=10, help="passes over the pool (default: %(default)s)"
    )
    pretrain.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="images per step in each process; a step over N processes sees N times as many "
        "(default: %(default)s)",
    )
    pretrain.add_argument(
        "--backbone",
        default="small_cnn",
        help="small_cnn, lenet5, resnet18 or a torchvision model (default: %(default)s)",
    )
    _add_weights_option(pretrain)
    pretrain.add_argument(
        "--views",
        default="auto",
        help="augmentation preset: auto, natural, grayscale, fashion_mnist, digits "
        "(default: %(default)s)",
    )
    pretrain.add_argument(
        "--lr", type=float, default=0.05, help="SGD learning rate (default: %(default)s)"
    )
    pretrain.add_argument(
        "--queue-size", type=int, default=4096, help="keys per MoBY queue (default: %(default)s)"
    )
    pretrain.add_argument(
        "--checkpoint",
        default=None,
        help="training state written after every epoch; the same command continues from it "
        "after an interruption (with the same number of processes)",
    )
    pretrain.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    pretrain.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    _add_hardware_options(pretrain, DEFAULT_PRECISION)
    return pretrain


def _pretrain_images(args: argparse.Namespace, is_main: bool) -> Any:
    """The pool of ``moby-al pretrain --images``: a .npy memory map, an .npz or a folder."""
    from .exceptions import DataNotFoundError

    path = args.images
    source = Path(path)
    if not source.exists():
        raise DataNotFoundError(f"--images {path}: no such file or folder")
    if source.is_dir():
        from .data.pools import ImagePool

        # every file decoded once: no rank meets a corrupt file in the middle of training
        pool = ImagePool(source, args.image_size, check="decode", num_workers=args.workers)
        if pool.skipped and is_main:
            print(f"skipped {len(pool.skipped)} unreadable file(s):", file=sys.stderr)
            for name, reason in pool.skipped:
                print(f"  {name}: {reason}", file=sys.stderr)
        return pool
    suffix = source.suffix.lower()
    if suffix == ".npz":
        from .data.loaders import load_npz

        return load_npz(source).X_train
    if suffix == ".npy":
        from .data.pools import open_memmap_pool

        try:
            return open_memmap_pool(source)
        except (OSError, ValueError) as exc:
            if isinstance(exc, MoBYALError):
                raise
            raise MoBYALError(f"cannot read {source} as a .npy array: {exc}") from exc
    raise MoBYALError(
        f"--images {path}: expected a .npy file, an .npz archive or a folder of images"
    )


def _pretrain(args: argparse.Namespace) -> int:
    from . import distributed
    from .encoder import MoBYEncoder
    from .pretraining import pretrain_encoder

    if Path(args.output).is_dir():
        raise MoBYALError(f"--output {args.output} is a folder; give the encoder file's path")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            raise MoBYALError(f"{flag} must be at least 1, got {value}")
    world = distributed.init_from_env(args.device)
    try:
        X = _pretrain_images(args, world.is_main)
        settings = dict(
            backbone=args.backbone,
            weights=args.weights,
            views=args.views,
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            queue_size=args.queue_size,
            device=args.device,
            precision=args.precision,
            n_threads=args.threads,
            random_state=args.seed,
        )
        processes = world.world_size if world.active else 1
        if world.is_main:
            print(
                f"moby-al pretrain: {len(X)} images, {args.backbone}, {args.epochs} epochs, "
                f"{processes} process(es) x {args.batch_size} images per step -> {args.output}",
                flush=True,
            )

        def report(enc: MoBYEncoder, epoch: int) -> None:
            if world.is_main:
                last = enc.history_[-1]
                print(
                    f"epoch {epoch}/{enc.max_epochs}: loss {last['loss']:.4f} "
                    f"({last['seconds']:.1f} s)",
                    flush=True,
                )

        encoder = pretrain_encoder(X, checkpoint=args.checkpoint, on_epoch_end=report, **settings)
        if world.is_main:
            encoder.save(args.output)
            print(f"wrote {args.output}", flush=True)
    finally:
        distributed.shutdown()
    return 0


def _config_from(args: argparse.Namespace) -> ExperimentConfig:
    from .experiments.config import ExperimentConfig

    # the options are named after the configuration's fields, but for the seeds
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["seeds"] = args.seeds if args.seeds is not None else tuple(range(args.trials))
    return ExperimentConfig(**values)


def _run(args: argparse.Namespace) -> int:
    from .experiments.config import ExperimentError

    run_experiment = _command_function("run_experiment")
    format_table, summarize = _command_function("format_table"), _command_function("summarize")
    if args.trials < 1:
        raise ExperimentError(f"--trials must be at least 1, got {args.trials}")
    if args.resume and args.output is None:
        raise ExperimentError("--resume needs --output, the folder of the run to continue")
    config = _config_from(args)
    output = args.output or str(
        Path("moby-al-results")
        / f"{args.command}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    print(
        f"moby-al {args.command}: {config.dataset}, {config.backbone}, "
        f"strategies {', '.join(config.strategies)}, {len(config.seeds)} trial(s) -> {output}",
        flush=True,
    )
    records = run_experiment(
        config,
        output,
        resume=args.resume,
        progress=False if args.no_progress else None,
        log=lambda line: print(line, flush=True),
        cache_dir=args.cache_dir,
        n_threads=args.threads,
    )
    print()
    print(format_table(summarize(records)))
    print(
        f"\nresults: {Path(output) / 'results.csv'}\n"
        f"plot:    {Path(output) / 'learning_curves.png'}"
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    load_experiment = _command_function("load_experiment")
    plot_learning_curves = _command_function("plot_learning_curves")
    format_table, summarize = _command_function("format_table"), _command_function("summarize")
    config, records = load_experiment(args.folder)
    files = plot_learning_curves(
        records, Path(args.folder) / "learning_curves", title=f"{config.dataset}, {config.backbone}"
    )
    if args.pictures:
        from .experiments.pictures import draw_run_pictures

        files += draw_run_pictures(args.folder, args.pictures_dir, method=args.projection)
    print(format_table(summarize(records), markdown=args.markdown))
    print("\n" + "\n".join(f"wrote {f}" for f in files))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``moby-al``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run"] + (argv if argv is not None else sys.argv[1:]))
    try:
        if args.command == "label":
            return run_label_command(args)
        if args.command == "pretrain":
            return _pretrain(args)
        return _plot(args) if args.command == "plot" else _run(args)
    except MoBYALError as exc:
        # the user's data or settings: one line; anything else is a bug and
        # keeps its traceback
        if args.debug:
            raise
        # under torchrun every process reports: say which (no torch import for that)
        many = args.command == "pretrain" and os.environ.get("WORLD_SIZE", "1") not in ("", "1")
        where = f" (rank {os.environ.get('RANK', '?')})" if many else ""
        print(f"moby-al: error{where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "pretrain":
            print(
                "moby-al: interrupted; with --checkpoint FILE the same command continues after "
                "the last complete epoch",
                file=sys.stderr,
            )
            return 130
        print(
            "moby-al: interrupted; finished cycles are saved, continue with "
            "--resume --output <folder>",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Label efficiency: our strategies against the usual baselines, on the same learners.

Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (60,000 pool, 10,000
test; 200 initial labels, 200 per cycle, 5 cycles, 10,000 candidates), or
the digits (``--dataset digits``: 20 initial, 20 per cycle, the whole pool
as candidates). Every strategy of a variant uses the same backbone,
schedule, seeds and initial sets.

Variants:

``published``
    The paper's recipe, pinned here so that the library's newer defaults do
    not leak into it: one pass over the labelled set per epoch, the paper's
    heads, unnormalised k-Center-Greedy, joint training from scratch in every
    cycle, class-balanced initial sets; MoBYv2AL against random, margin,
    entropy and CoreSet on the supervised net.
``improved``
    ``published`` with warm starts and twice as many unlabelled images.
``recipe``
    The new learner for every row (``min_samples_per_epoch`` padding; the
    encoder pretrained once on the pool and shared by trials and strategies),
    a uniform random initial set shared by all rows: random, margin and
    modAL's ``uncertainty_batch`` on the supervised net trained from scratch
    (the user's alternatives); random and margin on the pretrained learner
    (what the learner alone gives); normalised k-Center-Greedy, TypiClust
    and budget-aware on the pretrained learner.
``recipe-cold``
    The same learner, but TypiClust, MaxHerding and budget-aware choose the
    initial set themselves from the pretrained features (cold start); at the
    first budget only the initial sets differ from ``recipe``.
``low-budget``
    One batch each at ``--budgets`` labels (default 10, 20, 50, 100) chosen
    from zero labels by random, TypiClust, MaxHerding and normalised
    k-Center-Greedy on the pretrained learner, and random on the net
    trained from scratch; one results folder per budget.

The pretrained encoder is cached in ``benchmarks/results/cache`` (keyed by
the pool and the pretraining settings), so every variant and invocation on
the same pool reuses one pretraining. Results go to
``benchmarks/results/label_efficiency-<variant>[-<dataset>]/`` and a summary
JSON beside them, with the class histogram of every strategy's picks and,
for each row, the labels at which its curve first reaches the final
accuracy of random picks on the net trained from scratch.

Usage::

    python benchmarks/label_efficiency.py --variant recipe --dataset digits
    python benchmarks/label_efficiency.py --variant recipe --trials 3 --strategies random,typiclust
    python benchmarks/label_efficiency.py --quick     # digits, seconds; used by the tests
    python benchmarks/label_efficiency.py --join recipe,recipe-cold   # one table of both parts

``--output DIR`` puts the runs in ``DIR`` and the summary in ``DIR.json``, never over the
committed summaries; ``--join`` also takes such summary paths (``DIR.json``), and its
``--output`` is the joined JSON's path.

``--join`` reads the summary JSONs of finished parts (``label_efficiency-<part>.json``)
and prints one Markdown table, the rows of a cold-start part suffixed ``_cold``, with
the targets checked on all rows together; it writes ``label_efficiency-joined.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from _common import RESULTS, machine_info, run_and_report, write_json

from moby_al_plugin.experiments import ExperimentConfig, labels_to_reach

PUBLISHED_STRATEGIES = ("mobyv2al", "moby_random", "coreset", "random", "margin", "entropy")
RECIPE_STRATEGIES = (
    "random",
    "margin",
    "uncertainty_batch",
    "random_pretrained",
    "margin_pretrained",
    "kcenter_pretrained",
    "typiclust",
    "budget_aware",
)
COLD_STRATEGIES = ("typiclust", "maxherding", "budget_aware")
LOW_BUDGET_STRATEGIES = (
    "random",
    "random_pretrained",
    "typiclust",
    "maxherding",
    "kcenter_pretrained",
)
# the paper's recipe, whatever the library's defaults become
_PAPER = dict(
    min_samples_per_epoch=None,
    train_samples=None,  # the paper's epochs: one pass over the labelled set each
    lr_schedule="step",
    epochs=15,  # the CPU-sized recipe these variants were measured with
    batch_size=32,
    lr=0.02,
    head_layout="bn_relu",
    initial_set="stratified",
    pretrain_epochs=0,
    unlabeled_ratio=1.0,
    warm_start=False,
)
VARIANTS = {
    "published": (PUBLISHED_STRATEGIES, _PAPER),
    "improved": (PUBLISHED_STRATEGIES, {**_PAPER, "unlabeled_ratio": 2.0, "warm_start": True}),
    "recipe": (RECIPE_STRATEGIES, dict(initial_set="random")),
    "recipe-cold": (COLD_STRATEGIES, dict(initial_set="strategy")),
    "low-budget": (LOW_BUDGET_STRATEGIES, dict(initial_set="strategy", cycles=0)),
}
# the learner every row gets unless a flag says otherwise: no self-training
PLAIN = dict(
    pseudo_label_weight=0.0,
    graph_pseudo_labels=0.0,
    graph_class_mass_normalization=False,
    pseudo_label_mode="consistency",
)
# what the random baseline is: picks at random, net trained from scratch
BASELINE = "random"
PLUG_IN = ("kcenter_pretrained", "typiclust", "maxherding", "budget_aware", "mobyv2al")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="recipe")
    parser.add_argument("--dataset", choices=("fashion-mnist", "digits"), default="fashion-mnist")
    parser.add_argument("--backbone", default="small_cnn")
    defaults = ExperimentConfig()  # the library's converged rule, unless a flag says otherwise
    parser.add_argument(
        "--epochs", type=int, default=defaults.epochs, help="epochs each fit is split into"
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--lr-schedule", choices=("cosine", "step"), default=defaults.lr_schedule)
    parser.add_argument(
        "--train-samples",
        default=defaults.train_samples,
        type=lambda t: t if t == "auto" else None if t == "none" else int(t),
        help="labelled samples per fit: auto (the converged rule), a number, or none",
    )
    parser.add_argument(
        "--min-samples-per-epoch",
        type=int,
        default=None,
        help="padding of each epoch, beyond --train-samples (published: none)",
    )
    parser.add_argument(
        "--finetune-contrastive-weight",
        type=float,
        default=defaults.finetune_contrastive_weight,
        help="MoBY loss weight while fine-tuning the pretrained rows (default: 0, supervised)",
    )
    # the learner's loss settings, defaults from the configuration, applied to every row
    for flag, kind, text in (
        ("--contrastive-every", int, "labelled batches carry the MoBY loss every k-th one"),
        ("--unlabeled-ratio", float, "unlabelled samples per labelled one"),
        ("--pseudo-label-weight", float, "self-training of every row's network (0: none)"),
        ("--pseudo-label-threshold", float, "confidence a pseudo-label needs"),
        ("--graph-pseudo-labels", float, "share of the pool with graph pseudo-labels"),
    ):
        default = getattr(defaults, flag[2:].replace("-", "_"))
        # rows are plain unless a flag says otherwise, whatever the library's default, so
        # the commands in docs/results.md give the rows they gave
        default = PLAIN.get(flag[2:].replace("-", "_"), default)
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
    parser.add_argument(
        "--graph-class-mass-normalization",
        action="store_true",
        help="class mass normalisation of the graph's spread labels",
    )
    parser.add_argument(
        "--pseudo-label-thresholds",
        choices=("fixed", "flexmatch"),
        default=defaults.pseudo_label_thresholds,
    )
    parser.add_argument(
        "--pseudo-label-mode",
        choices=("consistency", "labels"),
        default=PLAIN["pseudo_label_mode"],
        help="the graph's targets on strong views, or as extra labels (plain-fit cost)",
    )
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--pretrain-size", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--seeds",
        default=None,
        help="seeds to run, e.g. 1,2 (default: 0 .. trials-1); join folders with --summarize",
    )
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--budgets", default="10,20,50,100", help="low-budget variant only")
    parser.add_argument("--pool-size", type=int, default=None, help="default: all")
    parser.add_argument("--test-size", type=int, default=None, help="default: all")
    parser.add_argument("--strategies", default=None, help="default: the variant's rows")
    parser.add_argument("--output", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quick", action="store_true", help="digits, tiny; for the tests")
    parser.add_argument(
        "--join", default=None, help="finished parts to join, e.g. recipe,recipe-cold"
    )
    parser.add_argument(
        "--summarize",
        default=None,
        help="run folders, finished or stopped, comma-separated (same settings, other "
        "seeds): write FIRST.json, or --output, from their complete curves",
    )
    args = parser.parse_args(argv)
    if args.join:
        return [join_parts(args.join.split(","), output=args.output)]
    if args.summarize:
        folders = [Path(f) for f in args.summarize.split(",") if f]
        return [summarize_folder(*folders, output=args.output)]

    rows, settings = VARIANTS[args.variant]
    strategies = tuple(s for s in (args.strategies or ",".join(rows)).split(",") if s)
    digits = args.quick or args.dataset == "digits"
    base = dict(
        dataset="digits" if digits else "fashion-mnist",
        backbone=args.backbone,
        strategies=strategies,
        initial_size=20 if digits else 200,
        query_size=20 if digits else 200,
        cycles=args.cycles,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        subset_size=None if digits else 10_000,
        queue_size=1024 if digits else 4096,
        pool_size=args.pool_size,
        test_size=args.test_size,
        seeds=_seeds(args.seeds, args.trials),
        min_samples_per_epoch=args.min_samples_per_epoch,
        train_samples=args.train_samples,
        lr_schedule=args.lr_schedule,
        pretrain_epochs=args.pretrain_epochs,
        pretrain_size=args.pretrain_size,
        finetune_contrastive_weight=args.finetune_contrastive_weight,
        contrastive_every=args.contrastive_every,
        unlabeled_ratio=args.unlabeled_ratio,
        pseudo_label_weight=args.pseudo_label_weight,
        pseudo_label_threshold=args.pseudo_label_threshold,
        pseudo_label_thresholds=args.pseudo_label_thresholds,
        graph_pseudo_labels=args.graph_pseudo_labels,
        graph_class_mass_normalization=args.graph_class_mass_normalization,
        pseudo_label_mode=args.pseudo_label_mode,
    )
    if args.quick:
        base.update(
            initial_size=30,
            query_size=20,
            cycles=1,
            epochs=1,
            subset_size=200,
            queue_size=64,
            pool_size=300,
            test_size=150,
            seeds=_seeds(args.seeds, 1),
            min_samples_per_epoch=64,
            train_samples=None,
            pretrain_epochs=1,
        )
    base.update(settings)
    if args.quick and args.variant == "low-budget":
        base["cycles"] = 0
    budgets = [int(b) for b in args.budgets.split(",")] if args.variant == "low-budget" else [None]
    suffix = ("-digits" if digits and not args.quick else "") + ("-quick" if args.quick else "")
    payloads = []
    for budget in budgets:
        config = ExperimentConfig(**{**base, **({"initial_size": budget} if budget else {})})
        name = f"label_efficiency-{args.variant}" + (f"-{budget}" if budget else "") + suffix
        output = args.output and (f"{args.output}-{budget}" if budget else args.output)
        payloads.append(
            run_and_report(
                config,
                name,
                output,
                resume=args.resume,
                quick=args.quick,
                variant=args.variant,
                targets=_targets,
                cache_dir=RESULTS / "cache",
            )
        )
    return payloads


def join_parts(parts: list[str], results=RESULTS, output: str | None = None) -> dict:
    """One summary of several finished parts; rows of cold-start parts get ``_cold``.

    The joined summary goes to ``output`` (a JSON path) when given, else to
    ``results/label_efficiency-joined[-digits|-low-budget].json``.
    """
    from moby_al_plugin.experiments import format_table

    summary, histograms, sources = {}, {}, {}
    for part in parts:
        # a part is a name under results/ or the path of a summary JSON written by --output
        path = Path(part) if part.endswith(".json") else results / f"label_efficiency-{part}.json"
        payload = json.loads(path.read_text())
        cold = payload["config"]["initial_set"] == "strategy"
        sources[part] = {
            "seeds": payload["config"]["seeds"],
            "wall_seconds": payload.get("wall_seconds"),
            "date_utc": payload["machine"]["date_utc"],
        }
        for name, row in payload["summary"].items():
            cold_row = cold and name not in ("random", "random_pretrained")
            key = f"{name}_cold" if cold_row else name
            if key not in summary:
                summary[key] = row
                histograms[key] = {"budgets": {}, **payload["class_histograms"][name]}
            elif not set(row["n_labeled"]) & set(summary[key]["n_labeled"]):
                # parts at other budgets (low-budget): one curve of all the points
                summary[key] = _merge_points(summary[key], row)
            else:
                continue  # the first part that has a row gives it
            histograms[key]["budgets"][part] = payload["class_histograms"][name]["initial"]
    print(format_table(summary, markdown=True))
    joined = {
        "parts": sources,
        "summary": summary,
        "class_histograms": histograms,
        "targets": _targets(summary),
    }
    suffix = "-digits" if all(p.endswith("-digits") for p in parts) else ""
    suffix = "-low-budget" if all(p.startswith("low-budget") for p in parts) else suffix
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(joined, indent=2) + "\n")
    else:
        path = write_json(f"label_efficiency-joined{suffix}.json", joined)
    print(f"wrote {path}")
    return joined


def _seeds(text: str | None, trials: int) -> tuple[int, ...]:
    if text is None:
        return tuple(range(trials))
    try:
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise SystemExit(f"--seeds must be integers separated by commas, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SystemExit(f"--seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def summarize_folder(folder: Path, *more: Path, output: str | None = None) -> dict:
    """``folder.json`` from the records of run folders, keeping complete curves only.

    A run stopped between strategies (a long benchmark split by time) still
    gives the summary of every strategy whose every trial reached the last
    cycle; the rest is left out and named. Further folders (the same settings
    run on other seeds, e.g. ``--seeds 1,2``) add their trials to the same
    rows; the summary goes to ``output`` when given.
    """
    from moby_al_plugin.experiments import (
        ExperimentConfig,
        class_histograms,
        format_table,
        read_records,
        summarize,
    )

    config = ExperimentConfig.from_dict(json.loads((folder / "config.json").read_text()))
    records = read_records(folder)
    for other in more:
        other_config = ExperimentConfig.from_dict(json.loads((other / "config.json").read_text()))
        changed = [
            key
            for key, value in config.to_dict().items()
            if key not in ("seeds", "strategies") and other_config.to_dict()[key] != value
        ]
        if changed:
            raise SystemExit(f"{other} was run with other settings ({', '.join(changed)})")
        if set(other_config.seeds) & set(config.seeds):
            raise SystemExit(f"{other} repeats seeds of {folder}; each seed once")
        records += [r for r in read_records(other) if r["strategy"] in other_config.strategies]
        config = dataclasses.replace(
            config,
            seeds=tuple(sorted(config.seeds + other_config.seeds)),
            strategies=tuple(dict.fromkeys(config.strategies + other_config.strategies)),
        )
    wanted = {(seed, cycle) for seed in config.seeds for cycle in range(config.cycles + 1)}
    complete, partial = [], []
    for name in config.strategies:
        got = {(r["seed"], r["cycle"]) for r in records if r["strategy"] == name}
        (complete if wanted <= got else partial).append(name)
    kept = [r for r in records if r["strategy"] in complete]
    summary = summarize(kept)
    print(format_table(summary))
    if partial:
        print(f"left out, not finished: {', '.join(partial)}")
    payload = {
        "machine": machine_info(),
        "config": {**config.to_dict(), "strategies": complete},
        "left_out": partial,
        "wall_seconds": None,  # the run's own summary has it; a stopped run has none
        "summary": summary,
        "class_histograms": class_histograms(kept),
        "targets": _targets(summary),
    }
    path = Path(output) if output else folder.parent / f"{folder.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return payload


def _merge_points(row: dict, other: dict) -> dict:
    """Two summary rows at disjoint budgets as one; its "AUC" is the mean over budgets."""
    points = sorted(
        zip(
            row["n_labeled"] + other["n_labeled"],
            row["mean"] + other["mean"],
            row["std"] + other["std"],
            row["trials"] + other["trials"],
        )
    )
    n, mean, std, trials = (list(column) for column in zip(*points))
    merged = {**row, "n_labeled": n, "mean": mean, "std": std, "trials": trials}
    merged["auc_mean"] = sum(mean) / len(mean)
    merged["auc_std"] = 0.0
    return merged


def _is_plug_in(name: str) -> bool:
    return name.removesuffix("_cold") in PLUG_IN


def _targets(summary: dict) -> dict:
    """Gains of the best plug-in strategy, and the labels each row needs.

    The best plug-in strategy is the one with the largest area under its
    curve. Its gains are reported against random picks on the net trained
    from scratch and against random picks on the pretrained net (which
    isolates what selection adds); "labels to reach" is where each curve
    first reaches the final accuracy of random picks from scratch.
    """
    curves = {name: dict(zip(s["n_labeled"], s["mean"])) for name, s in summary.items()}
    checks: dict = {}
    if BASELINE in curves:
        final = curves[BASELINE][max(curves[BASELINE])]
        checks["random_final_accuracy"] = round(100 * final, 2)
        checks["labels_to_reach_random_final"] = {
            name: labels_to_reach(s["n_labeled"], s["mean"], final) for name, s in summary.items()
        }
    ours = [name for name in summary if _is_plug_in(name)]
    if not ours:
        return checks
    best = max(ours, key=lambda name: summary[name]["auc_mean"])
    checks["best_plug_in"] = best
    checks["best_auc_of_all"] = all(
        summary[best]["auc_mean"] >= s["auc_mean"] for s in summary.values()
    )
    checks["ahead_of_all_at"] = {
        int(n): all(acc > c.get(n, -1.0) for name, c in curves.items() if name != best)
        for n, acc in curves[best].items()
    }
    for reference in (BASELINE, "random_pretrained"):
        if reference in curves:
            checks[f"points_over_{reference}_at"] = {
                int(n): round(100 * (acc - curves[reference][n]), 2)
                for n, acc in curves[best].items()
                if n in curves[reference]
            }
    lines = [f"best plug-in strategy (area under the curve): {best}"]
    lines += [
        f"  {n} labels: {'ahead of every other row' if ok else 'NOT ahead of every row'}"
        for n, ok in checks["ahead_of_all_at"].items()
    ]
    for reference in (BASELINE, "random_pretrained"):
        for n, gap in checks.get(f"points_over_{reference}_at", {}).items():
            lines.append(f"  {n} labels: {gap:+.1f} points over {reference}")
    for name, labels in checks.get("labels_to_reach_random_final", {}).items():
        reach = "not reached" if labels is None else f"{labels:.0f} labels"
        lines.append(f"  {name} reaches random's final accuracy at: {reach}")
    print("targets:\n" + "\n".join(lines))
    return checks


if __name__ == "__main__":
    main()

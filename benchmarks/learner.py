"""The learner at 200 and 1,000 random Fashion-MNIST labels, with and without pretraining.

Rows (``--rows``; the default runs all but ``finetune_joint``):

``supervised_old``
    The supervised net (``contrastive_weight=0``) on the old schedule: an
    epoch is one pass over the labelled set (``min_samples_per_epoch=None``).
``supervised_new``
    The same net on the padded schedule (``--min-samples-per-epoch``,
    default 2,000; the rule of ``--study convergence`` came later).
``probe``
    ``LogisticRegression`` on the features of a :class:`MoBYEncoder`
    pretrained on the pool (no label).
``finetune``
    ``MoBYClassifier(pretrained=...)``: the same net and schedule as
    ``supervised_new``, started from the pretrained encoder, cross-entropy only.
``finetune_joint``
    The same with the contrastive loss kept (``contrastive_weight=0.5``, one
    unlabelled batch per labelled one from the pool); about three times
    slower.

Every row uses the same random labelled sets: seed ``s`` draws the labels
without replacement from the whole 60,000-image training set, whatever the
row. The test set is the 10,000 test images.

Pretraining runs once per setting and is cached on disk
(``<cache>/encoder-<key>.pt``, the key a hash of every pretraining setting);
all seeds, budgets and rows share it, and so do later invocations. The cache
file is the encoder's checkpoint, so an interrupted pretraining resumes after
its last complete epoch. Snapshots at ``--epoch-table`` epochs of the same run
(the cosine schedule is the full run's) feed the table of probe accuracy
against pretraining epochs.

Each finished (row, budget, seed) entry is written to the JSON at once; with
``--resume`` an invocation skips the entries already there, so a long run can
be split over several invocations (``--rows``, ``--seeds``, ``--budgets``).

Studies (``--study``; the default ``rows`` is the table above):

``convergence``
    Accuracy against compute: every (init, budget, seed) is trained with
    each of ``--compute`` labelled samples per fit (``train_samples``), from
    scratch (``--inits scratch``) or fine-tuned from the pretrained encoder
    (``pretrained``, the encoder of ``--encoder`` or the cached pretraining),
    with one batch size, learning rate, schedule (``--lr-schedule``) and
    supervised augmentation (``--augment weak``: the views' pad-crop and,
    where the preset allows it, flip; ``none``). A budget is converged at the
    least compute whose mean accuracy over the seeds is within 0.3 points of
    the next doubling's. Every setting is part of an entry's key, so several
    invocations with other settings fill one table
    (``results/learner-convergence.json``).
``throughput``
    Images per second of ``MoBYClassifier.fit`` (supervised,
    ``contrastive_weight=0``) against a plain PyTorch loop over the same
    network, batch, optimiser, augmentation and precision, in float32 and
    bfloat16 on 1 and ``--threads`` threads, interleaved ``--repeats``
    times in one process; the figures are medians.

Usage::

    python benchmarks/learner.py --study convergence --budgets 200,600,1200,5000 \
        --compute 25000,50000,100000,200000 --threads 1
    python benchmarks/learner.py --study throughput --threads 2
    python benchmarks/learner.py --rows supervised_old,supervised_new   # ~20 min, 2 cores
    python benchmarks/learner.py --rows probe,finetune --resume         # pretraining + ~25 min
    python benchmarks/learner.py --quick                                # seconds; the tests
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine_info

from moby_al_plugin import MoBYClassifier, MoBYEncoder, load_digits_dataset, load_fashion_mnist

ROWS = ("supervised_old", "supervised_new", "probe", "finetune", "finetune_joint")
DEFAULT_ROWS = ROWS[:4]


def _parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rows",
        default=",".join(DEFAULT_ROWS),
        help=f"comma-separated rows among {', '.join(ROWS)}",
    )
    p.add_argument("--budgets", default="200,1000", help="labelled-set sizes")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the labelled sets and the nets")
    p.add_argument("--data-root", default=None, help="Fashion-MNIST folder (library default)")
    p.add_argument("--backbone", default="small_cnn")
    p.add_argument("--max-epochs", type=int, default=15, help="classifier epochs per fit")
    p.add_argument("--batch-size", type=int, default=32, help="classifier batch size")
    p.add_argument("--lr", type=float, default=0.05, help="classifier learning rate")
    p.add_argument(
        "--min-samples-per-epoch",
        type=int,
        default=None,
        help="rows: the padded schedule's minimum (default 2000)",
    )
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument(
        "--pretrain-pool",
        type=int,
        default=20000,
        help="images of the training set the encoder is pretrained on (0 = all)",
    )
    p.add_argument("--pretrain-lr", type=float, default=0.05)
    p.add_argument("--pretrain-batch-size", type=int, default=128)
    p.add_argument("--head-layout", default=None, help="encoder heads (default: the library's)")
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument(
        "--epoch-table",
        default="1,2,5,10",
        help="pretraining epochs whose snapshots get a probe accuracy",
    )
    p.add_argument("--cache", default=None, help="pretraining cache folder")
    p.add_argument("--output", default=None, help="JSON path (default results/learner.json)")
    p.add_argument("--resume", action="store_true", help="skip entries already in --output")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny settings on the digits")
    p.add_argument("--study", choices=("rows", "convergence", "throughput"), default="rows")
    p.add_argument("--inits", default="scratch", help="convergence: scratch, pretrained or both")
    p.add_argument(
        "--compute",
        default="25000,50000,100000,200000",
        help="convergence: labelled samples per fit (train_samples)",
    )
    p.add_argument("--lr-schedule", default="cosine", choices=("cosine", "step"))
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "auto"),
        help="convergence and throughput: the estimator's precision",
    )
    p.add_argument(
        "--nesterov", action="store_true", help="convergence: SGD with Nesterov momentum"
    )
    p.add_argument(
        "--contrastive-weight",
        type=float,
        default=0.0,
        help="convergence: the MoBY loss kept in the fit (0: cross-entropy only); the rest "
        "of the training set is the unlabelled pool",
    )
    p.add_argument(
        "--unlabeled-ratio", type=float, default=1.0, help="convergence: with the MoBY loss"
    )
    p.add_argument(
        "--contrastive-every", type=int, default=1, help="convergence: with the MoBY loss"
    )
    p.add_argument(
        "--dataset",
        default="fashion_mnist",
        choices=("fashion_mnist", "digits"),
        help="convergence: the data (digits: the embedded 8x8 digits)",
    )
    p.add_argument(
        "--augment",
        default="weak",
        choices=("weak", "none"),
        help="convergence: augmentation of the supervised loss",
    )
    p.add_argument(
        "--encoder",
        default=None,
        help="convergence: a saved MoBYEncoder for the pretrained init "
        "(default: the cached pretraining of this script)",
    )
    p.add_argument("--repeats", type=int, default=3, help="throughput: interleaved repeats")
    p.add_argument(
        "--report",
        action="store_true",
        help="convergence: train nothing, print the table of --output (and --merge)",
    )
    p.add_argument(
        "--merge",
        default=None,
        help="convergence: JSON files of other invocations whose entries join --output",
    )
    args = p.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; choose among {', '.join(ROWS)}")
    args.budgets, args.seeds = _parse_ints(args.budgets), _parse_ints(args.seeds)
    args.epoch_table = _parse_ints(args.epoch_table)
    args.compute = _parse_ints(args.compute)
    args.inits = [i for i in args.inits.split(",") if i]
    if set(args.inits) - {"scratch", "pretrained"}:
        p.error(f"unknown inits {args.inits}; choose among scratch, pretrained")
    if args.quick and args.study == "convergence":
        args.compute = [512, 1024]
    if args.quick:
        args.budgets, args.seeds = [50, 100], [0]
        args.max_epochs, args.batch_size, args.min_samples_per_epoch = 2, 32, 128
        args.pretrain_epochs, args.pretrain_pool, args.epoch_table = 2, 256, [1, 2]
    return args


def _load(args):
    if args.quick or getattr(args, "dataset", None) == "digits":
        d = load_digits_dataset()
        return d.X_train, d.y_train, d.X_test, d.y_test, "digits"
    d = load_fashion_mnist(args.data_root)
    return d.X_train, d.y_train, d.X_test, d.y_test, "fashion_mnist"


def _views(dataset: str) -> str:
    return "digits" if dataset == "digits" else "fashion_mnist"


def _classifier(args, dataset: str, seed: int, **params) -> MoBYClassifier:
    small = dict(queue_size=64, projection_dim=16) if args.quick else {}
    # the rows of this table predate the converged rule: epochs of a padded size
    params.setdefault("train_samples", None)
    params.setdefault("lr_schedule", "step")
    params.setdefault("min_samples_per_epoch", args.min_samples_per_epoch or 2000)
    if args.head_layout:
        params.setdefault("head_layout", args.head_layout)
    return MoBYClassifier(
        backbone=args.backbone,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        views=_views(dataset),
        random_state=seed,
        **small,
        **params,
    )


def _encoder_settings(args, dataset: str) -> dict:
    settings = dict(
        backbone=args.backbone,
        max_epochs=args.pretrain_epochs,
        batch_size=args.pretrain_batch_size,
        lr=args.pretrain_lr,
        temperature=args.temperature,
        views=_views(dataset),
        random_state=0,
    )
    if args.head_layout:
        settings["head_layout"] = args.head_layout
    if args.quick:
        settings.update(queue_size=64, projection_dim=16)
    return settings


def _pretrain(args, dataset: str, X_train: np.ndarray, cache: Path) -> dict:
    """The cached encoder (trained on first use) and its snapshots, keyed by settings."""
    settings = _encoder_settings(args, dataset)
    pool_size = args.pretrain_pool or X_train.shape[0]
    key_text = json.dumps(
        {
            "dataset": dataset,
            "pool": pool_size,
            **settings,
            "head_layout": settings.get("head_layout", "library default"),
        },
        sort_keys=True,
    )
    key = hashlib.sha1(key_text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"encoder-{key}.pt"
    pool = np.random.default_rng(12345).permutation(X_train.shape[0])[:pool_size]
    snapshots = {
        e: cache / f"encoder-{key}-epoch{e}.pt"
        for e in args.epoch_table
        if e <= args.pretrain_epochs
    }

    def snapshot(encoder, epoch):
        if epoch in snapshots:
            encoder.save(snapshots[epoch])

    cached = final.exists()
    if cached:
        try:
            cached = MoBYEncoder.load(final).n_epochs_done_ == args.pretrain_epochs
        except ValueError:
            cached = False
    started = time.perf_counter()
    encoder = MoBYEncoder(**settings, checkpoint=final, verbose=0 if args.quick else 1)
    encoder.fit(X_train[pool], on_epoch_end=snapshot)
    wall = time.perf_counter() - started
    info = {
        "key": key,
        "file": final.name,
        "settings": key_text,
        "pool_images": int(pool_size),
        "loaded_from_cache": bool(cached),
        "seconds_this_invocation": round(wall, 1),
        "seconds_recorded": round(sum(h["seconds"] for h in encoder.history_), 1),
        "loss_per_epoch": [round(h["loss"], 4) for h in encoder.history_],
        "threads": torch.get_num_threads(),
    }
    source = "loaded from the cache" if cached else "trained now"
    print(
        f"pretraining {key} ({source}): {pool_size} images, {args.pretrain_epochs} epochs, "
        f"{info['seconds_recorded']:.0f} s of training on {info['threads']} threads; "
        "one pretraining shared by every seed, budget and row"
    )
    return {"encoder": encoder, "path": final, "snapshots": snapshots, "info": info}


def _labels(y_train: np.ndarray, budget: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(y_train.shape[0], budget, replace=False)


def _probe_accuracy(encoder: MoBYEncoder, X_l, y_l, X_test, y_test, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed))
    model.fit(encoder.transform(X_l), y_l)
    return float(model.score(encoder.transform(X_test), y_test))


def _run_entry(row, args, data, budget, seed, pre) -> dict:
    X_train, y_train, X_test, y_test, dataset = data
    idx = _labels(y_train, budget, seed)
    X_l, y_l = X_train[idx], y_train[idx]
    started = time.perf_counter()
    extra = {}
    if row == "probe":
        accuracy = _probe_accuracy(pre["encoder"], X_l, y_l, X_test, y_test, seed)
    else:
        params = {
            "supervised_old": dict(contrastive_weight=0.0, min_samples_per_epoch=None),
            "supervised_new": dict(contrastive_weight=0.0),
            "finetune": dict(contrastive_weight=0.0, pretrained=str(pre["path"]) if pre else None),
            "finetune_joint": dict(
                contrastive_weight=0.5, pretrained=str(pre["path"]) if pre else None
            ),
        }[row]
        net = _classifier(args, dataset, seed, **params)
        pool = None
        if row == "finetune_joint":
            pool = np.delete(X_train, idx, axis=0)
        net.fit(X_l, y_l, X_unlabeled=pool)
        accuracy = float(net.score(X_test, y_test))
        extra = {"steps": int(net.total_steps_), "epoch_samples": int(net.epoch_samples_)}
    return {
        "row": row,
        "budget": budget,
        "seed": seed,
        "accuracy": round(accuracy, 4),
        "seconds": round(time.perf_counter() - started, 1),
        **extra,
    }


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _summary(entries: list[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = {}
    for e in entries:
        groups.setdefault((e["row"], e["budget"]), []).append(e["accuracy"])
    out = []
    for (row, budget), accs in sorted(
        groups.items(), key=lambda kv: (ROWS.index(kv[0][0]), kv[0][1])
    ):
        out.append(
            {
                "row": row,
                "budget": budget,
                "n_seeds": len(accs),
                "mean": round(statistics.fmean(accs), 4),
                "std": round(statistics.pstdev(accs), 4) if len(accs) > 1 else 0.0,
            }
        )
    return out


def main(argv=None) -> dict:
    args = _parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.study == "convergence":
        return convergence_study(args)
    if args.study == "throughput":
        return throughput_study(args)
    name = "learner-quick.json" if args.quick else "learner.json"
    output = Path(args.output) if args.output else RESULTS / name
    cache = Path(args.cache) if args.cache else output.parent / "learner-cache"
    payload = {"entries": [], "epoch_table": []}
    if args.resume and output.exists():
        payload = json.loads(output.read_text())
    done = {(e["row"], e["budget"], e["seed"]) for e in payload["entries"]}
    data = _load(args)
    needs_encoder = any(r in args.rows for r in ("probe", "finetune", "finetune_joint"))
    pre = _pretrain(args, data[4], data[0], cache) if needs_encoder else None
    if pre is not None:
        payload["pretraining"] = pre["info"]
    payload.update(
        machine=machine_info(),
        dataset=data[4],
        settings={k: v for k, v in vars(args).items() if k not in ("resume",)},
    )
    for row in args.rows:
        for budget in args.budgets:
            for seed in args.seeds:
                if (row, budget, seed) in done:
                    continue
                entry = _run_entry(row, args, data, budget, seed, pre)
                print(
                    f"{row:>15} {budget:>5} labels seed {seed}: {entry['accuracy']:.4f} "
                    f"({entry['seconds']:.0f} s)",
                    flush=True,
                )
                payload["entries"].append(entry)
                payload["summary"] = _summary(payload["entries"])
                _write(output, payload)
    if pre is not None and "probe" in args.rows:
        table = {(t["epoch"], t["budget"], t["seed"]) for t in payload["epoch_table"]}
        for epoch, path in sorted(pre["snapshots"].items()):
            if not path.exists():  # written by a pretraining that ran before this option
                print(f"no snapshot after {epoch} pretraining epochs in the cache")
                continue
            snapshot = MoBYEncoder.load(path)
            for budget in args.budgets:
                for seed in args.seeds[:1]:  # one seed: the table shows a trend
                    if (epoch, budget, seed) in table:
                        continue
                    idx = _labels(data[1], budget, seed)
                    acc = _probe_accuracy(
                        snapshot, data[0][idx], data[1][idx], data[2], data[3], seed
                    )
                    payload["epoch_table"].append(
                        {
                            "epoch": epoch,
                            "budget": budget,
                            "seed": seed,
                            "probe_accuracy": round(acc, 4),
                        }
                    )
                    print(f"probe after {epoch:>3} pretraining epochs, {budget} labels: {acc:.4f}")
        _write(output, payload)
    payload["summary"] = _summary(payload["entries"])
    _write(output, payload)
    print(f"{'row':>15} {'labels':>6} {'seeds':>5} {'mean':>7} {'std':>6}")
    for s in payload["summary"]:
        print(
            f"{s['row']:>15} {s['budget']:>6} {s['n_seeds']:>5} {s['mean']:>7.4f} {s['std']:>6.4f}"
        )
    print(f"wrote {output}")
    return payload


# ----------------------------------------------------------- convergence study
def _no_augment(x: torch.Tensor, generator=None) -> torch.Tensor:
    return x


def _study_net(args, dataset: str, seed: int, **params) -> MoBYClassifier:
    views = _views(dataset) if args.augment == "weak" else (_no_augment, _no_augment)
    small = dict(queue_size=64, projection_dim=16) if args.quick else {}
    params["optimizer__nesterov"] = bool(args.nesterov)  # explicit: the library's default is on
    return MoBYClassifier(
        backbone=args.backbone,
        contrastive_weight=args.contrastive_weight,
        unlabeled_ratio=args.unlabeled_ratio,
        contrastive_every=args.contrastive_every,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        views=views,
        precision=args.precision,
        random_state=seed,
        **small,
        **params,
    )


def _setting(args) -> dict:
    """What, besides init, budget, seed and compute, an entry's accuracy depends on."""
    return {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "augment": args.augment,
        "backbone": args.backbone,
        "precision": args.precision,
        "nesterov": bool(args.nesterov),
        "contrastive_weight": args.contrastive_weight,
        "unlabeled_ratio": args.unlabeled_ratio,
        "contrastive_every": args.contrastive_every,
    }


# settings added later: what the entries written before them ran with
_SETTING_DEFAULTS = {
    "precision": "fp32",
    "nesterov": False,
    "contrastive_weight": 0.0,
    "unlabeled_ratio": 1.0,
    "contrastive_every": 1,
}


def _setting_name(entry: dict) -> str:
    name = (
        f"{entry['init']} batch {entry['batch_size']} lr {entry['lr']} "
        f"{entry['lr_schedule']} aug {entry['augment']}"
    )
    if entry.get("nesterov", False):
        name += " nesterov"
    if entry.get("precision", "fp32") != "fp32":
        name += f" {entry['precision']}"
    if entry.get("contrastive_weight", 0.0):
        name += (
            f" moby {entry['contrastive_weight']} u{entry['unlabeled_ratio']}"
            f" every {entry['contrastive_every']}"
        )
    return name


def converged_at(curve: dict[int, float], tolerance: float = 0.003) -> int | None:
    """The least compute from which no measured doubling adds ``tolerance`` or more.

    ``curve`` maps compute to mean accuracy; a compute without its double in
    the curve cannot be called converged. A flat step followed by a rise is
    not convergence: every later doubling must stay within ``tolerance``.

    >>> converged_at({25: 0.70, 50: 0.75, 100: 0.752, 200: 0.753})
    50
    >>> converged_at({25: 0.747, 50: 0.749, 100: 0.755, 200: 0.756})
    100
    >>> converged_at({25: 0.70, 50: 0.75}) is None
    True
    """
    doublings = [c for c in sorted(curve) if 2 * c in curve]
    for i, compute in enumerate(doublings):
        if all(curve[2 * c] - curve[c] < tolerance for c in doublings[i:]):
            return compute
    return None


def _entry_key(entry: dict) -> tuple:
    names = (
        "batch_size",
        "lr",
        "lr_schedule",
        "augment",
        "backbone",
        "init",
        "budget",
        "seed",
        "samples",
    )
    return tuple(entry[n] for n in names) + tuple(
        entry.get(n, default) for n, default in _SETTING_DEFAULTS.items()
    )


def _union(entries: list[dict], others: list[dict]) -> list[dict]:
    """Entries of both lists, one per key (the first list's where both have it)."""
    seen = {_entry_key(e) for e in entries}
    return entries + [e for e in others if _entry_key(e) not in seen]


def convergence_table(entries: list[dict]) -> list[dict]:
    """One row per (setting, budget): mean and std of the seeds at each compute."""
    groups: dict[tuple, dict[int, list[float]]] = {}
    for e in entries:
        key = (_setting_name(e), e["budget"])
        groups.setdefault(key, {}).setdefault(e["samples"], []).append(e["accuracy"])
    rows = []
    for (name, budget), by_compute in sorted(groups.items()):
        means = {c: statistics.fmean(a) for c, a in by_compute.items()}
        most = max(map(len, by_compute.values()))
        full = {c: m for c, m in means.items() if len(by_compute[c]) == most}
        rows.append(
            {
                "setting": name,
                "budget": budget,
                "accuracy": {
                    str(c): {
                        "mean": round(means[c], 4),
                        "std": round(statistics.pstdev(a), 4),
                        "n_seeds": len(a),
                    }
                    for c, a in sorted(by_compute.items())
                },
                "converged_at": converged_at(full),
            }
        )
    return rows


def _print_convergence(rows: list[dict]) -> None:
    computes = sorted({int(c) for r in rows for c in r["accuracy"]})
    print("accuracy (%) against labelled samples per fit; mean ± std of the seeds")
    print(
        f"{'setting':<44} {'labels':>6} "
        + " ".join(f"{c:>13}" for c in computes)
        + "  converged at"
    )
    for r in rows:
        cells = []
        for c in computes:
            a = r["accuracy"].get(str(c))
            cells.append(
                f"{100 * a['mean']:6.2f}±{100 * a['std']:4.2f}({a['n_seeds']})" if a else " " * 13
            )
        print(
            f"{r['setting']:<44} {r['budget']:>6} "
            + " ".join(f"{x:>13}" for x in cells)
            + f"  {r['converged_at'] or '-'}"
        )


def convergence_study(args) -> dict:
    """Accuracy against compute for every (init, budget, seed); resumable JSON."""
    name = "learner-convergence-quick.json" if args.quick else "learner-convergence.json"
    output = Path(args.output) if args.output else RESULTS / name
    payload = {"entries": []}
    if output.exists() and (args.resume or not args.quick):
        payload = json.loads(output.read_text())  # entries are keyed by every setting
    for other in (args.merge or "").split(","):
        if other:  # invocations that ran side by side, each with its own file
            payload["entries"] = _union(
                payload["entries"], json.loads(Path(other).read_text())["entries"]
            )
    setting = _setting(args)
    done = {_entry_key(e) for e in payload["entries"]}
    if args.report:
        payload["table"] = convergence_table(payload["entries"])
        _write(output, payload)
        _print_convergence(payload["table"])
        return payload
    data = _load(args)
    X_train, y_train, X_test, y_test, dataset = data
    encoder = None
    if "pretrained" in args.inits:
        if args.encoder:
            encoder = args.encoder
        else:
            cache = Path(args.cache) if args.cache else output.parent / "learner-cache"
            encoder = str(_pretrain(args, dataset, X_train, cache)["path"])
    payload["machine"] = machine_info()
    payload["dataset"] = dataset
    for init in args.inits:
        for budget in args.budgets:
            for samples in args.compute:
                for seed in args.seeds:
                    key = {
                        **setting,
                        "init": init,
                        "budget": budget,
                        "seed": seed,
                        "samples": samples,
                    }
                    if _entry_key(key) in done:
                        continue
                    idx = _labels(y_train, budget, seed)
                    net = _study_net(
                        args,
                        dataset,
                        seed,
                        train_samples=samples,
                        pretrained=encoder if init == "pretrained" else None,
                    )
                    pool = np.delete(X_train, idx, axis=0) if args.contrastive_weight else None
                    started = time.perf_counter()
                    net.fit(X_train[idx], y_train[idx], X_unlabeled=pool)
                    seconds = time.perf_counter() - started
                    accuracy = float(net.score(X_test, y_test))
                    entry = {
                        **key,
                        "accuracy": round(accuracy, 4),
                        "steps": int(net.total_steps_),
                        "seen": int(net.epoch_samples_ * net.max_epochs),
                        "seconds": round(seconds, 1),
                        "images_per_second": round(net.epoch_samples_ * net.max_epochs / seconds),
                    }
                    payload["entries"].append(entry)
                    payload["table"] = convergence_table(payload["entries"])
                    _write(output, payload)
                    print(
                        f"{init:>10} {budget:>5} labels {samples:>7} samples seed {seed}: "
                        f"{accuracy:.4f} ({seconds:.0f} s, {entry['steps']} steps)",
                        flush=True,
                    )
    payload["table"] = convergence_table(payload["entries"])
    _write(output, payload)
    _print_convergence(payload["table"])
    print(f"wrote {output}")
    return payload


# ------------------------------------------------------------------ throughput
def _plain_loop(
    module,
    X: torch.Tensor,
    y: torch.Tensor,
    weak,
    batch_size: int,
    lr: float,
    steps: int,
    seed: int,
    precision: str = "fp32",
) -> float:
    """Images per second of a hand-written loop: the baseline our fit is measured against."""
    from moby_al_plugin.hardware import autocast

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        module.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    module.train()
    started = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(0, X.shape[0], (batch_size,), generator=generator)
        with autocast(precision):
            logits = module(weak(X[rows], generator))
        loss = torch.nn.functional.cross_entropy(logits.float(), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - started)


def throughput_study(args) -> dict:
    """Our supervised fit against a plain loop: same network, batch, views and precision.

    Every (precision, threads) cell is measured ``--repeats`` times, the
    cells interleaved within each repeat, in one process.
    """
    from moby_al_plugin._validation import check_images
    from moby_al_plugin.augment import get_view_pair
    from moby_al_plugin.hardware import resolve_precision

    X_train, y_train, _, _, dataset = _load(args)
    budget = args.budgets[-1]
    idx = _labels(y_train, budget, 0)
    X, y = X_train[idx], y_train[idx]
    samples = 2048 if args.quick else 25_600
    cells = [(p, t) for p in ("fp32", "bf16") for t in sorted({1, args.threads})]
    rows = []
    for repeat in range(args.repeats):
        for precision, threads in cells:
            torch.set_num_threads(threads)
            net = MoBYClassifier(
                backbone=args.backbone,
                contrastive_weight=0.0,
                batch_size=args.batch_size,
                lr=args.lr,
                max_epochs=2,
                train_samples=samples,
                views=_views(dataset),
                precision=precision,
                random_state=repeat,
            )
            started = time.perf_counter()
            net.fit(X, y)
            ours = net.epoch_samples_ * net.max_epochs / (time.perf_counter() - started)
            weak, _ = get_view_pair(_views(dataset), net.n_channels_in_)
            plain = _plain_loop(
                net.module_,
                torch.as_tensor(check_images(X)),
                torch.as_tensor(net._encode_labels(y, allow_new=False)),
                weak,
                args.batch_size,
                args.lr,
                samples // args.batch_size,
                repeat,
                resolve_precision(precision),
            )
            rows.append(
                {
                    "precision": precision,
                    "threads": threads,
                    "repeat": repeat,
                    "fit_images_per_second": round(ours),
                    "plain_images_per_second": round(plain),
                    "ratio": round(ours / plain, 3),
                }
            )
            print(
                f"{precision} {threads} thread(s) repeat {repeat}: fit {ours:.0f} img/s, "
                f"plain loop {plain:.0f} img/s, ratio {ours / plain:.3f}",
                flush=True,
            )
    torch.set_num_threads(args.threads)
    summary = {}
    for precision, threads in cells:
        sel = [r for r in rows if (r["precision"], r["threads"]) == (precision, threads)]
        summary[f"{precision}, {threads} thread(s)"] = {
            "fit_median": statistics.median(r["fit_images_per_second"] for r in sel),
            "plain_median": statistics.median(r["plain_images_per_second"] for r in sel),
            "ratio_median": statistics.median(r["ratio"] for r in sel),
        }
    base = summary["fp32, 1 thread(s)"]["fit_median"]
    for cell in summary.values():
        cell["fit_over_fp32_1_thread"] = round(cell["fit_median"] / base, 3)
    print(json.dumps(summary, indent=1))
    payload = {
        "machine": machine_info(),
        "dataset": dataset,
        "budget": budget,
        "batch_size": args.batch_size,
        "samples_per_fit": samples,
        "rows": rows,
        "summary": summary,
    }
    if not args.quick:
        _write(Path(args.output) if args.output else RESULTS / "learner-throughput.json", payload)
    return payload


if __name__ == "__main__":
    main()

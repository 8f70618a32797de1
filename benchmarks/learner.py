"""The learner at 200 and 1,000 random Fashion-MNIST labels, with and without pretraining.

Rows (``--rows``; the default runs all but ``finetune_joint``):

``supervised_old``
    The supervised net (``contrastive_weight=0``) on the old schedule: an
    epoch is one pass over the labelled set (``min_samples_per_epoch=None``).
``supervised_new``
    The same net on the new schedule (``min_samples_per_epoch``, default of
    the library).
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

Usage::

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
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                   help=f"comma-separated rows among {', '.join(ROWS)}")
    p.add_argument("--budgets", default="200,1000", help="labelled-set sizes")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the labelled sets and the nets")
    p.add_argument("--data-root", default=None, help="Fashion-MNIST folder (library default)")
    p.add_argument("--backbone", default="small_cnn")
    p.add_argument("--max-epochs", type=int, default=15, help="classifier epochs per fit")
    p.add_argument("--batch-size", type=int, default=32, help="classifier batch size")
    p.add_argument("--lr", type=float, default=0.05, help="classifier learning rate")
    p.add_argument("--min-samples-per-epoch", type=int, default=None,
                   help="new schedule's minimum (default: the library's)")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--pretrain-pool", type=int, default=20000,
                   help="images of the training set the encoder is pretrained on (0 = all)")
    p.add_argument("--pretrain-lr", type=float, default=0.05)
    p.add_argument("--pretrain-batch-size", type=int, default=128)
    p.add_argument("--head-layout", default=None, help="encoder heads (default: the library's)")
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--epoch-table", default="1,2,5,10",
                   help="pretraining epochs whose snapshots get a probe accuracy")
    p.add_argument("--cache", default=None, help="pretraining cache folder")
    p.add_argument("--output", default=None, help="JSON path (default results/learner.json)")
    p.add_argument("--resume", action="store_true", help="skip entries already in --output")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny settings on the digits")
    args = p.parse_args(argv)
    args.rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; choose among {', '.join(ROWS)}")
    args.budgets, args.seeds = _parse_ints(args.budgets), _parse_ints(args.seeds)
    args.epoch_table = _parse_ints(args.epoch_table)
    if args.quick:
        args.budgets, args.seeds = [50, 100], [0]
        args.max_epochs, args.batch_size, args.min_samples_per_epoch = 2, 32, 128
        args.pretrain_epochs, args.pretrain_pool, args.epoch_table = 2, 256, [1, 2]
    return args


def _load(args):
    if args.quick:
        d = load_digits_dataset()
        return d.X_train, d.y_train, d.X_test, d.y_test, "digits"
    d = load_fashion_mnist(args.data_root)
    return d.X_train, d.y_train, d.X_test, d.y_test, "fashion_mnist"


def _views(dataset: str) -> str:
    return "digits" if dataset == "digits" else "fashion_mnist"


def _classifier(args, dataset: str, seed: int, **params) -> MoBYClassifier:
    small = dict(queue_size=64, projection_dim=16) if args.quick else {}
    if args.min_samples_per_epoch is not None:
        params.setdefault("min_samples_per_epoch", args.min_samples_per_epoch)
    if args.head_layout:
        params.setdefault("head_layout", args.head_layout)
    return MoBYClassifier(backbone=args.backbone, max_epochs=args.max_epochs,
                          batch_size=args.batch_size, lr=args.lr, views=_views(dataset),
                          random_state=seed, **small, **params)


def _encoder_settings(args, dataset: str) -> dict:
    settings = dict(backbone=args.backbone, max_epochs=args.pretrain_epochs,
                    batch_size=args.pretrain_batch_size, lr=args.pretrain_lr,
                    temperature=args.temperature, views=_views(dataset), random_state=0)
    if args.head_layout:
        settings["head_layout"] = args.head_layout
    if args.quick:
        settings.update(queue_size=64, projection_dim=16)
    return settings


def _pretrain(args, dataset: str, X_train: np.ndarray, cache: Path) -> dict:
    """The cached encoder (trained on first use) and its snapshots, keyed by settings."""
    settings = _encoder_settings(args, dataset)
    pool_size = args.pretrain_pool or X_train.shape[0]
    key_text = json.dumps({"dataset": dataset, "pool": pool_size, **settings,
                           "head_layout": settings.get("head_layout", "library default")},
                          sort_keys=True)
    key = hashlib.sha1(key_text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"encoder-{key}.pt"
    pool = np.random.default_rng(12345).permutation(X_train.shape[0])[:pool_size]
    snapshots = {e: cache / f"encoder-{key}-epoch{e}.pt" for e in args.epoch_table
                 if e <= args.pretrain_epochs}

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
        "key": key, "file": final.name, "settings": key_text, "pool_images": int(pool_size),
        "loaded_from_cache": bool(cached),
        "seconds_this_invocation": round(wall, 1),
        "seconds_recorded": round(sum(h["seconds"] for h in encoder.history_), 1),
        "loss_per_epoch": [round(h["loss"], 4) for h in encoder.history_],
        "threads": torch.get_num_threads(),
    }
    source = "loaded from the cache" if cached else "trained now"
    print(f"pretraining {key} ({source}): {pool_size} images, {args.pretrain_epochs} epochs, "
          f"{info['seconds_recorded']:.0f} s of training on {info['threads']} threads; "
          "one pretraining shared by every seed, budget and row")
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
            "finetune_joint": dict(contrastive_weight=0.5,
                                   pretrained=str(pre["path"]) if pre else None),
        }[row]
        net = _classifier(args, dataset, seed, **params)
        pool = None
        if row == "finetune_joint":
            pool = np.delete(X_train, idx, axis=0)
        net.fit(X_l, y_l, X_unlabeled=pool)
        accuracy = float(net.score(X_test, y_test))
        extra = {"steps": int(net.total_steps_), "epoch_samples": int(net.epoch_samples_)}
    return {"row": row, "budget": budget, "seed": seed, "accuracy": round(accuracy, 4),
            "seconds": round(time.perf_counter() - started, 1), **extra}


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
    for (row, budget), accs in sorted(groups.items(), key=lambda kv: (ROWS.index(kv[0][0]),
                                                                        kv[0][1])):
        out.append({"row": row, "budget": budget, "n_seeds": len(accs),
                    "mean": round(statistics.fmean(accs), 4),
                    "std": round(statistics.pstdev(accs), 4) if len(accs) > 1 else 0.0})
    return out


def main(argv=None) -> dict:
    args = _parse_args(argv)
    torch.set_num_threads(args.threads)
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
    payload.update(machine=machine_info(), dataset=data[4],
                   settings={k: v for k, v in vars(args).items() if k not in ("resume",)})
    for row in args.rows:
        for budget in args.budgets:
            for seed in args.seeds:
                if (row, budget, seed) in done:
                    continue
                entry = _run_entry(row, args, data, budget, seed, pre)
                print(f"{row:>15} {budget:>5} labels seed {seed}: {entry['accuracy']:.4f} "
                      f"({entry['seconds']:.0f} s)", flush=True)
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
                    acc = _probe_accuracy(snapshot, data[0][idx], data[1][idx], data[2],
                                          data[3], seed)
                    payload["epoch_table"].append({"epoch": epoch, "budget": budget,
                                                   "seed": seed, "probe_accuracy": round(acc, 4)})
                    print(f"probe after {epoch:>3} pretraining epochs, {budget} labels: {acc:.4f}")
        _write(output, payload)
    payload["summary"] = _summary(payload["entries"])
    _write(output, payload)
    print(f"{'row':>15} {'labels':>6} {'seeds':>5} {'mean':>7} {'std':>6}")
    for s in payload["summary"]:
        print(f"{s['row']:>15} {s['budget']:>6} {s['n_seeds']:>5} {s['mean']:>7.4f} "
              f"{s['std']:>6.4f}")
    print(f"wrote {output}")
    return payload


if __name__ == "__main__":
    main()

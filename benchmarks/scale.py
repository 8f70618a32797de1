"""A million-image active-learning cycle from disk: wall time and peak memory of each stage.

The pool is ``--pool-size`` synthetic 32x32 grey images (ten classes of
smooth random prototypes, each image shifted and noised), written chunk by
chunk to a ``.npy`` file and read back as a memmap. Each stage runs in its
own process, so that its peak resident memory (``ru_maxrss`` from
``os.wait4``) is its own; the stage also samples its anonymous and
file-backed resident memory (``/proc/self/status``), since the pages of a
memmap it reads count in ``ru_maxrss`` but are the kernel's to drop:

0. ``imports``: torch and the library imported, nothing done (the memory
   floor of every other stage);
1. ``make-pool``: write the pool;
2. ``pretrain``: ``MoBYEncoder.fit`` on ``--views`` images drawn from the
   memmap (one epoch; the rows are read batch by batch);
3. ``features``: ``write_features`` of the whole pool to a float16 memmap;
4. ``kcenter``: one k-Center-Greedy query of ``--query`` images on it;
5. ``typiclust``: one TypiClust query of ``--query`` images (the sampled
   version that :mod:`moby_al_plugin.selection.typicality` runs above 100,000 points);
6. ``ddp``: the same pretraining under ``torchrun`` with 1 and then 2
   processes (gloo, one thread each), alternated ``--ddp-repeats`` times, as
   the ratio of the median wall times.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/scale.py            # 1,000,000 images
    python benchmarks/scale.py --quick                       # 5,000 images, seconds

It prints a table and writes ``benchmarks/results/scale.json`` (``--quick``:
``scale_quick.json``; ``--output DIR``: ``DIR.json``). The working folder
(``--work``, default a temporary folder) holds about 1.2 GB at full size and
is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, ROOT, machine_info

STAGES = ("imports", "make-pool", "pretrain", "features", "kcenter", "typiclust")


# ------------------------------------------------------------------ stages
def make_pool(work: Path, n: int, seed: int = 0) -> dict:
    """Write ``n`` synthetic 1x32x32 uint8 images to ``work/pool.npy`` in chunks."""
    import numpy as np

    rng = np.random.RandomState(seed)
    # ten prototypes: smooth random fields (a coarse 8x8 grid, upsampled)
    coarse = rng.rand(10, 8, 8).astype(np.float32)
    prototypes = np.kron(coarse, np.ones((4, 4), dtype=np.float32))
    labels = rng.randint(0, 10, size=n).astype(np.int64)
    pool = np.lib.format.open_memmap(
        work / "pool.npy", mode="w+", dtype=np.uint8, shape=(n, 1, 32, 32)
    )
    chunk = 50_000
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        images = prototypes[labels[start:stop]]
        shifts = rng.randint(-2, 3, size=(stop - start, 2))
        for axis in (0, 1):  # whole-image shifts, two groups of rows at a time
            for s in range(-2, 3):
                rows = shifts[:, axis] == s
                images[rows] = np.roll(images[rows], s, axis=axis + 1)
        images = images + rng.normal(0, 0.1, size=images.shape).astype(np.float32)
        pool[start:stop, 0] = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    pool.flush()
    np.save(work / "labels.npy", labels)
    return {"bytes": int((work / "pool.npy").stat().st_size)}


def _encoder():
    from moby_al_plugin import MoBYEncoder

    return MoBYEncoder(
        backbone="small_cnn",
        max_epochs=1,
        batch_size=128,
        queue_size=4096,
        views="auto",
        random_state=0,
        verbose=False,
    )


def _view_rows(n: int, views: int):
    import numpy as np

    return np.sort(np.random.RandomState(1).choice(n, size=min(views, n), replace=False))


def pretrain(work: Path, views: int) -> dict:
    """``MoBYEncoder.fit`` on ``views`` images of the memmap, one epoch; saved to encoder.pt."""
    from moby_al_plugin import open_memmap_pool
    from moby_al_plugin.data.pools import check_pool

    pool = check_pool(open_memmap_pool(work / "pool.npy"))
    encoder = _encoder().fit(pool.take(_view_rows(len(pool), views)))
    encoder.save(work / "encoder.pt")
    return {"views": min(views, len(pool)), "loss": float(encoder.history[-1, "loss"])}


def features(work: Path) -> dict:
    """Features of the whole pool, chunk by chunk, into a float16 memmap."""
    from moby_al_plugin import load_encoder, open_memmap_pool, write_features

    encoder = load_encoder(work / "encoder.pt")
    written = write_features(
        encoder, open_memmap_pool(work / "pool.npy"), work / "features.npy", chunk_size=4096
    )
    return {"shape": list(written.shape), "dtype": str(written.dtype)}


def _picks_report(work: Path, picks, name: str) -> dict:
    import numpy as np

    labels = np.load(work / "labels.npy")
    np.save(work / f"{name}.npy", picks)
    return {"picked": len(picks), "classes_covered": int(np.unique(labels[picks]).size)}


def kcenter(work: Path, query: int) -> dict:
    """One k-Center-Greedy query on the float16 features (computed in float32)."""
    import numpy as np

    from moby_al_plugin import k_center_greedy

    feats = np.load(work / "features.npy", mmap_mode="r")
    picks = k_center_greedy(feats, query)
    return _picks_report(work, picks, "kcenter")


def typiclust(work: Path, query: int) -> dict:
    """One TypiClust query on the float16 features (sampled above 100,000 points)."""
    import numpy as np

    from moby_al_plugin.selection.typicality import typiclust_select

    feats = np.load(work / "features.npy", mmap_mode="r")
    # one cluster per pick, as from zero labels TypiClust asks for
    picks = typiclust_select(None, feats, query, max_clusters=query, random_state=0)
    return _picks_report(work, np.asarray(picks), "typiclust")


def imports() -> dict:
    """The library and torch imported, nothing done: the floor of every stage's memory."""
    import torch

    import moby_al_plugin.classifier  # noqa: F401

    return {"torch": torch.__version__}


def run_stage(name: str, work: Path, args: argparse.Namespace) -> dict:
    if name == "imports":
        return imports()
    if name == "make-pool":
        return make_pool(work, args.pool_size)
    if name == "pretrain":
        return pretrain(work, args.views)
    if name == "features":
        return features(work)
    if name == "kcenter":
        return kcenter(work, args.query)
    if name == "typiclust":
        return typiclust(work, args.query)
    raise SystemExit(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")


# ----------------------------------------------------------------- driver
class _MemorySampler:
    """Peaks of anonymous and file-backed resident memory, read from /proc every 50 ms.

    ``ru_maxrss`` counts the pages of a memmap that a stage has touched: they
    are file-backed and the kernel drops them under pressure. The anonymous
    peak is the memory the stage itself holds (arrays, tensors, buffers).
    """

    def __init__(self) -> None:
        import threading

        self.peaks = {"RssAnon": 0, "RssFile": 0}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            lines = Path("/proc/self/status").read_text().splitlines()
        except OSError:  # not Linux: no figures
            return
        for line in lines:
            key, _, value = line.partition(":")
            if key in self.peaks:
                self.peaks[key] = max(self.peaks[key], int(value.split()[0]))  # kB

    def _run(self) -> None:
        while not self._done.wait(0.05):
            self._sample()

    def stop(self) -> dict:
        self._done.set()
        self._thread.join()
        self._sample()
        return {
            "peak_anon_mib": round(self.peaks["RssAnon"] / 1024, 1),
            "peak_file_mib": round(self.peaks["RssFile"] / 1024, 1),
        }


def _measured(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run ``command``; its wall seconds, peak RSS in MiB (largest process) and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, out


def _ddp_pretrain(work: Path, args: argparse.Namespace, processes: int) -> dict:
    """The pretraining of the ``pretrain`` stage under torchrun, as the command runs it."""
    import numpy as np

    sample = work / "views.npy"
    if not sample.exists():
        pool = np.load(work / "pool.npy", mmap_mode="r")
        np.save(sample, pool[_view_rows(len(pool), args.views)])
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [
        str(torchrun),
        "--nproc-per-node",
        str(processes),
        "-m",
        "moby_al_plugin",
        "pretrain",
        "--images",
        str(sample),
        "--output",
        str(work / f"encoder-ddp{processes}.pt"),
        "--epochs",
        "1",
        "--batch-size",
        str(128 // processes),  # one global batch of 128: the same steps, split
        "--seed",
        "0",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    seconds, rss, _ = _measured(command, env=env)
    return {"processes": processes, "seconds": round(seconds, 2), "peak_rss_mib": round(rss, 1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-size", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=20_000, help="images seen in pretraining")
    parser.add_argument("--query", type=int, default=1_000)
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 1 vs 2 processes stage")
    parser.add_argument(
        "--ddp-repeats", type=int, default=3, help="runs of 1 and of 2 processes, alternated"
    )
    parser.add_argument("--output", default=None)
    parser.add_argument("--quick", action="store_true", help="5,000 images, for the tests")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # one stage, internal
    args = parser.parse_args(argv)
    if args.quick:
        args.pool_size, args.views, args.query = 5_000, 500, 20
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moby-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.stage:  # a child: run one stage, print its figures as one JSON line
        sampler = _MemorySampler()
        started = time.perf_counter()
        figures = run_stage(args.stage, work, args)
        figures["stage_seconds"] = round(time.perf_counter() - started, 2)
        figures.update(sampler.stop())
        print(json.dumps(figures))
        return figures

    rows = []
    forwarded = ["--pool-size", str(args.pool_size), "--views", str(args.views)]
    forwarded += ["--query", str(args.query), "--work", str(work)]
    try:
        for stage in STAGES:
            command = [sys.executable, __file__, "--stage", stage, *forwarded]
            seconds, rss, out = _measured(command)
            figures = json.loads(out.strip().splitlines()[-1])
            rows.append(
                {
                    "stage": stage,
                    "seconds": round(seconds, 2),
                    "peak_rss_mib": round(rss, 1),
                    **figures,
                }
            )
            print(f"{stage:10s} {seconds:9.1f} s  peak RSS {rss:8.1f} MiB  {figures}", flush=True)
        ddp = []
        if not args.no_ddp:
            for _ in range(args.ddp_repeats):  # alternated: a load change hits both alike
                for processes in (1, 2):
                    ddp.append(_ddp_pretrain(work, args, processes))
                    print(f"ddp pretrain, {processes} process(es): {ddp[-1]}", flush=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    features_mib = args.pool_size * 2 * _feature_dim(rows) / 2**20
    payload = {
        "machine": machine_info(),
        "pool": {"images": args.pool_size, "shape": [1, 32, 32], "dtype": "uint8"},
        "views": args.views,
        "query": args.query,
        "stages": rows,
        "features_float16_mib": round(features_mib, 1),
        "ddp_pretrain": ddp,
        "ddp_speedup_2_over_1": _median_ratio(ddp),
    }
    _print_table(payload)
    name = "scale_quick.json" if args.quick else "scale.json"
    # --output DIR writes DIR.json, as the other benchmarks do
    output = args.output and (
        args.output if args.output.endswith(".json") else f"{args.output}.json"
    )
    path = Path(output) if output else RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return payload


def _median_ratio(ddp: list[dict]) -> float | None:
    """Median seconds of the 1-process runs over the median of the 2-process runs."""
    import statistics

    one = [r["seconds"] for r in ddp if r["processes"] == 1]
    two = [r["seconds"] for r in ddp if r["processes"] == 2]
    if not one or not two:
        return None
    return round(statistics.median(one) / statistics.median(two), 3)


def _feature_dim(rows: list[dict]) -> int:
    for row in rows:
        if row["stage"] == "features":
            return int(row["shape"][1])
    return 0


def _print_table(payload: dict) -> None:
    print(
        f"\n| stage ({payload['pool']['images']:,} images) | wall s | peak RSS MiB | "
        "of it anonymous (peak) | file-backed (peak) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in payload["stages"]:
        print(
            f"| {row['stage']} | {row['seconds']:.1f} | {row['peak_rss_mib']:.0f} | "
            f"{row.get('peak_anon_mib', 0):.0f} | {row.get('peak_file_mib', 0):.0f} |"
        )
    for row in payload["ddp_pretrain"]:
        print(
            f"| pretrain, torchrun {row['processes']} process(es) | {row['seconds']:.1f} | "
            f"{row['peak_rss_mib']:.0f} | | |"
        )


if __name__ == "__main__":
    main()

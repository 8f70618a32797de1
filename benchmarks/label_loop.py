"""How long a person waits in ``moby-al label``, and how fast the page takes answers.

For each folder size (Fashion-MNIST images written as PNG files; the digits
with ``--quick``) the script runs, in one process:

1. ``init``;
2. ``next`` the first time: the encoder is pretrained (no cache yet), then
   the cold-start batch is chosen;
3. the batch is answered with the true classes through the page's HTTP API;
4. ``next`` again: the encoder comes from the cache, the network is
   fine-tuned on the answers, and the next batch is chosen.

"Time to the first image" is from the start of ``next`` until the page's
server has returned the new batch (``/api/state``, polled while ``next``
runs in a thread) and the bytes of its first image; "total" is until
``next`` ends (the second leg of the fine-tuning runs after the batch is
queued, while the person labels). Then a scripted annotator sends up to ``--answers`` answers,
one request at a time, on 127.0.0.1 (changing earlier answers once the
queue is empty, so the count does not depend on the batch size), and the
rate is their count over the wall time.

Usage::

    python benchmarks/label_loop.py                 # 1,000 and 10,000 images
    python benchmarks/label_loop.py --sizes 1000
    python benchmarks/label_loop.py --sizes 400 --train-samples 25000 --output label_loop-25k.json
    python benchmarks/label_loop.py --sizes 400 --graph-labels 0 --output label_loop-nograph.json
    python benchmarks/label_loop.py --quick         # digits, seconds; for the tests
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from _common import machine_info, write_json
from PIL import Image

from moby_al_plugin import load_digits_dataset, load_fashion_mnist
from moby_al_plugin.cli import main as moby_al
from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.server import create_app, make_local_server, make_token


class _Page:
    """The labelling page's server in a thread, and an HTTP client of it."""

    def __init__(self, workdir: Path) -> None:
        self.token = make_token()
        self.server = make_local_server(create_app(workdir, self.token))
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.base + path, headers={"X-Token": self.token})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"X-Token": self.token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def close(self) -> None:
        self.server.shutdown()


def _folder(root: Path, n: int, quick: bool) -> dict[str, str]:
    if quick:
        data = load_digits_dataset()
        X = (data.X_train.reshape(-1, 8, 8) * 255).round().astype(np.uint8)
    else:
        data = load_fashion_mnist()
        X = data.X_train
    y = data.y_train
    rows = np.random.default_rng(0).choice(len(y), size=n, replace=False)
    root.mkdir(parents=True)
    truth = {}
    for i, row in enumerate(rows):
        Image.fromarray(X[row], mode="L").save(root / f"{i:05d}.png")
        truth[f"{i:05d}.png"] = str(int(y[row]))
    return truth


def _next_until_first_image(work: Path, n: int, options: list[str]) -> tuple[float, float]:
    """Seconds from the start of ``next`` to the new batch's first image, and to its end.

    ``next`` runs in a thread while the page is polled: a round queues its
    batch before the second leg of its fine-tuning (``--first-leg-samples``),
    and the person sees the batch from then on.
    """
    page = _Page(work)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["status"] = moby_al(
                ["label", "next", "--workdir", str(work), "--n", str(n), *options]
            )
        except BaseException as exc:  # reported by the caller
            outcome["status"] = exc

    try:
        before = {p["image_id"] for p in json.loads(page.get("/api/state"))["pending"]}
        started = time.perf_counter()
        thread = threading.Thread(target=run)
        thread.start()
        first = None
        while first is None:
            new = [
                p["image_id"]
                for p in json.loads(page.get("/api/state"))["pending"]
                if p["image_id"] not in before
            ]
            if new:
                page.get(f"/image/{new[0]}")
                first = time.perf_counter() - started
            elif not thread.is_alive():
                raise RuntimeError(f"next queued nothing: {outcome.get('status')!r}")
            else:
                time.sleep(0.05)
        thread.join()
        total = time.perf_counter() - started
    finally:
        page.close()
    if outcome.get("status") != 0:
        raise RuntimeError(f"next failed: {outcome.get('status')!r}")
    return first, total


def measure(size: int, batch: int, answers: int, options: list[str], quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        truth = _folder(root / "images", size, quick)
        work = root / "work"
        classes = ",".join(str(c) for c in range(10))
        assert (
            moby_al(
                [
                    "label",
                    "init",
                    "--images",
                    str(root / "images"),
                    "--classes",
                    classes,
                    "--workdir",
                    str(work),
                ]
            )
            == 0
        )
        first, first_total = _next_until_first_image(work, batch, options)
        with LabelStore(work) as store:
            paths = store.image_paths()
        page = _Page(work)
        try:
            pending = [p["image_id"] for p in json.loads(page.get("/api/state"))["pending"]]
            for image_id in pending:
                page.post("/api/answer", {"image_id": image_id, "label": truth[paths[image_id]]})
        finally:
            page.close()
        cached, cached_total = _next_until_first_image(work, batch, options)

        page = _Page(work)
        try:
            queue = [p["image_id"] for p in json.loads(page.get("/api/state"))["pending"]]
            order = (queue + pending * answers)[:answers]  # then change earlier answers
            started = time.perf_counter()
            for image_id in order:
                page.post("/api/answer", {"image_id": image_id, "label": truth[paths[image_id]]})
            answer_seconds = time.perf_counter() - started
        finally:
            page.close()
        with LabelStore(work) as store:
            n_history = store.query("SELECT COUNT(*) FROM history")[0][0]
    return {
        "images": size,
        "batch": batch,
        "first_next_to_first_image_s": round(first, 1),
        "cached_next_to_first_image_s": round(cached, 1),
        "first_next_total_s": round(first_total, 1),
        "cached_next_total_s": round(cached_total, 1),
        "answers": len(order),
        "answers_per_second": round(len(order) / answer_seconds, 1),
        "history_rows": n_history,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument(
        "--train-samples",
        default="auto",
        help="fine-tuning samples of next (default: auto, the converged rule)",
    )
    parser.add_argument(
        "--graph-labels",
        default=None,
        help="next's --graph-labels (default: next's own default)",
    )
    parser.add_argument("--output", default=None, help="file name under benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="digits, tiny; for the tests")
    args = parser.parse_args(argv)
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    options = (
        ["--pretrain-epochs", "1", "--epochs", "1", "--train-samples", "64"]
        if args.quick
        else ["--train-samples", str(args.train_samples)]
    )
    if args.graph_labels is not None:
        options += ["--graph-labels", str(args.graph_labels)]
    answers = 100 if args.quick else args.answers
    rows = []
    for size in sizes:
        row = measure(size, 20 if args.quick else args.batch, answers, options, args.quick)
        rows.append(row)
        print(json.dumps(row), flush=True)
    payload = {
        "machine": machine_info(),
        "train_samples": "64" if args.quick else str(args.train_samples),
        "graph_labels": args.graph_labels,
        "rows": rows,
        "median_answers_per_second": statistics.median(r["answers_per_second"] for r in rows),
    }
    name = args.output or ("label_loop-quick.json" if args.quick else "label_loop.json")
    path = write_json(name, payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

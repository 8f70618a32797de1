"""Label a folder of images with ``moby-al label``, a scripted annotator answering.

The script writes a small folder of Fashion-MNIST images as PNG files (the
digits when Debian's ``dataset-fashion-mnist`` is not installed), then runs
what a person would run::

    moby-al label init --images DIR --classes FILE --workdir WORK
    moby-al label next --workdir WORK --n 20        # cold start: no label yet
    moby-al label serve --workdir WORK              # answer in the page ...
    moby-al label next --workdir WORK --n 20        # ... fine-tune, next batch
    moby-al label export --workdir WORK --output labels.csv

Instead of a person at the page, an annotator answers through the page's
HTTP API with the true class of each image. Each round prints how often the
model's suggestion (shown on the page, never pre-selected) was right, and
how many classes the picks covered.

Usage::

    python examples/label_a_folder.py                 # 500 images, 4 rounds of 20
    python examples/label_a_folder.py --tiny          # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from moby_al_plugin import load_digits_dataset, load_fashion_mnist
from moby_al_plugin.cli import main as moby_al
from moby_al_plugin.data.datasets import FASHION_MNIST_CLASSES
from moby_al_plugin.exceptions import DataNotFoundError
from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.server import create_app, make_local_server, make_token


def write_image_folder(folder: Path, n: int, seed: int = 0) -> tuple[dict[str, str], list[str]]:
    """``n`` images as PNG files in ``folder``; returns each file's true class and the classes."""
    try:
        data = load_fashion_mnist()
        names = list(FASHION_MNIST_CLASSES)  # "T-shirt/top" too: export escapes the "/"
        X = data.X_train
        y = data.y_train
    except DataNotFoundError:
        data = load_digits_dataset()
        names = [str(d) for d in range(10)]
        X = (data.X_train.reshape(-1, 8, 8) * 255).round().astype(np.uint8)
        y = data.y_train
    rows = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, row in enumerate(rows):
        path = f"img-{i:05d}.png"
        Image.fromarray(np.asarray(X[row], dtype=np.uint8), mode="L").save(folder / path)
        truth[path] = names[int(y[row])]
    return truth, names


class ScriptedAnnotator:
    """Answers the page's queued images through its HTTP API with the true class."""

    def __init__(self, workdir: Path, truth: dict[str, str]) -> None:
        self.truth = truth
        self.token = make_token()
        self.server = make_local_server(create_app(workdir, self.token))
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        with LabelStore(workdir) as store:
            self.paths = store.image_paths()

    def _call(self, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-Token": self.token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def answer_batch(self) -> tuple[int, int]:
        """Answer every waiting image; returns (answers, suggestions that were right)."""
        pending = self._call("/api/state")["pending"]
        right = 0
        for item in pending:
            label = self.truth[self.paths[item["image_id"]]]
            right += item["suggestion"] == label
            self._call("/api/answer", {"image_id": item["image_id"], "label": label})
        return len(pending), right

    def close(self) -> None:
        self.server.shutdown()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--n", type=int, default=20, help="images per batch")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--tiny", action="store_true", help="seconds; for the tests")
    args = parser.parse_args(argv)
    fast = ["--pretrain-epochs", "1", "--epochs", "1"] if args.tiny else []
    n_images, rounds, n = (120, 2, 10) if args.tiny else (args.images, args.rounds, args.n)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.workdir or scratch)
        truth, names = write_image_folder(root / "images", n_images)
        (root / "classes.txt").write_text("\n".join(names) + "\n")
        work = root / "work"
        assert (
            moby_al(
                [
                    "label",
                    "init",
                    "--images",
                    str(root / "images"),
                    "--classes",
                    str(root / "classes.txt"),
                    "--workdir",
                    str(work),
                    "--image-size",
                    "28",
                ]
            )
            == 0
        )
        history = []
        for round_ in range(1, rounds + 1):
            started = time.perf_counter()
            assert moby_al(["label", "next", "--workdir", str(work), "--n", str(n), *fast]) == 0
            seconds = time.perf_counter() - started
            annotator = ScriptedAnnotator(work, truth)
            try:
                answered, right = annotator.answer_batch()
            finally:
                annotator.close()
            with LabelStore(work) as store:
                labels = Counter(a.label for a in store.answers(include_skipped=False))
            row = {
                "round": round_,
                "next_seconds": round(seconds, 1),
                "answered": answered,
                "suggestions_right": right,
                "labelled": sum(labels.values()),
                "classes_seen": len(labels),
            }
            history.append(row)
            print(
                f"round {round_}: next took {seconds:.0f} s; {answered} answered, the "
                f"suggestion was right for {right}; {row['labelled']} labelled, "
                f"{row['classes_seen']} of {len(names)} classes seen",
                flush=True,
            )
        assert (
            moby_al(
                ["label", "export", "--workdir", str(work), "--output", str(root / "labels.csv")]
            )
            == 0
        )
    return history


if __name__ == "__main__":
    main()

"""``moby-al label``: the whole loop on an image folder, bad input, and SIGKILL at any moment."""

from __future__ import annotations

import csv
import json
import os
import pickle
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moby_al_plugin import load_image_folder
from moby_al_plugin.cli import main
from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.stopping_history import stop_set, stopping_summary

from .conftest import DIGIT_CLASSES, label_init

FAST = ["--pretrain-epochs", "1", "--epochs", "1", "--train-samples", "64"]


def _init(work: Path, folder: Path, *extra: str) -> int:
    return label_init(work, folder, DIGIT_CLASSES, "--image-size", "16", *extra)


def _next(work: Path, n: int, *extra: str) -> int:
    return main(["label", "next", "--workdir", str(work), "--n", str(n), *FAST, *extra])


class Server:
    """``moby-al label serve`` in a subprocess, talked to over HTTP on 127.0.0.1."""

    def __init__(self, work: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moby_al_plugin",
                "label",
                "serve",
                "--workdir",
                str(work),
                "--port",
                "0",
                *FAST,
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []  # everything serve wrote, its log included

        def read() -> None:
            for line in self.process.stdout:
                self.output.append(line)
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith("labelling page: "):
                self.url = line.split(": ", 1)[1].strip()
                break
        self.base, self.token = self.url.split("/?token=")

    def call(self, path: str, body: object = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"X-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)


@pytest.fixture
def server_factory():
    started: list[Server] = []

    def start(work: Path, *extra: str) -> Server:
        started.append(Server(work, *extra))
        return started[-1]

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


def _paths(work: Path) -> dict[int, str]:
    with LabelStore(work) as store:
        return {int(i): p for i, p in store.query("SELECT id, path FROM images")}


def test_the_whole_loop_init_next_answer_next_export(
    tmp_path, digit_image_folder, server_factory, capsys
):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    known = tmp_path / "known.csv"
    known.write_text("path,label\nmore/digit-000.png,{}\n".format(truth["more/digit-000.png"]))
    assert _init(work, folder, "--labels", str(known)) == 0
    assert "240 images indexed" in capsys.readouterr().out
    assert _next(work, 20) == 0
    assert "cold start" in capsys.readouterr().out
    paths = _paths(work)

    server = server_factory(work)
    state = server.call("/api/state")[1]
    batch = [p["image_id"] for p in state["pending"]]
    assert len(batch) == 20 and all(p["suggestion"] is None for p in state["pending"])
    given = {paths[i]: truth[paths[i]] for i in batch}
    for image_id in batch:
        status, _ = server.call(
            "/api/answer", {"image_id": image_id, "label": truth[paths[image_id]]}
        )
        assert status == 200
    server.stop()

    assert _next(work, 15) == 0
    with LabelStore(work) as store:
        second = store.pending()
    assert len(second) == 15 and not set(r["image_id"] for r in second) & set(batch)
    # a trained model suggests a class for every image of the new batch
    assert all(r["suggestion"] is not None for r in second)
    capsys.readouterr()

    assert (
        main(["label", "export", "--workdir", str(work), "--output", str(tmp_path / "labels.csv")])
        == 0
    )
    with open(tmp_path / "labels.csv", newline="") as handle:
        exported = {row["path"]: row["label"] for row in csv.DictReader(handle)}
    assert exported == {**given, "more/digit-000.png": truth["more/digit-000.png"]}

    assert (
        main(
            [
                "label",
                "export",
                "--workdir",
                str(work),
                "--format",
                "folders",
                "--output",
                str(tmp_path / "by-class"),
            ]
        )
        == 0
    )
    data = load_image_folder(tmp_path / "by-class", image_size=16, test_fraction=0.2)
    assert len(data.y_train) + len(data.y_test) == len(exported)
    counts = {name: sum(1 for v in exported.values() if v == name) for name in data.class_names}
    labels = np.concatenate([data.y_train, data.y_test])
    assert {n: int((labels == i).sum()) for i, n in enumerate(data.class_names)} == counts


def test_a_second_next_keeps_unanswered_images(tmp_path, digit_image_folder, capsys):
    folder, _ = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    _next(work, 10)
    with LabelStore(work) as store:
        first = [r["image_id"] for r in store.pending()]
        store.answer(first[0], "4")
    capsys.readouterr()
    _next(work, 10)
    assert "9 images of earlier batches were still unanswered" in capsys.readouterr().out
    with LabelStore(work) as store:
        pending = [r["image_id"] for r in store.pending()]
    assert pending[:9] == first[1:] and len(pending) == 19


@pytest.mark.parametrize(
    "classes, message",
    [
        ("cats", "at least two classes"),
        ("cat,cat", "names a class twice"),
        ("cat,", "empty name"),
        ("a\tb,c", "control character"),
        ("a,b\x00", "control character"),
        ("a\u2028b,c", "line separator"),
        ("a\u2029b,c", "line separator"),
        ("a\x85b,c", "line separator"),
        ("x" * 101 + ",c", "too long: at most 100 characters"),
        # 100 characters, but 300 bytes once percent-encoded for a folder name
        ("%" * 100 + ",c", "at most 255 bytes"),
    ],
)
def test_init_refuses_bad_classes(tmp_path, digit_image_folder, capsys, classes, message):
    folder, _ = digit_image_folder
    assert label_init(tmp_path / "w", folder, classes) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w" / "labels.sqlite").exists()


def test_init_refuses_an_empty_folder_and_reports_unreadable_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert label_init(tmp_path / "w", tmp_path / "empty", "a,b") == 2
    assert "no image file" in capsys.readouterr().err
    images = tmp_path / "images"
    images.mkdir()
    for name in ("one.png", "two.png"):
        Image.new("RGB", (5, 5), "red" if name == "one.png" else "blue").save(images / name)
    (images / "three.png").write_bytes(b"\x89PNG truncated")
    assert label_init(tmp_path / "w", images, "a,b") == 0
    out = capsys.readouterr().out
    assert "2 images indexed (RGB" in out and "three.png" in out
    assert "three.png" in (tmp_path / "w" / "init-report.txt").read_text()


def test_class_names_with_spaces_and_commas_come_from_a_file(tmp_path, digit_image_folder):
    folder, _ = digit_image_folder
    names = tmp_path / "classes.txt"
    names.write_text("hot dog, with mustard\nnot a hot dog\n\n")
    assert label_init(tmp_path / "w", folder, str(names), "--keys", "h,n") == 0
    with LabelStore(tmp_path / "w") as store:
        assert store.classes == ["hot dog, with mustard", "not a hot dog"]
        assert store.keys == ["h", "n"]


def test_import_names_the_bad_line_and_changes_nothing(tmp_path, digit_image_folder, capsys):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    good = "digit-001.png,{}\n".format(truth["digit-001.png"])
    for body, message in (
        ("path,label\n" + good + "digit-002.png,eleven\n", "line 3: unknown class 'eleven'"),
        ("path,label\nnowhere.png,1\n" + good, "line 2: 'nowhere.png' is not an image"),
        ("file,class\n" + good, "must name the columns"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        assert main(["label", "import", "--workdir", str(work), str(bad)]) == 2
        assert message in capsys.readouterr().err
        with LabelStore(work) as store:
            assert store.answers() == []
    # a bad --labels file at init leaves no work folder behind
    assert _init(tmp_path / "other", folder, "--labels", str(bad)) == 2
    assert not (tmp_path / "other" / "labels.sqlite").exists()


def test_status_reports_changed_and_missing_files(tmp_path, digit_image_folder, capsys):
    folder, _ = digit_image_folder
    copy = tmp_path / "images"
    copy.mkdir()
    for name in ("digit-001.png", "digit-002.png", "digit-004.png"):
        (copy / name).write_bytes((folder / name).read_bytes())
    work = tmp_path / "work"
    main(["label", "init", "--workdir", str(work), "--images", str(copy), "--classes", "a,b"])
    Image.new("L", (8, 8), 0).save(copy / "digit-001.png")
    (copy / "digit-002.png").unlink()
    capsys.readouterr()
    assert main(["label", "status", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "1 changed and 1 missing" in out
    assert "changed: digit-001.png" in out and "missing: digit-002.png" in out


def test_sigkill_during_serve_loses_no_answer_and_serve_resumes(
    tmp_path, digit_image_folder, server_factory
):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    _next(work, 12)
    paths = _paths(work)
    server = server_factory(work)
    batch = [p["image_id"] for p in server.call("/api/state")[1]["pending"]]
    given = {}
    for image_id in batch[:7]:
        label = truth[paths[image_id]]
        assert server.call("/api/answer", {"image_id": image_id, "label": label})[0] == 200
        given[image_id] = label
    server.stop(signal.SIGKILL)
    with LabelStore(work) as store:
        assert {a.image_id: a.label for a in store.answers()} == given
    again = server_factory(work)
    state = again.call("/api/state")[1]
    assert [p["image_id"] for p in state["pending"]] == batch[7:]
    assert state["counts"]["labelled"] == 7


def test_sigkill_during_next_keeps_the_answers_and_the_next_run_finishes(
    tmp_path, digit_image_folder
):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    _next(work, 20)
    paths = _paths(work)
    with LabelStore(work) as store:
        for row in store.pending():
            store.answer(int(row["image_id"]), truth[paths[int(row["image_id"])]])
        answers = store.answers()
    slow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moby_al_plugin",
            "label",
            "next",
            "--workdir",
            str(work),
            "--n",
            "10",
            "--pretrain-epochs",
            "1",
            "--epochs",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        with LabelStore(work) as store:
            while time.monotonic() < deadline:
                job = store.last_job()
                if job is not None and "fine-tuning: epoch" in job["message"]:
                    break
                assert slow.poll() is None, "next ended before it could be killed"
                time.sleep(0.2)
            else:
                pytest.fail("next never reached its fine-tuning")
    finally:
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
    with LabelStore(work) as store:
        assert store.answers() == answers
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
        # the killed job no longer blocks a new one
        assert store.active_job() is None
        assert len(store.pending()) == 0
    assert _next(work, 10) == 0
    with LabelStore(work) as store:
        assert len(store.pending()) == 10 and store.answers() == answers


def test_status_prints_the_counts_and_the_histogram(tmp_path, digit_image_folder, capsys):
    folder, _ = digit_image_folder
    copy = tmp_path / "images"
    copy.mkdir()
    for name in ("digit-001.png", "digit-002.png", "digit-004.png"):
        (copy / name).write_bytes((folder / name).read_bytes())
    (copy / "broken.png").write_bytes(b"not a png")
    known = tmp_path / "known.csv"
    known.write_text("path,label\ndigit-004.png,b\n")
    work = tmp_path / "work"
    assert label_init(work, copy, "a,b", "--budget", "5", "--labels", str(known)) == 0
    with LabelStore(work) as store:
        ids = store.candidates()
        store.add_batch(ids, [None] * len(ids), strategy="random", cold_start=True)
        store.answer(ids[0], None)
    capsys.readouterr()
    assert main(["label", "status", "--workdir", str(work)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "images: 3 indexed, 1 unreadable at init, 0 changed and 0 missing since init"
    assert lines[2:5] == [
        "answers: 1 labelled of a budget of 5, 1 skipped; 1 queued images wait for an answer "
        "(1 batches so far)",
        "  a: 0",
        "  b: 1",
    ]


def test_the_pretraining_grows_with_the_folder_and_is_bounded():
    from moby_al_plugin.labelling import RoundSettings

    rule = RoundSettings()
    # views = clip(25 x images, 10,000, 40,000); epochs = ceil(views / images), 1 to 200
    assert [rule.pretrain_views_for(n) for n in (100, 400, 10_000)] == [10_000, 10_000, 40_000]
    assert [rule.pretrain_epochs_for(n) for n in (100, 400, 10_000)] == [100, 25, 4]
    assert rule.pretrain_epochs_for(1_000) == 25  # 25,000 views
    assert rule.pretrain_epochs_for(10) == 200  # 1,000 epochs asked, 200 at most
    assert rule.pretrain_epochs_for(100_000) == 1  # one pass: every image is seen
    assert RoundSettings(pretrain_epochs=3).pretrain_epochs_for(10_000) == 3
    with pytest.raises(Exception, match="pretrain_min_views"):
        RoundSettings(pretrain_min_views=50_000).validate()


def test_the_next_round_continues_the_kept_model(tmp_path, digit_image_folder, capsys):
    from dataclasses import replace

    from moby_al_plugin.labelling import RoundSettings, query_next_batch

    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    settings = RoundSettings(n=10, pretrain_epochs=1, epochs=1, train_samples=400)

    def answer_and_query(settings: RoundSettings):
        with LabelStore(work) as store:
            paths = store.image_paths()
            for row in store.pending():
                store.answer(row["image_id"], truth[paths[row["image_id"]]])
            return query_next_batch(store, settings)

    with LabelStore(work) as store:
        assert query_next_batch(store, settings).cold_start
    first = answer_and_query(settings)  # 10 labels: fine-tuned from the encoder
    assert not first.warm_start and first.train_samples == 400
    assert (work / "cache" / "finetuned-model.pkl").is_file()
    with LabelStore(work) as store:
        # the stopping rule: the first trained round has nothing to compare with
        assert [r["kappa"] for r in stopping_summary(store)["rounds"]] == [None]
        usable = store.usable_images()
        # a folder of 240 images: all of them are the stop set
        assert stop_set(store, usable, seed=123) == sorted(usable)
    second = answer_and_query(settings)  # 20 labels, 10 of them new: half the samples
    assert second.warm_start and second.train_samples == 200
    with LabelStore(work) as store:
        summary = stopping_summary(store)
    assert [r["labelled"] for r in summary["rounds"]] == [10, 20]
    assert -1.0 <= summary["rounds"][1]["kappa"] <= 1.0
    assert summary["stable"] == (summary["rounds"][1]["kappa"] >= 0.99)
    assert main(["label", "next", "--workdir", str(work), "--n", "5", *FAST]) == 0

    # another encoder (another pretraining) starts again from the encoder
    settings = replace(settings, pretrain_epochs=2)
    other = answer_and_query(settings)
    assert not other.warm_start and other.train_samples == 400
    assert answer_and_query(settings).warm_start
    # so does another class list
    with LabelStore(work) as store, store.transaction() as db:
        db.execute("UPDATE classes SET name = 'nine' WHERE name = '9'")
    truth = {path: "nine" if label == "9" else label for path, label in truth.items()}
    assert not answer_and_query(settings).warm_start
    with LabelStore(work) as store:
        # predictions of another class list do not compare: the history starts again
        assert [r["kappa"] for r in stopping_summary(store)["rounds"]] == [None]
    assert answer_and_query(settings).warm_start
    # and so does warm_start=False (next --no-warm-start)
    assert not answer_and_query(replace(settings, warm_start=False)).warm_start
    capsys.readouterr()
    assert main(["label", "status", "--workdir", str(work)]) == 0
    assert re.search(r"stopping rule: .*\(kappa by round: -, -?\d\.\d{3}", capsys.readouterr().out)


def test_a_round_queues_its_batch_after_the_first_leg_and_keeps_the_whole_fit(
    tmp_path, digit_image_folder
):
    from moby_al_plugin.labelling import RoundSettings, query_next_batch

    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    settings = RoundSettings(
        n=10, pretrain_epochs=1, epochs=1, train_samples=400, first_leg_samples=160
    )
    with LabelStore(work) as store:
        query_next_batch(store, settings)  # cold start: no fine-tuning, no second leg
        paths = store.image_paths()
        for row in store.pending():
            store.answer(row["image_id"], truth[paths[row["image_id"]]])
        seen_at_queue = []

        def progress(fraction: float, message: str) -> None:
            if message.startswith("batch queued"):
                # the page already shows the new batch while the second leg trains
                seen_at_queue.append(len(store.pending()))

        result = query_next_batch(store, settings, progress)
    assert seen_at_queue == [10]
    assert result.train_samples == 400  # 160 before the choice, 240 after
    assert result.seconds["to_batch"] < result.seconds["total"]
    with open(work / "cache" / "finetuned-model.pkl", "rb") as handle:
        kept = pickle.load(handle)["net"]
    # the kept model's last fit is the second leg: 240 samples, continued (warm)
    assert kept.epoch_samples_ * kept.max_epochs == 240 and kept.warm_start
    with pytest.raises(Exception, match="first_leg_samples"):
        RoundSettings(first_leg_samples=0).validate()


def test_the_folder_graph_labels_join_the_fine_tuning(tmp_path, digit_image_folder):
    from moby_al_plugin.labelling import RoundSettings, query_next_batch

    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    # the default: half the unlabelled images with the graph's label
    settings = RoundSettings(n=20, pretrain_epochs=1, epochs=2, train_samples=400)
    assert settings.graph_labels == 0.5
    with LabelStore(work) as store:
        query_next_batch(store, settings)  # cold start: nothing to spread yet
        paths = store.image_paths()
        for row in store.pending():
            store.answer(row["image_id"], truth[paths[row["image_id"]]])
        result = query_next_batch(store, settings)
    assert result.train_samples == 400  # what the labels alone would cost
    with open(work / "cache" / "finetuned-model.pkl", "rb") as handle:
        kept = pickle.load(handle)["net"]
    # 240 images, 20 labelled: half of the other 220 trained with the graph's label
    assert kept.history[:, "pseudo_label_share"] == [0.5, 0.5]
    assert kept.pseudo_label_mode == "labels" and kept.pseudo_label_weight == 1.0
    # the next round without the graph continues the same model, plainly
    with LabelStore(work) as store:
        for row in store.pending():
            store.answer(row["image_id"], truth[paths[row["image_id"]]])
        plain = query_next_batch(store, RoundSettings(
            n=10, pretrain_epochs=1, epochs=2, train_samples=400, graph_labels=0.0
        ))  # fmt: skip
    assert plain.warm_start
    with open(work / "cache" / "finetuned-model.pkl", "rb") as handle:
        kept = pickle.load(handle)["net"]
    assert "pseudo_label_share" not in kept.history[-1]
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(MoBYALError, match="graph_labels must be a number in"):
            RoundSettings(graph_labels=bad).validate()


def _export(work: Path, output: Path, *extra: str) -> int:
    return main(["label", "export", "--workdir", str(work), "--output", str(output), *extra])


def _read_export(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _exported_folders(out: Path) -> dict[str, str]:
    """path -> the class folder (as written) of every file of a folders export."""
    found = {}
    for file in out.rglob("*"):
        if file.is_file():
            folder, *path = file.relative_to(out).parts
            found["/".join(path)] = folder
    return found


# Fashion-MNIST's classes, and names that could not be folders as they are
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
FASHION += ["Sneaker", "Bag", "Ankle boot"]
ODD_NAMES = ["50%", "back\\slash", "..", ".hidden", "a%2Fb"]


def test_class_names_with_slashes_survive_export_and_import(tmp_path, digit_image_folder, capsys):
    folder, _ = digit_image_folder
    names = [*FASHION, *ODD_NAMES]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names) + "\n", encoding="utf-8")
    work = tmp_path / "work"
    assert label_init(work, folder, str(classes), "--image-size", "16") == 0
    from moby_al_plugin.labelling.commands import class_folder_name, class_from_folder_name

    with LabelStore(work) as store:
        assert store.classes == names
        paths = sorted(store.image_paths().values())
        given = {path: names[i % len(names)] for i, path in enumerate(paths[:45])}
        ids = {p: i for i, p in store.image_paths().items()}
        for path, label in given.items():
            store.answer(ids[path], label)

    assert _export(work, tmp_path / "labels.csv") == 0
    assert {r["path"]: r["label"] for r in _read_export(tmp_path / "labels.csv")} == given
    out = tmp_path / "by-class"
    assert _export(work, out, "--format", "folders") == 0
    # one folder per class, none nested in another and none hidden
    tops = sorted(p.name for p in out.iterdir())
    assert all(p.is_dir() for p in out.iterdir())
    assert tops == sorted(class_folder_name(n) for n in names)
    assert "T-shirt%2Ftop" in tops and not (out / "T-shirt").exists()
    assert not [t for t in tops if t.startswith(".")]
    assert {"%2E.", "%2Ehidden", "50%25", "back%5Cslash", "a%252Fb"} <= set(tops)
    # the folder names read back give the names, and every file is in its class
    assert {p: class_from_folder_name(t) for p, t in _exported_folders(out).items()} == given
    assert [class_from_folder_name(class_folder_name(n)) for n in names] == names

    # the CSV imported into a new work folder of the same classes gives the same names
    again = tmp_path / "again"
    assert label_init(again, folder, str(classes), "--image-size", "16") == 0
    assert main(["label", "import", "--workdir", str(again), str(tmp_path / "labels.csv")]) == 0
    with LabelStore(again) as store:
        assert {a.path: a.label for a in store.answers()} == given
    capsys.readouterr()
    # and into the work folder it came from: nothing to change
    assert main(["label", "import", "--workdir", str(work), str(tmp_path / "labels.csv")]) == 0
    assert "imported 0 new or changed labels" in capsys.readouterr().out


def _twin_folder(tmp_path: Path, folder: Path) -> Path:
    """Eight digit images and four more files that repeat two of them."""
    images = tmp_path / "twins"
    (images / "sub").mkdir(parents=True)
    for i in (1, 2, 4, 5, 7, 8, 10, 11):  # the top-level ones of digit_image_folder
        name = f"digit-{i:03d}.png"
        (images / name).write_bytes((folder / name).read_bytes())
    for copy, of in (
        ("twin-a.png", "digit-001.png"),
        ("sub/twin-b.png", "digit-001.png"),
        ("sub/twin-c.png", "digit-001.png"),
        ("twin-d.png", "digit-002.png"),
    ):
        (images / copy).write_bytes((images / of).read_bytes())
    return images


def test_a_same_content_group_is_queued_once_and_exported_whole(
    tmp_path, digit_image_folder, capsys
):
    import hashlib

    folder, truth = digit_image_folder
    images = _twin_folder(tmp_path, folder)
    work = tmp_path / "work"
    assert label_init(work, images, DIGIT_CLASSES, "--image-size", "16") == 0
    assert "2 groups of files have the same content" in capsys.readouterr().out
    # more than there are images: next queues every content once
    assert _next(work, 50, "--strategy", "random") == 0
    with LabelStore(work) as store:
        paths = store.image_paths()
        queued = [paths[r["image_id"]] for r in store.pending()]
        digest = {p: hashlib.sha256((images / p).read_bytes()).hexdigest() for p in paths.values()}
        assert len(queued) == 8 == len({digest[p] for p in queued})
        # the first of each group in path order is the one queued
        assert "digit-001.png" in queued and "digit-002.png" in queued
        for row in store.pending():
            store.answer(row["image_id"], truth[paths[row["image_id"]]])
    capsys.readouterr()
    # every content is answered: the files left have the content of an answered one
    assert _next(work, 5, "--strategy", "random") == 2
    assert "every usable image is labelled, skipped or queued" in capsys.readouterr().err

    assert _export(work, tmp_path / "labels.csv") == 0
    assert "(4 of them from a file of the same content)" in capsys.readouterr().out
    rows = _read_export(tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", encoding="utf-8") as handle:
        assert handle.readline().strip() == "path,label,answered_at,source,duplicate_of"
    by_path = {r["path"]: r for r in rows}
    assert len(rows) == len(by_path) == 12
    twins = {"twin-a.png", "sub/twin-b.png", "sub/twin-c.png", "twin-d.png"}
    for path, row in by_path.items():
        source = "digit-002.png" if path == "twin-d.png" else "digit-001.png"
        assert row["duplicate_of"] == (source if path in twins else "")
        assert row["label"] == truth[source if path in twins else path]
        if path in twins:  # the answer of its twin, as given
            assert (row["answered_at"], row["source"]) == (
                by_path[source]["answered_at"],
                by_path[source]["source"],
            )
    out = tmp_path / "by-class"
    assert _export(work, out, "--format", "folders") == 0
    assert _exported_folders(out) == {p: r["label"] for p, r in by_path.items()}

    # the export read back changes nothing, and gives the twins no answer of their own
    with LabelStore(work) as store:
        before = [tuple(r) for r in store.query("SELECT * FROM answers ORDER BY image_id")]
    assert main(["label", "import", "--workdir", str(work), str(tmp_path / "labels.csv")]) == 0
    with LabelStore(work) as store:
        assert [tuple(r) for r in store.query("SELECT * FROM answers ORDER BY image_id")] == before


def test_importing_an_export_again_keeps_the_source_and_time_of_unchanged_answers(
    tmp_path, digit_image_folder, capsys
):
    folder, truth = digit_image_folder
    work = tmp_path / "work"
    known = tmp_path / "known.csv"
    known.write_text("path,label\ndigit-001.png,{}\n".format(truth["digit-001.png"]))
    assert _init(work, folder, "--labels", str(known)) == 0
    with LabelStore(work) as store:
        ids = {p: i for i, p in store.image_paths().items()}
        for path in ("digit-002.png", "digit-004.png", "more/digit-003.png"):
            store.answer(ids[path], truth[path])
        store.answer(ids["digit-005.png"], None)  # a skip is not exported

    def answers() -> dict[str, tuple]:
        with LabelStore(work) as store:
            return {
                r["path"]: (r["class_id"], r["answered_at"], r["source"])
                for r in store.query(
                    "SELECT i.path, a.* FROM answers a JOIN images i ON i.id = a.image_id"
                )
            }

    def history() -> int:
        with LabelStore(work) as store:
            return store.query("SELECT COUNT(*) FROM history")[0][0]

    exported = tmp_path / "labels.csv"
    assert _export(work, exported) == 0
    before, steps = answers(), history()
    assert {s for _, _, s in before.values()} == {"import", "page"}
    assert main(["label", "import", "--workdir", str(work), str(exported)]) == 0
    assert answers() == before and history() == steps

    # one label changed in the file: that answer alone changes, to source import now
    rows = _read_export(exported)
    changed = next(r for r in rows if r["path"] == "digit-004.png")
    other = str((int(changed["label"]) + 1) % 10)
    changed["label"] = other
    with open(exported, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main(["label", "import", "--workdir", str(work), str(exported)]) == 0
    assert "imported 1 new or changed labels" in capsys.readouterr().out
    after = answers()
    assert {p: a for p, a in after.items() if p != "digit-004.png"} == {
        p: a for p, a in before.items() if p != "digit-004.png"
    }
    class_id, at, source = after["digit-004.png"]
    assert (str(class_id), source) == (other, "import")
    assert at > max(a for _, a, _ in before.values())
    assert history() == steps + 1


def test_a_running_job_keeps_its_heartbeat_fresh(tmp_path, digit_image_folder):
    import datetime as dt

    from moby_al_plugin.labelling.commands import job_heartbeat

    folder, _ = digit_image_folder
    work = tmp_path / "work"
    assert _init(work, folder) == 0
    with LabelStore(work) as store:
        job = store.start_job(5, os.getpid())
        stale = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        with store.transaction() as conn:
            conn.execute("UPDATE jobs SET heartbeat = ?", (stale.isoformat(),))
        with job_heartbeat(work, job, interval=0.05):
            deadline = time.monotonic() + 20
            while store.last_job()["heartbeat"] == stale.isoformat():
                assert time.monotonic() < deadline, "no heartbeat in 20 s"
                time.sleep(0.05)
            assert store.active_job()["id"] == job
        store.finish_job(job, "done", "queued 5")
        # a finished job gets no heartbeat: the thread has stopped
        last = store.last_job()["heartbeat"]
        time.sleep(0.2)
        assert store.last_job()["heartbeat"] == last


def test_next_uses_an_encoder_pretrained_elsewhere(tmp_path, digit_image_folder, capsys):
    from moby_al_plugin import ImagePool, MoBYEncoder

    folder, _ = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    # pretrained elsewhere, as `moby-al pretrain` does: on the folder's images at 16x16
    encoder = MoBYEncoder(backbone="small_cnn", max_epochs=1, queue_size=64, random_state=0)
    encoder.fit(ImagePool(folder, image_size=16)).save(tmp_path / "encoder.pt")
    assert _next(work, 6, "--encoder", str(tmp_path / "encoder.pt")) == 0
    with LabelStore(work) as store:
        assert len(store.pending()) == 6
    assert not list((work / "cache").glob("encoder-*.pt"))  # no pretraining of its own
    # an encoder of other images, and a missing file: named errors, nothing queued
    MoBYEncoder(backbone="small_cnn", max_epochs=1, queue_size=64, random_state=0).fit(
        ImagePool(folder, image_size=8)
    ).save(tmp_path / "small.pt")
    capsys.readouterr()
    assert _next(work, 6, "--encoder", str(tmp_path / "small.pt")) != 0
    assert "small.pt: images of shape (C, H, W) = (1, 16, 16)" in capsys.readouterr().err
    assert _next(work, 6, "--encoder", str(tmp_path / "missing.pt")) != 0
    assert "missing.pt: no such file" in capsys.readouterr().err
    with LabelStore(work) as store:
        assert len(store.pending()) == 6


def test_init_lists_odd_files_and_indexes_the_rest(tmp_path, capsys):
    from .test_image_reading import _odd_folder

    folder = _odd_folder(tmp_path)
    assert label_init(tmp_path / "work", folder, "a,b") == 0
    out = capsys.readouterr().out
    assert "2 images indexed" in out and "5 files could not be read" in out
    for name in ("bad\\xff.png", "fifo.png", "loop.png", "gone.png", "sock.png"):
        assert name in out
    # a file replaced by a pipe after init is missing, and never opened (no hang)
    (folder / "a.png").unlink()
    os.mkfifo(folder / "a.png")
    assert main(["label", "status", "--workdir", str(tmp_path / "work")]) == 0
    assert "1 missing since init" in capsys.readouterr().out


# (a class name never starts with a tab or a carriage return: init strips the names)
FORMULA_NAMES = ["=SUM(1,2)", "+x", "-y", "@z", "'quoted", "plain"]


def test_formula_cells_are_quoted_in_the_csv_and_read_back(tmp_path, digit_image_folder):
    source, _ = digit_image_folder
    folder = tmp_path / "formula"
    folder.mkdir()
    files = [f"{name}.png" for name in FORMULA_NAMES]
    for i, name in enumerate(files):
        (folder / name).write_bytes(
            (source / f"digit-{[1, 2, 4, 5, 7, 8, 10][i]:03d}.png").read_bytes()
        )
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(FORMULA_NAMES) + "\n", encoding="utf-8")
    work = tmp_path / "work"
    assert label_init(work, folder, str(classes), "--image-size", "16") == 0
    with LabelStore(work) as store:
        given = {path: FORMULA_NAMES[files.index(path)] for path in store.image_paths().values()}
        for image_id, path in store.image_paths().items():
            store.answer(image_id, given[path])
    assert _export(work, tmp_path / "labels.csv") == 0
    rows = _read_export(tmp_path / "labels.csv")
    # no cell a spreadsheet would run: every risky one starts with the quote
    for row in rows:
        for cell in (row["path"], row["label"]):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert {r["label"] for r in rows} == {"'=SUM(1,2)", "'+x", "'-y", "'@z", "''quoted", "plain"}
    again = tmp_path / "again"
    assert label_init(again, folder, str(classes), "--image-size", "16") == 0
    assert main(["label", "import", "--workdir", str(again), str(tmp_path / "labels.csv")]) == 0
    with LabelStore(again) as store:
        assert {a.path: a.label for a in store.answers()} == given


def test_serve_on_every_address_prints_a_url_that_works_and_logs_no_token(
    tmp_path, digit_image_folder, server_factory
):
    folder, _ = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    server = server_factory(work, "--host", "0.0.0.0")
    assert server.base.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server.url, timeout=30) as page:  # the printed URL, as printed
        assert page.status == 200 and b"moby-al label" in page.read()
    # failed requests are logged; the token in their URL is not
    for path in ("/image/999999", "/api/nothing"):
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{server.base}{path}?token={server.token}", timeout=30)
        assert failed.value.code == 404
    server.stop()
    logged = [line for line in server.output if not line.startswith("labelling page: ")]
    assert sum("token=<hidden>" in line for line in logged) == 2, logged
    assert not [line for line in logged if server.token in line]


def test_a_classes_file_has_one_name_a_line_whatever_the_separator(tmp_path, digit_image_folder):
    folder, _ = digit_image_folder
    classes = tmp_path / "classes.txt"
    # Unicode line and paragraph separators end a line as a newline does
    classes.write_text("cat\u2028dog\u2029bird\r\nfish\n", encoding="utf-8")
    assert label_init(tmp_path / "w", folder, str(classes), "--image-size", "16") == 0
    with LabelStore(tmp_path / "w") as store:
        assert store.classes == ["cat", "dog", "bird", "fish"]


def test_a_second_serve_of_a_work_folder_is_refused(
    tmp_path, digit_image_folder, server_factory, capsys
):
    folder, _ = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    first = server_factory(work)
    capsys.readouterr()
    assert main(["label", "serve", "--workdir", str(work), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "already served by serve (process" in error and first.base in error
    assert first.token not in error
    assert first.call("/api/state")[0] == 200  # the first page goes on
    # killed, it holds nothing: a new serve starts
    first.stop(signal.SIGKILL)
    assert server_factory(work).call("/api/state")[0] == 200


def test_a_disk_fault_ends_a_command_with_one_line_and_no_partial_export(
    tmp_path, digit_image_folder, capsys, monkeypatch
):
    import errno
    import sqlite3

    folder, truth = digit_image_folder
    work = tmp_path / "work"
    _init(work, folder)
    with LabelStore(work) as store:
        ids = store.candidates()[:4]
        for image_id in ids:
            store.answer(image_id, truth[store.image(image_id)["path"]])
    capsys.readouterr()

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(LabelStore, "import_labels", full)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n", encoding="utf-8")
    assert main(["label", "import", "--workdir", str(work), str(labels)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["moby-al: error: the work folder cannot be written: database or disk is full"]

    # an export that fails half-way leaves no file (and not the previous one half-replaced)
    from moby_al_plugin.labelling import commands

    calls = []

    def fails_later(cell):
        calls.append(cell)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return cell

    monkeypatch.setattr(commands, "neutralise", fails_later)
    out = tmp_path / "export.csv"
    assert main(["label", "export", "--workdir", str(work), "--output", str(out)]) == 2
    assert "cannot be written: [Errno 28] No space left on device" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".export.csv.*"))
    # the folders export too: a copy that fails leaves neither the folder nor a part of it
    copied = []

    def copy_fails_later(source, target):
        copied.append(target)
        if len(copied) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return shutil.copyfile(source, target)

    monkeypatch.setattr(commands.shutil, "copy2", copy_fails_later)
    folders = tmp_path / "by-class"
    args = ["label", "export", "--workdir", str(work), "--output", str(folders)]
    assert main([*args, "--format", "folders"]) == 2
    assert not folders.exists() and not list(tmp_path.glob(".by-class*"))


def _own_copy(tmp_path: Path, source: Path) -> tuple[Path, Path]:
    """A copy of the digit folder that a test may change, and its initialised work folder."""
    folder, work = tmp_path / "images", tmp_path / "work"
    shutil.copytree(source, folder)
    _init(work, folder)
    return folder, work


def test_exports_after_files_change_read_back_and_say_what_was_left_out(
    tmp_path, digit_image_folder, capsys
):
    folder, work = _own_copy(tmp_path, digit_image_folder[0])
    truth = digit_image_folder[1]
    with LabelStore(work) as store:
        ids = store.candidates()[:6]
        paths = {i: store.image(i)["path"] for i in ids}
        for i in ids:
            store.answer(i, truth[paths[i]])
    before = tmp_path / "before.csv"
    assert main(["label", "export", "--workdir", str(work), "--output", str(before)]) == 0
    # after the answers: one renamed, one replaced, one deleted, one emptied
    renamed, replaced, deleted, emptied = (folder / paths[i] for i in ids[:4])
    renamed.rename(renamed.with_name("renamed-" + renamed.name))
    replaced.write_bytes((folder / paths[ids[5]]).read_bytes())
    deleted.unlink()
    emptied.write_bytes(b"")
    capsys.readouterr()

    changed = sorted(paths[i] for i in ids[:4])
    after = tmp_path / "after.csv"
    assert main(["label", "export", "--workdir", str(work), "--output", str(after)]) == 0
    csv_err = capsys.readouterr().err
    out = tmp_path / "folders"
    assert main(["label", "export", "--workdir", str(work), "--output", str(out),
                 "--format", "folders"]) == 0  # fmt: skip
    folders_err = capsys.readouterr().err
    # both formats leave the same four out, and say so in the same words
    left_out = sorted(line.split()[2] for line in csv_err.splitlines() if line.startswith("left"))
    assert left_out == changed and csv_err == folders_err
    assert sorted(r["path"] for r in _read_export(after)) == sorted(paths[i] for i in ids[4:])
    assert sorted(_exported_folders(out)) == sorted(paths[i] for i in ids[4:])

    # the new export reads back whole; the old one too, naming the rows it cannot take
    assert main(["label", "import", "--workdir", str(work), str(after)]) == 0
    assert "imported 0 new or changed labels" in capsys.readouterr().out
    assert main(["label", "import", "--workdir", str(work), str(before)]) == 0
    captured = capsys.readouterr()
    assert sorted(line.split()[2] for line in captured.err.splitlines()) == changed
    assert "imported 0 new or changed labels" in captured.out
    # status calls them what they are: labelled, their files changed
    assert main(["label", "status", "--workdir", str(work)]) == 0
    status = capsys.readouterr().out
    assert status.count("its label is kept, left out of exports") == 4


def test_an_answer_to_a_file_replaced_since_it_was_queued_is_refused(tmp_path, digit_image_folder):
    from moby_al_plugin.labelling.server import create_app

    folder, work = _own_copy(tmp_path, digit_image_folder[0])
    with LabelStore(work) as store:
        first, other = store.candidates()[:2]
        store.add_batch([first, other], [None, None], strategy="random", cold_start=True)
        path, other_path = store.image(first)["path"], store.image(other)["path"]
    (folder / path).write_bytes((folder / other_path).read_bytes())  # never fetched since
    client = create_app(work, "t").test_client()
    sent = client.post("/api/answer", json={"image_id": first, "label": "3"},
                       headers={"X-Moby-Token": "t"})  # fmt: skip
    assert sent.status_code == 409 and "changed on disk" in sent.get_json()["error"]
    with LabelStore(work) as store:
        assert store.answers() == []


def test_the_csv_export_writes_each_answers_time_and_source_in_their_columns(
    tmp_path, digit_image_folder, capsys
):
    from datetime import datetime

    folder, truth = digit_image_folder
    work = tmp_path / "work"
    assert label_init(work, folder, DIGIT_CLASSES, "--image-size", "16") == 0
    assert _next(work, 3, "--strategy", "random") == 0
    with LabelStore(work) as store:
        paths = store.image_paths()
        for row in store.pending():
            store.answer(row["image_id"], truth[paths[row["image_id"]]])
        stored = {a.path: a for a in store.answers()}
    assert _export(work, tmp_path / "labels.csv") == 0
    rows = _read_export(tmp_path / "labels.csv")
    assert len(rows) == 3
    for row in rows:
        answer = stored[row["path"]]
        assert row["source"] == answer.source == "page"
        assert row["answered_at"] == answer.answered_at
        datetime.fromisoformat(row["answered_at"])  # a time, not a source

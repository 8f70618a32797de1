"""The labelling database and the image index: answers, undo, imports, changed files."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

from moby_al_plugin.labelling import (
    ImageChangedError,
    LabellingError,
    LabelStore,
    UnknownImageError,
    index_folder,
    read_pixels,
    verify_images,
)

CLASSES = ["cat", "dog", "hot dog, with mustard"]


@pytest.fixture
def image_folder(tmp_path):
    """Six small images of mixed sizes and modes, one unreadable file, one duplicate."""
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (10 + i, 12, 3), dtype=np.uint8)).save(
            root / f"colour-{i}.png")
    Image.fromarray(rng.integers(0, 255, (9, 9), dtype=np.uint8)).save(root / "nested/gray.png")
    (root / "nested/copy.png").write_bytes((root / "colour-0.png").read_bytes())
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes((root / "colour-1.png").read_bytes())
    return root


def _store(tmp_path, root, **meta):
    index = index_folder(root)
    return LabelStore.create(
        tmp_path / "work",
        classes=CLASSES,
        keys=["1", "2", "3"],
        meta={"images_root": str(root), "image_size": 8,
              "mode": "L" if index.single_channel else "RGB", **meta},
        images=index.images,
        unreadable=index.unreadable,
    )


def _id(store, path):
    return int(store.query("SELECT id FROM images WHERE path = ?", (path,))[0][0])


def test_index_lists_images_unreadable_files_duplicates_and_ignored_files(image_folder):
    index = index_folder(image_folder)
    paths = sorted(i["path"] for i in index.images)
    assert paths == ["colour-0.png", "colour-1.png", "colour-2.png", "colour-3.png",
                     "nested/copy.png", "nested/gray.png"]
    assert [p for p, _ in index.unreadable] == ["broken.jpg"]
    assert index.ignored == ["notes.txt"]
    assert index.duplicates == [["colour-0.png", "nested/copy.png"]]
    by_path = {i["path"]: i for i in index.images}
    assert (by_path["colour-2.png"]["height"], by_path["colour-2.png"]["width"]) == (12, 12)
    assert by_path["nested/gray.png"]["mode"] == "L"
    # one colour image is enough to train in colour
    assert not index.single_channel


def test_index_refuses_an_empty_folder_and_a_missing_one(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabellingError, match="no image file"):
        index_folder(tmp_path / "empty")
    with pytest.raises(LabellingError, match="not found"):
        index_folder(tmp_path / "absent")


def test_exif_orientation_is_applied_to_the_indexed_size(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: a 20 wide, 10 high file shows 10 wide, 20 high
    Image.new("RGB", (20, 10), "red").save(root / "turned.jpg", exif=exif)
    (image,) = index_folder(root).images
    assert (image["width"], image["height"]) == (10, 20)


def test_answers_are_committed_at_once_and_visible_to_another_connection(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    image = _id(store, "colour-1.png")
    store.answer(image, "hot dog, with mustard")
    # a second reader sees it without any close or commit by the writer
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT class_id FROM answers WHERE image_id = ?",
                         (image,)).fetchone() == (2,)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    assert [(a.path, a.label) for a in store.answers()] == [("colour-1.png",
                                                             "hot dog, with mustard")]


def test_undo_restores_what_was_there_before_step_by_step(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    a, b = _id(store, "colour-0.png"), _id(store, "colour-1.png")
    store.answer(a, "cat")
    store.answer(b, None)  # skipped
    store.answer(a, "dog")  # changed
    assert store.undo() == a
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat", b: None}
    assert store.undo() == b
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat"}
    assert store.undo() == a
    assert store.answers() == []
    assert store.undo() is None


def test_bad_answers_change_nothing(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    image = _id(store, "colour-0.png")
    with pytest.raises(LabellingError, match="unknown class 'bird'"):
        store.answer(image, "bird")
    with pytest.raises(UnknownImageError):
        store.answer(9999, "cat")
    with pytest.raises(LabellingError, match="integer id"):
        store.answer("../colour-0.png", "cat")
    assert store.answers() == []


def test_import_is_all_or_nothing_and_names_the_line(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    good = [("colour-0.png", "cat"), ("nested/gray.png", "dog")]
    with pytest.raises(LabellingError, match="line 4: unknown class 'bird'"):
        store.import_labels([*good, ("colour-1.png", "bird")])
    with pytest.raises(LabellingError, match="line 2: 'elsewhere.png' is not an image"):
        store.import_labels([("elsewhere.png", "cat"), *good])
    assert store.answers() == []
    assert store.import_labels(good) == 2
    assert {(a.path, a.label, a.source) for a in store.answers()} == {
        ("colour-0.png", "cat", "import"), ("nested/gray.png", "dog", "import")}


def test_a_changed_or_removed_file_is_reported_and_never_labelled(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    changed, removed, touched = (_id(store, p) for p in
                                 ("colour-2.png", "colour-3.png", "colour-1.png"))
    Image.new("RGB", (12, 12), "blue").save(image_folder / "colour-2.png")
    (image_folder / "colour-3.png").unlink()
    os.utime(image_folder / "colour-1.png", ns=(1, 1))  # same content, new time: still ok
    found = verify_images(store)
    assert found == {"changed": ["colour-2.png"], "missing": ["colour-3.png"]}
    with pytest.raises(ImageChangedError, match="changed on disk"):
        store.answer(changed, "cat")
    with pytest.raises(ImageChangedError, match="missing on disk"):
        store.answer(removed, "cat")
    store.answer(touched, "cat")
    assert changed not in store.candidates() and removed not in store.candidates()
    with pytest.raises(LabellingError, match="line 2: 'colour-2.png' is changed"):
        store.import_labels([("colour-2.png", "dog")])
    assert [a.image_id for a in store.answers()] == [touched]


def test_batches_keep_earlier_unanswered_images_and_skip_taken_ones(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    ids = store.candidates()
    store.add_batch(ids[:2], [None, None], strategy="typiclust", cold_start=True)
    store.answer(ids[0], "cat")
    # ids[1] is still waiting and ids[0] answered: only ids[2] is new in this batch
    store.add_batch(ids[:3], [0, 1, 2], strategy="margin", cold_start=False)
    assert [(r["image_id"], r["batch_id"], r["suggestion"]) for r in store.pending()] == [
        (ids[1], 1, None), (ids[2], 2, 2)]
    assert store.candidates() == ids[3:]


def test_one_training_job_at_a_time_and_dead_ones_are_closed(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    job = store.start_job(10, os.getpid())
    with pytest.raises(LabellingError, match="already running"):
        store.start_job(10, os.getpid())
    store.finish_job(job, "done", "queued 10")
    # a job whose process is gone (killed) no longer blocks the next one
    dead = store.start_job(5, 2**22 + 12345)
    assert store.active_job() is None
    assert store.query("SELECT state FROM jobs WHERE id = ?", (dead,))[0][0] == "failed"
    store.start_job(5, os.getpid())


def test_the_database_refuses_another_schema_and_a_missing_folder(tmp_path, image_folder):
    with pytest.raises(LabellingError, match="label init"):
        LabelStore(tmp_path / "nowhere")
    store = _store(tmp_path, image_folder)
    with store.transaction() as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LabellingError, match="schema version 99"):
        LabelStore(store.workdir)
    with pytest.raises(LabellingError, match="already holds"):
        _store(tmp_path, image_folder)


def test_pixels_come_in_one_mode_and_size(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    ids = [_id(store, "colour-2.png"), _id(store, "nested/gray.png")]
    X = read_pixels(store, ids)
    assert X.shape == (2, 8, 8, 3) and X.dtype == np.uint8
    # the gray image is converted to RGB: three equal channels
    assert np.array_equal(X[1, ..., 0], X[1, ..., 2])

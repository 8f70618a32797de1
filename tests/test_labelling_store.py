"""The labelling database and the image index: answers, undo, imports, changed files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moby_al_plugin.labelling import (
    ImageChangedError,
    LabellingError,
    LabelStore,
    StatusCounts,
    UnknownImageError,
    index_folder,
    read_pixels,
    verify_image,
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
            root / f"colour-{i}.png"
        )
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
        meta={
            "images_root": str(root),
            "image_size": 8,
            "mode": "L" if index.single_channel else "RGB",
            **meta,
        },
        images=index.images,
        unreadable=index.unreadable,
    )


def _id(store, path):
    return int(store.query("SELECT id FROM images WHERE path = ?", (path,))[0][0])


def test_index_lists_images_unreadable_files_duplicates_and_ignored_files(image_folder):
    index = index_folder(image_folder)
    paths = sorted(i["path"] for i in index.images)
    assert paths == [
        "colour-0.png",
        "colour-1.png",
        "colour-2.png",
        "colour-3.png",
        "nested/copy.png",
        "nested/gray.png",
    ]
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
    assert other.execute(
        "SELECT class_id FROM answers WHERE image_id = ?", (image,)
    ).fetchone() == (2,)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    assert [(a.path, a.label) for a in store.answers()] == [
        ("colour-1.png", "hot dog, with mustard")
    ]


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


def test_undo_leaves_an_answer_that_an_import_changed_since(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    a, b = _id(store, "colour-0.png"), _id(store, "colour-1.png")
    store.answer(b, "cat")
    store.answer(a, "cat")
    assert store.import_labels([("colour-0.png", "dog")]) == 1  # the CSV changes a
    # the latest page answer (a: cat) was overwritten by the import: nothing is undone
    assert store.undo() is None
    assert {x.image_id: (x.label, x.source) for x in store.answers()} == {
        a: ("dog", "import"),
        b: ("cat", "page"),
    }
    assert store.query("SELECT COUNT(*) FROM history WHERE undone = 1")[0][0] == 0
    # an image the import did not touch can still be undone once it is the latest answer
    store.answer(b, "hot dog, with mustard")
    assert store.undo() == b
    assert {x.image_id: x.label for x in store.answers()} == {a: "dog", b: "cat"}


def test_the_store_connection_is_wal_synchronous_full_with_foreign_keys(tmp_path, image_folder):
    created = _store(tmp_path, image_folder)
    reopened = LabelStore(created.workdir)
    for store in (created, reopened):
        # 2 is FULL: a committed answer survives a power cut, not only a killed process
        assert store.query("PRAGMA synchronous")[0][0] == 2
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
        assert store.query("PRAGMA foreign_keys")[0][0] == 1
    reopened.close()
    created.close()


def test_a_link_to_a_file_outside_the_folder_is_not_indexed(tmp_path, image_folder):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes((image_folder / "colour-2.png").read_bytes())
    (image_folder / "leak.png").symlink_to(secret)
    (image_folder / "nested" / "up.png").symlink_to(Path("..") / ".." / "outside" / "secret.png")
    (image_folder / "inside.png").symlink_to(image_folder / "colour-3.png")
    index = index_folder(image_folder)
    paths = {i["path"] for i in index.images}
    assert "leak.png" not in paths and "nested/up.png" not in paths
    assert "inside.png" in paths  # a link that stays inside the folder is an image
    reasons = dict(index.unreadable)
    assert (
        reasons["leak.png"]
        == reasons["nested/up.png"]
        == ("a link to a file outside the images folder")
    )


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
        ("colour-0.png", "cat", "import"),
        ("nested/gray.png", "dog", "import"),
    }


def test_a_changed_or_removed_file_is_reported_and_never_labelled(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    changed, removed, touched = (
        _id(store, p) for p in ("colour-2.png", "colour-3.png", "colour-1.png")
    )
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
        (ids[1], 1, None),
        (ids[2], 2, 2),
    ]
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
    # starting the next job closes it, with the reason
    store.start_job(5, os.getpid())
    state, message = store.query("SELECT state, message FROM jobs WHERE id = ?", (dead,))[0]
    assert state == "failed" and "process ended" in message


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


# ----------------------------------------------- the queries of the other modules
# image_folder indexes, in this order (ids 1 to 6): colour-0..3.png, nested/copy.png
# (colour-0's content), nested/gray.png; broken.jpg is unreadable.
PATHS = {
    1: "colour-0.png",
    2: "colour-1.png",
    3: "colour-2.png",
    4: "colour-3.png",
    5: "nested/copy.png",
    6: "nested/gray.png",
}


@pytest.fixture
def clock(monkeypatch):
    """Answers one millisecond apart, in the order given (no two at the same time)."""
    ticks = iter(range(1, 10_000))
    monkeypatch.setattr(
        "moby_al_plugin.labelling.store.now_utc",
        lambda: f"2024-05-01T12:00:00.{next(ticks):03d}+00:00",
    )


@pytest.fixture
def worked(tmp_path, image_folder, clock):
    """The tiny store after two batches, five answers and one file removed.

    batch 1 queues 1, 2; batch 2 is asked for 2, 3, 4, 5 and queues 3, 4 (2 is
    queued already, and 5 has the content of 1, answered). Answers in time order:
    1 cat, 2 cat, 4 skipped, 6 dog, 5 cat (given all the same); then nested/copy.png
    (5) is deleted and the folder checked again.
    """
    store = _store(tmp_path, image_folder, budget=40)
    store.add_batch([1, 2], [None, None], strategy="typiclust", cold_start=True)
    store.answer(1, "cat")
    store.answer(2, "cat")
    store.add_batch([2, 3, 4, 5], [0, 1, 2, 0], strategy="margin", cold_start=False)
    store.answer(4, None)
    store.answer(6, "dog")
    store.answer(5, "cat")
    (image_folder / "nested/copy.png").unlink()
    assert verify_images(store) == {"changed": [], "missing": ["nested/copy.png"]}
    return store


def test_image_paths_hashes_and_records_of_the_tiny_store(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    assert store.image_paths() == PATHS
    assert list(store.image_paths()) == [1, 2, 3, 4, 5, 6]
    digests = {
        i: hashlib.sha256((image_folder / p).read_bytes()).hexdigest() for i, p in PATHS.items()
    }
    assert store.image_hashes() == digests
    assert list(store.image_hashes()) == [1, 2, 3, 4, 5, 6]  # id order, as the cache keys use
    assert store.image_hashes()[5] == store.image_hashes()[1]  # the copy
    records = store.image_records()
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5, 6]
    gray = image_folder / "nested/gray.png"
    assert tuple(records[5]) == (
        6,
        "nested/gray.png",
        digests[6],
        gray.stat().st_size,
        gray.stat().st_mtime_ns,
        "ok",
    )


def test_usable_images_leave_out_changed_and_missing_ones(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    assert store.usable_images() == [1, 2, 3, 4, 5, 6]
    Image.new("RGB", (12, 12), "blue").save(image_folder / "colour-2.png")  # 3
    (image_folder / "colour-3.png").unlink()  # 4
    verify_images(store)
    assert store.usable_images() == [1, 2, 5, 6]
    assert store.image_paths() == PATHS  # the paths stay, whatever the state


def test_record_image_states_writes_all_or_nothing(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    before = {r["id"]: tuple(r) for r in store.image_records()}
    store.record_image_states([])  # nothing to write: nothing changes
    assert {r["id"]: tuple(r) for r in store.image_records()} == before
    store.record_image_states([(2, "changed", 5), (4, "missing", 7)])
    after = {r["id"]: (r["state"], r["mtime_ns"]) for r in store.image_records()}
    assert after[2] == ("changed", 5) and after[4] == ("missing", 7)
    assert all(after[i] == (before[i][5], before[i][4]) for i in (1, 3, 5, 6))
    # a state the schema does not know rolls back the whole update
    with pytest.raises(sqlite3.IntegrityError):
        store.record_image_states([(1, "missing", 1), (3, "gone", 1)])
    assert {r["id"]: (r["state"], r["mtime_ns"]) for r in store.image_records()} == after
    assert store.usable_images() == [1, 3, 5, 6]


def test_verify_image_checks_only_its_own_file(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    Image.new("RGB", (12, 12), "blue").save(image_folder / "colour-2.png")  # 3
    (image_folder / "colour-3.png").unlink()  # 4
    assert verify_image(store, 3) == "changed"
    states = {r["id"]: r["state"] for r in store.image_records()}
    assert states == {1: "ok", 2: "ok", 3: "changed", 4: "ok", 5: "ok", 6: "ok"}
    assert verify_image(store, 4) == "missing"
    assert store.image(4)["state"] == "missing"
    # same content, new time: ok, and the new time is recorded
    os.utime(image_folder / "colour-1.png", ns=(1, 1))
    assert verify_image(store, 2) == "ok"
    assert store.image(2)["mtime_ns"] == 1
    # a file put back as it was is ok again
    (image_folder / "colour-2.png").write_bytes((image_folder / "colour-0.png").read_bytes())
    assert verify_image(store, 3) == "changed"
    assert verify_image(store, 1) == "ok"
    with pytest.raises(UnknownImageError):
        verify_image(store, 99)


def test_class_table_and_histogram_of_the_tiny_store(worked):
    assert worked.class_table() == [
        (0, "cat", "1"),
        (1, "dog", "2"),
        (2, "hot dog, with mustard", "3"),
    ]
    # labels of 1, 2 and 5 (now missing: still counted), 6; the skip of 4 is not
    assert worked.class_histogram() == {"cat": 3, "dog": 1, "hot dog, with mustard": 0}
    assert list(worked.class_histogram()) == ["cat", "dog", "hot dog, with mustard"]


def test_class_examples_are_the_newest_usable_labels(worked):
    # 5 is the newest cat but its file is gone: never shown
    assert worked.class_examples(1) == {"cat": [2], "dog": [6], "hot dog, with mustard": []}
    assert worked.class_examples(10) == {"cat": [2, 1], "dog": [6], "hot dog, with mustard": []}


def test_recent_answers_are_newest_first_with_skips(worked):
    recent = worked.recent_answers(10)
    assert [(a.image_id, a.path, a.label) for a in recent] == [
        (5, "nested/copy.png", "cat"),
        (6, "nested/gray.png", "dog"),
        (4, "colour-3.png", None),
        (2, "colour-1.png", "cat"),
        (1, "colour-0.png", "cat"),
    ]
    # the same answers as answers() gives, oldest first there
    assert recent == worked.answers()[::-1]
    assert recent[0].answered_at > recent[1].answered_at
    assert [a.image_id for a in worked.recent_answers(2)] == [5, 6]


def test_recent_answers_of_the_same_time_come_by_descending_id(tmp_path, image_folder, monkeypatch):
    monkeypatch.setattr(
        "moby_al_plugin.labelling.store.now_utc", lambda: "2024-05-01T12:00:00.000+00:00"
    )
    store = _store(tmp_path, image_folder)
    for image_id in (2, 6, 3):
        store.answer(image_id, "dog")
    assert [a.image_id for a in store.recent_answers(5)] == [6, 3, 2]


def test_status_counts_of_a_new_store(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    assert store.status_counts() == StatusCounts(
        images=6,
        usable=6,
        unreadable=1,
        labelled=0,
        skipped=0,
        pending=0,
        batches=0,
        batch=None,
        batch_size=0,
        batch_answered=0,
        budget=None,
    )


def test_status_counts_after_batches_answers_and_a_removed_file(worked):
    # pending: only 3 (1, 2, 4 and 5 are answered); batch 2 holds 3, 4, of which 4 is
    # answered
    assert worked.status_counts() == StatusCounts(
        images=6,
        usable=5,
        unreadable=1,
        labelled=4,
        skipped=1,
        pending=1,
        batches=2,
        batch=2,
        batch_size=2,
        batch_answered=1,
        budget=40,
    )
    # the caller's count of pending images, when it has just listed them
    assert worked.status_counts(pending=9).pending == 9
    worked.undo()  # 5 is no longer answered (and in no batch)
    counts = worked.status_counts()
    assert (counts.labelled, counts.pending, counts.batch_answered) == (3, 1, 1)


def _history(store) -> list[tuple]:
    """(image, action, class, previous, previous class, undone) of every history row."""
    names = {None: None, **{i: n for i, n, _ in store.class_table()}}
    return [
        (r[0], r[1], names[r[2]], r[3], names[r[4]], r[5])
        for r in store.query(
            "SELECT image_id, action, class_id, previous, previous_class_id, undone "
            "FROM history ORDER BY id"
        )
    ]


def test_redo_gives_back_what_undo_took_latest_undo_first(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    a, b = _id(store, "colour-0.png"), _id(store, "colour-1.png")
    assert store.redo() is None  # nothing undone yet
    store.answer(a, "cat")  # row 1
    store.answer(b, None)  # row 2: skipped
    store.answer(a, "dog")  # row 3: changed
    assert store.undo() == a  # row 4: a back to cat
    assert store.undo() == b  # row 5: b unanswered
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat"}
    assert store.redo() == b  # the latest undo first: row 2 counts again, row 6
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat", b: None}
    assert store.redo() == a  # row 3 counts again, row 7
    assert {x.image_id: x.label for x in store.answers()} == {a: "dog", b: None}
    assert store.redo() is None  # everything undone is back
    assert _history(store) == [
        (a, "label", "cat", "none", None, 0),
        (b, "skip", None, "none", None, 0),
        (a, "label", "dog", "label", "cat", 0),
        (a, "undo", "cat", "label", "dog", 0),
        (b, "undo", None, "skip", None, 0),
        (b, "undo", None, "none", None, 0),
        (a, "undo", "dog", "label", "cat", 0),
    ]
    # undo after a redo takes back the redone answer, with what was there before it
    assert store.undo() == a
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat", b: None}
    assert store.redo() == a
    # a new answer ends what can be redone
    assert store.undo() == a
    store.answer(b, "cat")
    assert store.redo() is None
    assert store.undo() == b
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat", b: None}
    assert store.redo() == b  # the undo of the new answer can be redone, not the older one
    assert store.redo() is None
    assert {x.image_id: x.label for x in store.answers()} == {a: "cat", b: "cat"}
    assert [row[5] for row in _history(store)] == [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def test_redo_leaves_an_answer_that_an_import_changed_since(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    a = _id(store, "colour-0.png")
    store.answer(a, "cat")
    assert store.undo() == a
    assert store.import_labels([("colour-0.png", "dog")]) == 1
    before = _history(store)
    assert store.redo() is None
    assert _history(store) == before
    assert {x.image_id: (x.label, x.source) for x in store.answers()} == {a: ("dog", "import")}


# ------------------------------------------- jobs: running while their heartbeat is fresh
def _age_heartbeat(store, job: int, seconds: float) -> None:
    """Set a job's heartbeat to ``seconds`` ago."""
    import datetime as dt

    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
    with store.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET heartbeat = ? WHERE id = ?",
            (then.isoformat(timespec="milliseconds"), job),
        )


def test_a_job_with_a_live_pid_runs_only_while_its_heartbeat_is_fresh(tmp_path, image_folder):
    from moby_al_plugin.labelling.store import JOB_HEARTBEAT_TIMEOUT_S

    store = _store(tmp_path, image_folder)
    # this test's own process: a pid that is alive, as a killed job's reused pid is
    job = store.start_job(10, os.getpid())
    assert store.active_job()["id"] == job  # the heartbeat starts with the job
    _age_heartbeat(store, job, JOB_HEARTBEAT_TIMEOUT_S + 5)
    assert store.active_job() is None
    # the getter only reads: the stopped job is closed by the call that says so
    assert store.query("SELECT state FROM jobs WHERE id = ?", (job,))[0][0] == "running"
    assert store.close_stopped_jobs() == 1
    state, message = store.query("SELECT state, message FROM jobs WHERE id = ?", (job,))[0]
    assert state == "failed" and "no heartbeat" in message
    # so it no longer blocks the next job, whose heartbeat is fresh
    fresh = store.start_job(5, os.getpid())
    _age_heartbeat(store, fresh, JOB_HEARTBEAT_TIMEOUT_S - 10)
    assert store.active_job()["id"] == fresh
    with pytest.raises(LabellingError, match="already running"):
        store.start_job(5, os.getpid())
    # a heartbeat makes it young again, progress counts as one too
    store.job_heartbeat(fresh)
    _age_heartbeat(store, fresh, JOB_HEARTBEAT_TIMEOUT_S + 5)
    store.job_progress(fresh, 0.5, "fine-tuning")
    assert store.active_job()["id"] == fresh
    store.finish_job(fresh, "done", "queued 5")
    # a job the page registered before its process started (no pid yet) waits as long
    waiting = store.start_job(5, None)
    assert store.active_job()["id"] == waiting
    _age_heartbeat(store, waiting, JOB_HEARTBEAT_TIMEOUT_S + 5)
    assert store.active_job() is None


def test_a_schema_1_database_gets_the_heartbeat_column_when_opened(tmp_path, image_folder):
    from moby_al_plugin.labelling import SCHEMA_VERSION

    store = _store(tmp_path, image_folder)
    # what version 1 wrote: no heartbeat column, and a job that ran under it
    with store.transaction() as conn:
        conn.execute("ALTER TABLE jobs DROP COLUMN heartbeat")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute(
            "INSERT INTO jobs (state, pid, size, started_at, message) "
            "VALUES ('running', ?, 3, '2024-05-01T12:00:00.000+00:00', 'pretraining')",
            (os.getpid(),),
        )
    store.close()
    with LabelStore(tmp_path / "work") as migrated:
        assert SCHEMA_VERSION == 2 and migrated.meta("schema_version") == "2"
        columns = [r[1] for r in migrated.query("PRAGMA table_info(jobs)")]
        assert columns[-1] == "heartbeat"
        (old,) = migrated.query("SELECT * FROM jobs")
        assert (old["state"], old["message"], old["heartbeat"]) == ("running", "pretraining", None)
        # no heartbeat: its start long ago is its last sign of life
        assert migrated.active_job() is None
        assert migrated.close_stopped_jobs() == 1
        assert migrated.last_job()["state"] == "failed"
        job = migrated.start_job(4, os.getpid())
        assert migrated.active_job()["id"] == job
    # opened again: nothing left to migrate
    with LabelStore(tmp_path / "work") as again:
        assert again.meta("schema_version") == "2"


# ------------------------------------------------ files of the same content
# colour-0.png (1) and nested/copy.png (5) hold the same bytes


def test_one_file_of_a_same_content_group_is_ever_queued(tmp_path, image_folder):
    store = _store(tmp_path, image_folder)
    # the group offers its first file only
    assert store.candidates() == [1, 2, 3, 4, 6]
    # a batch asked for both keeps the first it names
    store.add_batch([5, 2, 1], [None] * 3, strategy="random", cold_start=True)
    assert [r["image_id"] for r in store.pending()] == [5, 2]
    # the group is taken now: it offers nothing more, and no later batch queues it
    assert store.candidates() == [3, 4, 6]
    store.add_batch([1, 3], [None] * 2, strategy="random", cold_start=True)
    assert [r["image_id"] for r in store.pending()] == [5, 2, 3]
    # a queued file that disappeared is never shown: its twin may be queued instead
    (image_folder / "nested/copy.png").unlink()
    verify_images(store)
    assert store.candidates() == [1, 4, 6]
    store.add_batch([1, 5], [None] * 2, strategy="random", cold_start=True)
    assert [r["image_id"] for r in store.pending()] == [2, 3, 1]
    (image_folder / "nested/copy.png").write_bytes((image_folder / "colour-0.png").read_bytes())
    # an answer takes the group as well
    other = _store(tmp_path / "other", image_folder)
    other.import_labels([("nested/copy.png", "dog")])
    assert other.candidates() == [2, 3, 4, 6]
    other.add_batch([1, 2], [None] * 2, strategy="random", cold_start=True)
    assert [r["image_id"] for r in other.pending()] == [2]


def test_a_same_content_file_takes_the_label_of_its_labelled_twin(tmp_path, image_folder, clock):
    from moby_al_plugin.labelling import Answer

    store = _store(tmp_path, image_folder)
    assert store.duplicate_answers() == ([], [])
    at = store.answer(5, "dog")
    store.answer(2, "cat")
    assert store.duplicate_answers() == (
        [(Answer(1, "colour-0.png", "dog", at, "page"), PATHS[5])],
        [],
    )
    # a twin that changed on disk is another image now: it takes no label
    Image.new("RGB", (12, 12), "blue").save(image_folder / "colour-0.png")
    verify_images(store)
    assert store.duplicate_answers() == ([], [])
    (image_folder / "colour-0.png").write_bytes((image_folder / "nested/copy.png").read_bytes())
    verify_images(store)
    # twins given different labels: neither label is copied, and the group is named
    store.import_labels([("colour-0.png", "cat")])
    assert store.duplicate_answers() == ([], [["colour-0.png", "nested/copy.png"]])


def test_an_import_of_the_labels_there_already_keeps_their_source_and_time(
    tmp_path, image_folder, clock
):
    store = _store(tmp_path, image_folder)
    store.answer(1, "cat")
    store.answer(2, None)  # skipped
    assert store.import_labels([("colour-2.png", "dog"), ("colour-3.png", "cat")]) == 2

    def table() -> list[tuple]:
        return [tuple(r) for r in store.query("SELECT * FROM answers ORDER BY image_id")]

    before, history = table(), _history(store)
    # the same labels again, the twin of 1 with its label, and a row given twice
    same = [
        ("colour-0.png", "cat"),
        ("colour-2.png", "dog"),
        ("colour-3.png", "cat"),
        ("nested/copy.png", "cat"),
        ("colour-3.png", "cat"),
    ]
    assert store.import_labels(same) == 0
    assert table() == before and _history(store) == history
    # one label changed and the skip labelled: those two rows change, nothing else
    changed = [("colour-0.png", "cat"), ("colour-1.png", "dog"), ("colour-2.png", "cat")]
    assert store.import_labels(changed) == 2
    after = {r[0]: r for r in table()}
    old = {r[0]: r for r in before}
    assert after[1] == old[1] and after[4] == old[4]
    for image_id, class_id in ((2, 1), (3, 0)):
        assert after[image_id][1] == class_id and after[image_id][3] == "import"
        assert after[image_id][2] > max(r[2] for r in before)  # the time of this import
    assert len(_history(store)) == len(history) + 2


def test_reading_the_active_job_writes_nothing(tmp_path, image_folder):
    # a getter that closed stopped jobs turned every poll of the page into a write
    store = _store(tmp_path, image_folder)
    store.start_job(5, 2**22 + 12345)  # a pid that does not exist: stopped
    before = store.query("SELECT * FROM jobs")
    changes = store.query("SELECT total_changes()")[0][0]
    assert store.active_job() is None
    assert store.query("SELECT total_changes()")[0][0] == changes
    assert [tuple(r) for r in store.query("SELECT * FROM jobs")] == [tuple(r) for r in before]

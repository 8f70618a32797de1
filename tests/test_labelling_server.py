"""The labelling page's HTTP API: the token, ids not paths, and bad requests change nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from moby_al_plugin.cli import main
from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.server import COOKIE, create_app

from .conftest import DIGIT_CLASSES

TOKEN = "s3cret-token"
AUTH = {"X-Token": TOKEN}


@pytest.fixture
def workdir(tmp_path, digit_image_folder):
    folder, _ = digit_image_folder
    work = tmp_path / "work"
    assert (
        main(
            [
                "label",
                "init",
                "--workdir",
                str(work),
                "--images",
                str(folder),
                "--classes",
                DIGIT_CLASSES,
                "--image-size",
                "16",
                "--budget",
                "100",
            ]
        )
        == 0
    )
    with LabelStore(work) as store:
        ids = store.candidates()[:5]
        store.add_batch(ids, [3, None, None, None, None], strategy="typiclust", cold_start=False)
    return work


@pytest.fixture
def client(workdir):
    return create_app(workdir, TOKEN).test_client()


def _snapshot(workdir: Path) -> tuple:
    with LabelStore(workdir) as store:
        return tuple(
            tuple(map(tuple, store.query(f"SELECT * FROM {table} ORDER BY 1")))
            for table in ("answers", "history", "queue", "jobs")
        )


def test_every_route_needs_the_token(client, workdir):
    for path in ("/", "/api/state", "/image/1", "/static/label.js"):
        assert client.get(path).status_code == 403, path
        assert client.get(path, headers={"X-Token": "wrong"}).status_code == 403, path
    before = _snapshot(workdir)
    assert client.post("/api/answer", json={"image_id": 1, "label": "3"}).status_code == 403
    assert client.post("/api/train", json={"n": 5}).status_code == 403
    assert _snapshot(workdir) == before


def test_the_url_with_the_token_sets_a_cookie_for_the_page(client):
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and b"moby-al label" in page.data
    assert COOKIE in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    # later requests of the page carry only the cookie
    assert client.get("/api/state").status_code == 200
    assert client.get("/static/label.js").status_code == 200


def test_the_page_needs_no_network():
    static = Path(__file__).parents[1] / "moby_al_plugin/labelling/static"
    for file in static.iterdir():
        text = file.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, file


def test_state_shows_the_batch_the_suggestion_and_the_counts(client, workdir):
    state = client.get("/api/state", headers=AUTH).get_json()
    assert [c["name"] for c in state["classes"]] == DIGIT_CLASSES.split(",")
    assert [c["key"] for c in state["classes"]][:3] == ["1", "2", "3"]
    assert len(state["pending"]) == 5 and state["pending"][0]["suggestion"] == "3"
    assert state["counts"]["budget"] == 100 and state["counts"]["labelled"] == 0
    first = state["pending"][0]["image_id"]
    # the suggestion is shown, never recorded as an answer
    with LabelStore(workdir) as store:
        assert store.answers() == []
    answered = client.post("/api/answer", json={"image_id": first, "label": "8"}, headers=AUTH)
    assert answered.status_code == 200
    state = client.get("/api/state", headers=AUTH).get_json()
    assert state["counts"]["batch_answered"] == 1 and state["histogram"]["8"] == 1
    assert state["recent"][0] == {
        "image_id": first,
        "label": "8",
        "answered_at": answered.get_json()["answered_at"],
    }
    assert [c["examples"] for c in state["classes"] if c["name"] == "8"] == [[first]]


def test_images_are_served_by_id_only(client, workdir):
    with LabelStore(workdir) as store:
        path = store.images_root / store.image(1)["path"]
    served = client.get("/image/1", headers=AUTH)
    assert served.status_code == 200 and served.data == path.read_bytes()
    before = _snapshot(workdir)
    for bad in (
        "/image/../labels.sqlite",
        "/image/..%2F..%2Fetc%2Fpasswd",
        "/image/%2Fetc%2Fpasswd",
        f"/image/{path}",
        "/image/-1",
        "/image/99999",
        "/static/../store.py",
        "/static/%2e%2e/store.py",
        "/labels.sqlite",
    ):
        response = client.get(bad, headers=AUTH)
        assert 400 <= response.status_code < 500, bad
        assert response.data != path.read_bytes()
    assert _snapshot(workdir) == before


@pytest.mark.parametrize(
    "body, status",
    [
        ({"image_id": 1, "label": "bird"}, 400),
        ({"image_id": 1, "label": 3}, 400),
        ({"image_id": "1", "label": "3"}, 400),
        ({"image_id": "../../etc/passwd", "label": "3"}, 400),
        ({"image_id": 99999, "label": "3"}, 404),
        ({"label": "3"}, 400),
        ([1, "3"], 400),
        ("not json", 400),
    ],
)
def test_bad_answers_get_a_4xx_and_change_nothing(client, workdir, body, status):
    before = _snapshot(workdir)
    if body == "not json":
        response = client.post("/api/answer", data="image_id=1&label=3", headers=AUTH)
    else:
        response = client.post("/api/answer", json=body, headers=AUTH)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert _snapshot(workdir) == before


def test_a_file_changed_after_init_is_neither_shown_nor_labelled(client, workdir):
    with LabelStore(workdir) as store:
        path = store.images_root / store.image(2)["path"]
    original = path.read_bytes()
    try:
        Image.new("L", (8, 8), 255).save(path)
        before = _snapshot(workdir)
        assert client.get("/image/2", headers=AUTH).status_code == 409
        answer = client.post("/api/answer", json={"image_id": 2, "label": "3"}, headers=AUTH)
        assert answer.status_code == 409 and "changed" in answer.get_json()["error"]
        assert _snapshot(workdir) == before
        pending = client.get("/api/state", headers=AUTH).get_json()["pending"]
        assert 2 not in [p["image_id"] for p in pending]
    finally:
        path.write_bytes(original)


def test_undo_through_the_api(client, workdir):
    assert client.post("/api/undo", json={}, headers=AUTH).status_code == 409
    client.post("/api/answer", json={"image_id": 3, "label": "1"}, headers=AUTH)
    client.post("/api/answer", json={"image_id": 4, "label": None}, headers=AUTH)
    undone = client.post("/api/undo", json={}, headers=AUTH)
    assert undone.status_code == 200 and undone.get_json()["image_id"] == 4
    with LabelStore(workdir) as store:
        assert {a.image_id: a.label for a in store.answers()} == {3: "1"}


def test_training_requests_are_checked_and_never_run_twice(client, workdir):
    before = _snapshot(workdir)
    for bad in ({"n": 0}, {"n": "5"}, {"n": True}, []):
        assert client.post("/api/train", json=bad, headers=AUTH).status_code == 400
    assert _snapshot(workdir) == before
    with LabelStore(workdir) as store:
        store.start_job(5, os.getpid())  # a training that is running now
    before = _snapshot(workdir)
    second = client.post("/api/train", json={"n": 5}, headers=AUTH)
    assert second.status_code == 409 and "already running" in second.get_json()["error"]
    assert _snapshot(workdir) == before


def test_an_image_request_checks_only_its_own_file(client, workdir):
    with LabelStore(workdir) as store:
        paths = [store.images_root / store.image(i)["path"] for i in (2, 3, 4)]
        mtime_4 = store.image(4)["mtime_ns"]
    originals = [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths]
    try:
        for path in paths[:2]:
            Image.new("L", (8, 8), 255).save(path)
        os.utime(paths[2], ns=(1, 1))  # same content, new time
        assert client.get("/image/2", headers=AUTH).status_code == 409
        with LabelStore(workdir) as store:
            # image 3 changed as well, but only the file asked for was looked at
            assert [store.image(i)["state"] for i in (2, 3, 4)] == ["changed", "ok", "ok"]
            assert store.image(4)["mtime_ns"] == mtime_4
        served = client.get("/image/4", headers=AUTH)
        assert served.status_code == 200 and served.data == originals[2][0]
        with LabelStore(workdir) as store:
            assert store.image(4)["mtime_ns"] == 1 and store.image(3)["state"] == "ok"
    finally:
        for path, (data, mtime) in zip(paths, originals):
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))


def test_the_page_counts_are_the_store_status_counts(client, workdir):
    client.post("/api/answer", json={"image_id": 1, "label": "3"}, headers=AUTH)
    client.post("/api/answer", json={"image_id": 2, "label": None}, headers=AUTH)
    counts = client.get("/api/state", headers=AUTH).get_json()["counts"]
    with LabelStore(workdir) as store:
        expected = store.status_counts()
    assert counts == {
        "labelled": expected.labelled,
        "skipped": expected.skipped,
        "images": expected.images,
        "usable": expected.usable,
        "pending": expected.pending,
        "batch": expected.batch,
        "batch_size": expected.batch_size,
        "batch_answered": expected.batch_answered,
        "budget": expected.budget,
    }
    assert (counts["labelled"], counts["skipped"], counts["images"], counts["budget"]) == (
        1,
        1,
        240,
        100,
    )


def test_an_image_path_that_leads_outside_the_folder_is_refused(tmp_path):
    import shutil

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(images / f"img-{i}.png")
    work = tmp_path / "work"
    assert (
        main(
            [
                "label",
                "init",
                "--workdir",
                str(work),
                "--images",
                str(images),
                "--classes",
                "a,b",
                "--image-size",
                "8",
            ]
        )
        == 0
    )
    with LabelStore(work) as store:
        rows = {r["path"]: int(r["id"]) for r in store.query("SELECT id, path FROM images")}
    escaped, linked, kept = rows["img-0.png"], rows["img-1.png"], rows["img-2.png"]
    # a row whose path climbs out of the folder, to a file that matches it byte for byte
    secret = tmp_path / "secret.png"
    shutil.copy2(images / "img-0.png", secret)
    stat = secret.stat()
    with LabelStore(work) as store, store.transaction() as conn:
        conn.execute(
            "UPDATE images SET path = ?, bytes = ?, mtime_ns = ? WHERE id = ?",
            ("../secret.png", stat.st_size, stat.st_mtime_ns, escaped),
        )
    # an indexed file swapped for a link to an identical file outside the folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(images / "img-1.png", elsewhere / "img-1.png")
    (images / "img-1.png").unlink()
    (images / "img-1.png").symlink_to(elsewhere / "img-1.png")
    client = create_app(work, TOKEN).test_client()
    served = client.get(f"/image/{kept}", headers=AUTH)
    assert served.status_code == 200 and served.data == (images / "img-2.png").read_bytes()
    for image_id, outside in ((escaped, secret), (linked, elsewhere / "img-1.png")):
        response = client.get(f"/image/{image_id}", headers=AUTH)
        assert response.status_code == 404, image_id
        assert response.data != outside.read_bytes()

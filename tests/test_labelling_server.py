"""The labelling page's HTTP API: the token, ids not paths, and bad requests change nothing.

Also the page's defences against other pages of the same machine (a header
token for every change, ``Host``, ``Origin`` and ``Sec-Fetch-Site``
checks, a cookie per port) and a property test that throws random ids,
paths, bodies and headers at every route: never a 5xx, and nothing changes
but through a valid answer or undo.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.server import create_app

from .conftest import DIGIT_CLASSES, label_init

TOKEN = "s3cret-token"
AUTH = {"X-Moby-Token": TOKEN}


@pytest.fixture
def workdir(tmp_path, digit_image_folder):
    folder, _ = digit_image_folder
    work = tmp_path / "work"
    assert label_init(work, folder, DIGIT_CLASSES, "--image-size", "16", "--budget", "100") == 0
    with LabelStore(work) as store:
        ids = store.candidates()[:5]
        store.add_batch(ids, [3, None, None, None, None], strategy="typiclust", cold_start=False)
    return work


@pytest.fixture
def client(workdir):
    return create_app(workdir, TOKEN).test_client()


def _snapshot(workdir: Path, tables: tuple = ("answers", "history", "queue", "jobs")) -> tuple:
    with LabelStore(workdir) as store:
        return tuple(
            tuple(map(tuple, store.query(f"SELECT * FROM {table} ORDER BY 1"))) for table in tables
        )


def _whole(workdir: Path) -> tuple:
    """Every row of every table."""
    with LabelStore(workdir) as store:
        tables = store.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return _snapshot(workdir, tuple(t["name"] for t in tables))


def test_every_route_needs_the_token(client, workdir):
    for path in ("/", "/api/state", "/image/1"):
        assert client.get(path).status_code == 403, path
        assert client.get(path, headers={"X-Token": "wrong"}).status_code == 403, path
    # the page's script and style are the same for everyone and hold no token
    script = client.get("/static/label.js")
    assert script.status_code == 200 and TOKEN not in script.get_data(as_text=True)
    before = _snapshot(workdir)
    assert client.post("/api/answer", json={"image_id": 1, "label": "3"}).status_code == 403
    assert client.post("/api/train", json={"n": 5}).status_code == 403
    assert _snapshot(workdir) == before


def test_the_url_with_the_token_opens_the_page_and_sets_no_cookie(client):
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and b"moby-al label" in page.data
    assert "Set-Cookie" not in page.headers
    # the page's own requests carry the header; without it nothing is read
    assert client.get("/api/state").status_code == 403
    assert client.get("/image/1").status_code == 403
    assert client.get("/api/state", headers=AUTH).status_code == 200
    assert client.get("/image/1", headers=AUTH).status_code == 200


def test_a_cookie_with_the_token_is_no_credential(workdir):
    """What a server on another port would receive, if a cookie held the token: nothing."""
    client = create_app(workdir, TOKEN).test_client(use_cookies=False)
    for name in ("moby_al_token_80", "moby_al_token", "session"):
        for path in ("/api/state", "/image/1", "/"):
            assert client.get(path, headers={"Cookie": f"{name}={TOKEN}"}).status_code == 403
        undo = client.post("/api/undo", headers={"Cookie": f"{name}={TOKEN}"})
        assert undo.status_code == 403


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
    assert label_init(work, images, "a,b", "--image-size", "8") == 0
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


# ------------------------------------------------- other pages of this machine
PORT = 8765
SERVED = f"http://127.0.0.1:{PORT}"
CHANGES = [
    ("/api/undo", {}),
    ("/api/answer", {"image_id": 2, "label": "4"}),
    ("/api/train", {"n": 5}),
]


def _something_to_undo(client) -> None:
    assert client.post("/api/answer", json={"image_id": 1, "label": "3"}, headers=AUTH).status_code
    assert client.get("/api/state", headers=AUTH).get_json()["counts"]["labelled"] == 1


def test_a_change_needs_the_token_in_a_header(client, workdir):
    _something_to_undo(client)
    assert client.get(f"/?token={TOKEN}").status_code == 200
    assert client.get(f"/api/state?token={TOKEN}").status_code == 200  # reading, by URL
    before = _snapshot(workdir)
    for path, body in CHANGES:
        for headers in ({}, {"X-Moby-Token": "wrong"}, {"X-Moby-Token": ""}):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 403, (path, headers)
            assert "X-Moby-Token" in response.get_json()["error"]
        # a body-less POST (what a no-cors fetch of undo sends) and the token in the query
        assert client.post(path).status_code == 403, path
        assert client.post(f"{path}?token={TOKEN}", json=body).status_code == 403, path
    assert _snapshot(workdir) == before
    # a CORS preflight for the header is refused and grants nothing
    preflight = client.options(
        "/api/undo",
        headers={
            "Origin": "http://127.0.0.1:9999",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-moby-token, content-type",
        },
    )
    assert preflight.status_code == 403
    assert not [h for h in preflight.headers.keys() if h.lower().startswith("access-control-")]
    # the header makes the change; scripts written for the X-Token header still work
    assert client.post("/api/undo", headers=AUTH).status_code == 200
    _something_to_undo(client)
    assert client.post("/api/undo", headers={"X-Token": TOKEN}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "127.0.0.2", "localhost:81", ""]
)
def test_a_request_for_another_host_name_is_refused(client, workdir, host):
    # DNS rebinding: evil.example resolved to 127.0.0.1, the browser sends its own name
    _something_to_undo(client)
    before = _snapshot(workdir)
    for method, path in (("GET", "/"), ("GET", "/api/state"), ("GET", "/image/1")):
        response = client.open(path, method=method, headers={**AUTH, "Host": host})
        assert response.status_code == 400, (host, path)
        assert "Host" in response.get_json()["error"]
    assert client.post("/api/undo", headers={**AUTH, "Host": host}).status_code == 400
    assert _snapshot(workdir) == before


def test_only_the_served_address_and_port_are_answered(workdir):
    client = create_app(workdir, TOKEN, port=PORT).test_client()
    for host in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
        assert (
            client.get("/api/state", headers={**AUTH, "Host": f"{host}:{PORT}"}).status_code == 200
        )
    for host in ("127.0.0.1", "localhost", "127.0.0.1:8766", "evil.example:8765", "[::2]:8765"):
        assert client.get("/api/state", headers={**AUTH, "Host": host}).status_code == 400, host
    # a server bound to a specific address answers to it as well
    lan = create_app(workdir, TOKEN, host="192.168.1.5", port=PORT).test_client()
    assert lan.get("/api/state", headers={**AUTH, "Host": f"192.168.1.5:{PORT}"}).status_code == 200
    assert lan.get("/api/state", headers={**AUTH, "Host": f"192.168.1.6:{PORT}"}).status_code == 400


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port of this machine: the same site
        "http://localhost:8888",
        "http://evil.example",
        "https://localhost",
        "null",  # a sandboxed frame or a file
        "http://localhost.evil.example",
    ],
)
def test_a_request_from_another_origin_is_refused(client, workdir, origin):
    _something_to_undo(client)
    before = _snapshot(workdir)
    headers = {**AUTH, "Origin": origin}
    for path, body in CHANGES:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403, path
        assert "another page" in response.get_json()["error"]
    for path in ("/api/state", "/image/1", f"/?token={TOKEN}"):
        assert client.get(path, headers=headers).status_code == 403, path
    assert _snapshot(workdir) == before
    # the page's own origin (the test client's http://localhost) is served
    assert (
        client.post("/api/undo", headers={**AUTH, "Origin": "http://localhost"}).status_code == 200
    )


def test_the_origin_must_be_exactly_the_served_one(workdir):
    client = create_app(workdir, TOKEN, port=PORT).test_client()
    host = {"Host": f"127.0.0.1:{PORT}"}
    assert client.get("/api/state", headers={**AUTH, **host, "Origin": SERVED}).status_code == 200
    for origin in (
        "http://127.0.0.1:8766",
        f"http://localhost:{PORT}",
        f"https://127.0.0.1:{PORT}",
    ):
        response = client.get("/api/state", headers={**AUTH, **host, "Origin": origin})
        assert response.status_code == 403, origin


@pytest.mark.parametrize("site", ["same-site", "cross-site", "something-else"])
def test_a_request_another_site_or_port_sent_is_refused(client, workdir, site):
    # Sec-Fetch-Site: same-site is what another port of 127.0.0.1 gets
    _something_to_undo(client)
    before = _snapshot(workdir)
    headers = {**AUTH, "Sec-Fetch-Site": site}
    for path, body in CHANGES:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403, path
        assert site in response.get_json()["error"]
    image = {**headers, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    assert client.get("/image/1", headers=image).status_code == 403  # an <img> elsewhere
    frame = {**headers, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}
    assert client.get(f"/?token={TOKEN}", headers=frame).status_code == 403  # framed
    assert client.get("/api/state", headers=headers).status_code == 403
    assert _snapshot(workdir) == before
    # following a link to the page is fine: it changes nothing
    link = {**headers, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert client.get(f"/?token={TOKEN}", headers=link).status_code == 200
    for own in ("same-origin", "none"):
        assert client.get("/api/state", headers={**AUTH, "Sec-Fetch-Site": own}).status_code == 200
    assert (
        client.post("/api/undo", headers={**AUTH, "Sec-Fetch-Site": "same-origin"}).status_code
        == 200
    )


def test_the_page_carries_the_token_for_its_header_and_cannot_be_framed(client):
    page = client.get(f"/?token={TOKEN}")
    assert f'<meta name="moby-al-token" content="{TOKEN}">' in page.get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    script = client.get("/static/label.js").get_data(as_text=True)
    assert '"X-Moby-Token": TOKEN' in script and 'credentials: "omit"' in script


def test_huge_negative_and_odd_ids_get_a_4xx_not_a_500(client, workdir):
    before = _snapshot(workdir)
    for path in (
        "/image/99999999999999999999999",
        f"/image/{2**63}",
        f"/image/{2**63 - 1}",
        f"/image/{2**64 + 1}",
        "/image/0",
        "/image/" + "9" * 5000,
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404, path
        assert "error" in response.get_json()
    for image_id in (2**63, 2**64, -(2**63) - 1, 10**30, 2**63 - 1, 0, -1, 10**4000):
        response = client.post(
            "/api/answer", json={"image_id": image_id, "label": "3"}, headers=AUTH
        )
        assert response.status_code == 404, image_id
        assert "no image" in response.get_json()["error"]
    for image_id in (1.5, 1e300, "1", [1], {"id": 1}, None):
        response = client.post(
            "/api/answer", json={"image_id": image_id, "label": "3"}, headers=AUTH
        )
        assert response.status_code == 400, image_id
    odd = [
        json.dumps({"image_id": 1, "label": "\ud800"}),  # a lone surrogate SQLite cannot store
        '{"image_id": 1, "label": "3", "x": ' + "[" * 30000 + "]" * 30000 + "}",  # deep
        '{"image_id": ' + "9" * 5000 + ', "label": "3"}',  # past Python's digit limit
        '{"image_id": NaN, "label": "3"}',
        '{"image_id": 1, "label": "3"',
    ]
    for data in odd:
        response = client.post(
            "/api/answer", data=data, content_type="application/json", headers=AUTH
        )
        assert response.status_code == 400, data[:40]
        assert "error" in response.get_json()
    for n in (10**30, 2**63, 10**4000):
        response = client.post("/api/train", json={"n": n}, headers=AUTH)
        assert response.status_code == 400, n
    assert _snapshot(workdir) == before


def test_an_answer_for_an_image_in_no_batch_is_refused(client, workdir):
    with LabelStore(workdir) as store:
        outside, imported = store.candidates()[:2]  # indexed, never queued
        store.import_labels([(store.image(imported)["path"], "5")])
    before = _snapshot(workdir)
    for label in ("3", None):
        response = client.post(
            "/api/answer", json={"image_id": outside, "label": label}, headers=AUTH
        )
        assert response.status_code == 409
        assert "in no batch" in response.get_json()["error"]
    assert _snapshot(workdir) == before
    # an image with an answer (here imported) may be changed, as the list of answers does
    changed = client.post("/api/answer", json={"image_id": imported, "label": "6"}, headers=AUTH)
    assert changed.status_code == 200
    # and a queued one answered
    assert (
        client.post("/api/answer", json={"image_id": 1, "label": "3"}, headers=AUTH).status_code
        == 200
    )


# ------------------------------------------------------ property-based requests
GOOD_HEADERS = {**AUTH, "Content-Type": "application/json"}
_header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
_ids = st.one_of(
    st.integers(min_value=1, max_value=260),  # mostly real images (240), queued or not
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)
_labels = st.one_of(
    st.sampled_from([*DIGIT_CLASSES.split(","), None]),
    st.text(max_size=12),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_valid = st.fixed_dictionaries(  # images 1 to 5 are queued
    {"image_id": st.integers(1, 5), "label": st.sampled_from([*DIGIT_CLASSES.split(","), None])}
)
_answers = st.one_of(
    _valid,
    _valid,
    st.fixed_dictionaries({"image_id": _ids, "label": _labels}),
    st.fixed_dictionaries({"image_id": _ids}, optional={"label": _labels, "n": _ids}),
    st.dictionaries(st.sampled_from(["image_id", "label", "n", "x"]), _json, max_size=4),
    _json,
)
_trains = st.one_of(st.fixed_dictionaries({"n": _ids}), _answers)
# raw bytes in the body: not JSON, broken JSON, or a JSON text with odd bytes
_raw = st.one_of(st.binary(max_size=64), _json.map(lambda v: json.dumps(v).encode()[:-1]))
_headers = st.one_of(
    st.just(GOOD_HEADERS),
    st.just(GOOD_HEADERS),
    st.just(GOOD_HEADERS),
    st.fixed_dictionaries(
        {},
        optional={
            "X-Moby-Token": st.sampled_from([TOKEN, "", "wrong", TOKEN + " "]) | _header_text,
            "Host": st.sampled_from(["localhost", "127.0.0.1:80", "[::1]", "evil.example"])
            | _header_text,
            "Origin": st.sampled_from(["http://localhost", "null", "http://127.0.0.1:9"])
            | _header_text,
            "Sec-Fetch-Site": st.sampled_from(["same-origin", "same-site", "none"]) | _header_text,
            "Content-Type": st.sampled_from(["application/json", "text/plain"]) | _header_text,
            "Cookie": _header_text.map(lambda v: f"moby_al_token_80={v}"),
            "Content-Length": _header_text,
        },
    ),
)
_segment = st.lists(
    st.sampled_from([*"abz019-_.~%:@!$&'()*+,;=/", "%2e", "%2F", "%00", "..", "%ff", "\u00e9"]),
    max_size=12,
).map("".join)
_paths = st.one_of(
    _ids.map(lambda i: f"/image/{i}"),
    _segment.map(lambda s: f"/image/{s}"),
    _segment.map(lambda s: f"/static/{s}"),
    _segment.map(lambda s: f"/api/{s}"),
    # "//host" would name a host: the test client, not the server, refuses it
    _segment.map(lambda s: f"/{s}").filter(lambda p: not p.startswith("//")),
    st.sampled_from(["/", "/api/state", "/static/label.js", "/image/1", "/labels.sqlite"]),
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no example folder left in the checkout
    derandomize=True,  # the same examples on every run: CI cannot fail by chance
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def busy_workdir(workdir, monkeypatch):
    """The work folder with a training that runs (this process): no request starts one.

    Its heartbeat never goes stale meanwhile: the examples can take longer than
    the timeout, and a heartbeat written between two looks at the database
    would read as a change.
    """
    monkeypatch.setattr("moby_al_plugin.labelling.store.JOB_HEARTBEAT_TIMEOUT_S", 1e9)
    with LabelStore(workdir) as store:
        store.start_job(5, os.getpid())
    return workdir


def _check(client, workdir, method, path, headers, **body):
    before = _whole(workdir)
    response = client.open(path, method=method, headers=headers, **body)
    after = _whole(workdir)
    event(f"{method} {path if path.startswith('/api/') else path[:7]}: {response.status_code}")
    assert response.status_code < 500, (method, path, headers, body, response.data[:200])
    if response.status_code >= 400 and method != "HEAD":
        data = response.get_json(silent=True)
        assert isinstance(data, dict) and data.get("error"), response.data[:200]
    if after != before:
        # only a valid answer or undo changes the database, and it says so
        assert method == "POST" and path in ("/api/answer", "/api/undo"), (path, body)
        assert response.status_code == 200
    return response


@PROPERTY
@given(path=_paths, headers=_headers, method=st.sampled_from(["GET", "HEAD", "POST", "PUT"]))
def test_random_paths_and_headers_never_get_a_5xx(busy_workdir, path, headers, method):
    client = create_app(busy_workdir, TOKEN).test_client()
    _check(client, busy_workdir, method, path, headers)


@PROPERTY
@given(body=_answers, headers=_headers)
def test_random_answers_never_get_a_5xx_and_only_valid_ones_change_anything(
    busy_workdir, body, headers
):
    client = create_app(busy_workdir, TOKEN).test_client()
    response = _check(client, busy_workdir, "POST", "/api/answer", headers, json=body)
    if response.status_code == 200:
        with LabelStore(busy_workdir) as store:
            assert store.queued_or_answered(body["image_id"])
            answers = {a.image_id: a.label for a in store.answers()}
        assert answers[body["image_id"]] == body["label"]


@PROPERTY
@given(
    route=st.sampled_from(["/api/answer", "/api/train", "/api/undo"]), data=_raw, headers=_headers
)
def test_random_bytes_in_a_body_never_get_a_5xx(busy_workdir, route, data, headers):
    client = create_app(busy_workdir, TOKEN).test_client()
    _check(client, busy_workdir, "POST", route, headers, data=data)


@PROPERTY
@given(body=_trains, headers=_headers, answer=_valid)
def test_random_trainings_and_undos_never_get_a_5xx(busy_workdir, body, headers, answer):
    client = create_app(busy_workdir, TOKEN).test_client()
    response = _check(client, busy_workdir, "POST", "/api/train", headers, json=body)
    assert response.status_code != 202  # the training that runs refuses a second one
    # something to undo, then an undo with random headers and body
    assert client.post("/api/answer", json=answer, headers=AUTH).status_code == 200
    _check(client, busy_workdir, "POST", "/api/undo", headers, json=body)


@PROPERTY
@given(image_id=_ids, headers=_headers)
def test_random_image_ids_never_get_a_5xx(busy_workdir, image_id, headers):
    client = create_app(busy_workdir, TOKEN).test_client()
    _check(client, busy_workdir, "GET", f"/image/{image_id}", headers)
    _check(client, busy_workdir, "GET", "/api/state", headers)


def test_redo_through_the_api_needs_the_token_and_something_undone(client, workdir):
    assert client.post("/api/redo", json={}, headers=AUTH).status_code == 409
    client.post("/api/answer", json={"image_id": 3, "label": "1"}, headers=AUTH)
    client.post("/api/answer", json={"image_id": 4, "label": None}, headers=AUTH)
    assert client.post("/api/redo", json={}, headers=AUTH).status_code == 409  # nothing undone
    assert client.post("/api/undo", json={}, headers=AUTH).get_json()["image_id"] == 4
    before = _snapshot(workdir)
    for headers in ({}, {"X-Moby-Token": "wrong"}, {"Origin": "http://127.0.0.1:9999", **AUTH}):
        assert client.post("/api/redo", json={}, headers=headers).status_code == 403, headers
    assert client.post(f"/api/redo?token={TOKEN}", json={}).status_code == 403
    assert _snapshot(workdir) == before
    redone = client.post("/api/redo", json={}, headers=AUTH)
    assert redone.status_code == 200
    assert redone.get_json()["image_id"] == 4
    assert redone.get_json()["counts"]["batch_answered"] == 2
    with LabelStore(workdir) as store:
        assert {a.image_id: a.label for a in store.answers()} == {3: "1", 4: None}
    assert client.post("/api/redo", json={}, headers=AUTH).status_code == 409
    assert client.get("/api/redo", headers=AUTH).status_code == 405


def test_the_page_gets_the_counts_of_every_batch(client, workdir):
    with LabelStore(workdir) as store:
        later = store.candidates()[:3]
        store.add_batch(later, [None] * 3, strategy="random", cold_start=True)
    state = client.get("/api/state", headers=AUTH).get_json()
    assert state["batches"] == [
        {"batch": 1, "size": 5, "answered": 0},
        {"batch": 2, "size": 3, "answered": 0},
    ]
    # the latest batch is not the one answered first: its images wait behind the first's
    first = state["pending"][0]
    assert first["batch"] == 1 and [p["batch"] for p in state["pending"]] == [1] * 5 + [2] * 3
    answered = client.post(
        "/api/answer", json={"image_id": first["image_id"], "label": "2"}, headers=AUTH
    ).get_json()
    assert answered["batches"][0] == {"batch": 1, "size": 5, "answered": 1}
    assert answered["counts"]["batch"] == 2 and answered["counts"]["batch_answered"] == 0
    undone = client.post("/api/undo", json={}, headers=AUTH).get_json()
    assert undone["batches"][0]["answered"] == 0


def test_the_job_message_holds_no_count_that_answers_change(client, workdir):
    with LabelStore(workdir) as store:
        job = store.start_job(5, os.getpid())
        # as next wrote it before: the count of the moment stays on the page
        store.finish_job(job, "done", "queued 5 images in batch 1; 5 waiting for an answer")
    state = client.get("/api/state", headers=AUTH).get_json()
    assert state["job"]["message"] == "queued 5 images in batch 1"


@pytest.mark.parametrize(
    "fault",
    [
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("attempt to write a readonly database"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_work_folder_that_cannot_be_written_is_a_503_and_reads_go_on(
    client, workdir, monkeypatch, fault
):
    def fail(*args, **kwargs):
        raise fault

    monkeypatch.setattr(LabelStore, "answer", fail)
    response = client.post("/api/answer", json={"image_id": 1, "label": "3"}, headers=AUTH)
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("the work folder cannot be written: ")
    assert client.get("/api/state", headers=AUTH).status_code == 200
    assert client.get("/image/1", headers=AUTH).status_code == 200


def test_another_database_error_is_not_called_a_disk_fault(client, monkeypatch):
    def fail(*args, **kwargs):
        raise sqlite3.OperationalError("no such column: nonsense")

    monkeypatch.setattr(LabelStore, "answer", fail)
    client.application.testing = False  # a real server's answer: 500, not the exception
    response = client.post("/api/answer", json={"image_id": 1, "label": "3"}, headers=AUTH)
    assert response.status_code == 500

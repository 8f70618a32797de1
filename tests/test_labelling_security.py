"""Another page of this machine cannot change the labels, in a real browser.

Headless Chromium opens the real labelling page once (and answers a few
images through it), then a hostile page served from another port of
127.0.0.1. That server records what the browser sends it (cookies included)
and replays it to the labelling server from its own process, as a script
would: nothing the browser gave it reads or changes anything. That page tries undo, answer, train
and import by ``fetch`` (no-cors and cors, credentials included),
``sendBeacon``, form posts, image tags and a frame. The database must come
out of it unchanged: the file, checkpointed (``wal_checkpoint(TRUNCATE)``)
with no connection open, byte for byte, and the dump of every table.

Every attempt and what the browser let the hostile page see of it, and
every request the server received with its status, are printed (``pytest
-s`` shows them). Without Chromium, its driver or Selenium the test is
skipped, except on CI.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from moby_al_plugin.cli import main
from moby_al_plugin.labelling import LabelStore
from moby_al_plugin.labelling.server import create_app, make_local_server, make_token

from .conftest import DIGIT_CLASSES
from .test_labelling_browser import (  # noqa: F401 (a fixture)
    WAIT_S,
    Database,
    browser,
    page_helpers,
)

BATCH = 12


class Recorder:
    """WSGI middleware: every request the labelling server got, and its status."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        query = [
            (k, "<token>" if k == "token" else v) for k, v in parse_qsl(environ["QUERY_STRING"])
        ]
        entry = {
            "request": f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
            + (f"?{urlencode(query)}" if query else ""),
            "origin": environ.get("HTTP_ORIGIN", "-"),
            "site": environ.get("HTTP_SEC_FETCH_SITE", "-"),
            "mode": environ.get("HTTP_SEC_FETCH_MODE", "-"),
            "dest": environ.get("HTTP_SEC_FETCH_DEST", "-"),
            # a cookie that holds the token (the page never sets one)
            "cookie": self.token in environ.get("HTTP_COOKIE", ""),
            "header": "HTTP_X_MOBY_TOKEN" in environ,
        }

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, start)
        with self.lock:
            self.log.append(entry)
        return result

    def since(self, start: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log[start:])

    def settled(self, quiet_s: float = 1.0, timeout: float = WAIT_S) -> int:
        """Wait until no request arrived for ``quiet_s``; the number received."""
        deadline = time.monotonic() + timeout
        seen, since = len(self.log), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if len(self.log) != seen:
                seen, since = len(self.log), time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return seen
        raise AssertionError(f"requests still arriving after {timeout} s")


@pytest.fixture
def labelling(tmp_path: Path, digit_image_folder: Any) -> Iterator[tuple[Path, str, Recorder]]:
    """A work folder with a first batch, served as ``serve`` does: (workdir, URL, recorder)."""
    folder, _ = digit_image_folder
    workdir = tmp_path / "work"
    images = ["--images", str(folder), "--classes", DIGIT_CLASSES, "--image-size", "16"]
    assert main(["label", "init", "--workdir", str(workdir), *images]) == 0
    with LabelStore(workdir) as store:
        store.add_batch(
            store.candidates()[:BATCH], [None] * BATCH, strategy="random", cold_start=True
        )
    token = make_token()
    app = create_app(workdir, token, default_n=BATCH)
    server = make_local_server(app, "127.0.0.1", 0)
    recorder = Recorder(app.wsgi_app, token)
    app.wsgi_app = recorder
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield workdir, f"http://127.0.0.1:{server.server_port}/?token={token}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


HOSTILE = """<!doctype html><meta charset="utf-8"><title>hostile</title><body><script>
"use strict";
const T = "__TARGET__", ID = __ID__;
const results = [];
const record = (name, promise) => promise.then(
  (v) => results.push([name, v]), (e) => results.push([name, `rejected: ${e}`]));
async function probe(path, init) {
  const r = await fetch(T + path, {credentials: "include", ...init});
  return r.type === "opaque" ? "opaque response (status hidden)" : `status ${r.status}`;
}
const answer = JSON.stringify({image_id: ID, label: "3"});
const csv = "path,label\\nmore/digit-000.png,3\\n";
const tasks = [];
for (let i = 1; i <= 10; i++) {
  tasks.push(record(`fetch no-cors POST /api/undo #${i}`,
    probe("/api/undo", {method: "POST", mode: "no-cors"})));
}
tasks.push(record("fetch cors POST /api/undo", probe("/api/undo", {method: "POST"})));
tasks.push(record("fetch cors POST /api/undo, X-Moby-Token guessed",
  probe("/api/undo", {method: "POST", headers: {"X-Moby-Token": "guess"}})));
tasks.push(record("fetch no-cors POST /api/answer (text/plain JSON)",
  probe("/api/answer", {method: "POST", mode: "no-cors", body: answer})));
tasks.push(record("fetch no-cors POST /api/answer (asks application/json)",
  probe("/api/answer", {method: "POST", mode: "no-cors", body: answer,
                        headers: {"Content-Type": "application/json"}})));
tasks.push(record("fetch cors POST /api/answer (application/json)",
  probe("/api/answer", {method: "POST", body: answer,
                        headers: {"Content-Type": "application/json"}})));
tasks.push(record("fetch no-cors POST /api/train",
  probe("/api/train", {method: "POST", mode: "no-cors", body: JSON.stringify({n: 6})})));
tasks.push(record("fetch cors POST /api/train (application/json)",
  probe("/api/train", {method: "POST", body: JSON.stringify({n: 6}),
                       headers: {"Content-Type": "application/json"}})));
tasks.push(record("fetch no-cors POST /api/import",
  probe("/api/import", {method: "POST", mode: "no-cors", body: csv})));
tasks.push(record("fetch cors POST /api/import (text/csv)",
  probe("/api/import", {method: "POST", body: csv, headers: {"Content-Type": "text/csv"}})));
tasks.push(record("fetch cors GET /api/state (read it)", probe("/api/state", {})));
results.push(["sendBeacon POST /api/undo",
  navigator.sendBeacon(T + "/api/undo") ? "queued by the browser" : "refused by the browser"]);

let frames = 0;
function framed(setUp) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = `f${++frames}`;
    document.body.append(frame);
    const timer = setTimeout(() => resolve("no load event in 8 s"), 8000);
    frame.addEventListener("load", () => {
      clearTimeout(timer); resolve("the frame loaded (its content hidden from the page)");
    }, {once: true});
    setUp(frame);
  });
}
function form(action, enctype, fields) {
  return framed((frame) => {
    const f = Object.assign(document.createElement("form"),
      {method: "POST", action: T + action, target: frame.name, enctype});
    for (const [name, value] of fields) {
      f.append(Object.assign(document.createElement("input"), {type: "hidden", name, value}));
    }
    document.body.append(f);
    f.submit();
  });
}
tasks.push(record("form POST /api/undo", form("/api/undo", "text/plain", [])));
tasks.push(record("form POST /api/answer (text/plain, JSON body)", form("/api/answer",
  "text/plain", [[`{"image_id": ${ID}, "label": "3", "x": "`, `"}`]])));
tasks.push(record("form POST /api/train (urlencoded)",
  form("/api/train", "application/x-www-form-urlencoded", [["n", "6"]])));
tasks.push(record("form POST /api/import (multipart)",
  form("/api/import", "multipart/form-data", [["file", csv]])));
tasks.push(record("iframe GET / (frame the page)", framed((frame) => { frame.src = T + "/"; })));
function img(path) {
  return new Promise((resolve) => {
    const i = new Image();
    i.onload = () => resolve(`loaded ${i.naturalWidth}x${i.naturalHeight}`);
    i.onerror = () => resolve("error event (no image)");
    i.src = T + path;
  });
}
tasks.push(record(`img GET /image/${ID}`, img(`/image/${ID}`)));
tasks.push(record("img GET /api/undo", img("/api/undo")));
tasks.push(record("img GET /api/state", img("/api/state")));
Promise.all(tasks).then(() => { window.hostile = results; });
</script>
"""


@pytest.fixture
def hostile_server() -> Iterator[Callable[[str, int], str]]:
    """A page on another port of 127.0.0.1 that attacks ``target``: give (target, id), get URL."""
    page: dict[str, Any] = {"received": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            page["received"].append(dict(self.headers.items()))  # all the browser sent here
            body = page.get("html", b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(target: str, image_id: int) -> str:
        html = HOSTILE.replace("__TARGET__", target).replace("__ID__", str(image_id))
        page["html"] = html.encode()
        return f"http://127.0.0.1:{server.server_address[1]}/"

    serve.received = page["received"]  # type: ignore[attr-defined]

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _database(workdir: Path) -> tuple[str, list[str]]:
    """The checkpointed database file's SHA-256 and the dump of every table."""
    path = workdir / "labels.sqlite"
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the checkpoint was blocked by another connection"
        dump = list(conn.iterdump())
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "a WAL with pages after the checkpoint"
    return hashlib.sha256(path.read_bytes()).hexdigest(), dump


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def test_a_page_on_another_port_changes_nothing(
    labelling: tuple[Path, str, Recorder],
    browser: Any,  # noqa: F811 (the fixture imported above)
    hostile_server: Callable[[str, int], str],
    digit_image_folder: Any,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    workdir, url, recorder = labelling
    _, truth = digit_image_folder
    db = Database(workdir)
    keys = db.keys()
    driver = browser

    until, shown = page_helpers(driver)

    def press(key: str) -> None:
        driver.execute_script("document.activeElement.blur();")
        driver.find_element(By.TAG_NAME, "body").send_keys(key)

    # the real page, once: its answers go through
    driver.get(url)
    for _ in range(4):
        image_id = until(shown, "an image on screen")
        label = truth[db.image_path(image_id)]
        press(keys[label])

        def recorded(image_id: int = image_id, label: str = label) -> bool:
            return db.answers().get(image_id, "none") == label

        until(recorded, f"the answer of image {image_id}")
        until(lambda image_id=image_id: shown() != image_id, "the page to move on")
    press(Keys.BACKSPACE)  # the page's undo works too
    until(lambda: len(db.answers()) == 3, "the undo in the database")
    # the database changes before the response is written and recorded: wait for both
    until(
        lambda: any(
            r["request"] == "POST /api/undo" and r["status"] == 200 for r in recorder.since(0)
        ),
        "the page's own undo to be answered 200",
    )
    driver.get("about:blank")  # the page stops polling
    start = recorder.settled()

    answers = db.answers()
    queued = [i for (i,) in db.rows("SELECT image_id FROM queue ORDER BY position")]
    pending = [i for i in queued if i not in answers]
    before = _database(workdir)

    driver.get(hostile_server(url.split("/?")[0], pending[0]))
    outcomes = until(
        lambda: driver.execute_script("return window.hostile || null;"),
        "the hostile page's attempts",
        timeout=60,
    )
    recorder.settled(quiet_s=2.0)
    received = recorder.since(start)
    after = _database(workdir)

    print(f"\nthe hostile page (another port of 127.0.0.1) against {url.split('/?')[0]}:")
    print(
        _table(
            [{"attempt": a, "what the page saw": o} for a, o in outcomes],
            ["attempt", "what the page saw"],
        )
    )
    print("\nwhat the labelling server received, with its answer:")
    print(
        _table(
            received, ["request", "status", "origin", "site", "mode", "dest", "cookie", "header"]
        )
    )
    print(f"\ndatabase file sha256 before {before[0]}\n                    after  {after[0]}")
    print(
        f"dump of every table: {len(before[1])} statements before, {len(after[1])} after, "
        f"{'identical' if before[1] == after[1] else 'DIFFERENT'}"
    )

    assert len(outcomes) >= 25
    assert received, "no hostile request reached the server"
    assert all(400 <= r["status"] < 500 for r in received), json.dumps(received, indent=1)
    # the attempts did arrive, and no cookie of this host carries the token
    undos = [r for r in received if r["request"] == "POST /api/undo"]
    assert len(undos) >= 10 and not any(r["cookie"] for r in received)
    assert not any(r["header"] for r in received if r["request"].startswith("POST"))
    assert after[1] == before[1]
    assert after[0] == before[0]
    assert db.answers() == answers

    # the other port's server replays, from its own process, all the browser sent it
    sent_there = hostile_server.received
    assert sent_there, "the browser sent nothing to the other port"
    token = url.split("token=")[1]
    assert not any(token in value for headers in sent_there for value in headers.values())
    base = url.split("/?")[0]
    replies = []
    for headers in sent_there:
        kept = {k: v for k, v in headers.items() if k.lower() in ("cookie", "user-agent")}
        for method, path in (("GET", "/api/state"), ("GET", f"/image/{pending[0]}"),
                             ("POST", "/api/undo")):  # fmt: skip
            request = urllib.request.Request(base + path, method=method, headers=kept)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    replies.append(response.status)
            except urllib.error.HTTPError as error:
                replies.append(error.code)
    print(f"\nreplayed by the other port's server: {len(replies)} requests, statuses {replies}")
    assert replies and all(status == 403 for status in replies)
    assert _database(workdir) == before

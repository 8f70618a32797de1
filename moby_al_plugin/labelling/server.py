"""The local labelling page: a Flask app over a work folder's database.

Every request needs the token printed with the URL: as a ``token`` query
parameter (the URL that ``serve`` prints opens the page) or an
``X-Moby-Token`` header (the page sends it with every request it makes,
images included). Images are served by id only, never by path. Answers are
committed when they arrive. "Train and query" runs ``moby-al label next``
in a separate process, so the page keeps taking answers while the network
trains.

The page trusts nobody but its user. No cookie holds the token: browsers
send the cookies of a host to every port of it, so a server on another port
of this machine would receive it. The token lives in the page itself, which
only a page of the same origin (this port) can read, and goes out only in
the header, which a page of another origin cannot add without a CORS
preflight that this server never grants. Requests whose ``Host`` is not the
served address (DNS rebinding), whose ``Origin`` is not exactly the served
origin, or whose ``Sec-Fetch-Site`` says another site or port sent them are
refused. The log never shows the token: request lines are written with it
blanked.
"""

from __future__ import annotations

import hmac
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, jsonify, request, send_file
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .folder import verify_image
from .stopping_history import stopping_summary
from .store import (
    ImageChangedError,
    LabellingError,
    LabelStore,
    UnknownImageError,
    unwritable,
)

__all__ = [
    "TOKEN_HEADER",
    "allowed_hosts",
    "create_app",
    "make_local_server",
    "make_token",
]

TOKEN_HEADER = "X-Moby-Token"
_OLD_TOKEN_HEADER = "X-Token"  # still read: scripts written before X-Moby-Token use it
_STATIC = Path(__file__).with_name("static")
_RECENT = 200
_EXAMPLES = 4
_MAX_ID = 2**63 - 1  # SQLite's largest integer: no image has a larger id
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS = ("", "0.0.0.0", "::")
_SAFE_METHODS = ("GET", "HEAD")
# Sec-Fetch-Site values of the page itself ("none": the user typed or pasted the URL)
_OWN_SITE = ("same-origin", "none")
_TOKEN_META = '<meta name="moby-al-token" content="">'
# the end of the message that older versions of next wrote: a count of the moment
_OLD_WAITING = re.compile(r"; \d+ waiting for an answer$")


def make_token() -> str:
    """A random token for the page's URL (as Jupyter prints one)."""
    return secrets.token_urlsafe(24)


def allowed_hosts(host: str, port: int | None) -> frozenset[str]:
    """The ``Host`` header values a server bound to ``host:port`` answers (lower case).

    The loopback names with the port, and the bound address itself when it
    is a specific one; a port of None stands for 80, which a ``Host`` may
    leave out. Any other name (``evil.example`` resolved to 127.0.0.1 by a
    DNS rebinding) is refused.
    """
    port = 80 if port is None else int(port)
    names = set(_LOOPBACK)
    if host not in _ANY_ADDRESS:
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(h.lower() for h in hosts)


def _same_token(given: str | None, token: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


# a token in a logged URL: the query parameter's value, whatever it holds
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"]*", re.IGNORECASE)


def redact_token(text: str) -> str:
    """``text`` with the value of every ``token=`` parameter blanked."""
    return _TOKEN_IN_TEXT.sub(r"\1<hidden>", text)


class _QuietHandler(WSGIRequestHandler):
    # a line per answer would bury what matters: only failed requests are logged
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        # every line werkzeug writes (requests and errors) goes through here
        super().log(type, "%s", redact_token(message % args if args else message))


def make_local_server(app: Flask, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded WSGI server for ``app`` (port 0: a free one, read ``server_port``).

    The app then answers only to this address and port (``Host`` and
    ``Origin`` follow them).
    """
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    app.config.update(MOBY_AL_HOST=host, MOBY_AL_PORT=server.server_port)
    return server


def create_app(
    workdir: str | Path,
    token: str,
    *,
    next_options: Sequence[str] = (),
    default_n: int = 50,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> Flask:
    """The labelling page and its JSON API for the work folder ``workdir``.

    Parameters
    ----------
    workdir : str or path
        A folder made by ``moby-al label init``.
    token : str
        The secret every request must carry.
    next_options : sequence of str
        Extra options of the ``moby-al label next`` run that "train and
        query" starts (``--strategy``, ``--epochs``, ...).
    default_n : int
        The batch size offered on the page.
    host, port : str and int or None
        The address the page is served on; requests whose ``Host`` or
        ``Origin`` name another are refused. :func:`make_local_server` sets
        them to the address it binds. A port of None stands for 80 (as a
        test client without a port sends).
    """
    workdir = Path(workdir)
    LabelStore(workdir).close()  # a clear error now rather than at the first request
    app = Flask(__name__, static_folder=str(_STATIC), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, MOBY_AL_HOST=host, MOBY_AL_PORT=port)
    # the last training started, kept to reap it (no zombie) once it ends
    training: dict[str, subprocess.Popen | None] = {"process": None}

    def store() -> LabelStore:
        if "store" not in g:
            g.store = LabelStore(workdir)
        return g.store

    @app.teardown_appcontext
    def close_store(exc: BaseException | None) -> None:
        opened = g.pop("store", None)
        if opened is not None:
            opened.close()

    def refuse(status: int, message: str) -> Any:
        return jsonify(error=message), status

    @app.before_request
    def check_request() -> Any:
        served_port = app.config["MOBY_AL_PORT"]
        hosts = allowed_hosts(app.config["MOBY_AL_HOST"], served_port)
        host = request.headers.get("Host", "").lower()
        if host not in hosts:
            # a DNS rebinding: another name that resolves to this address
            return refuse(
                400, f"this page answers only to {', '.join(sorted(hosts))}, not Host {host!r}"
            )
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return refuse(
                403, f"a request from another page ({origin!r}) is refused; use the page itself"
            )
        site = request.headers.get("Sec-Fetch-Site")
        # following a link to the page (not framing it) is fine from anywhere: it changes
        # nothing, and the page then acts only on its user's keys and clicks
        navigation = (
            request.method == "GET"
            and request.path == "/"
            and request.headers.get("Sec-Fetch-Mode") == "navigate"
            and request.headers.get("Sec-Fetch-Dest") == "document"
        )
        if site is not None and site not in _OWN_SITE and not navigation:
            return refuse(
                403, f"a request sent by another site or port ({site}) is refused; use the page"
            )
        header = request.headers.get(TOKEN_HEADER) or request.headers.get(_OLD_TOKEN_HEADER)
        if request.method not in _SAFE_METHODS:
            # a change needs the header, which a link, form or image of another page cannot add
            if not _same_token(header, token):
                return refuse(
                    403,
                    f"a change needs the token in the {TOKEN_HEADER} header; open the URL "
                    "that serve printed",
                )
            return None
        if request.path.startswith("/static/"):
            return None  # the page's script and style: the same for everyone, no secret
        # never a cookie: another port of this host would receive it
        given = request.args.get("token") or header
        if not _same_token(given, token):
            return refuse(403, "missing or wrong token; open the URL that serve printed")
        return None

    @app.after_request
    def no_cache(response: Any) -> Any:
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        # no other page may frame this one (and have its user click in it)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.description), exc.code

    @app.errorhandler(sqlite3.OperationalError)
    @app.errorhandler(OSError)
    def disk_fault(exc: Exception) -> Any:
        if not unwritable(exc):
            raise exc  # a bug, not the disk: Flask's 500 with its traceback in the log
        # the page shows the message; reads (/api/state, images) go on answering
        return jsonify(error=f"the work folder cannot be written: {exc}"), 503

    @app.errorhandler(LabellingError)
    def bad_request(exc: LabellingError) -> Any:
        status = 400
        if isinstance(exc, UnknownImageError):
            status = 404
        elif isinstance(exc, ImageChangedError):
            status = 409
        return jsonify(error=str(exc)), status

    def body() -> dict:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the JSON parser goes
            data = None
        if not isinstance(data, dict):
            abort(400, "the body must be a JSON object")
        return data

    html = (_STATIC / "index.html").read_text(encoding="utf-8")
    if _TOKEN_META not in html:
        raise RuntimeError(f"index.html lacks {_TOKEN_META}")
    # the page reads the token here for its header; other pages cannot read this page
    html = html.replace(_TOKEN_META, f'<meta name="moby-al-token" content="{escape(token)}">')

    @app.get("/")
    def page() -> Any:
        response = Response(html, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/image/<int:image_id>")
    def image(image_id: int) -> Any:
        if not 0 < image_id <= _MAX_ID:
            abort(404, f"no image with id {_short(image_id)}")
        row = store().image(image_id)
        root = store().images_root.resolve()
        path = (root / row["path"]).resolve()
        if not path.is_relative_to(root):
            abort(404, "not an image of this folder")
        try:
            stat = path.stat()
            unchanged = (stat.st_size, stat.st_mtime_ns) == (row["bytes"], row["mtime_ns"])
        except OSError:
            unchanged = False
        if row["state"] != "ok" or not unchanged:
            # hash this file again: only a different content makes it another image
            if verify_image(store(), image_id) != "ok":
                raise ImageChangedError(f"image {image_id} changed on disk since init")
        return send_file(path, max_age=0)

    @app.get("/api/state")
    def state() -> Any:
        process = training["process"]
        if process is not None and process.poll() is not None:
            training["process"] = None  # reaped: no zombie left behind
        return jsonify(_state(store(), default_n))

    @app.post("/api/answer")
    def answer() -> Any:
        data = body()
        label = data.get("label")
        if "image_id" not in data or "label" not in data:
            abort(400, "an answer needs 'image_id' and 'label' (a class name, or null to skip)")
        image_id = data["image_id"]
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            abort(400, f"'image_id' must be an integer id, got {_short(image_id)}")
        if label is not None and not _text(label):
            abort(400, f"'label' must be a class name or null, got {_short(label)}")
        if not 0 < image_id <= _MAX_ID:
            abort(404, f"no image with id {_short(image_id)}")
        store().image(image_id)  # 404 for an id without an image
        if not store().queued_or_answered(image_id):
            abort(
                409,
                f"image {image_id} is in no batch: the page answers the images queued for it "
                "(or changes an earlier answer)",
            )
        # the file as it is now, as for a fetched image: an answer to a file replaced since
        # it was queued would label what the person never saw (skipping it is fine)
        if label is not None and verify_image(store(), image_id) != "ok":
            raise ImageChangedError(f"image {image_id} changed on disk since it was queued")
        at = store().answer(image_id, label)
        return jsonify(
            image_id=image_id,
            label=label,
            answered_at=at,
            counts=_counts(store()),
            batches=_batches(store()),
        )

    @app.post("/api/undo")
    def undo() -> Any:
        image_id = store().undo()
        if image_id is None:
            abort(409, "nothing to undo")
        return jsonify(image_id=image_id, counts=_counts(store()), batches=_batches(store()))

    @app.post("/api/redo")
    def redo() -> Any:
        image_id = store().redo()
        if image_id is None:
            abort(409, "nothing to redo")
        return jsonify(image_id=image_id, counts=_counts(store()), batches=_batches(store()))

    @app.post("/api/train")
    def train() -> Any:
        data = body()
        n = data.get("n", default_n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            abort(400, f"'n' must be a positive integer, got {_short(n)}")
        if n > _MAX_ID:  # past what the jobs table holds
            abort(400, f"'n' must be at most {_MAX_ID}, got {_short(n)}")
        # the job row comes first: a second request meanwhile finds it and is refused
        try:
            job_id = store().start_job(n, None)
        except LabellingError as exc:
            abort(409, str(exc))
        log_dir = workdir / "logs"
        log_dir.mkdir(exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "moby_al_plugin",
            "label",
            "next",
            "--workdir",
            str(workdir),
            "--n",
            str(n),
            "--job",
            str(job_id),
            *next_options,
        ]
        with open(log_dir / f"job-{job_id}.log", "ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        store().adopt_job(job_id, process.pid)
        training["process"] = process
        return jsonify(job=job_id, state="running"), 202

    return app


def _text(value: Any) -> bool:
    """A string SQLite can store (no lone surrogate from a JSON escape)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: Any, limit: int = 80) -> str:
    """A value for an error message, cut short (a body may hold 64 KiB)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, deep nesting
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _counts(store: LabelStore, n_pending: int | None = None) -> dict[str, Any]:
    counts = store.status_counts(pending=n_pending)
    return {
        "labelled": counts.labelled,
        "skipped": counts.skipped,
        "images": counts.images,
        "usable": counts.usable,
        "pending": counts.pending,
        "batch": counts.batch,
        "batch_size": counts.batch_size,
        "batch_answered": counts.batch_answered,
        "budget": counts.budget,
    }


def _batches(store: LabelStore) -> list[dict[str, int]]:
    """Each batch's size and answers: the page counts the batch on screen, not the latest."""
    return [
        {"batch": batch, "size": size, "answered": answered}
        for batch, size, answered in store.batch_counts()
    ]


def _state(store: LabelStore, default_n: int) -> dict[str, Any]:
    classes = store.class_table()
    names = {class_id: name for class_id, name, _ in classes}
    histogram = store.class_histogram()
    examples = store.class_examples(_EXAMPLES)
    recent = store.recent_answers(_RECENT)
    store.close_stopped_jobs()  # a job whose process died shows as failed
    job = store.active_job() or store.last_job()
    pending = store.pending()
    return {
        "classes": [
            {"name": name, "key": key, "examples": examples[name]} for _, name, key in classes
        ],
        "pending": [
            {
                "image_id": int(r["image_id"]),
                "batch": int(r["batch_id"]),
                "suggestion": None if r["suggestion"] is None else names[int(r["suggestion"])],
            }
            for r in pending
        ],
        "recent": [
            {"image_id": a.image_id, "label": a.label, "answered_at": a.answered_at} for a in recent
        ],
        "counts": _counts(store, len(pending)),
        "batches": _batches(store),
        # a JSON object comes back in key order (and a browser puts names like "10"
        # first): the page draws it in the order of "classes"
        "histogram": histogram,
        "job": None
        if job is None
        else {
            "id": job["id"],
            "state": job["state"],
            "progress": job["progress"],
            "message": _OLD_WAITING.sub("", job["message"]),
            "size": job["size"],
        },
        "default_n": default_n,
        "stopping": stopping_summary(store),
    }

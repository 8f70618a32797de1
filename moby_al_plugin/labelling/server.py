"""The local labelling page: a Flask app over a work folder's database.

Every request needs the token printed with the URL (as a ``token`` query
parameter, an ``X-Token`` header, or the cookie the page sets); images are
served by id only, never by path. Answers are committed when they arrive.
"Train and query" runs ``moby-al label next`` in a separate process, so
the page keeps taking answers while the network trains.
"""

from __future__ import annotations

import hmac
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .folder import verify_image
from .store import ImageChangedError, LabellingError, LabelStore, UnknownImageError

__all__ = ["COOKIE", "create_app", "make_local_server", "make_token"]

COOKIE = "moby_al_token"
_STATIC = Path(__file__).with_name("static")
_RECENT = 200
_EXAMPLES = 4


def make_token() -> str:
    """A random token for the page's URL (as Jupyter prints one)."""
    return secrets.token_urlsafe(24)


class _QuietHandler(WSGIRequestHandler):
    # a line per answer would bury what matters: only failed requests are logged
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)


def make_local_server(app: Flask, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded WSGI server for ``app`` (port 0: a free one, read ``server_port``)."""
    return make_server(host, port, app, threaded=True, request_handler=_QuietHandler)


def create_app(
    workdir: str | Path,
    token: str,
    *,
    next_options: Sequence[str] = (),
    default_n: int = 50,
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
    """
    workdir = Path(workdir)
    LabelStore(workdir).close()  # a clear error now rather than at the first request
    app = Flask(__name__, static_folder=str(_STATIC), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
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

    @app.before_request
    def check_token() -> Any:
        given = (
            request.args.get("token")
            or request.headers.get("X-Token")
            or request.cookies.get(COOKIE)
            or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            return jsonify(error="missing or wrong token; open the URL that serve printed"), 403
        return None

    @app.after_request
    def no_cache(response: Any) -> Any:
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.description), exc.code

    @app.errorhandler(LabellingError)
    def bad_request(exc: LabellingError) -> Any:
        status = 400
        if isinstance(exc, UnknownImageError):
            status = 404
        elif isinstance(exc, ImageChangedError):
            status = 409
        return jsonify(error=str(exc)), status

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, "the body must be a JSON object")
        return data

    @app.get("/")
    def page() -> Any:
        response = send_file(_STATIC / "index.html", mimetype="text/html", max_age=0)
        if request.args.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    @app.get("/image/<int:image_id>")
    def image(image_id: int) -> Any:
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
        if label is not None and not isinstance(label, str):
            abort(400, f"'label' must be a class name or null, got {label!r}")
        at = store().answer(data["image_id"], label)
        return jsonify(
            image_id=data["image_id"], label=label, answered_at=at, counts=_counts(store())
        )

    @app.post("/api/undo")
    def undo() -> Any:
        image_id = store().undo()
        if image_id is None:
            abort(409, "nothing to undo")
        return jsonify(image_id=image_id, counts=_counts(store()))

    @app.post("/api/train")
    def train() -> Any:
        data = body()
        n = data.get("n", default_n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            abort(400, f"'n' must be a positive integer, got {n!r}")
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


def _state(store: LabelStore, default_n: int) -> dict[str, Any]:
    classes = store.class_table()
    names = {class_id: name for class_id, name, _ in classes}
    histogram = store.class_histogram()
    examples = store.class_examples(_EXAMPLES)
    recent = store.recent_answers(_RECENT)
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
        "histogram": histogram,
        "job": None
        if job is None
        else {
            "id": job["id"],
            "state": job["state"],
            "progress": job["progress"],
            "message": job["message"],
            "size": job["size"],
        },
        "default_n": default_n,
    }

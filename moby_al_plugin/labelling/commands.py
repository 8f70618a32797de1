"""``moby-al label``: init, serve, next, status, export and import over a work folder."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import ipaddress
import os
import shutil
import sqlite3
import sys
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._atomic import atomic_write
from ..hardware import DEFAULT_PRECISION, PRECISIONS

# the image reading (PIL) and the training (torch) are imported by the
# subcommands that use them: the parser and status, export and import start at once
from .spreadsheet_cells import neutralise, restore
from .stopping_history import stopping_summary
from .store import JOB_HEARTBEAT_TIMEOUT_S, LabellingError, LabelStore, unwritable
from .training import DEFAULT_STRATEGY, LABEL_STRATEGIES, RoundSettings

__all__ = [
    "DEFAULT_KEYS",
    "JOB_HEARTBEAT_INTERVAL_S",
    "WEIGHTS_HELP",
    "add_label_command",
    "class_folder_name",
    "class_from_folder_name",
    "job_heartbeat",
    "run_label_command",
]

#: Keys of the classes in order: number keys first, as in Prodigy.
DEFAULT_KEYS = tuple("1234567890qwertyuiopasdfghjklzxcvbnm")
_RESERVED_KEYS = (" ", "Backspace")
#: Seconds between two heartbeats of a running ``next``; well below
#: :data:`~moby_al_plugin.labelling.store.JOB_HEARTBEAT_TIMEOUT_S`, so that a
#: busy machine can delay a few without the job counting as dead.
JOB_HEARTBEAT_INTERVAL_S = 5.0
# the characters that class_folder_name percent-encodes (besides a leading dot)
_FOLDER_ESCAPES = {"%": "%25", "/": "%2F", "\\": "%5C"}
#: Help of ``--weights``, the same for every ``moby-al`` command that trains.
WEIGHTS_HELP = (
    "pretrained weights the backbone starts from: a torchvision weights name of a torchvision "
    "--backbone (DEFAULT, IMAGENET1K_V1, ...; downloaded into torch's cache the first time, "
    "which needs internet once; inputs are then resized to the weights' size, 224x224 for "
    "most, and normalised as they were trained: slower on a CPU) or a state-dict file "
    "(torch.save(model.state_dict(), FILE)) that fits the backbone (default: none, random "
    "initialisation)"
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strategy",
        choices=sorted(LABEL_STRATEGIES),
        default=DEFAULT_STRATEGY,
        help="how the batch is chosen (default: %(default)s, typicality while labels per class "
        "are few, then diverse margin: the best strategy of the selection benchmark)",
    )
    parser.add_argument("--backbone", default="small_cnn", help="encoder (default: %(default)s)")
    parser.add_argument("--weights", default=None, metavar="NAME_OR_FILE", help=WEIGHTS_HELP)
    parser.add_argument(
        "--epochs",
        type=_positive,
        default=10,
        help="epochs the fine-tuning is split into; it sees as many samples as "
        "the library's converged rule says, whatever the number "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--train-samples",
        default="auto",
        type=lambda t: t if t == "auto" else _positive(t),
        help="labelled samples the fine-tuning sees (default: %(default)s, the "
        "library's converged rule)",
    )
    parser.add_argument(
        "--encoder",
        default=None,
        metavar="FILE",
        help="a pretrained MoBYEncoder file (for example from `moby-al pretrain`, one or "
        "several processes) used instead of pretraining on the folder; its image size and "
        "channels must be the folder's",
    )
    parser.add_argument(
        "--pretrain-epochs",
        type=_positive,
        default=None,
        help="pretraining epochs (default: 25 views per image, at least 10,000 and at most "
        "40,000 views in all, in whole epochs: 100 images 100 epochs, 400 images 25, "
        "10,000 images 4)",
    )
    parser.add_argument(
        "--first-leg-samples",
        default=25_000,
        type=lambda t: None if t == "none" else _positive(t),
        help="fine-tuning samples run before the batch is chosen; the rest of the round's "
        "fine-tuning runs after the batch is on the page, while you label ('none': all "
        "before; default: %(default)s)",
    )
    parser.add_argument(
        "--graph-labels",
        type=float,
        default=RoundSettings.graph_labels,
        metavar="SHARE",
        help="share of the unlabelled images that join the fine-tuning with the label the "
        "folder's kNN graph spreads to them, surest first, at the cost of a plain "
        "fine-tuning (0: off; default: %(default)s)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="bf16: bfloat16 autocast; auto: bf16 where the CPU or GPU has it natively "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch threads (default: the machine's cores, or OMP_NUM_THREADS when set)",
    )


def add_label_command(commands: Any) -> list[argparse.ArgumentParser]:
    """Add ``label`` and its subcommands to the ``moby-al`` parser's subparsers.

    Returns the ``label`` parser and its subcommands' parsers.
    """
    label = commands.add_parser(
        "label",
        help="label your own images in a local web page, with active learning",
        description="Label a folder of images: init indexes it, next chooses the images "
        "to label, serve shows them in a local page (one key per class, undo, train and query "
        "in the background), export writes the answers. Every answer is saved when it is given.",
    )
    sub = label.add_subparsers(dest="label_command", metavar="SUBCOMMAND", required=True)

    parsers = [label]

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parsers.append(parser)
        parser.add_argument(
            "--workdir", default=".", help="the work folder (default: the current folder)"
        )
        return parser

    init = command("init", "index an image folder and start a work folder")
    init.add_argument("--images", required=True, help="folder of images (searched recursively)")
    init.add_argument(
        "--classes",
        required=True,
        help="class names, comma-separated, or a file with one name a line",
    )
    init.add_argument(
        "--keys",
        default=None,
        help="one key per class, comma-separated (default: 1..9, 0, then letters)",
    )
    init.add_argument("--labels", default=None, help="CSV (path,label) of labels already known")
    init.add_argument(
        "--image-size",
        type=_positive,
        default=32,
        help="side of the square the images are resized to (default: %(default)s)",
    )
    init.add_argument(
        "--budget", type=_positive, default=None, help="labels you plan to give, shown on the page"
    )

    serve = command("serve", "show the images to label in a local web page")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8765, help="port (default: %(default)s; 0 picks a free one)"
    )
    serve.add_argument(
        "--n", type=_positive, default=50, help="batch size the page offers (default: %(default)s)"
    )
    _add_training_options(serve)

    nxt = command("next", "train on the labels so far and queue the next batch")
    nxt.add_argument(
        "--n", type=_positive, default=50, help="images to queue (default: %(default)s)"
    )
    nxt.add_argument("--job", type=int, default=None, help=argparse.SUPPRESS)
    _add_training_options(nxt)
    nxt.add_argument(
        "--warm-start",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the model of the last next, with the share of new answers of "
        "the fine-tuning samples (at least a quarter); --no-warm-start fine-tunes the encoder "
        "anew (default: warm start)",
    )
    nxt.epilog = (
        "The encoder is pretrained once per folder (cached in WORKDIR/cache) on "
        "clip(25 x images, 10,000, 40,000) augmented views, in whole epochs (1 to 200): 400 "
        "images take 25 epochs, 10,000 images 4. The fine-tuned model is kept there too; "
        "a changed class list or encoder starts again from the encoder."
    )

    command("status", "images, answers, batches and training of the work folder")

    export = command("export", "write the answers as a CSV or as a folder per class")
    export.add_argument("--format", choices=("csv", "folders"), default="csv")
    export.add_argument(
        "--output",
        default="-",
        help="CSV file ('-': standard output) or, for folders, the new folder",
    )

    imp = command("import", "add labels from a CSV with columns path,label")
    imp.add_argument("file", help="CSV file with a header naming path and label")
    return parsers


def run_label_command(args: argparse.Namespace) -> int:
    """Run the ``label`` subcommand in ``args``; returns the exit status."""
    handler = {
        "init": _init,
        "serve": _serve,
        "next": _next,
        "status": _status,
        "export": _export,
        "import": _import,
    }[args.label_command]
    try:
        return handler(args)
    except (OSError, sqlite3.OperationalError) as exc:
        if not unwritable(exc):
            raise
        raise LabellingError(f"the work folder cannot be written: {exc}") from exc


# ------------------------------------------------------------------ init
#: The longest class name: it must fit every export (a folder name is 255 bytes at most).
MAX_CLASS_NAME = 100


def _class_names(text: str) -> list[str]:
    path = Path(text)
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n]
    else:
        names = [n.strip() for n in text.split(",")]
    if any(not n for n in names):
        raise LabellingError(f"--classes holds an empty name: {text!r}")
    if len(set(names)) != len(names):
        raise LabellingError(f"--classes names a class twice: {names}")
    if len(names) < 2:
        raise LabellingError(
            f"at least two classes are needed to label anything, got {names}; give them as "
            "--classes cat,dog or as a file with one name a line"
        )
    for name in names:
        # '/', '\\' and dots are fine: class_folder_name escapes them for the folders export
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
            raise LabellingError(
                f"class name {name!r} holds a control character or a line separator (a tab, "
                "a line break, U+2028, ...); class names are one line of visible text"
            )
        if len(name) > MAX_CLASS_NAME or len(class_folder_name(name).encode("utf-8")) > 255:
            raise LabellingError(
                f"class name {name[:40]!r}... is too long: at most {MAX_CLASS_NAME} characters, "
                "and its folder name in a folders export at most 255 bytes"
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise LabellingError(
                f"class name {name!r} is not valid text (bytes that are not UTF-8)"
            ) from None
    return names


def class_folder_name(name: str) -> str:
    """The folder that ``export --format folders`` writes a class's images to.

    The class name, percent-encoded where it could not be one folder's
    name as it is: ``%`` becomes ``%25``, ``/`` ``%2F``, ``\\`` ``%5C``, and a
    leading ``.`` ``%2E`` (so that no folder is hidden, ``.`` or ``..``).
    Every other character stays, so ``T-shirt/top`` becomes
    ``T-shirt%2Ftop`` and ``cat`` stays ``cat``.
    :func:`class_from_folder_name` (or :func:`urllib.parse.unquote`) gives
    the name back.

    Parameters
    ----------
    name : str
        A class name (not empty).

    Returns
    -------
    str
        The folder name.
    """
    folder = "".join(_FOLDER_ESCAPES.get(ch, ch) for ch in name)
    return "%2E" + folder[1:] if folder.startswith(".") else folder


def class_from_folder_name(folder: str) -> str:
    """The class name of a folder written by ``export --format folders``.

    The inverse of :func:`class_folder_name`: every ``%XX`` (two
    hexadecimal digits) is the character of that code.

    Parameters
    ----------
    folder : str
        A folder name made by :func:`class_folder_name`.

    Returns
    -------
    str
        The class name.
    """
    from urllib.parse import unquote

    return unquote(folder, errors="strict")


def _class_keys(text: str | None, n: int) -> list[str]:
    if text is None:
        if n > len(DEFAULT_KEYS):
            raise LabellingError(
                f"{n} classes need --keys: there are {len(DEFAULT_KEYS)} default keys"
            )
        return list(DEFAULT_KEYS[:n])
    keys = [k.strip() for k in text.split(",")]
    if len(keys) != n or len(set(keys)) != n or any(len(k) != 1 for k in keys):
        raise LabellingError(f"--keys needs {n} different single characters, got {keys}")
    if any(k in _RESERVED_KEYS for k in keys):
        raise LabellingError("space skips and backspace undoes: they cannot be class keys")
    return keys


def _read_label_csv(path: str | os.PathLike) -> list[tuple[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise LabellingError(f"labels file not found: {file}")
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise LabellingError(
                f"{file}: the first line must name the columns, with 'path' and 'label' among "
                f"them; got {reader.fieldnames}"
            )
        # exports quote cells a spreadsheet would run as formulas; one quote comes off
        return [(restore(row["path"] or ""), restore(row["label"] or "")) for row in reader]


def _init(args: argparse.Namespace) -> int:
    classes = _class_names(args.classes)
    keys = _class_keys(args.keys, len(classes))
    known = _read_label_csv(args.labels) if args.labels else []
    workdir = Path(args.workdir)
    if (workdir / "labels.sqlite").exists():
        raise LabellingError(f"{workdir} already holds a labelling database")
    from .folder import index_folder

    print(f"indexing {args.images} ...", flush=True)
    index = index_folder(
        args.images, progress=lambda done, total: print(f"  {done} of {total} files", flush=True)
    )
    meta = {
        "images_root": os.path.abspath(args.images),
        "image_size": args.image_size,
        "mode": "L" if index.single_channel else "RGB",
        **({"budget": args.budget} if args.budget else {}),
    }
    store = LabelStore.create(
        workdir,
        classes=classes,
        keys=keys,
        meta=meta,
        images=index.images,
        unreadable=index.unreadable,
    )
    try:
        with store:
            imported = store.import_labels(known) if known else 0
    except LabellingError:
        # a bad labels file leaves no half-made work folder behind
        store.remove()
        raise
    lines = [
        f"{len(index.images)} images indexed ({meta['mode']}, resized to "
        f"{args.image_size}x{args.image_size} for training); classes: "
        + ", ".join(f"{k} {n}" for k, n in zip(keys, classes)),
    ]
    if imported:
        lines.append(f"{imported} known labels imported from {args.labels}")
    if index.unreadable:
        lines.append(f"{len(index.unreadable)} files could not be read and are left out:")
        lines += [f"  {path}: {reason}" for path, reason in index.unreadable]
    if index.duplicates:
        lines.append(f"{len(index.duplicates)} groups of files have the same content:")
        lines += ["  " + " = ".join(group) for group in index.duplicates]
    if index.ignored:
        lines.append(f"{len(index.ignored)} files are not images and are ignored")
    report = "\n".join(lines)
    (workdir / "init-report.txt").write_text(report + "\n", encoding="utf-8")
    print(report)
    print(f"next: moby-al label serve --workdir {workdir}")
    return 0


# ----------------------------------------------------------------- serve
def _training_options(args: argparse.Namespace) -> list[str]:
    options = [
        "--strategy",
        args.strategy,
        "--backbone",
        args.backbone,
        "--epochs",
        str(args.epochs),
        "--train-samples",
        str(args.train_samples),
        "--precision",
        args.precision,
        "--first-leg-samples",
        "none" if args.first_leg_samples is None else str(args.first_leg_samples),
        "--graph-labels",
        str(args.graph_labels),
    ]
    if args.threads is not None:
        options += ["--threads", str(args.threads)]
    if args.pretrain_epochs is not None:
        options += ["--pretrain-epochs", str(args.pretrain_epochs)]
    if args.encoder is not None:
        options += ["--encoder", str(Path(args.encoder).resolve())]
    if args.weights is not None:  # a file by its absolute path, a name as it is
        weights = Path(args.weights)
        options += ["--weights", str(weights.resolve()) if weights.is_file() else args.weights]
    return options


#: Held by the one ``serve`` of a work folder; it names that serve's page.
SERVE_LOCK = "serve.lock"


@contextlib.contextmanager
def _only_serve(workdir: Path) -> Iterator[Any]:
    """Hold the work folder's serve lock, or refuse: one page per work folder.

    Two pages on one folder would show the same queued images to two people,
    and each would count the other's answers as arriving from nowhere; a
    second serve is refused rather than warned about. The lock is the
    operating system's (``flock``): a serve that was killed holds nothing.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock, no check
        fcntl = None
    if fcntl is None or not (Path(workdir) / "labels.sqlite").is_file():
        yield None  # not a work folder: serve says so in its own words
        return
    handle = open(Path(workdir) / SERVE_LOCK, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LabellingError(
                f"{workdir} is already served by {holder}; use that page, or stop that serve "
                "first (two pages on one work folder would show the same images to two people)"
            ) from None
        yield handle
    finally:
        handle.close()  # releases the lock


def _serve(args: argparse.Namespace) -> int:
    with _only_serve(Path(args.workdir)) as lock:
        return _serve_locked(args, lock)


def _serve_locked(args: argparse.Namespace, lock: Any) -> int:
    from .server import create_app, make_local_server, make_token

    token = make_token()
    app = create_app(args.workdir, token, next_options=_training_options(args), default_n=args.n)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(
            f"warning: serving on {args.host}: anyone who can reach it and has the token "
            "can change your labels",
            file=sys.stderr,
        )
    server = make_local_server(app, args.host, args.port)
    # bound to every address: the page answers to the loopback names (a Host header of
    # another name is refused), so the URL to open names the loopback address
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.host, args.host)
    host = f"[{shown}]" if ":" in shown else shown
    if lock is not None:  # who holds it, for a second serve's message (never the token)
        lock.seek(0)
        lock.truncate()
        lock.write(f"serve (process {os.getpid()}, http://{host}:{server.server_port}/)\n")
        lock.flush()
    print(f"labelling page: http://{host}:{server.server_port}/?token={token}", flush=True)
    print("answers are saved as they are given; stop with Ctrl-C", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# ------------------------------------------------------------------ next
def _next(args: argparse.Namespace) -> int:
    from .training import query_next_batch

    settings = RoundSettings(
        n=args.n,
        strategy=args.strategy,
        backbone=args.backbone,
        weights=args.weights,
        epochs=args.epochs,
        train_samples=args.train_samples,
        pretrain_epochs=args.pretrain_epochs,
        warm_start=args.warm_start,
        encoder=args.encoder,
        precision=args.precision,
        threads=args.threads,
        first_leg_samples=args.first_leg_samples,
        graph_labels=args.graph_labels,
    )
    with LabelStore(args.workdir) as store:
        if args.job is None:
            settings.validate()
            job = store.start_job(args.n, os.getpid())
        else:
            # started by the page: its job row exists and shows what happens to it
            job = args.job
            store.adopt_job(job, os.getpid())

        def progress(fraction: float, message: str) -> None:
            store.job_progress(job, fraction, message)
            print(f"[{fraction:4.0%}] {message}", flush=True)

        try:
            with job_heartbeat(store.workdir, job):
                result = query_next_batch(store, settings, progress)
        except BaseException as exc:
            store.finish_job(job, "failed", str(exc) or type(exc).__name__)
            raise
        # the job's message stays on the page while answers come in: no count that
        # answers change (the page counts the waiting images itself)
        message = (
            f"queued {len(result.queued)} images in batch {result.batch_id}"
            + (" (cold start: no model yet)" if result.cold_start else "")
            + (" (continued the last model)" if result.warm_start else "")
        )
        store.finish_job(job, "done", message)
        waiting = len(store.pending())
    if result.pending_before:
        print(
            f"{result.pending_before} images of earlier batches were still unanswered; they "
            "stay in the queue, before the new ones"
        )
    print(f"{message}; {waiting} waiting for an answer ({result.seconds['total']:.0f} s)")
    return 0


@contextlib.contextmanager
def job_heartbeat(
    workdir: str | os.PathLike, job_id: int, interval: float = JOB_HEARTBEAT_INTERVAL_S
) -> Iterator[None]:
    """Keep a job's heartbeat fresh, from a daemon thread, while the block runs.

    The job counts as running only while its heartbeat is younger than
    :data:`~moby_al_plugin.labelling.store.JOB_HEARTBEAT_TIMEOUT_S`; the
    thread writes one every ``interval`` seconds, whatever the training
    does meanwhile (an epoch can take longer than the timeout). It has its
    own connection to the database.

    Parameters
    ----------
    workdir : str or path
        The work folder.
    job_id : int
        The job to keep alive.
    interval : float
        Seconds between two heartbeats.
    """
    if not 0 < interval < JOB_HEARTBEAT_TIMEOUT_S:
        raise LabellingError(
            f"the heartbeat interval must be between 0 and {JOB_HEARTBEAT_TIMEOUT_S} s, "
            f"got {interval}"
        )
    stop = threading.Event()

    def beat() -> None:
        with LabelStore(workdir) as store:
            while not stop.wait(interval):
                # a busy database delays a beat; the next one tries again
                with contextlib.suppress(Exception):
                    store.job_heartbeat(job_id)

    thread = threading.Thread(target=beat, name=f"moby-al-job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=JOB_HEARTBEAT_TIMEOUT_S)


# ----------------------------------------------------------- status, i/o
def _status(args: argparse.Namespace) -> int:
    from .folder import verify_images

    with LabelStore(args.workdir) as store:
        found = verify_images(store)
        counts = store.status_counts()
        print(f"work folder {store.workdir} (images in {store.images_root})")
        print(
            f"images: {counts.images} indexed, {counts.unreadable} unreadable at init, "
            f"{len(found['changed'])} changed and {len(found['missing'])} missing since init"
        )
        labelled = {a.path for a in store.answers(include_skipped=False)}
        for state in ("changed", "missing"):
            for path in found[state]:
                held = (
                    "its label is kept, left out of exports"
                    if path in labelled
                    else ("never shown, trained on or exported")
                )
                print(f"  {state}: {path} ({held})")
        print(
            f"answers: {counts.labelled} labelled"
            + (f" of a budget of {counts.budget}" if counts.budget is not None else "")
            + f", {counts.skipped} skipped; {counts.pending} queued images wait "
            f"for an answer ({counts.batches} batches so far)"
        )
        for name, n in store.class_histogram().items():
            print(f"  {name}: {n}")
        stopping = stopping_summary(store)
        if stopping is not None:
            kappas = ", ".join(
                "-" if r["kappa"] is None else f"{r['kappa']:.3f}" for r in stopping["rounds"][-6:]
            )
            print(f"stopping rule: {stopping['message']} (kappa by round: {kappas})")
        store.close_stopped_jobs()  # a job whose process died shows as failed
        job = store.active_job() or store.last_job()
        if job is not None:
            print(f"last training job: {job['state']} ({job['progress']:.0%}) {job['message']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .folder import verify_images

    with LabelStore(args.workdir) as store:
        # both formats look at the files first: a label of a file that changed since it
        # was answered is not the label of what is on disk now
        found = verify_images(store)
        answers = [(a, "") for a in store.answers(include_skipped=False)]
        copies, conflicts = store.duplicate_answers()
        root = store.images_root
    for group in conflicts:
        print(
            "left out: " + ", ".join(group[1:]) + f" (the same content as {group[0]}): its "
            "files were given different labels",
            file=sys.stderr,
        )
    # a file with the content of a labelled one takes its label, after the answers
    answers += copies
    # a file changed since init is not the image that was labelled: left out of both
    # formats, and named, so that an export always reads back
    gone = {path: state for state in ("changed", "missing") for path in found[state]}
    for path in sorted(set(gone) & {a.path for a, _ in answers}):
        print(f"left out: {path} is {gone[path]} since it was labelled", file=sys.stderr)
    answers = [(a, twin) for a, twin in answers if a.path not in gone]
    if args.format == "csv":

        def write_rows(handle: Any) -> None:
            writer = csv.writer(handle)
            # duplicate_of (last, so that the first four columns stay as they were): the
            # path whose answer a file of the same content takes; empty for an own answer
            writer.writerow(["path", "label", "answered_at", "source", "duplicate_of"])
            writer.writerows(
                (neutralise(a.path), neutralise(a.label), a.answered_at, a.source, neutralise(twin))
                for a, twin in answers
            )

        if args.output == "-":
            try:
                write_rows(sys.stdout)
            except BrokenPipeError:
                # piped into head and the like: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        else:

            def write_text(raw: Any) -> None:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                write_rows(text)
                text.flush()
                text.detach()  # atomic_write syncs and closes the file itself

            # whole or not at all: a full disk leaves no half-written export behind
            atomic_write(args.output, write_text)
    else:
        if args.output == "-":
            raise LabellingError("--format folders needs --output, the folder to write")
        out = Path(args.output)
        if out.exists() and any(out.iterdir()):
            raise LabellingError(f"{out} exists and is not empty; choose a new folder")
        # copied into a hidden folder beside it, renamed when whole: a full disk leaves
        # no half-copied export behind
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            for a, _ in answers:
                target = partial / class_folder_name(a.label) / a.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / a.path, target)
            partial.mkdir(exist_ok=True)  # an export of no label is an empty folder
            if out.exists():
                out.rmdir()  # empty, checked above
            partial.rename(out)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    if args.output != "-":
        n_twins = sum(1 for _, twin in answers if twin)
        twins = f" ({n_twins} of them from a file of the same content)" if n_twins else ""
        print(f"wrote {len(answers)} labels to {args.output}{twins}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .folder import verify_images

    rows = _read_label_csv(args.file)
    with LabelStore(args.workdir) as store:
        verify_images(store)
        skipped: list[tuple[str, str]] = []
        n = store.import_labels(rows, skipped=skipped)
    for path, state in skipped:
        print(f"not imported: {path} is {state} on disk since init", file=sys.stderr)
    kept = len(rows) - len(skipped)
    same = f"; {kept - n} rows were the labels already there" if kept > n else ""
    print(f"imported {n} new or changed labels from {args.file}{same}")
    return 0

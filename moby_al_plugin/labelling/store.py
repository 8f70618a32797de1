"""The work folder's database: images, classes, answers and batches.

The schema and its migrations are in :mod:`.schema`, the training jobs' rows
in :mod:`.jobs`, the errors in :mod:`.errors`; this module re-exports their
public names.

One SQLite file in WAL mode. Every answer is committed in its own
transaction the moment it is given, so a process killed at any point loses
no committed answer and leaves a database that opens. Writers take the
database lock up front (``BEGIN IMMEDIATE``) so that two processes (the
page's server and a ``next`` training in the background) never interleave
half-done changes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ImageChangedError, LabellingError, UnknownImageError, unwritable
from .jobs import JOB_HEARTBEAT_TIMEOUT_S, JobTable
from .schema import DATABASE_NAME, MIGRATIONS, SCHEMA, SCHEMA_VERSION, connect, now_utc

__all__ = [
    "DATABASE_NAME",
    "JOB_HEARTBEAT_TIMEOUT_S",
    "SCHEMA_VERSION",
    "Answer",
    "LabelStore",
    "ImageChangedError",
    "LabellingError",
    "StatusCounts",
    "UnknownImageError",
    "now_utc",
    "unwritable",
]

# the contents (SHA-256) that no batch may queue again: those answered (the label was
# given on that content, even if the file changed since), and those queued and still
# on disk as they were (a queued file that changed or went is never shown: its twin may be)
_TAKEN_CONTENTS = (
    "SELECT i.sha256 FROM images i WHERE i.id IN (SELECT image_id FROM answers) "
    "OR (i.state = 'ok' AND i.id IN (SELECT image_id FROM queue))"
)


@dataclass(frozen=True)
class Answer:
    """One image's current answer; ``label`` is None for a skipped image."""

    image_id: int
    path: str
    label: str | None
    answered_at: str
    source: str


@dataclass(frozen=True)
class StatusCounts:
    """How far the labelling of a work folder is, as ``status`` and the page show it.

    Attributes
    ----------
    images : int
        Images indexed at ``init``.
    usable : int
        Indexed images unchanged on disk (state ``ok``) when last checked.
    unreadable : int
        Image files that could not be read at ``init``.
    labelled : int
        Images whose current answer is a class.
    skipped : int
        Images whose current answer is a skip.
    pending : int
        Queued images still waiting for an answer (see :meth:`LabelStore.pending`).
    batches : int
        Batches queued so far.
    batch : int or None
        Id of the latest batch; None before the first.
    batch_size : int
        Images of the latest batch still in the queue (0 before the first).
    batch_answered : int
        Of those, the ones answered (labelled or skipped).
    budget : int or None
        The labels planned at ``init`` (``--budget``); None if none was given.
    """

    images: int
    usable: int
    unreadable: int
    labelled: int
    skipped: int
    pending: int
    batches: int
    batch: int | None
    batch_size: int
    batch_answered: int
    budget: int | None


def _changed_since(conn: sqlite3.Connection, row: sqlite3.Row) -> bool:
    """Whether a later change that counts (an import) touched the image of history ``row``."""
    later = conn.execute(
        "SELECT 1 FROM history WHERE image_id = ? AND id > ? AND undone = 0 AND action != 'undo'",
        (row["image_id"], row["id"]),
    ).fetchone()
    return later is not None


class LabelStore(JobTable):
    """The labelling database of a work folder.

    Parameters
    ----------
    workdir : str or path
        The work folder; the database is ``<workdir>/labels.sqlite``.

    Raises
    ------
    LabellingError
        If the folder holds no database (run ``moby-al label init`` first),
        or one of another schema version.
    """

    def __init__(self, workdir: str | os.PathLike) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / DATABASE_NAME
        if not self.path.exists():
            raise LabellingError(
                f"{self.workdir} holds no labelling database ({DATABASE_NAME}); run "
                "'moby-al label init --images DIR --classes a,b' there first"
            )
        self._conn = connect(self.path)
        version = self.meta("schema_version")
        if version in MIGRATIONS:
            self._migrate()
        elif version != str(SCHEMA_VERSION):
            self._conn.close()
            raise LabellingError(
                f"{self.path} has schema version {version}, this moby-al reads versions "
                f"{min(map(int, MIGRATIONS))} to {SCHEMA_VERSION}"
            )

    def _migrate(self) -> None:
        """Bring an older database to :data:`SCHEMA_VERSION`, one version at a time."""
        with self.transaction() as conn:
            # read again under the lock: another process may have migrated it meanwhile
            version = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()[0]
            while version in MIGRATIONS:
                version = MIGRATIONS[version](conn)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))

    @classmethod
    def create(
        cls,
        workdir: str | os.PathLike,
        *,
        classes: Sequence[str],
        keys: Sequence[str],
        meta: dict[str, Any],
        images: Sequence[dict[str, Any]],
        unreadable: Sequence[tuple[str, str]],
    ) -> LabelStore:
        """Write a new database in one transaction; refuse to overwrite one."""
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / DATABASE_NAME
        if path.exists():
            raise LabellingError(
                f"{folder} already holds a labelling database; use another --workdir, "
                "or 'moby-al label import' to add labels to this one"
            )
        partial = folder / (DATABASE_NAME + ".new")
        for leftover in (partial, Path(str(partial) + "-wal"), Path(str(partial) + "-shm")):
            leftover.unlink(missing_ok=True)
        conn = connect(partial)
        try:
            conn.executescript(SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            rows = {"schema_version": SCHEMA_VERSION, "created_at": now_utc(), **meta}
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in rows.items()]
            )
            conn.executemany(
                "INSERT INTO classes (id, name, key) VALUES (?, ?, ?)",
                [(i, n, k) for i, (n, k) in enumerate(zip(classes, keys))],
            )
            conn.executemany(
                "INSERT INTO images (path, sha256, bytes, mtime_ns, width, height, mode) "
                "VALUES (:path, :sha256, :bytes, :mtime_ns, :width, :height, :mode)",
                images,
            )
            conn.executemany("INSERT INTO unreadable VALUES (?, ?)", unreadable)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        # the database appears whole or not at all
        os.replace(partial, path)
        for leftover in (Path(str(partial) + "-wal"), Path(str(partial) + "-shm")):
            leftover.unlink(missing_ok=True)
        return cls(folder)

    def close(self) -> None:
        self._conn.close()

    def remove(self) -> None:
        """Close and delete the database (used when ``init`` fails half-way)."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database lock from its start."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------ settings
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        """Write one setting or record (bookkeeping only: no answer depends on it)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    @property
    def images_root(self) -> Path:
        root = Path(self.meta("images_root"))
        return root if root.is_absolute() else (self.workdir / root).resolve()

    @property
    def classes(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM classes ORDER BY id")]

    @property
    def keys(self) -> list[str]:
        return [r["key"] for r in self.query("SELECT key FROM classes ORDER BY id")]

    def class_id(self, name: Any) -> int:
        """The id of a class given by name; a clear error for any other value."""
        if not isinstance(name, str):
            raise LabellingError(f"a class is given by its name, got {name!r}")
        row = self._conn.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LabellingError(
                f"unknown class {name!r}; the classes are {', '.join(map(repr, self.classes))}"
            )
        return int(row[0])

    def image(self, image_id: Any) -> sqlite3.Row:
        """The images row of ``image_id``; a clear error for an unknown id."""
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise LabellingError(f"an image is given by its integer id, got {image_id!r}")
        row = self._conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise UnknownImageError(f"no image with id {image_id}")
        return row

    # -------------------------------------------------------------- images
    def image_records(self) -> list[sqlite3.Row]:
        """What ``init`` recorded of every indexed image, to compare with the files now.

        Returns
        -------
        list of sqlite3.Row
            One row per image, in id order, with the columns ``id``, ``path``
            (relative to :attr:`images_root`, POSIX), ``sha256``, ``bytes``,
            ``mtime_ns`` and ``state`` (``'ok'``, ``'changed'`` or ``'missing'``).
        """
        return self.query("SELECT id, path, sha256, bytes, mtime_ns, state FROM images ORDER BY id")

    def record_image_states(self, updates: Iterable[tuple[int, str, int]]) -> None:
        """Record the states of images found by a new look at their files, in one transaction.

        Parameters
        ----------
        updates : iterable of (int, str, int)
            ``(image_id, state, mtime_ns)``: the image's state now (``'ok'``,
            ``'changed'`` or ``'missing'``) and the modification time to keep
            for it. All are written, or none (a bad state rolls back all).
        """
        rows = [(state, int(mtime_ns), int(image_id)) for image_id, state, mtime_ns in updates]
        if not rows:
            return
        with self.transaction() as conn:
            conn.executemany("UPDATE images SET state = ?, mtime_ns = ? WHERE id = ?", rows)

    def image_paths(self) -> dict[int, str]:
        """The path of every indexed image, relative to :attr:`images_root`, by image id.

        Returns
        -------
        dict of int to str
            Image id to POSIX path, in id order, whatever the image's state.
        """
        return {int(r[0]): r[1] for r in self.query("SELECT id, path FROM images ORDER BY id")}

    def image_hashes(self) -> dict[int, str]:
        """The SHA-256 of every indexed image's file as it was at ``init``, by image id.

        Returns
        -------
        dict of int to str
            Image id to hexadecimal digest, in id order, whatever the image's
            state (a changed file keeps the digest of its content at ``init``).
        """
        return {int(r[0]): r[1] for r in self.query("SELECT id, sha256 FROM images ORDER BY id")}

    def usable_images(self) -> list[int]:
        """Ids of the images unchanged on disk (state ``ok``) when last checked.

        Returns
        -------
        list of int
            In id order; changed and missing images are left out.
        """
        return [
            int(r[0]) for r in self.query("SELECT id FROM images WHERE state = 'ok' ORDER BY id")
        ]

    # ------------------------------------------------------------- classes
    def class_table(self) -> list[tuple[int, str, str]]:
        """Every class as ``(id, name, key)``, in the order given at ``init``.

        Returns
        -------
        list of (int, str, str)
            The class id (as stored in answers, suggestions and
            :meth:`labelled`), its name and the key that answers it.
        """
        return [
            (int(r[0]), r[1], r[2])
            for r in self.query("SELECT id, name, key FROM classes ORDER BY id")
        ]

    def class_histogram(self) -> dict[str, int]:
        """How many images are labelled with each class, whatever their state on disk.

        Returns
        -------
        dict of str to int
            Class name to number of current answers naming it, every class
            present (0 for one without labels), in class order; skips are
            not counted.
        """
        return {
            r[0]: int(r[1])
            for r in self.query(
                "SELECT c.name, COUNT(a.image_id) FROM classes c LEFT JOIN answers a "
                "ON a.class_id = c.id GROUP BY c.id ORDER BY c.id"
            )
        }

    def class_examples(self, per_class: int) -> dict[str, list[int]]:
        """The latest labelled images of each class, to show next to its button.

        Parameters
        ----------
        per_class : int
            The most images kept for one class.

        Returns
        -------
        dict of str to list of int
            Class name to image ids, newest answer first, every class present
            (an empty list for one without labels), in class order. Only
            images unchanged on disk are given: the others are never shown.
        """
        names = {class_id: name for class_id, name, _ in self.class_table()}
        examples: dict[str, list[int]] = {name: [] for name in names.values()}
        for row in self.query(
            "SELECT a.image_id, a.class_id FROM answers a JOIN images i ON i.id = a.image_id "
            "WHERE a.class_id IS NOT NULL AND i.state = 'ok' ORDER BY a.answered_at DESC"
        ):
            shown = examples[names[int(row[1])]]
            if len(shown) < per_class:
                shown.append(int(row[0]))
        return examples

    # ------------------------------------------------------------- answers
    def _set_answer(
        self,
        conn: sqlite3.Connection,
        image_id: int,
        class_id: int | None,
        action: str,
        source: str,
        at: str,
    ) -> None:
        before = conn.execute(
            "SELECT class_id FROM answers WHERE image_id = ?", (image_id,)
        ).fetchone()
        previous = "none" if before is None else ("skip" if before[0] is None else "label")
        conn.execute(
            "INSERT INTO history (image_id, action, class_id, previous, previous_class_id, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (image_id, action, class_id, previous, None if before is None else before[0], at),
        )
        conn.execute(
            "INSERT INTO answers (image_id, class_id, answered_at, source) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (image_id) DO UPDATE SET class_id = excluded.class_id, "
            "answered_at = excluded.answered_at, source = excluded.source",
            (image_id, class_id, at, source),
        )

    def answer(self, image_id: Any, label: str | None, *, source: str = "page") -> str:
        """Record ``label`` (a class name, or None to skip) for one image, committed now.

        Returns the time of the answer. An image that changed on disk or
        disappeared since ``init`` cannot be answered: its pixels are no
        longer the ones that were shown.
        """
        image = self.image(image_id)
        class_id = None if label is None else self.class_id(label)
        if image["state"] != "ok":
            raise ImageChangedError(
                f"image {image_id} ({image['path']}) is {image['state']} on disk since init; "
                "it is skipped, not labelled"
            )
        at = now_utc()
        with self.transaction() as conn:
            # a new answer ends what redo can bring back (undone = 2: undone for good)
            conn.execute("UPDATE history SET undone = 2 WHERE undone = 1")
            self._set_answer(
                conn, image_id, class_id, "skip" if label is None else "label", source, at
            )
        return at

    def undo(self) -> int | None:
        """Take back the latest answer given on the page; the image's id, or None.

        The image gets back the answer it had before (usually none). Repeated
        calls walk back through earlier answers.
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM history WHERE undone = 0 AND action IN ('label', 'skip') "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            if _changed_since(conn, row):  # an import changed it: nothing safe to restore
                return None
            conn.execute("UPDATE history SET undone = 1 WHERE id = ?", (row["id"],))
            image_id = int(row["image_id"])
            if row["previous"] == "none":
                conn.execute(
                    "INSERT INTO history (image_id, action, class_id, previous, at) "
                    "VALUES (?, 'undo', NULL, ?, ?)",
                    (image_id, "skip" if row["class_id"] is None else "label", now_utc()),
                )
                conn.execute("DELETE FROM answers WHERE image_id = ?", (image_id,))
            else:
                self._set_answer(
                    conn, image_id, row["previous_class_id"], "undo", "undo", now_utc()
                )
            return image_id

    def redo(self) -> int | None:
        """Give again the answer that the latest undo took back; the image's id, or None.

        Undos since the last answer given (``answer``) can be redone, latest
        undo first; a new answer ends them. Like undo, redo leaves an image
        that an import changed since: nothing is redone then. The answer
        comes back as it was (its history row counts again, ``undone`` 0);
        the change is recorded as a history row of action ``undo``.
        """
        with self.transaction() as conn:
            # undo takes back the latest answer still counted, so the undone rows after
            # every counted one are a stack whose latest undo is the earliest row
            row = conn.execute(
                "SELECT * FROM history WHERE undone = 1 AND action IN ('label', 'skip') "
                "AND id > (SELECT COALESCE(MAX(id), 0) FROM history "
                "WHERE undone = 0 AND action IN ('label', 'skip')) "
                "ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            if _changed_since(conn, row):  # an import changed it: nothing safe to redo
                return None
            image_id = int(row["image_id"])
            conn.execute("UPDATE history SET undone = 0 WHERE id = ?", (row["id"],))
            self._set_answer(conn, image_id, row["class_id"], "undo", "redo", now_utc())
            return image_id

    def import_labels(
        self,
        rows: Sequence[tuple[str, str]],
        *,
        source: str = "import",
        skipped: list[tuple[str, str]] | None = None,
    ) -> int:
        """Record (path, class name) pairs in one transaction; all or nothing.

        A row that gives an image the label it has already changes nothing:
        the answer keeps its source and time, and no history row is added.
        So importing an exported CSV again changes nothing, and an edited
        one changes only the rows edited, which get ``source`` and the time
        of the import. The label an image takes from a file of the same
        content (:meth:`duplicate_answers`, before this import) counts as
        the label it has.

        A row of an image whose file changed or disappeared since init is
        left out and, when ``skipped`` is a list, appended to it as ``(path,
        state)``; without that list such a row is an error, as before. An
        export of the same folder thus always reads back.

        Returns
        -------
        int
            The answers added or changed.

        Raises
        ------
        LabellingError
            Naming the first line (1-based, after the header) whose path was
            not indexed or whose class is unknown; nothing is changed then.
        """
        paths = {
            r["path"]: (int(r["id"]), r["state"])
            for r in self.query("SELECT id, path, state FROM images")
        }
        resolved = []
        for line, (path, label) in enumerate(rows, start=2):
            key = Path(path).as_posix()
            if key not in paths:
                raise LabellingError(
                    f"line {line}: {path!r} is not an image of this work folder (paths are "
                    "relative to the images folder given to init); nothing was imported"
                )
            try:
                class_id = self.class_id(label)
            except LabellingError as exc:
                raise LabellingError(f"line {line}: {exc}; nothing was imported") from None
            if paths[key][1] != "ok":
                if skipped is not None:
                    skipped.append((key, paths[key][1]))
                    continue
                raise LabellingError(
                    f"line {line}: {path!r} is {paths[key][1]} on disk since init; nothing "
                    "was imported"
                )
            resolved.append((paths[key][0], class_id))
        at = now_utc()
        changed = 0
        with self.transaction() as conn:
            # what each image has now: its own answer (None: skipped), else a twin's label
            has = {twin: copy["class_id"] for twin, _, copy in self._twin_labels(conn)[0]}
            has.update(
                {int(r[0]): r[1] for r in conn.execute("SELECT image_id, class_id FROM answers")}
            )
            for image_id, class_id in resolved:
                if image_id in has and has[image_id] == class_id:
                    continue  # unchanged: the answer keeps its source and time
                self._set_answer(conn, image_id, class_id, "import", source, at)
                has[image_id] = class_id
                changed += 1
        return changed

    def _twin_labels(
        self, conn: sqlite3.Connection
    ) -> tuple[list[tuple[int, str, sqlite3.Row]], list[list[str]]]:
        """The labels unanswered images take from a file of the same content.

        Returns ``(copies, conflicts)``: ``copies`` holds ``(image id, path,
        answer row)`` for every usable image without an answer whose group
        (same SHA-256) has labelled members that agree, the row being the
        group's earliest such answer (columns ``image_id``, ``path``,
        ``class_id``, ``name``, ``answered_at``, ``source``); ``conflicts``
        the paths of each group whose labelled members disagree (its
        unanswered members take no label).
        """
        groups: dict[str, list[sqlite3.Row]] = {}
        for row in conn.execute(
            "SELECT i.id, i.path, i.sha256, i.state, a.image_id IS NOT NULL AS answered "
            "FROM images i LEFT JOIN answers a ON a.image_id = i.id ORDER BY i.id"
        ):
            groups.setdefault(row["sha256"], []).append(row)
        labels = {
            int(r["image_id"]): r
            for r in conn.execute(
                "SELECT a.image_id, i.path, a.class_id, c.name, a.answered_at, a.source "
                "FROM answers a JOIN images i ON i.id = a.image_id "
                "JOIN classes c ON c.id = a.class_id ORDER BY a.answered_at, a.image_id"
            )
        }
        copies, conflicts = [], []
        for members in groups.values():
            given = [labels[int(m["id"])] for m in members if int(m["id"]) in labels]
            if len(members) < 2 or not given:
                continue
            if len({g["class_id"] for g in given}) > 1:
                conflicts.append([m["path"] for m in members])
                continue
            first = min(given, key=lambda g: (g["answered_at"], g["image_id"]))
            copies += [
                (int(m["id"]), m["path"], first)
                for m in members
                if not m["answered"] and m["state"] == "ok"
            ]
        return copies, conflicts

    def duplicate_answers(self) -> tuple[list[tuple[Answer, str]], list[list[str]]]:
        """The labels that files of the same content take from a labelled one, for export.

        Only one file of a same-content group is ever queued
        (:meth:`candidates`); the others, unchanged on disk and without an
        answer of their own, take its label.

        Returns
        -------
        copies : list of (Answer, str)
            One per such file: its answer (its own id and path; the label,
            time and source of the answer it copies) and the path of the
            image whose answer it copies (the group's earliest label).
        conflicts : list of list of str
            The paths of each group whose labelled files disagree: its
            other files take no label.
        """
        copies, conflicts = self._twin_labels(self._conn)
        return [
            (Answer(twin, path, row["name"], row["answered_at"], row["source"]), row["path"])
            for twin, path, row in copies
        ], conflicts

    def answers(self, *, include_skipped: bool = True) -> list[Answer]:
        """Current answers, oldest first."""
        rows = self.query(
            "SELECT a.image_id, i.path, c.name, a.answered_at, a.source FROM answers a "
            "JOIN images i ON i.id = a.image_id LEFT JOIN classes c ON c.id = a.class_id "
            + ("" if include_skipped else "WHERE a.class_id IS NOT NULL ")
            + "ORDER BY a.answered_at, a.image_id"
        )
        return [Answer(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def recent_answers(self, limit: int) -> list[Answer]:
        """The latest current answers (labels and skips), newest first.

        Parameters
        ----------
        limit : int
            The most answers returned.

        Returns
        -------
        list of Answer
            Ordered by answer time, then image id, both descending.
        """
        rows = self.query(
            "SELECT a.image_id, i.path, c.name, a.answered_at, a.source FROM answers a "
            "JOIN images i ON i.id = a.image_id LEFT JOIN classes c ON c.id = a.class_id "
            "ORDER BY a.answered_at DESC, a.image_id DESC LIMIT ?",
            (int(limit),),
        )
        return [Answer(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def labelled(self) -> tuple[list[int], list[int]]:
        """Image ids and class ids of the labelled images that are unchanged on disk."""
        rows = self.query(
            "SELECT a.image_id, a.class_id FROM answers a JOIN images i ON i.id = a.image_id "
            "WHERE a.class_id IS NOT NULL AND i.state = 'ok' ORDER BY a.image_id"
        )
        return [int(r[0]) for r in rows], [int(r[1]) for r in rows]

    # -------------------------------------------------------------- status
    def status_counts(self, *, pending: int | None = None) -> StatusCounts:
        """Images, answers and batches counted for ``moby-al label status`` and the page.

        The one place those counts are made; images, answers and batches are
        counted in one statement, so they agree with each other. The image
        states are read as recorded: check the files first
        (:func:`~moby_al_plugin.labelling.verify_images`) where that matters.

        Parameters
        ----------
        pending : int, optional
            The number of queued images waiting for an answer, when the caller
            has just listed them with :meth:`pending` (so that both agree);
            counted here otherwise.

        Returns
        -------
        StatusCounts
        """
        row = self.query(
            "SELECT "
            "(SELECT COUNT(*) FROM images) AS images, "
            "(SELECT COUNT(*) FROM images WHERE state = 'ok') AS usable, "
            "(SELECT COUNT(*) FROM unreadable) AS unreadable, "
            "(SELECT COUNT(*) FROM answers WHERE class_id IS NOT NULL) AS labelled, "
            "(SELECT COUNT(*) FROM answers WHERE class_id IS NULL) AS skipped, "
            "(SELECT COUNT(*) FROM batches) AS batches, "
            "(SELECT MAX(id) FROM batches) AS batch, "
            "(SELECT COUNT(*) FROM queue WHERE batch_id = (SELECT MAX(id) FROM batches)) "
            "AS batch_size, "
            "(SELECT COUNT(*) FROM queue q JOIN answers a ON a.image_id = q.image_id "
            "WHERE q.batch_id = (SELECT MAX(id) FROM batches)) AS batch_answered"
        )[0]
        budget = self.meta("budget")
        return StatusCounts(
            images=int(row["images"]),
            usable=int(row["usable"]),
            unreadable=int(row["unreadable"]),
            labelled=int(row["labelled"]),
            skipped=int(row["skipped"]),
            pending=len(self.pending()) if pending is None else int(pending),
            batches=int(row["batches"]),
            batch=None if row["batch"] is None else int(row["batch"]),
            batch_size=int(row["batch_size"]),
            batch_answered=int(row["batch_answered"]),
            budget=int(budget) if budget else None,
        )

    # ------------------------------------------------------------- batches
    def pending(self) -> list[sqlite3.Row]:
        """Queued images without an answer, in the order they were queued."""
        return self.query(
            "SELECT q.image_id, q.batch_id, q.suggestion FROM queue q "
            "JOIN images i ON i.id = q.image_id LEFT JOIN answers a ON a.image_id = q.image_id "
            "WHERE a.image_id IS NULL AND i.state = 'ok' ORDER BY q.batch_id, q.position"
        )

    def queued_or_answered(self, image_id: int) -> bool:
        """Whether an image is in a batch or has an answer: the images the page may answer."""
        row = self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM queue WHERE image_id = ?) "
            "OR EXISTS (SELECT 1 FROM answers WHERE image_id = ?)",
            (image_id, image_id),
        ).fetchone()
        return bool(row[0])

    def candidates(self) -> list[int]:
        """Images a query may choose: unchanged, unanswered, not queued, one per content.

        Files with the same content (the same SHA-256 at ``init``) are one
        image to label: a group whose member is answered, or queued and
        unchanged on disk, offers none, and otherwise only its first usable
        member (lowest id) is a candidate. Its answer goes to the others on
        export (:meth:`duplicate_answers`).

        Returns
        -------
        list of int
            Image ids, in id order.
        """
        taken = {r[0] for r in self.query(_TAKEN_CONTENTS)}
        chosen = []
        for image_id, digest in self.query(
            "SELECT id, sha256 FROM images WHERE state = 'ok' "
            "AND id NOT IN (SELECT image_id FROM queue) ORDER BY id"
        ):
            if digest not in taken:
                taken.add(digest)  # the first of a group only
                chosen.append(int(image_id))
        return chosen

    def add_batch(
        self,
        image_ids: Sequence[int],
        suggestions: Sequence[int | None],
        *,
        strategy: str,
        cold_start: bool,
    ) -> int:
        """Queue a batch in one transaction; the images taken meanwhile are left out.

        An image is left out when it is answered or queued already, or a
        file of the same content is (see :meth:`candidates`) or comes
        earlier in ``image_ids``: one content is queued once.
        """
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO batches (created_at, strategy, cold_start, size) VALUES (?, ?, ?, ?)",
                (now_utc(), strategy, int(cold_start), len(image_ids)),
            )
            batch_id = int(cur.lastrowid)
            digests = {int(r[0]): r[1] for r in conn.execute("SELECT id, sha256 FROM images")}
            busy = {
                int(r[0])
                for r in conn.execute(
                    "SELECT image_id FROM queue UNION SELECT image_id FROM answers"
                )
            }
            taken = {r[0] for r in conn.execute(_TAKEN_CONTENTS)}
            for position, (image_id, suggestion) in enumerate(zip(image_ids, suggestions)):
                digest = digests.get(int(image_id))
                if int(image_id) in busy or (digest is not None and digest in taken):
                    continue
                taken.add(digest)
                conn.execute(
                    "INSERT INTO queue VALUES (?, ?, ?, ?)",
                    (int(image_id), batch_id, position, suggestion),
                )
        return batch_id

    def batch_counts(self) -> list[tuple[int, int, int]]:
        """Every batch's queued images and how many of them are answered.

        Returns
        -------
        list of (int, int, int)
            ``(batch id, images in the queue, answered)``, in batch order;
            as :attr:`StatusCounts.batch_size` and ``batch_answered`` count
            the latest batch.
        """
        return [
            (int(r[0]), int(r[1]), int(r[2]))
            for r in self.query(
                "SELECT b.id, COUNT(q.image_id), COUNT(a.image_id) FROM batches b "
                "LEFT JOIN queue q ON q.batch_id = b.id "
                "LEFT JOIN answers a ON a.image_id = q.image_id GROUP BY b.id ORDER BY b.id"
            )
        ]

"""The labelling database's schema, its migrations, its connection and its clock.

``SCHEMA`` creates a database of :data:`SCHEMA_VERSION`; :data:`MIGRATIONS`
brings an older one up, one version at a time (see ``LabelStore``).
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from pathlib import Path

__all__ = ["DATABASE_NAME", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "connect", "now_utc"]

DATABASE_NAME = "labels.sqlite"
#: Version 2 added ``jobs.heartbeat``; a version-1 database is migrated when opened.
SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL UNIQUE
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'changed', 'missing'))
);
CREATE TABLE unreadable (path TEXT PRIMARY KEY, reason TEXT NOT NULL);
-- the current answer of an image; class_id NULL means skipped
CREATE TABLE answers (
    image_id INTEGER PRIMARY KEY REFERENCES images (id),
    class_id INTEGER REFERENCES classes (id),
    answered_at TEXT NOT NULL,
    source TEXT NOT NULL
);
-- every change of an answer, so that undo can restore what was there before;
-- undone: 0 counts, 1 taken back by undo (redo can give it again), 2 undone for good
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images (id),
    action TEXT NOT NULL CHECK (action IN ('label', 'skip', 'import', 'undo')),
    class_id INTEGER REFERENCES classes (id),
    previous TEXT NOT NULL CHECK (previous IN ('none', 'label', 'skip')),
    previous_class_id INTEGER REFERENCES classes (id),
    at TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    strategy TEXT NOT NULL,
    cold_start INTEGER NOT NULL,
    size INTEGER NOT NULL
);
-- images waiting for an answer or answered from a batch; one row per image
CREATE TABLE queue (
    image_id INTEGER PRIMARY KEY REFERENCES images (id),
    batch_id INTEGER NOT NULL REFERENCES batches (id),
    position INTEGER NOT NULL,
    suggestion INTEGER REFERENCES classes (id)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    pid INTEGER,
    size INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    heartbeat TEXT
);
"""


def _add_job_heartbeat(conn: sqlite3.Connection) -> str:
    """Schema 1 to 2: the jobs get a heartbeat column (NULL for the jobs of before)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "heartbeat" not in columns:
        conn.execute("ALTER TABLE jobs ADD COLUMN heartbeat TEXT")
    return "2"


# schema version found -> the step that brings it one version further (and returns it)
MIGRATIONS = {"1": _add_job_heartbeat}


def now_utc() -> str:
    """The current time, ISO 8601 in UTC with milliseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL, full sync and foreign keys on."""
    # autocommit mode: every write below opens its own explicit transaction
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn

"""The training jobs of a work folder: one at a time, alive while their heartbeat is.

``moby-al label next`` trains in a process of its own; the page and
``status`` read how far it is. :class:`JobTable` holds the job rows'
reads and writes for :class:`~moby_al_plugin.labelling.store.LabelStore`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LabellingError
from .schema import now_utc

__all__ = ["JOB_HEARTBEAT_TIMEOUT_S", "JobTable"]

#: A job whose heartbeat is older than this many seconds no longer counts as running
#: (its process died, or its pid now belongs to another process). A running job
#: beats every few seconds (see ``commands.job_heartbeat``).
JOB_HEARTBEAT_TIMEOUT_S = 60.0


def _seconds_since(stamp: str) -> float:
    """Seconds from an ISO 8601 time written by :func:`now_utc` until now (same clock)."""
    then = _dt.datetime.fromisoformat(stamp)
    return (_dt.datetime.fromisoformat(now_utc()) - then).total_seconds()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    # a zombie child still answers kill(0): read its state where /proc exists
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


class JobTable:
    """The job rows of a labelling database (a mixin of ``LabelStore``).

    The host class supplies ``query(sql, params)`` and ``transaction()``.
    """

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _stopped(self, row: sqlite3.Row) -> str | None:
        """Why a job marked running has stopped, or None while it runs."""
        # a job of schema 1 has no heartbeat: its start is the last sign of life
        age = _seconds_since(row["heartbeat"] or row["started_at"])
        if row["pid"] is not None and not _pid_alive(row["pid"]):
            return "interrupted: its process ended early"
        if age >= JOB_HEARTBEAT_TIMEOUT_S:
            return (
                f"interrupted: no heartbeat for {age:.0f} s (more than "
                f"{JOB_HEARTBEAT_TIMEOUT_S:.0f} s): its process ended or hangs"
            )
        return None

    def active_job(self) -> sqlite3.Row | None:
        """The latest training job still running, if any; reads only.

        A job runs while its heartbeat (written every few seconds by its
        process, see :meth:`job_heartbeat`) is younger than
        :data:`JOB_HEARTBEAT_TIMEOUT_S` and, once its process is known, that
        process exists. The heartbeat decides: a killed job's pid may belong
        to another process by now. A job marked running that has stopped is
        not returned; :meth:`close_stopped_jobs` records it as failed.
        """
        rows = self.query("SELECT * FROM jobs WHERE state = 'running' ORDER BY id DESC")
        return next((row for row in rows if self._stopped(row) is None), None)

    def close_stopped_jobs(self) -> int:
        """Mark failed, with the reason, every job marked running whose process stopped.

        Returns the number of jobs closed.
        """
        closed = 0
        for row in self.query("SELECT * FROM jobs WHERE state = 'running' ORDER BY id"):
            reason = self._stopped(row)
            if reason is not None:
                self.finish_job(row["id"], "failed", reason)
                closed += 1
        return closed

    def start_job(self, size: int, pid: int | None) -> int:
        """Register a training job, refusing a second while one runs.

        Its heartbeat starts now: a job registered before its process starts
        (``pid`` None) counts as running for :data:`JOB_HEARTBEAT_TIMEOUT_S`
        seconds, time for that process to start beating.
        """
        self.close_stopped_jobs()
        with self.transaction() as conn:
            job = conn.execute("SELECT id, pid FROM jobs WHERE state = 'running'").fetchone()
            if job is not None:
                raise LabellingError(
                    f"a training job is already running (job {job['id']}, process "
                    f"{job['pid']}); wait for it to finish"
                )
            at = now_utc()
            cur = conn.execute(
                "INSERT INTO jobs (state, pid, size, started_at, message, heartbeat) "
                "VALUES ('running', ?, ?, ?, 'starting', ?)",
                (pid, size, at, at),
            )
            return int(cur.lastrowid)

    def adopt_job(self, job_id: int, pid: int) -> None:
        """Record the process that runs a job; a sign of life, so its heartbeat too."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET pid = ?, heartbeat = ? WHERE id = ?", (pid, now_utc(), job_id)
            )

    def job_heartbeat(self, job_id: int) -> None:
        """Mark a running job alive now (its process calls this every few seconds)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND state = 'running'",
                (now_utc(), job_id),
            )

    def job_progress(self, job_id: int, progress: float, message: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET progress = ?, message = ?, heartbeat = ? WHERE id = ?",
                (float(progress), message, now_utc(), job_id),
            )

    def finish_job(self, job_id: int, state: str, message: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, message = ?, finished_at = ?, "
                "progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END WHERE id = ?",
                (state, message, now_utc(), state, job_id),
            )

    def last_job(self) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM jobs ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

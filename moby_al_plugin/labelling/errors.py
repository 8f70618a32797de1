"""What goes wrong in labelling: the errors a command or a request can meet."""

from __future__ import annotations

import errno
import sqlite3

from ..exceptions import MoBYALError

__all__ = ["ImageChangedError", "LabellingError", "UnknownImageError", "unwritable"]


class LabellingError(MoBYALError):
    """A labelling command or request that cannot be carried out as asked."""


class UnknownImageError(LabellingError):
    """No indexed image has the id given."""


class ImageChangedError(LabellingError):
    """The image file changed or disappeared since ``init``; it is never labelled."""


# what a read-only, full or vanished disk looks like, from SQLite and from the OS
_UNWRITABLE_SQLITE = ("readonly", "disk is full", "disk i/o error", "unable to open database")
_UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


def unwritable(exc: BaseException) -> bool:
    """Whether ``exc`` says the work folder cannot be written (a disk fault, not a bug)."""
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _UNWRITABLE_SQLITE)
    return isinstance(exc, OSError) and exc.errno in _UNWRITABLE_ERRNOS

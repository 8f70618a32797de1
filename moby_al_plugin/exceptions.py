"""The package's user-facing error types."""

__all__ = ["MoBYALError", "DataNotFoundError"]


class MoBYALError(ValueError):
    """A problem with the user's data, settings or files, reported in one line.

    It subclasses ``ValueError`` so that callers who catch ``ValueError``, as
    scikit-learn users do, keep catching it. The ``moby-al`` command catches
    only this type: any other exception is a bug and keeps its traceback.
    """


class DataNotFoundError(MoBYALError, FileNotFoundError):
    """Data files that are not where they were said to be.

    Also a ``FileNotFoundError``, so that ``except FileNotFoundError`` keeps
    working; the message says where the files were expected and how to get them.
    """

"""The package's user-facing error type."""

__all__ = ["MoBYALError"]


class MoBYALError(ValueError):
    """A problem with the user's data, settings or files, reported in one line.

    It subclasses ``ValueError`` so that callers who catch ``ValueError``, as
    scikit-learn users do, keep catching it. The ``moby-al`` command catches
    only this type: any other exception is a bug and keeps its traceback.
    """

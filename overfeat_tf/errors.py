"""The package's own errors: problems a user can fix (a flag, a config key,
a file, an input), told apart from bugs.

Each subclasses the built-in type Python and Keras use for the same problem,
so `except ValueError` keeps catching them. The `overfeat` command prints
these (and OS errors about a named file) as one line of stderr with exit
status 2; any other exception is a bug and keeps its traceback (exit 1).
"""


class OverfeatError(Exception):
    """Base of the errors a user can fix."""

    # Raised while a tf.function traces, an error keeps its type only if
    # autograph can rebuild it from a message: its `__init__` must be
    # `Exception.__init__` (ValueError's own is not), else it becomes a
    # StagingError.
    __init__ = Exception.__init__


class InvalidValueError(OverfeatError, ValueError):
    """A value out of range or of the wrong form: a key, a flag, a file's content."""


class InvalidTypeError(OverfeatError, TypeError):
    """A value of the wrong type."""


class MissingFileError(OverfeatError, FileNotFoundError):
    """A file or folder that should exist does not."""


class ExistingFileError(OverfeatError, FileExistsError):
    """A file or folder that would be overwritten exists."""


class UnsupportedError(OverfeatError, NotImplementedError):
    """A setting this version does not support, and why."""

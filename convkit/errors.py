"""One family of errors for the whole library.

Every error convkit raises on purpose is a :class:`ConvkitError`. The command line catches
that one base class in one place and prints ``convkit: error: <message>`` with the error's
``exit_code``; anything else is a bug and keeps its traceback under ``--debug``.
"""

from __future__ import annotations


class ConvkitError(Exception):
    """Base class. ``exit_code`` is what the command line exits with (1: an input failed)."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None):
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(ConvkitError):
    """A bad option, argument or spec: nothing was processed (exit 2)."""

    exit_code = 2


class KernelError(UsageError):
    """A kernel argument that cannot be turned into a finite 2-D matrix."""


class ImageReadError(ConvkitError):
    """An input that is missing, empty, truncated, corrupt or not an image."""


class ImageTooLargeError(ImageReadError):
    """An image whose header announces more pixels than the limit allows."""


class ImageWriteError(ConvkitError):
    """An output that could not be encoded or written."""


class SpecError(UsageError):
    """A malformed layer spec or an impossible layer (shape-calc and the Keras commands)."""

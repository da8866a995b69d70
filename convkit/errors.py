"""Every error convkit raises on purpose, in one family.

Every error convkit raises on purpose is a :class:`ConvkitError`. The command line catches
that one base class in one place and prints ``convkit: error: <message>`` with the error's
``exit_code``; anything else is a bug and keeps its traceback under ``--debug``.

Messages name *parameters*, not command-line flags, in backticks, with what was received:
``"`epochs` must be at least 1, got 0"``. A library caller reads the parameter it passed;
the command line shows the flag that sets it (``--epochs must be at least 1, got 0``),
translating every backticked parameter of the running command in one place
(:mod:`convkit.cli.report`).
"""

from __future__ import annotations

from collections.abc import Sequence


class ConvkitError(Exception):
    """Base class. ``exit_code`` is what the command line exits with (1: an input failed)."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None):
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def with_path(self, path: str) -> ConvkitError:
        """The same error, naming the input ``path`` it happened to."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        ConvkitError.__init__(clone, self.message, path=path)
        return clone

    def __reduce__(self):
        # An error travels between processes (from a Dask worker to the client): rebuilt
        # without ``__init__``, whose signature differs between subclasses.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls: type, args: tuple, state: dict) -> ConvkitError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class UsageError(ConvkitError):
    """A bad option, argument or spec: nothing was processed (exit 2)."""

    exit_code = 2


class KernelError(UsageError):
    """A kernel argument that cannot be turned into a finite 2-D matrix."""


class SpecError(UsageError):
    """A malformed layer spec or an impossible layer (shape-calc and the Keras commands)."""


class LayerError(SpecError):
    """An impossible layer inside a stack; ``index`` is its position in the stack."""

    def __init__(self, message: str, *, index: int):
        super().__init__(message)
        self.index = index


class ImageReadError(ConvkitError):
    """An input that is missing, empty, truncated, corrupt or not an image."""


class ImageTooLargeError(ImageReadError):
    """An image whose header announces more pixels than the limit allows."""


class ImageSizeError(ConvkitError):
    """An image that was read but does not fit the model: too small for its kernels, or
    not the size a trained model takes."""


class ImageWriteError(ConvkitError):
    """An output that could not be encoded or written."""


class DataError(ConvkitError):
    """Training data (CIFAR) that is missing, incomplete, corrupt or unsafe (exit 1)."""


class ModelError(ConvkitError):
    """A model file that cannot be loaded, or is not an image classifier (exit 1)."""


class ClusterError(ConvkitError):
    """The Dask cluster: a scheduler that cannot be reached or was lost, workers that
    cannot run convkit, or an input whose task killed every worker that tried it (exit 1)."""


class OutputClosed(BaseException):
    """The reader of stdout went away (``| head``). A BaseException, so that it passes
    every ``except Exception`` (and Typer, which would turn a BrokenPipeError into exit 1)
    on its way to :func:`convkit.cli.main`, which ends the run quietly, as a shell would."""


class ForbiddenGlobal(Exception):
    """A pickle asked for a callable or class outside the allow-list. Raised inside the
    unpickler and turned into a :class:`DataError` naming the file."""

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name
        super().__init__(f"{module}.{name}")


def check_choice(value: str, choices: Sequence[str], param: str) -> str:
    """``value`` if it is one of ``choices``; else a :class:`UsageError` naming ``param``."""
    if value not in choices:
        raise UsageError(f"`{param}` must be one of {', '.join(choices)}, got {value!r}")
    return value

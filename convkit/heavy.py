"""The one door to convkit's heavy dependencies: OpenCV, Keras/TensorFlow and Dask.

Each is imported on first use, inside the function that needs it, never when convkit is
imported: ``convkit shape-calc`` and ``--help`` pay for none of them, the image commands
pay only for OpenCV, only the Keras commands wait seconds for TensorFlow, and only a run
given a Dask scheduler imports Dask (an optional extra). Every other
module gets these libraries from here; a Ruff rule (TID253) bans module-level imports of
them, and ``tests/test_imports.py`` checks the same at run time.
"""

from __future__ import annotations

import os

from convkit.defaults import DEFAULT_MAX_PIXELS

_CV2 = None
_KERAS = None


def thread_count() -> int | None:
    """``CONVKIT_THREADS``: the threads OpenCV and TensorFlow may each use inside one
    operation (None: their own default, every core). Images processed in parallel are
    ``-j``; this bounds the work inside each, e.g. on a shared CI runner."""
    text = os.environ.get("CONVKIT_THREADS", "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        from convkit.errors import UsageError

        raise UsageError(f"CONVKIT_THREADS must be a positive integer, got {text!r}")
    return value


def debug_enabled() -> bool:
    """True under ``--debug`` / ``CONVKIT_DEBUG=1``: then libraries may speak."""
    return os.environ.get("CONVKIT_DEBUG", "") not in ("", "0")


def import_cv2(max_pixels: int = DEFAULT_MAX_PIXELS):
    """Import OpenCV on first use and return the module.

    Thread-safe enough: a second import in a racing thread returns the same module.

    OpenCV has its own decoder limit (2**30 pixels by default), read once, when the library
    loads. It is set here to ``max_pixels`` before that happens, so that the limit holds
    twice: convkit reads the size from the header before decoding, and a header it misreads
    is still refused by the decoder itself. The image commands decode before any other
    OpenCV call, so the first import sees the run's limit.
    """
    global _CV2
    if _CV2 is None:
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(max_pixels)
        # OpenCV logs its own warnings ("PNG input buffer is incomplete") on stderr; convkit
        # reports every failure itself in one line, so keep OpenCV quiet unless debugging.
        if not debug_enabled():
            os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        import cv2

        threads = thread_count()
        if threads is not None:
            cv2.setNumThreads(threads)
        _CV2 = cv2
    return _CV2


def import_keras(*, verbose: bool = False):
    """Import Keras 3 on the TensorFlow backend and return the module.

    Unless ``verbose``, TensorFlow's C++ start-up lines and Python warnings are silenced and
    Keras's interactive output (progress bars of ``fit``/``predict``, which would go to
    stdout) is turned off: convkit reports progress itself, on stderr.
    """
    global _KERAS
    if _KERAS is not None:
        return _KERAS
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    import keras

    if not verbose:
        import logging
        import warnings

        warnings.filterwarnings("ignore", module=r"keras(\.|$)")
        warnings.filterwarnings("ignore", module=r"tensorflow(\.|$)")
        keras.utils.disable_interactive_logging()
        for name in ("tensorflow", "absl", "keras"):
            logging.getLogger(name).setLevel(logging.ERROR)
    threads = thread_count()
    if threads is not None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _KERAS = keras
    return keras


def import_tensorflow(*, verbose: bool = False):
    """TensorFlow itself (for ``tf.data``), after Keras has set up its quiet start-up."""
    import_keras(verbose=verbose)
    import tensorflow

    return tensorflow


DASK_HINT = "pip install 'convkit[dask]'"
"""How to install the optional Dask extra, said whenever a cluster is asked for without it."""


def import_dask():
    """Dask itself (an optional extra); a :class:`~convkit.errors.UsageError` saying how
    to install it when it is missing."""
    try:
        import dask
    except ImportError:
        _no_dask()
    return dask


def import_distributed():
    """``dask.distributed`` (the scheduler's client), imported on first use; missing, a
    :class:`~convkit.errors.UsageError` saying how to install it."""
    import_dask()
    try:
        import distributed
    except ImportError:
        _no_dask()
    return distributed


def _no_dask():
    from convkit.errors import UsageError

    raise UsageError(
        f"`scheduler` runs the work on a Dask cluster, and Dask is not installed: {DASK_HINT}"
    ) from None

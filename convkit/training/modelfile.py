"""Opening a model file that may be hostile (``predict``, and ``train-cifar --resume``).

Keras loads a ``.keras`` archive in three steps that each trust the file: it reads
``config.json`` into memory, builds every layer the configuration names (allocating its
weights), then reads ``model.weights.h5``; when the archive holds anything more, it first
extracts *all* of it into ``$TMPDIR``. A file of a few megabytes can declare gigabytes for
each step (a 1.6 MB archive wrote 1.5 GiB into ``$TMPDIR``; a 4 MB one whose ``config.json``
declares 4 GB took 8 GiB of memory; a 2 KB configuration that declares a dense layer of a
million units took 13 GiB). So, before Keras sees the file:

* a ``.keras`` archive's central directory is read with :mod:`zipfile` (sizes and names
  only, nothing is decompressed) and the archive is refused when it has more than
  :data:`MAX_MEMBERS` members, a name that is absolute, climbs out (``..``) or repeats, an
  encrypted member, a ``config.json`` or ``metadata.json`` over :data:`MAX_CONFIG_BYTES`, a
  member over 1 MiB that expands more than :data:`MAX_RATIO` times (Keras stores members
  uncompressed: ratio 1), members that together expand to more than :data:`MAX_RATIO` times
  the file (plus 16 MiB), or to more than ``max_memory``;
* a legacy HDF5 ``.h5`` file is walked with h5py (names and sizes only, nothing is read):
  refused when it has more than :data:`MAX_HDF5_OBJECTS` objects, an external or soft link,
  a dataset stored outside the file (external or virtual), a variable-length dataset, a
  dataset that expands more than :data:`MAX_RATIO` times, a ``model_config`` over
  :data:`MAX_CONFIG_BYTES`, or data past the same totals;
* then, while Keras builds the model, every variable it creates is counted *before* it is
  allocated, and the build stops at the first one that takes the total past what the
  weights in the file can fill (their size, plus a quarter, plus 16 MiB): a configuration
  that declares more weights than the file holds is damaged or hostile.

Keras's temporary folders are made inside a private folder under ``$TMPDIR`` that is
removed whatever ends the load (an error, Ctrl-C, SIGTERM). Safe mode stays on: a Lambda
layer's Python code is refused. Zip and Keras warnings never reach stderr.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import ModelError

MIB = 1 << 20


MAX_MEMBERS = 64
"""The most members a ``.keras`` archive may have (Keras writes three)."""

MAX_CONFIG_BYTES = 16 * MIB
"""The largest ``config.json`` (or HDF5 ``model_config``): a model of a thousand layers
needs about 2 MB; a ``train-cifar`` model about 10 kB."""

MAX_RATIO = 100
"""How many times its stored size a member (or the whole file) may expand to."""

MAX_HDF5_OBJECTS = 100_000
"""The most groups and datasets a legacy ``.h5`` model may have."""

_SMALL = MIB  # members up to this size may compress as well as they like
_SLACK = 16 * MIB  # what small members, metadata and counters may add to the totals
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_WEIGHTS = ("model.weights.h5", "model.weights.npz")
_CONFIGS = ("config.json", "metadata.json")


def _size(n: int) -> str:
    from convkit.arithmetic.formatting import format_bytes

    return format_bytes(n)


def _refuse(path: Path, reason: str) -> ModelError:
    return ModelError(f"cannot load the model: {reason}", path=str(path))


def resolve_model_path(path: str | Path) -> Path:
    """A model file, or a ``train-cifar`` results folder (its ``model.keras``). Only a
    regular file is a model: a pipe or a device would block or never end."""
    path = Path(path)
    try:
        if path.is_dir():
            candidate = path / "model.keras"
            if not candidate.is_file():
                raise ModelError(
                    "a folder without model.keras: give the model file", path=str(path)
                )
            path = candidate
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelError("no such file or directory", path=str(path)) from None
    except OSError as exc:
        from convkit.files import os_error_reason

        raise ModelError(f"cannot read: {os_error_reason(exc)}", path=str(path)) from None
    except ValueError:  # an embedded NUL
        raise ModelError("not a valid file name", path=str(path)) from None
    if not stat.S_ISREG(mode):
        raise ModelError("not a regular file (a model is a .keras or .h5 file)", path=str(path))
    return path


@dataclass(frozen=True)
class ModelFile:
    """A model file that passed the checks: its kind and what its weights can fill."""

    path: Path
    kind: str  # "keras" or "hdf5"
    weight_bytes: int  # the uncompressed size of the weights the file holds


def check_model_file(path: str | Path, *, max_memory: int = DEFAULT_MAX_MEMORY) -> ModelFile:
    """Check ``path`` (see the module docs) without decompressing or parsing anything."""
    path = resolve_model_path(path)
    try:
        # Without blocking, and checked again once open: a pipe put in its place since is
        # refused, not waited on.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ModelError("not a regular file", path=str(path))
            head, size = handle.read(8), info.st_size
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if head == _HDF5_MAGIC:
        return ModelFile(path, "hdf5", _check_hdf5(path, size, max_memory))
    if head[:2] != b"PK" or not zipfile.is_zipfile(path):
        raise _refuse(
            path,
            "not a Keras model file (neither a .keras zip archive nor a legacy HDF5 .h5 file)",
        )
    return ModelFile(path, "keras", _check_archive(path, size, max_memory))


def _unsafe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (
        name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or ".." in parts
        or re.match(r"^[A-Za-z]:", name) is not None
    )


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _check_archive(path: Path, size: int, max_memory: int) -> int:
    """The uncompressed size of the archive's weights; a :class:`ModelError` for a hostile
    or damaged archive."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(path, f"a damaged .keras archive ({reason})") from None
    if len(infos) > MAX_MEMBERS:
        raise _refuse(
            path, f"the archive has {len(infos):,} members, more than a model has ({MAX_MEMBERS})"
        )
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if _unsafe_name(name) or name in seen:
            what = "a repeated" if name in seen else "an unsafe"
            raise _refuse(path, f"{what} member name {_shown(name)} in the archive")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _refuse(path, f"the member {_shown(name)} is encrypted")
        if name in _CONFIGS and info.file_size > MAX_CONFIG_BYTES:
            raise _refuse(
                path,
                f"its {name} would take {_size(info.file_size)}, more than a model's "
                f"configuration may ({_size(MAX_CONFIG_BYTES)}): a damaged or hostile file",
            )
        if info.file_size > _SMALL and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _refuse(
                path,
                f"the member {_shown(name)} would expand from {_size(info.compress_size)} to "
                f"{_size(info.file_size)}, more than {MAX_RATIO} times: a damaged or hostile "
                "file",
            )
        total += info.file_size
    _check_total(path, total, size, max_memory)
    if "config.json" not in seen:
        raise _refuse(path, "not a Keras model file (the archive has no config.json)")
    return sum(info.file_size for info in infos if info.filename in _WEIGHTS)


def _check_total(path: Path, total: int, size: int, max_memory: int) -> None:
    if total > max_memory:
        raise _refuse(
            path, f"it would expand to {_size(total)}, over `max_memory` ({_size(max_memory)})"
        )
    if total > MAX_RATIO * size + _SLACK:
        raise _refuse(
            path,
            f"its {_size(size)} would expand to {_size(total)}, more than {MAX_RATIO} times: "
            "a damaged or hostile file",
        )


def _check_hdf5(path: Path, size: int, max_memory: int) -> int:
    """The total size of a legacy ``.h5`` file's datasets; a :class:`ModelError` for a
    hostile or damaged one. Only names, link kinds, shapes and storage sizes are read."""
    import h5py

    problems: list[str] = []
    totals = {"objects": 0, "bytes": 0}

    def visit(name: str, link) -> bool | None:
        totals["objects"] += 1
        if totals["objects"] > MAX_HDF5_OBJECTS:
            problems.append(f"it has more than {MAX_HDF5_OBJECTS:,} groups and datasets")
        elif not isinstance(link, h5py.HardLink):
            kind = "an external" if isinstance(link, h5py.ExternalLink) else "a soft"
            problems.append(f"{kind} link {_shown(name)} (a model's data is in its own file)")
        else:
            obj = handle.get(name)
            if isinstance(obj, h5py.Dataset):
                problem, declared = _dataset_problem(obj, h5py)
                totals["bytes"] += declared
                if problem:
                    problems.append(f"the dataset {_shown(name)} {problem}")
        return True if problems else None

    try:
        with h5py.File(path, "r") as handle:
            if "model_config" in handle.attrs:
                config = h5py.h5a.open(handle.id, b"model_config").get_storage_size()
                if config > MAX_CONFIG_BYTES:
                    problems.append(
                        f"its model_config would take {_size(config)}, more than a model's "
                        f"configuration may ({_size(MAX_CONFIG_BYTES)})"
                    )
            if not problems:
                handle.visititems_links(visit)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(path, f"a damaged HDF5 file ({reason})") from None
    if problems:
        raise _refuse(path, f"{problems[0]}: a damaged or hostile file")
    _check_total(path, totals["bytes"], size, max_memory)
    return totals["bytes"]


def _dataset_problem(obj, h5py) -> tuple[str | None, int]:
    """What is wrong with a dataset (None: nothing), and its declared size in bytes."""
    if obj.is_virtual or obj.external:
        return "is stored outside the file", 0
    if obj.dtype.kind == "O" or h5py.check_vlen_dtype(obj.dtype) is not None:
        return "holds variable-length data", 0
    declared = int(obj.size or 0) * obj.dtype.itemsize
    stored = obj.id.get_storage_size()
    if declared > _SMALL and declared > MAX_RATIO * max(stored, 1):
        return (
            f"would expand from {_size(stored)} to {_size(declared)}, more than {MAX_RATIO} times"
        ), declared
    return None, declared


# --------------------------------------------------------------------------- loading


class _OverBudget(BaseException):
    """Raised inside Keras when a variable would pass the budget. A BaseException, so that
    no ``except Exception`` inside Keras turns it into another error."""


def _itemsize(dtype) -> int:
    name = str(getattr(dtype, "name", dtype) or "float32")
    if name == "bool":
        return 1
    bits = re.search(r"(\d+)$", name)
    return max(1, int(bits.group(1)) // 8) if bits else 4


@contextmanager
def _variable_budget(keras, allowed: int, path: Path) -> Iterator[dict]:
    """Count every ``keras.Variable`` made inside, before it is allocated; the first one
    that takes the total past ``allowed`` bytes stops the build (``state["refused"]``)."""
    cls = keras.Variable
    own = cls.__dict__.get("__init__")
    original = cls.__init__
    state: dict = {"total": 0, "refused": None}

    def guarded(self, initializer, shape=None, dtype=None, *args, **kwargs):
        dims = shape if shape is not None else getattr(initializer, "shape", ())
        count = 1
        for dim in dims or ():
            count *= max(int(dim), 0) if dim is not None else 1
        state["total"] += count * _itemsize(dtype)
        if state["total"] > allowed and state["refused"] is None:
            shown = "(" + ", ".join(str(d) for d in dims) + ")"
            state["refused"] = _refuse(
                path,
                f"its configuration declares more weights than the file holds (a weight "
                f"{kwargs.get('name') or ''} of shape {shown} takes the total past "
                f"{_size(allowed)}): a damaged or hostile file",
            )
        if state["refused"] is not None:
            raise _OverBudget
        original(self, initializer, shape, dtype, *args, **kwargs)

    cls.__init__ = guarded
    try:
        yield state
    finally:
        if own is not None:
            cls.__init__ = own
        else:
            del cls.__init__


@contextmanager
def _private_tempdir() -> Iterator[str]:
    """Keras's temporary folders go into one of convkit's, removed on every path out."""
    try:
        base = tempfile.mkdtemp(prefix="convkit-model-")
    except OSError as exc:
        raise ModelError(f"cannot make a temporary folder: {exc.strerror or exc}") from None
    previous = tempfile.tempdir
    tempfile.tempdir = base
    try:
        yield base
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(base, ignore_errors=True)


def load_model(path: str | Path, *, compile: bool = False, max_memory: int = DEFAULT_MAX_MEMORY):
    """Load a Keras model in safe mode, after :func:`check_model_file`; every failure is one
    :class:`ModelError` line, and nothing is left in ``$TMPDIR``."""
    from convkit.heavy import import_keras

    checked = check_model_file(path, max_memory=max_memory)
    path = checked.path
    keras = import_keras()
    allowed = min(max_memory, checked.weight_bytes + checked.weight_bytes // 4 + _SLACK)
    state: dict = {"refused": None}
    try:
        with (
            _private_tempdir(),
            _variable_budget(keras, allowed, path) as state,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except _OverBudget:
        raise state["refused"] from None
    except Exception as exc:  # noqa: BLE001 - zip, h5, JSON and Keras errors alike
        if state["refused"] is not None:
            raise state["refused"] from None
        raise _refuse(path, _keras_reason(exc)) from None


def _keras_reason(exc: Exception) -> str:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if "safe_mode" in text or "unsafe" in text.lower():
        reason = "it holds Python code (a Lambda layer), refused in safe mode"
    elif "File format not supported" in text:
        reason = "not a Keras model file (.keras, or legacy .h5)"
    elif "no item named" in text:
        reason = "not a Keras model file (the archive has no config.json)"
    elif isinstance(exc, MemoryError) or "OOM when allocating" in text:
        reason = "not enough memory for its weights"
    elif isinstance(exc, OSError) and exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        reason = f"no room for its temporary files ({exc.strerror})"
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return reason

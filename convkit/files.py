"""Writing files so that nothing is ever half-written.

Every file convkit writes (images, ``.npy`` arrays, montages, models, JSON) goes through
:func:`atomic_path` / :func:`write_atomic`: a temporary file in the target folder, renamed
over the target when complete. An interrupted run leaves complete files or none, and a
failed write is an :class:`~convkit.errors.ImageWriteError` naming the file.
"""

from __future__ import annotations

import functools
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from convkit.errors import ImageWriteError, OutputClosed


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: Path, *, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path beside ``path``, renamed over ``path`` when the block succeeds.

    For writers that need a file name of their own (``model.save``); :func:`write_atomic`
    is the same for bytes. The target is either its old self or the complete new file,
    never a partial one; the temporary file is removed on any failure, and an ``OSError``
    becomes an :class:`ImageWriteError` naming ``path``. The result gets the permissions a
    plain ``open(path, "wb")`` would give it, not ``mkstemp``'s 0600.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if not folder.is_dir():
            raise ImageWriteError(
                f"cannot write: folder {str(folder)!r} does not exist", path=str(path)
            )
        if path.is_dir():
            raise ImageWriteError("cannot write: is a directory", path=str(path))
    except (OSError, ValueError) as exc:
        reason = os_error_reason(exc) if isinstance(exc, OSError) else "not a valid file name"
        raise ImageWriteError(f"cannot write: {reason}", path=str(path)) from None
    try:
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=temp_prefix(path.name) + _owner(), suffix=suffix
        )
        os.close(fd)
    except OSError as exc:
        raise ImageWriteError(f"cannot write: {os_error_reason(exc)}", path=str(path)) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ImageWriteError(f"cannot write: {os_error_reason(exc)}", path=str(path)) from None
        raise


TEMP_MARK = ".convkit-"
"""What names a temporary file of :func:`atomic_path`: ``.{target}.convkit-{pid}-{host}-
{random}{suffix}``, hidden, beside its target. The process and the host that write it are
in the name, so that a later run can tell a file left by a killed process (stale) from one
that is being written (:func:`stale_temp_files`)."""

STALE_AFTER = 3600.0
"""Seconds after which a temporary file of another host is taken as left behind: its
process cannot be asked, and no single write of convkit takes an hour."""


@functools.cache
def _host() -> str:
    import socket

    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0])[:32] or "host"


def _owner() -> str:
    """``{pid}-{host}-`` of the process writing now (asked each time: a fork has its own)."""
    return f"{os.getpid()}-{_host()}-"


_TEMP = re.compile(r"(?P<prefix>.*\.convkit-)(?P<pid>\d+)-(?P<host>[A-Za-z0-9]*)-")


def temp_prefix(name: str) -> str:
    """The start of every temporary name for the target file ``name``: the name shortened,
    so that one near the file system's limit (255 bytes) leaves room for the rest."""
    return "." + name.encode()[:120].decode(errors="ignore") + TEMP_MARK


def stale_temp_files(targets) -> list[Path]:
    """The temporary files that :func:`atomic_path` left beside ``targets`` (paths) and
    whose process is gone: on this host, a process that no longer runs; on another, a file
    untouched for :data:`STALE_AFTER` seconds. Each folder is listed once."""
    import time

    by_folder: dict[str, set[str]] = {}
    for target in targets:
        folder, name = os.path.split(os.fspath(target))
        by_folder.setdefault(folder, set()).add(temp_prefix(name))
    host, now, stale = _host(), time.time(), []
    for folder, prefixes in by_folder.items():
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            continue  # not created yet, or not readable: nothing of ours to clean
        for entry in entries:
            match = _TEMP.match(entry.name) if TEMP_MARK in entry.name else None
            if match is None or match["prefix"] not in prefixes:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if match["host"] == host:
                    if _running(int(match["pid"])):
                        continue
                elif now - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER:
                    continue
            except OSError:
                continue
            stale.append(Path(folder or ".") / entry.name)
    return stale


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or cannot tell: leave its file alone
    return True


def remove_stale_temp_files(targets) -> int:
    """Remove :func:`stale_temp_files` beside ``targets``; how many were removed."""
    removed = 0
    for path in stale_temp_files(targets):
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    A failed ``write`` or ``close`` (a full disk, a quota) is an :class:`ImageWriteError`
    and leaves nothing behind. The file is not forced to disk with ``fsync``: that protects
    only against a power cut, and it stalled a worker on every file (15% of a 200-image
    batch, measured); cv2.imwrite, vips and ImageMagick do not do it either.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def os_error_reason(exc: OSError) -> str:
    """A short, human reason for a failed file operation."""
    import errno

    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def write_stdout(data: bytes) -> None:
    """Write encoded image bytes to stdout (the caller has checked it is not a terminal);
    a reader that went away (``| head -c 10``) ends the run quietly (:class:`OutputClosed`)."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise OutputClosed() from None


def ensure_folder(folder: Path, *, created_ok: bool) -> None:
    """Create ``folder`` (and parents) when ``created_ok``; a failure names the folder."""
    try:
        if folder.is_dir() or not created_ok:
            return
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = os_error_reason(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason = "a file of that name is in the way"  # not "File exists"
        raise ImageWriteError(f"cannot create folder: {reason}", path=str(folder)) from None


def save_npy(path: Path, array) -> None:
    """Save ``array`` as float32 ``.npy`` (no pickle), atomically, creating its folder."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32), allow_pickle=False)
    ensure_folder(path.parent, created_ok=True)
    write_atomic(path, buf.getvalue())


NPY_MAX_BYTES = 256 * 1024 * 1024
"""The largest array :func:`load_npy` loads (kernels and weights are far smaller)."""


def load_npy(
    path: Path,
    *,
    max_bytes: int = NPY_MAX_BYTES,
    ndim: tuple[int, ...] | None = None,
    error: type[Exception] = ImageWriteError,
):
    """Load one plain numeric array from a ``.npy`` file that may be hostile.

    The header is read and checked *before* anything is allocated: the format version, a
    real numeric dtype (no Python objects, so nothing is unpickled; no complex numbers, no
    strings), the number of dimensions (``ndim``, when given), and a size of at most
    ``max_bytes`` that the file really holds (a 192-byte file that claims 100000x100000
    is refused, not allocated). Then NumPy loads it with ``allow_pickle=False``. Every
    problem is an ``error`` naming the file.
    """
    import numpy as np
    from numpy.lib import format as npy

    name = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            try:
                version = npy.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = npy.read_array_header_1_0(handle)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = npy.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"unknown .npy version {version}")
            except (ValueError, SyntaxError, TypeError, EOFError) as exc:
                raise error(f"not a .npy array file ({_first_line(exc)})", path=name) from None
            if dtype.hasobject:
                raise error(
                    "it holds Python objects (a pickle); convkit loads .npy files with "
                    "allow_pickle=False",
                    path=name,
                )
            if dtype.kind not in "biuf":
                raise error(f"expected real numbers, got dtype {dtype}", path=name)
            if ndim is not None and len(shape) not in ndim:
                wanted = " or ".join(str(n) for n in ndim)
                raise error(
                    f"expected a {wanted}-D array, got {len(shape)} dimensions {tuple(shape)}",
                    path=name,
                )
            count = 1
            for n in shape:
                count *= n
            nbytes = count * dtype.itemsize
            if nbytes > max_bytes:
                raise error(
                    f"the array {tuple(shape)} would take {nbytes:,} bytes, over the limit "
                    f"of {max_bytes:,}",
                    path=name,
                )
            if size - handle.tell() < nbytes:
                raise error(
                    f"truncated: its header announces {nbytes:,} bytes of data, the file "
                    f"holds {size - handle.tell():,}",
                    path=name,
                )
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
    except OSError as exc:
        raise error(f"cannot read: {os_error_reason(exc)}", path=name) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

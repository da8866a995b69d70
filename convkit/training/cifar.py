"""CIFAR-10 and CIFAR-100, "python version", read safely from disk.

Where the data comes from (:func:`locate`), in this order:

1. ``data_dir``: the extracted ``cifar-10-batches-py`` folder, a folder that
   holds it (or the archive), or the ``cifar-10-python.tar.gz`` archive itself, which is read
   in place (members are decompressed in memory one at a time, nothing is extracted to
   disk);
2. the ``CONVKIT_DATA`` environment variable, with the same rules;
3. the folder where ``keras.datasets.cifar10`` caches the data: ``$KERAS_HOME/datasets`` or
   ``~/.keras/datasets`` (the layouts of Keras 3 and of older versions);
4. Keras's own download (:func:`download`), with a socket timeout so that it never hangs;
   when that fails, a :class:`DataError` that says what to download and where to put it.

A folder or archive that is found but incomplete or damaged is an error, never a silent
fall-through to the next place.

The batches are pickles written by Python 2 (byte-string keys, ``numpy.core.multiarray``
names). A data file must never run code nor cost more than its size: it is read with the
restricted unpickler of :mod:`convkit.training.unpickle` (an allow-list of globals, and
bounds on objects and nesting checked before anything is built). The result is then
validated: a dict with ``data`` as a ``(N, 3072)`` uint8 array, ``N`` labels in range, all
six batches present.

Every file is read one at a time and parsed before the next is read, and none may be larger
than the real ones (:meth:`DatasetInfo.max_bytes`): a member of an archive is refused from
its header, before it is decompressed, and an archive may hold no more than the data set's
files and a few small others (a 2.9 MB archive of seven 400 MB members took 3.2 GiB
before).

Images stay ``uint8`` in ``(N, 32, 32, 3)`` (RGB, channels-last) until a batch is fed to a
model: a float64 copy of the training set would cost 1.2 GB. :func:`load` gives them as
:class:`~convkit.training.data.TrainingData`, what training takes.
"""

from __future__ import annotations

import math
import os
import socket
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convkit.errors import DataError, UsageError
from convkit.training.data import TrainingData
from convkit.training.labels import CIFAR10_NAMES
from convkit.training.unpickle import SafeUnpickler, safe_loads

__all__ = ["DATASETS", "IMAGE_SHAPE", "SafeUnpickler", "load", "locate", "safe_loads"]

IMAGE_SHAPE = (32, 32, 3)
"""Every CIFAR image: 32x32 pixels, RGB."""
_ROW = math.prod(IMAGE_SHAPE)  # one image as one row of a batch
_MIB = 1 << 20
# The real files: CIFAR-10's six batches and CIFAR-100's test file are 31.0 MB each,
# CIFAR-100's train file 155.2 MB, the meta files 158 and 1,758 bytes. No file may be larger
# than the real one rounded up (:meth:`DatasetInfo.max_bytes`).
_MAX_BATCH_BYTES = 32 * _MIB
_MAX_META_BYTES = 64 * 1024
_MAX_OTHER_BYTES = 16 * _MIB  # what an archive may hold besides the data (readme.html: 88 B)
_MAX_TAR_MEMBERS = 1000  # the real archives have 9 (the folder, 7 files, readme.html)
_MAX_TAR_HEADER = 64 * 1024  # pax and GNU long-name headers, read whole by tarfile
_DOWNLOAD_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DatasetInfo:
    key: str
    title: str
    folder: str  # the folder inside the archive
    archive: str  # the archive's file name on the CIFAR site
    url: str
    sha256: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    keras_dirname: str  # keras.utils.get_file's fname in keras.datasets.<name>.load_data
    default_names: tuple[str, ...]
    large_files: tuple[tuple[str, int], ...] = ()  # files larger than _MAX_BATCH_BYTES

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files)

    def max_bytes(self, name: str) -> int:
        """The largest file ``name`` may be: the real one's size, rounded up."""
        if name == self.meta_file:
            return _MAX_META_BYTES
        return dict(self.large_files).get(name, _MAX_BATCH_BYTES)

    def describe_layout(self) -> str:
        batches = ", ".join(self.files)
        return (
            f"the {self.folder} folder ({batches}, {self.meta_file}), "
            f"a folder that holds it, or {self.archive}"
        )


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        key="cifar10",
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        num_classes=10,
        keras_dirname="cifar-10-batches-py-target",
        default_names=CIFAR10_NAMES,
    ),
    "cifar100": DatasetInfo(
        key="cifar100",
        title="CIFAR-100",
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
        keras_dirname="cifar-100-python-target",
        default_names=tuple(f"class {i}" for i in range(100)),
        large_files=(("train", 160 * _MIB),),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise UsageError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    return DATASETS[key]


# --------------------------------------------------------------------------- validation


def _str_keys(obj: Any, name: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataError(
            f"not a CIFAR batch: expected a dict, found {type(obj).__name__}", path=name
        )
    out = {}
    for key, value in obj.items():
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if isinstance(key, str):
            out[key] = value
    return out


def parse_batch(
    data: bytes, *, name: str, label_key: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One data batch's bytes to ``(images uint8 (N, 32, 32, 3), labels uint8 (N,))``."""
    d = _str_keys(safe_loads(data, name=name), name)
    if "data" not in d or label_key not in d:
        missing = [k for k in ("data", label_key) if k not in d]
        raise DataError(
            f"not a CIFAR batch: no {' or '.join(repr(k) for k in missing)} entry", path=name
        )
    images = d["data"]
    if not isinstance(images, np.ndarray):
        raise DataError(
            f"not a CIFAR batch: 'data' is a {type(images).__name__}, not an array", path=name
        )
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != _ROW:
        raise DataError(
            f"not a CIFAR batch: 'data' should be a (N, {_ROW}) uint8 array, "
            f"found {images.shape} {images.dtype}",
            path=name,
        )
    n = images.shape[0]
    if n == 0:
        raise DataError("not a CIFAR batch: it holds no images", path=name)
    labels = d[label_key]
    try:
        labels = np.asarray(labels)
    except Exception:  # noqa: BLE001
        raise DataError(f"not a CIFAR batch: unreadable {label_key!r}", path=name) from None
    if labels.ndim != 1 or labels.shape[0] != n or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"not a CIFAR batch: {label_key!r} should be {n} integers, found "
            f"{labels.shape} {labels.dtype}",
            path=name,
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(
            f"labels out of range: found {int(labels.min())}..{int(labels.max())}, "
            f"expected 0..{num_classes - 1}",
            path=name,
        )
    # Rows are 1024 red, 1024 green, 1024 blue values: (N, 3, 32, 32) -> (N, 32, 32, 3).
    height, width, channels = IMAGE_SHAPE
    planes = images.reshape(n, channels, height, width)
    pictures = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    return pictures, labels.astype(np.uint8 if num_classes <= 256 else np.int32)


def parse_meta(data: bytes, *, name: str, info: DatasetInfo) -> list[str]:
    d = _str_keys(safe_loads(data, name=name), name)
    names = d.get(info.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != info.num_classes:
        count = len(names) if isinstance(names, (list, tuple)) else "no"
        raise DataError(
            f"not a {info.title} meta file: expected {info.num_classes} "
            f"{info.names_key!r}, found {count}",
            path=name,
        )
    out = []
    for item in names:
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if not isinstance(item, str):
            raise DataError(f"not a {info.title} meta file: a class name is not text", path=name)
        out.append(item)
    return out


# --------------------------------------------------------------------------- the data set


@dataclass(frozen=True)
class Location:
    """Where the data is: a folder holding the batch files, or an archive read in place."""

    kind: str  # "dir" or "tar"
    path: Path

    def __str__(self) -> str:
        return str(self.path)


def _looks_like_archive(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _resolve(path: Path, info: DatasetInfo, *, what: str) -> Location:
    """``path`` as the user gave it (``data_dir`` or ``CONVKIT_DATA``) to a location."""
    shown = f"{what} {str(path)!r}" if what else repr(str(path))
    if not path.exists():
        raise DataError(f"{shown}: no such file or directory")
    if path.is_file():
        if _looks_like_archive(path):
            return Location("tar", path)
        raise DataError(
            f"{shown} is a file but not a tar archive; expected {info.describe_layout()}"
        )
    found = _find_in_dir(path, info)
    if found is None:
        raise DataError(f"{shown}: no {info.title} data there; expected {info.describe_layout()}")
    return found


def _find_in_dir(path: Path, info: DatasetInfo) -> Location | None:
    # The batch folder itself (any of its files is enough to claim it: completeness is
    # checked when reading, so that a partial folder is an error, not a fall-through).
    if any((path / f).is_file() for f in (*info.files, info.meta_file)):
        return Location("dir", path)
    for candidate in (
        path / info.folder,
        path / info.keras_dirname / info.folder,  # Keras 3's cache layout
    ):
        if candidate.is_dir():
            return Location("dir", candidate)
    for candidate in (
        path / info.archive,
        path / f"{info.folder}.tar.gz",  # older Keras download name
        path / f"{info.keras_dirname}_archive",  # Keras 3's download name
    ):
        if candidate.is_file():
            return Location("tar", candidate)
    return None


def keras_cache_dirs() -> list[Path]:
    """Where ``keras.datasets`` keeps its downloads, as Keras itself decides it."""
    if "KERAS_HOME" in os.environ:
        bases = [Path(os.environ["KERAS_HOME"])]
    else:
        home = Path(os.path.expanduser("~"))
        bases = [home / ".keras", Path("/tmp/.keras")]  # Keras falls back to /tmp
    return [base.expanduser() / "datasets" for base in bases]


def locate(
    info: DatasetInfo, data_dir: str | Path | None = None, env: dict | None = None
) -> Location | None:
    """The data's location by the rules of the module docs, or None when nothing is found."""
    env = os.environ if env is None else env
    if data_dir is not None:
        return _resolve(Path(data_dir).expanduser(), info, what="`data_dir`")
    if env.get("CONVKIT_DATA"):
        return _resolve(Path(env["CONVKIT_DATA"]).expanduser(), info, what="CONVKIT_DATA")
    for cache in keras_cache_dirs():
        if cache.is_dir():
            found = _find_in_dir(cache, info)
            if found is not None:
                return found
    return None


def missing_data_message(info: DatasetInfo, reason: str | None = None) -> str:
    cache = keras_cache_dirs()[0]
    why = f" ({reason})" if reason else ""
    return (
        f"{info.title} not found{why}: download {info.url} and pass it with "
        f"`data_dir` (the .tar.gz as it is, or the extracted {info.folder} folder), "
        f"or put it in {cache} or set CONVKIT_DATA"
    )


def download(
    info: DatasetInfo,
    *,
    timeout: float = _DOWNLOAD_TIMEOUT_S,
    url: str | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Location:
    """Keras's own download of the data into its cache; a clear :class:`DataError` on failure.

    A socket timeout bounds every network wait (name lookup failures are immediate), so a
    machine without network gets the error in seconds, not a hang.
    """
    from convkit.heavy import import_keras

    keras = import_keras()
    if on_note:
        on_note(f"{info.title} not found locally; downloading {info.url} (about 170 MB)")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        path = keras.utils.get_file(
            fname=info.keras_dirname,
            origin=url or info.url,
            extract=True,
            file_hash=None if url else info.sha256,
        )
    except Exception as exc:  # noqa: BLE001 - urllib, hashing and tar errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(missing_data_message(info, f"download failed: {reason}")) from None
    finally:
        socket.setdefaulttimeout(previous)
    found = _find_in_dir(Path(path), info) or _find_in_dir(Path(path).parent, info)
    if found is None:
        raise DataError(missing_data_message(info, "the download holds no batches"))
    return found


# --------------------------------------------------------------------------- reading


def _read_limited(file: Path, limit: int) -> bytes:
    size = file.stat().st_size
    if size > limit:
        raise DataError(
            f"too large for a CIFAR file ({size:,} bytes; the real one is under {limit:,})",
            path=str(file),
        )
    with open(file, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew since
        raise DataError(f"too large for a CIFAR file (over {limit:,} bytes)", path=str(file))
    return data


def _dir_files(loc: Location, info: DatasetInfo) -> Iterator[tuple[str, bytes]]:
    """The files of a batch folder, one at a time."""
    missing = [f for f in info.files if not (loc.path / f).is_file()]
    if missing:
        raise DataError(
            f"incomplete {info.title}: missing {', '.join(missing)} "
            f"(all of {', '.join(info.files)} are needed)",
            path=str(loc.path),
        )
    for name in (info.meta_file, *info.files):
        file = loc.path / name
        if not file.is_file():
            continue
        try:
            data = _read_limited(file, info.max_bytes(name))
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror or exc}", path=str(file)) from None
        yield name, data
        del data  # before the next file is read


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar member whose extended header (pax, GNU long name), which tarfile reads whole
    into memory, is refused when it is larger than any real one needs."""

    def _proc_member(self, tarfile_):
        headers = (
            tarfile.XHDTYPE,
            tarfile.XGLTYPE,
            tarfile.SOLARIS_XHDTYPE,
            tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK,
        )
        if self.type in headers and self.size > _MAX_TAR_HEADER:
            raise tarfile.HeaderError(f"an extended header of {self.size:,} bytes")
        return super()._proc_member(tarfile_)


def _tar_files(loc: Location, info: DatasetInfo) -> Iterator[tuple[str, bytes]]:
    """The data files of an archive, one at a time, as the stream reaches them; each
    member's size is checked from its header before it is decompressed."""
    wanted = {*info.files, info.meta_file}
    budget = sum(info.max_bytes(name) for name in wanted) + _MAX_OTHER_BYTES
    seen: set[str] = set()
    members = total = 0
    try:
        # Stream mode ("r|*"): one pass through the compressed file, one member in memory.
        with tarfile.open(loc.path, mode="r|*", tarinfo=_BoundedTarInfo) as archive:
            for member in archive:
                members, total = members + 1, total + member.size
                name = _data_member(member, wanted, seen, info)
                if name is not None and member.size > info.max_bytes(name):
                    raise DataError(
                        f"{member.name}: too large for a CIFAR file ({member.size:,} bytes; "
                        f"the real one is under {info.max_bytes(name):,})",
                        path=str(loc.path),
                    )
                _check_archive_totals(loc, info, members, total, budget)
                if name is None:
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle is not None else b""
                if len(data) != member.size:
                    raise EOFError("archive ended inside a member")
                seen.add(name)
                yield name, data
                del data  # before the next member is read
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if isinstance(exc, EOFError) or "end-of-stream" in reason or "unexpected end" in reason:
            reason = "the archive is truncated"
        raise DataError(f"corrupt or truncated archive ({reason})", path=str(loc.path)) from None
    missing = [f for f in info.files if f not in seen]
    if missing:
        raise DataError(
            f"incomplete {info.title} archive: missing {', '.join(missing)} "
            f"(all of {', '.join(info.files)} are needed, in a {info.folder} folder)",
            path=str(loc.path),
        )


def _data_member(member: tarfile.TarInfo, wanted: set, seen: set, info: DatasetInfo) -> str | None:
    """The data file ``member`` is (its base name), or None for any other member."""
    parts = Path(member.name).parts
    base = parts[-1] if parts else ""
    if base not in wanted or base in seen or not member.isfile():
        return None
    if len(parts) > 1 and parts[-2] != info.folder:
        return None
    return base


def _check_archive_totals(
    loc: Location, info: DatasetInfo, members: int, total: int, budget: int
) -> None:
    if members > _MAX_TAR_MEMBERS:
        raise DataError(
            f"the archive has more than {_MAX_TAR_MEMBERS:,} members; a {info.title} archive has 9",
            path=str(loc.path),
        )
    if total > budget:
        raise DataError(
            f"the archive holds more than {budget:,} bytes, more than a {info.title} archive "
            "can (a corrupt or malicious file)",
            path=str(loc.path),
        )


def data_files(loc: Location, info: DatasetInfo) -> list[Path]:
    """The files reading ``loc`` reads (the archive, or the batch folder's files)."""
    if loc.kind == "tar":
        return [loc.path]
    return [loc.path / name for name in (info.meta_file, *info.files)]


def read_location(loc: Location, info: DatasetInfo) -> TrainingData:
    """Read and validate every batch of the data set at ``loc``, one file at a time."""
    files = _dir_files(loc, info) if loc.kind == "dir" else _tar_files(loc, info)

    def shown(name: str) -> str:
        return str(loc.path / name) if loc.kind == "dir" else f"{loc.path}:{info.folder}/{name}"

    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names = None
    for name, data in files:
        if name == info.meta_file:
            names = parse_meta(data, name=shown(name), info=info)
        else:
            batches[name] = parse_batch(
                data, name=shown(name), label_key=info.label_key, num_classes=info.num_classes
            )
        del data  # the raw bytes go before the next file is read

    def joined(group: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*(batches.pop(name) for name in group), strict=True)
        return (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))

    notes = []
    if names is None:
        names = list(info.default_names)
        notes.append(f"{shown(info.meta_file)} is missing; using the standard class names")
    x_train, y_train = joined(info.train_files)
    x_test, y_test = joined(info.test_files)
    return TrainingData(
        x_train, y_train, x_test, y_test, names, str(loc.path), info.key, info.title, notes
    )


def load(
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    *,
    allow_download: bool = True,
    download_url: str | None = None,
    download_timeout: float = _DOWNLOAD_TIMEOUT_S,
    on_note: Callable[[str], None] | None = None,
) -> TrainingData:
    """Find, read and validate a data set (see the module docs for where it looks)."""
    info = dataset_info(dataset)
    loc = locate(info, data_dir)
    if loc is None:
        if not allow_download:
            raise DataError(missing_data_message(info, "downloading is off"))
        loc = download(info, url=download_url, timeout=download_timeout, on_note=on_note)
    return read_location(loc, info)

"""A folder of labelled images: its layout (:func:`find_layout`) and the scan that reads
every file once before training (:func:`scan_folder`).

Two layouts:

* **flat**: ``DATA/CLASS/...`` — one sub-folder per class (class names: the folder names,
  sorted); the test and validation images are split off by
  :mod:`convkit.training.splits`;
* **split**: ``DATA/train/CLASS/...`` and ``DATA/test/CLASS/...`` (``test/`` optional), and
  optionally ``DATA/val/CLASS/...``; the class names are ``train/``'s, and ``test/`` and
  ``val/`` may hold only those classes.

Inside a class folder, images are found in sub-folders too; hidden files and folders are
left out, and files whose suffix is no image format convkit reads are skipped (and counted).

The scan decodes every file through convkit's own I/O (:func:`convkit.image.codec.read_file`
and :func:`~convkit.image.codec.decode_image`: the size from the header checked against
``max_pixels`` before decoding, every format and bit depth convkit reads, EXIF orientation)
on the executor (:mod:`convkit.engine.executor`). A file that cannot be read is named with
its reason, and training goes on without it (or not: ``on_bad``). While the decoded images
fit ``keep_bytes`` they are kept, so the images are read from disk only once.

Threads pay only for files that take a while to read and decode: a small PNG decodes in
tens of microseconds, less than Python's threads spend handing the interpreter lock back
and forth around it. So the scan first reads :data:`_PROBE` files on the calling thread and
goes on on ``jobs`` threads only when a file took a while: a median of
:data:`_THREADS_FROM_CPU` seconds of CPU time (larger images), or of
:data:`_THREADS_FROM_WALL` seconds of wall-clock time (a cold or network disk); otherwise
it reads the rest on that one thread too. CPU time, not wall-clock time, decides the usual
case: a busy machine makes every file slow, and threads would only make that worse.
"""

from __future__ import annotations

import os
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.errors import ConvkitError, DataError
from convkit.image.sources import IMAGE_SUFFIXES, Source, file_kind

PARTS = ("train", "val", "test")
"""The sub-folders of the split layout, in the order they are shown."""
FLAT = "images"
"""The one part of the flat layout."""
_CHUNK = 32
"""Files one task of the scan reads: a small image decodes in tens of microseconds, less
than handing a task to a thread costs."""
_PROBE = 64
"""Files the scan reads on the calling thread before it decides on threads (see the module)."""
_PROBE_SECONDS = 0.05
"""Or fewer (3 at least), when they took this long: large photos go on threads at once."""
_THREADS_FROM_CPU = 75e-6
"""The median CPU seconds a file of the probe took from which the rest is read on ``jobs``
threads. Measured on 2 cores: PNGs of 32x32 (40 us a file) are read 0.6-0.8 times as fast
by two threads as by one, of 48x48 to 56x56 (80 us) as fast, of 64x64 (95 us) 1.3-1.4
times as fast, JPEGs of 128x128 to 256x256 (180-550 us) 1.3-1.4 times."""
_THREADS_FROM_WALL = 1e-3
"""Or the median wall-clock seconds a file of the probe took (waiting for the disk)."""
_LAYOUT_HELP = (
    "put each class's images into a sub-folder named after the class (DATA/cats/, "
    "DATA/dogs/), or into DATA/train/CLASS/ and DATA/test/CLASS/"
)


@dataclass(slots=True)
class ImageFile:
    """One file of the folder: its part (``train``/``val``/``test``, or :data:`FLAT`), its
    class label, its path (as messages name it) and that path relative to the folder.
    Plain strings: a folder of many thousand files is listed without a ``Path`` each."""

    part: str
    label: int
    path: str
    rel: str

    @property
    def source(self) -> Source:
        """The file as an input of convkit's I/O."""
        return Source(self.path, Path(self.path), Path(self.rel))


@dataclass
class FolderLayout:
    """What a folder holds, found by listing it (nothing read)."""

    root: Path
    kind: str  # "flat" or "split"
    parts: list[str]  # the parts present, in PARTS order (flat: [FLAT])
    class_names: list[str]
    files: list[ImageFile]
    skipped: int = 0  # files that are no image
    notes: list[str] = field(default_factory=list)


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(
            f"cannot list the folder ({exc.strerror or exc})", path=str(folder)
        ) from None


def _class_folders(folder: Path) -> list[Path]:
    return [p for p in _listing(folder) if file_kind(p)[0] == "dir"]


def _images_in(folder: str) -> tuple[list[str], int]:
    """The image files under ``folder`` (sub-folders too, hidden ones left out), sorted, as
    ``folder/NAME`` (``NAME`` for ``.``), and how many other files there were. Only regular
    files (a pipe would block a read); links to folders are not followed (as ``-r`` and
    ``os.walk``: a link to ``..`` would never end, and one to another class's folder would
    give its images this class's label)."""
    found, skipped = [], 0
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot list the folder ({exc.strerror or exc})", path=folder) from None
    prefix = "" if folder == "." else os.path.join(folder, "")
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            more, other = _images_in(prefix + name)
            found.extend(more)
            skipped += other
        elif entry.is_file() and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
            found.append(prefix + name)
        else:
            skipped += 1
    return found, skipped


def find_layout(data: str | Path) -> FolderLayout:
    """The layout of the folder ``data`` (see the module); a :class:`DataError` says what
    is wrong with one that cannot be trained on."""
    root = Path(data)
    kind, problem = file_kind(root)
    if kind != "dir":
        raise DataError(
            f"`data` must be a folder of class folders (or cifar10, cifar100): "
            f"{problem or 'not a folder'}",
            path=str(root),
        )
    subfolders = _class_folders(root)
    names = {p.name for p in subfolders}
    if "train" in names and names <= set(PARTS):
        return _split_layout(root)
    if not subfolders:
        loose = _images_in(str(root))[0]
        what = f"{len(loose)} images but no class folders" if loose else "no class folders"
        raise DataError(f"the folder holds {what}: {_LAYOUT_HELP}", path=str(root))
    layout = FolderLayout(root, "flat", [FLAT], [p.name for p in subfolders], [])
    _add_classes(layout, FLAT, subfolders)
    loose = [p for p in _listing(root) if file_kind(p)[0] == "file"]
    if loose:
        layout.notes.append(
            f"{root}: {len(loose)} file(s) beside the class folders are in no class, "
            f"left out ({loose[0].name}{', ...' if len(loose) > 1 else ''})"
        )
    _check_classes(layout)
    return layout


def _split_layout(root: Path) -> FolderLayout:
    train = _class_folders(root / "train")
    layout = FolderLayout(root, "split", [], [p.name for p in train], [])
    for part in PARTS:
        if not (root / part).is_dir():
            continue
        folders = train if part == "train" else _class_folders(root / part)
        unknown = [p.name for p in folders if p.name not in layout.class_names]
        if unknown:
            raise DataError(
                f"{part}/ has class folders that train/ lacks: {', '.join(unknown[:5])} "
                "(a model can only learn the classes of train/)",
                path=str(root),
            )
        layout.parts.append(part)
        _add_classes(layout, part, folders)
    _check_classes(layout)
    return layout


def _add_classes(layout: FolderLayout, part: str, folders: list[Path]) -> None:
    root = str(layout.root)
    start = 0 if root == "." else len(os.path.join(root, ""))
    for folder in folders:
        label = layout.class_names.index(folder.name)
        images, skipped = _images_in(str(folder))
        layout.skipped += skipped
        layout.files.extend(ImageFile(part, label, path, path[start:]) for path in images)


def _check_classes(layout: FolderLayout) -> None:
    where = f"{layout.root}/train" if layout.kind == "split" else str(layout.root)
    if not layout.class_names:
        raise DataError(f"no class folders: {_LAYOUT_HELP}", path=where)
    if len(layout.class_names) < 2:
        raise DataError(
            f"only one class folder ({layout.class_names[0]}/): a classifier needs at least "
            "two classes, each in its own folder",
            path=where,
        )
    if not layout.files:
        raise DataError(f"no image files in the class folders ({_LAYOUT_HELP})", path=where)
    for name in layout.class_names:
        # A class name goes into labels.txt (one a line), JSON and titles: a newline would
        # split it in two, an undecodable byte (a surrogate) cannot be written as UTF-8.
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
            raise DataError(
                f"class folder {name!r} has a control character or a byte that is not UTF-8 "
                "in its name: rename the folder (the name is the class name)",
                path=where,
            )


@dataclass(slots=True)
class ScannedImage:
    """What the scan learned of one readable file; ``pixels`` is the decoded image when it
    was kept (see ``keep_bytes``), prepared when the preparation was known."""

    height: int
    width: int
    gray: bool | None  # one channel, or three equal ones; None: not looked at
    bits: int  # 8 or 16
    alpha: bool
    pixels: np.ndarray | None = None
    prepared: bool = False


@dataclass
class FolderScan:
    """The scan of a folder: one :class:`ScannedImage` per file of the layout (None where
    the file cannot be read) and the unreadable files with their reasons."""

    layout: FolderLayout
    images: list[ScannedImage | None]
    bad: list[tuple[str, str]]  # (file, reason)

    def readable(self) -> list[int]:
        return [i for i, image in enumerate(self.images) if image is not None]

    def counts(self) -> dict[str, list[int]]:
        """Readable images per part, per class."""
        counts = {part: [0] * len(self.layout.class_names) for part in self.layout.parts}
        for file, image in zip(self.layout.files, self.images, strict=True):
            if image is not None:
                counts[file.part][file.label] += 1
        return counts

    def bad_counts(self) -> list[int]:
        """Unreadable files per class."""
        counts = [0] * len(self.layout.class_names)
        for file, image in zip(self.layout.files, self.images, strict=True):
            if image is None:
                counts[file.label] += 1
        return counts


def is_gray(image: np.ndarray) -> bool:
    """One channel, or colour channels that are all equal (a gray photo saved as colour)."""
    if image.ndim == 2:
        return True
    b, g, r = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    step = (slice(None, None, 7), slice(None, None, 7))
    if not (np.array_equal(b[step], g[step]) and np.array_equal(g[step], r[step])):
        return False
    return bool(np.array_equal(b, g) and np.array_equal(g, r))


class _Keeper:
    """Keeps decoded images while they fit a byte budget, and knows whether a colour image
    was seen (shared by the scan's threads)."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.lock = threading.Lock()
        self.colour_seen = False

    def gray(self, image: np.ndarray) -> bool | None:
        """Whether ``image`` is gray; None once a colour image was seen (the answer to
        "is every image gray?" is known then)."""
        if image.ndim == 2:
            return True
        if self.colour_seen:
            return None
        gray = is_gray(image)
        if not gray:
            self.colour_seen = True
        return gray

    def take(self, nbytes: int) -> bool:
        with self.lock:
            if nbytes > self.left:
                return False
            self.left -= nbytes
            return True


def scan_folder(
    layout: FolderLayout,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_bytes: int = 0,
    preparation: Mapping[str, Any] | None = None,
    on_done: Callable[[], None] | None = None,
) -> FolderScan:
    """Read every file of ``layout`` once (see the module). With ``preparation`` known,
    the images kept are prepared at once (small); otherwise they are kept as decoded.
    ``on_done`` is called once per file read (or found unreadable)."""
    from convkit.heavy import import_cv2
    from convkit.image.codec import decode_image, read_file
    from convkit.training.preparation import check_preparation, prepare_pixels

    prep = check_preparation(preparation) if preparation is not None else None
    keeper = _Keeper(keep_bytes)
    files = layout.files
    n = len(files)
    images: list[ScannedImage | None] = [None] * n
    bad: list[tuple[int, str]] = []  # (index, reason), in the order found
    import_cv2(max_pixels)  # loaded (with this limit) before the probe times a file

    def read(index: int) -> None:
        path = files[index].path
        try:
            image = decode_image(read_file(path, name=path), name=path, max_pixels=max_pixels)
        except ConvkitError as exc:
            bad.append((index, exc.message))  # list.append: atomic under threads
        else:
            found = ScannedImage(
                image.shape[0],
                image.shape[1],
                keeper.gray(image),
                image.dtype.itemsize * 8,
                image.ndim == 3 and image.shape[2] == 4,
            )
            kept = prepare_pixels(image, prep) if prep is not None else image
            if keeper.take(kept.nbytes):
                found.pixels, found.prepared = kept, prep is not None
            images[index] = found
        if on_done is not None:
            on_done()

    for_each(n, read, jobs=jobs)
    bad.sort()
    return FolderScan(layout, images, [(files[index].path, reason) for index, reason in bad])


def for_each(count: int, work: Callable[[int], None], *, jobs: int) -> None:
    """``work(index)`` for each index below ``count``, on the executor: the first
    :data:`_PROBE` (fewer when they take :data:`_PROBE_SECONDS`) on the calling thread,
    timed, and the rest in chunks of :data:`_CHUNK` indices, on ``jobs`` threads when the
    probe found them worth it, else on that thread too (see the module). ``work`` keeps its
    own results and errors."""
    from convkit.engine.executor import BatchOptions

    probe = []  # (CPU seconds, wall-clock seconds) of each index
    start = time.perf_counter()
    for index in range(min(_PROBE, count)):
        cpu, wall = time.thread_time(), time.perf_counter()
        work(index)
        probe.append((time.thread_time() - cpu, time.perf_counter() - wall))
        if len(probe) >= 3 and time.perf_counter() - start >= _PROBE_SECONDS:
            break
    starts = range(len(probe), count, _CHUNK)

    def chunk(k: int) -> None:
        for index in range(starts[k], min(starts[k] + _CHUNK, count)):
            work(index)

    options = BatchOptions(jobs=jobs if jobs > 1 and _worth_threads(probe) else 1)
    with options.executor(len(starts)) as executor:
        for _ in executor.map(chunk, range(len(starts))):
            pass


def _worth_threads(probe: list[tuple[float, float]]) -> bool:
    """Whether files that took ``probe`` (CPU, wall-clock seconds) are worth threads."""
    if not probe:
        return False
    cpu, wall = np.median(np.array(probe, np.float64), axis=0)
    return bool(cpu >= _THREADS_FROM_CPU or wall >= _THREADS_FROM_WALL)

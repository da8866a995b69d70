"""The image I/O contract that every convkit command stands on.

Reading
    :func:`collect_sources` turns command-line paths into :class:`Source` objects: files,
    quoted globs (expanded here, ``**`` included), directories (their images; ``recursive``
    descends) and ``-`` (one image from stdin). :func:`read_image` reads one source's bytes
    and :func:`decode_image` turns bytes into a NumPy array.

    Arrays are in OpenCV's channel order: ``(H, W)`` for gray, ``(H, W, 3)`` BGR,
    ``(H, W, 4)`` BGRA; dtype ``uint8`` or ``uint16``, as stored in the file.

    * Alpha is kept as the fourth channel. Commands that change colour ignore it
      (``grayscale`` drops it; ``filter`` filters the colour channels and keeps alpha as it
      was); nothing is composited onto a background.
    * EXIF orientation (JPEG) is applied, so arrays are upright as a photo viewer shows
      them; OpenCV's own unchanged-mode decoding does not apply it.
    * The pixel count is read from the file header (PNG, JPEG, BMP, GIF, WebP, TIFF, PNM)
      and checked against ``max_pixels`` *before* decoding, so a decompression bomb is
      refused without allocating it.

Writing
    :func:`encode_image` encodes in memory; :func:`write_atomic` writes a temporary file in
    the target folder and renames it over the target, so an interrupted run never leaves a
    half-written file and a failed write is always an error (``cv2.imwrite`` reports
    failure by returning False, and is not used). :class:`OutputPlan` decides every output
    path up front, refusing any that would overwrite an input.
"""

from __future__ import annotations

import glob
import os
import struct
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS, DEFAULT_NAME_TEMPLATE
from convkit.errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    UsageError,
)

IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".tif",
        ".tiff",
        ".bmp",
        ".dib",
        ".webp",
        ".gif",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".pxm",
        ".pfm",
        ".sr",
        ".ras",
        ".hdr",
        ".pic",
        ".exr",
        ".avif",
    }
)
"""Suffixes taken as images when scanning a directory; other files there are skipped."""

WRITE_FORMATS = {
    # format -> (suffix, dtypes the format can hold)
    "png": (".png", ("uint8", "uint16")),
    "jpg": (".jpg", ("uint8",)),
    "tiff": (".tiff", ("uint8", "uint16")),
    "bmp": (".bmp", ("uint8",)),
    "webp": (".webp", ("uint8",)),
    "ppm": (".ppm", ("uint8", "uint16")),
    "pgm": (".pgm", ("uint8", "uint16")),
}
_FORMAT_ALIASES = {"jpeg": "jpg", "jpe": "jpg", "tif": "tiff", "pnm": "ppm"}

STDIN = "-"


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One input image.

    ``display`` is how messages name it (the path as the user wrote or found it, ``-`` for
    stdin); ``rel`` is the path used to name outputs, relative to the directory it was found
    in (so ``--recursive`` output mirrors the input tree); ``problem`` is set when the input
    could not even be located, and reading it raises that error.
    """

    display: str
    path: Path | None
    rel: Path
    problem: str | None = None

    @property
    def stem(self) -> str:
        return self.rel.stem

    @property
    def is_stdin(self) -> bool:
        return self.path is None and self.problem is None


@dataclass
class Collected:
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def collect_sources(paths: Sequence[str], *, recursive: bool = False) -> Collected:
    """Expand command-line paths into sources, in the order given.

    Explicit files are always taken (a non-image named explicitly fails when read, with
    its own message); inside directories only files with an image suffix are taken, and the
    others are mentioned in a note. Missing paths and globs that match nothing become
    sources with a ``problem``, so a batch reports them and goes on with the rest.
    """
    out = Collected()
    if not paths:
        raise UsageError("no input images given")
    if sum(p == STDIN for p in paths) > 1:
        raise UsageError("'-' (stdin) can be given only once")
    seen: set[str] = set()

    def add(src: Source) -> None:
        key = str(src.path.resolve()) if src.path is not None else src.display
        if key not in seen:
            seen.add(key)
            out.sources.append(src)

    for raw in paths:
        if raw == STDIN:
            add(Source(STDIN, None, Path("stdin")))
            continue
        path = Path(raw)
        if path.is_dir():
            _scan_dir(path, recursive, add, out.notes)
        elif path.exists():
            add(Source(raw, path, Path(path.name)))
        elif _has_glob(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                out.sources.append(Source(raw, None, Path(raw), "no files match this pattern"))
            for match in files:
                add(Source(str(match), match, Path(match.name)))
        else:
            out.sources.append(Source(raw, None, Path(path.name), "no such file or directory"))
    return out


def _scan_dir(root: Path, recursive: bool, add, notes: list[str]) -> None:
    skipped: list[str] = []
    if recursive:
        walked = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            walked.extend(Path(folder) / f for f in sorted(files))
    else:
        walked = sorted(p for p in root.iterdir() if p.is_file())
    found = 0
    for file in walked:
        if file.name.startswith("."):
            continue  # hidden files, our own temp files among them
        if file.suffix.lower() in IMAGE_SUFFIXES:
            found += 1
            add(Source(str(file), file, file.relative_to(root)))
        else:
            skipped.append(file.name)
    if skipped:
        shown = ", ".join(skipped[:3]) + (
            f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        )
        notes.append(f"{root}: skipped {len(skipped)} non-image file(s): {shown}")
    if not found:
        notes.append(f"{root}: no images found")


# --------------------------------------------------------------------------- decoding


def read_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode one source. Raises :class:`ImageReadError` naming the source."""
    if source.problem:
        raise ImageReadError(source.problem, path=source.display)
    try:
        if source.is_stdin:
            data = sys.stdin.buffer.read()
        else:
            data = source.path.read_bytes()  # bytes + imdecode: non-ASCII paths work
    except IsADirectoryError:
        raise ImageReadError("is a directory", path=source.display) from None
    except PermissionError:
        raise ImageReadError("permission denied", path=source.display) from None
    except OSError as exc:
        raise ImageReadError(exc.strerror or str(exc), path=source.display) from None
    return decode_image(data, name=source.display, max_pixels=max_pixels)


def decode_image(
    data: bytes, *, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes into an 8- or 16-bit array (see the module docs)."""
    if not data:
        raise ImageReadError("empty file", path=name)
    kind = sniff_format(data)
    size = sniff_size(data, kind)
    if size is not None:
        width, height = size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image too large: {width}x{height} = {width * height:,} pixels, over the "
                f"limit of {max_pixels:,} (raise it with --max-pixels)",
                path=name,
            )
    if kind == "jpeg" and not _jpeg_is_complete(data):
        raise ImageReadError("truncated JPEG (no end-of-image marker)", path=name)

    cv2 = import_cv2(max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageReadError(f"cannot decode: {_cv_reason(exc)}", path=name) from None
    if image is None:
        if kind is None:
            raise ImageReadError("not an image (unknown or unsupported format)", path=name)
        raise ImageReadError(f"cannot decode: corrupt or truncated {kind.upper()}", path=name)
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(
            f"unsupported pixel type {image.dtype} (convkit handles 8- and 16-bit images)",
            path=name,
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise ImageReadError(f"unsupported channel count {image.shape[2]}", path=name)
    if kind == "jpeg":
        image = apply_exif_orientation(image, jpeg_exif_orientation(data))
    return image


_CV2_MODULE = None


def import_cv2(max_pixels: int = DEFAULT_MAX_PIXELS):
    """Import OpenCV on first use (``shape-calc`` and ``--help`` never pay for it).

    Thread-safe enough: a second import in a racing thread returns the same module.

    OpenCV has its own decoder limit (2**30 pixels), read once at first use; raise it when
    the user's limit is higher so that ``--max-pixels`` really is the limit.
    """
    global _CV2_MODULE
    if _CV2_MODULE is None:
        if max_pixels > 1 << 30:
            os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(max_pixels))
        # OpenCV logs its own warnings ("PNG input buffer is incomplete") on stderr; convkit
        # reports every failure itself in one line, so keep OpenCV quiet unless debugging.
        if os.environ.get("CONVKIT_DEBUG", "") in ("", "0"):
            os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        import cv2

        _CV2_MODULE = cv2
    return _CV2_MODULE


def _cv_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else "OpenCV error"


def sniff_format(data: bytes) -> str | None:
    """The container format named by the first bytes, or None when unknown."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"123456":
        return "pnm"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head[4:12] == b"ftypavif":
        return "jpeg2000" if head.startswith(b"\x00\x00\x00\x0cjP") else "avif"
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "exr"
    if head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE"):
        return "hdr"
    return None


def sniff_size(data: bytes, kind: str | None = None) -> tuple[int, int] | None:
    """``(width, height)`` read from the header, or None when the format is not parsed."""
    kind = kind or sniff_format(data)
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "gif":
            return struct.unpack("<HH", data[6:10])
        if kind == "bmp":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if kind == "jpeg":
            return _jpeg_size(data)
        if kind == "webp":
            return _webp_size(data)
        if kind == "tiff":
            return _tiff_size(data)
        if kind == "pnm":
            return _pnm_size(data)
    except (struct.error, IndexError, ValueError):
        return None  # a header too short to parse: the decoder will say what is wrong
    return None


def _jpeg_segments(data: bytes):
    """Yield ``(marker, payload_offset, payload_length)`` up to the start of scan."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        yield marker, i + 4, length - 2
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        i += 2 + length


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, offset, _ in _jpeg_segments(data):
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[offset + 1 : offset + 5])
            return width, height
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    # libjpeg decodes a truncated file into a grey-padded image with only a warning;
    # a complete JPEG ends with EOI (FF D9), possibly followed by a few padding bytes.
    return b"\xff\xd9" in data[-64:]


def jpeg_exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a JPEG, 1 when absent or unreadable."""
    try:
        for marker, offset, length in _jpeg_segments(data):
            if marker == 0xE1 and data[offset : offset + 6] == b"Exif\x00\x00":
                return _tiff_orientation(data[offset + 6 : offset + length])
    except (struct.error, IndexError):
        pass
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, _type = struct.unpack(order + "HH", tiff[entry : entry + 4])
        if tag == 0x0112:
            (value,) = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` upright (OpenCV's ExifTransform rules)."""
    if orientation in (5, 6, 7, 8):
        image = image.swapaxes(0, 1)
    flips = {2: (1,), 3: (0, 1), 4: (0,), 6: (1,), 7: (0, 1), 8: (0,)}.get(orientation, ())
    for axis in flips:
        image = np.flip(image, axis=axis)
    return np.ascontiguousarray(image)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, typ = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (dims[tag],) = struct.unpack(
                order + fmt, data[entry + 8 : entry + 8 + struct.calcsize(fmt)]
            )
    if 256 in dims and 257 in dims:
        return dims[256], dims[257]
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    tokens: list[bytes] = []
    for line in data[2:512].splitlines():
        line = line.split(b"#", 1)[0]
        tokens.extend(line.split())
        if len(tokens) >= 2:
            return int(tokens[0]), int(tokens[1])
    return None


# --------------------------------------------------------------------------- writing


def normalize_format(fmt: str) -> str:
    key = fmt.lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in WRITE_FORMATS:
        known = ", ".join(WRITE_FORMATS)
        raise UsageError(f"unknown output format {fmt!r} (known: {known})")
    return key


def format_for_path(path: str | Path, default: str = "png") -> str:
    """The output format a file name asks for by its suffix, else ``default``."""
    suffix = Path(path).suffix.lower()
    if suffix and suffix.lstrip(".") in {**WRITE_FORMATS, **_FORMAT_ALIASES}:
        return normalize_format(suffix)
    return default


def encode_image(image: np.ndarray, fmt: str = "png", *, name: str = "<output>") -> bytes:
    """Encode an array in memory; any failure is an :class:`ImageWriteError`."""
    fmt = normalize_format(fmt)
    suffix, dtypes = WRITE_FORMATS[fmt]
    if image.dtype.name not in dtypes:
        raise ImageWriteError(
            f"{fmt.upper()} cannot hold {image.dtype} pixels "
            f"(write 16-bit results as PNG, TIFF or PGM/PPM)",
            path=name,
        )
    if fmt in ("ppm", "pgm"):
        # Netpbm has one format per channel count: PGM for gray, PPM for colour.
        if image.ndim == 3 and image.shape[2] == 4:
            raise ImageWriteError(f"{fmt.upper()} cannot hold an alpha channel", path=name)
        suffix = ".pgm" if image.ndim == 2 else ".ppm"
    cv2 = import_cv2()
    try:
        ok, buf = cv2.imencode(suffix, image)
    except cv2.error as exc:
        raise ImageWriteError(
            f"cannot encode {fmt.upper()}: {_cv_reason(exc)}", path=name
        ) from None
    if not ok:
        raise ImageWriteError(f"cannot encode {fmt.upper()}", path=name)
    return buf.tobytes()


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
    if not folder.is_dir():
        raise ImageWriteError(
            f"cannot write: folder {str(folder)!r} does not exist", path=str(path)
        )
    if path.is_dir():
        raise ImageWriteError("cannot write: is a directory", path=str(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=suffix)
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
    """Write encoded image bytes to stdout (the caller has checked it is not a terminal)."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


# --------------------------------------------------------------------------- output plan


@dataclass(frozen=True)
class Target:
    """Where one result goes: a file path, or stdout when ``path`` is None."""

    path: Path | None
    fmt: str

    @property
    def display(self) -> str:
        return "-" if self.path is None else str(self.path)


@dataclass
class OutputPlan:
    """Decides the target of every (input, result) pair before anything is processed.

    ``output`` is ``-o`` (a file, or ``-`` for stdout): one input, one result. ``out_dir``
    takes any number, named by ``template`` with the fields ``{stem}`` (input file name
    without suffix), ``{what}`` (the result: ``gray``, ``sobel-x``...), ``{ext}`` (the
    output format's suffix) and ``{index}`` (the input's position, from 1). Files found
    inside a directory keep their sub-folder under ``out_dir``.
    """

    output: str | None = None
    out_dir: Path | None = None
    template: str = DEFAULT_NAME_TEMPLATE
    fmt: str | None = None
    in_place: bool = False
    stdout_is_tty: bool = False

    def validate(self, sources: Sequence[Source], whats: Sequence[str]) -> dict:
        """Return ``{(source_index, what): Target}``; raise :class:`UsageError` on conflicts."""
        if self.output is not None and self.out_dir is not None:
            raise UsageError("give either -o/--output or --out-dir, not both")
        if self.output is None and self.out_dir is None:
            raise UsageError("say where results go: -o FILE (one input) or --out-dir DIR")
        if self.fmt is not None:
            self.fmt = normalize_format(self.fmt)
        if self.output is not None:
            if len(sources) != 1:
                raise UsageError(f"-o takes one input, got {len(sources)}; use --out-dir DIR")
            if len(whats) != 1:
                raise UsageError(
                    f"-o takes one result, this run makes {len(whats)} per image "
                    f"({', '.join(whats)}); use --out-dir DIR"
                )
            if self.output == STDIN:
                if self.stdout_is_tty:
                    raise UsageError(
                        "refusing to write binary image data to a terminal; "
                        "redirect stdout or use -o FILE"
                    )
                targets = {(0, whats[0]): Target(None, self.fmt or "png")}
            else:
                path = Path(self.output)
                targets = {(0, whats[0]): Target(path, self.fmt or format_for_path(path))}
        else:
            targets = {}
            for i, src in enumerate(sources):
                for what in whats:
                    targets[(i, what)] = self._dir_target(src, i, what)
        self._check_conflicts(sources, targets)
        return targets

    def _dir_target(self, src: Source, index: int, what: str) -> Target:
        fmt = self.fmt or "png"
        try:
            name = self.template.format(
                stem=src.stem, what=what, ext=WRITE_FORMATS[fmt][0].lstrip("."), index=index + 1
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"bad --name template {self.template!r}: {exc} "
                "(fields: {stem}, {what}, {ext}, {index})"
            ) from None
        if not name or name.strip(".") == "" or "/" in name or os.sep in name:
            raise UsageError(f"--name template {self.template!r} gives a bad file name {name!r}")
        if self.fmt is None:
            fmt = format_for_path(name, fmt)
        return Target(self.out_dir / src.rel.parent / name, fmt)

    def _check_conflicts(self, sources: Sequence[Source], targets: dict) -> None:
        seen: dict[str, tuple] = {}
        for key, target in targets.items():
            if target.path is None:
                continue
            norm = os.path.abspath(target.path)
            if norm in seen:
                other = sources[seen[norm][0]].display
                raise UsageError(
                    f"two results would be written to {target.display} "
                    f"(from {other} and {sources[key[0]].display}); "
                    "use a --name template with {index} or separate runs"
                )
            seen[norm] = key
        if self.in_place:
            return
        # Compare file identities (device, inode), not names: a symlink, a hard link or
        # "./a/../x.png" is still the input. One stat per path keeps a 10,000-image batch
        # linear; a target that does not exist yet cannot be an input.
        existing: dict[tuple[int, int], Target] = {}
        for target in targets.values():
            identity = _file_identity(target.path) if target.path is not None else None
            if identity is not None:
                existing[identity] = target
        if not existing:
            return
        for src in sources:
            identity = _file_identity(src.path) if src.path is not None else None
            if identity is not None and identity in existing:
                raise UsageError(
                    f"{src.display}: the result would overwrite its input "
                    "(choose another output, or pass --in-place)"
                )


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino

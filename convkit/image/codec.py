"""Decoding and encoding images, in memory.

Arrays are in OpenCV's channel order: ``(H, W)`` for gray, ``(H, W, 3)`` BGR,
``(H, W, 4)`` BGRA; dtype ``uint8`` or ``uint16``, as stored in the file.

* Alpha is kept as the fourth channel. Commands that change colour ignore it
  (``grayscale`` drops it; ``filter`` filters the colour channels and keeps alpha as it
  was); nothing is composited onto a background.
* EXIF orientation (JPEG) is applied, so arrays are upright as a photo viewer shows
  them; OpenCV's own unchanged-mode decoding does not apply it.
* The pixel count is read from the file header (:mod:`convkit.image.headers`) and checked
  against ``max_pixels`` *before* decoding, so a decompression bomb is refused without
  allocating it.

Encoding is in memory too (:func:`encode_image`); :mod:`convkit.files` writes the bytes
atomically. ``cv2.imwrite`` reports failure by returning False, and is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.errors import ImageReadError, ImageTooLargeError, ImageWriteError, UsageError
from convkit.heavy import import_cv2
from convkit.image.headers import (
    apply_exif_orientation,
    format_name,
    jpeg_exif_orientation,
    jpeg_is_complete,
    sniff_format,
    sniff_size,
)
from convkit.image.sources import Source

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


def read_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode one source. Raises :class:`ImageReadError` naming the source."""
    if source.problem:
        raise ImageReadError(source.problem, path=source.display)
    if source.is_stdin:
        try:
            data = sys.stdin.buffer.read()
        except OSError as exc:
            raise ImageReadError(exc.strerror or str(exc), path=source.display) from None
    else:
        data = read_file(source.path, name=source.display)
    return decode_image(data, name=source.display, max_pixels=max_pixels)


def read_file(path: str | Path, *, name: str) -> bytes:
    """The bytes of the file ``path`` (then decoded by :func:`decode_image`: non-ASCII paths
    work); an :class:`ImageReadError` naming it as ``name`` when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except IsADirectoryError:
        raise ImageReadError("is a directory", path=name) from None
    except PermissionError:
        raise ImageReadError("permission denied", path=name) from None
    except OSError as exc:
        raise ImageReadError(exc.strerror or str(exc), path=name) from None


def decode_image(
    data: bytes, *, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes into an 8- or 16-bit array (see the module docs)."""
    if not data:
        raise ImageReadError("empty file", path=name)
    # The size as the decoder will read it; a format convkit does not read, or a header
    # whose size is not certain, is refused here: OpenCV never sees it.
    kind = sniff_format(data)
    try:
        width, height = sniff_size(data, kind)
    except ImageReadError as exc:
        raise exc.with_path(name) from None
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image too large: {width}x{height} = {width * height:,} pixels, over the "
            f"limit of {max_pixels:,} (raise it with `max_pixels`)",
            path=name,
        )
    if kind == "jpeg" and not jpeg_is_complete(data):
        raise ImageReadError("truncated JPEG (no end-of-image marker)", path=name)

    cv2 = import_cv2(max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE" in str(exc):  # the decoder's own limit (see heavy.import_cv2)
            raise ImageTooLargeError(
                f"image too large: the decoder refused it, over the limit of "
                f"{max_pixels:,} pixels (raise it with `max_pixels`)",
                path=name,
            ) from None
        raise ImageReadError(f"cannot decode: {_cv_reason(exc)}", path=name) from None
    if image is None:
        raise ImageReadError(f"cannot decode: corrupt or truncated {format_name(kind)}", path=name)
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


def _cv_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].strip() if text else "OpenCV error"


def normalize_format(fmt: str) -> str:
    key = fmt.lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in WRITE_FORMATS:
        known = ", ".join(WRITE_FORMATS)
        raise UsageError(f"unknown output format {fmt!r} (known: {known})")
    return key


def format_for_path(path: str | Path, default: str = "png") -> str:
    """The output format a file name asks for by its suffix; ``default`` when it has none.

    A suffix that names no format convkit writes (``out.gif``, ``x.xyz``) is an error: a
    PNG under that name would mislead whoever opens it. ``fmt`` says which format to use.
    """
    suffix = Path(path).suffix.lower()
    if not suffix:
        return default
    if suffix.lstrip(".") in {**WRITE_FORMATS, **_FORMAT_ALIASES}:
        return normalize_format(suffix)
    raise UsageError(
        f"{Path(path).name}: convkit does not write {suffix} files (it writes "
        f"{', '.join(WRITE_FORMATS)}); choose one of those suffixes, or give `fmt`"
    )


def encode_image(
    image: np.ndarray, fmt: str = "png", *, name: str = "<output>", quality: int | None = None
) -> bytes:
    """Encode an array in memory; any failure is an :class:`ImageWriteError`. ``quality``
    (1-100) applies to JPEG and WebP, the lossy formats; the others are lossless."""
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
        params = []
        if quality is not None and fmt in ("jpg", "webp"):
            flag = cv2.IMWRITE_JPEG_QUALITY if fmt == "jpg" else cv2.IMWRITE_WEBP_QUALITY
            params = [flag, int(quality)]
        ok, buf = cv2.imencode(suffix, image, params)
    except cv2.error as exc:
        raise ImageWriteError(
            f"cannot encode {fmt.upper()}: {_cv_reason(exc)}", path=name
        ) from None
    if not ok:
        raise ImageWriteError(f"cannot encode {fmt.upper()}", path=name)
    return buf.tobytes()

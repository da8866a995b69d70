"""What a file's first bytes say: its format, its pixel size, its EXIF orientation.

The pixel count is read from the header (PNG, JPEG, BMP, GIF, WebP, TIFF, PNM) so that the
decoder can be refused a decompression bomb *before* it allocates anything. Pure Python:
no OpenCV.
"""

from __future__ import annotations

import struct

import numpy as np


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


def jpeg_is_complete(data: bytes) -> bool:
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

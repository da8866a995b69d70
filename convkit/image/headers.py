"""What a file's first bytes say: its format, its pixel size, its EXIF orientation.

The pixel size is read from the header *before* decoding, so that a decompression bomb is
refused without allocating it. convkit reads exactly the formats below
(:data:`SUPPORTED_FORMATS`); each reader follows the decoder OpenCV uses for it, rule for
rule where the size is concerned, so that the size read here is the size it allocates:

* PNG (libpng): the IHDR chunk, which must come first;
* JPEG (libjpeg-turbo): markers found the way ``next_marker`` finds them (stray bytes and
  fill bytes skipped), the size from the first frame header (SOF), which must come before
  the first scan;
* TIFF and BigTIFF (libtiff): the first IFD, the first ImageWidth/ImageLength entries;
* BMP (OpenCV): BITMAPINFOHEADER and later (signed 32-bit sizes, a negative height meaning
  top-down) and the OS/2 BITMAPCOREHEADER (unsigned 16-bit sizes);
* WebP (libwebp): the VP8X canvas, or the VP8/VP8L frame header;
* GIF (OpenCV): the logical screen;
* PNM P1-P6 and PAM P7 (OpenCV's PxM/PAM readers: comments of any length, anywhere a
  number may start; a PAM DEPTH outside 1-4 is refused); Sun raster (OpenCV);
* JPEG 2000, JP2 or raw codestream (OpenJPEG): the codestream's SIZ marker (and a JP2
  file's ``ihdr`` box must agree with it).

A file in one of these formats whose size cannot be read with certainty (truncated,
inconsistent, an offset outside the file) is refused; so are the formats OpenCV may decode
but convkit does not read (AVIF and other ISO media, OpenEXR, Radiance HDR, PFM, JPEG XL,
QOI), and anything else. Pure Python: no OpenCV.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from convkit.errors import ImageReadError

SUPPORTED_FORMATS = (
    "PNG",
    "JPEG",
    "TIFF",
    "BMP",
    "WebP",
    "GIF",
    "PNM (PBM/PGM/PPM)",
    "PAM",
    "Sun raster",
    "JPEG 2000",
)
"""The formats convkit decodes, as messages name them."""

FORMAT_NAMES = {
    "png": "PNG",
    "jpeg": "JPEG",
    "tiff": "TIFF",
    "bmp": "BMP",
    "webp": "WebP",
    "gif": "GIF",
    "pnm": "PNM",
    "pam": "PAM",
    "sunras": "Sun raster",
    "jpeg2000": "JPEG 2000",
    "avif": "AVIF",
    "isobmff": "ISO media (HEIF/MP4 family)",
    "exr": "OpenEXR",
    "hdr": "Radiance HDR",
    "pfm": "PFM",
    "jxl": "JPEG XL",
    "qoi": "QOI",
}

NOT_AN_IMAGE = "not an image (unknown or unsupported format)"

_SPACE = frozenset(b" \t\n\v\f\r")  # C's isspace() in the "C" locale
_EOL = re.compile(rb"[\n\r]")
_TIFF = {b"II*\x00": ("<", 42), b"MM\x00*": (">", 42), b"II+\x00": ("<", 43), b"MM\x00+": (">", 43)}
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K = b"\xff\x4f\xff\x51"


class _Unreadable(Exception):
    """The header is in a known format but does not give a size with certainty."""


def format_name(kind: str | None) -> str:
    return FORMAT_NAMES.get(kind or "", "unknown")


def sniff_format(data: bytes) -> str | None:
    """The format named by the first bytes, or None when unknown.

    Tested in the order OpenCV tries its decoders, so that both pick the same one.
    """
    head = data[:32]
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"GIF"):
        return "gif"
    if head[4:8] == b"ftyp":
        brands = {head[i : i + 4] for i in range(8, len(head) - 3, 4)}
        return "avif" if brands & {b"avif", b"avis"} else "isobmff"
    if head.startswith((b"#?RGBE", b"#?RADIANCE")):
        return "hdr"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x59\xa6\x6a\x95"):
        return "sunras"
    if len(head) >= 3 and head[0] == ord("P") and head[2] in _SPACE:
        kind = {ord("7"): "pam", ord("f"): "pfm", ord("F"): "pfm"}.get(head[1])
        if kind or head[1] in b"123456":
            return kind or "pnm"
    if head[:4] in _TIFF:
        return "tiff"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((_JP2, _J2K)):
        return "jpeg2000"
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "exr"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    if head.startswith(b"qoif"):
        return "qoi"
    return None


def sniff_size(data: bytes, kind: str | None = None) -> tuple[int, int]:
    """``(width, height)`` as the decoder will read it from the header.

    Raises :class:`ImageReadError` (without a path) for a file that is no image, a format
    convkit does not read, a header whose size cannot be read with certainty, or a size of 0.
    """
    kind = kind or sniff_format(data)
    if kind is None:
        raise ImageReadError(NOT_AN_IMAGE)
    name = format_name(kind)
    reader = _SIZE_READERS.get(kind)
    if reader is None:
        why = "floating-point pixels; " if kind in ("hdr", "pfm") else ""
        raise ImageReadError(
            f"unsupported format {name} ({why}convkit reads {', '.join(SUPPORTED_FORMATS)})"
        )
    try:
        width, height = reader(data)
    except _Unreadable as exc:
        raise ImageReadError(f"cannot read the image size from its {name} header ({exc})") from None
    except (struct.error, IndexError):
        raise ImageReadError(
            f"cannot read the image size from its {name} header (truncated)"
        ) from None
    if width < 0 or height < 0:
        raise ImageReadError(
            f"cannot read the image size from its {name} header (negative size {width}x{height})"
        )
    if width == 0 or height == 0:
        raise ImageReadError(f"empty image ({width}x{height} pixels in its {name} header)")
    return width, height


# --------------------------------------------------------------------------- PNG, GIF, BMP


def _png_size(data: bytes) -> tuple[int, int]:
    length, chunk = struct.unpack_from(">I4s", data, 8)
    if chunk != b"IHDR" or length != 13:
        raise _Unreadable("the first chunk is not a 13-byte IHDR")
    width, height = struct.unpack_from(">II", data, 16)
    if max(width, height) > 0x7FFFFFFF:
        raise _Unreadable(f"size {width}x{height} out of range")
    return width, height


def _gif_size(data: bytes) -> tuple[int, int]:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise _Unreadable(f"version {data[3:6]!r}")
    return struct.unpack_from("<HH", data, 6)


def _bmp_size(data: bytes) -> tuple[int, int]:
    # OpenCV: a header of 36 bytes or more has signed 32-bit sizes (height < 0: top-down);
    # the 12-byte OS/2 BITMAPCOREHEADER has unsigned 16-bit ones; other sizes are refused.
    (header,) = struct.unpack_from("<i", data, 14)
    if header == 12:
        return struct.unpack_from("<HH", data, 18)
    if header < 36:
        raise _Unreadable(f"unknown info header of {header} bytes")
    width, height = struct.unpack_from("<ii", data, 18)
    if height == -(2**31):
        raise _Unreadable("height out of range")
    return width, abs(height)


def _sunras_size(data: bytes) -> tuple[int, int]:
    return struct.unpack_from(">ii", data, 4)


# --------------------------------------------------------------------------- JPEG

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA})  # what libjpeg-turbo 3 decodes
_SOF_UNSUPPORTED = frozenset({0xC5, 0xC6, 0xC7, 0xC8, 0xCB, 0xCD, 0xCE, 0xCF})
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7
_WITH_LENGTH = frozenset({0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)})


def _jpeg_markers(data: bytes):
    """Yield ``(marker, offset)`` after SOI the way libjpeg's ``next_marker`` finds them.

    Bytes other than 0xFF are skipped, runs of 0xFF are fill, FF 00 is stuffed data;
    ``offset`` is where the marker's length field would be. A segment with a length is
    skipped by that length (a bogus length under 2 skips nothing, as ``skip_variable``
    does); the walk ends at the end of the data.
    """
    i, n = 2, len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0:
            return
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return
        marker = data[i]
        i += 1
        if marker == 0x00:
            continue
        yield marker, i
        if marker not in _NO_LENGTH:
            (length,) = struct.unpack_from(">H", data, i)
            i += max(length, 2)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    for marker, at in _jpeg_markers(data):
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", data, at + 3)
            return width, height
        if marker in _SOF_UNSUPPORTED:
            raise _Unreadable(f"unsupported frame type 0x{marker:02X}")
        if marker in (0xDA, 0xD9):
            raise _Unreadable("no frame header before the first scan")
        if marker not in _NO_LENGTH and marker not in _WITH_LENGTH:
            raise _Unreadable(f"unexpected marker 0x{marker:02X} before the frame header")
    raise _Unreadable("no frame header (truncated)")


def jpeg_is_complete(data: bytes) -> bool:
    # libjpeg decodes a truncated file into a grey-padded image with only a warning;
    # a complete JPEG ends with EOI (FF D9), possibly followed by a few padding bytes.
    return b"\xff\xd9" in data[-64:]


def jpeg_exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a JPEG, 1 when absent or unreadable."""
    try:
        for marker, at in _jpeg_markers(data):
            if marker in (0xDA, 0xD9):
                break
            if marker == 0xE1 and data[at + 2 : at + 8] == b"Exif\x00\x00":
                (length,) = struct.unpack_from(">H", data, at)
                return _tiff_orientation(data[at + 8 : at + length])
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


# --------------------------------------------------------------------------- WebP


def _webp_size(data: bytes) -> tuple[int, int]:
    # libwebp's WebPGetFeatures on the first 32 bytes, as OpenCV calls it.
    if len(data) < 32:
        raise _Unreadable("truncated")
    (riff,) = struct.unpack_from("<I", data, 4)
    if not 12 <= riff <= 0xFFFFFFF6:
        raise _Unreadable(f"RIFF size {riff}")
    chunk = data[12:16]
    if chunk == b"VP8X":
        if struct.unpack_from("<I", data, 16)[0] != 10:
            raise _Unreadable("VP8X chunk not 10 bytes")
        width = 1 + int.from_bytes(data[24:27], "little")
        return width, 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        if data[20] != 0x2F or bits >> 29:
            raise _Unreadable("bad VP8L signature")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        if data[20] & 1 or data[23:26] != b"\x9d\x01\x2a":
            raise _Unreadable("not a VP8 key frame")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise _Unreadable(f"unexpected first chunk {chunk!r}")


# --------------------------------------------------------------------------- TIFF


def _tiff_size(data: bytes) -> tuple[int, int]:
    order, version = _TIFF[data[:4]]
    big = version == 43
    if big:
        offset_size, zero, ifd = struct.unpack_from(order + "HHQ", data, 4)
        if offset_size != 8 or zero != 0:
            raise _Unreadable("bad BigTIFF header")
    else:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
    count_fmt, entry_size = ("Q", 20) if big else ("H", 12)
    start = ifd + struct.calcsize(count_fmt)
    if ifd < (16 if big else 8):
        raise _Unreadable(f"first IFD at offset {ifd}, inside the file header")
    if start > len(data):
        raise _Unreadable(f"first IFD at offset {ifd}, outside the file of {len(data)} bytes")
    (count,) = struct.unpack_from(order + count_fmt, data, ifd)
    if not 1 <= count <= 4096:
        raise _Unreadable(f"first IFD has {count} entries")
    if start + count * entry_size > len(data):
        raise _Unreadable("first IFD runs past the end of the file")
    dims: dict[int, int] = {}
    for k in range(count):
        entry = start + k * entry_size
        (tag,) = struct.unpack_from(order + "H", data, entry)
        if tag in (256, 257) and tag not in dims:  # libtiff ignores later duplicates
            dims[tag] = _tiff_long(data, order, entry, big)
    if 256 not in dims or 257 not in dims:
        raise _Unreadable("no ImageWidth/ImageLength in the first IFD")
    return dims[256], dims[257]


def _tiff_long(data: bytes, order: str, entry: int, big: bool) -> int:
    """An ImageWidth/ImageLength value: one BYTE, SHORT, LONG (or BigTIFF LONG8), inline."""
    typ, count = struct.unpack_from(order + ("HQ" if big else "HI"), data, entry + 2)
    fmt = {1: "B", 3: "H", 4: "I", 16: "Q" if big else None}.get(typ)
    if fmt is None or count != 1:
        raise _Unreadable(f"image size stored as {count} value(s) of type {typ}")
    (value,) = struct.unpack_from(order + fmt, data, entry + (12 if big else 8))
    return value


# --------------------------------------------------------------------------- PNM, PAM


def _eol(data: bytes, i: int) -> int:
    """Index just past the first CR or LF at or after ``i``."""
    match = _EOL.search(data, i)
    if match is None:
        raise _Unreadable("truncated inside a comment")
    return match.end()


def _pnm_number(data: bytes, i: int) -> tuple[int, int]:
    """OpenCV's PxM ReadNumber: skip blanks and ``#`` comments, read digits.

    Returns the number and the index past the byte that ended it (which is consumed).
    """
    c, i = data[i], i + 1
    while not 48 <= c <= 57:
        if c == ord("#"):
            i = _eol(data, i)
            c, i = data[i], i + 1
        elif c in _SPACE:
            c, i = data[i], i + 1
        else:
            raise _Unreadable(f"unexpected byte 0x{c:02X} where a number should be")
    value = 0
    while 48 <= c <= 57:
        value = value * 10 + c - 48
        if value > 0x7FFFFFFF:
            raise _Unreadable("number too large")
        c, i = data[i], i + 1
    return value, i


def _pnm_size(data: bytes) -> tuple[int, int]:
    width, i = _pnm_number(data, 2)
    height, _ = _pnm_number(data, i)
    return width, height


_PAM_FIELDS = (b"ENDHDR", b"HEIGHT", b"WIDTH", b"DEPTH", b"MAXVAL", b"TUPLTYPE")
_PAM_TUPLTYPES = (b"", b"BLACKANDWHITE", b"GRAYSCALE", b"GRAYSCALE_ALPHA", b"RGB", b"RGB_ALPHA")
_PAM_NUMBER = re.compile(rb"(-(?=\d))?\d*")


def _pam_line(data: bytes, i: int) -> tuple[bytes | None, bytes, int]:
    """OpenCV's ReadPAMHeaderLine: ``(field or None for a comment, value, next index)``."""
    c, i = data[i], i + 1
    while c in _SPACE:
        c, i = data[i], i + 1
    if c == ord("#"):
        return None, b"", _eol(data, i)
    ident = bytearray()
    while len(ident) < 8 and c not in _SPACE:
        ident.append(c)
        c, i = data[i], i + 1
    field = bytes(ident).split(b"\0", 1)[0]  # compared as C strings
    if c not in _SPACE or field not in _PAM_FIELDS:
        raise _Unreadable(f"unknown header field {bytes(ident)!r}")
    if c in b"\n\r":
        return field, b"", i
    c, i = data[i], i + 1
    while c in _SPACE:
        c, i = data[i], i + 1
    value = bytearray()
    while len(value) < 255 and c not in b"\n\r":
        value.append(c)
        c, i = data[i], i + 1
    if c not in b"\n\r":
        raise _Unreadable("header line too long")
    return field, bytes(value).rstrip(bytes(_SPACE)).split(b"\0", 1)[0], i


def _pam_size(data: bytes) -> tuple[int, int]:
    if data[2] not in b"\n\r":
        raise _Unreadable("no line break after P7")
    fields: dict[bytes, bytes] = {}
    i = 3
    while b"ENDHDR" not in fields:
        field, value, i = _pam_line(data, i)
        if field is None:
            continue
        if field == b"TUPLTYPE":
            if value not in _PAM_TUPLTYPES:
                raise _Unreadable(f"unknown TUPLTYPE {value[:32]!r}")
        elif field in fields and field != b"ENDHDR":
            raise _Unreadable(f"{field.decode()} given twice")
        fields[field] = value
    numbers = {}
    for key in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"):
        value = fields.get(key)
        if value is None or not _PAM_NUMBER.fullmatch(value):
            raise _Unreadable(f"no valid {key.decode()}")
        numbers[key] = int(value or b"0")
        if numbers[key] >= 0x7FFFFFFF:
            raise _Unreadable(f"{key.decode()} too large")
    if not 1 <= numbers[b"DEPTH"] <= 4:  # channels: each one multiplies the memory
        raise _Unreadable(f"DEPTH {numbers[b'DEPTH']}, not 1 to 4")
    return numbers[b"WIDTH"], numbers[b"HEIGHT"]


# --------------------------------------------------------------------------- JPEG 2000


def _jp2_boxes(data: bytes, start: int, end: int):
    """Yield ``(type, content_start, content_end)`` for the boxes in ``data[start:end]``."""
    i = start
    while i + 8 <= end:
        length, box = struct.unpack_from(">I4s", data, i)
        header = 8
        if length == 1:
            (length,) = struct.unpack_from(">Q", data, i + 8)
            header = 16
        elif length == 0:
            length = end - i
        if length < header or (i + length > end and box != b"jp2c"):
            raise _Unreadable(f"box {box!r} of {length} bytes does not fit")
        yield box, i + header, min(i + length, end)  # OpenJPEG reads jp2c to the end
        i += length


def _j2k_size(data: bytes, at: int) -> tuple[int, int]:
    """The image area of the codestream at ``at``: SIZ right after SOC, as OpenJPEG wants."""
    if data[at : at + 4] != _J2K:
        raise _Unreadable("codestream does not start with SOC and SIZ")
    x1, y1, x0, y0 = struct.unpack_from(">IIII", data, at + 8)
    struct.unpack_from(">H", data, at + 40)  # Csiz: the SIZ segment is all there
    if x1 <= x0 or y1 <= y0:
        raise _Unreadable(f"image area {x0}..{x1} x {y0}..{y1}")
    return x1 - x0, y1 - y0


def _jpeg2000_size(data: bytes) -> tuple[int, int]:
    if data.startswith(_J2K):
        return _j2k_size(data, 0)
    declared = None
    for box, begin, end in _jp2_boxes(data, 0, len(data)):
        if box == b"jp2h" and declared is None:
            for sub, sub_begin, _ in _jp2_boxes(data, begin, end):
                if sub == b"ihdr":
                    height, width = struct.unpack_from(">II", data, sub_begin)
                    declared = width, height
                break  # ihdr must come first in jp2h
        elif box == b"jp2c":
            size = _j2k_size(data, begin)
            if declared is not None and declared != size:
                raise _Unreadable(
                    f"ihdr says {declared[0]}x{declared[1]}, the codestream {size[0]}x{size[1]}"
                )
            return size
    raise _Unreadable("no codestream box (truncated)")


_SIZE_READERS = {
    "png": _png_size,
    "jpeg": _jpeg_size,
    "tiff": _tiff_size,
    "bmp": _bmp_size,
    "webp": _webp_size,
    "gif": _gif_size,
    "pnm": _pnm_size,
    "pam": _pam_size,
    "sunras": _sunras_size,
    "jpeg2000": _jpeg2000_size,
}

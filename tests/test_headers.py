"""The header size readers (convkit.image.headers) against OpenCV's own decoders.

Two walls keep a decompression bomb out: the size read from the header before decoding,
and OpenCV's own pixel limit. These tests hold the first one to the decoder: for every
format and header variant convkit reads, ``sniff_size`` must equal the shape
``cv2.imdecode(..., IMREAD_UNCHANGED)`` returns (an independent reference); hostile
headers (sizes hidden where a naive reader does not look) are refused by ``decode_image``
before OpenCV is reached; formats convkit does not read are refused by name.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from convkit.errors import ImageReadError, ImageTooLargeError  # noqa: E402
from convkit.image.codec import decode_image  # noqa: E402
from convkit.image.headers import SUPPORTED_FORMATS, sniff_format, sniff_size  # noqa: E402

HUGE = 60_000  # 60000 x 60000 = 3.6 gigapixels
LIMIT = 10_000_000


def encode(image, ext, params=()):
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok, f"test set-up: OpenCV could not encode {ext}"
    return buf.tobytes()


def reference_size(data: bytes) -> tuple[int, int]:
    """OpenCV's answer: the (width, height) of what it decodes."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "test set-up: OpenCV could not decode the bytes"
    return image.shape[1], image.shape[0]


def pixels(shape, dtype=np.uint8):
    top = np.iinfo(dtype).max
    return (np.arange(np.prod(shape)).reshape(shape) * 7919 % (top + 1)).astype(dtype)


# --------------------------------------------------------------------------- builders


def tiff(image, *, order="<", big=False, entries=None) -> bytes:
    """An uncompressed 8-bit gray TIFF or BigTIFF; ``entries`` rewrites the IFD entries."""
    height, width = image.shape
    raw = image.astype(np.uint8).tobytes()
    data_at = 16 if big else 8
    ifd_at = data_at + len(raw) + len(raw) % 2
    ifd = [(256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    ifd += [(273, 4, data_at), (277, 3, 1), (278, 3, height), (279, 4, len(raw))]
    ifd = entries(ifd) if entries else ifd
    magic = b"II" if order == "<" else b"MM"
    if big:
        head = magic + struct.pack(order + "HHHQ", 43, 8, 0, ifd_at)
        count, entry, value_size, nxt = "Q", "HHQ", 8, "Q"
    else:
        head = magic + struct.pack(order + "HI", 42, ifd_at)
        count, entry, value_size, nxt = "H", "HHI", 4, "I"
    body = struct.pack(order + count, len(ifd))
    for tag, typ, value in ifd:
        packed = struct.pack(order + {1: "B", 3: "H", 4: "I", 16: "Q"}[typ], value)
        body += struct.pack(order + entry, tag, typ, 1) + packed.ljust(value_size, b"\0")
    return head + raw + b"\0" * (len(raw) % 2) + body + struct.pack(order + nxt, 0)


def jpeg_sof(data: bytes) -> int:
    """Offset of the SOF marker of a well-formed JPEG (segments walked strictly)."""
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return i


def jpeg_with(data: bytes, before_sof: bytes = b"", size=None) -> bytes:
    sof = jpeg_sof(data)
    out = bytearray(data)
    if size is not None:
        out[sof + 5 : sof + 9] = struct.pack(">HH", size[1], size[0])
    return bytes(out[:sof] + before_sof + out[sof:])


def bmp_core(image) -> bytes:
    """A 24-bit BMP with the 12-byte OS/2 BITMAPCOREHEADER (16-bit sizes)."""
    height, width, _ = image.shape
    stride = (width * 3 + 3) & ~3
    rows = b"".join(image[y].tobytes().ljust(stride, b"\0") for y in range(height - 1, -1, -1))
    core = struct.pack("<IHHHH", 12, width, height, 1, 24)
    return b"BM" + struct.pack("<IHHI", 26 + len(rows), 0, 0, 26) + core + rows


def bmp_top_down(image) -> bytes:
    data = bytearray(encode(image, ".bmp"))
    height = struct.unpack_from("<i", data, 22)[0]
    data[22:26] = struct.pack("<i", -height)
    return bytes(data)


def png_claiming(width, height) -> bytes:
    data = bytearray(encode(pixels((8, 8)), ".png"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jp2_parts(data: bytes) -> tuple[int, int]:
    """Offsets of the ihdr box contents and of the codestream in a JP2 file."""
    return data.index(b"ihdr") + 4, data.index(b"jp2c") + 4


def jp2_claiming(width, height) -> bytes:
    data = bytearray(encode(pixels((37, 41, 3)), ".jp2"))
    ihdr, code = jp2_parts(bytes(data))
    data[ihdr : ihdr + 8] = struct.pack(">II", height, width)
    data[code + 8 : code + 16] = struct.pack(">II", width, height)  # Xsiz, Ysiz
    data[code + 24 : code + 32] = struct.pack(">II", width, height)  # one tile
    return bytes(data)


def pam(width, height, depth=1, maxval=255, *, extra=b"", tupltype=b"GRAYSCALE") -> bytes:
    header = b"P7\n" + extra + b"WIDTH %d\nHEIGHT %d\n" % (width, height)
    header += b"DEPTH %d\nMAXVAL %d\nTUPLTYPE %s\nENDHDR\n" % (depth, maxval, tupltype)
    return header + bytes(width * height * depth * (2 if maxval > 255 else 1))


# --------------------------------------------------------------------------- agreement

IMG = pixels((37, 41, 3))
GRAY = pixels((37, 41))
GRAY16 = pixels((37, 41), np.uint16)
BGRA = pixels((37, 41, 4))
SMALL = pixels((5, 7))

VARIANTS = {
    "png-gray8": lambda: encode(GRAY, ".png"),
    "png-gray16": lambda: encode(GRAY16, ".png"),
    "png-bgr16": lambda: encode(pixels((37, 41, 3), np.uint16), ".png"),
    "png-bgra": lambda: encode(BGRA, ".png"),
    "jpeg-color": lambda: encode(IMG, ".jpg"),
    "jpeg-gray": lambda: encode(GRAY, ".jpg"),
    "jpeg-progressive": lambda: encode(IMG, ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "jpeg-stray-bytes": lambda: jpeg_with(encode(IMG, ".jpg"), b"\x00\x12\x34"),
    "jpeg-fill-bytes": lambda: jpeg_with(encode(IMG, ".jpg"), b"\xff\xff\xff"),
    "jpeg-stuffed-zero": lambda: jpeg_with(encode(IMG, ".jpg"), b"\xff\x00\x55"),
    "tiff-gray8": lambda: encode(GRAY, ".tiff"),
    "tiff-gray16": lambda: encode(GRAY16, ".tiff"),
    "tiff-bgra": lambda: encode(BGRA, ".tiff"),
    "tiff-big-endian": lambda: tiff(SMALL, order=">"),
    "tiff-long-and-byte": lambda: tiff(SMALL, entries=lambda e: [(256, 1, 7), (257, 4, 5), *e[2:]]),
    "tiff-duplicate-width": lambda: tiff(SMALL, entries=lambda e: [e[0], (256, 4, 9999), *e[1:]]),
    "bigtiff-le": lambda: tiff(SMALL, big=True),
    "bigtiff-be-long8": lambda: tiff(
        SMALL, order=">", big=True, entries=lambda e: [(256, 16, 7), (257, 16, 5), *e[2:]]
    ),
    "bmp-24": lambda: encode(IMG, ".bmp"),
    "bmp-32": lambda: encode(BGRA, ".bmp"),
    "bmp-gray-palette": lambda: encode(GRAY, ".bmp"),
    "bmp-top-down": lambda: bmp_top_down(IMG),
    "bmp-os2-core": lambda: bmp_core(IMG),
    "webp-lossless": lambda: encode(IMG, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
    "webp-lossy": lambda: encode(IMG, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "webp-lossy-alpha": lambda: encode(BGRA, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "gif": lambda: encode(IMG, ".gif"),
    "pbm-p4": lambda: encode(GRAY, ".pbm"),
    "pbm-p1": lambda: encode(GRAY, ".pbm", [cv2.IMWRITE_PXM_BINARY, 0]),
    "pgm-p2": lambda: encode(GRAY, ".pgm", [cv2.IMWRITE_PXM_BINARY, 0]),
    "pgm-p5-16": lambda: encode(GRAY16, ".pgm"),
    "ppm-p3": lambda: encode(IMG, ".ppm", [cv2.IMWRITE_PXM_BINARY, 0]),
    "ppm-p6": lambda: encode(IMG, ".ppm"),
    "pgm-comments": lambda: b"P5 #a\n# b\r7\t#c\n\n 5 # d\n255\n" + SMALL.tobytes(),
    "pgm-any-terminator": lambda: b"P5\n7x5\t255\n" + SMALL.tobytes(),  # any byte ends a number
    "pgm-100k-comment": lambda: b"P5\n#" + b"x" * 100_000 + b"\n7 5\n255\n" + SMALL.tobytes(),
    "pam-gray": lambda: encode(GRAY, ".pam"),
    "pam-gray16": lambda: pam(7, 5, maxval=65535),
    "pam-rgba": lambda: pam(7, 5, 4, tupltype=b"RGB_ALPHA"),
    "pam-comments": lambda: pam(7, 5, extra=b"# made by hand\n\n  # indented\n"),
    "pam-no-tupltype": lambda: pam(7, 5, 3, tupltype=b"RGB"),
    "sunras-color": lambda: encode(IMG, ".sr"),
    "sunras-gray": lambda: encode(GRAY, ".sr"),
    "jp2-color": lambda: encode(IMG, ".jp2"),
    "jp2-gray16": lambda: encode(GRAY16, ".jp2"),
    "j2k-codestream": lambda: (lambda d: d[jp2_parts(d)[1] :])(encode(IMG, ".jp2")),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sniff_size_agrees_with_opencv(variant):
    data = VARIANTS[variant]()
    assert sniff_size(data) == reference_size(data)


def test_every_supported_format_is_covered():
    kinds = {sniff_format(build()) for build in VARIANTS.values()}
    expected = {"png", "jpeg", "tiff", "bmp", "webp", "gif", "pnm", "pam", "sunras", "jpeg2000"}
    assert kinds == expected
    assert len(SUPPORTED_FORMATS) == len(expected)


# --------------------------------------------------------------------------- the old walls


def naive_jpeg_size(data: bytes):
    """The old reader: segments walked while every one starts with FF, else give up."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def naive_tiff_size(data: bytes):
    """The old reader: every ImageWidth/ImageLength entry read, the last one kept."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims = {}
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, typ = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (dims[tag],) = struct.unpack_from(order + fmt, data, entry + 8)
    return dims.get(256), dims.get(257)


def test_naive_readers_miss_what_the_decoder_reads():
    stray = VARIANTS["jpeg-stray-bytes"]()
    assert naive_jpeg_size(stray) is None  # the old pre-check let it through unsized
    assert sniff_size(stray) == reference_size(stray) == (41, 37)
    duplicate = VARIANTS["tiff-duplicate-width"]()
    assert naive_tiff_size(duplicate) == (9999, 5)  # libtiff keeps the first entry
    assert sniff_size(duplicate) == reference_size(duplicate) == (7, 5)


# --------------------------------------------------------------------------- hostile headers


def stray_jpeg_bomb():
    return jpeg_with(encode(IMG, ".jpg"), b"\x00\x12\x34", size=(HUGE, HUGE))


def duplicate_tiff_bomb():
    return tiff(SMALL, entries=lambda e: [(256, 4, HUGE), (256, 3, 7), (257, 4, HUGE), *e[2:]])


BOMBS = {
    "jpeg-stray-bytes": stray_jpeg_bomb,
    "tiff-duplicate-width": duplicate_tiff_bomb,
    "bigtiff": lambda: tiff(SMALL, big=True, entries=lambda e: [(256, 16, HUGE), (257, 4, HUGE)]),
    "pam": lambda: pam(HUGE, HUGE)[:200],
    "pnm-100k-comment": lambda: b"P5\n#" + b"x" * 100_000 + b"\n%d %d\n255\n" % (HUGE, HUGE),
    "jpeg2000": lambda: jp2_claiming(HUGE, HUGE),
    "bmp-os2-core": lambda: bmp_core(IMG)[:14] + struct.pack("<IHHHH", 12, 65535, 65535, 1, 24),
    "png": lambda: png_claiming(HUGE, HUGE),
}


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("cv2.imdecode was reached")

    monkeypatch.setattr(cv2, "imdecode", refuse)


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_hostile_header_refused_before_decoding(no_decoding, bomb):
    data = BOMBS[bomb]()
    with pytest.raises(ImageTooLargeError, match=r"image too large: \d+x\d+") as info:
        decode_image(data, name="bomb", max_pixels=LIMIT)
    assert str(info.value).startswith("bomb: ")
    width, height = sniff_size(data)
    assert width * height > LIMIT


def test_naive_readers_let_the_bombs_through():
    assert naive_jpeg_size(stray_jpeg_bomb()) is None
    assert naive_tiff_size(duplicate_tiff_bomb()) == (7, HUGE)  # 420,000 pixels: passed


# --------------------------------------------------------------------------- refused formats

UNSUPPORTED = {
    "AVIF": lambda: encode(IMG, ".avif"),
    "ISO media": lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
    "OpenEXR": lambda: b"\x76\x2f\x31\x01\x02\x00\x00\x00" + bytes(64),
    "Radiance HDR": lambda: encode(IMG.astype(np.float32), ".hdr"),
    "PFM": lambda: encode(GRAY.astype(np.float32), ".pfm"),
    "JPEG XL": lambda: b"\xff\x0a" + bytes(64),
    "QOI": lambda: b"qoif" + struct.pack(">II", HUGE, HUGE) + b"\x03\x00" + bytes(16),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_format_refused_by_name(no_decoding, name):
    with pytest.raises(ImageReadError) as info:
        decode_image(UNSUPPORTED[name](), name="x", max_pixels=LIMIT)
    message = str(info.value)
    assert message.startswith(f"x: unsupported format {name}")
    assert "convkit reads PNG, JPEG, TIFF" in message
    assert "\n" not in message
    assert not isinstance(info.value, ImageTooLargeError)


def test_unknown_bytes_are_not_an_image(no_decoding):
    for data in (b"hello, world\n", b"P9 1 1\n", b"RIFF\x10\x00\x00\x00WAVEfmt ", bytes(40)):
        with pytest.raises(ImageReadError, match="^x: not an image"):
            decode_image(data, name="x")


def with_ifd_at(offset: int) -> bytes:
    data = bytearray(tiff(SMALL))
    data[4:8] = struct.pack("<I", offset)
    return bytes(data)


UNREADABLE = {
    # (builder, format name, a word of the reason)
    "tiff-ifd-outside": (lambda: with_ifd_at(10_000), "TIFF", "outside the file"),
    "tiff-ifd-cut": (lambda: tiff(SMALL)[:-30], "TIFF", "past the end"),
    "tiff-no-width": (lambda: tiff(SMALL, entries=lambda e: e[1:]), "TIFF", "ImageWidth"),
    "tiff-width-array": (lambda: tiff(SMALL)[:60], "TIFF", "end"),
    "bigtiff-bad-header": (lambda: b"II+\x00\x04\x00\x00\x00" + bytes(40), "TIFF", "BigTIFF"),
    "jpeg-scan-first": (lambda: b"\xff\xd8\xff\xda\x00\x08" + bytes(20), "JPEG", "scan"),
    "jpeg-cut": (lambda: encode(IMG, ".jpg")[:100], "JPEG", "truncated"),
    "jpeg-second-soi": (lambda: b"\xff\xd8\xff\xd8" + bytes(20), "JPEG", "0xD8"),
    "jpeg-lossless-arith": (lambda: b"\xff\xd8\xff\xcb\x00\x0b" + bytes(20), "JPEG", "0xCB"),
    "png-cut": (lambda: encode(GRAY, ".png")[:20], "PNG", "truncated"),
    "bmp-header-20": (lambda: b"BM" + bytes(12) + struct.pack("<I", 20) + bytes(40), "BMP", "20"),
    "pnm-cut-comment": (lambda: b"P5\n# no end", "PNM", "comment"),
    "pnm-garbage": (lambda: b"P5\nx7 5\n255\n", "PNM", "0x78"),
    "pam-no-width": (lambda: b"P7\nHEIGHT 5\nDEPTH 1\nMAXVAL 255\nENDHDR\n", "PAM", "WIDTH"),
    "pam-twice": (lambda: pam(7, 5, extra=b"WIDTH 9\n"), "PAM", "twice"),
    "pam-depth": (lambda: pam(7, 5, depth=300), "PAM", "DEPTH"),
    "pam-unknown-field": (lambda: pam(7, 5, extra=b"SIZE 9\n"), "PAM", "SIZE"),
    "jp2-disagrees": (lambda: jp2_disagreeing(), "JPEG 2000", "ihdr"),
    "webp-unknown-chunk": (lambda: b"RIFF\x30\x00\x00\x00WEBPJUNK" + bytes(40), "WebP", "JUNK"),
    "gif-version": (lambda: b"GIF88a\x07\x00\x05\x00" + bytes(20), "GIF", "88a"),
}


def jp2_disagreeing() -> bytes:
    data = bytearray(encode(IMG, ".jp2"))
    ihdr, _ = jp2_parts(bytes(data))
    data[ihdr : ihdr + 8] = struct.pack(">II", 5, 7)
    return bytes(data)


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_header_refused(no_decoding, case):
    build, name, word = UNREADABLE[case]
    with pytest.raises(ImageReadError) as info:
        decode_image(build(), name="x", max_pixels=LIMIT)
    message = str(info.value)
    assert message.startswith(f"x: cannot read the image size from its {name} header (")
    assert word in message
    assert "\n" not in message
    assert not isinstance(info.value, ImageTooLargeError)


@pytest.mark.parametrize(
    "data",
    [png_claiming(0, 5), tiff(SMALL, entries=lambda e: [(256, 3, 0), *e[1:]]), pam(0, 5)],
    ids=["png", "tiff", "pam"],
)
def test_zero_size_is_an_empty_image(no_decoding, data):
    with pytest.raises(ImageReadError, match=r"^x: empty image \(0x5 pixels in its \w+ header\)"):
        decode_image(data, name="x")


def test_limit_still_inclusive_for_newly_sized_formats():
    data = VARIANTS["pgm-100k-comment"]()
    assert decode_image(data, max_pixels=35).shape == (5, 7)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=34)

"""The image I/O contract (convkit.image, convkit.files): sources, decoding, EXIF orientation,
header sniffing and the pixel limit, bad inputs, atomic writes and the output plan.

References are the arrays the test wrote (lossless formats) or OpenCV's own decoding of the
same bytes (lossy formats, EXIF orientation as ``cv2.IMREAD_COLOR`` applies it).
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import convkit.files as files  # noqa: E402
from convkit.defaults import DEFAULT_MAX_PIXELS  # noqa: E402
from convkit.errors import (  # noqa: E402
    ConvkitError,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    UsageError,
)
from convkit.files import write_atomic  # noqa: E402
from convkit.image.codec import decode_image, encode_image, read_image  # noqa: E402
from convkit.image.headers import sniff_size  # noqa: E402
from convkit.image.outputs import OutputPlan  # noqa: E402
from convkit.image.sources import Source, collect_sources  # noqa: E402


def source_for(path: Path) -> Source:
    collected = collect_sources([str(path)])
    assert len(collected.sources) == 1
    return collected.sources[0]


# --------------------------------------------------------------------------- decoding

LOSSLESS = [
    # (suffix, dtype, channels)
    *[(".png", dt, ch) for dt in (np.uint8, np.uint16) for ch in (1, 3, 4)],
    *[(".tiff", dt, ch) for dt in (np.uint8, np.uint16) for ch in (1, 3, 4)],
    *[(".bmp", np.uint8, ch) for ch in (1, 3, 4)],
    (".webp", np.uint8, 3),
    (".webp", np.uint8, 4),
    (".pgm", np.uint8, 1),
    (".pgm", np.uint16, 1),
    (".ppm", np.uint8, 3),
    (".ppm", np.uint16, 3),
]


@pytest.mark.parametrize(
    "suffix,dtype,channels",
    LOSSLESS,
    ids=[f"{s[1:]}-{np.dtype(d).name}-{c}ch" for s, d, c in LOSSLESS],
)
def test_decode_lossless_round_trip(tmp_path, images, suffix, dtype, channels):
    shape = (13, 17) if channels == 1 else (13, 17, channels)
    want = images.random(shape, dtype, seed=channels)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else []  # 101: lossless
    if suffix == ".webp" and channels == 4:
        want[:, :, 3] |= 1  # libwebp drops the colour of fully transparent pixels
    data = images.encode(want, suffix, params)
    got = decode_image(data, name="x" + suffix)
    assert got.dtype == want.dtype
    assert got.shape == want.shape  # gray is (H, W), colour (H, W, 3|4), alpha kept
    np.testing.assert_array_equal(got, want)
    # the same through a file
    path = tmp_path / f"img{suffix}"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_image(source_for(path)), want)


@pytest.mark.parametrize("channels", [1, 3])
def test_decode_jpeg_matches_opencv(images, channels):
    shape = (24, 40) if channels == 1 else (24, 40, 3)
    data = images.encode(images.smooth(shape, seed=2), ".jpg")
    got = decode_image(data)
    want = images.decode(data)  # OpenCV's own decoding (no EXIF here)
    assert got.dtype == np.uint8 and got.shape == shape
    np.testing.assert_array_equal(got, want)


def test_decode_16bit_keeps_full_range(images):
    want = np.array([[0, 1, 255, 256], [4095, 32768, 65534, 65535]], np.uint16)
    got = decode_image(images.encode(want, ".png"))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, want)


def test_non_ascii_path(tmp_path, images):
    want = images.random((9, 11, 3), seed=4)
    folder = tmp_path / "fotky ünï"
    folder.mkdir()
    path = folder / "čaj 猫.png"
    path.write_bytes(images.encode(want, ".png"))
    collected = collect_sources([str(path)])
    np.testing.assert_array_equal(read_image(collected.sources[0]), want)
    # found inside a directory too
    collected = collect_sources([str(folder)])
    assert [s.path.name for s in collected.sources] == ["čaj 猫.png"]
    np.testing.assert_array_equal(read_image(collected.sources[0]), want)


def test_read_from_stdin(monkeypatch, images):
    want = images.random((5, 6, 3), seed=5)

    class FakeStdin:
        buffer = io.BytesIO(images.encode(want, ".png"))

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    src = collect_sources(["-"]).sources[0]
    assert src.is_stdin and src.display == "-"
    np.testing.assert_array_equal(read_image(src), want)


# --------------------------------------------------------------------------- EXIF


def tiff_with_orientation(orientation: int, order: str) -> bytes:
    bo = b"II" if order == "<" else b"MM"
    header = bo + struct.pack(order + "HI", 42, 8)
    entries = [
        (0x010F, 2, 4, b"Cam\x00"),  # Make, ASCII, fits in the value field
        (0x0112, 3, 1, struct.pack(order + "HH", orientation, 0)),  # Orientation, SHORT
    ]
    ifd = struct.pack(order + "H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack(order + "HHI", tag, typ, count) + value
    ifd += struct.pack(order + "I", 0)  # no next IFD
    return header + ifd


def with_exif(jpeg: bytes, orientation: int, *, order="<", after_app0=False) -> bytes:
    """Insert an APP1 Exif segment carrying ``orientation`` (by default right after SOI)."""
    assert jpeg[:2] == b"\xff\xd8"
    payload = b"Exif\x00\x00" + tiff_with_orientation(orientation, order)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    at = 2
    if after_app0 and jpeg[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:at] + app1 + jpeg[at:]


def quadrant_image():
    """A non-symmetric picture: four coloured quadrants on a 16x24 canvas (JPEG-friendly)."""
    img = np.zeros((16, 24, 3), np.uint8)
    img[:8, :12] = (255, 0, 0)
    img[:8, 12:] = (0, 255, 0)
    img[8:, 12:] = (0, 0, 255)
    img[8:, :12] = (255, 255, 255)
    return img


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("order", ["<", ">"], ids=["II", "MM"])
def test_exif_orientation_matches_opencv_imread_color(images, orientation, order):
    stored = quadrant_image()
    plain = images.encode(stored, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    data = with_exif(plain, orientation, order=order)
    got = decode_image(data, name="photo.jpg")
    want = images.decode(data, cv2.IMREAD_COLOR)  # IMREAD_COLOR applies EXIF orientation
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("orientation,k", [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_exif_orientation_rotations_by_hand(images, orientation, k):
    """3: rotate 180; 6: rotate 90 clockwise; 8: rotate 90 counter-clockwise to view."""
    plain = images.encode(quadrant_image(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    stored = images.decode(plain)  # the pixels as stored, after JPEG's losses
    got = decode_image(with_exif(plain, orientation, after_app0=True))
    np.testing.assert_array_equal(got, np.rot90(stored, k=k))


def test_exif_orientation_gray_jpeg(images):
    plain = images.encode(images.smooth((12, 20), seed=8), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    data = with_exif(plain, 6)
    got = decode_image(data)
    want = images.decode(data, cv2.IMREAD_GRAYSCALE)
    assert got.ndim == 2 and got.shape == (20, 12)
    np.testing.assert_array_equal(got, want)


def test_exif_orientation_file_path(tmp_path, images):
    plain = images.encode(quadrant_image(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    path = tmp_path / "rotated.jpg"
    path.write_bytes(with_exif(plain, 8, order=">"))
    got = read_image(source_for(path))
    np.testing.assert_array_equal(got, images.decode(path.read_bytes(), cv2.IMREAD_COLOR))
    assert got.shape == (24, 16, 3)


# --------------------------------------------------------------------------- header sniffing

SNIFFED = [
    (".png", np.uint8, 3, []),
    (".png", np.uint16, 1, []),
    (".jpg", np.uint8, 3, []),
    (".jpg", np.uint8, 1, []),
    (".bmp", np.uint8, 3, []),
    (".tiff", np.uint8, 3, []),
    (".tiff", np.uint16, 1, []),
    (".webp", np.uint8, 3, [101]),  # lossless (VP8L)
    (".webp", np.uint8, 3, [80]),  # lossy (VP8)
    (".webp", np.uint8, 4, [80]),  # lossy with alpha (VP8X)
    (".pgm", np.uint8, 1, []),
    (".ppm", np.uint8, 3, []),
]


@pytest.mark.parametrize(
    "suffix,dtype,channels,quality", SNIFFED, ids=[f"{s[1:]}-{c}ch-{q}" for s, _, c, q in SNIFFED]
)
@pytest.mark.parametrize("size", [(37, 23), (1, 300), (640, 480)])
def test_sniff_size_reads_width_height(images, suffix, dtype, channels, quality, size):
    width, height = size
    shape = (height, width) if channels == 1 else (height, width, channels)
    params = [cv2.IMWRITE_WEBP_QUALITY, quality[0]] if quality else []
    data = images.encode(np.zeros(shape, dtype), suffix, params)
    assert sniff_size(data) == (width, height)


def png_claiming(width, height, images) -> bytes:
    data = bytearray(images.encode(np.zeros((8, 8), np.uint8), ".png"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # keep the chunk valid
    return bytes(data)


def jpeg_claiming(width, height, images) -> bytes:
    data = bytearray(images.encode(np.zeros((8, 8, 3), np.uint8), ".jpg"))
    i = 2
    while True:  # walk the segments to SOF0
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xC0:
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length


def bmp_claiming(width, height, images) -> bytes:
    data = bytearray(images.encode(np.zeros((8, 8, 3), np.uint8), ".bmp"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def webp_lossless_claiming(width, height, images) -> bytes:
    data = bytearray(
        images.encode(np.zeros((8, 8, 3), np.uint8), ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])
    )
    assert data[12:16] == b"VP8L"
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def tiff_claiming(width, height, images) -> bytes:
    data = bytearray(images.encode(np.zeros((8, 8), np.uint8), ".tiff"))
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, typ = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            if typ == 3:
                data[entry + 8 : entry + 10] = struct.pack(order + "H", value)
            else:
                data[entry + 8 : entry + 12] = struct.pack(order + "I", value)
    return bytes(data)


def gif_claiming(width, height, images) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x3b"


CLAIMS = {
    "png": (png_claiming, 100_000, 100_000),
    "jpeg": (jpeg_claiming, 65_535, 65_535),
    "bmp": (bmp_claiming, 100_000, 100_000),
    "webp": (webp_lossless_claiming, 16_384, 16_384),
    "tiff": (tiff_claiming, 60_000, 60_000),
    "gif": (gif_claiming, 65_535, 65_535),
}


@pytest.mark.parametrize("kind", list(CLAIMS))
def test_huge_header_refused_before_decoding(monkeypatch, images, kind):
    build, width, height = CLAIMS[kind]
    data = build(width, height, images)
    assert sniff_size(data) == (width, height)

    def no_decoding(*_a, **_k):
        raise AssertionError("OpenCV was reached for an image over the pixel limit")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data, name=f"bomb.{kind}")
    message = str(info.value)
    assert message.startswith(f"bomb.{kind}: ")
    assert "too large" in message
    assert f"{width}x{height}" in message
    assert message.endswith("(raise it with `max_pixels`)")
    assert isinstance(info.value, ImageReadError)  # an input failure: exit 1
    assert info.value.exit_code == 1


def test_pixel_limit_is_inclusive(images):
    data = images.encode(images.random((10, 12)), ".png")
    assert decode_image(data, max_pixels=120).shape == (10, 12)
    with pytest.raises(ImageTooLargeError, match="120 pixels, over the limit of 119"):
        decode_image(data, max_pixels=119)


def test_default_limit_is_256_megapixels(images):
    assert DEFAULT_MAX_PIXELS == 256_000_000
    with pytest.raises(ImageTooLargeError, match="over the limit of 256,000,000"):
        decode_image(png_claiming(16_001, 16_000, images))


def test_pixel_limit_through_read_image(tmp_path, images):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(100_000, 100_000, images))
    with pytest.raises(ImageTooLargeError) as info:
        read_image(source_for(path))
    assert str(info.value).startswith(f"{path}: ")


def test_max_pixels_on_the_command_line(tmp_path, images, run_main, cli_error):
    path = tmp_path / "ten.png"
    path.write_bytes(images.encode(images.random((10, 10)), ".png"))
    ok = run_main(["info", "--json", "--max-pixels", "100", str(path)])
    assert ok.exit_code == 0, ok
    refused = run_main(["info", "--json", "--max-pixels", "99", str(path)])
    cli_error(refused, 1, r"too large.*10x10", path=str(path))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000, images))
    cli_error(run_main(["info", str(bomb)]), 1, r"too large", path=str(bomb))
    usage = run_main(["info", "--max-pixels", "0", str(path)])
    assert usage.exit_code == 2, usage


# --------------------------------------------------------------------------- bad inputs


def read_error(data: bytes, name="bad.png") -> str:
    with pytest.raises(ImageReadError) as info:
        decode_image(data, name=name)
    assert not isinstance(info.value, ImageTooLargeError)
    message = str(info.value)
    assert message.startswith(f"{name}: "), message
    assert "\n" not in message
    return message[len(name) + 2 :]


def test_empty_bytes():
    assert "empty" in read_error(b"")


def test_truncated_png(images):
    data = images.encode(images.random((40, 40, 3)), ".png")
    reason = read_error(data[: len(data) // 2])
    assert "truncated" in reason or "corrupt" in reason
    assert "PNG" in reason.upper()


def test_png_cut_inside_header(images):
    data = images.encode(images.random((4, 4)), ".png")
    reason = read_error(data[:20])
    assert "truncated" in reason or "corrupt" in reason


def test_truncated_jpeg(images):
    data = images.encode(images.random((64, 64, 3)), ".jpg")
    reason = read_error(data[: len(data) // 2], name="half.jpg")
    assert "truncated" in reason
    assert "JPEG" in reason.upper()


def test_corrupt_png(images):
    data = bytearray(images.encode(images.random((32, 32, 3)), ".png"))
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # zeroed compressed data: CRC and zlib both fail
    reason = read_error(bytes(data))
    assert "corrupt" in reason


@pytest.mark.parametrize(
    "data",
    [b"hello, world\n", b"%PDF-1.7\n...", b"\x1f\x8b\x08\x00gzip", b"PK\x03\x04zip", bytes(100)],
    ids=["text", "pdf", "gzip", "zip", "zeros"],
)
def test_not_an_image(data):
    assert "not an image" in read_error(data, name="notes.txt")


def test_directory_named_as_file(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ImageReadError) as info:
        read_image(Source(str(folder), folder, Path(folder.name)))
    assert "directory" in str(info.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.png"
    src = collect_sources([str(missing)]).sources[0]
    with pytest.raises(ImageReadError) as info:
        read_image(src)
    assert str(info.value) == f"{missing}: no such file or directory"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path, images):
    path = tmp_path / "secret.png"
    path.write_bytes(images.encode(images.random((4, 4)), ".png"))
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError) as info:
            read_image(source_for(path))
        assert "permission denied" in str(info.value)
    finally:
        path.chmod(0o644)


# --------------------------------------------------------------------------- sources


def test_collect_sources_dirs_globs_and_notes(tmp_path, images):
    png = images.encode(images.random((4, 4)), ".png")
    for rel in ["a.png", "b.JPG", "sub/c.png", "sub/deeper/d.png", ".hidden.png"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(png)
    (tmp_path / "readme.txt").write_text("not an image")

    flat = collect_sources([str(tmp_path)])
    assert [s.rel.as_posix() for s in flat.sources] == ["a.png", "b.JPG"]
    assert any("readme.txt" in note for note in flat.notes)

    deep = collect_sources([str(tmp_path)], recursive=True)
    rels = sorted(s.rel.as_posix() for s in deep.sources)
    assert rels == ["a.png", "b.JPG", "sub/c.png", "sub/deeper/d.png"]

    globbed = collect_sources([str(tmp_path / "*.png")])
    assert [s.path.name for s in globbed.sources] == ["a.png"]
    starstar = collect_sources([str(tmp_path / "**" / "*.png")])
    assert sorted(s.path.name for s in starstar.sources) == ["a.png", "c.png", "d.png"]

    nothing = collect_sources([str(tmp_path / "*.webp")])
    assert nothing.sources[0].problem and "match" in nothing.sources[0].problem

    # the same file twice is read once
    twice = collect_sources([str(tmp_path / "a.png"), str(tmp_path / "a.png")])
    assert len(twice.sources) == 1


def test_collect_sources_usage_errors():
    with pytest.raises(UsageError, match="^no input images given$"):
        collect_sources([])
    with pytest.raises(UsageError, match=r"^'-' \(stdin\) can be given only once$"):
        collect_sources(["-", "-"])


# --------------------------------------------------------------------------- writing


def plain_open_mode(folder: Path) -> int:
    probe = folder / "probe-plain-open"
    with open(probe, "wb") as handle:
        handle.write(b"x")
    mode = stat.S_IMODE(probe.stat().st_mode)
    probe.unlink()
    return mode


def test_write_atomic_writes_with_normal_permissions(tmp_path):
    target = tmp_path / "out.png"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == plain_open_mode(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    if umask == 0o022:
        assert mode == 0o644
    write_atomic(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_atomic_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_atomic(Path("rel.png"), b"data")
    assert (tmp_path / "rel.png").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel.png"]


def test_write_atomic_missing_folder(tmp_path):
    target = tmp_path / "missing" / "out.png"
    with pytest.raises(ImageWriteError) as info:
        write_atomic(target, b"data")
    assert str(info.value).startswith(f"{target}: ")
    assert "does not exist" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_target_is_directory(tmp_path):
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ImageWriteError) as info:
        write_atomic(tmp_path / "taken.png", b"data")
    assert "directory" in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]


def test_write_atomic_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ImageWriteError) as info:
        write_atomic(target, b"new content")
    assert "permission denied" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert target.read_bytes() == b"old content"


def test_write_atomic_full_disk_is_an_error(tmp_path, monkeypatch):
    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open = open

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        real_open(file, mode, *args, **kwargs).close()  # the temp file exists, as on a disk
        return FullDisk()

    monkeypatch.setattr(files, "open", open_on_full_disk, raising=False)
    target = tmp_path / "out.png"
    with pytest.raises(ImageWriteError) as info:
        write_atomic(target, b"data")
    assert "no space left on device" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_interrupted_leaves_nothing(tmp_path, monkeypatch):
    class Interrupted(io.BytesIO):
        def write(self, data):
            raise KeyboardInterrupt

    real_open = open

    def open_then_interrupt(file, mode="r", *args, **kwargs):
        real_open(file, mode, *args, **kwargs).close()
        return Interrupted()

    monkeypatch.setattr(files, "open", open_then_interrupt, raising=False)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "out.png", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_write_atomic_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageWriteError) as info:
            write_atomic(folder / "out.png", b"data")
        assert "permission denied" in str(info.value)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("tiff", ".tiff"), ("ppm", ".pgm")])
def test_encode_16bit_round_trip(images, fmt, suffix):
    want = images.random((6, 7), np.uint16, seed=9)
    data = encode_image(want, fmt)
    np.testing.assert_array_equal(images.decode(data), want)


@pytest.mark.parametrize("fmt", ["jpg", "bmp", "webp"])
def test_encode_16bit_into_8bit_format_is_an_error(images, fmt):
    with pytest.raises(ImageWriteError) as info:
        encode_image(images.random((6, 7), np.uint16), fmt, name="out")
    assert str(info.value) == (
        f"out: {fmt.upper()} cannot hold uint16 pixels "
        "(write 16-bit results as PNG, TIFF or PGM/PPM)"
    )


def test_encode_unknown_format():
    with pytest.raises(UsageError, match=r"^unknown output format 'xcf' \(known: png, jpg,"):
        encode_image(np.zeros((2, 2), np.uint8), "xcf")


@pytest.mark.parametrize("fmt", ["png", "tiff", "bmp", "ppm"])
def test_encode_gray_lossless(images, fmt):
    """A gray result (grayscale, filter --gray) must be encodable in every lossless format
    convkit offers, including the PNM family (``-o out.pgm`` is the natural name)."""
    want = images.random((6, 7), np.uint8, seed=10)
    data = encode_image(want, fmt)
    got = images.decode(data)
    if got.ndim == 3:  # BMP/PPM may store gray as three equal channels
        got = got[:, :, 0]
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- output plan


@pytest.fixture
def two_inputs(tmp_path, images):
    paths = []
    for name in ("a.png", "b.png"):
        path = tmp_path / name
        path.write_bytes(images.encode(images.random((4, 4)), ".png"))
        paths.append(path)
    return collect_sources([str(p) for p in paths]).sources


def test_plan_out_dir_names(tmp_path, two_inputs):
    out = tmp_path / "out"
    targets = OutputPlan(out_dir=out).validate(two_inputs, ["sobel-x", "sobel-y"])
    assert {k: v.path for k, v in targets.items()} == {
        (0, "sobel-x"): out / "a_sobel-x.png",
        (0, "sobel-y"): out / "a_sobel-y.png",
        (1, "sobel-x"): out / "b_sobel-x.png",
        (1, "sobel-y"): out / "b_sobel-y.png",
    }
    assert all(t.fmt == "png" for t in targets.values())
    named = OutputPlan(out_dir=out, template="{index:03d}-{stem}.{what}.{ext}", fmt="tiff")
    targets = named.validate(two_inputs, ["gray"])
    assert targets[(1, "gray")].path == out / "002-b.gray.tiff"
    assert targets[(1, "gray")].fmt == "tiff"


def test_plan_needs_a_destination(two_inputs):
    with pytest.raises(UsageError, match=r"^say where results go: `output` FILE \(one input\)"):
        OutputPlan().validate(two_inputs[:1], ["gray"])


def test_plan_not_both(tmp_path, two_inputs):
    with pytest.raises(UsageError, match=r"^give either `output` or `out_dir`, not both$"):
        OutputPlan(output=str(tmp_path / "x.png"), out_dir=tmp_path).validate(
            two_inputs[:1], ["gray"]
        )


def test_plan_output_takes_one_input_and_one_result(tmp_path, two_inputs):
    with pytest.raises(UsageError, match=r"^`output` takes one input, got 2; use `out_dir` DIR$"):
        OutputPlan(output=str(tmp_path / "x.png")).validate(two_inputs, ["gray"])
    with pytest.raises(
        UsageError,
        match=r"^`output` takes one result, this run makes 2 per image \(a, b\); "
        r"use `out_dir` DIR$",
    ):
        OutputPlan(output=str(tmp_path / "x.png")).validate(two_inputs[:1], ["a", "b"])


def test_plan_output_format_from_suffix(tmp_path, two_inputs):
    for name, fmt in [
        ("x.png", "png"),
        ("x.JPG", "jpg"),
        ("x.jpeg", "jpg"),
        ("x.tif", "tiff"),
        ("x.webp", "webp"),
        ("x.bmp", "bmp"),
    ]:
        target = OutputPlan(output=str(tmp_path / name)).validate(two_inputs[:1], ["gray"])
        assert target[(0, "gray")].fmt == fmt, name
    forced = OutputPlan(output=str(tmp_path / "x.png"), fmt="jpeg").validate(
        two_inputs[:1], ["gray"]
    )
    assert forced[(0, "gray")].fmt == "jpg"


def test_plan_stdout(two_inputs):
    targets = OutputPlan(output="-").validate(two_inputs[:1], ["gray"])
    assert targets[(0, "gray")].path is None
    assert targets[(0, "gray")].fmt == "png"
    targets = OutputPlan(output="-", fmt="tiff").validate(two_inputs[:1], ["gray"])
    assert targets[(0, "gray")].fmt == "tiff"


def test_plan_refuses_binary_to_a_terminal(two_inputs):
    with pytest.raises(UsageError) as info:
        OutputPlan(output="-", stdout_is_tty=True).validate(two_inputs[:1], ["gray"])
    assert str(info.value) == (
        "refusing to write binary image data to a terminal; redirect stdout or use `output` FILE"
    )
    assert info.value.exit_code == 2


def test_plan_refuses_overwriting_an_input(tmp_path, two_inputs, monkeypatch):
    a = two_inputs[0]
    with pytest.raises(UsageError) as info:
        OutputPlan(output=str(a.path)).validate([a], ["gray"])
    assert str(info.value) == (
        f"{a.display}: the result would overwrite its input "
        "(choose another output, or pass `in_place`)"
    )
    # another spelling of the same path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(UsageError, match="the result would overwrite its input"):
        OutputPlan(output="./sub/../a.png").validate([a], ["gray"])
    # a hard link and a symlink to the input
    os.link(a.path, tmp_path / "hard.png")
    os.symlink(a.path, tmp_path / "soft.png")
    for other in ("hard.png", "soft.png"):
        with pytest.raises(UsageError, match="the result would overwrite its input"):
            OutputPlan(output=str(tmp_path / other)).validate([a], ["gray"])
    # --out-dir whose template lands on the input
    with pytest.raises(UsageError, match="the result would overwrite its input"):
        OutputPlan(out_dir=tmp_path, template="{stem}.{ext}").validate(two_inputs, ["gray"])
    # allowed with in_place
    targets = OutputPlan(output=str(a.path), in_place=True).validate([a], ["gray"])
    assert targets[(0, "gray")].path == a.path


def test_plan_refuses_two_results_on_one_path(tmp_path, images):
    png = images.encode(images.random((4, 4)), ".png")
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.png").write_bytes(png)
    sources = collect_sources(
        [str(tmp_path / "x" / "same.png"), str(tmp_path / "y" / "same.png")]
    ).sources
    with pytest.raises(UsageError) as info:
        OutputPlan(out_dir=tmp_path / "out").validate(sources, ["gray"])
    assert str(info.value).startswith(f"two results would be written to {tmp_path / 'out'}/")
    assert str(info.value).endswith("make `template` include {index}, or use separate runs")
    # one input, two results, a template without {what}
    with pytest.raises(UsageError, match="^two results would be written to .*out.png"):
        OutputPlan(out_dir=tmp_path / "out", template="out.{ext}").validate(sources[:1], ["a", "b"])
    # {index} separates them
    targets = OutputPlan(out_dir=tmp_path / "out", template="{stem}_{index}.png").validate(
        sources, ["gray"]
    )
    assert len({t.path for t in targets.values()}) == 2


@pytest.mark.parametrize("template", ["{nope}.png", "{stem", "{0}.png", "sub/{stem}.png", "..", ""])
def test_plan_bad_templates(tmp_path, two_inputs, template):
    with pytest.raises(
        UsageError,
        match=r"^`template` .*(is not a valid name template|gives a bad file name)",
    ):
        OutputPlan(out_dir=tmp_path / "out", template=template).validate(two_inputs, ["gray"])


def test_plan_recursive_keeps_sub_folders(tmp_path, images):
    png = images.encode(images.random((4, 4)), ".png")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "top.png").write_bytes(png)
    (tmp_path / "in" / "sub" / "deep.png").write_bytes(png)
    sources = collect_sources([str(tmp_path / "in")], recursive=True).sources
    targets = OutputPlan(out_dir=tmp_path / "out").validate(sources, ["gray"])
    assert sorted(t.path.relative_to(tmp_path / "out").as_posix() for t in targets.values()) == [
        "sub/deep_gray.png",
        "top_gray.png",
    ]


def test_errors_share_one_base():
    for cls in (ImageReadError, ImageTooLargeError, ImageWriteError, UsageError):
        assert issubclass(cls, ConvkitError)
    assert UsageError("x").exit_code == 2
    assert ImageReadError("x").exit_code == 1
    assert ImageWriteError("x").exit_code == 1

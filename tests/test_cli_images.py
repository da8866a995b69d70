"""The ``info``, ``grayscale`` and ``filter`` commands end to end: through Typer's CliRunner,
through ``convkit.cli.main()`` in process, and through a real ``python -m convkit``
subprocess (real stdin/stdout bytes, exit codes, stderr).

Expected pixels come from independent references: ``cv2.cvtColor``/``cv2.resize`` (OpenCV's
documented operations), the NumPy luma formula, and ``scipy.ndimage.correlate`` in float64
for filters (rounded half-to-even and saturated like OpenCV's ``saturate_cast``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ndi = pytest.importorskip("scipy.ndimage")
cv2 = pytest.importorskip("cv2")

import convkit  # noqa: E402
from convkit.cli import app  # noqa: E402

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
SOBEL_Y = SOBEL_X.T.copy()
SHARPEN = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float64)
SCIPY_MODE = {
    "reflect101": "mirror",
    "reflect": "reflect",
    "replicate": "nearest",
    "constant": "constant",
}


def correlate(image: np.ndarray, kernel, border="reflect101", *, convolve=False) -> np.ndarray:
    func = ndi.convolve if convolve else ndi.correlate
    img = image.astype(np.float64)
    mode = SCIPY_MODE[border]
    if img.ndim == 2:
        return func(img, kernel, mode=mode, cval=0.0)
    return np.stack(
        [func(img[:, :, c], kernel, mode=mode, cval=0.0) for c in range(img.shape[2])], axis=2
    )


def saturate(values: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """OpenCV's saturate_cast: round half to even, clip to the range of dtype."""
    return np.clip(np.rint(values), 0, np.iinfo(dtype).max).astype(dtype)


def luma(bgr: np.ndarray) -> np.ndarray:
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def read(path) -> np.ndarray:
    data = Path(path).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} is not a decodable image"
    return image


def from_bytes(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"not a decodable image: {data[:40]!r}"
    return image


@pytest.fixture
def color(make_image):
    path, image = make_image("in/color.png", shape=(24, 32, 3), seed=1)
    return path, image


@pytest.fixture
def gray(make_image):
    path, image = make_image("in/gray.png", shape=(20, 28), seed=2)
    return path, image


def invoke(cli_runner, args, **kw):
    """CliRunner on the Typer app; fails loudly on an unexpected exception."""
    result = cli_runner.invoke(app, [str(a) for a in args], **kw)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# --------------------------------------------------------------------------- info


def expected_info(image: np.ndarray) -> dict:
    """What info must say, computed with NumPy only."""
    if image.ndim == 2:
        rgb = image[:, :, None]
        names = ["gray"]
    elif image.shape[2] == 3:
        rgb = image[:, :, ::-1]
        names = ["R", "G", "B"]
    else:
        rgb = image[:, :, [2, 1, 0, 3]]
        names = ["R", "G", "B", "A"]
    h, w, c = rgb.shape
    return {
        "shape": [h, w, c],
        "dtype": image.dtype.name,
        "pixels": h * w,
        "first_pixel": [int(v) for v in rgb[0, 0]],
        "names": names,
        "min": [int(rgb[:, :, i].min()) for i in range(c)],
        "max": [int(rgb[:, :, i].max()) for i in range(c)],
        "mean": [float(rgb[:, :, i].astype(np.float64).mean()) for i in range(c)],
        "gray_length": h * w,
    }


def check_info(obj: dict, image: np.ndarray, path) -> None:
    want = expected_info(image)
    assert obj["path"] == str(path)
    assert obj["shape"] == want["shape"]
    assert obj["dtype"] == want["dtype"]
    assert obj["pixels"] == want["pixels"]
    assert obj["first_pixel"] == want["first_pixel"]
    assert obj["gray_length"] == want["gray_length"]
    assert [c["name"] for c in obj["channels"]] == want["names"]
    assert [c["min"] for c in obj["channels"]] == want["min"]
    assert [c["max"] for c in obj["channels"]] == want["max"]
    np.testing.assert_allclose([c["mean"] for c in obj["channels"]], want["mean"], rtol=1e-9)


@pytest.mark.parametrize(
    "name,shape,dtype",
    [
        ("c.png", (9, 13, 3), np.uint8),
        ("g.png", (9, 13), np.uint8),
        ("a.png", (7, 5, 4), np.uint8),
        ("w.png", (6, 8, 3), np.uint16),
        ("t.tiff", (6, 8), np.uint16),
        ("b.bmp", (5, 7, 3), np.uint8),
    ],
)
def test_info_json_one_image_is_a_list_of_one(make_image, cli_runner, run_cli, name, shape, dtype):
    """One contract whatever the number of inputs: a list of per-input records."""
    path, image = make_image(name, shape=shape, dtype=dtype, seed=len(shape))
    result = invoke(cli_runner, ["info", "--json", path])
    assert result.exit_code == 0, result.output
    (obj,) = json.loads(result.stdout)
    check_info(obj, image, path)
    obj = [obj]
    sub = run_cli(["info", "--json", path])
    assert sub.exit_code == 0, sub
    assert json.loads(sub.stdout) == obj
    assert sub.stderr == ""


def test_info_json_list_for_several(make_image, run_cli, cli_runner):
    made = [make_image(f"m{i}.png", shape=(4 + i, 6, 3), seed=i) for i in range(3)]
    args = ["info", "--json", *[p for p, _ in made]]
    sub = run_cli(args)
    assert sub.exit_code == 0, sub
    items = json.loads(sub.stdout)
    assert isinstance(items, list) and len(items) == 3
    for obj, (path, image) in zip(items, made, strict=True):
        check_info(obj, image, path)
    result = invoke(cli_runner, args)
    assert json.loads(result.stdout) == items


def test_info_table(color, cli_runner, run_cli, monkeypatch):
    path, image = color
    monkeypatch.chdir(path.parent)  # a short relative path: the table need not fold it
    for result in (invoke(cli_runner, ["info", path.name]), run_cli(["info", path.name])):
        assert result.exit_code == 0
        text = result.stdout if isinstance(result.stdout, str) else result.stdout.decode()
        assert path.name in text
        assert "24×32×3" in text
        assert "uint8" in text
        assert "RGB " + ",".join(str(int(v)) for v in image[0, 0, ::-1]) in text
        assert "768" in text  # pixels, when there is room (piped: always)
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


def test_info_table_at_80_columns_keeps_every_line_within_80(sample_images, tmp_path):
    """In a terminal of 80 columns nothing wraps into slivers: every line fits, each image
    is on one row with its file name whole."""
    from terminal import in_terminal

    deep = tmp_path / "a-rather-long-folder-name" / "and-another-one-below-it"
    deep.mkdir(parents=True)
    for path in sample_images.glob("*.png"):
        (deep / path.name).write_bytes(path.read_bytes())
    text = in_terminal(["info", str(deep)], 80, tmp_path)
    lines = [line for line in text.splitlines() if line.strip() and "━" not in line]
    assert all(len(line) <= 80 for line in lines), lines
    for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png"):
        (row,) = [line for line in lines if name in line]
        assert "…" in row  # the folders shortened, the name kept whole
        assert "uint8" in row


def test_info_sample_images(sample_images, run_cli):
    paths = sorted(sample_images.glob("*.png"))
    assert paths
    sub = run_cli(["info", "--json", *paths])
    assert sub.exit_code == 0, sub
    items = json.loads(sub.stdout)
    for obj, path in zip(items, paths, strict=True):
        check_info(obj, read(path), path)


def test_info_stdin(color, run_cli, cli_runner):
    path, image = color
    sub = run_cli(["info", "--json", "-"], input=path.read_bytes())
    assert sub.exit_code == 0, sub
    (obj,) = json.loads(sub.stdout)
    assert obj["path"] == "-"
    assert obj["first_pixel"] == [int(v) for v in image[0, 0, ::-1]]
    result = invoke(cli_runner, ["info", "--json", "-"], input=path.read_bytes())
    assert json.loads(result.stdout) == [obj]


# --------------------------------------------------------------------------- grayscale


def test_grayscale_colour(color, tmp_path, cli_runner, run_cli):
    path, image = color
    want = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert np.abs(want.astype(np.float64) - luma(image)).max() <= 1  # the documented weights
    out = tmp_path / "g1.png"
    result = invoke(cli_runner, ["grayscale", path, "-o", out])
    assert result.exit_code == 0, result.output
    got = read(out)
    assert got.dtype == np.uint8 and got.shape == image.shape[:2]
    np.testing.assert_array_equal(got, want)
    assert np.abs(got.astype(np.float64) - luma(image)).max() <= 1
    out2 = tmp_path / "g2.png"
    sub = run_cli(["grayscale", path, "-o", out2])
    assert sub.exit_code == 0, sub
    assert sub.stdout == b"" and sub.stderr == ""  # one input: no summary
    np.testing.assert_array_equal(read(out2), want)


def test_grayscale_gray_passes_unchanged(gray, tmp_path, run_main):
    path, image = gray
    out = tmp_path / "same.png"
    result = run_main(["grayscale", path, "-o", out])
    assert result.exit_code == 0, result
    got = read(out)
    assert got.dtype == image.dtype
    np.testing.assert_array_equal(got, image)


def test_grayscale_16bit_stays_16bit(make_image, tmp_path, run_main):
    path, image = make_image("deep.png", shape=(10, 12, 3), dtype=np.uint16, seed=5)
    out = tmp_path / "deep_gray.png"
    result = run_main(["grayscale", path, "-o", out])
    assert result.exit_code == 0, result
    got = read(out)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    # OpenCV's 16-bit conversion uses fixed-point weights: within 2 of 65535 of the formula
    assert np.abs(got.astype(np.float64) - luma(image)).max() <= 2
    gray16, g = make_image("g16.png", shape=(7, 9), dtype=np.uint16, seed=6)
    result = run_main(["grayscale", gray16, "-o", tmp_path / "g16_out.tiff"])
    assert result.exit_code == 0, result
    np.testing.assert_array_equal(read(tmp_path / "g16_out.tiff"), g)


def test_grayscale_drops_alpha(make_image, tmp_path, run_main):
    path, image = make_image("rgba.png", shape=(8, 10, 4), seed=7)
    out = tmp_path / "rgba_gray.png"
    assert run_main(["grayscale", path, "-o", out]).exit_code == 0
    got = read(out)
    assert got.ndim == 2
    np.testing.assert_array_equal(got, cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY))


INTERPOLATION = {
    "area": "INTER_AREA",
    "linear": "INTER_LINEAR",
    "cubic": "INTER_CUBIC",
    "nearest": "INTER_NEAREST",
    "lanczos": "INTER_LANCZOS4",
}


@pytest.mark.parametrize("interpolation", [None, *INTERPOLATION])
def test_grayscale_resize(make_image, tmp_path, run_main, interpolation):
    path, image = make_image("big.png", shape=(60, 80, 3), seed=8)
    out = tmp_path / "small.png"
    args = ["grayscale", path, "--resize", "40x30", "-o", out]
    if interpolation:
        args += ["--interpolation", interpolation]
    result = run_main(args)
    assert result.exit_code == 0, result
    flag = getattr(cv2, INTERPOLATION[interpolation or "area"])  # area is the default
    want = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (40, 30), interpolation=flag)
    got = read(out)
    assert got.shape == (30, 40)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "box,src", [("50x50", (60, 90)), ("100x20", (60, 90)), ("45x45", (90, 30)), ("30x40", (40, 30))]
)
def test_grayscale_keep_aspect(make_image, tmp_path, run_main, box, src):
    h, w = src
    path, image = make_image("pic.png", shape=(h, w, 3), seed=9)
    out = tmp_path / "fit.png"
    result = run_main(["grayscale", path, "--resize", box, "--keep-aspect", "-o", out])
    assert result.exit_code == 0, result
    bw, bh = map(int, box.split("x"))
    # the largest size with the source's aspect ratio inside the box
    if w * bh >= h * bw:  # wider than the box: width binds
        tw, th = bw, max(1, round(h * bw / w))
    else:
        tw, th = max(1, round(w * bh / h)), bh
    got = read(out)
    assert got.shape == (th, tw)
    assert th <= bh and tw <= bw
    if (tw, th) != (w, h):
        want = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (tw, th), interpolation=cv2.INTER_AREA
        )
        np.testing.assert_array_equal(got, want)


def test_grayscale_out_dir_names_and_template(make_image, tmp_path, run_main, run_cli):
    made = [make_image(f"in/{n}.png", shape=(6, 8, 3), seed=i) for i, n in enumerate("ab")]
    out = tmp_path / "out"
    result = run_main(["grayscale", *[p for p, _ in made], "--out-dir", out, "-j", "2"])
    assert result.exit_code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["a_gray.png", "b_gray.png"]
    for (_, image), name in zip(made, ["a_gray.png", "b_gray.png"], strict=True):
        np.testing.assert_array_equal(read(out / name), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert result.stdout == b""
    assert re.search(r"2 images", result.stderr)  # the closing summary
    named = tmp_path / "named"
    sub = run_cli(
        ["grayscale", *[p for p, _ in made], "-d", named, "--name", "{index}-{stem}.tiff", "-q"]
    )
    assert sub.exit_code == 0, sub
    assert sub.stderr == ""  # --quiet
    assert sorted(p.name for p in named.iterdir()) == ["1-a.tiff", "2-b.tiff"]
    assert (named / "1-a.tiff").read_bytes()[:4] in (b"II*\x00", b"MM\x00*")


@pytest.mark.parametrize(
    "suffix,magic",
    [(".jpg", b"\xff\xd8"), (".tif", b"II*\x00"), (".bmp", b"BM"), (".webp", b"RIFF")],
)
def test_grayscale_format_from_suffix(color, tmp_path, run_main, suffix, magic):
    path, _ = color
    out = tmp_path / f"out{suffix}"
    result = run_main(["grayscale", path, "-o", out])
    assert result.exit_code == 0, result
    assert out.read_bytes().startswith(magic)


def test_grayscale_to_pgm(color, tmp_path, run_main):
    """A gray result written as `-o out.pgm` (a PNM format convkit accepts)."""
    path, image = color
    out = tmp_path / "out.pgm"
    result = run_main(["grayscale", path, "-o", out])
    assert result.exit_code == 0, result
    got = read(out)
    if got.ndim == 3:
        got = got[:, :, 0]
    np.testing.assert_array_equal(got, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def test_grayscale_non_ascii_paths(make_image, tmp_path, run_cli):
    path, image = make_image("vstup/čaj 猫.png", shape=(6, 7, 3), seed=3)
    out = tmp_path / "výstup 犬.png"
    sub = run_cli(["grayscale", path, "-o", out])
    assert sub.exit_code == 0, sub
    np.testing.assert_array_equal(read(out), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def test_glob_and_recursive(make_image, tmp_path, run_main):
    for rel in ["src/x.png", "src/y.png", "src/sub/z.png"]:
        make_image(rel, shape=(4, 5, 3))
    out = tmp_path / "globbed"
    result = run_main(["grayscale", str(tmp_path / "src" / "*.png"), "-d", out])  # quoted glob
    assert result.exit_code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["x_gray.png", "y_gray.png"]
    tree = tmp_path / "tree"
    result = run_main(["grayscale", tmp_path / "src", "-r", "-d", tree])
    assert result.exit_code == 0, result
    got = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.png"))
    assert got == ["sub/z_gray.png", "x_gray.png", "y_gray.png"]


# --------------------------------------------------------------------------- filter


def test_filter_sobel_x_gray(gray, tmp_path, cli_runner, run_cli):
    path, image = gray
    want = saturate(np.abs(correlate(image, SOBEL_X)))  # zero-sum kernel: abs by default
    out = tmp_path / "sx.png"
    result = invoke(cli_runner, ["filter", path, "-k", "sobel-x", "-o", out])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read(out), want)
    out2 = tmp_path / "sx2.png"
    sub = run_cli(["filter", path, "-k", "sobel-x", "-o", out2])
    assert sub.exit_code == 0, sub
    np.testing.assert_array_equal(read(out2), want)


def test_filter_colour_per_channel_default_ranges(color, tmp_path, run_main):
    path, image = color
    out = tmp_path / "o"
    result = run_main(["filter", path, "-k", "sobel-y", "-k", "sharpen", "-d", out])
    assert result.exit_code == 0, result
    np.testing.assert_array_equal(
        read(out / "color_sobel-y.png"), saturate(np.abs(correlate(image, SOBEL_Y)))
    )
    # sharpen does not sum to zero: clip (saturate) by default
    np.testing.assert_array_equal(
        read(out / "color_sharpen.png"), saturate(correlate(image, SHARPEN))
    )


def test_filter_keeps_alpha(make_image, tmp_path, run_main):
    path, image = make_image("rgba.png", shape=(12, 14, 4), seed=11)
    out = tmp_path / "rgba_sx.png"
    assert run_main(["filter", path, "-k", "sobel-x", "-o", out]).exit_code == 0
    got = read(out)
    assert got.shape == image.shape
    np.testing.assert_array_equal(got[:, :, 3], image[:, :, 3])
    np.testing.assert_array_equal(
        got[:, :, :3], saturate(np.abs(correlate(image[:, :, :3], SOBEL_X)))
    )


def test_filter_gray_option(color, tmp_path, run_main):
    path, image = color
    out = tmp_path / "g.png"
    assert run_main(["filter", path, "--gray", "-k", "laplacian", "-o", out]).exit_code == 0
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    got = read(out)
    assert got.ndim == 2
    np.testing.assert_array_equal(got, saturate(np.abs(correlate(g, lap))))


def test_filter_several_kernels_one_file_each(gray, tmp_path, run_cli):
    path, image = gray
    out = tmp_path / "edges"
    sub = run_cli(
        [
            "filter",
            path,
            "-k",
            "sobel-x",
            "-k",
            "sobel-y",
            "-k",
            "edges4",
            "-k",
            "box:3",
            "-k",
            "gaussian:5",
            "-k",
            "1,0;0,-1",
            "-d",
            out,
        ]
    )
    assert sub.exit_code == 0, sub
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "gray_sobel-x.png",
            "gray_sobel-y.png",
            "gray_edges4-1.png",
            "gray_edges4-2.png",
            "gray_edges4-3.png",
            "gray_edges4-4.png",
            "gray_box-3.png",
            "gray_gaussian-5.png",
            "gray_kernel6.png",
        ]
    )
    np.testing.assert_array_equal(
        read(out / "gray_sobel-y.png"), saturate(np.abs(correlate(image, SOBEL_Y)))
    )
    np.testing.assert_array_equal(
        read(out / "gray_box-3.png"), saturate(correlate(image, np.full((3, 3), 1 / 9)))
    )
    edge = np.array([[-1, -1, 1, 1]] * 4, np.float64)
    np.testing.assert_array_equal(
        read(out / "gray_edges4-3.png"), saturate(np.abs(correlate(image, edge.T)))
    )
    np.testing.assert_array_equal(
        read(out / "gray_kernel6.png"), saturate(np.abs(correlate(image, [[1, 0], [0, -1]])))
    )


def test_filter_raw_npy(gray, tmp_path, run_main):
    path, image = gray
    raw = tmp_path / "resp.npy"
    result = run_main(["filter", path, "-k", "sobel-x", "-o", tmp_path / "s.png", "--raw", raw])
    assert result.exit_code == 0, result
    data = np.load(raw, allow_pickle=False)
    assert data.dtype == np.float32 and data.shape == image.shape
    want = correlate(image, SOBEL_X)
    assert want.min() < 0  # unclipped: negative responses kept
    np.testing.assert_allclose(data, want, atol=1e-4 * 8 * 255)


def test_filter_raw_folder_in_a_batch(make_image, tmp_path, run_main):
    made = [make_image(f"in/{n}.png", shape=(9, 11), seed=i) for i, n in enumerate("pq")]
    raw = tmp_path / "raw"
    result = run_main(
        [
            "filter",
            *[p for p, _ in made],
            "-k",
            "sobel-x",
            "-k",
            "sobel-y",
            "-d",
            tmp_path / "out",
            "--raw",
            raw,
        ]
    )
    assert result.exit_code == 0, result
    assert sorted(p.name for p in raw.iterdir()) == [
        "p_sobel-x.npy",
        "p_sobel-y.npy",
        "q_sobel-x.npy",
        "q_sobel-y.npy",
    ]
    for (_, image), stem in zip(made, "pq", strict=True):
        np.testing.assert_allclose(
            np.load(raw / f"{stem}_sobel-y.npy"), correlate(image, SOBEL_Y), atol=1e-3
        )


@pytest.mark.parametrize("border", list(SCIPY_MODE))
def test_filter_border_modes(gray, tmp_path, run_main, border):
    path, image = gray
    kernel = np.array([[1, 2, 0, -1], [0, 3, 1, 1], [2, -2, 1, 0]], np.float64)  # 3x4, odd+even
    raw = tmp_path / "r.npy"
    result = run_main(
        [
            "filter",
            path,
            "-k",
            "1,2,0,-1;0,3,1,1;2,-2,1,0",
            "--border",
            border,
            "-o",
            tmp_path / "b.png",
            "--raw",
            raw,
        ]
    )
    assert result.exit_code == 0, result
    want = correlate(image, kernel, border)
    np.testing.assert_allclose(np.load(raw), want, atol=1e-4 * np.abs(kernel).sum() * 255)
    np.testing.assert_array_equal(read(tmp_path / "b.png"), saturate(want))


def test_filter_convolve(gray, tmp_path, run_main):
    path, image = gray
    kernel = np.array([[1, 2, 3], [0, 0, 0], [-1, -5, 0]], np.float64)
    out = tmp_path / "c.png"
    result = run_main(
        ["filter", path, "-k", "1,2,3;0,0,0;-1,-5,0", "--convolve", "--range", "abs", "-o", out]
    )
    assert result.exit_code == 0, result
    np.testing.assert_array_equal(
        read(out), saturate(np.abs(correlate(image, kernel, convolve=True)))
    )


def test_filter_normalize(gray, tmp_path, run_main):
    path, image = gray
    out = tmp_path / "n.png"
    result = run_main(["filter", path, "-k", "1,2,1;2,4,2;1,2,1", "--normalize", "-o", out])
    assert result.exit_code == 0, result
    kernel = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float64) / 16
    np.testing.assert_array_equal(read(out), saturate(correlate(image, kernel)))


@pytest.mark.parametrize("mode", ["clip", "abs", "rescale"])
def test_filter_range_modes(gray, tmp_path, run_main, mode):
    path, image = gray
    out = tmp_path / f"{mode}.png"
    result = run_main(["filter", path, "-k", "sobel-x", "--range", mode, "-o", out])
    assert result.exit_code == 0, result
    resp = correlate(image, SOBEL_X)
    if mode == "clip":
        want = saturate(resp)
    elif mode == "abs":
        want = saturate(np.abs(resp))
    else:
        want = saturate((resp - resp.min()) / (resp.max() - resp.min()) * 255)
    got = read(out)
    assert np.abs(got.astype(int) - want).max() <= (1 if mode == "rescale" else 0)
    if mode == "rescale":
        assert got.min() == 0 and got.max() == 255


def test_filter_16bit(make_image, tmp_path, run_main):
    path, image = make_image("d.png", shape=(10, 12), dtype=np.uint16, seed=12)
    out = tmp_path / "d_sx.png"
    assert run_main(["filter", path, "-k", "sobel-x", "-o", out]).exit_code == 0
    got = read(out)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, saturate(np.abs(correlate(image, SOBEL_X)), np.uint16))


def test_filter_kernel_file(gray, tmp_path, run_main):
    path, image = gray
    kernel = np.array([[0.5, -1.0], [2.0, 0.25]])
    np.save(tmp_path / "mine.npy", kernel)
    out = tmp_path / "out"
    result = run_main(["filter", path, "-k", tmp_path / "mine.npy", "-d", out])
    assert result.exit_code == 0, result
    np.testing.assert_array_equal(read(out / "gray_mine.png"), saturate(correlate(image, kernel)))


def test_filter_list_kernels(cli_runner, run_cli):
    from convkit.image.kernels import list_presets

    result = invoke(cli_runner, ["filter", "--list-kernels"])
    assert result.exit_code == 0, result.output
    sub = run_cli(["filter", "--list-kernels"])
    assert sub.exit_code == 0, sub
    for text in (result.stdout, sub.text):
        for name in [
            "sobel-x",
            "sobel-y",
            "scharr-x",
            "scharr-y",
            "prewitt-x",
            "prewitt-y",
            "laplacian",
            "laplacian-diag",
            "sharpen",
            "emboss",
            "outline",
            "identity",
            "edges4",
            "box:N",
            "gaussian:N",
        ]:
            assert name in text, name
        assert re.search(r"-1\s+0\s+1", text)  # the sobel-x row
        assert re.search(r"-2\s+0\s+2", text)
        assert "correlation" in text.lower()
    assert len(list_presets()) >= 14


def test_filter_sample_image_demo(sample_images, tmp_path, run_cli):
    out = tmp_path / "demo"
    sub = run_cli(
        [
            "filter",
            sample_images / "camera.png",
            "--gray",
            "-k",
            "sobel-x",
            "-k",
            "sobel-y",
            "-d",
            out,
            "-q",
        ]
    )
    assert sub.exit_code == 0, sub
    camera = read(sample_images / "camera.png")
    np.testing.assert_array_equal(
        read(out / "camera_sobel-x.png"), saturate(np.abs(correlate(camera, SOBEL_X)))
    )


def test_jobs_do_not_change_results(make_image, tmp_path, run_main):
    paths = [make_image(f"in/{i}.png", shape=(16, 16, 3), seed=i)[0] for i in range(6)]
    for jobs in ("1", "3"):
        result = run_main(["filter", *paths, "-k", "sobel-x", "-d", tmp_path / jobs, "-j", jobs])
        assert result.exit_code == 0, result
    for p in paths:
        name = f"{p.stem}_sobel-x.png"
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "3" / name).read_bytes()


# --------------------------------------------------------------------------- stdin / stdout


def test_stdin_to_stdout_subprocess(color, run_cli):
    path, image = color
    sub = run_cli(["grayscale", "-", "-o", "-"], input=path.read_bytes())
    assert sub.exit_code == 0, sub
    assert sub.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    np.testing.assert_array_equal(from_bytes(sub.stdout), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert sub.stderr == ""


def test_stdin_to_stdout_cli_runner(color, cli_runner):
    path, image = color
    result = invoke(
        cli_runner, ["filter", "-", "-k", "sobel-x", "-o", "-"], input=path.read_bytes()
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        from_bytes(result.stdout_bytes), saturate(np.abs(correlate(image, SOBEL_X)))
    )


def test_stdout_format_option(color, run_cli):
    path, image = color
    sub = run_cli(["grayscale", path, "-o", "-", "--format", "tiff"])
    assert sub.exit_code == 0, sub
    assert sub.stdout[:4] in (b"II*\x00", b"MM\x00*")
    np.testing.assert_array_equal(from_bytes(sub.stdout), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pty")
def test_stdout_terminal_refused(color, tmp_path, cli_env):
    import pty

    path, _ = color
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "convkit", "grayscale", str(path), "-o", "-"],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=cli_env(),
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert re.search(r"^convkit: error: .*terminal", stderr, re.MULTILINE), stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- errors


@pytest.fixture
def bad_files(tmp_path, images):
    folder = tmp_path / "bad"
    folder.mkdir()
    png = images.encode(images.random((40, 40, 3)), ".png")
    jpg = images.encode(images.random((40, 40, 3)), ".jpg")
    corrupt = bytearray(png)
    corrupt[len(png) // 2 : len(png) // 2 + 64] = bytes(64)
    files = {
        "empty.png": b"",
        "half.png": png[: len(png) // 2],
        "half.jpg": jpg[: len(jpg) // 2],
        "corrupt.png": bytes(corrupt),
        "notes.txt": b"just some text\n",
        "fake.png": b"just some text pretending\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize(
    "name,reason",
    [
        ("empty.png", r"empty"),
        ("half.png", r"truncated|corrupt"),
        ("half.jpg", r"truncated"),
        ("corrupt.png", r"corrupt"),
        ("notes.txt", r"not an image"),
        ("fake.png", r"not an image"),
    ],
)
@pytest.mark.parametrize("command", ["info", "grayscale", "filter"])
def test_bad_input_one_line_error(
    convkit_cli, cli_error, bad_files, tmp_path, name, reason, command, no_stray_temp_files
):
    path = bad_files / name
    before = path.read_bytes()
    args = {
        "info": ["info", path],
        "grayscale": ["grayscale", path, "-o", tmp_path / "o.png"],
        "filter": ["filter", path, "-k", "sobel-x", "-o", tmp_path / "o.png"],
    }[command]
    result = convkit_cli(args)
    cli_error(result, 1, reason, path=str(path))
    assert result.stdout == b""
    assert not (tmp_path / "o.png").exists()
    assert path.read_bytes() == before
    assert no_stray_temp_files(tmp_path) == []


def test_missing_file(convkit_cli, cli_error, tmp_path):
    path = tmp_path / "nope.png"
    result = convkit_cli(["grayscale", path, "-o", tmp_path / "o.png"])
    cli_error(result, 1, r"no such file", path=str(path))


def test_directory_with_a_non_image_is_skipped_with_a_note(make_image, tmp_path, convkit_cli):
    path, image = make_image("mixed/photo.png", shape=(5, 6, 3))
    (tmp_path / "mixed" / "readme.txt").write_text("hello")
    out = tmp_path / "out"
    result = convkit_cli(["grayscale", tmp_path / "mixed", "-d", out])
    assert result.exit_code == 0, result
    assert re.search(r"^convkit: note: .*readme\.txt", result.stderr, re.MULTILINE), result
    assert "error" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["photo_gray.png"]


@pytest.fixture
def batch(tmp_path, images):
    folder = tmp_path / "batch"
    folder.mkdir()
    good = {}
    for i, name in enumerate(["a", "c", "e"]):
        image = images.random((8, 9, 3), seed=20 + i)
        (folder / f"{name}.png").write_bytes(images.encode(image, ".png"))
        good[name] = image
    (folder / "b.png").write_bytes(b"garbage, not a png")
    png = images.encode(images.random((30, 30, 3)), ".png")
    (folder / "d.png").write_bytes(png[: len(png) // 2])
    return folder, good


def test_batch_with_bad_files_in_the_middle(batch, tmp_path, convkit_cli, no_stray_temp_files):
    folder, good = batch
    out = tmp_path / "out"
    result = convkit_cli(["grayscale", folder, "-d", out])
    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr_lines if line.startswith("convkit: error: ")]
    assert len(errors) == 2, result
    assert any(line.startswith(f"convkit: error: {folder / 'b.png'}: ") for line in errors)
    assert any(line.startswith(f"convkit: error: {folder / 'd.png'}: ") for line in errors)
    summary = result.stderr_lines[-1]
    assert re.search(r"5 images", summary) and re.search(r"3 files? written", summary), summary
    assert re.search(r"2 failed", summary), summary
    assert sorted(p.name for p in out.iterdir()) == ["a_gray.png", "c_gray.png", "e_gray.png"]
    for name, image in good.items():
        np.testing.assert_array_equal(
            read(out / f"{name}_gray.png"), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        )
    assert no_stray_temp_files(tmp_path) == []
    assert result.stdout == b""


def test_batch_fail_fast(batch, tmp_path, convkit_cli):
    folder, _ = batch
    out = tmp_path / "out"
    result = convkit_cli(["grayscale", folder, "-d", out, "--fail-fast", "-j", "1"])
    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr_lines if line.startswith("convkit: error: ")]
    assert len(errors) == 1 and f"{folder / 'b.png'}: " in errors[0], result
    assert sorted(p.name for p in out.iterdir()) == ["a_gray.png"]  # stopped at b
    assert "fail-fast" in result.stderr_lines[-1]


def test_info_batch_with_bad_file(batch, convkit_cli):
    folder, good = batch
    result = convkit_cli(["info", "--json", folder])
    assert result.exit_code == 1, result
    items = json.loads(result.stdout)
    # every input, in input order; the failed ones with the error, as on stderr
    assert [Path(obj["path"]).name for obj in items] == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
        "e.png",
    ]
    assert items[1] == {
        "path": str(folder / "b.png"),
        "error": "not an image (unknown or unsupported format)",
    }
    assert items[3]["path"] == str(folder / "d.png") and "cannot decode" in items[3]["error"]
    assert all("error" not in items[i] for i in (0, 2, 4))
    errors = [line for line in result.stderr_lines if line.startswith("convkit: error: ")]
    assert errors == [f"convkit: error: {obj['path']}: {obj['error']}" for obj in items[1::2]]


def test_info_jsonl_streams_every_input_with_failures(batch, convkit_cli):
    folder, good = batch
    result = convkit_cli(["info", "--jsonl", "-j", "2", folder])
    assert result.exit_code == 1, result
    lines = result.stdout.decode().splitlines()
    records = {Path(obj["path"]).name: obj for obj in map(json.loads, lines)}
    assert sorted(records) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert records["b.png"]["error"] == "not an image (unknown or unsupported format)"
    for name, image in good.items():
        assert records[f"{name}.png"]["shape"] == [8, 9, 3]
        assert records[f"{name}.png"]["first_pixel"] == [int(v) for v in image[0, 0, ::-1]]


def test_batch_quiet_keeps_errors(batch, tmp_path, convkit_cli):
    folder, _ = batch
    result = convkit_cli(["grayscale", folder, "-d", tmp_path / "out", "-q"])
    assert result.exit_code == 1
    assert all(line.startswith("convkit: error: ") for line in result.stderr_lines), result
    assert len(result.stderr_lines) == 2


@pytest.mark.parametrize("command", ["grayscale", "filter"])
def test_output_would_overwrite_input(color, convkit_cli, cli_error, command, tmp_path):
    path, _ = color
    before = path.read_bytes()
    extra = ["-k", "sobel-x"] if command == "filter" else []
    result = convkit_cli([command, path, *extra, "-o", path])
    line = cli_error(result, 2, r"overwrite", path=str(path))
    assert "--in-place" in line
    assert path.read_bytes() == before
    # the same through --out-dir and a --name template
    result = convkit_cli([command, path, *extra, "-d", path.parent, "--name", "{stem}.png"])
    cli_error(result, 2, r"overwrite", path=str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_in_place(color, convkit_cli):
    path, image = color
    result = convkit_cli(["grayscale", path, "-o", path, "--in-place"])
    assert result.exit_code == 0, result
    np.testing.assert_array_equal(read(path), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_missing_destination(color, convkit_cli, cli_error):
    path, _ = color
    cli_error(convkit_cli(["grayscale", path]), 2, r"-o|--out-dir")
    cli_error(convkit_cli(["filter", path, "-k", "sobel-x"]), 2, r"-o|--out-dir")


def test_output_with_several_inputs(color, gray, tmp_path, convkit_cli, cli_error):
    result = convkit_cli(["grayscale", color[0], gray[0], "-o", tmp_path / "x.png"])
    cli_error(result, 2, r"--out-dir")
    result = convkit_cli(
        ["filter", gray[0], "-k", "sobel-x", "-k", "sobel-y", "-o", tmp_path / "x.png"]
    )
    cli_error(result, 2, r"--out-dir")
    assert not (tmp_path / "x.png").exists()


def test_unwritable_output(color, tmp_path, convkit_cli, cli_error, no_stray_temp_files):
    path, _ = color
    missing = tmp_path / "no" / "such" / "folder" / "x.png"
    result = convkit_cli(["grayscale", path, "-o", missing])
    cli_error(result, 1, r"cannot write|does not exist|no such", path=str(missing))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = convkit_cli(["grayscale", path, "-d", blocker / "sub"])
    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr
    assert re.search(r"^convkit: error: .*a-file", result.stderr, re.MULTILINE), result
    assert no_stray_temp_files(tmp_path) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_folder(color, tmp_path, convkit_cli, cli_error, no_stray_temp_files):
    path, _ = color
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = convkit_cli(["grayscale", path, "-o", ro / "x.png"])
        cli_error(result, 1, r"permission denied", path=str(ro / "x.png"))
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
    assert no_stray_temp_files(tmp_path) == []


def test_failed_rename_in_a_batch(make_image, tmp_path, run_main, monkeypatch, no_stray_temp_files):
    """A write that fails after the temp file exists (full disk, permissions) is an error
    for that input, leaves no temp file, and the others still go on."""
    import errno

    paths = [make_image(f"in/{n}.png", shape=(5, 5, 3))[0] for n in "xyz"]
    real_replace = os.replace

    def flaky(src, dst, *a, **k):
        if str(dst).endswith("y_gray.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", flaky)
    out = tmp_path / "out"
    result = run_main(["grayscale", *paths, "-d", out, "-j", "1"])
    assert result.exit_code == 1, result
    assert re.search(
        rf"^convkit: error: {re.escape(str(out / 'y_gray.png'))}: .*no space",
        result.stderr,
        re.MULTILINE,
    ), result
    assert sorted(p.name for p in out.iterdir()) == ["x_gray.png", "z_gray.png"]
    assert no_stray_temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "kernel,reason",
    [
        ("sobelx", r"unknown kernel.*sobel-x"),
        ("1,2;3", r"ragged"),
        ("1,nan", r"nan"),
        ("box:0", r"box"),
        ("", r"empty"),
    ],
)
def test_bad_kernel(color, tmp_path, convkit_cli, cli_error, kernel, reason):
    path, _ = color
    result = convkit_cli(["filter", path, "-k", kernel, "-o", tmp_path / "x.png"])
    cli_error(result, 2, reason)
    assert not (tmp_path / "x.png").exists()


def test_no_kernel(color, tmp_path, convkit_cli, cli_error):
    cli_error(
        convkit_cli(["filter", color[0], "-o", tmp_path / "x.png"]),
        2,
        r"give at least one kernel with --kernel \(see --list-kernels\)$",
    )


@pytest.mark.parametrize("size", ["abc", "0x5", "5x0", "x", "-3x4", "1.5x2"])
def test_bad_resize(color, tmp_path, convkit_cli, cli_error, size):
    result = convkit_cli(["grayscale", color[0], "--resize", size, "-o", tmp_path / "x.png"])
    cli_error(
        result,
        2,
        rf"--resize '{re.escape(size)}' (is not a size|needs positive sizes): give N \(NxN\), "
        r"WxH, Wx or xH \(the other side keeps the aspect ratio\), or P%$",
    )
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "args,reason",
    [
        (
            ["grayscale", "--interpolation", "bogus"],
            r"--interpolation must be one of area, linear, cubic, nearest, lanczos, got 'bogus'$",
        ),
        (["grayscale", "--keep-aspect"], r"--keep-aspect needs --resize, the box to fit in$"),
        (
            ["filter", "-k", "sobel-x", "--border", "wrap"],
            r"--border must be one of reflect101, reflect, replicate, constant, got 'wrap'$",
        ),
        (
            ["filter", "-k", "sobel-x", "--range", "log"],
            r"--range must be one of clip, abs, rescale, got 'log'$",
        ),
        (["grayscale", "--format", "xcf"], r"unknown output format 'xcf' \(known: png, jpg"),
    ],
)
def test_bad_options(color, tmp_path, convkit_cli, cli_error, args, reason):
    result = convkit_cli([args[0], color[0], *args[1:], "-o", tmp_path / "x.png"])
    cli_error(result, 2, reason)


def test_click_usage_errors_exit_2(color, convkit_cli):
    for args in (
        ["grayscale", color[0], "--no-such-option"],
        ["no-such-command"],
        ["grayscale", color[0], "-j", "0", "-o", "x.png"],
    ):
        result = convkit_cli(args)
        assert result.exit_code == 2, result
        assert "Traceback" not in result.stderr
        assert result.stdout == b""


def test_no_inputs(convkit_cli, cli_error, tmp_path):
    cli_error(convkit_cli(["grayscale", "-d", tmp_path / "out"]), 2, r"no input images")
    cli_error(convkit_cli(["info"]), 2, r"no input images")
    # One rule for inputs that yield no image (a folder without images, a glob that matches
    # nothing, a missing file): a failed input, named in one line, exit 1.
    (tmp_path / "empty").mkdir()
    result = convkit_cli(["grayscale", tmp_path / "empty", "-d", tmp_path / "out"])
    cli_error(result, 1, r"no images found in this folder$", path=str(tmp_path / "empty"))
    result = convkit_cli(["grayscale", str(tmp_path / "*.png"), "-d", tmp_path / "out"])
    cli_error(result, 1, r"no files match this pattern$", path=str(tmp_path / "*.png"))
    result = convkit_cli(["grayscale", tmp_path / "nope.png", "-d", tmp_path / "out"])
    cli_error(result, 1, r"no such file or directory$", path=str(tmp_path / "nope.png"))
    assert not (tmp_path / "out").exists()


def test_debug_shows_traceback_for_usage_errors(color, run_cli):
    result = run_cli(["--debug", "grayscale", color[0]])
    assert result.exit_code != 0
    assert "Traceback" in result.stderr
    env_result = run_cli(["grayscale", color[0]], env={"CONVKIT_DEBUG": "1"})
    assert "Traceback" in env_result.stderr


def test_debug_shows_traceback_for_a_bad_input(bad_files, run_cli):
    """--debug exists to see where an error comes from: a corrupt input must show one too."""
    result = run_cli(["--debug", "info", bad_files / "corrupt.png"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr, result
    env_result = run_cli(["info", bad_files / "corrupt.png"], env={"CONVKIT_DEBUG": "1"})
    assert "Traceback" in env_result.stderr, env_result


def test_closed_pipe_ends_quietly(make_image, tmp_path, cli_env):
    """`convkit info --json MANY | head -c 1` and `convkit grayscale BIG -o - | head -c 1`:
    the reader has gone before convkit writes; no traceback, no noise."""
    for i in range(300):
        make_image(f"many/{i:03d}.png", shape=(2, 2, 3), seed=i)
    big, _ = make_image("big.png", shape=(300, 300, 3), seed=1)
    for args in (
        ["info", "--json", tmp_path / "many"],
        ["info", tmp_path / "many"],
        ["grayscale", big, "-o", "-"],
        ["filter", big, "-k", "sobel-x", "-o", "-"],
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "convkit", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        proc.stdout.close()  # the reader is gone before anything is written
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
        assert "Traceback" not in stderr, (args, stderr)
        assert "Exception ignored" not in stderr, (args, stderr)
        assert "BrokenPipe" not in stderr, (args, stderr)
        assert "error" not in stderr.lower(), (args, stderr)
        assert code == 141, (args, code, stderr)  # as a shell reports a process ended by SIGPIPE


def test_version(run_cli, cli_runner):
    from importlib.metadata import version

    sub = run_cli(["--version"])
    assert sub.exit_code == 0
    assert sub.text.strip() == f"convkit {convkit.__version__}"
    assert convkit.__version__ == version("convkit")
    result = invoke(cli_runner, ["--version"])
    assert result.exit_code == 0 and convkit.__version__ in result.stdout


def _command_names():
    names = []
    for info in app.registered_commands:
        names.append(info.name or info.callback.__name__.replace("_", "-"))
    return names


def test_every_command_has_help(cli_runner):
    names = _command_names()
    assert {"info", "grayscale", "filter"} <= set(names)
    for info in app.registered_commands:
        assert (info.callback.__doc__ or info.help or "").strip(), info.name
    top = invoke(cli_runner, ["--help"])
    assert top.exit_code == 0
    for name in names:
        assert name in top.stdout
        result = invoke(cli_runner, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.stdout and name in result.stdout
        first_line = (
            (
                next(i for i in app.registered_commands if (i.name or "") == name).callback.__doc__
                or ""
            )
            .strip()
            .splitlines()
        )
        if first_line:
            assert first_line[0][:30] in " ".join(result.stdout.split()), name


def test_help_via_subprocess(run_cli):
    for args in (["--help"], ["-h"], ["filter", "--help"], ["grayscale", "-h"], ["info", "-h"]):
        sub = run_cli(args)
        assert sub.exit_code == 0, sub
        assert b"Usage" in sub.stdout
    no_args = run_cli([])
    assert b"Usage" in no_args.stdout + no_args.stderr.encode()


def test_filter_help_says_correlation_and_range_default(cli_runner):
    text = " ".join(invoke(cli_runner, ["filter", "--help"]).stdout.split())
    assert "correlation" in text.lower()
    assert "--convolve" in text
    assert re.search(r"abs for zero-sum", text)


@pytest.mark.parametrize("command", ["info", "grayscale", "filter"])
def test_jobs_help_shows_its_default(cli_runner, command):
    """`-j` says '[default: all cores]': the text must survive Rich's markup."""
    text = " ".join(invoke(cli_runner, [command, "--help"]).stdout.split())
    assert "all cores" in text, text[text.find("--jobs") :][:200]

"""``convkit conv``, ``convkit pool`` and ``convkit run`` end to end.

Most runs go through ``convkit.cli.main()`` in this process (Keras is imported once); a few
go through a real ``python -m convkit`` subprocess, for what only a real process shows:
stdout left empty by Keras and TensorFlow, exit codes of the fast exit, no log noise on
stderr, and reproducibility across processes.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from conftest import assert_cli_error, stray_temp_files  # noqa: E402

pytestmark = pytest.mark.keras

EDGES4 = ["-k", "edges4"]


@pytest.fixture(scope="module", autouse=True)
def keras():
    from convkit.heavy import import_keras

    return import_keras()


@pytest.fixture
def photo(make_image, images):
    """A 32x48 colour image with some structure (smooth noise)."""
    return make_image("in/photo.png", images.smooth((32, 48, 3), seed=1))[0]


@pytest.fixture
def gray(make_image, images):
    return make_image("in/gray.png", images.smooth((32, 48), seed=2))[0]


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def summary_rows(stderr: str) -> dict[str, tuple[str, str, int]]:
    """``{layer: (type, output shape, params)}`` read off the Rich table on stderr."""
    rows = {}
    for line in stderr.splitlines():
        match = re.match(r"^\s*(\S+)\s+([A-Z]\w+)\s+([\d×]+)\s+([\d,]+)\s", line)
        if match:
            rows[match.group(1)] = (
                match.group(2),
                match.group(3),
                int(match.group(4).replace(",", "")),
            )
    return rows


# --------------------------------------------------------------------------- conv


def test_conv_edges4_relu_writes_maps_before_and_after_relu_and_montages(run_main, photo, tmp_path):
    out = tmp_path / "out"
    result = run_main(["conv", photo, *EDGES4, "--activation", "relu", "-d", out])
    assert result.exit_code == 0, result
    assert result.stdout == b""
    expected = [f"photo_{layer}-{i}.png" for layer in ("conv", "relu") for i in range(1, 5)]
    expected += ["photo_conv-montage.png", "photo_relu-montage.png"]
    assert names(out) == sorted(expected)
    conv1 = cv2.imread(str(out / "photo_conv-1.png"), cv2.IMREAD_UNCHANGED)
    assert conv1.dtype == np.uint8 and conv1.shape == (29, 45)  # valid 4x4 on 32x48
    assert conv1.min() == 0 and conv1.max() == 255  # rescaled per map by default
    montage = cv2.imread(str(out / "photo_conv-montage.png"), cv2.IMREAD_UNCHANGED)
    assert montage.ndim == 3 and montage.shape[1] > 4 * 45
    rows = summary_rows(result.stderr)
    assert rows == {"conv": ("Conv2D", "29×45×4", 68), "relu": ("Activation", "29×45×4", 0)}
    assert "conv2d(4, 4, name=conv) activation(relu, name=relu)" in result.stderr.replace("\n", " ")


def test_conv_equals_filter_with_constant_border(run_main, photo, tmp_path):
    """The tie of the issue: conv -k preset --no-bias --padding same on a gray image is
    convkit filter -k preset --border constant, in float32 within 1e-4."""
    for kernel in ("sobel-x", "laplacian", "gaussian:5"):
        out = tmp_path / kernel.replace(":", "-")
        conv = run_main(
            ["conv", photo, "-k", kernel, "--no-bias", "--padding", "same", "--raw", "-d", out]
        )
        assert conv.exit_code == 0, conv
        filt = run_main(
            [
                "filter",
                photo,
                "-k",
                kernel,
                "--gray",
                "--border",
                "constant",
                "-o",
                out / "f.png",
                "--raw",
                out / "f.npy",
            ]
        )
        assert filt.exit_code == 0, filt
        maps = np.load(out / "photo_conv.npy")
        response = np.load(out / "f.npy")
        assert maps.dtype == np.float32 and maps.shape == (32, 48, 1)
        np.testing.assert_allclose(maps[:, :, 0], response, atol=1e-4, rtol=0)


def test_classic_512_conv15_relu_pool(run_main, make_image, tmp_path):
    image, _ = make_image("big.png", shape=(512, 512), seed=3)
    out = tmp_path / "out"
    result = run_main(
        ["run", image, "--spec", "conv2d(1, 15) relu maxpool2d(2)", "--raw", "--no-maps",
         "--no-montage", "-d", out]
    )  # fmt: skip
    assert result.exit_code == 0, result
    assert summary_rows(result.stderr) == {
        "conv2d": ("Conv2D", "498×498×1", 226),
        "activation": ("Activation", "498×498×1", 0),
        "max_pooling2d": ("MaxPooling2D", "249×249×1", 0),
    }
    assert np.load(out / "big_conv2d.npy").shape == (498, 498, 1)
    assert np.load(out / "big_max_pooling2d.npy").shape == (249, 249, 1)
    assert names(out) == ["big_activation.npy", "big_conv2d.npy", "big_max_pooling2d.npy"]


@pytest.mark.parametrize(
    "spec",
    [
        "conv2d(8, 3, padding=same) relu maxpool2d(2)",
        "conv2d(4, 5, strides=2) bn relu avgpool(3, strides=2, padding=same) conv2d(2, 1)",
    ],
)
def test_summary_agrees_with_shape_calc(run_main, photo, tmp_path, spec):
    calc = run_main(["shape-calc", "--input", "32x48x1", "--json", spec])
    assert calc.exit_code == 0, calc
    expected = {
        layer["name"]: (layer["type"], "×".join(map(str, layer["output_shape"])), layer["params"])
        for layer in json.loads(calc.text)["layers"]
    }
    result = run_main(["run", photo, "--spec", spec, "--seed", "0", "-d", tmp_path / "o"])
    assert result.exit_code == 0, result
    assert summary_rows(result.stderr) == expected
    assert result.stderr.count("Model for a 32×48×1 input") == 1


def test_same_seed_same_bytes_across_processes(run_cli, run_main, photo, tmp_path):
    args = ["run", photo, "--spec", "conv2d(3, 3) relu maxpool2d(2)", "--raw", "-q"]
    first = run_cli([*args, "--seed", "7", "-d", tmp_path / "a"])
    assert first.exit_code == 0, first
    again = run_main([*args, "--seed", "7", "-d", tmp_path / "b"])
    other = run_main([*args, "--seed", "8", "-d", tmp_path / "c"])
    assert again.exit_code == 0 and other.exit_code == 0
    files = names(tmp_path / "a")
    assert len(files) == 3 * 4 + 3  # 3 maps + montage per layer, 3 .npy
    assert names(tmp_path / "b") == files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "photo_conv2d.npy").read_bytes() != (
        tmp_path / "c" / "photo_conv2d.npy"
    ).read_bytes()


def test_weights_file_and_a_shape_mismatch(run_main, photo, tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npy"
    np.save(good, rng.normal(size=(3, 3, 3, 2)).astype(np.float32))
    ok = run_main(["conv", photo, "--weights", good, "--color", "-d", tmp_path / "ok", "-q"])
    assert ok.exit_code == 0, ok
    assert "photo_conv-2.png" in names(tmp_path / "ok")
    out = tmp_path / "bad"
    result = run_main(["conv", photo, "--weights", good, "-d", out])  # gray: C_in must be 1
    assert_cli_error(result, 2, r"good\.npy: weights of shape \(3, 3, 3, 2\).*\(3, 3, 1, 2\)")
    assert not out.exists()
    result = run_main(["conv", photo, "--weights", good, "--color", "--filters", "5", "-d", out])
    assert_cli_error(
        result, 2, r"^convkit: error: --filters 5 but the --weights \S*good\.npy give 2 filters$"
    )
    result = run_main(["conv", photo, *EDGES4, "--kernel-size", "3", "-d", out])
    assert_cli_error(result, 2, "--kernel-size 3 but the --kernel kernels are 4x4")
    result = run_main(["conv", photo, *EDGES4, "--weights", good, "-d", out])
    assert_cli_error(result, 2, "give the filters either with --kernel or with --weights, not both")
    assert not out.exists()


def test_bad_spec_is_one_located_error(run_main, photo, tmp_path):
    out = tmp_path / "out"
    result = run_main(["run", photo, "--spec", "conv2d(4, 3) rleu", "-d", out])
    line = assert_cli_error(result, 2, "unknown layer 'rleu'.*did you mean 'relu'", only_line=False)
    assert "^^^^" in result.stderr and "Traceback" not in result.stderr
    assert line.startswith("convkit: error: column 14")
    result = run_main(
        ["run", photo, "--spec", "conv2d(2, 3, strides=2, dilation_rate=2)", "-d", out]
    )
    assert_cli_error(
        result,
        2,
        r"layer 1 \(conv2d, Conv2D\): `strides > 1` not supported in conjunction with "
        r"`dilation_rate > 1`",
        only_line=False,
    )
    assert not out.exists()


def test_kernel_larger_than_the_image(run_main, make_image, tmp_path):
    tiny, _ = make_image("tiny.png", shape=(10, 12), seed=4)
    out = tmp_path / "out"
    result = run_main(["conv", tiny, "--kernel-size", "15", "-d", out])
    assert_cli_error(result, 1, "too small.*kernel size 15.*height 10", path=str(tiny))
    assert not out.exists() or names(out) == []


def test_batch_with_bad_files_in_the_middle_goes_on(run_cli, make_image, photo, tmp_path):
    folder = photo.parent
    make_image("in/b_small.png", shape=(8, 8, 3), seed=5)  # too small for a 15x15 kernel
    (folder / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    make_image("in/d_other.png", shape=(20, 40, 3), seed=6)  # another size: its own group
    out = tmp_path / "out"
    result = run_cli(["conv", folder, "--kernel-size", "15", "--seed", "1", "-d", out])
    assert result.exit_code == 1, result
    assert result.stdout == b""
    errors = [ln for ln in result.stderr_lines if ln.startswith("convkit: error:")]
    assert len(errors) == 2, result
    assert any("b_small.png: the image (8x8) is too small" in e for e in errors)
    assert any("c_corrupt.png:" in e for e in errors)
    assert "4 images, 4 files written, 2 failed" in result.stderr
    assert names(out) == [
        "d_other_conv-1.png",
        "d_other_conv-montage.png",
        "photo_conv-1.png",
        "photo_conv-montage.png",
    ]
    # The table for the first size, one line for the other size; none for the size refused.
    assert result.stderr.count("Model for a") == 2
    assert "\nModel for a 32×48×1 input (gray): conv 18×34×1\n" in result.stderr
    assert not stray_temp_files(tmp_path)
    # TensorFlow's start-up lines stay out of sight; Keras prints nothing.
    for noise in ("oneDNN", "cuda", "absl", "WARNING", "Traceback"):
        assert noise not in result.stderr


def test_fail_fast_stops_at_the_first_bad_image(run_main, make_image, photo, tmp_path):
    folder = photo.parent
    (folder / "a_corrupt.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = run_main(["conv", folder, "--fail-fast", "-d", out, "-j", "1"])
    assert result.exit_code == 1
    assert "stopped at the first failure" in result.stderr
    assert not out.exists() or names(out) == []


# --------------------------------------------------------------------------- pool


def _blocks(x: np.ndarray, p: int, how) -> np.ndarray:
    h, w = x.shape[0] // p * p, x.shape[1] // p * p
    return how(x[:h, :w].reshape(h // p, p, w // p, p).astype(np.float64), axis=(1, 3))


def test_pool_max_to_stdout_equals_numpy(run_main, gray, images):
    result = run_main(["pool", gray, "--size", "2", "--range", "clip", "--no-montage", "-o", "-"])
    assert result.exit_code == 0, result
    pooled = images.decode(result.stdout)
    source = images.read_png(gray)
    np.testing.assert_array_equal(pooled, _blocks(source, 2, np.max).astype(np.uint8))


def test_pool_to_stdout_in_a_real_process(run_cli, gray, images):
    """The fast exit of a real process flushes stdout first: the PNG arrives whole."""
    result = run_cli(["pool", gray, "--mode", "avg", "--range", "clip", "--no-montage", "-o", "-"])
    assert result.exit_code == 0, result
    assert result.stderr_lines[-1].startswith("spec: avgpool2d(2, name=avgpool)")
    source = images.read_png(gray)
    expected = np.rint(_blocks(source, 2, np.mean)).astype(np.uint8)
    np.testing.assert_array_equal(images.decode(result.stdout), expected)


def test_pool_avg_same_raw_excludes_padding(run_main, make_image, tmp_path):
    path, image = make_image("odd.png", shape=(7, 9), seed=8)
    out = tmp_path / "out"
    result = run_main(
        ["pool", path, "--mode", "avg", "--size", "2", "--padding", "same", "--raw", "-d", out]
    )
    assert result.exit_code == 0, result
    raw = np.load(out / "odd_avgpool.npy")[:, :, 0]
    assert raw.shape == (4, 5)
    x = image.astype(np.float64)
    ref = [[x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean() for j in range(5)] for i in range(4)]
    np.testing.assert_allclose(raw, ref, atol=1e-4)
    assert summary_rows(result.stderr) == {"avgpool": ("AveragePooling2D", "4×5×1", 0)}


def test_pool_colour_writes_rgb_channel_maps_and_the_pooled_picture(run_main, photo, tmp_path):
    out = tmp_path / "out"
    result = run_main(["pool", photo, "--color", "--size", "4", "-d", out, "-q"])
    assert result.exit_code == 0, result
    assert names(out) == [
        "photo_maxpool-1.png",
        "photo_maxpool-2.png",
        "photo_maxpool-3.png",
        "photo_maxpool-color.png",
        "photo_maxpool-montage.png",
    ]
    source = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    picture = cv2.imread(str(out / "photo_maxpool-color.png"), cv2.IMREAD_UNCHANGED)
    expected = np.stack([_blocks(source[:, :, c], 4, np.max) for c in range(3)], axis=2)
    np.testing.assert_array_equal(picture, expected.astype(np.uint8))
    # Map 1 is R: OpenCV's channel 2, with its values (pooling keeps the input's range).
    red = cv2.imread(str(out / "photo_maxpool-1.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(red, expected[:, :, 2].astype(np.uint8))


# --------------------------------------------------------------------------- run: outputs


def test_run_layers_option_and_mixed_sizes(run_main, photo, make_image, tmp_path):
    make_image("in/small.png", shape=(20, 24, 3), seed=9)
    out = tmp_path / "out"
    result = run_main(
        ["run", photo.parent, "--spec", "conv2d(2, 3) relu maxpool2d(2)",
         "--layers", "max_pooling2d", "--no-montage", "-d", out]
    )  # fmt: skip
    assert result.exit_code == 0, result
    assert names(out) == [
        "photo_max_pooling2d-1.png",
        "photo_max_pooling2d-2.png",
        "small_max_pooling2d-1.png",
        "small_max_pooling2d-2.png",
    ]
    small = cv2.imread(str(out / "small_max_pooling2d-1.png"), cv2.IMREAD_UNCHANGED)
    assert small.shape == (9, 11)
    result = run_main(["run", photo, "--spec", "conv2d(2, 3)", "--layers", "dense", "-d", out])
    assert_cli_error(result, 2, r"no layer named 'dense' in this model \(its layers: conv2d\)$")


def test_run_first_conv_takes_k_kernels_and_spec_files(run_main, photo, tmp_path):
    spec = tmp_path / "net.txt"
    spec.write_text("# edges, then ReLU and pooling\nconv2d(4, 4)\nrelu\nmaxpool2d(2)\n")
    out = tmp_path / "out"
    result = run_main(["run", photo, "--spec", spec, *EDGES4, "--raw", "--no-maps", "-d", out])
    assert result.exit_code == 0, result
    conv = np.load(out / "photo_conv2d.npy")
    pooled = np.load(out / "photo_max_pooling2d.npy")
    relu = np.maximum(conv, 0)
    np.testing.assert_allclose(pooled, _pool4(relu), atol=1e-4)
    result = run_main(["run", photo, "--spec", "conv2d(8, 3)", *EDGES4, "-d", out])
    assert_cli_error(result, 2, "--kernel gives 4 filters of 4x4.*conv2d\\(4, 4")


def _pool4(x: np.ndarray) -> np.ndarray:
    return np.stack([_blocks(x[:, :, c], 2, np.max) for c in range(x.shape[2])], axis=2)


def test_output_rules(run_main, photo, tmp_path):
    result = run_main(["conv", photo, "-o", tmp_path / "x.png"])
    assert_cli_error(
        result,
        2,
        r"--output takes one result, this run makes 2 per image \(conv-1, conv-montage\); "
        "add --no-montage to write the map alone, or use --out-dir DIR$",
    )
    result = run_main(["conv", photo, "--raw", "-o", tmp_path / "x.png", "--no-montage"])
    assert_cli_error(
        result, 2, r"--raw writes one \.npy per layer and image: it needs --out-dir DIR"
    )
    result = run_main(["conv", photo, "--name", "{stem}.png", "-d", tmp_path])
    assert_cli_error(result, 2, "two results would be written to .*photo.png")
    result = run_main(["conv", photo, "--no-maps", "--no-montage", "-d", tmp_path])
    assert_cli_error(
        result, 2, r"nothing to write: --no-maps and --no-montage leave no output \(add --raw\)"
    )
    one = run_main(["conv", photo, "--no-montage", "-o", tmp_path / "one.png", "-q"])
    assert one.exit_code == 0, one
    assert cv2.imread(str(tmp_path / "one.png"), cv2.IMREAD_UNCHANGED).shape == (30, 46)


def test_bad_options(run_main, photo, tmp_path):
    out = tmp_path / "out"
    cases = [
        (
            ["conv", photo, "--activation", "rellu", "-d", out],
            r"--activation 'rellu' is not a Keras activation \(did you mean 'relu'\? known: ",
        ),
        (
            ["conv", photo, "--padding", "full", "-d", out],
            r"--padding must be valid or same, got 'full' \(Keras has no other; ",
        ),
        (
            ["conv", photo, "--kernel-size", "0", "-d", out],
            "--kernel-size must be a positive integer N or a pair AxB, like 3 or 3x5, got '0'",
        ),
        (
            ["conv", photo, "-k", "sobel-x", "-k", "box:5", "-d", out],
            "the kernels of one Conv2D layer must all have one size, got sobel-x 3x3, box-5 5x5",
        ),
        (["conv", photo, "-k", "nope", "-d", out], "unknown kernel 'nope'"),
        (
            ["pool", photo, "--mode", "mean", "-d", out],
            "--mode must be one of max, avg, got 'mean'",
        ),
        (
            ["conv", photo, "--range", "log", "-d", out],
            "--range must be one of clip, abs, rescale, got 'log'",
        ),
        (
            ["run", photo, "-d", out],
            r'give the layers with --spec, e\.g\. --spec "conv2d\(8, 3\) relu maxpool2d\(2\)" '
            "or --spec FILE",
        ),
        (
            ["run", photo, "--spec", "missing.txt", "-d", out],
            "--spec missing.txt: no such spec file",
        ),
    ]
    for args, message in cases:
        assert_cli_error(run_main(args), 2, message)
    assert not out.exists()


def test_run_reads_the_spec_from_stdin(run_main, photo, tmp_path):
    out = tmp_path / "out"
    result = run_main(
        ["run", photo, "--spec", "-", "--seed", "0", "--no-montage", "-d", out],
        input=b"conv2d(2, 3)  # two filters\nrelu\n",
    )
    assert result.exit_code == 0, result
    assert "spec: conv2d(2, 3) relu" in result.stderr
    assert names(out) == [
        "photo_activation-1.png",
        "photo_activation-2.png",
        "photo_conv2d-1.png",
        "photo_conv2d-2.png",
    ]

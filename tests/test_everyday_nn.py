"""Issue 10 for the feature-map commands and shape-calc, each promise through a real
``python -m convkit`` process: ``--dry-run`` and ``--quality`` on conv, pool and run; the
messages a user meets; shape-calc's table at 80 columns; maps in pixel units written with
their values; a shared montage scale; one meaning per short option."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from terminal import in_terminal

cv2 = pytest.importorskip("cv2")

from conftest import assert_cli_error  # noqa: E402


@pytest.fixture
def photo(make_image, images):
    """A 32x48 colour image with some structure (smooth noise)."""
    return make_image("in/photo.png", images.smooth((32, 48, 3), seed=1))[0]


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- --dry-run


def test_dry_run_prints_every_planned_file_and_builds_nothing(photo, make_image, tmp_path):
    """conv, pool and run: the files a real run writes, in its order, one ``INPUT -> OUTPUT``
    line each; no image read (a corrupt one is listed too), nothing written, neither
    TensorFlow nor OpenCV loaded (checked in the process that ran the command)."""
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not a png at all")
    out = tmp_path / "out"
    runs = {
        "conv": ["conv", str(photo), "-k", "sobel-x", "--activation", "relu", "-d", str(out)],
        "pool": ["pool", str(photo), str(bad), "--color", "-d", str(out), "--format", "jpg"],
        "run": [
            "run", str(photo), "--spec", "conv2d(2, 3) maxpool2d(2) flatten dense(3)",
            "--raw", "--no-montage", "-d", str(out),
        ],
    }  # fmt: skip
    code = f"""
        import contextlib, io, json, sys
        from convkit.cli import main

        outputs = {{}}
        for name, argv in {runs!r}.items():
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                try:
                    main(argv + ["--dry-run"])
                except SystemExit as exc:
                    assert exc.code in (0, None), (argv, exc.code)
            outputs[name] = buffer.getvalue()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "cv2"))
        print(json.dumps({{"outputs": outputs, "heavy": heavy}}))
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["heavy"] == []
    assert not out.exists()
    assert proc.stderr == (
        "convkit: note: layers flatten, dense have no spatial maps to draw (saved with --raw)\n"
    )

    def planned(source, files: list[str]) -> list[str]:
        return [f"{source} -> {out / f}" for f in files]

    assert found["outputs"]["conv"].splitlines() == planned(
        photo, ["photo_conv-1.png", "photo_conv-montage.png",
                "photo_relu-1.png", "photo_relu-montage.png"]
    )  # fmt: skip
    pooled = ["maxpool-1", "maxpool-2", "maxpool-3", "maxpool-color", "maxpool-montage"]
    assert found["outputs"]["pool"].splitlines() == [
        *planned(photo, [f"photo_{w}.jpg" for w in pooled]),
        *planned(bad, [f"broken_{w}.jpg" for w in pooled]),
    ]
    assert found["outputs"]["run"].splitlines() == planned(
        photo, ["photo_conv2d.npy", "photo_conv2d-1.png", "photo_conv2d-2.png",
               "photo_max_pooling2d.npy", "photo_max_pooling2d-1.png",
               "photo_max_pooling2d-2.png", "photo_flatten.npy", "photo_dense.npy"]
    )  # fmt: skip


def test_dry_run_still_refuses_what_a_run_would_refuse(run_cli, photo, tmp_path):
    """Every check that needs no image runs: output collisions, an input overwritten, a
    bad quality, a spec's fixed input size against --max-memory."""
    out = tmp_path / "out"
    result = run_cli(["conv", photo, "--name", "{stem}.png", "-d", out, "--dry-run"])
    assert_cli_error(result, 2, "two results would be written to .*photo.png")
    result = run_cli(["pool", photo, "--no-montage", "-o", photo, "--dry-run"])
    assert_cli_error(result, 2, r"photo.png: the result would overwrite its input \(choose another")
    result = run_cli(["pool", photo, "-d", out, "--quality", "0", "--dry-run"])
    assert_cli_error(result, 2, r"^convkit: error: --quality must be from 1 to 100, got 0$")
    result = run_cli(
        ["run", photo, "--spec", "input((512, 512, 1)) conv2d(64, 3)", "-d", out,
         "--max-memory", "1M", "--dry-run"]
    )  # fmt: skip
    assert_cli_error(
        result, 1, r"a 512x512 image needs .* more than --max-memory 1\.0 MiB: layer 1 conv2d"
    )
    assert not out.exists()


# --------------------------------------------------------------------------- --quality


@pytest.mark.keras
@pytest.mark.parametrize(
    "command",
    [
        ["pool", "--color", "--size", "2"],
        ["conv", "-k", "sobel-x", "--activation", "relu", "--no-montage"],
        ["run", "--spec", "conv2d(2, 3) maxpool2d(2)", "--seed", "1", "--no-montage"],
    ],
    ids=["pool", "conv", "run"],
)
def test_quality_reaches_every_jpeg_written(run_cli, photo, tmp_path, command):
    """The maps (and the montage) as JPEG at --quality 30 are the bytes OpenCV encodes at
    30 from the same pictures written losslessly."""
    png, jpg = tmp_path / "png", tmp_path / "jpg"
    args = [command[0], photo, *command[1:], "-q"]
    assert run_cli([*args, "-d", png]).exit_code == 0
    result = run_cli([*args, "-d", jpg, "--format", "jpg", "--quality", "30"])
    assert result.exit_code == 0, result
    assert files_under(jpg) == [f.replace(".png", ".jpg") for f in files_under(png)]
    for name in files_under(png):
        pixels = cv2.imread(str(png / name), cv2.IMREAD_UNCHANGED)
        ok, want = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 30])
        assert ok
        assert (jpg / name.replace(".png", ".jpg")).read_bytes() == want.tobytes(), name


# --------------------------------------------------------------------------- messages


def test_a_stack_without_maps_says_so(run_cli, photo, tmp_path):
    """Neither --no-maps nor --no-montage given: the message names the layers instead."""
    out = tmp_path / "out"
    result = run_cli(["run", photo, "--spec", "flatten dense(10)", "-d", out])
    assert_cli_error(
        result,
        2,
        r"^convkit: error: nothing to write: layers flatten, dense have no spatial maps to "
        r"draw; add --raw to save their values$",
    )
    spec = "conv2d(2, 3) gap"
    result = run_cli(
        ["run", photo, "--spec", spec, "--layers", "global_average_pooling2d", "-d", out]
    )
    assert_cli_error(
        result,
        2,
        r"^convkit: error: nothing to write: layer global_average_pooling2d has no spatial maps "
        r"to draw; add --raw to save its values$",
    )
    result = run_cli(["conv", photo, "--no-maps", "--no-montage", "-d", out])
    assert_cli_error(
        result,
        2,
        r"^convkit: error: nothing to write: --no-maps and --no-montage leave no output "
        r"\(add --raw\)$",
    )
    assert not out.exists()


def test_messages_say_what_the_user_typed(run_cli, photo, tmp_path):
    """The messages found misleading when walked as a new user, each as one line."""
    out = tmp_path / "out"
    cases = [
        (
            ["pool", photo, "-o", tmp_path / "small.png"],
            r"--output takes one result, this run makes 2 per image \(maxpool-1, "
            r"maxpool-montage\); add --no-montage to write the map alone, or use --out-dir DIR",
        ),
        (
            ["conv", photo, "--strides", "2", "--dilation", "2", "-d", out],
            "--strides 2 and --dilation 2: Keras and TensorFlow refuse a stride above 1 "
            "together with a dilation above 1; choose one",
        ),
        (
            ["shape-calc", "--kernel-size", "3"],
            r"--input is missing: one layer needs --input and --kernel-size \(e\.g\. --input "
            r"512 --kernel-size 15\)",
        ),
        (
            ["shape-calc", "-i", "7x7x3", "-c", "2", "--kernel-size", "3"],
            "--input 7x7x3 has 3 channels but --channels says 2: give one of them",
        ),
    ]
    for args, message in cases:
        assert_cli_error(run_cli(args), 2, f"^convkit: error: {message}$")
    assert not out.exists() and not (tmp_path / "small.png").exists()


def test_shape_calc_pool_describes_the_window_once(run_cli):
    result = run_cli(["shape-calc", "-i", "28x28x32", "--kernel-size", "3", "--pool"])
    assert result.exit_code == 0, result
    assert result.text.splitlines()[:2] == [
        "MaxPooling2D: 28×28×32 → 9×9×32",
        "max pooling: window 3, stride 3, padding valid",
    ]


# --------------------------------------------------------------------------- short options

# Each short option and the one option it stands for, in every command that has it.
SHORT_OPTIONS = {
    "-h": "--help",
    "-V": "--version",
    "-k": "--kernel",
    "-o": "--output",
    "-d": "--out-dir",
    "-f": "--format",
    "-r": "--recursive",
    "-j": "--jobs",
    "-q": "--quiet",
    "-s": "--strides",
    "-p": "--padding",
    "-i": "--input",
    "-c": "--channels",
    "-e": "--epochs",
    "-b": "--batch-size",
    "-m": "--model",
}
# Left to the training commands (not this area's): predict's -k is --top-k, train-cifar's
# -o is --out (a folder).
NOT_YET: set[tuple[str, str]] = set()  # predict -k and train-cifar -o are gone


def test_each_short_option_means_one_thing_across_convkit(tmp_path, cli_env):
    """Every command's visible short options, read from the Typer app the console script
    runs, each standing for the same long option everywhere."""
    code = """
        import json
        import typer.main
        from convkit.cli import app

        group = typer.main.get_command(app)
        found = {}
        for name, command in group.commands.items():
            for param in command.params:
                if getattr(param, "hidden", False):
                    continue
                longs = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
                for short in (o for o in param.opts if not o.startswith("--")):
                    found.setdefault(short, []).append([name, longs[0] if longs else None])
        print(json.dumps(found))
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr

    found = json.loads(proc.stdout)
    wrong = {
        (command, short): long
        for short, uses in found.items()
        for command, long in uses
        if SHORT_OPTIONS.get(short) != long and (command, short) not in NOT_YET
    }
    assert wrong == {}
    assert {c for c, _ in found["-k"]} >= {"filter", "conv", "run"}
    assert {c for c, _ in found["-s"]} == {"conv", "pool", "shape-calc", "animate"}


def test_shape_calc_old_spellings_still_work(run_cli):
    """-k, -d, -f (and --kernel, --stride) are read as before, out of sight in --help."""
    new = run_cli(
        ["shape-calc", "-i", "32x32x3", "--kernel-size", "3", "--dilation", "2",
         "--filters", "8", "--strides", "1", "--json"]
    )  # fmt: skip
    old = run_cli(["shape-calc", "-i", "32x32x3", "-k", "3", "-d", "2", "-f", "8", "--json"])
    longer = run_cli(["shape-calc", "-i", "32x32x3", "--kernel", "3", "--stride", "1",
                      "-d", "2", "-f", "8", "--json"])  # fmt: skip
    assert new.exit_code == old.exit_code == longer.exit_code == 0, (new, old, longer)
    assert new.stdout == old.stdout == longer.stdout
    assert json.loads(new.stdout)["layers"][0]["output_shape"] == [28, 28, 8]
    both = run_cli(["shape-calc", "-i", "8", "-k", "3", "--kernel-size", "3"])
    assert_cli_error(
        both,
        2,
        r"^convkit: error: --kernel-size is given twice \(once as -k or --kernel\): give it once$",
    )
    shown = run_cli(["shape-calc", "--help"], env={"COLUMNS": "120"}).text
    assert "--kernel-size" in shown and "--strides" in shown
    assert not re.search(r"(^|[\s,│])-[kdf]\b", shown), shown


# --------------------------------------------------------------------------- tables

STACK = (
    "conv2d(64, 3, padding=same, activation=relu) maxpool2d(2) globalaveragepooling2d "
    "flatten dense(10, activation=softmax)"
)
FULL_HEADER = ["Layer", "Output shape", "Params", "Non-trainable", "MACs", "RF / jump", "Memory"]


def table_rows(text: str) -> dict[str, list[str]]:
    """``{first cell: cells}`` of a shape-calc table (cells split on two or more spaces)."""
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] and "─" not in line and not line.startswith(("Total ", "Activation")):
            rows[cells[0]] = cells
    return rows


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pty")
def test_shape_calc_table_at_80_columns_keeps_names_whole_or_ellipsed(tmp_path, run_cli):
    """At 80 columns every line fits and every layer is one line: the type goes from the
    labels, the empty Non-trainable column goes, a name too long ends in an ellipsis. At
    200 columns and piped, the whole table."""
    args = ["shape-calc", "-i", "224x224x3", STACK]
    narrow = in_terminal(args, 80, tmp_path)
    lines = [line for line in narrow.splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines), lines
    rows = table_rows(narrow)
    assert rows["Layer"] == ["Layer", "Output shape", "Params", "MACs", "RF / jump", "Memory"]
    assert rows["conv2d (relu)"] == ["conv2d (relu)", "224×224×64", "1,792", "86.70 M", "3 / 1",
                                     "12.2 MiB"]  # fmt: skip
    assert rows["dense (softmax)"][1:3] == ["10", "650"]
    long_name = [name for name in rows if name.startswith("global_average")]
    assert long_name == [long_name[0]] and long_name[0].endswith("…"), rows
    assert "max_pooling2d" in rows and "flatten" in rows and "input" in rows

    piped = run_cli(args)
    assert piped.exit_code == 0, piped
    for text in (in_terminal(args, 200, tmp_path), piped.text):
        rows = table_rows(text)
        assert rows["Layer"] == FULL_HEADER
        assert rows["global_average_pooling2d (GlobalAveragePooling2D)"][1:3] == ["64", "0"]
        assert rows["conv2d (Conv2D, relu)"][1:] == ["224×224×64", "1,792", "86.70 M", "3 / 1",
                                                     "12.2 MiB"]  # fmt: skip
    assert piped.text.splitlines()[-3:] == [
        "Total params: 2,442 (9.5 KiB float32) · trainable 2,442 · non-trainable 0",
        "Total MACs: 86,704,768 (86.70 M) per image",
        "Activation memory: 15.3 MiB per image (float32, all layer outputs)",
    ]

    tiny = in_terminal(args, 40, tmp_path)
    assert all(len(line) <= 40 for line in tiny.splitlines()), tiny
    assert table_rows(tiny)["Layer"] == ["Layer", "Output shape", "Params"]


@pytest.mark.keras
def test_summary_says_each_input_size_once(run_cli, make_image, tmp_path):
    """Three images of two sizes: the model table for the first size, one line for the
    other, its output shapes as Keras computes them (checked against the files written)."""
    make_image("in/a.png", shape=(20, 24), seed=1)
    make_image("in/b.png", shape=(11, 15), seed=2)
    make_image("in/c.png", shape=(20, 24), seed=3)
    out = tmp_path / "out"
    result = run_cli(
        ["run", tmp_path / "in", "--spec", "conv2d(2, 3) maxpool2d(2)", "--no-montage", "-d", out]
    )
    assert result.exit_code == 0, result
    titles = [line.rstrip() for line in result.stderr_lines if line.startswith("Model for a ")]
    assert titles == [
        "Model for a 20×24×1 input (gray)",
        "Model for a 11×15×1 input (gray): conv2d 9×13×2, max_pooling2d 4×6×2",
    ]
    assert cv2.imread(str(out / "b_conv2d-1.png"), cv2.IMREAD_UNCHANGED).shape == (9, 13)
    assert cv2.imread(str(out / "b_max_pooling2d-2.png"), cv2.IMREAD_UNCHANGED).shape == (4, 6)


# --------------------------------------------------------------------------- pixel values


@pytest.mark.keras
def test_maps_in_the_inputs_range_keep_their_values(run_cli, make_image, tmp_path):
    """Average pooling of an image with values 4..194 is the average (NumPy's), not
    stretched to 0..255; so are max pooling, cropping, up-sampling and zero padding. A
    convolution's signed map is still stretched, and --range rescale still stretches."""
    x = (np.arange(24 * 32).reshape(24, 32) % 191 + 4).astype(np.uint8)
    path, _ = make_image("in/ramp.png", x)
    out = tmp_path / "out"
    result = run_cli(["pool", path, "--mode", "avg", "--no-montage", "-o", out / "avg.png"])
    assert result.exit_code == 0, result
    avg = cv2.imread(str(out / "avg.png"), cv2.IMREAD_UNCHANGED)
    means = x.reshape(12, 2, 16, 2).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(avg, np.rint(means).astype(np.uint8))
    assert 4 <= avg.min() and avg.max() <= 194

    spec = "maxpool2d(2) cropping2d(1) upsampling2d(2) zeropadding2d(1) conv2d(1, 3)"
    result = run_cli(["run", path, "--spec", spec, "--seed", "3", "--no-montage", "-d", out])
    assert result.exit_code == 0, result

    def read(name):
        return cv2.imread(str(out / f"ramp_{name}-1.png"), cv2.IMREAD_UNCHANGED)

    pooled = x.reshape(12, 2, 16, 2).max(axis=(1, 3))
    cropped = pooled[1:-1, 1:-1]
    upsampled = cropped.repeat(2, axis=0).repeat(2, axis=1)
    padded = np.pad(upsampled, 1)
    np.testing.assert_array_equal(read("max_pooling2d"), pooled)
    np.testing.assert_array_equal(read("cropping2d"), cropped)
    np.testing.assert_array_equal(read("up_sampling2d"), upsampled)
    np.testing.assert_array_equal(read("zero_padding2d"), padded)
    conv = read("conv2d")
    assert conv.min() == 0 and conv.max() == 255  # signed: stretched from its min..max

    result = run_cli(
        ["pool", path, "--mode", "avg", "--range", "rescale", "--no-montage", "-o",
         out / "stretched.png"]
    )  # fmt: skip
    assert result.exit_code == 0, result
    stretched = cv2.imread(str(out / "stretched.png"), cv2.IMREAD_UNCHANGED)
    expected = (means - means.min()) * 255 / (means.max() - means.min())
    np.testing.assert_allclose(stretched, expected, atol=1)


def ramp_reference() -> np.ndarray:
    """The documented colour bar, computed here: blue (200, 90, 30) at the negative end,
    mid-gray (128, 128, 128) at zero, red (40, 40, 210) at the positive end (BGR)."""
    gray = np.array([128, 128, 128], np.float64)
    blue, red = np.array([200, 90, 30], np.float64), np.array([40, 40, 210], np.float64)
    t = np.linspace(-1, 1, 256)[:, None]
    return np.where(t < 0, gray + (blue - gray) * -t, gray + (red - gray) * t)


@pytest.mark.keras
def test_montage_scale_shared_draws_one_diverging_scale_with_a_bar(run_cli, make_image, tmp_path):
    """A step edge through sobel-x and its negation: with --montage-scale shared the two
    maps are drawn on one scale, zero mid-gray, and the colour bar is on the sheet; the
    maps written alone do not change."""
    x = np.zeros((24, 32), np.uint8)
    x[:, 16:] = 100
    path, _ = make_image("in/step.png", x)
    kernels = ["-k", "sobel-x", "-k", "1,0,-1;2,0,-2;1,0,-1"]
    each, shared = tmp_path / "each", tmp_path / "shared"
    args = ["conv", path, *kernels, "--no-bias", "--seed", "0", "-q"]
    assert run_cli([*args, "-d", each]).exit_code == 0
    result = run_cli([*args, "-d", shared, "--montage-scale", "shared"])
    assert result.exit_code == 0, result
    for name in ("step_conv-1.png", "step_conv-2.png"):
        assert (each / name).read_bytes() == (shared / name).read_bytes()
    sheet = cv2.imread(str(shared / "step_conv-montage.png"), cv2.IMREAD_UNCHANGED)
    plain = cv2.imread(str(each / "step_conv-montage.png"), cv2.IMREAD_UNCHANGED)
    assert sheet.shape[0] > plain.shape[0]  # room for the bar
    # The zeros of both maps are mid-gray (on their own scales they are black).
    gray = np.all(sheet == 128, axis=2).sum()
    assert gray > 2 * 22 * 30 * 0.8 and np.all(plain == 128, axis=2).sum() < 200  # text
    # The bar: the documented ramp over 256 pixels, in a frame of one pixel.
    want = ramp_reference()[1:-1]
    rows = [
        r for r in range(sheet.shape[0])
        if np.abs(sheet[r, 17 : 16 + 255].astype(np.float64) - want).max() <= 1
    ]  # fmt: skip
    assert rows, "no colour bar on the sheet"
    # Both signs at full strength: +400 and -400 are the ends of the one scale.
    assert np.all(sheet == (40, 40, 210), axis=2).sum() > 0
    assert np.all(sheet == (200, 90, 30), axis=2).sum() > 0
    result = run_cli([*args, "-d", shared, "--montage-scale", "both"])
    assert_cli_error(
        result, 2, "^convkit: error: --montage-scale must be one of map, shared, got 'both'$"
    )


@pytest.mark.keras
def test_montage_titles_draw_non_ascii_names(run_cli, make_image, tmp_path):
    """``café.png`` is not drawn as ``caf?.png``: the two montages of one picture differ
    in their title line, and only there."""
    x = (np.arange(24 * 32).reshape(24, 32) % 200).astype(np.uint8)
    first, _ = make_image("in/caf?.png", x)
    second, _ = make_image("in/café.png", x)  # drawn as "caf?.png" before
    out = tmp_path / "out"
    result = run_cli(["pool", first, second, "-d", out, "-q"])
    assert result.exit_code == 0, result
    plain = cv2.imdecode(np.fromfile(out / "caf?_maxpool-montage.png", np.uint8), -1)
    named = cv2.imdecode(np.fromfile(out / "café_maxpool-montage.png", np.uint8), -1)
    assert plain.shape[0] == named.shape[0]
    width = min(plain.shape[1], named.shape[1])  # a longer title may widen the sheet
    differ = np.nonzero(np.any(plain[:, :width] != named[:, :width], axis=2))[0]
    assert differ.size and differ.max() < 40  # the title line: the first 40 rows

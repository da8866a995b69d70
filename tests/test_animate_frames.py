"""``convkit animate``'s pictures and command line.

The frames: one per output cell (or the cap), all the same size; the GIF decodes (Pillow)
to the same pictures as the PNG frames; in every frame, the cells the schedule names are
the window's colour and no other cell is, and the output grid is done up to the current
cell. The numbers: the final output grid equals Keras's layer (seeded values, a ``-k``
preset, a photo's patch). The MP4 is written and decodes. The JSON on stdout is the
schedule. Bad inputs: exit code and message.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from convkit.arithmetic.schedule import layer_schedule  # noqa: E402
from convkit.visual.animation import frame_steps  # noqa: E402
from convkit.visual.frames import COLOURS, frame_layout  # noqa: E402
from convkit.visual.numbers import layer_numbers  # noqa: E402

WINDOW = {COLOURS["tap"], COLOURS["tap_empty"]}


def animate(run_main, *args, ok: bool = True):
    result = run_main(["animate", *map(str, args)])
    if ok:
        assert result.exit_code == 0, result
        assert "Traceback" not in result.stderr
    return result


def pixel(image: Image.Image, box, inset: int = 4) -> tuple[int, int, int]:
    """The colour just inside a cell's top-left corner (away from its number)."""
    return image.getpixel((box[0] + inset, box[1] + inset))[:3]


def check_frame(image: Image.Image, schedule, layout, step: int) -> None:
    """The window sits on the cells the schedule names; the output is done up to ``step``."""
    r, c = divmod(step, schedule.output[1])
    taps = {q for _, q in schedule.window(r, c)}
    for qr in range(len(schedule.rows.cells)):
        for qc in range(len(schedule.cols.cells)):
            colour = pixel(image, layout.input_box(qr, qc))
            on_input = schedule.rows.cells[qr] is not None and schedule.cols.cells[qc] is not None
            if (qr, qc) in taps:
                assert colour == COLOURS["tap" if on_input else "tap_empty"], (step, qr, qc)
            else:
                assert colour not in WINDOW, (step, qr, qc, colour)
                kinds = schedule.rows.kinds[qr] + schedule.cols.kinds[qc]
                expected = "input" if on_input else "padding" if "p" in kinds else "zero"
                assert colour == COLOURS[expected], (step, qr, qc, colour)
    for k in range(schedule.steps):
        colour = pixel(image, layout.output_box(*divmod(k, schedule.output[1])))
        expected = "done" if k < step else "current" if k == step else "pending"
        assert colour == COLOURS[expected], (step, k, colour)


CASES = [
    # (flags, layer_schedule arguments)
    (["-i", 5, "--kernel-size", 3, "-p", 1], dict(kernel=3, padding=1)),
    (
        ["-i", "6x7", "--kernel-size", "2x3", "-s", 2, "-p", "same"],
        dict(kernel=(2, 3), stride=2, padding="same"),
    ),
    (
        ["-i", 7, "--kernel-size", 3, "--dilation", 2, "-p", "full"],
        dict(kernel=3, dilation=2, padding="full"),
    ),
    (
        [
            "-i",
            "3x4",
            "--kernel-size",
            3,
            "-s",
            2,
            "--transpose",
            "-p",
            "same",
            "--output-padding",
            1,
        ],
        dict(kernel=3, stride=2, transpose=True, padding="same", output_padding=1),
    ),
    (["-i", 5, "--pool", "avg", "-p", "same"], dict(pool="avg", padding="same")),
]


@pytest.mark.parametrize("numbers", [False, True])
@pytest.mark.parametrize(("flags", "kwargs"), CASES, ids=lambda v: str(v)[:30])
def test_every_frame_shows_the_schedules_window(run_main, tmp_path, flags, kwargs, numbers):
    extra = ["--numbers"] if numbers else []
    animate(run_main, *flags, *extra, "-o", tmp_path / "a.gif", "--frames-dir", tmp_path / "f")
    shape = tuple(int(v) for v in str(flags[1]).split("x")) * (1 if "x" in str(flags[1]) else 2)
    schedule = layer_schedule(shape[:2], **kwargs)
    values = layer_numbers(schedule, max_pixels=10**6) if numbers else None
    layout = frame_layout(schedule, values)
    pngs = sorted((tmp_path / "f").iterdir())
    assert [p.name for p in pngs] == [f"frame-{k:04d}.png" for k in range(1, schedule.steps + 1)]
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == schedule.steps
    assert gif.info.get("loop") == 0
    for k, path in enumerate(pngs):
        frame = Image.open(path).convert("RGB")
        assert frame.size == layout.size
        check_frame(frame, schedule, layout, k)
        gif.seek(k)
        assert gif.convert("RGB").tobytes() == frame.tobytes(), f"GIF frame {k} differs"


def test_a_capped_animation_draws_the_first_rows_and_a_sample(run_main, tmp_path):
    result = animate(
        run_main,
        "-i",
        16,
        "--kernel-size",
        3,
        "-p",
        "same",
        "--max-frames",
        40,
        "--frames-dir",
        tmp_path / "f",
    )
    assert "256 steps, 40 frames drawn: the first 16 steps, then 24 spread evenly" in (
        result.stderr.replace("\n", " ")
    ), result
    assert "(raise --max-frames to draw more)" in result.stderr
    schedule = layer_schedule((16, 16), 3, padding="same")
    steps = frame_steps(256, 40, 16)
    assert len(steps) == 40 and steps[:16] == list(range(16)) and steps[-1] == 255
    assert steps == sorted(set(steps))
    pngs = sorted((tmp_path / "f").iterdir())
    assert len(pngs) == 40
    layout = frame_layout(schedule)
    for k in (0, 20, 39):
        check_frame(Image.open(pngs[k]).convert("RGB"), schedule, layout, steps[k])


def test_frame_steps_rows_and_sample():
    assert frame_steps(9, 400, 3) == list(range(9))
    steps = frame_steps(1024, 400, 32)
    assert len(steps) == 400 and steps[:192] == list(range(192)) and steps[-1] == 1023
    assert frame_steps(5, 1, 5) == [4]


# --------------------------------------------------------------------------- numbers


@pytest.mark.keras
def test_the_numbers_are_what_keras_computes(sample_images):
    from test_animate_schedule import keras_outputs

    from convkit.visual.numbers import image_patch, kernel_values

    settings = [
        ("conv", (5, 5), (3, 3), (1, 1), 1, (1, 1), None, "sobel-x"),
        ("conv", (7, 6), (2, 3), (2, 1), "same", (1, 1), None, None),
        ("transpose", (3, 4), (3, 3), (2, 2), "same", (1, 1), (1, 1), None),
        ("transpose", (3, 3), (2, 2), (1, 1), "valid", (2, 2), None, "box"),
        ("max", (6, 5), (2, 2), (2, 2), "same", (1, 1), None, None),
        ("avg", (5, 5), (3, 3), (2, 2), "same", (1, 1), None, None),
    ]
    for kind, shape, kernel, strides, padding, dilation, op, weights in settings:
        schedule = layer_schedule(
            shape,
            kernel,
            stride=strides,
            padding=padding,
            dilation=dilation,
            transpose=kind == "transpose",
            output_padding=op,
            pool=kind if kind in ("max", "avg") else None,
        )
        matrix = None if weights is None else kernel_values(weights, kernel)
        image = str(sample_images / "camera.png") if kind == "conv" and weights else None
        numbers = layer_numbers(schedule, image=image, kernel=matrix, seed=3, max_pixels=10**8)
        if image is not None:
            assert numbers.inputs.shape == shape and numbers.inputs.max() <= 255
            np.testing.assert_array_equal(
                numbers.inputs, image_patch(image, shape, max_pixels=10**8)
            )
        if matrix is not None:
            np.testing.assert_array_equal(numbers.kernel, matrix)
        w = np.zeros(kernel) if numbers.kernel is None else numbers.kernel
        expected = keras_outputs(kind, numbers.inputs, w, kernel, strides, padding, dilation, op)
        np.testing.assert_allclose(numbers.outputs, expected, rtol=1e-5, atol=1e-3)


def test_seeded_numbers_are_small_integers_and_repeatable():
    schedule = layer_schedule((5, 5), 3, padding=1)
    a = layer_numbers(schedule, seed=7, max_pixels=10**6)
    b = layer_numbers(schedule, seed=7, max_pixels=10**6)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert set(np.unique(a.inputs)) <= set(range(10))
    assert set(np.unique(a.kernel)) <= {-1, 0, 1, 2}


def test_the_image_patch_is_the_gray_centre_crop(sample_images):
    import cv2

    from convkit.visual.numbers import image_patch

    path = sample_images / "chelsea.png"  # 451 wide, 300 high
    patch = image_patch(str(path), (6, 6), max_pixels=10**8)
    gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    left = (451 - 300) // 2
    expected = cv2.resize(gray[:, left : left + 300], (6, 6), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(patch, expected)


# --------------------------------------------------------------------------- files


def test_mp4_is_written_and_decodes(run_main, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "a.mp4"
    animate(run_main, "-i", 4, "--kernel-size", 3, "--numbers", "--fps", 4, "-o", out)
    assert out.stat().st_size > 1000
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    assert frames == 4 + 12  # 4 steps, then the last one held 3 s at 4 fps
    schedule = layer_schedule((4, 4), 3)
    assert (
        tuple(meta["size"])
        == frame_layout(schedule, layer_numbers(schedule, max_pixels=10**6)).size
    )
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".part", ".mp4")) and p != out]


def test_mp4_without_imageio_ffmpeg_says_how_to_install_it(run_main, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    result = animate(run_main, "-i", 4, "--kernel-size", 3, "-o", tmp_path / "a.mp4", ok=False)
    assert result.exit_code == 2, result
    assert "pip install 'convkit[mp4]'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_json_is_the_schedule_at_any_size(run_main):
    result = animate(
        run_main, "-i", "40x37", "--kernel-size", "5x3", "-s", 2, "-p", "same", "--json"
    )
    data = json.loads(result.stdout)
    assert data == layer_schedule((40, 37), (5, 3), stride=2, padding="same").to_json()
    assert data["output"] == [20, 19] and len(data["steps"]) == 380


# --------------------------------------------------------------------------- bad inputs

BAD = [
    (["-i", 40, "--kernel-size", 3, "-o", "a.gif"], 2, r"40x40 is too large to draw.*--json"),
    (["-i", 5, "--kernel-size", 3, "-o", "a.png"], 2, r"--output must be a \.gif or \.mp4 file"),
    (["-i", 5, "--kernel-size", 3], 2, r"nothing to write: give --output .* or --frames-dir"),
    (
        ["-i", 5, "--pool", "max", "-p", "full", "-o", "a.gif"],
        2,
        r"pooling window takes --padding valid or same",
    ),
    (["-i", 5, "--pool", "median", "-o", "a.gif"], 2, r"--pool must be one of max, avg"),
    (
        ["-i", 5, "--pool", "max", "-k", "sobel-x", "-o", "a.gif"],
        2,
        r"kernel's values \(--kernel\) do not apply to a pooling window",
    ),
    (["-i", 5, "-k", "edges4", "-o", "a.gif"], 2, r"'edges4' is 4 kernels"),
    (
        ["-i", 5, "-k", "sobel-x", "--kernel-size", 5, "-o", "a.gif"],
        2,
        r"'sobel-x' is 3x3 but the layer's kernel is 5x5 \(--kernel-size\)",
    ),
    (["-i", 5, "-k", "nope", "-o", "a.gif"], 2, r"unknown kernel 'nope'"),
    (["-i", "5x5x3", "--kernel-size", 3, "-o", "a.gif"], 2, r"--input must have one channel"),
    (["--kernel-size", 3, "-o", "a.gif"], 2, r"--input is missing"),
    (["-i", 5, "--kernel-size", 9, "-o", "a.gif"], 2, r"kernel 9 is larger than the input"),
    (
        ["-i", 5, "--kernel-size", 3, "-s", 2, "--dilation", 2, "-o", "a.gif"],
        2,
        r"strides > 1.*dilation_rate > 1",
    ),
    (
        ["-i", 5, "--kernel-size", 3, "-p", "2x", "--json"],
        2,
        r"--padding must be valid, same, full",
    ),
    (
        ["-i", 5, "--kernel-size", 3, "--transpose", "-p", "full", "--json"],
        2,
        r"'full' is not defined for a transposed convolution",
    ),
    (
        ["-i", 5, "--kernel-size", 3, "-s", 2, "--output-padding", 2, "--transpose", "--json"],
        2,
        r"--output-padding must be strictly less than --strides",
    ),
    (
        ["-i", 5, "--kernel-size", 3, "--json", "-o", "a.gif", "--numbers"],
        2,
        r"--json prints the schedule instead of drawing: --output, --numbers draw",
    ),
    (
        ["-i", 5, "--kernel-size", 3, "--max-frames", 0, "-o", "a.gif"],
        2,
        r"--max-frames must be at least 1",
    ),
    (["-i", 5, "--kernel-size", 3, "--fps", 100, "-o", "a.gif"], 2, r"--fps must be between"),
    (
        ["-i", 5, "--kernel-size", 3, "--image", "missing.png", "-o", "a.gif"],
        1,
        r"missing\.png: no such file",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD, ids=lambda v: str(v)[:40])
def test_bad_inputs(run_main, cli_error, tmp_path, args, code, message):
    result = run_main(["animate", *map(str, args)], cwd=tmp_path)
    cli_error(result, code, message)
    assert not list(tmp_path.iterdir()), "nothing is written"


def test_an_animation_never_overwrites_its_image(run_main, cli_error, tmp_path, sample_images):
    import shutil

    photo = tmp_path / "cat.gif"
    shutil.copy(sample_images / "chelsea.png", photo)  # a PNG named .gif: the target
    before = photo.read_bytes()
    result = run_main(["animate", "-i", 4, "--kernel-size", 3, "--image", photo, "-o", photo])
    cli_error(result, 2, r"would overwrite the image")
    assert photo.read_bytes() == before

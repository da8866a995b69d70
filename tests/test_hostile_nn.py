"""Hostile inputs against the feature-map commands (issue 9): ``conv``, ``pool``, ``run``.

Each wall runs the real command line in a subprocess under a memory cap and a timeout
(tests/hostile.py; the commands that load TensorFlow get ``KERAS_CAP``, since TensorFlow
maps a lot of virtual memory when it loads) and :func:`hostile.assert_refused` checks the
exit code, the one error line, no traceback, nothing written outside the target, inputs
unchanged, no leftovers. Control cases show what the input does without the wall.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hostile import KERAS_CAP, assert_refused, run_capped, snapshot  # noqa: E402

from convkit.arithmetic.sizes import parse_bytes  # noqa: E402
from convkit.arithmetic.spec import parse_spec  # noqa: E402
from convkit.arithmetic.stack import analyze_spec  # noqa: E402
from convkit.defaults import DEFAULT_MAX_MEMORY  # noqa: E402
from convkit.errors import ImageSizeError  # noqa: E402
from convkit.image.outputs import OutputPlan  # noqa: E402
from convkit.image.sources import collect_sources  # noqa: E402
from convkit.nn.extractor import check_memory  # noqa: E402

pytestmark = pytest.mark.keras

SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)


@pytest.fixture
def root(tmp_path) -> Path:
    """A folder with a flat 512x512 gray image (a tiny PNG) and a 16x16 one."""
    assert cv2.imwrite(str(tmp_path / "big.png"), np.full((512, 512), 90, np.uint8))
    rng = np.random.default_rng(0)
    assert cv2.imwrite(str(tmp_path / "small.png"), rng.integers(0, 255, (16, 16), np.uint8))
    return tmp_path


def _keras(args, root, timeout=120):
    return run_capped(args, root, cap=KERAS_CAP, timeout=timeout)


# --------------------------------------------------------------------------- memory budget


def test_a_hundred_thousand_filters_are_refused_before_keras_builds_them(root):
    before = snapshot(root)
    run = _keras(["run", "big.png", "--spec", "conv2d(100000, 3)", "-d", "out"], root)
    assert_refused(run, before, root, exit_code=1, reason="big.png: a 512x512 image", target="out")
    assert run.error_lines[0] == (
        "convkit: error: big.png: a 512x512 image needs 96.9 GiB in this model (float32 "
        "input, layer outputs and weights), more than --max-memory 4.0 GiB: layer 1 conv2d "
        "(Conv2D) alone outputs 510×510×100000 = 26,010,000,000 values = 96.9 GiB; use a "
        "smaller image or model, or raise --max-memory"
    )


def test_an_upsampling_by_a_thousand_is_refused_before_keras_builds_it(root):
    before = snapshot(root)
    run = _keras(["run", "big.png", "--spec", "upsampling2d(1000)", "-d", "out"], root)
    assert_refused(run, before, root, exit_code=1, reason="big.png: a 512x512 image", target="out")
    assert (
        "layer 1 up_sampling2d (UpSampling2D) alone outputs 512000×512000×1 = "
        in (run.error_lines[0])
    )
    assert "262,144,000,000 values = 976.6 GiB" in run.error_lines[0]


def test_a_refused_run_never_loads_tensorflow(root, cli_env):
    from test_imports import imports_after

    calls = [(["run", "big.png", "--spec", "conv2d(100000, 3)", "-d", "out"], (1,))]
    loaded = imports_after(calls, cwd=root, env=cli_env())
    assert not loaded & {"tensorflow", "keras", "tf_keras"}, loaded


def test_control_the_arithmetic_is_the_only_thing_in_the_way():
    # The activations of conv2d(100000, 3) on 512x512, float32, as Keras would allocate them:
    stack = analyze_spec(parse_spec("conv2d(100000, 3)"), (512, 512, 1))
    assert stack.activation_bytes == 510 * 510 * 100_000 * 4 > 8 * KERAS_CAP
    check_memory(stack, 200 << 30)  # a budget raised past it lets the stack through
    with pytest.raises(ImageSizeError):
        check_memory(stack, DEFAULT_MAX_MEMORY)


def test_weights_past_the_budget_are_named(root):
    before = snapshot(root)
    spec = "conv2d(8, 3) flatten dense(1000000)"
    run = _keras(["run", "small.png", "--spec", spec, "-d", "out"], root)
    assert_refused(run, before, root, exit_code=1, reason="small.png: a 16x16", target="out")
    weights = 14 * 14 * 8 * 1_000_000 + 1_000_000
    assert (
        f"layer 3 dense (Dense) alone holds {weights:,} weights = 5.8 GiB;" in (run.error_lines[0])
    )


def test_a_tensorflow_out_of_memory_is_one_line(root):
    # With the budget raised past it, TensorFlow itself meets the memory cap: its
    # ResourceExhaustedError becomes the image's one error line.
    before = snapshot(root)
    args = ["run", "big.png", "--spec", "upsampling2d(1000)", "-d", "out", "--max-memory", "2T"]
    run = _keras(args, root)
    assert_refused(run, before, root, exit_code=1, reason="big.png: a 512x512", target="out")
    assert run.error_lines[0] == (
        "convkit: error: big.png: a 512x512 image does not fit in memory in this model: "
        "TensorFlow ran out (OOM when allocating tensor with shape[1,512000,512,1000,1]); use "
        "a smaller image or model, or a smaller --batch-size"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4G", 4 << 30), ("512m", 512 << 20), ("1.5GiB", 3 << 29), ("100000", 100_000), ("2KB", 2048)],
)
def test_memory_amounts(text, expected):
    assert parse_bytes(text, "max_memory") == expected


def test_the_cli_default_is_the_core_default():
    assert parse_bytes("4G", "max_memory") == DEFAULT_MAX_MEMORY


@pytest.mark.parametrize("text", ["0", "lots", "-1G", "4X", "9" * 400])
def test_a_bad_memory_amount_is_one_line_before_tensorflow(root, text):
    before = snapshot(root)
    args = ["conv", "small.png", "-d", "out", "--max-memory", text]
    run = run_capped(args, root, timeout=60)
    assert_refused(run, before, root, exit_code=2, reason="--max-memory must be a positive")


def test_a_small_budget_refuses_a_small_model(root):
    before = snapshot(root)
    args = ["pool", "small.png", "-d", "out", "--max-memory", "1K"]
    run = _keras(args, root)
    assert_refused(run, before, root, exit_code=1, reason="small.png: a 16x16", target="out")
    assert run.error_lines[0] == (
        "convkit: error: small.png: a 16x16 image needs 1.2 KiB in this model (float32 input, "
        "layer outputs and weights), more than --max-memory 1.0 KiB: layer 1 maxpool "
        "(MaxPooling2D) alone outputs 8×8×1 = 64 values = 256 B; use a smaller image or "
        "model, or raise --max-memory"
    )


def test_a_montage_of_many_maps_stays_small(root):
    run = _keras(["run", "small.png", "--spec", "conv2d(300, 3)", "-d", "out", "--no-maps"], root)
    assert run.exit_code == 0, run
    sheet = cv2.imread(str(root / "out" / "small_conv2d-montage.png"))
    assert sheet.shape[0] < 3000 and sheet.shape[1] < 3000  # 256 of the 300 maps drawn


def test_control_a_montage_grows_with_its_maps():
    # Without the cap a sheet grows with the number of maps (the tiles shrink, down to a
    # least cell of 96 pixels): a hundred thousand filters would make gigabytes.
    from convkit.nn.montage import MAX_PANELS, Panel, layer_montage

    tile = np.zeros((14, 14), np.uint8)
    capped = layer_montage([Panel(tile, "x")] * MAX_PANELS, input_panel=Panel(tile, "input"))
    four = layer_montage([Panel(tile, "x")] * (4 * MAX_PANELS), input_panel=Panel(tile, "input"))
    assert four.size > 2.4 * capped.size


# --------------------------------------------------------------------------- overwriting


def _write_kernel(path: Path) -> None:
    np.save(path, SOBEL)


@pytest.mark.parametrize(
    ("files", "args", "what"),
    [
        (["k.npy"], ["conv", "-k", "k.npy", "--name", "k.{ext}"], "kernel file k.npy"),
        (["w.npy"], ["conv", "--weights", "w.npy", "--name", "w.{ext}"], "weights file w.npy"),
        (["net.npy"], ["run", "--spec", "net.npy", "--name", "net.{ext}"], "spec file net.npy"),
    ],
)
def test_a_raw_array_never_replaces_a_file_the_run_reads(root, files, args, what):
    _write_kernel(root / "k.npy")
    np.save(root / "w.npy", SOBEL[:, :, None, None])
    (root / "net.npy").write_text("conv2d(1, 3)\n")
    before = snapshot(root)
    command, *rest = args
    full = [command, "small.png", *rest, "--raw", "--no-maps", "--no-montage", "-d", "."]
    run = run_capped(full, root, timeout=60)  # refused before TensorFlow is imported
    name = files[0]
    assert_refused(run, before, root, exit_code=2, reason=f"{name}: this output")
    assert run.error_lines[0] == (
        f"convkit: error: {name}: this output would overwrite the {what} (choose another output)"
    )


def test_a_picture_never_replaces_a_text_kernel(root):
    (root / "k.png").write_text("1,0,-1\n2,0,-2\n1,0,-1\n")
    before = snapshot(root)
    args = ["conv", "small.png", "-k", "k.png", "--no-maps", "-o", "k.png"]
    run = run_capped(args, root, timeout=60)
    assert_refused(run, before, root, exit_code=2, reason="k.png: this output")
    assert run.error_lines[0] == (
        "convkit: error: k.png: this output would overwrite the kernel file k.png "
        "(choose another output)"
    )


def test_control_the_image_plan_alone_lets_the_raw_array_onto_the_kernel(root):
    _write_kernel(root / "k.npy")
    sources = collect_sources([str(root / "small.png")]).sources
    plan = OutputPlan(out_dir=root, template="k.{ext}")
    targets = plan.validate(sources, ["conv"])  # the check the image outputs had
    assert targets[(0, "conv")].path.with_suffix(".npy") == root / "k.npy"


def test_an_inline_spec_longer_than_a_file_name_runs(root):
    spec = " ".join(f"conv2d(1, 1, name=layer_number_{i:03d})" for i in range(12))
    assert len(spec) > 255
    run = _keras(["run", "small.png", "--spec", spec, "--no-maps", "-d", "out", "-q"], root)
    assert run.exit_code == 0, run
    assert len(list((root / "out").iterdir())) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--seed", "9" * 30],
            f"--seed must be between 0 and 2147483647, got {'9' * 30}",
        ),
        (
            ["--filters", "9" * 30],
            f"--filters must be at most 2**63 − 1 = 9223372036854775807, got {'9' * 30}",
        ),
    ],
)
def test_huge_numbers_for_conv_are_one_line(root, args, message):
    before = snapshot(root)
    run = run_capped(["conv", "small.png", "-d", "out", *args], root, timeout=60)
    assert_refused(run, before, root, exit_code=2, reason=message)
    assert run.error_lines == [f"convkit: error: {message}"]

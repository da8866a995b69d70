"""Hostile and careless inputs to the batch engine's scaling flags (``--manifest``,
``--skip-existing``, ``--scheduler``/``--scheduler-file``), to ``convkit animate`` and to
its schedule: each is one error line naming the flag or file, exit code 2 for usage, no
traceback, nothing written, no huge allocation; and what a re-run or a frame must show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def two_photos(tmp_path, images):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        (folder / f"p{i}.png").write_bytes(images.encode(images.random((6, 7, 3), seed=i)))
    return folder


# --------------------------------------------------------------------------- --manifest


def test_manifest_never_appends_to_an_image(run_main, cli_error, two_photos, tmp_path):
    victim = two_photos / "p0.png"
    before = victim.read_bytes()
    result = run_main(["grayscale", two_photos, "-d", tmp_path / "out", "--manifest", victim])
    cli_error(result, 2, r"--manifest .*p0\.png exists and is not a manifest")
    assert victim.read_bytes() == before
    assert not (tmp_path / "out").exists()


def test_manifest_an_earlier_manifest_is_added_to(run_main, two_photos, tmp_path):
    manifest = tmp_path / "run.jsonl"
    for _ in range(2):
        result = run_main(["grayscale", two_photos, "-d", tmp_path / "out", "--manifest", manifest])
        assert result.exit_code == 0, result
    assert len(manifest.read_text().splitlines()) == 4


def test_manifest_in_a_folder_that_is_a_file(run_main, cli_error, two_photos, tmp_path):
    (tmp_path / "plain").write_text("x")
    result = run_main(
        ["grayscale", two_photos, "-d", tmp_path / "out", "--manifest", tmp_path / "plain/m.jsonl"]
    )
    cli_error(result, 2, r"--manifest .*plain/m.jsonl: cannot open it \(a file of that name is in")


# --------------------------------------------------------------------------- --skip-existing


def test_skip_existing_redoes_an_empty_output(run_main, two_photos, tmp_path):
    import cv2

    out = tmp_path / "out"
    out.mkdir()
    (out / "p0_gray.png").write_bytes(b"")  # a crash after the rename, before the data
    result = run_main(["grayscale", two_photos, "-d", out, "--skip-existing"])
    assert result.exit_code == 0, result
    for i in range(2):
        expected = cv2.cvtColor(cv2.imread(str(two_photos / f"p{i}.png")), cv2.COLOR_BGR2GRAY)
        got = cv2.imread(str(out / f"p{i}_gray.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- --scheduler


@pytest.mark.parametrize(
    "address, problem",
    [
        ("garbage", "missing port"),
        ("tcp://[::1:99999", "invalid address"),
        ("tcp://example.invalid:99999", "port 99999"),
        ("tcp://:8786", "host is empty"),
    ],
)
def test_a_malformed_scheduler_address_is_a_usage_error(
    run_main, cli_error, two_photos, tmp_path, address, problem
):
    pytest.importorskip("distributed")
    result = run_main(["grayscale", two_photos, "-d", tmp_path / "out", "--scheduler", address])
    cli_error(result, 2, rf"--scheduler .* is not a scheduler address .*{problem}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(256)) * 4,  # not UTF-8
        b" " * (2 << 20) + b'{"address": "tcp://127.0.0.1:8786"}',  # over the 1 MiB read
        b'{"address": "nope"}',  # no port
    ],
    ids=["binary", "huge", "no-port"],
)
def test_a_bad_scheduler_file_is_a_usage_error(run_main, cli_error, two_photos, tmp_path, content):
    pytest.importorskip("distributed")
    path = tmp_path / "scheduler.json"
    path.write_bytes(content)
    result = run_main(["grayscale", two_photos, "-d", tmp_path / "out", "--scheduler-file", path])
    cli_error(result, 2, r"--scheduler-file .*scheduler\.json.* (holds no|not a) scheduler address")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_scheduler_file_is_read_no_further_than_a_mebibyte(
    run_main, cli_error, two_photos, tmp_path
):
    result = run_main(
        ["grayscale", two_photos, "-d", tmp_path / "o", "--scheduler-file", "/dev/zero"]
    )
    cli_error(result, 2, r"--scheduler-file '/dev/zero' holds no scheduler address")


# --------------------------------------------------------------------------- animate


def test_animate_k_with_a_bare_number_is_not_taken_for_a_1x1_kernel(run_main, cli_error, tmp_path):
    out = tmp_path / "a.gif"
    result = run_main(["animate", "-i", "5", "-k", "3", "-o", out])
    cli_error(result, 2, r"-k 3 is a kernel's values .*give --kernel-size 3")
    assert not out.exists()
    result = run_main(["animate", "-i", "3", "-k", "3", "--kernel-size", "1", "-o", out])
    assert result.exit_code == 0, result  # a 1x1 kernel, said so


def test_animate_kernel_values_whose_products_overflow(run_main, cli_error, tmp_path):
    kernel = tmp_path / "big.txt"
    kernel.write_text("1e308,1e308;1e308,1e308\n")
    out = tmp_path / "a.gif"
    result = run_main(["animate", "-i", "4", "-k", kernel, "--numbers", "-o", out])
    cli_error(result, 2, r"kernel's values \(--kernel\) are too large")
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--kernel-size", "3", "--dilation", "1000", "-p", "same"],
        ["--kernel-size", "200", "-p", "same"],
    ],
)
def test_animate_refuses_a_padded_grid_too_large_to_draw(run_main, cli_error, tmp_path, args):
    out = tmp_path / "a.gif"
    result = run_main(["animate", "-i", "5", *args, "-o", out])
    cli_error(result, 2, r"the padded input would be \d+ cells across, too large to draw")
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-i", "1000000000", "--kernel-size", "3"], r"over the limit of 33,554,432 taps"),
        (["-i", "3", "-p", "1000000000", "--kernel-size", "1"], r"over the limit of .* taps"),
        (["-i", "1x5000000", "--kernel-size", "1"], r"5,000,000 cells along one axis"),
        (["-i", "1x3", "--kernel-size", "2", "--dilation", "100000000", "-p", "same"], r"axis"),
    ],
)
def test_animate_json_refuses_a_schedule_of_gigabytes(run_main, cli_error, args, message):
    result = run_main(["animate", *args, "--json"])
    cli_error(result, 2, message)
    assert not result.stdout


def test_animate_frames_dir_that_is_a_file(run_main, cli_error, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    result = run_main(["animate", "-i", "4", "--kernel-size", "3", "--frames-dir", plain])
    cli_error(result, 1, "cannot create folder: a file of that name is in the way", path=str(plain))


def test_each_frame_is_its_step_drawn_afresh(run_main, tmp_path):
    """The frames are kept up to date box by box; each must equal its step drawn on a
    blank canvas (the last window's edge once stayed behind, a line in later frames)."""
    from PIL import Image

    from convkit.arithmetic.schedule import layer_schedule
    from convkit.visual.animation import Indexed, frame_steps
    from convkit.visual.frames import FrameDrawer

    frames = tmp_path / "frames"
    result = run_main(
        ["animate", "-i", "8", "--kernel-size", "7", "-p", "same", "--max-frames", "4",
         "--frames-dir", frames]
    )  # fmt: skip
    assert result.exit_code == 0, result
    schedule = layer_schedule((8, 8), (7, 7), padding="same")
    steps = frame_steps(schedule.steps, 4, schedule.output[1])
    for number, step in enumerate(steps, 1):
        drawer = FrameDrawer(schedule)
        drawer.render(step)
        expected = np.asarray(Indexed().convert(drawer.state).convert("RGB"))
        got = np.asarray(Image.open(frames / f"frame-{number:04d}.png").convert("RGB"))
        assert got.shape == expected.shape
        assert (got != expected).any(axis=2).sum() == 0, f"frame {number} (step {step})"


def test_step_line_keeps_the_most_terms_that_fit():
    """The caption's cut (by bisection) against trying every count, longest first."""
    from convkit.visual.frames import _fit

    class Face:  # one unit per character
        @staticmethod
        def getlength(text: str) -> int:
            return len(text)

    terms = [f"{i}·{i % 3}" for i in range(300)] + ["= 7"]
    for room in (5, 20, 40, 200, 3000):
        expected = None
        body = terms[:-1]
        for keep in range(len(body) - 1, 0, -1):
            text = "h " + " + ".join(body[:keep]) + " + … = 7"
            if len(text) <= room:
                expected = text
                break
        if len("h " + " + ".join(body) + " = 7") <= room:
            expected = "h " + " + ".join(body) + " = 7"
        if expected is None:
            expected = "h " + body[0] + " + … = 7"
        assert _fit("h ", terms, room, Face()) == expected, room

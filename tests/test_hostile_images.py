"""Hostile inputs against the image commands and the command line itself (issue 9).

Each test is one wall, run through the real CLI in a subprocess under a memory cap and a
timeout (tests/hostile.py), asserting the exit code, exactly one error line, no
traceback, nothing written outside the target, inputs unchanged and no leftovers. Where it
is cheap, a control case shows the hostile input really would do harm without the wall.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hostile import GIB, assert_refused, run_capped, snapshot  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "small.png").write_bytes((SAMPLES / "camera.png").read_bytes())
    return tmp_path


def _jpeg(height: int = 32, width: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def _stray_byte_bomb() -> bytes:
    """A JPEG whose frame header claims 60000x60000, behind a stray byte before the SOF
    marker: libjpeg skips the byte and reads the size; a walker that stops at it does not."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60000, 60000)
    return bytes(data[:sof]) + b"\x00" + bytes(data[sof:])


# --------------------------------------------------------------------------- 1. pixel limit


def test_a_size_behind_a_stray_byte_is_still_read_and_refused(root):
    (root / "bomb.jpg").write_bytes(_stray_byte_bomb())
    before = snapshot(root)
    run = run_capped(["grayscale", "bomb.jpg", "-d", "out"], root)
    assert_refused(run, before, root, exit_code=1, reason="bomb.jpg: image too large", target="out")
    assert "60000x60000 = 3,600,000,000 pixels" in run.error_lines[0]


def test_control_a_walker_that_stops_at_the_stray_byte_sees_no_size():
    data = _stray_byte_bomb()
    i = 2
    size = None
    while i + 4 <= len(data) and data[i] == 0xFF:  # the old walker: stop at a non-0xFF byte
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker == 0xC0:
            size = struct.unpack(">HH", data[i + 5 : i + 9])
        i += 2 + length
    assert size is None  # it would have let the decoder allocate 10 GB


def test_a_computed_size_counts_too(root):
    before = snapshot(root)
    run = run_capped(["grayscale", "small.png", "--resize", "100000x100000", "-d", "out"], root)
    assert_refused(
        run,
        before,
        root,
        exit_code=2,
        reason="--resize 100000x100000 = 10,000,000,000 pixels is over the limit of 256,000,000",
    )


# --------------------------------------------------------------------------- 2. no overwrites


def test_raw_output_cannot_replace_the_kernel_file(root):
    np.save(root / "k.npy", np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]))
    before = snapshot(root)
    run = run_capped(["filter", "small.png", "-k", "k.npy", "--raw", "k.npy", "-o", "o.png"], root)
    assert_refused(
        run, before, root, exit_code=2, reason="k.npy: this output would overwrite the kernel file"
    )


def test_an_image_output_cannot_replace_the_kernel_file(root):
    np.save(root / "k.npy", np.eye(3))
    before = snapshot(root)
    run = run_capped(["filter", "small.png", "-k", "k.npy", "-o", "k.npy", "-f", "png"], root)
    assert_refused(run, before, root, exit_code=2, reason="would overwrite the kernel file")


# --------------------------------------------------------------------------- 3. no leftovers


def _batch(root: Path, count: int = 40) -> None:
    rng = np.random.default_rng(1)
    (root / "in").mkdir()
    for i in range(count):
        image = rng.integers(0, 255, (900, 900, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "in" / f"{i:02d}.png"), image)


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_signal_mid_batch_leaves_complete_files_a_summary_and_its_exit_code(root, signame, code):
    _batch(root)
    before = snapshot(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVKIT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "convkit", "filter", "in", "-k", "gaussian:21", "-k", "sharpen"]
        + ["-k", "sobel-x", "-d", "out", "-j", "2"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # a shell's background job ignores SIGINT; this one must not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (root / "out").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("convkit: error:")]
    expected = "interrupted" if signame == "SIGINT" else f"terminated by {signame}"
    assert errors == [f"convkit: error: {expected}"], stderr
    written = sorted((root / "out").iterdir())
    summary = [line for line in stderr.splitlines() if line.startswith("convkit: interrupted")]
    assert len(summary) == 1, stderr
    done = int(summary[0].split(" after ")[1].split(" of ")[0])
    assert summary[0] == (
        f"convkit: interrupted after {done} of 40 images; {len(written)} files written"
    ), stderr
    assert len(written) == 3 * done  # three results per image, every image whole
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
    for path in written:  # every file there is complete
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
    after = snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before


# --------------------------------------------------------------------------- 4. bounded cost


def test_an_npy_header_claiming_80_gb_is_refused_from_its_header(root):
    from numpy.lib import format as npy

    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    npy.write_array_header_1_0(buf, header)
    (root / "bomb.npy").write_bytes(buf.getvalue())
    assert (root / "bomb.npy").stat().st_size < 200
    before = snapshot(root)
    run = run_capped(["filter", "small.png", "-k", "bomb.npy", "-o", "o.png"], root, cap=GIB)
    assert_refused(
        run,
        before,
        root,
        exit_code=2,
        reason="bomb.npy: the array (100000, 100000) would take 80,000,000,000 bytes",
    )


def test_a_named_pipe_is_not_read_forever(root):
    os.mkfifo(root / "pipe.png")
    before = snapshot(root)
    run = run_capped(["info", "pipe.png"], root, timeout=30)
    assert_refused(run, before, root, exit_code=1, reason="pipe.png: not a regular file")


# --------------------------------------------------------------------------- 5. one line


@pytest.mark.parametrize(
    "template",
    ["{index:>99999999999}", "{stem.__class__}", "{index[0]}", "{stem!r}", "{nope}"],
)
def test_name_templates_run_no_formatting(root, template):
    before = snapshot(root)
    run = run_capped(["grayscale", "small.png", "-d", "out", "--name", template], root)
    assert_refused(run, before, root, exit_code=2, reason="is not a valid name template")


def test_an_overlong_output_name_is_one_line(root):
    before = snapshot(root)
    run = run_capped(["grayscale", "small.png", "-o", "a" * 300 + ".png"], root)
    assert_refused(run, before, root, exit_code=1, reason="cannot write: File name too long")


@pytest.mark.parametrize(
    "content, reason",
    [
        (np.zeros((0, 3)), "empty kernel"),
        (np.ones((3, 3), complex), "expected real numbers, got dtype complex128"),
        (np.array([{"x": 1}], dtype=object), "it holds Python objects (a pickle)"),
    ],
)
def test_odd_npy_kernels_are_one_line(root, content, reason):
    np.save(root / "k.npy", content, allow_pickle=True)
    before = snapshot(root)
    run = run_capped(["filter", "small.png", "-k", "k.npy", "-o", "o.png"], root)
    assert_refused(run, before, root, exit_code=2, reason=reason)


def test_terminal_control_sequences_in_a_name_are_shown_escaped(root):
    name = "evil\x1b[2J\x1b]0;pwned\x07.png"
    (root / name).write_bytes(b"not an image")
    before = snapshot(root)
    run = run_capped(["info", name], root)
    assert_refused(run, before, root, exit_code=1, reason="not an image")
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07.png" in run.error_lines[0]


def test_json_into_a_closed_pipe_ends_quietly(root):
    for i in range(300):
        (root / f"m{i:03d}.png").write_bytes((root / "small.png").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVKIT_")}
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc = subprocess.run(
        [sys.executable, "-m", "convkit", "info", "--json", "."],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
    )
    reader.stdin.close()
    reader.wait(timeout=30)
    stderr = proc.stderr.decode()
    assert proc.returncode == 141, stderr
    assert "Exception ignored" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    "args, code, reason",
    [
        (["filter", "small.png", "-k", "a" * 300, "-o", "o.png"], 2, "unknown kernel"),
        (["filter", "small.png", "-k", "a" * 300 + ".npy", "-o", "o.png"], 2, "no such kernel"),
        (["grayscale", "small.png", "-d", "a" * 300], 1, "File name too long"),
        (["filter", "small.png", "-k", "sobel-x", "--raw", "a" * 300, "-o", "o.png"], 1, "long"),
        (["info", "a" * 300 + "/x.png"], 1, "file name too long"),
    ],
)
def test_overlong_paths_anywhere_are_one_line(root, args, code, reason):
    before = snapshot(root)
    run = run_capped(args, root)
    assert_refused(run, before, root, exit_code=code, reason=reason)

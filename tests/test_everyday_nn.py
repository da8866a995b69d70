"""Issue 10 for the feature-map commands and shape-calc, each promise through a real
``python -m convkit`` process: ``--dry-run`` and ``--quality`` on conv, pool and run; the
messages a user meets; shape-calc's table at 80 columns; maps in pixel units written with
their values; a shared montage scale; one meaning per short option."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

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
    import json

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
def test_quality_reaches_every_jpeg_written(run_cli, photo, tmp_path):
    """The maps and the montage as JPEG at --quality 30 are the bytes OpenCV encodes at 30
    from the same pictures written losslessly."""
    png, jpg = tmp_path / "png", tmp_path / "jpg"
    args = ["pool", photo, "--color", "--size", "2", "-q"]
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

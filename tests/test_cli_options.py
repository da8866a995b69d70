"""Options people reach for (issue 10): --quality, --dry-run; through a real subprocess and
against OpenCV's own encoder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


@pytest.mark.parametrize(
    "suffix, flag", [(".jpg", cv2.IMWRITE_JPEG_QUALITY), (".webp", cv2.IMWRITE_WEBP_QUALITY)]
)
@pytest.mark.parametrize("quality", [10, 90])
def test_quality_is_opencvs(run_cli, tmp_path, sample_images, suffix, flag, quality):
    source = sample_images / "chelsea.png"
    out = tmp_path / f"g{suffix}"
    result = run_cli(["grayscale", source, "-o", out, "--quality", quality])
    assert result.exit_code == 0, result
    gray = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2GRAY)
    ok, expected = cv2.imencode(suffix, gray, [flag, quality])
    assert ok and out.read_bytes() == expected.tobytes()


@pytest.mark.parametrize("quality", [0, 101])
def test_quality_out_of_range(run_cli, tmp_path, sample_images, quality):
    result = run_cli(
        ["grayscale", sample_images / "camera.png", "-o", tmp_path / "g.jpg", "--quality", quality]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"convkit: error: --quality must be from 1 to 100, got {quality}"
    ]


def test_dry_run_prints_the_plan_and_touches_nothing(run_cli, tmp_path, sample_images):
    out = tmp_path / "out"
    result = run_cli(
        [
            "filter",
            sample_images,
            "-k",
            "sobel-x",
            "-k",
            "sharpen",
            "-d",
            out,
            "--raw",
            tmp_path / "raw",
            "--dry-run",
            "-q",
        ]
    )
    assert result.exit_code == 0, result
    lines = result.stdout.decode().splitlines()
    stems = sorted(p.stem for p in sample_images.glob("*.png"))
    expected = []
    for stem in stems:
        src = sample_images / f"{stem}.png"
        expected += [
            f"{src} -> {out / f'{stem}_sobel-x.png'}",
            f"{src} -> {tmp_path / 'raw' / f'{stem}_sobel-x.npy'}",
            f"{src} -> {out / f'{stem}_sharpen.png'}",
            f"{src} -> {tmp_path / 'raw' / f'{stem}_sharpen.npy'}",
        ]
    assert lines == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_dry_run_still_refuses_what_the_run_would(run_cli, tmp_path, sample_images):
    image = tmp_path / "a.png"
    image.write_bytes((sample_images / "camera.png").read_bytes())
    result = run_cli(["grayscale", image, "-o", image, "--dry-run"])
    assert result.exit_code == 2
    assert "the result would overwrite its input" in result.stderr
    assert np.array_equal(cv2.imread(str(image)), cv2.imread(str(sample_images / "camera.png")))

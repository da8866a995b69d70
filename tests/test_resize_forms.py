"""`--resize` in every form people write (issue 10), against OpenCV's own cv2.resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from convkit.errors import UsageError
from convkit.image.geometry import Resize, parse_resize


@pytest.mark.parametrize(
    "text, expected",
    [
        # 451x300 (width x height), the sample cat
        ("512", (512, 512)),  # N is NxN, as the tutorials resize to 512x512
        ("200x100", (200, 100)),  # exact
        ("200x", (200, 133)),  # 300 * 200 / 451 = 133.04
        ("x100", (150, 100)),  # 451 * 100 / 300 = 150.33
        ("x150", (226, 150)),  # 225.5 rounds half up, as ImageMagick
        ("50%", (226, 150)),  # 225.5 -> 226, 150
        ("10%", (45, 30)),  # 45.1, 30
        ("1%", (5, 3)),  # 4.51 -> 5, 3
    ],
)
def test_forms_give_the_sizes_imagemagick_would(text, expected):
    assert parse_resize(text).target(451, 300) == expected


@pytest.mark.parametrize("text", ["200x", "x100", "50%", "640x480", "512"])
def test_the_command_writes_what_cv2_resize_gives(run_cli, tmp_path, sample_images, text):
    source = sample_images / "chelsea.png"
    out = tmp_path / "r.png"
    result = run_cli(["grayscale", source, "--resize", text, "-o", out])
    assert result.exit_code == 0, result
    gray = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2GRAY)
    width, height = parse_resize(text).target(gray.shape[1], gray.shape[0])
    expected = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), expected)


@pytest.mark.parametrize("text", ["", "x", "abc", "0", "0x5", "5x0", "0%", "-3x4", "1.5x2", "%"])
def test_bad_forms_name_the_parameter_and_the_forms(text):
    with pytest.raises(UsageError) as info:
        parse_resize(text)
    assert str(info.value).startswith(f"`resize` {text!r} ")
    assert str(info.value).endswith(
        ": give N (NxN), WxH, Wx or xH (the other side keeps the aspect ratio), or P%"
    )


def test_a_tiny_image_never_becomes_zero_pixels():
    assert Resize(width=10).target(1000, 1) == (10, 1)
    assert parse_resize("1%").target(3, 3) == (1, 1)


def test_a_computed_size_past_the_limit_fails_that_image(run_cli, tmp_path, sample_images):
    result = run_cli(
        [
            "grayscale",
            sample_images / "chelsea.png",
            "--resize",
            "100000x",
            "-o",
            tmp_path / "r.png",
        ]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"convkit: error: {sample_images / 'chelsea.png'}: the resized image 100000x66519 = "
        "6,651,900,000 pixels is over the limit of 256,000,000 (raise it with --max-pixels)"
    ]
    assert not (tmp_path / "r.png").exists()

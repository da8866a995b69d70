"""A model trained with --keep-aspect sees its pictures padded with black: its Grad-CAM map
covers the padding too, and only the part over the picture belongs over the photo."""

from __future__ import annotations

import numpy as np
import pytest

from convkit.insight.gradcam import over_picture
from convkit.training.preparation import content_box, prepare_pixels

PREP = {"image_size": [32, 32], "color": "rgb", "keep_aspect": True, "interpolation": "area"}


@pytest.mark.parametrize("height,width", [(60, 200), (200, 60), (33, 32), (7, 300)])
def test_the_box_is_where_the_preparation_put_the_picture(height, width):
    white = np.full((height, width, 3), 255, np.uint8)
    prepared = prepare_pixels(white, PREP)[:, :, 0]
    rows, cols = np.nonzero(prepared)  # the picture is white, the padding black
    box = content_box(height, width, PREP)
    assert box is not None
    top, left, h, w = box
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (
        top, top + h, left, left + w
    )  # fmt: skip


def test_no_box_without_padding():
    assert content_box(60, 200, {**PREP, "keep_aspect": False}) is None
    assert content_box(64, 64, PREP) is None  # same shape: fitted exactly
    assert content_box(64, 64, None) is None


def test_the_heat_over_the_picture_leaves_the_padding_out():
    top, left, h, w = content_box(60, 200, PREP)
    cam = np.zeros((32, 32), np.float32)
    cam[top : top + h, left : left + w] = 1.0  # evidence only where the picture is
    heat = over_picture(cam, 60, 200, input_size=(32, 32), box=(top, left, h, w))
    assert heat.shape == (60, 200) and heat.dtype == np.float32
    np.testing.assert_allclose(heat, 1.0)
    stretched = over_picture(cam, 60, 200, input_size=(32, 32))  # the old way
    assert stretched[0].max() == 0.0 and stretched[-1].max() == 0.0

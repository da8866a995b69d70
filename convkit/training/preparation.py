"""How an image is prepared for a classifier: the one function that training and
``predict`` share, so that both see the same pixels (:func:`prepare_pixels`).

A preparation is a small dict, saved with the run (``TrainingData.preparation``)::

    {"image_size": [H, W], "color": "gray" | "rgb", "keep_aspect": bool,
     "interpolation": "area"}

The steps, on an image as :func:`convkit.image.codec.read_image` gives it (gray, BGR or
BGRA; 8- or 16-bit; EXIF orientation applied):

1. 16-bit pixels to 8-bit, rounded (``round(v / 257)``: 65535 becomes 255);
2. the colour: ``gray`` with OpenCV's weights (:func:`convkit.image.ops.to_gray`, alpha
   dropped), ``rgb`` in RGB order (alpha dropped, a gray image repeated into three
   channels) — what :func:`convkit.nn.inputs.model_input` does, kept in uint8;
3. the size: resized to ``W x H`` with ``interpolation`` (:func:`convkit.image.ops.resize`);
   with ``keep_aspect`` the image is fitted inside the box and centred on black padding;
4. a uint8 ``(H, W, C)`` array, C = 1 or 3. The model itself scales pixels to 0..1 (its
   first layer is ``Rescaling(1/255)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from convkit.defaults import INTERPOLATIONS
from convkit.errors import UsageError

COLORS = ("gray", "rgb")


def make_preparation(
    image_size: tuple[int, int] | list[int],
    color: str,
    *,
    keep_aspect: bool = False,
    interpolation: str = "area",
) -> dict[str, Any]:
    """A checked preparation dict (see the module)."""
    return check_preparation(
        {
            "image_size": [int(d) for d in image_size],
            "color": color,
            "keep_aspect": bool(keep_aspect),
            "interpolation": interpolation,
        }
    )


def check_preparation(preparation: Mapping[str, Any]) -> dict[str, Any]:
    """``preparation`` checked and normalised (a :class:`UsageError` names what is wrong)."""
    size = preparation.get("image_size")
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in size)
    ):
        raise UsageError(f"`image_size` must be [height, width] of positive integers, got {size}")
    color = preparation.get("color")
    if color not in COLORS:
        raise UsageError(f"`color` must be gray or rgb, got {color!r}")
    interpolation = preparation.get("interpolation", "area")
    if interpolation not in INTERPOLATIONS:
        raise UsageError(
            f"`interpolation` must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
        )
    return {
        "image_size": [int(size[0]), int(size[1])],
        "color": color,
        "keep_aspect": bool(preparation.get("keep_aspect", False)),
        "interpolation": interpolation,
    }


def channels_of(preparation: Mapping[str, Any]) -> int:
    """1 for gray, 3 for RGB."""
    return 1 if preparation["color"] == "gray" else 3


def image_shape_of(preparation: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(height, width, channels)`` of the prepared images."""
    height, width = preparation["image_size"]
    return int(height), int(width), channels_of(preparation)


def to_8bit(image: np.ndarray) -> np.ndarray:
    """8-bit pixels: uint8 as it is, uint16 rounded to ``v / 257`` (exact integer rounding)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype != np.uint16:
        raise UsageError(f"`image` must be uint8 or uint16, got {image.dtype}")
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def color_pixels(image: np.ndarray, color: str) -> np.ndarray:
    """An 8-bit OpenCV image as gray ``(H, W)`` or contiguous RGB ``(H, W, 3)`` (alpha
    dropped, gray repeated)."""
    from convkit.image.ops import to_gray, to_rgb

    if color == "gray":
        return to_gray(image)
    rgb = to_rgb(image)[:, :, :3]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb)


def prepare_pixels(image: np.ndarray, preparation: Mapping[str, Any]) -> np.ndarray:
    """One decoded image (gray/BGR/BGRA, 8/16-bit) prepared as ``preparation`` says: uint8
    ``(H, W, C)``, RGB order for colour (see the module for the steps)."""
    from convkit.image.ops import resize

    height, width = (int(d) for d in preparation["image_size"])
    keep_aspect = bool(preparation.get("keep_aspect", False))
    pixels = color_pixels(to_8bit(image), preparation["color"])
    pixels = resize(
        pixels,
        width,
        height,
        interpolation=preparation.get("interpolation", "area"),
        keep_aspect=keep_aspect,
    )
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.shape[:2] != (height, width):
        pixels = pad_to(pixels, height, width)
    return pixels


def content_box(
    image_height: int, image_width: int, preparation: Mapping[str, Any] | None
) -> tuple[int, int, int, int] | None:
    """Where an ``image_height x image_width`` picture lies in its prepared image, as
    ``(top, left, height, width)``: the whole canvas unless ``keep_aspect`` fitted it inside
    and padded it (then the padding is no part of the picture: a heat map over the picture
    is cut to this box). ``None`` when nothing is padded."""
    if not preparation or not preparation.get("keep_aspect", False):
        return None
    from convkit.image.ops import fit_size

    height, width = (int(d) for d in preparation["image_size"])
    fitted_w, fitted_h = fit_size(image_width, image_height, width, height)
    if (fitted_h, fitted_w) == (height, width):
        return None
    return (height - fitted_h) // 2, (width - fitted_w) // 2, fitted_h, fitted_w


def pad_to(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``pixels`` centred on a black ``height x width`` canvas (the extra pixel of an odd
    margin goes below and right)."""
    canvas = np.zeros((height, width, pixels.shape[2]), np.uint8)
    top = (height - pixels.shape[0]) // 2
    left = (width - pixels.shape[1]) // 2
    canvas[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
    return canvas

"""What ``convkit info`` reports about an image: plain values, ready for JSON."""

from __future__ import annotations

import numpy as np

_CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def to_rgb_order(image: np.ndarray) -> np.ndarray:
    """View an OpenCV-ordered array (gray, BGR, BGRA) as (H, W, C) in RGB(A) order."""
    if image.ndim == 2:
        return image[:, :, np.newaxis]
    if image.shape[2] == 3:
        return image[:, :, ::-1]
    return image[:, :, [2, 1, 0, 3]]


def image_info(image: np.ndarray, *, name: str) -> dict:
    """Shape, dtype, pixel count, first pixel, channel statistics of one decoded image.

    ``shape`` is (H, W, C) with C = 1 for gray; ``first_pixel`` and ``channels`` are in RGB(A)
    order; ``gray_length`` is the length of the flattened grayscale array (H * W).
    """
    rgb = to_rgb_order(image)
    height, width, nchan = rgb.shape
    names = _CHANNEL_NAMES[nchan]
    channels = []
    for c, cname in enumerate(names):
        plane = rgb[:, :, c]
        channels.append(
            {
                "name": cname,
                "min": int(plane.min()),
                "max": int(plane.max()),
                "mean": float(plane.mean(dtype=np.float64)),
            }
        )
    return {
        "path": name,
        "shape": [height, width, nchan],
        "dtype": str(image.dtype),
        "pixels": height * width,
        "first_pixel": [int(v) for v in rgb[0, 0]],
        "channel_order": "".join(n[0] for n in names) if nchan > 1 else "gray",
        "channels": channels,
        "gray_length": height * width,
    }

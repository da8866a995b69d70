"""What ``convkit info`` reports about an image: plain values, ready for JSON."""

from __future__ import annotations

import numpy as np

from convkit.image.ops import CHANNEL_NAMES, to_rgb


def image_info(image: np.ndarray, *, name: str) -> dict:
    """Shape, dtype, pixel count, first pixel, channel statistics of one decoded image.

    ``shape`` is (H, W, C) with C = 1 for gray; ``first_pixel`` and ``channels`` are in RGB(A)
    order; ``gray_length`` is the length of the flattened grayscale array (H * W).
    """
    rgb = to_rgb(image)
    height, width, nchan = rgb.shape
    names = CHANNEL_NAMES[nchan]
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

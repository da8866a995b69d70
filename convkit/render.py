"""Turning float responses (filter outputs, feature maps) into pixels a person can look at.

Three ways, chosen with ``--range``:

``clip``
    Round and saturate to the pixel range, exactly as ``cv2.filter2D`` with ``ddepth=-1``
    does. Right for kernels that keep brightness (blur, sharpen); for a signed edge
    response the negative edges vanish.
``abs``
    The magnitude, then saturate: edges of both directions show as bright lines. The
    default for zero-sum kernels (Sobel, Laplacian...).
``rescale``
    Map the response's own min..max linearly onto the full pixel range (0..255 or
    0..65535); a flat response becomes 0.
"""

from __future__ import annotations

import numpy as np

from convkit.errors import UsageError

RANGE_MODES = ("clip", "abs", "rescale")


def to_pixels(response: np.ndarray, mode: str, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Map a float response to ``dtype`` (uint8 or uint16) pixels with ``mode``."""
    if mode not in RANGE_MODES:
        raise UsageError(f"unknown range mode {mode!r} (known: {', '.join(RANGE_MODES)})")
    dtype = np.dtype(dtype)
    top = float(np.iinfo(dtype).max)
    values = np.asarray(response, dtype=np.float32)
    if mode == "abs":
        values = np.abs(values)
    elif mode == "rescale":
        low, high = float(values.min()), float(values.max())
        if high > low:
            values = (values - low) * np.float32(top / (high - low))
        else:
            values = np.zeros_like(values)
    # Round half to even, then saturate: OpenCV's saturate_cast.
    out = np.rint(values)
    np.clip(out, 0, top, out=out)
    return out.astype(dtype)

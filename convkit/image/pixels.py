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

from convkit.defaults import RANGE_MODES
from convkit.errors import UsageError, check_choice
from convkit.heavy import import_cv2


def to_pixels(response: np.ndarray, mode: str, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Map a float response to ``dtype`` (uint8 or uint16) pixels with ``mode``.

    Rounding is half to even, then saturation: OpenCV's ``saturate_cast``. OpenCV does the
    common cases (it is several times faster than the equivalent NumPy); NumPy does the rest
    with the same arithmetic.
    """
    check_choice(mode, RANGE_MODES, "mode")
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16):
        raise UsageError(f"`dtype` must be uint8 or uint16, got {dtype}")
    values = np.asarray(response, dtype=np.float32)
    top = float(np.iinfo(dtype).max)
    few_channels = values.ndim == 2 or (values.ndim == 3 and values.shape[2] <= 4)
    if mode == "rescale":
        low, high = float(values.min()), float(values.max())
        if high > low:
            values = (values - low) * np.float32(top / (high - low))
        else:
            values = np.zeros_like(values)
    elif mode == "abs":
        if dtype == np.uint8 and few_channels:
            return import_cv2().convertScaleAbs(values)
        values = np.abs(values)
    if few_channels:
        cv2 = import_cv2()
        return cv2.add(values, 0.0, dtype=cv2.CV_8U if dtype == np.uint8 else cv2.CV_16U)
    out = np.rint(values)
    np.clip(out, 0, top, out=out)
    return out.astype(dtype)

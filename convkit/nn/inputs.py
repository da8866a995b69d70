"""What a model sees of an image, and the image back from what the model saw.

:func:`model_input` is the one place where an OpenCV image (gray, BGR or BGRA; 8- or
16-bit, as :func:`convkit.image.codec.read_image` gives it) becomes a model's float32
input:

* **gray** (1 channel): OpenCV's weights, 0.299 R + 0.587 G + 0.114 B
  (:func:`convkit.image.ops.to_gray`), exactly as ``convkit filter --gray`` converts;
* **colour** (3 channels): **RGB** order, the order Keras models are trained in (OpenCV's
  BGR is turned around); a gray image is repeated into three equal channels;
* alpha is dropped, not composited;
* the values are the pixel values as stored (0..255, or 0..65535 for 16-bit), as float32:
  no division by 255, no mean subtraction. A caller that wants another scale multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convkit.errors import UsageError


def model_input(image: np.ndarray, channels: int) -> np.ndarray:
    """An OpenCV image as a model's float32 ``(H, W, channels)`` input (see the module).

    ``channels`` is 1 (gray) or 3 (RGB).
    """
    from convkit.image.ops import to_gray, to_rgb

    if channels == 1:
        return to_gray(image).astype(np.float32)[:, :, np.newaxis]
    if channels == 3:
        rgb = to_rgb(image)[:, :, :3]  # alpha dropped
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        return np.ascontiguousarray(rgb, dtype=np.float32)
    raise UsageError(f"`channels` must be 1 (gray) or 3 (colour), got {channels}")


def eight_bit_scale(dtype: np.dtype | type) -> float:
    """The factor that brings pixel values of ``dtype`` to 8-bit units (1/257 for 16-bit:
    65535 becomes 255 exactly)."""
    return 1.0 / 257.0 if np.dtype(dtype) == np.uint16 else 1.0


def input_picture(x: np.ndarray, scale: float) -> np.ndarray:
    """A model input ``x`` back as an 8-bit OpenCV picture (gray, or BGR), ``scale``
    bringing its values to 8-bit units (:attr:`Prepared.scale`). For montages."""
    pixels = np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)
    if pixels.shape[2] == 1:
        return pixels[:, :, 0]
    return np.ascontiguousarray(pixels[:, :, ::-1])


@dataclass(frozen=True)
class Prepared:
    """One image ready for the model: its position among the inputs, the model input
    ``x`` and the dtype it was stored in (which sets the scale of its pictures); ``unit``,
    when given, is the factor that brings ``x`` to 8-bit units instead (an input prepared
    for a trained model: resized, and scaled as it was trained)."""

    index: int
    x: np.ndarray
    dtype: np.dtype
    unit: float | None = None

    @property
    def scale(self) -> float:
        """The factor that brings the model input's values to 8-bit pixel units."""
        return self.unit if self.unit is not None else eight_bit_scale(self.dtype)

"""OpenCV operations on NumPy arrays: gray conversion, resizing, 2-D filtering.

Arrays follow :mod:`convkit.image.codec`: OpenCV channel order (gray, BGR, BGRA), ``uint8`` or
``uint16``. OpenCV is imported on first use.
"""

from __future__ import annotations

import numpy as np

from convkit.defaults import BORDERS, INTERPOLATIONS
from convkit.errors import UsageError, check_choice
from convkit.heavy import import_cv2


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR or BGRA to one channel with OpenCV's weights (0.299 R + 0.587 G + 0.114 B).

    A gray image comes back unchanged; alpha is dropped, not composited; the dtype is kept.
    """
    if image.ndim == 2:
        return image
    cv2 = import_cv2()
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}
"""The names of the channels of :func:`to_rgb`'s result, in its order."""


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV-ordered array (gray, BGR, BGRA) viewed as ``(H, W, C)`` in RGB(A) order
    (gray: C = 1). A view, no copy: the one place where BGR is turned around."""
    if image.ndim == 2:
        return image[:, :, np.newaxis]
    if image.shape[2] == 3:
        return image[:, :, ::-1]
    return image[:, :, [2, 1, 0, 3]]


def fit_size(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The largest ``(w, h)`` with the aspect ratio of ``width x height`` inside the box."""
    scale = min(box_width / width, box_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(
    image: np.ndarray,
    width: int,
    height: int,
    *,
    interpolation: str = "area",
    keep_aspect: bool = False,
) -> np.ndarray:
    """Resize to ``width x height`` (or to fit inside it with ``keep_aspect``).

    ``area`` averages the source pixels under each target pixel: the right choice for
    shrinking, free of the aliasing that ``linear`` and ``nearest`` show there.
    """
    if width < 1 or height < 1:
        raise UsageError(f"`width` and `height` must be positive, got {width}x{height}")
    check_choice(interpolation, INTERPOLATIONS, "interpolation")
    if keep_aspect:
        width, height = fit_size(image.shape[1], image.shape[0], width, height)
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    cv2 = import_cv2()
    flag = {
        "area": cv2.INTER_AREA,
        "linear": cv2.INTER_LINEAR,
        "cubic": cv2.INTER_CUBIC,
        "nearest": cv2.INTER_NEAREST,
        "lanczos": cv2.INTER_LANCZOS4,
    }[interpolation]
    return cv2.resize(image, (width, height), interpolation=flag)


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour, alpha)``: alpha is None unless the image is BGRA."""
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3], image[:, :, 3]
    return image, None


def merge_alpha(color: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return color
    return np.dstack([color, alpha])


def filter2d(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    border: str = "reflect101",
    normalize: bool = False,
    convolve: bool = False,
) -> np.ndarray:
    """Apply ``kernel`` with ``cv2.filter2D``; return the float32 response, unclipped.

    ``cv2.filter2D`` computes a *correlation*: output(y, x) = sum kernel(i, j) *
    image(y + i - ay, x + j - ax) with the anchor (ax, ay) at the kernel's centre
    (``size // 2`` for even sizes). ``convolve=True`` flips the kernel on both axes and
    mirrors the anchor, which gives a true convolution. ``normalize`` divides the kernel by
    its sum when that is non-zero. Colour images are filtered per channel (pass the colour
    channels only: see :func:`split_alpha`). Borders: ``reflect101`` (OpenCV's default,
    ``gfedcb|abcdefgh|gfedcba``), ``reflect`` (``fedcba|abcdefgh|hgfedcb``), ``replicate``
    (``aaaaaa|abcdefgh|hhhhhhh``), ``constant`` (zeros).
    """
    check_choice(border, BORDERS, "border")
    cv2 = import_cv2()
    k = np.asarray(kernel, dtype=np.float32)
    if normalize:
        total = float(np.asarray(kernel, dtype=np.float64).sum())
        if total != 0:
            k = (np.asarray(kernel, dtype=np.float64) / total).astype(np.float32)
    kh, kw = k.shape
    anchor = (-1, -1)
    if convolve:
        k = np.ascontiguousarray(k[::-1, ::-1])
        anchor = (kw - kw // 2 - 1, kh - kh // 2 - 1)
    flag = {
        "reflect101": cv2.BORDER_REFLECT_101,
        "reflect": cv2.BORDER_REFLECT,
        "replicate": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
    }[border]
    return cv2.filter2D(image, cv2.CV_32F, k, anchor=anchor, delta=0, borderType=flag)

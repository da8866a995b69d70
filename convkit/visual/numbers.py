"""The numbers ``convkit animate --numbers`` writes into the cells: the input, the kernel
and the output they make, computed from the schedule alone.

The input is a patch of a photo (:func:`image_patch`: gray, cropped to the aspect ratio of
the layer's input and resized to it; OpenCV is imported only here) or seeded small
integers (:func:`seeded_values`); the kernel is a ``convkit filter`` kernel (a preset, a
matrix, a file) of the layer's kernel size, or seeded integers. :func:`layer_outputs`
applies the schedule's taps: Σ input · kernel, or the max or the mean of the taps that lie
on the input (padded cells left out, as TensorFlow does) — what Keras computes for the
layer with bias 0 (``tests/test_animate_frames.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convkit.errors import KernelError, UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.schedule import Axis, Schedule

__all__ = ["Numbers", "image_patch", "kernel_values", "layer_numbers", "layer_outputs"]


@dataclass(frozen=True)
class Numbers:
    """The values of one layer's input, kernel (None for pooling) and output."""

    inputs: np.ndarray
    kernel: np.ndarray | None
    outputs: np.ndarray
    source: str
    """Where the input came from: ``"seed 0"`` or the image's name."""


def seeded_values(shape: tuple[int, int], seed: int, low: int, high: int) -> np.ndarray:
    """Integers ``low..high`` (both included) of ``shape``, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(low, high + 1, size=shape).astype(np.float64)


def image_patch(path: str, shape: tuple[int, int], *, max_pixels: int) -> np.ndarray:
    """The photo at ``path`` in gray (0..255), centre-cropped to the aspect ratio of
    ``shape`` and resized to it (area interpolation)."""
    from convkit.image.codec import read_image
    from convkit.image.ops import resize, to_gray
    from convkit.image.sources import collect_sources

    sources = collect_sources([path]).sources
    if len(sources) != 1:
        raise UsageError(f"`image` must be one image file, got {path!r} ({len(sources)} images)")
    gray = to_gray(read_image(sources[0], max_pixels=max_pixels))
    if gray.dtype == np.uint16:
        gray = np.round(gray / 257.0).astype(np.uint8)
    h, w = shape
    rows, cols = gray.shape
    if rows * w > cols * h:  # taller than the target: crop rows
        keep = max(1, round(cols * h / w))
        top = (rows - keep) // 2
        gray = gray[top : top + keep]
    else:
        keep = max(1, round(rows * w / h))
        left = (cols - keep) // 2
        gray = gray[:, left : left + keep]
    return resize(np.ascontiguousarray(gray), w, h).astype(np.float64)


def kernel_values(text: str, size: tuple[int, int] | None) -> np.ndarray:
    """The one kernel of a ``convkit filter`` kernel argument, of ``size`` when given
    (``box`` and ``gaussian`` without a size take it)."""
    from convkit.image.kernels import parse_kernel_args

    word = text.strip().lower()
    if word in ("box", "gaussian") and size is not None and size[0] == size[1]:
        text = f"{word}:{size[0]}"
    kernels = parse_kernel_args([text])
    if len(kernels) != 1:
        names = ", ".join(k.name for k in kernels)
        raise KernelError(
            f"kernel {text!r} is {len(kernels)} kernels ({names}); an animation draws one: "
            "give one of them as a matrix"
        )
    matrix = kernels[0].matrix
    if size is not None and matrix.shape != tuple(size):
        raise KernelError(
            f"kernel {text!r} is {matrix.shape[0]}x{matrix.shape[1]} but the layer's kernel "
            f"is {size[0]}x{size[1]} (`kernel`): give a kernel of that size, or leave "
            "`kernel` out to take the kernel's"
        )
    return matrix


def _gather(axis: Axis) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel index, input index or -1)`` of every ``(output, tap)`` of one axis."""
    kernel = np.array([[k for k, _ in axis.taps(o)] for o in range(axis.out)], dtype=np.intp)
    inputs = np.array(
        [[-1 if i is None else i for _, i in axis.taps(o)] for o in range(axis.out)],
        dtype=np.intp,
    )
    return kernel.reshape(axis.out, axis.kernel), inputs.reshape(axis.out, axis.kernel)


def layer_outputs(schedule: Schedule, inputs: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """Every output cell from the schedule's taps (float64)."""
    kr, ir = _gather(schedule.rows)
    kc, ic = _gather(schedule.cols)
    rows = ir[:, None, :, None]
    cols = ic[None, :, None, :]
    valid = (rows >= 0) & (cols >= 0)  # (Ho, Wo, KH, KW)
    values = inputs[np.maximum(rows, 0), np.maximum(cols, 0)]
    if schedule.layer == "MaxPooling2D":
        return np.where(valid, values, -np.inf).max(axis=(2, 3))
    if schedule.layer == "AveragePooling2D":
        count = valid.sum(axis=(2, 3))
        return np.where(valid, values, 0.0).sum(axis=(2, 3)) / np.maximum(count, 1)
    assert kernel is not None
    weights = kernel[kr[:, None, :, None], kc[None, :, None, :]]
    return np.where(valid, values * weights, 0.0).sum(axis=(2, 3))


def layer_numbers(
    schedule: Schedule,
    *,
    image: str | None = None,
    kernel: np.ndarray | None = None,
    seed: int = 0,
    max_pixels: int,
) -> Numbers:
    """The input (``image``'s patch, else seeded integers 0..9), the kernel (``kernel``,
    else seeded integers −1..2; none for pooling) and the outputs they make."""
    if image is not None:
        inputs = image_patch(image, schedule.input, max_pixels=max_pixels)
        source = Path(image).name
    else:
        inputs = seeded_values(schedule.input, seed, 0, 9)
        source = f"seed {seed}"
    if schedule.pool:
        kernel = None
    elif kernel is None:
        kernel = seeded_values(schedule.kernel, seed + 1, -1, 2)
    with np.errstate(over="ignore", invalid="ignore"):
        outputs = layer_outputs(schedule, inputs, kernel)
    if not np.isfinite(outputs).all():  # finite values whose products overflow (1e308)
        raise KernelError(
            "the kernel's values (`weights`) are too large: a sum of products overflows "
            "to infinity; scale the kernel down"
        )
    return Numbers(inputs, kernel, outputs, source)

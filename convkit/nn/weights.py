"""Weights given for a network's first ``Conv2D`` layer, instead of Keras's random ones.

Two sources, one of them at a time (:func:`filter_weights`):

* **2-D kernels** (``kernel``: presets, inline matrices, files, as ``convkit filter``
  takes them; :func:`kernels_to_weights`): each kernel is one filter. A ``Conv2D`` filter
  spans every input channel, so with a colour input the same kernel is applied to each of
  R, G and B and the three are summed.
* **an array** of shape ``(KH, KW, C_in, N)``, as Keras stores ``Conv2D`` weights, from a
  ``.npy`` file (``weights``; :func:`load_weights`, ``allow_pickle=False``).

Keras's ``Conv2D`` computes a *correlation*, like ``cv2.filter2D``: a kernel goes into the
layer as written, not flipped. Biases stay at Keras's initial zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convkit.arithmetic.formatting import format_dims
from convkit.errors import UsageError
from convkit.files import load_npy
from convkit.nn.text import describe_layer, plural

if TYPE_CHECKING:
    from convkit.arithmetic.spec import LayerSpec
    from convkit.image.kernels import Kernel


@dataclass(frozen=True)
class FilterWeights:
    """Weights for one ``Conv2D`` layer: ``kernel`` is ``(KH, KW, C_in, N)`` float32, as
    Keras stores it; ``labels`` names each of the N filters (``edges4-1``, ...).

    ``param`` is the parameter they were given with (``kernel`` for 2-D kernels,
    ``weights`` for an array) and ``path`` the file they were read from, if any: messages
    about weights that do not fit name them. ``files`` are every file they were read from,
    each with what it is (``(path, "kernel file")``): no output may replace one.
    """

    kernel: np.ndarray
    labels: tuple[str, ...]
    param: str = "weights"
    path: str | None = None
    files: tuple[tuple[Path, str], ...] = ()

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[3])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.kernel.shape[0]), int(self.kernel.shape[1])


def filter_weights(
    kernel: Sequence[str] | Sequence[Kernel] | None,
    weights: str | Path | FilterWeights | None,
    channels: int,
) -> FilterWeights | None:
    """The weights given with ``kernel`` (2-D kernels, or their ``-k`` texts) or with
    ``weights`` (a ``.npy`` file, or :class:`FilterWeights`), for a layer seeing
    ``channels`` input channels; None when neither is given."""
    if kernel and weights is not None:
        raise UsageError("give the filters either with `kernel` or with `weights`, not both")
    if kernel:
        from convkit.image.kernels import parse_kernel_args

        given = list(kernel)
        kernels = parse_kernel_args(given) if all(isinstance(k, str) for k in given) else given
        return kernels_to_weights(kernels, channels)
    if isinstance(weights, FilterWeights):
        return weights
    if weights is not None:
        return load_weights(weights)
    return None


def kernels_to_weights(kernels: Sequence[Kernel], channels: int) -> FilterWeights:
    """2-D kernels as one ``Conv2D`` layer's weights: one filter per kernel, each applied
    unchanged (correlation, no flip) to every one of the ``channels`` input channels."""
    from convkit.image.kernels import unique_names

    if not kernels:
        raise UsageError("no kernels given")
    sizes = {k.matrix.shape for k in kernels}
    if len(sizes) > 1:
        listed = ", ".join(f"{k.name} {k.matrix.shape[0]}x{k.matrix.shape[1]}" for k in kernels)
        raise UsageError(
            f"the kernels of one Conv2D layer must all have one size, got {listed}; "
            "run kernels of different sizes separately"
        )
    stack = np.stack([np.asarray(k.matrix, dtype=np.float32) for k in kernels], axis=-1)
    kernel = np.repeat(stack[:, :, np.newaxis, :], channels, axis=2)
    labels = unique_names([k.name for k in kernels])
    files = tuple((Path(k.source), "kernel file") for k in kernels if k.source is not None)
    return FilterWeights(np.ascontiguousarray(kernel), labels, param="kernel", files=files)


def load_weights(path: str | Path) -> FilterWeights:
    """A ``(KH, KW, C_in, N)`` array of ``Conv2D`` weights from a ``.npy`` file.

    Loaded with ``allow_pickle=False``; anything but a finite numeric 4-D array is a
    :class:`~convkit.errors.UsageError` that names the file and the problem.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise UsageError("no such weights file" if not path.exists() else "not a file", path=name)
    data = load_npy(path, error=UsageError)
    if data.ndim != 4:
        hint = " (a single 2-D kernel goes with `kernel` FILE.npy)" if data.ndim == 2 else ""
        raise UsageError(
            f"weights must have shape (KH, KW, C_in, N), got {data.ndim} dimensions "
            f"{tuple(data.shape)}{hint}",
            path=name,
        )
    if data.size == 0:
        raise UsageError(f"empty weights array {tuple(data.shape)}", path=name)
    kernel = np.asarray(data, dtype=np.float32)
    if not np.all(np.isfinite(kernel)):
        raise UsageError("weights contain NaN or infinity", path=name)
    labels = tuple(f"filter {i + 1}" for i in range(kernel.shape[3]))
    return FilterWeights(
        np.ascontiguousarray(kernel), labels, path=name, files=((path, "weights file"),)
    )


def check_weights(weights: FilterWeights, conv: LayerSpec, in_channels: int) -> None:
    """The weights must fit the ``Conv2D`` layer ``conv`` they go into, which receives
    ``in_channels`` channels: raise a :class:`~convkit.errors.UsageError` saying how not."""
    kw = conv.kwargs
    kh, kw_ = kw["kernel_size"]
    expected = (kh, kw_, in_channels // int(kw.get("groups", 1)), kw["filters"])
    got = tuple(int(v) for v in weights.kernel.shape)
    if got == expected:
        return
    layer = f"layer {conv.name!r} ({describe_layer(conv)})"
    if weights.param == "kernel":
        n, size = weights.filters, weights.kernel_size
        if got[:2] != expected[:2] or got[3] != expected[3]:
            raise UsageError(
                f"`kernel` gives {plural(n, 'filter')} of {size[0]}x{size[1]}, but {layer} has "
                f"{expected[3]} of {kh}x{kw_}; write it as conv2d({n}, {format_dims(size)}, ...)"
            )
        raise UsageError(
            f"`kernel` kernels are 2-D, but {layer} receives {expected[2]} channels; "
            "`kernel` can set a Conv2D layer that sees the gray or colour image"
        )
    where = f"{weights.path}: " if weights.path else ""
    seen = {1: "1 channel (gray)", 3: "3 channels (colour: use `color`)"}.get(
        in_channels, f"{in_channels} channels"
    )
    hint = "; weights with C_in = 3 need `color`" if got[2] == 3 and in_channels == 1 else ""
    raise UsageError(
        f"{where}weights of shape {got} do not fit {layer}, which receives {seen}: "
        f"it needs (KH, KW, C_in, N) = {expected}{hint}"
    )

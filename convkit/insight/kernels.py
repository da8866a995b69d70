"""``convkit kernels``: the learned filters of a trained model's convolution layers.

One picture per convolution layer, ``{layer}-kernels.png``, every filter of the layer on
one shared, labelled scale (a colour bar):

* a first layer that sees a colour image: each filter as a small colour picture, its R, G,
  B weights as the red, green and blue of each cell (mid-gray is 0 in every channel), so
  the colour a filter responds to shows as its colour;
* every other layer (and a gray first layer): each filter's slice for each input channel
  as a small patch on a diverging scale (blue < 0, white 0, red > 0), one row per filter
  and one column per input channel (one grid of filters when there is one channel).

At most :data:`MAX_FILTERS` filters and :data:`MAX_CHANNELS` input channels are drawn
(the title says so); ``raw`` writes every weight of the layer as ``.npy``, exactly what
``layer.get_weights()`` holds (``{layer}-kernel.npy``, ``{layer}-bias.npy``, ...).
Conv2DTranspose kernels are drawn turned to Conv2D's order ``(KH, KW, in, out)``;
depthwise kernels as one filter per input channel (and multiplier).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import UsageError

MAX_FILTERS = 64
MAX_CHANNELS = 64
_DPI = 100


@dataclass(frozen=True)
class LayerKernels:
    """One convolution layer's filters as drawn: ``kernel`` ``(KH, KW, C_in, N)``."""

    name: str
    type: str
    kernel: np.ndarray
    color: bool  # the first layer, on a colour input: drawn as colour pictures
    weights: tuple[tuple[str, np.ndarray], ...]  # (name, values) of layer.get_weights()


def _weight_names(layer) -> list[str]:
    names = []
    for variable in layer.weights:
        name = str(getattr(variable, "name", "") or "weight").split("/")[-1].split(":")[0]
        names.append(re.sub(r"[^\w.-]+", "_", name) or "weight")
    return names


def layer_kernels(layer, *, first: bool, input_channels: int) -> LayerKernels:
    """The filters of ``layer`` as drawn (see the module); ``first`` when it is the first
    convolution of a model whose input has ``input_channels`` channels."""
    kind = type(layer).__name__
    values = [np.asarray(w) for w in layer.get_weights()]
    names = _weight_names(layer)
    if kind in ("DepthwiseConv2D", "SeparableConv2D"):
        depthwise = (
            values[names.index("depthwise_kernel")] if "depthwise_kernel" in names else values[0]
        )
        kh, kw, cin, mult = depthwise.shape
        kernel = depthwise.reshape(kh, kw, 1, cin * mult)
    elif kind == "Conv2DTranspose":
        kernel = np.transpose(values[0], (0, 1, 3, 2))
    else:
        kernel = values[0]
    color = first and input_channels == 3 and kernel.shape[2] == 3
    return LayerKernels(
        layer.name, kind, kernel.astype(np.float32), color, tuple(zip(names, values, strict=True))
    )


def _grid(tiles: list[np.ndarray], columns: int, fill: float) -> np.ndarray:
    """Tiles of one size on a grid, one cell of ``fill`` between them."""
    th, tw = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    extra = tiles[0].shape[2:]
    out = np.full((rows * (th + 1) - 1, columns * (tw + 1) - 1, *extra), fill, np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (th + 1) : r * (th + 1) + th, c * (tw + 1) : c * (tw + 1) + tw] = tile
    return out


def kernels_picture(kernels: LayerKernels, *, title: str = "") -> np.ndarray:
    """The picture of one layer's filters (see the module), BGR uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    k = kernels.kernel
    kh, kw, cin, n = k.shape
    top = float(np.abs(k).max()) or 1.0
    shown_n, shown_c = min(n, MAX_FILTERS), min(cin, MAX_CHANNELS)
    by_channel = not kernels.color and shown_c > 1
    if kernels.color:
        tiles = [np.clip(0.5 + 0.5 * k[:, :, :, i] / top, 0, 1) for i in range(shown_n)]
        columns = math.ceil(math.sqrt(shown_n))
        grid, cmap = _grid(tiles, columns, 1.0), "gray"
    elif by_channel:
        tiles = [k[:, :, c, i] for i in range(shown_n) for c in range(shown_c)]
        columns = shown_c
        grid, cmap = _grid(tiles, columns, np.nan), "RdBu_r"
    else:
        tiles = [k[:, :, 0, i] for i in range(shown_n)]
        columns = math.ceil(math.sqrt(shown_n))
        grid, cmap = _grid(tiles, columns, np.nan), "RdBu_r"
    gh, gw = grid.shape[:2]
    cell = int(np.clip(900 // max(gw, gh), 3, 48))
    width = max(gw * cell / _DPI + 2.2, 5.5)
    height = max(gh * cell / _DPI + 1.4, 3.0)
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.12, h_pad=0.08)  # room for the axis labels
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    norm = Normalize(-top, top)
    if kernels.color:
        ax.imshow(grid, interpolation="nearest")
    else:
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, interpolation="nearest")
    _label_axes(ax, kernels, (kh, kw), columns, shown_n, by_channel)
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.05, pad=0.02, shrink=0.9)
    bar.set_label(
        "weight, each of R, G, B (mid-gray = 0)" if kernels.color else "weight (0 = white)",
        fontsize=9,
    )
    bar.ax.tick_params(labelsize=8)
    more = []
    if n > shown_n:
        more.append(f"the first {shown_n} of {n} filters")
    if cin > shown_c:
        more.append(f"the first {shown_c} of {cin} input channels")
    text = title + (f"  ({', '.join(more)})" if more else "")
    fig.suptitle(text, fontsize=11)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[:, :, 2::-1])


def _label_axes(ax, kernels: LayerKernels, size, columns: int, count: int, by_channel: bool):
    kh, kw = size
    if by_channel:
        rows = count
        ax.set_xlabel("input channel", fontsize=9)
        ax.set_ylabel("filter", fontsize=9)
        step_c = max(1, columns // 16)
        step_r = max(1, rows // 16)
        ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(0, columns, step_c)])
        ax.set_xticklabels([str(c + 1) for c in range(0, columns, step_c)], fontsize=7)
        ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(0, rows, step_r)])
        ax.set_yticklabels([str(r + 1) for r in range(0, rows, step_r)], fontsize=7)
        return
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("filters 1, 2, ... left to right, row by row", fontsize=8, color="#555555")
    if count <= 64 and kh * kw >= 4:
        for i in range(count):
            r, c = divmod(i, columns)
            ax.text(
                c * (kw + 1) - 0.45,
                r * (kh + 1) - 0.45,
                str(i + 1),
                fontsize=6,
                va="top",
                ha="left",
                color="#333333",
            )


def describe(kernels: LayerKernels) -> str:
    """``conv2d: Conv2D, 16 filters 3x3 on 3 input channels (colour)``."""
    kh, kw, cin, n = kernels.kernel.shape
    what = "input channel" if cin == 1 else "input channels"
    colour = " (RGB, drawn in colour)" if kernels.color else ""
    return f"{kernels.name}: {kernels.type}, {n} filters {kh}x{kw} on {cin} {what}{colour}"


@dataclass(frozen=True)
class KernelsResult:
    """What :func:`write_kernels` wrote: per layer, its description and files."""

    model: Path
    layers: list[tuple[str, list[str]]]


def write_kernels(
    model: str | Path,
    out_dir: str | Path,
    *,
    layers: Sequence[str] | None = None,
    raw: bool = False,
    fmt: str = "png",
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> KernelsResult:
    """Draw (and with ``raw`` save) the filters of the model's convolution layers
    (``layers``: only these) into ``out_dir``: ``{layer}-kernels.{fmt}``, and
    ``{layer}-{weight}.npy`` per weight. Every path is checked before anything is
    written: none replaces the model file."""
    from convkit.files import save_npy
    from convkit.image.codec import WRITE_FORMATS, normalize_format
    from convkit.image.outputs import Target, refuse_overwriting
    from convkit.image.pipeline import write_image
    from convkit.insight.models import conv_layers, open_model, pick_conv_layers

    fmt = normalize_format(fmt)
    keras_model, path = open_model(model, max_memory=max_memory)
    chosen = pick_conv_layers(keras_model, layers, path=path)
    first = conv_layers(keras_model, path=path)[0].name
    inputs = keras_model.inputs if isinstance(keras_model.inputs, (list, tuple)) else []
    channels = int(tuple(inputs[0].shape)[-1] or 0) if len(inputs) == 1 else 0
    out = Path(out_dir)
    suffix = WRITE_FORMATS[fmt][0]
    planned = []
    for layer in chosen:
        drawn = layer_kernels(layer, first=layer.name == first, input_channels=channels)
        name = re.sub(r"[^\w.-]+", "_", drawn.name)
        files = [out / f"{name}-kernels{suffix}"]
        if raw:
            files += [out / f"{name}-{w}.npy" for w, _ in drawn.weights]
        planned.append((drawn, files))
    every = [f for _, files in planned for f in files]
    if len({str(f) for f in every}) != len(every):
        raise UsageError(
            "two layers' names give the same file name in `out_dir`; pick one with `layers`"
        )
    refuse_overwriting(every, [(path, "model file")])
    written = []
    for drawn, files in planned:
        picture = kernels_picture(drawn, title=describe(drawn))
        write_image(Target(files[0], fmt), picture, create_folders=True)
        for (_, values), file in zip(drawn.weights, files[1:], strict=False):
            save_npy(file, values)
        written.append((describe(drawn), [str(f) for f in files]))
    return KernelsResult(path, written)

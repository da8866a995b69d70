"""Feature maps as pictures: one 8-bit picture per map, a colour picture, a montage.

What is drawn for each output layer with spatial maps (:class:`RenderOptions`):

* ``maps``: each map as an 8-bit gray picture, named ``{layer}-N`` (:func:`map_what`);
  after a pooled colour input (still a picture in pixel units), also the R, G, B maps
  together as one colour picture, ``{layer}-color``;
* ``montage``: every map of the layer on one labelled sheet, ``{layer}-montage``, with the
  model's input and each map's kernel (:mod:`convkit.nn.montage`).

How a float map becomes pixels is ``range_mode`` (:mod:`convkit.image.pixels`). By
default a map whose values stay within the input's range (after pooling, cropping,
up-sampling, padding: :attr:`LayerInfo.pixel_units`) is written with its values, clipped
as pixels are; a signed or unbounded map (a convolution's, an activation's...) is rescaled
from its own min..max. The montage shows each map as written, or with ``montage_scale``
``shared`` every map of the layer on one diverging scale (zero mid-gray), with a colour bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from convkit.arithmetic.formatting import format_shape
from convkit.defaults import RANGE_MODES
from convkit.errors import check_choice
from convkit.image.ops import CHANNEL_NAMES

MONTAGE_SCALES = ("map", "shared")

if TYPE_CHECKING:
    from convkit.nn.extractor import FeatureExtractor
    from convkit.nn.network import LayerInfo, Network


@dataclass(frozen=True)
class RenderOptions:
    """What is written for each image and layer.

    ``range_mode``: how a float map becomes 8-bit pixels (one of
    :data:`convkit.defaults.RANGE_MODES`); None means ``clip`` for maps in the input's
    pixel units (their values as they are) and ``rescale`` (each map's own min..max onto
    0..255) for the others (:meth:`mode_for`). ``maps``: one picture per map;
    ``montage``: one sheet per layer; ``raw``: the layer's float32 tensor as ``.npy``;
    ``montage_scale``: ``map`` (each panel as its map is written) or ``shared`` (one
    diverging scale for every map of the layer, zero mid-gray, with a colour bar).
    """

    range_mode: str | None = None
    maps: bool = True
    montage: bool = True
    raw: bool = False
    montage_scale: str = "map"

    def __post_init__(self) -> None:
        if self.range_mode is not None:
            check_choice(self.range_mode, RANGE_MODES, "range_mode")
        check_choice(self.montage_scale, MONTAGE_SCALES, "montage_scale")

    def mode_for(self, info: LayerInfo) -> str:
        """How the maps of layer ``info`` become pixels."""
        if self.range_mode is not None:
            return self.range_mode
        return "clip" if info.pixel_units else "rescale"


def map_what(layer: str, index: int, count: int) -> str:
    """The ``{what}`` of map ``index`` (1-based) of a layer with ``count`` maps: ``conv-1``,
    zero-padded so that names sort (``conv-01`` ... ``conv-16``)."""
    return f"{layer}-{index:0{len(str(count))}d}"


def output_whats(
    network: Network, options: RenderOptions
) -> tuple[list[str], list[str], list[str]]:
    """``(images, raws, skipped)``: the ``{what}`` of every picture and every ``.npy`` a
    run writes per input image, and the output layers that have no maps to draw."""
    images: list[str] = []
    raws: list[str] = []
    skipped: list[str] = []
    for info in network.output_infos:
        if info.channels is None:
            skipped.append(info.name)
        images += layer_whats(info, options)
        if options.raw:
            raws.append(info.name)
    return images, raws, skipped


def no_maps_text(skipped: list[str]) -> str:
    """``layers flatten, dense have no spatial maps to draw`` (one layer: ``has``)."""
    many = len(skipped) > 1
    return (
        f"layer{'s' if many else ''} {', '.join(skipped)} ha{'ve' if many else 's'} "
        "no spatial maps to draw"
    )


def layer_whats(info: LayerInfo, options: RenderOptions) -> list[str]:
    """The ``{what}`` of every picture drawn for one layer, in the order they are written."""
    if info.channels is None:
        return []
    whats = []
    if options.maps:
        whats += [map_what(info.name, i, info.channels) for i in range(1, info.channels + 1)]
        if info.picture:
            whats.append(f"{info.name}-color")
    if options.montage:
        whats.append(f"{info.name}-montage")
    return whats


def render_maps(maps: np.ndarray, mode: str, *, scale: float = 1.0) -> list[np.ndarray]:
    """Each map of ``maps`` ``(h, w, n)`` as an 8-bit picture.

    ``rescale`` maps each map's own min..max onto 0..255 (a flat map is black); ``clip`` and
    ``abs`` (see :mod:`convkit.image.pixels`) work in pixel units, ``scale`` bringing a 16-bit
    input's units down to 8 bits (:func:`convkit.nn.inputs.eight_bit_scale`).
    """
    from convkit.image.pixels import to_pixels

    out = []
    for i in range(maps.shape[-1]):
        m = maps[:, :, i]
        if mode != "rescale" and scale != 1.0:
            m = m * np.float32(scale)
        out.append(to_pixels(m, mode, np.uint8))
    return out


def render_picture(maps: np.ndarray, mode: str | None, *, scale: float = 1.0) -> np.ndarray:
    """The three R, G, B maps of a pooled (resampled) colour input as one BGR picture."""
    from convkit.image.pixels import to_pixels

    values = maps[:, :, ::-1]
    mode = mode or "clip"
    if mode != "rescale" and scale != 1.0:
        values = values * np.float32(scale)
    return to_pixels(np.ascontiguousarray(values, dtype=np.float32), mode, np.uint8)


@dataclass(frozen=True)
class Renderer:
    """Draws the pictures of one layer of one image, as ``options`` ask.

    The montages label each map with its filter and draw its kernel, as the first model
    the ``extractor`` built holds it.
    """

    network: Network
    extractor: FeatureExtractor
    options: RenderOptions

    def pictures(
        self,
        info: LayerInfo,
        values: np.ndarray,
        *,
        scale: float,
        name: str,
        input_picture: Callable[[], np.ndarray],
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(what, pixels)`` for the maps ``values`` ``(h, w, n)`` of layer ``info`` of
        the image called ``name``; ``input_picture()`` gives the model's input, for the
        montage."""
        tiles = render_maps(values, self.options.mode_for(info), scale=scale)
        color = None
        if info.picture:
            color = render_picture(values, self.options.range_mode, scale=scale)
        if self.options.maps:
            for i, tile in enumerate(tiles, 1):
                yield map_what(info.name, i, len(tiles)), tile
            if color is not None:
                yield f"{info.name}-color", color
        if self.options.montage:
            title = (
                f"{name}  |  {info.name}: {info.description}  ->  {format_shape(values.shape, 'x')}"
            )
            montage = self._montage(info, tiles, values, color, title, input_picture())
            yield f"{info.name}-montage", montage

    def _montage(self, info, tiles, values, color, title: str, picture) -> np.ndarray:
        from convkit.nn.montage import MAX_PANELS, Panel, diverging, layer_montage

        top = None
        if self.options.montage_scale == "shared":
            # One scale for every map of the layer (all of them, drawn or not).
            top = float(np.abs(values).max()) if values.size else 0.0
            tiles = [diverging(values[:, :, i], top) for i in range(min(len(tiles), MAX_PANELS))]
        labels, kernels = self._panel_details(info)
        panels = [
            Panel(tile, labels[i], kernels[i] if kernels else None)
            for i, tile in enumerate(tiles[:MAX_PANELS])
        ]
        if color is not None:
            panels.append(Panel(color, "colour (R, G, B)", None))
        gray = " (gray)" if self.network.channels == 1 else ""
        note = self._range_note(info)
        count = info.channels or len(tiles)
        if count > MAX_PANELS:
            note = f"the first {MAX_PANELS} of {count:,} maps;  {note}"
        return layer_montage(
            panels,
            title=title,
            note=note,
            input_panel=Panel(picture, "input" + gray, None),
            shared_scale=top,
        )

    def _panel_details(self, info: LayerInfo) -> tuple[list[str], list[np.ndarray] | None]:
        """Panel titles and the kernel drawn beside each map (None when not drawable)."""
        from convkit.nn.montage import drawable_kernel

        network, n, origin = self.network, info.channels or 0, info.origin
        if origin == "input":
            names = CHANNEL_NAMES.get(network.channels, ())
            return [names[i] if i < len(names) else f"channel {i + 1}" for i in range(n)], None
        if origin is None or origin not in self.extractor.kernels:
            return [f"map {i + 1}" for i in range(n)], None
        kernel = self.extractor.kernels[origin]
        if origin == network.weights_layer and network.weights is not None:
            names = list(network.weights.labels)
            labels = [
                f"{i + 1}: {names[i]}" if not names[i].startswith("filter ") else names[i]
                for i in range(n)
            ]
        else:
            labels = [f"filter {i + 1}" for i in range(n)]
        if origin != info.name:
            labels = [f"{text} -> {info.name}" for text in labels]
        kernels = [drawable_kernel(kernel[:, :, :, i]) for i in range(n)]
        if any(k is None for k in kernels):
            return labels, None
        return labels, kernels

    def _range_note(self, info: LayerInfo) -> str:
        mode = self.options.mode_for(info)
        what = {
            "rescale": "each map rescaled from its own min..max to black..white",
            "clip": "values clipped to 0..255",
            "abs": "absolute values clipped to 0..255",
        }[mode]
        if mode == "clip" and info.pixel_units:
            what = "the values themselves, in the input's range"
        if self.options.montage_scale == "shared":
            note = "one scale for every map of the layer: blue < 0, mid-gray 0, red > 0"
        else:
            note = f"pixels: {what}"
        if info.picture and mode == "rescale":
            note += ";  colour picture: values clipped to 0..255"
        if info.origin and info.origin in self.extractor.kernels and info.origin != "input":
            note += ";  kernels: red > 0, blue < 0, white 0"
        return note

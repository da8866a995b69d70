"""``shape-calc --diagram``: a whole stack of layers as a picture, for slides and READMEs.

Each layer's output is drawn as in the hand-drawn LeNet and AlexNet figures: a feature map
is a box whose front face is as tall as its height, which recedes as deep as its width and
is as thick as its channels; a vector (Flatten, Dense, global pooling) is a thin bar as
tall as its length. Every size goes through a logarithm, so a 224×224×3 input and a 7×7×512
map both fit, and each scale is shared by the whole picture: a taller box is always a
larger map. Layers that keep their input's shape and only transform its values
(activations, dropout, normalisation) are folded into the label of the box before them
("+ relu"). Under each box: the layer's name, its type (with its kernel, stride and padding
when the spec gives them), its output shape and its parameters; arrows between the boxes;
long stacks wrap onto several rows; the totals of ``shape-calc`` underneath.

Everything is drawn from :mod:`convkit.arithmetic`'s exact results (a
:class:`~convkit.arithmetic.results.StackResult`), never from Keras. The picture is one
:class:`~convkit.visual.scene.Scene`, written as SVG by plain Python or as PNG through
Matplotlib's Agg canvas, so both files show the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convkit.arithmetic.formatting import format_bytes, format_count, format_shape
from convkit.arithmetic.results import LayerResult, StackResult
from convkit.arithmetic.spec import LayerSpec
from convkit.errors import UsageError
from convkit.files import write_atomic
from convkit.visual.scene import (
    Group,
    Polygon,
    Polyline,
    Rect,
    Scene,
    Text,
    text_width,
    to_png,
    to_svg,
)

__all__ = ["DIAGRAM_SUFFIXES", "MAX_DIAGRAM_LAYERS", "diagram_scene", "write_diagram"]

DIAGRAM_SUFFIXES = (".png", ".svg")
MAX_DIAGRAM_LAYERS = 400
"""The most layers a diagram draws (a picture of more would be unreadable anyway)."""

# Layers folded into the label of the box before them (when they keep its shape).
_FOLDED_NAMES = {
    "Activation": "activation",
    "Dropout": "dropout",
    "SpatialDropout2D": "spatial dropout",
    "BatchNormalization": "batch norm",
    "LayerNormalization": "layer norm",
}
_FOLDED = set(_FOLDED_NAMES)

_MARGIN = 28
_GAP = 32  # between columns: room for an arrow
_ROW_GAP = 34
_MAX_ROW_WIDTH = 1800
_BOX_MIN, _BOX_MAX, _BOX_SLOPE = 14.0, 160.0, 20.0  # front face height (log2 of the size)
_BAR_SLOPE = 14.0
_DEPTH = 0.3  # the receding edge, as a fraction of the same size drawn as a height
_THICK_MIN, _THICK_MAX, _THICK_SLOPE = 6.0, 50.0, 5.5  # thickness (log2 of the channels)
_BAR_THICK, _BAR_DEPTH = 10.0, 7.0
_HEAD = 7.0  # arrow head length
_LINE = "#4d4d4d"
_TOTAL_SIZE = 13.0

# Face colours by layer family (the first matching prefix wins).
_COLORS = (
    ("Input", "#d9d9d9"),
    ("Conv2DTranspose", "#76c7b7"),
    ("DepthwiseConv2D", "#8fbce6"),
    ("SeparableConv2D", "#8fbce6"),
    ("Conv2D", "#6fa8dc"),
    ("MaxPooling2D", "#f6b26b"),
    ("AveragePooling2D", "#f9cb9c"),
    ("Global", "#f6b26b"),
    ("Dense", "#93c47d"),
    ("Flatten", "#b4a7d6"),
    ("ZeroPadding2D", "#d5a6bd"),
    ("Cropping2D", "#d5a6bd"),
    ("UpSampling2D", "#c27ba0"),
    ("BatchNormalization", "#ffe599"),
    ("LayerNormalization", "#ffe599"),
)
_DEFAULT_COLOR = "#cccccc"


@dataclass
class _Block:
    """One box or bar: a layer (or the input) and the layers folded into its label."""

    shape: tuple[int, ...]
    type: str
    main: LayerResult | None  # None: the input
    index: int  # the main layer's position in the stack (-1: the input)
    detail: str = ""
    folded: list[tuple[int, LayerResult, str]] = field(default_factory=list)

    @property
    def is_box(self) -> bool:
        return len(self.shape) == 3


@dataclass
class _Line:
    text: str
    size: float
    fill: str = "#222222"
    bold: bool = False
    role: str = ""
    owner: int = -1  # the layer it describes (-1: the block's main layer)

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, bold=self.bold)

    @property
    def height(self) -> float:
        return self.size * 1.32


def write_diagram(
    stack: StackResult, path: str | Path, *, specs: Sequence[LayerSpec] | None = None
) -> Path:
    """Draw ``stack`` (from :func:`~convkit.arithmetic.stack.analyze_spec` or
    :meth:`~convkit.arithmetic.explain.SingleLayer.to_stack`) into ``path``, a ``.png`` or
    ``.svg`` file (by its suffix, any case), written atomically. ``specs``, the parsed
    layers the stack came from, adds each layer's kernel, stride and padding to its label.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DIAGRAM_SUFFIXES:
        raise UsageError(
            f"`diagram` must be a .png or .svg file, got {str(path)!r} "
            "(the suffix chooses the format)"
        )
    scene = diagram_scene(stack, specs)
    write_atomic(path, to_svg(scene).encode() if suffix == ".svg" else to_png(scene))
    return path


def diagram_scene(stack: StackResult, specs: Sequence[LayerSpec] | None = None) -> Scene:
    """The picture of ``stack`` as a :class:`Scene` (see the module docstring)."""
    if len(stack.layers) > MAX_DIAGRAM_LAYERS:
        raise UsageError(
            f"`diagram` draws at most {MAX_DIAGRAM_LAYERS} layers; this stack has "
            f"{len(stack.layers):,} (the table and the JSON have no such limit)"
        )
    blocks = _blocks(stack, _layer_specs(stack, specs))
    scales = _Scales.of(blocks)
    cells = [_Cell(block, scales) for block in blocks]
    totals = _totals(stack)
    totals_width = max(line.width for line in totals)
    rows = _rows(cells)
    rows_width = max(_row_width(row) for row in rows)
    width = max(rows_width, totals_width) + 2 * _MARGIN + 2 * _GAP / 2
    left = (width - rows_width) / 2
    items: list = []
    y = _MARGIN
    previous: tuple[float, float, float] | None = None  # where the row above ends
    for row in rows:
        y, previous = _draw_row(row, left, y, previous, items)
        y += _ROW_GAP
    y += 4 - _ROW_GAP / 2
    for line in totals:
        y += line.height
        items.append(
            Text(width / 2, y, line.text, line.size, line.fill, "middle", line.bold, line.role)
        )
    return Scene(width=math.ceil(width), height=math.ceil(y + _MARGIN), items=tuple(items))


# --------------------------------------------------------------------------- the blocks


def _layer_specs(stack: StackResult, specs: Sequence[LayerSpec] | None) -> list[LayerSpec | None]:
    """Each stack layer's spec (the spec's leading input layer is not a stack layer)."""
    own = [s for s in specs or () if s.type != "InputLayer"]
    if len(own) != len(stack.layers):
        return [None] * len(stack.layers)
    return list(own)


def _blocks(stack: StackResult, specs: list[LayerSpec | None]) -> list[_Block]:
    blocks = [_Block(stack.input_shape, "Input", None, -1)]
    for index, (layer, spec) in enumerate(zip(stack.layers, specs, strict=True)):
        last = blocks[-1]
        detail = _detail(spec)
        if layer.type in _FOLDED and last.main is not None and layer.output_shape == last.shape:
            last.folded.append((index, layer, detail))
            continue
        blocks.append(_Block(layer.output_shape, layer.type, layer, index, detail))
    return blocks


def _dims(pair) -> str:
    a, b = pair
    return str(a) if a == b else f"{a}×{b}"


def _detail(spec: LayerSpec | None) -> str:
    """``3×3, stride 2, same``: the arguments that shape the layer, briefly."""
    if spec is None:
        return ""
    kw = spec.kwargs
    parts = []
    window = kw.get("kernel_size") or kw.get("pool_size")
    if window:
        parts.append(f"{window[0]}×{window[1]}")
    if kw.get("strides") not in (None, (1, 1)):
        parts.append(f"stride {_dims(kw['strides'])}")
    if kw.get("dilation_rate") not in (None, (1, 1)):
        parts.append(f"dilation {_dims(kw['dilation_rate'])}")
    if kw.get("padding") == "same":
        parts.append("same")
    if kw.get("output_padding") is not None:
        parts.append(f"output padding {_dims(kw['output_padding'])}")
    if kw.get("depth_multiplier", 1) != 1:
        parts.append(f"depth ×{kw['depth_multiplier']}")
    if spec.type == "UpSampling2D":
        parts.append(f"×{_dims(kw['size'])} {kw['interpolation']}")
    if spec.type in ("ZeroPadding2D", "Cropping2D"):
        (top, bottom), (left, right) = kw["padding" if spec.type == "ZeroPadding2D" else "cropping"]
        even = top == bottom and left == right
        parts.append(_dims((top, left)) if even else f"{top},{bottom},{left},{right}")
    if "rate" in kw:
        parts.append(f"rate {kw['rate']}")
    return ", ".join(parts)


def _color(kind: str) -> str:
    return next((c for prefix, c in _COLORS if kind.startswith(prefix)), _DEFAULT_COLOR)


def _shade(color: str, factor: float) -> str:
    """``color`` lighter (factor > 0, towards white) or darker (factor < 0)."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    if factor >= 0:
        rgb = [round(v + (255 - v) * factor) for v in rgb]
    else:
        rgb = [round(v * (1 + factor)) for v in rgb]
    return "#" + "".join(f"{v:02x}" for v in rgb)


def _clip(text: str, most: int = 30) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class _Scales:
    """log2 slopes shared by the whole picture: one for map sizes, one for channels, one
    for vector lengths (each as steep as it may be while the largest still fits)."""

    size: float
    channels: float
    vector: float

    @classmethod
    def of(cls, blocks: list[_Block]) -> _Scales:
        def slope(values: list[int], room: float, most: float) -> float:
            top = max(values, default=1)
            return most if top <= 1 else min(most, room / math.log2(top))

        boxes = [b.shape for b in blocks if b.is_box]
        bars = [math.prod(b.shape) for b in blocks if not b.is_box]
        return cls(
            size=slope([max(s[0], s[1]) for s in boxes], _BOX_MAX - _BOX_MIN, _BOX_SLOPE),
            channels=slope([s[2] for s in boxes], _THICK_MAX - _THICK_MIN, _THICK_SLOPE),
            vector=slope(bars, _BOX_MAX - _BOX_MIN, _BAR_SLOPE),
        )


class _Cell:
    """A block with its drawn sizes and its label lines."""

    def __init__(self, block: _Block, scales: _Scales):
        self.block = block
        if block.is_box:
            h, w, c = block.shape
            self.height = _BOX_MIN + scales.size * math.log2(h)
            self.depth = _DEPTH * (_BOX_MIN + scales.size * math.log2(w))
            self.thick = _THICK_MIN + scales.channels * math.log2(c)
        else:
            self.height = _BOX_MIN + scales.vector * math.log2(max(math.prod(block.shape), 1))
            self.depth, self.thick = _BAR_DEPTH, _BAR_THICK
        self.lines = _label(block)
        self.footprint = self.thick + self.depth
        self.width = max(self.footprint, max(line.width for line in self.lines)) + 8


def _params_text(n: int) -> str:
    return f"{n:,} param" + ("" if n == 1 else "s")


def _label(block: _Block) -> list[_Line]:
    if block.main is None:
        return [
            _Line("Input", 11.5, bold=True, role="type"),
            _Line(format_shape(block.shape), 11.5, "#1a1a1a", role="shape"),
        ]
    layer = block.main
    kind = layer.type + (f" · {layer.activation}" if layer.activation else "")
    lines = [
        _Line(_clip(layer.name), 10, "#6b6b6b", role="name"),
        _Line(_clip(kind), 11.5, bold=True, role="type"),
    ]
    if block.detail:
        lines.append(_Line(_clip(block.detail), 10.5, "#444444", role="detail"))
    lines.append(_Line(format_shape(layer.output_shape), 11.5, "#1a1a1a", role="shape"))
    lines.append(_Line(_params_text(layer.params), 10.5, "#555555", role="params"))
    for index, folded, detail in block.folded:
        what = (folded.type == "Activation" and folded.activation) or _FOLDED_NAMES[folded.type]
        text = f"+ {what}" + (f" {detail.removeprefix('rate ')}" if detail else "")
        if folded.params:
            text += f" · {_params_text(folded.params)}"
        lines.append(_Line(_clip(text, 34), 10.5, "#555555", role="folded", owner=index))
    return lines


# --------------------------------------------------------------------------- layout


def _rows(cells: list[_Cell]) -> list[list[_Cell]]:
    """The cells in as few rows as :data:`_MAX_ROW_WIDTH` allows, as even as can be: the
    narrowest width limit that still packs them into that many rows."""

    def pack(limit: float) -> list[list[_Cell]]:
        rows: list[list[_Cell]] = [[]]
        for cell in cells:
            if rows[-1] and _row_width([*rows[-1], cell]) > limit:
                rows.append([])
            rows[-1].append(cell)
        return rows

    count = len(pack(_MAX_ROW_WIDTH))
    low, high = max(c.width for c in cells), float(_MAX_ROW_WIDTH)
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if len(pack(middle)) > count else (low, middle)
    return pack(high)


def _row_width(row: list[_Cell]) -> float:
    return sum(c.width for c in row) + _GAP * (len(row) - 1)


def _draw_row(
    row: list[_Cell],
    left: float,
    top: float,
    previous: tuple[float, float, float] | None,
    items: list,
) -> tuple[float, tuple[float, float, float]]:
    """Draw one row from ``top``; connect it to the row before (whose last box's right
    edge, middle line and right edge are ``previous``). Return the row's bottom and the
    same three numbers for this row."""
    above = max(c.height / 2 + c.depth for c in row)
    below = max(c.height / 2 for c in row)
    middle = top + above
    label_top = middle + below + 12
    x = left
    ends: list[tuple[float, float]] = []  # each box's left and right edge on the middle line
    bottom = label_top
    for cell in row:
        x0 = x + (cell.width - cell.footprint) / 2
        items.append(_cell_group(cell, x0, middle, x + cell.width / 2, label_top))
        ends.append((x0, x0 + cell.footprint))
        bottom = max(bottom, label_top + sum(line.height for line in cell.lines))
        x += cell.width + _GAP
    for (_, start), (end, _) in zip(ends, ends[1:], strict=False):
        items.extend(_arrow(((start + 3, middle), (end - 3, middle))))
    if previous is not None:
        items.extend(_wrap_arrow(previous, top, left, ends[0][0], middle))
    right_edge = left + _row_width(row)
    return bottom, (ends[-1][1], middle, right_edge)


def _wrap_arrow(
    previous: tuple[float, float, float], top: float, left: float, end: float, middle: float
) -> list:
    """From the end of the row above, around its right side, back along the gap between
    the rows, into the first box of this row."""
    start, y0, right_edge = previous
    gutter = top - _ROW_GAP / 2
    out_x = right_edge + _GAP / 2
    in_x = left - _GAP / 2
    return _arrow(
        (
            (start + 3, y0),
            (out_x, y0),
            (out_x, gutter),
            (in_x, gutter),
            (in_x, middle),
            (end - 3, middle),
        )
    )


def _arrow(points: tuple[tuple[float, float], ...]) -> list:
    """A line through ``points`` ending in a head (the last segment is horizontal)."""
    (x1, _), (x2, y2) = points[-2], points[-1]
    direction = 1 if x2 >= x1 else -1
    shaft = (*points[:-1], (x2 - direction * _HEAD, y2))
    head = ((x2, y2), (x2 - direction * _HEAD, y2 - 3.5), (x2 - direction * _HEAD, y2 + 3.5))
    return [
        Polyline(shaft, _LINE, 1.4, role="arrow"),
        Polygon(head, _LINE, _LINE, 0.8, role="arrow-head"),
    ]


def _cell_group(cell: _Cell, x0: float, middle: float, centre: float, label_top: float):
    """The box (or bar) and its label, as one group per layer drawn or folded."""
    block = cell.block
    color = _color(block.type)
    edge = _shade(color, -0.45)
    y0, h, t, d = middle - cell.height / 2, cell.height, cell.thick, cell.depth
    faces = (
        Polygon(
            ((x0, y0), (x0 + t, y0), (x0 + t + d, y0 - d), (x0 + d, y0 - d)),
            _shade(color, 0.35),
            edge,
            role="top",
        ),
        Polygon(
            ((x0 + t, y0), (x0 + t + d, y0 - d), (x0 + t + d, y0 + h - d), (x0 + t, y0 + h)),
            _shade(color, -0.18),
            edge,
            role="side",
        ),
        Rect(x0, y0, t, h, color, edge, role="front"),
    )
    own: list = list(faces)
    folded: dict[int, list] = {}
    y = label_top
    for line in cell.lines:
        y += line.height
        text = Text(centre, y - line.size * 0.32, line.text, line.size, line.fill, "middle",
                    line.bold, line.role)  # fmt: skip
        (own if line.owner < 0 else folded.setdefault(line.owner, [])).append(text)
    groups = [_layer_group(block.main, block.index, own, block.shape)]
    for index, layer, _ in block.folded:
        groups.append(_layer_group(layer, index, folded.get(index, []), layer.output_shape))
    kind = "box" if block.is_box else "bar"
    return Group(tuple(groups), role=f"block {kind}", data=(("kind", kind),))


def _layer_group(layer: LayerResult | None, index: int, items: list, shape) -> Group:
    if layer is None:
        data = (("name", "input"), ("type", "Input"), ("output", format_shape(shape)))
        return Group(tuple(items), role="layer input", ident="input", data=data, title="input")
    data = (
        ("index", str(index)),
        ("name", layer.name),
        ("type", layer.type),
        ("output", format_shape(layer.output_shape)),
        ("params", str(layer.params)),
    )
    title = f"{layer.name} ({layer.type}): {format_shape(layer.output_shape)}"
    return Group(tuple(items), role="layer", ident=f"layer-{index}", data=data, title=title)


def _count(n: int) -> str:
    """``15,470,264,320 (15.47 G)``; a small number once."""
    short = format_count(n)
    return f"{n:,}" if short == str(n) else f"{n:,} ({short})"


def _totals(stack: StackResult) -> list[_Line]:
    """The totals of ``shape-calc``'s table, in its words."""
    heading = (
        f"{format_shape(stack.input_shape)} → {format_shape(stack.output_shape)}: "
        f"{len(stack.layers)} layer{'s' if len(stack.layers) != 1 else ''}"
    )
    return [
        _Line(heading, _TOTAL_SIZE, bold=True, role="total"),
        _Line(
            f"Total params: {stack.total_params:,} ({format_bytes(stack.param_bytes)} float32)"
            f" · trainable {stack.trainable_params:,}"
            f" · non-trainable {stack.non_trainable_params:,}",
            _TOTAL_SIZE,
            role="total",
        ),
        _Line(
            f"Total MACs: {_count(stack.total_macs)} per image"
            f" · activation memory {format_bytes(stack.activation_bytes)} per image (float32)",
            _TOTAL_SIZE,
            role="total",
        ),
    ]

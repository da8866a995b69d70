"""A small vector scene (boxes, polygons, lines, text) written as SVG or drawn as PNG.

One description, two renderers, so that a ``.svg`` and a ``.png`` of the same picture hold
the same shapes at the same places: :func:`to_svg` writes the SVG text itself (plain
Python; every shape keeps its ``role`` as a class and its group's metadata as ``data-``
attributes, so the file can be read back and checked); :func:`to_png` draws the same
primitives with Matplotlib's Agg canvas (imported when called; no pyplot, no global
backend switch). Coordinates are pixels, y pointing down, as in SVG; text is DejaVu Sans
(Matplotlib's own font), whose advance widths :func:`text_width` knows, so that a layout
can make room for its labels without a renderer.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "FONT_FAMILY",
    "MAX_PNG_PIXELS",
    "Group",
    "Polygon",
    "Polyline",
    "Rect",
    "Scene",
    "Text",
    "text_width",
    "to_png",
    "to_svg",
]

FONT_FAMILY = "DejaVu Sans, Verdana, Geneva, sans-serif"

MAX_PNG_PIXELS = 24_000_000
"""The most pixels a PNG gets: a larger scene is drawn at a smaller scale (about 100 MB of
RGBA at most while drawing)."""

# DejaVu Sans advance widths of the printable ASCII characters (space to ~), in hundredths
# of the font size; read from Matplotlib's copy of the font.
_ASCII_WIDTHS = (
    32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 34, 34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29, 29, 66,
    56, 86, 75, 79, 60, 79, 69, 63, 61, 73, 68, 99, 69, 61, 69, 39, 34, 39, 84, 50, 50, 61,
    63, 55, 63, 62, 35, 63, 63, 28, 28, 58, 28, 97, 63, 61, 63, 63, 41, 52, 39, 63, 59, 82,
    59, 59, 52, 64, 34, 64, 84,
)  # fmt: skip
_OTHER_WIDTHS = {"×": 84, "→": 84, "·": 32, "…": 100, "—": 100, "−": 84}
_BOLD = 1.1  # DejaVu Sans Bold is about this much wider


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width of ``text`` in DejaVu Sans at ``size`` pixels (a character it does not
    know counts as a wide one)."""
    total = 0
    for ch in text:
        code = ord(ch)
        total += _ASCII_WIDTHS[code - 32] if 32 <= code < 127 else _OTHER_WIDTHS.get(ch, 100)
    return total / 100 * size * (_BOLD if bold else 1.0)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    stroke: str = "none"
    stroke_width: float = 1.0
    role: str = ""


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    fill: str
    stroke: str = "none"
    stroke_width: float = 1.0
    role: str = ""


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    stroke: str
    stroke_width: float = 1.0
    role: str = ""


@dataclass(frozen=True)
class Text:
    """``y`` is the baseline; ``anchor`` is ``start``, ``middle`` or ``end``."""

    x: float
    y: float
    text: str
    size: float
    fill: str = "#222222"
    anchor: str = "start"
    bold: bool = False
    role: str = ""


@dataclass(frozen=True)
class Group:
    """Shapes that belong together; ``data`` becomes ``data-KEY`` attributes in the SVG."""

    items: tuple[Shape, ...]
    role: str = ""
    ident: str = ""
    data: tuple[tuple[str, str], ...] = ()
    title: str = ""


Shape = Rect | Polygon | Polyline | Text | Group


@dataclass(frozen=True)
class Scene:
    width: float
    height: float
    items: tuple[Shape, ...] = field(default_factory=tuple)
    background: str = "#ffffff"


# --------------------------------------------------------------------------- SVG


def _n(value: float) -> str:
    """A coordinate, short: ``12``, ``12.5``, ``12.33``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _points(points: tuple[tuple[float, float], ...]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _cls(role: str) -> str:
    return f" class={quoteattr(role)}" if role else ""


def _svg_shape(shape: Shape, out: list[str], indent: str) -> None:
    if isinstance(shape, Group):
        attrs = _cls(shape.role)
        if shape.ident:
            attrs += f" id={quoteattr(shape.ident)}"
        attrs += "".join(f" data-{key}={quoteattr(value)}" for key, value in shape.data)
        out.append(f"{indent}<g{attrs}>")
        if shape.title:
            out.append(f"{indent}  <title>{escape(shape.title)}</title>")
        for item in shape.items:
            _svg_shape(item, out, indent + "  ")
        out.append(f"{indent}</g>")
    elif isinstance(shape, Rect):
        out.append(
            f'{indent}<rect{_cls(shape.role)} x="{_n(shape.x)}" y="{_n(shape.y)}" '
            f'width="{_n(shape.width)}" height="{_n(shape.height)}" fill="{shape.fill}" '
            f'stroke="{shape.stroke}" stroke-width="{_n(shape.stroke_width)}"/>'
        )
    elif isinstance(shape, Polygon):
        out.append(
            f'{indent}<polygon{_cls(shape.role)} points="{_points(shape.points)}" '
            f'fill="{shape.fill}" stroke="{shape.stroke}" '
            f'stroke-width="{_n(shape.stroke_width)}" stroke-linejoin="round"/>'
        )
    elif isinstance(shape, Polyline):
        out.append(
            f'{indent}<polyline{_cls(shape.role)} points="{_points(shape.points)}" '
            f'fill="none" stroke="{shape.stroke}" stroke-width="{_n(shape.stroke_width)}" '
            'stroke-linejoin="round"/>'
        )
    else:
        weight = ' font-weight="bold"' if shape.bold else ""
        anchor = f' text-anchor="{shape.anchor}"' if shape.anchor != "start" else ""
        out.append(
            f'{indent}<text{_cls(shape.role)} x="{_n(shape.x)}" y="{_n(shape.y)}" '
            f'font-size="{_n(shape.size)}"{weight}{anchor} fill="{shape.fill}">'
            f"{escape(shape.text)}</text>"
        )


def to_svg(scene: Scene) -> str:
    """The scene as a standalone SVG document (UTF-8 text)."""
    w, h = _n(scene.width), _n(scene.height)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">',
        f'  <rect class="background" x="0" y="0" width="{w}" height="{h}" '
        f'fill="{scene.background}"/>',
    ]
    for item in scene.items:
        _svg_shape(item, out, "  ")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- PNG


_PT = 0.72  # points per pixel on a 100-dpi figure


def _flat(items: tuple[Shape, ...]):
    for item in items:
        if isinstance(item, Group):
            yield from _flat(item.items)
        else:
            yield item


def _draw(ax, shape: Shape) -> None:
    from matplotlib.patches import Polygon as MplPolygon
    from matplotlib.patches import Rectangle

    if isinstance(shape, Rect):
        ax.add_patch(
            Rectangle(
                (shape.x, shape.y),
                shape.width,
                shape.height,
                facecolor=shape.fill,
                edgecolor=shape.stroke,
                linewidth=shape.stroke_width * _PT if shape.stroke != "none" else 0,
                joinstyle="round",
            )
        )
    elif isinstance(shape, Polygon):
        ax.add_patch(
            MplPolygon(
                shape.points,
                closed=True,
                facecolor=shape.fill,
                edgecolor=shape.stroke,
                linewidth=shape.stroke_width * _PT if shape.stroke != "none" else 0,
                joinstyle="round",
            )
        )
    elif isinstance(shape, Polyline):
        xs, ys = zip(*shape.points, strict=True)
        ax.plot(
            xs,
            ys,
            color=shape.stroke,
            linewidth=shape.stroke_width * _PT,
            solid_joinstyle="round",
            solid_capstyle="butt",
        )
    elif isinstance(shape, Text):
        ax.text(
            shape.x,
            shape.y,
            shape.text,
            fontsize=shape.size * _PT,
            color=shape.fill,
            ha={"start": "left", "middle": "center", "end": "right"}[shape.anchor],
            va="baseline",
            fontweight="bold" if shape.bold else "normal",
            family="DejaVu Sans",
        )


def png_scale(scene: Scene, scale: float = 2.0) -> float:
    """``scale``, or less when the scene at ``scale`` would pass :data:`MAX_PNG_PIXELS`."""
    area = max(scene.width * scene.height, 1.0)
    return min(scale, math.sqrt(MAX_PNG_PIXELS / area))


def to_png(scene: Scene, *, scale: float = 2.0) -> bytes:
    """The scene as PNG bytes, ``scale`` pixels per scene pixel (2: sharp on a slide),
    drawn by Matplotlib's Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(scene.width / 100, scene.height / 100), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor(scene.background)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, scene.width)
    ax.set_ylim(scene.height, 0)
    ax.set_axis_off()
    for shape in _flat(scene.items):
        _draw(ax, shape)
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=100 * png_scale(scene, scale),
        facecolor=scene.background,
        metadata={"Software": "convkit"},
    )
    return buf.getvalue()

"""Montages: every feature map of a layer on one labelled picture, kernels drawn beside.

Drawn with OpenCV (no Matplotlib: a montage per image and layer must stay cheap in a batch
of thousands). A montage is a white sheet with a title line, the model's input as the
first panel, then one panel per map: its title (filter number and kernel name), the map as
the 8-bit picture written for it, and, when the map belongs to a small kernel (at most
:data:`MAX_KERNEL` on a side), that kernel enlarged beside it, each weight a cell
coloured on a diverging scale (red positive, blue negative, white zero; the scale is
symmetric, set by the largest absolute weight of that kernel) with its value written in
the cell when it fits. Small maps are enlarged by whole factors with nearest-neighbour
sampling (each activation a visible block); large ones are shrunk with area averaging so
the sheet stays within about :data:`MAX_WIDTH` pixels.

With a shared scale (:func:`diverging`), every map of the layer is coloured on one
symmetric scale, blue for negative, mid-gray for zero, red for positive, and a colour bar
under the maps gives the values at its ends and middle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convkit.arithmetic.formatting import format_shape
from convkit.heavy import import_cv2
from convkit.image.ops import CHANNEL_NAMES

MAX_KERNEL = 15
"""Kernels up to this size (on each side) are drawn beside their maps."""

MAX_PANELS = 256
"""A montage draws at most this many maps (the first ones), so that a layer of a hundred
thousand filters does not make a sheet of gigabytes; every map is still written alone."""

MAX_WIDTH = 1800
MIN_TILE = 240
MAX_TILE = 360
MARGIN = 16
GAP = 14
LABEL_H = 22
FONT_SCALE = 0.5
INK = (40, 40, 40)
FAINT = (110, 110, 110)
FRAME = (170, 170, 170)


@dataclass
class Panel:
    """One picture of a montage: ``pixels`` (8-bit gray or BGR), its title, and the kernel
    to draw beside it: ``(KH, KW)``, or ``(KH, KW, 3)`` for one slice per colour channel."""

    pixels: np.ndarray
    label: str
    kernel: np.ndarray | None = None


def drawable_kernel(kernel: np.ndarray) -> np.ndarray | None:
    """The part of a ``(KH, KW, C_in)`` filter worth drawing, or None.

    One 2-D matrix when the filter has one input channel or the same matrix on each (a
    ``-k`` kernel on a colour image); the three slices for three different colour
    channels; None for larger kernels and for deeper layers (more than 3 input channels).
    """
    k = np.asarray(kernel, dtype=np.float32)
    if k.ndim == 2:
        k = k[:, :, np.newaxis]
    if max(k.shape[0], k.shape[1]) > MAX_KERNEL or k.shape[2] > 3:
        return None
    if k.shape[2] == 1 or all(np.array_equal(k[:, :, 0], k[:, :, c]) for c in range(k.shape[2])):
        return k[:, :, 0]
    if k.shape[2] == 3:
        return k
    return None


NEGATIVE = np.array([200, 90, 30], np.float64)
POSITIVE = np.array([40, 40, 210], np.float64)
MID_GRAY = np.array([128, 128, 128], np.float64)
BAR_W = 256
BAR_H = 12


def _diverging_lut() -> np.ndarray:
    """256 BGR colours from blue (-1) through mid-gray (0, entry 127.5) to red (+1)."""
    t = np.linspace(-1.0, 1.0, 256)[:, np.newaxis]
    lut = np.where(
        t < 0, MID_GRAY + (NEGATIVE - MID_GRAY) * -t, MID_GRAY + (POSITIVE - MID_GRAY) * t
    )
    return np.rint(lut).astype(np.uint8)


_LUT = _diverging_lut()


def diverging(values: np.ndarray, top: float) -> np.ndarray:
    """A 2-D map as BGR on the symmetric scale -``top``..+``top``: blue below zero,
    mid-gray at zero, red above (a zero ``top``: all gray)."""
    v = np.asarray(values, dtype=np.float64)
    t = np.clip(v / top, -1.0, 1.0) if top > 0 else np.zeros_like(v)
    return _LUT[np.rint((t + 1.0) * 127.5).astype(np.intp)]


def _format_value(v: float) -> str:
    """A bar's end value, short: ``+1,968``, ``-12.5``, ``+0.031``."""
    if abs(v) >= 100:
        return f"{v:+,.0f}"
    return f"{v:+.3g}"


def _scale_bar(top: float, width: int) -> np.ndarray:
    """The colour bar of a shared scale, labelled at both ends and at zero."""
    cv2 = import_cv2()
    bar_w = min(BAR_W, width)
    out = np.full((BAR_H + 20, width, 3), 255, np.uint8)
    ramp = _LUT[np.linspace(0, 255, bar_w).round().astype(np.intp)]
    out[:BAR_H, :bar_w] = ramp[np.newaxis, :, :]
    cv2.rectangle(out, (0, 0), (bar_w - 1, BAR_H - 1), FRAME, 1)
    labels = [(-top, 0.0), (0.0, 0.5), (top, 1.0)]
    for value, at in labels:
        text = "0" if value == 0 else _format_value(value)
        w = _text_width(text, 0.4)
        x = min(max(0, at * bar_w - w / 2), bar_w - w)
        _put(out, text, x, BAR_H + 15, scale=0.4, color=FAINT)
    return out


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _text_width(text: str, scale: float = FONT_SCALE, thickness: int = 1) -> int:
    from convkit.nn import glyphs

    if glyphs.needs_font(text):
        return glyphs.text_width(text, scale)
    cv2 = import_cv2()
    (w, _), _ = cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    return w


def _fit_text(text: str, width: int, scale: float = FONT_SCALE) -> str:
    if _text_width(text, scale) <= width:
        return text
    while text and _text_width(text + "...", scale) > width:
        text = text[:-1]
    return text + "..."


def _put(canvas, text, x, y, *, scale=FONT_SCALE, color=INK, thickness=1) -> None:
    """``text`` with its baseline's left end at ``(x, y)``: OpenCV's Hershey font for ASCII,
    a TrueType font for the rest (:mod:`convkit.nn.glyphs`)."""
    from convkit.nn import glyphs

    if glyphs.needs_font(text):
        glyphs.put_text(canvas, text, x, y, scale, color)
        return
    cv2 = import_cv2()
    cv2.putText(
        canvas,
        _ascii(text),
        (int(x), int(y)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        color,
        thickness,
        cv2.LINE_AA,
    )


def _format_weight(v: float) -> str:
    if abs(v - round(v)) < 1e-6:
        return str(int(round(v)))
    text = f"{v:.2f}".replace("0.", ".", 1) if abs(v) < 1 else f"{v:.1f}"
    return text


def kernel_patch(matrix: np.ndarray, cell: int) -> np.ndarray:
    """A 2-D kernel as a BGR picture: one ``cell``-pixel square per weight, diverging
    colours (red > 0, blue < 0, white 0), the values written in when they fit."""
    cv2 = import_cv2()
    m = np.asarray(matrix, dtype=np.float64)
    kh, kw = m.shape
    top = float(np.abs(m).max()) or 1.0
    t = np.clip(m / top, -1.0, 1.0)
    # White at 0; towards (B, G, R) = (40, 40, 210) for +1 and (200, 90, 30) for -1.
    pos = np.array([40, 40, 210], np.float64)
    neg = np.array([200, 90, 30], np.float64)
    white = np.array([255, 255, 255], np.float64)
    tt = t[:, :, np.newaxis]
    colors = np.where(tt >= 0, white + (pos - white) * tt, white + (neg - white) * (-tt))
    patch = np.repeat(np.repeat(colors, cell, axis=0), cell, axis=1).astype(np.uint8)
    grid = (200, 200, 200)
    for i in range(1, kh):
        patch[i * cell - 1 : i * cell, :] = grid
    for j in range(1, kw):
        patch[:, j * cell - 1 : j * cell] = grid
    patch = cv2.copyMakeBorder(patch, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    texts = [[_format_weight(v) for v in row] for row in m]
    scale = 0.34 if cell < 26 else 0.4
    if cell >= 16 and all(_text_width(s, scale) <= cell - 3 for row in texts for s in row):
        for i in range(kh):
            for j in range(kw):
                s = texts[i][j]
                w = _text_width(s, scale)
                dark = abs(t[i, j]) > 0.55
                _put(
                    patch,
                    s,
                    1 + j * cell + (cell - w) / 2,
                    1 + i * cell + cell / 2 + 4,
                    scale=scale,
                    color=(255, 255, 255) if dark else INK,
                )
    return patch


def _kernel_block(kernel: np.ndarray) -> np.ndarray:
    """The picture drawn beside a map: one patch, or three (R, G, B) stacked."""
    caption = f"kernel {format_shape(kernel.shape, 'x')}"
    kh, kw = kernel.shape[:2]
    if kernel.ndim == 2:
        cell = int(np.clip(96 // max(kh, kw), 6, 28))
        return _caption_above(kernel_patch(kernel, cell), caption)
    cell = int(np.clip(54 // max(kh, kw), 4, 18))
    parts = []
    for c, name in enumerate(CHANNEL_NAMES[3]):
        patch = kernel_patch(kernel[:, :, c], cell)
        label = np.full((patch.shape[0], 16, 3), 255, np.uint8)
        _put(label, name, 2, patch.shape[0] / 2 + 5, scale=0.4, color=FAINT)
        parts.append(np.hstack([label, patch]))
        parts.append(np.full((4, patch.shape[1] + 16, 3), 255, np.uint8))
    return _caption_above(np.vstack(parts[:-1]), caption)


def _caption_above(block: np.ndarray, caption: str) -> np.ndarray:
    width = max(block.shape[1], _text_width(caption, 0.4) + 2)
    out = np.full((block.shape[0] + 16, width, 3), 255, np.uint8)
    _put(out, caption, 0, 11, scale=0.4, color=FAINT)
    out[16:, : block.shape[1]] = block
    return out


def _as_bgr(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, np.newaxis], 3, axis=2)
    return pixels[:, :, :3]


def _scaled(pixels: np.ndarray, factor: float, box: tuple[int, int]) -> np.ndarray:
    """``pixels`` resized by ``factor`` (whole factors up: nearest; down: area), capped to
    fit inside ``box`` (height, width)."""
    cv2 = import_cv2()
    h, w = pixels.shape[:2]
    factor = min(factor, box[0] / h, box[1] / w)
    if factor >= 1:
        factor = max(1, int(factor))
        if factor == 1:
            return pixels
        return cv2.resize(pixels, (w * factor, h * factor), interpolation=cv2.INTER_NEAREST)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def tile_factor(height: int, width: int, columns: int, extra: int) -> float:
    """How much a ``height x width`` map is enlarged (>= 1, a whole number) or shrunk so
    that ``columns`` panels, each ``extra`` pixels wider than its map, fit the sheet."""
    long_side = max(height, width)
    room = (MAX_WIDTH - 2 * MARGIN - (columns - 1) * GAP) / columns - extra
    target = min(MAX_TILE, max(room, 48))
    if width <= 0:
        return 1.0
    if long_side < MIN_TILE:
        factor = max(1, math.ceil(MIN_TILE / long_side))
        while factor > 1 and width * factor > target:
            factor -= 1
        return float(factor)
    return min(1.0, target / width, MAX_TILE / long_side)


def layer_montage(
    panels: Sequence[Panel],
    *,
    title: str = "",
    note: str = "",
    input_panel: Panel | None = None,
    shared_scale: float | None = None,
) -> np.ndarray:
    """One BGR sheet: title, the input panel, then every map panel in a grid; with
    ``shared_scale`` (the largest absolute value of the maps, drawn with :func:`diverging`),
    a colour bar for it under the grid."""
    cv2 = import_cv2()
    blocks = {id(p): _kernel_block(p.kernel) for p in panels if p.kernel is not None}
    kernel_w = max((b.shape[1] for b in blocks.values()), default=0)
    kernel_h = max((b.shape[0] for b in blocks.values()), default=0)
    extra = kernel_w + 10 if kernel_w else 0
    everything = ([input_panel] if input_panel is not None else []) + list(panels)
    n = len(everything)
    columns = n if n <= 3 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    mh, mw = panels[0].pixels.shape[:2] if panels else everything[0].pixels.shape[:2]
    factor = tile_factor(mh, mw, columns, extra)
    tile_h, tile_w = max(1, round(mh * factor)), max(1, round(mw * factor))
    if factor >= 1:
        tile_h, tile_w = mh * int(factor), mw * int(factor)
    cell_w = max(tile_w + extra, 96)
    cell_h = LABEL_H + max(tile_h, kernel_h)

    title_h = 40 if title else MARGIN
    note_h = 30 if note else 0
    bar_h = BAR_H + 20 + 8 if shared_scale is not None else 0
    width = 2 * MARGIN + columns * cell_w + (columns - 1) * GAP
    text_w = max(_text_width(title, 0.55), _text_width(note, 0.42)) + 2 * MARGIN
    width = max(width, min(text_w, MAX_WIDTH), 480)
    height = title_h + rows * cell_h + (rows - 1) * GAP + bar_h + note_h + MARGIN
    sheet = np.full((height, width, 3), 255, np.uint8)
    if title:
        _put(sheet, _fit_text(title, width - 2 * MARGIN, 0.55), MARGIN, 26, scale=0.55)

    for k, panel in enumerate(everything):
        r, c = divmod(k, columns)
        x0 = MARGIN + c * (cell_w + GAP)
        y0 = title_h + r * (cell_h + GAP)
        is_input = panel is input_panel
        if is_input:
            # The input is usually larger than the maps: fit it into the same box.
            ih, iw = panel.pixels.shape[:2]
            f = min(tile_h / ih, (cell_w if not extra else tile_w) / iw)
            f = float(int(f)) if f >= 1 else f
            pixels = _scaled(panel.pixels, f, (tile_h, cell_w))
        else:
            pixels = _scaled(panel.pixels, factor, (tile_h, tile_w))
        pixels = _as_bgr(pixels)
        label_color = FAINT if is_input else INK
        _put(sheet, _fit_text(panel.label, cell_w), x0, y0 + 15, color=label_color)
        ty = y0 + LABEL_H
        ph, pw = pixels.shape[:2]
        sheet[ty : ty + ph, x0 : x0 + pw] = pixels
        cv2.rectangle(sheet, (x0 - 1, ty - 1), (x0 + pw, ty + ph), FRAME, 1)
        block = blocks.get(id(panel))
        if block is not None:
            bx = x0 + tile_w + 10
            bh, bw = block.shape[:2]
            sheet[ty : ty + bh, bx : bx + bw] = block
    if shared_scale is not None:
        bar = _scale_bar(shared_scale, width - 2 * MARGIN)
        top = title_h + rows * cell_h + (rows - 1) * GAP + 8
        sheet[top : top + bar.shape[0], MARGIN : MARGIN + bar.shape[1]] = bar
    if note:
        _put(
            sheet,
            _fit_text(note, width - 2 * MARGIN, 0.42),
            MARGIN,
            height - MARGIN - 4,
            scale=0.42,
            color=FAINT,
        )
    return sheet

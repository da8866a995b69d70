"""Text beyond ASCII on montages: a file named ``café.png`` or ``Ωmega.png`` shows as such.

OpenCV's Hershey fonts know only ASCII, so a montage's text is drawn with them when it is
ASCII (fast, and unchanged from before) and otherwise with DejaVu Sans, the TrueType font
Matplotlib (a convkit dependency) ships, through Pillow (Matplotlib's own dependency).
DejaVu covers Latin, Greek, Cyrillic and much more, though not Chinese or Japanese: a
character it lacks is drawn as ``?``, as is everything when the font cannot be found.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

# Hershey simplex at scale 1 is about as tall as DejaVu Sans at this many pixels.
PIXELS_PER_SCALE = 30


@functools.cache
def _font_file() -> str | None:
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return str(path)
    return None


@functools.cache
def _covered() -> frozenset[int]:
    """The code points DejaVu Sans has glyphs for (empty when it cannot be read)."""
    path = _font_file()
    if path is None:
        return frozenset()
    try:
        from fontTools.ttLib import TTFont

        with TTFont(path, lazy=True) as font:
            return frozenset(font.getBestCmap() or ())
    except Exception:  # no fontTools, an unreadable font: fall back to ASCII
        return frozenset()


@functools.cache
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(_font_file(), size)


def needs_font(text: str) -> bool:
    """Whether ``text`` must be drawn with the TrueType font (it has non-ASCII characters
    the font can draw)."""
    return not text.isascii() and any(ord(c) in _covered() for c in text if not c.isascii())


def drawable(text: str) -> str:
    """``text`` with the characters no font here can draw replaced by ``?``."""
    covered = _covered()
    return "".join(c if c.isascii() or ord(c) in covered else "?" for c in text)


def text_width(text: str, scale: float) -> int:
    """The width in pixels of ``text`` (with :func:`needs_font`) at Hershey ``scale``."""
    return int(round(_font(_size(scale)).getlength(drawable(text))))


def put_text(canvas: np.ndarray, text: str, x: float, y: float, scale: float, color) -> None:
    """Draw ``text`` on the BGR ``canvas`` with its baseline's left end at ``(x, y)``, as
    ``cv2.putText`` places it, anti-aliased in ``color``."""
    from PIL import Image, ImageDraw

    font = _font(_size(scale))
    text = drawable(text)
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    w, h = right - left + 2, bottom - top + 2
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, fill=255, font=font, anchor="ls")
    alpha = np.asarray(mask, np.float32)[:, :, np.newaxis] / 255.0
    x0, y0 = int(round(x)) + left - 1, int(round(y)) + top - 1
    # Clip to the canvas.
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, canvas.shape[1]), min(y0 + h, canvas.shape[0])
    if cx1 <= cx0 or cy1 <= cy0:
        return
    a = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    ink = np.array(color, np.float32)[: canvas.shape[2]]
    canvas[cy0:cy1, cx0:cx1] = np.rint(region * (1 - a) + ink * a).astype(np.uint8)


def _size(scale: float) -> int:
    return max(6, int(round(scale * PIXELS_PER_SCALE)))

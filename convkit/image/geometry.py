"""Resize targets as people write them: ``512`` (512x512), ``640x480`` (exact), ``640x``
and ``x480`` (the other side follows the aspect ratio), ``50%``.

The forms of ImageMagick's geometry that a CNN tutorial needs; ``N`` stays the square
``NxN`` of the tutorials' ``cv2.resize(img, (512, 512))``. The other side of ``Wx`` and
``xH``, and both sides of ``P%``, are rounded half up (as ImageMagick does), at least 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from convkit.errors import ImageTooLargeError, UsageError

_FORMS = re.compile(
    r"^\s*(?:(?P<pct>\d+(?:\.\d+)?)\s*%"
    r"|(?P<w>\d+)?\s*(?P<x>[x×X])?\s*(?P<h>\d+)?)\s*$"
)


@dataclass(frozen=True)
class Resize:
    """A resize target: ``width`` and/or ``height`` in pixels, or a ``percent``."""

    width: int | None = None
    height: int | None = None
    percent: Fraction | None = None

    @property
    def is_exact(self) -> bool:
        return self.percent is None and self.width is not None and self.height is not None

    def target(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` for an image of ``width x height``."""
        if self.percent is not None:
            return _scaled(width, self.percent / 100), _scaled(height, self.percent / 100)
        if self.width is not None and self.height is not None:
            return self.width, self.height
        if self.width is not None:
            return self.width, _scaled(height, Fraction(self.width, width))
        return _scaled(width, Fraction(self.height, height)), self.height

    def text(self) -> str:
        if self.percent is not None:
            return f"{self.percent}%"
        return f"{self.width or ''}x{self.height or ''}"


def _scaled(n: int, factor: Fraction) -> int:
    return max(1, int(n * factor + Fraction(1, 2)))  # half up, like ImageMagick


def parse_resize(text: str, param: str = "resize") -> Resize:
    """``"512"``, ``"640x480"``, ``"640x"``, ``"x480"`` or ``"50%"`` -> :class:`Resize`."""
    match = _FORMS.match(text)
    problem = None
    if not match or not (match["pct"] or match["w"] or match["h"]):
        problem = "is not a size"
    elif match["pct"]:
        percent = Fraction(match["pct"])
        if percent <= 0:
            problem = "must be more than 0%"
        else:
            return Resize(percent=percent)
    else:
        w = int(match["w"]) if match["w"] else None
        h = int(match["h"]) if match["h"] else None
        if not match["x"]:
            h = w if w is not None else h  # a bare N is NxN
        if (w is not None and w < 1) or (h is not None and h < 1):
            problem = "needs positive sizes"
        elif w is not None or h is not None:
            return Resize(width=w, height=h)
        else:
            problem = "is not a size"
    raise UsageError(
        f"`{param}` {text!r} {problem}: give N (NxN), WxH, Wx or xH (the other side keeps "
        "the aspect ratio), or P%"
    )


def check_budget(width: int, height: int, max_pixels: int, what: str) -> None:
    """A size convkit computes counts like a decoded one: refused before it is allocated.
    ``what`` names it in the message (``"the resized image 640x480"``)."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what} = {width * height:,} pixels is over the limit of {max_pixels:,} "
            "(raise it with `max_pixels`)"
        )

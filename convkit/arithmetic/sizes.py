"""Sizes written as text: ``"3"``, ``"3x5"``, ``"224x224x3"`` (also ``×``, ``X`` or ``,``).

The one parser of sizes for every command (``--kernel-size 3x5``, ``--resize 512x384``,
``--input 224x224x3``, ``--image-size 32x32``, ``--padding 1x2``). Errors name the
parameter, in backticks (see :mod:`convkit.errors`), and what was received.
"""

from __future__ import annotations

import re

from convkit.errors import UsageError

_DIMS = re.compile(r"^\s*\(?\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?(?:[x×X,]\s*(\d+)\s*)?\)?\s*$")


def _numbers(text: str) -> list[int] | None:
    match = _DIMS.match(text)
    if not match:
        return None
    return [int(g) for g in match.groups() if g is not None]


def parse_pair(
    text: str, param: str, *, allow_zero: bool = False, example: str = "3 or 3x5"
) -> tuple[int, int]:
    """``"K"`` -> ``(K, K)``; ``"AxB"`` -> ``(A, B)``. Positive unless ``allow_zero``."""
    numbers = _numbers(text)
    low = 0 if allow_zero else 1
    if numbers is not None and len(numbers) <= 2 and min(numbers) >= low:
        return (numbers[0], numbers[-1])
    what = "non-negative" if allow_zero else "positive"
    raise UsageError(
        f"`{param}` must be a {what} integer N or a pair AxB, like {example}, got {text!r}"
    )


def parse_padding(text: str, param: str) -> str | int | tuple[int, int]:
    """``"valid"``, ``"same"`` or ``"full"``; ``"P"`` -> ``P`` zeros on each side;
    ``"PHxPW"`` -> ``(PH, PW)``, one for the height and one for the width."""
    word = text.strip().lower()
    if word in ("valid", "same", "full"):
        return word
    numbers = _numbers(text)
    if numbers is not None and len(numbers) <= 2:
        return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    raise UsageError(
        f"`{param}` must be valid, same, full, a number P (zero padding on each side) or a "
        f"pair PHxPW, got {text!r}"
    )


def parse_dims(text: str, param: str) -> tuple[int, int, int | None]:
    """``"N"``, ``"HxW"`` or ``"HxWxC"`` -> ``(H, W, C or None)``, all positive."""
    numbers = _numbers(text)
    if numbers is not None and min(numbers) >= 1:
        if len(numbers) == 1:
            return numbers[0], numbers[0], None
        if len(numbers) == 2:
            return numbers[0], numbers[1], None
        return numbers[0], numbers[1], numbers[2]
    raise UsageError(
        f"`{param}` must be N, HxW or HxWxC with positive integers, like 512 or 224x224x3, "
        f"got {text!r}"
    )

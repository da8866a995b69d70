"""Sizes written as text: ``"3"``, ``"3x5"``, ``"224x224x3"`` (also ``×``, ``X`` or ``,``).

The one parser of sizes for every command (``--kernel-size 3x5``, ``--resize 512x384``,
``--input 224x224x3``, ``--image-size 32x32``, ``--padding 1x2``), and of amounts of memory
(``--max-memory 4G``). Errors name the parameter, in backticks (see :mod:`convkit.errors`),
and what was received. Every number is at most
:data:`~convkit.arithmetic.limits.MAX_INT` (``2**63 − 1``, the largest tensor size).
"""

from __future__ import annotations

import re

from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT, clip_text
from convkit.errors import UsageError

_DIMS = re.compile(r"^\s*\(?\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?(?:[x×X,]\s*(\d+)\s*)?\)?\s*$")
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|(b))?\s*$", re.IGNORECASE)
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _numbers(text: str, param: str) -> list[int] | None:
    match = _DIMS.match(text)
    if not match:
        return None
    numbers = [_bounded(g, text, param) for g in match.groups() if g is not None]
    return numbers


def _bounded(digits: str, text: str, param: str) -> int:
    """The integer ``digits``, refused past :data:`MAX_INT` (checked on the digits first:
    Python refuses to read an integer of more than 4,300 digits)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) <= len(str(MAX_INT)) and int(significant) <= MAX_INT:
        return int(significant)
    raise UsageError(f"`{param}` must be at most {MAX_INT_TEXT}, got {_shown(text)}")


def _shown(text: str) -> str:
    return repr(clip_text(text, 40))


def parse_bytes(text: str, param: str) -> int:
    """An amount of memory: ``"4G"``, ``"512M"``, ``"1.5GiB"``, ``"100000"`` (bytes);
    ``K``, ``M``, ``G``, ``T`` (optionally followed by ``B`` or ``iB``) are powers of 1024.
    Positive, at most :data:`MAX_INT` bytes."""
    match = _BYTES.match(text)
    if match and len(match.group(1)) <= 40:
        unit = _UNITS[match.group(2).lower()] if match.group(2) else 1
        whole, _, fraction = match.group(1).partition(".")
        value = (int(whole + fraction) * unit) // 10 ** len(fraction)
        if 0 < value <= MAX_INT:
            return value
    raise UsageError(
        f"`{param}` must be a positive amount of memory, in bytes or with a unit K, M, G or T "
        f"(powers of 1024), like 4G or 512M, at most {MAX_INT_TEXT} bytes; got {_shown(text)}"
    )


def parse_pair(
    text: str, param: str, *, allow_zero: bool = False, example: str = "3 or 3x5"
) -> tuple[int, int]:
    """``"K"`` -> ``(K, K)``; ``"AxB"`` -> ``(A, B)``. Positive unless ``allow_zero``."""
    numbers = _numbers(text, param)
    low = 0 if allow_zero else 1
    if numbers is not None and len(numbers) <= 2 and min(numbers) >= low:
        return (numbers[0], numbers[-1])
    what = "non-negative" if allow_zero else "positive"
    raise UsageError(
        f"`{param}` must be a {what} integer N or a pair AxB, like {example}, got {_shown(text)}"
    )


def parse_padding(text: str, param: str) -> str | int | tuple[int, int]:
    """``"valid"``, ``"same"`` or ``"full"``; ``"P"`` -> ``P`` zeros on each side;
    ``"PHxPW"`` -> ``(PH, PW)``, one for the height and one for the width."""
    word = text.strip().lower()
    if word in ("valid", "same", "full"):
        return word
    numbers = _numbers(text, param)
    if numbers is not None and len(numbers) <= 2:
        return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    raise UsageError(
        f"`{param}` must be valid, same, full, a number P (zero padding on each side) or a "
        f"pair PHxPW, got {_shown(text)}"
    )


def parse_dims(text: str, param: str) -> tuple[int, int, int | None]:
    """``"N"``, ``"HxW"`` or ``"HxWxC"`` -> ``(H, W, C or None)``, all positive."""
    numbers = _numbers(text, param)
    if numbers is not None and min(numbers) >= 1:
        if len(numbers) == 1:
            return numbers[0], numbers[0], None
        if len(numbers) == 2:
            return numbers[0], numbers[1], None
        return numbers[0], numbers[1], numbers[2]
    raise UsageError(
        f"`{param}` must be N, HxW or HxWxC with positive integers, like 512 or 224x224x3, "
        f"got {_shown(text)}"
    )


def parse_layer_sizes(
    kernel: str | None,
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    output_padding: str | None,
) -> dict:
    """The size flags of one layer as text (``shape-calc``'s and ``animate``'s ``--kernel-size
    3x5 --strides 2 --padding same --dilation 1 --output-padding 1``), parsed into the
    keyword arguments of :func:`convkit.arithmetic.explain.single_layer`: ``kernel``,
    ``stride``, ``padding``, ``dilation``, ``output_padding``. What is not given (None) takes
    the layer's default; errors name those parameters."""
    return {
        "kernel": None if kernel is None else parse_pair(kernel, "kernel"),
        "stride": None if stride is None else parse_pair(stride, "stride"),
        "padding": "valid" if padding is None else parse_padding(padding, "padding"),
        "dilation": 1 if dilation is None else parse_pair(dilation, "dilation"),
        "output_padding": None
        if output_padding is None
        else parse_pair(output_padding, "output_padding", allow_zero=True),
    }

"""The bounds of the arithmetic and of the spec language, and numbers shown safely.

Python integers have no size limit, but nothing convkit describes can be larger than what a
tensor can hold: TensorFlow keeps shapes as signed 64-bit integers, so every size, count or
argument a user gives (``--input``, ``conv2d(N, K)``, ``upsampling2d(U)``) and every output
dimension a layer computes is at most :data:`MAX_INT` (``2**63 − 1``). Whatever a stack
derives from those (parameters, MACs, memory: products of a few such numbers) then stays
far inside what a ``float`` holds, so every figure prints. A spec is bounded in length,
layers and nesting, so that parsing it costs little whatever it holds.

:func:`show_int` and :func:`clip_text` echo a number or a text in a message without
printing (or failing to print: Python refuses to turn an integer of more than 4,300 digits
into text) all of it.
"""

from __future__ import annotations

import math

__all__ = [
    "MAX_INT",
    "MAX_INT_TEXT",
    "MAX_LAYERS",
    "MAX_NESTING",
    "MAX_SPEC_CHARS",
    "clip_text",
    "digit_count",
    "show_int",
]

MAX_INT = 2**63 - 1
"""The largest size, count or integer argument: TensorFlow's shapes are 64-bit."""

MAX_INT_TEXT = f"2**63 − 1 = {MAX_INT}"
""":data:`MAX_INT` as messages write it."""

MAX_SPEC_CHARS = 1 << 20
"""The longest spec, in characters (a spec file: in bytes)."""

MAX_LAYERS = 1000
"""The most layers one spec may have."""

MAX_NESTING = 32
"""How deep tuples may nest in a spec value: ``((3, 3), (1, 1))`` is 2."""

_SHOWN_DIGITS = 30


def digit_count(n: int) -> int:
    """How many decimal digits ``n`` has (its sign aside), without turning it into text."""
    n = abs(n)
    if n < 10:
        return 1
    digits = int(math.log10(n)) + 1
    if 10 ** (digits - 1) > n:  # log10 rounded up just below a power of ten
        digits -= 1
    elif 10**digits <= n:  # or down at one
        digits += 1
    return digits


def show_int(n: int) -> str:
    """``n`` as text; one of more than 30 digits as its first 20 digits and its length
    (``"99999999999999999999…(400 digits)"``), computed without turning it all into text."""
    digits = digit_count(n)
    if digits <= _SHOWN_DIGITS:
        return str(n)
    head = abs(n) // 10 ** (digits - 20)
    return f"{'-' if n < 0 else ''}{head}…({digits} digits)"


def clip_text(text: str, limit: int = 60) -> str:
    """``text`` whole when short, else its start, ``…`` and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text):,} characters)"

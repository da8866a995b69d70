"""Numbers, sizes and shapes as ``shape-calc`` writes them."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from convkit.arithmetic.formulas import Padding
from convkit.arithmetic.limits import digit_count, show_int

__all__ = [
    "format_bytes",
    "format_count",
    "format_dims",
    "format_padding",
    "format_rf",
    "format_shape",
    "shape_tuple",
]


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``; past 1024 PiB, ``"1.2e+21 B"``."""
    if n >= 1 << 60:
        return f"{_scientific(n)} B"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(n: int) -> str:
    """``15_470_264_320`` -> ``"15.47 G"``; small numbers stay exact; from ``10**15``,
    ``"1.23e+15"``."""
    if n >= 10**15:
        return _scientific(n)
    for size, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _scientific(n: int) -> str:
    """A large positive integer as ``"1.23e+45"`` (rounded down), without turning it into a
    ``float`` (it may not fit one)."""
    exponent = digit_count(n) - 1
    head = n // 10 ** max(exponent - 2, 0)  # its first three digits, rounded down
    return f"{head // 100}.{head % 100:02d}e+{exponent}"


def format_shape(shape: Sequence[int | None], sep: str = "×") -> str:
    """``(224, 224, 3)`` -> ``"224×224×3"`` (or ``"224x224x3"`` with ``sep="x"``); an
    unknown dimension (None) is ``?``; a huge one is shortened (:func:`show_int`)."""
    return sep.join("?" if v is None else show_int(v) for v in shape)


def shape_tuple(shape: Sequence[int | None]) -> str:
    """A shape as Python writes the tuple, for "Received: ..." messages: ``(4, 4, 1)``,
    ``(49,)``."""
    texts = [str(v) if v is None else show_int(v) for v in shape]
    return "(" + ", ".join(texts) + ("," if len(shape) == 1 else "") + ")"


def format_dims(pair: int | Sequence[object]) -> str:
    """A size as the layer-spec language writes it: ``3`` or ``(3, 3)`` -> ``"3"``,
    ``(3, 5)`` -> ``"3x5"``."""
    if isinstance(pair, int):
        return str(pair)
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def format_padding(padding: Padding) -> str:
    """``"same"``, ``2`` or ``(1, 2)`` -> ``"same"``, ``"2"``, ``"1x2"``."""
    if isinstance(padding, (str, int)):
        return str(padding)
    return f"{padding[0]}x{padding[1]}"


def format_rf(values: Sequence[Fraction]) -> str:
    """A receptive-field size or jump of (height, width): ``"3"``, ``"0.5"`` or ``"3×5"``."""
    texts = [str(v.numerator) if v.denominator == 1 else f"{float(v):.3g}" for v in values]
    return texts[0] if texts[0] == texts[1] else "×".join(texts)

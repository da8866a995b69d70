"""How the feature-map modules write shapes and counts in titles, tables and messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convkit.arithmetic.formatting import format_dims, format_shape

if TYPE_CHECKING:
    from convkit.arithmetic.spec import LayerSpec


def plural(count: int, word: str) -> str:
    """``"1 filter"``, ``"4 filters"``."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def describe_layer(spec: LayerSpec) -> str:
    """A short description of one spec layer: ``Conv2D 4 filters 4x4, valid``,
    ``MaxPooling2D 2x2, stride 1``."""
    kw = spec.kwargs
    pooling = spec.type in ("MaxPooling2D", "AveragePooling2D")
    parts = [spec.type]
    if spec.type in ("Conv2D", "Conv2DTranspose", "SeparableConv2D"):
        parts.append(f"{plural(kw['filters'], 'filter')} {_window(kw['kernel_size'])}")
    elif spec.type == "DepthwiseConv2D":
        parts.append(_window(kw["kernel_size"]))
    elif pooling:
        parts.append(_window(kw["pool_size"]))
    elif spec.type == "Activation":
        parts.append(str(kw["activation"]))
    extras = []
    plain_stride = kw.get("pool_size") if pooling else (1, 1)
    if kw.get("strides") not in (None, plain_stride):
        extras.append(f"stride {format_dims(_as_pair(kw['strides']))}")
    if isinstance(kw.get("padding"), str):
        extras.append(kw["padding"])
    if kw.get("dilation_rate") not in (None, (1, 1)):
        extras.append(f"dilation {format_dims(_as_pair(kw['dilation_rate']))}")
    if kw.get("activation") and spec.type != "Activation":
        extras.append(str(kw["activation"]))
    if kw.get("use_bias") is False:
        extras.append("no bias")
    text = " ".join(parts)
    return f"{text}, {', '.join(extras)}" if extras else text


def _as_pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window(value) -> str:
    return format_shape(_as_pair(value), "x")

"""Exact shape, parameter and cost arithmetic of 2-D convolutional networks.

Everything here is plain integer arithmetic that agrees with what Keras 3 builds
(``data_format="channels_last"``, shapes without the batch dimension). It imports neither
Keras nor TensorFlow, so ``convkit shape-calc`` starts instantly; ``tests/test_shape_calc_keras.py``
proves the agreement against Keras itself.

The formulas, for one spatial axis of length ``n``, kernel ``k``, stride ``s``, dilation ``d``:

* effective kernel: ``k_eff = d·(k − 1) + 1``
* explicit zero padding ``p`` on each side (``valid`` is ``p = 0``):
  ``out = ⌊(n + 2·p − k_eff) / s⌋ + 1``
* ``same`` (Keras/TensorFlow): ``out = ⌈n / s⌉``; the padding that achieves it is
  ``max((out − 1)·s + k_eff − n, 0)``, the smaller half before, the larger half after.
* ``full`` (flag mode only, Keras has no such padding): ``p = k_eff − 1`` on each side,
  so every input pixel meets every kernel tap: ``out = ⌊(n + k_eff − 2) / s⌋ + 1``.
* transposed convolution (Keras's ``compute_conv_transpose_output_shape``), with
  ``output_padding`` ``a`` (``None`` when not given):

  - ``valid``: ``(n − 1)·s + k_eff + a``; when ``a`` is ``None``: ``(n − 1)·s + max(k_eff, s)``
  - ``same``: ``n·s``; when ``a`` is given: ``(n − 1)·s + k_eff mod 2 + a``
  - explicit padding ``p`` (flag mode, PyTorch's rule): ``(n − 1)·s − 2·p + k_eff + a``

Parameters (``C`` input channels, ``F`` filters, ``M`` depth multiplier, ``g`` groups):

* Conv2D: ``F·(kh·kw·C/g) + F``; Conv2DTranspose: ``F·(kh·kw·C) + F``
* DepthwiseConv2D: ``kh·kw·C·M + C·M``; SeparableConv2D: ``kh·kw·C·M + C·M·F + F``
* Dense: ``units·C + units`` (``C`` is the last axis)
* BatchNormalization: ``4·C``, of which ``2·C`` (moving mean and variance) non-trainable
* The bias term disappears with ``use_bias=False``.

Multiply-accumulates (MACs) count the products of convolution and dense layers only:
``out_h·out_w·F·(kh·kw·C/g)`` for a convolution, ``n_h·n_w·C·(kh·kw·F)`` for a transposed
one, ``units·C`` per position for a dense layer. Biases, normalization, pooling and
activations count 0.

The receptive field is tracked per axis as a size ``r`` and a jump ``j`` (the distance, in
input pixels, between neighbouring output positions): a window layer does
``r ← r + (k_eff − 1)·j`` then ``j ← j·s``; a transposed convolution
``r ← r + ⌊(k_eff − 1)/s⌋·j`` then ``j ← j/s``; an upsampling by ``u`` ``j ← j/u`` (plus the
interpolation's reach: bilinear 1 more input pixel, bicubic 3, lanczos3 5, lanczos5 9).
Once the tensor loses its spatial axes (Flatten, global pooling) it is ``None``.

Errors are :class:`convkit.errors.SpecError`; their messages end Keras-style with what was
received (``... Received: kernel_size=(0, 3)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from convkit.errors import LayerError, SpecError

FLOAT32_BYTES = 4

#: Keras's ``UpSampling2D`` interpolations, with how many extra input pixels each reaches.
INTERPOLATION_REACH = {
    "nearest": 0,
    "area": 0,
    "bilinear": 1,
    "bicubic": 3,
    "lanczos3": 5,
    "lanczos5": 9,
}

Shape = tuple[int, ...]
Padding = str | int | tuple[int, int]


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The span of a dilated kernel: ``k_eff = d·(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_padding(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow ``same`` padding of one axis as ``(before, after)``.

    ``out = ⌈n / s⌉``; total ``= max((out − 1)·s + k_eff − n, 0)``; ``before = total // 2``
    (TensorFlow puts the odd pixel after).
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(
    n: int, kernel: int, stride: int, padding: Padding, dilation: int = 1
) -> tuple[int, int]:
    """Zero padding ``(before, after)`` of one axis.

    ``padding`` is ``"valid"`` (0), ``"same"`` (see :func:`same_padding`), ``"full"``
    (``k_eff − 1`` on each side), an int (that many on each side) or a ``(before, after)`` pair.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            return same_padding(n, kernel, stride, dilation)
        if mode == "full":
            p = effective_kernel(kernel, dilation) - 1
            return p, p
        raise SpecError(
            f"padding must be 'valid', 'same', 'full' or a number. Received: padding={padding!r}"
        )
    if isinstance(padding, bool):
        raise SpecError(f"padding must be a number. Received: padding={padding!r}")
    if isinstance(padding, int):
        before = after = padding
    else:
        before, after = padding
    if before < 0 or after < 0:
        raise SpecError(f"padding cannot be negative. Received: padding={padding!r}")
    return before, after


def conv_output_length(
    n: int, kernel: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``⌊(n + before + after − k_eff) / s⌋ + 1``; for ``same`` that equals ``⌈n / s⌉``.
    Returns a value ``<= 0`` when the (dilated) kernel does not fit the padded input; the
    layer-level functions turn that into an error.
    """
    before, after = resolve_padding(n, kernel, stride, padding, dilation)
    span = n + before + after - effective_kernel(kernel, dilation)
    return span // stride + 1


def conv_transpose_output_length(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: Padding = "valid",
    output_padding: int | None = None,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution along one axis (Keras's rule).

    ``valid``: ``(n − 1)·s + k_eff + a``, or ``(n − 1)·s + max(k_eff, s)`` when ``a`` is None;
    ``same``: ``n·s``, or ``(n − 1)·s + k_eff mod 2 + a``; an explicit padding ``p`` per side:
    ``(n − 1)·s − 2·p + k_eff + a`` (``a`` None counts as 0).
    """
    k_eff = effective_kernel(kernel, dilation)
    if isinstance(padding, str) and padding.lower() == "valid":
        if output_padding is None:
            return (n - 1) * stride + max(k_eff, stride)
        return (n - 1) * stride + k_eff + output_padding
    if isinstance(padding, str) and padding.lower() == "same":
        if output_padding is None:
            return n * stride
        return (n - 1) * stride + k_eff % 2 + output_padding
    if isinstance(padding, str):
        raise SpecError(
            "a transposed convolution takes padding 'valid', 'same' or a number. "
            f"Received: padding={padding!r}"
        )
    before, after = resolve_padding(n, kernel, stride, padding, dilation)
    return (n - 1) * stride - before - after + k_eff + (output_padding or 0)


def transpose_same_problem(
    axis: str,
    n: int,
    kernel: int,
    stride: int,
    padding: Padding,
    output_padding: int | None,
    dilation: int = 1,
) -> str | None:
    """Why a transposed convolution cannot run along one axis, or None when it can.

    With ``padding="same"`` and an explicit ``output_padding`` ``a``, Keras computes
    ``out = (n − 1)·s + k_eff mod 2 + a``. When ``k_eff`` is even and ``a = 0`` that is
    ``(n − 1)·s``, whose 'same' convolution gives back ``n − 1`` rows, not ``n``: Keras builds
    the layer, but TensorFlow refuses to run it (and for ``n = 1`` the output is empty).
    """
    if not (isinstance(padding, str) and padding.lower() == "same") or output_padding is None:
        return None
    k_eff = effective_kernel(kernel, dilation)
    if k_eff % 2 + output_padding:
        return None
    out = (n - 1) * stride
    kernel_text = f"{kernel}" if dilation == 1 else f"{kernel} (dilated to {k_eff})"
    return (
        f"with padding 'same', output_padding 0 and the even kernel {kernel_text}, the output "
        f"{axis} (n − 1)·s + k_eff mod 2 + output_padding = ({n} − 1)·{stride} + 0 + 0 = {out} "
        + (
            "is empty"
            if out <= 0
            else f"does not map back onto the input {axis} {n} (⌈{out} / {stride}⌉ = "
            f"{-(-out // stride)}): Keras builds it but TensorFlow refuses to run it"
        )
        + "; use output_padding=None or >= 1, or an odd kernel"
    )


def uncovered_rows(
    n: int, kernel: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> tuple[int, int]:
    """Input rows (or columns) that no window ever reads, as ``(at_the_end, in_between)``.

    ``at_the_end`` are the last rows left over because the stride does not divide
    ``n + before + after − k_eff`` (floor semantics); ``in_between`` are rows skipped between
    windows (stride larger than the kernel) or between the taps of a dilated kernel.
    Padding rows are not counted.
    """
    before, after = resolve_padding(n, kernel, stride, padding, dilation)
    total = n + before + after
    out = conv_output_length(n, kernel, stride, padding, dilation)
    if out <= 0:
        return n, 0
    covered = bytearray(total)
    last_start = (out - 1) * stride
    for tap in range(kernel):
        offset = tap * dilation
        covered[offset : offset + last_start + 1 : stride] = b"\x01" * out
    last_read = total - 1 - covered[::-1].index(1)
    tail = max(before + n - max(last_read + 1, before), 0)
    gaps = covered[before : min(last_read + 1, before + n)].count(0)
    return tail, gaps


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field per axis ``(height, width)``: size and jump, in input pixels."""

    size: tuple[Fraction, Fraction] = (Fraction(1), Fraction(1))
    jump: tuple[Fraction, Fraction] = (Fraction(1), Fraction(1))

    def as_int(self) -> int:
        """The larger of the two sizes, rounded up (what ``--json`` reports)."""
        return math.ceil(max(self.size))

    def window(self, kernel_eff: tuple[int, int], stride: tuple[int, int]) -> ReceptiveField:
        size = tuple(
            r + (k - 1) * j for r, k, j in zip(self.size, kernel_eff, self.jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        return ReceptiveField(size, jump)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LayerResult:
    """One analysed layer. Shapes are channels-last without the batch dimension."""

    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    receptive_field: ReceptiveField | None = None
    activation: str | None = None

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def activation_bytes(self) -> int:
        """Memory of the layer's output for one image, float32."""
        return math.prod(self.output_shape) * FLOAT32_BYTES

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "receptive_field": (
                None if self.receptive_field is None else self.receptive_field.as_int()
            ),
        }


@dataclass(frozen=True)
class StackResult:
    """A whole stack: the input shape and every layer's result, in order."""

    input_shape: Shape
    layers: tuple[LayerResult, ...] = field(default_factory=tuple)

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(layer.non_trainable_params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Sum of every layer's output memory for one image (float32), input excluded."""
        return sum(layer.activation_bytes for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "layers": [layer.to_json() for layer in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_macs": self.total_macs,
        }


# --------------------------------------------------------------------------- argument checks


def _fmt(value: Any) -> str:
    return repr(value)


def as_pair(value: Any, what: str, *, allow_zero: bool = False) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` stays; anything else, or values < 1 (< 0), is an error."""
    requirement = ">= 0" if allow_zero else "> 0"
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        pair = (value[0], value[1])
    else:
        raise SpecError(
            f"`{what}` must be an integer or a pair of integers. Received: {what}={_fmt(value)}"
        )
    if min(pair) < (0 if allow_zero else 1):
        raise SpecError(f"`{what}` must be {requirement}. Received: {what}={_fmt(value)}")
    return pair


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"`{what}` must be a positive integer. Received: {what}={_fmt(value)}")
    return value


def _keras_padding(value: Any) -> str:
    if isinstance(value, str) and value.lower() in ("valid", "same"):
        return value.lower()
    raise SpecError(
        "`padding` of a Keras layer must be 'valid' or 'same' (use ZeroPadding2D for explicit "
        f"padding). Received: padding={_fmt(value)}"
    )


def _spatial(shape: Shape, layer: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError(
            f"{layer} needs a 3-D input (height, width, channels), but its input has "
            f"{len(shape)} dimension{'s' if len(shape) != 1 else ''}. "
            f"Received: input_shape={_shape_text(shape)}"
        )
    return shape[0], shape[1], shape[2]


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


def _window_output(
    layer: str,
    shape: tuple[int, int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: Padding,
    dilation: tuple[int, int] = (1, 1),
    kernel_name: str = "kernel_size",
) -> tuple[int, int]:
    """Output (height, width) of a conv/pool window; an error when it does not fit."""
    out = []
    axes = zip(("height", "width"), shape[:2], kernel, strides, dilation, strict=True)
    for axis, n, k, s, d in axes:
        o = conv_output_length(n, k, s, padding, d)
        if o <= 0:
            before, after = resolve_padding(n, k, s, padding, d)
            k_eff = effective_kernel(k, d)
            kernel_text = f"{k}" if d == 1 else f"{k} (dilated to {k_eff})"
            padded = (
                f"input {axis} {n}"
                if before + after == 0
                else f"padded input {axis} {n + before + after} ({n} + {before} + {after})"
            )
            received = f"input_shape={_shape_text(shape)}, {kernel_name}={kernel}"
            received += f", strides={strides}"
            if dilation != (1, 1):
                received += f", dilation_rate={dilation}"
            received += f", padding={padding!r}"
            raise SpecError(
                f"{layer}: the {kernel_name.replace('_', ' ')} {kernel_text} is larger than the "
                f"{padded}, so the output {axis} would be {o}. "
                f"Received: {received}"
            )
        out.append(o)
    return out[0], out[1]


def _check_stride_dilation(layer: str, strides: tuple[int, int], dilation: tuple[int, int]) -> None:
    if max(strides) > 1 and max(dilation) > 1:
        raise SpecError(
            f"{layer}: `strides > 1` not supported in conjunction with `dilation_rate > 1` "
            "(Keras and TensorFlow refuse it). "
            f"Received: strides={strides} and dilation_rate={dilation}"
        )


def _bias(kwargs: Mapping[str, Any]) -> bool:
    value = kwargs.get("use_bias", True)
    if not isinstance(value, bool):
        raise SpecError(f"`use_bias` must be True or False. Received: use_bias={_fmt(value)}")
    return value


# --------------------------------------------------------------------------- layers

# Each function takes (kwargs, input_shape, receptive_field) and returns
# (output_shape, trainable_params, non_trainable_params, macs, receptive_field).
_Outcome = tuple[Shape, int, int, int, "ReceptiveField | None"]


def _conv2d(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "Conv2D")
    filters = _positive_int(kw.get("filters"), "filters")
    kernel = as_pair(kw.get("kernel_size"), "kernel_size")
    strides = as_pair(kw.get("strides", 1), "strides")
    dilation = as_pair(kw.get("dilation_rate", 1), "dilation_rate")
    groups = _positive_int(kw.get("groups", 1), "groups")
    padding = _keras_padding(kw.get("padding", "valid"))
    _check_stride_dilation("Conv2D", strides, dilation)
    if filters % groups:
        raise SpecError(
            "Conv2D: the number of filters must be evenly divisible by the number of groups. "
            f"Received: groups={groups}, filters={filters}"
        )
    if c % groups:
        raise SpecError(
            "Conv2D: the number of input channels must be evenly divisible by the number of "
            f"groups. Received: groups={groups}, input channels={c}"
        )
    oh, ow = _window_output("Conv2D", (h, w, c), kernel, strides, padding, dilation)
    per_filter = kernel[0] * kernel[1] * (c // groups)
    params = filters * per_filter + (filters if _bias(kw) else 0)
    macs = oh * ow * filters * per_filter
    k_eff = (effective_kernel(kernel[0], dilation[0]), effective_kernel(kernel[1], dilation[1]))
    return (oh, ow, filters), params, 0, macs, _rf_window(rf, k_eff, strides)


def _conv2d_transpose(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "Conv2DTranspose")
    filters = _positive_int(kw.get("filters"), "filters")
    kernel = as_pair(kw.get("kernel_size"), "kernel_size")
    strides = as_pair(kw.get("strides", 1), "strides")
    dilation = as_pair(kw.get("dilation_rate", 1), "dilation_rate")
    padding = _keras_padding(kw.get("padding", "valid"))
    output_padding = kw.get("output_padding")
    if output_padding is not None:
        output_padding = as_pair(output_padding, "output_padding", allow_zero=True)
        for op, s in zip(output_padding, strides, strict=True):
            if op >= s:
                raise SpecError(
                    "Conv2DTranspose: `output_padding` must be strictly less than `strides`. "
                    f"Received: output_padding={output_padding}, strides={strides}"
                )
    _check_stride_dilation("Conv2DTranspose", strides, dilation)
    out = []
    for i, axis in enumerate(("height", "width")):
        o = conv_transpose_output_length(
            shape[i],
            kernel[i],
            strides[i],
            padding,
            None if output_padding is None else output_padding[i],
            dilation[i],
        )
        problem = transpose_same_problem(
            axis,
            shape[i],
            kernel[i],
            strides[i],
            padding,
            None if output_padding is None else output_padding[i],
            dilation[i],
        )
        if problem:
            raise SpecError(
                f"Conv2DTranspose: {problem}. Received: input_shape={_shape_text(shape)}, "
                f"kernel_size={kernel}, strides={strides}, padding={padding!r}, "
                f"output_padding={output_padding}"
                + (f", dilation_rate={dilation}" if dilation != (1, 1) else "")
            )
        out.append(o)
    per_filter = kernel[0] * kernel[1] * c
    params = filters * per_filter + (filters if _bias(kw) else 0)
    macs = h * w * c * kernel[0] * kernel[1] * filters
    new_rf = None
    if rf is not None:
        size = tuple(
            r + ((effective_kernel(k, d) - 1) // s) * j
            for r, k, d, s, j in zip(rf.size, kernel, dilation, strides, rf.jump, strict=True)
        )
        jump = tuple(j / s for j, s in zip(rf.jump, strides, strict=True))
        new_rf = ReceptiveField(size, jump)  # type: ignore[arg-type]
    return (out[0], out[1], filters), params, 0, macs, new_rf


def _depthwise(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "DepthwiseConv2D")
    multiplier = _positive_int(kw.get("depth_multiplier", 1), "depth_multiplier")
    kernel = as_pair(kw.get("kernel_size"), "kernel_size")
    strides = as_pair(kw.get("strides", 1), "strides")
    dilation = as_pair(kw.get("dilation_rate", 1), "dilation_rate")
    padding = _keras_padding(kw.get("padding", "valid"))
    # Keras 3 (TensorFlow backend) computes depthwise and separable convolutions with
    # strides > 1 and dilation > 1 (dilated conv, then subsampling), unlike Conv2D.
    oh, ow = _window_output("DepthwiseConv2D", (h, w, c), kernel, strides, padding, dilation)
    channels = c * multiplier
    params = kernel[0] * kernel[1] * channels + (channels if _bias(kw) else 0)
    macs = oh * ow * channels * kernel[0] * kernel[1]
    k_eff = (effective_kernel(kernel[0], dilation[0]), effective_kernel(kernel[1], dilation[1]))
    return (oh, ow, channels), params, 0, macs, _rf_window(rf, k_eff, strides)


def _separable(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "SeparableConv2D")
    filters = _positive_int(kw.get("filters"), "filters")
    multiplier = _positive_int(kw.get("depth_multiplier", 1), "depth_multiplier")
    kernel = as_pair(kw.get("kernel_size"), "kernel_size")
    strides = as_pair(kw.get("strides", 1), "strides")
    dilation = as_pair(kw.get("dilation_rate", 1), "dilation_rate")
    padding = _keras_padding(kw.get("padding", "valid"))
    oh, ow = _window_output("SeparableConv2D", (h, w, c), kernel, strides, padding, dilation)
    mid = c * multiplier
    params = kernel[0] * kernel[1] * mid + mid * filters + (filters if _bias(kw) else 0)
    macs = oh * ow * mid * (kernel[0] * kernel[1] + filters)
    k_eff = (effective_kernel(kernel[0], dilation[0]), effective_kernel(kernel[1], dilation[1]))
    return (oh, ow, filters), params, 0, macs, _rf_window(rf, k_eff, strides)


def _pooling(layer: str) -> Callable[..., _Outcome]:
    def pool(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
        h, w, c = _spatial(shape, layer)
        pool_size = as_pair(kw.get("pool_size", 2), "pool_size")
        strides = kw.get("strides")
        strides = pool_size if strides is None else as_pair(strides, "strides")
        padding = _keras_padding(kw.get("padding", "valid"))
        oh, ow = _window_output(
            layer, (h, w, c), pool_size, strides, padding, kernel_name="pool_size"
        )
        return (oh, ow, c), 0, 0, 0, _rf_window(rf, pool_size, strides)

    return pool


def _global_pooling(layer: str) -> Callable[..., _Outcome]:
    def pool(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
        _, _, c = _spatial(shape, layer)
        if kw.get("keepdims", False):
            return (1, 1, c), 0, 0, 0, None
        return (c,), 0, 0, 0, None

    return pool


def _pad_pairs(value: Any, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ZeroPadding2D/Cropping2D argument: int, (h, w) or ((top, bottom), (left, right))."""
    if isinstance(value, int) and not isinstance(value, bool):
        pairs = ((value, value), (value, value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        try:
            pairs = tuple(as_pair(v, what, allow_zero=True) for v in value)  # type: ignore[assignment]
        except SpecError:
            raise SpecError(
                f"`{what}` must be an int, a pair (symmetric_height, symmetric_width) or a "
                f"pair of pairs ((top, bottom), (left, right)). Received: {what}={_fmt(value)}"
            ) from None
    else:
        raise SpecError(
            f"`{what}` must be an int, a pair (symmetric_height, symmetric_width) or a pair "
            f"of pairs ((top, bottom), (left, right)). Received: {what}={_fmt(value)}"
        )
    if min(min(p) for p in pairs) < 0:
        raise SpecError(f"`{what}` cannot be negative. Received: {what}={_fmt(value)}")
    return pairs  # type: ignore[return-value]


def _zero_padding(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "ZeroPadding2D")
    (t, b), (left, right) = _pad_pairs(kw.get("padding", 1), "padding")
    return (h + t + b, w + left + right, c), 0, 0, 0, rf


def _cropping(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "Cropping2D")
    (t, b), (left, right) = _pad_pairs(kw.get("cropping", 0), "cropping")
    if t + b >= h or left + right >= w:
        raise SpecError(
            "Cropping2D: the cropping must be smaller than the corresponding input size. "
            f"Received: input_shape={_shape_text(shape)}, cropping={((t, b), (left, right))}"
        )
    return (h - t - b, w - left - right, c), 0, 0, 0, rf


def _upsampling(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    h, w, c = _spatial(shape, "UpSampling2D")
    size = as_pair(kw.get("size", 2), "size")
    interpolation = str(kw.get("interpolation", "nearest")).lower()
    if interpolation not in INTERPOLATION_REACH:
        raise SpecError(
            f"UpSampling2D: `interpolation` must be one of {', '.join(INTERPOLATION_REACH)}. "
            f"Received: interpolation={interpolation!r}"
        )
    new_rf = None
    if rf is not None:
        reach = INTERPOLATION_REACH[interpolation]
        new_rf = ReceptiveField(
            tuple(r + reach * j for r, j in zip(rf.size, rf.jump, strict=True)),  # type: ignore[arg-type]
            tuple(j / u for j, u in zip(rf.jump, size, strict=True)),  # type: ignore[arg-type]
        )
    return (h * size[0], w * size[1], c), 0, 0, 0, new_rf


def _axis_size(shape: Shape, axis: Any, layer: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise SpecError(f"{layer}: `axis` must be an integer. Received: axis={_fmt(axis)}")
    rank = len(shape) + 1  # Keras counts the batch axis
    if not -rank <= axis < rank or axis in (0, -rank):
        raise SpecError(
            f"{layer}: `axis` {axis} is out of range for an input of shape "
            f"(batch, {', '.join(map(str, shape))}). Received: axis={axis}"
        )
    return shape[axis - 1] if axis > 0 else shape[axis]


def _batch_norm(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    c = _axis_size(shape, kw.get("axis", -1), "BatchNormalization")
    learned = int(bool(kw.get("center", True))) + int(bool(kw.get("scale", True)))
    return shape, learned * c, 2 * c, 0, rf


def _layer_norm(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    c = _axis_size(shape, kw.get("axis", -1), "LayerNormalization")
    learned = int(bool(kw.get("center", True))) + int(bool(kw.get("scale", True)))
    return shape, learned * c, 0, 0, rf


def _dense(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    units = _positive_int(kw.get("units"), "units")
    c = shape[-1]
    params = units * c + (units if _bias(kw) else 0)
    positions = math.prod(shape[:-1])
    return shape[:-1] + (units,), params, 0, positions * c * units, rf if len(shape) == 3 else None


def _flatten(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    return (math.prod(shape),), 0, 0, 0, None


def _same_shape(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    return shape, 0, 0, 0, rf


def _spatial_dropout(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> _Outcome:
    _spatial(shape, "SpatialDropout2D")
    return shape, 0, 0, 0, rf


def _rf_window(
    rf: ReceptiveField | None, kernel_eff: tuple[int, int], strides: tuple[int, int]
) -> ReceptiveField | None:
    return None if rf is None else rf.window(kernel_eff, strides)


#: Keras class name -> arithmetic. Every type spec.py can produce is here.
LAYER_ARITHMETIC: dict[str, Callable[..., _Outcome]] = {
    "Conv2D": _conv2d,
    "Conv2DTranspose": _conv2d_transpose,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv2D": _separable,
    "MaxPooling2D": _pooling("MaxPooling2D"),
    "AveragePooling2D": _pooling("AveragePooling2D"),
    "GlobalAveragePooling2D": _global_pooling("GlobalAveragePooling2D"),
    "GlobalMaxPooling2D": _global_pooling("GlobalMaxPooling2D"),
    "ZeroPadding2D": _zero_padding,
    "Cropping2D": _cropping,
    "UpSampling2D": _upsampling,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Dense": _dense,
    "Flatten": _flatten,
    "Activation": _same_shape,
    "ReLU": _same_shape,
    "LeakyReLU": _same_shape,
    "ELU": _same_shape,
    "Softmax": _same_shape,
    "Dropout": _same_shape,
    "SpatialDropout2D": _spatial_dropout,
    "GaussianNoise": _same_shape,
    "Identity": _same_shape,
}


def analyze_layer(
    type: str,
    kwargs: Mapping[str, Any],
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    receptive_field: ReceptiveField | None = None,
) -> LayerResult:
    """Output shape, parameters, MACs and receptive field of one Keras layer.

    ``type`` is the Keras class name (``"Conv2D"``), ``kwargs`` its constructor arguments as
    Keras names them (missing ones take Keras's defaults), ``input_shape`` channels-last
    without the batch dimension. ``receptive_field`` is that of the input (``None`` starts at
    one pixel when the input is spatial).
    """
    try:
        arithmetic = LAYER_ARITHMETIC[type]
    except KeyError:
        raise SpecError(
            f"unknown layer type. Received: type={type!r} "
            f"(known: {', '.join(sorted(LAYER_ARITHMETIC))})"
        ) from None
    shape = tuple(int(v) for v in input_shape)
    if receptive_field is None and len(shape) == 3:
        receptive_field = ReceptiveField()
    out, trainable, non_trainable, macs, rf = arithmetic(kwargs, shape, receptive_field)
    if kwargs.get("trainable", True) is False:
        trainable, non_trainable = 0, trainable + non_trainable
    activation = kwargs.get("activation")
    return LayerResult(
        name=name or type,
        type=type,
        input_shape=shape,
        output_shape=tuple(out),
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        macs=macs,
        receptive_field=rf,
        activation=activation if isinstance(activation, str) else None,
    )


def analyze_stack(layers: Iterable[Any], input_shape: Sequence[int] | None = None) -> StackResult:
    """Analyse a stack of layers, in order, as ``keras.Sequential`` would build them.

    Each layer is any object with ``type`` and ``kwargs`` attributes (and optionally
    ``name``), e.g. :class:`convkit.spec.LayerSpec`. A leading ``InputLayer`` supplies the
    input shape when ``input_shape`` is None (an explicit ``input_shape`` wins). An impossible
    layer raises :class:`LayerError` with its index in ``layers``.
    """
    layers = list(layers)
    start = 0
    if layers and layers[0].type == "InputLayer":
        if input_shape is None:
            input_shape = tuple(layers[0].kwargs["shape"])
        start = 1
    if input_shape is None:
        raise SpecError(
            "the stack has no input shape: give one, or start the spec with input((H, W, C))"
        )
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise SpecError(
            "the input shape must be three positive integers (height, width, channels). "
            f"Received: input_shape={_shape_text(shape)}"
        )
    rf: ReceptiveField | None = ReceptiveField()
    results = []
    for index in range(start, len(layers)):
        layer = layers[index]
        name = getattr(layer, "name", None) or layer.type
        where = f"layer {index + 1} ({name}, {layer.type})"
        if layer.type == "InputLayer":
            raise LayerError(
                f"{where}: an input layer can only come first. Received: position {index + 1}",
                index=index,
            )
        try:
            result = analyze_layer(layer.type, layer.kwargs, shape, name=name, receptive_field=rf)
        except SpecError as exc:
            detail = str(exc).removeprefix(f"{layer.type}: ")
            raise LayerError(f"{where}: {detail}", index=index) from None
        results.append(result)
        shape, rf = result.output_shape, result.receptive_field
    return StackResult(input_shape=tuple(int(v) for v in input_shape), layers=tuple(results))


# --------------------------------------------------------------------------- flag mode


@dataclass(frozen=True)
class AxisExplanation:
    """How one spatial axis of a single layer was computed."""

    axis: str  # "height", "width" or "height and width"
    input: int
    output: int
    formula: str  # with the numbers put in, ending "= output"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SingleLayer:
    """A single layer computed from flags, with its formulas (``convkit shape-calc --kernel``)."""

    result: LayerResult
    axes: tuple[AxisExplanation, ...]
    params_formula: str
    macs_formula: str
    description: str
    notes: tuple[str, ...] = ()

    def to_stack(self) -> StackResult:
        return StackResult(input_shape=self.result.input_shape, layers=(self.result,))


def _num(value: int) -> str:
    return f"{value:,}"


def _padding_text(padding: Padding) -> str:
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return str(padding)
    return f"{padding[0]}x{padding[1]}"


def _window_formula(
    n: int,
    k: int,
    s: int,
    d: int,
    padding: Padding,
    out: int,
    *,
    transpose: bool = False,
    output_padding: int | None = None,
) -> tuple[str, list[str]]:
    notes: list[str] = []
    k_eff = effective_kernel(k, d)
    if d > 1:
        notes.append(f"effective kernel d·(k − 1) + 1 = {d}·({k} − 1) + 1 = {k_eff}")
    if transpose:
        if padding == "valid" and output_padding is None:
            if k_eff >= s:
                return f"({n} − 1)·{s} + {k_eff} = {out}", notes
            return f"({n} − 1)·{s} + max({k_eff}, {s}) = {out}", notes
        if padding == "valid":
            return f"({n} − 1)·{s} + {k_eff} + {output_padding} = {out}", notes
        if padding == "same" and output_padding is None:
            return f"{n}·{s} = {out}", notes
        if padding == "same":
            return f"({n} − 1)·{s} + {k_eff} mod 2 + {output_padding} = {out}", notes
        before, after = resolve_padding(n, k, s, padding, d)
        pad = f"2·{before}" if before == after else f"{before} − {after}"
        op = f" + {output_padding}" if output_padding else ""
        return f"({n} − 1)·{s} − {pad} + {k_eff}{op} = {out}", notes
    before, after = resolve_padding(n, k, s, padding, d)
    pad = f"2·{before}" if before == after else f"{before} + {after}"
    span = n + before + after - k_eff
    if padding == "same":
        formula = f"{n} / {s} = {out}" if n % s == 0 else f"⌈{n} / {s}⌉ = {out}"
        notes.append(
            f"'same' pads max(({out} − 1)·{s} + {k_eff} − {n}, 0) = {before + after}: "
            f"{before} before, {after} after"
        )
    elif span % s == 0:
        formula = f"({n} + {pad} − {k_eff}) / {s} + 1 = {out}"
    else:
        formula = f"⌊({n} + {pad} − {k_eff}) / {s}⌋ + 1 = {out}"
    return formula, notes


def _coverage_notes(
    axis: str, n: int, k: int, s: int, d: int, padding: Padding, *, kernel_word: str
) -> list[str]:
    notes = []
    before, after = resolve_padding(n, k, s, padding, d)
    span = n + before + after - effective_kernel(k, d)
    tail, gaps = uncovered_rows(n, k, s, padding, d)
    one, many = {
        "height": ("row", "rows"),
        "width": ("column", "columns"),
    }.get(axis, ("row and column", "rows and columns"))
    if span % s:
        left = span % s
        text = (
            f"stride {s} does not divide {span} (= {n} + {before + after} − "
            f"{effective_kernel(k, d)}): the last {left} {many if left > 1 else one} of the "
            f"padded input {'are' if left > 1 else 'is'} never covered by the {kernel_word}"
        )
        if left > tail:
            text += f" ({tail} of them input, the rest padding)" if tail else " (all padding)"
        notes.append(text)
    if gaps:
        why = f"stride {s} > {kernel_word} {k}" if d == 1 else f"dilation {d} leaves holes"
        notes.append(
            f"{gaps} input {many if gaps > 1 else one} between windows "
            f"{'are' if gaps > 1 else 'is'} never read ({why})"
        )
    return notes


def single_layer(
    input_shape: Sequence[int],
    kernel: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] | None = None,
    padding: Padding | tuple[Padding, Padding] = "valid",
    dilation: int | tuple[int, int] = 1,
    filters: int = 1,
    mode: str = "conv",
    output_padding: int | tuple[int, int] | None = None,
    use_bias: bool = True,
) -> SingleLayer:
    """One layer from ``convkit shape-calc`` flags, with formulas and notes.

    ``mode`` is ``"conv"`` (Conv2D), ``"pool"`` (a pooling window: no parameters, stride
    defaults to the window as in Keras) or ``"transpose"`` (Conv2DTranspose). ``padding`` is
    ``"valid"``, ``"same"``, ``"full"``, an int (zero padding on each side) or an
    ``(height, width)`` pair of ints. Raises :class:`SpecError` for an impossible layer.
    """
    if mode not in ("conv", "pool", "transpose"):
        raise SpecError(f"mode must be 'conv', 'pool' or 'transpose'. Received: mode={mode!r}")
    h, w, c = (int(v) for v in input_shape)
    if min(h, w, c) < 1:
        raise SpecError(
            f"the input must be positive. Received: input_shape={_shape_text((h, w, c))}"
        )
    kernel_name = "pool_size" if mode == "pool" else "kernel_size"
    kernel2 = as_pair(kernel, kernel_name)
    default_stride = stride is None
    if stride is None:
        stride = kernel2 if mode == "pool" else 1
    strides = as_pair(stride, "strides")
    dilation2 = as_pair(dilation, "dilation_rate")
    filters = _positive_int(filters, "filters")
    layer_type = {"conv": "Conv2D", "pool": "MaxPooling2D", "transpose": "Conv2DTranspose"}[mode]
    if mode == "pool":
        if dilation2 != (1, 1):
            raise SpecError(
                f"a pooling window has no dilation. Received: dilation_rate={dilation2}"
            )
        filters = c
    if mode != "pool":
        _check_stride_dilation(layer_type, strides, dilation2)
    if isinstance(padding, tuple):
        pads: tuple[Padding, Padding] = padding  # type: ignore[assignment]
    else:
        pads = (padding, padding)
    for p in pads:
        resolve_padding(1, 1, 1, p)  # validates
    if mode == "transpose" and "full" in pads:
        raise SpecError(
            "padding 'full' is not defined for a transposed convolution; use 'valid', 'same' "
            "or a number. Received: padding='full'"
        )
    op2: tuple[int, int] | None = None
    if output_padding is not None:
        if mode != "transpose":
            raise SpecError(
                "output padding only applies to a transposed convolution (--transpose). "
                f"Received: output_padding={output_padding}"
            )
        op2 = as_pair(output_padding, "output_padding", allow_zero=True)
        for op, s in zip(op2, strides, strict=True):
            if op >= s:
                raise SpecError(
                    "Conv2DTranspose: `output_padding` must be strictly less than `strides`. "
                    f"Received: output_padding={op2}, strides={strides}"
                )

    outs: list[int] = []
    explanations: list[AxisExplanation] = []
    same_axes = h == w and kernel2[0] == kernel2[1] and strides[0] == strides[1]
    same_axes = same_axes and dilation2[0] == dilation2[1] and pads[0] == pads[1]
    same_axes = same_axes and (op2 is None or op2[0] == op2[1])
    word = "pooling window" if mode == "pool" else "kernel"
    for i, (axis, n) in enumerate((("height", h), ("width", w))):
        k, s, d, p = kernel2[i], strides[i], dilation2[i], pads[i]
        op = None if op2 is None else op2[i]
        if mode == "transpose":
            out = conv_transpose_output_length(n, k, s, p, op, d)
            problem = transpose_same_problem(axis, n, k, s, p, op, d)
            if problem is None and out <= 0:
                problem = f"the output {axis} would be {out}"
            if problem:
                raise SpecError(
                    f"Conv2DTranspose: {problem}. Received: input {axis}={n}, kernel_size={k}, "
                    f"strides={s}, padding={_padding_text(p)}, output_padding={op}, "
                    f"dilation_rate={d}"
                )
        else:
            out = conv_output_length(n, k, s, p, d)
            if out <= 0:
                before, after = resolve_padding(n, k, s, p, d)
                k_eff = effective_kernel(k, d)
                kernel_text = f"{k}" if d == 1 else f"{k} (dilated: {d}·({k} − 1) + 1 = {k_eff})"
                padded = (
                    f"input {axis} {n}"
                    if before + after == 0
                    else f"padded input {axis} {n + before + after} ({n} + {before} + {after})"
                )
                raise SpecError(
                    f"the {word} {kernel_text} is larger than the {padded}: the output {axis} "
                    f"would be {out}. Received: input={n}, {kernel_name}={k}, strides={s}, "
                    f"padding={_padding_text(p)}, dilation_rate={d}"
                )
        formula, notes = _window_formula(
            n, k, s, d, p, out, transpose=mode == "transpose", output_padding=op
        )
        if mode != "transpose":
            notes += _coverage_notes(
                "height and width" if same_axes else axis, n, k, s, d, p, kernel_word=word
            )
        outs.append(out)
        explanations.append(
            AxisExplanation(
                "height and width" if same_axes else axis, n, out, formula, tuple(notes)
            )
        )
        if same_axes:
            outs.append(out)
            break

    kh, kw = kernel2
    oh, ow = outs
    if mode == "pool":
        params = 0
        params_formula = "0 (a pooling window has no weights)"
        macs = 0
        macs_formula = "0 (no multiplications)"
    else:
        weights = filters * kh * kw * c
        params = weights + (filters if use_bias else 0)
        bias = f" + {filters}" if use_bias else ""
        params_formula = f"{filters}·({kh}·{kw}·{c}){bias} = {_num(params)}"
        if use_bias:
            params_formula += (
                f"   ({_num(weights)} weight{'s' if weights != 1 else ''} + "
                f"{filters} bias{'es' if filters != 1 else ''})"
            )
        if mode == "conv":
            macs = oh * ow * filters * kh * kw * c
            macs_formula = f"{oh}·{ow}·{filters}·({kh}·{kw}·{c}) = {_num(macs)}"
        else:
            macs = h * w * c * kh * kw * filters
            macs_formula = f"{h}·{w}·{c}·({kh}·{kw}·{filters}) = {_num(macs)}"

    rf = ReceptiveField()
    k_eff2 = (effective_kernel(kh, dilation2[0]), effective_kernel(kw, dilation2[1]))
    if mode == "transpose":
        rf = ReceptiveField(
            tuple(Fraction(1 + (ke - 1) // s) for ke, s in zip(k_eff2, strides, strict=True)),  # type: ignore[arg-type]
            tuple(Fraction(1, s) for s in strides),  # type: ignore[arg-type]
        )
    else:
        rf = rf.window(k_eff2, strides)
    out_c = c if mode == "pool" else filters
    result = LayerResult(
        name={"Conv2D": "conv2d", "MaxPooling2D": "max_pooling2d"}.get(
            layer_type, "conv2d_transpose"
        ),
        type=layer_type,
        input_shape=(h, w, c),
        output_shape=(oh, ow, out_c),
        trainable_params=params,
        macs=macs,
        receptive_field=rf,
    )
    pad_desc = (
        _padding_text(pads[0])
        if pads[0] == pads[1]
        else f"{_padding_text(pads[0])}x{_padding_text(pads[1])}"
    )
    what = {"conv": "convolution", "pool": "pooling window", "transpose": "transposed convolution"}
    parts = [
        f"{word} {_dims(kernel2)}",
        f"stride {_dims(strides)}",
        f"padding {pad_desc}",
    ]
    if mode != "pool":
        parts.append(f"dilation {_dims(dilation2)}")
        parts.append(f"{filters} filter{'s' if filters != 1 else ''}")
    if op2 is not None:
        parts.append(f"output padding {_dims(op2)}")
    if not use_bias and mode != "pool":
        parts.append("no bias")
    description = f"{what[mode]}: " + ", ".join(parts)
    notes: list[str] = []
    if "full" in pads:
        notes.append(
            "'full' pads k_eff − 1 on each side so every kernel tap meets every input pixel; "
            "Keras layers have no 'full' (use ZeroPadding2D)"
        )
    if mode == "pool" and default_stride:
        notes.append("the stride defaults to the pooling window, as in Keras")
    return SingleLayer(
        result=result,
        axes=tuple(explanations),
        params_formula=params_formula,
        macs_formula=macs_formula,
        description=description,
        notes=tuple(notes),
    )


def _dims(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(n: int) -> str:
    """``15_470_264_320`` -> ``"15.47 G"``; small numbers stay exact."""
    for size, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)

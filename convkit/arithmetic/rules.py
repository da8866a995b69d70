"""The shape rule of every layer type: output shape, parameters, MACs, receptive field.

Plain integer arithmetic that agrees with what Keras 3 builds (``channels_last``, shapes
without the batch dimension); ``tests/test_shape_calc_keras.py`` proves the agreement
against Keras itself. The one-axis formulas are in :mod:`convkit.arithmetic.formulas`.

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

The rules take the layer's arguments as the spec layer normalised them
(:mod:`convkit.arithmetic.normalize`) and trust them; they check only what depends on the
input shape or on several arguments together (a kernel larger than its input, strides with
dilation, groups that do not divide the channels). :func:`analyze_layer` takes plain Keras
keyword arguments and normalises them first. The pieces a convolution is made of
(:func:`windows`, :func:`conv_outcome`, :func:`transpose_axis`, ...) also serve the
single-layer explanation of ``shape-calc``'s flag mode (:mod:`convkit.arithmetic.explain`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from convkit.arithmetic.catalogue import INTERPOLATION_REACH, KIND_BY_TYPE
from convkit.arithmetic.formatting import shape_tuple
from convkit.arithmetic.formulas import (
    Padding,
    Window,
    conv_transpose_output_length,
    transpose_same_problem,
    window,
)
from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT
from convkit.arithmetic.normalize import normalize_kwargs
from convkit.arithmetic.results import LayerResult, ReceptiveField, Shape
from convkit.errors import SpecError

__all__ = [
    "LAYER_ARITHMETIC",
    "Outcome",
    "analyze_layer",
    "analyze_parsed",
    "check_output_padding",
    "check_stride_dilation",
    "conv_outcome",
    "layer_result",
    "pool_outcome",
    "transpose_axis",
    "transpose_outcome",
    "windows",
]

Pair = tuple[int, int]

#: What a rule finds: (output_shape, trainable_params, non_trainable_params, macs,
#: receptive_field).
Outcome = tuple[Shape, int, int, int, "ReceptiveField | None"]


def _spatial(shape: Shape, layer: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError(
            f"{layer} needs a 3-D input (height, width, channels), but its input has "
            f"{len(shape)} dimension{'s' if len(shape) != 1 else ''}. "
            f"Received: input_shape={shape_tuple(shape)}"
        )
    return shape[0], shape[1], shape[2]


# --------------------------------------------------------------------------- checks


def check_stride_dilation(layer: str, strides: Pair, dilation: Pair) -> None:
    """Conv2D and Conv2DTranspose refuse strides > 1 together with dilation > 1."""
    if max(strides) > 1 and max(dilation) > 1:
        raise SpecError(
            f"{layer}: `strides > 1` not supported in conjunction with `dilation_rate > 1` "
            "(Keras and TensorFlow refuse it). "
            f"Received: strides={strides} and dilation_rate={dilation}"
        )


def check_output_padding(
    output_padding: Pair | None,
    strides: Pair,
    names: tuple[str, str] = ("output_padding", "strides"),
) -> None:
    """A transposed convolution's output padding must be less than its strides; ``names``
    are what the message calls the two."""
    if output_padding is None:
        return
    for op, s in zip(output_padding, strides, strict=True):
        if op >= s:
            raise SpecError(
                f"Conv2DTranspose: {names[0]} must be strictly less than {names[1]}. "
                f"Received: output_padding={output_padding}, strides={strides}"
            )


# --------------------------------------------------------------------------- convolutions


def windows(
    shape: Shape, kernel: Pair, strides: Pair, paddings: tuple[Padding, Padding], dilation: Pair
) -> tuple[Window, Window]:
    """The :class:`~convkit.arithmetic.formulas.Window` of the height and of the width."""
    h, w = (
        window(n, k, s, p, d)
        for n, k, s, p, d in zip(shape[:2], kernel, strides, paddings, dilation, strict=True)
    )
    return h, w


def _fitting_windows(
    layer: str,
    shape: Shape,
    kw: Mapping[str, Any],
    kernel_name: str = "kernel_size",
) -> tuple[Window, Window]:
    """The windows of a Keras layer; an error naming the axis where the kernel does not fit."""
    kernel, strides, padding = kw[kernel_name], kw["strides"], kw["padding"]
    dilation = kw.get("dilation_rate", (1, 1))
    found = windows(shape, kernel, strides, (padding, padding), dilation)
    for axis, win in zip(("height", "width"), found, strict=True):
        if win.out > 0:
            continue
        kernel_text = f"{win.kernel}"
        if win.dilation != 1:
            kernel_text += f" (dilated to {win.kernel_eff})"
        received = f"input_shape={shape_tuple(shape)}, {kernel_name}={kernel}"
        received += f", strides={strides}"
        if dilation != (1, 1):
            received += f", dilation_rate={dilation}"
        received += f", padding={padding!r}"
        raise SpecError(
            f"{layer}: the {kernel_name.replace('_', ' ')} {kernel_text} is larger than the "
            f"{win.padded_input(axis)}, so the output {axis} would be {win.out}. "
            f"Received: {received}"
        )
    return found


def _kernel_eff(found: tuple[Window, Window]) -> Pair:
    return found[0].kernel_eff, found[1].kernel_eff


def _strides(found: tuple[Window, Window]) -> Pair:
    return found[0].stride, found[1].stride


def conv_outcome(
    found: tuple[Window, Window],
    channels: int,
    filters: int,
    rf: ReceptiveField | None,
    *,
    groups: int = 1,
    use_bias: bool = True,
) -> Outcome:
    """Conv2D over ``channels`` input channels, given its windows."""
    height, width = found
    per_filter = height.kernel * width.kernel * (channels // groups)
    params = filters * per_filter + (filters if use_bias else 0)
    macs = height.out * width.out * filters * per_filter
    new_rf = None if rf is None else rf.window(_kernel_eff(found), _strides(found))
    return (height.out, width.out, filters), params, 0, macs, new_rf


def pool_outcome(found: tuple[Window, Window], channels: int, rf: ReceptiveField | None) -> Outcome:
    """A pooling window: no parameters, no MACs."""
    new_rf = None if rf is None else rf.window(_kernel_eff(found), _strides(found))
    return (found[0].out, found[1].out, channels), 0, 0, 0, new_rf


def transpose_axis(
    axis: str,
    n: int,
    kernel: int,
    stride: int,
    padding: Padding,
    output_padding: int | None,
    dilation: int = 1,
) -> tuple[int, str | None]:
    """Output length of a transposed convolution along one axis, and why it cannot run
    (None when it can)."""
    out = conv_transpose_output_length(n, kernel, stride, padding, output_padding, dilation)
    problem = transpose_same_problem(axis, n, kernel, stride, padding, output_padding, dilation)
    if problem is None and out <= 0:
        problem = f"the output {axis} would be {out}"
    return out, problem


def transpose_outcome(
    out_hw: Pair,
    shape: Shape,
    filters: int,
    kernel: Pair,
    strides: Pair,
    dilation: Pair,
    rf: ReceptiveField | None,
    *,
    use_bias: bool = True,
) -> Outcome:
    """Conv2DTranspose from ``shape`` to ``out_hw``."""
    h, w, c = shape
    params = filters * kernel[0] * kernel[1] * c + (filters if use_bias else 0)
    macs = h * w * c * kernel[0] * kernel[1] * filters
    new_rf = None
    if rf is not None:
        k_eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
        new_rf = rf.transposed(k_eff, strides)  # type: ignore[arg-type]
    return (out_hw[0], out_hw[1], filters), params, 0, macs, new_rf


# --------------------------------------------------------------------------- the rules


def _conv2d(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "Conv2D")
    filters, groups = kw["filters"], kw["groups"]
    check_stride_dilation("Conv2D", kw["strides"], kw["dilation_rate"])
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
    found = _fitting_windows("Conv2D", shape, kw)
    return conv_outcome(found, c, filters, rf, groups=groups, use_bias=kw["use_bias"])


def _conv2d_transpose(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "Conv2DTranspose")
    kernel, strides, dilation = kw["kernel_size"], kw["strides"], kw["dilation_rate"]
    padding, output_padding = kw["padding"], kw["output_padding"]
    check_output_padding(output_padding, strides)
    check_stride_dilation("Conv2DTranspose", strides, dilation)
    outs = []
    for i, axis in enumerate(("height", "width")):
        op = None if output_padding is None else output_padding[i]
        out, problem = transpose_axis(
            axis, shape[i], kernel[i], strides[i], padding, op, dilation[i]
        )
        if problem:
            raise SpecError(
                f"Conv2DTranspose: {problem}. Received: input_shape={shape_tuple(shape)}, "
                f"kernel_size={kernel}, strides={strides}, padding={padding!r}, "
                f"output_padding={output_padding}"
                + (f", dilation_rate={dilation}" if dilation != (1, 1) else "")
            )
        outs.append(out)
    filters = kw["filters"]
    return transpose_outcome(
        (outs[0], outs[1]), shape, filters, kernel, strides, dilation, rf, use_bias=kw["use_bias"]
    )


def _depthwise(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "DepthwiseConv2D")
    # Keras 3 (TensorFlow backend) computes depthwise and separable convolutions with
    # strides > 1 and dilation > 1 (dilated conv, then subsampling), unlike Conv2D.
    found = _fitting_windows("DepthwiseConv2D", shape, kw)
    channels = c * kw["depth_multiplier"]
    kh, kw_ = kw["kernel_size"]
    params = kh * kw_ * channels + (channels if kw["use_bias"] else 0)
    macs = found[0].out * found[1].out * channels * kh * kw_
    new_rf = None if rf is None else rf.window(_kernel_eff(found), _strides(found))
    return (found[0].out, found[1].out, channels), params, 0, macs, new_rf


def _separable(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "SeparableConv2D")
    found = _fitting_windows("SeparableConv2D", shape, kw)
    filters = kw["filters"]
    mid = c * kw["depth_multiplier"]
    kh, kw_ = kw["kernel_size"]
    params = kh * kw_ * mid + mid * filters + (filters if kw["use_bias"] else 0)
    macs = found[0].out * found[1].out * mid * (kh * kw_ + filters)
    new_rf = None if rf is None else rf.window(_kernel_eff(found), _strides(found))
    return (found[0].out, found[1].out, filters), params, 0, macs, new_rf


def _pooling(layer: str) -> Callable[..., Outcome]:
    def pool(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
        h, w, c = _spatial(shape, layer)
        return pool_outcome(_fitting_windows(layer, shape, kw, "pool_size"), c, rf)

    return pool


def _global_pooling(layer: str) -> Callable[..., Outcome]:
    def pool(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
        _, _, c = _spatial(shape, layer)
        if kw["keepdims"]:
            return (1, 1, c), 0, 0, 0, None
        return (c,), 0, 0, 0, None

    return pool


def _zero_padding(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "ZeroPadding2D")
    (t, b), (left, right) = kw["padding"]
    return (h + t + b, w + left + right, c), 0, 0, 0, rf


def _cropping(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "Cropping2D")
    (t, b), (left, right) = kw["cropping"]
    if t + b >= h or left + right >= w:
        raise SpecError(
            "Cropping2D: the cropping must be smaller than the corresponding input size. "
            f"Received: input_shape={shape_tuple(shape)}, cropping={((t, b), (left, right))}"
        )
    return (h - t - b, w - left - right, c), 0, 0, 0, rf


def _upsampling(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    h, w, c = _spatial(shape, "UpSampling2D")
    size = kw["size"]
    new_rf = None if rf is None else rf.upsampled(size, INTERPOLATION_REACH[kw["interpolation"]])
    return (h * size[0], w * size[1], c), 0, 0, 0, new_rf


def _axis_size(shape: Shape, axis: int, layer: str) -> int:
    rank = len(shape) + 1  # Keras counts the batch axis
    if not -rank <= axis < rank or axis in (0, -rank):
        raise SpecError(
            f"{layer}: axis {axis} is out of range for an input of shape "
            f"(batch, {', '.join(map(str, shape))}). Received: axis={axis}"
        )
    return shape[axis - 1] if axis > 0 else shape[axis]


def _batch_norm(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    c = _axis_size(shape, kw["axis"], "BatchNormalization")
    learned = int(kw["center"]) + int(kw["scale"])
    return shape, learned * c, 2 * c, 0, rf


def _layer_norm(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    c = _axis_size(shape, kw["axis"], "LayerNormalization")
    learned = int(kw["center"]) + int(kw["scale"])
    return shape, learned * c, 0, 0, rf


def _dense(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    units = kw["units"]
    c = shape[-1]
    params = units * c + (units if kw["use_bias"] else 0)
    positions = math.prod(shape[:-1])
    return shape[:-1] + (units,), params, 0, positions * c * units, rf if len(shape) == 3 else None


def _flatten(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    return (math.prod(shape),), 0, 0, 0, None


def _same_shape(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    return shape, 0, 0, 0, rf


def _spatial_dropout(kw: Mapping[str, Any], shape: Shape, rf: ReceptiveField | None) -> Outcome:
    _spatial(shape, "SpatialDropout2D")
    return shape, 0, 0, 0, rf


#: Keras class name -> its rule. Every type the spec language can produce is here (but
#: ``InputLayer``, which only gives a stack its input shape).
LAYER_ARITHMETIC: dict[str, Callable[..., Outcome]] = {
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


# --------------------------------------------------------------------------- one layer


def layer_result(
    type: str,
    shape: Shape,
    outcome: Outcome,
    kwargs: Mapping[str, Any],
    *,
    name: str | None = None,
) -> LayerResult:
    """The :class:`LayerResult` of a rule's outcome (``trainable=False`` moves every
    parameter to non-trainable); a :class:`SpecError` when an output dimension passes
    :data:`~convkit.arithmetic.limits.MAX_INT`."""
    out, trainable, non_trainable, macs, rf = outcome
    if max(out) > MAX_INT:
        raise SpecError(
            f"{type}: the output would have a dimension past {MAX_INT_TEXT}, the largest "
            f"size a tensor can have. Received: input_shape={shape_tuple(shape)}, "
            f"output_shape={shape_tuple(out)}"
        )
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


def _rule(type: str) -> Callable[..., Outcome]:
    try:
        return LAYER_ARITHMETIC[type]
    except KeyError:
        raise SpecError(
            f"unknown layer type. Received: type={type!r} "
            f"(known: {', '.join(sorted(LAYER_ARITHMETIC))})"
        ) from None


def analyze_parsed(
    type: str,
    kwargs: Mapping[str, Any],
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    receptive_field: ReceptiveField | None = None,
    start_field: bool = True,
) -> LayerResult:
    """:func:`analyze_layer` for arguments the spec layer normalised (a
    :class:`~convkit.arithmetic.spec.LayerSpec`'s ``kwargs``), trusted as they are."""
    rule = _rule(type)
    shape = tuple(int(v) for v in input_shape)
    if receptive_field is None and len(shape) == 3 and start_field:
        receptive_field = ReceptiveField()
    return layer_result(type, shape, rule(kwargs, shape, receptive_field), kwargs, name=name)


def analyze_layer(
    type: str,
    kwargs: Mapping[str, Any],
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    receptive_field: ReceptiveField | None = None,
    start_field: bool = True,
) -> LayerResult:
    """Output shape, parameters, MACs and receptive field of one Keras layer.

    ``type`` is the Keras class name (``"Conv2D"``), ``kwargs`` its constructor arguments as
    Keras names them (checked as a spec's are; missing ones take Keras's defaults),
    ``input_shape`` channels-last without the batch dimension. ``receptive_field`` is that
    of the input: ``None`` starts at one pixel when the input is spatial, unless
    ``start_field`` is False (a stack whose earlier layers lost track of it: global
    pooling, or numbers past :data:`~convkit.arithmetic.limits.MAX_INT`).
    """
    _rule(type)
    normalized = normalize_kwargs(KIND_BY_TYPE[type], kwargs)
    return analyze_parsed(
        type,
        normalized,
        input_shape,
        name=name,
        receptive_field=receptive_field,
        start_field=start_field,
    )

"""One layer from ``shape-calc``'s flags, explained: the formulas with the numbers put in.

:func:`single_layer` computes a convolution, a pooling window or a transposed convolution
with the same pieces as the layer rules (:mod:`convkit.arithmetic.rules`: windows, output
lengths, parameters, MACs, receptive field) and writes down how each number came about. It
also takes what Keras layers do not: ``full`` padding, an explicit number of zeros, a
different padding per axis (a transposed convolution with explicit padding follows
PyTorch's rule, see :mod:`convkit.arithmetic.formulas`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convkit.arithmetic.catalogue import KIND_BY_TYPE
from convkit.arithmetic.formatting import format_dims, format_padding, shape_tuple
from convkit.arithmetic.formulas import Padding, Window, resolve_padding, uncovered_rows
from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT
from convkit.arithmetic.normalize import ArgumentProblem, normalize_value, show_value
from convkit.arithmetic.results import LayerResult, ReceptiveField, StackResult
from convkit.arithmetic.rules import (
    Outcome,
    check_output_padding,
    check_stride_dilation,
    conv_outcome,
    layer_result,
    pool_outcome,
    transpose_axis,
    transpose_outcome,
    windows,
)
from convkit.errors import SpecError

__all__ = ["AxisExplanation", "SingleLayer", "single_layer"]

Pair = tuple[int, int]


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


@dataclass(frozen=True)
class _Layer:
    """The arguments of :func:`single_layer`, checked, as (height, width) pairs."""

    type: str  # Conv2D, MaxPooling2D or Conv2DTranspose
    shape: tuple[int, int, int]
    kernel: Pair
    strides: Pair
    dilation: Pair
    paddings: tuple[Padding, Padding]
    filters: int
    output_padding: Pair | None
    use_bias: bool
    default_stride: bool

    @property
    def pool(self) -> bool:
        return self.type == "MaxPooling2D"

    @property
    def transpose(self) -> bool:
        return self.type == "Conv2DTranspose"

    @property
    def kernel_word(self) -> str:
        return "pooling window" if self.pool else "kernel"

    @property
    def same_axes(self) -> bool:
        """Whether height and width are computed alike (then explained once)."""
        h, w, _ = self.shape
        pairs = (self.kernel, self.strides, self.dilation, self.paddings)
        same = h == w and all(pair[0] == pair[1] for pair in pairs)
        return same and (
            self.output_padding is None or self.output_padding[0] == self.output_padding[1]
        )


def single_layer(
    input_shape: Sequence[int | None],
    kernel: int | tuple[int, int] | None = None,
    *,
    stride: int | tuple[int, int] | None = None,
    padding: Padding | tuple[Padding, Padding] = "valid",
    dilation: int | tuple[int, int] = 1,
    filters: int = 1,
    pool: bool = False,
    transpose: bool = False,
    output_padding: int | tuple[int, int] | None = None,
    use_bias: bool = True,
) -> SingleLayer:
    """One layer from ``convkit shape-calc`` flags, with formulas and notes.

    A convolution (Conv2D); with ``pool`` a pooling window (no parameters; ``kernel``
    defaults to Keras's 2, the stride to the window, as in Keras); with ``transpose`` a
    transposed convolution (Conv2DTranspose). ``input_shape`` is ``(height, width,
    channels)``, channels None meaning 1. ``padding`` is ``"valid"``, ``"same"``,
    ``"full"``, an int (zero padding on each side) or a ``(height, width)`` pair of those.
    Raises :class:`SpecError` for an impossible layer.
    """
    layer = _checked(
        input_shape,
        kernel,
        stride,
        padding,
        dilation,
        filters,
        pool,
        transpose,
        output_padding,
        use_bias,
    )
    axes, outcome = _compute(layer)
    result = layer_result(layer.type, layer.shape, outcome, {}, name=KIND_BY_TYPE[layer.type].snake)
    params_formula, macs_formula = _cost_formulas(layer, result)
    notes: list[str] = []
    if "full" in layer.paddings:
        notes.append(
            "'full' pads k_eff − 1 on each side so every kernel tap meets every input pixel; "
            "Keras layers have no 'full' (use ZeroPadding2D)"
        )
    if layer.pool and layer.default_stride:
        notes.append("the stride defaults to the pooling window, as in Keras")
    return SingleLayer(
        result=result,
        axes=axes,
        params_formula=params_formula,
        macs_formula=macs_formula,
        description=_description(layer),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- arguments


def _value(kind: str, value: Any, name: str) -> Any:
    if isinstance(value, list):
        value = tuple(value)  # as the parser reads [3, 5]
    try:
        return normalize_value(kind, value, name)
    except ArgumentProblem as exc:
        raise SpecError(f"{exc}. Received: {name}={show_value(value)}") from None


def _checked(
    input_shape: Sequence[int | None],
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    filters: Any,
    pool: bool,
    transpose: bool,
    output_padding: Any,
    use_bias: bool,
) -> _Layer:
    if kernel is None and not pool:
        raise SpecError(
            "`kernel` is missing: one layer needs `input_shape` and `kernel` (e.g. "
            "`input_shape` 512 `kernel` 15), or give a layer spec for a stack"
        )
    if pool and transpose:
        raise SpecError("`pool` and `transpose` exclude each other: choose one layer kind")
    type_ = "MaxPooling2D" if pool else "Conv2DTranspose" if transpose else "Conv2D"
    h, w, c = input_shape
    shape = (int(h), int(w), 1 if c is None else int(c))  # type: ignore[arg-type]
    if min(shape) < 1:
        raise SpecError(f"the input must be positive. Received: input_shape={shape_tuple(shape)}")
    if max(shape) > MAX_INT:
        raise SpecError(
            f"`input_shape` must be at most {MAX_INT_TEXT} in each dimension, the largest "
            f"size a tensor can have. Received: input_shape={shape_tuple(shape)}"
        )
    if kernel is None:
        kernel = KIND_BY_TYPE["MaxPooling2D"].params[0].default  # Keras's pool_size
    kernel2 = _value("size", kernel, "pool_size" if pool else "kernel_size")
    strides = _value("size", (kernel2 if pool else 1) if stride is None else stride, "strides")
    dilation2 = _value("size", dilation, "dilation_rate")
    filters = _value("pos_int", filters, "filters")
    if pool:
        if dilation2 != (1, 1):
            raise SpecError(
                f"a pooling window has no dilation. Received: dilation_rate={dilation2}"
            )
        filters = shape[2]
    else:
        check_stride_dilation(type_, strides, dilation2)
    paddings = padding if isinstance(padding, tuple) else (padding, padding)
    for p in paddings:
        resolve_padding(1, 1, 1, p)  # validates
        if not isinstance(p, str) and max(p if isinstance(p, tuple) else (p,)) > MAX_INT:
            raise SpecError(f"`padding` must be at most {MAX_INT_TEXT}. Received: padding={p}")
    if transpose and "full" in paddings:
        raise SpecError(
            "padding 'full' is not defined for a transposed convolution; use 'valid', 'same' "
            "or a number. Received: padding='full'"
        )
    op2 = None
    if output_padding is not None:
        if not transpose:
            raise SpecError(
                "output padding only applies to a transposed convolution (`transpose`). "
                f"Received: output_padding={output_padding}"
            )
        op2 = _value("opt_size0", output_padding, "output_padding")
        check_output_padding(op2, strides, names=("`output_padding`", "`stride`"))
    return _Layer(
        type_, shape, kernel2, strides, dilation2, paddings, filters, op2, use_bias, stride is None
    )


# --------------------------------------------------------------------------- the axes


def _compute(layer: _Layer) -> tuple[tuple[AxisExplanation, ...], Outcome]:
    """Each axis computed and explained (once when both are alike), and the layer's
    outcome; an error naming the first axis that does not work."""
    h, w, c = layer.shape
    names = ("height and width",) if layer.same_axes else ("height", "width")
    rf = ReceptiveField()
    if layer.transpose:
        outs = [_transpose_axis(layer, i, axis) for i, axis in enumerate(("height", "width"))]
        explained = [_explain_transpose(layer, i, name, outs[i]) for i, name in enumerate(names)]
        outcome = transpose_outcome(
            (outs[0], outs[1]),
            layer.shape,
            layer.filters,
            layer.kernel,
            layer.strides,
            layer.dilation,
            rf,
            use_bias=layer.use_bias,
        )
        return tuple(explained), outcome
    found = windows(layer.shape, layer.kernel, layer.strides, layer.paddings, layer.dilation)
    for i, name in enumerate(names):
        _check_fits(layer, found[i], "height" if layer.same_axes else name)
    explained = [_explain_window(layer, i, name, found[i]) for i, name in enumerate(names)]
    if layer.pool:
        return tuple(explained), pool_outcome(found, c, rf)
    return tuple(explained), conv_outcome(found, c, layer.filters, rf, use_bias=layer.use_bias)


def _check_fits(layer: _Layer, win: Window, axis: str) -> None:
    if win.out > 0:
        return
    k, d = win.kernel, win.dilation
    kernel_text = f"{k}" if d == 1 else f"{k} (dilated: {d}·({k} − 1) + 1 = {win.kernel_eff})"
    kernel_name = "pool_size" if layer.pool else "kernel_size"
    padding = layer.paddings[0 if axis == "height" else 1]
    raise SpecError(
        f"the {layer.kernel_word} {kernel_text} is larger than the {win.padded_input(axis)}: "
        f"the output {axis} would be {win.out}. Received: input={win.n}, {kernel_name}={k}, "
        f"strides={win.stride}, padding={format_padding(padding)}, dilation_rate={d}"
    )


def _transpose_axis(layer: _Layer, i: int, axis: str) -> int:
    n, k, s = layer.shape[i], layer.kernel[i], layer.strides[i]
    d, p = layer.dilation[i], layer.paddings[i]
    op = None if layer.output_padding is None else layer.output_padding[i]
    out, problem = transpose_axis(axis, n, k, s, p, op, d)
    if problem:
        raise SpecError(
            f"Conv2DTranspose: {problem}. Received: input {axis}={n}, kernel_size={k}, "
            f"strides={s}, padding={format_padding(p)}, output_padding={op}, "
            f"dilation_rate={d}"
        )
    return out


def _dilation_notes(k: int, d: int) -> list[str]:
    if d == 1:
        return []
    return [f"effective kernel d·(k − 1) + 1 = {d}·({k} − 1) + 1 = {d * (k - 1) + 1}"]


def _explain_window(layer: _Layer, i: int, axis: str, win: Window) -> AxisExplanation:
    n, k, s, out, k_eff = win.n, win.kernel, win.stride, win.out, win.kernel_eff
    before, after = win.before, win.after
    notes = _dilation_notes(k, win.dilation)
    pad = f"2·{before}" if before == after else f"{before} + {after}"
    if layer.paddings[i] == "same":
        formula = f"{n} / {s} = {out}" if n % s == 0 else f"⌈{n} / {s}⌉ = {out}"
        notes.append(
            f"'same' pads max(({out} − 1)·{s} + {k_eff} − {n}, 0) = {before + after}: "
            f"{before} before, {after} after"
        )
    elif win.span % s == 0:
        formula = f"({n} + {pad} − {k_eff}) / {s} + 1 = {out}"
    else:
        formula = f"⌊({n} + {pad} − {k_eff}) / {s}⌋ + 1 = {out}"
    notes += _coverage_notes(layer, i, axis, win)
    return AxisExplanation(axis, n, out, formula, tuple(notes))


def _coverage_notes(layer: _Layer, i: int, axis: str, win: Window) -> list[str]:
    notes = []
    n, k, s, d = win.n, win.kernel, win.stride, win.dilation
    padded = win.before + win.after
    tail, gaps = uncovered_rows(n, k, s, layer.paddings[i], d)
    one, many = {
        "height": ("row", "rows"),
        "width": ("column", "columns"),
    }.get(axis, ("row and column", "rows and columns"))
    if win.span % s:
        left = win.span % s
        text = (
            f"stride {s} does not divide {win.span} (= {n} + {padded} − {win.kernel_eff}): "
            f"the last {left} {many if left > 1 else one} of the padded input "
            f"{'are' if left > 1 else 'is'} never covered by the {layer.kernel_word}"
        )
        if left > tail:
            text += f" ({tail} of them input, the rest padding)" if tail else " (all padding)"
        notes.append(text)
    if gaps:
        why = f"stride {s} > {layer.kernel_word} {k}" if d == 1 else f"dilation {d} leaves holes"
        notes.append(
            f"{gaps} input {many if gaps > 1 else one} between windows "
            f"{'are' if gaps > 1 else 'is'} never read ({why})"
        )
    return notes


def _explain_transpose(layer: _Layer, i: int, axis: str, out: int) -> AxisExplanation:
    n, k, s = layer.shape[i], layer.kernel[i], layer.strides[i]
    d, p = layer.dilation[i], layer.paddings[i]
    op = None if layer.output_padding is None else layer.output_padding[i]
    k_eff = d * (k - 1) + 1
    if p == "valid" and op is None:
        formula = f"({n} − 1)·{s} + {k_eff} = {out}"
        if k_eff < s:
            formula = f"({n} − 1)·{s} + max({k_eff}, {s}) = {out}"
    elif p == "valid":
        formula = f"({n} − 1)·{s} + {k_eff} + {op} = {out}"
    elif p == "same" and op is None:
        formula = f"{n}·{s} = {out}"
    elif p == "same":
        formula = f"({n} − 1)·{s} + {k_eff} mod 2 + {op} = {out}"
    else:
        before, after = resolve_padding(n, k, s, p, d)
        pad = f"2·{before}" if before == after else f"{before} − {after}"
        formula = f"({n} − 1)·{s} − {pad} + {k_eff}{f' + {op}' if op else ''} = {out}"
    return AxisExplanation(axis, n, out, formula, tuple(_dilation_notes(k, d)))


# --------------------------------------------------------------------------- the rest


def _cost_formulas(layer: _Layer, result: LayerResult) -> tuple[str, str]:
    """The parameters and MACs, with the numbers put in."""
    if layer.pool:
        return "0 (a pooling window has no weights)", "0 (no multiplications)"
    h, w, c = layer.shape
    kh, kw = layer.kernel
    filters, params, macs = layer.filters, result.params, result.macs
    bias = f" + {filters}" if layer.use_bias else ""
    params_formula = f"{filters}·({kh}·{kw}·{c}){bias} = {params:,}"
    if layer.use_bias:
        weights = params - filters
        params_formula += (
            f"   ({weights:,} weight{'s' if weights != 1 else ''} + "
            f"{filters} bias{'es' if filters != 1 else ''})"
        )
    if layer.transpose:
        return params_formula, f"{h}·{w}·{c}·({kh}·{kw}·{filters}) = {macs:,}"
    oh, ow, _ = result.output_shape
    return params_formula, f"{oh}·{ow}·{filters}·({kh}·{kw}·{c}) = {macs:,}"


def _description(layer: _Layer) -> str:
    """``convolution: kernel 15, stride 1, padding 0, dilation 1, 1 filter``."""
    pads = layer.paddings
    pad_desc = (
        format_padding(pads[0])
        if pads[0] == pads[1]
        else f"{format_padding(pads[0])}x{format_padding(pads[1])}"
    )
    parts = [
        f"{'window' if layer.pool else 'kernel'} {format_dims(layer.kernel)}",
        f"stride {format_dims(layer.strides)}",
        f"padding {pad_desc}",
    ]
    if not layer.pool:
        parts.append(f"dilation {format_dims(layer.dilation)}")
        parts.append(f"{layer.filters} filter{'s' if layer.filters != 1 else ''}")
    if layer.output_padding is not None:
        parts.append(f"output padding {format_dims(layer.output_padding)}")
    if not layer.use_bias and not layer.pool:
        parts.append("no bias")
    what = (
        "max pooling"
        if layer.pool
        else "transposed convolution"
        if layer.transpose
        else "convolution"
    )
    return f"{what}: " + ", ".join(parts)

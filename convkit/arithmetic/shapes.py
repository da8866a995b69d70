"""Exact shape, parameter and cost arithmetic of 2-D convolutional networks, in one import.

Everything here is plain integer arithmetic that agrees with what Keras 3 builds
(``data_format="channels_last"``, shapes without the batch dimension). It imports neither
Keras nor TensorFlow, so ``convkit shape-calc`` starts instantly;
``tests/test_shape_calc_keras.py`` proves the agreement against Keras itself.

The pieces, by concern:

* :mod:`~convkit.arithmetic.formulas`: the output length of one axis (padding, dilation,
  transposed convolutions), as plain functions;
* :mod:`~convkit.arithmetic.rules`: the rule of every layer type (output shape,
  parameters, MACs, receptive field);
* :mod:`~convkit.arithmetic.stack`: a whole stack, and its errors located in the spec;
* :mod:`~convkit.arithmetic.results`: what they find;
* :mod:`~convkit.arithmetic.explain`: one layer from ``shape-calc``'s flags, explained;
* :mod:`~convkit.arithmetic.formatting`: numbers and shapes as ``shape-calc`` prints them.

Errors are :class:`convkit.errors.SpecError`; their messages end Keras-style with what was
received (``... Received: kernel_size=(0, 3)``).
"""

from __future__ import annotations

from convkit.arithmetic.catalogue import INTERPOLATION_REACH
from convkit.arithmetic.explain import AxisExplanation, SingleLayer, single_layer
from convkit.arithmetic.formatting import format_bytes, format_count, format_shape
from convkit.arithmetic.formulas import (
    Padding,
    Window,
    conv_output_length,
    conv_transpose_output_length,
    effective_kernel,
    resolve_padding,
    same_padding,
    transpose_same_problem,
    uncovered_rows,
    window,
)
from convkit.arithmetic.results import (
    FLOAT32_BYTES,
    LayerResult,
    ReceptiveField,
    Shape,
    StackResult,
)
from convkit.arithmetic.rules import LAYER_ARITHMETIC, analyze_layer
from convkit.arithmetic.stack import InputShape, analyze_spec, analyze_stack
from convkit.errors import LayerError, SpecError

__all__ = [
    "FLOAT32_BYTES",
    "INTERPOLATION_REACH",
    "LAYER_ARITHMETIC",
    "AxisExplanation",
    "InputShape",
    "LayerError",
    "LayerResult",
    "Padding",
    "ReceptiveField",
    "Shape",
    "SingleLayer",
    "SpecError",
    "StackResult",
    "Window",
    "analyze_layer",
    "analyze_spec",
    "analyze_stack",
    "conv_output_length",
    "conv_transpose_output_length",
    "effective_kernel",
    "format_bytes",
    "format_count",
    "format_shape",
    "resolve_padding",
    "same_padding",
    "single_layer",
    "transpose_same_problem",
    "uncovered_rows",
    "window",
]

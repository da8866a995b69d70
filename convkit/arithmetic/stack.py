"""A whole stack of layers, as ``keras.Sequential`` would build it.

:func:`analyze_stack` runs each layer's rule (:mod:`convkit.arithmetic.rules`) in order;
an impossible layer is a :class:`~convkit.errors.LayerError` carrying its index.
:func:`analyze_spec` is the same for parsed spec layers, and points a caret at the layer
in the spec text: the one way a layer error becomes a spec error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from convkit.arithmetic.formatting import shape_tuple
from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT
from convkit.arithmetic.results import ReceptiveField, Shape, StackResult
from convkit.arithmetic.rules import analyze_layer, analyze_parsed
from convkit.arithmetic.spec import LayerSpec
from convkit.errors import LayerError, SpecError

__all__ = ["InputShape", "analyze_spec", "analyze_stack"]

#: An input shape ``(height, width, channels)``; an entry that is None comes from the
#: stack's leading ``input((H, W, C))`` layer (channels: 1 when there is none).
InputShape = Sequence[int | None]


def analyze_stack(layers: Iterable[Any], input_shape: InputShape | None = None) -> StackResult:
    """Analyse a stack of layers, in order, as ``keras.Sequential`` would build them.

    Each layer is a :class:`~convkit.arithmetic.spec.LayerSpec` (its arguments are trusted:
    the parser normalised them) or any object with ``type`` and ``kwargs`` attributes (and
    optionally ``name``), whose arguments are checked as a spec's. A leading ``InputLayer``
    supplies the input shape, or what ``input_shape`` leaves out (None entries); what
    ``input_shape`` gives wins. An impossible layer raises :class:`LayerError` with its
    index in ``layers``.
    """
    layers = list(layers)
    declared = None
    if layers and layers[0].type == "InputLayer":
        declared = tuple(layers[0].kwargs["shape"])
    shape = resolved = _input_shape(input_shape, declared)
    rf: ReceptiveField | None = ReceptiveField()
    results = []
    for index in range(1 if declared else 0, len(layers)):
        layer = layers[index]
        name = getattr(layer, "name", None) or layer.type
        where = f"layer {index + 1} ({name}, {layer.type})"
        if layer.type == "InputLayer":
            raise LayerError(
                f"{where}: an input layer can only come first. Received: position {index + 1}",
                index=index,
            )
        analyze = analyze_parsed if isinstance(layer, LayerSpec) else analyze_layer
        try:
            result = analyze(
                layer.type, layer.kwargs, shape, name=name, receptive_field=rf, start_field=False
            )
        except SpecError as exc:
            detail = str(exc).removeprefix(f"{layer.type}: ")
            raise LayerError(f"{where}: {detail}", index=index) from None
        results.append(result)
        shape, rf = result.output_shape, result.receptive_field
    return StackResult(input_shape=resolved, layers=tuple(results))


def analyze_spec(layers: Sequence[LayerSpec], input_shape: InputShape | None = None) -> StackResult:
    """:func:`analyze_stack` for parsed spec layers: an impossible layer is a
    :class:`~convkit.errors.SpecError` with a caret under that layer in the spec."""
    try:
        return analyze_stack(layers, input_shape)
    except LayerError as exc:
        raise layers[exc.index].error(exc.message) from None


def _input_shape(input_shape: InputShape | None, declared: Shape | None) -> Shape:
    given = (None, None, None) if input_shape is None else tuple(input_shape)
    if len(given) == 3:
        if declared is None and None in given[:2]:
            raise SpecError(
                "`input_shape` is missing: the stack needs an input size, e.g. `input_shape` "
                "224x224x3 (or start the spec with input((224, 224, 3)))"
            )
        fallback = declared if declared is not None else (None, None, 1)
        given = tuple(fallback[i] if v is None else v for i, v in enumerate(given))
    if len(given) != 3 or None in given or min(int(v) for v in given) < 1:  # type: ignore[arg-type]
        raise SpecError(
            "`input_shape` must be three positive integers (height, width, channels). "
            f"Received: input_shape={shape_tuple(given)}"  # type: ignore[arg-type]
        )
    if max(int(v) for v in given) > MAX_INT:  # type: ignore[arg-type]
        raise SpecError(
            f"`input_shape` must be at most {MAX_INT_TEXT} in each dimension, the largest "
            f"size a tensor can have. Received: input_shape={shape_tuple(given)}"  # type: ignore[arg-type]
        )
    return tuple(int(v) for v in given)  # type: ignore[arg-type]

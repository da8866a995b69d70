"""Keras models built from the layer-spec language (:mod:`convkit.arithmetic.spec`).

TensorFlow is imported through :func:`convkit.heavy.import_keras` the first time a Keras
command runs, never when convkit is imported: ``shape-calc`` and the OpenCV commands do not
pay its seconds of start-up. Shapes are channels-last, ``(H, W, C)`` without the batch
dimension, as everywhere in convkit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convkit.arithmetic.formatting import format_shape
from convkit.arithmetic.limits import show_int
from convkit.errors import SpecError, UsageError
from convkit.heavy import import_keras

if TYPE_CHECKING:
    from convkit.arithmetic.spec import LayerSpec


def check_seed(seed: int | None) -> int | None:
    """``seed`` if it is None or one Keras takes (``0 .. 2**31 − 1``, as training's);
    else a :class:`~convkit.errors.UsageError`."""
    if seed is not None and not 0 <= seed < 2**31:
        raise UsageError(f"`seed` must be between 0 and 2147483647, got {show_int(seed)}")
    return seed


def set_seed(seed: int | None) -> None:
    """Make weight initialisation, shuffling and dropout repeatable (Python, NumPy, TF)."""
    if check_seed(seed) is not None:
        import_keras().utils.set_random_seed(seed)


def split_input(layers: Sequence[LayerSpec]) -> tuple[tuple[int, ...] | None, list[LayerSpec]]:
    """Separate a spec's optional leading ``input((H, W, C))`` from its layers."""
    layers = list(layers)
    if layers and layers[0].type == "InputLayer":
        return tuple(layers[0].kwargs["shape"]), layers[1:]
    return None, layers


def make_layer(spec: LayerSpec, **overrides: Any):
    """One Keras layer object from one parsed layer; a refusal names the layer in the spec."""
    keras = import_keras()
    cls = getattr(keras.layers, spec.type, None)
    if cls is None:
        raise spec.error(f"Keras has no layer {spec.type!r}")
    try:
        return cls(name=spec.name, **{**spec.kwargs, **overrides})
    except (ValueError, TypeError) as exc:
        raise spec.error(f"Keras refuses {spec.text or spec.type}: {_first_line(exc)}") from None


def build_model(
    layers: Sequence[LayerSpec],
    input_shape: Sequence[int] | None = None,
    *,
    name: str = "convkit",
):
    """A functional ``keras.Model`` applying ``layers`` in order to ``input_shape``.

    ``input_shape`` defaults to the spec's own ``input(...)``; one of the two is required.
    Any layer Keras refuses to build on its input becomes a :class:`SpecError` pointing at it.
    """
    keras = import_keras()
    spec_shape, layers = split_input(layers)
    shape = tuple(input_shape) if input_shape is not None else spec_shape
    if shape is None:
        raise SpecError(
            "the model needs an input shape: give one, or start the spec with input((H, W, C))"
        )
    if not layers:
        raise SpecError("the spec has no layers")
    inputs = keras.Input(shape=shape, name="input")
    return keras.Model(inputs, apply_layers(layers, inputs), name=name)


def apply_layers(layers: Sequence[LayerSpec], x):
    """Apply each parsed layer to the symbolic tensor ``x`` in turn; return the last output.

    A layer Keras refuses on its input becomes a :class:`SpecError` pointing at it in the spec.
    """
    for spec in layers:
        layer = make_layer(spec)
        try:
            x = layer(x)
        except (ValueError, TypeError) as exc:
            shape = format_shape(tuple(x.shape)[1:], "x")
            raise spec.error(
                f"Keras cannot apply {spec.text or spec.type} to shape {shape}: {_first_line(exc)}"
            ) from None
    return x


def activation_model(model, layer_names: Sequence[str] | None = None):
    """A model with the same input whose outputs are the named layers' activations.

    ``layer_names`` defaults to every layer after the input. One forward pass then gives
    every feature map, in the order given.
    """
    keras = import_keras()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if layer_names is None:
        chosen = layers
    else:
        by_name = {layer.name: layer for layer in layers}
        missing = [n for n in layer_names if n not in by_name]
        if missing:
            known = ", ".join(by_name)
            raise SpecError(f"no layer named {', '.join(missing)} (layers: {known})")
        chosen = [by_name[n] for n in layer_names]
    return keras.Model(model.inputs, [layer.output for layer in chosen], name=f"{model.name}_maps")


def summary_rows(model) -> list[tuple[str, str, tuple[int, ...], int]]:
    """``(name, class, output shape without batch, parameters)`` for each layer of ``model``."""
    keras = import_keras()
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = tuple(int(d) for d in layer.output.shape[1:])
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    return rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

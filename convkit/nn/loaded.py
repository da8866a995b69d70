"""A network made of a Keras model already built (a trained one): ``convkit run --model``.

:func:`network_from_model` describes a loaded model's layers the way
:func:`convkit.nn.network.network_from_spec` describes a spec's (:class:`LayerInfo`: how
many maps, which filters they still belong to, whether they are still in pixel units), and
its arithmetic at its one input size as a :class:`~convkit.arithmetic.results.StackResult`
read off Keras's own output shapes and weights, so that the feature-map machinery
(:mod:`convkit.nn.extractor`, :mod:`convkit.nn.render`, :mod:`convkit.nn.writer`) runs it
unchanged: memory checks, montages with the first convolution's kernels, summaries.

Layers are the model's own (``model.layers``): a nested model counts as one layer. Which
layer a map comes from is followed through the model's graph (a layer's inbound layer),
so branches of a functional model are followed too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convkit.arithmetic.results import LayerResult, StackResult
from convkit.arithmetic.spec import LayerSpec
from convkit.errors import ModelError
from convkit.nn.network import (
    CHANNEL_PRESERVING,
    PICTURE_PRESERVING,
    LayerInfo,
    Network,
    _chosen_outputs,
)
from convkit.nn.text import describe_layer

if TYPE_CHECKING:
    import numpy as np

CONV_TYPES = frozenset({"Conv2D"})
"""Layers whose maps are filters of their own (their kernels are drawn beside the maps)."""

_PRESERVING = CHANNEL_PRESERVING | {"Rescaling", "Normalization"}
"""Channel ``i`` out is channel ``i`` in (a trained model's input scaling too)."""

_DESCRIBED = ("filters", "kernel_size", "pool_size", "strides", "padding", "dilation_rate")


def model_layers(model) -> list:
    """The layers of ``model`` after its input(s), in the model's order."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def inbound_layer(layer) -> Any | None:
    """The one layer whose output ``layer`` takes (None: the model's input, several
    inputs, or a graph Keras does not record)."""
    try:
        tensor = layer.input
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(tensor, (list, tuple)):
        return None
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    if operation is None or type(operation).__name__ == "InputLayer":
        return None
    return operation


def output_shape(layer) -> tuple[int, ...] | None:
    """A layer's output shape without the batch axis (None: several outputs or unknown)."""
    try:
        tensor = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(tensor, (list, tuple)):
        return None
    dims = tuple(tensor.shape)[1:]
    if any(not isinstance(d, int) for d in dims):
        return None
    return dims


def layer_spec(layer) -> LayerSpec:
    """A :class:`LayerSpec` describing a built Keras layer (for titles and summaries)."""
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    kwargs: dict[str, Any] = {}
    for key in _DESCRIBED:
        value = config.get(key)
        if value is not None:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    activation = config.get("activation")
    if isinstance(activation, str) and activation != "linear":
        kwargs["activation"] = activation
    if config.get("use_bias") is False:
        kwargs["use_bias"] = False
    return LayerSpec(type(layer).__name__, kwargs, layer.name)


def network_from_model(
    model,
    *,
    outputs: Sequence[str] | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    input_unit: float = 1.0,
    model_path: str | Path | None = None,
) -> Network:
    """A :class:`Network` of the built Keras ``model`` (one image input ``(H, W, 1 or 3)``).

    ``outputs`` name the layers whose maps are kept (default: every layer; an unknown name
    is a :class:`~convkit.errors.UsageError` listing the model's layers); ``prepare`` turns
    an image (as :func:`convkit.image.codec.read_image` gives it) into the model's input;
    ``input_unit`` brings that input's values to 8-bit pixel units (255 for a model that
    takes 0..1); ``model_path`` is the file it came from (no output may replace it).
    """
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    shape = tuple(inputs[0].shape)[1:] if len(inputs) == 1 else ()
    if len(shape) != 3 or any(not isinstance(d, int) for d in shape) or shape[2] not in (1, 3):
        raise ModelError(
            "feature maps need a model with one image input of a fixed (height, width, 1 or 3) "
            f"shape, this one takes {', '.join(str(tuple(t.shape)[1:]) for t in inputs)}",
            path=None if model_path is None else str(model_path),
        )
    height, width, channels = (int(d) for d in shape)
    layers = model_layers(model)
    specs = [layer_spec(layer) for layer in layers]
    results, infos = [], []
    origins: dict[str, str | None] = {}
    units: dict[str, bool] = {}
    for index, (layer, spec) in enumerate(zip(layers, specs, strict=True)):
        out = output_shape(layer)
        maps = int(out[-1]) if out is not None and len(out) == 3 else None
        source = inbound_layer(layer)
        origin_in = "input" if source is None else origins.get(source.name)
        units_in = True if source is None else units.get(source.name, False)
        if spec.type in CONV_TYPES:
            origin = layer.name
        elif spec.type in _PRESERVING and maps is not None:
            origin = origin_in
        else:
            origin = None
        pixel_units = units_in and spec.type in PICTURE_PRESERVING and maps is not None
        origins[layer.name], units[layer.name] = origin, pixel_units
        picture = pixel_units and channels == 3
        description = describe_layer(spec)
        infos.append(
            LayerInfo(index, layer.name, spec.type, maps, origin, picture, description, pixel_units)
        )
        params = int(layer.count_params())
        trainable = sum(math.prod(w.shape) for w in layer.trainable_weights)
        taken = (output_shape(source) if source is not None else None) or (height, width, channels)
        results.append(
            LayerResult(
                layer.name,
                spec.type,
                taken,
                out or (0,),
                trainable_params=trainable,
                non_trainable_params=max(0, params - trainable),
            )
        )
    names = [layer.name for layer in layers]
    return Network(
        layers=specs,
        channels=channels,
        outputs=_chosen_outputs(names, outputs),
        seed=None,
        input_hw=(height, width),
        spec_text="",
        infos=infos,
        model=model,
        model_path=None if model_path is None else Path(model_path),
        stack=StackResult((height, width, channels), tuple(results)),
        prepare=prepare,
        input_unit=input_unit,
    )

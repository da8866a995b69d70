"""Opening a trained model to look inside it, and finding its layers by name.

Every model is loaded through :func:`convkit.training.modelfile.load_model` (checked
first, safe mode), an image classifier through
:func:`convkit.training.predict.open_classifier`, so that images are prepared exactly as
``convkit predict`` prepares them (the model's size, gray or colour, its pixel scale).
Layers are the model's own (``model.layers``); a nested model is one layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convkit.defaults import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS
from convkit.errors import ModelError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from convkit.nn.network import Network
    from convkit.training.predict import Classifier

CONV_TYPES = ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D")
"""The 2-D convolutions: their filters are drawn (``kernels``) and the last one is where
Grad-CAM looks by default (``explain``)."""

_SHOWN = 40  # names listed in a message before "..."


def listed(names: Sequence[str]) -> str:
    """``a, b, c`` (the first :data:`_SHOWN`, then how many more)."""
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f", ... ({more:,} more)" if more > 0 else "")


def open_model(path: str | Path, *, max_memory: int = DEFAULT_MAX_MEMORY):
    """``(model, path)``: any Keras model file (or a results folder's ``model.keras``),
    checked and loaded in safe mode."""
    from convkit.training.modelfile import load_model, resolve_model_path

    resolved = resolve_model_path(path)
    return load_model(resolved, max_memory=max_memory), resolved


def open_image_classifier(
    path: str | Path,
    *,
    labels: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Classifier:
    """An image classifier, as ``predict`` opens it (a model that is not one is a
    :class:`~convkit.errors.ModelError`)."""
    from convkit.training.predict import open_classifier

    return open_classifier(path, labels=labels, max_pixels=max_pixels, max_memory=max_memory)


def preparation(classifier: Classifier) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """``(prepare, unit)``: an image (as :func:`convkit.image.codec.read_image` gives it)
    to the classifier's input, as ``predict`` prepares it; and the factor that brings that
    input back to 8-bit pixel units."""
    return classifier.prepare_array, 1.0 / classifier.shape.scale


def layer_names(model) -> list[str]:
    from convkit.nn.loaded import model_layers

    return [layer.name for layer in model_layers(model)]


def find_layer(model, name: str, *, param: str = "layer"):
    """The layer called ``name``; a :class:`UsageError` listing the layers there are."""
    from convkit.nn.loaded import model_layers

    for layer in model_layers(model):
        if layer.name == name:
            return layer
    raise UsageError(
        f"`{param}`: the model has no layer named {name!r} (its layers: "
        f"{listed(layer_names(model))})"
    )


def conv_layers(model, *, path: str | Path | None = None) -> list:
    """The model's 2-D convolution layers, in order; a :class:`ModelError` when it has none."""
    from convkit.nn.loaded import model_layers

    found = [layer for layer in model_layers(model) if type(layer).__name__ in CONV_TYPES]
    if not found:
        nested = [layer.name for layer in model_layers(model) if _holds_conv(layer)]
        hint = (
            f" (the nested model {listed(nested)} holds convolutions, but only the model's "
            "own layers are looked at: build it without nesting)"
            if nested
            else ""
        )
        raise ModelError(
            "the model has no convolution layer (Conv2D, Conv2DTranspose, DepthwiseConv2D, "
            f"SeparableConv2D) to look at; its layers: {listed(layer_names(model))}{hint}",
            path=None if path is None else str(path),
        )
    return found


def _holds_conv(layer) -> bool:
    """Whether ``layer`` is a model with a 2-D convolution somewhere inside."""
    return any(
        type(inner).__name__ in CONV_TYPES or _holds_conv(inner)
        for inner in getattr(layer, "layers", None) or ()
    )


def pick_conv_layers(model, names: Sequence[str] | None, *, path=None) -> list:
    """The named convolution layers (default: all of them), in the model's order; a name
    that is not a layer, or not a convolution, is a :class:`UsageError` listing those
    there are."""
    convs = conv_layers(model, path=path)
    if not names:
        return convs
    conv_names = [layer.name for layer in convs]
    for name in names:
        layer = find_layer(model, name, param="layers")
        if layer.name not in conv_names:
            raise UsageError(
                f"`layers`: {name!r} is a {type(layer).__name__} layer, not a convolution "
                f"(the convolution layers: {listed(conv_names)})"
            )
    wanted = set(names)
    return [layer for layer in convs if layer.name in wanted]


def model_network(
    path: str | Path,
    *,
    outputs: Sequence[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Network:
    """The trained image classifier at ``path`` as a feature-map
    :class:`~convkit.nn.network.Network` (``convkit run --model``): its own layers and
    weights, images prepared as it was trained."""
    from convkit.nn.loaded import network_from_model

    classifier = open_image_classifier(path, max_pixels=max_pixels, max_memory=max_memory)
    from convkit.training.cluster_predict import TrainedNetwork

    prepare, unit = preparation(classifier)
    network = network_from_model(
        classifier.model,
        outputs=outputs,
        prepare=prepare,
        input_unit=unit,
        model_path=classifier.path,
    )
    network.rebuild = TrainedNetwork.of(classifier, outputs, max_memory)
    return network

"""The classifier a run trains: a layer spec on top of ``Rescaling(1/255)``, with a softmax
head added when the spec lacks one (:func:`build_classifier`).

Every model starts with ``Rescaling(1/255)``, so the saved model takes pixel values 0..255 as
they are. The image size is the data's (``x.shape[1:]``); the named models (``small``,
``classic``) are in :mod:`convkit.training.config`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from convkit.arithmetic.formatting import format_bytes, format_shape
from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import SpecError, UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.results import StackResult
    from convkit.arithmetic.spec import LayerSpec
    from convkit.training.config import TrainConfig


def _is_softmax(spec: LayerSpec) -> bool:
    if spec.type == "Softmax":
        return True
    return spec.type in ("Activation", "Dense") and spec.kwargs.get("activation") == "softmax"


def check_spec_input(
    layers: Sequence[LayerSpec], image_shape: Sequence[int], *, images: str = "the images"
) -> list[LayerSpec]:
    """The layers after an optional ``input(...)`` of ``image_shape``; another input shape
    is an error (``images`` names the data in it, like "CIFAR-10 images")."""
    from convkit.nn.models import split_input

    spec_shape, body = split_input(layers)
    if spec_shape is not None and tuple(spec_shape) != tuple(image_shape):
        raise layers[0].error(
            f"{images} are {format_shape(image_shape, 'x')}, "
            f"the spec's input is {format_shape(spec_shape, 'x')}"
        )
    if not body:
        raise SpecError("the spec has no layers")
    return body


def config_layers(config: TrainConfig, num_classes: int) -> list[LayerSpec]:
    """The parsed layers of ``config``: its spec, or its named model's."""
    from convkit.arithmetic.spec import parse_spec
    from convkit.training.config import model_spec_text

    if config.spec is not None:
        return parse_spec(config.spec)
    return parse_spec(model_spec_text(config.model, num_classes))


def training_memory(stack: StackResult, num_classes: int, batch_size: int) -> tuple[int, int]:
    """What one training step needs, as float32: ``(weights, activations)``. The weights
    (with the head convkit adds when the spec lacks one) four times: themselves, their
    gradients and Adam's two moments; every layer's output, input included, twice (kept for
    the backward pass, and its gradient) for each of ``batch_size`` images."""
    out = math.prod(stack.output_shape)
    params = stack.total_params
    if tuple(stack.output_shape) != (num_classes,):
        params += out * num_classes + num_classes
    activations = (stack.input_bytes + stack.activation_bytes) * batch_size * 2
    return params * 4 * 4, activations


def check_stack(
    config: TrainConfig,
    num_classes: int,
    image_shape: Sequence[int],
    *,
    images: str = "the images",
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> None:
    """Shape arithmetic before TensorFlow is even imported: a spec that cannot work on
    ``image_shape`` images is refused in a fraction of a second, pointing at the layer, and
    so is one whose training step would need more than ``max_memory`` bytes
    (:func:`training_memory`): ``conv2d(100000, 3)`` on CIFAR would need 49 GiB."""
    from convkit.arithmetic.stack import analyze_spec, analyze_stack
    from convkit.errors import LayerError

    if max_memory < 1:
        raise UsageError(f"`max_memory` must be at least 1 byte, got {max_memory}")
    layers = config_layers(config, num_classes)
    check_spec_input(layers, image_shape, images=images)
    if config.spec is None:
        # A named model the user did not write: no caret under its spec, but the size.
        try:
            stack = analyze_stack(layers, tuple(image_shape))
        except LayerError as exc:
            raise UsageError(
                f"{images} at {format_shape(tuple(image_shape)[:2], 'x')} are too small for "
                f"the {config.model} model ({exc.message}): give a larger `image_size`"
            ) from None
    else:
        stack = analyze_spec(layers, tuple(image_shape))
    weights, activations = training_memory(stack, num_classes, config.batch_size)
    if weights + activations > max_memory:
        raise UsageError(
            f"training this model on batches of {config.batch_size} would need "
            f"{format_bytes(weights + activations)} (float32 weights, their gradients and "
            f"Adam's moments: {format_bytes(weights)}; a batch's layer outputs and their "
            f"gradients: {format_bytes(activations)}), more than `max_memory` "
            f"{format_bytes(max_memory)}: use a smaller model or `batch_size`, or raise "
            "`max_memory`"
        )


def build_classifier(
    layers: Sequence[LayerSpec],
    num_classes: int,
    image_shape: Sequence[int],
    *,
    images: str = "the images",
    name: str = "classifier",
):
    """A Keras model for uint8-range images of ``image_shape``: ``Rescaling(1/255)``, the
    layers, a head.

    The head is "missing" unless the spec ends in a softmax over ``num_classes`` outputs
    (``dense(10, activation=softmax)``, or ``dense(10) softmax``). What is added then:

    * a spec ending in ``dense(num_classes)`` with no activation gets a ``softmax``;
    * otherwise ``flatten`` (when the output still has a spatial shape) and
      ``dense(num_classes, activation=softmax)``.

    A softmax over another number of outputs is an error, as is an ``input(...)`` shape other
    than ``image_shape``. Returns ``(model, added)``, ``added`` naming the layers put in.
    """
    from convkit.heavy import import_keras
    from convkit.nn.models import apply_layers

    keras = import_keras()
    body = check_spec_input(layers, image_shape, images=images)
    used = {spec.name for spec in body}

    def free(base: str) -> str:
        candidate, n = base, 1
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        return candidate

    inputs = keras.Input(shape=tuple(image_shape), name=free("image"))
    x = keras.layers.Rescaling(1.0 / 255, name=free("rescale_0_1"))(inputs)
    x = apply_layers(body, x)
    last = body[-1]
    outputs = int(x.shape[-1]) if x.shape[-1] is not None else None
    flat = len(x.shape) == 2
    added: list[str] = []
    if _is_softmax(last) and flat and outputs == num_classes:
        pass
    elif _is_softmax(last):
        raise last.error(
            f"the spec ends in a softmax over {x.shape[1:]} outputs, but the data has "
            f"{num_classes} classes: end with dense({num_classes}, activation=softmax), "
            "or leave the head out and convkit adds it"
        )
    elif (
        last.type == "Dense"
        and outputs == num_classes
        and last.kwargs.get("activation") in (None, "linear")
        and flat
    ):
        x = keras.layers.Activation("softmax", name=free("head_softmax"))(x)
        added.append("softmax")
    else:
        if not flat:
            x = keras.layers.Flatten(name=free("head_flatten"))(x)
            added.append("flatten")
        x = keras.layers.Dense(num_classes, activation="softmax", name=free("head_dense"))(x)
        added.append(f"dense({num_classes}, activation=softmax)")
    return keras.Model(inputs, x, name=name), added


def compile_model(model, learning_rate: float) -> None:
    """Adam, sparse categorical cross-entropy, accuracy."""
    from convkit.heavy import import_keras

    keras = import_keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

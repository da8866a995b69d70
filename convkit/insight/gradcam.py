"""Grad-CAM on Keras 3: which parts of an image made a classifier choose a class.

Grad-CAM (Selvaraju et al., 2017) looks at one convolution layer's output ``A`` (``h x w``
maps ``A_k``) and a class score ``y_c`` taken *before* the softmax:

* ``alpha_k = mean over (i, j) of d y_c / d A_k[i, j]``: how much map ``k`` matters to the
  class, from the gradient (``tf.GradientTape`` on the layer's output);
* ``cam = ReLU(sum_k alpha_k A_k)``: where the maps that speak for the class are active.

The score before the softmax: a softmax's output for one class also falls when another
class's evidence grows, which blurs the map. So :func:`class_scores` finds the model's
pre-softmax tensor: the input of a final ``Softmax`` layer or ``Activation("softmax")``,
or, for a last layer with a softmax (or sigmoid) activation of its own (``Dense(K,
activation="softmax")``), the same layer rebuilt with a linear activation and the learned
weights, applied to that layer's input. A model whose output is already linear is used as
it is. Works alike for Sequential and functional models loaded from disk (both have a
graph of symbolic tensors in Keras 3).

Everything here works on model inputs (prepared images) and NumPy arrays; reading images,
batching and writing are :mod:`convkit.insight.explain`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convkit.errors import ModelError, UsageError

_SQUASHING = ("softmax", "sigmoid")


def _activation_name(layer) -> str | None:
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    value = config.get("activation")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class _Graph:
    """A model's symbolic graph: its inputs, and each layer's output and input tensor."""

    inputs: Any
    outputs: dict[str, Any]
    inputs_of: dict[str, Any]
    last: Any  # the layer that gives the model's output


def model_graph(model) -> _Graph:
    """The tensors of ``model``'s graph. A functional model's are its layers' own; a
    Sequential model's layers are called again on a new input, once each, so that every
    tensor belongs to one graph (a loaded Sequential model's layers may hold the nodes of
    two, whose tensors no gradient connects)."""
    from convkit.heavy import import_keras

    keras = import_keras()
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if type(model).__name__ != "Sequential":
        outputs = {layer.name: layer.output for layer in layers}
        inputs_of = {layer.name: layer.input for layer in layers}
        history = getattr(model.outputs[0], "_keras_history", None)
        return _Graph(model.inputs, outputs, inputs_of, getattr(history, "operation", None))
    inputs = keras.Input(shape=tuple(model.inputs[0].shape)[1:], dtype=model.inputs[0].dtype)
    x, outputs, inputs_of = inputs, {}, {}
    for layer in layers:
        inputs_of[layer.name] = x
        x = layer(x)
        outputs[layer.name] = x
    return _Graph([inputs], outputs, inputs_of, layers[-1] if layers else None)


def class_scores(graph: _Graph) -> tuple[Any, Any, str]:
    """``(scores, output, how)``: the model's class scores before its softmax and its
    output (symbolic tensors of ``graph``), and how the scores were found, in words."""
    last = graph.last
    if last is None:
        raise ModelError("the model has no layers: nothing gives its class scores")
    output, taken = graph.outputs[last.name], graph.inputs_of[last.name]
    kind = type(last).__name__
    activation = _activation_name(last)
    if kind == "Softmax" or (kind == "Activation" and activation in _SQUASHING):
        return taken, output, f"the input of its {activation or 'softmax'} layer {last.name}"
    if activation in _SQUASHING:
        config = dict(last.get_config())
        config["activation"] = "linear"
        config["name"] = f"{last.name}_scores"
        try:
            linear = type(last).from_config(config)
            scores = linear(taken)
            linear.set_weights(last.get_weights())
        except (ValueError, TypeError, KeyError) as exc:
            text = str(exc).strip()
            raise ModelError(
                f"cannot take the class scores before the {activation} of layer {last.name} "
                f"({text.splitlines()[0] if text else type(exc).__name__})"
            ) from None
        return scores, output, f"layer {last.name} without its {activation}"
    return output, output, "the model's output (no softmax)"


@dataclass
class GradCam:
    """A classifier opened for Grad-CAM at one layer (see :func:`gradcam_model`)."""

    model: Any
    """input -> [the layer's output, the class scores before the softmax, the model's output]"""
    layer: str
    layer_shape: tuple[int, int, int]
    scores: str
    """Where the scores before the softmax come from, in words."""

    def explain(
        self, batch: np.ndarray, choose: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cams, classes, probabilities)`` for a batch of model inputs ``(B, H, W, C)``.

        ``choose(probabilities)`` gets the model's class probabilities ``(B, K)`` and
        returns the classes to explain per image, ``(B, R)`` int; ``cams`` is then
        ``(B, R, h, w)`` float32 at the layer's resolution (ReLU'd, not normalised). One
        forward pass; one gradient per rank."""
        from convkit.heavy import import_tensorflow
        from convkit.training.predict import as_probabilities

        tf = import_tensorflow()
        x = tf.convert_to_tensor(np.asarray(batch, np.float32))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            maps, scores, outputs = self.model([x], training=False)
            probs = as_probabilities(np.asarray(outputs))
            classes = np.asarray(choose(probs), dtype=np.int64).reshape(len(batch), -1)
            chosen = [
                tf.gather(scores, classes[:, r], axis=1, batch_dims=1)
                for r in range(classes.shape[1])
            ]
        cams = []
        for target in chosen:
            grads = tape.gradient(target, maps)
            weights = tf.reduce_mean(grads, axis=(1, 2))
            cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", maps, weights))
            cams.append(np.asarray(cam, dtype=np.float32))
        del tape
        return np.stack(cams, axis=1), classes, probs


def gradcam_model(model, layer) -> GradCam:
    """A :class:`GradCam` of ``model`` at ``layer`` (a layer object of the model with a
    spatial output ``(h, w, k)``; anything else is a :class:`UsageError`)."""
    from convkit.heavy import import_keras

    keras = import_keras()
    shape = tuple(layer.output.shape)[1:]
    if len(shape) != 3 or any(not isinstance(d, int) for d in shape):
        raise UsageError(
            f"`layer` {layer.name} ({type(layer).__name__}) has output shape "
            f"{tuple(layer.output.shape)[1:]}: Grad-CAM needs a layer with spatial maps "
            "(height, width, channels), such as a convolution"
        )
    graph = model_graph(model)
    scores, output, how = class_scores(graph)
    grad_model = keras.Model(
        graph.inputs, [graph.outputs[layer.name], scores, output], name=f"{model.name}_gradcam"
    )
    return GradCam(grad_model, layer.name, (int(shape[0]), int(shape[1]), int(shape[2])), how)


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``(h, w)`` Grad-CAM map at ``height x width`` (bilinear), float32, never below 0."""
    from convkit.heavy import import_cv2

    cv2 = import_cv2()
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape == (height, width):
        return cam.copy()
    big = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.maximum(big, 0, dtype=np.float32)


def over_picture(
    cam: np.ndarray,
    height: int,
    width: int,
    *,
    input_size: tuple[int, int],
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """The Grad-CAM map of a model input of ``input_size`` (H, W) over the picture it was
    prepared from (``height x width``). With ``box`` (top, left, h, w: where the picture lies
    in a padded input, :func:`convkit.training.preparation.content_box`) the map is first
    brought to the input's size and cut to the box, so the padding is not stretched over
    the picture."""
    if box is not None:
        top, left, box_h, box_w = box
        cam = upsample(cam, *input_size)[top : top + box_h, left : left + box_w]
    return upsample(cam, height, width)


def normalised(cam: np.ndarray) -> np.ndarray:
    """``cam`` divided by its maximum (0..1); all zeros stays zeros."""
    top = float(cam.max()) if cam.size else 0.0
    return cam / np.float32(top) if top > 0 else np.zeros_like(cam, dtype=np.float32)

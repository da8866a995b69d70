"""Classifying images with a trained model (``convkit predict``).

* The model is loaded with ``keras.saving.load_model(..., safe_mode=True)``: a ``.keras``
  file cannot run arbitrary code (Lambda layers holding Python bytecode are refused), and
  is checked before Keras reads it (:mod:`convkit.training.modelfile`): sizes, ratios,
  names, and the weights its configuration declares.
* What one image costs (the model's input as float32, plus its layers' outputs) is known
  once the model is loaded, before any image is read: over ``max_memory`` the model is
  refused (a model that declares a 100000x100000 input is not resized into), and the
  images held and put through the model at once are as many as the budget allows.
* It must be an image classifier: one input ``(H, W, C)`` with C = 1 or 3, one output of
  ``K`` class scores.
* A model that convkit trained carries its class names and how its images were prepared
  inside its own file (:mod:`convkit.training.metadata`): each image is prepared exactly as
  training prepared its images (size, gray or colour, stretched or padded to keep the
  aspect, the interpolation: :func:`convkit.training.preparation.prepare_pixels`), then
  scaled as the model takes it. The metadata must agree with the model (input size,
  channels, number of classes), or the model is refused.
* Any other model is prepared the way training saw CIFAR: 8-bit RGB (16-bit is scaled down,
  alpha dropped, gray repeated to three channels, or colour turned to gray with OpenCV's
  weights for a 1-channel model: :func:`convkit.nn.inputs.model_input`), resized to the
  model's input with area interpolation (the whole image, aspect ratio not kept, as CIFAR's
  pictures were made), float32. Pixel values stay 0..255 when the model starts with a
  ``Rescaling`` layer (every ``train-cifar`` model does); other models get 0..1, the usual
  Keras convention.
* Class names come from ``labels``, else the model file's own, else ``labels.txt`` (or
  ``metrics.json``) beside the model, else CIFAR-10's names for a 10-class model, else
  ``class N`` (:func:`convkit.training.labels.class_names_for`).
* Many images: :func:`open_classifier` once, then :meth:`Classifier.classify` reads them in
  parallel on the executor (:mod:`convkit.engine.executor`) and puts them through the model
  in batches; one result per image, in input order, and a failed image never stops the
  others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.defaults import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS
from convkit.engine.executor import BatchOptions, BatchReport
from convkit.errors import ModelError, UsageError
from convkit.training.labels import class_names_for
from convkit.training.metadata import ModelMetadata, read_metadata
from convkit.training.modelfile import (
    load_model,
    resolve_model_path,
)

if TYPE_CHECKING:
    from convkit.image.sources import Source


@dataclass(frozen=True)
class ModelShape:
    height: int
    width: int
    channels: int
    classes: int
    scale: float  # multiply 0..255 pixels by this before feeding the model


def inspect_model(model, *, name: str = "model") -> ModelShape:
    """Check ``model`` is an image classifier and describe what it takes and gives."""
    from convkit.heavy import import_keras

    keras = import_keras()
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs; "
            "predict needs one image input and one output of class scores",
            path=name,
        )
    shape = tuple(inputs[0].shape)[1:]
    if len(shape) != 3 or any(d is None for d in shape) or shape[2] not in (1, 3):
        shown = "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
        raise ModelError(
            f"wrong input shape {shown}: predict needs a fixed (height, width, 1 or 3) image input",
            path=name,
        )
    out = tuple(outputs[0].shape)[1:]
    if len(out) != 1 or out[0] is None or out[0] < 2:
        raise ModelError(
            f"the model's output has shape {out}; predict needs one score per class", path=name
        )
    first = next(
        (layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)), None
    )
    scale = 1.0 if isinstance(first, keras.layers.Rescaling) else 1.0 / 255
    return ModelShape(int(shape[0]), int(shape[1]), int(shape[2]), int(out[0]), scale)


def _activation_bytes(model) -> int:
    """The float32 outputs of every layer of ``model`` for one image (an upper bound of
    what a forward pass keeps alive); layers whose output is unknown count nothing."""
    total = 0
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue  # the input itself, counted apart
        try:
            outputs = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        for tensor in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            dims = tuple(getattr(tensor, "shape", ()) or ())[1:]
            if dims and all(isinstance(d, int) for d in dims):
                total += math.prod(dims) * 4
    return total


def plan_batches(model, shape: ModelShape, max_memory: int, *, name: str) -> tuple[int, int]:
    """How many prepared images to hold, and how many to put through the model at once,
    within ``max_memory``; a model whose one image would not fit is refused."""
    from convkit.arithmetic.formatting import format_bytes

    if max_memory < 1:
        raise UsageError(f"`max_memory` must be at least 1 byte, got {max_memory}")
    image = shape.height * shape.width * shape.channels * 4
    per_image = image + _activation_bytes(model)
    if per_image > max_memory:
        raise ModelError(
            f"the model takes {shape.height}x{shape.width}x{shape.channels} images: "
            f"{format_bytes(image)} each as float32 ({format_bytes(per_image)} with its "
            f"layers' outputs), over `max_memory` ({format_bytes(max_memory)})",
            path=name,
        )
    return max(1, min(256, max_memory // 2 // image)), max(1, min(64, max_memory // 2 // per_image))


def prepare_image(
    image: np.ndarray, shape: ModelShape, preparation: dict[str, Any] | None = None
) -> np.ndarray:
    """An image as :func:`convkit.image.codec.read_image` gives it (gray/BGR/BGRA, 8/16-bit)
    to the float32 ``(H, W, C)`` array the model takes, times the model's scale. With the
    ``preparation`` the model was trained with: exactly as training prepared its images
    (:func:`convkit.training.preparation.prepare_pixels`); without: the model's input
    (:func:`convkit.nn.inputs.model_input`) in 8-bit units, resized with area
    interpolation."""
    from convkit.heavy import import_cv2
    from convkit.nn.inputs import eight_bit_scale, model_input

    if preparation is not None:
        from convkit.training.preparation import prepare_pixels

        return prepare_pixels(image, preparation).astype(np.float32) * np.float32(shape.scale)
    pixels = model_input(image, shape.channels)
    pixels *= eight_bit_scale(image.dtype)
    if pixels.shape[:2] != (shape.height, shape.width):
        cv2 = import_cv2()
        pixels = cv2.resize(pixels, (shape.width, shape.height), interpolation=cv2.INTER_AREA)
        pixels = pixels.reshape(shape.height, shape.width, shape.channels)
    return (pixels * shape.scale).astype(np.float32)


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores that are not already probabilities (a model without softmax) go through one."""
    scores = np.asarray(scores, dtype=np.float64)
    sums = scores.sum(axis=1)
    if np.all(scores >= 0) and np.allclose(sums, 1.0, atol=1e-3):
        return scores
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def top_k(probs: np.ndarray, names: Sequence[str], k: int) -> list[dict]:
    """The ``k`` likeliest classes: ``[{"class", "index", "probability"}, ...]``."""
    k = max(1, min(k, len(names)))
    order = np.argsort(-probs, kind="stable")[:k]
    return [
        {"class": names[i], "index": int(i), "probability": round(float(probs[i]), 6)}
        for i in order
    ]


def predict_arrays(model, batch: np.ndarray, *, per_call: int = 64) -> np.ndarray:
    """Class probabilities of a stack of prepared images, ``per_call`` at a time."""
    if len(batch) == 0:
        return np.zeros((0, 0))
    scores = model.predict(batch, batch_size=max(1, min(len(batch), per_call)), verbose=0)
    return as_probabilities(scores)


@dataclass(frozen=True)
class Prediction:
    """The likeliest classes of one image (``predictions`` as :func:`top_k` gives them)."""

    path: str
    predictions: list[dict]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "predictions": self.predictions}


@dataclass
class Classifier:
    """A loaded model with what it takes, its class names, and how to answer."""

    model: Any
    path: Path
    shape: ModelShape
    class_names: list[str]
    note: str | None  # where the class names came from, when that is a guess
    top_k: int = 3
    max_pixels: int = DEFAULT_MAX_PIXELS
    held: int = 256  # prepared images held for one call of the model
    per_call: int = 64  # images the model takes at once
    metadata: ModelMetadata | None = None  # what the model file says of itself
    max_memory: int = DEFAULT_MAX_MEMORY  # the budget it was opened with (cluster workers too)

    @property
    def preparation(self) -> dict[str, Any] | None:
        """How the model's training images were prepared (``None``: a model that does not
        say; then CIFAR's way, :func:`prepare_image`)."""
        return self.metadata.preparation.to_json() if self.metadata is not None else None

    def describe_preparation(self) -> str:
        """One line for people: how each image is prepared for this model."""
        if self.metadata is not None:
            return self.metadata.preparation.describe()
        shape = self.shape
        color = "gray" if shape.channels == 1 else "rgb"
        pixels = "0..255" if shape.scale == 1.0 else "0..1"
        return (
            f"{shape.height}x{shape.width} {color}, stretched, area interpolation, "
            f"pixels {pixels} (the model does not say how it was trained: CIFAR's way)"
        )

    def prepare(self, source: Source) -> np.ndarray:
        """Read one image and prepare it for the model."""
        from convkit.image.codec import read_image

        image = read_image(source, max_pixels=self.max_pixels)
        return self.prepare_array(image)

    def prepare_array(self, image: np.ndarray) -> np.ndarray:
        """A decoded image (gray/BGR/BGRA, 8/16-bit) prepared for the model."""
        return prepare_image(image, self.shape, self.preparation)

    def classify(
        self, sources: Sequence[Source], options: BatchOptions | None = None, *, batch: int = 256
    ) -> BatchReport[Prediction]:
        """The :class:`Prediction` of every source, in input order (``None`` where one
        failed), on the executor: images are read on ``options.jobs`` threads and go
        through the model ``batch`` at a time (on a cluster: each image a task,
        :mod:`convkit.training.cluster_predict`)."""
        from convkit.image.sources import sources_scope

        scope = sources_scope(sources, options)  # a shard's part, a manifest
        sources, options = scope.pick(sources), scope.options
        if options.on_cluster:
            from convkit.training.cluster_predict import classify_on_cluster

            with scope:
                return scope.finish(classify_on_cluster(self, sources, options))
        ready: list[tuple[int, np.ndarray]] = []
        with scope, options.executor(len(sources)) as executor:
            read = executor.map(lambda i: self.prepare(sources[i]), range(len(sources)))
            for index, pixels in read:
                ready.append((index, pixels))
                if len(ready) >= min(batch, self.held):
                    self._answer(executor, sources, ready)
                    ready = []
            self._answer(executor, sources, ready)
        return scope.finish(executor.report)

    def answer(self, model, pixels: np.ndarray, name: str) -> Prediction:
        """One prepared image through ``model`` (this classifier's, as a cluster's worker
        loaded it): its :class:`Prediction`."""
        (probs,) = predict_arrays(model, pixels[np.newaxis], per_call=1)
        return Prediction(name, top_k(probs, self.class_names, self.top_k))

    def _answer(self, executor, sources: Sequence[Source], ready) -> None:
        if not ready:
            return
        probs = predict_arrays(
            self.model, np.stack([pixels for _, pixels in ready]), per_call=self.per_call
        )
        for (index, _), row in zip(ready, probs, strict=True):
            best = top_k(row, self.class_names, self.top_k)
            executor.succeed(index, Prediction(sources[index].display, best))


def open_classifier(
    model: str | Path,
    *,
    labels: str | Path | None = None,
    top_k: int = 3,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Classifier:
    """Load ``model`` (a ``.keras`` file or a results folder) in safe mode, check it is an
    image classifier that fits ``max_memory`` (bytes), and find its class names
    (``labels``: a file of them)."""
    if top_k < 1:
        raise UsageError(f"`top_k` must be at least 1, got {top_k}")
    if max_memory < 1:
        raise UsageError(f"`max_memory` must be at least 1 byte, got {max_memory}")
    path = resolve_model_path(model)
    keras_model = load_model(path, max_memory=max_memory)
    shape = inspect_model(keras_model, name=str(path))
    metadata = read_metadata(path)
    if metadata is not None:
        shape = agree(metadata, shape, name=str(path))
    held, per_call = plan_batches(keras_model, shape, max_memory, name=str(path))
    if metadata is not None and labels is None:
        names, note = list(metadata.class_names), None
    else:
        names, note = class_names_for(path, shape.classes, labels)
    return Classifier(
        keras_model,
        path,
        shape,
        names,
        note,
        top_k,
        max_pixels,
        held=held,
        per_call=per_call,
        metadata=metadata,
        max_memory=max_memory,
    )


def agree(metadata: ModelMetadata, shape: ModelShape, *, name: str) -> ModelShape:
    """``shape`` with the scale the metadata names, once the metadata is held against the
    model itself: the same input size, channels and number of classes."""
    prep = metadata.preparation
    problems = []
    if (prep.height, prep.width) != (shape.height, shape.width):
        problems.append(
            f"images of {prep.height}x{prep.width}, but the model takes "
            f"{shape.height}x{shape.width}"
        )
    if prep.channels != shape.channels:
        problems.append(
            f"{prep.color} images, but the model takes {shape.channels} channel"
            f"{'s' if shape.channels != 1 else ''}"
        )
    if len(metadata.class_names) != shape.classes:
        problems.append(
            f"{len(metadata.class_names)} class names, but the model gives {shape.classes} scores"
        )
    if problems:
        raise ModelError(
            f"its convkit metadata does not match the model: it says {problems[0]}", path=name
        )
    return ModelShape(shape.height, shape.width, shape.channels, shape.classes, prep.scale)

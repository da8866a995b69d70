"""Classifying images with a trained model (``convkit predict``).

* The model is loaded with ``keras.saving.load_model(..., safe_mode=True)``: a ``.keras``
  file cannot run arbitrary code (Lambda layers holding Python bytecode are refused).
* It must be an image classifier: one input ``(H, W, C)`` with C = 1 or 3, one output of
  ``K`` class scores.
* Each image is prepared the way training saw CIFAR: 8-bit RGB (16-bit is scaled down, alpha
  dropped, gray repeated to three channels, or colour turned to gray for a 1-channel model),
  resized to the model's input with area interpolation (the whole image, aspect ratio not
  kept, as CIFAR's pictures were made), float32. Pixel values stay 0..255 when the model
  starts with a ``Rescaling`` layer (every ``train-cifar`` model does); other models get
  0..1, the usual Keras convention.
* Class names come from ``--labels``, else ``labels.txt`` (or ``metrics.json``) beside the
  model, else CIFAR-10's names for a 10-class model, else ``class N``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convkit.errors import ModelError


def resolve_model_path(path: str | Path) -> Path:
    """A model file, or a ``train-cifar`` results folder (its ``model.keras``)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "model.keras"
        if not candidate.is_file():
            raise ModelError("a folder without model.keras: give the model file", path=str(path))
        return candidate
    if not path.exists():
        raise ModelError("no such file or directory", path=str(path))
    return path


def load_model(path: str | Path, *, compile: bool = False):
    """Load a Keras model in safe mode; any failure is one :class:`ModelError` line."""
    from convkit.heavy import import_keras

    path = resolve_model_path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if not (zipfile.is_zipfile(path) or head == b"\x89HDF\r\n\x1a\n"):
        raise ModelError(
            "cannot load the model: not a Keras model file (neither a .keras zip archive "
            "nor a legacy HDF5 .h5 file)",
            path=str(path),
        )
    keras = import_keras()
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - zip, h5, JSON and Keras errors alike
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        if "safe_mode" in text or "unsafe" in text.lower():
            reason = "it holds Python code (a Lambda layer), refused in safe mode"
        elif "File format not supported" in text:
            reason = "not a Keras model file (.keras, or legacy .h5)"
        elif "no item named" in text:
            reason = "not a Keras model file (the archive has no config.json)"
        if len(reason) > 200:
            reason = reason[:197] + "..."
        raise ModelError(f"cannot load the model: {reason}", path=str(path)) from None


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


def class_names_for(
    model_path: Path, classes: int, labels_file: str | Path | None = None
) -> tuple[list[str], str | None]:
    """``(names, note)``: where the names came from is worth a note when it is a guess."""
    if labels_file is not None:
        names = _read_labels(Path(labels_file))
        if len(names) != classes:
            raise ModelError(
                f"{len(names)} class names for a model with {classes} outputs",
                path=str(labels_file),
            )
        return names, None
    folder = Path(model_path).parent
    beside = folder / "labels.txt"
    if beside.is_file():
        names = _read_labels(beside)
        if len(names) == classes:
            return names, None
    metrics = folder / "metrics.json"
    if metrics.is_file():
        try:
            names = json.loads(metrics.read_text(encoding="utf-8")).get("class_names")
        except (OSError, ValueError, AttributeError):
            names = None
        if isinstance(names, list) and len(names) == classes:
            return [str(n) for n in names], None
    if classes == 10:
        from convkit.training.cifar import CIFAR10_NAMES

        return list(CIFAR10_NAMES), "no labels.txt beside the model: assuming CIFAR-10's classes"
    return [
        f"class {i}" for i in range(classes)
    ], "no labels.txt beside the model: classes by number"


def _read_labels(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read the labels: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise ModelError("the labels file is not UTF-8 text", path=str(path)) from None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            names = json.loads(stripped)
        except ValueError as exc:
            raise ModelError(f"bad JSON list of labels ({exc})", path=str(path)) from None
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def prepare_image(image: np.ndarray, shape: ModelShape) -> np.ndarray:
    """An image as :func:`convkit.image.codec.read_image` gives it (gray/BGR/BGRA, 8/16-bit) to the
    float32 ``(H, W, C)`` array the model takes."""
    from convkit.heavy import import_cv2

    cv2 = import_cv2()
    pixels = image.astype(np.float32)
    if image.dtype == np.uint16:
        pixels *= 255.0 / 65535.0
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]  # alpha is dropped, not composited
    if shape.channels == 3:
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        else:
            pixels = pixels[:, :, ::-1]  # OpenCV's BGR to the RGB of training
    elif pixels.ndim == 3:
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2GRAY)
    pixels = np.ascontiguousarray(pixels)
    if pixels.shape[:2] != (shape.height, shape.width):
        pixels = cv2.resize(pixels, (shape.width, shape.height), interpolation=cv2.INTER_AREA)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
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


def predict_arrays(model, batch: np.ndarray) -> np.ndarray:
    """Class probabilities of a stack of prepared images."""
    if len(batch) == 0:
        return np.zeros((0, 0))
    scores = model.predict(batch, batch_size=min(len(batch), 64), verbose=0)
    return as_probabilities(scores)

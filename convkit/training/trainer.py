"""Training a CNN on CIFAR: models, the tf.data input pipeline, the loop, the results.

No Typer or Rich here: progress goes to a :class:`TrainingEvents` object (the command line
renders it with Rich), and a :class:`StopRequest` stops training cleanly after the current
batch (the command line sets it from Ctrl-C, tests set it directly).

Models
    ``small`` (the default): three conv/pool blocks and a softmax, ~114k parameters, a few
    thousand images per second on a laptop CPU. ``classic``: the network of Keras's old
    ``examples/cifar10_cnn.py`` (Conv32-Conv32-Pool-Dropout-Conv64-Conv64-Pool-Dropout-
    Flatten-Dense512-Dropout-Dense10, 1.25M parameters). Or any stack of the layer-spec
    language (:mod:`convkit.arithmetic.spec`).
    Every model starts with ``Rescaling(1/255)``, so the saved
    model takes RGB pixel values 0..255 as they are; see :func:`build_classifier` for the
    head that is added to a spec when it lacks one.

Input pipeline
    Images stay uint8 in memory. Each epoch is a seeded permutation of the training indices
    (``stateless_shuffle`` keyed by (seed, epoch), so a resumed run sees the same order as an
    uninterrupted one), batched; a parallel ``map`` gathers each batch, applies the
    augmentation (random horizontal flip and a random translation of up to
    :data:`MAX_SHIFT` pixels with reflected borders, stateless random ops keyed by
    (seed, epoch, step): repeatable even with parallel calls) and converts to float32, and
    ``prefetch`` overlaps all of it with the training step.

Results in the output folder: see :data:`RESULT_FILES`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.errors import ConvkitError, ImageWriteError, SpecError, UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.spec import LayerSpec
    from convkit.training.cifar import CifarData

MAX_SHIFT = 4
"""The largest translation of ``--augment``, in pixels (of 32)."""

MODELS: dict[str, tuple[str, str]] = {
    "small": (
        "the default: three conv/pool blocks, learns fast on a CPU",
        "conv2d(32, 3, padding=same, activation=relu) maxpool2d(2) "
        "conv2d(64, 3, padding=same, activation=relu) maxpool2d(2) "
        "conv2d(128, 3, padding=same, activation=relu) maxpool2d(2) "
        "flatten dropout(0.3) dense(NUM_CLASSES, activation=softmax)",
    ),
    "classic": (
        "the network of Keras's classic examples/cifar10_cnn.py",
        "conv2d(32, 3, padding=same, activation=relu) conv2d(32, 3, activation=relu) "
        "maxpool2d(2) dropout(0.25) "
        "conv2d(64, 3, padding=same, activation=relu) conv2d(64, 3, activation=relu) "
        "maxpool2d(2) dropout(0.25) "
        "flatten dense(512, activation=relu) dropout(0.5) dense(NUM_CLASSES, activation=softmax)",
    ),
}
MODEL_ALIASES = {
    "default": "small",
    "keras-example": "classic",
    "keras": "classic",
    "cifar10-cnn": "classic",
    "cifar10_cnn": "classic",
}

RESULT_FILES = {
    "model.keras": "the trained model (Keras 3 format; `convkit predict` reads it)",
    "labels.txt": "the class names, one per line, in output order",
    "history.csv": "loss and accuracy per epoch, train and validation",
    "history.json": "the same, as JSON",
    "metrics.json": "test accuracy and loss, per-class accuracy, confusion matrix, timings",
    "curves.png": "loss and accuracy per epoch, train vs validation",
    "confusion.png": "the confusion matrix of the test set",
    "predictions.png": "test images with predicted and true labels",
    "run.json": "settings and progress, for --resume",
    "checkpoint.keras": "the last completed epoch with optimizer state, while a run is "
    "unfinished (for --resume)",
}
_RUN_FILE = "run.json"
_CHECKPOINT = "checkpoint.keras"
_MODEL = "model.keras"


# --------------------------------------------------------------------------- settings


@dataclass
class TrainConfig:
    """Everything that decides what a run computes (saved in ``run.json`` for --resume)."""

    dataset: str = "cifar10"
    epochs: int = 10
    batch_size: int = 64
    model: str = "small"
    spec: str | None = None
    augment: bool = False
    learning_rate: float = 1e-3
    val_split: float = 0.1
    limit: int | None = None
    seed: int | None = None

    def validate(self) -> None:
        checks = (
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (
                math.isfinite(self.learning_rate) and self.learning_rate > 0,
                f"--lr must be a positive number, got {self.learning_rate}",
            ),
            (
                math.isfinite(self.val_split) and 0 < self.val_split < 1,
                f"--val-split must be between 0 and 1 (exclusive), got {self.val_split}",
            ),
            (
                self.limit is None or self.limit >= 2,
                f"--limit must be at least 2 (one training and one validation image), "
                f"got {self.limit}",
            ),
            (
                self.seed is None or 0 <= self.seed < 2**31,
                f"--seed must be between 0 and 2147483647, got {self.seed}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.spec is None:
            self.model = model_name(self.model)

    @property
    def model_label(self) -> str:
        return "spec" if self.spec is not None else self.model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def model_name(name: str) -> str:
    key = name.strip().lower()
    key = MODEL_ALIASES.get(key, key)
    if key not in MODELS:
        known = ", ".join([*MODELS, *MODEL_ALIASES])
        raise UsageError(f"unknown --model {name!r} (known: {known}; or give --spec)")
    return key


def model_spec_text(name: str, num_classes: int) -> str:
    return MODELS[model_name(name)][1].replace("NUM_CLASSES", str(num_classes))


# --------------------------------------------------------------------------- events


@dataclass
class RunInfo:
    """What :meth:`TrainingEvents.on_start` is told about the run."""

    model: str
    params: int
    first_epoch: int  # 0-based: the number of epochs already trained (resume)
    epochs: int
    steps_per_epoch: int
    batch_size: int
    train_images: int
    val_images: int
    test_images: int
    source: str
    added_layers: list[str] = field(default_factory=list)


@dataclass
class EpochRecord:
    """One row of the history."""

    epoch: int  # 1-based
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    images: int  # training images seen in this epoch
    train_seconds: float
    seconds: float  # training and validation
    complete: bool = True

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["images_per_second"] = round(self.images_per_second, 1)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if out[key] is not None:
                out[key] = round(float(out[key]), 6)
        out["train_seconds"] = round(self.train_seconds, 3)
        out["seconds"] = round(self.seconds, 3)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpochRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TrainingEvents:
    """Progress of a run; every method is a no-op here. Override what you want to show."""

    def note(self, message: str) -> None: ...

    def on_start(self, run: RunInfo) -> None: ...

    def on_epoch_start(self, epoch: int, epochs: int) -> None: ...

    def on_batch(self, epoch: int, step: int, steps: int, logs: dict[str, float]) -> None: ...

    def on_validation(self, epoch: int) -> None: ...

    def on_epoch_end(self, record: EpochRecord, epochs: int) -> None: ...

    def on_phase(self, message: str) -> None: ...


class StopRequest:
    """Set it (from a signal handler, a callback, another thread) to stop after this batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextlib.contextmanager
def sigint_stops(stop: StopRequest, on_first: Callable[[], None] | None = None) -> Iterator[None]:
    """While inside, a first Ctrl-C sets ``stop``; a second one raises KeyboardInterrupt.

    Outside the main thread (where Python cannot install signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        if on_first is not None:
            on_first()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- models


def _is_softmax(spec: LayerSpec) -> bool:
    if spec.type == "Softmax":
        return True
    return spec.type in ("Activation", "Dense") and spec.kwargs.get("activation") == "softmax"


def check_spec_input(layers: Sequence[LayerSpec]) -> list[LayerSpec]:
    """The layers after an optional ``input((32, 32, 3))``; any other input is an error."""
    from convkit.nn.models import split_input

    spec_shape, body = split_input(layers)
    if spec_shape is not None and tuple(spec_shape) != (32, 32, 3):
        raise layers[0].error(
            f"CIFAR images are 32x32x3, the spec's input is {'x'.join(map(str, spec_shape))}"
        )
    if not body:
        raise SpecError("the spec has no layers")
    return body


def build_classifier(layers: Sequence[LayerSpec], num_classes: int, *, name: str = "cifar"):
    """A Keras model for 32x32x3 uint8-range images: ``Rescaling(1/255)``, the layers, a head.

    The head is "missing" unless the spec ends in a softmax over ``num_classes`` outputs
    (``dense(10, activation=softmax)``, or ``dense(10) softmax``). What is added then:

    * a spec ending in ``dense(num_classes)`` with no activation gets a ``softmax``;
    * otherwise ``flatten`` (when the output still has a spatial shape) and
      ``dense(num_classes, activation=softmax)``.

    A softmax over another number of outputs is an error, as is an ``input(...)`` shape other
    than 32x32x3. Returns ``(model, added)``, ``added`` naming the layers put in.
    """
    from convkit.heavy import import_keras
    from convkit.nn.models import apply_layers

    keras = import_keras()
    body = check_spec_input(layers)
    used = {spec.name for spec in body}

    def free(base: str) -> str:
        candidate, n = base, 1
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        return candidate

    inputs = keras.Input(shape=(32, 32, 3), name=free("image"))
    x = keras.layers.Rescaling(1.0 / 255, name=free("rescale_0_1"))(inputs)
    x = apply_layers(body, x)
    last = body[-1]
    outputs = int(x.shape[-1]) if x.shape[-1] is not None else None
    added: list[str] = []
    if _is_softmax(last) and len(x.shape) == 2 and outputs == num_classes:
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
        and len(x.shape) == 2
    ):
        x = keras.layers.Activation("softmax", name=free("head_softmax"))(x)
        added.append("softmax")
    else:
        if len(x.shape) > 2:
            x = keras.layers.Flatten(name=free("head_flatten"))(x)
            added.append("flatten")
        x = keras.layers.Dense(num_classes, activation="softmax", name=free("head_dense"))(x)
        added.append(f"dense({num_classes}, activation=softmax)")
    return keras.Model(inputs, x, name=name), added


def config_layers(config: TrainConfig, num_classes: int) -> list[LayerSpec]:
    from convkit.arithmetic.spec import parse_spec

    if config.spec is not None:
        return parse_spec(config.spec)
    return parse_spec(model_spec_text(config.model, num_classes))


def compile_model(model, learning_rate: float) -> None:
    from convkit.heavy import import_keras

    keras = import_keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


# --------------------------------------------------------------------------- data pipeline


def _tf():
    from convkit.heavy import import_tensorflow

    return import_tensorflow()


def augment_batch(images, seed, *, max_shift: int = MAX_SHIFT):
    """Random horizontal flips and translations (reflected borders) of a uint8 batch.

    ``seed`` is a shape-[2] integer tensor; the same seed gives the same result.
    """
    tf = _tf()
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    flip = tf.random.stateless_uniform([n], seed=seeds[0]) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if max_shift <= 0:
        return images
    m = max_shift
    padded = tf.pad(images, [[0, 0], [m, m], [m, m], [0, 0]], mode="REFLECT")
    dy = tf.random.stateless_uniform([n], seed=seeds[1], maxval=2 * m + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seed=seeds[2], maxval=2 * m + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def steps_for(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    augment: bool,
):
    """Batches of (float32 images, int32 labels) for epochs ``first_epoch..epochs-1``.

    Yields exactly ``(epochs - first_epoch) * steps_for(len(x), batch_size)`` batches; give
    ``fit`` that many steps per epoch.
    """
    tf = _tf()
    n = len(x)
    seed_t = tf.constant(seed, tf.int64)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int32), seed=tf.stack([seed_t, epoch])
        )
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return tf.data.Dataset.zip(
            tf.data.Dataset.from_tensors(epoch).repeat(), tf.data.Dataset.range(n), batches
        )

    index = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def load(keys, arrays):
        epoch, step, idx = keys
        images = tf.gather(arrays[0], idx)
        labels = tf.gather(arrays[1], idx)
        if augment:
            images = augment_batch(images, tf.stack([seed_t + 1, epoch * 1_000_003 + step]))
        return tf.cast(images, tf.float32), tf.cast(labels, tf.int32)

    return (
        tf.data.Dataset.zip(index, data)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_dataset_options(tf))
    )


def _dataset_options(tf):
    # As Keras does for NumPy inputs: tf.data's default graph rewrites would serialize the
    # captured image array (150 MB for CIFAR-10) each time an iterator is made.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return options


def eval_dataset(x: np.ndarray, y: np.ndarray | None, *, batch_size: int):
    """Batches in order, float32 images (and int32 labels when ``y`` is given)."""
    tf = _tf()
    index = tf.data.Dataset.range(len(x)).batch(batch_size)
    arrays = (x,) if y is None else (x, y)
    data = tf.data.Dataset.from_tensors(arrays).repeat()

    def load(idx, arrays):
        images = tf.cast(tf.gather(arrays[0], idx), tf.float32)
        if y is None:
            return images
        return images, tf.cast(tf.gather(arrays[1], idx), tf.int32)

    return (
        tf.data.Dataset.zip(index, data)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_dataset_options(tf))
    )


def split_indices(n: int, *, val_split: float, limit: int | None, seed: int):
    """Seeded ``(train, val)`` index arrays over ``n`` training images (after ``--limit``)."""
    order = np.random.default_rng(seed).permutation(n)
    if limit is not None:
        order = order[: min(limit, n)]
    total = len(order)
    n_val = min(max(1, round(total * val_split)), total - 1)
    if total < 2 or n_val < 1:
        raise UsageError(f"need at least 2 training images to split off a validation set, got {n}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# --------------------------------------------------------------------------- output folder


def prepare_out(out: Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``out`` and check it can be written, before any time is spent training.

    A folder that already holds a run is refused unless ``overwrite`` (its result files are
    removed) or ``resume``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ImageWriteError("--out exists and is not a folder", path=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".convkit-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        from convkit.files import os_error_reason

        raise ImageWriteError(
            f"cannot write to this folder: {os_error_reason(exc)}", path=str(out)
        ) from None
    if resume:
        return out
    existing = [name for name in RESULT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise UsageError(
            f"{out} already holds a training run ({', '.join(existing[:3])}): continue it with "
            f"--resume {out}, choose another --out, or pass --overwrite"
        )
    for name in existing:
        with contextlib.suppress(OSError):
            (out / name).unlink()
    return out


def write_json(path: Path, data: Any) -> None:
    from convkit.files import write_atomic

    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def save_model(model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file in the same folder, then a rename."""
    from convkit.files import atomic_path

    with atomic_path(Path(path), suffix=".keras") as tmp, warnings.catch_warnings():
        # Keras's saving trips NumPy 2's __array__(copy=...) deprecation: not ours to show.
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(tmp, overwrite=True)


def history_csv(records: Sequence[EpochRecord]) -> bytes:
    buf = io.StringIO()
    columns = [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "images",
        "images_per_second",
        "train_seconds",
        "seconds",
        "complete",
    ]
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = record.to_json()
        row["complete"] = "yes" if record.complete else "no"
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, Any]
    history: list[EpochRecord]
    files: list[str]
    interrupted: bool
    failures: list[str] = field(default_factory=list)


def _keras_callback(events, stop, records, state):
    """The Keras callback that feeds ``events``, honours ``stop`` and times each epoch."""
    from convkit.heavy import import_keras

    keras = import_keras()

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"] = epoch
            state["step"] = 0
            state["t0"] = time.perf_counter()
            state["t_train"] = None
            events.on_epoch_start(epoch + 1, state["epochs"])

        def on_train_batch_end(self, batch, logs=None):
            state["step"] = batch + 1
            events.on_batch(
                state["epoch"] + 1,
                batch + 1,
                state["steps"],
                {k: float(v) for k, v in logs.items()},
            )
            if stop.is_set() and batch + 1 < state["steps"]:
                self.model.stop_training = True

        def on_test_begin(self, logs=None):
            if state.get("t_train") is None and state.get("t0") is not None:
                state["t_train"] = time.perf_counter()
                events.on_validation(state["epoch"] + 1)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            now = time.perf_counter()
            t_train = state["t_train"] or now
            steps = state["step"]
            images = min(steps * state["batch_size"], state["n_train"])
            complete = steps >= state["steps"]
            record = EpochRecord(
                epoch=epoch + 1,
                loss=float(logs.get("loss", float("nan"))),
                accuracy=float(logs.get("accuracy", float("nan"))),
                val_loss=float(logs["val_loss"]) if "val_loss" in logs else None,
                val_accuracy=float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
                learning_rate=float(self.model.optimizer.learning_rate.numpy()),
                images=images,
                train_seconds=t_train - state["t0"],
                seconds=now - state["t0"],
                complete=complete,
            )
            records.append(record)
            state["t0"] = None
            if complete:
                state["on_complete_epoch"](epoch + 1)
            events.on_epoch_end(record, state["epochs"])
            if stop.is_set():
                self.model.stop_training = True

    return Progress()


def _metrics_from_predictions(probs: np.ndarray, y: np.ndarray, class_names: list[str]):
    y = y.astype(np.int64)
    k = len(class_names)
    predicted = probs.argmax(axis=1)
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    loss = float(-np.mean(np.log(p_true.astype(np.float64))))
    accuracy = float(np.mean(predicted == y))
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = {
        name: (round(float(confusion[i, i] / totals[i]), 6) if totals[i] else None)
        for i, name in enumerate(class_names)
    }
    return _TestScores(loss, accuracy, confusion, per_class, predicted)


@dataclass
class _TestScores:
    loss: float
    accuracy: float
    confusion: np.ndarray  # rows: true class, columns: predicted
    per_class: dict[str, float | None]
    predicted: np.ndarray


def _choose_seed(seed: int | None) -> int:
    return int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))


def load_run(out: Path) -> dict[str, Any]:
    path = Path(out) / _RUN_FILE
    if not Path(out).is_dir():
        raise UsageError(f"--resume {out}: no such folder")
    if not path.is_file():
        raise UsageError(f"--resume {out}: no {_RUN_FILE} there, so not a train-cifar run folder")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        TrainConfig.from_json(state["config"])
        int(state["epochs_completed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConvkitError(f"unreadable run state ({exc})", path=str(path)) from None
    return state


def resume_config(state: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The saved settings of a run, with ``--epochs`` (the new total) allowed to change.

    Any other option given with a different value is an error: a resumed run continues the
    same training, it does not start a different one.
    """
    config = TrainConfig.from_json(state["config"])
    done = int(state["epochs_completed"])
    for key, value in overrides.items():
        if value is None or key == "epochs":
            continue
        saved = getattr(config, key)
        if key == "model" and config.spec is None:
            value = model_name(value)
        if value != saved:
            flag = {"learning_rate": "lr", "model": "model", "spec": "spec"}.get(key, key)
            raise UsageError(
                f"--resume continues the run with its own settings: --{flag.replace('_', '-')} "
                f"{value} differs from the {saved} it was started with (drop the option, or "
                "start a new run with --out)"
            )
    if overrides.get("epochs") is not None:
        config.epochs = int(overrides["epochs"])
    if config.epochs <= done:
        raise UsageError(
            f"the run has already trained {done} epoch{'s' if done != 1 else ''}"
            f"{'' if config.epochs == done else f', more than --epochs {config.epochs}'}; "
            f"pass --epochs N with N > {done} to train more"
        )
    return config


@dataclass
class _Start:
    """Where a run starts: a fresh model, or a checkpoint and the history before it."""

    model: Any
    added: list[str]
    seed: int
    first_epoch: int
    history: list[EpochRecord]


def _start(
    config: TrainConfig,
    data: CifarData,
    out: Path,
    resume_state: dict[str, Any] | None,
    events: TrainingEvents,
) -> _Start:
    from convkit.nn.models import set_seed

    if resume_state is None:
        start = _Start(None, [], _choose_seed(config.seed), 0, [])
    else:
        if list(resume_state.get("class_names", data.class_names)) != list(data.class_names):
            raise ConvkitError(
                "the data's class names differ from those the run was started with "
                f"({resume_state.get('source')}); give the same data with --data-dir"
            )
        done = int(resume_state["epochs_completed"])
        history = [EpochRecord.from_json(r) for r in resume_state.get("history", [])]
        start = _Start(
            None,
            list(resume_state.get("added_layers", [])),
            int(resume_state["seed"]),
            done,
            [r for r in history if r.complete][:done],
        )
        checkpoint = resume_state.get("checkpoint")
        if checkpoint and done > 0:
            from convkit.training.predict import load_model

            start.model = load_model(out / checkpoint, compile=True)
            events.note(f"resuming from {out / checkpoint} after epoch {done}")
        else:
            start.first_epoch, start.history = 0, []
            events.note("no completed epoch to resume from: starting from the first epoch")
    set_seed(start.seed + start.first_epoch)
    if start.model is None:
        start.model, start.added = build_classifier(
            config_layers(config, data.num_classes),
            data.num_classes,
            name=f"cifar_{config.model_label}",
        )
        if start.added and config.spec is not None:
            events.note(f"added to the spec: {', '.join(start.added)}")
    model = start.model
    if model.input_shape[1:] != (32, 32, 3) or model.output_shape[-1] != data.num_classes:
        raise ConvkitError(
            f"the checkpoint's model takes {model.input_shape[1:]} and gives "
            f"{model.output_shape[-1]} outputs; the data needs (32, 32, 3) and {data.num_classes}"
        )
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        compile_model(model, config.learning_rate)
    return start


def train(
    config: TrainConfig,
    data: CifarData,
    out: Path,
    *,
    events: TrainingEvents | None = None,
    stop: StopRequest | None = None,
    resume_state: dict[str, Any] | None = None,
    plots: bool = True,
) -> TrainResult:
    """Train, evaluate on the test set and write every result into ``out``.

    ``out`` must have been checked by :func:`prepare_out`. With ``resume_state`` (from
    :func:`load_run`), training continues from its last checkpoint up to ``config.epochs``.
    When ``stop`` is set, training ends after the current batch, and everything is still
    evaluated and written for what was trained.
    """
    events = events or TrainingEvents()
    stop = stop or StopRequest()
    out = Path(out)
    wall0 = time.perf_counter()
    config.validate()
    start = _start(config, data, out, resume_state, events)
    model, seed, first_epoch = start.model, start.seed, start.first_epoch

    train_idx, val_idx = split_indices(
        len(data.x_train), val_split=config.val_split, limit=config.limit, seed=seed
    )
    if config.limit is not None and config.limit > len(data.x_train):
        events.note(
            f"--limit {config.limit} is more than the {len(data.x_train)} training images: "
            "using them all"
        )
    x_train, y_train = data.x_train[train_idx], data.y_train[train_idx]
    x_val, y_val = data.x_train[val_idx], data.y_train[val_idx]
    steps = steps_for(len(x_train), config.batch_size)

    run_state: dict[str, Any] = {
        "convkit_run": 1,
        "config": config.to_json(),
        "seed": seed,
        "source": str(Path(data.source).resolve()),  # --resume may run from elsewhere
        "dataset": data.info.key,
        "class_names": list(data.class_names),
        "added_layers": start.added,
        "epochs_completed": first_epoch,
        "checkpoint": resume_state.get("checkpoint") if resume_state else None,
        "history": [r.to_json() for r in start.history],
        "started": (resume_state or {}).get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
    }
    write_json(out / _RUN_FILE, run_state)

    records: list[EpochRecord] = []  # this session's epochs

    def on_complete_epoch(done: int) -> None:
        save_model(model, out / _CHECKPOINT)
        run_state["epochs_completed"] = done
        run_state["checkpoint"] = _CHECKPOINT
        run_state["history"] = [r.to_json() for r in (*start.history, *records)]
        run_state.pop("interrupted_epoch", None)
        write_json(out / _RUN_FILE, run_state)

    events.on_start(
        RunInfo(
            model=config.model_label,
            params=int(model.count_params()),
            first_epoch=first_epoch,
            epochs=config.epochs,
            steps_per_epoch=steps,
            batch_size=config.batch_size,
            train_images=len(x_train),
            val_images=len(x_val),
            test_images=len(data.x_test),
            source=data.source,
            added_layers=start.added,
        )
    )
    callback = _keras_callback(
        events,
        stop,
        records,
        {
            "epochs": config.epochs,
            "steps": steps,
            "batch_size": config.batch_size,
            "n_train": len(x_train),
            "on_complete_epoch": on_complete_epoch,
            "t0": None,
        },
    )
    fit_start = time.perf_counter()
    if first_epoch < config.epochs and not stop.is_set():
        model.fit(
            train_dataset(
                x_train,
                y_train,
                batch_size=config.batch_size,
                seed=seed,
                first_epoch=first_epoch,
                epochs=config.epochs,
                augment=config.augment,
            ),
            epochs=config.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=eval_dataset(x_val, y_val, batch_size=max(config.batch_size, 256)),
            callbacks=[callback],
            shuffle=False,  # the pipeline shuffles, repeatably
            verbose=0,
        )
    fit_seconds = time.perf_counter() - fit_start
    history = [*start.history, *records]
    partial = bool(records) and not records[-1].complete
    interrupted = stop.is_set() and (partial or not records or records[-1].epoch < config.epochs)

    events.on_phase(f"evaluating on the {len(data.x_test):,} test images")
    probs = model.predict(eval_dataset(data.x_test, None, batch_size=256), verbose=0)
    test = _metrics_from_predictions(probs, data.y_test, data.class_names)

    events.on_phase("writing results")
    writer = _Writer(out)
    if partial:

        def save_partial() -> None:
            if run_state.get("checkpoint") == _MODEL:
                # model.keras is this run's resume point: keep it as the checkpoint.
                os.replace(out / _MODEL, out / _CHECKPOINT)
                run_state["checkpoint"] = _CHECKPOINT
            save_model(model, out / _MODEL)

        writer.attempt(_MODEL, save_partial)
        run_state["interrupted_epoch"] = records[-1].to_json()
    elif (out / _CHECKPOINT).exists():
        # The last completed epoch's checkpoint is the final model: move it into place.
        def finalize() -> None:
            os.replace(out / _CHECKPOINT, out / _MODEL)
            run_state["checkpoint"] = _MODEL

        writer.attempt(_MODEL, finalize)
    else:
        writer.attempt(_MODEL, lambda: save_model(model, out / _MODEL))
    run_state["history"] = [r.to_json() for r in history]
    writer.json(_RUN_FILE, run_state)
    writer.bytes("labels.txt", ("\n".join(data.class_names) + "\n").encode())
    writer.bytes("history.csv", history_csv(history))
    writer.json("history.json", [r.to_json() for r in history])

    train_seconds = sum(r.train_seconds for r in records)
    best = max(
        (r for r in history if r.val_accuracy is not None),
        key=lambda r: r.val_accuracy,
        default=None,
    )
    last = history[-1].to_json() if history else None
    metrics: dict[str, Any] = {
        "dataset": data.info.key,
        "data_source": data.source,
        "model": config.model_label,
        "spec": config.spec,
        "added_layers": start.added,
        "params": int(model.count_params()),
        "class_names": list(data.class_names),
        "test_accuracy": round(test.accuracy, 6),
        "test_loss": round(test.loss, 6),
        "test_images": int(len(data.x_test)),
        "per_class_accuracy": test.per_class,
        "confusion_matrix": test.confusion.tolist(),
        "confusion_matrix_axes": "rows: true class, columns: predicted class",
        "epochs": sum(r.complete for r in history),
        "epochs_requested": config.epochs,
        "interrupted": bool(interrupted),
        "partial_epoch": records[-1].to_json() if partial else None,
        "final": (
            {k: last[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")} if last else None
        ),
        "best_val_accuracy": round(best.val_accuracy, 6) if best else None,
        "best_epoch": best.epoch if best else None,
        "train_images": int(len(x_train)),
        "val_images": int(len(x_val)),
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "optimizer": "adam",
        "augment": config.augment,
        "val_split": config.val_split,
        "limit": config.limit,
        "seed": seed,
        "wall_time_seconds": None,  # filled in last
        "fit_seconds": round(fit_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "train_images_per_second": (
            round(sum(r.images for r in records) / train_seconds, 1) if train_seconds > 0 else None
        ),
        "resumed_from_epoch": first_epoch if resume_state is not None else None,
        "versions": _versions(),
    }
    if plots:
        from convkit.training import plots as plot_lib

        title = f"{data.info.title}, model {config.model_label}"
        writer.bytes("curves.png", lambda: plot_lib.curves_png(history, title))
        writer.bytes(
            "confusion.png",
            lambda: plot_lib.confusion_png(test.confusion, data.class_names, title=title),
        )
        writer.bytes(
            "predictions.png",
            lambda: plot_lib.prediction_grid_png(
                data.x_test, data.y_test, test.predicted, probs, data.class_names, seed=seed
            ),
        )
    metrics["wall_time_seconds"] = round(time.perf_counter() - wall0, 3)
    writer.json("metrics.json", metrics)
    return TrainResult(out, metrics, history, writer.written, bool(interrupted), writer.failures)


class _Writer:
    """Writes each result on its own: one that fails is reported, the others still land."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[str] = []
        self.failures: list[str] = []

    def attempt(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
            self.written.append(name)
        except ConvkitError as exc:
            self.failures.append(str(exc))
        except OSError as exc:
            self.failures.append(f"{self.out / name}: cannot write: {exc.strerror or exc}")

    def bytes(self, name: str, data: bytes | Callable[[], bytes]) -> None:
        from convkit.files import write_atomic

        self.attempt(
            name, lambda: write_atomic(self.out / name, data() if callable(data) else data)
        )

    def json(self, name: str, data: Any) -> None:
        self.attempt(name, lambda: write_json(self.out / name, data))


def _versions() -> dict[str, str]:
    from convkit.heavy import import_keras

    return {
        "keras": import_keras().__version__,
        "tensorflow": _tf().__version__,
        "numpy": np.__version__,
    }

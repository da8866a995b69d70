"""The training loop: where a run starts (a new model, or the checkpoint of a run being
resumed), and ``model.fit`` with a callback that reports progress, honours a stop request
after the current batch and times each epoch."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convkit.arithmetic.formatting import format_shape
from convkit.errors import DataError, ImageSizeError, ModelError
from convkit.training.config import TrainConfig
from convkit.training.data import DataSplit, TrainingData
from convkit.training.events import StopRequest, TrainingEvents
from convkit.training.models import build_classifier, compile_model, config_layers
from convkit.training.pipeline import eval_dataset, steps_for, train_dataset
from convkit.training.records import BatchProgress, EpochRecord
from convkit.training.runfolder import RunState
from convkit.training.strategy import Placement, choose_strategy


@dataclass
class Start:
    """Where a run starts: a fresh model, or a checkpoint and the history before it."""

    model: Any
    added: list[str]
    seed: int
    first_epoch: int  # 0-based: the epochs already trained
    history: list[EpochRecord] = field(default_factory=list)
    placement: Placement = field(default_factory=lambda: Placement("default", "default"))
    batch_size: int = 0  # the global batch: the setting's per-replica batch x replicas


def choose_seed(seed: int | None) -> int:
    """``seed``, or a fresh one (saved with the run, so it can be repeated)."""
    return int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))


def start_run(
    config: TrainConfig,
    data: TrainingData,
    out: Path,
    resume_state: RunState | None,
    events: TrainingEvents,
) -> Start:
    """The model to train (compiled) and where training starts, built (or loaded) under
    the run's strategy (:mod:`convkit.training.strategy`)."""
    placement = choose_strategy(getattr(config, "strategy", "auto"))
    if placement.name == "mirrored":
        events.note(placement.describe(config.batch_size))
    with placement.scope():
        start = _start_in_scope(config, data, out, resume_state, events)
    start.placement = placement
    start.batch_size = placement.global_batch(config.batch_size)
    return start


def _start_in_scope(
    config: TrainConfig,
    data: TrainingData,
    out: Path,
    resume_state: RunState | None,
    events: TrainingEvents,
) -> Start:
    from convkit.nn.models import set_seed

    if resume_state is None:
        start = Start(None, [], choose_seed(config.seed), 0)
    else:
        start = _resume_point(data, Path(out), resume_state, events)
    set_seed(start.seed + start.first_epoch)
    if start.model is None:
        start.model, start.added = build_classifier(
            config_layers(config, data.num_classes),
            data.num_classes,
            data.image_shape,
            images=f"{data.title} images",
            name=f"{data.name}_{config.model_label}",
        )
        if start.added and config.spec is not None:
            events.note(f"added to the spec: {', '.join(start.added)}")
    model = start.model
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        compile_model(model, config.learning_rate)
    return start


def _resume_point(data: TrainingData, out: Path, state: RunState, events: TrainingEvents) -> Start:
    if state.class_names is not None and state.class_names != list(data.class_names):
        raise DataError(
            "the data's class names differ from those the run was started with "
            f"({state.source}); "
            + (
                "give that folder (`data`)"
                if state.config.dataset == "folder"
                else "give the same data with `data_dir`"
            )
        )
    seen = [r.images for r in state.history if r.complete]
    if state.config.dataset == "folder" and seen and seen[-1] != len(data.x_train):
        events.note(
            f"the folder changed since the run started ({seen[-1]} training images then, "
            f"{len(data.x_train)} now): the validation and test images are picked anew, "
            "so some of them may have been trained on"
        )
    done = state.epochs_completed
    start = Start(
        None,
        list(state.added_layers),
        state.seed,
        done,
        [r for r in state.history if r.complete][:done],
    )
    if not state.checkpoint or done <= 0:
        events.note("no completed epoch to resume from: starting from the first epoch")
        start.first_epoch, start.history = 0, []
        return start
    from convkit.training.modelfile import load_model

    path = out / state.checkpoint
    start.model = load_model(path, compile=True)
    takes, gives = tuple(start.model.input_shape[1:]), start.model.output_shape[-1]
    if takes != data.image_shape:
        raise ImageSizeError(
            f"the checkpoint's model takes {format_shape(takes, 'x')} images, the data's are "
            f"{format_shape(data.image_shape, 'x')}",
            path=str(path),
        )
    if gives != data.num_classes:
        raise ModelError(
            f"the checkpoint's model gives {gives} class scores, the data has "
            f"{data.num_classes} classes",
            path=str(path),
        )
    events.note(f"resuming from {path} after epoch {done}")
    return start


@dataclass
class FitOutcome:
    """What one session of ``fit`` trained."""

    records: list[EpochRecord]  # this session's epochs, the last one maybe incomplete
    seconds: float
    interrupted: bool  # stopped before ``epochs``

    @property
    def partial(self) -> EpochRecord | None:
        """The epoch cut short by a stop request, if any."""
        return self.records[-1] if self.records and not self.records[-1].complete else None


def fit(
    config: TrainConfig,
    start: Start,
    split: DataSplit,
    *,
    events: TrainingEvents,
    stop: StopRequest,
    on_epoch_completed: Callable[[int, Sequence[EpochRecord]], None],
) -> FitOutcome:
    """Train ``start.model`` from ``start.first_epoch`` up to ``config.epochs``.

    ``on_epoch_completed(done, records)`` runs after each complete epoch (``done`` is
    1-based, ``records`` this session's epochs so far): the place to checkpoint.
    """
    batch_size = start.batch_size or config.batch_size  # global: per replica x replicas
    steps = steps_for(len(split.x_train), batch_size)
    clock = _EpochClock(config.epochs, steps, batch_size, len(split.x_train))
    records: list[EpochRecord] = []
    callback = _keras_callback(events, stop, clock, records, on_epoch_completed)
    t0 = time.perf_counter()
    if start.first_epoch < config.epochs and not stop.is_set():
        start.model.fit(
            train_dataset(
                split.x_train,
                split.y_train,
                batch_size=batch_size,
                seed=start.seed,
                first_epoch=start.first_epoch,
                epochs=config.epochs,
                augment=config.augment,
                weights=split.class_weights,
            ),
            epochs=config.epochs,
            initial_epoch=start.first_epoch,
            steps_per_epoch=steps,
            validation_data=eval_dataset(split.x_val, split.y_val, batch_size=max(batch_size, 256)),
            callbacks=[callback],
            shuffle=False,  # the pipeline shuffles, repeatably
            verbose=0,
        )
    seconds = time.perf_counter() - t0
    partial = bool(records) and not records[-1].complete
    interrupted = stop.is_set() and (partial or not records or records[-1].epoch < config.epochs)
    return FitOutcome(records, seconds, bool(interrupted))


@dataclass
class _EpochClock:
    """The callback's view of the epoch in progress."""

    epochs: int
    steps: int  # per epoch
    batch_size: int
    train_images: int
    epoch: int = 0  # 0-based
    step: int = 0  # steps done in this epoch
    t0: float | None = None  # when the epoch began
    t_train: float | None = None  # when its validation began

    def record(self, logs: dict[str, Any], learning_rate: float) -> EpochRecord:
        """The epoch that just ended, from Keras's ``logs``."""
        now = time.perf_counter()
        t_train = self.t_train or now
        return EpochRecord(
            epoch=self.epoch + 1,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            val_loss=float(logs["val_loss"]) if "val_loss" in logs else None,
            val_accuracy=float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
            learning_rate=learning_rate,
            images=min(self.step * self.batch_size, self.train_images),
            train_seconds=t_train - self.t0,
            seconds=now - self.t0,
            complete=self.step >= self.steps,
        )


def _keras_callback(events, stop, clock: _EpochClock, records, on_epoch_completed):
    """The Keras callback that feeds ``events``, honours ``stop`` and times each epoch."""
    from convkit.heavy import import_keras

    keras = import_keras()

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.epoch, clock.step = epoch, 0
            clock.t0, clock.t_train = time.perf_counter(), None
            events.on_epoch_start(epoch + 1, clock.epochs)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            clock.step = batch + 1
            events.on_batch(
                BatchProgress(
                    epoch=clock.epoch + 1,
                    epochs=clock.epochs,
                    step=batch + 1,
                    steps=clock.steps,
                    loss=float(logs.get("loss", float("nan"))),
                    accuracy=float(logs.get("accuracy", float("nan"))),
                )
            )
            if stop.is_set() and batch + 1 < clock.steps:
                self.model.stop_training = True

        def on_test_begin(self, logs=None):
            if clock.t_train is None and clock.t0 is not None:
                clock.t_train = time.perf_counter()
                events.on_validation(clock.epoch + 1)

        def on_epoch_end(self, epoch, logs=None):
            record = clock.record(logs or {}, float(self.model.optimizer.learning_rate.numpy()))
            records.append(record)
            clock.t0 = None
            if record.complete:
                on_epoch_completed(epoch + 1, records)
            events.on_epoch_end(record, clock.epochs)
            if stop.is_set():
                self.model.stop_training = True

    return Progress()

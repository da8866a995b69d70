"""Training a classifier on images, as one call: :func:`train`.

The steps, each in its own module: the settings (:mod:`~convkit.training.config`), the
data and its split (:mod:`~convkit.training.data`), the model
(:mod:`~convkit.training.models`), the tf.data pipeline (:mod:`~convkit.training.pipeline`),
the loop with its stop request and resume point (:mod:`~convkit.training.loop`), the
results folder and its run state (:mod:`~convkit.training.runfolder`), and the scores and
files written at the end (:mod:`~convkit.training.results`). Progress goes to a
:class:`~convkit.training.events.TrainingEvents` object.
"""

from __future__ import annotations

import time
from pathlib import Path

from convkit.training.config import TrainConfig
from convkit.training.data import TrainingData, balanced_weights, split_data
from convkit.training.events import StopRequest, TrainingEvents
from convkit.training.loop import fit, start_run
from convkit.training.metadata import training_metadata
from convkit.training.pipeline import steps_for
from convkit.training.records import RunInfo
from convkit.training.results import Finished, TrainResult, evaluate, write_results
from convkit.training.runfolder import RunFolder, RunState, now_stamp


def train(
    config: TrainConfig,
    data: TrainingData,
    out: Path,
    *,
    events: TrainingEvents | None = None,
    stop: StopRequest | None = None,
    resume_state: RunState | None = None,
    plots: bool = True,
) -> TrainResult:
    """Train on ``data``, evaluate on its test set and write every result into ``out``.

    ``out`` must have been made ready by :func:`~convkit.training.runfolder.prepare_out`.
    With ``resume_state`` (from :func:`~convkit.training.runfolder.load_run`), training
    continues from its last checkpoint up to ``config.epochs``. When ``stop`` is set,
    training ends after the current batch, and everything is still evaluated and written
    for what was trained.
    """
    events = events or TrainingEvents()
    stop = stop or StopRequest()
    out = Path(out)
    wall0 = time.perf_counter()
    start = start_run(config, data, out, resume_state, events)
    split = split_data(data, val_split=config.val_split, limit=config.limit, seed=start.seed)
    if config.class_weight == "balanced":
        split.class_weights = balanced_weights(split.y_train, data.num_classes)
    if data.x_val is None and config.limit is not None and config.limit > len(data.x_train):
        events.note(
            f"`limit` {config.limit} is more than the {len(data.x_train)} training images: "
            "using them all"
        )
    folder = RunFolder(
        out,
        RunState(
            config=config,
            seed=start.seed,
            source=str(Path(data.source).resolve()),  # a resumed run may start elsewhere
            dataset=data.name,
            class_names=list(data.class_names),
            added_layers=start.added,
            epochs_completed=start.first_epoch,
            checkpoint=resume_state.checkpoint if resume_state else None,
            history=list(start.history),
            started=resume_state.started if resume_state else now_stamp(),
        ),
        metadata=training_metadata(data, start.model),
    )
    folder.save_state()
    if start.first_epoch >= config.epochs:
        events.note(
            f"nothing left to train ({start.first_epoch} of {config.epochs} epochs done): "
            "evaluating the last checkpoint and writing the results"
        )
    else:
        _announce(events, config, start, split, data)
    outcome = fit(
        config,
        start,
        split,
        events=events,
        stop=stop,
        on_epoch_completed=lambda done, records: folder.epoch_completed(
            start.model, done, [*start.history, *records]
        ),
    )
    restored = None
    if config.restore_best and outcome.partial is None:
        restored = folder.restore_best(start.model, [*start.history, *outcome.records])
        if restored is not None:
            events.note(f"restored the weights of epoch {restored}, the best validation epoch")
    events.on_phase(f"evaluating on the {len(data.x_test):,} test images")
    test = evaluate(start.model, data)
    _note_stream_failures(events, data)
    events.on_phase("writing results")
    finished = Finished(
        config, data, split, start, outcome, test, resume_state is not None, restored
    )
    return write_results(finished, folder, wall0=wall0, plots=plots)


def _note_stream_failures(events: TrainingEvents, data: TrainingData) -> None:
    """Files streamed from disk that could no longer be read (fed as black images)."""
    failures = getattr(data.x_train, "failures", None)
    if failures:
        events.note(
            f"{len(failures)} image(s) could not be read again while streaming and were fed "
            f"as black images, the first: {failures[0]}"
        )


def _announce(events, config, start, split, data) -> None:
    """The start of training, for the progress display."""
    events.on_start(
        RunInfo(
            model=config.model_label,
            params=int(start.model.count_params()),
            first_epoch=start.first_epoch,
            epochs=config.epochs,
            steps_per_epoch=steps_for(len(split.x_train), start.batch_size or config.batch_size),
            batch_size=start.batch_size or config.batch_size,  # global: x replicas
            train_images=len(split.x_train),
            val_images=len(split.x_val),
            test_images=len(data.x_test),
            source=data.source,
            added_layers=start.added,
        )
    )

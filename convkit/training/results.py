"""The end of a run: the test set scored, and every result written into the run's folder.

Each result is written on its own (:class:`ResultWriter`): one that fails is reported, the
others still land. What the folder holds: :data:`convkit.training.runfolder.RESULT_FILES`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convkit.errors import ConvkitError
from convkit.training.config import TrainConfig
from convkit.training.data import DataSplit, TrainingData
from convkit.training.labels import LABELS_FILE, labels_text
from convkit.training.loop import FitOutcome, Start
from convkit.training.records import EpochRecord
from convkit.training.runfolder import MODEL, RUN_FILE, RunFolder, write_json

HISTORY_COLUMNS = (
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
)


@dataclass
class TestScores:
    """How the model did on the test set."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # rows: true class, columns: predicted
    per_class: dict[str, float | None]
    predicted: np.ndarray
    probs: np.ndarray


def score(probs: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> TestScores:
    """Loss, accuracy, confusion matrix and per-class accuracy of class probabilities."""
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
    return TestScores(loss, accuracy, confusion, per_class, predicted, probs)


def evaluate(model, data: TrainingData) -> TestScores:
    """The model's scores on ``data``'s test set."""
    from convkit.training.pipeline import eval_dataset

    probs = model.predict(eval_dataset(data.x_test, None, batch_size=256), verbose=0)
    return score(probs, data.y_test, data.class_names)


def history_csv(records: Sequence[EpochRecord]) -> bytes:
    """The history as CSV, one row per epoch."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for record in records:
        row = record.to_json()
        row["complete"] = "yes" if record.complete else "no"
        writer.writerow({k: "" if row[k] is None else row[k] for k in HISTORY_COLUMNS})
    return buf.getvalue().encode("utf-8")


@dataclass
class TrainResult:
    """What a run did: its folder, ``metrics.json``'s content, the whole history, the files
    written, whether it was interrupted, and the results that could not be written."""

    out: Path
    metrics: dict[str, Any]
    history: list[EpochRecord]
    files: list[str]
    interrupted: bool
    failures: list[str] = field(default_factory=list)


class ResultWriter:
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


@dataclass
class Finished:
    """Everything a run knows when training is over, for the results."""

    config: TrainConfig
    data: TrainingData
    split: DataSplit
    start: Start
    fit: FitOutcome
    test: TestScores
    resumed: bool
    restored_epoch: int | None = None  # with restore_best: the epoch whose weights are kept

    @property
    def history(self) -> list[EpochRecord]:
        return [*self.start.history, *self.fit.records]


def write_results(
    run: Finished, folder: RunFolder, *, wall0: float, plots: bool = True
) -> TrainResult:
    """Write every result of ``run`` into ``folder``; ``metrics.json`` last, with the wall
    time since ``wall0`` (a ``time.perf_counter()``)."""
    out, history, partial = folder.out, run.history, run.fit.partial
    writer = ResultWriter(out)
    restored = run.restored_epoch is not None
    writer.attempt(MODEL, lambda: folder.place_model(run.start.model, partial, restored))
    folder.state.history = history
    folder.state.interrupted_epoch = partial
    writer.json(RUN_FILE, folder.state.to_json())
    writer.bytes(LABELS_FILE, labels_text(run.data.class_names))
    writer.bytes("history.csv", history_csv(history))
    writer.json("history.json", [r.to_json() for r in history])
    metrics = metrics_json(run)
    if plots:
        _write_plots(writer, run)
    metrics["wall_time_seconds"] = round(time.perf_counter() - wall0, 3)
    writer.json("metrics.json", metrics)
    return TrainResult(out, metrics, history, writer.written, run.fit.interrupted, writer.failures)


def _write_plots(writer: ResultWriter, run: Finished) -> None:
    from convkit.training import plots

    data, test = run.data, run.test
    title = f"{data.title}, model {run.config.model_label}"
    writer.bytes("curves.png", lambda: plots.curves_png(run.history, title))
    writer.bytes(
        "confusion.png", lambda: plots.confusion_png(test.confusion, data.class_names, title=title)
    )
    writer.bytes(
        "predictions.png",
        lambda: plots.prediction_grid_png(
            data.x_test,
            data.y_test,
            test.predicted,
            test.probs,
            data.class_names,
            seed=run.start.seed,
        ),
    )


def metrics_json(run: Finished) -> dict[str, Any]:
    """The content of ``metrics.json`` (``wall_time_seconds`` is filled in last)."""
    config, data, test, fit, start = run.config, run.data, run.test, run.fit, run.start
    history = run.history
    best = max(
        (r for r in history if r.val_accuracy is not None),
        key=lambda r: r.val_accuracy,
        default=None,
    )
    last = history[-1].to_json() if history else None
    train_seconds = sum(r.train_seconds for r in fit.records)
    partial = fit.partial
    return {
        "dataset": data.name,
        "data_source": data.source,
        "model": config.model_label,
        "spec": config.spec,
        "added_layers": start.added,
        "params": int(start.model.count_params()),
        "class_names": list(data.class_names),
        "test_accuracy": round(test.accuracy, 6),
        "test_loss": round(test.loss, 6),
        "test_images": int(len(data.x_test)),
        "per_class_accuracy": test.per_class,
        "confusion_matrix": test.confusion.tolist(),
        "confusion_matrix_axes": "rows: true class, columns: predicted class",
        "epochs": sum(r.complete for r in history),
        "epochs_requested": config.epochs,
        "interrupted": fit.interrupted,
        "partial_epoch": partial.to_json() if partial else None,
        "final": (
            {k: last[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")} if last else None
        ),
        "best_val_accuracy": round(best.val_accuracy, 6) if best else None,
        "best_epoch": best.epoch if best else None,
        "restored_best_epoch": run.restored_epoch,
        "train_images": int(len(run.split.x_train)),
        "val_images": int(len(run.split.x_val)),
        "batch_size": config.batch_size,
        **start.placement.to_json(config.batch_size),
        "preparation": dict(getattr(data, "preparation", None) or {}),
        "learning_rate": config.learning_rate,
        "optimizer": "adam",
        "augment": config.augment,
        "val_split": config.val_split,
        "limit": config.limit,
        "seed": start.seed,
        "wall_time_seconds": None,  # filled in last
        "fit_seconds": round(fit.seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "train_images_per_second": (
            round(sum(r.images for r in fit.records) / train_seconds, 1)
            if train_seconds > 0
            else None
        ),
        "resumed_from_epoch": start.first_epoch if run.resumed else None,
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    from convkit.heavy import import_keras, import_tensorflow

    return {
        "keras": import_keras().__version__,
        "tensorflow": import_tensorflow().__version__,
        "numpy": np.__version__,
    }

"""The results folder of a run: what it holds, making it ready, and the run's state in
``run.json`` that lets an interrupted or finished run be continued (resumed).

While a run is unfinished the folder holds ``checkpoint.keras``, the last completed epoch
with its optimizer state; when the run ends that checkpoint becomes ``model.keras``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from convkit.errors import ConvkitError, ImageWriteError, UsageError
from convkit.training.config import TrainConfig, TrainSettings, model_name
from convkit.training.records import EpochRecord

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
    "best.weights.h5": "with --restore-best, the weights of the best validation epoch",
}
RUN_FILE = "run.json"
MAX_RUN_FILE_BYTES = 16 * 1024 * 1024  # a run of 10,000 epochs writes about 3 MB
CHECKPOINT = "checkpoint.keras"
BEST_WEIGHTS = "best.weights.h5"
"""With ``restore_best``: the weights of the best validation epoch so far."""


def best_epoch(history: Sequence[EpochRecord]) -> int | None:
    """The complete epoch with the best validation accuracy (the first of equals)."""
    scored = [r for r in history if r.complete and r.val_accuracy is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: (r.val_accuracy, -r.epoch)).epoch


MODEL = "model.keras"


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, atomically."""
    from convkit.files import write_atomic

    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def save_model(model, path: Path, metadata: dict[str, Any] | None = None) -> None:
    """``model.save`` to a temporary ``.keras`` file in the same folder, then a rename; with
    ``metadata`` (class names, input preparation) kept inside the file
    (:func:`convkit.training.metadata.save_model`)."""
    from convkit.training.metadata import save_model as save_with_metadata

    save_with_metadata(model, Path(path), metadata)


def now_stamp() -> str:
    """The local time, as ``run.json`` records when a run started."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def default_out(dataset: str) -> Path:
    """``out/DATASET-DATE-TIME``: where a run writes when no folder is given."""
    return Path("out") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_out(out: Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``out`` and check it can be written, before any time is spent training.

    A folder that already holds a run is refused unless ``overwrite`` (its result files are
    removed) or ``resume``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError("`out` exists and is not a folder", path=str(out))
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
            f"`resume` {out}, choose another `out`, or pass `overwrite`"
        )
    for name in existing:
        with contextlib.suppress(OSError):
            (out / name).unlink()
    return out


@dataclass
class RunState:
    """What ``run.json`` holds: the settings, the seed, the data, and how far training got."""

    config: TrainConfig
    seed: int
    source: str | None
    dataset: str | None
    class_names: list[str] | None  # None in a state that did not record them
    added_layers: list[str] = field(default_factory=list)
    epochs_completed: int = 0
    checkpoint: str | None = None
    history: list[EpochRecord] = field(default_factory=list)
    started: str = field(default_factory=now_stamp)
    interrupted_epoch: EpochRecord | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "convkit_run": 1,
            "config": self.config.to_json(),
            "seed": self.seed,
            "source": self.source,
            "dataset": self.dataset,
            "class_names": self.class_names,
            "added_layers": self.added_layers,
            "epochs_completed": self.epochs_completed,
            "checkpoint": self.checkpoint,
            "history": [r.to_json() for r in self.history],
            "started": self.started,
        }
        if self.interrupted_epoch is not None:
            out["interrupted_epoch"] = self.interrupted_epoch.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        names = data.get("class_names")
        interrupted = data.get("interrupted_epoch")
        return cls(
            config=TrainConfig.from_json(data["config"]),
            seed=int(data["seed"]),
            source=data.get("source"),
            dataset=data.get("dataset"),
            class_names=None if names is None else [str(n) for n in names],
            added_layers=[str(a) for a in data.get("added_layers", [])],
            epochs_completed=int(data["epochs_completed"]),
            checkpoint=data.get("checkpoint"),
            history=[EpochRecord.from_json(r) for r in data.get("history", [])],
            started=str(data.get("started") or now_stamp()),
            interrupted_epoch=None if interrupted is None else EpochRecord.from_json(interrupted),
        )


def load_run(resume: Path) -> RunState:
    """The state of the run in the folder ``resume``."""
    folder = Path(resume)
    path = folder / RUN_FILE
    if not folder.is_dir():
        raise UsageError(f"`resume` {resume}: no such folder")
    if not path.is_file():
        raise UsageError(f"`resume` {resume}: no {RUN_FILE} there, so not a train-cifar run folder")
    try:
        size = path.stat().st_size
        if size > MAX_RUN_FILE_BYTES:
            raise ValueError(f"{size:,} bytes, more than a run's state takes")
        state = RunState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ConvkitError(f"unreadable run state ({exc})", path=str(path)) from None
    if state.checkpoint not in (None, CHECKPOINT, MODEL):
        # Only these two are ever written: a path elsewhere would make the run read, and
        # then replace, a file outside its folder.
        raise ConvkitError(
            f"unreadable run state (its checkpoint {state.checkpoint!r} is neither "
            f"{CHECKPOINT} nor {MODEL})",
            path=str(path),
        )
    return state


def resume_config(state: RunState, settings: TrainSettings) -> TrainConfig:
    """The settings of the run of ``state``, continued with ``settings``.

    Only ``epochs`` (the new total) and ``strategy`` (the devices of the machine it resumes
    on) may change: any other setting given with a different value is an error, since a
    resumed run continues the same training, it does not start a different one. A run that
    trained all its epochs but never wrote its results (no final model) may be resumed with
    nothing left to train: it is evaluated and its results written.
    """
    saved, done = state.config, state.epochs_completed
    for key, value in settings.given().items():
        if key in ("epochs", "strategy"):
            continue
        before = getattr(saved, key)
        if key == "model" and saved.spec is None:
            value = model_name(value)
        if value != before:
            raise UsageError(
                f"`resume` continues the run with its own settings: `{key}` {value} differs "
                f"from the {before} it was started with (drop the option, or start a new run "
                "with `out`)"
            )
    epochs = saved.epochs if settings.epochs is None else int(settings.epochs)
    if getattr(settings, "strategy", None) is not None:
        saved = replace(saved, strategy=settings.strategy)
    if epochs == done and state.checkpoint != MODEL:
        # Trained to the end but never finished (killed while evaluating or writing):
        # nothing left to train, the run evaluates its last checkpoint and writes results.
        return replace(saved, epochs=epochs)
    if epochs <= done:
        raise UsageError(
            f"the run has already trained {done} epoch{'s' if done != 1 else ''}"
            f"{'' if epochs == done else f', more than `epochs` {epochs}'}; "
            f"pass `epochs` N with N > {done} to train more"
        )
    return replace(saved, epochs=epochs)


class RunFolder:
    """The folder of a run and its state, kept on disk as training goes."""

    def __init__(self, out: Path, state: RunState, metadata: dict[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.state = state
        self.metadata = metadata  # kept in every model file the run writes

    def save_state(self) -> None:
        write_json(self.out / RUN_FILE, self.state.to_json())

    def epoch_completed(self, model, done: int, history: Sequence[EpochRecord]) -> None:
        """Epoch ``done`` (1-based) is complete: checkpoint the model, record the progress;
        with ``restore_best``, keep the weights of the best validation epoch so far."""
        save_model(model, self.out / CHECKPOINT, self.metadata)
        if self.state.config.restore_best and best_epoch(history) == done:
            from convkit.files import atomic_path

            with atomic_path(self.out / BEST_WEIGHTS, suffix=".weights.h5") as tmp:
                model.save_weights(tmp)
        self.state.epochs_completed = done
        self.state.checkpoint = CHECKPOINT
        self.state.history = list(history)
        self.state.interrupted_epoch = None
        self.save_state()

    def restore_best(self, model, history: Sequence[EpochRecord]) -> int | None:
        """Load the best validation epoch's weights into ``model`` when they are not the
        last epoch's; return that epoch (None: nothing restored)."""
        best, path = best_epoch(history), self.out / BEST_WEIGHTS
        done = [r.epoch for r in history if r.complete]
        if best is None or not path.is_file() or (done and best == done[-1]):
            return None
        model.load_weights(path)
        return best

    def place_model(self, model, partial: EpochRecord | None, restored: bool = False) -> None:
        """Put the final ``model.keras`` in place.

        After an interrupted epoch (``partial``), the model as it is goes to ``model.keras``
        and the last completed epoch stays the checkpoint to resume from; otherwise the last
        checkpoint is the final model and is moved into place.
        """
        out, state = self.out, self.state
        if partial is not None:
            if state.checkpoint == MODEL:
                # model.keras is this run's resume point: keep it as the checkpoint.
                os.replace(out / MODEL, out / CHECKPOINT)
                state.checkpoint = CHECKPOINT
            save_model(model, out / MODEL, self.metadata)
        elif restored:
            # The best epoch's weights, restored: that is the run's model.
            save_model(model, out / MODEL, self.metadata)
            if (out / CHECKPOINT).exists():
                os.unlink(out / CHECKPOINT)
            state.checkpoint = MODEL
        elif (out / CHECKPOINT).exists():
            os.replace(out / CHECKPOINT, out / MODEL)
            state.checkpoint = MODEL
        else:
            save_model(model, out / MODEL, self.metadata)

"""The records a training run produces and reports: shared by the loop, the results and the
plots (so that none of them imports another for its types)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class RunInfo:
    """What :meth:`~convkit.training.events.TrainingEvents.on_start` is told about the run."""

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


@dataclass(frozen=True)
class BatchProgress:
    """One training step done: what :meth:`~convkit.training.events.TrainingEvents.on_batch`
    is told (``loss`` and ``accuracy`` are the epoch's running means so far)."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based
    steps: int
    loss: float
    accuracy: float


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

"""The settings of a training run, and the named models.

:class:`TrainSettings` is what a caller asks for (``None``: not given); :class:`TrainConfig`
is what a run computes with, defaults filled in, validated, and saved in ``run.json`` so that
a resumed run continues with the same settings
(:func:`convkit.training.runfolder.resume_config`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from convkit.defaults import STRATEGIES
from convkit.errors import UsageError, check_choice

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
MAX_IMAGE_SIDE = 4096
"""The largest side of the images a folder is prepared to."""
CLASS_WEIGHTS = (None, "balanced")

MODEL_ALIASES = {
    "default": "small",
    "keras-example": "classic",
    "keras": "classic",
    "cifar10-cnn": "classic",
    "cifar10_cnn": "classic",
}


def model_name(name: str) -> str:
    """The canonical name of a named model (aliases and case allowed)."""
    key = name.strip().lower()
    key = MODEL_ALIASES.get(key, key)
    if key not in MODELS:
        known = ", ".join([*MODELS, *MODEL_ALIASES])
        raise UsageError(f"unknown `model` {name!r} (known: {known}; or give `spec`)")
    return key


def parse_image_size(text: str) -> list[int]:
    """``"HxW"`` (``"48x64"``: 48 high, 64 wide) or ``"S"`` (square) as ``[H, W]``."""
    parts = str(text).strip().lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) != 2 or min(size) < 1 or max(size) > MAX_IMAGE_SIDE:
        raise UsageError(
            f"`image_size` must be HxW (height x width, e.g. 48x64) or one number for a "
            f"square, each side 1..{MAX_IMAGE_SIDE}, got {text!r}"
        )
    return size


def model_spec_text(name: str, num_classes: int) -> str:
    """The layer spec of a named model, for ``num_classes`` classes."""
    return MODELS[model_name(name)][1].replace("NUM_CLASSES", str(num_classes))


@dataclass
class TrainSettings:
    """The settings a caller gives; ``None`` leaves one at its default (or, when resuming,
    at the value the run was started with)."""

    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    model: str | None = None
    spec: str | None = None  # layer-spec text
    augment: bool | None = None
    learning_rate: float | None = None
    val_split: float | None = None
    limit: int | None = None
    seed: int | None = None
    restore_best: bool | None = None
    strategy: str | None = None  # "auto", "mirrored" or "default" (defaults.STRATEGIES)
    # A folder of images (``convkit train DATA``); None for CIFAR.
    image_size: list[int] | None = None  # [height, width]
    color: str | None = None  # "gray" or "rgb"
    keep_aspect: bool | None = None
    test_split: float | None = None
    class_weight: str | None = None  # "balanced"

    def given(self) -> dict[str, Any]:
        """The settings that were given, by name."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes (saved in ``run.json`` for resuming).

    Checked when made (a :class:`UsageError` names the setting), so a config is valid
    wherever it goes; ``model`` is kept under its canonical name.
    """

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
    restore_best: bool = False
    strategy: str = "auto"  # how training uses the host's devices (training/strategy.py)
    # A folder of images: the size and colour its images are prepared to (resolved from
    # the scan when not given), how, the share held out for testing when the folder has no
    # test/, and the weighting of unequal classes.
    image_size: list[int] | None = None
    color: str | None = None
    keep_aspect: bool = False
    test_split: float | None = None
    class_weight: str | None = None

    def __post_init__(self) -> None:
        checks = (
            (self.epochs >= 1, f"`epochs` must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"`batch_size` must be at least 1, got {self.batch_size}"),
            (
                math.isfinite(self.learning_rate) and self.learning_rate > 0,
                f"`learning_rate` must be a positive number, got {self.learning_rate}",
            ),
            (
                math.isfinite(self.val_split) and 0 < self.val_split < 1,
                f"`val_split` must be between 0 and 1 (exclusive), got {self.val_split}",
            ),
            (
                self.limit is None or self.limit >= 2,
                f"`limit` must be at least 2 (one training and one validation image), "
                f"got {self.limit}",
            ),
            (
                self.seed is None or 0 <= self.seed < 2**31,
                f"`seed` must be between 0 and 2147483647, got {self.seed}",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        self._check_folder_settings()
        check_choice(self.strategy, STRATEGIES, "strategy")
        if self.spec is None:
            object.__setattr__(self, "model", model_name(self.model))

    def _check_folder_settings(self) -> None:
        size = self.image_size
        if size is not None:
            size = [int(d) for d in size]
            if len(size) != 2 or min(size) < 1 or max(size) > MAX_IMAGE_SIDE:
                raise UsageError(
                    f"`image_size` must be HxW, each side 1..{MAX_IMAGE_SIDE}, got "
                    f"{'x'.join(map(str, size))}"
                )
            object.__setattr__(self, "image_size", size)
        if self.color is not None and self.color not in ("gray", "rgb"):
            raise UsageError(f"`color` must be gray or rgb, got {self.color!r}")
        if self.test_split is not None and not (
            math.isfinite(self.test_split) and 0 < self.test_split < 1
        ):
            raise UsageError(
                f"`test_split` must be between 0 and 1 (exclusive), got {self.test_split}"
            )
        if self.class_weight not in CLASS_WEIGHTS:
            raise UsageError(f"`class_weight` must be balanced, got {self.class_weight!r}")

    @property
    def model_label(self) -> str:
        return "spec" if self.spec is not None else self.model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> TrainConfig:
        """The given settings, defaults for the rest."""
        return cls(**settings.given())

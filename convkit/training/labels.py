"""Class names: how a run writes them (``labels.txt``), how a model's are found again, and
CIFAR-10's, known without reading the data.

This module imports neither the CIFAR reader nor Keras: the reader and ``predict`` both use
it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from convkit.errors import ModelError

LABELS_FILE = "labels.txt"
"""Beside a trained model: its class names, one per line, in output order."""

CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def labels_text(names: Sequence[str]) -> bytes:
    """The content of :data:`LABELS_FILE` for ``names``."""
    return ("\n".join(names) + "\n").encode()


def read_labels(path: Path) -> list[str]:
    """Class names from a file: one per line (blank lines ignored), or a JSON list."""
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


def class_names_for(
    model_path: Path, classes: int, labels: str | Path | None = None
) -> tuple[list[str], str | None]:
    """The names of a model's ``classes`` outputs, and a note when they are a guess.

    From ``labels`` when given; else :data:`LABELS_FILE` (or ``metrics.json``) beside the
    model; else CIFAR-10's names for a 10-class model; else ``class N``.
    """
    if labels is not None:
        names = read_labels(Path(labels))
        if len(names) != classes:
            raise ModelError(
                f"{len(names)} class names for a model with {classes} outputs", path=str(labels)
            )
        return names, None
    folder = Path(model_path).parent
    beside = folder / LABELS_FILE
    if beside.is_file():
        names = read_labels(beside)
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
        return list(CIFAR10_NAMES), "no labels.txt beside the model: assuming CIFAR-10's classes"
    return [
        f"class {i}" for i in range(classes)
    ], "no labels.txt beside the model: classes by number"

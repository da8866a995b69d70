"""Class names: how a run writes them (``labels.txt``), how a model's are found again, and
CIFAR-10's, known without reading the data.

This module imports neither the CIFAR reader nor Keras: the reader and ``predict`` both use
it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from convkit.errors import ModelError

LABELS_FILE = "labels.txt"
"""Beside a trained model: its class names, one per line, in output order."""

MAX_LABELS_BYTES = 16 * 1024 * 1024
"""The largest labels file (or ``metrics.json``) read: 100,000 class names take ~2 MB."""

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


def read_small_text(path: Path, *, what: str = "the labels") -> str:
    """A regular file of at most :data:`MAX_LABELS_BYTES`, as UTF-8 text. Opened without
    blocking and checked before reading: a pipe or a device is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ModelError(f"cannot read {what}: {reason}", path=str(path)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ModelError(f"cannot read {what}: not a regular file", path=str(path))
        if info.st_size > MAX_LABELS_BYTES:
            raise ModelError(
                f"cannot read {what}: {info.st_size:,} bytes, more than class names take "
                f"({MAX_LABELS_BYTES:,})",
                path=str(path),
            )
        data = handle.read(MAX_LABELS_BYTES + 1)
    try:
        return data[:MAX_LABELS_BYTES].decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{what} file is not UTF-8 text", path=str(path)) from None


def read_labels(path: Path) -> list[str]:
    """Class names from a file: one per line (blank lines ignored), or a JSON list."""
    text = read_small_text(path)
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            names = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise ModelError(f"bad JSON list of labels ({exc})", path=str(path)) from None
        if not isinstance(names, list):
            raise ModelError("bad JSON list of labels (not a list)", path=str(path))
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
            names = json.loads(read_small_text(metrics, what="metrics")).get("class_names")
        except (ModelError, ValueError, AttributeError, RecursionError):
            names = None
        if isinstance(names, list) and len(names) == classes:
            return [str(n) for n in names], None
    if classes == 10:
        return list(CIFAR10_NAMES), "no labels.txt beside the model: assuming CIFAR-10's classes"
    return [
        f"class {i}" for i in range(classes)
    ], "no labels.txt beside the model: classes by number"

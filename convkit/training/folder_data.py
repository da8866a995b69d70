"""A folder of labelled images turned into :class:`~convkit.training.data.TrainingData`:
:func:`read_folder`.

The folder is scanned (:mod:`convkit.training.folders`), the image size and colour chosen
when not given (the median size of the scan, fitted inside :data:`DEFAULT_SIZE_CAP`;
colour unless every image is gray), the images split (:mod:`convkit.training.splits`) and
prepared (:func:`convkit.training.preparation.prepare_pixels`). Prepared images that fit
``memory_budget`` as uint8 arrays are held in memory; a larger data set is streamed from
disk batch by batch (:class:`~convkit.training.stream.FileImages`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from convkit.arithmetic.formatting import format_bytes
from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.errors import ConvkitError, DataError, UsageError
from convkit.training.config import TrainConfig
from convkit.training.data import TrainingData
from convkit.training.events import TrainingEvents
from convkit.training.folders import FolderLayout, FolderScan, for_each, scan_folder
from convkit.training.preparation import make_preparation
from convkit.training.splits import FolderSplit, folder_split
from convkit.training.stream import FileImages

DEFAULT_SIZE_CAP = 64
"""The default image size is the scan's median, fitted inside this square (for a CPU)."""
DEFAULT_DATA_MEMORY = 2 * 1024**3
"""Prepared images up to this many bytes are held in memory; more are streamed."""
ON_BAD = ("skip", "fail")
UNEQUAL = 1.5
"""Classes whose largest is this many times the smallest are called unequal."""


@dataclass(frozen=True)
class FolderReading:
    """How a folder is read (none of it changes what a run computes): what to do with
    unreadable files, the memory budget of the prepared images, the scan's threads and the
    pixel limit of one image."""

    on_bad: str = "skip"
    memory_budget: int = DEFAULT_DATA_MEMORY
    jobs: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.on_bad not in ON_BAD:
            raise UsageError(f"`on_bad` must be skip or fail, got {self.on_bad!r}")
        if self.memory_budget < 0:
            raise UsageError(f"`memory_budget` must be at least 0, got {self.memory_budget}")


def default_image_size(
    heights: np.ndarray, widths: np.ndarray, cap: int = DEFAULT_SIZE_CAP
) -> list[int]:
    """``[H, W]``: the median height and width, fitted inside ``cap x cap`` keeping their
    ratio when larger."""
    height, width = float(np.median(heights)), float(np.median(widths))
    scale = min(1.0, cap / height, cap / width)
    return [max(1, round(height * scale)), max(1, round(width * scale))]


def _check_scan(scan: FolderScan, reading: FolderReading, events: TrainingEvents) -> None:
    """Unreadable files (``on_bad``) and classes left without a readable training image."""
    layout = scan.layout
    if scan.bad:
        file, reason = scan.bad[0]
        n = len(scan.bad)
        if reading.on_bad == "fail":
            more = f" and {n - 1} more unreadable file{'s' if n > 2 else ''}" if n > 1 else ""
            raise DataError(f"{reason}{more} (`on_bad` is fail)", path=file)
        events.note(
            f"training without the {n} unreadable file{'s' if n != 1 else ''} "
            "(`on_bad` fail stops instead)"
        )
    counts, bad = scan.counts(), scan.bad_counts()
    pool = [sum(counts[p][k] for p in counts if p != "test") for k in range(len(bad))]
    for k, name in enumerate(layout.class_names):
        if pool[k] == 0:
            why = f"its {bad[k]} file(s) could not be read" if bad[k] else "it holds no image"
            where = "train/" if layout.kind == "split" else "the folder"
            raise DataError(
                f"class {name!r} has no readable training image in {where} ({why}): "
                "add images, or move its folder away",
                path=str(layout.root),
            )


def _resolve(config: TrainConfig, scan: FolderScan, events: TrainingEvents) -> TrainConfig:
    """``config`` with its image size and colour chosen from the scan when not given."""
    found = [image for image in scan.images if image is not None]
    image_size, color = config.image_size, config.color
    if image_size is None:
        heights = np.array([image.height for image in found])
        widths = np.array([image.width for image in found])
        image_size = default_image_size(heights, widths)
        events.note(
            f"images resized to {image_size[0]}x{image_size[1]} (HxW): the median size of "
            f"the scan{'' if image_size != [DEFAULT_SIZE_CAP] * 2 else ', capped'}; "
            "set it with `image_size`"
        )
    if color is None:
        color = "gray" if all(image.gray for image in found) else "rgb"
        if color == "gray":
            events.note("every image is gray: training on one gray channel")
    sixteen = sum(image.bits == 16 for image in found)
    if sixteen:
        events.note(f"{sixteen} 16-bit image(s) scaled to 8 bits")
    return replace(config, image_size=list(image_size), color=color)


def _class_note(labels: np.ndarray, names: list[str], config: TrainConfig) -> str | None:
    counts = np.bincount(labels, minlength=len(names))
    low, high = int(counts.min()), int(counts.max())
    if low and high / low < UNEQUAL:
        return None
    shown = ", ".join(f"{n} {c}" for n, c in list(zip(names, counts.tolist(), strict=True))[:8])
    advice = (
        "weighting each class by its share (`class_weight` balanced)"
        if config.class_weight == "balanced"
        else "consider `class_weight` balanced"
    )
    return f"the classes are unequal in the training images ({shown}): {advice}"


def read_folder(
    layout: FolderLayout,
    config: TrainConfig,
    *,
    seed: int,
    reading: FolderReading | None = None,
    events: TrainingEvents | None = None,
    on_scan: Callable[[FolderScan], None] | None = None,
) -> tuple[TrainingData, TrainConfig]:
    """Scan, check, split and prepare the images of ``layout`` for a run of ``config``
    (see the module); returns the data and ``config`` with its image size and colour
    chosen. ``on_scan`` sees the scan before anything is checked (the table of classes and
    the unreadable files)."""
    from convkit.engine.executor import default_jobs

    reading = reading or FolderReading()
    events = events or TrainingEvents()
    known = None
    if config.image_size is not None and config.color is not None:
        known = make_preparation(config.image_size, config.color, keep_aspect=config.keep_aspect)
    events.on_phase(f"scanning {len(layout.files):,} files in {layout.root}")
    scan = scan_folder(
        layout,
        jobs=reading.jobs or default_jobs(),
        max_pixels=reading.max_pixels,
        keep_bytes=reading.memory_budget,
        preparation=known,
    )
    if on_scan is not None:
        on_scan(scan)
    for note in layout.notes:
        events.note(note)
    _check_scan(scan, reading, events)
    config = _resolve(config, scan, events)
    prep = make_preparation(config.image_size, config.color, keep_aspect=config.keep_aspect)
    readable = np.array(scan.readable())
    labels = np.array([layout.files[i].label for i in readable], np.int64)
    parts = np.array([layout.files[i].part for i in readable])
    split = folder_split(
        labels,
        parts,
        val_split=config.val_split,
        test_split=config.test_split,
        limit=config.limit,
        seed=seed,
    )
    note = _class_note(labels[split.train], layout.class_names, config)
    if note:
        events.note(note)
    images = _images(scan, readable, split, prep, reading, events)
    data = TrainingData(
        images["train"],
        labels[split.train],
        images["test"],
        labels[split.test],
        layout.class_names,
        source=str(layout.root),
        name=layout.root.resolve().name or "images",
        title=layout.root.resolve().name or "images",
        preparation=prep,
        x_val=images["val"],
        y_val=labels[split.val],
    )
    return data, config


def _images(scan, readable, split: FolderSplit, prep, reading, events) -> dict:
    """The prepared images of each part: arrays within the memory budget, else files."""
    height, width = prep["image_size"]
    channels = 1 if prep["color"] == "gray" else 3
    n = len(split.train) + len(split.val) + len(split.test)
    need = n * height * width * channels
    chosen = {"train": split.train, "val": split.val, "test": split.test}
    if need > reading.memory_budget:
        events.note(
            f"the {n:,} prepared images would take {format_bytes(need)}, more than "
            f"`memory_budget` {format_bytes(reading.memory_budget)}: streaming them from disk"
        )
        failures: list[str] = []
        sources = [scan.layout.files[i].source for i in readable]
        return {
            part: FileImages(
                [sources[j] for j in where],
                prep,
                max_pixels=reading.max_pixels,
                failures=failures,
            )
            for part, where in chosen.items()
        }
    return {part: _load(scan, readable[where], prep, reading) for part, where in chosen.items()}


def _load(scan: FolderScan, files: np.ndarray, prep, reading: FolderReading) -> np.ndarray:
    """The prepared uint8 images of the layout's ``files``, in order: from what the scan
    kept, or read again (:func:`convkit.training.folders.for_each`: on threads only when
    preparing an image takes long enough to be worth them)."""
    from convkit.engine.executor import default_jobs
    from convkit.image.codec import read_image
    from convkit.training.preparation import image_shape_of, prepare_pixels

    out = np.empty((len(files), *image_shape_of(prep)), np.uint8)
    errors: list[ConvkitError] = []

    def work(row: int) -> None:
        index = int(files[row])
        kept = scan.images[index]
        pixels, kept.pixels = kept.pixels, None  # what was kept goes as soon as it is used
        if pixels is not None and kept.prepared:
            out[row] = pixels
            return
        try:
            if pixels is None:
                pixels = read_image(scan.layout.files[index].source, max_pixels=reading.max_pixels)
            out[row] = prepare_pixels(pixels, prep)
        except ConvkitError as exc:
            errors.append(exc)

    for_each(len(files), work, jobs=reading.jobs or default_jobs())
    if errors:
        error = min(errors, key=lambda e: str(e.path))
        raise DataError(
            f"{error.message} (it could be read when the folder was scanned)", path=error.path
        )
    return out

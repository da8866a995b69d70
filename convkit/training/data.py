"""What training takes: any uint8 images ``(N, H, W, C)`` with integer labels and class
names (:class:`TrainingData`), and the seeded split of its training images into the images
trained on and those held out for validation (:func:`split_data`).

The images are NumPy arrays, or :class:`~convkit.training.stream.FileImages` (files read
and prepared batch by batch, for data sets larger than memory). The CIFAR reader
(:mod:`convkit.training.cifar`) and the folder reader (:mod:`convkit.training.folders`)
are sources of it; nothing here knows about either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convkit.arithmetic.formatting import format_shape
from convkit.errors import DataError, UsageError
from convkit.training.stream import FileImages


@dataclass
class TrainingData:
    """Training and test images, uint8 ``(N, H, W, C)`` (RGB order for colour), with
    integer labels ``0 .. len(class_names) - 1``.

    ``name`` is a short name (``cifar10``: ``metrics.json``'s ``dataset``), ``title`` the
    one people read (``CIFAR-10``), ``source`` where the data came from, and ``notes`` what
    its reader wants said. Checked when made: a :class:`DataError` names what is wrong.

    ``preparation`` says how the images were prepared for the network, so that a model
    trained on them prepares new images the same way: ``{"image_size": [H, W], "color":
    "gray" | "rgb", "keep_aspect": bool, "interpolation": "area"}``. Left empty, it is
    filled from the images (their size and channels, stretched, area interpolation): what
    CIFAR's 32x32 RGB arrays are.

    ``x_val``, ``y_val``: a validation set chosen by the reader (a folder's ``val/``, or its
    stratified split); without them the trainer splits one off the training images
    (:func:`split_data`).
    """

    x_train: np.ndarray | FileImages
    y_train: np.ndarray
    x_test: np.ndarray | FileImages
    y_test: np.ndarray
    class_names: list[str]
    source: str = "arrays"
    name: str = "images"
    title: str = "images"
    notes: list[str] = field(default_factory=list)
    preparation: dict[str, Any] = field(default_factory=dict)
    x_val: np.ndarray | FileImages | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) < 2:
            raise DataError(f"`class_names` must name at least 2 classes, got {self.class_names}")
        if (self.x_val is None) != (self.y_val is None):
            raise DataError("give both `x_val` and `y_val`, or neither")
        parts = [("x_train", "y_train"), ("x_test", "y_test")]
        if self.x_val is not None:
            parts.append(("x_val", "y_val"))
        for images, labels in parts:
            self._check(images, labels)
            if images != "x_train" and getattr(self, images).shape[1:] != self.x_train.shape[1:]:
                shape = getattr(self, images).shape[1:]
                raise DataError(
                    f"`{images}` images are {format_shape(shape, 'x')}, "
                    f"the training images {format_shape(self.x_train.shape[1:], 'x')}"
                )
        if not self.preparation:
            self.preparation = default_preparation(self.image_shape)

    def _check(self, images_name: str, labels_name: str) -> None:
        images, labels = getattr(self, images_name), getattr(self, labels_name)
        arrays = (np.ndarray, FileImages)
        if not isinstance(images, arrays) or images.dtype != np.uint8 or images.ndim != 4:
            got = f"{images.shape} {images.dtype}" if isinstance(images, arrays) else images
            raise DataError(
                f"`{images_name}` must be a uint8 array (images, height, width, channels), "
                f"got {got}"
            )
        if len(images) == 0:
            raise DataError(f"`{images_name}` holds no images")
        if (
            not isinstance(labels, np.ndarray)
            or labels.shape != (len(images),)
            or not np.issubdtype(labels.dtype, np.integer)
        ):
            got = f"{labels.shape} {labels.dtype}" if isinstance(labels, np.ndarray) else labels
            raise DataError(
                f"`{labels_name}` must be {len(images)} integer labels, one per image, got {got}"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise DataError(
                f"`{labels_name}` holds labels {low}..{high}, but there are "
                f"{self.num_classes} class names (labels 0..{self.num_classes - 1})"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""
        return tuple(int(d) for d in self.x_train.shape[1:])


def default_preparation(image_shape: tuple[int, ...]) -> dict[str, Any]:
    """The preparation of images already ``(height, width, channels)``: that size, gray for 1
    channel and RGB otherwise, stretched, area interpolation."""
    height, width, channels = (int(d) for d in image_shape)
    return {
        "image_size": [height, width],
        "color": "gray" if channels == 1 else "rgb",
        "keep_aspect": False,
        "interpolation": "area",
    }


@dataclass
class DataSplit:
    """The images trained on and those held out for validation."""

    x_train: np.ndarray | FileImages
    y_train: np.ndarray
    x_val: np.ndarray | FileImages
    y_val: np.ndarray
    class_weights: np.ndarray | None = None  # one per class, for the training images


def balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Keras's and scikit-learn's ``balanced`` class weights, ``n / (classes * count)``: every
    class weighs as much in the loss as if the classes were equal (a class with no image: 1)."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    weights = np.ones(num_classes)
    present = counts > 0
    weights[present] = len(labels) / (int(present.sum()) * counts[present])
    return weights.astype(np.float32)


def split_indices(n: int, *, val_split: float, limit: int | None, seed: int):
    """Seeded ``(train, val)`` index arrays over ``n`` training images (after ``limit``)."""
    order = np.random.default_rng(seed).permutation(n)
    if limit is not None:
        order = order[: min(limit, n)]
    total = len(order)
    n_val = min(max(1, round(total * val_split)), total - 1)
    if total < 2 or n_val < 1:
        raise UsageError(f"need at least 2 training images to split off a validation set, got {n}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def split_data(data: TrainingData, *, val_split: float, limit: int | None, seed: int) -> DataSplit:
    """The seeded split of ``data``'s training images (the first ``limit`` of a seeded
    order, when given); ``data``'s own validation set as it is, when it has one (its reader
    chose it, and applied ``limit``)."""
    if data.x_val is not None:
        return DataSplit(data.x_train, data.y_train, data.x_val, data.y_val)
    train, val = split_indices(len(data.x_train), val_split=val_split, limit=limit, seed=seed)
    return DataSplit(data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val])

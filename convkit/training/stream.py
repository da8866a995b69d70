"""Images streamed from disk: :class:`FileImages`, a folder's images read and prepared batch
by batch when they would not fit the memory budget as one uint8 array.

A :class:`FileImages` stands where a uint8 ``(N, H, W, C)`` array stands in
:class:`~convkit.training.data.TrainingData`: it has ``shape``, ``dtype``, ``ndim`` and
``len``; an integer index reads and prepares one image, a slice or an index array gives the
subset (nothing read). :mod:`convkit.training.pipeline` feeds it to tf.data through
:meth:`FileImages.read_batch` (``tf.numpy_function`` in a parallel ``map``), so each batch is
decoded while the previous one trains, with the very function the in-memory path uses
(:func:`convkit.training.preparation.prepare_pixels`): the same pixels either way.

A file that was readable when the folder was scanned but fails later (deleted, changed) is
fed as a black image rather than ending training mid-epoch; :attr:`FileImages.failures`
names it, and the run notes it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.errors import ConvkitError

if TYPE_CHECKING:
    from convkit.image.sources import Source


class FileImages:
    """Image files prepared as ``preparation`` says, read when used (see the module)."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(
        self,
        sources: Sequence[Source],
        preparation: Mapping[str, Any],
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        failures: list[str] | None = None,
    ) -> None:
        from convkit.training.preparation import check_preparation, image_shape_of

        self.sources = list(sources)
        self.preparation = check_preparation(preparation)
        self.max_pixels = max_pixels
        self.image_shape = image_shape_of(self.preparation)
        self.failures = failures if failures is not None else []
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.sources), *self.image_shape)

    @property
    def nbytes(self) -> int:
        """The bytes these images would take as one uint8 array."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.read(int(key))
        picked = np.arange(len(self.sources))[key]
        return FileImages(
            [self.sources[int(i)] for i in np.atleast_1d(picked)],
            self.preparation,
            max_pixels=self.max_pixels,
            failures=self.failures,
        )

    def __repr__(self) -> str:
        return f"FileImages({len(self)} files, {self.image_shape})"

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` read and prepared: uint8 ``(H, W, C)``. Raises the
        :class:`ConvkitError` of a file that cannot be read."""
        from convkit.image.codec import read_image
        from convkit.training.preparation import prepare_pixels

        image = read_image(self.sources[index], max_pixels=self.max_pixels)
        return prepare_pixels(image, self.preparation)

    def read_batch(self, indices) -> np.ndarray:
        """The images at ``indices``, prepared, as one uint8 ``(n, H, W, C)`` array; a file
        that cannot be read is black, and named in :attr:`failures`."""
        indices = np.asarray(indices).ravel()
        out = np.zeros((len(indices), *self.image_shape), np.uint8)
        for row, index in enumerate(indices):
            try:
                out[row] = self.read(int(index))
            except ConvkitError as exc:
                with self._lock:
                    if len(self.failures) < 1000:
                        self.failures.append(str(exc))
        return out


def images_tensor(tf, images: FileImages, indices):
    """The tf.data side of :meth:`FileImages.read_batch`: a uint8 ``(n, H, W, C)`` tensor of
    the images at the int tensor ``indices``."""
    batch = tf.numpy_function(images.read_batch, [indices], tf.uint8, stateful=False)
    batch.set_shape((None, *images.image_shape))
    return batch

"""The tf.data input pipeline of training and evaluation.

Images stay uint8 in memory (or on disk: :class:`~convkit.training.stream.FileImages` are
read and prepared batch by batch in the same parallel ``map``). Each epoch is a seeded
permutation of the training indices (``stateless_shuffle`` keyed by (seed, epoch), so a
resumed run sees the same order as an uninterrupted one), batched; a parallel ``map``
gathers each batch, applies the augmentation (random horizontal flip and a random
translation of up to :data:`MAX_SHIFT` pixels with reflected borders, stateless random ops
keyed by (seed, epoch, step): repeatable even with parallel calls) and converts to float32,
and ``prefetch`` overlaps all of it with the training step. Any image size works: the
shapes are the arrays'. With ``weights`` (one per class: ``balanced`` class weights) each
batch also carries the weight of each image's class, which Keras's ``fit`` uses as sample
weights.

The functions given to tf.data are traced as they are (``do_not_convert``): their ``if``
statements test Python values, and AutoGraph's conversion would write each function's
source into a ``__autograph_generated_file*.py`` in ``$TMPDIR``, removed only by an
``atexit`` handler that a process ending at once (``os._exit``, a signal) never runs.
"""

from __future__ import annotations

import math

import numpy as np

from convkit.training.stream import FileImages, images_tensor

MAX_SHIFT = 4
"""The largest translation of the augmentation, in pixels."""


def _tf():
    from convkit.heavy import import_tensorflow

    return import_tensorflow()


def augment_batch(images, seed, *, max_shift: int = MAX_SHIFT):
    """Random horizontal flips and translations (reflected borders) of a uint8 batch.

    ``seed`` is a shape-[2] integer tensor; the same seed gives the same result.
    """
    tf = _tf()
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    flip = tf.random.stateless_uniform([n], seed=seeds[0]) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if max_shift <= 0:
        return images
    m = max_shift
    padded = tf.pad(images, [[0, 0], [m, m], [m, m], [0, 0]], mode="REFLECT")
    dy = tf.random.stateless_uniform([n], seed=seeds[1], maxval=2 * m + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seed=seeds[2], maxval=2 * m + 1, dtype=tf.int32)
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def steps_for(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def train_dataset(
    x: np.ndarray | FileImages,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    augment: bool,
    weights: np.ndarray | None = None,
):
    """Batches of (float32 images, int32 labels) for epochs ``first_epoch..epochs-1``, and
    float32 sample weights when ``weights`` (one per class) are given.

    Yields exactly ``(epochs - first_epoch) * steps_for(len(x), batch_size)`` batches; give
    ``fit`` that many steps per epoch.
    """
    tf = _tf()
    n = len(x)
    seed_t = tf.constant(seed, tf.int64)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int32), seed=tf.stack([seed_t, epoch])
        )
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return tf.data.Dataset.zip(
            tf.data.Dataset.from_tensors(epoch).repeat(), tf.data.Dataset.range(n), batches
        )

    plain = tf.autograph.experimental.do_not_convert
    index = tf.data.Dataset.range(first_epoch, epochs).flat_map(plain(epoch_batches))
    data, gather = _source(tf, x, y)

    def load(keys, arrays):
        epoch, step, idx = keys
        images, labels = gather(arrays, idx)
        if augment:
            images = augment_batch(images, tf.stack([seed_t + 1, epoch * 1_000_003 + step]))
        batch = (tf.cast(images, tf.float32), tf.cast(labels, tf.int32))
        if weights is None:
            return batch
        return (*batch, tf.gather(tf.constant(weights, tf.float32), labels))

    return (
        tf.data.Dataset.zip(index, data)
        .map(tf.autograph.experimental.do_not_convert(load), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_dataset_options(tf))
    )


def _source(tf, x, y):
    """``(data, gather)``: a dataset repeating what the batches are gathered from, and
    ``gather(arrays, idx) -> (uint8 images, labels)`` (``labels`` None without ``y``).
    Arrays are captured whole; :class:`FileImages` are read batch by batch."""
    files = isinstance(x, FileImages)
    arrays = (() if files else (x,)) + (() if y is None else (y,))
    if not arrays:
        arrays = (np.zeros(1, np.uint8),)  # files without labels: nothing else to capture

    def gather(captured, idx):
        images = images_tensor(tf, x, idx) if files else tf.gather(captured[0], idx)
        return images, (None if y is None else tf.gather(captured[-1], idx))

    return tf.data.Dataset.from_tensors(arrays).repeat(), gather


def _dataset_options(tf):
    # As Keras does for NumPy inputs: tf.data's default graph rewrites would serialize the
    # captured image array (150 MB for CIFAR-10) each time an iterator is made.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return options


def eval_dataset(x: np.ndarray | FileImages, y: np.ndarray | None, *, batch_size: int):
    """Batches in order, float32 images (and int32 labels when ``y`` is given)."""
    tf = _tf()
    index = tf.data.Dataset.range(len(x)).batch(batch_size)
    data, gather = _source(tf, x, y)

    def load(idx, arrays):
        images, labels = gather(arrays, idx)
        images = tf.cast(images, tf.float32)
        if y is None:
            return images
        return images, tf.cast(labels, tf.int32)

    return (
        tf.data.Dataset.zip(index, data)
        .map(tf.autograph.experimental.do_not_convert(load), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_dataset_options(tf))
    )

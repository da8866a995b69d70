"""Which images of a folder are trained on, validated on and tested on: stratified, seeded
splits (:func:`stratified_take`, :func:`folder_split`).

Stratified: each class gives its share (the same fraction of every class, to the nearest
image, the remainders going to the classes with the largest fractional parts), so a class
of 10 images among classes of 1,000 still has its 10% in the test set, and every class keeps
at least one training image. Seeded: the same ``seed`` gives the same split, whatever the
order the files were listed in (they are listed sorted).

The order of the cuts, for the flat layout: the test images first, from all the images
(``test_split`` of each class), so that the test set does not depend on ``limit``; then
``limit`` (a stratified subset of what is left); then the validation images (``val_split``
of each class of those). A given ``test/`` is used as it is, never re-split; a given
``val/`` likewise, and without one the validation images come out of ``train/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convkit.errors import UsageError

DEFAULT_TEST_SPLIT = 0.2
"""The share of each class held out for testing when the folder has no ``test/``."""

_TEST, _LIMIT, _VAL = 1, 2, 3  # independent random streams of one seed


def stratified_take(
    labels: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(taken, rest)``: sorted positions in ``labels``, ``count`` of them taken with each
    class's share (see the module); a class never gives its last image."""
    labels = np.asarray(labels)
    classes, sizes = np.unique(labels, return_counts=True)
    total = len(labels)
    count = max(0, min(int(count), total))
    exact = sizes * (count / total) if total else sizes * 0.0
    share = np.floor(exact).astype(np.int64)
    room = sizes - 1  # a class keeps one image in the rest
    share = np.minimum(share, room)
    missing = count - int(share.sum())
    if missing > 0:
        # Largest remainders first (ties: the larger class, then the lower label).
        order = np.lexsort((classes, -sizes, -(exact - np.floor(exact))))
        for k in order:
            if missing == 0:
                break
            if share[k] < room[k]:
                share[k] += 1
                missing -= 1
    taken = []
    for k, cls in enumerate(classes):
        where = np.flatnonzero(labels == cls)
        taken.append(rng.permutation(where)[: share[k]])
    taken = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(total), taken, assume_unique=True)
    return taken, rest


@dataclass
class FolderSplit:
    """Positions (into the list of readable images) of each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    limited: bool = False  # ``limit`` left images out


def folder_split(
    labels: np.ndarray,
    parts: np.ndarray,
    *,
    val_split: float,
    test_split: float | None,
    limit: int | None,
    seed: int,
) -> FolderSplit:
    """The split of images with ``labels`` found in ``parts`` (``"train"``, ``"val"``,
    ``"test"``, or ``"images"`` for the flat layout); see the module."""
    labels, parts = np.asarray(labels), np.asarray(parts)
    given_test = bool(np.any(parts == "test"))
    if given_test and test_split is not None:
        raise UsageError(
            "the folder has a test/ folder, used as it is: leave out `test_split` (or move "
            "test/ away to split the test images off train/)"
        )
    pool = np.flatnonzero((parts != "test") & (parts != "val"))
    test = np.flatnonzero(parts == "test")
    if not given_test:
        share = DEFAULT_TEST_SPLIT if test_split is None else test_split
        taken, rest = stratified_take(
            labels[pool], round(len(pool) * share), np.random.default_rng([seed, _TEST])
        )
        test, pool = pool[taken], pool[rest]
    limited = limit is not None and limit < len(pool)
    if limited:
        taken, _ = stratified_take(labels[pool], limit, np.random.default_rng([seed, _LIMIT]))
        pool = pool[taken]
    val = np.flatnonzero(parts == "val")
    if len(val) == 0:
        taken, rest = stratified_take(
            labels[pool],
            min(max(1, round(len(pool) * val_split)), len(pool) - 1),
            np.random.default_rng([seed, _VAL]),
        )
        val, pool = pool[taken], pool[rest]
    if len(pool) < 1 or len(val) < 1 or len(test) < 1:
        raise UsageError(
            f"too few images to split: {len(pool)} for training, {len(val)} for validation, "
            f"{len(test)} for testing (each needs at least one: add images, or change "
            f"`val_split` / `test_split`{' / `limit`' if limited else ''})"
        )
    return FolderSplit(np.sort(pool), np.sort(val), np.sort(test), limited)

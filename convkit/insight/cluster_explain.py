"""``explain`` on a Dask cluster: each image one task, each worker its own Grad-CAM model.

:func:`convkit.insight.explain.explain_images`, given a scheduler, calls
:func:`explain_on_cluster`: every image becomes a task (:func:`explain_one`) on the one
executor (:meth:`~convkit.engine.executor.Executor.run_tasks`). A task carries the
classifier without its Keras model (the model's file, shape, class names, preparation),
the layer's name, the image and its own output paths. The worker loads the model once per
process (:func:`convkit.training.cluster_predict.worker_model`: checked, safe mode, keyed
by the file's absolute path, size and modification time), builds the Grad-CAM model on it
once (:data:`_GRADCAMS`), then reads the image, computes its heat maps and draws and
writes them exactly as a local run does (with the local run's writer, passed in).

A local run puts up to 32 images through the Grad-CAM model at once, a worker one. A
convolution's sums, and so the heat maps, are per image: the pictures and ``.npy`` files
come out byte for byte as a local run's (tests/test_dask.py). The probabilities go through
a matrix product over the batch, whose order of summation may differ: in the sixth decimal
at most (the JSON rounds to six), as with ``predict``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.engine.executor import BatchOptions, BatchReport, Task

if TYPE_CHECKING:
    from convkit.image.sources import Source
    from convkit.insight.explain import Explained
    from convkit.insight.gradcam import GradCam
    from convkit.training.predict import Classifier

_GRADCAMS: OrderedDict[tuple, GradCam] = OrderedDict()
"""On a worker: the Grad-CAM models it has built, by model key and layer (the latest few)."""
_KEEP = 4
_CACHE_LOCK = threading.Lock()


def worker_gradcam(key: tuple, layer: str, max_memory: int) -> tuple[GradCam, threading.Lock]:
    """This worker process's Grad-CAM model of the model file ``key`` at ``layer``, built
    on first use; and the lock its model's calls take."""
    from convkit.insight.gradcam import gradcam_model
    from convkit.insight.models import find_layer
    from convkit.training.cluster_predict import worker_model

    model, lock = worker_model(key, max_memory)
    with _CACHE_LOCK:
        found = _GRADCAMS.get((key, layer))
        if found is None:
            with lock:
                found = gradcam_model(model, find_layer(model, layer))
            _GRADCAMS[(key, layer)] = found
            while len(_GRADCAMS) > _KEEP:
                _GRADCAMS.popitem(last=False)
        _GRADCAMS.move_to_end((key, layer))
        return found, lock


def choose_classes(probs: np.ndarray, fixed: int | None, ranks: int) -> np.ndarray:
    """The classes to explain per image: ``fixed`` for each, or the ``ranks`` likeliest
    (as a local run chooses them)."""
    if fixed is not None:
        return np.full((len(probs), 1), fixed)
    return np.argsort(-probs, axis=1, kind="stable")[:, :ranks]


def explain_one(
    key: tuple,
    light: Classifier,
    layer: str,
    job: tuple[int, Source, dict, dict],
    whats: list[str],
    fixed: int | None,
    settings: tuple[type, bool, int],
) -> list[Explained]:
    """One image's whole work on a worker: read, prepare, Grad-CAM, draw and write.
    ``job`` is ``(index, source, targets, raws)`` of this image alone; ``settings`` is
    ``(writer, create_folders, max_memory)``, the writer the class a local run draws with."""
    from convkit.image.codec import read_image

    index, source, targets, raws = job
    writer_class, create_folders, max_memory = settings
    gradcam, lock = worker_gradcam(key, layer, max_memory)
    image = read_image(source, max_pixels=light.max_pixels)
    x = light.prepare_array(image)
    with lock:  # one model call at a time per process (TensorFlow uses every core itself)
        cams, classes, probs = gradcam.explain(
            x[np.newaxis], lambda p: choose_classes(p, fixed, len(whats))
        )
    writer = writer_class({index: source}, light, gradcam, targets, raws, whats, create_folders)
    return writer(index, image, cams[0], classes[0], probs[0])


def explain_on_cluster(
    sources: Sequence[Source],
    classifier: Classifier,
    layer: str,
    plan: tuple[dict, dict, list[str], bool],
    fixed: int | None,
    options: BatchOptions,
    *,
    writer: type,
    outputs: Callable[[list[Explained]], int],
) -> BatchReport[list[Explained]]:
    """:func:`~convkit.insight.explain.explain_images` on a cluster (see the module).
    ``plan`` is ``(targets, raws, whats, create_folders)`` as the caller decided them,
    keyed by ``(index, what)``; ``writer`` draws and writes one image's heat maps (its
    ``_Writer``), ``outputs`` counts the files of a result; results in input order."""
    from convkit.image.pipeline import check_for_cluster, for_cluster, target_for_cluster
    from convkit.training.cluster_predict import model_key

    targets, raws, whats, create_folders = plan
    check_for_cluster(sources, list(targets.values()))
    key = model_key(classifier.path)
    light = replace(classifier, model=None, path=Path(key[0]))
    settings = (writer, create_folders, classifier.max_memory)

    def task(i: int) -> Task:
        mine = {(i, w): target_for_cluster(targets[(i, w)]) for w in whats}
        raw = {(i, w): raws[(i, w)].absolute() for w in whats if (i, w) in raws}
        job: tuple[int, Any, dict, dict] = (i, for_cluster(sources[i]), mine, raw)
        return Task(explain_one, (key, light, layer, job, whats, fixed, settings))

    with options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        executor.run_tasks(task, outputs=outputs)
    report = executor.report
    for i, done in enumerate(report.results):  # the files named as the user named them
        if done:
            report.results[i] = [
                replace(
                    e,
                    picture=targets[(i, w)].display,
                    raw=None if e.raw is None else str(raws[(i, w)]),
                )
                for e, w in zip(done, whats, strict=True)
            ]
    return report

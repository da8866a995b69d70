"""``predict`` on a Dask cluster: each image one task, each worker its own loaded model.

:meth:`convkit.training.predict.Classifier.classify`, given a scheduler, calls
:func:`classify_on_cluster`: every image becomes a task (:func:`classify_one`) on the one
executor (:meth:`~convkit.engine.executor.Executor.run_tasks`). A task carries the
classifier without its Keras model (the model's file, shape, class names, preparation);
the worker loads the model once per process, in safe mode and checked
(:func:`convkit.training.modelfile.load_model`), and keeps it in :data:`_MODELS`, keyed by
the file's absolute path, size and modification time.

``run --model`` (a trained model's feature maps) on a cluster: the network carries a
:class:`TrainedNetwork` (:attr:`convkit.nn.network.Network.rebuild`), with which a worker
makes the same network from the same file, its model loaded once per process here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convkit.engine.executor import BatchOptions, BatchReport, Task

if TYPE_CHECKING:
    from convkit.image.sources import Source
    from convkit.nn.network import Network
    from convkit.training.predict import Classifier, Prediction

_MODELS: OrderedDict[tuple, tuple[Any, threading.Lock]] = OrderedDict()
"""On a worker: the models it has loaded, by key (the latest few)."""
_KEEP = 4
_CACHE_LOCK = threading.Lock()


def worker_model(key: tuple, max_memory: int) -> tuple[Any, threading.Lock]:
    """This worker process's copy of the model ``key`` names, loaded on first use."""
    from convkit.training.modelfile import load_model

    with _CACHE_LOCK:
        found = _MODELS.get(key)
        if found is None:
            found = _MODELS[key] = (load_model(key[0], max_memory=max_memory), threading.Lock())
            while len(_MODELS) > _KEEP:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(key)
        return found


def model_key(path: str | Path) -> tuple[str, int, int]:
    """A model file as a worker's cache knows it: absolute path, size, modification time."""
    path = Path(path).absolute()
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class TrainedNetwork:
    """How a worker makes ``run --model``'s network (:func:`convkit.insight.models.model_network`)
    again: the classifier without its Keras model, the layers kept, the memory limit.
    Calling it loads the model (once per worker process) and describes it as that function
    does."""

    key: tuple
    light: Classifier
    outputs: tuple[str, ...] | None
    max_memory: int

    @classmethod
    def of(cls, classifier: Classifier, outputs, max_memory: int) -> TrainedNetwork:
        key = model_key(classifier.path)
        light = replace(classifier, model=None, path=Path(key[0]))
        return cls(key, light, None if outputs is None else tuple(outputs), max_memory)

    def __call__(self) -> Network:
        from convkit.nn.loaded import network_from_model

        model, _ = worker_model(self.key, self.max_memory)
        classifier = replace(self.light, model=model)
        return network_from_model(
            model,
            outputs=None if self.outputs is None else list(self.outputs),
            prepare=classifier.prepare_array,
            input_unit=1.0 / classifier.shape.scale,
            model_path=self.light.path,
        )


def classify_one(key: tuple, light: Classifier, source: Source, max_memory: int) -> Prediction:
    """One image's whole work on a worker: read, prepare, the model, the top classes."""
    model, lock = worker_model(key, max_memory)
    pixels = light.prepare(source)
    with lock:  # one model call at a time per process (TensorFlow uses every core itself)
        return light.answer(model, pixels, source.display)


def classify_on_cluster(
    classifier: Classifier, sources: Sequence[Source], options: BatchOptions
) -> BatchReport[Prediction]:
    """:meth:`Classifier.classify` on a cluster (see the module); results in input order."""
    from convkit.image.pipeline import check_for_cluster, for_cluster

    check_for_cluster(sources)
    key = model_key(classifier.path)
    light = replace(classifier, model=None, path=Path(key[0]))
    max_memory = classifier.max_memory
    with options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        executor.run_tasks(
            lambda i: Task(classify_one, (key, light, for_cluster(sources[i]), max_memory))
        )
    return executor.report

"""Feature maps on a Dask cluster: each image one task, each worker its own models.

:func:`convkit.nn.pipeline.extract_feature_maps` batches images through one model on the
calling process; given a scheduler it calls :func:`extract_on_cluster` instead, which sends
each image as a task (:func:`maps_of_one`) through the one executor
(:meth:`~convkit.engine.executor.Executor.run_tasks`). On the worker a task reads its
image, puts it through the network's :class:`~convkit.nn.extractor.FeatureExtractor` and
writes its pictures; the extractor, and so every Keras model, is built once per worker
process and kept in :data:`_EXTRACTORS`, keyed by the network's description (its layers,
weights, seed and memory limit), not once per image. A trained model's network
(``run --model``) travels as its :attr:`~convkit.nn.network.Network.rebuild`: the worker
loads the model from its file, once, and describes it again.

Random weights must be the same on every worker: a network without a seed is given one
here, drawn once for the run, so every worker (and the summary on the calling process)
builds the same filters.
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convkit.engine.executor import BatchOptions, BatchReport, Task
from convkit.errors import UsageError
from convkit.nn.extractor import FeatureExtractor
from convkit.nn.inputs import Prepared, model_input
from convkit.nn.render import Renderer
from convkit.nn.writer import MapWriter

if TYPE_CHECKING:
    import numpy as np

    from convkit.image.sources import Source
    from convkit.nn.network import Network
    from convkit.nn.render import RenderOptions

_EXTRACTORS: OrderedDict[str, tuple[FeatureExtractor, threading.Lock]] = OrderedDict()
"""On a worker: the extractors of the networks it has run, by key (the latest few)."""
_KEEP = 4
_CACHE_LOCK = threading.Lock()


def prepared(network: Network, index: int, image: np.ndarray) -> Prepared:
    """Image ``index`` as the network takes it (a trained model: as it was trained)."""
    if network.prepare is not None:
        return Prepared(index, network.prepare(image), image.dtype, network.input_unit)
    return Prepared(index, model_input(image, network.channels), image.dtype)


def network_key(network: Network, max_memory: int) -> str:
    """The description of a network (layers, weights, seed, memory limit) as a key."""
    return hashlib.sha256(pickle.dumps((network, max_memory))).hexdigest()[:24]


def worker_extractor(
    key: str, network: Network | Callable[[], Network], max_memory: int, verbose: bool
) -> tuple[FeatureExtractor, threading.Lock]:
    """The extractor of this worker process for ``key``, built on first use (``network``
    may be a built model's :attr:`~convkit.nn.network.Network.rebuild`: called then)."""
    from convkit.nn.network import Network

    with _CACHE_LOCK:
        found = _EXTRACTORS.get(key)
        if found is None:
            if not isinstance(network, Network):
                network = network()
            extractor = FeatureExtractor(network, verbose=verbose, max_memory=max_memory)
            found = _EXTRACTORS[key] = (extractor, threading.Lock())
            while len(_EXTRACTORS) > _KEEP:
                _EXTRACTORS.popitem(last=False)
        _EXTRACTORS.move_to_end(key)
        return found


def maps_of_one(
    key: str,
    network: Network | Callable[[], Network],
    render: RenderOptions,
    index: int,
    source: Source,
    targets: dict,
    limits: tuple[int, int, bool],
) -> tuple[int, tuple[int, int]]:
    """One image's whole work on a worker: read, the model, write. Returns the files
    written and the image's size (``(height, width)`` as the model took it)."""
    from convkit.image.codec import read_image

    max_pixels, max_memory, verbose = limits
    extractor, lock = worker_extractor(key, network, max_memory, verbose)
    item = prepared(extractor.network, index, read_image(source, max_pixels=max_pixels))
    with lock:  # one model call at a time per process (TensorFlow uses every core itself)
        (maps,) = extractor.layer_maps([item.x])
    renderer = Renderer(extractor.network, extractor, render)
    written = MapWriter({index: source}, targets, renderer)(item, maps)
    return written, (int(item.x.shape[0]), int(item.x.shape[1]))


def extract_on_cluster(
    sources: Sequence[Source],
    network: Network,
    targets: dict,
    render: RenderOptions,
    options: BatchOptions,
    *,
    max_pixels: int,
    max_memory: int,
    on_model: Callable[[FeatureExtractor, tuple[int, int]], None] | None,
    verbose: bool,
) -> BatchReport[int]:
    """:func:`~convkit.nn.pipeline.extract_feature_maps` on a cluster (see the module):
    the same targets, report and ``on_model`` calls (made here, on a model built for the
    summary alone, the first time a size comes back)."""
    from convkit.image.pipeline import check_for_cluster, for_cluster, target_for_cluster

    check_for_cluster(sources, [t for t in targets.values() if not isinstance(t, Path)])
    sent: Network | Callable[[], Network] = network
    if network.model is not None:  # a trained model: each worker loads it from its file
        if network.rebuild is None:
            raise UsageError(
                "this network's Keras model was built here, not read from a file: it runs on "
                "this machine only, not on a cluster (`scheduler`)"
            )
        sent = network.rebuild
    elif network.seed is None:
        network = sent = replace(network, seed=secrets.randbelow(2**31))
    key = network_key(sent, max_memory)
    limits = (max_pixels, max_memory, verbose)
    by_input: dict[int, dict] = {}
    for (index, what), target in targets.items():
        by_input.setdefault(index, {})[(index, what)] = (
            target.absolute() if isinstance(target, Path) else target_for_cluster(target)
        )
    summary = FeatureExtractor(network, verbose=verbose, max_memory=max_memory)
    sizes: set[tuple[int, int]] = set()

    def task(index: int) -> Task:
        mine = by_input.get(index, {})
        return Task(
            maps_of_one, (key, sent, render, index, for_cluster(sources[index]), mine, limits)
        )

    def each(index: int, value: Any) -> None:
        size = value[1]
        if on_model is not None and size not in sizes:
            sizes.add(size)
            summary.model_for(*size)
            on_model(summary, size)

    with options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        executor.run_tasks(task, outputs=lambda value: value[0], each=each)
    report = executor.report
    report.results = [None if r is None else r[0] for r in report.results]
    return report

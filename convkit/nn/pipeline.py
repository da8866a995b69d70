"""Many images through a network, every kept layer's feature maps written: the batch pipeline.

The core of ``convkit conv``, ``convkit pool`` and ``convkit run``::

    from convkit.engine.executor import BatchOptions
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import collect_sources
    from convkit.nn.builders import conv_network
    from convkit.nn.pipeline import extract_feature_maps
    from convkit.nn.render import RenderOptions

    sources = collect_sources(["photos/"]).sources
    network = conv_network(kernel=["edges4"], activation="relu")
    report = extract_feature_maps(sources, network, OutputPlan(out_dir=Path("maps")),
                                  RenderOptions(), batch=BatchOptions(jobs=4))

Three stages on the one executor (:mod:`convkit.engine.executor`), which also gives the
fail-fast rule, the progress events and the report:

1. **read** and prepare each image (:func:`convkit.nn.inputs.model_input`) on ``jobs``
   threads, in input order, a bounded window ahead (:meth:`Executor.map`);
2. **model**: images of one size go through the model together, in batches of at most
   ``batch_size`` (fewer when one batch's activations would pass
   :data:`~convkit.nn.extractor.BATCH_MEMORY`), on the calling thread (TensorFlow computes
   in its own thread pool); sizes are grouped (:class:`SizeGroups`), one Keras model per
   size (:class:`~convkit.nn.extractor.FeatureExtractor`);
3. **write**: rendering, encoding and writing on the ``jobs`` threads
   (:meth:`Executor.submit`, :class:`~convkit.nn.writer.MapWriter`), so that one batch is
   written while the model computes the next; before that next call at most one batch
   (plus ``jobs``) may still be in writing, so memory stays bounded.

A bad image (unreadable, too small for a kernel, a failed write) fails alone; a size the
model cannot take fails every image of that size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING

from convkit.defaults import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS
from convkit.engine.executor import BatchOptions, BatchReport, Executor
from convkit.errors import ImageSizeError, UsageError
from convkit.image.sources import sources_scope
from convkit.nn.extractor import DEFAULT_BATCH_SIZE, FeatureExtractor
from convkit.nn.inputs import Prepared
from convkit.nn.render import Renderer
from convkit.nn.worker import prepared
from convkit.nn.writer import MapWriter, plan_targets, planned_report

if TYPE_CHECKING:
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import Source
    from convkit.nn.network import Network
    from convkit.nn.render import RenderOptions


def extract_feature_maps(
    sources: Sequence[Source],
    network: Network,
    plan: OutputPlan,
    render: RenderOptions,
    *,
    batch: BatchOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_memory: int = DEFAULT_MAX_MEMORY,
    on_model: Callable[[FeatureExtractor, tuple[int, int]], None] | None = None,
    verbose: bool = False,
    extractor: FeatureExtractor | None = None,
    dry_run: bool = False,
) -> BatchReport[int] | BatchReport[list[str]]:
    """Read every source, run it through ``network`` and write its pictures (and ``.npy``
    tensors) where ``plan`` says; the report counts the files written per image.

    With ``dry_run`` every check that needs no image runs (the network, the output paths,
    a size fixed by the spec's ``input(...)`` against ``max_memory``), no model is built,
    nothing is read or written, and each input's result is the list of files it would
    write (:func:`~convkit.nn.writer.planned_report`).

    Every output path is checked before anything is read: no two on one file, none on
    a file the run reads (an input image, a kernel or weights file, the spec file). An
    image size that would need more than ``max_memory`` bytes in the model (float32 input,
    layer outputs, weights: see :func:`convkit.nn.extractor.check_memory`) fails its images
    before a model is built for it. ``on_model(extractor, (height, width))`` is called on
    the calling thread once per image size, when its first batch has gone through (the
    first call to show the summary, the others to say each further size once);
    ``verbose`` lets TensorFlow speak; ``extractor`` reuses the models of an earlier run
    of the same network (and its ``max_memory``).
    """
    if batch_size < 1:
        raise UsageError(f"`batch_size` must be at least 1, got {batch_size}")
    if max_memory < 1:
        raise UsageError(f"`max_memory` must be at least 1 byte, got {max_memory}")
    if extractor is not None and extractor.network is not network:
        raise UsageError("`extractor` runs another network")
    targets = plan_targets(sources, network, plan, render)  # every input, every shard
    extractor = extractor or FeatureExtractor(network, verbose=verbose, max_memory=max_memory)
    scope = sources_scope(sources, batch, _outputs_of(targets), dry_run=dry_run)
    random = random_layers(network)
    if scope.shard is not None and network.seed is None and random:
        raise UsageError(
            f"`shard`: the filters of {', '.join(random)} are random, and each shard would draw "
            "its own; give `seed` (any number, the same for every shard)"
        )
    if dry_run:
        if network.input_hw is not None:
            extractor.check_size(*network.input_hw)
        return scope.planned(planned_report(sources, network, render, targets))
    sources, targets, options = scope.pick(sources), scope.rekey(targets), scope.options
    if options.on_cluster:  # each image a task on the workers, each its own models
        from convkit.nn.worker import extract_on_cluster

        with scope:
            report = extract_on_cluster(
                sources,
                network,
                targets,
                render,
                options,
                max_pixels=max_pixels,
                max_memory=max_memory,
                on_model=on_model,
                verbose=verbose,
            )
        return scope.finish(report)
    writer = MapWriter(sources, targets, Renderer(network, extractor, render))

    def read(index: int) -> Prepared:
        from convkit.image.codec import read_image

        return prepared(network, index, read_image(sources[index], max_pixels=max_pixels))

    with scope, options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        _Pipeline(executor, extractor, writer, batch_size, on_model).run(read, len(sources))
    return scope.finish(executor.report)


RANDOM_TYPES = ("Conv", "Dense", "Embedding")
"""Layer types whose weights Keras draws at random (BatchNormalization's start fixed)."""


def random_layers(network: Network) -> list[str]:
    """The layers of ``network`` whose weights are Keras's random ones: none for a trained
    model; the given ``weights`` set their one layer's."""
    if network.model is not None:
        return []
    return [
        layer.name
        for layer in network.layers
        if any(kind in layer.type for kind in RANDOM_TYPES)
        and not (network.weights is not None and layer.name == network.weights_layer)
    ]


def _outputs_of(targets: dict) -> Callable[[int], list]:
    """The files each input writes, by its index: its pictures' and tensors' paths (``None``
    for standard output), from the plan of :func:`~convkit.nn.writer.plan_targets`."""
    files: dict[int, list] = {}
    for (index, _), target in targets.items():
        files.setdefault(index, []).append(getattr(target, "path", target))
    return lambda index: files.get(index, [])


class SizeGroups:
    """Model inputs gathered by image size into batches.

    A group is ready when it is full (:meth:`FeatureExtractor.batch_limit`); when more
    than four batches' worth wait in groups of several sizes, the largest goes at once.
    """

    def __init__(self, extractor: FeatureExtractor, batch_size: int):
        self._extractor = extractor
        self._batch_size = batch_size
        self._groups: dict[tuple[int, int], list[Prepared]] = {}
        self._limits: dict[tuple[int, int], int] = {}
        self._waiting = 0

    def add(self, item: Prepared) -> list[Prepared] | None:
        """Add ``item``; return a batch ready for the model, if one is."""
        key = (int(item.x.shape[0]), int(item.x.shape[1]))
        if key not in self._limits:
            self._limits[key] = self._extractor.batch_limit(*key, self._batch_size)
        group = self._groups.setdefault(key, [])
        group.append(item)
        self._waiting += 1
        if len(group) >= self._limits[key]:
            return self._take(key)
        if self._waiting > 4 * self._batch_size:
            return self._take(max(self._groups, key=lambda k: len(self._groups[k])))
        return None

    def drain(self) -> Iterator[list[Prepared]]:
        """The groups still waiting, in the order their sizes first came."""
        while self._groups:
            yield self._take(next(iter(self._groups)))

    def _take(self, key: tuple[int, int]) -> list[Prepared]:
        group = self._groups.pop(key)
        self._waiting -= len(group)
        return group


class _Pipeline:
    """The three stages of one run (see the module) on one executor."""

    def __init__(
        self,
        executor: Executor[int],
        extractor: FeatureExtractor,
        write: MapWriter,
        batch_size: int,
        on_model: Callable[[FeatureExtractor, tuple[int, int]], None] | None,
    ):
        self.executor = executor
        self.extractor = extractor
        self.write = write
        self.batch_size = batch_size
        self.on_model = on_model
        self._sizes_reported: set[tuple[int, int]] = set()

    def run(self, read: Callable[[int], Prepared], count: int) -> None:
        executor = self.executor
        groups = SizeGroups(self.extractor, self.batch_size)
        window = max(2 * executor.jobs, self.batch_size)
        with closing(executor.map(read, range(count), window=window)) as reads:
            for _, item in reads:
                if executor.stopped:
                    break
                ready = groups.add(item)
                if ready:
                    self._run_batch(ready)
                executor.settle()
        for ready in groups.drain():
            if executor.stopped:
                break
            self._run_batch(ready)

    def _run_batch(self, items: list[Prepared]) -> None:
        try:
            maps = self.extractor.layer_maps([item.x for item in items])
        except ImageSizeError as exc:  # this size does not fit the model
            for item in items:
                self.executor.fail(item.index, exc)
            return
        size = (int(items[0].x.shape[0]), int(items[0].x.shape[1]))
        if size not in self._sizes_reported:
            self._sizes_reported.add(size)
            if self.on_model:
                self.on_model(self.extractor, size)
        for item, layer_maps in zip(items, maps, strict=True):
            self.executor.submit(item.index, self.write, item, layer_maps)
        # The writers work on this batch while the model computes the next one; wait
        # before that if the previous batch is still being written (bounded memory).
        self.executor.settle(block=True, keep=len(items) + self.executor.jobs)

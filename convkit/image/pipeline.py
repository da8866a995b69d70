"""Read each input, transform it, write every result: the loop behind the image commands.

A command supplies a *transform*, ``image -> list[Result]``; this module reads the inputs,
writes each result to the target the :class:`~convkit.image.outputs.OutputPlan` chose (atomically,
or to stdout), optionally saves the float responses as ``.npy``, and runs it all through
the executor (:mod:`convkit.engine.executor`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.engine.executor import BatchOptions, BatchReport, Task
from convkit.errors import UsageError
from convkit.files import ensure_folder, save_npy, write_atomic, write_stdout
from convkit.image.codec import encode_image, read_image
from convkit.image.outputs import OutputPlan, RawPlan, Target, refuse_overwriting
from convkit.image.sources import Source, sources_scope


@dataclass
class Result:
    """One output of a transform: ``what`` names it (``gray``, ``sobel-x``); ``raw`` is the
    unclipped float32 response to save with ``--raw``, when there is one."""

    what: str
    image: np.ndarray
    raw: np.ndarray | None = None


Transform = Callable[[np.ndarray], list[Result]]


def write_image(target: Target, image: np.ndarray, *, create_folders: bool) -> None:
    """Encode ``image`` in memory and write it to ``target``: stdout, or a file written
    atomically (its folder created first when ``create_folders``)."""
    data = encode_image(image, target.fmt, name=target.display, quality=target.quality)
    if target.path is None:
        write_stdout(data)
    else:
        ensure_folder(target.path.parent, created_ok=create_folders)
        write_atomic(target.path, data)


def run_images(
    sources: Sequence[Source],
    whats: Sequence[str],
    transform: Transform,
    plan: OutputPlan,
    *,
    raw: RawPlan | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch: BatchOptions | None = None,
    reads: Sequence[tuple[Path, str]] = (),
    dry_run: bool = False,
) -> BatchReport[int] | BatchReport[list[str]]:
    """Run ``transform`` over ``sources`` and write its results; return the batch report.

    ``whats`` lists every result name the transform can produce, so that all output paths
    are checked (no collisions, no input overwritten) before the first image is read;
    ``reads`` names the other files the run reads (``(path, what it is)``: kernel files),
    which no output may replace either. With ``dry_run`` every check runs, nothing is read
    or written, and each input's result is the list of files it would write.
    """
    targets = plan.validate(sources, whats)
    raw_paths: dict = {}
    if raw is not None:
        raw.validate(len(sources) * len(whats))
        raw_paths = raw.targets(targets, sources)
    writes = [t.path for t in targets.values() if t.path is not None]
    refuse_overwriting([*writes, *raw_paths.values()], reads)
    options = batch or BatchOptions()

    def files(index: int, targets=targets, raw_paths=raw_paths) -> list[Path | None]:
        # The whole list's plan, bound here: the run below keeps only its own inputs'.
        files = []
        for what in whats:  # in the order of the dry run's plan
            files.append(targets[(index, what)].path)
            if (index, what) in raw_paths:
                files.append(raw_paths[(index, what)])
        return files

    scope = sources_scope(sources, options, files, dry_run=dry_run)
    if dry_run:
        return scope.planned(planned_report(sources, whats, targets, raw_paths))
    sources, targets, raw_paths = scope.pick(sources), scope.rekey(targets), scope.rekey(raw_paths)
    options = scope.options
    create_folders = plan.out_dir is not None
    if options.on_cluster:
        check_for_cluster(sources, targets.values())

    def task(index: int) -> Task:
        source = sources[index]
        outputs = {what: (targets[(index, what)], raw_paths.get((index, what))) for what in whats}
        if executor.remote:
            source = for_cluster(source)
            outputs = {
                what: (target_for_cluster(t), None if r is None else r.absolute())
                for what, (t, r) in outputs.items()
            }
        return Task(process_image, (source, outputs, transform, max_pixels, create_folders))

    with scope, options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        executor.run_tasks(task, outputs=lambda n: n)
    return scope.finish(executor.report)


def process_image(
    source: Source,
    outputs: dict[str, tuple[Target, Path | None]],
    transform: Transform,
    max_pixels: int,
    create_folders: bool,
) -> int:
    """One input's whole work: read it, transform it, write each result to its target
    (and its float response to its ``.npy`` path, when it has one); the files written."""
    image = read_image(source, max_pixels=max_pixels)
    written = 0
    for result in transform(image):
        target, raw_path = outputs[result.what]
        write_image(target, result.image, create_folders=create_folders)
        written += 1
        if raw_path is not None and result.raw is not None:
            save_npy(raw_path, result.raw)
            written += 1
    return written


def check_for_cluster(sources: Sequence[Source], targets=()) -> None:
    """Before a run on a cluster: standard input and output cannot reach its workers."""
    if any(source.is_stdin for source in sources):
        raise UsageError(
            "standard input (-) cannot be read by a cluster's workers (`scheduler`): "
            "give the image as a file"
        )
    if any(target.path is None for target in targets):
        raise UsageError(
            "a cluster's workers (`scheduler`) cannot write to standard output: give "
            "`output` a file name, or `out_dir`"
        )


def for_cluster(source: Source) -> Source:
    """``source`` as a worker in another folder must see it: its absolute path (``display``,
    the name the user gave and messages use, unchanged)."""
    if source.path is None:
        return source  # a problem the worker reports, as a local run does
    return replace(source, path=source.path.absolute())


def target_for_cluster(target: Target) -> Target:
    """``target`` by its absolute path (see :func:`for_cluster`)."""
    return target if target.path is None else replace(target, path=target.path.absolute())


def planned_report(sources, whats, targets: dict, raw_paths: dict) -> BatchReport[list[str]]:
    """The report of a dry run: per input, the files it would write, in order."""
    report: BatchReport[list[str]] = BatchReport(inputs=len(sources), results=[])
    for index in range(len(sources)):
        files = []
        for what in whats:
            files.append(targets[(index, what)].display)
            if (index, what) in raw_paths:
                files.append(str(raw_paths[(index, what)]))
        report.results.append(files)
    return report

"""Read each input, transform it, write every result: the loop behind the image commands.

A command supplies a *transform*, ``image -> list[Result]``; this module reads the inputs,
writes each result to the target the :class:`~convkit.image.outputs.OutputPlan` chose (atomically,
or to stdout), optionally saves the float responses as ``.npy``, and runs it all through
the executor (:mod:`convkit.engine.executor`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convkit.defaults import DEFAULT_MAX_PIXELS
from convkit.engine.executor import BatchOptions, BatchReport
from convkit.files import ensure_folder, save_npy, write_atomic, write_stdout
from convkit.image.codec import encode_image, read_image
from convkit.image.outputs import OutputPlan, RawPlan, Target, refuse_overwriting
from convkit.image.sources import Source


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
    if dry_run:
        return planned_report(sources, whats, targets, raw_paths)
    create_folders = plan.out_dir is not None

    def work(index: int) -> int:
        source = sources[index]
        image = read_image(source, max_pixels=max_pixels)
        written = 0
        for result in transform(image):
            target = targets[(index, result.what)]
            write_image(target, result.image, create_folders=create_folders)
            written += 1
            if raw is not None and result.raw is not None:
                save_npy(raw_paths[(index, result.what)], result.raw)
                written += 1
        return written

    options = batch or BatchOptions()
    with options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        executor.run(work, outputs=lambda n: n)
    return executor.report


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

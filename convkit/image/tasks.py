"""What the image commands do, as library calls: describe, grayscale and filter images.

Each function takes sources (:func:`convkit.image.sources.collect_sources`), an
:class:`~convkit.image.outputs.OutputPlan` and :class:`~convkit.engine.executor.BatchOptions`,
validates its parameters once, and runs through the one executor; it returns the
:class:`~convkit.engine.executor.BatchReport`. The command line only parses and reports::

    from convkit.engine.executor import BatchOptions
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import collect_sources
    from convkit.image.tasks import filter_images

    sources = collect_sources(["photos/"], recursive=True).sources
    report = filter_images(sources, ["sobel-x", "gaussian:5"], OutputPlan(out_dir=Path("out")),
                           gray=True, batch=BatchOptions(jobs=4))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convkit.defaults import BORDERS, DEFAULT_MAX_PIXELS, INTERPOLATIONS, RANGE_MODES
from convkit.engine.executor import BatchOptions, BatchReport, Task
from convkit.errors import ImageTooLargeError, UsageError, check_choice
from convkit.image.codec import read_image
from convkit.image.geometry import Resize, check_budget, parse_resize
from convkit.image.info import image_info
from convkit.image.kernels import Kernel, parse_kernel_args
from convkit.image.ops import filter2d, merge_alpha, resize, split_alpha, to_gray
from convkit.image.outputs import OutputPlan, RawPlan
from convkit.image.pipeline import Result, check_for_cluster, for_cluster, run_images
from convkit.image.pixels import to_pixels
from convkit.image.sources import Source, sources_scope


def describe_images(
    sources: Sequence[Source],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch: BatchOptions | None = None,
) -> BatchReport[dict]:
    """:func:`~convkit.image.info.image_info` of every source; results in input order."""

    def work(source: Source) -> dict:
        return image_info(read_image(source, max_pixels=max_pixels), name=source.display)

    options = batch or BatchOptions()
    if options.on_cluster:
        check_for_cluster(sources)
    scope = sources_scope(sources, options)  # a shard's part, a manifest
    picked = scope.pick(sources)
    with scope, scope.options.executor(len(picked)) as executor:
        place = for_cluster if executor.remote else (lambda source: source)
        executor.run_tasks(lambda i: Task(work, (place(picked[i]),)))
    return scope.finish(executor.report)


def grayscale_images(
    sources: Sequence[Source],
    plan: OutputPlan,
    *,
    size: Resize | tuple[int, int] | str | None = None,
    interpolation: str = "area",
    keep_aspect: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch: BatchOptions | None = None,
    dry_run: bool = False,
) -> BatchReport[int]:
    """Convert to one gray channel (OpenCV's 0.299 R + 0.587 G + 0.114 B; alpha dropped,
    dtype kept), optionally resized; one result, ``gray``.

    ``size`` is a :class:`~convkit.image.geometry.Resize`, its text (``"512"``,
    ``"640x480"``, ``"640x"``, ``"x480"``, ``"50%"``) or ``(width, height)``;
    ``keep_aspect`` fits the image inside an exact ``WxH`` box instead of stretching it.
    ``dry_run``: every check, nothing read or written (see :func:`run_images`).
    """
    check_choice(interpolation, INTERPOLATIONS, "interpolation")
    if isinstance(size, str):
        size = parse_resize(size, "size")
    elif isinstance(size, tuple):
        size = Resize(width=size[0], height=size[1])
    if keep_aspect and (size is None or not size.is_exact):
        raise UsageError("`keep_aspect` needs `size`, the box to fit in")
    if size is not None and size.is_exact:
        try:
            check_budget(size.width, size.height, max_pixels, f"`size` {size.text()}")
        except ImageTooLargeError as exc:
            raise UsageError(exc.message) from None

    def transform(image: np.ndarray) -> list[Result]:
        gray = to_gray(image)
        if size is not None:
            width, height = size.target(gray.shape[1], gray.shape[0])
            check_budget(width, height, max_pixels, f"the resized image {width}x{height}")
            gray = resize(gray, width, height, interpolation=interpolation, keep_aspect=keep_aspect)
        return [Result("gray", gray)]

    return run_images(
        sources, ["gray"], transform, plan, max_pixels=max_pixels, batch=batch, dry_run=dry_run
    )


def default_range(kernel: Kernel) -> str:
    """How a kernel's response becomes pixels unless told: the magnitude (``abs``) for
    zero-sum kernels (edge detectors, whose response is signed), ``clip`` for the rest."""
    return "abs" if kernel.is_zero_sum else "clip"


def filter_images(
    sources: Sequence[Source],
    kernels: Sequence[str] | Sequence[Kernel],
    plan: OutputPlan,
    *,
    gray: bool = False,
    border: str = "reflect101",
    normalize: bool = False,
    convolve: bool = False,
    range_mode: str | None = None,
    raw: Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch: BatchOptions | None = None,
    dry_run: bool = False,
) -> BatchReport[int]:
    """Filter every source with each kernel (``cv2.filter2D``, a correlation unless
    ``convolve``); one result per kernel, named after it.

    ``kernels`` are :class:`~convkit.image.kernels.Kernel` objects or ``-k`` arguments
    (presets, inline matrices, files). Colour is filtered per channel and alpha kept as it
    was; ``gray`` converts first. ``range_mode`` (clip, abs, rescale) defaults per kernel
    (:func:`default_range`). ``raw`` also saves each float32 response: a ``.npy`` file for
    a single result, else a folder.
    """
    check_choice(border, BORDERS, "border")
    if range_mode is not None:
        check_choice(range_mode, RANGE_MODES, "range_mode")
    if kernels and all(isinstance(k, Kernel) for k in kernels):
        chosen = list(kernels)
    else:
        chosen = parse_kernel_args([str(k) for k in kernels])

    def transform(image: np.ndarray) -> list[Result]:
        if gray:
            image = to_gray(image)
        color, alpha = split_alpha(image)
        results = []
        for k in chosen:
            response = filter2d(
                color, k.matrix, border=border, normalize=normalize, convolve=convolve
            )
            pixels = to_pixels(response, range_mode or default_range(k), color.dtype)
            results.append(
                Result(k.name, merge_alpha(pixels, alpha), response if raw is not None else None)
            )
        return results

    return run_images(
        sources,
        [k.name for k in chosen],
        transform,
        plan,
        raw=RawPlan(raw) if raw is not None else None,
        max_pixels=max_pixels,
        batch=batch,
        reads=[(k.source, "kernel file") for k in chosen if k.source is not None],
        dry_run=dry_run,
    )

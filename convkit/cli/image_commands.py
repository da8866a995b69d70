"""``convkit info``, ``convkit grayscale`` and ``convkit filter``.

Each command: gather the inputs, one call of :mod:`convkit.image.tasks`, report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convkit.cli import report
from convkit.cli.common import (
    batch_options,
    close_batch,
    collect_inputs,
    finish_batch,
    output_plan,
    shard_count,
)
from convkit.cli.options import (
    DEFAULTS,
    DryRun,
    FailFast,
    Format,
    Images,
    InPlace,
    Jobs,
    Json,
    JsonLines,
    Manifest,
    MaxPixels,
    Name,
    OutDir,
    Output,
    Quality,
    Quiet,
    Recursive,
    Scheduler,
    SchedulerFile,
    Shard,
    SkipExisting,
)
from convkit.errors import UsageError

# The core (NumPy, the image modules) is imported inside each command, so that registering
# these commands costs `convkit shape-calc` and `convkit --help` nothing.
if TYPE_CHECKING:
    import numpy as np


# --------------------------------------------------------------------------- info


def info(
    images: Images = None,
    json_out: Json = False,
    jsonl: JsonLines = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    manifest: Manifest = None,
    quiet: Quiet = False,
) -> None:
    """Shape, dtype, pixel count, first pixel and channel statistics of each image.

    Channels are listed in RGB(A) order. `--json` prints a list with one record per input,
    in input order, a failed input as {"path", "error"}; `--jsonl` prints the same records
    one per line, each as soon as its input is done (in completion order).

    Example: convkit info photos/ --json
    """
    flags = dict(locals())  # the batch flags, for batch_options
    from convkit.cli.common import json_records
    from convkit.image.tasks import describe_images

    sources = collect_inputs(images, recursive, quiet)
    stream = None
    if jsonl:

        def stream(index: int, result: dict | None, error) -> None:
            if result is None:
                result = {"path": sources[index].display, "error": report.for_user(error.message)}
            report.emit(json.dumps(result))

    with report.progress(shard_count(sources, shard), "images") as tick:
        options = batch_options(flags, tick, stream)
        result = describe_images(sources, max_pixels=max_pixels, batch=options)
    if json_out and not jsonl:
        report.emit(json.dumps(json_records(result, sources), indent=2))
    elif not jsonl:
        infos = [r for r in result.results if r is not None]
        if infos:
            _print_info_table(infos)
    finish_batch(result, quiet=quiet, verb="read")


def _print_info_table(infos: list[dict]) -> None:
    """One row per image, legible at 80 columns: no cell wraps; in a narrow terminal the
    pixel count goes first (H×W says it), then the middle of long paths (``sam…/cat.png``,
    the file name kept). Piped, the table is as wide as it needs."""
    from rich import box
    from rich.table import Table

    rows = []
    for item in infos:
        stats = [f"{c['name']} {c['min']}/{c['max']}/{c['mean']:.1f}" for c in item["channels"]]
        rows.append(
            {
                "image": item["path"],
                "H×W×C": "×".join(map(str, item["shape"])),
                "dtype": item["dtype"],
                "pixels": f"{item['pixels']:,}",
                "first pixel": f"{item['channel_order']} "
                + ",".join(map(str, item["first_pixel"])),
                "min / max / mean": "\n".join(stats),
            }
        )
    columns = list(rows[0])

    def width_of(name: str) -> int:
        cells = [name, *(line for row in rows for line in row[name].splitlines())]
        return max(len(c) for c in cells) + 3

    room = report.terminal_width()
    if room is not None and sum(map(width_of, columns)) + 2 > room:
        columns.remove("pixels")
    table = Table(title="Images", title_justify="left", box=box.SIMPLE_HEAD)
    for name in columns:
        table.add_column(name, no_wrap=True, justify="right" if name == "pixels" else "left")
    path_room = None
    if room is not None:
        path_room = max(12, room - 2 - sum(width_of(c) for c in columns if c != "image") - 3)
    for row in rows:
        if path_room is not None:
            row["image"] = _middle_ellipsis(row["image"], path_room)
        table.add_row(*(row[name] for name in columns))
    report.print_table(table)


def _middle_ellipsis(text: str, room: int) -> str:
    """``text`` in ``room`` characters, keeping its end (the file name): ``pho…/cat.png``."""
    if len(text) <= room:
        return text
    keep_end = min(len(text.rsplit("/", 1)[-1]) + 1, room - 4)
    return text[: room - keep_end - 1] + "…" + text[-keep_end:]


# --------------------------------------------------------------------------- grayscale


def grayscale(
    images: Images = None,
    output: Output = None,
    out_dir: OutDir = None,
    resize: Annotated[
        str | None,
        typer.Option(
            "--resize",
            help="Resize after converting: N (NxN), WxH (exact, e.g. 512x512), Wx or xH (the "
            "other side keeps the aspect ratio), or P% (e.g. 50%).",
            show_default=False,
        ),
    ] = None,
    interpolation: Annotated[
        str,
        typer.Option(
            "--interpolation", help="area (best for shrinking), linear, cubic, nearest or lanczos."
        ),
    ] = "area",
    keep_aspect: Annotated[
        bool,
        typer.Option("--keep-aspect", help="Fit inside WIDTHxHEIGHT, keeping the aspect ratio."),
    ] = False,
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    manifest: Manifest = None,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Convert images to one gray channel with OpenCV (0.299 R + 0.587 G + 0.114 B).

    Gray inputs pass through unchanged, 16-bit stays 16-bit, alpha is dropped. Results are
    named {stem}_gray.png in --out-dir.

    Example: convkit grayscale cat.jpg --resize 512x512 -o cat_gray.png
    """
    flags = dict(locals())  # the batch flags, for batch_options
    from convkit.image.geometry import parse_resize
    from convkit.image.tasks import grayscale_images

    size = parse_resize(resize) if resize else None
    sources = collect_inputs(images, recursive, quiet)
    with report.progress(shard_count(sources, shard), "images") as tick:
        result = grayscale_images(
            sources,
            output_plan(output, out_dir, name, fmt, in_place, quality),
            size=size,
            interpolation=interpolation,
            keep_aspect=keep_aspect,
            max_pixels=max_pixels,
            batch=batch_options(flags, tick),
            dry_run=dry_run,
        )
    close_batch(result, sources, dry_run=dry_run, quiet=quiet)


# --------------------------------------------------------------------------- filter


def _list_kernels() -> None:
    from rich.table import Table

    from convkit.image import kernels as kernel_lib

    table = Table(
        title="Kernels for -k (applied as correlation, like cv2.filter2D)",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("name")
    table.add_column("what it does", max_width=48)
    table.add_column("matrix")
    for key, desc, matrices in kernel_lib.list_presets():
        shown = "\n\n".join(_format_matrix(m) for m in matrices)
        table.add_row(key, desc, shown)
    report.print_table(table)


def _format_matrix(matrix: np.ndarray) -> str:
    import numpy as np

    if np.allclose(matrix, np.round(matrix)):
        cells = [[f"{int(round(v))}" for v in row] for row in matrix]
    else:
        cells = [[f"{v:.3f}" for v in row] for row in matrix]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)


def filter_(
    images: Images = None,
    kernel: Annotated[
        list[str] | None,
        typer.Option(
            "--kernel",
            "-k",
            help='A preset (sobel-x, gaussian:5, ...), an inline matrix "1,0,-1;2,0,-2;1,0,-1", '
            "or a .txt/.csv/.npy file. Repeat for one output per kernel.",
            show_default=False,
        ),
    ] = None,
    output: Output = None,
    out_dir: OutDir = None,
    gray: Annotated[bool, typer.Option("--gray", help="Convert to gray before filtering.")] = False,
    border: Annotated[
        str,
        typer.Option(
            "--border",
            help="Pixels beyond the edge: reflect101 (gfedcb|abcdefgh), "
            "reflect (fedcba|abcdefgh), replicate (aaaaaa|abcdefgh) or constant (zeros).",
        ),
    ] = "reflect101",
    normalize: Annotated[
        bool,
        typer.Option("--normalize", help="Divide the kernel by its sum when that is not zero."),
    ] = False,
    convolve: Annotated[
        bool,
        typer.Option(
            "--convolve",
            help="Flip the kernel for a true convolution (filter2D itself computes a correlation).",
        ),
    ] = False,
    range_mode: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="How the float response becomes pixels: clip (saturate, as ddepth=-1: negative "
            "edges vanish), abs (magnitude: edges of both signs) or rescale (min..max to the full "
            "range). Default: abs for zero-sum kernels (Sobel, Laplacian...), clip for the rest.",
            show_default=False,
        ),
    ] = None,
    raw: Annotated[
        Path | None,
        typer.Option(
            "--raw",
            help="Also save the float32 response, unclipped: FILE.npy for one "
            "result, or a folder for one .npy per result.",
            show_default=False,
        ),
    ] = None,
    list_kernels: Annotated[
        bool, typer.Option("--list-kernels", help="Show every preset with its matrix and exit.")
    ] = False,
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    manifest: Manifest = None,
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Filter images with cv2.filter2D, one result per kernel.

    cv2.filter2D computes a CORRELATION: the kernel is applied as written, not flipped
    (--convolve flips it). Colour images are filtered per channel (alpha is kept); --gray
    converts first. Results are named {stem}_{kernel}.png in --out-dir.

    Example: convkit filter cat.jpg --gray -k sobel-x -k sobel-y --out-dir edges/
    """
    flags = dict(locals())  # the batch flags, for batch_options
    from convkit.image.kernels import parse_kernel_args
    from convkit.image.tasks import filter_images

    if list_kernels:
        _list_kernels()
        return
    if not kernel:
        raise UsageError("give at least one kernel with `kernel` (see `list_kernels`)")
    kernels = parse_kernel_args(kernel)
    sources = collect_inputs(images, recursive, quiet)
    with report.progress(shard_count(sources, shard), "images") as tick:
        result = filter_images(
            sources,
            kernels,
            output_plan(output, out_dir, name, fmt, in_place, quality),
            gray=gray,
            border=border,
            normalize=normalize,
            convolve=convolve,
            range_mode=range_mode,
            raw=raw,
            max_pixels=max_pixels,
            batch=batch_options(flags, tick),
            dry_run=dry_run,
        )
    close_batch(result, sources, dry_run=dry_run, quiet=quiet)

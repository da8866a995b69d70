"""Options shared by the image commands, declared once (Typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convkit.defaults import DEFAULT_MAX_PIXELS, DEFAULT_NAME_TEMPLATE

_IO = "Input and output"
_BATCH = "Batch"

Images = Annotated[
    list[str] | None,
    typer.Argument(
        help="Image files, directories (their images), quoted globs ('photos/*.jpg', "
        "'**/*.png'), or - to read one image from stdin.",
        show_default=False,
    ),
]
Recursive = Annotated[
    bool,
    typer.Option(
        "--recursive", "-r", help="Descend into sub-folders of directories.", rich_help_panel=_IO
    ),
]
Output = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Output file for a single input and result; - writes to stdout (PNG unless --format).",
        show_default=False,
        rich_help_panel=_IO,
    ),
]
OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-d",
        help="Folder for the results of any number of inputs (created if missing).",
        show_default=False,
        rich_help_panel=_IO,
    ),
]
Name = Annotated[
    str,
    typer.Option(
        "--name",
        help="File-name template in --out-dir; fields {stem} {what} {ext} {index}.",
        rich_help_panel=_IO,
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format: png, jpg, tiff, bmp, webp, ppm, pgm \\[default: -o suffix, else png].",
        show_default=False,
        rich_help_panel=_IO,
    ),
]
Quality = Annotated[
    int | None,
    typer.Option(
        "--quality",
        help="JPEG and WebP quality, 1-100 \\[default: OpenCV's, 95 for JPEG].",
        show_default=False,
        rich_help_panel=_IO,
    ),
]
InPlace = Annotated[
    bool,
    typer.Option(
        "--in-place", help="Allow a result to replace its own input file.", rich_help_panel=_IO
    ),
]
MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        min=1,
        help="Refuse images with more pixels than this, read from the header before decoding.",
        rich_help_panel=_IO,
    ),
]
Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Images processed in parallel \\[default: all cores].",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]
FailFast = Annotated[
    bool,
    typer.Option("--fail-fast", help="Stop at the first input that fails.", rich_help_panel=_BATCH),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check everything and print the files that would be written (INPUT -> OUTPUT on "
        "stdout); read and write nothing.",
        rich_help_panel=_BATCH,
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Do only shard K of N (K from 1) of the inputs, chosen by a hash of each path: "
        "N runs with 1/N .. N/N do every input once. auto: from a Slurm array, a Kubernetes "
        "Indexed Job (count in CONVKIT_SHARDS) or GitLab parallel.",
        metavar="K/N|auto",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]
SkipExisting = Annotated[
    bool,
    typer.Option(
        "--skip-existing",
        help="Skip an input whose output files all exist (a re-run finishes an interrupted one).",
        rich_help_panel=_BATCH,
    ),
]
Manifest = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        help="Append one JSON line per input to FILE: path, shard, status (ok, failed, "
        "skipped), outputs, error.",
        metavar="FILE.jsonl",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No notes or closing summary on stderr.", rich_help_panel=_BATCH
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
JsonLines = Annotated[
    bool,
    typer.Option(
        "--jsonl",
        help="Print one JSON record per line on stdout, each as soon as its input is done.",
    ),
]

Strategy = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="How training uses this machine's devices: mirrored (tf.distribute's "
        "MirroredStrategy: one replica per GPU, global batch = --batch-size x replicas), "
        "default (one device), auto (mirrored when more than one GPU is visible).",
        metavar="auto|mirrored|default",
    ),
]
"""``--strategy`` of ``train`` and ``train-cifar`` (choices: defaults.STRATEGIES); give it
the default ``"auto"``."""

_CLUSTER = "Cluster (Dask)"
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="DASK_SCHEDULER_ADDRESS",
        help="Run each image as a task on this Dask scheduler's workers (tcp://HOST:PORT); "
        "they read and write the files on a shared file system. Needs "
        "pip install 'convkit\\[dask]'.",
        metavar="ADDRESS",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]
SchedulerFile = Annotated[
    Path | None,
    typer.Option(
        "--scheduler-file",
        help="Or the JSON file written by dask scheduler --scheduler-file, holding its address.",
        metavar="FILE",
        show_default=False,
        rich_help_panel=_CLUSTER,
    ),
]

DEFAULTS = {"name": DEFAULT_NAME_TEMPLATE, "max_pixels": DEFAULT_MAX_PIXELS}

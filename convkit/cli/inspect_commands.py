"""``convkit kernels`` and ``convkit explain``: looking inside a trained model.

Each command prepares its inputs, makes one call to the core
(:func:`convkit.insight.kernels.write_kernels`,
:func:`convkit.insight.explain.explain_images`) and reports: notes on stderr, the table
of what was written on stdout. ``run --model`` (the trained network's feature maps) is in
:mod:`convkit.cli.keras_commands`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from convkit.cli import report
from convkit.cli.common import (
    batch_options,
    close_batch,
    collect_inputs,
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

_MODEL_HELP = "A trained model: a .keras file, or a train-cifar/train results folder."
_MAX_MEMORY_HELP = (
    "Refuse a model file that would expand past this much memory, or whose one image would "
    "need more: bytes, or K, M, G, T (powers of 1024)."
)
_LOOK = "What to look at"

ModelArg = Annotated[str, typer.Argument(help=_MODEL_HELP, show_default=False, metavar="MODEL")]
MaxMemory = Annotated[str, typer.Option("--max-memory", help=_MAX_MEMORY_HELP, metavar="SIZE")]


# --------------------------------------------------------------------------- kernels


def kernels(
    model: ModelArg,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            "-d",
            help="Folder for the pictures (and .npy files); created if missing.",
            show_default=False,
        ),
    ],
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers",
            help="Only these convolution layers (names as Keras gives them: conv2d, "
            "conv2d_1, ...; repeat or separate by commas) \\[default: every one].",
            show_default=False,
            rich_help_panel=_LOOK,
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Also save each layer's weights as .npy, exactly as the model holds them "
            "(layer.get_weights()): {layer}-kernel.npy (KH, KW, C_in, N), {layer}-bias.npy.",
        ),
    ] = False,
    fmt: Format = None,
    max_memory: MaxMemory = "4G",
    quiet: Quiet = False,
) -> None:
    """Draw the learned filters of a trained model's convolution layers.

    One picture per convolution layer, {layer}-kernels.png in --out-dir: every
    filter on one shared scale with a labelled colour bar. A first layer that
    sees colour images shows each filter as a small colour picture (the colour
    it responds to); other layers show each filter's weights per input
    channel (one row per filter, one column per input channel; blue < 0,
    white 0, red > 0). At most 64 filters and 64 channels are drawn per layer.

    The model is loaded in Keras's safe mode, after its file is checked.

    Example: convkit kernels out/first-cnn/model.keras -d kernels/ --raw
    """
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.insight.kernels import write_kernels

    wanted = [n.strip() for item in layers or [] for n in item.split(",") if n.strip()]
    result = write_kernels(
        model,
        out_dir,
        layers=wanted or None,
        raw=raw,
        fmt=fmt or "png",
        max_memory=parse_bytes(max_memory, "max_memory"),
    )
    lines = [path for _, files in result.layers for path in files]
    if not quiet:
        for text, _ in result.layers:
            report.note(text)
    report.emit("\n".join(lines))


# --------------------------------------------------------------------------- explain


def explain(
    model: ModelArg,
    images: Images = None,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="Explain this class (a name the model knows) for every image "
            "\\[default: each image's top prediction].",
            show_default=False,
            rich_help_panel=_LOOK,
        ),
    ] = None,
    top_k: Annotated[
        int,
        typer.Option(
            "--top-k",
            min=1,
            help="Explain each image's K likeliest classes, one picture each.",
            rich_help_panel=_LOOK,
        ),
    ] = 1,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            help="The layer whose maps Grad-CAM weighs \\[default: the last convolution].",
            show_default=False,
            rich_help_panel=_LOOK,
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Class names, one per line (or a JSON list) \\[default: the model's own, "
            "else labels.txt beside it].",
            show_default=False,
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Also save each heat map as float32 .npy at the image's resolution (the "
            "Grad-CAM values, not scaled to 0..1), beside its picture.",
        ),
    ] = False,
    output: Output = None,
    out_dir: OutDir = None,
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    json_out: Json = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    max_memory: MaxMemory = "4G",
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
    """Show which parts of each image made a trained model choose a class
    (Grad-CAM).

    Grad-CAM weighs the maps of one convolution layer by the gradient of the
    class's score (taken before the softmax) and keeps where they speak for
    the class. Each image is prepared as the model was trained (as predict
    does); the heat map is brought to the image's own size and drawn over it,
    with a colour bar, the class name and its probability in the title.

    Written per image in --out-dir: {stem}_gradcam.png (the top prediction),
    {stem}_gradcam-topN.png with --top-k, {stem}_gradcam-CLASS.png with
    --class, and the same names with .npy for --raw. The layer used is named
    on stderr; the table of classes and files goes to stdout. With --scheduler
    each image is a task on a Dask cluster's workers, which load the model
    once each.

    Example: convkit explain out/first-cnn/model.keras cat.png -d why/ --top-k 2
    """
    flags = dict(locals())  # the batch flags, for batch_options
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.insight.explain import Explanation, explain_images, open_gradcam
    from convkit.insight.models import open_image_classifier

    sources = collect_inputs(images, recursive, quiet)
    plan = output_plan(output, out_dir, name, fmt, in_place, quality)
    explanation = Explanation(class_name=class_name, top_k=top_k, raw=raw)
    classifier = open_image_classifier(
        model,
        labels=labels,
        max_pixels=max_pixels,
        max_memory=parse_bytes(max_memory, "max_memory"),
    )
    explanation.check(classifier.class_names)
    if classifier.note and not quiet:
        report.note(classifier.note)
    gradcam, chosen = open_gradcam(classifier, layer)
    if not quiet and not dry_run:
        h, w, k = gradcam.layer_shape
        which = "" if chosen else ", the last convolution"
        report.note(
            f"Grad-CAM on layer {gradcam.layer} ({h}x{w}x{k}{which}); "
            f"class scores: {gradcam.scores}"
        )

    def options(tick=None):
        return batch_options(flags, tick, verb="explained", per_image=True)

    if dry_run:
        result = explain_images(
            sources, classifier, gradcam, plan, explanation, batch=options(), dry_run=True
        )
        close_batch(result, sources, dry_run=True, quiet=quiet)
        return
    with report.progress(shard_count(sources, shard), "images") as tick:
        result = explain_images(
            sources, classifier, gradcam, plan, explanation, batch=options(tick)
        )
    _report(result, sources, json_out=json_out)
    close_batch(result, sources, dry_run=False, quiet=quiet)


def _report(result, sources, *, json_out: bool) -> None:
    from convkit.cli.common import json_records

    if json_out:
        records = json_records(
            result,
            sources,
            record=lambda done: {"path": done[0].path, "explained": [e.to_json() for e in done]},
        )
        report.emit(json.dumps(records, indent=2))
        return
    rows = [e for done in result.results if done for e in done]
    if not rows:
        return
    from rich.table import Table

    table = Table(title="Grad-CAM", title_justify="left")
    table.add_column("image", overflow="fold")
    table.add_column("class")
    table.add_column("rank", justify="right")
    table.add_column("probability", justify="right")
    table.add_column("picture", overflow="fold")
    for e in rows:
        table.add_row(e.path, e.class_name, str(e.rank), f"{e.probability:.1%}", e.picture)
    report.print_table(table)

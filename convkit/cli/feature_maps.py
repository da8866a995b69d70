"""What ``convkit conv``, ``pool`` and ``run`` share: their options, and the one run.

:func:`extract` gathers the inputs and outputs from the shared options (:class:`Shared`),
makes the one call of :func:`convkit.nn.pipeline.extract_feature_maps`, which checks every
output path before TensorFlow is imported, and reports (the model's summary on stderr).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convkit.cli import report
from convkit.cli.common import (
    batch_options,
    collect_inputs,
    finish_batch,
    output_plan,
    print_plan,
    shard_count,
)

if TYPE_CHECKING:
    from convkit.engine.executor import BatchOptions
    from convkit.nn.extractor import FeatureExtractor
    from convkit.nn.network import Network
    from convkit.nn.render import RenderOptions

MODEL = "Model"
PICTURES = "Pictures"

# --------------------------------------------------------------------------- shared options

Color = Annotated[
    bool,
    typer.Option(
        "--color",
        "--colour",
        help="Keep three channels, in RGB order (OpenCV's BGR turned around); a filter then "
        "spans R, G and B. Default: gray (0.299 R + 0.587 G + 0.114 B).",
        rich_help_panel=MODEL,
    ),
]
RangeMode = Annotated[
    str | None,
    typer.Option(
        "--range",
        help="How a float map becomes 8-bit pixels: rescale (each map's own min..max to "
        "black..white), clip (round and saturate to 0..255: negative values vanish) or abs "
        "(magnitude, then saturate). Default: the values themselves (clip) for maps still in "
        "the input's range (after pooling, cropping, up-sampling, padding), rescale for the "
        "others (convolutions, activations...).",
        show_default=False,
        rich_help_panel=PICTURES,
    ),
]
Raw = Annotated[
    bool,
    typer.Option(
        "--raw",
        help="Also save each layer's float32 activations, unscaled, as {stem}_{layer}.npy "
        "(H, W, maps) in --out-dir.",
        rich_help_panel=PICTURES,
    ),
]
NoMontage = Annotated[
    bool,
    typer.Option(
        "--no-montage",
        help="Do not write the montage ({stem}_{layer}-montage.png) of each layer.",
        rich_help_panel=PICTURES,
    ),
]
MontageScale = Annotated[
    str,
    typer.Option(
        "--montage-scale",
        help="How the montage draws the maps: map (each as its own picture is written) or "
        "shared (one scale for every map of the layer, blue < 0, mid-gray 0, red > 0, with "
        "a labelled colour bar: signs and magnitudes compare across maps).",
        rich_help_panel=PICTURES,
    ),
]
NoMaps = Annotated[
    bool,
    typer.Option(
        "--no-maps",
        help="Do not write one picture per map ({stem}_{layer}-N.png): montages only.",
        rich_help_panel=PICTURES,
    ),
]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size",
        min=1,
        help="Images of one size run through the model together, this many at a time "
        "(fewer when one batch's activations would pass 512 MiB).",
        rich_help_panel="Batch",
    ),
]
MaxMemory = Annotated[
    str,
    typer.Option(
        "--max-memory",
        help="Refuse an image size whose float32 input, layer outputs and weights would pass "
        "this much memory, before the model is built: bytes, or K, M, G, T (powers of 1024).",
        metavar="SIZE",
        rich_help_panel=MODEL,
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose", help="Show TensorFlow's own start-up log lines and warnings (on stderr)."
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Seed Keras's random weights: the same seed gives the same maps, byte for byte.",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
KernelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--kernel",
        "-k",
        help="Set the filters instead of random ones: a preset (sobel-x, edges4 = four 4x4 "
        'edge filters, ...), an inline matrix "1,0,-1;2,0,-2;1,0,-1" or a .txt/.csv/.npy '
        "file, as in `convkit filter`. Repeat: one filter per kernel, all of one size.",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Set the filters from a .npy array of shape (KH, KW, C_in, N), as Keras stores "
        "Conv2D weights (loaded with allow_pickle=False; C_in is 1, or 3 with --color).",
        show_default=False,
        metavar="FILE.npy",
        rich_help_panel=MODEL,
    ),
]

# --------------------------------------------------------------------------- the shared run


@dataclass(frozen=True)
class Shared:
    """The options that conv, pool and run share, under their parameters' names."""

    images: list[str] | None
    output: str | None
    out_dir: Path | None
    range_mode: str | None
    raw: bool
    no_maps: bool
    no_montage: bool
    montage_scale: str
    name: str
    fmt: str | None
    quality: int | None
    in_place: bool
    recursive: bool
    max_pixels: int
    max_memory: str
    batch_size: int
    jobs: int | None
    fail_fast: bool
    scheduler: str | None
    scheduler_file: Path | None
    shard: str | None
    skip_existing: bool
    manifest: Path | None
    dry_run: bool
    quiet: bool
    verbose: bool

    @classmethod
    def of(cls, params: dict[str, Any]) -> Shared:
        """Picked by name from a command's parameters (its ``locals()``, taken first
        thing): Typer needs every option in each command's signature, and this keeps
        one list of the shared ones instead of three copies of the same call."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})

    def batch(self, tick=None) -> BatchOptions:
        """The executor's options (:func:`~convkit.cli.common.batch_options`)."""
        return batch_options(vars(self), tick)


def extract(network: Network, shared: Shared) -> None:
    """Inputs and outputs from the shared options, the one core call, the report."""
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.nn.pipeline import extract_feature_maps
    from convkit.nn.render import RenderOptions

    max_memory = parse_bytes(shared.max_memory, "max_memory")
    render = RenderOptions(
        range_mode=shared.range_mode,
        maps=not shared.no_maps,
        montage=not shared.no_montage,
        raw=shared.raw,
        montage_scale=shared.montage_scale,
    )
    sources = collect_inputs(shared.images, shared.recursive, shared.quiet)
    plan = output_plan(
        shared.output, shared.out_dir, shared.name, shared.fmt, shared.in_place, shared.quality
    )
    if shared.dry_run:
        result = extract_feature_maps(
            sources,
            network,
            plan,
            render,
            batch=shared.batch(),
            max_memory=max_memory,
            dry_run=True,
        )
        if not shared.quiet:
            _note_skipped(network, render)
        print_plan(result, sources, quiet=shared.quiet)
        return
    if shared.verbose:
        _show_tf_logs()

    def on_model(extractor: FeatureExtractor, size: tuple[int, int]) -> None:
        if size == extractor.summary_input_shape[:2]:
            _print_summary(extractor, render)
        else:  # each further image size once, in one line
            print(report.printable(network.size_line(*size)), file=sys.stderr, flush=True)

    with report.progress(shard_count(sources, shared.shard), "images") as tick:
        result = extract_feature_maps(
            sources,
            network,
            plan,
            render,
            batch=shared.batch(tick),
            batch_size=shared.batch_size,
            max_pixels=shared.max_pixels,
            max_memory=max_memory,
            on_model=None if shared.quiet else on_model,
            verbose=shared.verbose,
        )
    finish_batch(result, quiet=shared.quiet)


def _print_summary(extractor: FeatureExtractor, render: RenderOptions) -> None:
    """The first model's layers as Keras built them, on stderr; before it, a note on the
    layers that have no maps to draw."""
    from rich import box
    from rich.table import Table

    from convkit.arithmetic.formatting import format_shape

    network = extractor.network
    _note_skipped(network, render)
    kind = "colour, RGB" if network.color else "gray"
    title = f"Model for a {format_shape(extractor.summary_input_shape)} input ({kind})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Layer", "Type", "Output shape", "Params", "Maps written"):
        table.add_column(column, justify="right" if column == "Params" else "left")
    rows = extractor.summary_rows()
    for name, cls, out_shape, params in rows:
        wrote = "—" if name not in network.outputs else "yes"
        if wrote == "yes" and network.info(name).channels is None:
            wrote = "no spatial maps"
        table.add_row(name, cls, format_shape(out_shape), f"{params:,}", wrote)
    table.caption = f"{sum(r[3] for r in rows):,} parameters"
    table.caption_justify = "left"
    report.print_table(table, stderr=True)
    if network.model_path is not None:
        print(f"model: {report.printable(str(network.model_path))}", file=sys.stderr, flush=True)
    else:
        print(f"spec: {report.printable(network.spec_text)}", file=sys.stderr, flush=True)


def _note_skipped(network: Network, render: RenderOptions) -> None:
    """A note on the output layers that have no maps to draw (Flatten, Dense...)."""
    from convkit.nn.render import no_maps_text, output_whats

    _, _, skipped = output_whats(network, render)
    if skipped:
        saved = " (saved with --raw)" if render.raw else " (add --raw to save the values)"
        report.note(no_maps_text(skipped) + saved)


def _show_tf_logs() -> None:
    """With --verbose, let TensorFlow's C++ log lines reach the terminal: the command line
    sends what libraries print on file descriptor 2 to /dev/null (see
    :func:`convkit.cli.report.native_stderr_silenced`)."""
    if sys.stderr is sys.__stderr__:
        return
    try:
        os.dup2(sys.stderr.fileno(), 2)
    except (OSError, ValueError, AttributeError):
        pass


# Options of `run` that make or change a network from a spec: none goes with --model.
_SPEC_ONLY = {"spec": "--spec", "kernel": "-k", "weights": "--weights", "seed": "--seed"}


def trained_network(model: str, layers: list[str], params: dict[str, Any]) -> Network:
    """``run --model``: the trained model as a network (its maps as ``run`` draws them);
    the options that build a network from a spec are refused beside it."""
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.errors import UsageError
    from convkit.insight.models import model_network

    given = [flag for name, flag in _SPEC_ONLY.items() if params.get(name) not in (None, [])]
    if params.get("color"):
        given.append("--color (the model says gray or colour)")
    if given:
        raise UsageError(
            f"--model takes its layers and weights from the model: drop {', '.join(given)}"
        )
    return model_network(
        model,
        outputs=layers or None,
        max_pixels=params["max_pixels"],
        max_memory=parse_bytes(params["max_memory"], "max_memory"),
    )

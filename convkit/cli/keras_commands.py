"""``convkit conv``, ``convkit pool`` and ``convkit run``: feature maps with Keras.

Three doors into one machinery: each command builds its network with one call of
:mod:`convkit.nn.builders` (``conv`` and ``pool`` write a layer spec from their flags,
``run`` takes one), then :func:`_extract` gathers the inputs and makes the one call of
:func:`convkit.nn.pipeline.extract_feature_maps`, which checks every output path before
TensorFlow is imported, and reports.
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
)
from convkit.cli.options import (
    DEFAULTS,
    DryRun,
    FailFast,
    Format,
    Images,
    InPlace,
    Jobs,
    MaxPixels,
    Name,
    OutDir,
    Output,
    Quality,
    Quiet,
    Recursive,
)

if TYPE_CHECKING:
    from convkit.nn.extractor import FeatureExtractor
    from convkit.nn.network import Network
    from convkit.nn.render import RenderOptions

_MODEL = "Model"
_PICTURES = "Pictures"

# --------------------------------------------------------------------------- shared options

Color = Annotated[
    bool,
    typer.Option(
        "--color",
        "--colour",
        help="Keep three channels, in RGB order (OpenCV's BGR turned around); a filter then "
        "spans R, G and B. Default: gray (0.299 R + 0.587 G + 0.114 B).",
        rich_help_panel=_MODEL,
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
        rich_help_panel=_PICTURES,
    ),
]
Raw = Annotated[
    bool,
    typer.Option(
        "--raw",
        help="Also save each layer's float32 activations, unscaled, as {stem}_{layer}.npy "
        "(H, W, maps) in --out-dir.",
        rich_help_panel=_PICTURES,
    ),
]
NoMontage = Annotated[
    bool,
    typer.Option(
        "--no-montage",
        help="Do not write the montage ({stem}_{layer}-montage.png) of each layer.",
        rich_help_panel=_PICTURES,
    ),
]
MontageScale = Annotated[
    str,
    typer.Option(
        "--montage-scale",
        help="How the montage draws the maps: map (each as its own picture is written) or "
        "shared (one scale for every map of the layer, blue < 0, mid-gray 0, red > 0, with "
        "a labelled colour bar: signs and magnitudes compare across maps).",
        rich_help_panel=_PICTURES,
    ),
]
NoMaps = Annotated[
    bool,
    typer.Option(
        "--no-maps",
        help="Do not write one picture per map ({stem}_{layer}-N.png): montages only.",
        rich_help_panel=_PICTURES,
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
        rich_help_panel=_MODEL,
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
        rich_help_panel=_MODEL,
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
        rich_help_panel=_MODEL,
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
        rich_help_panel=_MODEL,
    ),
]

# --------------------------------------------------------------------------- the shared run


@dataclass(frozen=True)
class _Shared:
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
    dry_run: bool
    quiet: bool
    verbose: bool

    @classmethod
    def of(cls, params: dict[str, Any]) -> _Shared:
        """Picked by name from a command's parameters (its ``locals()``, taken first
        thing): Typer needs every option in each command's signature, and this keeps
        one list of the shared ones instead of three copies of the same call."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})


def _extract(network: Network, shared: _Shared) -> None:
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
            sources, network, plan, render, max_memory=max_memory, dry_run=True
        )
        if not shared.quiet:
            _note_skipped(network, render)
        print_plan(result, sources)
        return
    if shared.verbose:
        _show_tf_logs()

    def on_model(extractor: FeatureExtractor, size: tuple[int, int]) -> None:
        if size == extractor.summary_input_shape[:2]:
            _print_summary(extractor, render)
        else:  # each further image size once, in one line
            print(report.printable(network.size_line(*size)), file=sys.stderr, flush=True)

    with report.progress(len(sources), "images") as tick:
        result = extract_feature_maps(
            sources,
            network,
            plan,
            render,
            batch=batch_options(shared.jobs, shared.fail_fast, tick),
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


# --------------------------------------------------------------------------- conv


def conv(
    images: Images = None,
    filters: Annotated[
        int | None,
        typer.Option(
            "--filters",
            min=1,
            help="Number of filters (feature maps) \\[default: 1, or one per -k kernel].",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    kernel_size: Annotated[
        str | None,
        typer.Option(
            "--kernel-size",
            help="Kernel size K or KHxKW \\[default: 3, or the size of the -k kernels].",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    strides: Annotated[
        str, typer.Option("--strides", "-s", help="Stride S or SHxSW.", rich_help_panel=_MODEL)
    ] = "1",
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
            "-p",
            help="valid (no padding: the map shrinks by K-1) or same (zeros around: "
            "output ceil(n / stride)).",
            rich_help_panel=_MODEL,
        ),
    ] = "valid",
    dilation: Annotated[
        str, typer.Option("--dilation", help="Dilation rate D or DHxDW.", rich_help_panel=_MODEL)
    ] = "1",
    activation: Annotated[
        str | None,
        typer.Option(
            "--activation",
            help="An activation layer after the convolution (relu, sigmoid, tanh, "
            "leaky_relu, ...): maps are written before and after it.",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    no_bias: Annotated[
        bool,
        typer.Option("--no-bias", help="No bias term (use_bias=False).", rich_help_panel=_MODEL),
    ] = False,
    kernel: KernelOpt = None,
    weights: WeightsOpt = None,
    seed: Seed = None,
    color: Color = False,
    output: Output = None,
    out_dir: OutDir = None,
    range_mode: RangeMode = None,
    raw: Raw = False,
    no_maps: NoMaps = False,
    no_montage: NoMontage = False,
    montage_scale: MontageScale = "map",
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    max_memory: MaxMemory = "4G",
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run images through a Keras Conv2D layer (and an activation) and write
    its feature maps.

    Builds Input -> Conv2D [-> Activation], the same stack as
    convkit run --spec "conv2d(N, K, name=conv) activation(relu, name=relu)".
    Weights: Keras's random ones (--seed repeats them), or -k kernels, or
    --weights FILE.npy. Keras's Conv2D computes a correlation, like
    cv2.filter2D: a -k kernel goes in as written, not flipped; with --color
    it is applied to each of R, G, B and the three summed.

    The model sees the pixel values as stored, as float32 (0..255 for 8-bit
    images, no division by 255): with a -k kernel, --no-bias and --padding
    same, a map equals the float32 response of
    convkit filter -k KERNEL --gray --border constant
    (odd sizes; for even ones TensorFlow pads one pixel less before).

    Written per image in --out-dir: {stem}_conv-N.png per map (and
    {stem}_relu-N.png after the activation), {stem}_conv-montage.png (every
    map with its filter and kernel), {stem}_conv.npy with --raw. The model
    summary goes to stderr.

    Example: convkit conv cat.png -k edges4 --activation relu -d maps/
    """
    shared = _Shared.of(locals())
    from convkit.nn.builders import conv_network

    network = conv_network(
        filters=filters,
        kernel_size=kernel_size,
        strides=strides,
        padding=padding,
        dilation=dilation,
        activation=activation,
        use_bias=not no_bias,
        kernel=kernel,
        weights=weights,
        seed=seed,
        color=color,
    )
    _extract(network, shared)


# --------------------------------------------------------------------------- pool


def pool(
    images: Images = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="max (MaxPooling2D) or avg (AveragePooling2D).",
            rich_help_panel=_MODEL,
        ),
    ] = "max",
    size: Annotated[
        str,
        typer.Option("--size", help="Pooling window P or PHxPW.", rich_help_panel=_MODEL),
    ] = "2",
    strides: Annotated[
        str | None,
        typer.Option(
            "--strides",
            "-s",
            help="Stride S or SHxSW \\[default: the window size, as in Keras].",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
            "-p",
            help="valid (windows inside the image) or same (output ceil(n / stride); "
            "TensorFlow's average pooling leaves the padded cells out of the mean).",
            rich_help_panel=_MODEL,
        ),
    ] = "valid",
    color: Color = False,
    output: Output = None,
    out_dir: OutDir = None,
    range_mode: RangeMode = None,
    raw: Raw = False,
    no_maps: NoMaps = False,
    no_montage: NoMontage = False,
    montage_scale: MontageScale = "map",
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    max_memory: MaxMemory = "4G",
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run images through a Keras pooling layer (MaxPooling2D or
    AveragePooling2D) and write the pooled maps.

    The same stack as convkit run --spec "maxpool2d(P, name=maxpool)". Pools
    the gray image, or with --color each of R, G, B. With --padding same,
    TensorFlow's average pooling averages only the real pixels under each
    window: padded cells are left out of the mean, not counted as zeros.

    The pooled maps keep their values (the average-pooled picture is the
    average, not stretched to 0..255); --range rescale stretches each one.

    Written per image in --out-dir: {stem}_maxpool-N.png per channel (gray:
    one), {stem}_maxpool-color.png (the pooled colour picture, --color),
    {stem}_maxpool-montage.png, {stem}_maxpool.npy with --raw. A run that
    makes one picture per image (gray, --no-montage) may use -o FILE or -o -.

    Example: convkit pool cat.png --size 4 --mode avg --no-montage -o small.png
    """
    shared = _Shared.of(locals())
    from convkit.nn.builders import pool_network

    network = pool_network(mode=mode, size=size, strides=strides, padding=padding, color=color)
    _extract(network, shared)


# --------------------------------------------------------------------------- run


def run(
    images: Images = None,
    spec: Annotated[
        str | None,
        typer.Option(
            "--spec",
            help='Layers in the layer-spec language, e.g. "conv2d(8, 3) relu maxpool2d(2)", '
            "or a FILE of them (one per line, # comments). See `convkit shape-calc --help`.",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers",
            help="Write only these layers' maps (names as in the summary: conv2d, activation, "
            "max_pooling2d...; repeat or separate by commas) \\[default: every layer].",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    kernel: KernelOpt = None,
    weights: WeightsOpt = None,
    seed: Seed = None,
    color: Color = False,
    output: Output = None,
    out_dir: OutDir = None,
    range_mode: RangeMode = None,
    raw: Raw = False,
    no_maps: NoMaps = False,
    no_montage: NoMontage = False,
    montage_scale: MontageScale = "map",
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    quality: Quality = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    max_memory: MaxMemory = "4G",
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run images through a stack of layers and write every layer's
    feature maps.

    The stack is written in the layer-spec language of convkit shape-calc,
    e.g. "conv2d(1, 15) relu maxpool2d(2)"; a first input((H, W, C)) fixes
    the image size and channels. Layer names (for --layers and in file
    names) are Keras's: conv2d, conv2d_1, activation, max_pooling2d, ...,
    or name=... in the spec. -k / --weights set the filters of the first
    Conv2D layer; the others keep Keras's random weights (--seed). A fused
    conv2d(8, 3, activation=relu) only shows the maps after the activation:
    write "conv2d(8, 3) relu" to see both. Input and scaling as in conv.

    Written per image in --out-dir, for each layer L: {stem}_L-N.png per
    map, {stem}_L-montage.png, {stem}_L.npy with --raw. Layers without
    spatial axes (flatten, dense, global pooling) have no maps; --raw saves
    their values.

    Example: convkit run cat.png --spec "conv2d(4, 4) relu maxpool2d(2)"
    -k edges4 -d out/
    """
    shared = _Shared.of(locals())
    from convkit.nn.builders import spec_network

    wanted = [n.strip() for item in layers or [] for n in item.split(",") if n.strip()]
    network = spec_network(
        spec, color=color, outputs=wanted or None, kernel=kernel, weights=weights, seed=seed
    )
    _extract(network, shared)

"""``convkit conv``, ``convkit pool`` and ``convkit run``: feature maps with Keras.

Three doors into one machinery: each command builds its network with one call of
:mod:`convkit.nn.builders` (``conv`` and ``pool`` write a layer spec from their flags,
``run`` takes one, or a trained model: :func:`convkit.insight.models.model_network`), then
:func:`convkit.cli.feature_maps.extract` gathers the inputs and makes the one call of
:func:`convkit.nn.pipeline.extract_feature_maps`, which checks every output path before
TensorFlow is imported, and reports.
"""

from __future__ import annotations

from typing import Annotated

import typer

from convkit.cli.feature_maps import (
    MODEL,
    BatchSize,
    Color,
    KernelOpt,
    MaxMemory,
    MontageScale,
    NoMaps,
    NoMontage,
    RangeMode,
    Raw,
    Seed,
    Shared,
    Verbose,
    WeightsOpt,
    extract,
    trained_network,
)
from convkit.cli.options import (
    DEFAULTS,
    DryRun,
    FailFast,
    Format,
    Images,
    InPlace,
    Jobs,
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
            rich_help_panel=MODEL,
        ),
    ] = None,
    kernel_size: Annotated[
        str | None,
        typer.Option(
            "--kernel-size",
            help="Kernel size K or KHxKW \\[default: 3, or the size of the -k kernels].",
            show_default=False,
            rich_help_panel=MODEL,
        ),
    ] = None,
    strides: Annotated[
        str, typer.Option("--strides", "-s", help="Stride S or SHxSW.", rich_help_panel=MODEL)
    ] = "1",
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
            "-p",
            help="valid (no padding: the map shrinks by K-1) or same (zeros around: "
            "output ceil(n / stride)).",
            rich_help_panel=MODEL,
        ),
    ] = "valid",
    dilation: Annotated[
        str, typer.Option("--dilation", help="Dilation rate D or DHxDW.", rich_help_panel=MODEL)
    ] = "1",
    activation: Annotated[
        str | None,
        typer.Option(
            "--activation",
            help="An activation layer after the convolution (relu, sigmoid, tanh, "
            "leaky_relu, ...): maps are written before and after it.",
            show_default=False,
            rich_help_panel=MODEL,
        ),
    ] = None,
    no_bias: Annotated[
        bool,
        typer.Option("--no-bias", help="No bias term (use_bias=False).", rich_help_panel=MODEL),
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
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    manifest: Manifest = None,
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
    shared = Shared.of(locals())
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
    extract(network, shared)


# --------------------------------------------------------------------------- pool


def pool(
    images: Images = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="max (MaxPooling2D) or avg (AveragePooling2D).",
            rich_help_panel=MODEL,
        ),
    ] = "max",
    size: Annotated[
        str,
        typer.Option("--size", help="Pooling window P or PHxPW.", rich_help_panel=MODEL),
    ] = "2",
    strides: Annotated[
        str | None,
        typer.Option(
            "--strides",
            "-s",
            help="Stride S or SHxSW \\[default: the window size, as in Keras].",
            show_default=False,
            rich_help_panel=MODEL,
        ),
    ] = None,
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
            "-p",
            help="valid (windows inside the image) or same (output ceil(n / stride); "
            "TensorFlow's average pooling leaves the padded cells out of the mean).",
            rich_help_panel=MODEL,
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
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    manifest: Manifest = None,
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
    shared = Shared.of(locals())
    from convkit.nn.builders import pool_network

    network = pool_network(mode=mode, size=size, strides=strides, padding=padding, color=color)
    extract(network, shared)


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
            rich_help_panel=MODEL,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A trained model instead of a spec: a .keras file or a train-cifar/train "
            "results folder. Its own layers and learned weights; each image prepared as the "
            "model was trained (resized to its input, gray or colour), as predict does.",
            show_default=False,
            metavar="MODEL",
            rich_help_panel=MODEL,
        ),
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(
            "--layers",
            help="Write only these layers' maps (names as in the summary: conv2d, activation, "
            "max_pooling2d...; repeat or separate by commas) \\[default: every layer].",
            show_default=False,
            rich_help_panel=MODEL,
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
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    skip_existing: SkipExisting = False,
    manifest: Manifest = None,
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

    --model MODEL runs a trained network instead: its own layers and
    learned weights, each image prepared as the model was trained (as
    predict does); a first convolution's montage draws its learned kernels
    beside its maps.

    Example: convkit run cat.png --spec "conv2d(4, 4) relu maxpool2d(2)"
    -k edges4 -d out/
    """
    shared = Shared.of(locals())
    wanted = [n.strip() for item in layers or [] for n in item.split(",") if n.strip()]
    if model is not None:
        extract(trained_network(model, wanted, locals()), shared)
        return
    from convkit.nn.builders import spec_network

    network = spec_network(
        spec, color=color, outputs=wanted or None, kernel=kernel, weights=weights, seed=seed
    )
    extract(network, shared)

"""``convkit conv``, ``convkit pool`` and ``convkit run``: feature maps with Keras.

Three doors into one machinery (:mod:`convkit.nn.featuremaps`): ``conv`` and ``pool`` write a
layer spec from their flags, ``run`` takes one; then the same code prepares the images,
builds the Keras model, runs size-grouped batches and writes the pictures. TensorFlow is
imported inside the commands, after every option, input and output path has been checked.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convkit.cli import report
from convkit.cli.options import (
    DEFAULTS,
    FailFast,
    Format,
    Images,
    InPlace,
    Jobs,
    MaxPixels,
    Name,
    OutDir,
    Output,
    Quiet,
    Recursive,
)
from convkit.errors import ConvkitError, UsageError

if TYPE_CHECKING:
    from convkit.nn.featuremaps import FeatureExtractor, Network, RenderOptions

_MODEL = "Model"
_PICTURES = "Pictures"

_PAIR = re.compile(r"^\s*\(?\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?\)?\s*$")

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
        "(magnitude, then saturate). The colour picture of a pooled colour image is clipped "
        "unless --range is given.",
        show_default="rescale",
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

# --------------------------------------------------------------------------- helpers


def _pair(text: str, option: str) -> tuple[int, int]:
    match = _PAIR.match(text)
    if match:
        a = int(match.group(1))
        b = int(match.group(2)) if match.group(2) else a
        if min(a, b) >= 1:
            return a, b
    raise UsageError(
        f"{option} must be a positive integer N or a pair HxW such as 3x5, got {text!r}"
    )


def _padding(text: str) -> str:
    word = text.strip().lower()
    if word not in ("valid", "same"):
        raise UsageError(
            f"--padding must be valid or same, got {text!r} (Keras has no other; "
            "for explicit zeros use `convkit run` with zeropadding2d(p))"
        )
    return word


def _range(text: str | None) -> str | None:
    if text is None:
        return None
    from convkit.image.pixels import RANGE_MODES

    if text not in RANGE_MODES:
        raise UsageError(f"--range must be one of {', '.join(RANGE_MODES)}, got {text!r}")
    return text


def _kernels(args: list[str] | None):
    from convkit.image import kernels as kernel_lib

    if not args:
        return []
    return [k for i, arg in enumerate(args, 1) for k in kernel_lib.parse_kernels(arg, position=i)]


def _filter_weights(kernel: list[str] | None, weights: Path | None, channels: int):
    from convkit.nn.featuremaps import kernels_to_weights, load_weights

    if kernel and weights is not None:
        raise UsageError("give the filters either with -k or with --weights, not both")
    if kernel:
        return kernels_to_weights(_kernels(kernel), channels)
    if weights is not None:
        return load_weights(weights)
    return None


def _render_options(range_mode, raw, no_maps, no_montage) -> RenderOptions:
    from convkit.nn.featuremaps import RenderOptions

    return RenderOptions(
        range_mode=_range(range_mode), maps=not no_maps, montage=not no_montage, raw=raw
    )


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


def _can_exit_fast() -> bool:
    """True in a real ``convkit`` process (not a test calling main(), not a library user).

    Such a process skips the interpreter's shutdown once its work is written and flushed:
    tearing down TensorFlow takes most of a second and produces nothing.
    """
    if report.debug_enabled() or "tensorflow" not in sys.modules:
        return False
    if sys.stdout is not sys.__stdout__:
        return False
    main = sys.modules.get("__main__")
    main_spec = getattr(main, "__spec__", None)
    from_module = main_spec is not None and main_spec.name == "convkit.__main__"
    from_script = Path(sys.argv[0]).name == "convkit" if sys.argv else False
    return from_module or from_script


def _exit(code: int) -> None:
    if _can_exit_fast():
        for stream in (sys.stdout, sys.stderr, sys.__stderr__):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(code)
    if code:
        raise typer.Exit(code)


def _print_summary(extractor: FeatureExtractor) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = extractor.summary_rows()
    shape = extractor.summary_input_shape
    network = extractor.network
    kind = "colour, RGB" if network.color else "gray"
    title = f"Model for a {'×'.join(map(str, shape))} input ({kind})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Layer")
    table.add_column("Type")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    table.add_column("Maps written", justify="left")
    outputs = set(network.outputs)
    for name, cls, out_shape, params in rows:
        info = network.info(name)
        if name not in outputs:
            wrote = "—"
        elif info.channels is None:
            wrote = "no spatial maps"
        else:
            wrote = "yes"
        table.add_row(name, cls, "×".join(map(str, out_shape)), f"{params:,}", wrote)
    total = sum(r[3] for r in rows)
    table.caption = f"{total:,} parameters"
    table.caption_justify = "left"
    console = Console(stderr=True, highlight=False)
    console.print(table)
    console.print(f"spec: {network.spec_text}", markup=False, soft_wrap=True)


def _execute(
    network: Network,
    render: RenderOptions,
    *,
    images,
    output,
    out_dir,
    name,
    fmt,
    in_place,
    recursive,
    max_pixels,
    jobs,
    fail_fast,
    quiet,
    batch_size,
    verbose,
) -> None:
    from convkit.cli.common import collect_inputs, output_plan
    from convkit.engine.executor import default_jobs
    from convkit.nn.featuremaps import (
        FeatureExtractor,
        output_whats,
        plan_targets,
        write_feature_maps,
    )

    sources = collect_inputs(images, recursive, quiet)
    plan = output_plan(output, out_dir, name, fmt, in_place)
    targets = plan_targets(sources, network, plan, render)
    _, _, skipped = output_whats(network, render)
    if skipped and not quiet:
        report.note(
            f"layer{'s' if len(skipped) > 1 else ''} {', '.join(skipped)} "
            "ha"
            + ("ve" if len(skipped) > 1 else "s")
            + " no spatial maps to draw"
            + (" (saved with --raw)" if render.raw else " (add --raw to save the values)")
        )
    if verbose:
        _show_tf_logs()
    try:
        extractor = FeatureExtractor(network, verbose=verbose)
        with report.progress(len(sources), "images") as tick:
            result = write_feature_maps(
                sources,
                extractor,
                plan,
                render,
                batch_size=batch_size,
                max_pixels=max_pixels,
                jobs=jobs or default_jobs(),
                fail_fast=fail_fast,
                on_error=report.input_error,
                on_done=tick,
                on_model=None if quiet else _print_summary,
                targets=targets,
            )
    except ConvkitError as exc:
        if _can_exit_fast():
            report.error(str(exc))
            _exit(exc.exit_code)
        raise
    if result.inputs > 1 and not quiet:
        report.summary(result, verb="written")
    _exit(1 if result.failed else 0)


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
        str, typer.Option("--strides", help="Stride S or SHxSW.", rich_help_panel=_MODEL)
    ] = "1",
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
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
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
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
    from convkit.arithmetic.spec import ACTIVATIONS, canonical_activation
    from convkit.nn.featuremaps import conv_spec_text, parse_network_spec

    channels = 3 if color else 1
    render = _render_options(range_mode, raw, no_maps, no_montage)
    act = None
    if activation is not None:
        act = canonical_activation(activation)
        if act is None or act == "linear":
            import difflib

            close = difflib.get_close_matches(activation.lower(), ACTIVATIONS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(
                f"--activation {activation!r} is not a Keras activation ({hint}"
                f"known: {', '.join(a for a in ACTIVATIONS if a != 'linear')})"
            )
    weights_ = _filter_weights(kernel, weights, channels)
    size = _pair(kernel_size, "--kernel-size") if kernel_size is not None else None
    if weights_ is not None:
        what = "-k kernels" if kernel else f"--weights {weights}"
        if filters is not None and filters != weights_.filters:
            raise UsageError(
                f"--filters {filters} but the {what} give {weights_.filters} filter"
                f"{'s' if weights_.filters != 1 else ''}"
            )
        if size is not None and size != weights_.kernel_size:
            kh, kw = weights_.kernel_size
            raise UsageError(f"--kernel-size {kernel_size} but the {what} are {kh}x{kw}")
        filters, size = weights_.filters, weights_.kernel_size
    text = conv_spec_text(
        filters=filters or 1,
        kernel_size=size or (3, 3),
        strides=_pair(strides, "--strides"),
        padding=_padding(padding),
        dilation=_pair(dilation, "--dilation"),
        activation=act,
        use_bias=not no_bias,
    )
    network = parse_network_spec(text, color=color, weights=weights_, seed=seed)
    _execute(
        network,
        render,
        images=images,
        output=output,
        out_dir=out_dir,
        name=name,
        fmt=fmt,
        in_place=in_place,
        recursive=recursive,
        max_pixels=max_pixels,
        jobs=jobs,
        fail_fast=fail_fast,
        quiet=quiet,
        batch_size=batch_size,
        verbose=verbose,
    )


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
            help="Stride S or SHxSW \\[default: the window size, as in Keras].",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    padding: Annotated[
        str,
        typer.Option(
            "--padding",
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
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run images through a Keras pooling layer (MaxPooling2D or
    AveragePooling2D) and write the pooled maps.

    The same stack as convkit run --spec "maxpool2d(P, name=maxpool)". Pools
    the gray image, or with --color each of R, G, B. With --padding same,
    TensorFlow's average pooling averages only the real pixels under each
    window: padded cells are left out of the mean, not counted as zeros.

    Written per image in --out-dir: {stem}_maxpool-N.png per channel (gray:
    one), {stem}_maxpool-color.png (the pooled colour picture, --color),
    {stem}_maxpool-montage.png, {stem}_maxpool.npy with --raw. A run that
    makes one picture per image (gray, --no-montage) may use -o FILE or -o -.

    Example: convkit pool cat.png --size 4 --mode avg --no-montage -o small.png
    """
    from convkit.nn.featuremaps import parse_network_spec, pool_spec_text

    if mode not in ("max", "avg"):
        raise UsageError(f"--mode must be max or avg, got {mode!r}")
    render = _render_options(range_mode, raw, no_maps, no_montage)
    text = pool_spec_text(
        mode=mode,
        size=_pair(size, "--size"),
        strides=None if strides is None else _pair(strides, "--strides"),
        padding=_padding(padding),
    )
    network = parse_network_spec(text, color=color)
    _execute(
        network,
        render,
        images=images,
        output=output,
        out_dir=out_dir,
        name=name,
        fmt=fmt,
        in_place=in_place,
        recursive=recursive,
        max_pixels=max_pixels,
        jobs=jobs,
        fail_fast=fail_fast,
        quiet=quiet,
        batch_size=batch_size,
        verbose=verbose,
    )


# --------------------------------------------------------------------------- run


def _read_spec(spec: str):
    from convkit.arithmetic import spec as spec_lib

    text = spec.strip()
    path = Path(spec)
    looks_like_file = bool(re.fullmatch(r"[^\s()]+\.(txt|spec|cfg)", text)) or "/" in text
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if is_file:
        layers = spec_lib.parse_spec_file(path)
        return layers, " ".join(layer.text for layer in layers)
    if looks_like_file and "(" not in text:
        raise UsageError(f"--spec {spec}: no such spec file")
    return spec_lib.parse_spec(spec), " ".join(spec.split())


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
    name: Name = DEFAULTS["name"],
    fmt: Format = None,
    in_place: InPlace = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    batch_size: BatchSize = 32,
    jobs: Jobs = None,
    fail_fast: FailFast = False,
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
    from convkit.nn.featuremaps import network_from_spec

    if not spec:
        raise UsageError(
            'give the layers with --spec, e.g. --spec "conv2d(8, 3) relu maxpool2d(2)" '
            "or --spec FILE"
        )
    render = _render_options(range_mode, raw, no_maps, no_montage)
    parsed, text = _read_spec(spec)
    wanted = [n.strip() for item in (layers or []) for n in item.split(",") if n.strip()]
    declared = parsed[0].kwargs["shape"][2] if parsed and parsed[0].type == "InputLayer" else None
    channels = 3 if (color or declared == 3) else 1
    weights_ = _filter_weights(kernel, weights, channels)
    network = network_from_spec(
        parsed,
        color=True if color else None,
        outputs=wanted or None,
        weights=weights_,
        seed=seed,
        spec_text=text,
    )
    _execute(
        network,
        render,
        images=images,
        output=output,
        out_dir=out_dir,
        name=name,
        fmt=fmt,
        in_place=in_place,
        recursive=recursive,
        max_pixels=max_pixels,
        jobs=jobs,
        fail_fast=fail_fast,
        quiet=quiet,
        batch_size=batch_size,
        verbose=verbose,
    )

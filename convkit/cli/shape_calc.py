"""``convkit shape-calc``: exact CNN shape arithmetic that explains itself.

Parses options, calls :mod:`convkit.arithmetic`, prints. At module level
it imports only Typer (every convkit command loads this module to register it); the core,
Rich and json are imported when the command runs, and never OpenCV or TensorFlow.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convkit.errors import UsageError

if TYPE_CHECKING:
    from convkit.arithmetic import shapes
    from convkit.arithmetic.spec import LayerSpec

_LAYER = "Single layer (flags)"
_STACK = "Stack (layer spec)"

_DIMS = re.compile(r"^\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?(?:[x×X,]\s*(\d+)\s*)?$")
_PAIR = re.compile(r"^\s*\(?\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?\)?\s*$")


def _parse_input(text: str) -> tuple[int, int, int | None]:
    match = _DIMS.match(text)
    if (
        not match
        or int(match.group(1)) < 1
        or any(g is not None and int(g) < 1 for g in match.groups())
    ):
        raise UsageError(
            "--input must be N, HxW or HxWxC with positive integers, like 512 or 224x224x3. "
            f"Received: --input {text!r}"
        )
    h = int(match.group(1))
    w = int(match.group(2)) if match.group(2) else h
    c = int(match.group(3)) if match.group(3) else None
    return h, w, c


def _parse_pair(text: str, option: str, *, allow_zero: bool = False) -> tuple[int, int]:
    match = _PAIR.match(text)
    low = 0 if allow_zero else 1
    if match:
        a = int(match.group(1))
        b = int(match.group(2)) if match.group(2) else a
        if min(a, b) >= low:
            return a, b
    what = "non-negative" if allow_zero else "positive"
    raise UsageError(
        f"{option} must be a {what} integer K or a pair KHxKW, like 3 or 3x5. "
        f"Received: {option} {text!r}"
    )


def _parse_padding(text: str) -> shapes.Padding | tuple[shapes.Padding, shapes.Padding]:
    word = text.strip().lower()
    if word in ("valid", "same", "full"):
        return word
    match = _PAIR.match(text)
    if match:
        a = int(match.group(1))
        if match.group(2) is None:
            return a
        return (a, int(match.group(2)))
    raise UsageError(
        "--padding must be valid, same, full, a number P (zero padding on each side) or a "
        f"pair PHxPW. Received: --padding {text!r}"
    )


def _read_spec(spec_words: list[str] | None, spec_file: Path | None) -> list[LayerSpec] | None:
    from convkit.arithmetic import spec as spec_lib

    if spec_words and spec_file is not None:
        raise UsageError("give the layer spec either as an argument or with --spec FILE, not both")
    if spec_file is not None:
        if str(spec_file) == "-":
            return spec_lib.parse_spec(sys.stdin.read(), path="<stdin>")
        return spec_lib.parse_spec_file(spec_file)
    if spec_words:
        return spec_lib.parse_spec(" ".join(spec_words))
    return None


def shape_calc(
    spec_words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SPEC]...",
            help='Layers in the layer-spec language, e.g. "conv2d(32, 3) maxpool2d(2) '
            'flatten dense(10)" (quote it for the shell).',
            show_default=False,
        ),
    ] = None,
    input_: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="Input size: N (NxN), HxW or HxWxC. Channels default to 1 (or --channels).",
            show_default=False,
        ),
    ] = None,
    channels: Annotated[
        int | None,
        typer.Option(
            "--channels", "-c", min=1, help="Input channels \\[default: 1].", show_default=False
        ),
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Read the layers from FILE (one per line, # comments; - for stdin). A first "
            "line input((H, W, C)) sets the input size when --input is not given.",
            metavar="FILE",
            show_default=False,
            rich_help_panel=_STACK,
        ),
    ] = None,
    kernel: Annotated[
        str | None,
        typer.Option(
            "--kernel",
            "-k",
            help="Kernel (or pooling window) size: K or KHxKW.",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    stride: Annotated[
        str | None,
        typer.Option(
            "--stride",
            "-s",
            help="Stride: S or SHxSW \\[default: 1; the window with --pool].",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    padding: Annotated[
        str | None,
        typer.Option(
            "--padding",
            "-p",
            help="valid, same (Keras: output ⌈n/s⌉), full (k−1 on each side), a number P of "
            "zeros on each side, or a pair PHxPW \\[default: valid = 0].",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    dilation: Annotated[
        str | None,
        typer.Option(
            "--dilation",
            "-d",
            help="Dilation rate: D or DHxDW \\[default: 1].",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    filters: Annotated[
        int | None,
        typer.Option(
            "--filters",
            "-f",
            min=1,
            help="Output channels (filters) \\[default: 1].",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    pool: Annotated[
        bool,
        typer.Option(
            "--pool",
            help="A pooling window (no parameters; stride defaults to the window, as in Keras).",
            rich_help_panel=_LAYER,
        ),
    ] = False,
    transpose: Annotated[
        bool,
        typer.Option(
            "--transpose",
            help="A transposed convolution (Keras's Conv2DTranspose output rule).",
            rich_help_panel=_LAYER,
        ),
    ] = False,
    output_padding: Annotated[
        str | None,
        typer.Option(
            "--output-padding",
            help="Output padding of --transpose: A or AHxAW (each < stride).",
            show_default=False,
            rich_help_panel=_LAYER,
        ),
    ] = None,
    no_bias: Annotated[
        bool,
        typer.Option(
            "--no-bias", help="No bias term (Keras's use_bias=False).", rich_help_panel=_LAYER
        ),
    ] = False,
    json_: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object on stdout instead of the table."),
    ] = False,
) -> None:
    """Exact output sizes, parameters, MACs and receptive fields of CNN
    layers, as Keras 3 builds them (channels-last), with the formulas.

    One layer from flags:

      convkit shape-calc --input 512 --kernel 15 --stride 1 --padding 0
      convkit shape-calc -i 224x224x3 -k 3 -s 2 -p same --filters 64
      convkit shape-calc -i 28x28x32 -k 2 --pool
      convkit shape-calc -i 7 -k 3 -s 2 --transpose --output-padding 1

    A whole stack from the layer-spec language:

      convkit shape-calc -i 224x224x3 \\
          "conv2d(64, 3, padding=same) maxpool2d(2) flatten dense(10)"
      convkit shape-calc -i 32x32x3 --spec net.txt --json

    Layers are Keras class names in any case, separated by spaces:
    conv2d (conv), conv2dtranspose, depthwiseconv2d, separableconv2d,
    maxpool2d (maxpool), averagepooling2d (avgpool),
    globalaveragepooling2d (gap), globalmaxpooling2d, zeropadding2d,
    cropping2d, upsampling2d, batchnormalization (bn), layernormalization,
    activation, dropout, spatialdropout2d, flatten, dense, and bare
    activations (relu, sigmoid, tanh, softmax, ...).
    Arguments in Keras's order or by Keras's names, e.g.
    conv2d(filters, kernel_size, strides, padding, dilation_rate=...,
    use_bias=..., activation=...), maxpool2d(pool_size, strides, padding),
    dense(units), dropout(rate). Values: 3, 0.5, (3, 5) or 3x5, same or
    "same", True/False. A spec's padding is valid or same; full and numeric
    paddings are flag-mode only (in a spec, use zeropadding2d(p)).

    MACs: multiply-accumulates of convolutions and dense layers. RF / jump:
    receptive field and its step, in input pixels. Memory: each layer's
    float32 output for one image.
    """
    import json

    from convkit.arithmetic import shapes

    layers = _read_spec(spec_words, spec_file)
    if layers is not None:
        flags = {
            "--kernel": kernel is not None,
            "--stride": stride is not None,
            "--padding": padding is not None,
            "--dilation": dilation is not None,
            "--filters": filters is not None,
            "--pool": pool,
            "--transpose": transpose,
            "--output-padding": output_padding is not None,
            "--no-bias": no_bias,
        }
        given = [name for name, on in flags.items() if on]
        if given:
            raise UsageError(
                f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a single layer; "
                "with a layer spec, give those arguments to the layers themselves "
                "(e.g. conv2d(32, 3, strides=2))"
            )
        stack = _analyze(layers, input_, channels)
        if json_:
            print(json.dumps(stack.to_json(), indent=2))
        else:
            _print_stack(stack)
        return

    if input_ is None:
        raise UsageError(
            "nothing to compute: give --input and --kernel for one layer, or a layer spec "
            '("conv2d(32, 3) maxpool2d(2) flatten dense(10)") or --spec FILE for a stack; '
            "see convkit shape-calc --help"
        )
    if kernel is None and not pool:
        raise UsageError(
            "--kernel is missing: one layer needs --input and --kernel (e.g. --input 512 "
            "--kernel 15), or give a layer spec for a stack"
        )
    if pool and transpose:
        raise UsageError("--pool and --transpose exclude each other: choose one layer kind")
    h, w, c = _input_shape(input_, channels)
    layer = shapes.single_layer(
        (h, w, c),
        _parse_pair(kernel, "--kernel") if kernel is not None else 2,
        stride=None if stride is None else _parse_pair(stride, "--stride"),
        padding="valid" if padding is None else _parse_padding(padding),
        dilation=1 if dilation is None else _parse_pair(dilation, "--dilation"),
        filters=1 if filters is None else filters,
        mode="pool" if pool else "transpose" if transpose else "conv",
        output_padding=None
        if output_padding is None
        else _parse_pair(output_padding, "--output-padding", allow_zero=True),
        use_bias=not no_bias,
    )
    if json_:
        print(json.dumps(layer.to_stack().to_json(), indent=2))
    else:
        _print_single(layer)


def _input_shape(input_: str, channels: int | None) -> tuple[int, int, int]:
    h, w, c = _parse_input(input_)
    if c is not None and channels is not None and c != channels:
        raise UsageError(
            f"--input {input_} has {c} channels but --channels says {channels}. "
            f"Received: --input {input_!r}, --channels {channels}"
        )
    return h, w, c if c is not None else channels if channels is not None else 1


def _analyze(
    layers: list[LayerSpec], input_: str | None, channels: int | None
) -> shapes.StackResult:
    declared = layers[0].kwargs["shape"] if layers and layers[0].type == "InputLayer" else None
    if input_ is not None:
        h, w, c = _parse_input(input_)
        if c is None:
            c = channels if channels is not None else declared[2] if declared else 1
        elif channels is not None and channels != c:
            raise UsageError(
                f"--input {input_} has {c} channels but --channels says {channels}. "
                f"Received: --input {input_!r}, --channels {channels}"
            )
        input_shape: tuple[int, int, int] | None = (h, w, c)
    elif declared is not None:
        input_shape = None
        if channels is not None and channels != declared[2]:
            input_shape = (declared[0], declared[1], channels)
    else:
        raise UsageError(
            "--input is missing: the stack needs an input size, e.g. --input 224x224x3 "
            "(or start the spec with input((224, 224, 3)))"
        )
    from convkit.arithmetic import shapes

    try:
        return shapes.analyze_stack(layers, input_shape)
    except shapes.LayerError as exc:
        raise layers[exc.index].error(exc.message) from None


# --------------------------------------------------------------------------- printing


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(v) for v in shape)


def _rf_text(rf: shapes.ReceptiveField | None, *, global_: bool) -> str:
    if rf is None:
        return "global" if global_ else "—"

    def frac(v) -> str:
        return str(v.numerator) if v.denominator == 1 else f"{float(v):.3g}"

    size = [frac(v) for v in rf.size]
    jump = [frac(v) for v in rf.jump]
    size_text = size[0] if size[0] == size[1] else "×".join(size)
    jump_text = jump[0] if jump[0] == jump[1] else "×".join(jump)
    return f"{size_text} / {jump_text}"


def _console(min_width: int = 0):
    """A stdout console. When stdout is not a terminal (a file, a pipe, CI), it is made as
    wide as the output needs (``min_width``) instead of Rich's 80 columns, so nothing wraps
    or is cut."""
    from rich.console import Console

    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal and min_width > console.width:
        console = Console(highlight=False, markup=False, emoji=False, width=min_width)
    return console


def _table_width(rows: list[tuple[str, ...]]) -> int:
    """Columns as wide as their longest cell, padded, plus the separators between them."""
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return sum(widths) + 3 * len(widths)


def _print_stack(stack: shapes.StackResult) -> None:
    from rich import box
    from rich.table import Table

    from convkit.arithmetic import shapes

    header = ("Layer", "Output shape", "Params", "Non-trainable", "MACs", "RF / jump", "Memory")
    footer = (
        "Total",
        _shape(stack.output_shape),
        f"{stack.total_params:,}",
        _blank0(stack.non_trainable_params),
        shapes.format_count(stack.total_macs),
        "",
        shapes.format_bytes(stack.activation_bytes),
    )
    rows = [
        (
            "input",
            _shape(stack.input_shape),
            "",
            "",
            "",
            "1 / 1",
            shapes.format_bytes(4 * _prod(stack.input_shape)),
        )
    ]
    for layer in stack.layers:
        label = f"{layer.name} ({layer.type}"
        label += f", {layer.activation})" if layer.activation else ")"
        rows.append(
            (
                label,
                _shape(layer.output_shape),
                f"{layer.params:,}",
                _blank0(layer.non_trainable_params),
                shapes.format_count(layer.macs) if layer.macs else "",
                _rf_text(layer.receptive_field, global_=layer.type.startswith("Global")),
                shapes.format_bytes(layer.activation_bytes),
            )
        )
    table = Table(box=box.SIMPLE_HEAD, show_footer=True, footer_style="bold", pad_edge=False)
    for i, (title, foot) in enumerate(zip(header, footer, strict=True)):
        if i == 0:
            table.add_column(title, footer=foot, overflow="fold")
        elif i == 1:
            table.add_column(title, footer=foot, no_wrap=True)
        else:
            table.add_column(title, footer=foot, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = _console(_table_width([header, footer, *rows]))
    console.print(table)
    console.print(
        f"Total params: {stack.total_params:,} ({shapes.format_bytes(4 * stack.total_params)} "
        f"float32) · trainable {stack.trainable_params:,} · non-trainable "
        f"{stack.non_trainable_params:,}",
        soft_wrap=True,
    )
    console.print(
        f"Total MACs: {stack.total_macs:,} ({shapes.format_count(stack.total_macs)}) per image",
        soft_wrap=True,
    )
    console.print(
        f"Activation memory: {shapes.format_bytes(stack.activation_bytes)} per image "
        "(float32, all layer outputs)",
        soft_wrap=True,
    )


def _blank0(n: int) -> str:
    return f"{n:,}" if n else ""


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _print_single(layer: shapes.SingleLayer) -> None:
    from rich.table import Table

    from convkit.arithmetic import shapes

    r = layer.result
    rows: list[tuple[str, str]] = []
    for axis in layer.axes:
        label = "output size" if axis.axis == "height and width" else f"output {axis.axis}"
        suffix = "   (height and width)" if axis.axis == "height and width" else ""
        rows.append((label, axis.formula + suffix))
        rows += [("", note) for note in axis.notes]
    rows.append(("parameters", layer.params_formula))
    rows.append(("MACs", layer.macs_formula))
    rf = _rf_text(r.receptive_field, global_=False).split(" / ")
    rows.append(("receptive field", f"{rf[0]} (jump {rf[1]})"))
    values = _prod(r.output_shape)
    rows.append(
        (
            "activations",
            f"{_shape(r.output_shape)} = {values:,} values = "
            f"{shapes.format_bytes(values * 4)} (float32)",
        )
    )
    rows += [("note", note) for note in layer.notes]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for row in rows:
        grid.add_row(*row)
    console = _console(_table_width(rows))
    console.print(f"{r.type}: {_shape(r.input_shape)} → {_shape(r.output_shape)}", soft_wrap=True)
    console.print(layer.description, soft_wrap=True)
    console.print()
    console.print(grid)


__all__ = ["shape_calc"]

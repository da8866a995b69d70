"""``convkit shape-calc``: exact CNN shape arithmetic that explains itself.

Parses options, makes one call into :mod:`convkit.arithmetic` (``analyze_spec`` for a stack
of layers, ``single_layer`` for one layer from flags), prints. At module level it imports
only Typer (every convkit command loads this module to register it); the core, Rich and
json are imported when the command runs, and never NumPy, OpenCV or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from convkit.cli import report
from convkit.cli.options import Json
from convkit.errors import UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.explain import SingleLayer
    from convkit.arithmetic.results import ReceptiveField, StackResult
    from convkit.arithmetic.spec import LayerSpec

_LAYER = "Single layer (flags)"
_STACK = "Stack (layer spec)"


_SpecWords = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[SPEC]...",
        help='Layers in the layer-spec language, e.g. "conv2d(32, 3) maxpool2d(2) '
        'flatten dense(10)" (quote it for the shell).',
        show_default=False,
    ),
]

_InputSize = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        help="Input size: N (NxN), HxW or HxWxC. Channels default to 1 (or --channels).",
        show_default=False,
    ),
]

_Channels = Annotated[
    int | None,
    typer.Option(
        "--channels", "-c", min=1, help="Input channels \\[default: 1].", show_default=False
    ),
]

_Spec = Annotated[
    str | None,
    typer.Option(
        "--spec",
        help="The layers: spec text, a FILE of them (one per line, # comments) or - for "
        "stdin. A first input((H, W, C)) sets the input size when --input is not given.",
        metavar="TEXT|FILE",
        show_default=False,
        rich_help_panel=_STACK,
    ),
]

_Kernel = Annotated[
    str | None,
    typer.Option(
        "--kernel-size",
        help="Kernel (or pooling window) size: K or KHxKW.",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

_Stride = Annotated[
    str | None,
    typer.Option(
        "--strides",
        "--stride",
        "-s",
        help="Stride: S or SHxSW \\[default: 1; the window with --pool].",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

_PaddingOpt = Annotated[
    str | None,
    typer.Option(
        "--padding",
        "-p",
        help="valid, same (Keras: output ⌈n/s⌉), full (k−1 on each side), a number P of "
        "zeros on each side, or a pair PHxPW \\[default: valid = 0].",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

_Dilation = Annotated[
    str | None,
    typer.Option(
        "--dilation",
        help="Dilation rate: D or DHxDW \\[default: 1].",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

_Filters = Annotated[
    int | None,
    typer.Option(
        "--filters",
        min=1,
        help="Output channels (filters) \\[default: 1].",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

# The spellings of convkit 0.x, before each short option meant one thing across convkit
# (-k a kernel, -d --out-dir, -f --format): still read here, where they clash with nothing,
# but no longer shown.
_OldKernel = Annotated[str | None, typer.Option("--kernel", "-k", hidden=True)]
_OldDilation = Annotated[str | None, typer.Option("-d", hidden=True)]
_OldFilters = Annotated[int | None, typer.Option("-f", min=1, hidden=True)]

_Pool = Annotated[
    bool,
    typer.Option(
        "--pool",
        help="A pooling window (no parameters; stride defaults to the window, as in Keras).",
        rich_help_panel=_LAYER,
    ),
]

_Transpose = Annotated[
    bool,
    typer.Option(
        "--transpose",
        help="A transposed convolution (Keras's Conv2DTranspose output rule).",
        rich_help_panel=_LAYER,
    ),
]

_OutputPadding = Annotated[
    str | None,
    typer.Option(
        "--output-padding",
        help="Output padding of --transpose: A or AHxAW (each < stride).",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]

_Diagram = Annotated[
    str | None,
    typer.Option(
        "--diagram",
        help="Also draw the stack into FILE (.png or .svg, by its suffix): a box per layer, "
        "sized by its output, labelled with its shape and parameters, and the totals.",
        metavar="FILE",
        show_default=False,
    ),
]

_NoBias = Annotated[
    bool,
    typer.Option(
        "--no-bias", help="No bias term (Keras's use_bias=False).", rich_help_panel=_LAYER
    ),
]


def shape_calc(
    spec_words: _SpecWords = None,
    input_shape: _InputSize = None,
    channels: _Channels = None,
    spec: _Spec = None,
    kernel: _Kernel = None,
    stride: _Stride = None,
    padding: _PaddingOpt = None,
    dilation: _Dilation = None,
    filters: _Filters = None,
    pool: _Pool = False,
    transpose: _Transpose = False,
    output_padding: _OutputPadding = None,
    no_bias: _NoBias = False,
    json_: Json = False,
    diagram: _Diagram = None,
    old_kernel: _OldKernel = None,
    old_dilation: _OldDilation = None,
    old_filters: _OldFilters = None,
) -> None:
    """Exact output sizes, parameters, MACs and receptive fields of CNN
    layers, as Keras 3 builds them (channels-last), with the formulas.

    Examples: one layer from flags,

      convkit shape-calc --input 512 --kernel-size 15 --strides 1 --padding 0
      convkit shape-calc -i 224x224x3 --kernel-size 3 -s 2 -p same --filters 64
      convkit shape-calc -i 28x28x32 --kernel-size 2 --pool
      convkit shape-calc -i 7 --kernel-size 3 -s 2 --transpose --output-padding 1

    or a whole stack from the layer-spec language,

      convkit shape-calc -i 224x224x3 \\
          "conv2d(64, 3, padding=same) maxpool2d(2) flatten dense(10)"
      convkit shape-calc -i 32x32x3 --spec net.txt --json
      convkit shape-calc --spec vgg16.txt --diagram vgg16.svg

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
    kernel = _one_of(kernel, old_kernel, "--kernel-size", "-k or --kernel")
    dilation = _one_of(dilation, old_dilation, "--dilation", "-d")
    filters = _one_of(filters, old_filters, "--filters", "-f")
    layers = _read_layers(spec_words, spec)
    if layers is not None:
        _refuse_layer_flags(
            {
                "--kernel-size": kernel is not None,
                "--strides": stride is not None,
                "--padding": padding is not None,
                "--dilation": dilation is not None,
                "--filters": filters is not None,
                "--pool": pool,
                "--transpose": transpose,
                "--output-padding": output_padding is not None,
                "--no-bias": no_bias,
            }
        )
        from convkit.arithmetic.stack import analyze_spec

        stack = analyze_spec(layers, _input_size(input_shape, channels))
        _draw(diagram, stack, layers)
        if json_:
            _print_json(stack)
        else:
            _print_stack(stack)
        return

    if input_shape is None and (kernel is not None or pool or transpose):
        raise UsageError(
            "`input_shape` is missing: one layer needs `input_shape` and `kernel` "
            "(e.g. `input_shape` 512 `kernel` 15)"
        )
    if input_shape is None:
        raise UsageError(
            "nothing to compute: give --input and --kernel-size for one layer, or a layer spec "
            '("conv2d(32, 3) maxpool2d(2) flatten dense(10)") or --spec FILE for a stack; '
            "see convkit shape-calc --help"
        )
    from convkit.arithmetic.explain import single_layer
    from convkit.arithmetic.sizes import parse_layer_sizes

    layer = single_layer(
        _input_size(input_shape, channels),
        **parse_layer_sizes(kernel, stride, padding, dilation, output_padding),
        filters=1 if filters is None else filters,
        pool=pool,
        transpose=transpose,
        use_bias=not no_bias,
    )
    _draw(diagram, layer.to_stack())
    if json_:
        _print_json(layer.to_stack())
    else:
        _print_single(layer)


def _draw(path: str | None, stack: StackResult, layers: list[LayerSpec] | None = None) -> None:
    """``--diagram``: the stack drawn into ``path`` (the option's one core call)."""
    if path is not None:
        from convkit.visual.diagram import write_diagram

        report.note(f"diagram written to {write_diagram(stack, path, specs=layers)}")


def _one_of(value, old, flag: str, old_flag: str):
    """An option given by its name or by its old spelling, not both."""
    if value is not None and old is not None:
        raise UsageError(f"{flag} is given twice (once as {old_flag}): give it once")
    return old if value is None else value


def _read_layers(spec_words: list[str] | None, spec: str | None) -> list[LayerSpec] | None:
    """The layers of the positional spec words or of ``--spec`` (text, a file, or ``-``)."""
    if spec_words and spec is not None:
        raise UsageError("give the layer spec either as an argument or with --spec, not both")
    if spec is not None:
        from convkit.arithmetic.spec_source import read_spec

        return read_spec(spec, param="spec").layers
    if spec_words:
        from convkit.arithmetic.spec import parse_spec

        return parse_spec(" ".join(spec_words))
    return None


def _refuse_layer_flags(flags: dict[str, bool]) -> None:
    given = [name for name, on in flags.items() if on]
    if given:
        raise UsageError(
            f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a single layer; "
            "with a layer spec, give those arguments to the layers themselves "
            "(e.g. conv2d(32, 3, strides=2))"
        )


def _input_size(text: str | None, channels: int | None) -> tuple[int | None, ...] | None:
    """``--input`` and ``--channels`` as one ``(H, W, C)``; what neither gives is None (the
    core takes it from the spec's input layer, or 1 channel)."""
    from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT
    from convkit.arithmetic.sizes import parse_dims

    if channels is not None and channels > MAX_INT:
        raise UsageError(f"--channels must be at most {MAX_INT_TEXT}, got {channels}")
    if text is None:
        return None if channels is None else (None, None, channels)
    h, w, c = parse_dims(text, "input_shape")
    if c is not None and channels is not None and c != channels:
        raise UsageError(
            f"--input {text} has {c} channels but --channels says {channels}: give one of them"
        )
    return h, w, c if c is not None else channels


# --------------------------------------------------------------------------- printing


def _print_json(stack: StackResult) -> None:
    import json

    report.emit(json.dumps(stack.to_json(), indent=2))


def _rf_text(rf: ReceptiveField | None, *, global_: bool) -> tuple[str, str]:
    from convkit.arithmetic.formatting import format_rf

    if rf is None:
        return ("global" if global_ else "—"), ""
    return format_rf(rf.size), format_rf(rf.jump)


_HEADER = ("Layer", "Output shape", "Params", "Non-trainable", "MACs", "RF / jump", "Memory")
# In a narrow terminal these columns go first, in this order (the totals below the table
# still give parameters, MACs and memory); the layer names are then shortened.
_DROPPABLE = ("Non-trainable", "Memory", "RF / jump", "MACs")
_NAME_ROOM = 20
"""Columns are dropped until the layer names have this much room (or all they need)."""


def _print_stack(stack: StackResult) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from convkit.arithmetic.formatting import format_bytes, format_count, format_shape
    from convkit.cli.report import print_table

    footer = (
        "Total",
        format_shape(stack.output_shape),
        f"{stack.total_params:,}",
        _blank0(stack.non_trainable_params),
        format_count(stack.total_macs),
        "",
        format_bytes(stack.activation_bytes),
    )
    rows = [
        (
            "input",
            format_shape(stack.input_shape),
            "",
            "",
            "",
            "1 / 1",
            format_bytes(stack.input_bytes),
        )
    ]
    names = [("input", "input")]
    for layer in stack.layers:
        label = f"{layer.name} ({layer.type}"
        label += f", {layer.activation})" if layer.activation else ")"
        short = f"{layer.name} ({layer.activation})" if layer.activation else layer.name
        names.append((label, short))
        size, jump = _rf_text(layer.receptive_field, global_=layer.type.startswith("Global"))
        rows.append(
            (
                label,
                format_shape(layer.output_shape),
                f"{layer.params:,}",
                _blank0(layer.non_trainable_params),
                format_count(layer.macs) if layer.macs else "",
                f"{size} / {jump}" if jump else size,
                format_bytes(layer.activation_bytes),
            )
        )
    room = report.terminal_width()
    columns, labels = _fit(rows, footer, names, room)
    table = Table(box=box.SIMPLE_HEAD, show_footer=True, footer_style="bold", pad_edge=False)
    for title in columns:
        i = _HEADER.index(title)
        justify = "left" if i < 2 else "right"
        table.add_column(title, footer=Text(footer[i]), justify=justify, no_wrap=True)
    for row, label in zip(rows, labels, strict=True):
        table.add_row(*(Text(label if c == "Layer" else row[_HEADER.index(c)]) for c in columns))
    kept = [tuple(r[_HEADER.index(c)] for c in columns) for r in (_HEADER, footer, *rows)]
    print_table(table, width=report.text_width(kept) if room is None else None)
    lines = [
        f"Total params: {stack.total_params:,} ({format_bytes(stack.param_bytes)} float32) · "
        f"trainable {stack.trainable_params:,} · non-trainable {stack.non_trainable_params:,}",
        f"Total MACs: {stack.total_macs:,} ({format_count(stack.total_macs)}) per image",
        f"Activation memory: {format_bytes(stack.activation_bytes)} per image "
        "(float32, all layer outputs)",
    ]
    if room is not None:
        import textwrap

        lines = [textwrap.fill(line, max(room - 1, 20), subsequent_indent="  ") for line in lines]
    report.emit("\n".join(lines))


def _fit(
    rows: list[tuple[str, ...]],
    footer: tuple[str, ...],
    names: list[tuple[str, str]],
    room: int | None,
) -> tuple[list[str], list[str]]:
    """The columns shown and each row's layer label, within ``room`` columns.

    Piped (``room`` None) or when it fits: every column, labels ``name (Type, act)``.
    Narrower: the labels lose their type (``name (act)``), the least useful columns go
    (:data:`_DROPPABLE`; a column with nothing in it first) until the names have
    :data:`_NAME_ROOM`, and a name still too long ends in an ellipsis. No cell wraps.
    """
    columns = list(_HEADER)
    full = [label for label, _ in names]
    if room is None:
        return columns, full

    def width_of(title: str) -> int:
        i = _HEADER.index(title)
        return max(len(r[i]) for r in (_HEADER, footer, *rows))

    def label_room(kept: list[str]) -> int:
        # Each column but the first adds its width, two spaces of padding and a rule;
        # the table's edges one character each.
        return room - 2 - sum(width_of(c) + 3 for c in kept if c != "Layer")

    if label_room(columns) >= max(map(len, full)):
        return columns, full
    short = [s for _, s in names]
    need = max(len(s) for s in [*short, "Layer", "Total"])
    if not any(r[_HEADER.index("Non-trainable")] for r in (*rows, footer)):
        columns.remove("Non-trainable")
    for title in _DROPPABLE:
        if label_room(columns) >= min(need, _NAME_ROOM):
            break
        if title in columns:
            columns.remove(title)
    fit = max(8, label_room(columns))
    return columns, [s if len(s) <= fit else s[: fit - 1] + "…" for s in short]


def _blank0(n: int) -> str:
    return f"{n:,}" if n else ""


def _print_single(layer: SingleLayer) -> None:
    from rich.table import Table
    from rich.text import Text

    from convkit.arithmetic.formatting import format_bytes, format_shape
    from convkit.cli.report import print_table

    r = layer.result
    rows: list[tuple[str, str]] = []
    for axis in layer.axes:
        label = "output size" if axis.axis == "height and width" else f"output {axis.axis}"
        suffix = "   (height and width)" if axis.axis == "height and width" else ""
        rows.append((label, axis.formula + suffix))
        rows += [("", note) for note in axis.notes]
    rows.append(("parameters", layer.params_formula))
    rows.append(("MACs", layer.macs_formula))
    size, jump = _rf_text(r.receptive_field, global_=False)
    rows.append(("receptive field", f"{size} (jump {jump})"))
    rows.append(
        (
            "activations",
            f"{format_shape(r.output_shape)} = {r.activation_values:,} values = "
            f"{format_bytes(r.activation_bytes)} (float32)",
        )
    )
    rows += [("note", note) for note in layer.notes]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for row in rows:
        grid.add_row(*map(Text, row))
    report.emit(
        f"{r.type}: {format_shape(r.input_shape)} → {format_shape(r.output_shape)}\n"
        f"{layer.description}\n"
    )
    print_table(grid)


__all__ = ["shape_calc"]

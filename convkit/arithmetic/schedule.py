"""Which input cells each output cell of one layer reads: the schedule ``convkit animate``
draws and ``convkit animate --json`` prints.

One layer, one channel: a convolution (Conv2D), a transposed convolution (Conv2DTranspose,
drawn as the equivalent direct convolution over the input stretched with zeros), or a
pooling window (MaxPooling2D, AveragePooling2D). For each output cell ``(r, c)``, in
row-major order, the schedule lists every position of the window (*taps*): the index
``[i, j]`` into the layer's kernel as Keras stores it that multiplies there, and the cell of
the original, unpadded input it multiplies, or None where the window lies on padding or on
an inserted zero. Then, over the taps with an input cell,

    output[r, c] = Σ input[tap.input] · kernel[tap.kernel]      (pooling: max or mean)

equals Keras's own layer (bias 0; TensorFlow leaves padded cells out of a pooling window's
max and mean). ``tests/test_animate_schedule.py`` proves it against Keras for every kind of
setting. Where Keras has no such padding, the layer is Keras's with explicit zero padding:
a number P or ``full`` (``k_eff − 1``) is ``ZeroPadding2D`` before a ``valid`` Conv2D; a
transposed convolution's P is ``Cropping2D(P)`` after a ``valid`` one (PyTorch's rule,
as ``shape-calc`` computes it). Pooling takes only ``valid`` and ``same``.

Each axis is computed alone (:class:`Axis`): a window's taps are the product of a row's and
a column's. The canvas of an axis is what a picture draws: the input with its padding (and,
transposed, the zeros between its cells); every window position is a canvas position.
Pure Python: a 512x512 input's schedule is built in microseconds and printed as a stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from convkit.arithmetic.catalogue import KIND_BY_TYPE
from convkit.arithmetic.explain import SingleLayer, single_layer
from convkit.arithmetic.formulas import Padding, effective_kernel, resolve_padding, window
from convkit.defaults import POOL_MODES
from convkit.errors import SpecError, check_choice

__all__ = ["Axis", "Schedule", "layer_schedule"]

Pair = tuple[int, int]

INPUT, PAD, ZERO = "i", "p", "z"
"""Kinds of canvas cells: an input cell, padding, a zero inserted between input cells."""

LAYER_NAMES = {
    "conv": "Conv2D",
    "transpose": "Conv2DTranspose",
    "max": "MaxPooling2D",
    "avg": "AveragePooling2D",
}


MAX_SCHEDULE_TAPS = 1 << 25
"""Taps (output cells × kernel cells) a schedule lists at most: 33 million, over a GB of
JSON; 1024x1024 with a 3x3 kernel is 9.4 million."""

MAX_CANVAS = 1 << 22
"""Cells of the padded (or stretched) input along one axis at most."""


def _check_canvas(cells: int) -> None:
    """A :class:`SpecError` when one axis of the drawn input would be too long to list."""
    if cells > MAX_CANVAS:
        raise SpecError(
            f"the padded input would be {cells:,} cells along one axis, over the limit of "
            f"{MAX_CANVAS:,} for a schedule: give a smaller `input_shape`, `stride`, `dilation` "
            "or `padding`"
        )


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a layer, as a picture draws it.

    ``cells[q]`` is the input index at canvas position ``q``, or None (padding or an
    inserted zero; ``kinds[q]`` says which: :data:`INPUT`, :data:`PAD`, :data:`ZERO`).
    ``windows[o]`` lists the taps of output ``o`` in window order: ``(kernel index, canvas
    position)``. ``before`` and ``after`` count the padding cells drawn before and after the
    input (for a transposed convolution, around the stretched input).
    """

    n: int
    out: int
    kernel: int
    stride: int
    dilation: int
    before: int
    after: int
    cells: tuple[int | None, ...]
    kinds: str
    windows: tuple[tuple[tuple[int, int], ...], ...]
    crop: int = 0
    """Transposed: the rows of the full output ((n − 1)·s + k_eff) cut before output 0."""

    @property
    def kernel_eff(self) -> int:
        return effective_kernel(self.kernel, self.dilation)

    def taps(self, o: int) -> list[tuple[int, int | None]]:
        """``(kernel index, input index or None)`` of output ``o``, in window order."""
        return [(k, self.cells[q]) for k, q in self.windows[o]]


def _conv_axis(n: int, k: int, s: int, d: int, padding: Padding) -> Axis:
    """A convolution or pooling window sliding over the padded input with stride ``s``."""
    win = window(n, k, s, padding, d)
    before, after = win.before, win.after
    _check_canvas(before + n + after)
    cells = tuple(
        q - before if before <= q < before + n else None for q in range(before + n + after)
    )
    kinds = "".join(INPUT if c is not None else PAD for c in cells)
    windows = tuple(tuple((t, o * s + t * d) for t in range(k)) for o in range(win.out))
    return Axis(n, win.out, k, s, d, before, after, cells, kinds, windows)


def _transpose_axis(n: int, k: int, s: int, d: int, out: int, crop: int) -> Axis:
    """A transposed convolution as the direct one it equals: the input stretched with
    ``s − 1`` zeros between cells (input ``i`` at stretched position ``i·s``), a window of
    stride 1 and the kernel flipped. Output ``o`` is position ``o + crop`` of the full
    transposed output, whose window starts ``k_eff − 1`` before it."""
    k_eff = effective_kernel(k, d)
    span = (n - 1) * s + 1
    first = crop - (k_eff - 1)  # stretched position of output 0's first tap
    start = min(first, 0)
    end = max(out - 1 + crop, span - 1)  # the last tap of the last output, or the input's end
    _check_canvas(end - start + 1)

    def cell(q: int) -> int | None:
        return q // s if 0 <= q < span and q % s == 0 else None

    cells = tuple(cell(q) for q in range(start, end + 1))
    kinds = "".join(
        INPUT if c is not None else ZERO if 0 <= q < span else PAD
        for q, c in zip(range(start, end + 1), cells, strict=True)
    )
    windows = tuple(
        tuple((k - 1 - t, o + first + t * d - start) for t in range(k)) for o in range(out)
    )
    return Axis(n, out, k, s, d, -start, end - (span - 1), cells, kinds, windows, crop)


@dataclass(frozen=True)
class Schedule:
    """The taps of every output cell of one single-channel layer (see the module docs)."""

    layer: str  # Conv2D, Conv2DTranspose, MaxPooling2D or AveragePooling2D
    rows: Axis
    cols: Axis
    explanation: SingleLayer
    """shape-calc's explanation of the layer: the formulas with the numbers put in."""
    paddings: tuple[Padding, Padding]

    @property
    def input(self) -> Pair:
        return self.rows.n, self.cols.n

    @property
    def output(self) -> Pair:
        return self.rows.out, self.cols.out

    @property
    def kernel(self) -> Pair:
        return self.rows.kernel, self.cols.kernel

    @property
    def steps(self) -> int:
        return self.rows.out * self.cols.out

    @property
    def pool(self) -> bool:
        return self.layer.endswith("Pooling2D")

    @property
    def transpose(self) -> bool:
        return self.layer == "Conv2DTranspose"

    def taps(self, r: int, c: int) -> list[tuple[Pair, Pair | None]]:
        """``((i, j), (row, column) or None)`` for every window position of output
        ``(r, c)``, row by row of the window."""
        cols = self.cols.taps(c)
        return [
            ((i, j), None if ir is None or ic is None else (ir, ic))
            for i, ir in self.rows.taps(r)
            for j, ic in cols
        ]

    def window(self, r: int, c: int) -> list[tuple[Pair, Pair]]:
        """``((i, j), (canvas row, canvas column))`` of every tap of output ``(r, c)``."""
        cols = self.cols.windows[c]
        return [((i, j), (qr, qc)) for i, qr in self.rows.windows[r] for j, qc in cols]

    def to_json(self) -> dict:
        """The schedule as one JSON-ready object (small layers; :meth:`iter_json` streams
        the same text for any size)."""
        return {
            "layer": self.layer,
            "input": list(self.input),
            "output": list(self.output),
            "kernel": list(self.kernel),
            "steps": [
                {
                    "output": [r, c],
                    "taps": [
                        {"kernel": list(k), "input": None if q is None else list(q)}
                        for k, q in self.taps(r, c)
                    ],
                }
                for r in range(self.rows.out)
                for c in range(self.cols.out)
            ],
        }

    def iter_json(self) -> Iterator[str]:
        """The JSON text of :meth:`to_json`, in pieces (one output row of steps each), one
        step per line: ``json.loads("".join(schedule.iter_json())) == schedule.to_json()``."""
        head = (
            f'{{"layer": "{self.layer}", "input": [{self.rows.n}, {self.cols.n}], '
            f'"output": [{self.rows.out}, {self.cols.out}], '
            f'"kernel": [{self.rows.kernel}, {self.cols.kernel}], "steps": ['
        )
        yield head
        # Each output cell's taps are a row's taps times a column's. Per output row, one
        # str.format template per pattern of padding columns, with everything but the
        # column numbers written in: one format call per cell, not one per tap.
        cols = [self.cols.taps(c) for c in range(self.cols.out)]
        for r in range(self.rows.out):
            row_taps = self.rows.taps(r)
            templates: dict[tuple[int | None, ...], str] = {}
            lines = []
            for c, col_taps in enumerate(cols):
                key = tuple(None if ic is None else j for j, ic in col_taps)
                template = templates.get(key)
                if template is None:
                    template = templates[key] = _cell_template(r, row_taps, col_taps)
                lines.append(template.format(c, *(ic for _, ic in col_taps)))
            yield ("\n" if r == 0 else ",\n") + ",\n".join(lines)
        yield "\n]}"


def _cell_template(
    r: int, row_taps: list[tuple[int, int | None]], col_taps: list[tuple[int, int | None]]
) -> str:
    """The JSON of output ``(r, c)``'s step as a ``str.format`` template: ``{0}`` is the
    column ``c``, ``{1}``, ``{2}``... the input columns of the window's columns."""
    taps = ", ".join(
        f'{{{{"kernel": [{i}, {j}], "input": null}}}}'
        if ir is None or ic is None
        else f'{{{{"kernel": [{i}, {j}], "input": [{ir}, {{{slot}}}]}}}}'
        for i, ir in row_taps
        for slot, (j, ic) in enumerate(col_taps, 1)
    )
    return f'{{{{"output": [{r}, {{0}}], "taps": [{taps}]}}}}'


def layer_schedule(
    input_shape: Sequence[int | None],
    kernel: int | Pair | None = None,
    *,
    stride: int | Pair | None = None,
    padding: Padding | tuple[Padding, Padding] = "valid",
    dilation: int | Pair = 1,
    transpose: bool = False,
    output_padding: int | Pair | None = None,
    pool: str | None = None,
) -> Schedule:
    """The schedule of one single-channel layer, from the arguments of ``shape-calc``'s
    single layer (:func:`~convkit.arithmetic.explain.single_layer`, which checks them: the
    same errors), with ``pool`` ``"max"`` or ``"avg"`` for a pooling window.

    ``input_shape`` is ``(height, width)`` or ``(height, width, 1)``.
    """
    if len(input_shape) == 3 and input_shape[2] not in (None, 1):
        raise SpecError(
            "`input_shape` must have one channel: a schedule follows one channel through "
            f"one filter. Received: input_shape={tuple(input_shape)}"
        )
    if pool is not None:
        check_choice(pool, POOL_MODES, "pool")
    paddings = padding if isinstance(padding, tuple) else (padding, padding)
    if pool is not None and any(p not in ("valid", "same") for p in paddings):
        raise SpecError(
            "a pooling window takes `padding` valid or same, as Keras's pooling layers do "
            "(there, padded cells are left out of the max and the mean; numeric or full "
            "padding has no Keras equivalent). "
            f"Received: padding={padding!r}"
        )
    h, w = int(input_shape[0]), int(input_shape[1])  # type: ignore[arg-type]
    explained = single_layer(
        (h, w, 1),
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        pool=pool is not None,
        transpose=transpose,
        output_padding=output_padding,
        use_bias=False,
    )
    kind = pool if pool is not None else "transpose" if transpose else "conv"
    result = explained.result
    kh, kw = _pair(kernel if kernel is not None else KIND_BY_TYPE["MaxPooling2D"].params[0].default)
    strides = _pair(stride) if stride is not None else ((kh, kw) if pool else (1, 1))
    dil = _pair(dilation)
    out_h, out_w = result.output_shape[0], result.output_shape[1]
    if out_h * out_w * kh * kw > MAX_SCHEDULE_TAPS:
        raise SpecError(
            f"the schedule of this layer would list {out_h}x{out_w} output cells of {kh}x{kw} "
            f"taps, over the limit of {MAX_SCHEDULE_TAPS:,} taps (about 1.5 GB of JSON): "
            f"give a smaller `input_shape`, `stride` or `padding`. Received: input_shape=({h}, {w})"
        )
    axes = []
    for i, (n, k) in enumerate(((h, kh), (w, kw))):
        if transpose:
            out = result.output_shape[i]
            op = None if output_padding is None else _pair(output_padding)[i]
            crop = _transpose_crop(n, k, strides[i], dil[i], paddings[i], out, op)
            axes.append(_transpose_axis(n, k, strides[i], dil[i], out, crop))
        else:
            axes.append(_conv_axis(n, k, strides[i], dil[i], paddings[i]))
    return Schedule(LAYER_NAMES[kind], axes[0], axes[1], explained, paddings)


def _pair(value: int | Pair) -> Pair:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _transpose_crop(
    n: int, k: int, s: int, d: int, padding: Padding, out: int, output_padding: int | None
) -> int:
    """How many rows of the full transposed output (``(n − 1)·s + k_eff``) fall before
    output row 0. ``valid`` keeps them all; ``same`` crops as TensorFlow does: of the
    ``(n − 1)·s + k_eff − out`` rows too many, the smaller half at the start (the odd one
    goes at the end); an explicit P crops P (``Cropping2D``)."""
    if padding == "valid":
        return 0
    if padding == "same":
        return max((n - 1) * s + effective_kernel(k, d) - out, 0) // 2
    return resolve_padding(n, k, s, padding, d)[0]

"""The words of an animation frame: the title, the formula lines of ``shape-calc`` with the
numbers put in, what the padding does (TensorFlow's lopsided ``same`` said aloud) and each
step's sum of products."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from convkit.arithmetic.schedule import Axis, Schedule
    from convkit.visual.numbers import Numbers

MINUS = "−"
DOT = "·"


def show(value: float) -> str:
    """A cell's number: integers as integers, others with 2-3 significant digits;
    ``−`` for minus."""
    if value != value:  # NaN
        return "—"
    if abs(value - round(value)) < 1e-9:
        text = str(int(round(value)))
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace("-", MINUS)


def title(schedule: Schedule) -> str:
    """``Conv2D: 7×7 → 4×4``."""
    (h, w), (oh, ow) = schedule.input, schedule.output
    return f"{schedule.layer}: {h}×{w} → {oh}×{ow}"


def _pair_text(pair: tuple[int, int]) -> str:
    """``3×3``, ``2×1``."""
    return f"{pair[0]}×{pair[1]}"


def _one_or_pair(pair: tuple[int, int]) -> str:
    """``2``, or ``2×1`` when the axes differ."""
    return str(pair[0]) if pair[0] == pair[1] else _pair_text(pair)


def _padding_text(schedule: Schedule) -> str:
    p = schedule.paddings
    if p[0] == p[1]:
        return _one_padding(p[0])
    return f"{_one_padding(p[0])} (height), {_one_padding(p[1])} (width)"


def _one_padding(p) -> str:
    if isinstance(p, tuple):
        return f"{p[0]}×{p[1]}"
    return str(p)


def subtitle(schedule: Schedule) -> list[str]:
    """The settings, and for a transposed convolution how it is drawn."""
    rows, cols = schedule.rows, schedule.cols
    word = "window" if schedule.pool else "kernel"
    parts = [
        f"{word} {_pair_text(schedule.kernel)}",
        f"stride {_one_or_pair((rows.stride, cols.stride))}",
        f"padding {_padding_text(schedule)}",
    ]
    if not schedule.pool:
        parts.append(f"dilation {_one_or_pair((rows.dilation, cols.dilation))}")
    if schedule.layer == "MaxPooling2D":
        parts.append("max of the window")
    elif schedule.layer == "AveragePooling2D":
        parts.append("mean of the window")
    lines = [" · ".join(parts)]
    if schedule.transpose:
        zeros = (rows.stride - 1, cols.stride - 1)
        if zeros[0] == zeros[1]:
            count = f"{zeros[0]} zero{'s' if zeros[0] != 1 else ''}"
        else:
            count = f"{zeros[0]} (rows) and {zeros[1]} (columns) zeros"
        stretched = (
            f"{count} inserted between input cells"
            if max(zeros)
            else "no zeros between input cells (stride 1)"
        )
        lines.append(
            f"drawn as the direct convolution it equals: {stretched}, stride 1, the kernel "
            "turned 180° (the small numbers)"
        )
    return lines


def formula_lines(schedule: Schedule) -> list[str]:
    """``shape-calc``'s formulas and notes, and what the padding does on each side."""
    lines = []
    for axis in schedule.explanation.axes:
        lines.append(f"output {axis.axis}: {axis.formula}")
        lines += [f"   {note}" for note in axis.notes]
    lines += padding_notes(schedule)
    return lines


def padding_notes(schedule: Schedule) -> list[str]:
    """TensorFlow's lopsided ``same``, said; a transposed convolution's cropping."""
    notes = []
    names = (("row", "top", "bottom"), ("column", "left", "right"))
    for i, (one, start, end) in enumerate(names):
        axis = (schedule.rows, schedule.cols)[i]
        if schedule.transpose:
            notes += _transpose_note(axis, one, start, end)
        elif schedule.paddings[i] == "same" and axis.before != axis.after:
            notes.append(
                f"TensorFlow's 'same' pads {axis.before} {start}, {axis.after} {end}: the odd "
                f"{one} goes after the input, not before"
            )
    return notes


def _transpose_note(axis: Axis, one: str, start: str, end: str) -> list[str]:
    full = (axis.n - 1) * axis.stride + axis.kernel_eff
    crop = axis.crop
    dropped_end = full - axis.out - crop
    if crop == 0 and dropped_end == 0:
        return []
    plural = "s" if full != 1 else ""
    formula = f"({axis.n} − 1)·{axis.stride} + {axis.kernel_eff} = {full}"
    kept = f"of the full transposed output, (n − 1)·s + k_eff = {formula} {one}{plural}: "
    changes = []
    if crop:
        changes.append(f"{crop} {one}{'s' if crop != 1 else ''} cut at the {start}")
    if dropped_end > 0:
        changes.append(f"{dropped_end} cut at the {end}")
    elif dropped_end < 0:
        changes.append(f"{-dropped_end} more at the {end}, which no input reaches")
    return [kept + " and ".join(changes) + f" → {axis.out}"]


def step_line(schedule: Schedule, step: int, numbers: Numbers | None) -> tuple[str, list[str]]:
    """``(head, terms)`` of one step: ``output[1, 2] = `` and the sum's terms with its
    result (or, without numbers, what the window covers). The drawing elides terms that
    do not fit."""
    r, c = divmod(step, schedule.output[1])
    head = f"output[{r}, {c}] = "
    taps = schedule.taps(r, c)
    on_input = [q for _, q in taps if q is not None]
    if numbers is None:
        empty = len(taps) - len(on_input)
        what = "inserted zeros or padding" if schedule.transpose else "padding"
        if schedule.pool:
            verb = "max" if schedule.layer == "MaxPooling2D" else "mean"
            text = f"{verb} of the {len(on_input)} input cells under the window"
            if empty:
                text += f" ({empty} on padding, left out)"
            return head, [text]
        text = f"Σ input·kernel over {len(taps)} taps"
        if empty:
            text += f": {len(on_input)} on the input, {empty} on {what} (0)"
        return head, [text]
    value = show(float(numbers.outputs[r, c]))
    if schedule.pool:
        verb = "max" if schedule.layer == "MaxPooling2D" else "mean"
        cells = ", ".join(show(float(numbers.inputs[q])) for q in on_input)
        left_out = len(taps) - len(on_input)
        tail = f" ({left_out} padded cells left out)" if left_out else ""
        return head, [f"{verb}({cells}) = {value}{tail}"]
    assert numbers.kernel is not None
    terms = [_product(numbers, q, k) for k, q in taps]
    return head, [*terms, f"= {value}"]


def _product(numbers: Numbers, cell: tuple[int, int] | None, kernel: tuple[int, int]) -> str:
    x = "0" if cell is None else show(float(numbers.inputs[cell]))
    w = show(float(numbers.kernel[kernel]))  # type: ignore[index]
    if w.startswith(MINUS):
        w = f"({w})"
    if x.startswith(MINUS):
        x = f"({x})"
    return f"{x}{DOT}{w}"


def legend(schedule: Schedule) -> list[tuple[str, str]]:
    """``(colour name, label)`` of what the frame shows."""
    items = [("input", "input")]
    kinds = schedule.rows.kinds + schedule.cols.kinds
    if "p" in kinds:
        items.append(("padding", "padding (zeros)" if not schedule.pool else "padding"))
    if "z" in kinds:
        items.append(("zero", "inserted zeros"))
    items += [("tap", "the window"), ("done", "output"), ("current", "this step")]
    return items


def grid_labels(schedule: Schedule, numbers: Numbers | None) -> tuple[str, str, str]:
    """The labels above the input, kernel and output grids."""
    rows, cols = schedule.rows, schedule.cols
    h, w = schedule.input
    source = f" ({numbers.source})" if numbers is not None else ""
    if schedule.transpose:
        first = f"input {h}×{w}{source}, stretched and padded"
    elif rows.before + rows.after + cols.before + cols.after:
        first = f"input {h}×{w}{source} + padding"
    else:
        first = f"input {h}×{w}{source}"
    if schedule.pool:
        second = "window"
    elif schedule.transpose:
        second = "kernel (as Keras stores it)"
    else:
        second = "kernel"
    oh, ow = schedule.output
    return first, second, f"output {oh}×{ow}"


def values_width(values: np.ndarray) -> int:
    """The most characters a number of ``values`` takes."""
    return max((len(show(float(v))) for v in values.flat), default=1)

"""One frame of ``convkit animate``, drawn with Pillow: the input grid with its padding (and,
transposed, the zeros between its cells), the kernel, the output filling in cell by cell,
the window of the current step with its dilation gaps, and the words (title, formulas,
the step's sum of products).

:func:`frame_layout` decides where every cell goes (the cell size adapts to the sizes);
:class:`FrameDrawer` draws the static parts once and each frame as a copy with the window,
the current output cell and the step's line on top. Colours are exact (the palette of
:data:`COLOURS`): a test finds the window at the pixels the schedule names. Pillow (a
Matplotlib dependency) is imported inside the functions that use it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from convkit.visual import captions

if TYPE_CHECKING:
    from PIL import Image

    from convkit.arithmetic.schedule import Schedule
    from convkit.visual.numbers import Numbers

__all__ = ["COLOURS", "FrameDrawer", "Layout", "frame_layout"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (255, 255, 255),
    "text": (31, 41, 55),
    "muted": (107, 114, 128),
    "grid": (156, 163, 175),
    "input": (219, 234, 254),  # light blue
    "padding": (229, 231, 235),  # gray
    "zero": (254, 240, 170),  # pale yellow: a zero between input cells
    "tap": (251, 146, 60),  # orange: the window on an input cell
    "tap_empty": (254, 215, 170),  # light orange: the window on padding or a zero
    "window": (194, 65, 12),  # dark orange: the window's outline, the kernel's weights
    "kernel": (255, 237, 213),
    "pending": (255, 255, 255),
    "done": (187, 247, 208),  # light green
    "current": (34, 197, 94),  # green
    "current_edge": (21, 128, 61),
}
TEXT_COLOURS = ("text", "muted", "window", "background")
"""The colours text is drawn in (the palette holds their blends with every fill)."""

MARGIN = 20
GAP = 44
MAX_WIDTH = 1600
MAX_GRID_HEIGHT = 720
MAX_CELL = 48
MIN_CELL = 5
TITLE, BODY, SMALL = 22, 15, 13


@functools.cache
def font(size: int, bold: bool = False):
    """DejaVu Sans (Matplotlib ships it) at ``size`` pixels; Pillow's own font without it."""
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Layout:
    """Where everything goes in a frame of ``size`` (width, height) pixels."""

    size: tuple[int, int]
    cell: int
    input_at: tuple[int, int]
    kernel_at: tuple[int, int]
    output_at: tuple[int, int]
    step_y: int
    labels_y: int
    text_y: int
    number_size: int  # pixels of the numbers in cells; 0: no numbers
    weight_size: int  # pixels of the kernel's weights in the window's cells; 0: none
    header: tuple[str, ...]
    footer: tuple[str, ...]

    def _box(self, origin: tuple[int, int], r: int, c: int) -> Box:
        x, y = origin[0] + c * self.cell, origin[1] + r * self.cell
        return x, y, x + self.cell, y + self.cell

    def input_box(self, qr: int, qc: int) -> Box:
        """The pixels of canvas cell ``(qr, qc)`` (the padded, stretched input)."""
        return self._box(self.input_at, qr, qc)

    def kernel_box(self, i: int, j: int) -> Box:
        return self._box(self.kernel_at, i, j)

    def output_box(self, r: int, c: int) -> Box:
        return self._box(self.output_at, r, c)

    @property
    def step_box(self) -> Box:
        """The pixels of the step's line."""
        return 0, self.step_y - 2, self.size[0], self.step_y + BODY + 8


def _number_size(cell: int, widest: int) -> int:
    """The largest font (at most ~45% of the cell) whose widest number fits a cell."""
    size = min(int(cell * 0.42), 20)
    while size >= 7:
        if font(size).getlength("8" * widest) <= cell - 4:
            return size
        size -= 1
    return 0


def frame_layout(schedule: Schedule, numbers: Numbers | None = None) -> Layout:
    """The cell size and the place of every grid and line of text, for ``schedule``."""
    rows, cols = schedule.rows, schedule.cols
    kh, kw = schedule.kernel
    oh, ow = schedule.output
    across = len(cols.cells) + kw + ow
    down = max(len(rows.cells), kh, oh)
    cell = min(MAX_CELL, (MAX_WIDTH - 2 * MARGIN - 2 * GAP) // across, MAX_GRID_HEIGHT // down)
    cell = max(cell, MIN_CELL)
    number_size = weight_size = 0
    if numbers is not None:
        widest = max(
            captions.values_width(numbers.inputs),
            captions.values_width(numbers.outputs),
            1 if numbers.kernel is None else captions.values_width(numbers.kernel),
        )
        number_size = _number_size(cell, widest)
        if numbers.kernel is not None and cell >= 30:
            weight_size = max(8, int(cell * 0.26))
    header = (captions.title(schedule), *captions.subtitle(schedule))
    footer = tuple(captions.formula_lines(schedule))
    step_y = MARGIN + TITLE + 12 + (BODY + 8) * (len(header) - 1) + 6
    labels_y = step_y + BODY + 20
    grids_y = labels_y + BODY + 10
    labels = [font(BODY).getlength(t) for t in captions.grid_labels(schedule, numbers)]
    input_at = (MARGIN, grids_y)
    x = MARGIN + max(len(cols.cells) * cell + GAP, int(labels[0]) + 24)
    kernel_at = (x, grids_y)
    output_at = (x + max(kw * cell + GAP, int(labels[1]) + 24), grids_y)
    text_y = grids_y + down * cell + 18
    height = text_y + 30 + (SMALL + 8) * len(footer) + MARGIN
    widths = [output_at[0] + max(ow * cell, int(labels[2])) + MARGIN, 640]
    widths += [MARGIN * 2 + int(font(BODY).getlength(line)) for line in header[1:]]
    widths += [MARGIN * 2 + int(font(SMALL).getlength(line)) for line in footer]
    width = max(widths)
    width += width % 2  # even sizes, as video encoders want them
    height += height % 2
    return Layout(
        (width, height),
        cell,
        input_at,
        kernel_at,
        output_at,
        step_y,
        labels_y,
        text_y,
        number_size,
        weight_size,
        header,
        footer,
    )


def _centre(box: Box, dy: float = 0.0) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + dy


class FrameDrawer:
    """Draws the frames of one schedule (with its numbers, if any), step by step."""

    def __init__(self, schedule: Schedule, numbers: Numbers | None = None):
        from PIL import Image, ImageDraw

        self.schedule = schedule
        self.numbers = numbers
        self.layout = frame_layout(schedule, numbers)
        self.state = Image.new("RGB", self.layout.size, COLOURS["background"])
        self._draw = ImageDraw.Draw(self.state)
        self._done = -1  # the output cell of the last frame
        self._window: list = []  # the window drawn in the last frame
        self._dirty: list[Box] = []  # boxes changed since the last frame
        self._static()

    # ------------------------------------------------------------------ the static parts

    def _static(self) -> None:
        d, lay, s = self._draw, self.layout, self.schedule
        d.text((MARGIN, MARGIN), lay.header[0], font=font(TITLE, True), fill=COLOURS["text"])
        y = MARGIN + TITLE + 12
        for line in lay.header[1:]:
            d.text((MARGIN, y), line, font=font(BODY), fill=COLOURS["muted"])
            y += BODY + 8
        labels = captions.grid_labels(s, self.numbers)
        for (x, _), label in zip((lay.input_at, lay.kernel_at, lay.output_at), labels, strict=True):
            d.text((x, lay.labels_y), label, font=font(BODY), fill=COLOURS["text"])
        for qr in range(len(s.rows.cells)):
            for qc in range(len(s.cols.cells)):
                self._input_cell(d, qr, qc, None)
        kh, kw = s.kernel
        for i in range(kh):
            for j in range(kw):
                text = None
                if self.numbers is not None and self.numbers.kernel is not None:
                    text = captions.show(float(self.numbers.kernel[i, j]))
                self._cell(d, lay.kernel_box(i, j), "kernel", text, "text")
        oh, ow = s.output
        for r in range(oh):
            for c in range(ow):
                self._cell(d, lay.output_box(r, c), "pending", None, "text")
        self._legend(d)
        y = lay.text_y + 30
        for line in lay.footer:
            d.text((MARGIN, y), line, font=font(SMALL), fill=COLOURS["muted"])
            y += SMALL + 8

    def _legend(self, d) -> None:
        x, y = MARGIN, self.layout.text_y
        for colour, label in captions.legend(self.schedule):
            d.rectangle((x, y + 1, x + 14, y + 15), fill=COLOURS[colour], outline=COLOURS["grid"])
            x += 20
            d.text((x, y), label, font=font(SMALL), fill=COLOURS["text"])
            x += int(font(SMALL).getlength(label)) + 18

    def _cell(
        self,
        d,
        box: Box,
        fill: str,
        text: str | None,
        ink: str,
        *,
        edge: str = "grid",
        width: int = 1,
    ) -> None:
        d.rectangle(box, fill=COLOURS[fill], outline=COLOURS[edge], width=width)
        size = self.layout.number_size
        if text is not None and size:
            d.text(_centre(box), text, font=font(size), fill=COLOURS[ink], anchor="mm")

    def _input_cell(self, d, qr: int, qc: int, weight: tuple[int, int] | None) -> None:
        """Canvas cell ``(qr, qc)``; ``weight`` is the kernel index the window puts there."""
        s, lay = self.schedule, self.layout
        ir, ic = s.rows.cells[qr], s.cols.cells[qc]
        on_input = ir is not None and ic is not None
        kind = "input"
        if not on_input:
            kinds = s.rows.kinds[qr] + s.cols.kinds[qc]
            kind = "padding" if "p" in kinds else "zero"
        text = None
        if self.numbers is not None and on_input:
            text = captions.show(float(self.numbers.inputs[ir, ic]))
        elif self.numbers is not None and not s.pool:  # pooling leaves padding out: no 0
            text = "0"
        ink = "text" if on_input else "muted"
        box = lay.input_box(qr, qc)
        if weight is None:
            self._cell(d, box, kind, text, ink)
            return
        fill = "tap" if on_input else "tap_empty"
        self._cell(d, box, fill, None, ink, edge="window", width=2 if lay.cell >= 12 else 1)
        if text is not None and lay.number_size:
            dy = -lay.cell * 0.1 if lay.weight_size else 0.0
            d.text(
                _centre(box, dy), text, font=font(lay.number_size), fill=COLOURS[ink], anchor="mm"
            )
        if lay.weight_size and self.numbers is not None and self.numbers.kernel is not None:
            w = captions.show(float(self.numbers.kernel[weight]))
            d.text(
                (box[2] - 4, box[3] - 3),
                f"×{w}",
                font=font(lay.weight_size),
                fill=COLOURS["window"],
                anchor="rd",
            )

    # ------------------------------------------------------------------ the frames

    def _output_cell(self, d, step: int, current: bool) -> None:
        r, c = divmod(step, self.schedule.output[1])
        text = None
        if self.numbers is not None:
            text = captions.show(float(self.numbers.outputs[r, c]))
        box = self.layout.output_box(r, c)
        if current:
            self._cell(
                d,
                box,
                "current",
                text,
                "text",
                edge="current_edge",
                width=3 if self.layout.cell >= 12 else 1,
            )
        else:
            self._cell(d, box, "done", text, "text")

    def render(self, step: int) -> list[Box]:
        """Draw the frame of output cell ``step`` (row-major) into :attr:`state` and return
        the boxes that changed since the previous frame. Steps come in increasing order;
        every output cell before ``step`` shows as done. :attr:`state` stays this frame
        until the next call (:meth:`frame` returns a copy)."""
        from PIL import ImageDraw

        if step <= self._done:
            raise ValueError(f"`step` {step} comes after {self._done}: frames go forwards")
        d = self._draw
        changed, self._dirty = self._dirty, []
        for earlier in range(max(self._done, 0), step):  # the last current cell, and skipped ones
            self._output_cell(d, earlier, current=False)
            changed.append(self.layout.output_box(*divmod(earlier, self.schedule.output[1])))
        self._done = step
        s = self.schedule
        r, c = divmod(step, s.output[1])
        window = s.window(r, c)
        for kernel_index, (qr, qc) in window:
            self._input_cell(d, qr, qc, kernel_index)
        area = self._window_area(window)
        d.rectangle(area, outline=COLOURS["window"], width=2)
        changed.append(area)
        self._output_cell(d, step, current=True)
        changed.append(self.layout.output_box(r, c))
        self._step_text(ImageDraw.Draw(self.state), step)
        changed.append(self.layout.step_box)
        self._window = window
        return changed

    def _window_area(self, window) -> Box:
        first = self.layout.input_box(*window[0][1])
        last = self.layout.input_box(*window[-1][1])
        return first[0], first[1], last[2], last[3]

    def restore(self) -> None:
        """Put the input grid back as it was before the window of the last frame (the
        next frame's :meth:`render` counts it as changed)."""
        if not self._window:
            return
        window, self._window = self._window, []
        qrs = [q[0] for _, q in window]
        qcs = [q[1] for _, q in window]
        for qr in range(min(qrs), max(qrs) + 1):  # the window's outline lies inside these
            for qc in range(min(qcs), max(qcs) + 1):
                self._input_cell(self._draw, qr, qc, None)
        self._dirty.append(self._window_area(window))

    def frame(self, step: int) -> Image.Image:
        """The frame of output cell ``step``, as a picture of its own."""
        self.restore()
        self.render(step)
        return self.state.copy()

    def _step_text(self, d, step: int) -> None:
        head, terms = captions.step_line(self.schedule, step, self.numbers)
        lay = self.layout
        d.rectangle(lay.step_box, fill=COLOURS["background"])
        room = lay.size[0] - 2 * MARGIN
        prefix = f"step {step + 1} of {self.schedule.steps}:  "
        text = _fit(prefix + head, terms, room, font(BODY, True))
        d.text((MARGIN, lay.step_y), text, font=font(BODY, True), fill=COLOURS["text"])

    def frames(self, steps: Sequence[int]) -> Iterator[tuple[Image.Image, list[Box]]]:
        """``(state, changed boxes)`` of each step in turn; ``state`` is redrawn in place,
        valid until the next frame."""
        for step in steps:
            self.restore()
            yield self.state, self.render(step)


def _fit(head: str, terms: list[str], room: int, face) -> str:
    """``head`` and the terms joined by `` + `` (the last one, ``= v``, by a space), with
    the middle terms left out (`` + … + ``) when the line is wider than ``room``."""
    result = terms[-1] if terms and terms[-1].startswith("= ") else None
    body = terms[:-1] if result is not None else terms

    def line(kept: list[str], cut: bool) -> str:
        text = " + ".join(kept) + (" + …" if cut else "")
        return head + text + (f" {result}" if result is not None else "")

    full = line(body, False)
    if face.getlength(full) <= room or len(body) <= 1:
        return full
    # The most terms that fit, by bisection: a window of 32x32 taps is 1,024 terms, and
    # measuring the line once per count was a second per frame.
    low, high = 1, len(body) - 1  # line(body[:low]) is the fallback; find the largest fit
    while low < high:
        keep = (low + high + 1) // 2
        if face.getlength(line(body[:keep], True)) <= room:
            low = keep
        else:
            high = keep - 1
    return line(body[:low], True)

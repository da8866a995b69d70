"""``convkit animate`` as one call: a layer's schedule drawn frame by frame and written as a
looping GIF (Pillow), an MP4 (imageio-ffmpeg, the optional extra ``mp4``) and/or one PNG
per frame.

:func:`animate` checks everything before drawing (the output's suffix, the MP4 writer,
the size: an input of at most :data:`MAX_DRAWN` x :data:`MAX_DRAWN`, since every cell
must stay readable), draws at most ``max_frames`` frames (:func:`frame_steps`: the first
rows of the output, then a sample up to the last cell) and writes every file atomically.
Frames are streamed: the GIF is written frame by frame (each one only the rectangle that
changed, in one exact 256-colour palette), never held in memory whole.
"""

from __future__ import annotations

import io
import math
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from convkit.defaults import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS
from convkit.errors import UsageError
from convkit.files import atomic_path, ensure_folder, write_atomic
from convkit.visual.frames import COLOURS, TEXT_COLOURS, Box, FrameDrawer

if TYPE_CHECKING:
    from PIL import Image

    from convkit.arithmetic.schedule import Schedule
    from convkit.visual.numbers import Numbers

__all__ = ["MAX_DRAWN", "Animation", "animate", "frame_steps"]

MAX_DRAWN = 32

MAX_CANVAS_DRAWN = 128
"""Cells across the drawn grid at most: the input with its padding (transposed: with its
inserted zeros), which padding, dilation or stride can make far larger than the input."""
"""The largest input side drawn; larger inputs have their schedule as JSON only."""

HOLD_SECONDS = 3.0
"""How long the last frame (the complete output) stays before the animation loops."""

MP4_HINT = "pip install 'convkit[mp4]'"


@dataclass
class Animation:
    """What :func:`animate` did."""

    schedule: Schedule
    steps: list[int]
    """The output cells drawn, one frame each (row-major indices)."""
    fps: float
    paths: list[Path] = field(default_factory=list)
    """The files written."""
    stale_frames: int = 0
    """Frames of an earlier, longer animation removed from ``frames_dir``."""

    @property
    def capped(self) -> bool:
        return len(self.steps) < self.schedule.steps

    def cap_note(self) -> str | None:
        """What a capped animation shows, or None when it shows every step."""
        if not self.capped:
            return None
        total, shown = self.schedule.steps, len(self.steps)
        ow = self.schedule.output[1]
        first = next((i for i, s in enumerate(self.steps) if s != i), shown)
        rows = first // ow
        head = f"the first {rows} output rows" if rows > 1 else f"the first {first} steps"
        return (
            f"{total:,} steps, {shown} frames drawn: {head}, then {shown - first} spread "
            "evenly up to the last (raise `max_frames` to draw more)"
        )


def frame_steps(total: int, max_frames: int, row: int) -> list[int]:
    """The steps drawn: all of them when ``total <= max_frames``; else the first half of
    the frames (whole rows of ``row`` cells when a row fits) and the rest spread evenly
    over what remains, the last step included."""
    if max_frames < 1:
        raise UsageError(f"`max_frames` must be at least 1, got {max_frames}")
    if total <= max_frames:
        return list(range(total))
    first = max_frames // 2
    if row <= first:
        first -= first % row
    rest = max_frames - first
    remaining = total - first
    sample = [first + (remaining - 1) - (remaining - 1) * k // rest for k in range(rest)]
    return list(range(first)) + sorted(set(sample))


def default_fps(frames: int) -> float:
    """2 frames a second, faster for long animations (one loop in about 30 s)."""
    return float(max(2, min(25, math.ceil(frames / 30))))


# --------------------------------------------------------------------------- the palette


def palette_colours() -> list[tuple[int, int, int]]:
    """Every colour a frame holds: the fills, and each text colour blended with each fill
    in steps of a fifth (the anti-aliased edges of the numbers)."""
    colours = list(dict.fromkeys(COLOURS.values()))
    for fill in list(colours):
        for ink in (COLOURS[name] for name in TEXT_COLOURS):
            for a in (0.2, 0.4, 0.6, 0.8):
                blend = tuple(round(f * (1 - a) + t * a) for f, t in zip(fill, ink, strict=True))
                if blend not in colours:
                    colours.append(blend)  # type: ignore[arg-type]
    return colours[:256]


TRANSPARENT = 255
"""The palette index of a GIF frame's unchanged pixels (no colour of the palette)."""


class Indexed:
    """The frames in the palette's colours, kept up to date box by box (only what changed
    is converted). Colours map exactly to their palette entry (Pillow's own quantizer
    looks colours up at reduced precision and may pick a neighbour); a colour not in the
    palette takes the nearest."""

    def __init__(self) -> None:
        import numpy as np

        self.colours = palette_colours()[:TRANSPARENT]
        flat = [v for colour in self.colours for v in colour]
        self.palette = flat + [0] * (768 - len(flat))
        rgb = np.array(self.colours, dtype=np.int64)
        self._rgb = rgb
        self._index = dict(
            zip(
                ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).tolist(),
                range(len(rgb)),
                strict=True,
            )
        )
        self.image: Image.Image | None = None

    def _lookup(self, key: int) -> int:
        import numpy as np

        rgb = np.array([(key >> 16) & 255, (key >> 8) & 255, key & 255])
        index = int(((self._rgb - rgb) ** 2).sum(axis=1).argmin())
        self._index[key] = index
        return index

    def convert(self, image: Image.Image) -> Image.Image:
        """An RGB image as a "P" image in the palette."""
        import numpy as np
        from PIL import Image

        pixels = np.asarray(image, dtype=np.uint32)
        keys = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
        unique, inverse = np.unique(keys, return_inverse=True)
        table = np.array(
            [self._index.get(k) if k in self._index else self._lookup(k) for k in unique.tolist()],
            dtype=np.uint8,
        )
        indexed = Image.fromarray(table[inverse].reshape(keys.shape))
        indexed.putpalette(self.palette)
        return indexed

    def update(self, state: Image.Image, boxes: list[Box]) -> list[Box]:
        """Bring the indexed frame up to ``state`` in ``boxes``; the boxes, clipped (the
        whole frame the first time)."""
        if self.image is None:
            self.image = self.convert(state)
            return [(0, 0, *state.size)]
        w, h = state.size
        clipped = []
        for x0, y0, x1, y1 in boxes:
            # Drawn boxes hold their right and bottom edges (ImageDraw); crop boxes do not.
            box = (max(x0, 0), max(y0, 0), min(x1 + 1, w), min(y1 + 1, h))
            if box[0] < box[2] and box[1] < box[3]:
                self.image.paste(self.convert(state.crop(box)), box[:2])
                clipped.append(box)
        return clipped


# --------------------------------------------------------------------------- writers


class GifSink:
    """A looping GIF, written frame by frame: each frame after the first is the rectangle
    around what changed, its unchanged pixels transparent (the previous frame shows)."""

    def __init__(self, out: BinaryIO, durations: list[int]):
        self.out = out
        self.durations = durations
        self.count = 0
        self.previous: Any = None  # the last frame's palette indices

    def add(self, indexed: Image.Image, boxes: list[Box]) -> None:
        import numpy as np
        from PIL import GifImagePlugin, Image

        if self.count == 0:
            self.out.write(_gif_header(indexed.size, bytes(indexed.getpalette() or [])))
            part, extra, x0, y0 = indexed, {}, 0, 0
        else:
            x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
            x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
            pixels = np.asarray(indexed)
            region = np.full((y1 - y0, x1 - x0), TRANSPARENT, dtype=np.uint8)
            for bx0, by0, bx1, by1 in boxes:
                new = pixels[by0:by1, bx0:bx1]
                same = new == self.previous[by0:by1, bx0:bx1]
                region[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = np.where(same, TRANSPARENT, new)
            part = Image.fromarray(region)
            part.putpalette(indexed.getpalette() or [])
            extra = {"transparency": TRANSPARENT}
        for chunk in GifImagePlugin.getdata(
            part, offset=(x0, y0), duration=self.durations[self.count], disposal=1, **extra
        ):
            self.out.write(chunk)
        self.count += 1
        self.previous = np.asarray(indexed)

    def close(self) -> None:
        self.out.write(b";")


def _gif_header(size: tuple[int, int], palette: bytes) -> bytes:
    """GIF89a, a 256-colour global palette, and the NETSCAPE extension: loop forever."""
    w, h = size
    return (
        b"GIF89a"
        + w.to_bytes(2, "little")
        + h.to_bytes(2, "little")
        + bytes([0xF7, 0, 0])
        + palette.ljust(768, b"\0")[:768]
        + b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    )


class PngSink:
    """``frame-0001.png``... in a folder (created), each written atomically."""

    def __init__(self, folder: Path, count: int):
        ensure_folder(folder, created_ok=True)
        self.folder = folder
        self.digits = max(4, len(str(count)))
        self.paths: list[Path] = []

    def add(self, indexed: Image.Image) -> None:
        buffer = io.BytesIO()
        indexed.save(buffer, format="PNG", compress_level=3)
        path = self.folder / f"frame-{len(self.paths) + 1:0{self.digits}d}.png"
        write_atomic(path, buffer.getvalue())
        self.paths.append(path)

    def remove_stale(self) -> int:
        """Remove the ``frame-N.png`` of an earlier animation that this one did not
        rewrite (a longer one, or other digits), so the folder holds this animation alone;
        the number removed. Only files of that exact name pattern are touched."""
        written = {p.name for p in self.paths}
        removed = 0
        for entry in self.folder.iterdir():
            if _FRAME_NAME.fullmatch(entry.name) and entry.name not in written:
                if entry.is_file() and not entry.is_symlink():
                    entry.unlink()
                    removed += 1
        return removed


_FRAME_NAME = re.compile(r"frame-\d{4,}\.png")


def _mp4_module() -> Any:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UsageError(
            f"writing MP4 needs the optional package imageio-ffmpeg: {MP4_HINT} (or write a GIF)"
        ) from None
    return imageio_ffmpeg


class Mp4Sink:
    """An H.264 MP4 through imageio-ffmpeg (its wheel carries ffmpeg); the last frame is
    repeated ``hold`` more times."""

    def __init__(self, path: Path, fps: float, hold: int):
        self.path, self.fps, self.hold = path, fps, hold
        self.writer: Any = None
        self.last = b""

    def add(self, state: Image.Image) -> None:
        if self.writer is None:
            self.writer = _mp4_module().write_frames(
                str(self.path),
                state.size,
                fps=self.fps,
                macro_block_size=2,
                ffmpeg_log_level="error",
            )
            self.writer.send(None)
        self.last = state.tobytes()
        self.writer.send(self.last)

    def close(self) -> None:
        if self.writer is None:
            return
        try:
            for _ in range(self.hold):
                self.writer.send(self.last)
        finally:
            self.writer.close()


# --------------------------------------------------------------------------- animate


def _check_outputs(output: Path | None, frames_dir: Path | None) -> str | None:
    """The output's format (``gif`` or ``mp4``), after the checks that need no drawing."""
    if output is None and frames_dir is None:
        raise UsageError(
            "nothing to write: give `output` (a .gif or .mp4 file) or `frames_dir`, or ask "
            "for the schedule as `json`"
        )
    if output is None:
        return None
    kind = output.suffix.lower().lstrip(".")
    if kind not in ("gif", "mp4"):
        raise UsageError(
            f"`output` must be a .gif or .mp4 file, got {str(output)!r} "
            "(one PNG per frame: `frames_dir`)"
        )
    if kind == "mp4":
        _mp4_module()
    return kind


def check_drawable(schedule: Schedule) -> None:
    h, w = schedule.input
    if max(h, w) > MAX_DRAWN:
        raise UsageError(
            f"an input of {h}x{w} is too large to draw: an animation shows at most "
            f"{MAX_DRAWN}x{MAX_DRAWN} cells, each with its number (`input_shape`); its "
            "schedule, at any size, comes as `json`"
        )
    canvas = max(len(schedule.rows.cells), len(schedule.cols.cells))
    if canvas > MAX_CANVAS_DRAWN:
        # Padding, dilation or a transposed stride can make the drawn grid far larger than
        # the input: a picture of gigabytes, drawn for minutes.
        raise UsageError(
            f"the padded input would be {canvas} cells across, too large to draw (at most "
            f"{MAX_CANVAS_DRAWN}): give a smaller `kernel`, `dilation`, `stride` or "
            "`padding`; its schedule, at any size, comes as `json`"
        )


def animate(
    schedule: Schedule,
    *,
    output: Path | None = None,
    frames_dir: Path | None = None,
    numbers: Numbers | None = None,
    fps: float | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> Animation:
    """Draw ``schedule`` (with ``numbers``, or none) and write it to ``output`` (``.gif``
    or ``.mp4``) and/or ``frames_dir``: every frame drawn once, each file written
    atomically."""
    kind = _check_outputs(output, frames_dir)
    check_drawable(schedule)
    if fps is not None and not 0.1 <= fps <= 50:
        raise UsageError(f"`fps` must be between 0.1 and 50, got {fps:g}")
    steps = frame_steps(schedule.steps, max_frames, schedule.output[1])
    result = Animation(schedule, steps, fps or default_fps(len(steps)))
    drawer = FrameDrawer(schedule, numbers)
    indexed = Indexed()
    with ExitStack() as stack:
        gif = mp4 = pngs = None
        if kind == "gif":
            assert output is not None
            delay = max(20, round(100 / result.fps) * 10)
            durations = [delay] * (len(steps) - 1) + [max(delay, int(HOLD_SECONDS * 1000))]
            tmp = stack.enter_context(atomic_path(output))
            gif = GifSink(stack.enter_context(open(tmp, "wb")), durations)
        elif kind == "mp4":
            assert output is not None
            tmp = stack.enter_context(atomic_path(output, suffix=".mp4"))
            mp4 = Mp4Sink(tmp, result.fps, hold=round(HOLD_SECONDS * result.fps))
        if frames_dir is not None:
            pngs = PngSink(frames_dir, len(steps))
        for state, boxes in drawer.frames(steps):
            if mp4 is not None:
                mp4.add(state)
            if gif is not None or pngs is not None:
                changed = indexed.update(state, boxes)
                assert indexed.image is not None
                if gif is not None:
                    gif.add(indexed.image, changed)
                if pngs is not None:
                    pngs.add(indexed.image)
        for sink in (gif, mp4):
            if sink is not None:
                sink.close()
    if output is not None:
        result.paths.append(output)
    if pngs is not None:
        result.paths += pngs.paths
        result.stale_frames = pngs.remove_stale()  # only once every frame is written
    return result


def animate_layer(
    layer: dict[str, Any],
    *,
    output: Path | None = None,
    frames_dir: Path | None = None,
    numbers: bool = False,
    image: str | None = None,
    weights: str | None = None,
    seed: int | None = None,
    fps: float | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Animation:
    """What ``convkit animate`` does, as one call: the schedule of ``layer`` (the keyword
    arguments of :func:`~convkit.arithmetic.schedule.layer_schedule`), its numbers when
    asked for (``numbers``, or any of ``image``, ``weights`` — a ``convkit filter``
    kernel, which also gives the kernel size when ``layer`` has none — and ``seed``),
    drawn and written (:func:`animate`). Everything is checked before anything is drawn
    or read: the outputs, the layer, the size, the kernel, no output overwriting an input.
    """
    from convkit.arithmetic.schedule import layer_schedule
    from convkit.image.outputs import refuse_overwriting
    from convkit.visual.numbers import kernel_values, layer_numbers

    _check_outputs(output, frames_dir)
    if weights is not None and layer.get("pool") is not None:
        raise UsageError(
            "a kernel's values (`weights`) do not apply to a pooling window, which has no "
            "weights. "
            f"Received: weights={weights!r}"
        )
    matrix = None
    if weights is not None:
        matrix = kernel_values(weights, layer.get("kernel"))
        layer = {**layer, "kernel": layer.get("kernel") or matrix.shape}
    schedule = layer_schedule(**layer)
    check_drawable(schedule)
    reads = [] if image is None else [(Path(image), "image")]
    if weights is not None and Path(weights).is_file():
        reads.append((Path(weights), "kernel file"))
    refuse_overwriting([p for p in (output,) if p is not None], reads)
    values = None
    if numbers or image is not None or weights is not None or seed is not None:
        values = layer_numbers(
            schedule, image=image, kernel=matrix, seed=seed or 0, max_pixels=max_pixels
        )
    return animate(
        schedule,
        output=output,
        frames_dir=frames_dir,
        numbers=values,
        fps=fps,
        max_frames=max_frames,
    )

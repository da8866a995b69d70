"""``convkit animate``: one layer's arithmetic, drawn frame by frame.

The single-layer flags of ``shape-calc`` (parsed by the same
:func:`~convkit.arithmetic.sizes.parse_layer_sizes`, checked by the same
:func:`~convkit.arithmetic.explain.single_layer`), then one core call: the schedule as JSON
(:func:`~convkit.arithmetic.schedule.layer_schedule`) or the animation
(:func:`~convkit.visual.animation.animate_layer`). At module level only Typer; NumPy and
Pillow come when drawing, OpenCV only with ``--image``, TensorFlow never.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convkit.cli import report
from convkit.defaults import DEFAULT_MAX_FRAMES
from convkit.errors import UsageError

_LAYER = "Layer (as shape-calc)"
_NUMBERS = "Numbers"
_OUT = "Output"

_InputSize = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        help="Input size: N (NxN) or HxW, one channel; at most 32x32 to draw (any with --json).",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]
_KernelSize = Annotated[
    str | None,
    typer.Option(
        "--kernel-size",
        help="Kernel (or pooling window) size: K or KHxKW \\[default: -k's size; 2 with --pool].",
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
_Padding = Annotated[
    str | None,
    typer.Option(
        "--padding",
        "-p",
        help="valid, same (TensorFlow's: the odd row and column after the input), full "
        "(k−1 on each side), a number P or a pair PHxPW of zeros on each side "
        "\\[default: valid]. Pooling: valid or same.",
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
_Transpose = Annotated[
    bool,
    typer.Option(
        "--transpose",
        help="A transposed convolution, drawn as the direct convolution it equals over the "
        "input stretched with zeros.",
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
_Pool = Annotated[
    str | None,
    typer.Option(
        "--pool",
        help="A pooling window instead of a kernel: max or avg (padded cells are left out, "
        "as TensorFlow does).",
        metavar="max|avg",
        show_default=False,
        rich_help_panel=_LAYER,
    ),
]
_Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="The animation: FILE.gif (looping) or FILE.mp4 (needs the mp4 extra: "
        "pip install 'convkit\\[mp4]').",
        show_default=False,
        rich_help_panel=_OUT,
    ),
]
_FramesDir = Annotated[
    Path | None,
    typer.Option(
        "--frames-dir",
        help="Also (or only) one PNG per frame in this folder: frame-0001.png, ...",
        show_default=False,
        rich_help_panel=_OUT,
    ),
]
_Fps = Annotated[
    float | None,
    typer.Option(
        "--fps",
        help="Frames per second \\[default: 2, faster for long animations: a loop in ~30 s]; "
        "the last frame stays 3 s.",
        show_default=False,
        rich_help_panel=_OUT,
    ),
]
_MaxFrames = Annotated[
    int,
    typer.Option(
        "--max-frames",
        help="Draw at most this many steps: beyond, the first output rows and an even "
        "sample up to the last.",
        rich_help_panel=_OUT,
    ),
]
_Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the schedule (every output cell's taps) as JSON instead of drawing.",
        rich_help_panel=_OUT,
    ),
]
_Numbers = Annotated[
    bool,
    typer.Option(
        "--numbers",
        help="Values in the cells and each step's sum of products (seeded small integers "
        "unless --image / -k).",
        rich_help_panel=_NUMBERS,
    ),
]
_Image = Annotated[
    str | None,
    typer.Option(
        "--image",
        help="Take the input's values from this photo: gray, cropped and resized to --input.",
        show_default=False,
        rich_help_panel=_NUMBERS,
    ),
]
_Weights = Annotated[
    str | None,
    typer.Option(
        "--kernel",
        "-k",
        help="The kernel's values: any kernel of convkit filter (sobel-x, box, "
        '"1,0,-1;2,0,-2;1,0,-1", a file), of --kernel-size.',
        show_default=False,
        rich_help_panel=_NUMBERS,
    ),
]
_Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        min=0,
        help="Seed of the small integers \\[default: 0].",
        show_default=False,
        rich_help_panel=_NUMBERS,
    ),
]


def animate(
    input_shape: _InputSize = None,
    kernel: _KernelSize = None,
    stride: _Stride = None,
    padding: _Padding = None,
    dilation: _Dilation = None,
    transpose: _Transpose = False,
    output_padding: _OutputPadding = None,
    pool: _Pool = None,
    output: _Output = None,
    frames_dir: _FramesDir = None,
    fps: _Fps = None,
    max_frames: _MaxFrames = DEFAULT_MAX_FRAMES,
    json_: _Json = False,
    numbers: _Numbers = False,
    image: _Image = None,
    weights: _Weights = None,
    seed: _Seed = None,
) -> None:
    """Watch one layer's arithmetic: the kernel sliding over the padded input,
    the output filling in, the formula with the numbers.

    Examples:

      convkit animate -i 5 --kernel-size 3 -p 1 --numbers -o conv.gif
      convkit animate -i 7 --kernel-size 3 -s 2 -p same --dilation 1 -o s2.gif
      convkit animate -i 3 --kernel-size 3 -s 2 --transpose --numbers -o up.gif
      convkit animate -i 6 --pool max -p same --numbers --frames-dir frames/
      convkit animate -i 8 -k sobel-x --image cat.png -o sobel.mp4
      convkit animate -i 512 --kernel-size 3 -p same --json > schedule.json

    The layer takes shape-calc's flags with their meaning; --pool max|avg
    makes it a pooling window. Each frame shows the input with its padding
    (transposed: with the zeros inserted between its cells), the window with
    its dilation gaps, the output so far and the current step's sum. --json
    prints the schedule instead: for every output cell, each tap of the window
    (the kernel index and the input cell it multiplies, or null on padding);
    the sum of input · kernel over the taps (pooling: their max or mean) is
    exactly as Keras computes the layer.
    """
    from convkit.arithmetic.sizes import parse_dims, parse_layer_sizes

    if input_shape is None:
        raise UsageError("`input_shape` is missing: give the input size, e.g. `input_shape` 5")
    if weights is not None and kernel is None and weights.strip().isdigit():
        # shape-calc's -k is the kernel's size; here it is its values: a 1x1 kernel.
        raise UsageError(
            f"-k {weights.strip()} is a kernel's values (a 1x1 kernel holding "
            f"{weights.strip()}), not its size: give --kernel-size {weights.strip()}, or add "
            "--kernel-size 1 for that 1x1 kernel"
        )
    layer = {
        "input_shape": parse_dims(input_shape, "input_shape"),
        **parse_layer_sizes(kernel, stride, padding, dilation, output_padding),
        "transpose": transpose,
        "pool": None if pool is None else pool.strip().lower(),
    }
    if json_:
        drawing = {
            "--output": output is not None,
            "--frames-dir": frames_dir is not None,
            "--numbers": numbers,
            "--image": image is not None,
            "--kernel": weights is not None,
            "--seed": seed is not None,
            "--fps": fps is not None,
        }
        given = [flag for flag, on in drawing.items() if on]
        if given:
            raise UsageError(
                f"--json prints the schedule instead of drawing: {', '.join(given)} "
                + ("draws (leave it out" if len(given) == 1 else "draw (leave them out")
                + ", or --json)"
            )
        from convkit.arithmetic.schedule import layer_schedule

        _write_json(layer_schedule(**layer).iter_json())
        return
    from convkit.visual.animation import animate_layer

    result = animate_layer(
        layer,
        output=output,
        frames_dir=frames_dir,
        numbers=numbers,
        image=image,
        weights=weights,
        seed=seed,
        fps=fps,
        max_frames=max_frames,
    )
    note = result.cap_note()
    if note:
        report.note(report.for_user(note))
    if result.stale_frames:
        report.note(
            f"removed {result.stale_frames} frame(s) of an earlier, longer animation "
            f"from {frames_dir}"
        )
    where = [str(output)] if output is not None else []
    if frames_dir is not None:
        where.append(f"{len(result.steps)} PNGs in {frames_dir}")
    report.note(
        f"{result.schedule.layer}: {len(result.steps)} frames at {result.fps:g} fps -> "
        + ", ".join(where)
    )


def _write_json(pieces) -> None:
    """The schedule's JSON on stdout, piece by piece (a closed pipe ends quietly)."""
    import sys

    from convkit.errors import OutputClosed

    try:
        for piece in pieces:
            sys.stdout.write(piece)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosed() from None

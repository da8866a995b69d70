"""Grad-CAM heat maps drawn over the photo (``convkit explain``).

One picture per image and class: on the left the photo as it is, on the right the photo
with the heat map over it (a colour map, 0 = no evidence for the class, 1 = the strongest
evidence in this image), a colour bar as its legend, and the class name and its
probability in the title. Drawn with matplotlib's Agg canvas on a
``matplotlib.figure.Figure`` of its own (no pyplot, no global state), so any thread may
draw; returned as an 8-bit BGR array that the output plan encodes in any format.
"""

from __future__ import annotations

import numpy as np

COLORMAP = "jet"
"""Blue (no evidence) through green and yellow to red (the strongest): Grad-CAM's usual."""

ALPHA = 0.45
"""How much of the heat map covers the photo."""

_FIG_W = 10.0  # inches, both panels
_DPI = 100


def display_rgb(image: np.ndarray) -> np.ndarray:
    """An image as :func:`convkit.image.codec.read_image` gives it (gray, BGR or BGRA;
    8- or 16-bit) as 8-bit RGB for drawing (alpha dropped)."""
    from convkit.nn.inputs import eight_bit_scale, model_input

    rgb = model_input(image, 3) * np.float32(eight_bit_scale(image.dtype))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def heatmap_picture(
    image: np.ndarray, heat: np.ndarray, *, title: str, subtitle: str = ""
) -> np.ndarray:
    """The picture of one Grad-CAM map: ``image`` (as read) beside the same image with
    ``heat`` (0..1, the image's height and width) over it; BGR uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rgb = display_rgb(image)
    h, w = rgb.shape[:2]
    panel_h = min(max(_FIG_W / 2 * h / max(w, 1), 2.0), 8.0)
    fig = Figure(figsize=(_FIG_W, panel_h + 1.3), dpi=_DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.imshow(rgb, interpolation="antialiased")
    left.set_title("image", fontsize=10, color="#555555")
    right.imshow(rgb, interpolation="antialiased")
    shown = right.imshow(
        heat, cmap=COLORMAP, vmin=0.0, vmax=1.0, alpha=ALPHA, interpolation="bilinear"
    )
    right.set_title("Grad-CAM over the image", fontsize=10, color="#555555")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, ax=right, fraction=0.046, pad=0.03)
    if bar.solids is not None:
        bar.solids.set_alpha(1.0)  # the legend's colours at full strength
    # A wide, short picture leaves the bar too short for the long label.
    label = "evidence for the class (1 = strongest in this image)"
    bar.set_label(label if panel_h >= 3.5 else "evidence (1 = strongest)", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    if subtitle:
        fig.supxlabel(subtitle, fontsize=8, color="#555555")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[:, :, 2::-1])

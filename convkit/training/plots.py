"""The pictures of a training run, drawn with matplotlib's Agg canvas (no display needed).

matplotlib is imported inside the functions, and ``pyplot`` not at all: each figure is a
``matplotlib.figure.Figure`` on its own Agg canvas, so no global backend is switched and the
functions are safe to call from any thread. Each function returns PNG bytes; the
caller writes them (atomically, with :func:`convkit.files.write_atomic`).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from convkit.training.records import EpochRecord

_GREEN = "#1a7f37"
_RED = "#cf222e"
_TRAIN = "#0969da"
_VAL = "#bc4c00"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # Class names in a script the font lacks (CJK ...) draw as boxes; Matplotlib would
        # add a warning line per missing glyph and figure to the run's diagnostics.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def curves_png(history: Sequence[EpochRecord], title: str = "") -> bytes:
    """Loss and accuracy per epoch, training vs validation, side by side."""
    return _png(curves_figure(history, title))


def curves_figure(history: Sequence[EpochRecord], title: str = ""):
    """The figure of :func:`curves_png`: legends under the plots, the best validation
    epoch labelled in the emptier half of the accuracy axis."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = _figure(11, 4.3)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [r.epoch for r in history]
    marker = "o" if len(history) <= 30 else None
    for ax, key, label in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        train = [getattr(r, key) for r in history]
        val = [getattr(r, f"val_{key}") for r in history]
        ax.plot(epochs, train, color=_TRAIN, marker=marker, label=f"training {key}")
        if any(v is not None for v in val):
            ax.plot(
                epochs,
                [np.nan if v is None else v for v in val],
                color=_VAL,
                marker=marker,
                linestyle="--",
                label=f"validation {key}",
            )
        partial = [r for r in history if not r.complete]
        for r in partial:  # an epoch cut short by Ctrl-C: hollow markers, named on the axis
            ax.scatter(
                [r.epoch], [getattr(r, key)], s=60, facecolors="white", edgecolors=_TRAIN, zorder=3
            )
            if getattr(r, f"val_{key}") is not None:
                ax.scatter(
                    [r.epoch],
                    [getattr(r, f"val_{key}")],
                    s=60,
                    facecolors="white",
                    edgecolors=_VAL,
                    zorder=3,
                )
        ax.set_title(f"{label} per epoch")
        ax.set_xlabel(
            "epoch"
            + "".join(f"  (epoch {r.epoch} stopped after {r.images:,} images)" for r in partial)
        )
        ax.set_ylabel(key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_acc.set_ylim(0, 1.02)
    scored = [r for r in history if r.val_accuracy is not None]
    if scored:
        best = max(scored, key=lambda r: r.val_accuracy)
        ax_acc.scatter(
            [best.epoch], [best.val_accuracy], s=140, facecolors="none", edgecolors=_VAL, zorder=3
        )
        first, last = epochs[0], epochs[-1]
        side = "right" if best.epoch > (first + last) / 2 else "left"
        # Into the emptier half of the axis: above a low point, below a high one.
        rise = 28 if best.val_accuracy < 0.5 else -28
        label = ax_acc.annotate(
            f"best validation {best.val_accuracy:.1%} (epoch {best.epoch})",
            (best.epoch, best.val_accuracy),
            textcoords="offset points",
            xytext=(-10 if side == "right" else 10, rise),
            va="bottom" if rise > 0 else "top",
            ha=side,
            fontsize=8,
            color=_VAL,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": _VAL, "alpha": 0.9},
            arrowprops={"arrowstyle": "-", "color": _VAL, "lw": 0.8},
        )
    else:
        label = None
    for ax in (ax_loss, ax_acc):  # under each plot: never over a curve or the label
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        fig.suptitle(title)
    if label is not None:
        _clear_of_points(fig, ax_acc, label, history)
    return fig


def _clear_of_points(fig, ax, label, history: Sequence[EpochRecord]) -> None:
    """Move the annotation ``label`` to the first of a few places (toward the emptier half
    first, then the other, then farther) where its box crosses no curve and stays inside
    the axes."""
    points = []
    for key in ("accuracy", "val_accuracy"):  # the curves, sampled between their points
        xy = [(r.epoch, getattr(r, key)) for r in history if getattr(r, key) is not None]
        points += xy[:1] + [
            (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False)
            for t in np.linspace(0, 1, 25)[1:]
        ]
    dx, rise = label.xyann
    for dy in (rise, -rise, rise // 2, -rise // 2, 2 * rise, -2 * rise, 3 * rise, -3 * rise):
        for x in (dx, -dx):
            label.xyann = (x, dy)
            label.set_va("bottom" if dy > 0 else "top")
            label.set_ha("left" if x > 0 else "right")
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            box = label.get_bbox_patch().get_window_extent(renderer)
            inside = ax.get_window_extent(renderer)
            fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
            if fits and not any(box.contains(*xy) for xy in ax.transData.transform(points)):
                return
    label.xyann = (dx, rise)
    label.set_va("bottom" if rise > 0 else "top")
    label.set_ha("left" if dx > 0 else "right")


def confusion_png(confusion: np.ndarray, class_names: Sequence[str], *, title: str = "") -> bytes:
    """Rows: true class; columns: predicted. Colour: share of the true class; text: counts."""
    from matplotlib.ticker import PercentFormatter

    k = len(class_names)
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape, float), where=totals > 0)
    size = 8 if k <= 12 else 10 if k <= 30 else 16
    fig = _figure(size + 1.5, size)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    label_size = 10 if k <= 12 else 8 if k <= 30 else 5
    names = [short_name(n, 28) for n in class_names]
    ax.set_xticks(
        range(k),
        labels=names,
        rotation=45 if k <= 30 else 90,
        ha="right",
        rotation_mode="anchor",
        fontsize=label_size,
    )
    ax.set_yticks(range(k), labels=names, fontsize=label_size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        cell = 9 if k <= 12 else 6
        for i in range(k):
            for j in range(k):
                count = int(confusion[i, j])
                if count == 0 and i != j:
                    continue
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=cell,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    bar.set_label("share of the true class")
    total = int(confusion.sum())
    accuracy = np.trace(confusion) / total if total else 0.0
    heading = f"Confusion matrix: {total:,} test images, accuracy {accuracy:.1%}"
    ax.set_title(f"{title}\n{heading}" if title else heading)
    return _png(fig)


def short_name(name: str, limit: int = 18) -> str:
    """A class name short enough for a grid cell's title (an ellipsis for the rest)."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def prediction_grid_png(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    *,
    count: int = 40,
    columns: int = 8,
    seed: int = 0,
) -> bytes:
    """A grid of test images titled with the prediction (green: right, red: wrong).

    The mistakes come first, the most confident ones: a grid of right answers teaches
    nothing (see :func:`grid_choice`)."""
    n = len(images)
    count = min(count, n)
    chosen = grid_choice(labels, predicted, probs, count, seed=seed)
    wrong_total = int(np.sum(np.asarray(labels) != np.asarray(predicted)))
    rows = max(1, int(np.ceil(count / columns)))
    fig = _figure(columns * 1.55, rows * 1.85 + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    right = 0
    for ax, index in zip(axes, chosen, strict=False):
        true, pred = int(labels[index]), int(predicted[index])
        ok = true == pred
        right += ok
        picture = np.asarray(images[index])
        if picture.ndim == 3 and picture.shape[2] == 1:  # a gray model's images
            ax.imshow(picture[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="bicubic")
        else:
            ax.imshow(picture, interpolation="bicubic")
        text = f"{short_name(class_names[pred])} {probs[index, pred]:.0%}"
        if not ok:
            text += f"\n(true: {short_name(class_names[true])})"
        ax.set_title(text, fontsize=8, color=_GREEN if ok else _RED)
        for spine in ax.spines.values():
            spine.set_edgecolor(_GREEN if ok else _RED)
            spine.set_linewidth(2)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[count:]:
        ax.axis("off")
    shown_wrong = count - right
    heading = (
        f"{wrong_total:,} of {n:,} test images wrong. Shown: the {shown_wrong} most confident "
        f"mistakes (red, predicted and true class) and {right} right (green)"
    )
    if wrong_total == 0:
        heading = f"All {n:,} test images right. Shown: {right} (green: the predicted class)"
    fig.suptitle(heading, fontsize=11)
    return _png(fig, dpi=85)


def grid_choice(
    labels: np.ndarray,
    predicted: np.ndarray,
    probs: np.ndarray,
    count: int,
    *,
    seed: int = 0,
    mistakes_share: float = 0.75,
) -> np.ndarray:
    """Which test images a prediction grid shows: up to ``mistakes_share`` of ``count``
    are mistakes, the most confident first (the model sure and wrong); random right
    answers fill the rest, so the grid still shows what the model gets right."""
    labels = np.asarray(labels).ravel()
    predicted = np.asarray(predicted).ravel()
    wrong = np.flatnonzero(labels != predicted)
    confidence = np.asarray(probs)[wrong, predicted[wrong]]
    wrong = wrong[np.argsort(-confidence, kind="stable")]
    right = np.flatnonzero(labels == predicted)
    take_wrong = min(len(wrong), max(int(count * mistakes_share), count - len(right)))
    take_right = min(len(right), count - take_wrong)
    rng = np.random.default_rng(seed)
    extra = rng.choice(right, size=take_right, replace=False) if take_right else right[:0]
    return np.concatenate([wrong[:take_wrong], np.sort(extra)]).astype(int)

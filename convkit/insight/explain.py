"""``convkit explain``: Grad-CAM heat maps of many images, on the executor.

Like ``predict`` (:meth:`convkit.training.predict.Classifier.classify`): images are read
and prepared as the model was trained on ``jobs`` threads (:meth:`Executor.map`), go
through the Grad-CAM model together in batches on the calling thread, and each image's
pictures (and ``.npy`` maps) are drawn and written on the ``jobs`` threads
(:meth:`Executor.submit`) while the next batch is computed. Every output path is decided
and checked before the first image is read (:class:`~convkit.image.outputs.OutputPlan`:
atomic writes, no two results on one file, no input or the model overwritten).

On a cluster (a scheduler in the batch options) each image is one task instead
(:mod:`convkit.insight.cluster_explain`).

Per image, the classes explained are the ``top_k`` likeliest (default: the top
prediction) or the one named ``class_name``. The heat map is Grad-CAM at the layer's
resolution (:mod:`convkit.insight.gradcam`), brought to the *image's* resolution
(bilinear), and drawn over the photo (:mod:`convkit.insight.heatmap`); ``raw`` saves it as
float32 ``.npy`` (its values, not normalised).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.engine.executor import BatchOptions, BatchReport
from convkit.errors import UsageError
from convkit.image.sources import sources_scope

if TYPE_CHECKING:
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import Source
    from convkit.insight.gradcam import GradCam
    from convkit.training.predict import Classifier

MAX_BATCH = 32
"""At most this many images go through the Grad-CAM model at once (its gradients too)."""


@dataclass(frozen=True)
class Explained:
    """One heat map written: the image, the class, its probability, the files."""

    path: str
    class_name: str
    index: int
    rank: int  # 1: the top prediction
    probability: float
    picture: str
    raw: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "class": self.class_name,
            "index": self.index,
            "rank": self.rank,
            "probability": round(self.probability, 6),
            "picture": self.picture,
            "raw": self.raw,
        }


def file_part(name: str) -> str:
    """A class name as a part of a file name: runs of anything but letters, digits, ``.``
    and ``-`` become ``_``."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "class"


@dataclass(frozen=True)
class Explanation:
    """What to explain: ``class_name`` for every image, or its ``top_k`` likeliest."""

    class_name: str | None = None
    top_k: int = 1
    raw: bool = False

    def check(self, names: Sequence[str]) -> int | None:
        """The index of ``class_name`` (None when not given); a :class:`UsageError` for a
        name the model does not have, or for both ``class_name`` and ``top_k``."""
        if self.top_k < 1:
            raise UsageError(f"`top_k` must be at least 1, got {self.top_k}")
        if self.class_name is None:
            return None
        if self.top_k != 1:
            raise UsageError("give either `class_name` or `top_k`, not both")
        if self.class_name not in names:
            from convkit.insight.models import listed

            raise UsageError(
                f"`class_name`: the model has no class {self.class_name!r} (its classes: "
                f"{listed(list(names))})"
            )
        return list(names).index(self.class_name)

    def whats(self, classes: int) -> list[str]:
        """The ``{what}`` of each picture per image."""
        if self.class_name is not None:
            return [f"gradcam-{file_part(self.class_name)}"]
        k = min(self.top_k, classes)
        return ["gradcam"] if k == 1 else [f"gradcam-top{r}" for r in range(1, k + 1)]


def open_gradcam(classifier: Classifier, layer: str | None) -> tuple[GradCam, bool]:
    """``(gradcam, chosen)``: Grad-CAM at the layer named ``layer``, or at the model's last
    convolution (``chosen`` False: the default)."""
    from convkit.insight.gradcam import gradcam_model
    from convkit.insight.models import conv_layers, find_layer

    if layer is not None:
        return gradcam_model(classifier.model, find_layer(classifier.model, layer)), True
    last = conv_layers(classifier.model, path=classifier.path)[-1]
    return gradcam_model(classifier.model, last), False


def plan_outputs(
    sources: Sequence[Source], plan: OutputPlan, whats: list[str], raw: bool, model: Path
) -> tuple[dict, dict]:
    """``(targets, raws)``: every picture's :class:`~convkit.image.outputs.Target` and every
    ``.npy`` path, checked up front (no input and no model file replaced)."""
    from convkit.image.outputs import refuse_overwriting

    if raw and plan.out_dir is None:
        raise UsageError("`raw` writes one .npy per image and class: it needs `out_dir` DIR")
    targets = plan.validate(sources, whats)
    raws = {key: t.path.with_suffix(".npy") for key, t in targets.items()} if raw else {}
    reads = [(model, "model file")]
    if not plan.in_place:
        reads += [(Path(s.path), "input image") for s in sources if s.path is not None]
    writes = [t.path for t in targets.values() if t.path is not None]
    refuse_overwriting([*writes, *raws.values()], reads)
    return targets, raws


def explain_images(
    sources: Sequence[Source],
    classifier: Classifier,
    gradcam: GradCam,
    plan: OutputPlan,
    explanation: Explanation,
    *,
    batch: BatchOptions | None = None,
    dry_run: bool = False,
) -> BatchReport[list[Explained]] | BatchReport[list[str]]:
    """Grad-CAM pictures of every source, written where ``plan`` says; per input, the
    :class:`Explained` heat maps (a dry run: the files it would write, reading nothing)."""
    fixed = explanation.check(classifier.class_names)
    whats = explanation.whats(len(classifier.class_names))
    targets, raws = plan_outputs(sources, plan, whats, explanation.raw, classifier.path)

    def outputs_of(i: int, targets=targets, raws=raws) -> list[Path | None]:  # the whole list's
        return [targets[(i, w)].path for w in whats] + [raws[(i, w)] for w in whats if raws]

    scope = sources_scope(sources, batch, outputs_of, dry_run=dry_run)  # a shard, skip, manifest
    if dry_run:
        report: BatchReport[list[str]] = BatchReport(inputs=len(sources), results=[])
        for i in range(len(sources)):
            files = [targets[(i, w)].display for w in whats]
            report.results.append(files + [str(raws[(i, w)]) for w in whats if (i, w) in raws])
        return scope.planned(report)
    sources, targets, raws = scope.pick(sources), scope.rekey(targets), scope.rekey(raws)
    if scope.options.on_cluster:  # each image a task; each worker loads the model once
        from convkit.insight.cluster_explain import explain_on_cluster

        whole = (targets, raws, whats, plan.out_dir is not None)
        with scope:
            report = explain_on_cluster(
                sources,
                classifier,
                gradcam.layer,
                whole,
                fixed,
                scope.options,
                writer=_Writer,
                outputs=_files_written,
            )
        return scope.finish(report)
    if fixed is not None:
        choose: Callable[[np.ndarray], np.ndarray] = lambda p: np.full((len(p), 1), fixed)  # noqa: E731
    else:
        choose = lambda p: np.argsort(-p, axis=1, kind="stable")[:, : len(whats)]  # noqa: E731
    writer = _Writer(sources, classifier, gradcam, targets, raws, whats, plan.out_dir is not None)
    per_call = max(1, min(MAX_BATCH, classifier.per_call))
    from convkit.image.codec import read_image

    def read(index: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(sources[index], max_pixels=classifier.max_pixels)
        return image, classifier.prepare_array(image)

    options = scope.options
    with scope, options.executor(len(sources), name_input=lambda i: sources[i].display) as executor:
        ready: list[tuple[int, np.ndarray, np.ndarray]] = []
        window = max(2 * executor.jobs, per_call)
        for index, (image, x) in executor.map(read, range(len(sources)), window=window):
            ready.append((index, image, x))
            if len(ready) >= per_call:
                _run_batch(executor, gradcam, choose, writer, ready)
                ready = []
            executor.settle()
        if ready and not executor.stopped:
            _run_batch(executor, gradcam, choose, writer, ready)
    return scope.finish(executor.report)


def _run_batch(executor, gradcam: GradCam, choose, writer: _Writer, ready) -> None:
    cams, classes, probs = gradcam.explain(np.stack([x for _, _, x in ready]), choose)
    for j, (index, image, _) in enumerate(ready):
        executor.submit(
            index, writer, index, image, cams[j], classes[j], probs[j], outputs=_files_written
        )
    # Draw this batch while the next one is computed, but no further behind (memory).
    executor.settle(block=True, keep=len(ready) + executor.jobs)


def _files_written(done: list[Explained]) -> int:
    return sum(1 + (e.raw is not None) for e in done)


@dataclass(frozen=True)
class _Writer:
    """Draws and writes the heat maps of one image (on a worker thread)."""

    sources: Sequence[Source]
    classifier: Classifier
    gradcam: GradCam
    targets: dict
    raws: dict
    whats: list[str]
    create_folders: bool

    def __call__(self, index, image, cams, classes, probs) -> list[Explained]:
        from convkit.files import save_npy
        from convkit.image.pipeline import write_image
        from convkit.insight.gradcam import normalised, over_picture
        from convkit.insight.heatmap import heatmap_picture
        from convkit.training.preparation import content_box

        source, names = self.sources[index], self.classifier.class_names
        height, width = image.shape[:2]
        box = content_box(height, width, self.classifier.preparation)
        input_size = (self.classifier.shape.height, self.classifier.shape.width)
        top = int(np.argmax(probs))
        done = []
        for what, cam, c in zip(self.whats, cams, classes, strict=True):
            c = int(c)
            heat = over_picture(cam, height, width, input_size=input_size, box=box)
            raw = self.raws.get((index, what))
            if raw is not None:
                save_npy(raw, heat)
            place = "top prediction" if c == top else f"top prediction: {names[top]}"
            subtitle = f"{source.display}  |  Grad-CAM on layer {self.gradcam.layer}  |  {place}"
            title = f"{names[c]}: {probs[c]:.1%}"
            picture = heatmap_picture(image, normalised(heat), title=title, subtitle=subtitle)
            target = self.targets[(index, what)]
            write_image(target, picture, create_folders=self.create_folders)
            done.append(
                Explained(
                    source.display,
                    names[c],
                    c,
                    int(np.sum(probs > probs[c])) + 1,
                    float(probs[c]),
                    target.display,
                    None if raw is None else str(raw),
                )
            )
        return done

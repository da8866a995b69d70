"""Where each image's feature maps go, decided up front, and writing them.

:func:`plan_targets` names every output of the run before the first image is read (no two
outputs on one file, no input overwritten: :class:`~convkit.image.outputs.OutputPlan`);
:class:`MapWriter` writes one image's pictures and ``.npy`` tensors to those targets,
atomically (:mod:`convkit.files`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convkit.engine.executor import BatchReport
from convkit.errors import ImageSizeError, UsageError
from convkit.image.outputs import refuse_overwriting
from convkit.nn.inputs import Prepared, input_picture
from convkit.nn.render import Renderer, layer_whats, no_maps_text, output_whats

if TYPE_CHECKING:
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import Source
    from convkit.nn.network import Network
    from convkit.nn.render import RenderOptions


def plan_targets(
    sources: Sequence[Source], network: Network, plan: OutputPlan, options: RenderOptions
) -> dict:
    """Every output path of the run, decided (and checked for collisions) up front.

    Returns ``{(source_index, what): Target}`` for the pictures and ``{(source_index,
    ("raw", layer)): Path}`` for the ``.npy`` tensors, which take the name the template
    gives the layer, with a ``.npy`` suffix. No output may replace a file the run reads
    (:func:`~convkit.image.outputs.refuse_overwriting`, by device and inode): an input
    image (unless ``plan.in_place``), the spec file, a kernel or weights file.
    """
    images, raws, skipped = output_whats(network, options)
    if not images and not raws:
        if len(skipped) == len(network.outputs):
            their = "their" if len(skipped) > 1 else "its"
            raise UsageError(
                f"nothing to write: {no_maps_text(skipped)}; add `raw` to save {their} values"
            )
        raise UsageError("nothing to write: `no_maps` and `no_montage` leave no output (add `raw`)")
    if raws and plan.out_dir is None:
        raise UsageError("`raw` writes one .npy per layer and image: it needs `out_dir` DIR")
    montages = [w for w in images if w.endswith("-montage")]
    single = plan.output is not None and plan.out_dir is None and len(sources) == 1
    if single and montages and len(images) - len(montages) == 1:
        raise UsageError(
            f"`output` takes one result, this run makes {len(images)} per image "
            f"({', '.join(images)}); add `no_montage` to write the map alone, or use "
            "`out_dir` DIR"
        )
    targets = plan.validate(sources, images + raws)
    for key in list(targets):
        index, what = key
        if what in raws and what not in images:
            target = targets.pop(key)
            targets[(index, ("raw", what))] = target.path.with_suffix(".npy")
    writes = [t if isinstance(t, Path) else t.path for t in targets.values()]
    reads = list(network.reads)
    if not plan.in_place:
        reads += [(Path(s.path), "input image") for s in sources if s.path is not None]
    refuse_overwriting([w for w in writes if w is not None], reads)
    return targets


def planned_report(
    sources: Sequence[Source], network: Network, options: RenderOptions, targets: dict
) -> BatchReport[list[str]]:
    """The report of a dry run: per input, the files :func:`plan_targets` gave it, in the
    order a run writes them (per layer: the ``.npy``, then the pictures)."""
    report: BatchReport[list[str]] = BatchReport(inputs=len(sources), results=[])
    for index in range(len(sources)):
        files = []
        for info in network.output_infos:
            raw = targets.get((index, ("raw", info.name)))
            if raw is not None:
                files.append(str(raw))
            files += [targets[(index, what)].display for what in layer_whats(info, options)]
        report.results.append(files)
    return report


class MapWriter:
    """Renders, encodes and writes every output of one image (see :meth:`__call__`)."""

    def __init__(self, sources: Sequence[Source], targets: dict, renderer: Renderer):
        self.sources = sources
        self.targets = targets
        self.renderer = renderer

    def __call__(self, item: Prepared, layer_maps: dict[str, np.ndarray]) -> int:
        """Write the outputs of image ``item`` from its ``{layer: maps}``; return the
        number of files written. Running out of memory while drawing fails this image
        alone, in one line."""
        try:
            return self._write(item, layer_maps)
        except MemoryError:
            h, w = item.x.shape[:2]
            raise ImageSizeError(
                f"ran out of memory drawing the maps of a {h}x{w} image; use a smaller "
                "image or model, fewer outputs (`no_montage`, `no_maps`), or fewer `jobs`"
            ) from None

    def _write(self, item: Prepared, layer_maps: dict[str, np.ndarray]) -> int:
        from convkit.files import save_npy
        from convkit.image.pipeline import write_image

        index, targets = item.index, self.targets
        scale = item.scale
        # The model's input as a picture, drawn once for all the montages of this image.
        the_input = functools.cache(lambda: input_picture(item.x, scale))
        written = 0
        for info in self.renderer.network.output_infos:
            values = layer_maps[info.name]
            raw_key = (index, ("raw", info.name))
            if self.renderer.options.raw and raw_key in targets:
                save_npy(targets[raw_key], values)
                written += 1
            if info.channels is None or values.ndim != 3:
                continue
            pictures = self.renderer.pictures(
                info, values, scale=scale, name=self.sources[index].display, input_picture=the_input
            )
            for what, pixels in pictures:
                write_image(targets[(index, what)], pixels, create_folders=True)
                written += 1
        return written

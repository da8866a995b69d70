"""A network for feature maps: a stack of spec layers, checked and described before Keras.

A :class:`Network` is a stack of layers of the layer-spec language
(:mod:`convkit.arithmetic.spec`) plus how its input is prepared (gray or colour, see
:mod:`convkit.nn.inputs`), which layers' maps are kept, and optionally the weights of its
first ``Conv2D`` layer (:mod:`convkit.nn.weights`). :func:`network_from_spec` checks a
parsed spec for feature maps and describes each layer (:class:`LayerInfo`): how many maps
it has and which filters they still belong to. No Keras model exists yet: that is
:mod:`convkit.nn.extractor`'s work, per image size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convkit.arithmetic.shapes import analyze_spec, analyze_stack
from convkit.errors import SpecError, UsageError
from convkit.nn.models import split_input
from convkit.nn.text import describe_layer
from convkit.nn.weights import FilterWeights, check_weights

if TYPE_CHECKING:
    import numpy as np

    from convkit.arithmetic.shapes import StackResult
    from convkit.arithmetic.spec import LayerSpec

_PROBE_SIZE = 65536
"""Channel counts are read off the stack analysed at this size (they do not depend on it)."""

#: Layers whose channel ``i`` comes from channel ``i`` of their input: feature map ``i``
#: after them still belongs to filter ``i`` (or colour channel ``i``) of the layer before.
CHANNEL_PRESERVING = frozenset(
    {
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Softmax",
        "Identity",
        "BatchNormalization",
        "LayerNormalization",
        "MaxPooling2D",
        "AveragePooling2D",
        "ZeroPadding2D",
        "Cropping2D",
        "UpSampling2D",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
    }
)

#: Layers that move or resample pixels without mixing them: after only these, a colour
#: input is still a picture in pixel units (pooling the photo gives a smaller photo).
PICTURE_PRESERVING = frozenset(
    {
        "MaxPooling2D",
        "AveragePooling2D",
        "ZeroPadding2D",
        "Cropping2D",
        "UpSampling2D",
        "Identity",
        "Dropout",
        "SpatialDropout2D",
    }
)


@dataclass(frozen=True)
class LayerInfo:
    """What the writer needs to know of one layer, before any Keras model exists.

    ``channels`` is the number of feature maps (None when the output has no spatial axes:
    Flatten, Dense, global pooling); ``origin`` is the layer whose filters (or ``"input"``
    for the input's channels) the maps still correspond to one to one; ``pixel_units`` is
    True when only :data:`PICTURE_PRESERVING` layers lie between the input and these maps
    (their values stay within the input's range); ``picture`` when, moreover, they are the
    colour input's R, G, B.
    """

    index: int
    name: str
    type: str
    channels: int | None
    origin: str | None
    picture: bool
    description: str
    pixel_units: bool = False


@dataclass
class Network:
    """A stack of spec layers applied to gray or colour images.

    ``layers`` exclude any leading ``input(...)`` (its channels fix ``channels``, its size
    is enforced per image through ``input_hw``); ``outputs`` name the layers whose maps are
    kept, in model order; ``weights`` (optional) go into the layer named ``weights_layer``;
    ``spec_path`` is the spec file the layers were read from, if any.

    A network may also be a Keras model already built, a trained one
    (:func:`convkit.nn.loaded.network_from_model`): ``model`` is then that model,
    ``layers`` describe its layers, ``stack`` is its arithmetic at its one input size
    ``input_hw``, ``prepare`` turns an image into its input (as it was trained) and
    ``input_unit`` brings that input's values back to 8-bit pixel units.
    """

    layers: list[LayerSpec]
    channels: int = 1
    outputs: list[str] = field(default_factory=list)
    weights: FilterWeights | None = None
    weights_layer: str | None = None
    seed: int | None = None
    input_hw: tuple[int, int] | None = None
    spec_text: str = ""
    infos: list[LayerInfo] = field(default_factory=list)
    spec_path: Path | None = None
    model: Any = None
    model_path: Path | None = None
    stack: StackResult | None = None
    prepare: Callable[[np.ndarray], np.ndarray] | None = None
    input_unit: float | None = None
    rebuild: Callable[[], Network] | None = None
    """How a cluster's worker makes a built model's network again, from the model's file:
    a small picklable callable (``convkit.training.cluster_predict.TrainedNetwork``)."""

    @property
    def color(self) -> bool:
        return self.channels == 3

    @property
    def reads(self) -> list[tuple[Path, str]]:
        """The files this network was made from, each with what it is (the spec file,
        kernel and weights files): no output of a run may replace one."""
        files = [] if self.spec_path is None else [(self.spec_path, "spec file")]
        if self.model_path is not None:
            files.append((self.model_path, "model file"))
        return files + ([] if self.weights is None else list(self.weights.files))

    def info(self, name: str) -> LayerInfo:
        return next(i for i in self.infos if i.name == name)

    @property
    def output_infos(self) -> list[LayerInfo]:
        return [self.info(n) for n in self.outputs]

    def analyze(self, height: int, width: int) -> StackResult:
        """:func:`convkit.arithmetic.shapes.analyze_stack` for an image of this size (a
        built model's own, which takes one size: ``input_hw``)."""
        if self.stack is not None:
            return self.stack
        return analyze_stack(self.layers, (height, width, self.channels))

    def size_line(self, height: int, width: int) -> str:
        """One line on the model at an image size: ``Model for a 11×15×1 input (gray):
        conv2d 9×13×2, max_pooling2d 4×6×2`` (every layer's output shape)."""
        from convkit.arithmetic.formatting import format_shape

        stack = self.analyze(height, width)
        shapes = ", ".join(f"{r.name} {format_shape(r.output_shape)}" for r in stack.layers)
        kind = "colour, RGB" if self.color else "gray"
        return f"Model for a {format_shape(stack.input_shape)} input ({kind}): {shapes}"


def network_from_spec(
    layers: Sequence[LayerSpec],
    *,
    color: bool | None = None,
    outputs: Sequence[str] | None = None,
    weights: FilterWeights | None = None,
    seed: int | None = None,
    spec_text: str = "",
    spec_path: str | Path | None = None,
) -> Network:
    """Check a parsed spec for feature maps and describe its layers; no Keras yet.

    ``color`` None takes the channels of the spec's ``input(...)`` (gray when absent).
    ``outputs`` default to every layer. ``weights`` go into the first ``Conv2D`` layer and
    must fit it (kernel size, filters, input channels); ``spec_path`` is the file the spec
    was read from, if any (no output may replace it). Problems are
    :class:`~convkit.errors.SpecError` / :class:`~convkit.errors.UsageError`.
    """
    declared, body = split_input(layers)
    channels, input_hw = _input_of(declared, layers, color)
    if not body:
        raise SpecError("the spec has no layers after its input")
    names = [layer.name for layer in body]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"two layers are named {', '.join(dupes)}: give each a name of its own")
    probe = analyze_spec(body, (_PROBE_SIZE, _PROBE_SIZE, channels))
    infos = _layer_infos(body, probe, channels)
    chosen = _chosen_outputs(names, outputs)
    weights_layer = None if weights is None else _weights_layer(body, probe, weights)
    return Network(
        layers=list(body),
        channels=channels,
        outputs=chosen,
        weights=weights,
        weights_layer=weights_layer,
        seed=seed,
        input_hw=input_hw,
        spec_text=spec_text,
        infos=infos,
        spec_path=None if spec_path is None else Path(spec_path),
    )


def _input_of(
    declared: tuple[int, ...] | None, layers: Sequence[LayerSpec], color: bool | None
) -> tuple[int, tuple[int, int] | None]:
    """``(channels, (H, W) or None)`` of the input, from the spec's ``input(...)`` and
    ``color``."""
    if declared is None:
        return (3 if color else 1), None
    if declared[2] not in (1, 3):
        raise layers[0].error(
            f"feature maps take gray (1) or colour (3) images, but the input has "
            f"{declared[2]} channels"
        )
    if color is not None and (declared[2] == 3) != color:
        want = "3 (`color`)" if color else "1 (gray)"
        raise layers[0].error(f"the spec's input has {declared[2]} channels, not {want}")
    return int(declared[2]), (int(declared[0]), int(declared[1]))


def _layer_infos(body: Sequence[LayerSpec], probe: StackResult, channels: int) -> list[LayerInfo]:
    infos: list[LayerInfo] = []
    origin: str | None = "input"
    pixel_units = True
    for i, (spec, result) in enumerate(zip(body, probe.layers, strict=True)):
        shape = result.output_shape
        maps = int(shape[-1]) if len(shape) == 3 else None
        if spec.type in CHANNEL_PRESERVING and maps is not None:
            pass  # keeps the origin of its input
        elif spec.type == "Conv2D":
            origin = spec.name
        else:
            origin = None
        pixel_units = pixel_units and spec.type in PICTURE_PRESERVING and maps is not None
        picture = pixel_units and channels == 3
        infos.append(
            LayerInfo(
                i, spec.name, spec.type, maps, origin, picture, describe_layer(spec), pixel_units
            )
        )
    return infos


def _chosen_outputs(names: list[str], outputs: Sequence[str] | None) -> list[str]:
    """The layers whose maps are kept, in model order, each once (default: every layer)."""
    if not outputs:
        return names
    unknown = [n for n in outputs if n not in names]
    if unknown:
        raise UsageError(
            f"`outputs`: no layer named {', '.join(map(repr, unknown))} in this model "
            f"(its layers: {', '.join(names)})"
        )
    wanted = set(outputs)
    return [n for n in names if n in wanted]


def _weights_layer(body: Sequence[LayerSpec], probe: StackResult, weights: FilterWeights) -> str:
    """The first ``Conv2D`` layer, which the given weights must fit."""
    at = next((i for i, s in enumerate(body) if s.type == "Conv2D"), None)
    if at is None:
        raise UsageError("`kernel` / `weights` set a Conv2D layer's filters, but the spec has none")
    conv = body[at]
    check_weights(weights, conv, int(probe.layers[at].input_shape[-1]))
    return conv.name

"""Feature maps: images through small Keras models, every layer's activations as arrays.

The core of ``convkit conv``, ``convkit pool`` and ``convkit run``. One machinery serves all
three: a :class:`Network` is a stack of layers of the layer-spec language
(:mod:`convkit.arithmetic.spec`) plus how its input is prepared and, optionally, the weights of its
first ``Conv2D`` layer; ``conv`` and ``pool`` only write that spec for you
(:func:`conv_network`, :func:`pool_network`).

What the model sees
    * **Gray by default**: the image is converted with OpenCV's weights
      (0.299 R + 0.587 G + 0.114 B, :func:`convkit.ops.to_gray`), exactly as
      ``convkit filter --gray`` does; alpha is dropped.
    * **Colour** (``color=True``): three channels in **RGB** order, the order Keras models are
      trained in (OpenCV's BGR is turned around); alpha is dropped; a gray image is repeated
      into three equal channels.
    * **Scaling**: the pixel values as stored, as float32 (0..255 for 8-bit images,
      0..65535 for 16-bit), with no division by 255 and no mean subtraction. These are the
      numbers ``convkit filter`` works on, so a ``Conv2D`` with a kernel from ``-k``, no bias
      and ``padding="same"`` gives the same float32 response as ``convkit filter -k ...
      --border constant`` (for odd kernel sizes: for even ones OpenCV puts the anchor at
      ``k // 2`` and TensorFlow's ``same`` padding puts the smaller half of the padding
      first, so the two differ by a one-pixel shift).

Weights
    Keras's random initialisation (repeatable with ``seed``), or given for the first
    ``Conv2D`` layer: 2-D kernels (:func:`kernels_to_weights`: each kernel one filter; with a
    colour input the same kernel is applied to each of R, G and B and the three summed,
    since a ``Conv2D`` filter spans every input channel) or a ``(KH, KW, C_in, N)`` array
    (:func:`load_weights`). Keras's ``Conv2D`` computes a *correlation*, like
    ``cv2.filter2D``: a kernel goes into the layer as written, not flipped. Biases stay at
    Keras's initial zeros.

Many images
    Images of one size go through the model together, in batches of at most ``batch_size``
    (fewer when one batch's activations would pass :data:`BATCH_MEMORY` bytes); images of
    different sizes are grouped by size, one Keras model per size, all sharing the weights
    of the first. The model is called directly on each batch (``model(batch)``): for a few
    calls that is faster than ``model.predict``, which compiles a graph first.

TensorFlow is imported on first use, by :func:`convkit.heavy.import_keras`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.arithmetic.shapes import analyze_stack
from convkit.engine.executor import BatchReport
from convkit.errors import ConvkitError, ImageReadError, LayerError, SpecError, UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.spec import LayerSpec
    from convkit.image.kernels import Kernel
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import Source

BATCH_MEMORY = 1 << 29
"""A batch is made smaller when the float32 activations of its images would pass this."""

DEFAULT_BATCH_SIZE = 32

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

CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B")}


# --------------------------------------------------------------------------- input


def prepare_input(image: np.ndarray, channels: int) -> np.ndarray:
    """An OpenCV image (gray, BGR or BGRA; 8- or 16-bit) as the model's float32 input.

    ``channels`` 1: gray (OpenCV's luma weights). ``channels`` 3: RGB. Alpha is dropped. The
    values are the stored pixel values, not divided by 255. Returns ``(H, W, channels)``.
    """
    from convkit.image.ops import to_gray

    if channels == 1:
        gray = to_gray(image)
        return gray.astype(np.float32)[:, :, np.newaxis]
    if channels == 3:
        if image.ndim == 2:
            rgb = np.repeat(image[:, :, np.newaxis], 3, axis=2)
        else:
            rgb = image[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
        return np.ascontiguousarray(rgb, dtype=np.float32)
    raise UsageError(f"the model input must have 1 (gray) or 3 (colour) channels, got {channels}")


def input_picture(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The model input ``x`` back as an 8-bit OpenCV picture (gray, or BGR), for montages."""
    scale = 1.0 / 257.0 if np.dtype(dtype) == np.uint16 else 1.0
    pixels = np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)
    if pixels.shape[2] == 1:
        return pixels[:, :, 0]
    return np.ascontiguousarray(pixels[:, :, ::-1])


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class FilterWeights:
    """Weights for one ``Conv2D`` layer: ``kernel`` is ``(KH, KW, C_in, N)`` float32, as
    Keras stores it; ``labels`` names each of the N filters (``edges4-1``, ...)."""

    kernel: np.ndarray
    labels: tuple[str, ...]
    source: str = "weights"

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[3])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.kernel.shape[0]), int(self.kernel.shape[1])

    @property
    def in_channels(self) -> int:
        return int(self.kernel.shape[2])


def kernels_to_weights(kernels: Sequence[Kernel], channels: int) -> FilterWeights:
    """2-D kernels as one ``Conv2D`` layer's weights: one filter per kernel, each applied
    unchanged (correlation, no flip) to every one of the ``channels`` input channels."""
    if not kernels:
        raise UsageError("no kernels given")
    sizes = {k.matrix.shape for k in kernels}
    if len(sizes) > 1:
        listed = ", ".join(f"{k.name} {k.matrix.shape[0]}x{k.matrix.shape[1]}" for k in kernels)
        raise UsageError(
            f"the kernels of one Conv2D layer must all have one size, got {listed}; "
            "run kernels of different sizes separately"
        )
    stack = np.stack([np.asarray(k.matrix, dtype=np.float32) for k in kernels], axis=-1)
    kernel = np.repeat(stack[:, :, np.newaxis, :], channels, axis=2)
    return FilterWeights(np.ascontiguousarray(kernel), _unique([k.name for k in kernels]), "-k")


def load_weights(path: str | Path) -> FilterWeights:
    """A ``(KH, KW, C_in, N)`` array of ``Conv2D`` weights from a ``.npy`` file.

    Loaded with ``allow_pickle=False``; anything but a finite numeric 4-D array is a
    :class:`~convkit.errors.UsageError` that names the file and the problem.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise UsageError("no such weights file" if not path.exists() else "not a file", path=name)
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        text = str(exc)
        if "pickle" in text.lower():
            text = "it holds Python objects (a pickle); convkit loads .npy with allow_pickle=False"
        raise UsageError(f"not a plain numeric .npy array: {text}", path=name) from None
    except (OSError, EOFError) as exc:
        raise UsageError(f"cannot read the weights: {exc}", path=name) from None
    if not isinstance(data, np.ndarray):
        raise UsageError("expected one array saved with numpy.save, got an .npz archive", path=name)
    if data.dtype == object or not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise UsageError(f"weights must be numbers, got dtype {data.dtype}", path=name)
    if data.ndim != 4:
        hint = " (a single 2-D kernel goes with -k FILE.npy)" if data.ndim == 2 else ""
        raise UsageError(
            f"weights must have shape (KH, KW, C_in, N), got {data.ndim} dimensions "
            f"{tuple(data.shape)}{hint}",
            path=name,
        )
    if data.size == 0:
        raise UsageError(f"empty weights array {tuple(data.shape)}", path=name)
    kernel = np.asarray(data, dtype=np.float32)
    if not np.all(np.isfinite(kernel)):
        raise UsageError("weights contain NaN or infinity", path=name)
    labels = tuple(f"filter {i + 1}" for i in range(kernel.shape[3]))
    return FilterWeights(np.ascontiguousarray(kernel), labels, name)


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return tuple(out)


# --------------------------------------------------------------------------- network


@dataclass(frozen=True)
class LayerInfo:
    """What the writer needs to know of one layer, before any Keras model exists.

    ``channels`` is the number of feature maps (None when the output has no spatial axes:
    Flatten, Dense, global pooling); ``origin`` is the layer whose filters (or ``"input"``
    for the input's channels) the maps still correspond to one to one; ``picture`` is True
    when the maps are still the colour input's R, G, B in pixel units.
    """

    index: int
    name: str
    type: str
    channels: int | None
    origin: str | None
    picture: bool
    description: str


@dataclass
class Network:
    """A stack of spec layers applied to gray or colour images.

    ``layers`` exclude any leading ``input(...)`` (its channels fix ``channels``, its size
    is enforced per image through ``input_hw``); ``outputs`` name the layers whose maps are
    kept, in model order; ``weights`` (optional) go into the layer named ``weights_layer``.
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

    @property
    def color(self) -> bool:
        return self.channels == 3

    def info(self, name: str) -> LayerInfo:
        return next(i for i in self.infos if i.name == name)

    @property
    def output_infos(self) -> list[LayerInfo]:
        return [self.info(n) for n in self.outputs]

    def analyze(self, height: int, width: int):
        """:func:`convkit.shapes.analyze_stack` for an image of this size (no Keras)."""
        return analyze_stack(self.layers, (height, width, self.channels))


def network_from_spec(
    layers: Sequence[LayerSpec],
    *,
    color: bool | None = None,
    outputs: Sequence[str] | None = None,
    weights: FilterWeights | None = None,
    seed: int | None = None,
    spec_text: str = "",
) -> Network:
    """Check a parsed spec for feature maps and describe its layers; no Keras yet.

    ``color`` None takes the channels of the spec's ``input(...)`` (gray when absent).
    ``outputs`` default to every layer. ``weights`` go into the first ``Conv2D`` layer and
    must fit it (kernel size, filters, input channels). Problems are
    :class:`~convkit.errors.SpecError` / :class:`~convkit.errors.UsageError`.
    """
    from convkit.nn.models import split_input

    declared, body = split_input(layers)
    input_hw = None
    if declared is not None:
        if declared[2] not in (1, 3):
            raise layers[0].error(
                f"feature maps take gray (1) or colour (3) images, but the input has "
                f"{declared[2]} channels"
            )
        if color is not None and (declared[2] == 3) != color:
            want = "3 (--color)" if color else "1 (gray)"
            raise layers[0].error(f"the spec's input has {declared[2]} channels, not {want}")
        color = declared[2] == 3
        input_hw = (int(declared[0]), int(declared[1]))
    if not body:
        raise SpecError("the spec has no layers after its input")
    channels = 3 if color else 1
    names = [layer.name for layer in body]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"two layers are named {', '.join(dupes)}: give each a name of its own")
    try:
        probe = analyze_stack(body, (_PROBE_SIZE, _PROBE_SIZE, channels))
    except LayerError as exc:
        raise body[exc.index].error(exc.message) from None

    infos: list[LayerInfo] = []
    origin: str | None = "input"
    picture = channels == 3
    for i, (spec, result) in enumerate(zip(body, probe.layers, strict=True)):
        shape = result.output_shape
        maps = int(shape[-1]) if len(shape) == 3 else None
        if spec.type in CHANNEL_PRESERVING and maps is not None:
            pass  # keeps the origin of its input
        elif spec.type == "Conv2D":
            origin = spec.name
        else:
            origin = None
        picture = picture and spec.type in PICTURE_PRESERVING
        infos.append(
            LayerInfo(i, spec.name, spec.type, maps, origin, picture, describe_layer(spec))
        )

    if outputs:
        unknown = [n for n in outputs if n not in names]
        if unknown:
            raise UsageError(
                f"--layers: no layer named {', '.join(map(repr, unknown))} in this model "
                f"(its layers: {', '.join(names)})"
            )
        wanted = set(outputs)
        chosen = [n for n in names if n in wanted]  # model order, each once
    else:
        chosen = names

    weights_layer = None
    if weights is not None:
        at = next((i for i, s in enumerate(body) if s.type == "Conv2D"), None)
        if at is None:
            raise UsageError("-k / --weights set a Conv2D layer's filters, but the spec has none")
        conv = body[at]
        check_weights(weights, conv, int(probe.layers[at].input_shape[-1]))
        weights_layer = conv.name
    return Network(
        list(body), channels, chosen, weights, weights_layer, seed, input_hw, spec_text, infos
    )


def check_weights(weights: FilterWeights, conv: LayerSpec, in_channels: int) -> None:
    """The weights must fit the ``Conv2D`` layer they go into: raise a clear error if not.

    ``in_channels`` is the number of channels reaching that layer.
    """
    kw = conv.kwargs
    kh, kw_ = kw["kernel_size"]
    expected = (kh, kw_, in_channels // int(kw.get("groups", 1)), kw["filters"])
    got = tuple(int(v) for v in weights.kernel.shape)
    if got == expected:
        return
    layer = f"layer {conv.name!r} ({describe_layer(conv)})"
    if weights.source == "-k":
        n, (gh, gw) = weights.filters, weights.kernel_size
        if got[:2] != expected[:2] or got[3] != expected[3]:
            raise UsageError(
                f"-k gives {n} filter{'s' if n != 1 else ''} of {gh}x{gw}, but {layer} has "
                f"{expected[3]} of {kh}x{kw_}; write it as conv2d({n}, {_pair_text((gh, gw))}, ...)"
            )
        raise UsageError(
            f"-k kernels are 2-D, but {layer} receives {expected[2]} channels; "
            "-k can set a Conv2D layer that sees the gray or colour image"
        )
    where = f"{weights.source}: " if weights.source != "weights" else ""
    colour = {1: "1 channel (gray)", 3: "3 channels (colour: use --color)"}
    seen = colour.get(in_channels, f"{in_channels} channels")
    hint = ""
    if got[2] == 3 and in_channels == 1:
        hint = "; weights with C_in = 3 need --color"
    raise UsageError(
        f"{where}weights of shape {got} do not fit {layer}, which receives {seen}: "
        f"it needs (KH, KW, C_in, N) = {expected}{hint}"
    )


def describe_layer(spec: LayerSpec) -> str:
    """A short human description: ``Conv2D 4 filters 4x4, valid``, ``MaxPooling2D 2x2``."""
    kw = spec.kwargs

    def pair(v) -> str:
        v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"

    def window(v) -> str:
        v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        return f"{v[0]}x{v[1]}"

    parts = [spec.type]
    if spec.type in ("Conv2D", "Conv2DTranspose", "SeparableConv2D"):
        n = kw["filters"]
        parts.append(f"{n} filter{'s' if n != 1 else ''} {window(kw['kernel_size'])}")
    elif spec.type == "DepthwiseConv2D":
        parts.append(window(kw["kernel_size"]))
    elif spec.type in ("MaxPooling2D", "AveragePooling2D"):
        parts.append(window(kw["pool_size"]))
    elif spec.type == "Activation":
        parts.append(str(kw["activation"]))
    extras = []
    if kw.get("strides") not in (None, (1, 1)) and spec.type not in (
        "MaxPooling2D",
        "AveragePooling2D",
    ):
        extras.append(f"stride {pair(kw['strides'])}")
    elif spec.type in ("MaxPooling2D", "AveragePooling2D") and kw.get("strides") not in (
        None,
        kw.get("pool_size"),
    ):
        extras.append(f"stride {pair(kw['strides'])}")
    if "padding" in kw and isinstance(kw["padding"], str):
        extras.append(kw["padding"])
    if kw.get("dilation_rate") not in (None, (1, 1)):
        extras.append(f"dilation {pair(kw['dilation_rate'])}")
    if kw.get("activation") and spec.type != "Activation":
        extras.append(str(kw["activation"]))
    if kw.get("use_bias") is False:
        extras.append("no bias")
    text = " ".join(parts)
    return f"{text}, {', '.join(extras)}" if extras else text


def _pair_text(value: int | tuple[int, int]) -> str:
    if isinstance(value, int):
        return str(value)
    a, b = value
    return str(a) if a == b else f"{a}x{b}"


def conv_spec_text(
    *,
    filters: int,
    kernel_size: int | tuple[int, int],
    strides: int | tuple[int, int] = 1,
    padding: str = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
    use_bias: bool = True,
) -> str:
    """The layer spec ``convkit conv`` stands for: a ``conv`` layer, then the activation as
    a layer of its own (so that both the maps before and after it are layer outputs)."""
    text = f"conv2d({filters}, {_pair_text(kernel_size)}"
    if strides not in (1, (1, 1)):
        text += f", strides={_pair_text(strides)}"
    if padding != "valid":
        text += f", padding={padding}"
    if dilation not in (1, (1, 1)):
        text += f", dilation_rate={_pair_text(dilation)}"
    if not use_bias:
        text += ", use_bias=False"
    text += ", name=conv)"
    if activation:
        text += f" activation({activation}, name={activation})"
    return text


def pool_spec_text(
    *,
    mode: str,
    size: int | tuple[int, int] = 2,
    strides: int | tuple[int, int] | None = None,
    padding: str = "valid",
) -> str:
    """The layer spec ``convkit pool`` stands for: one ``maxpool2d`` or ``avgpool2d``."""
    if mode not in ("max", "avg"):
        raise UsageError(f"--mode must be max or avg, got {mode!r}")
    text = f"{mode}pool2d({_pair_text(size)}"
    if strides is not None:
        text += f", strides={_pair_text(strides)}"
    if padding != "valid":
        text += f", padding={padding}"
    return text + f", name={mode}pool)"


def parse_network_spec(text: str, **kwargs: Any) -> Network:
    """:func:`network_from_spec` of a spec text (``kwargs`` as there)."""
    from convkit.arithmetic.spec import parse_spec

    return network_from_spec(parse_spec(text), spec_text=text, **kwargs)


# --------------------------------------------------------------------------- Keras models


class FeatureExtractor:
    """Runs batches of prepared images through a :class:`Network`, one Keras model per
    image size, all sharing the weights of the first one built.

    ``extractor(batch)`` takes ``(B, H, W, C)`` float32 and returns one NumPy array per
    output layer, ``(B, h, w, maps)`` (or ``(B, units)`` for layers without spatial axes).
    """

    def __init__(self, network: Network, *, verbose: bool = False):
        from convkit.heavy import import_keras

        self.network = network
        self.keras = import_keras(verbose=verbose)
        self._models: dict[tuple[int, int], Any] = {}
        self._failures: dict[tuple[int, int], ConvkitError] = {}
        self._reference: list[np.ndarray] | None = None
        self._reference_shape: tuple[int, int] | None = None
        self.first_model = None
        self.kernels: dict[str, np.ndarray] = {}
        """Each Conv2D layer's kernel ``(KH, KW, C_in, N)``, as the models use it."""

    # -- sizes -------------------------------------------------------------------------

    def check_size(self, height: int, width: int):
        """The stack analysed for this image size; a :class:`ConvkitError` (no path) when
        the image does not fit (too small for a kernel, not the spec's input size)."""
        net = self.network
        if net.input_hw is not None and (height, width) != net.input_hw:
            h, w = net.input_hw
            raise ImageReadError(
                f"the image is {height}x{width} (HxW) but the spec's input is {h}x{w}; "
                "resize it first (convkit grayscale --resize) or change input(...)"
            )
        try:
            return net.analyze(height, width)
        except LayerError as exc:
            raise ImageReadError(
                f"the image ({height}x{width}) is too small for this model: {exc.message}"
            ) from None

    def batch_limit(self, height: int, width: int, batch_size: int) -> int:
        """How many images of this size go into one batch (memory-bounded)."""
        try:
            stack = self.network.analyze(height, width)
        except LayerError:
            return 1
        per_image = stack.activation_bytes + height * width * self.network.channels * 4
        return max(1, min(batch_size, BATCH_MEMORY // max(per_image, 1)))

    # -- models ------------------------------------------------------------------------

    def model_for(self, height: int, width: int):
        """The activation model for images of this size (built once, then reused)."""
        key = (height, width)
        if key in self._models:
            return self._models[key]
        if key in self._failures:
            raise self._failures[key]
        try:
            model = self._build(height, width)
        except ConvkitError as exc:
            if not isinstance(exc, ImageReadError):
                if self.first_model is None:
                    raise  # the spec itself cannot be built: a usage error for the whole run
                exc = ImageReadError(f"a {height}x{width} image cannot go through: {exc.message}")
            self._failures[key] = exc
            raise exc from None
        self._models[key] = model
        return model

    def _build(self, height: int, width: int):
        from convkit.nn.models import activation_model, build_model, set_seed

        net = self.network
        self.check_size(height, width)
        first = self.first_model is None
        if first:
            set_seed(net.seed)
        model = build_model(net.layers, (height, width, net.channels))
        if first:
            if net.weights is not None:
                layer = model.get_layer(net.weights_layer)
                values = [net.weights.kernel]
                if layer.use_bias:
                    values.append(np.zeros((net.weights.filters,), np.float32))
                layer.set_weights(values)
            self._reference = model.get_weights()
            self._reference_shape = (height, width)
            self.first_model = model
            for layer in model.layers:
                if type(layer).__name__ == "Conv2D":
                    self.kernels[layer.name] = np.asarray(layer.kernel.numpy(), np.float32)
        else:
            try:
                model.set_weights(self._reference)
            except ValueError:
                h, w = self._reference_shape
                raise ImageReadError(
                    f"the image is {height}x{width} but this model's weights (a Flatten or "
                    f"Dense layer) depend on the image size, fixed at {h}x{w} by the first "
                    "image: resize the images to one size first (convkit grayscale --resize)"
                ) from None
        return activation_model(model, net.outputs)

    def summary_rows(self) -> list[tuple[str, str, tuple[int, ...], int]]:
        """``(name, class, output shape, params)`` of the first model built (Keras's own)."""
        from convkit.nn.models import summary_rows

        if self.first_model is None:
            return []
        return summary_rows(self.first_model)

    @property
    def summary_input_shape(self) -> tuple[int, int, int] | None:
        if self._reference_shape is None:
            return None
        return (*self._reference_shape, self.network.channels)

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        model = self.model_for(int(batch.shape[1]), int(batch.shape[2]))
        out = model([batch], training=False)
        if not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(t) for t in out]


def compute_maps(
    network: Network,
    images: Sequence[np.ndarray],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    extractor: FeatureExtractor | None = None,
) -> list[dict[str, np.ndarray]]:
    """Every output layer's activations for each image: ``[{layer: (h, w, maps)}, ...]``.

    ``images`` are OpenCV arrays (gray/BGR/BGRA, 8- or 16-bit); they are prepared with
    :func:`prepare_input`, grouped by size and run in batches. A library entry point: the
    command line uses :func:`write_feature_maps`, which streams and writes as it goes.
    """
    extractor = extractor or FeatureExtractor(network)
    prepared = [prepare_input(image, network.channels) for image in images]
    results: list[dict[str, np.ndarray] | None] = [None] * len(prepared)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, x in enumerate(prepared):
        groups.setdefault(x.shape[:2], []).append(i)
    for (h, w), indices in groups.items():
        extractor.check_size(h, w)
        step = extractor.batch_limit(h, w, batch_size)
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            outs = extractor(np.stack([prepared[i] for i in chunk]))
            for j, i in enumerate(chunk):
                results[i] = {name: out[j] for name, out in zip(network.outputs, outs, strict=True)}
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------- writing


@dataclass
class RenderOptions:
    """What is written for each image and layer.

    ``range_mode`` (``--range``): how a float map becomes 8-bit pixels; None means
    ``rescale`` (each map's own min..max onto 0..255) for feature maps and ``clip`` for the
    colour picture of a pooled colour input. ``maps``: one PNG per map; ``montage``: one
    grid picture per layer; ``raw``: the layer's float32 tensor as ``.npy``.
    """

    range_mode: str | None = None
    maps: bool = True
    montage: bool = True
    raw: bool = False


def map_what(layer: str, index: int, count: int) -> str:
    """The ``{what}`` of map ``index`` (1-based) of a layer with ``count`` maps: ``conv-1``,
    zero-padded so that names sort (``conv-01`` ... ``conv-16``)."""
    return f"{layer}-{index:0{len(str(count))}d}"


def output_whats(
    network: Network, options: RenderOptions
) -> tuple[list[str], list[str], list[str]]:
    """``(images, raws, skipped)``: the ``{what}`` of every picture and every ``.npy`` a
    run writes per input image, and the output layers that have no maps to draw."""
    images: list[str] = []
    raws: list[str] = []
    skipped: list[str] = []
    for info in network.output_infos:
        if info.channels is None:
            skipped.append(info.name)
        else:
            if options.maps:
                images += [
                    map_what(info.name, i, info.channels) for i in range(1, info.channels + 1)
                ]
                if info.picture:
                    images.append(f"{info.name}-color")
            if options.montage:
                images.append(f"{info.name}-montage")
        if options.raw:
            raws.append(info.name)
    return images, raws, skipped


@dataclass
class _Item:
    index: int
    image: np.ndarray
    x: np.ndarray


def render_maps(maps: np.ndarray, mode: str, *, scale: float = 1.0) -> list[np.ndarray]:
    """Each map of ``maps`` ``(h, w, n)`` as an 8-bit picture.

    ``rescale`` maps each map's own min..max onto 0..255 (a flat map is black); ``clip`` and
    ``abs`` (see :mod:`convkit.image.pixels`) work in pixel units, ``scale`` bringing a 16-bit
    input's units down to 8 bits.
    """
    from convkit.image.pixels import to_pixels

    out = []
    for i in range(maps.shape[-1]):
        m = maps[:, :, i]
        if mode != "rescale" and scale != 1.0:
            m = m * np.float32(scale)
        out.append(to_pixels(m, mode, np.uint8))
    return out


def render_picture(maps: np.ndarray, mode: str | None, *, scale: float = 1.0) -> np.ndarray:
    """The three R, G, B maps of a pooled (resampled) colour input as one BGR picture."""
    from convkit.image.pixels import to_pixels

    values = maps[:, :, ::-1]
    mode = mode or "clip"
    if mode != "rescale" and scale != 1.0:
        values = values * np.float32(scale)
    return to_pixels(np.ascontiguousarray(values, dtype=np.float32), mode, np.uint8)


def write_feature_maps(
    sources: Sequence[Source],
    extractor: FeatureExtractor,
    plan: OutputPlan,
    options: RenderOptions,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_pixels: int | None = None,
    jobs: int = 1,
    fail_fast: bool = False,
    on_error: Callable[[ConvkitError], None] | None = None,
    on_done: Callable[[], None] | None = None,
    on_model: Callable[[FeatureExtractor], None] | None = None,
    targets: dict | None = None,
) -> BatchReport[int]:
    """Read every source, run it through the network in size-grouped batches and write its
    pictures (and ``.npy`` tensors) to the targets the plan chose.

    A bad image (unreadable, too small for a kernel, a failed write) is reported through
    ``on_error`` and the others go on (unless ``fail_fast``). Reading and decoding, and
    rendering, encoding and writing, run on ``jobs`` threads; the model runs on the calling
    thread, in TensorFlow's own thread pool. ``on_model`` is called once, when the first
    model is built (to print its summary). Every callback runs on the calling thread.
    """
    from convkit.defaults import DEFAULT_MAX_PIXELS
    from convkit.image.codec import read_image

    network = extractor.network
    if targets is None:
        targets = plan_targets(sources, network, plan, options)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    report: BatchReport[int] = BatchReport(inputs=len(sources), results=[None] * len(sources))
    state = {"stop": False, "model_reported": False}

    def fail(index: int, exc: ConvkitError) -> None:
        if exc.path is None:
            exc = type(exc)(exc.message, path=sources[index].display)
        report.errors.append(exc)
        if on_error:
            on_error(exc)
        if on_done:
            on_done()
        if fail_fast:
            state["stop"] = True

    def done(index: int, written: int) -> None:
        report.results[index] = written
        report.outputs += written
        if on_done:
            on_done()

    def load(index: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(sources[index], max_pixels=max_pixels)
        return image, prepare_input(image, network.channels)

    workers = max(1, jobs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convkit") as pool:
        writes: dict[Future, int] = {}

        def collect(block: bool) -> None:
            while writes:
                finished, _ = wait(
                    writes, timeout=None if block else 0, return_when=FIRST_COMPLETED
                )
                if not finished:
                    return
                for future in finished:
                    index = writes.pop(future)
                    try:
                        done(index, future.result())
                    except ConvkitError as exc:
                        fail(index, exc)
                if not block:
                    return

        def run_group(items: list[_Item]) -> None:
            try:
                maps = extractor(np.stack([item.x for item in items]))
            except ImageReadError as exc:  # this size does not fit the model
                for item in items:
                    fail(item.index, exc)
                return
            if not state["model_reported"] and extractor.first_model is not None:
                state["model_reported"] = True
                if on_model:
                    on_model(extractor)
            for j, item in enumerate(items):
                layer_maps = {name: out[j] for name, out in zip(network.outputs, maps, strict=True)}
                future = pool.submit(
                    _write_one, sources[item.index], item, layer_maps, extractor, targets, options
                )
                writes[future] = item.index
            # The writers work on this batch while the model computes the next one; wait
            # before that if the previous batch is still being written (bounded memory).
            while len(writes) > len(items) + workers:
                collect(block=True)

        groups: dict[tuple[int, int], list[_Item]] = {}
        limits: dict[tuple[int, int], int] = {}
        pending = 0
        reads = _ordered(pool, load, range(len(sources)), window=max(2 * workers, batch_size))
        for index, outcome in reads:
            if state["stop"]:
                break
            if isinstance(outcome, ConvkitError):
                fail(index, outcome)
                continue
            image, x = outcome
            key = x.shape[:2]
            if key not in limits:
                limits[key] = extractor.batch_limit(key[0], key[1], batch_size)
            group = groups.setdefault(key, [])
            group.append(_Item(index, image, x))
            pending += 1
            if len(group) >= limits[key]:
                pending -= len(group)
                run_group(groups.pop(key))
            elif pending > 4 * batch_size:  # many sizes: run the largest group now
                largest = max(groups, key=lambda k: len(groups[k]))
                pending -= len(groups[largest])
                run_group(groups.pop(largest))
            collect(block=False)
        reads.close()
        for key in list(groups):
            if state["stop"]:
                break
            run_group(groups.pop(key))
        collect(block=True)
    finished = len(report.errors) + sum(r is not None for r in report.results)
    report.stopped_early = bool(state["stop"]) and finished < len(sources)
    return report


def _ordered(pool: ThreadPoolExecutor, fn, indices, *, window: int) -> Iterator[tuple[int, Any]]:
    """``(index, fn(index) or its ConvkitError)`` in order, at most ``window`` ahead."""
    indices = list(indices)
    futures: dict[int, Future] = {}
    nxt = 0

    def top_up(upto: int) -> None:
        nonlocal nxt
        while nxt < len(indices) and nxt < upto:
            futures[nxt] = pool.submit(fn, indices[nxt])
            nxt += 1

    try:
        for pos in range(len(indices)):
            top_up(pos + window)
            future = futures.pop(pos)
            try:
                yield indices[pos], future.result()
            except ConvkitError as exc:
                yield indices[pos], exc
    finally:
        for future in futures.values():
            future.cancel()


def plan_targets(
    sources: Sequence[Source], network: Network, plan: OutputPlan, options: RenderOptions
) -> dict:
    """Every output path of the run, decided (and checked for collisions) up front.

    Returns ``{(source_index, what): Target}`` for the pictures and ``{(source_index,
    ("raw", layer)): Path}`` for the ``.npy`` tensors, which take the name the template
    gives the layer, with a ``.npy`` suffix.
    """
    images, raws, _ = output_whats(network, options)
    if not images and not raws:
        raise UsageError("nothing to write: --no-maps and --no-montage leave no output (add --raw)")
    if raws and plan.out_dir is None:
        raise UsageError("--raw writes one .npy per layer and image: it needs --out-dir DIR")
    if plan.output is not None and not images:
        raise UsageError("-o takes one picture; with --raw only, use --out-dir DIR")
    targets = plan.validate(sources, images + raws)
    for key in list(targets):
        index, what = key
        if what in raws and what not in images:
            target = targets.pop(key)
            targets[(index, ("raw", what))] = target.path.with_suffix(".npy")
    return targets


def _write_one(
    source: Source,
    item: _Item,
    layer_maps: dict[str, np.ndarray],
    extractor: FeatureExtractor,
    targets: dict,
    options: RenderOptions,
) -> int:
    """Render, encode and write every output of one image; return the files written."""
    from convkit.files import save_npy
    from convkit.image.pipeline import write_image
    from convkit.nn.montage import Panel, layer_montage

    network = extractor.network
    index = item.index
    written = 0
    scale = 1.0 / 257.0 if item.image.dtype == np.uint16 else 1.0
    picture = None

    def put(what: str, pixels: np.ndarray) -> None:
        nonlocal written
        write_image(targets[(index, what)], pixels, create_folders=True)
        written += 1

    for info in network.output_infos:
        values = layer_maps[info.name]
        raw_key = (index, ("raw", info.name))
        if options.raw and raw_key in targets:
            save_npy(targets[raw_key], values)
            written += 1
        if info.channels is None or values.ndim != 3:
            continue
        mode = options.range_mode or "rescale"
        tiles = render_maps(values, mode, scale=scale)
        color = render_picture(values, options.range_mode, scale=scale) if info.picture else None
        if options.maps:
            for i, tile in enumerate(tiles, 1):
                put(map_what(info.name, i, len(tiles)), tile)
            if color is not None:
                put(f"{info.name}-color", color)
        if options.montage:
            if picture is None:
                picture = input_picture(item.x, item.image.dtype)
            labels, kernels = _panel_details(network, info, extractor)
            panels = [
                Panel(tile, labels[i], kernels[i] if kernels else None)
                for i, tile in enumerate(tiles)
            ]
            if color is not None:
                panels.append(Panel(color, "colour (R, G, B)", None))
            h, w = values.shape[:2]
            shape = f"{h}x{w}x{values.shape[2]}"
            title = f"{source.display}  |  {info.name}: {info.description}  ->  {shape}"
            note = _range_note(mode, info, network, extractor)
            image = layer_montage(
                panels,
                title=title,
                note=note,
                input_panel=Panel(
                    picture, "input" + (" (gray)" if network.channels == 1 else ""), None
                ),
            )
            put(f"{info.name}-montage", image)
    return written


def _panel_details(
    network: Network, info: LayerInfo, extractor: FeatureExtractor
) -> tuple[list[str], list[np.ndarray] | None]:
    """Panel titles and the kernel drawn beside each map (None when not drawable)."""
    n = info.channels or 0
    origin = info.origin
    if origin == "input":
        names = CHANNEL_NAMES.get(network.channels, ())
        return [names[i] if i < len(names) else f"channel {i + 1}" for i in range(n)], None
    if origin is None or origin not in extractor.kernels:
        return [f"map {i + 1}" for i in range(n)], None
    kernel = extractor.kernels[origin]
    if origin == network.weights_layer and network.weights is not None:
        names = list(network.weights.labels)
        labels = [
            f"{i + 1}: {names[i]}" if not names[i].startswith("filter ") else names[i]
            for i in range(n)
        ]
    else:
        labels = [f"filter {i + 1}" for i in range(n)]
    if origin != info.name:
        labels = [f"{text} -> {info.name}" for text in labels]
    from convkit.nn.montage import drawable_kernel

    kernels = [drawable_kernel(kernel[:, :, :, i]) for i in range(n)]
    if any(k is None for k in kernels):
        return labels, None
    return labels, kernels


def _range_note(mode: str, info: LayerInfo, network: Network, extractor: FeatureExtractor) -> str:
    what = {
        "rescale": "each map rescaled from its own min..max to black..white",
        "clip": "values clipped to 0..255",
        "abs": "absolute values clipped to 0..255",
    }[mode]
    note = f"pixels: {what}"
    if info.picture:
        note += ";  colour picture: " + ("values clipped to 0..255" if mode == "rescale" else what)
    if info.origin and info.origin in extractor.kernels and info.origin != "input":
        note += ";  kernels: red > 0, blue < 0, white 0"
    return note


__all__ = [
    "BATCH_MEMORY",
    "FeatureExtractor",
    "FilterWeights",
    "LayerInfo",
    "Network",
    "RenderOptions",
    "compute_maps",
    "conv_spec_text",
    "kernels_to_weights",
    "load_weights",
    "map_what",
    "network_from_spec",
    "output_whats",
    "parse_network_spec",
    "plan_targets",
    "pool_spec_text",
    "prepare_input",
    "render_maps",
    "render_picture",
    "write_feature_maps",
]

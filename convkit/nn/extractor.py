"""Running a network in Keras: one model per image size, all sharing the first's weights.

A Keras model is built for the first image size met, seeded (``Network.seed``) and given
the network's weights; images of another size get a model of their own with the same
weights. The model is called directly on each batch (``model(batch)``): for a few calls
that is faster than ``model.predict``, which compiles a graph first. TensorFlow is imported
when the first model is built (through :func:`convkit.heavy.import_keras`), after that
image size passed its checks: a run whose every image is refused never loads it.

Memory is known before anything is built: the arithmetic of the stack
(:class:`~convkit.arithmetic.results.StackResult`) gives, per image size, the float32 input,
every layer's output and every weight. An image size whose figure passes ``max_memory``
is refused (an :class:`~convkit.errors.ImageSizeError` naming the layer that weighs most)
before Keras builds a model for it; a resource error TensorFlow still raises (out of
memory) is the same one-line error for the images of that size, not a traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.arithmetic.formatting import format_bytes, format_shape
from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import ConvkitError, ImageSizeError, LayerError, UsageError

if TYPE_CHECKING:
    from convkit.arithmetic.shapes import StackResult
    from convkit.nn.network import Network

BATCH_MEMORY = 1 << 29
"""A batch is made smaller when the float32 activations of its images would pass this."""

DEFAULT_BATCH_SIZE = 32


def memory_needed(stack: StackResult) -> int:
    """Bytes one image needs in ``stack``: its float32 input, every layer's output and every
    weight (what convkit counts; TensorFlow needs somewhat more for its own work)."""
    return stack.input_bytes + stack.activation_bytes + stack.param_bytes


def check_memory(stack: StackResult, max_memory: int) -> None:
    """An :class:`ImageSizeError` (no path) when one image of this size needs more than
    ``max_memory`` bytes in ``stack``, naming the layer whose output or weights weigh most."""
    need = memory_needed(stack)
    if need <= max_memory:
        return
    weights = [layer.params * 4 for layer in stack.layers]
    index = max(
        range(len(stack.layers)),
        key=lambda i: max(stack.layers[i].activation_bytes, weights[i]),
    )
    layer = stack.layers[index]
    if layer.activation_bytes >= weights[index]:
        what = (
            f"outputs {format_shape(layer.output_shape)} = {layer.activation_values:,} values "
            f"= {format_bytes(layer.activation_bytes)}"
        )
    else:
        what = f"holds {layer.params:,} weights = {format_bytes(weights[index])}"
    h, w, _ = stack.input_shape
    raise ImageSizeError(
        f"a {h}x{w} image needs {format_bytes(need)} in this model (float32 input, layer "
        f"outputs and weights), more than `max_memory` {format_bytes(max_memory)}: layer "
        f"{index + 1} {layer.name} ({layer.type}) alone {what}; use a smaller image or "
        "model, or raise `max_memory`"
    )


def _out_of_memory(exc: BaseException, height: int, width: int) -> ImageSizeError | None:
    """The one-line error of TensorFlow running out of memory (or Python), else None."""
    tf = sys.modules.get("tensorflow")  # not imported for this: it may not be loaded yet
    exhausted = tf is not None and isinstance(exc, tf.errors.ResourceExhaustedError)
    if not (exhausted or isinstance(exc, MemoryError)):
        return None
    found = re.search(r"OOM when allocating tensor with shape\[[^\]]*\]", str(exc))
    detail = f" ({found.group()})" if found else ""
    return ImageSizeError(
        f"a {height}x{width} image does not fit in memory in this model: TensorFlow ran out"
        f"{detail}; use a smaller image or model, or a smaller `batch_size`"
    )


class FeatureExtractor:
    """Runs batches of model inputs (:func:`convkit.nn.inputs.model_input`) through a
    :class:`~convkit.nn.network.Network`.

    ``extractor(batch)`` takes ``(B, H, W, C)`` float32 and returns one NumPy array per
    output layer, ``(B, h, w, maps)`` (or ``(B, units)`` for layers without spatial axes);
    :meth:`layer_maps` gives the same per input, by layer name. An image size the network
    cannot take is an :class:`~convkit.errors.ImageSizeError`, remembered for that size.
    """

    def __init__(
        self, network: Network, *, verbose: bool = False, max_memory: int = DEFAULT_MAX_MEMORY
    ):
        if max_memory < 1:
            raise UsageError(f"`max_memory` must be at least 1 byte, got {max_memory}")
        self.network = network
        self.max_memory = max_memory
        self.verbose = verbose
        self._models: dict[tuple[int, int], Any] = {}
        self._failures: dict[tuple[int, int], ConvkitError] = {}
        self._reference: list[np.ndarray] | None = None
        self._reference_shape: tuple[int, int] | None = None
        self.first_model = None
        self.kernels: dict[str, np.ndarray] = {}
        """Each Conv2D layer's kernel ``(KH, KW, C_in, N)``, as the models use it."""

    # -- sizes -------------------------------------------------------------------------

    def check_size(self, height: int, width: int) -> StackResult:
        """The stack analysed for this image size; an :class:`ImageSizeError` (no path)
        when the image does not fit (too small for a kernel, not the spec's input size, more
        memory than ``max_memory``)."""
        net = self.network
        if net.input_hw is not None and (height, width) != net.input_hw:
            h, w = net.input_hw
            raise ImageSizeError(
                f"the image is {height}x{width} (HxW) but the spec's input is {h}x{w}; "
                "resize it first (convkit grayscale --resize) or change input(...)"
            )
        try:
            stack = net.analyze(height, width)
        except LayerError as exc:
            raise ImageSizeError(
                f"the image ({height}x{width}) is too small for this model: {exc.message}"
            ) from None
        check_memory(stack, self.max_memory)
        return stack

    def batch_limit(self, height: int, width: int, batch_size: int) -> int:
        """How many images of this size go into one batch (memory-bounded)."""
        try:
            stack = self.network.analyze(height, width)
        except LayerError:
            return 1
        per_image = stack.activation_bytes + height * width * self.network.channels * 4
        budget = min(BATCH_MEMORY, self.max_memory)
        return max(1, min(batch_size, budget // max(per_image, 1)))

    # -- models ------------------------------------------------------------------------

    def model_for(self, height: int, width: int):
        """The activation model for images of this size (built once, then reused).

        A spec Keras refuses on the first size is an error of the whole network (a
        :class:`~convkit.errors.SpecError`); on a later size, of the images of that size.
        """
        key = (height, width)
        if key in self._models:
            return self._models[key]
        if key in self._failures:
            raise self._failures[key]
        try:
            try:
                model = self._build(height, width)
            except Exception as exc:
                error = _out_of_memory(exc, height, width)
                if error is None:
                    raise
                raise error from None
        except ConvkitError as exc:
            if not isinstance(exc, ImageSizeError):
                if self.first_model is None:
                    raise
                exc = ImageSizeError(f"a {height}x{width} image cannot go through: {exc.message}")
            self._failures[key] = exc
            raise exc from None
        self._models[key] = model
        return model

    def _build(self, height: int, width: int):
        from convkit.heavy import import_keras
        from convkit.nn.models import activation_model, build_model, set_seed

        net = self.network
        self.check_size(height, width)
        import_keras(verbose=self.verbose)
        first = self.first_model is None
        if net.model is not None:  # a model already built (trained): its one input size
            model = net.model
        else:
            if first:
                set_seed(net.seed)
            model = build_model(net.layers, (height, width, net.channels))
        if first:
            self._adopt_first(model, height, width)
        else:
            self._share_weights(model, height, width)
        return activation_model(model, net.outputs)

    def _adopt_first(self, model, height: int, width: int) -> None:
        """The first model: given the network's weights, its weights the reference."""
        net = self.network
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

    def _share_weights(self, model, height: int, width: int) -> None:
        try:
            model.set_weights(self._reference)
        except ValueError:
            h, w = self._reference_shape
            raise ImageSizeError(
                f"the image is {height}x{width} but this model's weights (a Flatten or "
                f"Dense layer) depend on the image size, fixed at {h}x{w} by the first "
                "image: resize the images to one size first (convkit grayscale --resize)"
            ) from None

    # -- running -----------------------------------------------------------------------

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        height, width = int(batch.shape[1]), int(batch.shape[2])
        model = self.model_for(height, width)
        try:
            out = model([batch], training=False)
            if not isinstance(out, (list, tuple)):
                out = [out]
            return [np.asarray(t) for t in out]
        except Exception as exc:
            error = _out_of_memory(exc, height, width)
            if error is None:
                raise
            raise error from None

    def layer_maps(self, inputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Model inputs of one size through the model together: for each input, every
        output layer's activations, ``{layer: (h, w, maps)}``."""
        outs = self(np.stack(inputs))
        names = self.network.outputs
        return [
            {name: out[j] for name, out in zip(names, outs, strict=True)}
            for j in range(len(inputs))
        ]

    # -- summary -----------------------------------------------------------------------

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

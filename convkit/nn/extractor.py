"""Running a network in Keras: one model per image size, all sharing the first's weights.

A Keras model is built for the first image size met, seeded (``Network.seed``) and given
the network's weights; images of another size get a model of their own with the same
weights. The model is called directly on each batch (``model(batch)``): for a few calls
that is faster than ``model.predict``, which compiles a graph first. TensorFlow is imported
when an extractor is made, through :func:`convkit.heavy.import_keras`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convkit.errors import ConvkitError, ImageSizeError, LayerError

if TYPE_CHECKING:
    from convkit.arithmetic.shapes import StackResult
    from convkit.nn.network import Network

BATCH_MEMORY = 1 << 29
"""A batch is made smaller when the float32 activations of its images would pass this."""

DEFAULT_BATCH_SIZE = 32


class FeatureExtractor:
    """Runs batches of model inputs (:func:`convkit.nn.inputs.model_input`) through a
    :class:`~convkit.nn.network.Network`.

    ``extractor(batch)`` takes ``(B, H, W, C)`` float32 and returns one NumPy array per
    output layer, ``(B, h, w, maps)`` (or ``(B, units)`` for layers without spatial axes);
    :meth:`layer_maps` gives the same per input, by layer name. An image size the network
    cannot take is an :class:`~convkit.errors.ImageSizeError`, remembered for that size.
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

    def check_size(self, height: int, width: int) -> StackResult:
        """The stack analysed for this image size; an :class:`ImageSizeError` (no path)
        when the image does not fit (too small for a kernel, not the spec's input size)."""
        net = self.network
        if net.input_hw is not None and (height, width) != net.input_hw:
            h, w = net.input_hw
            raise ImageSizeError(
                f"the image is {height}x{width} (HxW) but the spec's input is {h}x{w}; "
                "resize it first (convkit grayscale --resize) or change input(...)"
            )
        try:
            return net.analyze(height, width)
        except LayerError as exc:
            raise ImageSizeError(
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
            model = self._build(height, width)
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
        from convkit.nn.models import activation_model, build_model, set_seed

        net = self.network
        self.check_size(height, width)
        first = self.first_model is None
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
        model = self.model_for(int(batch.shape[1]), int(batch.shape[2]))
        out = model([batch], training=False)
        if not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(t) for t in out]

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

"""What the shape arithmetic finds: per layer (:class:`LayerResult`) and per stack
(:class:`StackResult`), and the receptive field it tracks (:class:`ReceptiveField`).

Shapes are channels-last without the batch dimension. The receptive field is tracked per
axis as a size ``r`` and a jump ``j`` (the distance, in input pixels, between neighbouring
output positions): a window layer does ``r ← r + (k_eff − 1)·j`` then ``j ← j·s``; a
transposed convolution ``r ← r + ⌊(k_eff − 1)/s⌋·j`` then ``j ← j/s``; an upsampling by ``u``
``j ← j/u`` (plus the interpolation's reach: bilinear 1 more input pixel, bicubic 3,
lanczos3 5, lanczos5 9). Once the tensor loses its spatial axes (Flatten, global pooling)
it is ``None``; so it is once a size or a jump would need numbers past
:data:`~convkit.arithmetic.limits.MAX_INT` (strides of billions, layer after layer): a
receptive field that large is no longer tracked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from convkit.arithmetic.limits import MAX_INT

__all__ = ["FLOAT32_BYTES", "LayerResult", "ReceptiveField", "Shape", "StackResult"]

FLOAT32_BYTES = 4

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field per axis ``(height, width)``: size and jump, in input pixels."""

    size: tuple[Fraction, Fraction] = (Fraction(1), Fraction(1))
    jump: tuple[Fraction, Fraction] = (Fraction(1), Fraction(1))

    def as_int(self) -> int:
        """The larger of the two sizes, rounded up (what ``--json`` reports)."""
        return math.ceil(max(self.size))

    def window(self, kernel_eff: tuple[int, int], stride: tuple[int, int]) -> ReceptiveField | None:
        """After a convolution or pooling window: ``r + (k_eff − 1)·j``, ``j·s``."""
        size = tuple(
            r + (k - 1) * j for r, k, j in zip(self.size, kernel_eff, self.jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        return _tracked(size, jump)  # type: ignore[arg-type]

    def transposed(
        self, kernel_eff: tuple[int, int], stride: tuple[int, int]
    ) -> ReceptiveField | None:
        """After a transposed convolution: ``r + ⌊(k_eff − 1)/s⌋·j``, ``j/s``."""
        size = tuple(
            r + ((k - 1) // s) * j
            for r, k, s, j in zip(self.size, kernel_eff, stride, self.jump, strict=True)
        )
        jump = tuple(j / s for j, s in zip(self.jump, stride, strict=True))
        return _tracked(size, jump)  # type: ignore[arg-type]

    def upsampled(self, factor: tuple[int, int], reach: int) -> ReceptiveField | None:
        """After an upsampling by ``factor`` whose interpolation reaches ``reach`` more
        input pixels: ``r + reach·j``, ``j/u``."""
        size = tuple(r + reach * j for r, j in zip(self.size, self.jump, strict=True))
        jump = tuple(j / u for j, u in zip(self.jump, factor, strict=True))
        return _tracked(size, jump)  # type: ignore[arg-type]


def _tracked(
    size: tuple[Fraction, Fraction], jump: tuple[Fraction, Fraction]
) -> ReceptiveField | None:
    """The receptive field, or None once a number in it passes :data:`MAX_INT`."""
    parts = (*size, *jump)
    if any(v.numerator > MAX_INT or v.denominator > MAX_INT for v in parts):
        return None
    return ReceptiveField(size, jump)


@dataclass(frozen=True)
class LayerResult:
    """One analysed layer. Shapes are channels-last without the batch dimension."""

    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    receptive_field: ReceptiveField | None = None
    activation: str | None = None

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def activation_values(self) -> int:
        """How many values the layer's output holds for one image."""
        return math.prod(self.output_shape)

    @property
    def activation_bytes(self) -> int:
        """Memory of the layer's output for one image, float32."""
        return self.activation_values * FLOAT32_BYTES

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "receptive_field": (
                None if self.receptive_field is None else self.receptive_field.as_int()
            ),
        }


@dataclass(frozen=True)
class StackResult:
    """A whole stack: the input shape and every layer's result, in order."""

    input_shape: Shape
    layers: tuple[LayerResult, ...] = field(default_factory=tuple)

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(layer.non_trainable_params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Sum of every layer's output memory for one image (float32), input excluded."""
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def input_bytes(self) -> int:
        """Memory of one input image, float32."""
        return math.prod(self.input_shape) * FLOAT32_BYTES

    @property
    def param_bytes(self) -> int:
        """Memory of every parameter, float32."""
        return self.total_params * FLOAT32_BYTES

    def to_json(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "layers": [layer.to_json() for layer in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_macs": self.total_macs,
        }

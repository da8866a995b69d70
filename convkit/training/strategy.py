"""Training on every device of one machine: the ``strategy`` setting.

* ``mirrored``: :class:`tf.distribute.MirroredStrategy` with one replica per GPU (on a machine
  without a GPU: one per logical CPU device, normally one). Each replica takes a batch of
  ``batch_size`` images, so a step takes ``batch_size x replicas`` (the global batch); the
  gradients are summed across replicas and every replica keeps the same weights.
* ``default``: TensorFlow's default strategy, one device.
* ``auto`` (the default): ``mirrored`` when more than one GPU is visible, else ``default``.

The model must be built, compiled (and, when resuming, loaded) inside
:meth:`Placement.scope`, so that its variables are mirrored; Keras then spreads each batch
of ``model.fit`` over the replicas.

One machine only: Keras 3 does not support ``MultiWorkerMirroredStrategy`` on TensorFlow
(keras-team/keras#20585), so training over several hosts is not offered.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from convkit.defaults import STRATEGIES
from convkit.errors import check_choice


@dataclass(frozen=True)
class Placement:
    """The strategy a run trains under, and the devices it spans."""

    name: str  # "mirrored" or "default"
    requested: str  # what was asked: "auto", "mirrored" or "default"
    devices: list[str] = field(default_factory=list)
    strategy: Any = None  # the tf.distribute strategy; None: TensorFlow's default

    @property
    def replicas(self) -> int:
        return max(1, len(self.devices)) if self.name == "mirrored" else 1

    def global_batch(self, batch_size: int) -> int:
        """The images one training step takes: ``batch_size`` per replica."""
        return batch_size * self.replicas

    def scope(self):
        """The context to build, compile and load the model in."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self, batch_size: int) -> str:
        """One line: the strategy, its devices and the global batch."""
        if self.name != "mirrored":
            return f"strategy default: one device, batch {batch_size}"
        n = self.replicas
        return (
            f"strategy mirrored (tf.distribute.MirroredStrategy): {n} replica"
            f"{'s' if n != 1 else ''} on {', '.join(self.devices)}; global batch "
            f"{self.global_batch(batch_size)} = {batch_size} per replica x {n}"
        )

    def to_json(self, batch_size: int) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "strategy_requested": self.requested,
            "replicas": self.replicas,
            "devices": list(self.devices),
            "global_batch_size": self.global_batch(batch_size),
        }


def visible_gpus() -> list[str]:
    """The names of the logical GPU devices TensorFlow sees."""
    from convkit.heavy import import_tensorflow

    tf = import_tensorflow()
    return [d.name for d in tf.config.list_logical_devices("GPU")]


def choose_strategy(requested: str = "auto") -> Placement:
    """The :class:`Placement` for ``requested`` (one of ``defaults.STRATEGIES``)."""
    check_choice(requested, STRATEGIES, "strategy")
    from convkit.heavy import import_tensorflow

    tf = import_tensorflow()
    gpus = visible_gpus()
    name = requested
    if requested == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return Placement("default", requested)
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Placement("mirrored", requested, devices, strategy)

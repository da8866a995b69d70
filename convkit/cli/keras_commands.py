"""PLACEHOLDER (issue 4, being written): ``convkit conv``, ``convkit pool``, ``convkit run``."""

from convkit.errors import UsageError


def conv() -> None:
    """Run images through a Keras Conv2D layer (not yet available)."""
    raise UsageError("convkit conv is not available yet")


def pool() -> None:
    """Run images through a Keras pooling layer (not yet available)."""
    raise UsageError("convkit pool is not available yet")


def run() -> None:
    """Run images through a stack of the layer-spec language (not yet available)."""
    raise UsageError("convkit run is not available yet")

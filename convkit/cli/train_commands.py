"""PLACEHOLDER (issue 5, being written): ``convkit train-cifar`` and ``convkit predict``."""

from convkit.errors import UsageError


def train_cifar() -> None:
    """Train a CNN on CIFAR-10 (not yet available)."""
    raise UsageError("convkit train-cifar is not available yet")


def predict() -> None:
    """Classify images with a trained model (not yet available)."""
    raise UsageError("convkit predict is not available yet")

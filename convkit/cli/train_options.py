"""The options `convkit train` and `convkit train-cifar` share, declared once (Typer's
``Annotated`` aliases, as :mod:`convkit.cli.options` holds those of the image commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DATA = "Data"
MODEL = "Model"
TRAIN = "Training"
OUT = "Results"


def option(*flags: str, help: str, panel: str = TRAIN, **kw):  # noqa: A002
    """A training option: its help in ``panel``, no Typer default shown (the help says it)."""
    return typer.Option(*flags, help=help, show_default=False, rich_help_panel=panel, **kw)


Epochs = Annotated[
    int | None,
    option(
        "--epochs", "-e", help="Epochs to train (with --resume: the new total) \\[default: 10]."
    ),
]
BatchSize = Annotated[
    int | None, option("--batch-size", "-b", help="Images per training step \\[default: 64].")
]
Lr = Annotated[
    float | None, option("--lr", help="Learning rate of the Adam optimizer \\[default: 0.001].")
]
Augment = Annotated[
    bool | None,
    option(
        "--augment/--no-augment",
        help="Random horizontal flips and shifts of up to 4 pixels, on the fly \\[default: off].",
    ),
]
Limit = Annotated[
    int | None,
    option(
        "--limit",
        help="Use only N training images (validation included; from a folder, a stratified "
        "share of each class), for a quick run. The test set is always complete.",
    ),
]
Seed = Annotated[
    int | None,
    option(
        "--seed",
        help="Make the run repeatable: the same seed gives the same split, order, "
        "augmentation and weights. Without it a seed is drawn and saved with the run.",
    ),
]
RestoreBest = Annotated[
    bool | None,
    option(
        "--restore-best",
        help="Keep the weights of the epoch with the best validation accuracy, not the "
        "last: evaluate and save those.",
    ),
]
Resume = Annotated[
    Path | None,
    option(
        "--resume",
        help="Continue the run in DIR from its last completed epoch, with its settings; "
        "--epochs sets the new total.",
        metavar="DIR",
        panel=OUT,
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace the results of an earlier run in --out.", rich_help_panel=OUT
    ),
]
MaxMemory = Annotated[
    str,
    typer.Option(
        "--max-memory",
        help="Refuse a model whose training step would need more memory (float32 weights, "
        "gradients and Adam's moments, and a batch's layer outputs and their gradients), "
        "before anything is built: bytes, or K, M, G, T (powers of 1024).",
        metavar="SIZE",
        rich_help_panel=MODEL,
    ),
]

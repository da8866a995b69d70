"""``convkit train DATA``: train a CNN on a folder of labelled images (or on CIFAR).

The command prepares its inputs, makes one call to the core
(:func:`convkit.training.session.train_folder`, or :func:`~convkit.training.session.train_cifar`
for the words ``cifar10``/``cifar100``: exactly ``train-cifar``) and reports: the table of
classes and the unreadable files, progress and notes on stderr; the summary (or ``--json``)
on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convkit.cli import report
from convkit.cli.options import DEFAULTS, Jobs, MaxPixels, Strategy
from convkit.cli.train_events import ConsoleEvents
from convkit.cli.train_options import DATA as _DATA
from convkit.cli.train_options import MODEL as _MODEL
from convkit.cli.train_options import OUT as _OUT
from convkit.cli.train_options import (
    Augment,
    BatchSize,
    Epochs,
    Limit,
    Lr,
    MaxMemory,
    Overwrite,
    RestoreBest,
    Resume,
    Seed,
)
from convkit.cli.train_options import option as _option
from convkit.cli.train_report import report_run
from convkit.errors import UsageError

if TYPE_CHECKING:
    from convkit.training.folders import FolderScan
    from convkit.training.results import TrainResult

_CIFAR = ("cifar10", "cifar100")
_SHOWN_BAD = 20  # unreadable files named one by one; the rest counted


def train(
    data: Annotated[
        str | None,
        typer.Argument(
            help="A folder with one sub-folder of images per class (cats/, dogs/ ...), or "
            "holding train/ and test/ (and val/) with those; or cifar10 / cifar100 (then "
            "exactly train-cifar). With --resume it may be left out.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        _option(
            "--out", help="Folder for the results \\[default: out/NAME-DATE-TIME].", panel=_OUT
        ),
    ] = None,
    resume: Resume = None,
    overwrite: Overwrite = False,
    image_size: Annotated[
        str | None,
        _option(
            "--image-size",
            help="Size the images are resized to, HxW (height x width) or one number "
            "\\[default: the median size of the folder, fitted inside 64x64].",
            metavar="HxW",
            panel=_DATA,
        ),
    ] = None,
    keep_aspect: Annotated[
        bool | None,
        _option(
            "--keep-aspect",
            help="Fit each image inside the size and pad with black instead of stretching it.",
            panel=_DATA,
        ),
    ] = None,
    gray: Annotated[
        bool | None,
        _option(
            "--gray/--color",
            help="Train on one gray channel, or on RGB colour \\[default: colour, unless every "
            "image is gray].",
            panel=_DATA,
        ),
    ] = None,
    val_split: Annotated[
        float | None,
        _option(
            "--val-split",
            help="Share of each class of the training images held out for validation "
            "\\[default: 0.1; a val/ folder is used instead].",
            panel=_DATA,
        ),
    ] = None,
    test_split: Annotated[
        float | None,
        _option(
            "--test-split",
            help="Share of each class held out for testing when there is no test/ folder "
            "\\[default: 0.2]. Both splits are stratified and seeded by --seed.",
            panel=_DATA,
        ),
    ] = None,
    class_weight: Annotated[
        str | None,
        _option(
            "--class-weight",
            help="balanced: weigh each class by the inverse of its share of the training "
            "images, for unequal classes \\[default: none].",
            metavar="balanced|none",
            panel=_DATA,
        ),
    ] = None,
    on_bad: Annotated[
        str,
        typer.Option(
            "--on-bad",
            help="A file that cannot be read: skip it (named on stderr) or fail.",
            metavar="skip|fail",
            rich_help_panel=_DATA,
        ),
    ] = "skip",
    memory_budget: Annotated[
        str,
        typer.Option(
            "--memory-budget",
            help="Hold the prepared images in memory up to this size; a larger folder is "
            "streamed from disk batch by batch: bytes, or K, M, G, T.",
            metavar="SIZE",
            rich_help_panel=_DATA,
        ),
    ] = "2G",
    model: Annotated[
        str | None,
        _option(
            "--model",
            "-m",
            help="small (default: three conv/pool blocks, fast on a CPU) or classic (Keras's "
            "classic cifar10_cnn.py network).",
            panel=_MODEL,
        ),
    ] = None,
    spec: Annotated[
        str | None,
        _option(
            "--spec",
            help="Any stack of the layer-spec language, or a file holding one; the input and "
            "the softmax head are added when missing.",
            metavar="TEXT|FILE",
            panel=_MODEL,
        ),
    ] = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    augment: Augment = None,
    limit: Limit = None,
    seed: Seed = None,
    restore_best: RestoreBest = None,
    strategy: Strategy = "auto",
    max_memory: MaxMemory = "4G",
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    jobs: Jobs = None,
    data_dir: Annotated[
        Path | None,
        _option(
            "--data-dir",
            help="cifar10/cifar100 only: where CIFAR is (as train-cifar's --data-dir).",
            panel=_DATA,
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download/--no-download",
            help="cifar10/cifar100 only: let Keras download CIFAR when it is nowhere on disk.",
            rich_help_panel=_DATA,
        ),
    ] = True,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object on stdout instead of the summary table (as train-cifar).",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No table, notes or per-epoch lines (errors still show)."
        ),
    ] = False,
) -> None:
    """Train a CNN on your own labelled images (a folder per class), keep the model.

    A scan reads every image once first: a table of the classes and their counts, and each
    file that cannot be read, with its reason, on stderr. The images are resized (area
    interpolation) and trained as train-cifar trains, with the same results in --out:
    model.keras (the class names and the image preparation inside it), history,
    metrics.json, curves.png, confusion.png, predictions.png. Ctrl-C stops after the
    current batch and still writes them; --resume DIR continues later.

    Example: convkit train photos/ --epochs 10 --image-size 48x48 --augment --out out/pets
    """
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.arithmetic.spec_source import read_spec
    from convkit.training.config import TrainSettings, parse_image_size

    source = read_spec(spec, param="spec") if spec is not None else None
    from_file = source is not None and source.path not in (None, "<stdin>")
    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        model=model,
        spec=source.text if source is not None else None,
        augment=augment,
        learning_rate=lr,
        val_split=val_split,
        limit=limit,
        seed=seed,
        restore_best=restore_best,
        strategy=strategy,
        image_size=parse_image_size(image_size) if image_size is not None else None,
        color=None if gray is None else ("gray" if gray else "rgb"),
        keep_aspect=keep_aspect,
        test_split=test_split,
        class_weight=_class_weight(class_weight),
    )
    common = {
        "out": out,
        "resume": resume,
        "overwrite": overwrite,
        "spec_file": Path(source.path) if from_file else None,
        "max_memory": parse_bytes(max_memory, "max_memory"),
    }
    dataset = _dataset(data, resume)
    events = ConsoleEvents(quiet=quiet)
    try:
        if dataset is not None:
            _check_cifar_options(settings, on_bad, memory_budget)
            result = _train_cifar(dataset, settings, common, data_dir, download, events)
        else:
            _check_folder_options(data_dir, download)
            result = _train_folder(
                data,
                settings,
                common,
                events,
                on_bad=on_bad,
                budget=parse_bytes(memory_budget, "memory_budget"),
                jobs=jobs,
                max_pixels=max_pixels,
                quiet=quiet,
            )
    finally:
        events.close()
    again = f"convkit train {dataset} --resume" if dataset else "convkit train --resume"
    report_run(result, json_out=json_out, quiet=quiet, again=again)


def _class_weight(text: str | None) -> str | None:
    if text is None or text.strip().lower() == "none":
        return None
    if text.strip().lower() != "balanced":
        raise UsageError(f"`class_weight` must be balanced or none, got {text!r}")
    return "balanced"


def _dataset(data: str | None, resume: Path | None) -> str | None:
    """``cifar10``/``cifar100`` when the run is on CIFAR (said by DATA, or by the run being
    resumed when DATA is left out); None for a folder."""
    if data is None:
        if resume is None:
            raise UsageError(
                "give the folder of images to train on (or cifar10, cifar100): "
                "convkit train DATA [options]"
            )
        from convkit.training.session import FOLDER_DATASET, run_dataset

        dataset = run_dataset(resume)
        return None if dataset == FOLDER_DATASET else dataset
    if data.lower() in _CIFAR:
        if Path(data).is_dir():
            report.note(f"{data} means CIFAR here; for the folder of that name write ./{data}")
        return data.lower()
    return None


def _check_cifar_options(settings, on_bad: str, memory_budget: str) -> None:
    folder_only = {
        "image_size": settings.image_size,
        "color": settings.color,
        "keep_aspect": settings.keep_aspect,
        "test_split": settings.test_split,
        "class_weight": settings.class_weight,
        "on_bad": None if on_bad == "skip" else on_bad,
        "memory_budget": None if memory_budget == "2G" else memory_budget,
    }
    given = [f"`{name}`" for name, value in folder_only.items() if value is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} applies to a folder of images; CIFAR's images are 32x32 RGB "
            "with their own test set"
        )


def _check_folder_options(data_dir: Path | None, download: bool) -> None:
    if data_dir is not None or not download:
        flag = "`data_dir`" if data_dir is not None else "`download`"
        raise UsageError(f"{flag} applies to cifar10 and cifar100, not to a folder of images")


def _train_cifar(dataset, settings, common, data_dir, download, events) -> TrainResult:
    from dataclasses import replace

    from convkit.training.session import train_cifar

    return train_cifar(
        replace(settings, dataset=dataset),
        data_dir=data_dir,
        download=download,
        events=events,
        catch_sigint=True,
        **common,
    )


def _train_folder(
    data, settings, common, events, *, on_bad, budget, jobs, max_pixels, quiet
) -> TrainResult:
    from convkit.engine.executor import default_jobs
    from convkit.training.folder_data import FolderReading
    from convkit.training.session import train_folder

    reading = FolderReading(
        on_bad=on_bad, memory_budget=budget, jobs=jobs or default_jobs(), max_pixels=max_pixels
    )
    return train_folder(
        data,
        settings,
        reading=reading,
        events=events,
        catch_sigint=True,
        on_scan=lambda scan: _show_scan(scan, quiet=quiet),
        **common,
    )


def _show_scan(scan: FolderScan, *, quiet: bool) -> None:
    """The classes and their readable images per folder, on stderr; each unreadable file
    with its reason (shown even when quiet)."""
    from rich.table import Table

    layout = scan.layout
    counts, bad = scan.counts(), scan.bad_counts()
    if not quiet:
        kind = (
            "class folders"
            if layout.kind == "flat"
            else "train/ " + " ".join(f"{p}/" for p in layout.parts if p != "train")
        )
        table = Table(title=f"{layout.root}: {kind}", title_justify="left")
        table.add_column("class", overflow="fold")
        for part in layout.parts:
            table.add_column(part, justify="right")
        if scan.bad:
            table.add_column("unreadable", justify="right", style="red")
        for k, name in enumerate(layout.class_names):
            row = [report.printable(name), *(f"{counts[p][k]:,}" for p in layout.parts)]
            table.add_row(*row, *([f"{bad[k]:,}" if bad[k] else ""] if scan.bad else []))
        totals = [f"{sum(counts[p]):,}" for p in layout.parts]
        table.add_row("[bold]all[/bold]", *totals, *([f"{len(scan.bad):,}"] if scan.bad else []))
        report.print_table(table, stderr=True)
    for file, reason in scan.bad[:_SHOWN_BAD]:
        report.error(f"{file}: {reason}")
    if len(scan.bad) > _SHOWN_BAD:
        report.error(f"... and {len(scan.bad) - _SHOWN_BAD:,} more unreadable files")

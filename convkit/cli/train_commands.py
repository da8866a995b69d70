"""``convkit train-cifar`` and ``convkit predict``.

Each command prepares its inputs, makes one call to the core
(:func:`convkit.training.session.train_cifar`, :meth:`convkit.training.predict.Classifier.classify`)
and reports: progress and notes on stderr (a Rich progress bar only when stderr is a
terminal), results and tables on stdout. The core, NumPy and TensorFlow are imported inside
the commands, so registering them costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convkit.cli import report
from convkit.cli.common import finish_batch
from convkit.cli.options import (
    DEFAULTS,
    DryRun,
    FailFast,
    Images,
    Jobs,
    Json,
    JsonLines,
    Manifest,
    MaxPixels,
    Quiet,
    Recursive,
    Scheduler,
    SchedulerFile,
    Shard,
    Strategy,
)
from convkit.cli.train_events import ConsoleEvents
from convkit.cli.train_options import DATA as _DATA
from convkit.cli.train_options import MODEL as _MODEL
from convkit.cli.train_options import OUT as _OUT
from convkit.cli.train_options import TRAIN as _TRAIN
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
from convkit.cli.train_report import report_run
from convkit.errors import UsageError

if TYPE_CHECKING:
    from convkit.engine.executor import BatchReport


_MODELS_HELP = (
    "small (default: three conv/pool blocks, fast on a CPU) or classic (the network of "
    "Keras's classic cifar10_cnn.py example)."
)


# --------------------------------------------------------------------------- train-cifar


def train_cifar(
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help=_MODELS_HELP, show_default=False, rich_help_panel=_MODEL
        ),
    ] = None,
    spec: Annotated[
        str | None,
        typer.Option(
            "--spec",
            help='Any stack of the layer-spec language, e.g. "conv2d(32, 3, activation=relu) '
            'maxpool2d(2) flatten dense(64, activation=relu)", or a file holding one. The 32x32x3 '
            "input and the softmax head are added when missing.",
            metavar="TEXT|FILE",
            show_default=False,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    restore_best: RestoreBest = None,
    augment: Augment = None,
    lr: Lr = None,
    val_split: Annotated[
        float | None,
        typer.Option(
            "--val-split",
            help="Share of the training images held out for validation, between 0 and 1 "
            "\\[default: 0.1].",
            show_default=False,
            rich_help_panel=_TRAIN,
        ),
    ] = None,
    limit: Limit = None,
    seed: Seed = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the results \\[default: out/DATASET-DATE-TIME].",
            show_default=False,
            rich_help_panel=_OUT,
        ),
    ] = None,
    resume: Resume = None,
    overwrite: Overwrite = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The cifar-10-batches-py folder, a folder holding it, or cifar-10-python.tar.gz "
            "(read in place). Default: $CONVKIT_DATA, then Keras's cache (~/.keras/datasets), "
            "then Keras's download.",
            show_default=False,
            rich_help_panel=_DATA,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="cifar10 or cifar100 (its 100 fine labels) \\[default: cifar10].",
            show_default=False,
            rich_help_panel=_DATA,
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download/--no-download",
            help="When the data is nowhere on disk, let Keras download it.",
            rich_help_panel=_DATA,
        ),
    ] = True,
    strategy: Strategy = "auto",
    max_memory: MaxMemory = "4G",
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object on stdout instead of the summary table: the results "
            'folder ("out"), the files written ("files"), "interrupted", "failures" and '
            'metrics.json ("metrics").',
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No notes or per-epoch lines on stderr (errors still show)."
        ),
    ] = False,
) -> None:
    """Train a CNN on CIFAR-10 (or CIFAR-100), see how it learned, keep the model.

    Writes into --out: model.keras, history.csv/json, metrics.json (test accuracy and loss,
    per-class accuracy, confusion matrix, timings), curves.png, confusion.png and
    predictions.png. Ctrl-C stops after the current batch and still writes them all;
    --resume DIR continues later.

    Example: convkit train-cifar --epochs 5 --limit 5000 --augment --out out/first-cnn
    """
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.arithmetic.spec_source import read_spec
    from convkit.training.config import TrainSettings
    from convkit.training.session import train_cifar as run

    budget = parse_bytes(max_memory, "max_memory")

    source = read_spec(spec, param="spec") if spec is not None else None
    from_file = source is not None and source.path not in (None, "<stdin>")
    spec_file = Path(source.path) if from_file else None
    settings = TrainSettings(
        dataset=dataset,
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
    )
    events = ConsoleEvents(quiet=quiet)
    try:
        result = run(
            settings,
            out=out,
            resume=resume,
            overwrite=overwrite,
            data_dir=data_dir,
            spec_file=spec_file,
            max_memory=budget,
            download=download,
            events=events,
            catch_sigint=True,
        )
    finally:
        events.close()
    report_run(result, json_out=json_out, quiet=quiet, again="convkit train-cifar --resume")


# --------------------------------------------------------------------------- predict


def predict(
    model: Annotated[
        str | None,
        typer.Argument(
            help="A trained model: a .keras file, or a train-cifar results folder.",
            show_default=False,
        ),
    ] = None,
    images: Images = None,
    top_k: Annotated[
        int,
        typer.Option("--top-k", help="How many of the likeliest classes to show."),
    ] = 3,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Class names, one per line (or a JSON list) \\[default: labels.txt beside "
            "the model].",
            show_default=False,
        ),
    ] = None,
    json_out: Json = False,
    jsonl: JsonLines = False,
    dry_run: DryRun = False,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULTS["max_pixels"],
    max_memory: Annotated[
        str,
        typer.Option(
            "--max-memory",
            help="Refuse a model file that would expand past this much memory, or whose one "
            "image (float32 input and layer outputs) would need more: bytes, or K, M, G, T "
            "(powers of 1024).",
            metavar="SIZE",
        ),
    ] = "4G",
    jobs: Jobs = None,
    fail_fast: FailFast = False,
    scheduler: Scheduler = None,
    scheduler_file: SchedulerFile = None,
    shard: Shard = None,
    manifest: Manifest = None,
    quiet: Quiet = False,
) -> None:
    """Classify images with a trained model and show the likeliest classes.

    The model is loaded in Keras's safe mode (no arbitrary code), after its file is checked
    (sizes, names, the weights it declares). A model convkit trained carries its class names
    and its input preparation (size, gray or colour, padding, scaling): each image is
    prepared exactly as in training. Any other Keras model: RGB (or gray for a 1-channel
    input), resized to its input with area interpolation, names from --labels, labels.txt
    beside it, or CIFAR-10's.

    `--json` prints a list with one record per input, in input order ({"path",
    "predictions"}, a failed input as {"path", "error"}); `--jsonl` prints the same records
    one per line, as each input is done. `--dry-run` checks the model, its labels and the
    inputs, and lists the images it would classify, reading none.

    Example: convkit predict out/first-cnn/model.keras photos/ --top-k 3
    """
    flags = dict(locals())  # the batch flags, for batch_options
    from convkit.arithmetic.sizes import parse_bytes
    from convkit.cli.common import batch_options, collect_inputs, shard_sources
    from convkit.training.predict import open_classifier

    _check_predict_arguments(model, images)
    budget = parse_bytes(max_memory, "max_memory")
    sources = collect_inputs(images, recursive, quiet)
    classifier = open_classifier(
        model, labels=labels, top_k=top_k, max_pixels=max_pixels, max_memory=budget
    )
    if classifier.note and not quiet:
        report.note(classifier.note)
    if dry_run:
        _print_dry_run(classifier, shard_sources(sources, shard), quiet=quiet)
        return
    stream = _json_lines(sources) if jsonl else None
    with report.progress(len(shard_sources(sources, shard)), "images") as tick:
        options = batch_options(flags, tick, stream, verb="classified", per_image=True)
        result = classifier.classify(sources, options)
    _report_predictions(result, sources, json_out=json_out and not jsonl, table=not jsonl)
    finish_batch(result, quiet=quiet, verb="classified", per_image=True)


_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _check_predict_arguments(model: str | None, images: list[str] | None) -> None:
    """A model and at least one input, or a message that says which is missing."""
    usage = "convkit predict MODEL IMAGE... (MODEL: a .keras file or a train-cifar results folder)"
    if model is None:
        raise UsageError(f"give a model and the images to classify: {usage}")
    if images:
        return
    path = Path(model)
    if path.suffix.lower() in _MODEL_SUFFIXES or (path / "model.keras").is_file():
        raise UsageError(f"no images to classify: give them after the model: {usage}")
    raise UsageError(
        f"{model} is the only argument, and predict takes a model first, then the images: {usage}"
    )


def _json_lines(sources):
    """The ``on_result`` event of ``--jsonl``: one record per line as each input ends."""

    def stream(index: int, result, error) -> None:
        if result is None:
            record = {"path": sources[index].display, "error": report.for_user(error.message)}
        else:
            record = result.to_json()
        report.emit(json.dumps(record))

    return stream


def _print_dry_run(classifier, sources, *, quiet: bool) -> None:
    """A dry run: the inputs it would classify, one per line on stdout; the model on stderr."""
    shape = classifier.shape
    if not quiet:
        n = len(sources)
        report.note(
            f"would classify {n} input{'s' if n != 1 else ''} with {classifier.path} "
            f"({shape.height}x{shape.width}x{shape.channels} input, {shape.classes} classes); "
            "nothing was read"
        )
        names = classifier.class_names
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        origin = "the model file's" if classifier.metadata is not None else "the"
        report.note(f"{origin} classes: {shown}")
        report.note(f"each image prepared as: {classifier.describe_preparation()}")
    report.emit("\n".join(source.display for source in sources))


def _report_predictions(result: BatchReport, sources, *, json_out: bool, table: bool) -> None:
    from convkit.cli.common import json_records

    if json_out:
        records = json_records(result, sources, record=lambda p: p.to_json())
        report.emit(json.dumps(records, indent=2))
    elif table:
        done = [p.to_json() for p in result.results if p is not None]
        if done:
            _print_predictions(done, len(done[0]["predictions"]) > 1)


def _print_predictions(rows: list[dict], runners_up: bool) -> None:
    from rich.table import Table

    table = Table(title="Predictions", title_justify="left")
    table.add_column("image", overflow="fold")
    table.add_column("class")
    table.add_column("probability", justify="right")
    if runners_up:
        table.add_column("next likeliest")
    for row in rows:
        first, *rest = row["predictions"]
        cells = [row["path"], first["class"], f"{first['probability']:.1%}"]
        if runners_up:
            cells.append(", ".join(f"{p['class']} {p['probability']:.1%}" for p in rest))
        table.add_row(*cells)
    report.print_table(table)

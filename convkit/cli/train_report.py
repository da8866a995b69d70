"""How a training run (``convkit train`` and ``convkit train-cifar``) ends on the command
line: the summary table or the ``--json`` record on stdout, and the exit code."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from convkit.cli import report

if TYPE_CHECKING:
    from convkit.training.results import TrainResult


def report_run(result: TrainResult, *, json_out: bool, quiet: bool, again: str) -> None:
    """The end of a training run: ``--json`` or the summary table on stdout, the results
    that could not be written (exit 1), an interruption (exit 130, with ``again`` + the
    folder to continue)."""
    if json_out:
        report.emit(json.dumps(run_record(result), indent=2))
    else:
        print_summary(result)
    for failure in result.failures:
        report.error(failure)
    if result.failures:
        raise typer.Exit(1)
    if result.interrupted:
        if not quiet:
            report.note(
                f"interrupted: results for what was trained are in {result.out}; "
                f"continue with: {again} {result.out}"
            )
        raise typer.Exit(130)
    if not quiet:
        report.note(f"results in {result.out}")


def run_record(result: TrainResult) -> dict:
    """``--json``: the results folder, the files written (paths), whether the run was
    interrupted, the results that could not be written, and ``metrics.json``'s content."""
    return {
        "out": str(result.out),
        "files": [str(result.out / name) for name in result.files],
        "interrupted": result.interrupted,
        "failures": [report.for_user(text) for text in result.failures],
        "metrics": result.metrics,
    }


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def print_summary(result: TrainResult) -> None:
    """The training summary table (stdout)."""
    from rich.table import Table

    m = result.metrics
    table = Table(title="Training summary", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    model = f"{m['model']} ({m['params']:,} parameters)"
    if m.get("added_layers"):
        model += f"; added: {', '.join(m['added_layers'])}"
    table.add_row("model", model)
    table.add_row(
        "data",
        f"{m['dataset']} from {m['data_source']}: {m['train_images']:,} training, "
        f"{m['val_images']:,} validation, {m['test_images']:,} test images",
    )
    epochs = f"{m['epochs']} of {m['epochs_requested']}"
    if m.get("partial_epoch"):
        p = m["partial_epoch"]
        epochs += f", then stopped in epoch {p['epoch']} after {p['images']:,} images"
    elif m.get("interrupted"):
        epochs += ", stopped by Ctrl-C"
    batch = f"batch size {m['batch_size']}"
    if m.get("replicas", 1) > 1:
        batch = (
            f"global batch {m['global_batch_size']} = {m['batch_size']} per replica x "
            f"{m['replicas']} replicas ({m['strategy']})"
        )
    table.add_row(
        "epochs",
        epochs + f" ({batch}, learning rate {m['learning_rate']:g}"
        f"{', augmented' if m['augment'] else ''}, seed {m['seed']})",
    )
    final = m.get("final")
    if final:
        table.add_row(
            "last epoch",
            f"training loss {final['loss']:.4f}, accuracy {final['accuracy']:.1%}"
            + (
                f"; validation loss {final['val_loss']:.4f}, accuracy {final['val_accuracy']:.1%}"
                if final.get("val_loss") is not None
                else ""
            ),
        )
    if m.get("best_val_accuracy") is not None:
        table.add_row("best validation", f"{m['best_val_accuracy']:.1%} (epoch {m['best_epoch']})")
    table.add_row(
        "test",
        f"[bold]accuracy {m['test_accuracy']:.1%}[/bold], loss {m['test_loss']:.4f} "
        f"(chance: {1 / len(m['class_names']):.0%})",
    )
    scored = [(v, k) for k, v in m["per_class_accuracy"].items() if v is not None]
    if scored:
        worst, best = min(scored), max(scored)
        table.add_row("per class", f"best {best[1]} {best[0]:.0%}, worst {worst[1]} {worst[0]:.0%}")
    speed = m.get("train_images_per_second")
    table.add_row(
        "time",
        _duration(m["wall_time_seconds"]) + (f", {speed:,.0f} training images/s" if speed else ""),
    )
    table.add_row("results", f"{result.out}/ ({', '.join(result.files)})")
    report.print_table(table)

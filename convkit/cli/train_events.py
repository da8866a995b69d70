"""The progress of ``convkit train-cifar`` on stderr: one line per epoch, and a transient
Rich progress bar when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from convkit.cli import report

if TYPE_CHECKING:
    from convkit.training.records import BatchProgress, EpochRecord, RunInfo


class ConsoleEvents:
    """Renders the events of :class:`convkit.training.events.TrainingEvents` (same methods;
    not a subclass, so that this module imports nothing at start-up) on stderr.

    One line per finished epoch always (unless --quiet); a transient Rich progress bar with
    live loss/accuracy and ETA for the epoch in progress when stderr is a terminal.
    """

    def __init__(self, *, quiet: bool) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.live = sys.stderr.isatty()
        self.progress = None
        self.task = None
        self.label = ""
        self.pending = False

    # The core calls these.
    def note(self, message: str) -> None:
        if not self.quiet:
            self._print(f"convkit: note: {report.for_user(message)}")

    def on_start(self, run: RunInfo) -> None:
        if not self.quiet:
            start = f", from epoch {run.first_epoch + 1}" if run.first_epoch else ""
            self._print(
                f"convkit: training {run.model} ({run.params:,} parameters) on "
                f"{run.train_images:,} images ({run.val_images:,} validation, "
                f"{run.test_images:,} test), {run.steps_per_epoch:,} batches of "
                f"{run.batch_size} per epoch, {run.epochs} epoch{'s' if run.epochs != 1 else ''}"
                f"{start}"
            )
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.label = f"epoch {epoch}/{epochs}"
        if self.progress is not None:
            self.task = self.progress.add_task(self.label, total=None, metrics="", start=True)

    def on_batch(self, progress: BatchProgress) -> None:
        self._flush_pending()
        if self.progress is not None and self.task is not None:
            metrics = f"loss {progress.loss:.4f}  acc {progress.accuracy:.1%}"
            self.progress.update(
                self.task, completed=progress.step, total=progress.steps, metrics=metrics
            )

    def on_validation(self, epoch: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"{self.label} validating")

    def on_epoch_end(self, record: EpochRecord, epochs: int) -> None:
        self._flush_pending()
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        if self.quiet:
            return
        parts = [f"epoch {record.epoch}/{epochs}", f"loss {record.loss:.4f}"]
        parts.append(f"accuracy {record.accuracy:.1%}")
        if record.val_loss is not None:
            parts.append(f"val_loss {record.val_loss:.4f}")
            parts.append(f"val_accuracy {record.val_accuracy:.1%}")
        parts.append(f"{record.seconds:.1f} s")
        parts.append(f"{record.images_per_second:,.0f} img/s")
        if not record.complete:
            parts.append(f"(stopped after {record.images:,} images)")
        self._print("convkit: " + "  ".join(parts))

    def on_phase(self, message: str) -> None:
        self._flush_pending()
        if not self.quiet:
            self._print(f"convkit: {message}")

    def on_interrupt(self) -> None:
        # Called from the SIGINT handler: printing there could re-enter a write that the
        # signal interrupted, so the note waits for the next event.
        self.pending = True

    # Ours.

    def _flush_pending(self) -> None:
        if self.pending:
            self.pending = False
            self._print(
                "convkit: note: stopping after this batch; the results will still be written "
                "(press Ctrl-C again to abort at once)"
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

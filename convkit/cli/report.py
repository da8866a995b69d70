"""Everything the command line says to a person goes through here, on stderr.

stdout carries only data (images with ``-o -``, JSON, tables asked for); diagnostics,
progress and summaries go to stderr so pipelines and CI logs stay clean.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING

from convkit.errors import OutputClosed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from convkit.engine.executor import BatchReport


def emit(text: str) -> None:
    """Print data (JSON, a table as text) on stdout; a closed pipe ends the run quietly."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise OutputClosed() from None


def debug_enabled() -> bool:
    return os.environ.get("CONVKIT_DEBUG", "") not in ("", "0")


_PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
_flags: dict[str, str] | None = None
_flag_source: Callable[[], dict[str, str]] | None = None


def use_flags(source: Callable[[], dict[str, str]] | None) -> None:
    """Where the running command's ``{parameter: flag}`` map comes from (built on the first
    message that needs it: an error path, never start-up)."""
    global _flags, _flag_source
    _flags, _flag_source = None, source


def for_user(message: str) -> str:
    """A core message as the command line shows it: each backticked parameter
    (```epochs```) becomes the flag that sets it (``--epochs``), or its plain name when no
    flag of this command sets it. The one place where parameters become flags."""
    global _flags
    if "`" not in message:
        return message
    if _flags is None:
        _flags = _flag_source() if _flag_source is not None else {}
    return _PARAMETER.sub(lambda m: _flags.get(m.group(1), m.group(1)), message)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with terminal control characters shown escaped (``\\x1b``): a file name
    or a spec echoed back in a message must not move the cursor or recolour the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def error(message: str) -> None:
    print(f"convkit: error: {printable(for_user(message))}", file=sys.stderr, flush=True)


def input_error(exc: BaseException) -> None:
    """Report one failed input of a batch; with ``--debug`` its traceback first."""
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    error(str(exc))


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 to /dev/null.

    libpng and libjpeg write their own warnings ("libpng error: IDAT: incorrect data
    check") to the process's stderr, beside convkit's one-line message. Python's
    ``sys.stderr`` is moved to a duplicate of the real stderr, so convkit's messages, Rich
    progress and ``--debug`` tracebacks still arrive, from any thread. Skipped under
    ``--debug`` and when ``sys.stderr`` is not the process's own (a test capturing it).
    """
    if debug_enabled() or sys.stderr is not sys.__stderr__:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    real = os.fdopen(
        os.dup(saved), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = real
    try:
        yield
    finally:
        real.flush()
        sys.stderr = sys.__stderr__
        os.dup2(saved, 2)
        os.close(saved)
        real.close()


def note(message: str) -> None:
    print(f"convkit: note: {printable(message)}", file=sys.stderr, flush=True)


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[], None] | None]:
    """Yield a callback that advances a transient Rich progress bar, or ``None``.

    The bar appears only for more than one input and only when stderr is a terminal:
    a CI log or a redirected stderr gets nothing.
    """
    if total <= 1 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def summary(report: BatchReport, *, verb: str, per_image: bool = False) -> None:
    """One closing line for a batch: how many inputs, how many files written (or, with
    ``per_image``, how many images were ``verb``: "12 classified"), how many failed."""
    skipped = _skipped(report)
    n = report.inputs + skipped
    shard = _scope_words(report)
    if report.interrupted:
        ok = sum(r is not None for r in report.results)
        ended = ok + report.failed + skipped
        if per_image:
            files = f"{ok} {verb}"
        else:
            files = f"{report.outputs} file{'s' if report.outputs != 1 else ''} {verb}"
        failed = f", {report.failed} failed" if report.failed else ""
        print(
            f"convkit: {shard}interrupted after {ended} of {n} image{'s' if n != 1 else ''}; "
            f"{files}{failed}",
            file=sys.stderr,
            flush=True,
        )
        return
    parts = [f"{n} image{'s' if n != 1 else ''}" + _of_total(report)]
    if per_image:
        parts.append(f"{sum(r is not None for r in report.results)} {verb}")
    elif report.outputs:
        parts.append(f"{report.outputs} file{'s' if report.outputs != 1 else ''} {verb}")
    if skipped:
        parts.append(f"{skipped} skipped (their files exist)")
    if report.failed:
        parts.append(f"{report.failed} failed")
    if report.stopped_early:
        parts.append("stopped at the first failure (--fail-fast)")
    print(f"convkit: {shard}" + ", ".join(parts), file=sys.stderr, flush=True)


def _skipped(report: BatchReport) -> int:
    """The inputs a batch left alone because their files existed (``--skip-existing``)."""
    return len(getattr(report.scope, "skipped", ()))


def _scope_words(report: BatchReport) -> str:
    """``shard 2/4: `` before a shard's summary, else nothing."""
    shard = getattr(report.scope, "shard", None)
    return f"shard {shard}: " if shard is not None else ""


def _of_total(report: BatchReport) -> str:
    """`` of 100`` after a shard's count of images: the inputs of every shard together."""
    scope = report.scope
    return f" of {scope.total}" if scope is not None and scope.shard is not None else ""


def plan_note(report: BatchReport) -> None:
    """Before a dry run's plan: the shard's part of the inputs and what it would skip."""
    scope = report.scope
    if scope is None or (scope.shard is None and not scope.skipped):
        return
    n = report.inputs + len(scope.skipped)
    words = f"{n} input{'s' if n != 1 else ''}{_of_total(report)}"
    if scope.skipped:
        words += f", {len(scope.skipped)} to skip (their files exist), {report.inputs} to do"
    note(f"{_scope_words(report)}{words}")


def terminal_width() -> int | None:
    """The width of the terminal stdout writes to, or None when it is not a terminal (a
    pipe or a file takes tables as wide as they are)."""
    import shutil

    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def print_table(table, *, stderr: bool = False, width: int | None = None) -> None:
    """Print a Rich table; to a file, a pipe or a CI log as wide as it wants to be.

    Rich assumes 80 columns when it is not writing to a terminal, which folds a wide table
    into fragments; a terminal keeps its own width. ``width`` is the table's natural width
    when the caller knows it (its cells are plain text): measuring costs a start-up-bound
    command such as shape-calc a few milliseconds. A reader that went away ends the run
    quietly (Rich alone would exit 1).
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise OutputClosed()

    console = _Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        if width is None:
            width = console.measure(table, options=console.options.update_width(1000)).maximum
        if width > console.width:
            console = _Console(stderr=stderr, highlight=False, width=width)
    try:
        console.print(table)
    except BrokenPipeError:
        raise OutputClosed() from None


def text_width(rows: Iterable[Sequence[str]]) -> int:
    """The natural width of a table of plain-text rows: columns as wide as their longest
    cell, each with one space of padding on either side, plus the separators."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(*rows, strict=True)]
    return sum(widths) + 3 * len(widths) + 1

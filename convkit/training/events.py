"""How a run talks to whoever runs it: progress events, and a request to stop.

No Typer or Rich here: the command line renders the events with Rich and sets the
:class:`StopRequest` from Ctrl-C (:func:`sigint_stops`); tests set it directly.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convkit.training.records import BatchProgress, EpochRecord, RunInfo


class TrainingEvents:
    """Progress of a run; every method is a no-op here. Override what you want to show.

    Messages given to :meth:`note` and :meth:`on_phase` may name parameters in backticks
    (see :mod:`convkit.errors`).
    """

    def note(self, message: str) -> None: ...

    def on_start(self, run: RunInfo) -> None: ...

    def on_epoch_start(self, epoch: int, epochs: int) -> None: ...

    def on_batch(self, progress: BatchProgress) -> None: ...

    def on_validation(self, epoch: int) -> None: ...

    def on_epoch_end(self, record: EpochRecord, epochs: int) -> None: ...

    def on_phase(self, message: str) -> None: ...

    def on_interrupt(self) -> None:
        """A first Ctrl-C asked to stop (see :func:`sigint_stops`). Called from the signal
        handler: record it and say so at the next event, do not print here."""


class StopRequest:
    """Set it (from a signal handler, a callback, another thread) to stop after this batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextlib.contextmanager
def sigint_stops(stop: StopRequest, on_first: Callable[[], None] | None = None) -> Iterator[None]:
    """While inside, a first Ctrl-C sets ``stop``; a second one raises KeyboardInterrupt.

    Outside the main thread (where Python cannot install signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        if on_first is not None:
            on_first()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

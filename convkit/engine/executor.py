"""The one executor behind every command that works on many inputs.

Contract, the same for the image commands, the feature-map commands and ``predict``:

* **Per input, one ending.** Every input ends exactly once, as a success
  (:meth:`Executor.succeed`: a result and the number of files it wrote) or a failure
  (:meth:`Executor.fail`: a :class:`~convkit.errors.ConvkitError` naming the input). A bad
  input never stops the others; any other exception is a bug and propagates.
* **Fail-fast.** With ``fail_fast`` the first failure stops new work: queued work is
  cancelled, work already running finishes (its files are complete and counted), and the
  report says it stopped early.
* **Progress events.** ``on_error(exc)`` for each failure and ``on_done()`` for each input
  that ends, both called on the calling thread, so a progress bar or an error printer needs
  no locking; ``on_interrupt(report)`` once if Ctrl-C or a termination signal ends the
  batch (work already running finishes first, so what was written is complete);
  ``on_result(index, result, error)`` as each input ends, for output that streams.
* **Ordered or unordered completion.** :meth:`Executor.map` runs one stage of work on
  ``jobs`` threads and yields ``(index, value)`` in input order (``ordered=True``, at most
  ``window`` ahead) or as each finishes. A pipeline of stages (read, then a model on a
  batch, then write) uses ``map`` for the first and :meth:`Executor.submit` for the last;
  :meth:`Executor.run` is the one-stage case.

Threads, not processes: OpenCV and TensorFlow release the GIL while they decode, filter,
compute and encode, so threads scale without paying a process start-up and an OpenCV import
per worker. Results are kept in input order in :attr:`BatchReport.results`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from convkit.errors import ConvkitError

T = TypeVar("T")
V = TypeVar("V")


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class BatchReport(Generic[T]):
    """What a batch did: per-input results (``None`` where an input failed or never ran),
    the errors in the order they happened, and the files written."""

    inputs: int = 0
    outputs: int = 0
    results: list[T | None] = field(default_factory=list)
    errors: list[ConvkitError] = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False
    failures: dict[int, ConvkitError] = field(default_factory=dict)
    """The error of each failed input, by its index."""

    @property
    def failed(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs, the same for every command: ``jobs`` threads, ``fail_fast``, and
    the progress events (``on_error`` per failed input, ``on_done`` per input that ends)."""

    jobs: int = 1
    fail_fast: bool = False
    on_error: Callable[[ConvkitError], None] | None = None
    on_done: Callable[[], None] | None = None
    on_interrupt: Callable[[BatchReport], None] | None = None
    on_result: Callable[[int, Any, ConvkitError | None], None] | None = None

    def executor(self, inputs: int, *, name_input: Callable[[int], str] | None = None):
        """An :class:`Executor` over ``inputs`` inputs with these options."""
        return Executor(
            inputs,
            jobs=self.jobs,
            fail_fast=self.fail_fast,
            on_error=self.on_error,
            on_done=self.on_done,
            on_interrupt=self.on_interrupt,
            on_result=self.on_result,
            name_input=name_input,
        )


class Executor(Generic[T]):
    """Run per-input work over ``inputs`` inputs (indices ``0 .. inputs-1``); see the module.

    Use it as a context manager: leaving the block waits for work still running and closes
    the report.
    """

    def __init__(
        self,
        inputs: int,
        *,
        jobs: int = 1,
        fail_fast: bool = False,
        on_error: Callable[[ConvkitError], None] | None = None,
        on_done: Callable[[], None] | None = None,
        on_interrupt: Callable[[BatchReport], None] | None = None,
        on_result: Callable[[int, Any, ConvkitError | None], None] | None = None,
        name_input: Callable[[int], str] | None = None,
    ):
        self.report: BatchReport[T] = BatchReport(inputs=inputs, results=[None] * inputs)
        self.jobs = max(1, jobs)
        self.fail_fast = fail_fast
        self.on_error = on_error
        self.on_done = on_done
        self.on_interrupt = on_interrupt
        self.on_result = on_result
        self.name_input = name_input
        self.stopped = False
        self._ended = 0
        self._pool: ThreadPoolExecutor | None = None
        self._final: dict[Future, tuple[int, Callable[[Any], int]]] = {}
        # Whole inputs finished on a worker but not yet ended on the calling thread: what an
        # interruption must still count (their files are written).
        self._finished: dict[int, tuple[Any, int]] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Executor[T]:
        if self.jobs > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="convkit")
        return self

    def __exit__(self, *exc_info) -> None:
        interrupted = exc_info[0] is not None and issubclass(exc_info[0], KeyboardInterrupt)
        try:
            if exc_info[0] is None:
                self.settle(block=True)
        finally:
            if self._pool is not None:
                # Work already running finishes (its atomic writes complete or clean up);
                # queued work is dropped.
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
        if interrupted:
            self._count_finished()
        self.report.stopped_early = self.stopped and self._ended < self.report.inputs
        if interrupted:
            self.report.interrupted = True
            if self.on_interrupt:
                self.on_interrupt(self.report)

    def _count_finished(self) -> None:
        """After an interruption: end the inputs whose work completed (files written) but
        had not been reported yet, so the summary counts what is on disk."""
        for index, (result, outputs) in sorted(self._finished.items()):
            self.succeed(index, result, outputs)
        self._finished.clear()
        for future, (index, count) in list(self._final.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                result = future.result()
                self.succeed(index, result, count(result))
        self._final.clear()

    # ----------------------------------------------------------------- endings

    def succeed(self, index: int, result: T, outputs: int = 0) -> None:
        """Input ``index`` is done: keep its result, count the files it wrote."""
        self.report.results[index] = result
        self.report.outputs += outputs
        if self.on_result:
            self.on_result(index, result, None)
        self._end()

    def fail(self, index: int, exc: ConvkitError) -> None:
        """Input ``index`` failed with ``exc`` (given the input's name when it has none)."""
        if exc.path is None and self.name_input is not None:
            exc = exc.with_path(self.name_input(index))
        self.report.errors.append(exc)
        self.report.failures[index] = exc
        if self.on_error:
            self.on_error(exc)
        if self.on_result:
            self.on_result(index, None, exc)
        if self.fail_fast:
            self.stopped = True
        self._end()

    def _end(self) -> None:
        self._ended += 1
        if self.on_done:
            self.on_done()

    # ----------------------------------------------------------------- stages

    def map(
        self,
        work: Callable[[int], V],
        indices: Iterable[int],
        *,
        ordered: bool = True,
        window: int | None = None,
    ) -> Iterator[tuple[int, V]]:
        """Run ``work(index)`` for each index; yield ``(index, value)`` for those that succeed.

        An input whose work raises :class:`ConvkitError` ends as a failure and is not
        yielded. At most ``window`` (default ``2 * jobs``) run or wait at once. Once the
        executor has stopped (fail-fast), nothing new starts; values of work that had
        already finished are still yielded, so its caller can count what it wrote.
        """
        window = max(1, window or 2 * self.jobs)
        if self._pool is None:
            for index in indices:
                if self.stopped:
                    return
                try:
                    value = work(index)
                except ConvkitError as exc:
                    self.fail(index, exc)
                    continue
                yield index, value
            return
        queue = iter(indices)
        running: dict[Future, int] = {}
        order: list[Future] = []

        def top_up() -> None:
            while not self.stopped and len(running) < window:
                index = next(queue, None)
                if index is None:
                    return
                future = self._pool.submit(work, index)
                running[future] = index
                order.append(future)

        try:
            top_up()
            while running:
                if ordered:
                    future = order.pop(0)
                    wait([future])
                    finished = [future]
                else:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    if not ordered:
                        order.remove(future)
                    if future.cancelled():
                        continue
                    try:
                        value = future.result()
                    except ConvkitError as exc:
                        self.fail(index, exc)
                        continue
                    yield index, value
                if self.stopped:
                    for future in running:
                        future.cancel()
                top_up()
        finally:
            for future in running:
                future.cancel()

    def submit(self, index: int, work: Callable[..., Any], *args: Any, outputs=None) -> None:
        """Run the last stage of input ``index`` in the background: ``work(*args)`` returns
        the input's result, and ``outputs(result)`` (default: the result itself, an int)
        the files it wrote. The input ends when it finishes (see :meth:`settle`)."""
        count = outputs or (lambda n: n)
        if self._pool is None:
            try:
                result = work(*args)
            except ConvkitError as exc:
                self.fail(index, exc)
                return
            self.succeed(index, result, count(result))
            return
        self._final[self._pool.submit(work, *args)] = (index, count)

    def settle(self, *, block: bool = False, keep: int = 0) -> None:
        """End the inputs whose last stage has finished; with ``block``, wait until at most
        ``keep`` are still running (so memory stays bounded)."""
        while self._final:
            if block and len(self._final) <= keep:
                return
            finished, _ = wait(
                self._final, timeout=None if block else 0, return_when=FIRST_COMPLETED
            )
            if not finished:
                return
            for future in finished:
                index, count = self._final.pop(future)
                try:
                    result = future.result()
                except ConvkitError as exc:
                    self.fail(index, exc)
                    continue
                self.succeed(index, result, count(result))
            if not block:
                return

    def run(
        self,
        work: Callable[[int], T],
        indices: Iterable[int] | None = None,
        *,
        ordered: bool = False,
        outputs: Callable[[T], int] = lambda _: 0,
    ) -> BatchReport[T]:
        """The one-stage case: ``work(index)`` is the whole of an input's work."""

        def whole(index: int) -> T:
            result = work(index)
            with self._lock:
                self._finished[index] = (result, outputs(result))
            return result

        for index, result in self.map(
            whole, range(self.report.inputs) if indices is None else indices, ordered=ordered
        ):
            with self._lock:
                self._finished.pop(index, None)
            self.succeed(index, result, outputs(result))
        return self.report


def run_batch(
    items: Sequence[Any],
    work: Callable[[Any], T],
    options: BatchOptions | None = None,
    *,
    outputs: Callable[[T], int] = lambda _: 0,
) -> BatchReport[T]:
    """Apply ``work`` to every item on an :class:`Executor`; the report, results in order."""
    with (options or BatchOptions()).executor(len(items)) as executor:
        executor.run(lambda i: work(items[i]), outputs=outputs)
    return executor.report

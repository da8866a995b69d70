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

**On a cluster.** Given a Dask scheduler (:attr:`BatchOptions.scheduler`), the executor
connects when its block starts and :meth:`Executor.run_tasks` sends each input's whole work
(a :class:`Task`: a picklable function and its small arguments) to the cluster's workers,
a bounded number at a time (:mod:`convkit.engine.cluster`), with the same endings and
events; :attr:`Executor.remote` tells the caller to send absolute paths. Locally
``run_tasks`` is :meth:`Executor.run` of the same tasks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from convkit.errors import ConvkitError

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class Task:
    """One input's whole work, ``fn(*args)``, in a form a cluster can run: ``fn`` a
    module-level function (or a small closure), ``args`` what this input needs and no
    more (never the whole input list)."""

    fn: Callable[..., Any]
    args: tuple = ()

    def __call__(self) -> Any:
        return self.fn(*self.args)


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
    scope: Any = None
    """With a shard, ``skip_existing`` or a manifest: the :class:`convkit.engine.scope.Scope`
    of the caller's inputs this report covers (its ``indices``, ``shard``, ``skipped``)."""

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
    scheduler: str | None = None
    """A Dask scheduler's address (``tcp://host:8786``): each input a task on its workers."""
    scheduler_file: str | None = None
    """Or the file ``dask scheduler --scheduler-file`` wrote, holding that address."""
    retries: int = 1
    """On a cluster: how many times an input whose workers died (Dask's ``KilledWorker``)
    is submitted again before it fails."""
    shard: Any = None
    """Only this shard's inputs: a :class:`convkit.engine.shards.Shard`, ``"K/N"`` or
    ``"auto"`` (see :mod:`convkit.engine.scope`)."""
    skip_existing: bool = False
    """Inputs whose outputs all exist are not processed again (the report's ``skipped``)."""
    manifest: str | Path | None = None
    """A JSON-lines file, one line per input as it ends (:mod:`convkit.engine.manifest`)."""
    error_text: Callable[[ConvkitError], str] | None = None
    """How a failure reads in the manifest (default: its message)."""

    @property
    def on_cluster(self) -> bool:
        return bool(self.scheduler or self.scheduler_file)

    def executor(self, inputs: int, *, name_input: Callable[[int], str] | None = None):
        """An :class:`Executor` over ``inputs`` inputs with these options."""
        cluster = None
        if self.on_cluster:
            from convkit.engine.cluster import Cluster

            cluster = Cluster(self.scheduler, self.scheduler_file, retries=self.retries)
        return Executor(
            inputs,
            jobs=self.jobs,
            fail_fast=self.fail_fast,
            on_error=self.on_error,
            on_done=self.on_done,
            on_interrupt=self.on_interrupt,
            on_result=self.on_result,
            name_input=name_input,
            cluster=cluster,
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
        cluster: Any = None,
    ):
        self.report: BatchReport[T] = BatchReport(inputs=inputs, results=[None] * inputs)
        self.cluster = cluster  # a convkit.engine.cluster.Cluster, or None: local threads
        self._session: Any = None
        self._remote: dict[Any, int] = {}  # futures on the cluster: their input
        self._remote_outputs: Callable[[Any], int] = lambda _: 0
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

    @property
    def remote(self) -> bool:
        """True when the work runs on a cluster: tasks must name files by absolute paths."""
        return self.cluster is not None

    def __enter__(self) -> Executor[T]:
        if self.cluster is not None:
            from convkit.engine.cluster import connect

            self._session = connect(self.cluster)
        elif self.jobs > 1:
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
            if self._session is not None:
                self._close_session(interrupted)
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

    def _close_session(self, interrupted: bool) -> None:
        """Leave the cluster: after an interruption, first end the inputs whose task had
        finished (their files are written); tasks still queued are cancelled."""
        session, self._session = self._session, None
        try:
            if interrupted:
                for future, index in sorted(self._remote.items(), key=lambda item: item[1]):
                    if session.is_ok(future):
                        value = future.result()[1]
                        self.succeed(index, value, self._remote_outputs(value))
            session.cancel(self._remote)
        finally:
            self._remote.clear()
            session.close()

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

    def run_tasks(
        self,
        task: Callable[[int], Task],
        indices: Iterable[int] | None = None,
        *,
        outputs: Callable[[Any], int] = lambda _: 0,
        each: Callable[[int, Any], None] | None = None,
    ) -> BatchReport[T]:
        """Each input's whole work as a :class:`Task` (``task(index)``): on the cluster's
        workers when there is one (at most its window in flight, in completion order),
        else :meth:`run` on local threads. ``each(index, value)`` is called on the calling
        thread with every value, before the input ends."""
        indices = range(self.report.inputs) if indices is None else indices
        if self._session is None:
            for index, value in self.map(
                lambda i: self._finish_local(i, task(i)(), outputs), indices, ordered=False
            ):
                with self._lock:
                    self._finished.pop(index, None)
                if each is not None:
                    each(index, value)
                self.succeed(index, value, outputs(value))
            return self.report
        self._remote_outputs = outputs
        session, queue, running = self._session, iter(indices), self._remote
        again: list[int] = []  # inputs whose workers died, to submit once more
        tries: dict[int, int] = {}
        while True:
            batch: list[tuple[int, Task]] = []  # one message to the scheduler, not one each
            while not self.stopped and len(running) + len(batch) < session.window:
                index = again.pop() if again else next(queue, None)
                if index is None:
                    break
                batch.append((index, task(index)))
            for (index, _), future in zip(batch, session.submit_many(batch), strict=True):
                running[future] = index
            if not running:
                return self.report
            for future, result in session.next_done():
                index = running.pop(future, None)
                if index is None:  # cancelled after fail-fast
                    continue
                try:
                    value = session.outcome(future, result)
                except ConvkitError as exc:
                    if (
                        getattr(exc, "workers_died", False)
                        and tries.get(index, 0) < session.retries
                    ):
                        tries[index] = tries.get(index, 0) + 1
                        again.append(index)
                        continue
                    self.fail(index, exc)
                    continue
                if each is not None:
                    each(index, value)
                self.succeed(index, value, outputs(value))
            if self.stopped and running:
                session.cancel(running)
                running.clear()

    def _finish_local(self, index: int, value: Any, outputs: Callable[[Any], int]) -> Any:
        with self._lock:
            self._finished[index] = (value, outputs(value))
        return value


def run_batch(
    items: Sequence[Any],
    work: Callable[[Any], T],
    options: BatchOptions | None = None,
    *,
    outputs: Callable[[T], int] = lambda _: 0,
    remote: Callable[[Any], Any] | None = None,
) -> BatchReport[T]:
    """Apply ``work`` to every item on an :class:`Executor`; the report, results in order.

    On a cluster each item goes to its task as ``remote(item)`` (default: as it is), e.g.
    with absolute paths; ``work`` must then be picklable."""
    with (options or BatchOptions()).executor(len(items)) as executor:
        place = remote if remote is not None and executor.remote else (lambda item: item)
        executor.run_tasks(lambda i: Task(work, (place(items[i]),)), outputs=outputs)
    return executor.report

"""Running one piece of work over many inputs.

A bad input never stops the others: its :class:`~convkit.errors.ConvkitError` is recorded
and handed to ``on_error`` (unless ``fail_fast``, which stops after the first). The work
runs on ``jobs`` threads; OpenCV releases the GIL while it decodes, filters and encodes,
so threads scale without paying a process start-up and an OpenCV import per worker.
Callbacks run on the calling thread, in completion order, so a progress bar or error
printer needs no locking. Results come back in input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from convkit.errors import ConvkitError

T = TypeVar("T")
S = TypeVar("S")


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class BatchReport(Generic[T]):
    inputs: int = 0
    outputs: int = 0
    results: list[T | None] = field(default_factory=list)
    errors: list[ConvkitError] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def failed(self) -> int:
        return len(self.errors)

    @property
    def ok(self) -> bool:
        return not self.errors


def run_batch(
    items: Sequence[S],
    work: Callable[[S], T],
    *,
    jobs: int = 1,
    fail_fast: bool = False,
    count_outputs: Callable[[T], int] = lambda _: 0,
    on_error: Callable[[ConvkitError], None] | None = None,
    on_done: Callable[[], None] | None = None,
) -> BatchReport[T]:
    """Apply ``work`` to every item; collect results, outputs written and errors.

    Only :class:`ConvkitError` counts as an input's failure; any other exception is a bug
    and propagates.
    """
    report: BatchReport[T] = BatchReport(inputs=len(items), results=[None] * len(items))

    def finish(index: int, result: T) -> None:
        report.results[index] = result
        report.outputs += count_outputs(result)

    def fail(exc: ConvkitError) -> None:
        report.errors.append(exc)
        if on_error:
            on_error(exc)

    if jobs <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            try:
                finish(i, work(item))
            except ConvkitError as exc:
                fail(exc)
                if fail_fast:
                    report.stopped_early = i + 1 < len(items)
                    break
            finally:
                if on_done:
                    on_done()
        return report

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="convkit") as pool:
        # Keep at most 2*jobs in flight so a 10,000-image batch does not queue 10,000 futures.
        pending: dict = {}
        queue = iter(enumerate(items))
        stop = False

        def top_up() -> None:
            while not stop and len(pending) < 2 * jobs:
                nxt = next(queue, None)
                if nxt is None:
                    return
                i, item = nxt
                pending[pool.submit(work, item)] = i

        top_up()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                try:
                    finish(i, future.result())
                except ConvkitError as exc:
                    fail(exc)
                    if fail_fast:
                        stop = True
                finally:
                    if on_done:
                        on_done()
            if stop:
                report.stopped_early = any(r is None for r in report.results)
                for future in pending:
                    future.cancel()
                wait(pending)
                for future, i in list(pending.items()):
                    if not future.cancelled():
                        try:
                            finish(i, future.result())
                        except ConvkitError as exc:
                            fail(exc)
                break
            top_up()
    return report

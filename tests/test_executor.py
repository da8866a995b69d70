"""The one executor (convkit.engine.executor): its contract, checked against plain Python.

Every input ends once (success or failure), failures do not stop the others, fail-fast
stops new work, events arrive on the calling thread, and ``map`` yields in input order or
in completion order as asked.
"""

from __future__ import annotations

import threading
import time

import pytest

from convkit.engine.executor import BatchOptions, Executor, run_batch
from convkit.errors import ConvkitError, ImageReadError

JOBS = [1, 2, 4]


def square_or_fail(bad: set[int]):
    def work(i: int) -> int:
        if i in bad:
            raise ImageReadError(f"bad input {i}")
        return i * i

    return work


@pytest.mark.parametrize("jobs", JOBS)
def test_results_in_input_order_and_failures_recorded(jobs):
    items = list(range(40))
    errors, done = [], []
    report = run_batch(
        items,
        square_or_fail({3, 17, 30}),
        BatchOptions(jobs=jobs, on_error=errors.append, on_done=lambda: done.append(1)),
        outputs=lambda r: 2,
    )
    expected = [None if i in {3, 17, 30} else i * i for i in items]
    assert report.results == expected
    assert report.inputs == 40
    assert report.failed == 3 and len(errors) == 3
    assert sorted(str(e) for e in report.errors) == ["bad input 17", "bad input 3", "bad input 30"]
    assert report.outputs == 2 * 37
    assert len(done) == 40  # every input ends exactly once
    assert not report.stopped_early


@pytest.mark.parametrize("jobs", JOBS)
def test_a_bug_is_not_an_input_failure(jobs):
    def work(i):
        if i == 5:
            raise ValueError("a bug")
        return i

    with pytest.raises(ValueError, match="a bug"):
        run_batch(list(range(10)), work, BatchOptions(jobs=jobs))


def test_fail_fast_serial_stops_right_after_the_first_failure():
    ran = []

    def work(i):
        ran.append(i)
        if i == 4:
            raise ImageReadError("broken")
        return i

    report = run_batch(list(range(10)), work, BatchOptions(jobs=1, fail_fast=True))
    assert ran == [0, 1, 2, 3, 4]
    assert report.results[:4] == [0, 1, 2, 3] and report.results[4:] == [None] * 6
    assert report.failed == 1 and report.stopped_early


@pytest.mark.parametrize("jobs", [2, 4])
def test_fail_fast_parallel_starts_nothing_new(jobs):
    started = []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        if i == 0:
            raise ImageReadError("first one is broken")
        time.sleep(0.01)
        return i

    report = run_batch(list(range(200)), work, BatchOptions(jobs=jobs, fail_fast=True))
    assert report.failed == 1 and report.stopped_early
    # Work already running when the failure arrived may finish, and is counted; the rest
    # of the 200 never starts (the window is 2 * jobs).
    assert len(started) <= 4 * jobs
    finished = [r for r in report.results if r is not None]
    assert sorted(finished) == sorted(i for i in started if i != 0)


@pytest.mark.parametrize("ordered", [True, False])
def test_map_order(ordered):
    # Later indices finish first: 0 sleeps longest.
    delays = {i: 0.02 * (5 - i) for i in range(6)}

    def work(i):
        time.sleep(delays[i])
        return i

    with Executor(6, jobs=6) as ex:
        seen = [i for i, _ in ex.map(work, range(6), ordered=ordered, window=6)]
    if ordered:
        assert seen == [0, 1, 2, 3, 4, 5]
    else:
        assert sorted(seen) == [0, 1, 2, 3, 4, 5] and seen != [0, 1, 2, 3, 4, 5]


def test_map_keeps_at_most_window_in_flight():
    running, peak = 0, 0
    lock = threading.Lock()

    def work(i):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
        return i

    with Executor(60, jobs=4) as ex:
        out = [i for i, _ in ex.map(work, range(60), window=3)]
    assert out == list(range(60))
    assert peak <= 3


@pytest.mark.parametrize("jobs", JOBS)
def test_events_run_on_the_calling_thread(jobs):
    caller = threading.get_ident()
    threads = set()
    report = run_batch(
        list(range(20)),
        square_or_fail({2, 9}),
        BatchOptions(
            jobs=jobs,
            on_error=lambda e: threads.add(threading.get_ident()),
            on_done=lambda: threads.add(threading.get_ident()),
        ),
    )
    assert report.failed == 2
    assert threads == {caller}


@pytest.mark.parametrize("jobs", JOBS)
def test_two_stages_map_then_submit(jobs):
    """A pipeline: read in parallel (map), then a last stage in the background (submit);
    failures of either stage end their input, and every input ends once."""
    done = []

    def read(i):
        if i == 1:
            raise ImageReadError("unreadable")
        return i * 10

    def write(value):
        if value == 50:
            raise ConvkitError("disk full")
        return 3  # files written

    with Executor(8, jobs=jobs, on_done=lambda: done.append(1)) as ex:
        for index, value in ex.map(read, range(8)):
            ex.submit(index, write, value)
            ex.settle(block=True, keep=jobs)
    report = ex.report
    assert report.results == [3, None, 3, 3, 3, None, 3, 3]
    assert report.outputs == 18
    assert sorted(e.message for e in report.errors) == ["disk full", "unreadable"]
    assert len(done) == 8


def test_failures_are_named_after_their_input():
    names = ["a.png", "b.png", "c.png"]

    def work(i):
        if i == 1:
            raise ImageReadError("corrupt")
        return i

    with Executor(3, name_input=names.__getitem__) as ex:
        ex.run(work)
    assert [str(e) for e in ex.report.errors] == ["b.png: corrupt"]
    assert isinstance(ex.report.errors[0], ImageReadError)


def test_an_error_that_names_its_input_keeps_its_name():
    def work(i):
        raise ImageReadError("corrupt", path="given.png")

    with Executor(1, name_input=lambda i: "other.png") as ex:
        ex.run(work)
    assert str(ex.report.errors[0]) == "given.png: corrupt"


def test_empty_batch():
    report = run_batch([], lambda i: i, BatchOptions(jobs=4))
    assert report.inputs == 0 and report.results == [] and not report.errors


@pytest.mark.parametrize("jobs", JOBS)
def test_an_interruption_counts_what_was_written_and_says_so(jobs):
    """Ctrl-C (or SIGTERM, raised the same way) in the middle of a batch: running work
    finishes, queued work is dropped, and on_interrupt gets a report that counts every
    input whose work completed, including those not yet reported when it came."""
    completed = []
    lock = threading.Lock()
    seen = []

    def work(i):
        time.sleep(0.005)
        with lock:
            completed.append(i)
        return 1  # one file written

    def on_done():
        seen.append(1)
        if len(seen) == 5:
            raise KeyboardInterrupt

    interrupted = []
    ex = Executor(100, jobs=jobs, on_done=on_done, on_interrupt=interrupted.append)
    with pytest.raises(KeyboardInterrupt):
        with ex:
            ex.run(work, outputs=lambda n: n)
    (report,) = interrupted
    assert report.interrupted
    assert report.outputs == len(completed)  # every completed input is counted
    assert sorted(i for i, r in enumerate(report.results) if r is not None) == sorted(completed)
    assert len(completed) < 100  # queued work never started

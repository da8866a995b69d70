"""Each input's whole work as a task on a Dask cluster: the executor's second backend.

The executor (:mod:`convkit.engine.executor`) runs per-input work on local threads, or,
given a scheduler (:class:`Cluster`), as one task per input on the cluster's workers
through a :class:`Session`. The contract stays the executor's (one ending per input,
fail-fast, the progress events, the report); what this module adds:

* **Tasks.** A task is a module-level function and its small per-input arguments
  (``fn(*args)``, pickled with cloudpickle): never a closure over the whole input list. On
  the worker :func:`run_task` turns a :class:`~convkit.errors.ConvkitError` (a bad input)
  into a value: the client tells a bad input (its one error line) from a bug (raised, as
  locally) without a second look at the cluster.
* **Bounded in flight.** At most :attr:`Session.window` tasks are submitted at once (a few
  per worker thread): a million inputs never mean a million futures. Each top-up goes to
  the scheduler as one message (:meth:`Session.submit_many`), not one per task.
* **Threads.** On its first task a worker process limits OpenCV's and TensorFlow's threads
  to its own task threads (:func:`fit_worker`).
* **Dying workers.** A worker that dies (killed, out of memory) has its tasks rescheduled
  by the scheduler on the others; a task that was running on more dying workers than the
  scheduler's ``distributed.scheduler.allowed-failures`` (default 3) comes back as
  Dask's ``KilledWorker``. The executor then submits that input again, ``retries`` times
  (an innocent task queued beside a deadly one dies with it), and then ends it as a
  :class:`~convkit.errors.ClusterError`; the run goes on.
* **Clear failures.** A scheduler that cannot be reached is one error within
  :attr:`Cluster.timeout` seconds; workers that cannot import convkit are said as such.

Dask is an optional extra, imported here only when a session starts
(:func:`convkit.heavy.import_distributed`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convkit.errors import ClusterError, ConvkitError, UsageError

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to reach the scheduler before the run fails (Dask's own default is 30)."""


@dataclass(frozen=True)
class Cluster:
    """Where the work runs: a scheduler ``address`` (``tcp://host:8786``) or a
    ``scheduler_file`` written by ``dask scheduler --scheduler-file``; ``retries`` of a
    task that raised an unexpected exception; ``timeout`` (seconds) to connect;
    ``in_flight`` tasks at most (default: eight per worker thread, at least 64)."""

    address: str | None = None
    scheduler_file: str | Path | None = None
    retries: int = 1
    timeout: float = DEFAULT_CONNECT_TIMEOUT
    in_flight: int | None = None

    def resolve(self) -> str:
        """The scheduler's address, read from :attr:`scheduler_file` when that is given."""
        if self.address and self.scheduler_file:
            raise UsageError("give `scheduler` or `scheduler_file`, not both")
        if self.address:
            problem = address_problem(self.address)
            if problem:
                raise UsageError(
                    f"`scheduler` {self.address!r} is not a scheduler address like "
                    f"tcp://HOST:PORT ({problem})"
                )
            return self.address
        if not self.scheduler_file:
            raise UsageError("a cluster needs `scheduler` (an address) or `scheduler_file`")
        path = Path(self.scheduler_file)
        try:
            with open(path, "rb") as file:  # /dev/zero or a huge file: read a bounded part
                data = file.read(MAX_SCHEDULER_FILE + 1)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"`scheduler_file` {str(path)!r}: {reason}") from None
        try:
            if len(data) > MAX_SCHEDULER_FILE:
                raise ValueError("too large")
            address = json.loads(data.decode("utf-8")).get("address")
        except (ValueError, AttributeError):  # UnicodeDecodeError is a ValueError
            address = None
        if not isinstance(address, str) or not address:
            raise UsageError(
                f"`scheduler_file` {str(path)!r} holds no scheduler address (the JSON file a Dask "
                "scheduler writes when told where)"
            )
        problem = address_problem(address)
        if problem:
            raise UsageError(
                f"`scheduler_file` {str(path)!r} holds {address!r}, not a scheduler address "
                f"like tcp://HOST:PORT ({problem})"
            )
        return address


MAX_SCHEDULER_FILE = 1 << 20
"""Bytes of a scheduler file read at most (Dask writes a few hundred)."""


def address_problem(address: str) -> str:
    """Why ``address`` is not a Dask scheduler's address (``tcp://HOST:PORT``,
    ``HOST:PORT``, another Dask scheme), or ``""``: checked before connecting, which would
    wait the whole timeout on a typo."""
    from convkit.heavy import import_distributed

    addressing = import_distributed().comm.addressing  # without Dask: how to install it
    try:
        scheme, location = addressing.parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            host, port = addressing.parse_host_port(location)
            if not host:
                return "the host is empty"
            if not 0 < port < 65536:
                return f"port {port} is not 1-65535"
    except (ValueError, TypeError) as exc:
        return str(exc).split("\n")[0] or type(exc).__name__
    return ""


_FITTED = False


def fit_worker() -> None:
    """Once per worker process: OpenCV and TensorFlow may use as many threads inside one
    operation as the worker has task threads (``dask worker --nthreads``), through
    ``CONVKIT_THREADS`` (:func:`convkit.heavy.thread_count`), unless that is set. Left
    alone, each uses every core of the machine: a machine's worth of threads per task,
    fighting the other workers and the scheduler for the cores."""
    global _FITTED
    if _FITTED:
        return
    _FITTED = True
    if os.environ.get("CONVKIT_THREADS", "").strip():
        return
    distributed = sys.modules.get("distributed")  # loaded on a worker: it runs us
    try:
        threads = int(distributed.get_worker().state.nthreads)
    except (ValueError, AttributeError, TypeError):
        return  # not on a Dask worker
    os.environ["CONVKIT_THREADS"] = str(max(1, threads))
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:  # already loaded (a task before): its pool is set now
        cv2.setNumThreads(max(1, threads))


def run_task(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """On a worker: ``(True, fn(*args))``, or ``(False, error)`` for a bad input."""
    fit_worker()
    try:
        return True, fn(*args)
    except ConvkitError as exc:
        return False, exc


def run_one(task: Any) -> tuple[bool, Any]:
    """On a worker: :func:`run_task` of a :class:`~convkit.engine.executor.Task`."""
    return run_task(task.fn, *task.args)


class Session:
    """A client connected to a scheduler (see the module). Close it when done."""

    def __init__(self, cluster: Cluster):
        from convkit.heavy import debug_enabled, import_distributed

        address = cluster.resolve()
        distributed = import_distributed()
        if not debug_enabled():
            # Dask logs reconnections and dying workers itself; convkit says what matters
            # about each input in its own one line.
            for name in ("distributed", "tornado"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        self._distributed = distributed
        self.retries = max(0, cluster.retries)
        self._token = uuid.uuid4().hex[:8]
        try:
            self.client = distributed.Client(address, timeout=cluster.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).split("\n")[0] or type(exc).__name__
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} "
                f"(waited {cluster.timeout:g} s): {reason}"
            ) from None
        try:
            threads = sum(self.client.nthreads().values())
            # Results gathered on Dask's own loop as tasks finish: no round trip per future.
            self._completed = distributed.as_completed(
                loop=self.client.loop, with_results=True, raise_errors=False
            )
        except BaseException:
            self.close()
            raise
        self.window = cluster.in_flight or max(64, 8 * threads)

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a lost connection must not hide the cause
            pass

    def submit_many(self, tasks: list[tuple[int, Any]]) -> list[Any]:
        """Submit ``(index, task)`` pairs (each a :class:`~convkit.engine.executor.Task`)
        in one message to the scheduler (one ``submit`` each would be one each); their
        futures, in order, are among :meth:`next_done`."""
        if not tasks:
            return []
        keys = []
        for index, task in tasks:
            name = getattr(task.fn, "__name__", "task").strip("_<>") or "task"
            keys.append(f"convkit-{name}-{self._token}-{index}")
        futures = self.client.map(run_one, [task for _, task in tasks], key=keys, pure=False)
        self._completed.update(futures)
        return futures

    def next_done(self) -> list[tuple[Any, Any]]:
        """``(future, result)`` of the submitted tasks that have finished, waiting for at
        least one (call it only while some are submitted and not yet returned)."""
        return self._completed.next_batch(block=True)

    def cancel(self, futures: Iterable[Any]) -> None:
        futures = list(futures)
        if futures:
            self.client.cancel(futures)

    def outcome(self, future: Any, result: Any) -> Any:
        """The value of a finished task (``result`` as :meth:`next_done` gave it); a
        :class:`ConvkitError` for a failed input (its own, or a :class:`ClusterError` when
        it killed the workers that ran it)."""
        if future.status == "finished":
            ok, value = result
            if ok:
                return value
            raise value
        if future.status == "cancelled":
            raise ClusterError("the task was cancelled by the cluster")
        exc = result[1] if isinstance(result, tuple) else result
        if isinstance(exc, self._distributed.KilledWorker):
            error = ClusterError(
                f"every worker that ran it died ({exc.allowed_failures + 1} in a row: killed, "
                "or out of memory); the input was given up"
            )
            error.workers_died = True  # the executor may submit it again (``retries``)
            raise error from None
        if isinstance(exc, ImportError) and "convkit" in str(exc):
            raise ClusterError(
                f"the workers cannot import convkit ({exc}): install it on every worker, in "
                "the same version as here"
            ) from None
        raise exc

    def is_ok(self, future: Any) -> bool:
        """True when ``future`` finished and its input succeeded (its files are written)."""
        if future.status != "finished":
            return False
        try:
            return bool(future.result(timeout=0)[0])
        except Exception:  # noqa: BLE001 - anything else is not a success
            return False


def connect(cluster: Cluster) -> Session:
    """A :class:`Session` on ``cluster``'s scheduler."""
    return Session(cluster)

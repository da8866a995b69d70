"""Scaling out: the 200-image grayscale + Sobel batch on a loopback Dask cluster.

``convkit filter FOLDER --gray -k sobel-y -d OUT`` (the batch of bench_opencv.py: 200
JPEGs of 640x480) run four ways, each a whole process timed from start to exit,
interleaved (A B C D A B C D ...), medians:

* locally with ``-j 1`` and ``-j 2`` (threads);
* on a Dask cluster on 127.0.0.1 with 1 worker and with 2 workers (1 thread each, started
  once with ``dask scheduler`` / ``dask worker`` and warmed up; their start-up not counted).

Targets (issue 12): 2 workers at least 1.7x the throughput of 1 worker; 2 workers within
1.3x of the local ``-j 2`` wall time. Then where a cluster run's time goes: the CPU seconds
of the client, the scheduler and the worker during one run on the 1-worker cluster (against
the local ``-j 1`` run's), and the bytes pickled per task; the per-task overhead of tasks
that do nothing (client -> scheduler -> worker -> back, on the 2-worker cluster); and the
figures extrapolated to 100 workers.

    make bench                # or: .venv/bin/python benchmarks/bench_scaling.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_opencv import ENV, make_data  # noqa: E402 - the same batch, made the same way

PY = sys.executable
DASK = str(Path(PY).with_name("dask"))
CONVKIT = [PY, "-m", "convkit"]


class LoopbackCluster:
    """A scheduler and ``workers`` single-threaded worker processes on 127.0.0.1."""

    def __init__(self, work: Path, workers: int):
        self.folder = work / f"cluster{workers}"
        (self.folder / "workers").mkdir(parents=True)
        self.file = self.folder / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.file)]
        )
        while not self.file.exists():
            time.sleep(0.05)
        self._start(
            [DASK, "worker", "--scheduler-file", str(self.file), "--nworkers", str(workers)]
            + ["--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
            + ["--local-directory", str(self.folder / "workers")]
        )
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, cmd: list[str]) -> None:
        log = (self.folder / "log.txt").open("ab")
        self.procs.append(
            subprocess.Popen(
                cmd, cwd=self.folder / "workers", stdout=log, stderr=log, start_new_session=True
            )
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and their children."""
    import psutil  # a dependency of distributed

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for one in [proc, *proc.children(recursive=True)]:
                times = one.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def where_time_goes(cluster: LoopbackCluster, run_local, run_cluster) -> dict[str, float]:
    """CPU seconds of one local ``-j 1`` run and of one run on ``cluster``, by process."""
    import resource

    def children() -> float:
        use = resource.getrusage(resource.RUSAGE_CHILDREN)
        return use.ru_utime + use.ru_stime

    scheduler, workers = cluster.procs[0].pid, cluster.procs[1].pid
    before = children()
    run_local()
    local = children() - before
    sched0, work0, before = cpu_seconds([scheduler]), cpu_seconds([workers]), children()
    run_cluster()
    return {
        "local -j 1 (whole process)": local,
        "cluster: client (whole process)": children() - before,
        "cluster: scheduler": cpu_seconds([scheduler]) - sched0,
        "cluster: worker": cpu_seconds([workers]) - work0,
    }


def task_bytes(cluster: LoopbackCluster, folder: Path, out: Path) -> int:
    """Bytes one task of this batch weighs, pickled as the client sends it (median, over a
    run of the batch's first 20 images on ``cluster``, in this process)."""
    import cloudpickle

    from convkit.engine import cluster as engine
    from convkit.engine.executor import BatchOptions
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import collect_sources
    from convkit.image.tasks import filter_images

    sizes: list[int] = []
    original = engine.Session.submit_many

    def measured(self, tasks):
        sizes.extend(len(cloudpickle.dumps(task)) for _, task in tasks)
        return original(self, tasks)

    engine.Session.submit_many = measured
    try:
        sources = collect_sources([str(folder)]).sources[:20]
        options = BatchOptions(scheduler_file=str(cluster.file))
        filter_images(sources, ["sobel-y"], OutputPlan(out_dir=out), gray=True, batch=options)
    finally:
        engine.Session.submit_many = original
    return int(statistics.median(sizes)) if sizes else 0


def task_overhead(cluster: LoopbackCluster, tasks: int) -> tuple[float, float]:
    """Seconds per task of tasks that do nothing, through the executor (throughput over
    ``tasks``), and the round trip of one task alone."""
    from convkit.engine.executor import BatchOptions, Task

    options = BatchOptions(scheduler_file=str(cluster.file))
    with options.executor(tasks) as executor:
        start = time.perf_counter()
        executor.run_tasks(lambda i: Task(abs, (i,)))
        many = (time.perf_counter() - start) / tasks
    singles = []
    for _ in range(20):
        with options.executor(1) as executor:
            start = time.perf_counter()
            executor.run_tasks(lambda i: Task(abs, (i,)))
            singles.append(time.perf_counter() - start)
    return many, statistics.median(singles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender (median)")
    parser.add_argument("--images", type=int, default=200, help="images in the batch")
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks for the overhead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convkit-scaling-") as tmp:
        work = Path(tmp)
        _, folder = make_data(work, args.images)
        clusters = {n: LoopbackCluster(work, n) for n in (1, 2)}
        try:
            command = [*CONVKIT, "filter", str(folder), "--gray", "-k", "sobel-y", "-q"]

            def run(extra: list[str]):
                def go() -> float:
                    out = work / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    return timed([*command, "-d", str(out), *extra])

                return go

            contenders = {
                "local -j 1": run(["-j", "1"]),
                "local -j 2": run(["-j", "2"]),
                "cluster, 1 worker": run(["--scheduler-file", str(clusters[1].file)]),
                "cluster, 2 workers": run(["--scheduler-file", str(clusters[2].file)]),
            }
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for go in contenders.values():  # warm-up: page cache, .pyc, OpenCV on workers
                go()
            for _ in range(args.repeat):
                for name, go in contenders.items():
                    times[name].append(go())
            cpu = where_time_goes(
                clusters[1], contenders["local -j 1"], contenders["cluster, 1 worker"]
            )
            payload = task_bytes(clusters[1], folder, work / "probe")
            many, single = task_overhead(clusters[2], args.tasks)
        finally:
            for cluster in clusters.values():
                cluster.stop()
    med = {name: statistics.median(values) for name, values in times.items()}
    n = args.images
    print(f"\nfilter --gray -k sobel-y, {n} images of 640x480 (median of {args.repeat})")
    for name, value in med.items():
        print(f"  {name:<20} {value:7.3f} s   {n / value:7.1f} images/s")
    speedup = med["cluster, 1 worker"] / med["cluster, 2 workers"]
    ratio = med["cluster, 2 workers"] / med["local -j 2"]
    print(f"\n  2 workers vs 1 worker: {speedup:.2f}x the throughput (target >= 1.7x)")
    print(f"  2 workers vs local -j 2: {ratio:.2f}x the wall time (target <= 1.3x)")
    print("\nwhere the time goes: CPU seconds of one run (1-worker cluster), by process")
    for name, value in cpu.items():
        print(f"  {name:<32} {value:6.2f} s   {value / n * 1e3:6.2f} ms per image")
    print(f"  one task pickled: {payload:,} bytes")
    per_image = med["local -j 1"] / n  # one core's work per image, start-up included
    print(f"\nper-task overhead ({args.tasks} no-op tasks on 2 workers through the executor):")
    print(
        f"  {many * 1e3:.2f} ms per task in a stream ({1 / many:,.0f} tasks/s); "
        f"{single * 1e3:.1f} ms for one task alone (round trip)"
    )
    demand = 100 / per_image
    print(
        f"\n100 workers: each takes ~{per_image * 1e3:.1f} ms per image, so they could do "
        f"{demand:,.0f} images/s; the stream measured here carries {1 / many:,.0f} tasks/s."
    )
    print(
        f"  => about {min(demand, 1 / many):,.0f} images/s, "
        f"{min(100.0, (1 / many) / (1 / per_image)):.0f}x one worker: "
        + (
            "the workers are the limit."
            if demand < 1 / many
            else "the client and scheduler are the limit; heavier images per task scale further."
        )
    )


if __name__ == "__main__":
    main()

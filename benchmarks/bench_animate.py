"""Whole-process timing of `convkit animate` (issue 13).

Targets: a 7x7 input, 3x3 kernel, stride 2 GIF in well under a second of work beyond
start-up; a 32x32 animation with numbers (1,024 frames, every step) in under 10 s;
``--json`` for a 512x512 input (262,144 steps, 2.4 million taps) in under 2 s. Each case is
timed as a whole process against ``convkit animate --help`` (the start-up: Python, Typer,
the command) in the same run, interleaved; prints medians of the wall time and of the CPU
time (user + system of the process: on a busy machine the wall time grows, the CPU time
much less) and the time beyond start-up.

    make bench        # or: .venv/bin/python benchmarks/bench_animate.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
ANIMATE = [PY, "-m", "convkit", "animate"]


def cases(out: Path) -> dict[str, tuple[list[str], int]]:
    """{name: (command, how many runs relative to --runs: the slow one runs fewer)}."""
    return {
        "start-up: animate --help": ([*ANIMATE, "--help"], 1),
        "7x7, 3x3, stride 2, GIF": (
            [*ANIMATE, "-i", "7", "--kernel-size", "3", "-s", "2", "-o", str(out / "a.gif")],
            1,
        ),
        "7x7, 3x3, stride 2, GIF, --numbers": (
            [*ANIMATE, "-i", "7", "--kernel-size", "3", "-s", "2", "--numbers"]
            + ["-o", str(out / "b.gif")],
            1,
        ),
        "32x32 --numbers, 1,024 frames, GIF": (
            [*ANIMATE, "-i", "32", "--kernel-size", "3", "-p", "same", "--numbers"]
            + ["--max-frames", "2000", "-o", str(out / "c.gif")],
            3,
        ),
        "512x512 --json (to /dev/null)": (
            [*ANIMATE, "-i", "512", "--kernel-size", "3", "-p", "same", "--json"],
            1,
        ),
    }


# See bench_opencv.py: measure with .pyc caching, as on a user's machine.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        table = cases(Path(folder))
        times: dict[str, list[float]] = {name: [] for name in table}
        cpu: dict[str, list[float]] = {name: [] for name in table}
        for cmd, _ in table.values():  # warm-up: writes the .pyc files
            subprocess.run(
                cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        for run in range(args.runs):
            for name, (cmd, every) in table.items():
                if run % every:
                    continue
                before = _children_cpu()
                start = time.perf_counter()
                subprocess.run(
                    cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                times[name].append(time.perf_counter() - start)
                cpu[name].append(_children_cpu() - before)
        sizes = {p.name: p.stat().st_size for p in Path(folder).iterdir()}
    base = statistics.median(next(iter(times.values())))
    base_cpu = statistics.median(next(iter(cpu.values())))
    print(
        f"convkit animate (medians; start-up = `animate --help`: {base:.2f} s wall, "
        f"{base_cpu:.2f} s CPU)"
    )
    print(f"  {'':<38} {'wall':>7}   {'beyond':>6}   {'CPU':>6}   {'beyond':>6}")
    for name, values in times.items():
        med, med_cpu = statistics.median(values), statistics.median(cpu[name])
        print(
            f"  {name:<38} {med:7.2f}   {med - base:6.2f}   {med_cpu:6.2f}   "
            f"{med_cpu - base_cpu:6.2f}   ({len(values)} runs)"
        )
    print("  GIF sizes: " + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sorted(sizes.items())))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()

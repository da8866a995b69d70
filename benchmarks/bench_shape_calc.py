"""Whole-process timing of `convkit shape-calc` on a 20-layer stack (issue 3).

Target: at most 2x the wall time of `python -c "import typer, rich"`, the floor of any
Typer + Rich command. Uses hyperfine when installed (Debian package `hyperfine`), else a
loop of interleaved runs; prints medians and the ratio.

    make bench        # or: .venv/bin/python benchmarks/bench_shape_calc.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PY = sys.executable
# Twenty layers: a VGG-style CIFAR network as people write it.
STACK = (
    "conv2d(32, 3, padding=same) bn relu conv2d(32, 3, padding=same) bn relu maxpool2d(2) "
    "conv2d(64, 3, padding=same) bn relu conv2d(64, 3, padding=same) bn relu maxpool2d(2) "
    "dropout(0.25) flatten dense(512) relu dropout(0.5) dense(10)"
)
CASES = {
    "python -c 'import typer, rich'": [PY, "-c", "import typer, rich"],
    "shape-calc, 20 layers (table)": [PY, "-m", "convkit", "shape-calc", "-i", "32x32x3", STACK],
    "shape-calc, 20 layers (--json)": [
        PY,
        "-m",
        "convkit",
        "shape-calc",
        "-i",
        "32x32x3",
        STACK,
        "--json",
    ],
    "shape-calc, one layer": [
        PY,
        "-m",
        "convkit",
        "shape-calc",
        "--input",
        "512",
        "--kernel",
        "15",
    ],
}
# See bench_opencv.py: measure with .pyc caching, as on a user's machine.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from convkit.arithmetic.spec import parse_spec

    layers = len(parse_spec(STACK))
    assert layers == 20, f"the stack has {layers} layers"
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for cmd in CASES.values():  # warm-up: writes the .pyc files
        subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(next(iter(times.values())))
    print(f"shape-calc start-up (median of {args.runs}; target <= 2.00x)")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<34} {med * 1000:7.1f} ms   {med / base:5.2f}x")


if __name__ == "__main__":
    main()

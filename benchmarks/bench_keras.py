"""Whole-process timings of `convkit conv` and `convkit run` beside hand-written Keras scripts.

The work: 512x512 photos, gray, through

* conv: Conv2D with the four edges4 kernels (4x4), then ReLU; the 8 maps of each image
  written as 8-bit PNGs, each rescaled from its min..max (convkit's default picture);
* run:  conv2d(8, 3) relu maxpool2d(2) with seeded random weights; the 24 maps written.

Montages are left out (`--no-montage`) so that both sides do the same work; the convkit
default (with montages) is timed as well, for information. The scripts are what a person
would write: import Keras, build the model, predict, write the PNGs with cv2.imwrite. For
one image the script calls `model.predict`; for the batch it is run three ways (one
`predict` per image, `predict(batch_size=32)`, and calling the model directly on batches of
32), and convkit is compared with the fastest. Every contender is a fresh process, timed
from start to exit; runs are interleaved (A B C A B C ...) and the median is reported.

Targets (issue 4): one image at most 1.0x the script; 200 images at least as fast as the
script's best way.

    .venv/bin/python benchmarks/bench_keras.py [--repeat N] [--images N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
CONVKIT = [PY, "-m", "convkit"]

# Python caches compiled modules (.pyc) after a first run; an environment that forbids it
# (PYTHONDONTWRITEBYTECODE) would make every run recompile convkit and measure that instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

SCRIPT_HEAD = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2, numpy as np, keras

MODE, SRC, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
paths = [SRC] if os.path.isfile(SRC) else sorted(
    os.path.join(SRC, f) for f in os.listdir(SRC) if f.endswith(".png"))

def load(p):
    return cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2GRAY).astype(np.float32)[:, :, None]

def write(p, outs, i):
    stem = os.path.splitext(os.path.basename(p))[0]
    for name, o in zip(NAMES, outs):
        for c in range(o.shape[-1]):
            pixels = cv2.normalize(o[i, :, :, c], None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)
            cv2.imwrite(f"{OUT}/{stem}_{name}-{c + 1}.png", pixels)
"""

CONV_MODEL = """
k = np.array([[-1, -1, 1, 1]] * 4, np.float32)
bank = np.stack([k, -k, k.T, -k.T], axis=-1)[:, :, None, :]
inp = keras.Input((512, 512, 1))
x = keras.layers.Conv2D(4, 4, name="conv")(inp)
y = keras.layers.Activation("relu", name="relu")(x)
model = keras.Model(inp, [x, y])
model.get_layer("conv").set_weights([bank, np.zeros(4, np.float32)])
NAMES = ("conv", "relu")
"""

RUN_MODEL = """
keras.utils.set_random_seed(0)
inp = keras.Input((512, 512, 1))
a = keras.layers.Conv2D(8, 3)(inp)
b = keras.layers.Activation("relu")(a)
c = keras.layers.MaxPooling2D(2)(b)
model = keras.Model(inp, [a, b, c])
NAMES = ("conv2d", "activation", "max_pooling2d")
"""

SCRIPT_TAIL = """
if MODE == "predict-each":          # one predict per image
    for p in paths:
        outs = model.predict(load(p)[None], verbose=0)
        write(p, outs, 0)
elif MODE == "predict-batch":       # predict 64 images at a time, batch_size=32
    for s in range(0, len(paths), 64):
        chunk = paths[s:s + 64]
        outs = model.predict(np.stack([load(p) for p in chunk]), batch_size=32, verbose=0)
        for i, p in enumerate(chunk):
            write(p, outs, i)
else:                               # "call": the model called directly on batches of 32
    for s in range(0, len(paths), 32):
        chunk = paths[s:s + 32]
        outs = [np.asarray(o) for o in model(np.stack([load(p) for p in chunk]))]
        for i, p in enumerate(chunk):
            write(p, outs, i)
"""


def make_data(work: Path, n: int) -> tuple[Path, Path]:
    """One 512x512 PNG, and a folder of n different 512x512 PNGs, from the sample photos."""
    samples = sorted((ROOT / "sample_images").glob("*.png"))
    photos = [
        cv2.resize(cv2.imread(str(p), cv2.IMREAD_COLOR), (512, 512), interpolation=cv2.INTER_AREA)
        for p in samples
    ]
    one = work / "one.png"
    cv2.imwrite(str(one), photos[0])
    folder = work / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        shifted = np.roll(photos[i % len(photos)], int(rng.integers(0, 512)), axis=1)
        cv2.imwrite(str(folder / f"img{i:04d}.png"), shifted)
    return one, folder


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--images", type=int, default=200, help="images in the batch")
    parser.add_argument(
        "--only", choices=["conv", "run"], default=None, help="time one command only"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="convkit-bench-keras-") as tmp:
        work = Path(tmp)
        one, folder = make_data(work, args.images)
        out = work / "out"

        def fresh(sub: str) -> str:
            d = out / sub
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            return str(d)

        scripts = {}
        for name, model in (("conv", CONV_MODEL), ("run", RUN_MODEL)):
            scripts[name] = work / f"script_{name}.py"
            scripts[name].write_text(SCRIPT_HEAD + model + SCRIPT_TAIL)

        convkit_args = {
            "conv": ["conv", "-k", "edges4", "--activation", "relu"],
            "run": ["run", "--spec", "conv2d(8, 3) relu maxpool2d(2)", "--seed", "0"],
        }

        cases = []
        for cmd in ("conv", "run"):
            if args.only and cmd != args.only:
                continue
            script = str(scripts[cmd])
            ck = convkit_args[cmd]
            cases.append(
                (
                    f"{cmd}: one 512x512 image",
                    {
                        "keras script (predict)": lambda s=script: timed(
                            [PY, s, "predict-each", str(one), fresh("s1")]
                        ),
                        "convkit --no-montage": lambda ck=ck: timed(
                            [*CONVKIT, *ck, str(one), "--no-montage", "-q", "-d", fresh("c1")]
                        ),
                        "convkit (with montages)": lambda ck=ck: timed(
                            [*CONVKIT, *ck, str(one), "-q", "-d", fresh("m1")]
                        ),
                    },
                    "keras script (predict)",
                )
            )
            cases.append(
                (
                    f"{cmd}: {args.images} images of 512x512",
                    {
                        "script: predict per image": lambda s=script: timed(
                            [PY, s, "predict-each", str(folder), fresh("se")]
                        ),
                        "script: predict(batch 32)": lambda s=script: timed(
                            [PY, s, "predict-batch", str(folder), fresh("sb")]
                        ),
                        "script: model(batch 32)": lambda s=script: timed(
                            [PY, s, "call", str(folder), fresh("sc")]
                        ),
                        "convkit --no-montage": lambda ck=ck: timed(
                            [*CONVKIT, *ck, str(folder), "--no-montage", "-q", "-d", fresh("cb")]
                        ),
                        "convkit (with montages)": lambda ck=ck: timed(
                            [*CONVKIT, *ck, str(folder), "-q", "-d", fresh("mb")]
                        ),
                    },
                    None,  # compared with the fastest script
                )
            )

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        for title, contenders, base_name in cases:
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for run in contenders.values():  # warm-up: page cache, .pyc files
                run()
            for _ in range(args.repeat):
                for name, run in contenders.items():
                    times[name].append(run())
            medians = {name: statistics.median(v) for name, v in times.items()}
            scripts_only = {n: m for n, m in medians.items() if not n.startswith("convkit")}
            base_name = base_name or min(scripts_only, key=scripts_only.get)
            base = medians[base_name]
            print(f"\n{title}  (median of {args.repeat}; ratios to {base_name})")
            for name, med in medians.items():
                spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
                print(f"  {name:<28} {med:7.2f} s   {med / base:5.2f}x   (runs {spread} s)")


if __name__ == "__main__":
    main()

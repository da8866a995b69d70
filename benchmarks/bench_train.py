"""Training throughput of `convkit train-cifar`'s input pipeline beside a plain `model.fit`.

Both sides train the same network (the default `small` model, same initial weights) on the
same random CIFAR-shaped images, with the same batch size and one CPU budget:

* convkit: uint8 images, `convkit.training.pipeline.train_dataset` (seeded per-epoch
  shuffle, parallel gather + float32 conversion per batch, prefetch),
  `model.fit(..., steps_per_epoch=...)`;
* plain: the tutorial way, `x.astype("float32")` once up front (4x the memory), then
  `model.fit(x, y, batch_size=..., shuffle=True)` on the NumPy arrays.

Each side trains 2 epochs per repeat; the first (tracing, warm-up) is discarded and the
second is timed by a callback, from its first batch to its last, in wall-clock time and in
CPU time of the whole process (all threads; steadier than wall time on a shared machine).
Sides alternate (A B A B) so a slow moment of a shared machine hits both. Prints the
medians and the ratios. Target (issue 5): convkit >= 1.0x plain.

With --accuracy it also trains the default model with train-cifar's defaults on a generated
CIFAR look-alike (tests/cifar_fixtures.py) and prints the test accuracy: the README's
figure. Real CIFAR-10 accuracy needs the real data.

    .venv/bin/python benchmarks/bench_train.py [--images 50000] [--repeats 2] [--accuracy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from convkit.arithmetic.spec import parse_spec  # noqa: E402
from convkit.heavy import import_keras  # noqa: E402
from convkit.nn.models import set_seed  # noqa: E402
from convkit.training import pipeline, runfolder, trainer  # noqa: E402
from convkit.training.config import TrainConfig, model_spec_text  # noqa: E402
from convkit.training.models import build_classifier, compile_model  # noqa: E402


def epoch_timer(keras):
    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.t0 is None:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.t1, self.c1 = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append((self.t1 - self.t0, self.c1 - self.c0))

    return Timer()


def new_model(seed: int):
    set_seed(seed)
    model, _ = build_classifier(parse_spec(model_spec_text("small", 10)), 10, (32, 32, 3))
    compile_model(model, 1e-3)
    return model


def run_convkit(x, y, batch_size, seed) -> tuple[float, float]:
    keras = import_keras()
    model = new_model(seed)
    timer = epoch_timer(keras)
    ds = pipeline.train_dataset(
        x, y, batch_size=batch_size, seed=seed, first_epoch=0, epochs=2, augment=False
    )
    model.fit(
        ds,
        epochs=2,
        steps_per_epoch=pipeline.steps_for(len(x), batch_size),
        callbacks=[timer],
        shuffle=False,
        verbose=0,
    )
    wall, cpu = timer.times[-1]
    return len(x) / wall, len(x) / cpu


def run_plain(x_float, y, batch_size, seed) -> tuple[float, float]:
    keras = import_keras()
    model = new_model(seed)
    timer = epoch_timer(keras)
    model.fit(
        x_float, y, batch_size=batch_size, epochs=2, shuffle=True, callbacks=[timer], verbose=0
    )
    wall, cpu = timer.times[-1]
    return len(x_float) / wall, len(x_float) / cpu


def throughput(images: int, batch_size: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.uint8)
    x_float = x.astype("float32")  # the tutorial's one-off conversion (not timed)
    print(
        f"training throughput, model small, {images:,} images of 32x32x3, batch {batch_size}, "
        f"{os.cpu_count()} CPUs; second epoch of each run timed, {repeats} runs per side"
    )
    ours, plain = [], []
    for r in range(repeats):
        ours.append(run_convkit(x, y, batch_size, seed=r))
        print(
            f"  run {r + 1}: convkit pipeline {ours[-1][0]:8,.0f} images/s "
            f"({ours[-1][1]:,.0f} per CPU-second)",
            flush=True,
        )
        plain.append(run_plain(x_float, y, batch_size, seed=r))
        print(
            f"  run {r + 1}: plain model.fit  {plain[-1][0]:8,.0f} images/s "
            f"({plain[-1][1]:,.0f} per CPU-second)",
            flush=True,
        )
    for i, what in ((0, "images/s (wall clock)"), (1, "images per CPU-second")):
        a = statistics.median(o[i] for o in ours)
        b = statistics.median(p[i] for p in plain)
        print(f"median {what}: convkit {a:,.0f}, plain fit {b:,.0f}, ratio {a / b:.2f}x")
    print(
        f"memory of the training images: uint8 {x.nbytes / 2**20:,.0f} MiB "
        f"(convkit) vs float32 {x_float.nbytes / 2**20:,.0f} MiB (plain)"
    )


def accuracy(epochs: int, per_batch: int, test: int) -> None:
    import cifar_fixtures as cf

    from convkit.training import cifar

    with tempfile.TemporaryDirectory() as tmp:
        where = cf.write_cifar10(Path(tmp), form="tar", per_batch=per_batch, test=test, seed=0)
        data = cifar.load("cifar10", where, allow_download=False)
        out = runfolder.prepare_out(Path(tmp) / "run")
        config = TrainConfig(epochs=epochs, seed=0)
        result = trainer.train(config, data, out, plots=False)
    m = result.metrics
    print(
        f"generated CIFAR look-alike ({m['train_images']:,} training, {m['val_images']:,} "
        f"validation, {m['test_images']:,} test images), model small, {epochs} epochs, "
        f"defaults otherwise: test accuracy {m['test_accuracy']:.1%} "
        f"(best validation {m['best_val_accuracy']:.1%}), "
        f"{m['train_images_per_second']:,.0f} training images/s, "
        f"{m['wall_time_seconds']:.0f} s in all"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true", help="also the README's accuracy")
    parser.add_argument("--only-accuracy", action="store_true")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--per-batch", type=int, default=2000, help="generated images per batch")
    args = parser.parse_args()
    import_keras()
    if not args.only_accuracy:
        throughput(args.images, args.batch_size, args.repeats)
    if args.accuracy or args.only_accuracy:
        accuracy(args.epochs, args.per_batch, test=2000)


if __name__ == "__main__":
    main()

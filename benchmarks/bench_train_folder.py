"""`convkit train DATA` on a folder of 5,000 small PNG files, beside the plain Keras way.

Two measurements, each the median of a few repeats, sides alternating (A B A B) so a slow
moment of a shared machine hits both:

* **Scan**: convkit's scan of the folder (listing it, each file's header checked, each file
  decoded once through convkit's I/O on the executor with ``-j`` = every core, the decoded
  images kept: `convkit.training.folders.find_layout` + `scan_folder`) beside simply
  decoding each file once: the loop a user would write, one file after the other, over a
  list of the files made before the clock starts (``for path in files:
  cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)``).
  Target: < 1.5x the time. Both sides read from the page cache (a first, untimed pass).
  Also shown: the listing alone, and ``read_folder`` (the scan, the split, every image
  prepared to a 32x32x3 uint8 array: what ``convkit train`` does before its first epoch).
* **Training throughput**, same network (the `small` model, 3 classes, 32x32x3, the same
  initial weights), same batch size:

  - convkit: `read_folder` (the scan, the stratified split, the images prepared to uint8
    arrays) and the training pipeline `convkit train` uses (`pipeline.train_dataset`:
    seeded shuffle, parallel gather, float32 per batch, prefetch) into `model.fit`;
  - plain: `keras.utils.image_dataset_from_directory(folder, image_size=(32, 32))` into
    `model.fit`, as a tutorial writes it (each epoch decodes the PNGs again).

  Each run trains 3 epochs; the first (tracing, warm-up) is discarded, the others timed by
  a callback from their first batch to their last: images per second of wall-clock time,
  and per CPU-second of the whole process. Target: convkit >= 1.0x plain.

Finally one end-to-end `convkit train` (`session.train_folder`, 3 epochs, results written)
for its own per-epoch figures and total time.

    .venv/bin/python benchmarks/bench_train_folder.py [--images 5000] [--repeats 3]
        [--scan-repeats 7] [--scan-only]

``--scan-only`` measures the scan alone, in seconds (no TensorFlow).
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
from convkit.heavy import import_cv2, import_keras  # noqa: E402
from convkit.nn.models import set_seed  # noqa: E402
from convkit.training import pipeline  # noqa: E402
from convkit.training.config import TrainConfig, model_spec_text  # noqa: E402
from convkit.training.models import build_classifier, compile_model  # noqa: E402

SIZE = 32
EPOCHS = 3


def make_folder(root: Path, images: int) -> Path:
    import folder_fixtures as ff

    per_class = images // len(ff.CLASS_NAMES)
    return ff.make_flat(
        root / "shapes", per_class=per_class, odd=False, sizes=((SIZE, SIZE),), formats=(".png",)
    )


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.png"))


# --------------------------------------------------------------------------- scan


def plain_decode(files: list[Path]) -> float:
    cv2 = import_cv2()
    t0 = time.perf_counter()
    for path in files:
        image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert image is not None
    return time.perf_counter() - t0


def convkit_scan(folder: Path) -> tuple[float, float]:
    """Seconds of the whole scan (listing included), and of the listing alone."""
    from convkit.engine.executor import default_jobs
    from convkit.training.folders import find_layout, scan_folder

    t0 = time.perf_counter()
    layout = find_layout(folder)
    listed = time.perf_counter() - t0
    scan = scan_folder(layout, jobs=default_jobs(), keep_bytes=2**31)
    seconds = time.perf_counter() - t0
    assert not scan.bad and len(scan.readable()) == len(layout.files)
    return seconds, listed


def convkit_read(folder: Path) -> float:
    """Seconds of ``read_folder``: the scan, the split, the images prepared (32x32 RGB)."""
    from convkit.training.folder_data import read_folder
    from convkit.training.folders import find_layout

    config = TrainConfig(dataset="folder", image_size=[SIZE, SIZE], color="rgb", seed=0)
    t0 = time.perf_counter()
    read_folder(find_layout(folder), config, seed=0)
    return time.perf_counter() - t0


def scan_bench(folder: Path, repeats: int) -> dict[str, float]:
    """Medians, sides alternating: the scan, its listing, read_folder, the plain loop."""
    files = files_of(folder)
    plain_decode(files)  # both sides read from the page cache
    convkit_scan(folder)  # and OpenCV is loaded
    times: dict[str, list[float]] = {"plain": [], "scan": [], "listing": [], "read": []}
    for _ in range(repeats):
        times["plain"].append(plain_decode(files))
        scan, listed = convkit_scan(folder)
        times["scan"].append(scan)
        times["listing"].append(listed)
        times["read"].append(convkit_read(folder))
    return {key: statistics.median(values) for key, values in times.items()}


# --------------------------------------------------------------------------- training


def epoch_timer(keras):
    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.images = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0, self.batches = None, 0

        def on_train_batch_begin(self, batch, logs=None):
            if self.t0 is None:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.t1, self.c1 = time.perf_counter(), time.process_time()
            self.batches += 1

        def on_epoch_end(self, epoch, logs=None):
            self.times.append((self.t1 - self.t0, self.c1 - self.c0, self.batches))

    return Timer()


def new_model(seed: int, classes: int):
    set_seed(seed)
    model, _ = build_classifier(
        parse_spec(model_spec_text("small", classes)), classes, (SIZE, SIZE, 3)
    )
    compile_model(model, 1e-3)
    return model


def rates(timer, batch_size: int, images: int) -> tuple[float, float]:
    """Images per wall second and per CPU second over the epochs after the first (the last
    batch of an epoch may be short: counted by the images an epoch holds)."""
    timed = timer.times[1:]
    wall = sum(t[0] for t in timed)
    cpu = sum(t[1] for t in timed)
    return images * len(timed) / wall, images * len(timed) / cpu


def run_convkit(folder: Path, batch_size: int, seed: int) -> tuple[float, float]:
    from convkit.training.folder_data import read_folder
    from convkit.training.folders import find_layout

    keras = import_keras()
    config = TrainConfig(dataset="folder", image_size=[SIZE, SIZE], color="rgb", seed=seed)
    data, _ = read_folder(find_layout(folder), config, seed=seed)
    model = new_model(seed, data.num_classes)
    timer = epoch_timer(keras)
    x, y = data.x_train, data.y_train
    ds = pipeline.train_dataset(
        x, y, batch_size=batch_size, seed=seed, first_epoch=0, epochs=EPOCHS, augment=False
    )
    steps = pipeline.steps_for(len(x), batch_size)
    model.fit(ds, epochs=EPOCHS, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return rates(timer, batch_size, len(x))


def run_plain(folder: Path, batch_size: int, seed: int) -> tuple[float, float]:
    keras = import_keras()
    ds = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=batch_size, seed=seed, verbose=False
    )
    model = new_model(seed, len(ds.class_names))
    timer = epoch_timer(keras)
    model.fit(ds, epochs=EPOCHS, callbacks=[timer], verbose=0)
    return rates(timer, batch_size, len(files_of(folder)))


def train_bench(folder: Path, batch_size: int, repeats: int):
    ours, plain = [], []
    for r in range(repeats):
        ours.append(run_convkit(folder, batch_size, seed=r))
        plain.append(run_plain(folder, batch_size, seed=r))
        print(
            f"  run {r + 1}: convkit {ours[-1][0]:7,.0f} images/s ({ours[-1][1]:,.0f} per "
            f"CPU-s), plain {plain[-1][0]:7,.0f} images/s ({plain[-1][1]:,.0f} per CPU-s)",
            flush=True,
        )
    return (
        [statistics.median(o[i] for o in ours) for i in (0, 1)],
        [statistics.median(p[i] for p in plain) for i in (0, 1)],
    )


def end_to_end(folder: Path, batch_size: int, tmp: Path) -> str:
    from convkit.training.config import TrainSettings
    from convkit.training.session import train_folder

    t0 = time.perf_counter()
    result = train_folder(
        folder,
        TrainSettings(epochs=EPOCHS, batch_size=batch_size, seed=0),
        out=tmp / "run",
    )
    total = time.perf_counter() - t0
    later = [r.images_per_second for r in result.history[1:]]
    m = result.metrics
    return (
        f"end to end, convkit train {folder.name} --epochs {EPOCHS}: {total:.1f} s in all "
        f"(scan, split, training, evaluation, results), epochs 2-{EPOCHS} "
        f"{statistics.median(later):,.0f} images/s, test accuracy {m['test_accuracy']:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan-repeats", type=int, default=7)
    parser.add_argument("--scan-only", action="store_true", help="the scan alone (seconds)")
    parser.add_argument("--no-end-to-end", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.images)
        n = len(files_of(folder))
        print(
            f"{n:,} PNG files of {SIZE}x{SIZE}x3 in 3 class folders; {os.cpu_count()} CPUs "
            f"(load {os.getloadavg()[0]:.2f}); medians of {args.scan_repeats} repeats (scan)"
            + ("" if args.scan_only else f", {args.repeats} (training)"),
            flush=True,
        )
        t = scan_bench(folder, args.scan_repeats)
        plain_ms = t["plain"] * 1000
        rows = [
            ("scan (list, check, decode, keep)", f"{t['scan'] * 1000:.0f} ms",
             f"decode once {plain_ms:.0f} ms", f"{t['scan'] / t['plain']:.2f}x", "< 1.5x"),
            ("  of which listing the folder", f"{t['listing'] * 1000:.0f} ms", "", "", ""),
            ("read_folder (scan, split, prepare)", f"{t['read'] * 1000:.0f} ms",
             f"decode once {plain_ms:.0f} ms", f"{t['read'] / t['plain']:.2f}x", ""),
        ]  # fmt: skip
        if not args.scan_only:
            import_keras()
            (ours, ours_cpu), (plain, plain_cpu) = train_bench(
                folder, args.batch_size, args.repeats
            )
            rows += [
                ("training images/s (wall)", f"{ours:,.0f}", f"{plain:,.0f}",
                 f"{ours / plain:.2f}x", ">= 1.0x"),
                ("training images per CPU-s", f"{ours_cpu:,.0f}", f"{plain_cpu:,.0f}",
                 f"{ours_cpu / plain_cpu:.2f}x", ">= 1.0x"),
            ]  # fmt: skip
        head = ("", "convkit", "baseline", "ratio", "target")
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
        for row in [head, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if not args.scan_only and not args.no_end_to_end:
            print(end_to_end(folder, args.batch_size, Path(tmp)))


if __name__ == "__main__":
    main()

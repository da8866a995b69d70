"""Whole-process timings of `convkit grayscale` and `convkit filter -k sobel-y`.

Beside each convkit command run the same work done by a minimal Python + OpenCV script
(one process; a 2-process pool for the batch) and, where installed, ImageMagick's `convert`
and libvips's `vips`, once per file. Every command is a fresh process, timed from start to
exit; runs are interleaved (A B C A B C ...) so that a slow moment of a shared machine hits
all contenders alike. Prints medians and the ratio to the minimal OpenCV script.

Targets (issue 2): one 12-megapixel image at most 1.2x the minimal script; the 200-image
batch with -j 2 at most 1.2x the 2-process script.

    make bench                # or: .venv/bin/python benchmarks/bench_opencv.py [--repeat N]
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

SOBEL_Y = "[[-1,-2,-1],[0,0,0],[1,2,1]]"

# The minimal scripts: what a person would write with OpenCV alone, producing the same
# pictures as convkit's defaults (gray; Sobel magnitude saturated to 8 bits).
ONE_GRAY = """
import sys, cv2
img = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)
cv2.imwrite(sys.argv[2], cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
"""
ONE_SOBEL = f"""
import sys, cv2, numpy as np
img = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)
k = np.array({SOBEL_Y}, np.float32)
cv2.imwrite(sys.argv[2], cv2.convertScaleAbs(cv2.filter2D(img, cv2.CV_32F, k)))
"""
POOL_TEMPLATE = """
import sys, os, cv2, numpy as np
from multiprocessing import Pool
k = np.array({sobel}, np.float32)
def one(args):
    src, dst = args
    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
    {body}
    cv2.imwrite(dst, out)
if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    jobs = [(os.path.join(src, f), os.path.join(dst, f.rsplit(".", 1)[0] + ".png"))
            for f in sorted(os.listdir(src))]
    with Pool(2) as pool:
        pool.map(one, jobs, chunksize=8)
"""
POOL_GRAY = POOL_TEMPLATE.format(sobel=SOBEL_Y, body="out = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)")
POOL_SOBEL = POOL_TEMPLATE.format(
    sobel=SOBEL_Y, body="out = cv2.convertScaleAbs(cv2.filter2D(img, cv2.CV_32F, k))"
)


def make_data(work: Path, n_small: int) -> tuple[Path, Path]:
    """A 4000x3000 JPEG photo and a folder of n_small 640x480 JPEGs, from the samples."""
    samples = sorted((ROOT / "sample_images").glob("*.png"))
    photos = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in samples]
    big = work / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(photos[0], (4000, 3000), interpolation=cv2.INTER_CUBIC))
    folder = work / "small"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n_small):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        y, x = rng.integers(0, h // 4), rng.integers(0, w // 4)
        crop = photo[y : y + 3 * h // 4, x : x + 3 * w // 4]
        cv2.imwrite(str(folder / f"img{i:04d}.jpg"), cv2.resize(crop, (640, 480)))
    return big, folder


# Python caches compiled modules (.pyc) after the first run on a user's machine; an
# environment that forbids it (PYTHONDONTWRITEBYTECODE, set in some sandboxes) would make
# every convkit run recompile the package and measure that instead.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str] | str, *, shell: bool = False) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, shell=shell, check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def per_file_loop(tool_args, src: Path, dst: Path) -> str:
    """A shell loop running one external process per file, as a person would script it."""
    step = tool_args("$f", f"{dst}/$b.png")
    return f'for f in "{src}"/*.jpg; do b=$(basename "$f" .jpg); {step}; done'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender (median)")
    parser.add_argument("--images", type=int, default=200, help="images in the batch")
    args = parser.parse_args()

    have_vips = shutil.which("vips") is not None
    magick = shutil.which("magick") or (
        "/usr/bin/convert" if Path("/usr/bin/convert").exists() else None
    )
    with tempfile.TemporaryDirectory(prefix="convkit-bench-") as tmp:
        work = Path(tmp)
        big, folder = make_data(work, args.images)
        out = work / "out"
        out.mkdir()
        scripts = {}
        for name, text in [
            ("one_gray", ONE_GRAY),
            ("one_sobel", ONE_SOBEL),
            ("pool_gray", POOL_GRAY),
            ("pool_sobel", POOL_SOBEL),
        ]:
            scripts[name] = work / f"{name}.py"
            scripts[name].write_text(text)
        mat = work / "sobel_y.mat"
        mat.write_text("3 3\n-1 -2 -1\n0 0 0\n1 2 1\n")
        o = str(out)

        def fresh(sub: str) -> str:
            d = out / sub
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            return str(d)

        cases: list[tuple[str, dict[str, callable]]] = []
        single_gray = {
            "opencv script": lambda: timed([PY, str(scripts["one_gray"]), str(big), f"{o}/a.png"]),
            "convkit": lambda: timed([*CONVKIT, "grayscale", str(big), "-o", f"{o}/b.png"]),
        }
        single_sobel = {
            "opencv script": lambda: timed([PY, str(scripts["one_sobel"]), str(big), f"{o}/a.png"]),
            "convkit": lambda: timed(
                [*CONVKIT, "filter", str(big), "-k", "sobel-y", "-o", f"{o}/b.png"]
            ),
        }
        batch_gray = {
            "opencv 2-process pool": lambda: timed(
                [PY, str(scripts["pool_gray"]), str(folder), fresh("pg")]
            ),
            "convkit -j 2": lambda: timed(
                [*CONVKIT, "grayscale", str(folder), "-d", fresh("cg"), "-j", "2"]
            ),
        }
        batch_sobel = {
            "opencv 2-process pool": lambda: timed(
                [PY, str(scripts["pool_sobel"]), str(folder), fresh("ps")]
            ),
            "convkit -j 2": lambda: timed(
                [*CONVKIT, "filter", str(folder), "-k", "sobel-y", "-d", fresh("cs"), "-j", "2"]
            ),
        }
        if have_vips:
            single_gray["vips"] = lambda: timed(
                ["vips", "colourspace", str(big), f"{o}/c.png", "b-w"]
            )
            single_sobel["vips"] = lambda: timed(["vips", "conv", str(big), f"{o}/c.png", str(mat)])
            batch_gray["vips per file"] = lambda: timed(
                per_file_loop(
                    lambda s, d: f'vips colourspace "{s}" "{d}" b-w', folder, fresh("vg")
                ),
                shell=True,
            )
            batch_sobel["vips per file"] = lambda: timed(
                per_file_loop(lambda s, d: f'vips conv "{s}" "{d}" {mat}', folder, fresh("vs")),
                shell=True,
            )
        if magick:
            single_gray["imagemagick"] = lambda: timed(
                [magick, str(big), "-colorspace", "Gray", f"{o}/d.png"]
            )
            kernel = "3x3: -1,-2,-1 0,0,0 1,2,1"
            single_sobel["imagemagick"] = lambda: timed(
                [magick, str(big), "-morphology", "Convolve", kernel, f"{o}/d.png"]
            )
            batch_gray["imagemagick per file"] = lambda: timed(
                per_file_loop(
                    lambda s, d: f'{magick} "{s}" -colorspace Gray "{d}"', folder, fresh("mg")
                ),
                shell=True,
            )
            batch_sobel["imagemagick per file"] = lambda: timed(
                per_file_loop(
                    lambda s, d: f'{magick} "{s}" -morphology Convolve "{kernel}" "{d}"',
                    folder,
                    fresh("ms"),
                ),
                shell=True,
            )
        cases = [
            ("grayscale, one 4000x3000 image", single_gray),
            ("filter -k sobel-y, one 4000x3000 image", single_sobel),
            (f"grayscale, {args.images} images of 640x480", batch_gray),
            (f"filter -k sobel-y, {args.images} images of 640x480", batch_sobel),
        ]
        missing = [t for t, ok in [("vips", have_vips), ("imagemagick", magick)] if not ok]
        if missing:
            print(f"(not installed, skipped: {', '.join(missing)})")
        for title, contenders in cases:
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for run in contenders.values():  # warm-up: page cache, .pyc files
                run()
            for _ in range(args.repeat):
                for name, run in contenders.items():
                    times[name].append(run())
            base = statistics.median(next(iter(times.values())))
            print(f"\n{title}  (median of {args.repeat})")
            for name, values in times.items():
                med = statistics.median(values)
                print(f"  {name:<24} {med:7.3f} s   {med / base:5.2f}x")


if __name__ == "__main__":
    main()

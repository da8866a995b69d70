"""Small folders of labelled images for ``convkit train DATA``: the tests and the benchmark
write them. Nothing here imports TensorFlow.

Three classes a tiny CNN learns in seconds, each a shape in its own colour on a noisy dark
background, at a random position and size: ``disk`` (red), ``square`` (green), ``cross``
(blue). Their brightness differs too (OpenCV's gray weights), so a gray copy still tells
them apart.

The files come in every format convkit reads (PNG, JPEG, WebP, TIFF, BMP, in turn), at a few
sizes; :func:`make_flat` and :func:`make_split` add the odd ones the issue names: one
corrupt file, one 16-bit PNG, one gray PNG, one PNG with alpha.

Run it to write a folder: ``python tests/folder_fixtures.py OUT_DIR [--per-class N]
[--size S] [--png-only]``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ("cross", "disk", "square")  # sorted, as folder names are read
_COLORS_BGR = {"disk": (40, 40, 230), "square": (40, 210, 40), "cross": (230, 60, 40)}
FORMATS = (".png", ".jpg", ".webp", ".tiff", ".bmp")
CORRUPT = "broken.png"
SIXTEEN_BIT = "deep16.png"
GRAY = "gray.png"
ALPHA = "alpha.png"


def draw(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One BGR uint8 picture of class ``name``, ``size`` = (height, width)."""
    height, width = size
    image = rng.integers(0, 50, (height, width, 3), dtype=np.uint8)
    side = min(height, width)
    radius = int(rng.integers(side // 5, side // 3 + 1))
    cy = int(rng.integers(radius, height - radius))
    cx = int(rng.integers(radius, width - radius))
    color = _COLORS_BGR[name]
    if name == "disk":
        cv2.circle(image, (cx, cy), radius, color, -1)
    elif name == "square":
        cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), color, -1)
    else:
        thick = max(1, radius // 2)
        cv2.rectangle(
            image, (cx - radius, cy - thick // 2), (cx + radius, cy + thick // 2), color, -1
        )
        cv2.rectangle(
            image, (cx - thick // 2, cy - radius), (cx + thick // 2, cy + radius), color, -1
        )
    return image


def write(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok, path
    path.write_bytes(buf.tobytes())


def fill_class(
    folder: Path,
    name: str,
    count: int,
    rng: np.random.Generator,
    *,
    sizes=((28, 28), (32, 32), (32, 40), (36, 32)),
    formats=FORMATS,
) -> list[Path]:
    """``count`` pictures of class ``name`` in ``folder``, formats and sizes in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        size = sizes[i % len(sizes)]
        path = folder / f"{name}_{i:04d}{formats[i % len(formats)]}"
        write(path, draw(name, size, rng))
        paths.append(path)
    return paths


def add_odd_files(folder: Path, name: str, rng: np.random.Generator) -> dict[str, Path]:
    """The odd files in one class folder: corrupt, 16-bit, gray, alpha."""
    picture = draw(name, (32, 32), rng)
    odd = {
        "corrupt": folder / CORRUPT,
        "sixteen": folder / SIXTEEN_BIT,
        "gray": folder / GRAY,
        "alpha": folder / ALPHA,
    }
    odd["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00not really a png" * 4)
    write(odd["sixteen"], picture.astype(np.uint16) * 257)
    write(odd["gray"], cv2.cvtColor(draw(name, (32, 32), rng), cv2.COLOR_BGR2GRAY))
    alpha = np.dstack([draw(name, (32, 32), rng), np.full((32, 32), 255, np.uint8)])
    write(odd["alpha"], alpha)
    return odd


def make_flat(root: Path, *, per_class: int = 30, seed: int = 0, odd: bool = True, **kw) -> Path:
    """``root/CLASS/...`` for the three classes; with ``odd``, the odd files in ``disk/``."""
    rng = np.random.default_rng(seed)
    for name in CLASS_NAMES:
        fill_class(root / name, name, per_class, rng, **kw)
    if odd:
        add_odd_files(root / "disk", "disk", rng)
    return root


def make_split(
    root: Path, *, train: int = 24, test: int = 8, val: int = 0, seed: int = 0, odd: bool = True
) -> Path:
    """``root/train/CLASS``, ``root/test/CLASS`` (and ``root/val/CLASS`` when ``val``)."""
    rng = np.random.default_rng(seed)
    for part, count in (("train", train), ("test", test), ("val", val)):
        if count:
            for name in CLASS_NAMES:
                fill_class(root / part / name, name, count, rng)
    if odd:
        add_odd_files(root / "train" / "square", "square", rng)
    return root


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--size", type=int, default=0, help="one square size for all")
    parser.add_argument("--png-only", action="store_true")
    args = parser.parse_args()
    extra = {}
    if args.size:
        extra["sizes"] = ((args.size, args.size),)
    if args.png_only:
        extra["formats"] = (".png",)
    make_flat(args.out, per_class=args.per_class, odd=not args.png_only, **extra)
    print(args.out)

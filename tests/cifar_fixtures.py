"""A small CIFAR look-alike, written in the exact on-disk format of the real "python version".

The tests, the benchmark and the README's accuracy figure use it: there is no network in CI
and the real data is 170 MB. Nothing here imports TensorFlow.

* The pictures: ten classes a small CNN can learn, each a pattern (stripes of one
  orientation, a checkerboard, a disk, a ring...) at a random phase, position and size, in
  colours drawn from palettes that several classes share (so colour alone is not enough),
  plus pixel noise.
* The files: pickles as Python 2's cPickle wrote them at protocol 2 (``\\x80\\x02``): a dict
  whose keys and strings are Python 2 ``str`` (``SHORT_BINSTRING``/``BINSTRING`` opcodes,
  bytes when read with ``encoding="bytes"``), the array under the global
  ``numpy.core.multiarray._reconstruct``, its pixels one raw byte string in CIFAR's row
  order (1024 red, 1024 green, 1024 blue values per image). Folder form
  (``cifar-10-batches-py/``) or the ``cifar-10-python.tar.gz`` archive.

Run it to write a set: ``python tests/cifar_fixtures.py OUT_DIR [--per-batch N] [--test N]``.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "h-stripes",
    "v-stripes",
    "diagonal",
    "checker",
    "disk",
    "ring",
    "square",
    "cross",
    "dots",
    "gradient",
)

# Three palettes; each is shared by three or four classes.
_PALETTES = (
    ((220, 60, 50), (240, 200, 40), (250, 120, 30)),  # warm
    ((40, 90, 220), (40, 190, 210), (120, 70, 210)),  # cool
    ((50, 170, 60), (160, 200, 60), (30, 120, 90)),  # green
)
_CLASS_PALETTE = (0, 1, 2, 0, 1, 2, 0, 1, 2, 0)


def _pattern(kind: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A float mask in 0..1 of one class's pattern, randomly placed."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(5.0, 9.0)
    phase = rng.uniform(0, 2 * np.pi)
    cy, cx = rng.uniform(10, 22, size=2)
    radius = rng.uniform(6, 11)
    if kind == 0:  # horizontal stripes
        return (np.sin(2 * np.pi * yy / period + phase) > 0).astype(np.float32)
    if kind == 1:  # vertical stripes
        return (np.sin(2 * np.pi * xx / period + phase) > 0).astype(np.float32)
    if kind == 2:  # diagonal stripes
        return (np.sin(2 * np.pi * (xx + yy) / (period * 1.4) + phase) > 0).astype(np.float32)
    if kind == 3:  # checkerboard
        cell = int(rng.integers(3, 6))
        off = rng.integers(0, cell, size=2)
        return (((yy + off[0]) // cell + (xx + off[1]) // cell) % 2).astype(np.float32)
    dist = np.hypot(yy - cy, xx - cx)
    if kind == 4:  # filled disk
        return (dist < radius).astype(np.float32)
    if kind == 5:  # ring
        return (np.abs(dist - radius) < 2.0).astype(np.float32)
    if kind == 6:  # filled square
        return ((np.abs(yy - cy) < radius * 0.8) & (np.abs(xx - cx) < radius * 0.8)).astype(
            np.float32
        )
    if kind == 7:  # cross
        w = rng.uniform(2.0, 3.5)
        return ((np.abs(yy - cy) < w) | (np.abs(xx - cx) < w)).astype(np.float32)
    if kind == 8:  # grid of dots
        step = rng.uniform(6.0, 8.0)
        dy = (yy + phase) % step - step / 2
        dx = (xx + phase) % step - step / 2
        return (np.hypot(dy, dx) < 1.8).astype(np.float32)
    # kind 9: a smooth gradient in a random direction
    angle = rng.uniform(0, 2 * np.pi)
    g = (np.cos(angle) * (xx - 16) + np.sin(angle) * (yy - 16)) / 32 + 0.5
    return np.clip(g, 0, 1).astype(np.float32)


def make_images(
    n: int, *, seed: int = 0, num_classes: int = 10, noise: float = 18.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pictures ``uint8 (n, 32, 32, 3)`` (RGB) and balanced labels ``uint8 (n,)``."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % num_classes).astype(np.uint8)
    rng.shuffle(labels)
    images = np.empty((n, 32, 32, 3), np.uint8)
    for i, label in enumerate(labels):
        kind = int(label) % 10
        palette = _PALETTES[_CLASS_PALETTE[kind]]
        fg = np.array(palette[rng.integers(len(palette))], np.float32)
        fg += rng.normal(0, 15, 3)
        bg = rng.uniform(0, 90, 3).astype(np.float32)
        if label >= 10:  # more classes than patterns (CIFAR-100 fakes): shift the colours
            fg = np.roll(fg, int(label) // 10)
        mask = _pattern(kind, rng)[..., None]
        picture = bg + mask * (fg - bg) + rng.normal(0, noise, (32, 32, 3))
        images[i] = np.clip(np.round(picture), 0, 255).astype(np.uint8)
    return images, labels


# --------------------------------------------------------------------------- Python 2 pickles


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote at protocol 2.

    Python 2 ``str`` is a byte string: pickled with ``SHORT_BINSTRING``/``BINSTRING`` and read
    back by Python 3 (``encoding="bytes"``) as ``bytes``. Python 3's own protocol-2 pickles
    spell ``bytes`` as ``_codecs.encode(...)`` calls instead, so this pickler writes both
    ``bytes`` and ASCII ``str`` the Python 2 way. NumPy's ``_reconstruct`` is written under
    its old module, ``numpy.core.multiarray``.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("ascii")
        n = len(data)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + struct.pack("<B", n) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    def save_text(self, obj):
        if obj.isascii():
            self.save_py2_str(obj)
        else:
            pickle._Pickler.save_str(self, obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_text

    def save_global(self, obj, name=None):
        if obj is np.zeros(0).__reduce__()[0]:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf).dump(obj)
    return buf.getvalue()


def batch_dict(
    images: np.ndarray, labels: np.ndarray, *, batch_label: str, label_key: str = "labels"
) -> dict:
    """A batch as CIFAR stores it: ``data`` rows of 1024 R, 1024 G, 1024 B values."""
    n = len(images)
    rows = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n, 3072))
    return {
        b"batch_label": batch_label.encode(),
        label_key.encode(): [int(v) for v in labels],
        b"data": rows,
        b"filenames": [f"fake_{i:05d}.png".encode() for i in range(n)],
    }


def cifar10_files(
    *,
    per_batch: int = 100,
    test: int = 200,
    seed: int = 0,
    names=CLASS_NAMES,
) -> dict[str, bytes]:
    """The seven files of ``cifar-10-batches-py`` (file name -> bytes)."""
    files = {}
    for i in range(1, 6):
        x, y = make_images(per_batch, seed=seed * 100 + i)
        files[f"data_batch_{i}"] = py2_pickle(
            batch_dict(x, y, batch_label=f"training batch {i} of 5")
        )
    x, y = make_images(test, seed=seed * 100 + 99)
    files["test_batch"] = py2_pickle(batch_dict(x, y, batch_label="testing batch 1 of 1"))
    files["batches.meta"] = py2_pickle(
        {
            b"label_names": [n.encode() for n in names],
            b"num_cases_per_batch": per_batch,
            b"num_vis": 3072,
        }
    )
    return files


def cifar100_files(*, train: int = 400, test: int = 200, seed: int = 0) -> dict[str, bytes]:
    """The three files of ``cifar-100-python`` (20 classes used of the 100)."""
    files = {}
    for name, n, s in (("train", train, seed * 100 + 1), ("test", test, seed * 100 + 2)):
        x, y = make_images(n, seed=s, num_classes=20)
        d = batch_dict(x, y, batch_label=f"{name}ing batch 1 of 1", label_key="fine_labels")
        d[b"coarse_labels"] = [int(v) // 5 for v in y]
        files[name] = py2_pickle(d)
    files["meta"] = py2_pickle(
        {
            b"fine_label_names": [f"fine-{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse-{i}".encode() for i in range(20)],
        }
    )
    return files


def write_folder(root: Path, files: dict[str, bytes], folder: str) -> Path:
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


def write_archive(path: Path, files: dict[str, bytes], folder: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)
        for name, data in files.items():
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size = len(data)
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(data))
    return path


def write_cifar10(root: Path, *, form: str = "dir", **kwargs) -> Path:
    """Write a fake CIFAR-10 under ``root``; return the batch folder or the ``.tar.gz``."""
    files = cifar10_files(**kwargs)
    if form == "tar":
        return write_archive(Path(root) / "cifar-10-python.tar.gz", files, "cifar-10-batches-py")
    return write_folder(root, files, "cifar-10-batches-py")


def write_cifar100(root: Path, *, form: str = "dir", **kwargs) -> Path:
    files = cifar100_files(**kwargs)
    if form == "tar":
        return write_archive(Path(root) / "cifar-100-python.tar.gz", files, "cifar-100-python")
    return write_folder(root, files, "cifar-100-python")


# --------------------------------------------------------------------------- hostile files


class _RunsCommand:
    """Pickles as a call of ``os.system(command)``: what a malicious data file would hold."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def malicious_pickle(marker: Path, *, inside_batch: bool = True) -> bytes:
    """A pickle whose loading with plain ``pickle.load`` would create ``marker``."""
    payload = _RunsCommand(f"touch {marker}")
    if inside_batch:
        obj = {b"batch_label": b"evil", b"data": payload, b"labels": [0]}
    else:
        obj = payload
    return pickle.dumps(obj, protocol=2)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a fake CIFAR-10 in the real format.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-batch", type=int, default=1000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tar", action="store_true", help="write the .tar.gz instead")
    args = parser.parse_args()
    where = write_cifar10(
        args.out,
        form="tar" if args.tar else "dir",
        per_batch=args.per_batch,
        test=args.test,
        seed=args.seed,
    )
    print(where)

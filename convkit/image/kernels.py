"""Convolution kernels: named presets, inline matrices and kernel files.

A kernel argument (``-k``) is one of

* a preset name, some with parameters: ``sobel-x``, ``box:5``, ``gaussian:7:1.5``;
* an inline matrix: rows split by ``;``, values by ``,`` or spaces: ``"1,0,-1;2,0,-2;1,0,-1"``;
* a file: ``.txt``/``.csv`` (one row per line, ``#`` comments) or ``.npy`` (loaded with
  ``allow_pickle=False``).

:func:`parse_kernels` turns one argument into a list of :class:`Kernel` (a preset may be a
bank of several filters, such as ``edges4``). Matrices are float64, 2-D, finite and
non-empty; anything else is a :class:`~convkit.errors.KernelError` that names the problem.

All kernels are written the way ``cv2.filter2D`` applies them: as a *correlation* (the
matrix is not flipped). ``sobel-x`` responds to intensity rising from left to right.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convkit.errors import KernelError
from convkit.image.sources import file_kind


@dataclass(frozen=True)
class Kernel:
    """A named 2-D kernel. ``name`` is safe to use in a file name."""

    name: str
    matrix: np.ndarray
    source: Path | None = None
    """The file it was read from, if any (no output may overwrite it)."""

    @property
    def is_zero_sum(self) -> bool:
        """True for derivative-like kernels (Sobel, Laplacian...), whose response is signed."""
        return abs(float(self.matrix.sum())) <= 1e-9 * max(1.0, float(np.abs(self.matrix).sum()))


def _m(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


_EDGE4 = _m([[-1, -1, 1, 1]] * 4)

_FIXED: dict[str, tuple[str, np.ndarray]] = {
    "identity": ("passes the image through unchanged", _m([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
    "sobel-x": ("horizontal gradient: vertical edges", _m([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])),
    "sobel-y": ("vertical gradient: horizontal edges", _m([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])),
    "scharr-x": (
        "Sobel-x with better rotation symmetry",
        _m([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]),
    ),
    "scharr-y": (
        "Sobel-y with better rotation symmetry",
        _m([[-3, -10, -3], [0, 0, 0], [3, 10, 3]]),
    ),
    "prewitt-x": ("unweighted horizontal gradient", _m([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])),
    "prewitt-y": ("unweighted vertical gradient", _m([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])),
    "laplacian": ("second derivative, 4-neighbour", _m([[0, 1, 0], [1, -4, 1], [0, 1, 0]])),
    "laplacian-diag": ("second derivative, 8-neighbour", _m([[1, 1, 1], [1, -8, 1], [1, 1, 1]])),
    "sharpen": ("identity plus a Laplacian", _m([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])),
    "emboss": ("relief lit from the top left", _m([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])),
    "outline": ("edges in every direction", _m([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])),
}

_BANKS: dict[str, tuple[str, list[np.ndarray]]] = {
    "edges4": (
        "the four 4x4 edge filters of the CNN tutorials: [[-1,-1,1,1]]*4, its negation, "
        "its transpose and the transpose's negation",
        [_EDGE4, -_EDGE4, _EDGE4.T.copy(), -_EDGE4.T],
    ),
}

_PARAMETRIC = {
    "box": ("box:N", "N x N mean (blur)"),
    "gaussian": ("gaussian:N[:SIGMA]", "N x N Gaussian blur; SIGMA defaults to OpenCV's rule"),
}


def box(size: int) -> np.ndarray:
    """An ``size x size`` mean filter (sums to 1)."""
    return np.full((size, size), 1.0 / (size * size))


def gaussian(size: int, sigma: float | None = None) -> np.ndarray:
    """An ``size x size`` Gaussian that sums to 1.

    ``sigma`` defaults to OpenCV's ``getGaussianKernel`` rule,
    ``0.3 * ((size - 1) * 0.5 - 1) + 0.8``.
    """
    if sigma is None or sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma * sigma))
    g /= g.sum()
    return np.outer(g, g)


def preset_names() -> list[str]:
    return [*_FIXED, *_BANKS, *(usage for usage, _ in _PARAMETRIC.values())]


def list_presets() -> list[tuple[str, str, list[np.ndarray]]]:
    """``(name, description, matrices)`` for every preset, parametric ones at an example size."""
    rows = [(name, desc, [m]) for name, (desc, m) in _FIXED.items()]
    rows += [(name, desc, ms) for name, (desc, ms) in _BANKS.items()]
    rows.append(("box:N", _PARAMETRIC["box"][1] + " (shown: box:3)", [box(3)]))
    rows.append(
        ("gaussian:N[:SIGMA]", _PARAMETRIC["gaussian"][1] + " (shown: gaussian:3)", [gaussian(3)])
    )
    return rows


def parse_kernels(arg: str, *, position: int = 1) -> list[Kernel]:
    """Turn one ``-k`` argument into kernels. ``position`` names unnamed inline matrices."""
    text = arg.strip()
    if not text:
        raise KernelError("empty kernel argument")
    key = text.lower()
    if key in _FIXED:
        return [Kernel(key, _FIXED[key][1].copy())]
    if key in _BANKS:
        return [Kernel(f"{key}-{i + 1}", m.copy()) for i, m in enumerate(_BANKS[key][1])]
    head = key.split(":", 1)[0]
    if head in _PARAMETRIC:
        if ":" not in key:
            raise KernelError(f"kernel {arg!r} needs a size: {_PARAMETRIC[head][0]}")
        return [_parametric(key)]
    path = Path(text)
    if path.suffix.lower() in (".npy", ".txt", ".csv") or file_kind(path)[0] == "file":
        return [Kernel(_safe_name(path.stem), load_kernel_file(path), path)]
    # Preset names have no separators and files were handled above, so anything with
    # ',', ';' or spaces, or a bare number, is meant as a matrix: parse it and name what
    # is wrong with it rather than calling it an unknown name.
    if re.search(r"[,;\s]", text) or _is_number(text):
        return [Kernel(f"kernel{position}", parse_matrix(text, source=f"kernel {text!r}"))]
    close = difflib.get_close_matches(key, [*_FIXED, *_BANKS, *_PARAMETRIC], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else " (see convkit filter --list-kernels)"
    raise KernelError(f"unknown kernel {arg!r}: not a preset, a matrix or a file{hint}")


def parse_kernel_args(args: Sequence[str]) -> list[Kernel]:
    """Every kernel of several ``-k`` arguments, in order, each name unique (a repeated
    name gets ``-2``, ``-3``...: ``sobel-x``, ``sobel-x-2``), so results never collide."""
    if not args:
        raise KernelError("no kernels given")
    kernels = [k for i, arg in enumerate(args, 1) for k in parse_kernels(arg, position=i)]
    names = unique_names([k.name for k in kernels])
    return [
        k if k.name == n else Kernel(n, k.matrix, k.source)
        for k, n in zip(kernels, names, strict=True)
    ]


def unique_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` with the second and later copies of a name suffixed ``-2``, ``-3``..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return tuple(out)


def _parametric(key: str) -> Kernel:
    parts = key.split(":")
    name = parts[0]
    usage = _PARAMETRIC[name][0]
    try:
        size = int(parts[1])
        sigma = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError:
        raise KernelError(f"bad kernel {key!r}: expected {usage}") from None
    if len(parts) > (3 if name == "gaussian" else 2):
        raise KernelError(f"bad kernel {key!r}: expected {usage}")
    if size < 1 or size > 1001:
        raise KernelError(f"bad kernel {key!r}: N must be between 1 and 1001, got {size}")
    if name == "gaussian" and size % 2 == 0:
        raise KernelError(f"bad kernel {key!r}: a Gaussian needs an odd size, got {size}")
    if sigma is not None and not math.isfinite(sigma):
        raise KernelError(f"bad kernel {key!r}: SIGMA must be a finite number")
    matrix = box(size) if name == "box" else gaussian(size, sigma)
    label = f"{name}-{size}" + (f"-{parts[2]}" if len(parts) > 2 and parts[2] else "")
    return Kernel(label, matrix)


def parse_matrix(text: str, *, source: str = "kernel") -> np.ndarray:
    """Parse ``"1,0,-1; 2,0,-2"``-style text (rows by ``;`` or newlines, values by ``,``/space)."""
    rows = []
    for line in re.split(r"[;\n]", text):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if re.search(r",\s*,|^,|,$", line):
            raise KernelError(f"{source}: empty value between commas in {line!r}")
        cells = [c for c in re.split(r"[,\s]+", line) if c]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise KernelError(f"{source}: {bad!r} is not a number") from None
    return validate_matrix(rows, source=source)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate_matrix(rows, *, source: str = "kernel") -> np.ndarray:
    """Check that ``rows`` is a non-empty, rectangular, finite 2-D matrix; return float64."""
    if isinstance(rows, list):
        if not rows or all(len(r) == 0 for r in rows):
            raise KernelError(f"{source}: empty kernel")
        widths = sorted({len(r) for r in rows})
        if len(widths) > 1:
            raise KernelError(
                f"{source}: ragged rows (lengths {', '.join(map(str, widths))}); "
                "every row needs the same number of values"
            )
    matrix = np.asarray(rows)
    if matrix.dtype == object or not (
        np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool
    ):
        raise KernelError(f"{source}: values must be numbers, got {matrix.dtype}")
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if matrix.ndim != 2:
        raise KernelError(
            f"{source}: a kernel must be 2-D, got {matrix.ndim} dimensions {matrix.shape}"
        )
    if matrix.size == 0:
        raise KernelError(f"{source}: empty kernel")
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)):
        raise KernelError(f"{source}: contains NaN or infinity")
    return matrix


_MAX_KERNEL_BYTES = 64 * 1024 * 1024  # an 8-byte 2896x2896 kernel: far past any use


def load_kernel_file(path: Path) -> np.ndarray:
    """Load a ``.npy`` (no pickles) or text/CSV kernel file."""
    source = str(path)
    kind, problem = file_kind(path)
    if kind != "file":
        raise KernelError(
            f"{source}: no such kernel file" if kind == "missing" else f"{source}: {problem}"
        )
    if path.suffix.lower() == ".npy":
        from convkit.files import load_npy

        data = load_npy(path, max_bytes=_MAX_KERNEL_BYTES, error=KernelError)
        return validate_matrix(data, source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KernelError(f"{source}: not a text file") from None
    except OSError as exc:
        raise KernelError(f"{source}: cannot read ({exc.strerror})") from None
    return parse_matrix(text, source=source)


def _safe_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "kernel"

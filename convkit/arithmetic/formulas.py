"""The output-length formulas of one spatial axis, as plain functions (like Keras's
``operation_utils``).

For one spatial axis of length ``n``, kernel ``k``, stride ``s``, dilation ``d``:

* effective kernel: ``k_eff = d·(k − 1) + 1``
* explicit zero padding ``p`` on each side (``valid`` is ``p = 0``):
  ``out = ⌊(n + 2·p − k_eff) / s⌋ + 1``
* ``same`` (Keras/TensorFlow): ``out = ⌈n / s⌉``; the padding that achieves it is
  ``max((out − 1)·s + k_eff − n, 0)``, the smaller half before, the larger half after.
* ``full`` (flag mode only, Keras has no such padding): ``p = k_eff − 1`` on each side,
  so every input pixel meets every kernel tap: ``out = ⌊(n + k_eff − 2) / s⌋ + 1``.
* transposed convolution (Keras's ``compute_conv_transpose_output_shape``), with
  ``output_padding`` ``a`` (``None`` when not given):

  - ``valid``: ``(n − 1)·s + k_eff + a``; when ``a`` is ``None``: ``(n − 1)·s + max(k_eff, s)``
  - ``same``: ``n·s``; when ``a`` is given: ``(n − 1)·s + k_eff mod 2 + a``
  - explicit padding ``p`` (flag mode, PyTorch's rule): ``(n − 1)·s − 2·p + k_eff + a``

Errors are :class:`convkit.errors.SpecError`.
"""

from __future__ import annotations

from typing import NamedTuple

from convkit.errors import SpecError

__all__ = [
    "Padding",
    "Window",
    "conv_output_length",
    "conv_transpose_output_length",
    "effective_kernel",
    "resolve_padding",
    "same_padding",
    "transpose_same_problem",
    "uncovered_rows",
    "window",
]

Padding = str | int | tuple[int, int]


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The span of a dilated kernel: ``k_eff = d·(k − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_padding(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow ``same`` padding of one axis as ``(before, after)``.

    ``out = ⌈n / s⌉``; total ``= max((out − 1)·s + k_eff − n, 0)``; ``before = total // 2``
    (TensorFlow puts the odd pixel after).
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(
    n: int, kernel: int, stride: int, padding: Padding, dilation: int = 1
) -> tuple[int, int]:
    """Zero padding ``(before, after)`` of one axis.

    ``padding`` is ``"valid"`` (0), ``"same"`` (see :func:`same_padding`), ``"full"``
    (``k_eff − 1`` on each side), an int (that many on each side) or a ``(before, after)`` pair.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            return same_padding(n, kernel, stride, dilation)
        if mode == "full":
            p = effective_kernel(kernel, dilation) - 1
            return p, p
        raise SpecError(
            f"padding must be 'valid', 'same', 'full' or a number. Received: padding={padding!r}"
        )
    if isinstance(padding, bool):
        raise SpecError(f"padding must be a number. Received: padding={padding!r}")
    if isinstance(padding, int):
        before = after = padding
    else:
        before, after = padding
    if before < 0 or after < 0:
        raise SpecError(f"padding cannot be negative. Received: padding={padding!r}")
    return before, after


def conv_output_length(
    n: int, kernel: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``⌊(n + before + after − k_eff) / s⌋ + 1``; for ``same`` that equals ``⌈n / s⌉``.
    Returns a value ``<= 0`` when the (dilated) kernel does not fit the padded input; the
    layer-level functions turn that into an error.
    """
    return window(n, kernel, stride, padding, dilation).out


class Window(NamedTuple):
    """A convolution or pooling window along one axis: the input length ``n``, the kernel,
    stride and dilation, the zero padding ``before`` and ``after``, and the output length
    ``out`` (``<= 0`` when the kernel does not fit)."""

    n: int
    kernel: int
    stride: int
    dilation: int
    before: int
    after: int
    out: int

    @property
    def kernel_eff(self) -> int:
        return effective_kernel(self.kernel, self.dilation)

    @property
    def span(self) -> int:
        """``n + before + after − k_eff``: what the stride steps over."""
        return self.n + self.before + self.after - self.kernel_eff

    def padded_input(self, axis: str) -> str:
        """``"input height 10"``, or ``"padded input height 12 (10 + 1 + 1)"``."""
        if self.before + self.after == 0:
            return f"input {axis} {self.n}"
        padded = self.n + self.before + self.after
        return f"padded input {axis} {padded} ({self.n} + {self.before} + {self.after})"


def window(
    n: int, kernel: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> Window:
    """The :class:`Window` of one axis: ``⌊(n + before + after − k_eff) / s⌋ + 1``."""
    before, after = resolve_padding(n, kernel, stride, padding, dilation)
    span = n + before + after - effective_kernel(kernel, dilation)
    return Window(n, kernel, stride, dilation, before, after, span // stride + 1)


def conv_transpose_output_length(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: Padding = "valid",
    output_padding: int | None = None,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution along one axis (Keras's rule).

    ``valid``: ``(n − 1)·s + k_eff + a``, or ``(n − 1)·s + max(k_eff, s)`` when ``a`` is None;
    ``same``: ``n·s``, or ``(n − 1)·s + k_eff mod 2 + a``; an explicit padding ``p`` per side:
    ``(n − 1)·s − 2·p + k_eff + a`` (``a`` None counts as 0).
    """
    k_eff = effective_kernel(kernel, dilation)
    if isinstance(padding, str) and padding.lower() == "valid":
        if output_padding is None:
            return (n - 1) * stride + max(k_eff, stride)
        return (n - 1) * stride + k_eff + output_padding
    if isinstance(padding, str) and padding.lower() == "same":
        if output_padding is None:
            return n * stride
        return (n - 1) * stride + k_eff % 2 + output_padding
    if isinstance(padding, str):
        raise SpecError(
            "a transposed convolution takes padding 'valid', 'same' or a number. "
            f"Received: padding={padding!r}"
        )
    before, after = resolve_padding(n, kernel, stride, padding, dilation)
    return (n - 1) * stride - before - after + k_eff + (output_padding or 0)


def transpose_same_problem(
    axis: str,
    n: int,
    kernel: int,
    stride: int,
    padding: Padding,
    output_padding: int | None,
    dilation: int = 1,
) -> str | None:
    """Why a transposed convolution cannot run along one axis, or None when it can.

    With ``padding="same"`` and an explicit ``output_padding`` ``a``, Keras computes
    ``out = (n − 1)·s + k_eff mod 2 + a``. When ``k_eff`` is even and ``a = 0`` that is
    ``(n − 1)·s``, whose 'same' convolution gives back ``n − 1`` rows, not ``n``: Keras builds
    the layer, but TensorFlow refuses to run it (and for ``n = 1`` the output is empty).
    """
    if not (isinstance(padding, str) and padding.lower() == "same") or output_padding is None:
        return None
    k_eff = effective_kernel(kernel, dilation)
    if k_eff % 2 + output_padding:
        return None
    out = (n - 1) * stride
    kernel_text = f"{kernel}" if dilation == 1 else f"{kernel} (dilated to {k_eff})"
    return (
        f"with padding 'same', output_padding 0 and the even kernel {kernel_text}, the output "
        f"{axis} (n − 1)·s + k_eff mod 2 + output_padding = ({n} − 1)·{stride} + 0 + 0 = {out} "
        + (
            "is empty"
            if out <= 0
            else f"does not map back onto the input {axis} {n} (⌈{out} / {stride}⌉ = "
            f"{-(-out // stride)}): Keras builds it but TensorFlow refuses to run it"
        )
        + "; use output_padding=None or >= 1, or an odd kernel"
    )


def uncovered_rows(
    n: int, kernel: int, stride: int = 1, padding: Padding = "valid", dilation: int = 1
) -> tuple[int, int]:
    """Input rows (or columns) that no window ever reads, as ``(at_the_end, in_between)``.

    ``at_the_end`` are the last rows left over because the stride does not divide
    ``n + before + after − k_eff`` (floor semantics); ``in_between`` are rows skipped between
    windows (stride larger than the kernel) or between the taps of a dilated kernel.
    Padding rows are not counted.

    Counted, not drawn: the rows read are ``i·s + t·d`` (window ``i``, tap ``t``), which
    :func:`_count_read` counts in a range by residue classes, so the cost does not grow with
    the sizes (one class when the stride or the dilation is 1, as in every Conv2D).
    """
    w = window(n, kernel, stride, padding, dilation)
    before, out = w.before, w.out
    if out <= 0:
        return n, 0
    last_read = (out - 1) * stride + (kernel - 1) * dilation
    tail = max(before + n - max(last_read + 1, before), 0)
    first, last = before, min(last_read, before + n - 1)
    if last < first:
        return tail, 0
    read = _count_read(first, last, (stride, out), (dilation, kernel))
    return tail, (last - first + 1) - read


_MAX_CLASSES = 100_000


def _count_read(first: int, last: int, windows: tuple[int, int], taps: tuple[int, int]) -> int:
    """How many of the positions ``first..last`` are some ``i·s + t·d``, ``0 ≤ i < out``,
    ``0 ≤ t < k``, where ``windows`` is ``(s, out)`` and ``taps`` is ``(d, k)``.

    The roles are symmetric; with ``(p, a)`` one of the two and ``(q, b)`` the other,
    ``g = gcd(p, q)``: the ``b`` terms ``t·q`` fall into residue classes modulo ``p``, term
    ``t₀ + j·p/g`` in the class of ``t₀`` (for ``t₀ < min(b, p/g)``). Class ``t₀`` holds
    ``t₀·q + p·u`` for ``u`` in the union of ``m`` runs ``[j·q/g, j·q/g + a − 1]``; counting
    such a union below a bound is a formula. The roles are chosen for the fewer classes.
    """
    import math

    (s, out), (d, k) = windows, taps
    g = math.gcd(s, d)
    options = [((s, out), (d, k)), ((d, k), (s, out))]
    (p, a), (q, b) = min(options, key=lambda o: min(o[1][1], o[0][0] // g))
    classes = min(b, p // g)
    if classes > _MAX_CLASSES:
        raise SpecError(
            f"too many residue classes ({classes:,}) to count the rows a window with both a "
            f"stride and a dilation above 1 reads. Received: strides={s}, dilation_rate={d}"
        )
    period, step = q // g, p // g
    total = 0
    for t0 in range(classes):
        runs = (b - 1 - t0) // step + 1
        offset = t0 * q
        low = -((offset - first) // p)  # ⌈(first − offset) / p⌉
        high = (last - offset) // p
        total += _runs_below(high, runs, period, a) - _runs_below(low - 1, runs, period, a)
    return total


def _runs_below(x: int, runs: int, period: int, length: int) -> int:
    """How many integers ``≤ x`` lie in the union of ``runs`` runs ``[j·period,
    j·period + length − 1]``, ``j = 0 .. runs − 1``."""
    if x < 0:
        return 0
    if length >= period:  # the runs touch or overlap: one run
        return min(x + 1, (runs - 1) * period + length)
    whole, rest = divmod(x, period)
    if whole >= runs:
        return runs * length
    return whole * length + min(rest + 1, length)

"""The networks of ``convkit conv``, ``convkit pool`` and ``convkit run``, as library calls.

Each function checks its parameters once (errors name the parameter, in backticks, see
:mod:`convkit.errors`) and returns a :class:`~convkit.nn.network.Network`; no Keras yet.
``conv`` and ``pool`` only write a layer spec for you::

    conv_network(kernel=["edges4"], activation="relu")
    # = spec_network("conv2d(4, 4, name=conv) activation(relu, name=relu)", kernel=["edges4"])

Sizes (``kernel_size``, ``strides``, ``dilation``, ``size``) are an int, a pair, or text
as the command line takes it (``3``, ``"3x5"``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convkit.arithmetic.formatting import format_dims
from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT, show_int
from convkit.arithmetic.sizes import parse_pair
from convkit.arithmetic.spec import ACTIVATIONS, canonical_activation, parse_spec
from convkit.arithmetic.spec_source import read_spec
from convkit.defaults import KERAS_PADDINGS, POOL_MODES
from convkit.errors import UsageError, check_choice
from convkit.nn.models import check_seed, split_input
from convkit.nn.network import Network, network_from_spec
from convkit.nn.text import plural
from convkit.nn.weights import FilterWeights, filter_weights

if TYPE_CHECKING:
    from convkit.image.kernels import Kernel

Size = int | tuple[int, int] | str
Kernels = Sequence[str] | Sequence["Kernel"] | None


def conv_network(
    *,
    filters: int | None = None,
    kernel_size: Size | None = None,
    strides: Size = 1,
    padding: str = "valid",
    dilation: Size = 1,
    activation: str | None = None,
    use_bias: bool = True,
    kernel: Kernels = None,
    weights: str | Path | FilterWeights | None = None,
    seed: int | None = None,
    color: bool = False,
) -> Network:
    """A ``Conv2D`` layer named ``conv``, then ``activation`` as a layer of its own (so that
    the maps before and after it are both outputs).

    The filters are Keras's random ones (``seed`` repeats them), or ``kernel`` (2-D kernels
    or their ``-k`` texts) or ``weights`` (a ``(KH, KW, C_in, N)`` ``.npy`` file): these fix
    ``filters`` and ``kernel_size``, which default to 1 and 3 otherwise.
    """
    act = _activation(activation)
    check_seed(seed)
    if filters is not None and filters < 1:
        raise UsageError(f"`filters` must be at least 1, got {filters}")
    if filters is not None and filters > MAX_INT:
        raise UsageError(f"`filters` must be at most {MAX_INT_TEXT}, got {show_int(filters)}")
    given = filter_weights(kernel, weights, 3 if color else 1)
    size = None if kernel_size is None else _pair(kernel_size, "kernel_size")
    if given is not None:
        _check_given(given, filters, kernel_size, size)
        filters, size = given.filters, given.kernel_size
    stride2, dilation2 = _pair(strides, "strides"), _pair(dilation, "dilation")
    if max(stride2) > 1 and max(dilation2) > 1:
        raise UsageError(
            f"`strides` {format_dims(stride2)} and `dilation` {format_dims(dilation2)}: "
            "Keras and TensorFlow refuse a stride above 1 together with a dilation above 1; "
            "choose one"
        )
    text = _conv_spec_text(
        filters=filters or 1,
        kernel_size=size or (3, 3),
        strides=stride2,
        padding=_padding(padding),
        dilation=dilation2,
        activation=act,
        use_bias=use_bias,
    )
    return _network(text, color=color, weights=given, seed=seed)


def pool_network(
    *,
    mode: str = "max",
    size: Size = 2,
    strides: Size | None = None,
    padding: str = "valid",
    color: bool = False,
) -> Network:
    """One ``MaxPooling2D`` (``mode`` max) or ``AveragePooling2D`` (avg) layer, named
    ``maxpool`` or ``avgpool``; ``strides`` default to the window ``size``, as in Keras."""
    check_choice(mode, POOL_MODES, "mode")
    text = f"{mode}pool2d({format_dims(_pair(size, 'size'))}"
    if strides is not None:
        text += f", strides={format_dims(_pair(strides, 'strides'))}"
    padding = _padding(padding)
    if padding != "valid":
        text += f", padding={padding}"
    return _network(text + f", name={mode}pool)", color=color)


def spec_network(
    spec: str | None,
    *,
    color: bool = False,
    outputs: Sequence[str] | None = None,
    kernel: Kernels = None,
    weights: str | Path | FilterWeights | None = None,
    seed: int | None = None,
) -> Network:
    """The layers of ``spec``: layer-spec text, a file of it, or ``-`` for stdin (see
    :func:`convkit.arithmetic.spec_source.read_spec`).

    ``color`` asks for colour input (default: as the spec's ``input(...)`` says, else
    gray); ``outputs`` name the layers whose maps are kept (default: all); ``kernel`` or
    ``weights`` set the filters of the first ``Conv2D`` layer, the others keep Keras's
    random weights (``seed``).
    """
    if not spec:
        raise UsageError(
            'give the layers with `spec`, e.g. `spec` "conv2d(8, 3) relu maxpool2d(2)" '
            "or `spec` FILE"
        )
    check_seed(seed)
    source = read_spec(spec)
    declared, _ = split_input(source.layers)
    channels = 3 if color or (declared is not None and declared[2] == 3) else 1
    return network_from_spec(
        source.layers,
        color=True if color else None,
        outputs=outputs,
        weights=filter_weights(kernel, weights, channels),
        seed=seed,
        spec_text=source.text,
        spec_path=None if source.path in (None, "<stdin>") else source.path,
    )


# --------------------------------------------------------------------------- pieces


def _network(text: str, **kwargs) -> Network:
    return network_from_spec(parse_spec(text), spec_text=text, **kwargs)


def _pair(value: Size, param: str) -> tuple[int, int]:
    """A size as ``(A, B)``, positive: the one size parser reads every form of it."""
    if isinstance(value, str):
        return parse_pair(value, param)
    return parse_pair(str(value if isinstance(value, int) else tuple(value)), param)


def _padding(value: str) -> str:
    word = value.strip().lower()
    if word not in KERAS_PADDINGS:
        raise UsageError(
            f"`padding` must be {' or '.join(KERAS_PADDINGS)}, got {value!r} (Keras has no "
            "other; for explicit zeros use `convkit run` with zeropadding2d(p))"
        )
    return word


def _activation(name: str | None) -> str | None:
    """Keras's spelling of ``name``; refused when unknown or ``linear`` (which changes
    nothing: its maps would be the convolution's own)."""
    if name is None:
        return None
    canonical = canonical_activation(name)
    if canonical is not None and canonical != "linear":
        return canonical
    known = [a for a in ACTIVATIONS if a != "linear"]
    close = difflib.get_close_matches(name.lower(), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(
        f"`activation` {name!r} is not a Keras activation ({hint}known: {', '.join(known)})"
    )


def _check_given(given: FilterWeights, filters: int | None, kernel_size: Size | None, size) -> None:
    """``filters`` and ``kernel_size``, when given beside the weights, must agree with them."""
    what = "`kernel` kernels" if given.param == "kernel" else "`weights`"
    if given.param != "kernel" and given.path:
        what += f" {given.path}"
    if filters is not None and filters != given.filters:
        raise UsageError(
            f"`filters` {filters} but the {what} give {plural(given.filters, 'filter')}"
        )
    if size is not None and size != given.kernel_size:
        kh, kw = given.kernel_size
        raise UsageError(f"`kernel_size` {kernel_size} but the {what} are {kh}x{kw}")


def _conv_spec_text(
    *,
    filters: int,
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    activation: str | None,
    use_bias: bool,
) -> str:
    text = f"conv2d({filters}, {format_dims(kernel_size)}"
    if strides != (1, 1):
        text += f", strides={format_dims(strides)}"
    if padding != "valid":
        text += f", padding={padding}"
    if dilation != (1, 1):
        text += f", dilation_rate={format_dims(dilation)}"
    if not use_bias:
        text += ", use_bias=False"
    text += ", name=conv)"
    if activation:
        text += f" activation({activation}, name={activation})"
    return text

"""Layer arguments, checked and normalised once.

Every argument of the catalogue (:mod:`convkit.arithmetic.catalogue`) has a ``kind`` that
says what its value may be; :func:`normalize_value` checks a value against it and returns
the canonical form (``kernel_size=3`` becomes ``(3, 3)``, ``padding="SAME"`` becomes
``"same"``, activations as Keras spells them). :func:`complete` fills in Keras's defaults.
The parser (:mod:`convkit.arithmetic.spec`) uses both with carets on the spec text;
:func:`normalize_kwargs` does the same for keyword arguments given from Python. Whatever
comes out is trusted by the shape rules (:mod:`convkit.arithmetic.rules`).

Layer arguments are named plainly, not in backticks: they are arguments of Keras layers in
a spec, not parameters of a convkit function or command (see :mod:`convkit.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from convkit.arithmetic.catalogue import (
    ACTIVATIONS,
    COMMON_PARAMS,
    INTERPOLATION_REACH,
    OMIT,
    REQUIRED,
    LayerKind,
    Param,
    canonical_activation,
    suggest,
)
from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT, clip_text, show_int
from convkit.defaults import KERAS_PADDINGS
from convkit.errors import SpecError

__all__ = [
    "ArgumentProblem",
    "complete",
    "is_int",
    "normalize_kwargs",
    "normalize_value",
    "show_value",
]


class ArgumentProblem(Exception):
    """A value that does not fit its argument. The caller says where: a caret on the spec
    (:mod:`convkit.arithmetic.spec`) or ``Received: name=value``."""


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def show_value(v: Any) -> str:
    """A value as the spec language writes it (tuples of one keep their comma)."""
    if isinstance(v, tuple):
        inner = ", ".join(show_value(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})"
    if is_int(v):
        return show_int(v)
    if isinstance(v, str):
        return repr(clip_text(v, 40))
    return repr(v)


def _too_large(value: Any) -> bool:
    """Whether ``value`` is, or holds, an integer past :data:`MAX_INT` in size."""
    if isinstance(value, (tuple, list)):
        return any(_too_large(v) for v in value)
    return is_int(value) and not -MAX_INT <= value <= MAX_INT


# --------------------------------------------------------------------------- one value


def _size(value: Any, name: str, *, allow_zero: bool = False) -> tuple[int, int]:
    low = 0 if allow_zero else 1
    what = "non-negative" if allow_zero else "positive"
    if is_int(value):
        pair = (value, value)
    elif isinstance(value, tuple) and len(value) == 2 and all(is_int(v) for v in value):
        pair = value
    else:
        raise ArgumentProblem(
            f"{name} must be a {what} integer or a pair of them, like 3 or (3, 5)"
        )
    if min(pair) < low:
        raise ArgumentProblem(f"{name} must be {'>= 0' if allow_zero else '> 0'}")
    return (pair[0], pair[1])


def _pad2d(value: Any, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    message = (
        f"{name} must be a non-negative int, a pair (height, width) or a pair of pairs "
        "((top, bottom), (left, right))"
    )
    if is_int(value):
        if value < 0:
            raise ArgumentProblem(message)
        return ((value, value), (value, value))
    if isinstance(value, tuple) and len(value) == 2:
        pairs = []
        for v in value:
            if is_int(v) and v >= 0:
                pairs.append((v, v))
            elif isinstance(v, tuple) and len(v) == 2 and all(is_int(x) and x >= 0 for x in v):
                pairs.append((v[0], v[1]))
            else:
                raise ArgumentProblem(message)
        return (pairs[0], pairs[1])
    raise ArgumentProblem(message)


def _pos_int(value: Any, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ArgumentProblem(f"{name} must be a positive integer")
    return value


def _int(value: Any, name: str) -> int:
    if not is_int(value):
        raise ArgumentProblem(f"{name} must be an integer")
    return value


def _seed(value: Any, name: str) -> int | None:
    if value is not None and not is_int(value):
        raise ArgumentProblem(f"{name} must be an integer or None")
    return value


def _padding(value: Any, name: str) -> str:
    if isinstance(value, str) and value.lower() in KERAS_PADDINGS:
        return value.lower()
    if (
        (isinstance(value, str) and value.lower() == "full")
        or is_int(value)
        or (isinstance(value, tuple))
    ):
        raise ArgumentProblem(
            "padding of a Keras layer is 'valid' or 'same'; 'full' and numeric padding "
            "exist only in shape-calc's flag mode. In a spec, put zeropadding2d(p) before "
            "the layer"
        )
    raise ArgumentProblem("padding must be 'valid' or 'same'")


def _activation(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        canonical = canonical_activation(value)
        if canonical:
            return canonical
        guess = suggest(value, list(ACTIVATIONS))
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ArgumentProblem(f"unknown activation {clip_text(value, 40)!r}{hint}")
    raise ArgumentProblem(f"{name} must be an activation name such as relu, or None")


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentProblem(f"{name} must be True or False")
    return value


def _rate(value: Any, name: str) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ArgumentProblem(f"{name} must be a number between 0 and 1")
    return float(value)


def _float(value: Any, name: str) -> float:
    if not _is_number(value):
        raise ArgumentProblem(f"{name} must be a number")
    return float(value)


def _opt_float(value: Any, name: str) -> float | None:
    if value is not None and not _is_number(value):
        raise ArgumentProblem(f"{name} must be a number or None")
    return None if value is None else float(value)


def _interpolation(value: Any, name: str) -> str:
    if isinstance(value, str) and value.lower() in INTERPOLATION_REACH:
        return value.lower()
    raise ArgumentProblem(f"{name} must be one of {', '.join(INTERPOLATION_REACH)}")


def _data_format(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() == "channels_last"):
        return "channels_last" if value is not None else None
    raise ArgumentProblem("only data_format=channels_last is supported (shapes are channels-last)")


def _shape3(value: Any, name: str) -> tuple[int, int, int]:
    if isinstance(value, tuple) and len(value) == 3 and all(is_int(v) and v > 0 for v in value):
        return value  # type: ignore[return-value]
    raise ArgumentProblem(f"{name} must be three positive integers (height, width, channels)")


def _name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ArgumentProblem("name must be a word or a quoted string without '/'")
    return value


#: Parameter kind (see the catalogue) -> its check, ``(value, name) -> normalised value``.
_KINDS: dict[str, Callable[[Any, str], Any]] = {
    "pos_int": _pos_int,
    "int": _int,
    "seed": _seed,
    "size": _size,
    "opt_size": lambda v, n: None if v is None else _size(v, n),
    "opt_size0": lambda v, n: None if v is None else _size(v, n, allow_zero=True),
    "padding": _padding,
    "pad2d": _pad2d,
    "activation": _activation,
    "bool": _bool,
    "rate": _rate,
    "float": _float,
    "opt_float": _opt_float,
    "interpolation": _interpolation,
    "data_format": _data_format,
    "shape3": _shape3,
    "name": _name,
    "any": lambda v, n: v,
}


def normalize_value(kind: str, value: Any, name: str) -> Any:
    """``value`` of the argument ``name`` in canonical form; :class:`ArgumentProblem` when it
    does not fit ``kind``, or holds an integer past :data:`~convkit.arithmetic.limits.MAX_INT`."""
    if _too_large(value):
        raise ArgumentProblem(f"{name} must be at most {MAX_INT_TEXT} (the largest tensor size)")
    return _KINDS[kind](value, name)


# --------------------------------------------------------------------------- a whole layer


def complete(kind: LayerKind, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The layer's keyword arguments: ``given`` (normalised) in Keras's order, Keras's
    default for every other argument that has one; and the names of required arguments
    that are missing."""
    kwargs: dict[str, Any] = {}
    missing = []
    for param in kind.params:
        if param.name in given:
            kwargs[param.name] = given[param.name]
        elif param.default is REQUIRED:
            missing.append(param.name)
        elif param.default is not OMIT:
            kwargs[param.name] = param.default
    if missing:
        return kwargs, missing
    if kind.type in ("MaxPooling2D", "AveragePooling2D") and kwargs["strides"] is None:
        kwargs["strides"] = kwargs["pool_size"]  # Keras's default: strides = pool_size
    if kwargs.get("data_format") is None:
        kwargs.pop("data_format", None)
    for common in ("trainable", "dtype"):
        if common in given:
            kwargs[common] = given[common]
    return kwargs, missing


def parameters(kind: LayerKind) -> dict[str, Param]:
    """Every argument a layer takes by keyword: its own and the common ones (``name``...)."""
    return {p.name: p for p in (*kind.params, *COMMON_PARAMS)}


def _tuples(value: Any) -> Any:
    """Lists as tuples, as the parser reads ``[3, 5]``."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def normalize_kwargs(kind: LayerKind, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments given from Python, checked and completed as the parser does; a
    :class:`~convkit.errors.SpecError` ending ``Received: name=value`` when one does not fit.
    ``name`` is left out (it names the layer)."""
    params = parameters(kind)
    given: dict[str, Any] = {}
    for key, value in kwargs.items():
        param = params.get(key)
        if param is None:
            guess = suggest(key, list(params))
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise SpecError(f"{kind.type} has no argument {clip_text(key, 40)!r}{hint}")
        try:
            given[key] = normalize_value(param.kind, _tuples(value), key)
        except ArgumentProblem as exc:
            raise SpecError(f"{exc}. Received: {key}={show_value(value)}") from None
    completed, missing = complete(kind, given)
    if missing:
        raise SpecError(f"{kind.type} needs {' and '.join(missing)}, e.g. {kind.example}")
    return completed

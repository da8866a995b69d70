"""The layer-spec language: text in, :class:`LayerSpec` objects out.

A spec is a sequence of layers separated by whitespace (or newlines in a file); ``#`` starts
a comment that runs to the end of the line::

    conv2d(64, 3, padding=same, activation=relu) maxpool2d(2) flatten dense(10) softmax

Grammar::

    spec   := layer* EOF
    layer  := NAME [ "(" [ arg ("," arg)* [","] ] ")" ]
    arg    := NAME "=" value | value
    value  := INT | FLOAT | STRING | WORD | DIMS | group
    group  := "(" [ value ("," value)* [","] ] ")" | "[" ... "]"

* Layer names are Keras's class names, case-insensitive, underscores ignored, with short
  aliases (``conv`` = ``conv2d``, ``maxpool`` = ``maxpool2d`` = ``max_pooling2d``,
  ``bn`` = ``batchnormalization``, ...; see :data:`LAYER_KINDS`); a ``keras.layers.`` or
  ``layers.`` prefix is ignored. A bare activation name (``relu``, ``softmax``, ...) is an
  ``Activation`` layer. ``input((224, 224, 3))`` may open a spec to give its input shape.
* Positional arguments follow Keras's order (``conv2d(filters, kernel_size, strides,
  padding)``); keyword arguments use Keras's names (``strides``, ``dilation_rate``, ...).
* Values: integers, floats (``1e-3``), tuples ``(3, 5)`` or ``[3, 5]`` (``(3)`` is just 3,
  as in Python), ``3x5`` for ``(3, 5)``, bare or quoted words (``same``, ``"same"``),
  ``True``/``False``/``None`` in any case.

:func:`parse_spec` returns :class:`LayerSpec` objects: the canonical Keras class name and
the constructor keyword arguments, normalized (``kernel_size=3`` becomes ``(3, 3)``,
``padding="SAME"`` becomes ``"same"``) with Keras's defaults filled in for every argument
that affects shapes, so a Keras model is ``getattr(keras.layers, layer.type)(name=layer.name,
**layer.kwargs)`` for each layer. Only ``channels_last`` is supported, and only Keras's own
paddings (``valid``/``same``): ``full`` and numeric paddings exist in ``shape-calc``'s flag
mode only (use ``zeropadding2d(p)`` in a spec).

Every error is a :class:`convkit.errors.SpecError` whose message names the line and column,
then echoes the spec line with a caret under the offending column.

The pieces: the layer catalogue (:mod:`~convkit.arithmetic.catalogue`), the tokenizer and
grammar (:mod:`~convkit.arithmetic.syntax`), the argument checks
(:mod:`~convkit.arithmetic.normalize`); this module puts them together. A
:class:`LayerSpec` is normalised once, here, and trusted afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convkit.arithmetic.catalogue import (
    ACTIVATIONS,
    KIND_BY_TYPE,
    LAYER_KINDS,
    LayerKind,
    Param,
    canonical_activation,
    known_names,
    layer_kind,
    suggest,
)
from convkit.arithmetic.limits import MAX_SPEC_CHARS, clip_text
from convkit.arithmetic.normalize import (
    ArgumentProblem,
    complete,
    normalize_value,
    parameters,
    show_value,
)
from convkit.arithmetic.syntax import (
    Call,
    Location,
    Source,
    Token,
    format_caret,
    located_error,
    parse_calls,
    tokenize,
)
from convkit.errors import SpecError

__all__ = [
    "ACTIVATIONS",
    "LAYER_KINDS",
    "LayerKind",
    "LayerSpec",
    "Location",
    "Param",
    "Token",
    "canonical_activation",
    "format_caret",
    "layer_kind",
    "parse_spec",
    "parse_spec_file",
    "tokenize",
]


@dataclass(frozen=True)
class LayerSpec:
    """One parsed layer.

    ``type`` is the Keras class name (``"Conv2D"``); ``kwargs`` are the constructor's keyword
    arguments with Keras's names, normalized (pairs as tuples, ``padding`` lowercase,
    activations as Keras spells them) and with the defaults of every shape-relevant argument
    filled in; ``name`` is the layer's name (``name=`` in the spec, else Keras's automatic
    ``conv2d``, ``conv2d_1``, ...); ``text`` is the layer as written; ``location`` where.
    """

    type: str
    kwargs: dict[str, Any] = field(hash=False)
    name: str
    text: str = ""
    location: Location | None = field(default=None, compare=False)

    def error(self, message: str) -> SpecError:
        """A :class:`SpecError` pointing at this layer in the spec (plain if no location)."""
        if self.location is None:
            return SpecError(message)
        return located_error(message, self.location)


def parse_spec(text: str, *, path: str | None = None) -> list[LayerSpec]:
    """Parse a layer spec into :class:`LayerSpec` objects, in order.

    Raises :class:`SpecError` (with line, column and caret) for a malformed spec, an unknown
    layer or argument, a value of the wrong kind, or a spec with no layers. Shape problems
    (a kernel too large for its input, ...) are found later by
    :func:`convkit.arithmetic.stack.analyze_spec`, with a caret on the layer too.
    """
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(
            f"the spec is longer than {MAX_SPEC_CHARS:,} characters, the most a spec may have",
            path=path,
        )
    src = Source(text, path)
    calls = parse_calls(src)
    if not calls:
        raise SpecError(
            "the spec has no layers: expected layers such as "
            '"conv2d(32, 3, activation=relu) maxpool2d(2) flatten dense(10)"',
            path=path,
        )
    return _build(calls, src)


def parse_spec_file(path: str | Path) -> list[LayerSpec]:
    """Parse a spec file: one layer per line (layers may also share or span lines), ``#``
    comments. Errors name the file. At most
    :data:`~convkit.arithmetic.limits.MAX_SPEC_CHARS` bytes are read."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise SpecError("not a regular file (a named pipe or a device?)", path=str(path))
        with path.open("rb") as stream:
            data = stream.read(MAX_SPEC_CHARS + 1)
        if len(data) > MAX_SPEC_CHARS:
            raise SpecError(
                f"the spec file is larger than {MAX_SPEC_CHARS:,} bytes, the most a spec may have",
                path=str(path),
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecError("no such spec file", path=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not a UTF-8 text file ({exc.reason})", path=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the spec file: {exc.strerror}", path=str(path)) from None
    except ValueError:  # a null byte in the name
        raise SpecError("not a valid file name", path=repr(str(path))) from None
    return parse_spec(text, path=str(path))


# --------------------------------------------------------------------------- building layers


def _build(calls: list[Call], src: Source) -> list[LayerSpec]:
    explicit = _explicit_names(calls, src)
    used = set(explicit)
    counters: dict[str, int] = {}
    layers: list[LayerSpec] = []
    for index, call in enumerate(calls):
        spec = _build_one(call, src)
        if spec.type == "InputLayer" and index > 0:
            raise src.error(
                "an input layer can only open the spec", call.name.offset, len(call.name.text)
            )
        name = spec.name
        if not name:
            base = KIND_BY_TYPE[spec.type].snake
            while True:
                count = counters.get(base, 0)
                counters[base] = count + 1
                name = base if count == 0 else f"{base}_{count}"
                if name not in used:
                    break
            used.add(name)
        layers.append(LayerSpec(spec.type, spec.kwargs, name, spec.text, spec.location))
    return layers


def _explicit_names(calls: list[Call], src: Source) -> set[str]:
    """The names given with ``name=``; a duplicate is an error."""
    explicit: set[str] = set()
    for call in calls:
        for arg in call.args:
            if arg.key is not None and arg.key.text == "name" and isinstance(arg.value.value, str):
                if arg.value.value in explicit:
                    raise src.error(
                        f"duplicate layer name {clip_text(arg.value.value, 40)!r}: layer names "
                        "must be unique",
                        arg.value.start,
                        arg.value.end - arg.value.start,
                    )
                explicit.add(arg.value.value)
    return explicit


def _build_one(call: Call, src: Source) -> LayerSpec:
    """One layer, unnamed unless ``name=`` was given (:func:`_build` names it)."""
    word = call.name.text
    start = call.name.offset
    location = src.location(start, call.end - start)
    text = src.text[start : call.end]
    kind = _kind(call, src)
    if kind is None:  # a bare activation name
        activation = canonical_activation(word)
        return LayerSpec("Activation", {"activation": activation}, "", text, location)
    given = _given_arguments(call, kind, src)
    kwargs, missing = complete(kind, given)
    if missing:
        where = call.close if call.has_parens else start
        raise src.error(
            f"{word} needs {' and '.join(missing)}, e.g. {kind.example}",
            where,
            1 if call.has_parens else len(word),
        )
    return LayerSpec(kind.type, kwargs, given.get("name", ""), text, location)


def _kind(call: Call, src: Source) -> LayerKind | None:
    """The layer type a call names; None for an activation name used as a layer."""
    word = call.name.text
    activation = canonical_activation(word)
    kind = layer_kind(word)
    if not call.has_parens and activation is not None:
        return None
    if kind is None and activation is not None:
        if call.args:
            raise src.error(
                f"the activation {word} takes no arguments; use activation({activation}) or "
                "a layer such as leakyrelu(0.2)",
                call.args[0].value.start,
            )
        return None
    if kind is None:
        guess = suggest(word, known_names())
        if guess:
            hint = f" (did you mean {guess!r}?)"
        else:
            known = ", ".join(k.aliases[0] for k in LAYER_KINDS)
            hint = f"; known layers: {known}, and activation names such as relu"
        raise src.error(f"unknown layer {clip_text(word, 40)!r}{hint}", call.name.offset, len(word))
    return kind


def _given_arguments(call: Call, kind: LayerKind, src: Source) -> dict[str, Any]:
    """The arguments of a call by Keras's names, each normalised; errors carry a caret."""
    word = call.name.text
    params = parameters(kind)
    given: dict[str, Any] = {}
    seen_keyword = False
    for position, arg in enumerate(call.args):
        val = arg.value
        if arg.key is None:
            if seen_keyword:
                raise src.error(
                    "expected a keyword argument (name=value): a positional argument cannot "
                    "follow a keyword argument",
                    val.start,
                    val.end - val.start,
                )
            if position >= kind.positional:
                names = ", ".join(p.name for p in kind.params[: kind.positional])
                raise src.error(
                    f"{word} takes at most {kind.positional} positional argument"
                    f"{'s' if kind.positional != 1 else ''}"
                    + (f" ({names})" if names else "")
                    + f"; name the others, e.g. {kind.example}",
                    val.start,
                    val.end - val.start,
                )
            param = kind.params[position]
        else:
            seen_keyword = True
            key = arg.key.text
            if key not in params:
                guess = suggest(key, list(params))
                hint = f" (did you mean {guess!r}?)" if guess else ""
                raise src.error(
                    f"{kind.type} has no argument {clip_text(key, 40)!r}{hint}",
                    arg.key.offset,
                    len(key),
                )
            param = params[key]
        if param.name in given:
            offset = arg.key.offset if arg.key is not None else val.start
            raise src.error(
                f"{word} got multiple values for argument {param.name!r}",
                offset,
                len(arg.key.text) if arg.key is not None else val.end - val.start,
            )
        try:
            given[param.name] = normalize_value(param.kind, val.value, param.name)
        except ArgumentProblem as exc:
            raise src.error(
                f"{exc}. Received: {param.name}={show_value(val.value)}",
                val.start,
                val.end - val.start,
            ) from None
    return given

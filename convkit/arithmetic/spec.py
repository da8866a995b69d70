"""The layer-spec language: a tokenizer and a recursive-descent parser, never ``eval``.

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
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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

# --------------------------------------------------------------------------- registry

#: Keras activation functions a bare name (or ``activation=``) may use. ``glu`` (halves the
#: channels) and ``threshold`` (needs arguments) are left out.
ACTIVATIONS = (
    "celu",
    "elu",
    "exponential",
    "gelu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
)

#: UpSampling2D's interpolations (Keras's image-resize methods).
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")

_REQUIRED = object()
_OMIT = object()


class Param(NamedTuple):
    """One constructor argument: Keras's name, how its value is checked, its default.

    ``default`` is a value (filled into the parsed kwargs when not given), or absent
    (``_OMIT``: left out unless given), or ``_REQUIRED``.
    """

    name: str
    kind: str
    default: Any = _OMIT


class LayerKind(NamedTuple):
    """A layer type of the spec language."""

    type: str  # Keras class name
    snake: str  # Keras's automatic layer name
    aliases: tuple[str, ...]  # spellings accepted (compared lowercase, underscores removed)
    params: tuple[Param, ...]  # in Keras's positional order
    positional: int  # how many of ``params`` may be given positionally
    example: str


def _p(name: str, kind: str, default: Any = _OMIT) -> Param:
    return Param(name, kind, default)


def _passthrough(*names: str) -> tuple[Param, ...]:
    return tuple(Param(n, "any") for n in names)


_CONV_EXTRA = _passthrough(
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
)
_DEPTHWISE_EXTRA = _passthrough(
    "depthwise_initializer",
    "bias_initializer",
    "depthwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "bias_constraint",
)
_SEPARABLE_EXTRA = _passthrough(
    "depthwise_initializer",
    "pointwise_initializer",
    "bias_initializer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "depthwise_constraint",
    "pointwise_constraint",
    "bias_constraint",
)
_NORM_EXTRA = _passthrough(
    "beta_initializer",
    "gamma_initializer",
    "beta_regularizer",
    "gamma_regularizer",
    "beta_constraint",
    "gamma_constraint",
)

#: Every layer type, in the order ``--help`` lists them.
LAYER_KINDS: tuple[LayerKind, ...] = (
    LayerKind(
        "Conv2D",
        "conv2d",
        ("conv2d", "conv", "convolution2d", "convolution"),
        (
            _p("filters", "pos_int", _REQUIRED),
            _p("kernel_size", "size", _REQUIRED),
            _p("strides", "size", (1, 1)),
            _p("padding", "padding", "valid"),
            _p("data_format", "data_format"),
            _p("dilation_rate", "size", (1, 1)),
            _p("groups", "pos_int", 1),
            _p("activation", "activation", None),
            _p("use_bias", "bool", True),
            *_CONV_EXTRA,
        ),
        9,
        "conv2d(32, 3, strides=1, padding=same, activation=relu)",
    ),
    LayerKind(
        "Conv2DTranspose",
        "conv2d_transpose",
        (
            "conv2dtranspose",
            "convtranspose",
            "convtranspose2d",
            "convolution2dtranspose",
            "deconv",
            "deconv2d",
            "transposedconv",
        ),
        (
            _p("filters", "pos_int", _REQUIRED),
            _p("kernel_size", "size", _REQUIRED),
            _p("strides", "size", (1, 1)),
            _p("padding", "padding", "valid"),
            _p("output_padding", "opt_size0", None),
            _p("data_format", "data_format"),
            _p("dilation_rate", "size", (1, 1)),
            _p("activation", "activation", None),
            _p("use_bias", "bool", True),
            *_CONV_EXTRA,
        ),
        9,
        "conv2dtranspose(16, 3, strides=2, padding=same)",
    ),
    LayerKind(
        "DepthwiseConv2D",
        "depthwise_conv2d",
        ("depthwiseconv2d", "depthwiseconv", "depthwise", "dwconv", "dwconv2d"),
        (
            _p("kernel_size", "size", _REQUIRED),
            _p("strides", "size", (1, 1)),
            _p("padding", "padding", "valid"),
            _p("depth_multiplier", "pos_int", 1),
            _p("data_format", "data_format"),
            _p("dilation_rate", "size", (1, 1)),
            _p("activation", "activation", None),
            _p("use_bias", "bool", True),
            *_DEPTHWISE_EXTRA,
        ),
        8,
        "depthwiseconv2d(3, padding=same, depth_multiplier=1)",
    ),
    LayerKind(
        "SeparableConv2D",
        "separable_conv2d",
        (
            "separableconv2d",
            "separableconv",
            "separableconvolution2d",
            "sepconv",
            "sepconv2d",
        ),
        (
            _p("filters", "pos_int", _REQUIRED),
            _p("kernel_size", "size", _REQUIRED),
            _p("strides", "size", (1, 1)),
            _p("padding", "padding", "valid"),
            _p("data_format", "data_format"),
            _p("dilation_rate", "size", (1, 1)),
            _p("depth_multiplier", "pos_int", 1),
            _p("activation", "activation", None),
            _p("use_bias", "bool", True),
            *_SEPARABLE_EXTRA,
        ),
        9,
        "separableconv2d(64, 3, padding=same)",
    ),
    LayerKind(
        "MaxPooling2D",
        "max_pooling2d",
        ("maxpool2d", "maxpooling2d", "maxpool", "maxpooling"),
        (
            _p("pool_size", "size", (2, 2)),
            _p("strides", "opt_size", None),
            _p("padding", "padding", "valid"),
            _p("data_format", "data_format"),
        ),
        4,
        "maxpool2d(2, strides=2, padding=valid)",
    ),
    LayerKind(
        "AveragePooling2D",
        "average_pooling2d",
        ("averagepooling2d", "avgpool2d", "avgpool", "avgpooling2d", "averagepool"),
        (
            _p("pool_size", "size", (2, 2)),
            _p("strides", "opt_size", None),
            _p("padding", "padding", "valid"),
            _p("data_format", "data_format"),
        ),
        4,
        "avgpool(2)",
    ),
    LayerKind(
        "GlobalAveragePooling2D",
        "global_average_pooling2d",
        (
            "globalaveragepooling2d",
            "globalavgpool2d",
            "globalavgpool",
            "globalaveragepool",
            "gap",
        ),
        (_p("data_format", "data_format"), _p("keepdims", "bool", False)),
        2,
        "globalaveragepooling2d",
    ),
    LayerKind(
        "GlobalMaxPooling2D",
        "global_max_pooling2d",
        ("globalmaxpooling2d", "globalmaxpool2d", "globalmaxpool", "gmp"),
        (_p("data_format", "data_format"), _p("keepdims", "bool", False)),
        2,
        "globalmaxpooling2d",
    ),
    LayerKind(
        "ZeroPadding2D",
        "zero_padding2d",
        ("zeropadding2d", "zeropad2d", "zeropad", "zeropadding"),
        (_p("padding", "pad2d", ((1, 1), (1, 1))), _p("data_format", "data_format")),
        2,
        "zeropadding2d(1)  or  zeropadding2d(((1, 2), (0, 1)))",
    ),
    LayerKind(
        "Cropping2D",
        "cropping2d",
        ("cropping2d", "crop2d", "crop", "cropping"),
        (_p("cropping", "pad2d", ((0, 0), (0, 0))), _p("data_format", "data_format")),
        2,
        "cropping2d(2)",
    ),
    LayerKind(
        "UpSampling2D",
        "up_sampling2d",
        ("upsampling2d", "upsample2d", "upsample", "upsampling"),
        (
            _p("size", "size", (2, 2)),
            _p("data_format", "data_format"),
            _p("interpolation", "interpolation", "nearest"),
        ),
        3,
        "upsampling2d(2, interpolation=bilinear)",
    ),
    LayerKind(
        "BatchNormalization",
        "batch_normalization",
        ("batchnormalization", "batchnorm", "batchnorm2d", "bn"),
        (
            _p("axis", "int", -1),
            _p("momentum", "float"),
            _p("epsilon", "float"),
            _p("center", "bool", True),
            _p("scale", "bool", True),
            *_NORM_EXTRA,
            *_passthrough("moving_mean_initializer", "moving_variance_initializer"),
            _p("synchronized", "bool"),
        ),
        5,
        "batchnormalization",
    ),
    LayerKind(
        "LayerNormalization",
        "layer_normalization",
        ("layernormalization", "layernorm", "ln"),
        (
            _p("axis", "int", -1),
            _p("epsilon", "float"),
            _p("center", "bool", True),
            _p("scale", "bool", True),
            *_NORM_EXTRA,
        ),
        4,
        "layernormalization",
    ),
    LayerKind(
        "Activation",
        "activation",
        ("activation", "act"),
        (_p("activation", "activation", _REQUIRED),),
        1,
        "activation(relu)  or just  relu",
    ),
    LayerKind(
        "Dropout",
        "dropout",
        ("dropout",),
        (_p("rate", "rate", _REQUIRED), _p("noise_shape", "any"), _p("seed", "seed")),
        3,
        "dropout(0.5)",
    ),
    LayerKind(
        "SpatialDropout2D",
        "spatial_dropout2d",
        ("spatialdropout2d", "spatialdropout"),
        (_p("rate", "rate", _REQUIRED), _p("data_format", "data_format"), _p("seed", "seed")),
        3,
        "spatialdropout2d(0.2)",
    ),
    LayerKind(
        "GaussianNoise",
        "gaussian_noise",
        ("gaussiannoise",),
        (_p("stddev", "float", _REQUIRED), _p("seed", "seed")),
        2,
        "gaussiannoise(0.1)",
    ),
    LayerKind(
        "Flatten",
        "flatten",
        ("flatten",),
        (_p("data_format", "data_format"),),
        1,
        "flatten",
    ),
    LayerKind(
        "Dense",
        "dense",
        ("dense", "fc", "fullyconnected"),
        (
            _p("units", "pos_int", _REQUIRED),
            _p("activation", "activation", None),
            _p("use_bias", "bool", True),
            *_CONV_EXTRA,
        ),
        3,
        "dense(10, activation=softmax)",
    ),
    LayerKind(
        "ReLU",
        "re_lu",
        ("relu",),
        (
            _p("max_value", "opt_float"),
            _p("negative_slope", "float"),
            _p("threshold", "float"),
        ),
        3,
        "relu(max_value=6)",
    ),
    LayerKind(
        "LeakyReLU",
        "leaky_re_lu",
        ("leakyrelu",),
        (_p("negative_slope", "float"),),
        1,
        "leakyrelu(0.2)",
    ),
    LayerKind("ELU", "elu", ("elu",), (_p("alpha", "float"),), 1, "elu(1.0)"),
    LayerKind("Softmax", "softmax", ("softmax",), (_p("axis", "int"),), 1, "softmax(axis=-1)"),
    LayerKind("Identity", "identity", ("identity",), (), 0, "identity"),
    LayerKind(
        "InputLayer",
        "input_layer",
        ("input", "inputlayer"),
        (_p("shape", "shape3", _REQUIRED),),
        1,
        "input((224, 224, 3))",
    ),
)

#: Arguments every layer accepts as keywords (``name`` becomes :attr:`LayerSpec.name`).
_COMMON = (Param("name", "name"), Param("trainable", "bool"), Param("dtype", "any"))

_ACTIVATION_KEYS = {a.replace("_", ""): a for a in ACTIVATIONS}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


_BY_KEY: dict[str, LayerKind] = {}
for _kind in LAYER_KINDS:
    for _alias in (*_kind.aliases, _kind.type, _kind.snake):
        _BY_KEY.setdefault(_key(_alias), _kind)


def layer_kind(name: str) -> LayerKind | None:
    """The layer type a spelling names (``"MaxPool"`` -> MaxPooling2D), or None."""
    for prefix in ("tf.keras.layers.", "keras.layers.", "layers."):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
            break
    return _BY_KEY.get(_key(name))


def canonical_activation(name: str) -> str | None:
    """Keras's spelling of an activation (``"LeakyReLU"`` -> ``"leaky_relu"``), or None."""
    return _ACTIVATION_KEYS.get(_key(name))


def _known_names() -> list[str]:
    names = [alias for kind in LAYER_KINDS for alias in kind.aliases]
    names += [kind.snake for kind in LAYER_KINDS]
    return names + list(ACTIVATIONS)


def _suggest(word: str, candidates: list[str]) -> str | None:
    keyed: dict[str, str] = {}
    for candidate in candidates:
        keyed.setdefault(_key(candidate), candidate)
    match = difflib.get_close_matches(_key(word), list(keyed), n=1, cutoff=0.6)
    return keyed[match[0]] if match else None


# --------------------------------------------------------------------------- locations


class Location(NamedTuple):
    """Where something is in a spec: 1-based line and column, and its length in characters."""

    line: int
    column: int
    length: int
    line_text: str
    path: str | None = None
    multiline: bool = False


def format_caret(line_text: str, column: int, length: int = 1, *, width: int = 100) -> str:
    """Two lines: the spec line (an excerpt when long) and a caret under ``column`` (1-based)."""
    text = line_text.replace("\t", " ")
    start = 0
    if len(text) > width:
        start = max(0, min(column - 1 - width // 2, len(text) - width))
    excerpt = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    caret_at = len(prefix) + column - 1 - start
    marks = "^" * max(1, min(length, len(excerpt) - (column - 1 - start)))
    return f"  {prefix}{excerpt}{suffix}\n  {' ' * caret_at}{marks}"


class _Source:
    def __init__(self, text: str, path: str | None):
        self.text = text
        self.path = path
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.multiline = len([ln for ln in self.lines if ln.strip()]) > 1

    def location(self, offset: int, length: int = 1) -> Location:
        line = 0
        lo, hi = 0, len(self.starts) - 1
        while lo <= hi:  # last line start <= offset
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                line, lo = mid, mid + 1
            else:
                hi = mid - 1
        line_text = self.lines[line].rstrip("\r")
        column = offset - self.starts[line] + 1
        return Location(line + 1, column, length, line_text, self.path, self.multiline)

    def error(self, message: str, offset: int, length: int = 1) -> SpecError:
        return _located_error(message, self.location(offset, length))


def _located_error(message: str, loc: Location) -> SpecError:
    where = (
        f"line {loc.line}, column {loc.column}"
        if loc.multiline or loc.path
        else (f"column {loc.column}")
    )
    caret = format_caret(loc.line_text, loc.column, loc.length)
    return SpecError(f"{where}: {message}\n{caret}", path=loc.path)


# --------------------------------------------------------------------------- tokens


class Token(NamedTuple):
    """A token: ``kind`` is NAME, NUMBER, STRING, DIMS, one of ``( ) [ ] , =``, or EOF."""

    kind: str
    value: Any
    text: str
    offset: int

    def describe(self) -> str:
        if self.kind == "EOF":
            return "the end of the spec"
        if self.kind == "STRING":
            return f"the string {self.text}"
        return f"'{self.text}'"


_PUNCTUATION = set("()[],=")


def tokenize(text: str, *, path: str | None = None) -> list[Token]:
    """Split a spec into tokens (comments and whitespace dropped), ending with an EOF token."""
    return _tokenize(_Source(text, path))


def _tokenize(src: _Source) -> list[Token]:
    text = src.text
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f\v":
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in _PUNCTUATION:
            tokens.append(Token(ch, ch, ch, i))
            i += 1
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (
                text[j].isalnum()
                or text[j] == "_"
                or (text[j] == "." and j + 1 < n and (text[j + 1].isalpha() or text[j + 1] == "_"))
            ):
                j += 1
            tokens.append(Token("NAME", text[i:j], text[i:j], i))
            i = j
        elif ch.isdigit() or (
            ch in "+-."
            and i + 1 < n
            and (
                text[i + 1].isdigit()
                or (text[i + 1] == "." and i + 2 < n and text[i + 2].isdigit())
            )
        ):
            i = _number(src, tokens, i)
        elif ch in "'\"":
            end = i + 1
            while end < n and text[end] != ch and text[end] != "\n":
                end += 1
            if end >= n or text[end] != ch:
                raise src.error(f"unterminated string: expected a closing {ch}", i)
            tokens.append(Token("STRING", text[i + 1 : end], text[i : end + 1], i))
            i = end + 1
        else:
            hint = ""
            if ch == ";":
                hint = " (layers are separated by spaces or newlines)"
            raise src.error(
                f"unexpected character {ch!r}: expected a layer name, a value or one of "
                f"( ) , ={hint}",
                i,
            )
    end = tokens[-1].offset + len(tokens[-1].text) if tokens else 0
    tokens.append(Token("EOF", None, "", end))
    return tokens


def _number(src: _Source, tokens: list[Token], start: int) -> int:
    text, n = src.text, len(src.text)
    i = start
    if text[i] in "+-":
        i += 1
    digits_start = i
    while i < n and text[i].isdigit():
        i += 1
    is_float = False
    if i < n and text[i] == "." and not (i + 1 < n and text[i + 1] == "."):
        is_float = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if (
        i < n
        and text[i] in "eE"
        and i + 1 < n
        and (text[i + 1].isdigit() or (text[i + 1] in "+-" and i + 2 < n and text[i + 2].isdigit()))
    ):
        is_float = True
        i += 2
        while i < n and text[i].isdigit():
            i += 1
    literal = text[start:i]
    # 3x3, 224x224x3: a tuple of positive integers
    if (
        not is_float
        and digits_start == start
        and i + 1 < n
        and text[i] in "xX×"
        and (text[i + 1].isdigit())
    ):
        parts = [int(literal)]
        while i + 1 < n and text[i] in "xX×" and text[i + 1].isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            parts.append(int(text[i + 1 : j]))
            i = j
        if i < n and (text[i].isalnum() or text[i] == "_"):
            raise src.error(f"unexpected {text[i]!r} in the dimensions {text[start:i]!r}", i)
        tokens.append(Token("DIMS", tuple(parts), text[start:i], start))
        return i
    if i < n and (text[i].isalnum() or text[i] == "_" or text[i] == "."):
        raise src.error(
            f"unexpected {text[i]!r} after the number {literal}: expected a separator", i
        )
    value: Any = float(literal) if is_float else int(literal)
    tokens.append(Token("NUMBER", value, literal, start))
    return i


# --------------------------------------------------------------------------- grammar


class _Value(NamedTuple):
    value: Any
    start: int
    end: int


class _Arg(NamedTuple):
    key: Token | None
    value: _Value


class _Call(NamedTuple):
    name: Token
    args: tuple[_Arg, ...]
    has_parens: bool
    end: int  # offset after the layer's last character
    close: int  # offset of ")" or of the name's end


class _Parser:
    def __init__(self, src: _Source, tokens: list[Token]):
        self.src = src
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str, tok: Token | None = None, hint: str = "") -> SpecError:
        tok = tok or self.tok
        return self.src.error(
            f"expected {expected}, found {tok.describe()}{hint}", tok.offset, max(1, len(tok.text))
        )

    # spec := layer* EOF
    def spec(self) -> list[_Call]:
        calls = []
        while self.tok.kind != "EOF":
            calls.append(self.layer())
        return calls

    # layer := NAME [ "(" args ")" ]
    def layer(self) -> _Call:
        tok = self.tok
        if tok.kind != "NAME":
            hint = ""
            if tok.kind == ",":
                hint = " (layers are separated by spaces, not commas)"
            elif tok.kind in ("NUMBER", "DIMS", "("):
                hint = " (arguments go inside the parentheses after a layer name)"
            raise self.fail("a layer name", hint=hint)
        self.advance()
        if self.tok.kind != "(":
            end = tok.offset + len(tok.text)
            return _Call(tok, (), False, end, tok.offset)
        self.advance()
        args: list[_Arg] = []
        while self.tok.kind != ")":
            args.append(self.arg(tok))
            if self.tok.kind == ",":
                self.advance()
            elif self.tok.kind != ")":
                raise self.fail(f"',' or ')' to close {tok.text}(")
        close = self.advance()
        return _Call(tok, tuple(args), True, close.offset + 1, close.offset)

    # arg := NAME "=" value | value
    def arg(self, layer: Token) -> _Arg:
        if self.tok.kind == "NAME" and self.tokens[self.i + 1].kind == "=":
            key = self.advance()
            self.advance()
            if self.tok.kind in (")", ",", "EOF", "="):
                raise self.fail(f"a value after '{key.text}='")
            return _Arg(key, self.value())
        if self.tok.kind in (",", ")", "EOF", "="):
            raise self.fail(f"an argument of {layer.text}(")
        return _Arg(None, self.value())

    # value := NUMBER | STRING | WORD | DIMS | group
    def value(self) -> _Value:
        tok = self.tok
        if tok.kind in ("NUMBER", "STRING", "DIMS"):
            self.advance()
            return _Value(tok.value, tok.offset, tok.offset + len(tok.text))
        if tok.kind == "NAME":
            self.advance()
            word = tok.value
            lowered = word.lower()
            value: Any = {"true": True, "false": False, "none": None, "null": None}.get(
                lowered, word
            )
            return _Value(value, tok.offset, tok.offset + len(tok.text))
        if tok.kind in ("(", "["):
            return self.group()
        raise self.fail("a value (a number, a word, a string or a tuple)")

    # group := "(" [ value ("," value)* [","] ] ")" | "[" ... "]"
    def group(self) -> _Value:
        open_tok = self.advance()
        close = ")" if open_tok.kind == "(" else "]"
        items: list[Any] = []
        trailing_comma = False
        while self.tok.kind != close:
            if self.tok.kind == "EOF":
                raise self.fail(
                    f"{close!r} to close the {open_tok.text!r} at column "
                    f"{self.src.location(open_tok.offset).column}"
                )
            items.append(self.value().value)
            trailing_comma = False
            if self.tok.kind == ",":
                self.advance()
                trailing_comma = True
            elif self.tok.kind != close:
                raise self.fail(f"',' or {close!r} in a tuple")
        end = self.advance()
        if close == ")" and len(items) == 1 and not trailing_comma:
            value: Any = items[0]  # (3) is 3, as in Python
        else:
            value = tuple(items)
        return _Value(value, open_tok.offset, end.offset + 1)


# --------------------------------------------------------------------------- layers


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
        return _located_error(message, self.location)


class _Problem(Exception):
    """A value that does not fit its parameter; turned into a located SpecError."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_show(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})"
    return repr(v)


def _size(value: Any, name: str, *, allow_zero: bool = False) -> tuple[int, int]:
    low = 0 if allow_zero else 1
    what = "non-negative" if allow_zero else "positive"
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = value
    else:
        raise _Problem(f"`{name}` must be a {what} integer or a pair of them, like 3 or (3, 5)")
    if min(pair) < low:
        raise _Problem(f"`{name}` must be {'>= 0' if allow_zero else '> 0'}")
    return (pair[0], pair[1])


def _pad2d(value: Any, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    message = (
        f"`{name}` must be a non-negative int, a pair (height, width) or a pair of pairs "
        "((top, bottom), (left, right))"
    )
    if _is_int(value):
        if value < 0:
            raise _Problem(message)
        return ((value, value), (value, value))
    if isinstance(value, tuple) and len(value) == 2:
        pairs = []
        for v in value:
            if _is_int(v) and v >= 0:
                pairs.append((v, v))
            elif isinstance(v, tuple) and len(v) == 2 and all(_is_int(x) and x >= 0 for x in v):
                pairs.append((v[0], v[1]))
            else:
                raise _Problem(message)
        return (pairs[0], pairs[1])
    raise _Problem(message)


def _normalize(kind: str, value: Any, name: str) -> Any:
    if kind == "pos_int":
        if not _is_int(value) or value < 1:
            raise _Problem(f"`{name}` must be a positive integer")
        return value
    if kind == "int":
        if not _is_int(value):
            raise _Problem(f"`{name}` must be an integer")
        return value
    if kind == "seed":
        if value is not None and not _is_int(value):
            raise _Problem(f"`{name}` must be an integer or None")
        return value
    if kind == "size":
        return _size(value, name)
    if kind == "opt_size":
        return None if value is None else _size(value, name)
    if kind == "opt_size0":
        return None if value is None else _size(value, name, allow_zero=True)
    if kind == "padding":
        if isinstance(value, str) and value.lower() in ("valid", "same"):
            return value.lower()
        if (
            (isinstance(value, str) and value.lower() == "full")
            or _is_int(value)
            or (isinstance(value, tuple))
        ):
            raise _Problem(
                "`padding` of a Keras layer is 'valid' or 'same'; 'full' and numeric padding "
                "exist only in flag mode (--padding). In a spec, put zeropadding2d(p) before "
                "the layer"
            )
        raise _Problem("`padding` must be 'valid' or 'same'")
    if kind == "pad2d":
        return _pad2d(value, name)
    if kind == "activation":
        if value is None:
            return None
        if isinstance(value, str):
            canonical = canonical_activation(value)
            if canonical:
                return canonical
            guess = _suggest(value, list(ACTIVATIONS))
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise _Problem(f"unknown activation {value!r}{hint}")
        raise _Problem(f"`{name}` must be an activation name such as relu, or None")
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Problem(f"`{name}` must be True or False")
        return value
    if kind == "rate":
        if not _is_number(value) or not 0 <= value <= 1:
            raise _Problem(f"`{name}` must be a number between 0 and 1")
        return float(value)
    if kind == "float":
        if not _is_number(value):
            raise _Problem(f"`{name}` must be a number")
        return float(value)
    if kind == "opt_float":
        if value is not None and not _is_number(value):
            raise _Problem(f"`{name}` must be a number or None")
        return None if value is None else float(value)
    if kind == "interpolation":
        if isinstance(value, str) and value.lower() in _INTERPOLATIONS:
            return value.lower()
        raise _Problem(f"`{name}` must be one of {', '.join(_INTERPOLATIONS)}")
    if kind == "data_format":
        if value is None or (isinstance(value, str) and value.lower() == "channels_last"):
            return "channels_last" if value is not None else None
        raise _Problem("only data_format=channels_last is supported (shapes are channels-last)")
    if kind == "shape3":
        if (
            isinstance(value, tuple)
            and len(value) == 3
            and all(_is_int(v) and v > 0 for v in value)
        ):
            return value
        raise _Problem(f"`{name}` must be three positive integers (height, width, channels)")
    if kind == "name":
        if not isinstance(value, str) or not value or "/" in value:
            raise _Problem("`name` must be a word or a quoted string without '/'")
        return value
    if kind == "any":
        return value
    raise AssertionError(f"unknown parameter kind {kind}")


def _build(calls: list[_Call], src: _Source) -> list[LayerSpec]:
    layers: list[LayerSpec] = []
    explicit: dict[str, int] = {}
    for call in calls:
        for arg in call.args:
            if arg.key is not None and arg.key.text == "name" and isinstance(arg.value.value, str):
                if arg.value.value in explicit:
                    raise src.error(
                        f"duplicate layer name {arg.value.value!r}: layer names must be unique",
                        arg.value.start,
                        arg.value.end - arg.value.start,
                    )
                explicit[arg.value.value] = arg.value.start
    used = set(explicit)
    counters: dict[str, int] = {}
    for index, call in enumerate(calls):
        spec = _build_one(call, src, index)
        if spec.type == "InputLayer" and index > 0:
            raise src.error(
                "an input layer can only open the spec", call.name.offset, len(call.name.text)
            )
        name = spec.name
        if not name:
            base = next(k.snake for k in LAYER_KINDS if k.type == spec.type)
            while True:
                count = counters.get(base, 0)
                counters[base] = count + 1
                name = base if count == 0 else f"{base}_{count}"
                if name not in used:
                    break
            used.add(name)
        layers.append(LayerSpec(spec.type, spec.kwargs, name, spec.text, spec.location))
    return layers


def _build_one(call: _Call, src: _Source, index: int) -> LayerSpec:
    word = call.name.text
    start = call.name.offset
    location = src.location(start, call.end - start)
    text = src.text[start : call.end]
    activation = canonical_activation(word)
    kind = layer_kind(word)
    if not call.has_parens and activation is not None:
        return LayerSpec("Activation", {"activation": activation}, "", text, location)
    if kind is None and activation is not None:
        if call.args:
            raise src.error(
                f"the activation {word} takes no arguments; use activation({activation}) or "
                "a layer such as leakyrelu(0.2)",
                call.args[0].value.start,
            )
        return LayerSpec("Activation", {"activation": activation}, "", text, location)
    if kind is None:
        guess = _suggest(word, _known_names())
        if guess:
            hint = f" (did you mean {guess!r}?)"
        else:
            known = ", ".join(k.aliases[0] for k in LAYER_KINDS)
            hint = f"; known layers: {known}, and activation names such as relu"
        raise src.error(f"unknown layer {word!r}{hint}", start, len(word))

    params = {p.name: p for p in (*kind.params, *_COMMON)}
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
                guess = _suggest(key, list(params))
                hint = f" (did you mean {guess!r}?)" if guess else ""
                raise src.error(
                    f"{kind.type} has no argument {key!r}{hint}", arg.key.offset, len(key)
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
            given[param.name] = _normalize(param.kind, val.value, param.name)
        except _Problem as exc:
            raise src.error(
                f"{exc}. Received: {param.name}={_show(val.value)}", val.start, val.end - val.start
            ) from None

    kwargs: dict[str, Any] = {}
    missing = []
    for param in kind.params:
        if param.name in given:
            kwargs[param.name] = given[param.name]
        elif param.default is _REQUIRED:
            missing.append(param.name)
        elif param.default is not _OMIT:
            kwargs[param.name] = param.default
    if missing:
        where = call.close if call.has_parens else start
        raise src.error(
            f"{word} needs {' and '.join(f'`{m}`' for m in missing)}, e.g. {kind.example}",
            where,
            1 if call.has_parens else len(word),
        )
    if kind.type in ("MaxPooling2D", "AveragePooling2D") and kwargs["strides"] is None:
        kwargs["strides"] = kwargs["pool_size"]  # Keras's default: strides = pool_size
    if kwargs.get("data_format") is None:
        kwargs.pop("data_format", None)
    for common in ("trainable", "dtype"):
        if common in given:
            kwargs[common] = given[common]
    return LayerSpec(kind.type, kwargs, given.get("name", ""), text, location)


def parse_spec(text: str, *, path: str | None = None) -> list[LayerSpec]:
    """Parse a layer spec into :class:`LayerSpec` objects, in order.

    Raises :class:`SpecError` (with line, column and caret) for a malformed spec, an unknown
    layer or argument, a value of the wrong kind, or a spec with no layers. Shape problems
    (a kernel too large for its input, ...) are found later by
    :func:`convkit.shapes.analyze_stack`; turn its error into a located one with
    ``layers[exc.index].error(exc.message)``.
    """
    src = _Source(text, path)
    calls = _Parser(src, _tokenize(src)).spec()
    if not calls:
        raise SpecError(
            "the spec has no layers: expected layers such as "
            '"conv2d(32, 3, activation=relu) maxpool2d(2) flatten dense(10)"',
            path=path,
        )
    return _build(calls, src)


def parse_spec_file(path: str | Path) -> list[LayerSpec]:
    """Parse a spec file: one layer per line (layers may also share or span lines), ``#``
    comments. Errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such spec file", path=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not a UTF-8 text file ({exc.reason})", path=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the spec file: {exc.strerror}", path=str(path)) from None
    return parse_spec(text, path=str(path))

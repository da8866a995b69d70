"""The layer catalogue of the spec language: every layer type, its arguments, their defaults.

One :class:`LayerKind` per Keras layer the language knows, in the order ``--help`` lists
them: its Keras class name, the automatic name Keras gives it, the spellings accepted, and
its constructor arguments (:class:`Param`) in Keras's positional order with how each value
is checked (its ``kind``, see :mod:`convkit.arithmetic.normalize`) and its default. Plus the
activation names, and the close-match suggestions of error messages.
"""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple

__all__ = [
    "ACTIVATIONS",
    "COMMON_PARAMS",
    "INTERPOLATION_REACH",
    "KIND_BY_TYPE",
    "LAYER_KINDS",
    "OMIT",
    "REQUIRED",
    "LayerKind",
    "Param",
    "canonical_activation",
    "known_names",
    "layer_kind",
    "suggest",
]

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

#: UpSampling2D's interpolations (Keras's image-resize methods), with how many extra input
#: pixels each one reaches (what it adds to the receptive field).
INTERPOLATION_REACH = {
    "nearest": 0,
    "bilinear": 1,
    "bicubic": 3,
    "lanczos3": 5,
    "lanczos5": 9,
    "area": 0,
}

#: A :attr:`Param.default`: the argument must be given.
REQUIRED: Any = object()
#: A :attr:`Param.default`: left out of the parsed arguments unless given.
OMIT: Any = object()


class Param(NamedTuple):
    """One constructor argument: Keras's name, how its value is checked, its default.

    ``default`` is a value (filled into the parsed kwargs when not given), :data:`OMIT` or
    :data:`REQUIRED`.
    """

    name: str
    kind: str
    default: Any = OMIT


class LayerKind(NamedTuple):
    """A layer type of the spec language."""

    type: str  # Keras class name
    snake: str  # Keras's automatic layer name
    aliases: tuple[str, ...]  # spellings accepted (compared lowercase, underscores removed)
    params: tuple[Param, ...]  # in Keras's positional order
    positional: int  # how many of ``params`` may be given positionally
    example: str


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
            Param("filters", "pos_int", REQUIRED),
            Param("kernel_size", "size", REQUIRED),
            Param("strides", "size", (1, 1)),
            Param("padding", "padding", "valid"),
            Param("data_format", "data_format"),
            Param("dilation_rate", "size", (1, 1)),
            Param("groups", "pos_int", 1),
            Param("activation", "activation", None),
            Param("use_bias", "bool", True),
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
            Param("filters", "pos_int", REQUIRED),
            Param("kernel_size", "size", REQUIRED),
            Param("strides", "size", (1, 1)),
            Param("padding", "padding", "valid"),
            Param("output_padding", "opt_size0", None),
            Param("data_format", "data_format"),
            Param("dilation_rate", "size", (1, 1)),
            Param("activation", "activation", None),
            Param("use_bias", "bool", True),
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
            Param("kernel_size", "size", REQUIRED),
            Param("strides", "size", (1, 1)),
            Param("padding", "padding", "valid"),
            Param("depth_multiplier", "pos_int", 1),
            Param("data_format", "data_format"),
            Param("dilation_rate", "size", (1, 1)),
            Param("activation", "activation", None),
            Param("use_bias", "bool", True),
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
            Param("filters", "pos_int", REQUIRED),
            Param("kernel_size", "size", REQUIRED),
            Param("strides", "size", (1, 1)),
            Param("padding", "padding", "valid"),
            Param("data_format", "data_format"),
            Param("dilation_rate", "size", (1, 1)),
            Param("depth_multiplier", "pos_int", 1),
            Param("activation", "activation", None),
            Param("use_bias", "bool", True),
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
            Param("pool_size", "size", (2, 2)),
            Param("strides", "opt_size", None),
            Param("padding", "padding", "valid"),
            Param("data_format", "data_format"),
        ),
        4,
        "maxpool2d(2, strides=2, padding=valid)",
    ),
    LayerKind(
        "AveragePooling2D",
        "average_pooling2d",
        ("averagepooling2d", "avgpool2d", "avgpool", "avgpooling2d", "averagepool"),
        (
            Param("pool_size", "size", (2, 2)),
            Param("strides", "opt_size", None),
            Param("padding", "padding", "valid"),
            Param("data_format", "data_format"),
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
        (Param("data_format", "data_format"), Param("keepdims", "bool", False)),
        2,
        "globalaveragepooling2d",
    ),
    LayerKind(
        "GlobalMaxPooling2D",
        "global_max_pooling2d",
        ("globalmaxpooling2d", "globalmaxpool2d", "globalmaxpool", "gmp"),
        (Param("data_format", "data_format"), Param("keepdims", "bool", False)),
        2,
        "globalmaxpooling2d",
    ),
    LayerKind(
        "ZeroPadding2D",
        "zero_padding2d",
        ("zeropadding2d", "zeropad2d", "zeropad", "zeropadding"),
        (Param("padding", "pad2d", ((1, 1), (1, 1))), Param("data_format", "data_format")),
        2,
        "zeropadding2d(1)  or  zeropadding2d(((1, 2), (0, 1)))",
    ),
    LayerKind(
        "Cropping2D",
        "cropping2d",
        ("cropping2d", "crop2d", "crop", "cropping"),
        (Param("cropping", "pad2d", ((0, 0), (0, 0))), Param("data_format", "data_format")),
        2,
        "cropping2d(2)",
    ),
    LayerKind(
        "UpSampling2D",
        "up_sampling2d",
        ("upsampling2d", "upsample2d", "upsample", "upsampling"),
        (
            Param("size", "size", (2, 2)),
            Param("data_format", "data_format"),
            Param("interpolation", "interpolation", "nearest"),
        ),
        3,
        "upsampling2d(2, interpolation=bilinear)",
    ),
    LayerKind(
        "BatchNormalization",
        "batch_normalization",
        ("batchnormalization", "batchnorm", "batchnorm2d", "bn"),
        (
            Param("axis", "int", -1),
            Param("momentum", "float"),
            Param("epsilon", "float"),
            Param("center", "bool", True),
            Param("scale", "bool", True),
            *_NORM_EXTRA,
            *_passthrough("moving_mean_initializer", "moving_variance_initializer"),
            Param("synchronized", "bool"),
        ),
        5,
        "batchnormalization",
    ),
    LayerKind(
        "LayerNormalization",
        "layer_normalization",
        ("layernormalization", "layernorm", "ln"),
        (
            Param("axis", "int", -1),
            Param("epsilon", "float"),
            Param("center", "bool", True),
            Param("scale", "bool", True),
            *_NORM_EXTRA,
        ),
        4,
        "layernormalization",
    ),
    LayerKind(
        "Activation",
        "activation",
        ("activation", "act"),
        (Param("activation", "activation", REQUIRED),),
        1,
        "activation(relu)  or just  relu",
    ),
    LayerKind(
        "Dropout",
        "dropout",
        ("dropout",),
        (Param("rate", "rate", REQUIRED), Param("noise_shape", "any"), Param("seed", "seed")),
        3,
        "dropout(0.5)",
    ),
    LayerKind(
        "SpatialDropout2D",
        "spatial_dropout2d",
        ("spatialdropout2d", "spatialdropout"),
        (
            Param("rate", "rate", REQUIRED),
            Param("data_format", "data_format"),
            Param("seed", "seed"),
        ),
        3,
        "spatialdropout2d(0.2)",
    ),
    LayerKind(
        "GaussianNoise",
        "gaussian_noise",
        ("gaussiannoise",),
        (Param("stddev", "float", REQUIRED), Param("seed", "seed")),
        2,
        "gaussiannoise(0.1)",
    ),
    LayerKind(
        "Flatten",
        "flatten",
        ("flatten",),
        (Param("data_format", "data_format"),),
        1,
        "flatten",
    ),
    LayerKind(
        "Dense",
        "dense",
        ("dense", "fc", "fullyconnected"),
        (
            Param("units", "pos_int", REQUIRED),
            Param("activation", "activation", None),
            Param("use_bias", "bool", True),
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
            Param("max_value", "opt_float"),
            Param("negative_slope", "float"),
            Param("threshold", "float"),
        ),
        3,
        "relu(max_value=6)",
    ),
    LayerKind(
        "LeakyReLU",
        "leaky_re_lu",
        ("leakyrelu",),
        (Param("negative_slope", "float"),),
        1,
        "leakyrelu(0.2)",
    ),
    LayerKind("ELU", "elu", ("elu",), (Param("alpha", "float"),), 1, "elu(1.0)"),
    LayerKind("Softmax", "softmax", ("softmax",), (Param("axis", "int"),), 1, "softmax(axis=-1)"),
    LayerKind("Identity", "identity", ("identity",), (), 0, "identity"),
    LayerKind(
        "InputLayer",
        "input_layer",
        ("input", "inputlayer"),
        (Param("shape", "shape3", REQUIRED),),
        1,
        "input((224, 224, 3))",
    ),
)

#: Arguments every layer accepts as keywords (``name`` becomes ``LayerSpec.name``).
COMMON_PARAMS = (Param("name", "name"), Param("trainable", "bool"), Param("dtype", "any"))

_ACTIVATION_KEYS = {a.replace("_", ""): a for a in ACTIVATIONS}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


#: Keras class name -> its layer type.
KIND_BY_TYPE: dict[str, LayerKind] = {kind.type: kind for kind in LAYER_KINDS}

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


def known_names() -> list[str]:
    """Every spelling of a layer, for suggestions."""
    names = [alias for kind in LAYER_KINDS for alias in kind.aliases]
    names += [kind.snake for kind in LAYER_KINDS]
    return names + list(ACTIVATIONS)


def suggest(word: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``word`` (case, ``_`` and ``-`` ignored), or None."""
    keyed: dict[str, str] = {}
    for candidate in candidates:
        keyed.setdefault(_key(candidate), candidate)
    match = difflib.get_close_matches(_key(word), list(keyed), n=1, cutoff=0.6)
    return keyed[match[0]] if match else None

"""convkit's shape arithmetic against Keras 3 itself.

Every stack is parsed and analysed by :mod:`convkit.arithmetic`, and built
with ``keras.Sequential([keras.Input(shape), ...])`` from the very same parsed layers
(``getattr(keras.layers, layer.type)(name=layer.name, **layer.kwargs)``, the recipe
``convkit run`` will use). Every layer's output shape, ``count_params()`` and trainable /
non-trainable split must agree; a layer convkit calls impossible must make Keras refuse the
stack at that very layer (or produce a non-positive dimension), and vice versa.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convkit.arithmetic import (
    shapes,
    spec,  # noqa: E402
)
from convkit.errors import LayerError, SpecError  # noqa: E402

pytestmark = pytest.mark.keras

_KERAS = None


def K():
    """Keras, imported on first use (never at module level: see TID253 in pyproject)."""
    global _KERAS
    if _KERAS is None:
        import keras

        _KERAS = keras
    return _KERAS


def keras_layer(layer: spec.LayerSpec):
    return getattr(K().layers, layer.type)(name=layer.name, **layer.kwargs)


def _size(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def keras_verdict(layers, input_shape, *, run: bool = True):
    """Build the stack in Keras (and run it on a batch of zeros when ``run``).

    Returns ``(facts, refusal)``: ``facts`` lists per layer (output shape, count_params(),
    trainable, non-trainable) when the build succeeds; ``refusal`` says why Keras refuses the
    stack (the build raised, a dimension is <= 0, or running it raised), else None.
    """
    keras = K()
    try:
        model = keras.Sequential([keras.Input(input_shape), *map(keras_layer, layers)])
    except Exception as exc:  # noqa: BLE001 - any refusal counts
        return None, f"build: {exc}"
    facts = []
    for built in model.layers:
        out = tuple(built.output.shape[1:])
        facts.append(
            (
                out,
                built.count_params(),
                _size(built.trainable_weights),
                _size(built.non_trainable_weights),
            )
        )
    if any(d is not None and d <= 0 for fact in facts for d in fact[0]):
        return facts, "a dimension <= 0"
    if run:
        import numpy as np

        try:
            y = model(np.zeros((1, *input_shape), dtype="float32"))
        except Exception as exc:  # noqa: BLE001
            return facts, f"run: {exc}"
        if tuple(y.shape[1:]) != facts[-1][0]:
            return facts, f"run: computed {tuple(y.shape[1:])}, not {facts[-1][0]}"
    return facts, None


def keras_failing_index(layers, input_shape) -> int | None:
    """The first layer at which Keras refuses the stack (build, shape or run)."""
    for end in range(1, len(layers) + 1):
        if keras_verdict(layers[:end], input_shape)[1] is not None:
            return end - 1
    return None


def assert_agrees_with_keras(text: str, input_shape, *, run: bool = False):
    """The contract of this file, for one stack. Returns convkit's result (None if impossible).

    ``run`` also runs an accepted stack on zeros (the real computation must give the same
    shape); an impossible one is always run, since some refusals come only at run time.
    """
    layers = spec.parse_spec(text)
    body = [layer for layer in layers if layer.type != "InputLayer"]
    if input_shape is None:
        input_shape = layers[0].kwargs["shape"]
    try:
        ours = shapes.analyze_stack(body, input_shape)
        our_error = None
    except shapes.LayerError as exc:
        ours, our_error = None, exc

    if our_error is not None:
        _, refusal = keras_verdict(body, input_shape, run=True)
        assert refusal is not None, (
            f"convkit says impossible but Keras builds and runs it: {text!r} on "
            f"{input_shape}: {our_error}"
        )
        assert keras_failing_index(body, input_shape) == our_error.index, (text, our_error)
        return None
    facts, refusal = keras_verdict(body, input_shape, run=run)
    assert refusal is None, (
        f"Keras refuses what convkit accepts: {text!r} on {input_shape}: {refusal}"
    )
    assert len(facts) == len(ours.layers)
    for layer, (out, params, trainable, non_trainable) in zip(ours.layers, facts, strict=True):
        assert layer.output_shape == out, (text, layer.name)
        assert layer.params == params, (text, layer.name)
        assert layer.trainable_params == trainable, (text, layer.name)
        assert layer.non_trainable_params == non_trainable, (text, layer.name)
    return ours


# --------------------------------------------------------------------------- classic networks


def test_keras_io_mnist_convnet():
    from test_shapes import MNIST  # the same text the pure tests check

    ours = assert_agrees_with_keras(MNIST, (28, 28, 1))
    assert ours.total_params == 34_826
    assert ours.layers[0].output_shape == (26, 26, 32) and ours.layers[0].params == 320


def test_vgg16():
    from test_shapes import VGG16

    ours = assert_agrees_with_keras(VGG16, None)
    assert ours.total_params == 138_357_544


def test_vgg16_conv_base_matches_keras_applications():
    from test_shapes import VGG16

    conv_base = VGG16.split("flatten")[0]
    ours = shapes.analyze_stack(spec.parse_spec(conv_base))
    app = K().applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    assert app.count_params() == ours.total_params == 14_714_688
    theirs = [tuple(layer.output.shape[1:]) for layer in app.layers[1:]]
    assert theirs == [layer.output_shape for layer in ours.layers]


def test_mobilenet_matches_keras_applications():
    from test_shapes import mobilenet_v1

    ours = assert_agrees_with_keras(mobilenet_v1(), None)
    app = K().applications.MobileNet(weights=None, input_shape=(224, 224, 3))
    assert app.count_params() == ours.total_params == 4_253_864
    assert _size(app.non_trainable_weights) == ours.non_trainable_params == 21_888


@pytest.mark.parametrize(
    "text, input_shape",
    [
        (  # LeNet-5
            "conv2d(6, 5, activation=tanh) avgpool(2) conv2d(16, 5, activation=tanh) avgpool(2) "
            "flatten dense(120, activation=tanh) dense(84, activation=tanh) dense(10) softmax",
            (32, 32, 1),
        ),
        (  # AlexNet, single tower
            "conv2d(96, 11, strides=4, activation=relu) maxpool2d(3, 2) "
            "conv2d(256, 5, padding=same, activation=relu) maxpool2d(3, 2) "
            "conv2d(384, 3, padding=same, activation=relu) conv2d(384, 3, padding=same) "
            "conv2d(256, 3, padding=same, activation=relu) maxpool2d(3, 2) "
            "flatten dense(4096, activation=relu) dropout(0.5) dense(4096) dense(1000)",
            (227, 227, 3),
        ),
        (  # a U-Net-ish encoder/decoder with every reshaping layer
            "conv2d(8, 3, padding=same) bn relu maxpool2d(2) "
            "separableconv2d(16, 3, padding=same, depth_multiplier=2) bn(center=False) relu "
            "maxpool2d(2, padding=same) conv2dtranspose(8, 3, strides=2, padding=same) "
            "upsampling2d(2, interpolation=bilinear) cropping2d(((1, 0), (0, 1))) "
            "zeropadding2d(((0, 1), (1, 0))) depthwiseconv2d(3, padding=same, use_bias=False) "
            "conv2d(1, 1, activation=sigmoid)",
            (30, 30, 3),
        ),
        (  # an all-convolutional classifier
            "conv2d(16, 3, strides=2, dilation_rate=1) conv2d(16, 3, dilation_rate=2) "
            "conv2d(32, (1, 5), groups=2) layernorm spatialdropout2d(0.1) "
            "gmp(keepdims=True) conv2d(10, 1) flatten softmax",
            (64, 48, 4),
        ),
    ],
)
def test_classic_stacks(text, input_shape):
    assert assert_agrees_with_keras(text, input_shape, run=True) is not None


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    "text, input_shape, impossible_at",
    [
        ("conv2d(2, 3, strides=2, dilation_rate=2)", (9, 9, 1), 0),
        ("conv2d(2, 3, strides=(2, 1), dilation_rate=(1, 2))", (9, 9, 1), 0),
        ("conv2dtranspose(2, 3, strides=2, dilation_rate=2)", (9, 9, 1), 0),
        ("depthwiseconv2d(3, strides=2, dilation_rate=2)", (9, 9, 1), None),  # Keras 3: fine
        ("depthwiseconv2d(3, strides=2, dilation_rate=2, padding=same)", (9, 9, 2), None),
        (
            "separableconv2d(4, 3, strides=(2, 1), dilation_rate=(1, 2), padding=same)",
            (7, 7, 2),
            None,
        ),
        ("conv2d(2, 5)", (4, 9, 1), 0),
        ("conv2d(2, 3, dilation_rate=3)", (6, 6, 1), 0),  # k_eff 7 > 6
        ("conv2d(2, 3, dilation_rate=3, padding=same)", (6, 6, 1), None),
        ("conv2d(2, 4, strides=3, padding=same)", (1, 1, 1), None),
        ("maxpool2d(3)", (2, 2, 1), 0),
        ("maxpool2d(5, padding=same)", (3, 3, 1), None),
        ("maxpool2d(2, strides=5)", (3, 3, 1), None),
        ("conv2dtranspose(2, 2, strides=2, padding=same, output_padding=0)", (1, 1, 1), 0),
        # Keras builds these, TensorFlow refuses to run them (even kernel, 'same', padding 0)
        ("conv2dtranspose(2, 2, strides=2, padding=same, output_padding=0)", (3, 3, 1), 0),
        ("conv2dtranspose(1, (2, 1), padding=same, output_padding=(0, 0))", (2, 1, 1), 0),
        ("conv2dtranspose(2, 3, strides=2, padding=same, output_padding=0)", (5, 5, 1), None),
        ("conv2dtranspose(2, 4, strides=2, padding=same, output_padding=1)", (5, 5, 1), None),
        ("conv2dtranspose(2, 3, strides=2, padding=same, output_padding=1)", (7, 7, 1), None),
        ("conv2dtranspose(2, 3, strides=2, output_padding=2)", (7, 7, 1), 0),
        ("conv2dtranspose(2, 1, strides=3)", (7, 7, 1), None),
        ("conv2dtranspose(2, 3, dilation_rate=2, padding=same)", (5, 5, 1), None),
        ("cropping2d(((1, 1), (0, 0)))", (2, 5, 1), 0),
        ("cropping2d(((1, 0), (0, 0)))", (2, 5, 1), None),
        ("conv2d(3, 3, groups=2)", (5, 5, 4), 0),
        ("conv2d(4, 3, groups=3)", (5, 5, 4), 0),
        ("conv2d(4, 3, groups=2) conv2d(2, 1, groups=2)", (5, 5, 4), None),
        ("flatten conv2d(2, 1)", (5, 5, 1), 1),
        ("gap maxpool2d(1)", (5, 5, 1), 1),
        ("gap(keepdims=True) maxpool2d(1)", (5, 5, 1), None),
        ("flatten bn dense(3) bn(axis=1) layernorm", (2, 3, 4), None),
        ("bn(axis=1) bn(axis=2) bn(axis=-2)", (2, 3, 4), None),
        ("dense(3) dense(2, use_bias=False)", (2, 3, 4), None),
        ("conv2d(2, 3, trainable=False) bn(trainable=False)", (5, 5, 3), None),
        ("upsampling2d((1, 3)) avgpool((3, 1), padding=same)", (2, 2, 1), None),
    ],
)
def test_edge_cases(text, input_shape, impossible_at):
    if impossible_at is None:
        assert assert_agrees_with_keras(text, input_shape, run=True) is not None
    else:
        with pytest.raises(LayerError) as info:
            shapes.analyze_stack(spec.parse_spec(text), input_shape)
        assert info.value.index == impossible_at
        assert assert_agrees_with_keras(text, input_shape) is None


def test_every_activation_name_is_a_keras_activation():
    keras = K()
    for name in spec.ACTIVATIONS:
        layer = spec.parse_spec(name)[0]
        model = keras.Sequential([keras.Input((3, 3, 2)), keras_layer(layer)])
        assert tuple(model.layers[-1].output.shape[1:]) == (3, 3, 2), name


# --------------------------------------------------------------------------- randomized stacks

_SMALL = st.integers(1, 4)
_PAIR = st.one_of(_SMALL, st.tuples(_SMALL, _SMALL))
_STRIDE = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
_DILATION = st.sampled_from([1, 1, 1, 2, 3, (1, 2), (2, 1)])
_PADDING = st.sampled_from(["valid", "same"])
_BOOL = st.booleans()


def _v(value) -> str:
    return f"({value[0]}, {value[1]})" if isinstance(value, tuple) else str(value)


@st.composite
def _layer(draw) -> str:
    kind = draw(
        st.sampled_from(
            ["conv"] * 4
            + ["transpose"] * 2
            + ["depthwise", "separable"]
            + ["pool"] * 3
            + ["zeropad", "crop", "upsample", "bn", "ln", "act", "global", "flatten", "dense"]
        )
    )
    if kind == "conv":
        groups = draw(st.sampled_from(["", "", "", ", groups=2"]))
        return (
            f"conv2d({draw(_SMALL)}, {_v(draw(_PAIR))}, strides={_v(draw(_STRIDE))}, "
            f"padding={draw(_PADDING)}, dilation_rate={_v(draw(_DILATION))}, "
            f"use_bias={draw(_BOOL)}{groups})"
        )
    if kind == "transpose":
        op = draw(
            st.one_of(st.none(), st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))
        )
        return (
            f"conv2dtranspose({draw(_SMALL)}, {_v(draw(_PAIR))}, strides={_v(draw(_STRIDE))}, "
            f"padding={draw(_PADDING)}, output_padding={_v(op)}, "
            f"dilation_rate={_v(draw(_DILATION))})"
        )
    if kind == "depthwise":
        return (
            f"depthwiseconv2d({_v(draw(_PAIR))}, {_v(draw(_STRIDE))}, {draw(_PADDING)}, "
            f"depth_multiplier={draw(st.integers(1, 2))}, dilation_rate={_v(draw(_DILATION))}, "
            f"use_bias={draw(_BOOL)})"
        )
    if kind == "separable":
        return (
            f"separableconv2d({draw(_SMALL)}, {_v(draw(_PAIR))}, strides={_v(draw(_STRIDE))}, "
            f"padding={draw(_PADDING)}, dilation_rate={_v(draw(_DILATION))}, "
            f"depth_multiplier={draw(st.integers(1, 2))})"
        )
    if kind == "pool":
        name = draw(st.sampled_from(["maxpool2d", "avgpool"]))
        strides = draw(st.one_of(st.none(), _STRIDE))
        return f"{name}({_v(draw(_PAIR))}, {_v(strides)}, {draw(_PADDING)})"
    if kind in ("zeropad", "crop"):
        amount = draw(
            st.one_of(
                st.integers(0, 2),
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
                st.tuples(
                    st.tuples(st.integers(0, 2), st.integers(0, 2)),
                    st.tuples(st.integers(0, 2), st.integers(0, 2)),
                ),
            )
        )
        text = repr(amount).replace(" ", "")
        return f"{'zeropadding2d' if kind == 'zeropad' else 'cropping2d'}({text})"
    if kind == "upsample":
        interpolation = draw(st.sampled_from(["nearest", "bilinear"]))
        return f"upsampling2d({_v(draw(_PAIR))}, interpolation={interpolation})"
    if kind == "bn":
        return f"bn(center={draw(_BOOL)}, scale={draw(_BOOL)})"
    if kind == "ln":
        return "layernorm"
    if kind == "act":
        return draw(st.sampled_from(["relu", "dropout(0.2)", "activation(tanh)", "leakyrelu(0.1)"]))
    if kind == "global":
        return f"{draw(st.sampled_from(['gap', 'gmp']))}(keepdims={draw(_BOOL)})"
    if kind == "flatten":
        return "flatten"
    return f"dense({draw(st.integers(1, 5))}, use_bias={draw(_BOOL)})"


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    layers=st.lists(_layer(), min_size=1, max_size=4),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    channels=st.integers(1, 4),
)
def test_random_stacks_agree_with_keras(layers, height, width, channels):
    assert_agrees_with_keras(" ".join(layers), (height, width, channels), run=True)


# --------------------------------------------------------------------------- flag mode


def _keras_equivalent(mode, kernel, stride, padding, dilation, filters, output_padding):
    """Keras layers equivalent to a flag-mode layer (explicit padding = ZeroPadding2D)."""
    layers = K().layers
    if isinstance(padding, int) or padding == "full":
        amount = padding if isinstance(padding, int) else dilation * (kernel - 1)
        if mode == "transpose":
            return None  # PyTorch-style cropping padding has no single Keras layer
        pad = [layers.ZeroPadding2D(amount)] if amount else []
        padding = "valid"
    else:
        pad = []
    if mode == "conv":
        return pad + [layers.Conv2D(filters, kernel, stride, padding, dilation_rate=dilation)]
    if mode == "pool":
        return pad + [layers.MaxPooling2D(kernel, stride, padding)]
    return [
        layers.Conv2DTranspose(
            filters,
            kernel,
            stride,
            padding,
            output_padding=output_padding,
            dilation_rate=dilation,
        )
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["conv", "pool", "transpose"]),
    n=st.integers(1, 16),
    channels=st.integers(1, 3),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.sampled_from(["valid", "same", "full", 0, 1, 2]),
    dilation=st.sampled_from([1, 1, 2, 3]),
    filters=st.integers(1, 3),
    output_padding=st.sampled_from([None, 0, 1, 2]),
)
def test_flag_mode_agrees_with_keras(
    mode, n, channels, kernel, stride, padding, dilation, filters, output_padding
):
    if mode == "pool":
        dilation, output_padding = 1, None
    if mode != "transpose":
        output_padding = None
    try:
        ours = shapes.single_layer(
            (n, n, channels),
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            filters=filters,
            pool=mode == "pool",
            transpose=mode == "transpose",
            output_padding=output_padding,
        ).result
    except SpecError:
        ours = None
    if mode == "transpose" and not isinstance(padding, str):
        return  # PyTorch-style cropping padding has no single Keras layer
    keras = K()
    try:
        equivalent = _keras_equivalent(
            mode, kernel, stride, padding, dilation, filters, output_padding
        )
        model = keras.Sequential([keras.Input((n, n, channels)), *equivalent])
        out = tuple(model.layers[-1].output.shape[1:])
        keras_ok = all(d > 0 for d in out)
        if keras_ok:  # some refusals come only when TensorFlow runs the layer
            import numpy as np

            model(np.zeros((1, n, n, channels), dtype="float32"))
    except Exception:  # noqa: BLE001
        keras_ok = False
    case = (mode, n, kernel, stride, padding, dilation, output_padding)
    assert (ours is not None) == keras_ok, case
    if ours is not None:
        assert ours.output_shape == out
        assert ours.params == model.count_params()


def test_the_documented_recipe_builds_the_whole_spec():
    """``getattr(keras.layers, type)(name=name, **kwargs)`` for every layer, input too."""
    keras = K()
    layers = spec.parse_spec(
        "input((28, 28, 1)) conv2d(8, 3, activation=relu, name=c1) bn maxpool flatten "
        "dense(10) softmax"
    )
    model = keras.Sequential(
        [getattr(keras.layers, layer.type)(name=layer.name, **layer.kwargs) for layer in layers]
    )
    ours = shapes.analyze_stack(layers)
    assert [layer.name for layer in model.layers] == [layer.name for layer in ours.layers]
    assert model.count_params() == ours.total_params == 13_642
    assert _size(model.non_trainable_weights) == ours.non_trainable_params == 16

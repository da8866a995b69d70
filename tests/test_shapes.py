"""convkit.arithmetic: the arithmetic itself, against hand-worked numbers and classic networks.

Keras parity lives in test_shape_calc_keras.py; this file needs no Keras.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convkit.arithmetic import shapes
from convkit.arithmetic.spec import parse_spec
from convkit.errors import SpecError, UsageError

# --------------------------------------------------------------------------- one axis


def test_effective_kernel():
    assert shapes.effective_kernel(3) == 3
    assert shapes.effective_kernel(3, 2) == 5
    assert shapes.effective_kernel(15, 2) == 29
    assert shapes.effective_kernel(1, 7) == 1


@pytest.mark.parametrize(
    "n, k, s, d, expected",
    [
        (5, 3, 1, 1, (1, 1)),
        (5, 3, 2, 1, (1, 1)),  # out 3, total 2·2 + 3 − 5 = 2
        (6, 3, 2, 1, (0, 1)),  # out 3, total 1: the odd pixel goes after (TensorFlow)
        (6, 1, 2, 1, (0, 0)),
        (7, 3, 1, 2, (2, 2)),  # k_eff 5
        (224, 7, 2, 1, (2, 3)),  # ResNet's stem
        (1, 5, 1, 1, (2, 2)),
    ],
)
def test_same_padding(n, k, s, d, expected):
    assert shapes.same_padding(n, k, s, d) == expected


@pytest.mark.parametrize(
    "n, k, s, padding, d, expected",
    [
        (512, 15, 1, 0, 1, 498),
        (512, 15, 1, "valid", 1, 498),
        (512, 15, 1, "same", 1, 512),
        (512, 15, 1, "full", 1, 526),
        (512, 15, 2, 0, 1, 249),  # ⌊497 / 2⌋ + 1
        (512, 15, 2, "same", 1, 256),
        (512, 15, 1, 0, 2, 484),  # k_eff 29
        (28, 5, 1, 2, 1, 28),
        (7, 3, 2, (1, 0), 1, 3),
        (5, 5, 1, "valid", 1, 1),
        (4, 5, 1, "valid", 1, 0),
        (7, 2, 3, "same", 1, 3),
    ],
)
def test_conv_output_length(n, k, s, padding, d, expected):
    assert shapes.conv_output_length(n, k, s, padding, d) == expected


@pytest.mark.parametrize(
    "n, k, s, padding, op, d, expected",
    [
        (7, 3, 2, "valid", None, 1, 15),  # (7 − 1)·2 + max(3, 2)
        (7, 1, 3, "valid", None, 1, 21),  # (7 − 1)·3 + max(1, 3)
        (7, 3, 2, "valid", 1, 1, 16),
        (7, 3, 2, "same", None, 1, 14),  # 7·2
        (7, 3, 2, "same", 1, 1, 14),  # (7 − 1)·2 + 3 mod 2 + 1
        (7, 2, 2, "same", 0, 1, 12),  # (7 − 1)·2 + 0 + 0
        (1, 2, 2, "same", 0, 1, 0),  # Keras builds a 0-sized output here
        (7, 3, 1, "valid", None, 2, 11),  # k_eff 5
        (7, 3, 2, 1, None, 1, 13),  # PyTorch rule: (7 − 1)·2 − 2 + 3
    ],
)
def test_conv_transpose_output_length(n, k, s, padding, op, d, expected):
    assert shapes.conv_transpose_output_length(n, k, s, padding, op, d) == expected


def test_uncovered_rows():
    assert shapes.uncovered_rows(512, 15, 1, 0) == (0, 0)
    assert shapes.uncovered_rows(512, 15, 2, 0) == (1, 0)  # 497 is odd: the last row
    # windows of 2 at 0, 3, 6 on 10 rows: rows 2 and 5 skipped, 8 and 9 left over
    assert shapes.uncovered_rows(10, 2, 3, 0) == (2, 2)
    # a dilated kernel of 2 taps 4 apart on 5 rows, one window: rows 1-3 are holes
    assert shapes.uncovered_rows(5, 2, 1, 0, 4) == (0, 3)
    # 'same' with k=1, s=2 on 6 rows reads 0, 2, 4: the last row is never read
    assert shapes.uncovered_rows(6, 1, 2, "same") == (1, 2)


def _brute_force_output(n, k, s, before, after, d):
    padded = n + before + after
    k_eff = d * (k - 1) + 1
    return len(range(0, padded - k_eff + 1, s))


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 9),
    s=st.integers(1, 5),
    d=st.integers(1, 4),
    before=st.integers(0, 4),
    after=st.integers(0, 4),
)
def test_output_length_counts_window_positions(n, k, s, d, before, after):
    expected = _brute_force_output(n, k, s, before, after, d)
    got = shapes.conv_output_length(n, k, s, (before, after), d)
    assert max(got, 0) == expected


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 9), s=st.integers(1, 6), d=st.integers(1, 4))
def test_same_is_ceil_and_its_padding_achieves_it(n, k, s, d):
    out = shapes.conv_output_length(n, k, s, "same", d)
    assert out == math.ceil(n / s)
    before, after = shapes.same_padding(n, k, s, d)
    assert _brute_force_output(n, k, s, before, after, d) == out
    assert 0 <= after - before <= 1


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 6),
    s=st.integers(1, 6),
    d=st.integers(1, 3),
    pad=st.integers(0, 3),
)
def test_uncovered_rows_brute_force(n, k, s, d, pad):
    out = shapes.conv_output_length(n, k, s, pad, d)
    if out <= 0:
        return
    read = {i * s + t * d - pad for i in range(out) for t in range(k)}
    unread = [row for row in range(n) if row not in read]
    last = max(read)
    tail, gaps = shapes.uncovered_rows(n, k, s, pad, d)
    assert tail == len([r for r in unread if r > last])
    assert gaps == len([r for r in unread if r < last])


# --------------------------------------------------------------------------- single layer


def test_the_issue_example():
    layer = shapes.single_layer((512, 512, 1), 15, stride=1, padding=0)
    assert [a.formula for a in layer.axes] == ["(512 + 2·0 − 15) / 1 + 1 = 498"]
    assert layer.axes[0].axis == "height and width"
    assert layer.params_formula.startswith("1·(15·15·1) + 1 = 226")
    assert layer.result.output_shape == (498, 498, 1)
    assert layer.result.params == 226
    assert layer.result.macs == 498 * 498 * 15 * 15
    assert layer.result.receptive_field.as_int() == 15
    assert layer.to_stack().to_json() == {
        "input_shape": [512, 512, 1],
        "layers": [
            {
                "name": "conv2d",
                "type": "Conv2D",
                "output_shape": [498, 498, 1],
                "params": 226,
                "trainable_params": 226,
                "non_trainable_params": 0,
                "macs": 55_800_900,
                "receptive_field": 15,
            }
        ],
        "total_params": 226,
        "trainable_params": 226,
        "non_trainable_params": 0,
        "total_macs": 55_800_900,
    }


def test_uneven_stride_says_what_is_never_covered():
    layer = shapes.single_layer((512, 512, 1), 15, stride=2, padding=0)
    (axis,) = layer.axes
    assert axis.formula == "⌊(512 + 2·0 − 15) / 2⌋ + 1 = 249"
    assert any("last 1 row and column" in note and "never covered" in note for note in axis.notes)


def test_different_axes_get_their_own_formula():
    layer = shapes.single_layer((32, 24, 3), (3, 5), stride=(1, 2), padding=(1, 2), filters=8)
    assert [a.axis for a in layer.axes] == ["height", "width"]
    assert layer.axes[0].formula == "(32 + 2·1 − 3) / 1 + 1 = 32"
    assert layer.axes[1].formula == "⌊(24 + 2·2 − 5) / 2⌋ + 1 = 12"
    assert layer.result.output_shape == (32, 12, 8)
    assert layer.params_formula.startswith("8·(3·5·3) + 8 = 368")


def test_same_and_full_padding_formulas():
    same = shapes.single_layer((512, 512, 1), 15, stride=2, padding="same")
    assert same.axes[0].formula == "512 / 2 = 256"
    assert "6 before, 7 after" in same.axes[0].notes[0]
    odd = shapes.single_layer((7, 7, 1), 3, stride=2, padding="same")
    assert odd.axes[0].formula == "⌈7 / 2⌉ = 4"
    full = shapes.single_layer((512, 512, 1), 15, padding="full")
    assert full.axes[0].formula == "(512 + 2·14 − 15) / 1 + 1 = 526"
    assert any("full" in note for note in full.notes)


def test_dilation_shows_the_effective_kernel():
    layer = shapes.single_layer((512, 512, 1), 15, dilation=2)
    assert layer.axes[0].formula == "(512 + 2·0 − 29) / 1 + 1 = 484"
    assert "2·(15 − 1) + 1 = 29" in layer.axes[0].notes[0]


def test_pooling_has_no_parameters_and_strides_default_to_the_window():
    layer = shapes.single_layer((28, 28, 32), 2, pool=True)
    assert layer.result.output_shape == (14, 14, 32)
    assert layer.result.params == 0
    assert layer.result.type == "MaxPooling2D"
    assert layer.params_formula.startswith("0")
    gappy = shapes.single_layer((10, 10, 1), 2, stride=3, pool=True)
    assert any("between windows" in note for note in gappy.axes[0].notes)


def test_transposed_convolution():
    layer = shapes.single_layer(
        (7, 7, 3), 3, stride=2, padding="same", output_padding=1, filters=8, transpose=True
    )
    assert layer.result.output_shape == (14, 14, 8)
    assert layer.axes[0].formula == "(7 − 1)·2 + 3 mod 2 + 1 = 14"
    assert layer.result.params == 8 * 3 * 3 * 3 + 8
    assert layer.result.macs == 7 * 7 * 3 * 3 * 3 * 8
    plain = shapes.single_layer((7, 7, 1), 1, stride=3, transpose=True)
    assert plain.axes[0].formula == "(7 − 1)·3 + max(1, 3) = 21"


def test_no_bias():
    layer = shapes.single_layer((10, 10, 3), 3, filters=4, use_bias=False)
    assert layer.result.params == 4 * 3 * 3 * 3
    assert layer.params_formula == "4·(3·3·3) = 108"


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (
            dict(input_shape=(10, 10, 1), kernel=15),
            r"^the kernel 15 is larger than the input height 10: the output height would be -4\. "
            r"Received: input=10, kernel_size=15, strides=1, padding=valid, dilation_rate=1$",
        ),
        (
            dict(input_shape=(10, 10, 1), kernel=13, padding=1),
            r"padded input height 12 \(10 \+ 1 \+ 1\).*Received: input=10, kernel_size=13",
        ),
        (
            dict(input_shape=(10, 10, 1), kernel=3, stride=2, dilation=2),
            r"^Conv2D: `strides > 1` not supported in conjunction with `dilation_rate > 1`",
        ),
        (
            dict(input_shape=(10, 10, 1), kernel=0),
            r"^kernel_size must be > 0\. Received: kernel_size=0$",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, stride=2, output_padding=2, transpose=True),
            r"^Conv2DTranspose: `output_padding` must be strictly less than `stride`\. "
            r"Received: output_padding=\(2, 2\), strides=\(2, 2\)$",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, output_padding=0),
            r"^output padding only applies to a transposed convolution \(`transpose`\)\. "
            r"Received: output_padding=0$",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=2, dilation=2, pool=True),
            r"^a pooling window has no dilation\. Received: dilation_rate=\(2, 2\)$",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, padding="full", transpose=True),
            r"^padding 'full' is not defined for a transposed convolution; use 'valid', 'same' "
            r"or a number\. Received: padding='full'$",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, pool=True, transpose=True),
            r"^`pool` and `transpose` exclude each other: choose one layer kind$",
        ),
        (
            dict(input_shape=(7, 7, 1)),
            r"^`kernel` is missing: one layer needs `input_shape` and `kernel`",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, filters=0),
            r"^filters must be a positive integer\. Received: filters=0$",
        ),
        (
            dict(
                input_shape=(1, 1, 1),
                kernel=2,
                stride=2,
                padding="same",
                output_padding=0,
                transpose=True,
            ),
            r"output height \(n − 1\)·s \+ k_eff mod 2 \+ output_padding = \(1 − 1\)·2 \+ 0 \+ 0 "
            r"= 0 is empty",
        ),
        (
            dict(
                input_shape=(3, 3, 1),
                kernel=2,
                stride=2,
                padding="same",
                output_padding=0,
                transpose=True,
            ),
            r"= 4 does not map back onto the input height 3.*TensorFlow refuses to run it",
        ),
        (
            dict(input_shape=(7, 7, 1), kernel=3, padding="half"),
            r"^padding must be 'valid', 'same', 'full' or a number\. Received: padding='half'$",
        ),
    ],
)
def test_impossible_single_layers(kwargs, pattern):
    with pytest.raises(SpecError, match=pattern) as info:
        shapes.single_layer(**kwargs)
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2
    if "`" not in pattern:
        assert "Received" in str(info.value)


# --------------------------------------------------------------------------- stacks


def stack(text, input_shape=None):
    return shapes.analyze_stack(parse_spec(text), input_shape)


MNIST = (
    "conv2d(32, 3, activation=relu) maxpool2d(2) conv2d(64, 3, activation=relu) maxpool2d(2) "
    "flatten dropout(0.5) dense(10, activation=softmax)"
)


def test_keras_io_mnist_convnet():
    result = stack(MNIST, (28, 28, 1))
    first = result.layers[0]
    assert first.output_shape == (26, 26, 32)
    assert first.params == 320
    assert [layer.output_shape for layer in result.layers] == [
        (26, 26, 32),
        (13, 13, 32),
        (11, 11, 64),
        (5, 5, 64),
        (1600,),
        (1600,),
        (10,),
    ]
    assert [layer.params for layer in result.layers] == [320, 0, 18496, 0, 0, 0, 16010]
    assert result.total_params == 34_826
    assert result.trainable_params == 34_826
    assert result.non_trainable_params == 0


VGG16 = """
# VGG16, Simonyan & Zisserman 2014 (Keras's keras.applications.VGG16)
input((224, 224, 3))
conv2d(64, 3, padding=same, activation=relu)
conv2d(64, 3, padding=same, activation=relu)
maxpool2d(2)
conv2d(128, 3, padding=same, activation=relu)
conv2d(128, 3, padding=same, activation=relu)
maxpool2d(2)
conv2d(256, 3, padding=same, activation=relu)
conv2d(256, 3, padding=same, activation=relu)
conv2d(256, 3, padding=same, activation=relu)
maxpool2d(2)
conv2d(512, 3, padding=same, activation=relu)
conv2d(512, 3, padding=same, activation=relu)
conv2d(512, 3, padding=same, activation=relu)
maxpool2d(2)
conv2d(512, 3, padding=same, activation=relu)
conv2d(512, 3, padding=same, activation=relu)
conv2d(512, 3, padding=same, activation=relu)
maxpool2d(2)
flatten
dense(4096, activation=relu)
dense(4096, activation=relu)
dense(1000, activation=softmax)
"""


def test_vgg16():
    result = stack(VGG16)
    assert result.input_shape == (224, 224, 3)
    assert result.total_params == 138_357_544
    conv_base = result.layers[:18]
    assert conv_base[-1].output_shape == (7, 7, 512)
    assert sum(layer.params for layer in conv_base) == 14_714_688
    assert result.total_macs == 15_470_264_320  # the "15.5 G" of the literature
    # the textbook receptive fields: conv5_3 sees 196 pixels, pool5 212
    assert conv_base[-2].receptive_field.as_int() == 196
    assert conv_base[-1].receptive_field.as_int() == 212
    assert conv_base[-1].receptive_field.jump == (32, 32)
    assert result.layers[-1].output_shape == (1000,)


def test_lenet5():
    result = stack(
        "conv2d(6, 5, activation=tanh) avgpool(2) conv2d(16, 5, activation=tanh) avgpool(2) "
        "flatten dense(120, activation=tanh) dense(84, activation=tanh) dense(10) softmax",
        (32, 32, 1),
    )
    assert [layer.output_shape for layer in result.layers][:4] == [
        (28, 28, 6),
        (14, 14, 6),
        (10, 10, 16),
        (5, 5, 16),
    ]
    assert [layer.params for layer in result.layers if layer.params] == [
        156,
        2416,
        48120,
        10164,
        850,
    ]
    assert result.total_params == 61_706


def test_alexnet():
    result = stack(
        "conv2d(96, 11, strides=4, activation=relu) maxpool2d(3, 2) "
        "conv2d(256, 5, padding=same, activation=relu) maxpool2d(3, 2) "
        "conv2d(384, 3, padding=same, activation=relu) "
        "conv2d(384, 3, padding=same, activation=relu) "
        "conv2d(256, 3, padding=same, activation=relu) maxpool2d(3, 2) "
        "flatten dense(4096, activation=relu) dropout(0.5) "
        "dense(4096, activation=relu) dropout(0.5) "
        "dense(1000, activation=softmax)",
        (227, 227, 3),
    )
    shapes_ = [layer.output_shape for layer in result.layers]
    assert shapes_[:8] == [
        (55, 55, 96),
        (27, 27, 96),
        (27, 27, 256),
        (13, 13, 256),
        (13, 13, 384),
        (13, 13, 384),
        (13, 13, 256),
        (6, 6, 256),
    ]
    assert shapes_[8] == (9216,)
    assert result.total_params == 62_378_344


def mobilenet_v1() -> str:
    lines = [
        "input((224, 224, 3))",
        "conv2d(32, 3, strides=2, padding=same, use_bias=False) bn relu(6)",
    ]
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    blocks += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for filters, stride in blocks:
        if stride == 2:
            lines.append("zeropadding2d(((0, 1), (0, 1)))")
        padding = "same" if stride == 1 else "valid"
        lines.append(
            f"depthwiseconv2d(3, strides={stride}, padding={padding}, use_bias=False) bn relu(6)"
        )
        lines.append(f"conv2d({filters}, 1, padding=same, use_bias=False) bn relu(6)")
    lines.append("globalaveragepooling2d(keepdims=True) dropout(0.001)")
    lines.append("conv2d(1000, 1, padding=same) flatten softmax")
    return "\n".join(lines)


def test_mobilenet_v1_depthwise_and_batchnorm():
    result = stack(mobilenet_v1())
    # keras.applications.MobileNet(): 4,253,864 params, 21,888 of them non-trainable
    assert result.total_params == 4_253_864
    assert result.non_trainable_params == 21_888
    assert result.trainable_params == 4_231_976
    assert result.total_macs == 568_740_352  # the paper's "569 million mult-adds"
    depthwise = [layer for layer in result.layers if layer.type == "DepthwiseConv2D"]
    assert depthwise[0].output_shape == (112, 112, 32)
    assert depthwise[0].params == 3 * 3 * 32
    assert result.layers[-3].output_shape == (1, 1, 1000)


def test_batchnorm_depthwise_separable_counts():
    result = stack(
        "bn depthwiseconv2d(3, depth_multiplier=2) separableconv2d(16, 3, depth_multiplier=3) "
        "separableconv2d(4, 1, use_bias=False) bn(center=False) "
        "conv2d(8, 3, groups=2, padding=same) dense(5, use_bias=False)",
        (12, 12, 3),
    )
    bn, dw, sep, sep2, bn2, grouped, dense = result.layers
    assert (bn.trainable_params, bn.non_trainable_params) == (6, 6)  # 4·C, 2·C frozen
    assert dw.output_shape == (10, 10, 6) and dw.params == 3 * 3 * 3 * 2 + 6
    assert sep.output_shape == (8, 8, 16) and sep.params == 3 * 3 * 6 * 3 + 18 * 16 + 16
    assert sep2.params == 16 * 1 + 16 * 4
    assert (bn2.trainable_params, bn2.non_trainable_params) == (4, 8)
    assert grouped.params == 3 * 3 * (4 // 2) * 8 + 8
    assert dense.output_shape == (8, 8, 5) and dense.params == 8 * 5  # Dense on the last axis
    assert dense.macs == 8 * 8 * 8 * 5


def test_trainable_false_moves_everything_to_non_trainable():
    result = stack("conv2d(4, 3, trainable=False) bn(trainable=False)", (8, 8, 2))
    assert result.trainable_params == 0
    assert result.non_trainable_params == (3 * 3 * 2 * 4 + 4) + 16


def test_padding_cropping_upsampling_global_pooling():
    result = stack(
        "zeropadding2d(((1, 2), (3, 4))) cropping2d(((0, 1), (2, 0))) upsampling2d((2, 3)) "
        "globalmaxpooling2d(keepdims=True) globalaveragepooling2d",
        (10, 10, 4),
    )
    assert [layer.output_shape for layer in result.layers] == [
        (13, 17, 4),
        (12, 15, 4),
        (24, 45, 4),
        (1, 1, 4),
        (4,),
    ]
    assert result.total_params == 0
    assert result.layers[-1].receptive_field is None


def test_receptive_field_through_upsampling_and_transpose():
    result = stack(
        "conv2d(1, 3) maxpool2d(2) upsampling2d(2) conv2d(1, 3, padding=same) "
        "conv2dtranspose(1, 3, strides=2, padding=same)",
        (32, 32, 1),
    )
    rf = [layer.receptive_field for layer in result.layers]
    assert [r.as_int() for r in rf] == [3, 4, 4, 6, 7]
    assert [r.jump[0] for r in rf] == [1, 2, 1, 1, 0.5]


def test_json_shape_is_exactly_the_documented_one():
    data = stack(MNIST, (28, 28, 1)).to_json()
    assert list(data) == [
        "input_shape",
        "layers",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "total_macs",
    ]
    assert data["input_shape"] == [28, 28, 1]
    for layer in data["layers"]:
        assert list(layer) == [
            "name",
            "type",
            "output_shape",
            "params",
            "trainable_params",
            "non_trainable_params",
            "macs",
            "receptive_field",
        ]
    assert data["layers"][4]["output_shape"] == [1600]
    assert data["layers"][4]["receptive_field"] is None
    assert data["layers"][0]["receptive_field"] == 3


@pytest.mark.parametrize(
    "text, input_shape, index, pattern",
    [
        ("conv2d(8, 5) conv2d(8, 5)", (7, 7, 1), 1, r"kernel size 5 is larger than the input"),
        ("flatten conv2d(8, 3)", (7, 7, 1), 1, r"needs a 3-D input.*Received: input_shape=\(49,\)"),
        ("conv2d(8, 3, strides=2, dilation_rate=2)", (9, 9, 1), 0, r"strides > 1"),
        ("conv2d(3, 3, groups=2)", (9, 9, 4), 0, r"filters must be evenly divisible"),
        ("conv2d(3, 3, groups=3)", (9, 9, 4), 0, r"input channels must be evenly divisible"),
        ("cropping2d(((2, 2), (0, 0)))", (4, 4, 1), 0, r"cropping must be smaller"),
        ("maxpool2d(3)", (2, 9, 1), 0, r"pool size 3 is larger than the input height 2"),
        (
            "conv2dtranspose(1, 3, strides=2, output_padding=2)",
            (4, 4, 1),
            0,
            r"\): output_padding must be strictly less than strides\. "
            r"Received: output_padding=\(2, 2\), strides=\(2, 2\)$",
        ),
        (
            "gap maxpool2d(2)",
            (4, 4, 1),
            1,
            r"\): MaxPooling2D needs a 3-D input \(height, width, channels\), but its input has "
            r"1 dimension\. Received: input_shape=\(1,\)$",
        ),
        ("dense(4) input((4, 4, 1))", (4, 4, 1), 1, r"input layer can only come first"),
    ],
)
def test_impossible_stacks_name_the_layer(text, input_shape, index, pattern):
    layers = parse_spec(text) if "input(" not in text else None
    if layers is None:
        from types import SimpleNamespace

        layers = [
            SimpleNamespace(type="Dense", kwargs={"units": 4}, name="dense"),
            SimpleNamespace(type="InputLayer", kwargs={"shape": (4, 4, 1)}, name="input"),
        ]
    with pytest.raises(shapes.LayerError, match=pattern) as info:
        shapes.analyze_stack(layers, input_shape)
    assert info.value.index == index
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"layer {index + 1} (")


def test_stack_needs_an_input_shape():
    with pytest.raises(
        SpecError, match=r"^`input_shape` is missing: the stack needs an input size"
    ):
        stack("flatten")
    with pytest.raises(
        SpecError,
        match=r"^`input_shape` must be three positive integers \(height, width, channels\)\. "
        r"Received: input_shape=\(0, 3, 1\)$",
    ):
        stack("flatten", (0, 3, 1))


def test_explicit_input_wins_over_the_spec():
    result = stack("input((28, 28, 1)) conv2d(4, 3)", (10, 10, 2))
    assert result.input_shape == (10, 10, 2)
    assert result.layers[0].output_shape == (8, 8, 4)
    assert len(result.layers) == 1  # the input layer is not a layer of the result


def test_analyze_layer_accepts_plain_keras_kwargs():
    result = shapes.analyze_layer("Conv2D", {"filters": 8, "kernel_size": 3}, (10, 10, 3))
    assert result.output_shape == (8, 8, 8)
    assert result.params == 224
    with pytest.raises(SpecError, match=r"^unknown layer type\. Received: type='Conv3D' \(known: "):
        shapes.analyze_layer("Conv3D", {}, (10, 10, 3))
    with pytest.raises(SpecError, match=r"Received: kernel_size=\(0, 3\)"):
        shapes.analyze_layer("Conv2D", {"filters": 1, "kernel_size": (0, 3)}, (10, 10, 3))


def test_formatting_helpers():
    assert shapes.format_bytes(40) == "40 B"
    assert shapes.format_bytes(1536) == "1.5 KiB"
    assert shapes.format_count(999) == "999"
    assert shapes.format_count(15_470_264_320) == "15.47 G"


def test_shapes_imports_nothing_heavy(tmp_path, cli_env):
    """The arithmetic alone: no NumPy, OpenCV or TensorFlow (Typer and Rich are kept out
    by import-linter's contracts)."""
    from test_imports import imports_after

    setup = "import convkit.arithmetic.shapes, convkit.arithmetic.spec"
    assert imports_after([], cwd=tmp_path, env=cli_env(), setup=setup) == set()


# --------------------------------------------------------------------------- entry points


def test_analyze_spec_points_a_caret_at_the_impossible_layer():
    layers = parse_spec("conv2d(4, 3)\nconv2d(4, 9)")
    with pytest.raises(SpecError) as info:
        shapes.analyze_spec(layers, (8, 8, 1))
    assert not isinstance(info.value, shapes.LayerError)
    lines = str(info.value).split("\n")
    assert lines[0].startswith(
        "line 2, column 1: layer 2 (conv2d_1, Conv2D): the kernel size 9 is larger than the "
        "input height 6, so the output height would be -2."
    )
    assert lines[1:] == ["  conv2d(4, 9)", "  ^^^^^^^^^^^^"]


@pytest.mark.parametrize(
    "input_shape, expected",
    [
        (None, (12, 10, 1)),  # the spec's own input
        ((None, None, 3), (12, 10, 3)),  # channels given, the size from the spec
        ((6, 6, None), (6, 6, 1)),  # the size given, the channels from the spec
        ((6, 6, 2), (6, 6, 2)),  # everything given wins
    ],
)
def test_missing_input_entries_come_from_the_spec(input_shape, expected):
    layers = parse_spec("input((12, 10, 1)) conv2d(2, 3)")
    assert shapes.analyze_spec(layers, input_shape).input_shape == expected


def test_missing_input_entries_without_an_input_layer():
    assert shapes.analyze_stack(parse_spec("flatten"), (4, 5, None)).input_shape == (4, 5, 1)
    with pytest.raises(SpecError, match=r"^`input_shape` is missing"):
        shapes.analyze_stack(parse_spec("flatten"), (None, None, 3))


def test_plain_kwargs_are_checked_like_a_spec():
    spec_layer = parse_spec("conv2d(8, [3, 5], use_bias=False)")[0]
    plain = shapes.analyze_layer(
        "Conv2D", {"filters": 8, "kernel_size": [3, 5], "use_bias": False}, (9, 9, 2), name="conv2d"
    )
    assert plain == shapes.analyze_stack([spec_layer], (9, 9, 2)).layers[0]
    assert plain.output_shape == (7, 5, 8) and plain.params == 8 * 3 * 5 * 2
    with pytest.raises(SpecError, match=r"^use_bias must be True or False\. Received: use_bias=1$"):
        shapes.analyze_layer("Conv2D", {"filters": 1, "kernel_size": 3, "use_bias": 1}, (9, 9, 2))
    with pytest.raises(SpecError, match=r"^Conv2D needs filters, e\.g\. conv2d\(32, 3"):
        shapes.analyze_layer("Conv2D", {"kernel_size": 3}, (9, 9, 2))
    with pytest.raises(SpecError, match=r"^Conv2D has no argument 'kernel' \(did you mean"):
        shapes.analyze_layer("Conv2D", {"filters": 1, "kernel": 3}, (9, 9, 2))


def test_plain_objects_in_a_stack_are_checked_and_located_by_index():
    from types import SimpleNamespace

    layers = [
        SimpleNamespace(type="Flatten", kwargs={}, name="f"),
        SimpleNamespace(type="Dense", kwargs={"units": 0}, name="d"),
    ]
    with pytest.raises(shapes.LayerError) as info:
        shapes.analyze_stack(layers, (2, 2, 1))
    assert info.value.index == 1
    assert str(info.value) == (
        "layer 2 (d, Dense): units must be a positive integer. Received: units=0"
    )


def test_parse_padding():
    from convkit.arithmetic.sizes import parse_padding

    assert parse_padding("same", "padding") == "same"
    assert parse_padding(" FULL ", "padding") == "full"
    assert parse_padding("2", "padding") == 2
    assert parse_padding("1x0", "padding") == (1, 0)
    assert parse_padding("(1, 2)", "padding") == (1, 2)
    with pytest.raises(UsageError, match=r"^`padding` must be valid, same, full, .*got '1x2x3'$"):
        parse_padding("1x2x3", "padding")

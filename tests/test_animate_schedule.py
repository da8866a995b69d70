"""``convkit animate``'s schedule against Keras itself.

For random settings of every kind (Conv2D with odd and even kernels, strides 1-3, dilation
1-3, paddings valid / same / full / numeric; Conv2DTranspose with and without output
padding, dilation, numeric padding; MaxPooling2D and AveragePooling2D, valid and same;
non-square inputs and kernels), every output cell is rebuilt from the schedule's JSON taps
(Σ input · kernel, or max / mean of the taps with an input cell) and compared with the
output of the Keras layer on random values. The padding of each case comes from Keras's
layers, never from convkit's formulas: numeric and ``full`` padding are
``ZeroPadding2D(P)`` (``full``: ``d·(k − 1)``) before a ``valid`` Conv2D, a transposed
convolution's P is ``Cropping2D(P)`` after a ``valid`` one (output_padding 0 when not
given), exactly the layers ``shape-calc`` describes.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_shape_calc_keras import K  # noqa: E402  (Keras, imported on first use)

from convkit.arithmetic.schedule import layer_schedule  # noqa: E402
from convkit.errors import SpecError, UsageError  # noqa: E402

# --------------------------------------------------------------------------- references


def keras_layers(kind, kernel, strides, padding, dilation, output_padding):
    """The Keras layers of one setting (see the module docs), the weighted one first."""
    L = K().layers
    if isinstance(padding, int):
        padding = (padding, padding)
    if kind in ("max", "avg"):
        cls = L.MaxPooling2D if kind == "max" else L.AveragePooling2D
        return [cls(kernel, strides=strides, padding=padding)]
    keras_padding = padding if padding in ("valid", "same") else "valid"
    if kind == "conv":
        conv = L.Conv2D(
            1,
            kernel,
            strides=strides,
            padding=keras_padding,
            dilation_rate=dilation,
            use_bias=False,
        )
        if padding in ("valid", "same"):
            return [conv]
        if padding == "full":
            pads = [dilation[i] * (kernel[i] - 1) for i in range(2)]
        else:
            pads = list(padding)
        return [conv, L.ZeroPadding2D(((pads[0], pads[0]), (pads[1], pads[1])))]
    op = output_padding
    if padding not in ("valid", "same") and op is None:
        op = (0, 0)
    conv = L.Conv2DTranspose(
        1,
        kernel,
        strides=strides,
        padding=keras_padding,
        output_padding=op,
        dilation_rate=dilation,
        use_bias=False,
    )
    if padding in ("valid", "same"):
        return [conv]
    return [conv, L.Cropping2D(((padding[0], padding[0]), (padding[1], padding[1])))]


def keras_outputs(kind, x, w, kernel, strides, padding, dilation, output_padding):
    """The Keras layer's output on ``x`` (H, W) with kernel ``w`` (KH, KW)."""
    keras = K()
    layers = keras_layers(kind, kernel, strides, padding, dilation, output_padding)
    weighted = layers[0]
    if kind == "conv" and len(layers) == 2:
        layers = [layers[1], layers[0]]  # the zero padding comes first
    elif len(layers) == 2:
        layers = [layers[0], layers[1]]  # the cropping comes after
    model = keras.Sequential([keras.Input((*x.shape, 1)), *layers])
    if kind in ("conv", "transpose"):
        weighted.set_weights([w[:, :, None, None].astype("float32")])
    y = model(x[None, :, :, None].astype("float32"), training=False)
    return np.asarray(y)[0, :, :, 0]


def rebuild(schedule_json: dict, x: np.ndarray, w: np.ndarray, kind: str) -> np.ndarray:
    """Every output cell from the JSON taps alone."""
    out = np.full(schedule_json["output"], np.nan)
    for step in schedule_json["steps"]:
        pairs = [
            (x[tuple(tap["input"])], w[tuple(tap["kernel"])])
            for tap in step["taps"]
            if tap["input"] is not None
        ]
        values = [v for v, _ in pairs]
        if kind == "max":
            value = max(values)
        elif kind == "avg":
            value = sum(values) / len(values)
        else:
            value = sum(v * k for v, k in pairs)
        out[tuple(step["output"])] = value
    return out


def check_against_keras(kind, shape, kernel, strides, padding, dilation=(1, 1), op=None, *, seed=0):
    """The contract for one setting; returns the schedule (None when convkit refuses it,
    which then must be a setting Keras refuses too)."""
    try:
        schedule = layer_schedule(
            shape,
            kernel,
            stride=strides,
            padding=padding,
            dilation=dilation,
            transpose=kind == "transpose",
            output_padding=op,
            pool=kind if kind in ("max", "avg") else None,
        )
    except SpecError as exc:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal of Keras counts
            y = keras_outputs(
                kind, np.zeros(shape), np.zeros(kernel), kernel, strides, padding, dilation, op
            )
            if min(y.shape) <= 0:
                raise ValueError("empty output") from exc
        return None
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    w = rng.normal(size=kernel)
    text = "".join(schedule.iter_json())
    data = json.loads(text)
    assert data == schedule.to_json()
    assert list(data) == ["layer", "input", "output", "kernel", "steps"]
    assert (
        data["layer"]
        == {
            "conv": "Conv2D",
            "transpose": "Conv2DTranspose",
            "max": "MaxPooling2D",
            "avg": "AveragePooling2D",
        }[kind]
    )
    assert data["input"] == list(shape) and data["kernel"] == list(kernel)
    expected = keras_outputs(kind, x, w, kernel, strides, padding, dilation, op)
    assert tuple(data["output"]) == expected.shape
    assert [s["output"] for s in data["steps"]] == [
        [r, c] for r in range(expected.shape[0]) for c in range(expected.shape[1])
    ]
    for step in data["steps"]:  # every window position, once
        assert len(step["taps"]) == kernel[0] * kernel[1]
    np.testing.assert_allclose(rebuild(data, x, w, kind), expected, rtol=1e-4, atol=1e-4)
    return schedule


# --------------------------------------------------------------------------- strategies

_sizes = st.tuples(st.integers(1, 9), st.integers(1, 9))
_kernels = st.tuples(st.integers(1, 4), st.integers(1, 4))
_strides = st.tuples(st.integers(1, 3), st.integers(1, 3))
_dilations = st.tuples(st.integers(1, 3), st.integers(1, 3))
_numeric = st.tuples(st.integers(0, 3), st.integers(0, 3))
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.keras


@st.composite
def stride_or_dilation(draw):
    """Keras refuses strides > 1 with dilation > 1: one of them stays 1."""
    if draw(st.booleans()):
        return draw(_strides), (1, 1)
    return (1, 1), draw(_dilations)


@_SETTINGS
@given(
    _sizes,
    _kernels,
    stride_or_dilation(),
    st.one_of(st.sampled_from(["valid", "same", "full"]), _numeric),
    st.integers(0, 99),
)
def test_conv2d_schedule_is_keras(shape, kernel, sd, padding, seed):
    strides, dilation = sd
    check_against_keras("conv", shape, kernel, strides, padding, dilation, seed=seed)


@st.composite
def transpose_settings(draw):
    strides, dilation = draw(stride_or_dilation())
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), _numeric))
    op = None
    if draw(st.booleans()):
        op = tuple(draw(st.integers(0, s - 1)) for s in strides)
    return strides, dilation, padding, op


@_SETTINGS
@given(_sizes, _kernels, transpose_settings(), st.integers(0, 99))
def test_conv2d_transpose_schedule_is_keras(shape, kernel, setting, seed):
    strides, dilation, padding, op = setting
    if padding == "same" and op is not None:
        k_eff = [dilation[i] * (kernel[i] - 1) + 1 for i in range(2)]
        if any(k % 2 == 0 and a == 0 for k, a in zip(k_eff, op, strict=True)):
            # Keras builds it but TensorFlow refuses to run it; shape-calc refuses it too
            # (its own test); here the setting is skipped, not compared.
            return
    check_against_keras("transpose", shape, kernel, strides, padding, dilation, op, seed=seed)


@_SETTINGS
@given(
    st.sampled_from(["max", "avg"]),
    _sizes,
    _kernels,
    st.one_of(st.none(), _strides),
    st.sampled_from(["valid", "same"]),
    st.integers(0, 99),
)
def test_pooling_schedule_is_keras(kind, shape, kernel, strides, padding, seed):
    check_against_keras(kind, shape, kernel, strides, padding, seed=seed)


# --------------------------------------------------------------------------- named cases


def test_tensorflow_same_puts_the_extra_row_after_the_input():
    """An even kernel under 'same' pads 0 before and 1 after (Keras agrees: the rebuild)."""
    schedule = check_against_keras("conv", (5, 4), (2, 2), (1, 1), "same")
    assert (schedule.rows.before, schedule.rows.after) == (0, 1)
    schedule = check_against_keras("max", (5, 5), (2, 2), (2, 2), "same")
    assert (schedule.rows.before, schedule.rows.after) == (0, 1)


def test_transposed_same_and_output_padding_crop_as_keras_does():
    for op in (None, (1, 1)):
        for kernel in ((3, 3), (4, 4)):
            check_against_keras("transpose", (3, 4), kernel, (2, 2), "same", op=op)
    check_against_keras("transpose", (3, 3), (3, 3), (3, 3), "valid", op=(2, 1))
    check_against_keras("transpose", (2, 3), (3, 2), (1, 1), "same", dilation=(2, 3))


def test_the_seed_example_and_a_large_input():
    """The README's 5x5 / 3x3 picture, and a 40x37 input (JSON has no size limit)."""
    schedule = check_against_keras("conv", (5, 5), (3, 3), (1, 1), 1)
    assert schedule.output == (5, 5)
    check_against_keras("conv", (40, 37), (5, 3), (2, 3), "same")


def test_pooling_refuses_numeric_and_full_padding():
    for padding in ("full", 1, (1, 0)):
        with pytest.raises(SpecError, match=r"`padding` valid or same.*no Keras equivalent"):
            layer_schedule((6, 6), 2, padding=padding, pool="max")
    with pytest.raises(UsageError, match="`pool` must be one of max, avg"):
        layer_schedule((6, 6), 2, pool="median")


def test_more_than_one_channel_is_refused():
    with pytest.raises(SpecError, match="`input_shape` must have one channel"):
        layer_schedule((6, 6, 3), 2)

"""The networks of conv, pool and run as library calls (:mod:`convkit.nn.builders`), and
the checks made before any model exists: options, weights, output plans. No Keras here.

Messages name the parameter in backticks, as the core's convention says (the command line
shows the flag instead, see tests/test_cli_keras.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convkit.errors import SpecError, UsageError
from convkit.image.outputs import OutputPlan
from convkit.image.sources import Source
from convkit.nn.builders import conv_network, pool_network, spec_network
from convkit.nn.render import RenderOptions
from convkit.nn.writer import plan_targets


@pytest.fixture
def colour_weights(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.ones((3, 3, 3, 2), np.float32))
    return path


def test_conv_writes_the_spec_of_a_conv_layer_and_its_activation():
    net = conv_network(kernel=["edges4"], activation="ReLU")
    assert net.spec_text == "conv2d(4, 4, name=conv) activation(relu, name=relu)"
    assert net.outputs == ["conv", "relu"] and net.weights_layer == "conv"
    assert net.weights.labels == ("edges4-1", "edges4-2", "edges4-3", "edges4-4")
    net = conv_network(
        filters=3,
        kernel_size="3x5",
        strides=2,
        padding="SAME",
        dilation=(1, 1),
        activation="tanh",
        use_bias=False,
    )
    assert net.spec_text == (
        "conv2d(3, 3x5, strides=2, padding=same, use_bias=False, name=conv) "
        "activation(tanh, name=tanh)"
    )
    assert net.info("conv").description == "Conv2D 3 filters 3x5, stride 2, same, no bias"
    assert conv_network().spec_text == "conv2d(1, 3, name=conv)"


def test_conv_kernels_on_a_colour_input_repeat_over_r_g_b():
    net = conv_network(kernel=["sobel-x", "sobel-x"], color=True)
    assert net.weights.kernel.shape == (3, 3, 3, 2)
    assert net.weights.labels == ("sobel-x", "sobel-x-2")
    np.testing.assert_array_equal(net.weights.kernel[:, :, 0, 0], net.weights.kernel[:, :, 2, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"kernel": ["edges4"], "filters": 2},
            "`filters` 2 but the `kernel` kernels give 4 filters",
        ),
        (
            {"kernel": ["edges4"], "kernel_size": "3"},
            "`kernel_size` 3 but the `kernel` kernels are 4x4",
        ),
        (
            {"kernel": ["sobel-x"], "weights": "w.npy"},
            "give the filters either with `kernel` or with `weights`, not both",
        ),
        ({"filters": 0}, "`filters` must be at least 1, got 0"),
        (
            {"kernel_size": 0},
            "`kernel_size` must be a positive integer N or a pair AxB, like 3 or 3x5, got '0'",
        ),
        (
            {"strides": (3, 0)},
            "`strides` must be a positive integer N or a pair AxB, like 3 or 3x5, got '(3, 0)'",
        ),
        (
            {"dilation": "abc"},
            "`dilation` must be a positive integer N or a pair AxB, like 3 or 3x5, got 'abc'",
        ),
        (
            {"padding": "full"},
            "`padding` must be valid or same, got 'full' (Keras has no other; for explicit "
            "zeros use `convkit run` with zeropadding2d(p))",
        ),
    ],
)
def test_conv_refuses_options_that_do_not_agree(kwargs, message):
    with pytest.raises(UsageError) as caught:
        conv_network(**kwargs)
    assert str(caught.value) == message


def test_conv_weights_file_fixes_filters_and_size(colour_weights):
    net = conv_network(weights=colour_weights, color=True)
    assert net.spec_text == "conv2d(2, 3, name=conv)"
    with pytest.raises(UsageError) as caught:
        conv_network(weights=colour_weights, color=True, filters=5)
    assert str(caught.value) == f"`filters` 5 but the `weights` {colour_weights} give 2 filters"


def test_conv_activation_must_be_a_keras_one_and_not_linear():
    with pytest.raises(UsageError, match=r"^`activation` 'rellu' is not a Keras activation \(did "):
        conv_network(activation="rellu")
    assert conv_network(activation="LeakyReLU").outputs == ["conv", "leaky_relu"]
    with pytest.raises(UsageError) as caught:
        conv_network(activation="linear")
    text = str(caught.value)
    assert text.startswith("`activation` 'linear' is not a Keras activation (known: celu, elu, ")
    assert "did you mean" not in text and "linear" not in text.split("(known:")[1]


def test_pool_writes_one_pooling_layer():
    net = pool_network(mode="avg", size=(3, 2), strides=1, padding="same")
    assert net.spec_text == "avgpool2d(3x2, strides=1, padding=same, name=avgpool)"
    assert net.outputs == ["avgpool"] and net.info("avgpool").origin == "input"
    assert pool_network(color=True).info("maxpool").picture
    with pytest.raises(UsageError) as caught:
        pool_network(mode="mean")
    assert str(caught.value) == "`mode` must be one of max, avg, got 'mean'"
    with pytest.raises(UsageError, match=r"^`size` must be a positive integer"):
        pool_network(size="0")


def test_spec_network_reads_text_or_a_file(tmp_path):
    spec = tmp_path / "net.txt"
    spec.write_text("# edges\nconv2d(4, 4)\nrelu  # then\nmaxpool2d(2)\n")
    net = spec_network(str(spec), kernel=["edges4"], outputs=["max_pooling2d", "conv2d"])
    assert net.spec_text == "conv2d(4, 4) relu maxpool2d(2)"
    assert net.outputs == ["conv2d", "max_pooling2d"]  # model order
    assert net.weights_layer == "conv2d"
    with pytest.raises(UsageError) as caught:
        spec_network(None)
    assert str(caught.value) == (
        'give the layers with `spec`, e.g. `spec` "conv2d(8, 3) relu maxpool2d(2)" or `spec` FILE'
    )
    with pytest.raises(SpecError) as caught:
        spec_network(str(tmp_path / "missing.txt"))
    assert str(caught.value) == f"`spec` {tmp_path / 'missing.txt'}: no such spec file"


def test_spec_network_weights_follow_the_declared_colour_input():
    net = spec_network("input((8, 8, 3)) conv2d(1, 3)", kernel=["sobel-x"])
    assert net.channels == 3 and net.weights.kernel.shape == (3, 3, 3, 1)
    with pytest.raises(UsageError) as caught:
        spec_network("conv2d(8, 3)", kernel=["edges4"])
    assert str(caught.value) == (
        "`kernel` gives 4 filters of 4x4, but layer 'conv2d' (Conv2D 8 filters 3x3, valid) has "
        "8 of 3x3; write it as conv2d(4, 4, ...)"
    )
    with pytest.raises(UsageError) as caught:
        spec_network("input((8, 8, 1)) conv2d(1, 3)", kernel=["sobel-x"], color=True)
    assert str(caught.value).startswith(
        "column 1: the spec's input has 1 channels, not 3 (`color`)\n  input((8, 8, 1))"
    )


def test_render_options_check_the_range_mode():
    with pytest.raises(UsageError) as caught:
        RenderOptions(range_mode="log")
    assert str(caught.value) == "`range_mode` must be one of clip, abs, rescale, got 'log'"
    net = spec_network("conv2d(1, 3) maxpool2d(2) relu zeropadding2d(1)")
    pooled, conv, after = net.info("max_pooling2d"), net.info("conv2d"), net.info("activation")
    assert RenderOptions().mode_for(conv) == "rescale"
    assert RenderOptions().mode_for(pooled) == "rescale"  # pooled convolution maps: signed
    assert RenderOptions().mode_for(after) == "rescale"
    alone = spec_network("maxpool2d(2) cropping2d(1) upsampling2d(2) zeropadding2d(1)")
    assert all(RenderOptions().mode_for(info) == "clip" for info in alone.infos)
    assert RenderOptions(range_mode="abs").mode_for(alone.infos[0]) == "abs"
    with pytest.raises(UsageError) as caught:
        RenderOptions(montage_scale="both")
    assert str(caught.value) == "`montage_scale` must be one of map, shared, got 'both'"


def test_output_plan_of_feature_maps(tmp_path):
    sources = [Source("a.png", tmp_path / "a.png", Path("a.png"))]
    net = spec_network("conv2d(2, 3) flatten")
    folder = OutputPlan(out_dir=tmp_path / "out")
    targets = plan_targets(sources, net, folder, RenderOptions(raw=True))
    assert targets[(0, "conv2d-1")].path == tmp_path / "out" / "a_conv2d-1.png"
    assert targets[(0, ("raw", "flatten"))] == tmp_path / "out" / "a_flatten.npy"
    cases = [
        (
            folder,
            RenderOptions(maps=False, montage=False),
            "nothing to write: `no_maps` and `no_montage` leave no output (add `raw`)",
        ),
        (
            OutputPlan(output=str(tmp_path / "x.png")),
            RenderOptions(montage=False, raw=True),
            "`raw` writes one .npy per layer and image: it needs `out_dir` DIR",
        ),
    ]
    for plan, render, message in cases:
        with pytest.raises(UsageError) as caught:
            plan_targets(sources, net, plan, render)
        assert str(caught.value) == message

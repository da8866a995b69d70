"""The layer-spec language: the tokenizer, the grammar, the normalized layers, the caret errors."""

from __future__ import annotations

import pytest

from convkit.arithmetic import spec
from convkit.arithmetic.spec import parse_spec, parse_spec_file
from convkit.errors import SpecError, UsageError


def one(text):
    (layer,) = parse_spec(text)
    return layer


def error_of(text, **kwargs) -> tuple[str, int, str]:
    """(first line of the message, 1-based caret column, the echoed spec line)."""
    with pytest.raises(SpecError) as info:
        parse_spec(text, **kwargs)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    lines = str(info.value).split("\n")
    assert len(lines) == 3, str(info.value)
    echoed, carets = lines[1], lines[2]
    assert echoed.startswith("  ") and carets.startswith("  ")
    column = carets.index("^") - 1  # both lines are indented by two spaces
    return lines[0], column, echoed[2:]


# --------------------------------------------------------------------------- values


def test_the_issue_example():
    layers = parse_spec(
        "conv2d(64, 3, padding=same, activation=relu) maxpool2d(2) flatten dense(10)"
    )
    assert [(layer.type, layer.name) for layer in layers] == [
        ("Conv2D", "conv2d"),
        ("MaxPooling2D", "max_pooling2d"),
        ("Flatten", "flatten"),
        ("Dense", "dense"),
    ]
    assert layers[0].kwargs == {
        "filters": 64,
        "kernel_size": (3, 3),
        "strides": (1, 1),
        "padding": "same",
        "dilation_rate": (1, 1),
        "groups": 1,
        "activation": "relu",
        "use_bias": True,
    }
    assert layers[1].kwargs == {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    assert layers[2].kwargs == {}
    assert layers[3].kwargs == {"units": 10, "activation": None, "use_bias": True}
    assert layers[0].text == "conv2d(64, 3, padding=same, activation=relu)"


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("conv2d(8, (3, 5))", "kernel_size", (3, 5)),
        ("conv2d(8, [3, 5])", "kernel_size", (3, 5)),
        ("conv2d(8, 3x5)", "kernel_size", (3, 5)),
        ("conv2d(8, (3))", "kernel_size", (3, 3)),  # (3) is 3, as in Python
        ("conv2d(8, (3, 5,))", "kernel_size", (3, 5)),
        ("conv2d(8, 3, padding='same')", "padding", "same"),
        ('conv2d(8, 3, padding="SAME")', "padding", "same"),
        ("conv2d(8, 3, padding=Valid)", "padding", "valid"),
        ("conv2d(8, 3, use_bias=FALSE)", "use_bias", False),
        ("conv2d(8, 3, use_bias=true)", "use_bias", True),
        ("conv2d(8, 3, activation=None)", "activation", None),
        ("conv2d(8, 3, activation=LeakyReLU)", "activation", "leaky_relu"),
        ("conv2d(8, 3, activation='Hard_Sigmoid')", "activation", "hard_sigmoid"),
        ("conv2d(8, 3, kernel_initializer=he_normal)", "kernel_initializer", "he_normal"),
        ("dropout(.5)", "rate", 0.5),
        ("dropout(1)", "rate", 1.0),
        ("dropout(5e-1)", "rate", 0.5),
        ("bn(epsilon=1e-3)", "epsilon", 0.001),
        ("bn(momentum=0.9)", "momentum", 0.9),
        ("bn(-1)", "axis", -1),
        ("leakyrelu(0.2)", "negative_slope", 0.2),
        ("relu(max_value=6)", "max_value", 6.0),
        ("zeropadding2d(1)", "padding", ((1, 1), (1, 1))),
        ("zeropadding2d((1, 2))", "padding", ((1, 1), (2, 2))),
        ("zeropadding2d(((1, 2), (3, 4)))", "padding", ((1, 2), (3, 4))),
        ("cropping2d(((0, 1), 2))", "cropping", ((0, 1), (2, 2))),
        ("upsampling2d(2, interpolation=BILINEAR)", "interpolation", "bilinear"),
        ("conv2dtranspose(4, 3, 2, same, 1)", "output_padding", (1, 1)),
        ("input((224, 224, 3))", "shape", (224, 224, 3)),
        ("input(shape=224x224x3)", "shape", (224, 224, 3)),
        ("conv2d(8, 3, data_format=channels_last)", "data_format", "channels_last"),
    ],
)
def test_values(text, key, expected):
    value = one(text).kwargs[key]
    assert value == expected
    assert type(value) is type(expected)


def test_positional_arguments_follow_keras_order():
    conv = one("conv2d(16, 5, 2, same)")
    assert (conv.kwargs["filters"], conv.kwargs["kernel_size"]) == (16, (5, 5))
    assert (conv.kwargs["strides"], conv.kwargs["padding"]) == ((2, 2), "same")
    pool = one("maxpool2d(3, 2, same)")
    assert pool.kwargs == {"pool_size": (3, 3), "strides": (2, 2), "padding": "same"}
    depthwise = one("depthwiseconv2d(3, 1, valid, 2)")
    assert depthwise.kwargs["depth_multiplier"] == 2
    transpose = one("conv2dtranspose(8, 3, strides=2, output_padding=(1, 0))")
    assert transpose.kwargs["output_padding"] == (1, 0)
    assert one("dense(10, softmax)").kwargs["activation"] == "softmax"
    assert one("dropout(0.25)").kwargs == {"rate": 0.25}


def test_defaults_are_filled_for_shapes():
    assert one("maxpool").kwargs == {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    assert one("avgpool(3)").kwargs["strides"] == (3, 3)  # Keras: strides default to pool_size
    assert one("maxpool(3, strides=None)").kwargs["strides"] == (3, 3)
    assert one("conv2dtranspose(4, 3)").kwargs["output_padding"] is None
    assert one("bn").kwargs == {"axis": -1, "center": True, "scale": True}
    assert one("gap").kwargs == {"keepdims": False}
    assert one("upsampling2d").kwargs == {"size": (2, 2), "interpolation": "nearest"}
    assert one("conv2d(8, 3, trainable=False)").kwargs["trainable"] is False


@pytest.mark.parametrize(
    "spelling, type_",
    [
        ("conv", "Conv2D"),
        ("Conv2D", "Conv2D"),
        ("CONV2D", "Conv2D"),
        ("convolution2d", "Conv2D"),
        ("conv2d_transpose", "Conv2DTranspose"),
        ("Conv2DTranspose", "Conv2DTranspose"),
        ("deconv", "Conv2DTranspose"),
        ("DepthwiseConv2D", "DepthwiseConv2D"),
        ("depthwise_conv2d", "DepthwiseConv2D"),
        ("SeparableConv2D", "SeparableConv2D"),
        ("sepconv", "SeparableConv2D"),
        ("maxpool", "MaxPooling2D"),
        ("maxpool2d", "MaxPooling2D"),
        ("MaxPooling2D", "MaxPooling2D"),
        ("max_pooling2d", "MaxPooling2D"),
        ("avgpool", "AveragePooling2D"),
        ("AveragePooling2D", "AveragePooling2D"),
        ("GlobalAveragePooling2D", "GlobalAveragePooling2D"),
        ("gap", "GlobalAveragePooling2D"),
        ("GlobalMaxPooling2D", "GlobalMaxPooling2D"),
        ("zeropadding2d", "ZeroPadding2D"),
        ("Cropping2D", "Cropping2D"),
        ("UpSampling2D", "UpSampling2D"),
        ("bn", "BatchNormalization"),
        ("BatchNormalization", "BatchNormalization"),
        ("batch_normalization", "BatchNormalization"),
        ("layernorm", "LayerNormalization"),
        ("flatten", "Flatten"),
        ("Flatten", "Flatten"),
        ("identity", "Identity"),
        ("keras.layers.Flatten", "Flatten"),
        ("layers.MaxPooling2D", "MaxPooling2D"),
    ],
)
def test_aliases_and_case(spelling, type_):
    args = {
        "Conv2D": "(8, 3)",
        "Conv2DTranspose": "(8, 3)",
        "DepthwiseConv2D": "(3)",
        "SeparableConv2D": "(8, 3)",
    }.get(type_, "")
    assert one(spelling + args).type == type_


def test_bare_activation_names_are_layers():
    layers = parse_spec("relu Sigmoid TANH softmax leaky_relu gelu")
    assert [layer.type for layer in layers] == ["Activation"] * 6
    assert [layer.kwargs["activation"] for layer in layers] == [
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "leaky_relu",
        "gelu",
    ]
    assert [layer.name for layer in layers] == [
        "activation",
        "activation_1",
        "activation_2",
        "activation_3",
        "activation_4",
        "activation_5",
    ]
    # with arguments, the layer classes of the same name
    assert one("relu(max_value=6)").type == "ReLU"
    assert one("softmax(axis=-1)").type == "Softmax"
    assert one("activation(relu)").kwargs == {"activation": "relu"}
    assert one("sigmoid()").type == "Activation"


def test_separators_comments_and_newlines():
    text = """
    # a comment line
    conv2d(32, 3,   # a comment inside the parentheses
           padding=same)
    relu    maxpool2d(2)\tflatten
    dense(10)   # trailing comment
    """
    assert [layer.type for layer in parse_spec(text)] == [
        "Conv2D",
        "Activation",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]


def test_names_automatic_and_explicit():
    layers = parse_spec(
        "conv2d(4, 3) conv2d(4, 3, name=conv2d_1) conv2d(4, 3) dense(2, name='head')"
    )
    assert [layer.name for layer in layers] == ["conv2d", "conv2d_1", "conv2d_2", "head"]
    assert "name" not in layers[1].kwargs


def test_layer_spec_is_a_value():
    a, b = parse_spec("conv2d(4, 3) conv2d(4, 3)")
    assert a.kwargs == b.kwargs and a.type == b.type
    assert a == parse_spec("conv2d(4,3)")[0].__class__(a.type, dict(a.kwargs), a.name, a.text)
    assert a.location.line == 1 and a.location.column == 1
    assert b.location.column == 14


def test_tokenizer():
    tokens = spec.tokenize("conv2d(8, 3x3, -1.5e2, 'a b') # c")
    assert [(t.kind, t.value) for t in tokens] == [
        ("NAME", "conv2d"),
        ("(", "("),
        ("NUMBER", 8),
        (",", ","),
        ("DIMS", (3, 3)),
        (",", ","),
        ("NUMBER", -150.0),
        (",", ","),
        ("STRING", "a b"),
        (")", ")"),
        ("EOF", None),
    ]
    assert [t.offset for t in tokens][:3] == [0, 6, 7]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, column, pattern",
    [
        ("conv2d(64, 3", 13, r"expected ',' or '\)' to close conv2d\(, found the end of the spec"),
        ("conv2d(64,, 3)", 11, r"expected an argument of conv2d\(, found ','"),
        ("conv2d(64 3)", 11, r"expected ',' or '\)'.*found '3'"),
        ("conv2d(32, 3), maxpool(2)", 14, r"expected a layer name, found ','.*separated by spaces"),
        ("conv2d(32, 3) (2)", 15, r"expected a layer name, found '\('"),
        ("dense(10) % 3", 11, r"unexpected character '%'"),
        ("conv2d(8, 3, padding='same)", 22, r"unterminated string"),
        ("conv2d(filters=)", 16, r"expected a value after 'filters=', found '\)'"),
        ("conv2d(8, (3, 5)", 17, r"expected ',' or '\)' to close conv2d\("),
        ("conv2d(8, (3, 5 x", 17, r"expected ',' or '\)' in a tuple, found 'x'"),
        ("conv2d(8, 3a)", 12, r"unexpected 'a' after the number 3"),
        ("dense(10); flatten", 10, r"unexpected character ';'.*separated by spaces"),
    ],
)
def test_syntax_errors_point_at_the_column(text, column, pattern):
    first, got_column, echoed = error_of(text)
    assert echoed == text
    assert got_column == column, first
    assert first.startswith(f"column {column}: ")
    import re

    assert re.search(pattern, first), first


@pytest.mark.parametrize(
    "text, column, pattern",
    [
        (
            "conv2d(0, 3)",
            8,
            r"^column 8: filters must be a positive integer\. Received: filters=0$",
        ),
        ("conv2d(8.5, 3)", 8, r"Received: filters=8\.5"),
        ("conv2d(8, (3, 0))", 11, r"kernel_size must be > 0\. Received: kernel_size=\(3, 0\)$"),
        (
            "conv2d(8, (1, 2, 3))",
            11,
            r"kernel_size must be a positive integer or a pair of them, like 3 or \(3, 5\)\. "
            r"Received: kernel_size=\(1, 2, 3\)",
        ),
        (
            "conv2d(8, 3, padding=full)",
            22,
            r"^column 22: padding of a Keras layer is 'valid' or 'same'; 'full' and numeric "
            r"padding exist only in shape-calc's flag mode\. In a spec, put zeropadding2d\(p\) "
            r"before the layer\. Received: padding='full'$",
        ),
        (
            "conv2d(8, 3, padding=1)",
            22,
            r"put zeropadding2d\(p\) before the layer\. Received: padding=1",
        ),
        (
            "conv2d(8, 3, padding=half)",
            22,
            r"padding must be 'valid' or 'same'\. Received: padding='half'",
        ),
        (
            "conv2d(8, 3, use_bias=yes)",
            23,
            r"use_bias must be True or False\. Received: use_bias='yes'",
        ),
        ("conv2d(8, 3, activation=rleu)", 25, r"activation 'rleu' \(did you mean 'relu'\?\)"),
        ("conv2d(8, 3, strid=2)", 14, r"no argument 'strid' \(did you mean 'strides'\?\)"),
        ("conv2d(filters=8, 3)", 19, r"positional argument cannot follow a keyword"),
        ("conv2d(8, 3, filters=4)", 14, r"multiple values for argument 'filters'"),
        ("dense(10, relu, True, 4)", 23, r"at most 3 positional arguments \(units, activation"),
        ("dropout(1.5)", 9, r"rate must be a number between 0 and 1\. Received: rate=1\.5"),
        ("conv2d(8, 3, data_format=channels_first)", 26, r"only data_format=channels_last"),
        (
            "upsampling2d(2, interpolation=cubic)",
            31,
            r"interpolation must be one of nearest, bilinear, bicubic, lanczos3, lanczos5, area\. "
            r"Received: interpolation='cubic'",
        ),
        (
            "input((224, 224))",
            7,
            r"shape must be three positive integers \(height, width, channels\)",
        ),
        (
            "zeropadding2d((1, 2, 3))",
            15,
            r"or a pair of pairs \(\(top, bottom\), \(left, right\)\)\.",
        ),
        ("dense(4, name='a/b')", 15, r"name must be a word or a quoted string without '/'"),
    ],
)
def test_value_errors_point_at_the_value(text, column, pattern):
    import re

    first, got_column, echoed = error_of(text)
    assert got_column == column, first
    assert re.search(pattern, first), first


@pytest.mark.parametrize(
    "text, column, suggestion",
    [
        ("conv2(8, 3)", 1, "conv2d"),
        ("flatten maxpol(2)", 9, "maxpool"),
        ("Conv2DTranpose(8, 3)", 1, "conv2dtranspose"),
        ("batchnorm2 relu", 1, "batchnorm2d"),
        ("flaten", 1, "flatten"),
        ("dense(4) sigmod", 10, "sigmoid"),
        ("globalaveragepoling2d", 1, "globalaveragepooling2d"),
    ],
)
def test_unknown_layer_suggests_the_closest(text, column, suggestion):
    first, got_column, _ = error_of(text)
    assert got_column == column
    assert "unknown layer" in first
    assert f"did you mean '{suggestion}'?" in first


def test_unknown_layer_without_a_close_match_lists_the_known_ones():
    first, _, _ = error_of("zzzzqqq")
    assert "unknown layer 'zzzzqqq'" in first
    assert "conv2d" in first and "maxpool2d" in first


def test_missing_required_arguments():
    first, column, _ = error_of("conv2d(8)")
    assert column == 9  # the closing parenthesis
    assert "conv2d needs kernel_size, e.g. conv2d(32, 3" in first
    first, column, _ = error_of("flatten dense")
    assert column == 9
    assert "dense needs units, e.g. dense(10, activation=softmax)" in first
    first, _, _ = error_of("conv2d")
    assert "conv2d needs filters and kernel_size, e.g." in first


def test_misc_errors():
    first, column, _ = error_of("dense(4, name=a) dense(4, name=a)")
    assert column == 32 and "duplicate layer name 'a'" in first
    first, column, _ = error_of("flatten input((4, 4, 1))")
    assert column == 9 and "input layer can only open the spec" in first
    first, _, _ = error_of("relu(3, 4, 5, 6)")
    assert (
        "relu takes at most 3 positional arguments (max_value, negative_slope, threshold)" in first
    )
    first, _, _ = error_of("sigmoid(3)")
    assert "the activation sigmoid takes no arguments; use activation(sigmoid)" in first
    with pytest.raises(SpecError, match="^the spec has no layers: expected layers such as"):
        parse_spec("  # only a comment\n")
    with pytest.raises(SpecError, match="^the spec has no layers: expected layers such as"):
        parse_spec("")


def test_multiline_errors_name_the_line():
    text = "conv2d(32, 3)\nmaxpool2d(2)\ndense(10, activaton=relu)\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    lines = str(info.value).split("\n")
    assert lines[0].startswith("line 3, column 11: Dense has no argument 'activaton'")
    assert lines[1] == "  dense(10, activaton=relu)"
    assert lines[2] == "  " + " " * 10 + "^" * len("activaton")


def test_long_lines_are_excerpted_around_the_caret():
    text = " ".join(["conv2d(8, 3, padding=same)"] * 20) + " maxpol(2) " + "flatten " * 20
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    _, echoed, carets = str(info.value).split("\n")
    assert len(echoed) < 120
    assert echoed.startswith("  …") and echoed.endswith("…")
    start = carets.index("^")
    assert echoed[start : start + len("maxpol")] == "maxpol"


def test_layer_error_points_at_the_layer():
    layers = parse_spec("conv2d(8, 3)\n  maxpool2d(2)   dense(4)")
    error = layers[2].error("something is wrong")
    lines = str(error).split("\n")
    assert lines[0] == "line 2, column 18: something is wrong"
    assert lines[2] == "  " + " " * 17 + "^" * len("dense(4)")


# --------------------------------------------------------------------------- files


def test_parse_spec_file(tmp_path):
    path = tmp_path / "net.txt"
    path.write_text(
        "# LeNet-5\ninput((32, 32, 1))\nconv2d(6, 5, activation=tanh)   # C1\navgpool(2)\n"
        "\nflatten\ndense(10)\n",
        encoding="utf-8",
    )
    layers = parse_spec_file(path)
    assert [layer.type for layer in layers] == [
        "InputLayer",
        "Conv2D",
        "AveragePooling2D",
        "Flatten",
        "Dense",
    ]
    assert layers[1].location.line == 3
    assert layers[1].location.path == str(path)


def test_spec_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("conv2d(8, 3)\n\nmaxpool2d(2\n\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        parse_spec_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 3, column 12: expected ',' or ')'")
    assert info.value.path == str(path)


def test_spec_file_that_cannot_be_read(tmp_path):
    with pytest.raises(SpecError, match="missing.txt: no such spec file$"):
        parse_spec_file(tmp_path / "missing.txt")
    with pytest.raises(SpecError, match=": is a directory, not a spec file$"):
        parse_spec_file(tmp_path)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00conv")
    with pytest.raises(SpecError, match=r"binary.txt: not a UTF-8 text file \("):
        parse_spec_file(binary)


def test_every_layer_kind_has_consistent_metadata():
    seen = set()
    for kind in spec.LAYER_KINDS:
        assert kind.positional <= len(kind.params)
        for alias in kind.aliases:
            assert spec.layer_kind(alias) is kind, alias
            assert alias not in seen
            seen.add(alias)
        assert spec.layer_kind(kind.type) is kind
    for name in spec.ACTIVATIONS:
        assert spec.canonical_activation(name.upper()) == name

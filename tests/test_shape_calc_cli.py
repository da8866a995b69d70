"""``convkit shape-calc`` on the command line: output, JSON, errors, and what it imports.

Success paths go through ``CliRunner.invoke(app, ...)``; error paths through ``main()``
(in-process, ``run_main``) because only ``main()`` turns a ConvkitError into
``convkit: error: ...`` and its exit code; a few run ``python -m convkit`` for real.
"""

from __future__ import annotations

import json

import pytest

from convkit.cli import app

EXAMPLE = "conv2d(64, 3, padding=same, activation=relu) maxpool2d(2) flatten dense(10)"


def invoke(cli_runner, *args):
    result = cli_runner.invoke(app, ["shape-calc", *map(str, args)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def error(run_main, *args, input=None):
    """Run through main(); return the stderr text after 'convkit: error: '."""
    result = run_main(["shape-calc", *map(str, args)], input=input)
    assert result.exit_code == 2, result
    assert result.stdout == b"", result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("convkit: error: "), result
    return result.stderr[len("convkit: error: ") :]


# --------------------------------------------------------------------------- one layer


def test_single_layer_prints_the_formulas(cli_runner):
    out = invoke(cli_runner, "--input", 512, "--kernel", 15, "--stride", 1, "--padding", 0).stdout
    assert "Conv2D: 512×512×1 → 498×498×1" in out
    assert "(512 + 2·0 − 15) / 1 + 1 = 498" in out
    assert "1·(15·15·1) + 1 = 226" in out
    assert "55,800,900" in out  # MACs
    assert "15 (jump 1)" in out


def test_single_layer_json(cli_runner):
    out = invoke(cli_runner, "-i", 512, "--kernel-size", 15, "-s", 1, "-p", 0, "--json").stdout
    assert json.loads(out) == {
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


def test_uneven_stride_explains_the_lost_rows(cli_runner):
    out = invoke(cli_runner, "--input", 512, "--kernel", 15, "--stride", 2).stdout
    assert "⌊(512 + 2·0 − 15) / 2⌋ + 1 = 249" in out
    assert "the last 1 row and column of the padded input is never covered" in out


@pytest.mark.parametrize(
    "args, output_shape, params",
    [
        (
            ["-i", "224x224x3", "--kernel-size", 3, "-s", 2, "-p", "same", "--filters", 64],
            [112, 112, 64],
            1792,
        ),
        (
            ["-i", "224x224", "-c", 3, "--kernel-size", 7, "-s", 2, "-p", 3, "--filters", 64],
            [112, 112, 64],
            9472,
        ),
        (["-i", "32x24x3", "--kernel-size", "3x5", "-p", "1x2", "--filters", 8], [32, 24, 8], 368),
        (["-i", 512, "--kernel-size", 15, "-p", "full"], [526, 526, 1], 226),
        (["-i", 512, "--kernel-size", 15, "--dilation", 2], [484, 484, 1], 226),
        (["-i", "28x28x32", "--kernel-size", 2, "--pool"], [14, 14, 32], 0),
        (["-i", "28x28x32", "--pool"], [14, 14, 32], 0),  # Keras's default window
        (["-i", "28x28x32", "--kernel-size", 3, "-s", 1, "--pool", "-p", "same"], [28, 28, 32], 0),
        (
            ["-i", "7x7x3", "--kernel-size", 3, "-s", 2, "--transpose", "--filters", 8],
            [15, 15, 8],
            224,
        ),
        (
            [
                "-i",
                "7x7x3",
                "--kernel-size",
                3,
                "-s",
                2,
                "-p",
                "same",
                "--transpose",
                "--output-padding",
                1,
            ],
            [14, 14, 1],
            28,
        ),
        (["-i", "10x10x3", "--kernel-size", 3, "--filters", 4, "--no-bias"], [8, 8, 4], 108),
    ],
)
def test_single_layer_variants(cli_runner, args, output_shape, params):
    data = json.loads(invoke(cli_runner, *args, "--json").stdout)
    (layer,) = data["layers"]
    assert layer["output_shape"] == output_shape
    assert layer["params"] == params


def test_pool_and_transpose_human_output(cli_runner):
    out = invoke(cli_runner, "-i", "10x10x1", "--kernel-size", 2, "-s", 3, "--pool").stdout
    assert "MaxPooling2D: 10×10×1 → 3×3×1" in out
    assert "never read (stride 3 > pooling window 2)" in out
    assert "0 (a pooling window has no weights)" in out
    out = invoke(cli_runner, "-i", 7, "--kernel-size", 1, "-s", 3, "--transpose").stdout
    assert "(7 − 1)·3 + max(1, 3) = 21" in out


# --------------------------------------------------------------------------- stacks


def test_stack_table(cli_runner):
    out = invoke(cli_runner, "--input", "224x224x3", EXAMPLE).stdout
    for text in (
        "Layer",
        "Output shape",
        "Params",
        "Non-trainable",
        "MACs",
        "RF / jump",
        "Memory",
        "conv2d (Conv2D, relu)",
        "224×224×64",
        "1,792",
        "max_pooling2d (MaxPooling2D)",
        "112×112×64",
        "802816",
        "8,028,170",
        "Total",
        "8,029,962",
        "4 / 2",
        "Total params: 8,029,962",
        "non-trainable 0",
        "Total MACs: 94,732,288",
    ):
        assert text in out, text
    assert "…" not in out  # nothing cut, whatever the width


def test_stack_json(cli_runner):
    data = json.loads(invoke(cli_runner, "--input", "224x224x3", EXAMPLE, "--json").stdout)
    assert data["input_shape"] == [224, 224, 3]
    assert [layer["name"] for layer in data["layers"]] == [
        "conv2d",
        "max_pooling2d",
        "flatten",
        "dense",
    ]
    assert [layer["type"] for layer in data["layers"]] == [
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert [layer["output_shape"] for layer in data["layers"]] == [
        [224, 224, 64],
        [112, 112, 64],
        [802816],
        [10],
    ]
    assert [layer["receptive_field"] for layer in data["layers"]] == [3, 4, None, None]
    assert data["total_params"] == 8_029_962
    assert data["trainable_params"] == 8_029_962
    assert data["non_trainable_params"] == 0
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])


def test_spec_words_may_be_separate_arguments(cli_runner):
    data = json.loads(
        invoke(cli_runner, "-i", 28, "conv2d(8, 3)", "bn", "flatten", "dense(10)", "--json").stdout
    )
    assert [layer["type"] for layer in data["layers"]] == [
        "Conv2D",
        "BatchNormalization",
        "Flatten",
        "Dense",
    ]
    assert data["non_trainable_params"] == 16


def test_spec_file_with_its_own_input(cli_runner, tmp_path):
    path = tmp_path / "lenet.txt"
    path.write_text(
        "# LeNet-5\ninput((32, 32, 1))\nconv2d(6, 5, activation=tanh)\navgpool(2)\n"
        "conv2d(16, 5, activation=tanh)  # C3\navgpool(2)\nflatten\ndense(120, activation=tanh)\n"
        "dense(84, activation=tanh)\ndense(10, activation=softmax)\n",
        encoding="utf-8",
    )
    data = json.loads(invoke(cli_runner, "--spec", path, "--json").stdout)
    assert data["input_shape"] == [32, 32, 1]
    assert data["total_params"] == 61_706
    # --input overrides the file's input layer
    data = json.loads(invoke(cli_runner, "--spec", path, "-i", 36, "--json").stdout)
    assert data["input_shape"] == [36, 36, 1]
    assert data["layers"][0]["output_shape"] == [32, 32, 6]


def test_spec_from_stdin(cli_runner):
    result = cli_runner.invoke(
        app, ["shape-calc", "--spec", "-", "-i", "28", "--json"], input="conv2d(4, 3)\nflatten\n"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layers"][-1]["output_shape"] == [2704]


# --------------------------------------------------------------------------- errors


def test_malformed_spec_echoes_a_caret(run_main):
    message = error(run_main, "-i", 28, "conv2d(32, 3 maxpool2d(2)")
    lines = message.rstrip("\n").split("\n")
    assert lines[0] == "column 14: expected ',' or ')' to close conv2d(, found 'maxpool2d'"
    assert lines[1] == "  conv2d(32, 3 maxpool2d(2)"
    assert lines[2] == "  " + " " * 13 + "^" * len("maxpool2d")


def test_unknown_layer_suggests(run_main):
    message = error(run_main, "-i", 28, "conv2d(8, 3) maxpol(2)")
    assert message.startswith("column 14: unknown layer 'maxpol' (did you mean 'maxpool'?)")


def test_impossible_layer_in_a_stack_points_at_it(run_main):
    message = error(run_main, "-i", "8x8x1", "conv2d(4, 5) conv2d(4, 5)")
    lines = message.rstrip("\n").split("\n")
    assert lines[0].startswith("column 14: layer 2 (conv2d_1, Conv2D): the kernel size 5 is larger")
    assert "Received: input_shape=(4, 4, 4), kernel_size=(5, 5)" in lines[0]
    assert lines[2] == "  " + " " * 13 + "^" * len("conv2d(4, 5)")


def test_spec_file_errors_name_the_file(run_main, tmp_path):
    path = tmp_path / "net.txt"
    path.write_text("conv2d(8, 3)\nmaxpool2d(2)\ndense(10, activaton=relu)\n", encoding="utf-8")
    message = error(run_main, "-i", 28, "--spec", path)
    assert message.startswith(f"{path}: line 3, column 11: Dense has no argument 'activaton'")
    message = error(run_main, "-i", 28, "--spec", tmp_path / "missing.txt")
    assert message.strip() == f"--spec {tmp_path / 'missing.txt'}: no such spec file"


def test_spec_option_takes_text_like_run(cli_runner):
    data = json.loads(
        invoke(cli_runner, "-i", 28, "--spec", "conv2d(4, 3) flatten", "--json").stdout
    )
    assert [layer["output_shape"] for layer in data["layers"]] == [[26, 26, 4], [2704]]


def test_spec_arguments_are_not_taken_for_flags(run_main):
    # shape-calc has --filters and --padding; the spec's own arguments are not those flags
    message = error(run_main, "-i", 7, "conv2d(0, 3)")
    assert (
        message.split("\n")[0]
        == "column 8: filters must be a positive integer. Received: filters=0"
    )
    message = error(run_main, "-i", 7, "conv2dtranspose(1, 3, strides=2, output_padding=2)")
    assert message.split("\n")[0] == (
        "column 1: layer 1 (conv2d_transpose, Conv2DTranspose): output_padding must be "
        "strictly less than strides. Received: output_padding=(2, 2), strides=(2, 2)"
    )


@pytest.mark.parametrize(
    "args, pattern",
    [
        (
            ["-i", 10, "--kernel-size", 15],
            r"kernel 15 is larger than the input height 10.*Received",
        ),
        (
            ["-i", 10, "--kernel-size", 3, "-s", 2, "--dilation", 2],
            r"strides > 1.*dilation_rate > 1",
        ),
        (
            ["-i", 7, "--kernel-size", 3, "-s", 2, "--transpose", "--output-padding", 2],
            r"^Conv2DTranspose: --output-padding must be strictly less than --strides\. "
            r"Received: output_padding=\(2, 2\), strides=\(2, 2\)$",
        ),
        (
            ["-i", 7, "--kernel-size", 3, "--output-padding", 1],
            r"^output padding only applies to a transposed convolution \(--transpose\)\. "
            r"Received: output_padding=\(1, 1\)$",
        ),
        (
            ["-i", 7, "--kernel-size", 3, "--pool", "--transpose"],
            r"^--pool and --transpose exclude each other: choose one layer kind$",
        ),
        (
            ["-i", "abc", "--kernel-size", 3],
            r"^--input must be N, HxW or HxWxC with positive integers, like 512 or 224x224x3, "
            r"got 'abc'$",
        ),
        (["-i", "0x3", "--kernel-size", 3], r"^--input must be N, HxW or HxWxC .*, got '0x3'$"),
        (
            ["-i", 7, "--kernel-size", "3x"],
            r"^--kernel-size must be a positive integer N or a pair AxB, like 3 or 3x5, got '3x'$",
        ),
        (
            ["-i", 7, "--kernel-size", 3, "-p", "half"],
            r"^--padding must be valid, same, full, a number P \(zero padding on each side\) "
            r"or a pair PHxPW, got 'half'$",
        ),
        (["-i", "7x7x3", "-c", 2, "--kernel-size", 3], r"3 channels but --channels says 2"),
        (
            ["-i", 7],
            r"^--kernel-size is missing: one layer needs --input and --kernel-size \(e\.g\. "
            r"--input 512 --kernel-size 15\), or give a layer spec for a stack$",
        ),
        ([], r"nothing to compute"),
        (
            ["flatten"],
            r"^--input is missing: the stack needs an input size, e\.g\. --input 224x224x3 "
            r"\(or start the spec with input\(\(224, 224, 3\)\)\)$",
        ),
        (["-i", 7, "--kernel-size", 3, "conv2d(2, 3)"], r"--kernel-size describes a single layer"),
        (["-i", 7, "--pool", "-s", 2, "flatten"], r"--strides, --pool describe a single layer"),
        (["-i", 7, "flatten", "--spec", "x.txt"], r"either as an argument or with --spec"),
        (["-i", 7, "conv2d(8, 3, padding=full)"], r"only in shape-calc's flag mode"),
        (["-i", 7, "# just a comment"], r"^the spec has no layers"),
    ],
)
def test_usage_errors_exit_2_with_a_message(run_main, args, pattern):
    import re

    message = error(run_main, *args)
    assert re.search(pattern, message), message


def test_click_level_errors_exit_2(run_main):
    result = run_main(["shape-calc", "-i", "7", "--kernel-size", "3", "--filters", "0"])
    assert result.exit_code == 2
    assert "--filters" in result.stderr


def test_help_shows_examples(cli_runner):
    result = cli_runner.invoke(app, ["shape-calc", "--help"])
    assert result.exit_code == 0
    assert (
        "convkit shape-calc --input 512 --kernel-size 15 --strides 1 --padding 0" in result.stdout
    )
    assert "--spec" in result.stdout and "--transpose" in result.stdout


# --------------------------------------------------------------------------- real processes


def test_subprocess_json(run_cli):
    mnist = (
        "conv2d(32, 3, activation=relu) maxpool2d(2) conv2d(64, 3, activation=relu) "
        "maxpool2d(2) flatten dropout(0.5) dense(10, activation=softmax)"
    )
    result = run_cli(["shape-calc", "--input", "28x28x1", "--json", mnist])
    assert result.exit_code == 0, result
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["total_params"] == 34_826
    assert data["layers"][0]["output_shape"] == [26, 26, 32]
    assert data["layers"][0]["params"] == 320


def test_subprocess_error(run_cli):
    result = run_cli(["shape-calc", "-i", "28", "conv2d(32, 3"])
    assert result.exit_code == 2
    assert result.stdout == b""
    assert result.stderr.startswith("convkit: error: column 13: expected ',' or ')'")

"""Hostile inputs against the arithmetic and the spec language (issue 9): ``shape-calc``.

Each wall runs the real command line in a subprocess under a memory cap and a timeout
(tests/hostile.py). A refusal is checked by :func:`hostile.assert_refused` (exit code, one
error line, no traceback, nothing written, inputs unchanged); an answer by its exit code
and figures. Control cases show what the input does without the wall, where that is cheap.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hostile import LIGHT_CAP, assert_refused, run_capped, snapshot

from convkit.arithmetic import limits, syntax
from convkit.arithmetic.formulas import uncovered_rows
from convkit.arithmetic.spec import parse_spec
from convkit.errors import SpecError

BIG = "9" * 400


def _answered(run, *, timeout_ok: bool = False):
    assert not run.timed_out, run
    assert run.exit_code == 0, run
    assert "Traceback" not in run.stderr, run
    return run.stdout.decode()


# --------------------------------------------------------------------------- O(layers)


def test_a_three_billion_row_input_is_computed_not_drawn(tmp_path):
    run = run_capped(["shape-calc", "--input", "3000000000", "--kernel", "3"], tmp_path, timeout=20)
    out = _answered(run)
    assert "Conv2D: 3000000000×3000000000×1 → 2999999998×2999999998×1" in out
    assert "(3000000000 + 2·0 − 3) / 1 + 1 = 2999999998" in out
    assert "2999999998·2999999998·1·(3·3·1) = 80,999,999,892,000,000,036" in out
    assert "= 8,999,999,988,000,000,004 values = 3.59e+19 B (float32)" in out


def test_control_drawing_the_rows_would_pass_the_memory_cap():
    # The old count drew the padded input as one byte per row: 3,000,000,000 bytes.
    assert 3_000_000_000 > LIGHT_CAP


def test_a_huge_kernel_on_a_huge_input_answers_at_once(tmp_path):
    args = ["shape-calc", "--input", "100000000", "--kernel", "20000", "--stride", "3"]
    run = run_capped(args, tmp_path, timeout=20)
    out = _answered(run)
    assert "⌊(100000000 + 2·0 − 20000) / 3⌋ + 1 = 33326667" in out
    assert (
        "stride 3 does not divide 99980000 (= 100000000 + 0 − 20000): the last 2 rows and "
        "columns of the padded input are never covered by the kernel"
    ) in out


def _drawn(n, k, s, d, pad):
    """The rows no window reads, by drawing every read row (the reference)."""
    out = (n + 2 * pad - (d * (k - 1) + 1)) // s + 1
    read = {i * s + t * d - pad for i in range(out) for t in range(k)}
    last = max(read)
    unread = [r for r in range(n) if r not in read]
    return len([r for r in unread if r > last]), len([r for r in unread if r < last])


@pytest.mark.parametrize(
    ("n", "k", "s", "d", "pad"),
    [(97, 5, 7, 1, 2), (200, 13, 1, 9, 0), (150, 7, 6, 4, 1), (61, 5, 4, 6, 3)],
)
def test_counted_rows_agree_with_drawn_rows(n, k, s, d, pad):
    assert uncovered_rows(n, k, s, pad, d) == _drawn(n, k, s, d, pad)


def test_counting_does_not_grow_with_the_sizes():
    big = 2**62
    assert uncovered_rows(big, 2**40, 1, "same", 2**20) == (0, 0)
    # 2**22 windows of 3 rows, 2**40 apart: the rows between them and after the last unread
    last_start = (2**22 - 1) * 2**40
    assert uncovered_rows(big, 3, 2**40, 0) == (big - last_start - 3, (2**22 - 1) * (2**40 - 3))


# --------------------------------------------------------------------------- huge numbers


def test_a_400_digit_number_in_a_spec_is_one_line(tmp_path):
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "4x4", f"conv2d({BIG}, 3)"], tmp_path, timeout=20)
    assert_refused(run, before, tmp_path, exit_code=2, reason="column 8: the number")
    assert run.error_lines[0] == (
        "convkit: error: column 8: the number 999999999999999999999999…(400 characters) is too "
        "large: integers in a spec are at most 2**63 − 1 = 9223372036854775807 in size"
    )


def test_a_number_past_pythons_digit_limit_is_one_line(tmp_path):
    # Python refuses to read an integer of more than 4,300 digits (ValueError): the
    # tokenizer looks at the digits before it makes a number.
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "4x4", f"conv2d(1, {'7' * 5000})"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="(5,000 characters) is too large")


def test_control_python_cannot_read_the_5000_digit_number():
    with pytest.raises(ValueError, match="Exceeds the limit"):
        int("7" * 5000)


def test_a_400_digit_size_flag_is_one_line(tmp_path):
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "--input", BIG, "--kernel", "3"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="--input must be at most")
    assert run.error_lines[0] == (
        "convkit: error: --input must be at most 2**63 − 1 = 9223372036854775807, got "
        "'9999999999999999999999999999999999999999…(400 characters)'"
    )


def test_a_huge_filters_flag_is_one_line(tmp_path):
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "8", "-k", "3", "--filters", BIG], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="filters must be at most")
    assert run.error_lines[0] == (
        "convkit: error: filters must be at most 2**63 − 1 = 9223372036854775807 (the largest "
        "tensor size). Received: filters=99999999999999999999…(400 digits)"
    )


def test_the_largest_sizes_still_answer(tmp_path):
    top = str(limits.MAX_INT)
    args = ["shape-calc", "-i", f"{top}x{top}x{top}", "-k", "3", "-f", top, "--json"]
    run = run_capped(args, tmp_path, timeout=20)
    layer = json.loads(_answered(run))["layers"][0]
    assert layer["output_shape"] == [limits.MAX_INT - 2, limits.MAX_INT - 2, limits.MAX_INT]
    assert layer["macs"] == (limits.MAX_INT - 2) ** 2 * limits.MAX_INT * 9 * limits.MAX_INT


def test_an_output_past_any_tensor_size_names_its_layer(tmp_path):
    before = snapshot(tmp_path)
    spec = "upsampling2d(4294967296) upsampling2d(4294967296)"
    run = run_capped(["shape-calc", "-i", "8", spec], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="column 26: layer 2")
    assert run.error_lines[0] == (
        "convkit: error: column 26: layer 2 (up_sampling2d_1, UpSampling2D): the output would "
        "have a dimension past 2**63 − 1 = 9223372036854775807, the largest size a tensor can "
        "have. Received: input_shape=(34359738368, 34359738368, 1), "
        "output_shape=(147573952589676412928, 147573952589676412928, 1)"
    )


def test_a_receptive_field_past_any_size_is_no_longer_tracked(tmp_path):
    # r ← r + (k − 1)·j, j ← j·s: after three layers of stride 2**30 the jump is 2**90.
    spec = " ".join([f"conv2d(1, 3, strides={2**30}, padding=same)"] * 4)
    run = run_capped(["shape-calc", "-i", "8", spec, "--json"], tmp_path, timeout=20)
    layers = json.loads(_answered(run))["layers"]
    assert [layer["receptive_field"] for layer in layers] == [3, 3 + 2**31, None, None]
    assert [layer["output_shape"] for layer in layers] == [[1, 1, 1]] * 4


# --------------------------------------------------------------------------- the spec language


def test_ten_thousand_nested_parentheses_are_one_line(tmp_path):
    before = snapshot(tmp_path)
    nested = "(" * 10_000 + "3" + ")" * 10_000
    run = run_capped(["shape-calc", "-i", "8", f"conv2d(1, {nested})"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="column 43: tuples nested more")
    assert run.error_lines[0] == (
        "convkit: error: column 43: tuples nested more than 32 deep: a layer argument is at "
        "most a pair of pairs, like ((1, 1), (2, 2))"
    )


def test_control_without_the_depth_limit_the_parser_recurses_out(monkeypatch):
    monkeypatch.setattr(syntax, "MAX_NESTING", 10**9)
    nested = "(" * 10_000 + "3" + ")" * 10_000
    assert sys.getrecursionlimit() < 10_000
    with pytest.raises(RecursionError):
        parse_spec(f"conv2d(1, {nested})")


def test_32_levels_still_parse():
    nested = "(" * 31 + "(1, 1)" + ")" * 31
    assert parse_spec(f"zeropadding2d({nested})")  # (x) is x: the pair survives
    with pytest.raises(SpecError, match="nested more than 32 deep"):
        parse_spec("zeropadding2d(" + "(" * 33 + "1" + ")" * 33 + ")")


def test_a_null_byte_in_a_spec_file_is_shown_escaped(tmp_path):
    (tmp_path / "net.txt").write_bytes(b"conv2d(1,\x003)\n")
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "8", "--spec", "net.txt"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="net.txt: line 1, column 10")
    assert run.stderr == (
        "convkit: error: net.txt: line 1, column 10: unexpected character '\\x00': expected a "
        "layer name, a value or one of ( ) , =\n"
        "  conv2d(1,\\x003)\n"
        "           ^^^^\n"
    )


def test_a_null_byte_in_an_inline_spec_is_not_a_file_name():
    from convkit.arithmetic.spec_source import read_spec

    with pytest.raises(SpecError, match=r"^column 10: unexpected character '\\x00'"):
        read_spec("conv2d(1,\x003)")
    with pytest.raises(ValueError, match="embedded null byte"):
        os.stat("conv2d(1,\x003)")  # the control: what a file check meets


def test_an_inline_spec_longer_than_a_file_name_is_a_spec(tmp_path):
    spec = " ".join([f"conv2d(1, 1, name=layer_number_{i:03d})" for i in range(12)])
    assert len(spec) > 255
    run = run_capped(["shape-calc", "-i", "8", "--spec", spec, "--json"], tmp_path, timeout=20)
    assert len(json.loads(_answered(run))["layers"]) == 12
    with pytest.raises(OSError, match="File name too long"):
        Path(spec).is_file()  # the control: the check that used to be made


def test_a_named_pipe_as_spec_file_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "net.txt")
    run = run_capped(["shape-calc", "-i", "8", "--spec", "net.txt"], tmp_path, timeout=20)
    assert not run.timed_out, run
    assert run.exit_code == 2, run
    assert run.error_lines == ["convkit: error: --spec net.txt: is a named pipe, not a spec file"]


def test_a_spec_longer_than_the_limit_is_refused_before_it_is_read_whole(tmp_path):
    (tmp_path / "net.txt").write_text("relu " * 300_000)
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "8", "--spec", "net.txt"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="net.txt: the spec file")
    assert run.error_lines[0] == (
        "convkit: error: net.txt: the spec file is larger than 1,048,576 bytes, the most a "
        "spec may have"
    )


def test_more_layers_than_the_limit_are_refused(tmp_path):
    (tmp_path / "net.txt").write_text("\n".join(["relu"] * 1001))
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "8", "--spec", "net.txt"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="net.txt: line 1001, column 1")
    assert run.error_lines[0] == (
        "convkit: error: net.txt: line 1001, column 1: a spec has at most 1,000 layers; this "
        "is layer 1,001"
    )


def test_a_thousand_layers_answer_quickly(tmp_path):
    (tmp_path / "net.txt").write_text("\n".join(["conv2d(4, 3, padding=same) relu"] * 500))
    run = run_capped(["shape-calc", "-i", "64", "--spec", "net.txt"], tmp_path, timeout=20)
    params = (4 * 9 * 1 + 4) + 499 * (4 * 9 * 4 + 4)
    assert f"Total params: {params:,} " in _answered(run)


def test_terminal_escapes_in_a_spec_are_shown_escaped_under_the_caret(tmp_path):
    before = snapshot(tmp_path)
    run = run_capped(["shape-calc", "-i", "8", "conv2d(1, \x1b[31m3)"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=2, reason="column 11: unexpected character")
    assert "\x1b" not in run.stderr
    assert run.stderr.splitlines()[1:] == ["  conv2d(1, \\x1b[31m3)", "            ^^^^"]


def test_a_long_unknown_name_is_echoed_clipped(tmp_path):
    word = "relu" * 5000
    run = run_capped(["shape-calc", "-i", "8", word], tmp_path)
    assert run.exit_code == 2, run
    assert run.error_lines[0].startswith(
        "convkit: error: column 1: unknown layer 'relurelurelurelurelurelurelurelurelurelu…"
        "(20,000 characters)'"
    )
    assert len(run.stderr) < 2000


def test_a_spec_on_stdin_is_read_only_up_to_the_limit(tmp_path):
    before = snapshot(tmp_path)
    stdin = b"relu " * 300_000
    run = run_capped(["shape-calc", "-i", "8", "--spec", "-"], tmp_path, stdin=stdin)
    assert_refused(run, before, tmp_path, exit_code=2, reason="<stdin>: the spec is longer")
    assert run.error_lines[0] == (
        "convkit: error: <stdin>: the spec is longer than 1,048,576 characters, the most a spec "
        "may have"
    )

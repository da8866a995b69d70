"""Usage errors as one line, like convkit's own (issue 10): Typer's unknown options,
missing or ill-typed values and unknown commands, through a real subprocess."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "args, line",
    [
        (["grayscale", "--resise", "5"], "no such option --resise (did you mean --resize?)"),
        (["filter", "--kernal", "x"], "no such option --kernal (did you mean --kernel?)"),
        (["grayscale", "x.png", "--zzz"], "no such option --zzz (see --help)"),
        (
            ["grayscale", "x.png", "-j", "zero"],
            "invalid value for '--jobs' / '-j': 'zero' is not a valid int range",
        ),
        (
            ["grayscale", "x.png", "-j", "0"],
            "invalid value for '--jobs' / '-j': 0 is not in the range x>=1",
        ),
        (["grayscale", "--interpolation"], "option '--interpolation' requires an argument"),
        (["no-such-command"], "no such command 'no-such-command'"),
    ],
)
def test_usage_errors_are_one_line(run_cli, args, line):
    result = run_cli(args)
    assert result.exit_code == 2, result
    assert result.stderr.splitlines() == [f"convkit: error: {line}"], result
    assert result.stdout == b""


def test_debug_works_after_the_command_name(run_cli, tmp_path, sample_images):
    result = run_cli(
        ["grayscale", sample_images / "camera.png", "--debug", "-o", tmp_path / "g.png"]
    )
    assert result.exit_code == 0, result
    assert (tmp_path / "g.png").is_file()
    result = run_cli(["grayscale", tmp_path / "missing.png", "--debug", "-o", tmp_path / "h.png"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr  # --debug shows where an error comes from

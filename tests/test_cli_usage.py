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


@pytest.mark.parametrize("name", ["out.gif", "x.xyz"])
def test_an_output_suffix_convkit_does_not_write_is_refused(run_cli, tmp_path, sample_images, name):
    result = run_cli(["grayscale", sample_images / "camera.png", "-o", tmp_path / name])
    assert result.exit_code == 2, result
    suffix = name.rsplit(".", 1)[1]
    assert result.stderr.splitlines() == [
        f"convkit: error: {name}: convkit does not write .{suffix} files (it writes png, jpg, "
        "tiff, bmp, webp, ppm, pgm); choose one of those suffixes, or give --format"
    ]
    assert not (tmp_path / name).exists()
    # --format says which format, and then the name is the user's business
    result = run_cli(
        ["grayscale", sample_images / "camera.png", "-o", tmp_path / name, "-f", "png"]
    )
    assert result.exit_code == 0, result
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_version_short_and_long(run_cli):
    import convkit

    for flag in ("-V", "--version"):
        result = run_cli([flag])
        assert result.exit_code == 0
        assert result.stdout.decode().strip() == f"convkit {convkit.__version__}"


def test_thread_count_from_the_environment(run_cli, tmp_path, sample_images):
    image = sample_images / "camera.png"
    ok = run_cli(
        ["filter", image, "-k", "sobel-x", "-o", tmp_path / "a.png"], env={"CONVKIT_THREADS": "1"}
    )
    assert ok.exit_code == 0, ok
    bad = run_cli(
        ["filter", image, "-k", "sobel-x", "-o", tmp_path / "b.png"],
        env={"CONVKIT_THREADS": "lots"},
    )
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        "convkit: error: CONVKIT_THREADS must be a positive integer, got 'lots'"
    ]
    assert not (tmp_path / "b.png").exists()


def test_a_name_collision_suggests_what_tells_the_results_apart(run_cli, tmp_path, sample_images):
    image = sample_images / "camera.png"
    result = run_cli(
        ["filter", image, "-k", "sobel-x", "-k", "sobel-y", "-d", tmp_path, "--name", "{stem}.png"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"convkit: error: two results would be written to {tmp_path / 'camera.png'} (sobel-x "
        f"and sobel-y of {image}); make --name include {{what}}"
    ]
    result = run_cli(
        ["grayscale", image, sample_images / "coffee.png", "-d", tmp_path, "--name", "x.png"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].endswith(
        "make --name include {index}, or use separate runs"
    )

"""Import hygiene: what each command may import, checked in a fresh interpreter.

Start-up time is a feature. One harness (:func:`imports_after`) runs convkit commands
through ``main()`` in a new interpreter and reports which heavy modules they loaded:

* importing convkit, ``--help`` and ``shape-calc`` load none of NumPy (shape-calc), OpenCV,
  TensorFlow/Keras; ``shape-calc --diagram`` none either for an SVG, only Matplotlib's
  NumPy for a PNG;
* the image commands load OpenCV but never TensorFlow;
* the Keras and training commands load TensorFlow only once they run a model: their
  ``--help`` and every refusal of options come back without it.

ruff's TID253 (module-level imports of the heavy modules banned) is checked here too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("cv2", "tensorflow", "keras", "tf_keras", "numpy", "dask", "distributed")


def imports_after(
    calls: list[tuple[list[str], tuple[int | None, ...]]],
    *,
    cwd: Path,
    env: dict,
    setup: str = "",
) -> set[str]:
    """Run each ``(argv, allowed exit codes)`` through ``convkit.cli.main`` in one fresh
    interpreter (after ``setup`` code); return the heavy top-level modules then loaded."""
    code = f"""
        import json, sys
        {setup}
        from convkit.cli import main
        for argv, codes in {[(list(map(str, argv)), list(codes)) for argv, codes in calls]!r}:
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code
            if code not in codes and not (code is None and 0 in codes):
                print("BADEXIT=" + json.dumps([argv, code]), file=sys.stderr)
                sys.exit(99)
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
        print("LOADED=" + json.dumps(loaded), file=sys.stderr)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )
    marker = [line for line in proc.stderr.splitlines() if line.startswith("LOADED=")]
    assert proc.returncode == 0 and marker, proc.stdout[-2000:] + proc.stderr[-3000:]
    return set(json.loads(marker[-1][len("LOADED=") :]))


def test_importing_convkit_imports_nothing_heavy(tmp_path, cli_env):
    loaded = imports_after(
        [],
        cwd=tmp_path,
        env=cli_env(),
        setup="import convkit, convkit.cli, convkit.errors, convkit.arithmetic.spec, "
        "convkit.arithmetic.shapes, convkit.engine.executor",
    )
    assert loaded == set()


def test_help_imports_nothing_heavy(tmp_path, cli_env):
    from convkit.cli import COMMANDS

    calls = [(["--help"], (0,)), (["--version"], (0,))]
    calls += [([command, "--help"], (0,)) for command in COMMANDS]
    assert imports_after(calls, cwd=tmp_path, env=cli_env()) == set()


def test_shape_calc_imports_nothing_heavy(tmp_path, cli_env):
    calls = [
        (
            ["shape-calc", "-i", "224x224x3", "conv2d(64, 3, padding=same) maxpool2d(2) flatten"],
            (0,),
        ),
        (
            ["shape-calc", "--input", "224x224x3", "--json", "conv2d(64, 3) bn relu gap dense(10)"],
            (0,),
        ),
        (["shape-calc", "--input", "512", "--kernel", "15", "--stride", "2"], (0,)),
        (["shape-calc", "--input", "7", "conv2d(8, 9)"], (2,)),
    ]
    assert imports_after(calls, cwd=tmp_path, env=cli_env()) == set()


def test_shape_calc_diagram_imports_neither_opencv_nor_tensorflow(tmp_path, cli_env):
    """--diagram: the SVG is written by plain Python; the PNG needs Matplotlib (and so
    NumPy), never OpenCV or TensorFlow."""
    spec = "conv2d(8, 3, padding=same) bn relu maxpool2d(2) flatten dense(10)"
    svg = [
        (["shape-calc", "-i", "32x32x3", spec, "--diagram", "net.svg"], (0,)),
        (["shape-calc", "-i", "7", "--kernel-size", "3", "--diagram", "one.svg"], (0,)),
        (["shape-calc", "-i", "7", "conv2d(8, 9)", "--diagram", "bad.svg"], (2,)),
        (["shape-calc", "-i", "7", "conv2d(8, 3)", "--diagram", "net.jpg"], (2,)),
    ]
    assert imports_after(svg, cwd=tmp_path, env=cli_env()) == set()
    png = [(["shape-calc", "-i", "32x32x3", spec, "--json", "--diagram", "net.png"], (0,))]
    loaded = imports_after(png, cwd=tmp_path, env=cli_env())
    assert "numpy" in loaded  # Matplotlib really drew it
    assert not loaded & {"cv2", "tensorflow", "keras", "tf_keras", "dask"}, loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.png", "net.svg", "one.svg"]


def test_image_commands_never_import_tensorflow(tmp_path, sample_images, cli_env):
    image = sample_images / "chelsea.png"
    calls = [
        (["info", image], (0,)),
        (["info", "--json", image], (0,)),
        (["grayscale", image, "--resize", "64x64", "-o", "gray.png"], (0,)),
        (
            ["filter", image, "-k", "sobel-x", "-k", "gaussian:5", "--gray", "-d", "out"]
            + ["--raw", "raw"],
            (0,),
        ),
        (["filter", "--list-kernels"], (0,)),
    ]
    loaded = imports_after(calls, cwd=tmp_path, env=cli_env())
    assert "cv2" in loaded  # the commands really ran
    assert not loaded & {"tensorflow", "keras", "tf_keras"}, loaded
    assert not loaded & {"dask", "distributed"}, loaded  # only --scheduler imports Dask
    assert (tmp_path / "gray.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "chelsea_gaussian-5.png",
        "chelsea_sobel-x.png",
    ]


def test_refused_options_of_the_keras_and_training_commands_import_no_tensorflow(
    tmp_path, sample_images, cli_env
):
    """Every option, input and output is checked before TensorFlow's seconds are spent."""
    photo = sample_images / "camera.png"
    calls = [
        (["conv", photo, "-o", "x.png"], (2,)),
        (["run", photo, "--spec", "conv2d(4, 3) rleu", "-d", "o"], (2,)),
        (["pool", photo, "--mode", "median", "-d", "o"], (2,)),
        (["train-cifar", "--epochs", "0"], (2,)),
        (["train-cifar", "--spec", "conv2d(8, 40)", "--out", tmp_path / "o"], (2,)),
        (["predict"], (2,)),
    ]
    loaded = imports_after(calls, cwd=tmp_path, env=cli_env())
    assert not loaded & {"tensorflow", "keras", "tf_keras"}, loaded
    assert not loaded & {"dask", "distributed"}, loaded


def test_only_a_scheduler_imports_dask(tmp_path, sample_images, cli_env):
    """Dask is an optional extra: a run given a scheduler imports it (here to find nothing
    listening), and no other does."""
    image = sample_images / "camera.png"
    calls = [
        (["grayscale", image, "-o", "g.png", "--scheduler", "tcp://127.0.0.1:9"], (1,)),
    ]
    loaded = imports_after(calls, cwd=tmp_path, env=cli_env({"DASK_SCHEDULER_ADDRESS": ""}))
    assert {"dask", "distributed"} <= loaded, loaded
    assert not (tmp_path / "g.png").exists()


def _ruff() -> str | None:
    local = Path(sys.executable).with_name("ruff")
    if local.is_file():
        return str(local)
    return shutil.which("ruff")


def test_ruff_passes_on_the_package():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    proc = subprocess.run(
        [ruff, "check", "convkit"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_module_level_heavy_imports_in_the_package():
    """TID253 alone, so that a style slip elsewhere does not hide this rule's result."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    proc = subprocess.run(
        [ruff, "check", "--no-cache", "--select", "TID253", "convkit"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_bans_module_level_heavy_imports(tmp_path):
    """The rule the previous test relies on is really configured (TID253)."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import cv2\nimport tensorflow as tf\nfrom keras import layers\n\n\n"
        "def ok():\n    import cv2\n\n    return cv2, tf, layers\n"
    )
    proc = subprocess.run(
        [ruff, "check", "--no-cache", "--config", str(REPO / "pyproject.toml")]
        + ["--select", "TID253", str(probe)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("TID253") == 3, proc.stdout
    for name in ("cv2", "tensorflow", "keras"):
        assert name in proc.stdout


def test_animate_imports_opencv_only_for_a_photo_and_never_tensorflow(
    tmp_path, sample_images, cli_env
):
    """``animate --json`` imports nothing heavy; drawing imports NumPy and Pillow, OpenCV
    only when ``--image`` reads a photo, TensorFlow never."""
    json_only = [(["animate", "-i", "64", "--kernel-size", "3", "-p", "same", "--json"], (0,))]
    assert imports_after(json_only, cwd=tmp_path, env=cli_env()) == set()
    drawn = [
        (["animate", "-i", "5", "--kernel-size", "3", "-p", "1", "-o", "a.gif"], (0,)),
        (["animate", "-i", "4", "-k", "sobel-x", "--numbers", "--frames-dir", "f"], (0,)),
        (["animate", "-i", "40", "--kernel-size", "3", "-o", "b.gif"], (2,)),
    ]
    loaded = imports_after(drawn, cwd=tmp_path, env=cli_env())
    assert not loaded & {"cv2", "tensorflow", "keras", "tf_keras"}, loaded
    assert (tmp_path / "a.gif").is_file() and (tmp_path / "f").is_dir()
    photo = [
        (
            ["animate", "-i", "4", "--kernel-size", "3", "--image"]
            + [str(sample_images / "camera.png"), "-o", "c.gif"],
            (0,),
        )
    ]
    loaded = imports_after(photo, cwd=tmp_path, env=cli_env())
    assert "cv2" in loaded and not loaded & {"tensorflow", "keras", "tf_keras"}, loaded

"""Import hygiene: importing convkit or running the OpenCV commands never imports TensorFlow
or Keras; importing the command line does not even import OpenCV; and ruff's TID253
(module-level imports of cv2/tensorflow/keras banned) holds for the package.

Each check runs in a fresh interpreter, since this test process has long imported cv2.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_importing_convkit_imports_neither_opencv_nor_tensorflow(tmp_path, cli_env):
    proc = run_python(
        """
        import sys
        import convkit, convkit.cli, convkit.errors, convkit.image.kernels, convkit.image.codec
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("cv2", "tensorflow", "keras"))
        print("HEAVY", heavy)
        assert not heavy, heavy
        """,
        tmp_path,
        cli_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_help_does_not_import_opencv(tmp_path, cli_env):
    proc = run_python(
        """
        import sys
        from convkit.cli import main
        for argv in (["--help"], ["filter", "--help"], ["grayscale", "--help"],
                     ["info", "--help"], ["--version"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), (argv, exc.code)
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("cv2", "tensorflow", "keras"))
        assert not heavy, heavy
        """,
        tmp_path,
        cli_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_commands_do_not_import_tensorflow(tmp_path, sample_images, cli_env):
    image = sample_images / "chelsea.png"
    proc = run_python(
        f"""
        import sys
        from convkit.cli import main

        def run(argv):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), (argv, exc.code)

        image = {str(image)!r}
        run(["info", image])
        run(["info", "--json", image])
        run(["grayscale", image, "--resize", "64x64", "-o", "gray.png"])
        run(["filter", image, "-k", "sobel-x", "-k", "gaussian:5", "--gray", "-d", "out",
             "--raw", "raw"])
        run(["filter", "--list-kernels"])
        assert "cv2" in sys.modules  # the commands really ran
        for name in ("tensorflow", "keras", "tf_keras"):
            loaded = sorted(m for m in sys.modules if m.split(".")[0] == name)
            assert not loaded, (name, loaded[:5])
        print("OK")
        """,
        tmp_path,
        cli_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout
    assert (tmp_path / "gray.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "chelsea_gaussian-5.png",
        "chelsea_sobel-x.png",
    ]


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
        [
            ruff,
            "check",
            "--no-cache",
            "--config",
            str(REPO / "pyproject.toml"),
            "--select",
            "TID253",
            str(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("TID253") == 3, proc.stdout
    for name in ("cv2", "tensorflow", "keras"):
        assert name in proc.stdout

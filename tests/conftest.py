"""Shared fixtures for the convkit test-suite.

Three ways to run the command line, all returning a :class:`CliResult`
(``exit_code``, ``stdout`` bytes, ``stderr`` text):

* ``run_cli(args, input=...)`` runs ``python -m convkit`` in a real subprocess: the real
  stdin/stdout bytes, the real exit code, whatever OpenCV's C++ code prints on fd 2;
* ``run_main(args, input=...)`` calls :func:`convkit.cli.main` in this process inside
  Typer's ``CliRunner`` isolation (so :class:`~convkit.errors.ConvkitError` becomes the
  ``convkit: error: ...`` line and an exit code, exactly as the console script does);
* ``cli_runner`` is a plain :class:`typer.testing.CliRunner` for ``invoke(app, ...)``. In
  typer 0.29 the runner has no ``mix_stderr`` switch: ``result.stdout``/``result.stdout_bytes``
  and ``result.stderr`` are always kept apart (``result.output`` is both, interleaved). Note
  that ``invoke(app, ...)`` bypasses ``main()``: a ConvkitError raised outside the batch loop
  surfaces as ``result.exception``, not as a message, so message tests use the other two.

``convkit_cli`` is parametrised over the first two, for tests that must hold both ways.

Image helpers (``make_image``, ``encode``, ``decode``, ``random_image``) write small test
images with ``cv2.imencode`` + plain file writes, so non-ASCII paths work too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGES = REPO / "sample_images"


@dataclass
class CliResult:
    exit_code: int
    stdout: bytes
    stderr: str
    how: str = "subprocess"

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return (
            f"CliResult(how={self.how}, exit_code={self.exit_code}, "
            f"stdout={self.stdout[:300]!r}, stderr={self.stderr[-1500:]!r})"
        )


def _clean_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for key in ("CONVKIT_DEBUG", "OPENCV_LOG_LEVEL", "OPENCV_IO_MAX_IMAGE_PIXELS"):
        env.pop(key, None)
    env["COLUMNS"] = "200"  # Rich tables wide enough not to wrap paths
    env["PYTHONIOENCODING"] = "utf-8"
    if extra:
        env.update(extra)
    return env


def _run_subprocess(args, *, input=None, cwd=None, env=None, timeout=60) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "convkit", *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=_clean_env(env),
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def _run_in_process(args, *, input=None, cwd=None, env=None) -> CliResult:
    from typer.testing import CliRunner

    from convkit.cli import main

    overrides = {"CONVKIT_DEBUG": None, "COLUMNS": "200"}  # --debug sets CONVKIT_DEBUG: undo it
    if env:
        overrides.update(env)
    runner = CliRunner()
    old_cwd = os.getcwd()
    code = 0
    with runner.isolation(input=input, env=overrides) as (out, err, _mixed):
        try:
            if cwd is not None:
                os.chdir(cwd)
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(old_cwd)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return CliResult(code, stdout, stderr.decode("utf-8", "replace"), how="in-process main()")


@pytest.fixture
def run_cli():
    """``run_cli(args, input=None, cwd=None, env=None) -> CliResult`` through a subprocess."""
    return _run_subprocess


@pytest.fixture
def cli_env():
    """``cli_env(extra=None) -> dict``: the environment ``run_cli`` gives its subprocess."""
    return _clean_env


@pytest.fixture
def run_main():
    """``run_main(args, input=None, cwd=None, env=None) -> CliResult`` through ``main()``."""
    return _run_in_process


@pytest.fixture(params=["subprocess", "main"])
def convkit_cli(request):
    """The command line, once as a subprocess and once in-process through ``main()``."""
    return _run_subprocess if request.param == "subprocess" else _run_in_process


@pytest.fixture
def cli_runner():
    from typer.testing import CliRunner

    return CliRunner(env={"COLUMNS": "200", "CONVKIT_DEBUG": None})


@pytest.fixture
def sample_images() -> Path:
    assert SAMPLE_IMAGES.is_dir(), "sample_images/ is missing"
    return SAMPLE_IMAGES


# --------------------------------------------------------------------------- images


def random_image(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    """Random pixels over the full range of ``dtype`` (uint8 or uint16)."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, size=shape, dtype=np.int64).astype(dtype)


def smooth_image(shape, dtype=np.uint8, seed=0) -> np.ndarray:
    """A smooth-ish random image (compresses well, survives JPEG reasonably)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.random(shape).astype(np.float32)
    base = cv2.GaussianBlur(base, (0, 0), 2.0)
    base = (base - base.min()) / max(float(base.max() - base.min()), 1e-6)
    return np.round(base * np.iinfo(dtype).max).astype(dtype)


def encode(image: np.ndarray, ext: str = ".png", params=()) -> bytes:
    import cv2

    ext = ext if ext.startswith(".") else "." + ext
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok, f"test set-up: OpenCV could not encode {ext}"
    return buf.tobytes()


def decode(data: bytes, flags=None) -> np.ndarray:
    """OpenCV's own decoding (IMREAD_UNCHANGED unless told), the reference for round trips."""
    import cv2

    flags = cv2.IMREAD_UNCHANGED if flags is None else flags
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None, "test: OpenCV could not decode the bytes"
    return image


def read_png(path) -> np.ndarray:
    return decode(Path(path).read_bytes())


@pytest.fixture
def make_image(tmp_path):
    """``make_image(name, image=None, *, shape=(24, 32, 3), dtype=uint8, seed=0, params=())``.

    Writes ``image`` (random pixels when None) encoded by the suffix of ``name`` under
    ``tmp_path`` (``name`` may contain sub-folders) and returns ``(path, image)``.
    """

    def make(name, image=None, *, shape=(24, 32, 3), dtype=np.uint8, seed=0, params=()):
        if image is None:
            image = random_image(shape, dtype, seed)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(image, path.suffix, params))
        return path, image

    return make


@pytest.fixture
def images():
    """The helper functions above, as a namespace (tests need not import conftest)."""
    return SimpleNamespace(
        random=random_image,
        smooth=smooth_image,
        encode=encode,
        decode=decode,
        read_png=read_png,
    )


# --------------------------------------------------------------------------- assertions

ERROR_LINE = re.compile(r"^convkit: error: (?P<rest>.+)$")


def assert_cli_error(
    result: CliResult,
    exit_code: int,
    reason: str,
    *,
    path: str | None = None,
    only_line: bool = True,
) -> str:
    """Check the contract for a failed run and return the error line.

    * the exit code is ``exit_code``;
    * stderr holds ``convkit: error: PATH: reason`` (``reason`` is a regex searched in the part
      after ``PATH: ``; without ``path`` in everything after ``error: ``);
    * no Python traceback;
    * with ``only_line``, that line is all there is on stderr ("one line on stderr").
    """
    assert result.exit_code == exit_code, result
    assert "Traceback" not in result.stderr, result
    lines = result.stderr_lines
    errors = [line for line in lines if ERROR_LINE.match(line)]
    assert errors, f"no 'convkit: error:' line on stderr: {result!r}"
    if path is not None:
        prefix = f"convkit: error: {path}: "
        matching = [e for e in errors if e.startswith(prefix)]
        assert matching, f"no error line starts with {prefix!r}: {result!r}"
        line = matching[0]
        assert re.search(reason, line[len(prefix) :], re.IGNORECASE), (reason, line)
    else:
        line = errors[0]
        assert re.search(reason, line, re.IGNORECASE), (reason, line)
    if only_line:
        assert lines == [line], f"stderr should be exactly one line: {result!r}"
    return line


@pytest.fixture
def cli_error():
    return assert_cli_error


def stray_temp_files(root: Path) -> list[Path]:
    """Temporary files convkit's atomic writes may leave behind (``.NAME.XXXX.part``)."""
    return [p for p in Path(root).rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def no_stray_temp_files():
    return stray_temp_files


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    """A fixed 8x8x3 classifier, saved as ``model.keras`` with a ``labels.txt`` (red, green,
    blue): the softmax of (mean red, mean green, mean blue) / 64, so its answer for any
    image can be worked out with NumPy."""
    import warnings

    from convkit.heavy import import_keras

    keras = import_keras()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 64)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Activation("softmax")(x)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        keras.Model(inputs, outputs).save(path)
    (path.parent / "labels.txt").write_text("red\ngreen\nblue\n")
    return path

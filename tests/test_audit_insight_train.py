"""Hostile and awkward inputs to the issue-11 commands (``train DATA``, ``predict`` with the
metadata inside model.keras, ``kernels``, ``explain``), each through the command line: one
``convkit: error:`` line naming the file or flag, a meaningful exit code, no results left.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import folder_fixtures as ff
import numpy as np
import pytest


def _error_line(result, code: int, *parts: str) -> str:
    assert result.exit_code == code, result
    line = result.stderr_lines[-1]
    assert line.startswith("convkit: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in line, line
    return line


def _two_classes(root: Path, first: str, second: str = "disk", n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    ff.fill_class(root / first, "cross", n, rng, sizes=((16, 16),), formats=(".png",))
    ff.fill_class(root / second, "disk", n, rng, sizes=((16, 16),), formats=(".png",))
    return root


@pytest.mark.parametrize("name", ["a\nb", os.fsdecode(b"\xff")], ids=["newline", "not-utf8"])
def test_train_refuses_a_class_folder_name_that_cannot_be_a_label(name, tmp_path, run_main):
    # A newline split the class in two in labels.txt; a non-UTF-8 byte crashed the writing
    # of labels.txt with a traceback after model.keras was written.
    data = _two_classes(tmp_path / "data", name)
    out = tmp_path / "out"
    result = run_main(["train", data, "--epochs", "1", "--out", out])
    _error_line(result, 1, "data: class folder", "rename the folder")
    assert not out.exists()


def test_train_split_too_small_names_the_flags(tmp_path, run_main):
    data = _two_classes(tmp_path / "data", "cross", n=3)
    out = tmp_path / "out"
    result = run_main(["train", data, "--test-split", "0.9", "--out", out])
    _error_line(result, 2, "too few images to split", "--val-split / --test-split")
    assert not out.exists()


def test_train_limit_too_small_names_limit_too(tmp_path, run_main):
    # --limit 2 passes its own check, but a class never gives its last image to validation.
    data = _two_classes(tmp_path / "data", "cross", n=6)
    result = run_main(["train", data, "--limit", "2", "--out", tmp_path / "out"])
    _error_line(result, 2, "too few images to split", "--val-split / --test-split / --limit")


def test_train_image_size_too_small_for_the_named_model_is_one_line(tmp_path, run_main):
    # It was the error of a spec the user never wrote: three lines, a caret under the
    # built-in model's spec, and no word of --image-size.
    data = _two_classes(tmp_path / "data", "cross")
    out = tmp_path / "out"
    result = run_main(["train", data, "--image-size", "1x1", "--out", out])
    line = _error_line(result, 2, "at 1x1 are too small for the small model", "--image-size")
    assert "^^" not in result.stderr and "conv2d(32" not in result.stderr, line
    assert not out.exists()


@pytest.fixture(scope="module")
def keras():
    from convkit.heavy import import_keras

    return import_keras()


def _with_metadata(src: Path, dst: Path, class_names: list[str]) -> Path:
    """``src`` with a convkit entry naming ``class_names`` in its metadata.json."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["metadata.json"])
    meta["convkit"] = {
        "format": 1,
        "class_names": class_names,
        "preparation": {"image_size": [8, 8], "color": "gray", "keep_aspect": False,
                        "interpolation": "area", "pixels": "0..1"},
    }  # fmt: skip
    members["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


@pytest.mark.keras
def test_predict_refuses_duplicate_or_control_class_names(keras, tmp_path, run_main):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
         keras.layers.Dense(2, activation="softmax")]
    )  # fmt: skip
    plain = tmp_path / "plain.keras"
    model.save(plain)
    image = tmp_path / "x.png"
    ff.write(image, np.zeros((8, 8, 3), np.uint8))
    dup = _with_metadata(plain, tmp_path / "dup.keras", ["a", "a"])
    _error_line(run_main(["predict", dup, image]), 1, "dup.keras", "names 'a' twice")
    ctrl = _with_metadata(plain, tmp_path / "ctrl.keras", ["a\nb", "c"])
    _error_line(run_main(["predict", ctrl, image]), 1, "ctrl.keras", "control character")


@pytest.mark.keras
def test_kernels_on_a_nested_model_says_why_it_finds_no_convolution(keras, tmp_path, run_main):
    inner = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c")], name="base"
    )
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inner(inputs))
    path = tmp_path / "nested.keras"
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    out = tmp_path / "k"
    result = run_main(["kernels", path, "-d", out])
    _error_line(result, 1, "nested.keras", "no convolution layer", "the nested model base")
    assert not out.exists()


@pytest.mark.keras
def test_resume_with_other_classes_names_the_data_argument(tmp_path, run_main):
    data = _two_classes(tmp_path / "data", "cross")
    out = tmp_path / "run"
    args = ["--epochs", "1", "--batch-size", "4", "--image-size", "8", "-q"]
    assert run_main(["train", data, *args, "--out", out]).exit_code == 0
    other = _two_classes(tmp_path / "other", "zebra")
    result = run_main(["train", other, "--resume", out, "--epochs", "2", "-q"])
    line = _error_line(result, 1, "class names differ", "give that folder (data)")
    assert "--data-dir" not in line
    # The same classes but two files fewer (8 images: 2 test, 1 validation, 5 training;
    # then 6: 1, 1, 4): the splits are drawn anew, which is said.
    for path in sorted((data / "disk").iterdir())[:2]:
        path.unlink()
    result = run_main(["train", data, "--resume", out, "--epochs", "2", "--json"])
    assert result.exit_code == 0, result
    assert "the folder changed since the run started (5 training images then, 4 now)" in (
        result.stderr
    )

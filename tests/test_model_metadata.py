"""A trained model carries its class names and input preparation inside ``model.keras``.

References: Keras itself (``keras.saving.load_model`` in a process that never imports
convkit, ``model.predict``), and the preparation rewritten here with NumPy and OpenCV alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

NAMES = ["cat", "dog", "bird é"]  # not CIFAR's, and not ASCII
SIZE = (12, 16)  # height, width the model takes


def _gray_data():
    """Gray images of three classes a tiny CNN tells apart: dark, bright, striped."""
    from convkit.training.data import TrainingData

    rng = np.random.default_rng(0)

    def images(n):
        x = np.empty((n, *SIZE, 1), np.uint8)
        y = np.arange(n) % 3
        for i, label in enumerate(y):
            base = rng.integers(0, 20, SIZE)
            if label == 0:
                x[i, :, :, 0] = 30 + base
            elif label == 1:
                x[i, :, :, 0] = 210 + base
            else:
                x[i, :, :, 0] = np.where(np.arange(SIZE[1]) % 4 < 2, 20, 230)[None, :] + base // 4
        return x, y

    x_train, y_train = images(90)
    x_test, y_test = images(30)
    preparation = {
        "image_size": list(SIZE),
        "color": "gray",
        "keep_aspect": True,
        "interpolation": "area",
    }
    return TrainingData(
        x_train, y_train, x_test, y_test, NAMES, name="pets", title="pets",
        preparation=preparation,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run trained on gray, padded 12x16 images, through the trainer: its folder."""
    from convkit.training.config import TrainConfig
    from convkit.training.runfolder import prepare_out
    from convkit.training.trainer import train

    out = prepare_out(tmp_path_factory.mktemp("run") / "out")
    config = TrainConfig(
        epochs=4,
        batch_size=16,
        spec="conv2d(8, 3, activation=relu) maxpool2d(2) flatten",
        learning_rate=0.01,
        seed=3,
    )
    train(config, _gray_data(), out, plots=False)
    return out


@pytest.fixture
def alone(trained, tmp_path) -> Path:
    """A copy of model.keras alone, in a folder without labels.txt or metrics.json."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    shutil.copy(trained / "model.keras", folder / "model.keras")
    return folder / "model.keras"


def _reference_input(bgr: np.ndarray) -> np.ndarray:
    """Gray with OpenCV's weights, fitted inside 12x16 with area interpolation, centred on
    black: uint8 (12, 16, 1) as float32, written without convkit."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    scale = min(SIZE[0] / h, SIZE[1] / w)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(gray, (fw, fh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros(SIZE, np.uint8)
    top, left = (SIZE[0] - fh) // 2, (SIZE[1] - fw) // 2
    canvas[top : top + fh, left : left + fw] = small
    return canvas[:, :, None].astype(np.float32)


def _photo(path: Path, shape=(30, 50, 3), seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    image[:, : shape[1] // 2] //= 3  # not uniform, so the padding and the resize show
    cv2.imwrite(str(path), image)
    return image


@pytest.mark.keras
def test_the_archive_holds_the_names_and_preparation_and_keras_alone_loads_it(trained, tmp_path):
    path = trained / "model.keras"
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        entry = json.loads(archive.read("metadata.json"))["convkit"]
    assert entry["class_names"] == NAMES
    assert entry["preparation"] == {
        "image_size": [12, 16],
        "color": "gray",
        "keep_aspect": True,
        "interpolation": "area",
        "pixels": "0..255",
    }
    script = (
        "import sys, keras\n"
        f"m = keras.saving.load_model({str(path)!r}, safe_mode=True)\n"
        "print(tuple(m.input_shape), tuple(m.output_shape))\n"
        "print([n for n in sys.modules if n.split('.')[0] == 'convkit'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    shapes, modules = proc.stdout.strip().splitlines()[-2:]
    assert shapes == "(None, 12, 16, 1) (None, 3)"
    assert modules == "[]"


@pytest.mark.keras
def test_a_copy_of_model_keras_alone_predicts_with_its_names(alone, tmp_path, run_main):
    from convkit.heavy import import_keras

    photo = _photo(tmp_path / "photo.png")
    result = run_main(["predict", alone, tmp_path / "photo.png", "--json", "--top-k", "3"])
    assert result.exit_code == 0, result
    (record,) = json.loads(result.stdout)
    got = {p["class"]: p["probability"] for p in record["predictions"]}
    assert sorted(got) == sorted(NAMES)
    assert result.stderr_lines == []  # names from the model file: nothing to warn about
    dry = run_main(["predict", alone, tmp_path / "photo.png", "--dry-run"])
    assert "the model file's classes: cat, dog, bird é" in dry.stderr
    assert "prepared as: 12x16 gray, padded to keep the aspect, area" in dry.stderr
    # The same image through Keras, prepared without convkit.
    model = import_keras().saving.load_model(alone, safe_mode=True)
    probs = model.predict(_reference_input(photo)[None], verbose=0)[0]
    for i, name in enumerate(NAMES):
        assert got[name] == pytest.approx(float(probs[i]), abs=1e-5)


@pytest.mark.keras
def test_predict_prepares_a_gray_model_s_input_as_training_did(alone, tmp_path):
    from convkit.image.sources import collect_sources
    from convkit.training.predict import open_classifier

    classifier = open_classifier(alone)
    assert classifier.class_names == NAMES and classifier.note is None
    cases = {
        "wide.png": (30, 50, 3),
        "tall.png": (40, 9, 3),
        "exact.png": (12, 16, 3),
        "alpha.png": (20, 20, 4),
    }
    for name, shape in cases.items():
        image = _photo(tmp_path / name, shape)
        (source,) = collect_sources([str(tmp_path / name)]).sources
        bgr = image[:, :, :3]
        np.testing.assert_array_equal(classifier.prepare(source), _reference_input(bgr))
    deep = (np.random.default_rng(5).integers(0, 65536, (24, 40))).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    (source,) = collect_sources([str(tmp_path / "deep.png")]).sources
    eight = np.rint(deep / 257).astype(np.uint8)
    expected = _reference_input(cv2.cvtColor(eight, cv2.COLOR_GRAY2BGR))
    np.testing.assert_array_equal(classifier.prepare(source), expected)


@pytest.mark.keras
def test_every_model_the_run_writes_carries_it_and_the_results_use_the_names(trained):
    from convkit.heavy import import_keras

    metrics = json.loads((trained / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["class_names"] == NAMES
    assert set(metrics["per_class_accuracy"]) == set(NAMES)
    for key in ("test_accuracy", "test_loss", "confusion_matrix"):
        assert key in metrics
    assert metrics["preparation"]["color"] == "gray"
    # The confusion matrix and accuracy, recomputed with Keras and NumPy.
    data = _gray_data()
    model = import_keras().saving.load_model(trained / "model.keras", safe_mode=True)
    predicted = model.predict(data.x_test.astype(np.float32), verbose=0).argmax(axis=1)
    confusion = np.zeros((3, 3), int)
    np.add.at(confusion, (data.y_test, predicted), 1)
    assert metrics["confusion_matrix"] == confusion.tolist()
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == data.y_test), abs=1e-6)
    assert metrics["test_accuracy"] > 0.6  # chance: 1/3
    assert (trained / "labels.txt").read_text(encoding="utf-8").split("\n")[:3] == NAMES


# --------------------------------------------------------------------------- hostile


def _rewrite(src: Path, dst: Path, metadata: bytes, *, deflate: bool = False) -> Path:
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["metadata.json"] = metadata
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return dst


def _entry(src: Path, change) -> bytes:
    with zipfile.ZipFile(src) as archive:
        document = json.loads(archive.read("metadata.json"))
    change(document["convkit"])
    return json.dumps(document).encode()


def _hostile(alone: Path) -> dict[str, tuple[bytes, str]]:
    def set_(key, value, where=None):
        def change(entry):
            (entry[where] if where else entry)[key] = value

        return change

    return {
        "not-json": (b'{"convkit": {"class_names": [', "metadata.json is not JSON"),
        "not-object": (b"[1, 2, 3]", "not a JSON object"),
        "entry-a-list": (b'{"convkit": ["cat", "dog"]}', '"convkit" is not a JSON object'),
        "names-numbers": (_entry(alone, set_("class_names", [1, 2, 3])), '"class_names" must'),
        "names-string": (_entry(alone, set_("class_names", "cat dog")), '"class_names" must'),
        "too-few-names": (
            _entry(alone, set_("class_names", ["a", "b"])),
            "does not match the model: it says 2 class names, but the model gives 3",
        ),
        "size-strings": (
            _entry(alone, set_("image_size", ["12", "16"], "preparation")),
            '"image_size" must be',
        ),
        "size-huge": (
            _entry(alone, set_("image_size", [10**12, 16], "preparation")),
            '"image_size" must be',
        ),
        "size-other": (
            _entry(alone, set_("image_size", [32, 32], "preparation")),
            "does not match the model: it says images of 32x32, but the model takes 12x16",
        ),
        "color": (_entry(alone, set_("color", "cmyk", "preparation")), '"color" must be one of'),
        "keep-aspect": (
            _entry(alone, set_("keep_aspect", "yes", "preparation")),
            '"keep_aspect" must be true or false',
        ),
        "format": (_entry(alone, set_("format", 99)), '"format" is 99'),
        "nested": (b"[" * 100_000 + b"]" * 100_000, "metadata.json is not JSON"),
    }


@pytest.mark.keras
def test_hostile_metadata_is_refused_with_one_line(alone, tmp_path, run_main, cli_error):
    image = tmp_path / "photo.png"
    _photo(image)
    for kind, (payload, message) in _hostile(alone).items():
        bad = _rewrite(alone, tmp_path / f"{kind}.keras", payload)
        result = run_main(["predict", bad, image])
        cli_error(result, 1, message.replace("(", r"\(").replace(")", r"\)"), path=str(bad))


@pytest.mark.keras
def test_a_huge_metadata_member_is_refused_before_it_is_read(alone, tmp_path, run_main, cli_error):
    image = tmp_path / "photo.png"
    _photo(image)
    payload = b'{"convkit": {"class_names": ["' + b"a" * (20 << 20) + b'"]}}'
    bad = _rewrite(alone, tmp_path / "huge.keras", payload, deflate=True)
    assert bad.stat().st_size < 1 << 20  # 20 MiB that compress to almost nothing
    result = run_main(["predict", bad, image])
    cli_error(
        result,
        1,
        "its metadata.json would take .*MiB, more than a model's configuration may",
        path=str(bad),
    )


@pytest.mark.keras
def test_the_metadata_reader_checks_sizes_itself(alone, tmp_path, monkeypatch):
    from convkit.errors import ModelError
    from convkit.training import metadata

    monkeypatch.setattr(metadata, "MAX_METADATA_BYTES", 100)
    with pytest.raises(ModelError, match="metadata.json takes .* more than 100"):
        metadata.read_metadata(alone)


def test_the_prediction_grid_draws_gray_images_in_gray_with_the_names():
    from convkit.training.plots import prediction_grid_png, short_name

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 12, 16, 1), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2])
    predicted = np.array([0, 1, 2, 1, 1, 2])  # one mistake
    probs = np.full((6, 3), 1 / 3)
    png = prediction_grid_png(images, labels, predicted, probs, NAMES, count=6, columns=3)
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[0] > 100
    assert short_name("a" * 40) == "a" * 17 + "\u2026"
    assert short_name("dog") == "dog"

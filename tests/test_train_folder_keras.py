"""``convkit train DATA`` training for real on small generated folders: it learns (well above
chance) in the flat and the train/ test/ val/ layouts, in memory and streamed from disk; the
streamed batches hold the very pixels of the in-memory ones; class names reach the results
and ``predict``; ``--resume`` continues; ``train cifar10`` is train-cifar."""

from __future__ import annotations

import json
from pathlib import Path

import cifar_fixtures as cf
import folder_fixtures as ff
import numpy as np
import pytest
from conftest import _run_in_process

pytestmark = pytest.mark.keras

CHANCE = 1 / len(ff.CLASS_NAMES)


def _train(*args):
    result = _run_in_process(["train", *map(str, args)])
    assert result.exit_code == 0, result
    return result


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    return ff.make_flat(tmp_path_factory.mktemp("flat") / "shapes", per_class=30)


@pytest.fixture(scope="module")
def flat_run(flat, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "flat"
    result = _train(
        flat, "--epochs", "5", "--seed", "1", "--image-size", "24", "--out", out, "--json"
    )
    return result, out


def test_flat_folder_learns_and_names_its_classes(flat_run, flat):
    result, out = flat_run
    record = json.loads(result.stdout)
    metrics = record["metrics"]
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == list(ff.CLASS_NAMES)
    assert metrics["test_accuracy"] >= 0.8 > CHANCE + 0.4, metrics
    # 93 readable images (one of the 94 is corrupt): 20% of each class tested, stratified.
    assert metrics["test_images"] == 19
    assert metrics["train_images"] + metrics["val_images"] == 93 - 19
    assert (out / "labels.txt").read_text().split() == list(ff.CLASS_NAMES)
    for name in ("model.keras", "curves.png", "confusion.png", "predictions.png"):
        assert (out / name).stat().st_size > 0
    # stderr: the scan's table, the corrupt file named with its reason, the size chosen.
    assert "cross" in result.stderr and "square" in result.stderr
    assert f"convkit: error: {flat / 'disk' / ff.CORRUPT}: " in result.stderr
    assert "training without the 1 unreadable file" in result.stderr


def test_the_model_predicts_the_folder_names(flat_run, flat):
    _, out = flat_run
    picture = flat / "square" / "square_0003.tiff"
    result = _run_in_process(["predict", out / "model.keras", picture, "--json", "--top-k", "1"])
    assert result.exit_code == 0, result
    (record,) = json.loads(result.stdout)
    assert record["predictions"][0]["class"] == "square"


def test_resume_continues_the_folder_run(flat_run, tmp_path):
    import shutil

    _, out = flat_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    result = _train("--resume", copy, "--epochs", "6", "--json")
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["epochs"] == 6 and metrics["resumed_from_epoch"] == 5
    assert metrics["class_names"] == list(ff.CLASS_NAMES)


def test_train_test_val_folders_gray_and_balanced(tmp_path):
    root = ff.make_split(tmp_path / "d", train=20, test=6, val=4)
    # Unequal classes: half of cross/ goes.
    for path in sorted((root / "train" / "cross").iterdir())[:10]:
        path.unlink()
    out = tmp_path / "out"
    result = _train(
        root, "--gray", "--image-size", "20x20", "--class-weight", "balanced",
        "--epochs", "10", "--batch-size", "16", "--lr", "0.005", "--seed", "2", "--out", out,
        "--json",
    )  # fmt: skip
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test_images"] == 18 and metrics["val_images"] == 12  # the folders' own
    assert metrics["train_images"] == 10 + 23 + 20  # square/ holds 3 readable odd files
    assert metrics["test_accuracy"] >= 0.7, metrics
    assert "the classes are unequal" in result.stderr and "balanced" in result.stderr
    from convkit.training.modelfile import load_model

    assert tuple(load_model(out / "model.keras").input_shape[1:]) == (20, 20, 1)


def test_streamed_from_disk_learns_too(flat, tmp_path):
    out = tmp_path / "out"
    result = _train(
        flat, "--memory-budget", "1K", "--image-size", "24", "--epochs", "5", "--seed", "1",
        "--out", out, "--json",
    )  # fmt: skip
    assert "streaming them from disk" in result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["test_accuracy"] >= 0.8, metrics


def test_streamed_batches_are_the_in_memory_batches(flat):
    from convkit.training.config import TrainConfig
    from convkit.training.folder_data import FolderReading, read_folder
    from convkit.training.folders import find_layout
    from convkit.training.pipeline import train_dataset
    from convkit.training.stream import FileImages

    config = TrainConfig(dataset="folder", image_size=[16, 16], color="rgb", seed=5)
    layout = find_layout(flat)
    memory, _ = read_folder(layout, config, seed=5)
    files, _ = read_folder(layout, config, seed=5, reading=FolderReading(memory_budget=1))
    assert isinstance(files.x_train, FileImages) and isinstance(memory.x_train, np.ndarray)
    np.testing.assert_array_equal(files.y_train, memory.y_train)
    kw = {"batch_size": 16, "seed": 3, "first_epoch": 0, "epochs": 1, "augment": True}
    streamed = list(train_dataset(files.x_train, files.y_train, **kw))
    held = list(train_dataset(memory.x_train, memory.y_train, **kw))
    assert len(streamed) == len(held) > 1
    for (xs, ys), (xm, ym) in zip(streamed, held, strict=True):
        np.testing.assert_array_equal(xs.numpy(), xm.numpy())
        np.testing.assert_array_equal(ys.numpy(), ym.numpy())


def test_balanced_weights_ride_with_each_batch():
    from convkit.training.data import balanced_weights
    from convkit.training.pipeline import train_dataset

    labels = np.array([0] * 6 + [1] * 2)
    weights = balanced_weights(labels, 2)
    np.testing.assert_allclose(weights, [8 / (2 * 6), 8 / (2 * 2)])
    x = np.zeros((8, 4, 4, 1), np.uint8)
    kw = {"batch_size": 8, "seed": 0, "first_epoch": 0, "epochs": 1, "augment": False}
    ((_, y, w),) = train_dataset(x, labels, weights=weights, **kw)
    np.testing.assert_allclose(w.numpy(), weights[y.numpy()])


def test_train_cifar10_is_train_cifar(tmp_path):
    data = cf.write_cifar10(tmp_path / "c", form="tar", per_batch=20, test=40, seed=1)
    out = tmp_path / "out"
    result = _train(
        "cifar10", "--data-dir", data, "--epochs", "1", "--seed", "3", "--out", out, "--json"
    )
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["dataset"] == "cifar10" and metrics["test_images"] == 40
    assert metrics["class_names"] == list(cf.CLASS_NAMES)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["dataset"] == "cifar10"

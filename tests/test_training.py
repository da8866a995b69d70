"""Training on a generated CIFAR look-alike: the pipeline, the models, the results, Ctrl-C,
--resume. Small sets and a few epochs keep the whole module to seconds on two cores."""

from __future__ import annotations

import csv
import json
import os
import signal

import cifar_fixtures as cf
import numpy as np
import pytest

from convkit.errors import ImageWriteError, SpecError, UsageError
from convkit.training import cifar, models, pipeline, runfolder, trainer
from convkit.training.config import TrainConfig, TrainSettings, model_spec_text
from convkit.training.data import split_indices
from convkit.training.events import StopRequest, TrainingEvents, sigint_stops

pytestmark = pytest.mark.keras

METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "per_class_accuracy",
    "confusion_matrix",
    "epochs",
    "wall_time_seconds",
    "train_images_per_second",
    "class_names",
    "final",
    "seed",
    "interrupted",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    where = cf.write_cifar10(root, form="tar", per_batch=100, test=200, seed=1)
    return cifar.load("cifar10", where, allow_download=False)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One complete run that several tests look at."""
    out = runfolder.prepare_out(tmp_path_factory.mktemp("run") / "out")
    config = TrainConfig(epochs=4, batch_size=32, seed=7)
    events = Recorder()
    result = trainer.train(config, data, out, events=events)
    return result, events


class Recorder(TrainingEvents):
    def __init__(self, stop_at=None, stop=None):
        self.calls = []
        self.stop_at = stop_at
        self.stop = stop

    def note(self, message):
        self.calls.append(("note", message))

    def on_start(self, run):
        self.calls.append(("start", run))

    def on_epoch_start(self, epoch, epochs):
        self.calls.append(("epoch_start", epoch))

    def on_batch(self, progress):
        self.calls.append(("batch", progress.epoch, progress.step, progress.steps))
        if self.stop_at == (progress.epoch, progress.step):
            self.stop.set()  # what the Ctrl-C handler does

    def on_epoch_end(self, record, epochs):
        self.calls.append(("epoch_end", record))

    def kinds(self, kind):
        return [c for c in self.calls if c[0] == kind]


# --------------------------------------------------------------------------- a whole run


def test_a_run_learns_the_generated_classes(trained):
    result, _ = trained
    m = result.metrics
    assert m["test_accuracy"] > 0.5, m  # chance is 0.1
    assert 0 < m["test_loss"] < 2.0
    assert not result.interrupted and not result.failures


def test_metrics_json(trained):
    result, _ = trained
    m = json.loads((result.out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(m)
    assert m["epochs"] == 4 and m["epochs_requested"] == 4 and m["interrupted"] is False
    assert m["class_names"] == list(cf.CLASS_NAMES)
    assert set(m["per_class_accuracy"]) == set(cf.CLASS_NAMES)
    confusion = np.array(m["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == m["test_images"] == 200
    assert np.trace(confusion) / 200 == pytest.approx(m["test_accuracy"])
    for i, name in enumerate(cf.CLASS_NAMES):
        row = confusion[i]
        assert m["per_class_accuracy"][name] == pytest.approx(row[i] / row.sum(), abs=1e-6)
    assert m["train_images"] + m["val_images"] == 500 and m["val_images"] == 50
    assert m["train_images_per_second"] > 0 and m["wall_time_seconds"] > 0
    assert m["seed"] == 7 and m["model"] == "small"


def test_result_files(trained):
    from conftest import read_png

    result, _ = trained
    out = result.out
    names = {p.name for p in out.iterdir()}
    assert {
        "model.keras",
        "labels.txt",
        "history.csv",
        "history.json",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "predictions.png",
        "run.json",
    } <= names
    assert "checkpoint.keras" not in names  # a finished run keeps only model.keras
    assert not [n for n in names if n.startswith(".")]  # no temporary files left
    for name, min_width in (("curves.png", 800), ("confusion.png", 700), ("predictions.png", 800)):
        picture = read_png(out / name)
        assert picture.ndim == 3 and picture.shape[1] >= min_width, name
        assert picture.std() > 10, name  # not blank
    assert (out / "labels.txt").read_text().split("\n")[:10] == list(cf.CLASS_NAMES)
    assert oct((out / "model.keras").stat().st_mode & 0o777) != oct(0o600)


def test_history_files(trained):
    result, events = trained
    rows = list(csv.DictReader((result.out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    history = json.loads((result.out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < history[0]["loss"]
    ends = [c[1] for c in events.kinds("epoch_end")]
    assert [round(r.loss, 6) for r in ends] == [h["loss"] for h in history]
    # the callback saw every batch: 450 training images in batches of 32
    assert len(events.kinds("batch")) == 4 * 15
    assert events.kinds("batch")[-1][2:] == (15, 15)


def test_the_saved_model_reloads_in_safe_mode_and_agrees(trained, data):
    from convkit.training.predict import inspect_model, load_model

    result, _ = trained
    model = load_model(result.out / "model.keras")
    shape = inspect_model(model)
    assert (shape.height, shape.width, shape.channels, shape.classes) == (32, 32, 3, 10)
    assert shape.scale == 1.0  # the model rescales by itself: it takes 0..255
    probs = model.predict(data.x_test.astype(np.float32), verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == data.y_test))
    assert accuracy == pytest.approx(result.metrics["test_accuracy"], abs=1e-6)


def test_same_seed_same_run(data, tmp_path):
    def run(name):
        config = TrainConfig(epochs=2, batch_size=50, limit=200, seed=11, augment=True)
        out = runfolder.prepare_out(tmp_path / name)
        return trainer.train(config, data, out, plots=False)

    a, b = run("a"), run("b")
    assert [r.loss for r in a.history] == [r.loss for r in b.history]
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert a.metrics["train_images"] == 180 and a.metrics["val_images"] == 20


# --------------------------------------------------------------------------- Ctrl-C, --resume


def test_stop_after_the_current_batch_then_resume(data, tmp_path):
    out = runfolder.prepare_out(tmp_path / "run")
    config = TrainConfig(epochs=3, batch_size=50, limit=300, seed=5)
    stop = StopRequest()
    events = Recorder(stop_at=(2, 2), stop=stop)  # "Ctrl-C" during batch 2 of epoch 2
    result = trainer.train(config, data, out, events=events, stop=stop)

    assert result.interrupted
    assert events.kinds("batch")[-1][1:3] == (2, 2)  # nothing trained after that batch
    m = json.loads((out / "metrics.json").read_text())
    assert m["interrupted"] is True and m["epochs"] == 1
    assert m["partial_epoch"]["epoch"] == 2 and m["partial_epoch"]["images"] == 100
    assert 0 <= m["test_accuracy"] <= 1  # evaluated anyway
    for name in ("model.keras", "checkpoint.keras", "curves.png", "history.csv", "metrics.json"):
        assert (out / name).is_file(), name
    state = json.loads((out / "run.json").read_text())
    assert state["epochs_completed"] == 1 and state["checkpoint"] == "checkpoint.keras"
    history = json.loads((out / "history.json").read_text())
    assert [(h["epoch"], h["complete"]) for h in history] == [(1, True), (2, False)]

    # --resume: from the checkpoint of epoch 1, the same split and seed, up to epoch 3
    state = runfolder.load_run(out)
    config = runfolder.resume_config(state, TrainSettings(batch_size=50))
    resumed = Recorder()
    result = trainer.train(config, data, out, events=resumed, resume_state=state)
    assert not result.interrupted
    assert [c[1] for c in resumed.kinds("epoch_start")] == [2, 3]
    assert any("resuming from" in c[1] for c in resumed.kinds("note"))
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 3 and m["resumed_from_epoch"] == 1 and m["seed"] == 5
    assert m["train_images"] == 270
    history = json.loads((out / "history.json").read_text())
    assert [(h["epoch"], h["complete"]) for h in history] == [(1, True), (2, True), (3, True)]
    assert not (out / "checkpoint.keras").exists()
    assert json.loads((out / "run.json").read_text())["checkpoint"] == "model.keras"

    # a finished run needs a larger --epochs; other settings may not change
    with pytest.raises(UsageError, match="already trained 3 epochs") as err:
        runfolder.resume_config(runfolder.load_run(out), TrainSettings())
    assert str(err.value) == (
        "the run has already trained 3 epochs; pass `epochs` N with N > 3 to train more"
    )
    with pytest.raises(UsageError, match="`batch_size` 64 differs from the 50") as err:
        runfolder.resume_config(runfolder.load_run(out), TrainSettings(epochs=5, batch_size=64))
    assert str(err.value) == (
        "`resume` continues the run with its own settings: `batch_size` 64 differs from the 50 "
        "it was started with (drop the option, or start a new run with `out`)"
    )
    assert runfolder.resume_config(runfolder.load_run(out), TrainSettings(epochs=4)).epochs == 4


def test_the_data_pipeline_resumes_in_the_same_order():
    x = np.zeros((10, 32, 32, 3), np.uint8)
    y = np.arange(10, dtype=np.uint8)

    def labels(first_epoch, epochs):
        ds = pipeline.train_dataset(
            x, y, batch_size=4, seed=3, first_epoch=first_epoch, epochs=epochs, augment=False
        )
        batches = [b[1].numpy() for b in ds]
        assert all(b.dtype == np.int32 for b in batches)
        return batches

    full = labels(0, 3)
    assert len(full) == 3 * 3  # ceil(10 / 4) batches per epoch
    epochs = [np.concatenate(full[i : i + 3]) for i in (0, 3, 6)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))  # every image once per epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled
    np.testing.assert_array_equal(np.concatenate(labels(1, 3)), np.concatenate(epochs[1:]))


def test_augmentation_flips_and_shifts_with_reflected_borders():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    seed = tf.constant([1, 2], tf.int64)
    out = pipeline.augment_batch(tf.constant(images), seed).numpy()
    again = pipeline.augment_batch(tf.constant(images), seed).numpy()
    np.testing.assert_array_equal(out, again)  # stateless: the seed decides
    assert out.dtype == np.uint8 and out.shape == images.shape
    m = pipeline.MAX_SHIFT
    seen_shift = seen_flip = False
    for src, got in zip(images, out, strict=True):
        matches = []
        for flip in (False, True):
            base = src[:, ::-1] if flip else src
            padded = np.pad(base, ((m, m), (m, m), (0, 0)), mode="reflect")
            for dy in range(2 * m + 1):
                for dx in range(2 * m + 1):
                    if np.array_equal(padded[dy : dy + 32, dx : dx + 32], got):
                        matches.append((flip, dy - m, dx - m))
        assert matches, "not a flip + shift of its input"
        flip, dy, dx = matches[0]
        seen_flip |= flip
        seen_shift |= (dy, dx) != (0, 0)
    assert seen_flip and seen_shift


def test_sigint_sets_the_flag_then_aborts():
    stop = StopRequest()
    told = []
    with sigint_stops(stop, on_first=lambda: told.append(1)):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and told == [1]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- models


def test_classic_is_the_keras_example_network():
    from convkit.arithmetic.spec import parse_spec

    model, added = models.build_classifier(
        parse_spec(model_spec_text("classic", 10)), 10, (32, 32, 3)
    )
    assert added == []
    assert model.count_params() == 1_250_858  # as the Keras example's model.summary() says
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]


@pytest.mark.parametrize(
    ("spec", "added", "last"),
    [
        (
            "conv2d(8, 3, activation=relu) maxpool2d(2)",
            ["flatten", "dense(10, activation=softmax)"],
            "Dense",
        ),
        ("conv2d(8, 3) globalaveragepooling2d", ["dense(10, activation=softmax)"], "Dense"),
        (
            "conv2d(8, 3) flatten dense(32, activation=relu)",
            ["dense(10, activation=softmax)"],
            "Dense",
        ),
        ("conv2d(8, 3) flatten dense(10)", ["softmax"], "Activation"),
        ("conv2d(8, 3) flatten dense(10, activation=softmax)", [], "Dense"),
        ("input((32, 32, 3)) conv2d(8, 3) flatten dense(10) softmax", [], "Activation"),
    ],
)
def test_the_head_is_added_when_missing(spec, added, last):
    from convkit.arithmetic.spec import parse_spec

    model, got = models.build_classifier(parse_spec(spec), 10, (32, 32, 3))
    assert got == added
    assert model.output_shape == (None, 10) and model.input_shape == (None, 32, 32, 3)
    assert type(model.layers[-1]).__name__ == last
    assert type(model.layers[1]).__name__ == "Rescaling"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "conv2d(8, 3) flatten dense(5, activation=softmax)",
            r"the spec ends in a softmax over \(5,\) outputs, but the data has 10 classes: "
            r"end with dense\(10, activation=softmax\)",
        ),
        (
            "input((28, 28, 1)) conv2d(8, 3)",
            "CIFAR-10 images are 32x32x3, the spec's input is 28x28x1",
        ),
        (
            "conv2d(8, 40)",
            r"Keras cannot apply conv2d\(8, 40\) to shape 32x32x3: Computed output size would "
            "be zero or negative",
        ),
    ],
)
def test_impossible_specs(spec, message):
    from convkit.arithmetic.spec import parse_spec

    with pytest.raises(SpecError, match=message):
        models.build_classifier(parse_spec(spec), 10, (32, 32, 3), images="CIFAR-10 images")


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "`epochs` must be at least 1, got 0"),
        ({"batch_size": 0}, "`batch_size` must be at least 1, got 0"),
        ({"val_split": 0.0}, "`val_split` must be between 0 and 1 (exclusive), got 0.0"),
        ({"val_split": 1.0}, "`val_split` must be between 0 and 1 (exclusive), got 1.0"),
        ({"val_split": float("nan")}, "`val_split` must be between 0 and 1 (exclusive), got nan"),
        ({"learning_rate": -1.0}, "`learning_rate` must be a positive number, got -1.0"),
        (
            {"limit": 1},
            "`limit` must be at least 2 (one training and one validation image), got 1",
        ),
        ({"seed": -3}, "`seed` must be between 0 and 2147483647, got -3"),
        (
            {"model": "resnet"},
            "unknown `model` 'resnet' (known: small, classic, default, keras-example, keras, "
            "cifar10-cnn, cifar10_cnn; or give `spec`)",
        ),
    ],
)
def test_nonsense_settings(change, message):
    with pytest.raises(UsageError) as err:
        TrainConfig(**change)
    assert str(err.value) == message


def test_split_indices():
    train, val = split_indices(100, val_split=0.2, limit=None, seed=1)
    assert len(train) == 80 and len(val) == 20 and not set(train) & set(val)
    again = split_indices(100, val_split=0.2, limit=None, seed=1)
    np.testing.assert_array_equal(train, again[0])
    train, val = split_indices(100, val_split=0.1, limit=30, seed=1)
    assert len(train) == 27 and len(val) == 3
    train, val = split_indices(100, val_split=0.01, limit=2, seed=1)
    assert len(train) == 1 and len(val) == 1


def test_prepare_out(tmp_path):
    out = runfolder.prepare_out(tmp_path / "a" / "b")
    assert out.is_dir()
    (out / "metrics.json").write_text("{}")
    with pytest.raises(UsageError, match="already holds a training run .*`resume`") as err:
        runfolder.prepare_out(out)
    assert str(err.value) == (
        f"{out} already holds a training run (metrics.json): continue it with `resume` {out}, "
        "choose another `out`, or pass `overwrite`"
    )
    runfolder.prepare_out(out, overwrite=True)
    assert not (out / "metrics.json").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder") as err:  # a usage problem: exit 2
        runfolder.prepare_out(tmp_path / "file")
    assert str(err.value) == f"{tmp_path / 'file'}: `out` exists and is not a folder"
    with pytest.raises(ImageWriteError, match="cannot write") as err:
        runfolder.prepare_out(tmp_path / "file" / "sub")
    assert str(err.value).startswith(f"{tmp_path / 'file' / 'sub'}: cannot write to this folder: ")

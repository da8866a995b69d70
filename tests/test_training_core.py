"""The training and prediction core as a Python user calls it: any image size, the data
checked once, the train-cifar run planned without TensorFlow, and predict's batch on the
executor. References are NumPy and Keras itself, never convkit's own output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import encode

from convkit.engine.executor import BatchOptions
from convkit.errors import DataError, ImageReadError, ModelError, SpecError, UsageError
from convkit.training import runfolder, trainer
from convkit.training.config import TrainConfig, TrainSettings
from convkit.training.data import TrainingData, split_data
from convkit.training.labels import CIFAR10_NAMES, class_names_for
from convkit.training.session import plan_run

# --------------------------------------------------------------------------- the data


def _gray_set(n: int, *, height: int = 12, width: int = 10, seed: int = 0):
    """Three classes a tiny model tells apart at once: dark, mid-gray and bright images."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 3).astype(np.uint8)
    levels = np.array([30, 128, 225])[labels]
    noise = rng.normal(0, 8, (n, height, width, 1))
    images = np.clip(levels[:, None, None, None] + noise, 0, 255).astype(np.uint8)
    return images, labels


def test_training_data_is_checked_when_made():
    x, y = _gray_set(6)
    names = ["dark", "mid", "bright"]
    cases = [
        (
            (x.astype(np.float32), y, x, y, names),
            "`x_train` must be a uint8 array (images, height, width, channels), "
            "got (6, 12, 10, 1) float32",
        ),
        (
            (x, y[:5], x, y, names),
            "`y_train` must be 6 integer labels, one per image, got (5,) uint8",
        ),
        ((x, y, x[:0], y[:0], names), "`x_test` holds no images"),
        (
            (x, y, x, y, names[:2]),
            "`y_train` holds labels 0..2, but there are 2 class names (labels 0..1)",
        ),
        ((x, y, x[:, :8], y, names), "`x_test` images are 8x10x1, the training images 12x10x1"),
        ((x, y, x, y, ["one"]), "`class_names` must name at least 2 classes, got ['one']"),
    ]
    for args, message in cases:
        with pytest.raises(DataError) as err:
            TrainingData(*args)
        assert str(err.value) == message
    data = TrainingData(x, y, x, y, names)
    assert data.image_shape == (12, 10, 1) and data.num_classes == 3


def test_the_split_is_seeded_and_disjoint():
    x, y = _gray_set(40)
    x[:, 0, 0, 0] = np.arange(40)  # each image marked with its index
    data = TrainingData(x, y, x, y, ["dark", "mid", "bright"])
    split = split_data(data, val_split=0.25, limit=None, seed=3)
    seen_train = set(split.x_train[:, 0, 0, 0].tolist())
    seen_val = set(split.x_val[:, 0, 0, 0].tolist())
    assert len(seen_train) == 30 and len(seen_val) == 10
    assert seen_train | seen_val == set(range(40)) and not seen_train & seen_val
    order = np.random.default_rng(3).permutation(40)  # the documented rule, by NumPy
    assert seen_val == set(order[:10].tolist())


# --------------------------------------------------------------------------- any image size


@pytest.mark.keras
def test_training_takes_any_image_size(tmp_path):
    from convkit.training.predict import inspect_model, load_model

    x, y = _gray_set(120, seed=1)
    x_test, y_test = _gray_set(30, seed=2)
    data = TrainingData(x, y, x_test, y_test, ["dark", "mid", "bright"], name="levels")
    config = TrainConfig(
        epochs=3, batch_size=16, seed=2, learning_rate=0.01, spec="conv2d(4, 3) flatten"
    )
    out = runfolder.prepare_out(tmp_path / "run")
    result = trainer.train(config, data, out, plots=False)

    model = load_model(out / "model.keras")
    shape = inspect_model(model)
    assert (shape.height, shape.width, shape.channels, shape.classes) == (12, 10, 1, 3)
    probs = model.predict(x_test.astype(np.float32), verbose=0)  # Keras's own answer
    accuracy = float(np.mean(probs.argmax(1) == y_test))
    assert result.metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert accuracy > 0.9
    assert result.metrics["dataset"] == "levels" and result.metrics["class_names"][2] == "bright"
    assert (out / "labels.txt").read_text() == "dark\nmid\nbright\n"
    assert json.loads((out / "run.json").read_text())["epochs_completed"] == 3


@pytest.mark.keras
def test_a_spec_for_another_image_size_is_refused():
    from convkit.arithmetic.spec import parse_spec
    from convkit.training.models import build_classifier

    with pytest.raises(SpecError, match="the images are 12x10x1, the spec's input is 32x32x3"):
        build_classifier(parse_spec("input((32, 32, 3)) flatten"), 3, (12, 10, 1))


# --------------------------------------------------------------------------- planning a run


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        (
            TrainSettings(model="small", spec="flatten"),
            {},
            "give either `model` or `spec`, not both",
        ),
        (TrainSettings(dataset="mnist"), {}, "unknown dataset 'mnist' (known: cifar10, cifar100)"),
        (TrainSettings(epochs=0), {}, "`epochs` must be at least 1, got 0"),
        (
            TrainSettings(),
            {"resume": "elsewhere", "out": "o"},
            "`resume` DIR writes its results into DIR; leave out `out`",
        ),
        (
            TrainSettings(),
            {"resume": "r", "overwrite": True},
            "`overwrite` cannot be used with `resume`",
        ),
        (TrainSettings(), {"resume": "nowhere"}, "`resume` nowhere: no such folder"),
    ],
)
def test_plan_refuses_before_anything_is_made(settings, where, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as err:
        plan_run(settings, **where)
    assert str(err.value) == message
    assert list(tmp_path.iterdir()) == []


def test_plan_checks_the_spec_against_cifar_images(tmp_path):
    with pytest.raises(SpecError, match="CIFAR-10 images are 32x32x3, the spec's input is 28x28x1"):
        plan_run(TrainSettings(spec="input((28, 28, 1)) flatten"), out=tmp_path / "o")
    with pytest.raises(SpecError, match="the kernel size 40 is larger than the input height 32"):
        plan_run(TrainSettings(spec="conv2d(8, 40)"), out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError) as err:
        plan_run(TrainSettings(), out=tmp_path / "file")
    assert str(err.value) == f"{tmp_path / 'file'}: `out` exists and is not a folder"
    assert err.value.exit_code == 2


def test_resume_holds_the_settings_of_the_run(tmp_path):
    state = runfolder.RunState(
        config=TrainConfig(epochs=2, batch_size=50, learning_rate=0.01, seed=5),
        seed=5,
        source=None,
        dataset="cifar10",
        class_names=list(CIFAR10_NAMES),
        epochs_completed=2,
        checkpoint="model.keras",
    )
    runfolder.write_json(tmp_path / "run.json", state.to_json())
    plan = plan_run(TrainSettings(epochs=4, batch_size=50, model="default"), resume=tmp_path)
    assert plan.config.epochs == 4 and plan.config.learning_rate == 0.01
    assert plan.state.seed == 5 and plan.out == tmp_path and not plan.created
    with pytest.raises(UsageError) as err:
        plan_run(TrainSettings(epochs=4, learning_rate=0.1), resume=tmp_path)
    assert str(err.value) == (
        "`resume` continues the run with its own settings: `learning_rate` 0.1 differs from "
        "the 0.01 it was started with (drop the option, or start a new run with `out`)"
    )
    with pytest.raises(UsageError) as err:
        plan_run(TrainSettings(epochs=1), resume=tmp_path)
    assert str(err.value) == (
        "the run has already trained 2 epochs, more than `epochs` 1; pass `epochs` N with N > 2 "
        "to train more"
    )


# --------------------------------------------------------------------------- class names


def test_class_names_of_a_model(tmp_path):
    model = tmp_path / "model.keras"
    assert class_names_for(model, 10) == (
        list(CIFAR10_NAMES),
        "no labels.txt beside the model: assuming CIFAR-10's classes",
    )
    assert class_names_for(model, 3)[0] == ["class 0", "class 1", "class 2"]
    (tmp_path / "labels.txt").write_text("a\nb\n\nc\n")
    assert class_names_for(model, 3) == (["a", "b", "c"], None)
    listed = tmp_path / "names.json"
    listed.write_text('["x", "y"]')
    with pytest.raises(ModelError) as err:
        class_names_for(model, 3, listed)
    assert str(err.value) == f"{listed}: 2 class names for a model with 3 outputs"


# --------------------------------------------------------------------------- predict's batch


def _sources(tmp_path, colours):
    from convkit.image.sources import collect_sources

    paths = []
    for i, colour in enumerate(colours):
        path = tmp_path / f"{i:02d}.png"
        if colour is None:
            path.write_bytes(b"\x89PNG broken")
        else:
            bgr = np.zeros((16, 16, 3), np.uint8)
            bgr[:] = colour[::-1]
            path.write_bytes(encode(bgr))
        paths.append(str(path))
    return collect_sources(paths).sources


@pytest.mark.keras
@pytest.mark.parametrize("jobs", [1, 3])
def test_classify_answers_every_image_in_order(tiny_classifier, tmp_path, jobs):
    from convkit.training.predict import open_classifier

    colours = [(250, 10, 10), (10, 250, 10), None, (10, 10, 250), (200, 180, 0)]
    sources = _sources(tmp_path, colours)
    classifier = open_classifier(tiny_classifier.parent, top_k=2, max_memory=3 << 30)
    assert classifier.class_names == ["red", "green", "blue"] and classifier.note is None
    assert classifier.max_memory == 3 << 30  # what a cluster's workers load the model with
    report = classifier.classify(sources, BatchOptions(jobs=jobs), batch=2)
    assert report.inputs == 5 and report.failed == 1 and not report.stopped_early
    assert isinstance(report.errors[0], ImageReadError)
    assert str(report.errors[0]).startswith(f"{sources[2].display}: ")
    assert report.results[2] is None
    for colour, source, result in zip(colours, sources, report.results, strict=True):
        if colour is None:
            continue
        logits = np.array(colour, np.float64) / 64  # what the model computes, by NumPy
        expected = np.exp(logits - logits.max())
        expected /= expected.sum()
        order = np.argsort(-expected, kind="stable")[:2]
        assert result.path == source.display
        assert [p["class"] for p in result.predictions] == [
            ["red", "green", "blue"][i] for i in order
        ]
        got = [p["probability"] for p in result.predictions]
        np.testing.assert_allclose(got, expected[order], atol=2e-6)


@pytest.mark.keras
def test_classify_fail_fast_stops_new_work(tiny_classifier, tmp_path):
    from convkit.training.predict import open_classifier

    sources = _sources(tmp_path, [(250, 0, 0), None, (0, 250, 0), (0, 0, 250)])
    report = open_classifier(tiny_classifier).classify(
        sources, BatchOptions(jobs=1, fail_fast=True)
    )
    assert report.failed == 1 and report.stopped_early
    assert report.results[0].predictions[0]["class"] == "red"
    assert report.results[2:] == [None, None]


def test_top_k_is_checked_before_the_model_is_loaded(tmp_path):
    from convkit.training.predict import open_classifier

    with pytest.raises(UsageError) as err:
        open_classifier(tmp_path / "missing.keras", top_k=0)
    assert str(err.value) == "`top_k` must be at least 1, got 0"
    with pytest.raises(ModelError) as err:
        open_classifier(tmp_path / "missing.keras")
    assert str(err.value) == f"{tmp_path / 'missing.keras'}: no such file or directory"

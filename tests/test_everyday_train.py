"""Issue 10 for ``train-cifar`` and ``predict``, through the CLI in a real subprocess:
predict's JSON contract (a list of per-input records, failures included; ``--jsonl``),
``--dry-run``, its usage messages; train-cifar's ``--json`` naming its folder and files;
``--resume`` of a run killed during its final evaluation; ``--restore-best``; the pictures."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cifar_fixtures as cf
import numpy as np
import pytest
from conftest import encode

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small untrained classifier (32x32x3 -> 10, softmax), saved with its labels, and
    four pictures of it: three good PNG files and a broken one, in one folder."""
    from convkit.heavy import import_keras

    keras = import_keras()
    root = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    folder = root / "run"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(folder / "model.keras")
    (folder / "labels.txt").write_text("\n".join(n.upper() for n in cf.CLASS_NAMES) + "\n")
    pictures = root / "pictures"
    pictures.mkdir()
    x, _ = cf.make_images(3, seed=5)
    paths = []
    for i, image in enumerate(x):
        path = pictures / f"{i}.png"
        path.write_bytes(encode(np.ascontiguousarray(image[:, :, ::-1])))
        paths.append(path)
    broken = pictures / "3_broken.png"
    broken.write_bytes(paths[0].read_bytes()[:60])
    # The reference: the model called on the pixels as Keras takes them (RGB, 0..1).
    probs = np.asarray(model(x.astype(np.float32) / 255.0))
    return folder, paths, broken, probs


def _top(probs_row: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(-probs_row, kind="stable")[:k]
    return [(cf.CLASS_NAMES[i].upper(), float(probs_row[i])) for i in order]


def _check_record(record: dict, path: Path, probs_row: np.ndarray) -> None:
    assert record["path"] == str(path)
    got = [(p["class"], p["probability"]) for p in record["predictions"]]
    want = _top(probs_row)
    assert [c for c, _ in got] == [c for c, _ in want]
    assert [p for _, p in got] == pytest.approx([p for _, p in want], abs=1e-5)


def test_predict_json_is_always_a_list_of_records(tiny, run_cli):
    folder, paths, broken, probs = tiny
    one = run_cli(["predict", folder, paths[0], "--json"])
    assert one.exit_code == 0, one
    records = json.loads(one.stdout)
    assert isinstance(records, list) and len(records) == 1
    _check_record(records[0], paths[0], probs[0])

    # A folder with a failure among its images: every input has its record, in input order.
    many = run_cli(["predict", folder, paths[0].parent, "--json"])
    assert many.exit_code == 1, many
    records = json.loads(many.stdout)
    assert [r["path"] for r in records] == [str(p) for p in (*paths, broken)]
    for record, path, row in zip(records[:3], paths, probs, strict=True):
        _check_record(record, path, row)
    error = records[3]["error"]
    assert set(records[3]) == {"path", "error"}
    assert f"convkit: error: {broken}: {error}" in many.stderr_lines


def test_predict_jsonl_streams_the_same_records(tiny, run_cli):
    folder, paths, broken, probs = tiny
    result = run_cli(["predict", folder, paths[1], broken, paths[0], "--jsonl", "-j", "1"])
    assert result.exit_code == 1, result
    lines = result.text.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    by_path = {r["path"]: r for r in records}
    _check_record(by_path[str(paths[1])], paths[1], probs[1])
    _check_record(by_path[str(paths[0])], paths[0], probs[0])
    assert set(by_path[str(broken)]) == {"path", "error"}
    assert "Predictions" not in result.text  # no table after the stream


def test_predict_dry_run_checks_all_and_reads_no_image(tiny, run_cli, tmp_path):
    folder, paths, broken, _ = tiny
    result = run_cli(["predict", folder, paths[0], broken, "--dry-run"])
    assert result.exit_code == 0, result  # the broken image is not read
    assert result.text.splitlines() == [str(paths[0]), str(broken)]
    assert result.stderr_lines[0] == (
        f"convkit: note: would classify 2 inputs with {folder / 'model.keras'} "
        "(32x32x3 input, 10 classes); nothing was read"
    )
    # ... then the class names and how images would be prepared, from model.keras itself
    assert result.stderr_lines[1].startswith("convkit: note: the classes: H-STRIPES, ")
    assert len(result.stderr_lines) == 3 and "32x32" in result.stderr_lines[2]
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    bad = run_cli(["predict", folder, paths[0], "--dry-run", "--labels", labels])
    assert bad.exit_code == 1 and bad.stdout == b"", bad
    assert bad.stderr_lines == [
        f"convkit: error: {labels}: 3 class names for a model with 10 outputs"
    ]
    missing = run_cli(["predict", tmp_path / "none.keras", paths[0], "--dry-run"])
    assert missing.exit_code == 1 and missing.stdout == b"", missing
    assert missing.stderr_lines == [
        f"convkit: error: {tmp_path / 'none.keras'}: no such file or directory"
    ]


USAGE = "convkit predict MODEL IMAGE... (MODEL: a .keras file or a train-cifar results folder)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], f"give a model and the images to classify: {USAGE}"),
        (
            ["photo.jpg"],
            "photo.jpg is the only argument, and predict takes a model first, then the "
            f"images: {USAGE}",
        ),
        (["m.keras"], f"no images to classify: give them after the model: {USAGE}"),
    ],
)
def test_predict_says_what_is_missing(args, message, run_cli):
    result = run_cli(["predict", *args])
    assert result.exit_code == 2, result
    assert result.stderr_lines == [f"convkit: error: {message}"]


# --------------------------------------------------------------------------- train-cifar


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return cf.write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=60, test=100, seed=7)


def _train(run_cli, out: Path, data_dir: Path, *extra) -> dict:
    args = ["train-cifar", "--data-dir", data_dir, "--limit", "200", "--batch-size", "50"]
    result = run_cli([*args, "--seed", "2", "--out", out, "--json", "--quiet", *extra], timeout=300)
    assert result.exit_code == 0, result
    return json.loads(result.stdout)


def test_resume_after_a_kill_during_the_final_evaluation(run_cli, data_dir, tmp_path):
    out = tmp_path / "run"
    first = _train(run_cli, out, data_dir, "--epochs", "2")
    # The folder as a kill during the final evaluation leaves it: both epochs trained and
    # checkpointed, no model.keras, no results.
    (out / "model.keras").rename(out / "checkpoint.keras")
    state = json.loads((out / "run.json").read_text())
    state["checkpoint"] = "checkpoint.keras"
    (out / "run.json").write_text(json.dumps(state))
    for name in ("metrics.json", "history.csv", "history.json", "curves.png", "confusion.png"):
        (out / name).unlink()
    result = run_cli(["train-cifar", "--resume", out, "--json"], timeout=300)
    assert result.exit_code == 0, result
    assert (
        "convkit: note: nothing left to train (2 of 2 epochs done): evaluating the last "
        "checkpoint and writing the results"
    ) in result.stderr_lines
    record = json.loads(result.stdout)
    metrics = record["metrics"]
    # The same model on the same test set: the scores of the run that finished.
    for key in ("test_accuracy", "test_loss", "confusion_matrix", "epochs"):
        assert metrics[key] == first["metrics"][key], key
    assert metrics["resumed_from_epoch"] == 2 and metrics["interrupted"] is False
    for name in ("model.keras", "metrics.json", "curves.png", "history.json"):
        assert str(out / name) in record["files"] and (out / name).is_file()
    assert not (out / "checkpoint.keras").exists()
    # Now finished: resuming it again has nothing to do, and says how to train more.
    again = run_cli(["train-cifar", "--resume", out])
    assert again.exit_code == 2, again
    assert again.stderr_lines == [
        "convkit: error: the run has already trained 2 epochs; pass --epochs N with N > 2 "
        "to train more"
    ]


# --------------------------------------------------------------------------- pictures


def _history(train: list[float], val: list[float]):
    from convkit.training.records import EpochRecord

    return [
        EpochRecord(i + 1, 2.0 - a, a, 2.1 - v, v, 1e-3, 1000, 1.0, 1.2)
        for i, (a, v) in enumerate(zip(train, val, strict=True))
    ]


@pytest.mark.parametrize(
    ("train", "val"),
    [
        ([0.22], [0.26]),  # the one-epoch classroom demo
        ([0.12, 0.18, 0.24], [0.16, 0.21, 0.19]),
        ([0.84, 0.88, 0.92, 0.96], [0.82, 0.86, 0.90, 0.94]),
        ([0.10, 0.45, 0.70, 0.90], [0.15, 0.50, 0.72, 0.88]),
    ],
)
def test_curves_labels_collide_with_nothing(train, val):
    """The best-validation label, the legends and the plotted points, as drawn: the label
    inside the accuracy plot and clear of every point and legend; the legends outside the
    plots."""
    from convkit.training.plots import curves_figure

    fig = curves_figure(_history(train, val), "CIFAR-10, model small")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax_loss, ax_acc = fig.axes[:2]
    [label] = [t for t in ax_acc.texts if t.get_text().startswith("best validation")]
    box = label.get_bbox_patch().get_window_extent(renderer)
    assert ax_acc.get_window_extent(renderer).contains(box.x0, box.y0)
    assert ax_acc.get_window_extent(renderer).contains(box.x1, box.y1)
    for ax in (ax_loss, ax_acc):
        legend = ax.get_legend().get_window_extent(renderer)
        assert not legend.overlaps(ax.get_window_extent(renderer))
        assert not legend.overlaps(box)
    steps = np.linspace(1, len(train), 100)  # the curves, not only their points
    curves = [(x, np.interp(x, range(1, len(ys) + 1), ys)) for ys in (train, val) for x in steps]
    points = ax_acc.transData.transform(curves)
    assert not any(box.contains(x, y) for x, y in points)

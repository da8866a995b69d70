"""``convkit train-cifar`` and ``convkit predict`` from the command line: the happy paths, every
refusal as one ``convkit: error:`` line, Ctrl-C in a real process, --resume, and the rule
that checking options imports no TensorFlow."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cifar_fixtures as cf
import numpy as np
import pytest
from conftest import REPO, _clean_env, _run_in_process, encode

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    return cf.write_cifar10(root, form="tar", per_batch=100, test=200, seed=2)


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """One training run through ``main()``, with --json; its folder holds a usable model."""
    out = tmp_path_factory.mktemp("train") / "run"
    result = _run_in_process(
        [
            "train-cifar",
            "--data-dir",
            data_dir,
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--seed",
            "4",
            "--out",
            out,
            "--json",
        ]
    )
    return result, out


@pytest.fixture
def isolated_env(tmp_path):
    """No CONVKIT_DATA, an empty Keras cache: data can only come from --data-dir."""
    return {"CONVKIT_DATA": None, "KERAS_HOME": str(tmp_path / "keras-home")}


# --------------------------------------------------------------------------- train-cifar


def test_train_writes_everything_and_stdout_is_only_json(run):
    result, out = run
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)  # Keras printed nothing on stdout
    metrics = record["metrics"]
    assert metrics["test_accuracy"] > 0.5, metrics
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert record["out"] == str(out)
    assert record["interrupted"] is False and record["failures"] == []
    written = {Path(f).name for f in record["files"]}
    assert written == {"run.json", *(p.name for p in out.iterdir())} - {"checkpoint.keras"}
    assert all(Path(f).parent == out for f in record["files"])
    for name in (
        "model.keras",
        "labels.txt",
        "history.csv",
        "history.json",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "predictions.png",
    ):
        assert (out / name).is_file(), name
    assert "Traceback" not in result.stderr
    lines = result.stderr_lines
    assert any(line.startswith("convkit: epoch 1/4  loss ") for line in lines), lines
    assert any(line.startswith("convkit: epoch 4/4  loss ") for line in lines), lines
    assert any("val_accuracy" in line for line in lines)
    assert lines[-1] == f"convkit: note: results in {out}"


def test_out_that_already_holds_a_run(run, data_dir, cli_error):
    _, out = run
    result = _run_in_process(["train-cifar", "--data-dir", data_dir, "--out", out])
    cli_error(result, 2, rf"{out} already holds a training run .*--resume {out}")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0$"),
        (["--epochs", "-2"], "--epochs must be at least 1, got -2$"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0$"),
        (["--val-split", "0"], r"--val-split must be between 0 and 1 \(exclusive\), got 0"),
        (["--val-split", "1"], r"--val-split must be between 0 and 1 \(exclusive\), got 1"),
        (["--val-split", "1.5"], r"--val-split must be between 0 and 1 \(exclusive\), got 1.5"),
        (["--val-split", "-0.1"], r"--val-split must be between 0 and 1 \(exclusive\), got -0.1"),
        (["--lr", "0"], "--lr must be a positive number, got 0.0$"),
        (["--lr", "nan"], "--lr must be a positive number, got nan$"),
        (["--limit", "1"], r"--limit must be at least 2 \(one training and one validation"),
        (
            ["--model", "resnet"],
            r"unknown --model 'resnet' \(known: small, classic, .*give --spec\)",
        ),
        (["--dataset", "mnist"], r"unknown dataset 'mnist' \(known: cifar10, cifar100\)$"),
        (["--model", "small", "--spec", "flatten"], "give either --model or --spec, not both$"),
        (["--spec", "layers.spec"], "--spec layers.spec: no such spec file$"),
        (["--resume", "nowhere"], "--resume nowhere: no such folder$"),
        (["--resume", "r", "--overwrite"], "--overwrite cannot be used with --resume$"),
        (
            ["--resume", "r", "--out", "o"],
            "--resume DIR writes its results into DIR; leave out --out",
        ),
    ],
)
def test_nonsense_values(args, reason, cli_error, tmp_path):
    out = [] if "--resume" in args else ["--out", tmp_path / "o"]
    (tmp_path / "r").mkdir()
    result = _run_in_process(["train-cifar", *args, *out], cwd=tmp_path)
    cli_error(result, 2, reason)
    assert not (tmp_path / "o").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("conv2d(8, 3) maxpool2d(2", "expected ',' or ')' to close maxpool2d(, found the end"),
        ("conv2d(8, 3) maxpol2d(2)", "unknown layer 'maxpol2d' (did you mean 'maxpool2d'?)"),
        ("conv2d(8, 40)", "the kernel size 40 is larger than the input height 32"),
        ("input((28, 28, 1)) flatten dense(10)", "CIFAR-10 images are 32x32x3, the spec's input"),
    ],
)
def test_bad_specs_are_refused_before_training(spec, reason, tmp_path, data_dir):
    result = _run_in_process(
        ["train-cifar", "--spec", spec, "--data-dir", data_dir, "--out", tmp_path / "o"]
    )
    assert result.exit_code == 2, result
    assert result.stderr_lines[0].startswith("convkit: error: "), result
    assert "Traceback" not in result.stderr
    assert reason in result.stderr_lines[0], result
    assert not (tmp_path / "o").exists()


def test_spec_from_a_file_gets_its_head(tmp_path, data_dir):
    spec = tmp_path / "tiny.spec"
    spec.write_text("# a tiny stack\nconv2d(8, 3, activation=relu)\nmaxpool2d(4)\n")
    out = tmp_path / "o"
    result = _run_in_process(
        [
            "train-cifar",
            "--spec",
            spec,
            "--data-dir",
            data_dir,
            "--epochs",
            "1",
            "--limit",
            "100",
            "--out",
            out,
            "--json",
        ]
    )
    assert result.exit_code == 0, result
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["model"] == "spec" and "maxpool2d(4)" in metrics["spec"]
    assert metrics["added_layers"] == ["flatten", "dense(10, activation=softmax)"]
    assert "added to the spec: flatten, dense(10, activation=softmax)" in result.stderr


def test_out_that_is_a_file(tmp_path, data_dir, cli_error):
    (tmp_path / "file").write_text("x")
    result = _run_in_process(["train-cifar", "--data-dir", data_dir, "--out", tmp_path / "file"])
    cli_error(result, 2, "--out exists and is not a folder$", path=str(tmp_path / "file"))


def test_out_that_cannot_be_written(tmp_path, data_dir, cli_error):
    (tmp_path / "file").write_text("x")
    result = _run_in_process(
        ["train-cifar", "--data-dir", data_dir, "--out", tmp_path / "file" / "sub"]
    )
    cli_error(result, 1, "cannot write to this folder")


def test_no_data_and_no_download(tmp_path, cli_error, isolated_env):
    result = _run_in_process(
        ["train-cifar", "--no-download", "--out", tmp_path / "o"], env=isolated_env
    )
    line = cli_error(result, 1, "CIFAR-10 not found")
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in line
    assert str(Path(isolated_env["KERAS_HOME"]) / "datasets") in line
    assert not (tmp_path / "o").exists()  # no empty results folder left behind


@pytest.mark.parametrize("damage", ["malicious", "truncated", "partial"])
def test_bad_data(tmp_path, cli_error, damage, isolated_env):
    files = cf.cifar10_files(per_batch=10, test=10)
    marker = tmp_path / "pwned"
    if damage == "malicious":
        files["data_batch_1"] = cf.malicious_pickle(marker)
        reason = "data_batch_1: refused to load"
    elif damage == "truncated":
        files["test_batch"] = files["test_batch"][:1000]
        reason = "test_batch: not a CIFAR batch: corrupt pickle .*truncated"
    else:
        del files["data_batch_2"]
        reason = "incomplete CIFAR-10: missing data_batch_2"
    folder = cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    result = _run_in_process(
        ["train-cifar", "--data-dir", folder, "--out", tmp_path / "o"], env=isolated_env
    )
    cli_error(result, 1, reason)
    assert not marker.exists()


def test_checks_import_no_tensorflow(tmp_path, cli_env):
    """--help and every refusal of options come back without loading TensorFlow or OpenCV."""
    from test_imports import imports_after

    (tmp_path / "file").write_text("x")
    calls = [
        (["train-cifar", "--help"], (0,)),
        (["predict", "--help"], (0,)),
        (["train-cifar", "--epochs", "0"], (2,)),
        (["train-cifar", "--spec", "conv2d(8, 40)", "--out", tmp_path / "o"], (2,)),
        (["train-cifar", "--out", tmp_path / "file"], (2,)),
        (["train-cifar", "--resume", tmp_path / "nowhere"], (2,)),
        (["predict"], (2,)),
        (["predict", "m.keras", "x.png", "--top-k", "0"], (2,)),
    ]
    loaded = imports_after(calls, cwd=tmp_path, env=cli_env())
    assert not loaded & {"tensorflow", "keras", "tf_keras", "cv2"}, loaded


def test_ctrl_c_stops_cleanly_writes_everything_and_resume_continues(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "convkit", "train-cifar", "--data-dir", str(data_dir)]
        + ["--epochs", "400", "--limit", "300", "--seed", "1", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_clean_env(),
        cwd=REPO,
        text=True,
    )
    seen = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("convkit: epoch 2/400"):
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, seen
        stdout, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopping after this batch" in stderr
    assert f"convkit train-cifar --resume {out}" in stderr
    assert "Training summary" in stdout and "test" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs"] < 400
    for name in ("model.keras", "history.csv", "curves.png", "confusion.png", "predictions.png"):
        assert (out / name).is_file(), name
    done = json.loads((out / "run.json").read_text())["epochs_completed"]
    assert done >= 2

    result = _run_in_process(
        ["train-cifar", "--resume", out, "--epochs", str(done + 1), "--json", "--quiet"]
    )
    assert result.exit_code == 0, result
    resumed = json.loads(result.stdout)["metrics"]
    assert resumed["epochs"] == done + 1 and resumed["resumed_from_epoch"] == done
    assert resumed["interrupted"] is False and resumed["seed"] == 1
    assert result.stderr_lines == []  # --quiet
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, done + 2))


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Test pictures of known classes, 32x32 and enlarged, as PNG files (BGR on disk)."""
    import cv2

    folder = tmp_path_factory.mktemp("pictures")
    x, y = cf.make_images(20, seed=123)
    paths = []
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        if i % 2:
            image = cv2.resize(image, (80, 64), interpolation=cv2.INTER_CUBIC)
        path = folder / f"{i:02d}_{cf.CLASS_NAMES[label]}.png"
        path.write_bytes(encode(np.ascontiguousarray(image[:, :, ::-1])))
        paths.append(path)
    return folder, paths, y


def test_predict_classifies_the_pictures(run, pictures):
    _, out = run
    folder, paths, labels = pictures
    result = _run_in_process(["predict", out / "model.keras", folder, "--json", "--top-k", "2"])
    assert result.exit_code == 0, result
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    for row in rows:
        assert len(row["predictions"]) == 2
        p1, p2 = (p["probability"] for p in row["predictions"])
        assert 1 >= p1 >= p2 >= 0
    right = sum(
        row["predictions"][0]["class"] == cf.CLASS_NAMES[label]
        for row, label in zip(rows, labels, strict=True)
    )
    assert right >= 10, rows  # 20 pictures, 10 classes: chance would be 2
    assert result.stderr_lines == ["convkit: 20 images, 20 classified"]


def test_predict_table_from_the_results_folder(run, pictures):
    _, out = run
    _, paths, _ = pictures
    result = _run_in_process(["predict", out, paths[0], paths[1]])
    assert result.exit_code == 0, result
    assert "Predictions" in result.text and paths[1].name in result.text
    assert "next likeliest" in result.text


def test_predict_one_image_from_stdin(run, pictures):
    _, out = run
    _, paths, _ = pictures
    result = _run_in_process(["predict", out, "-", "--json"], input=paths[2].read_bytes())
    assert result.exit_code == 0, result
    [row] = json.loads(result.stdout)
    assert row["path"] == "-" and len(row["predictions"]) == 3


def test_predict_goes_on_past_a_bad_image(run, pictures, tmp_path, cli_error):
    _, out = run
    _, paths, _ = pictures
    bad = tmp_path / "broken.png"
    bad.write_bytes(paths[0].read_bytes()[:60])
    result = _run_in_process(["predict", out, paths[0], bad, paths[1], "--json"])
    assert result.exit_code == 1, result
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(paths[0]), str(bad), str(paths[1])]
    assert "predictions" in rows[0] and "predictions" in rows[2] and "error" in rows[1]
    cli_error(result, 1, "cannot decode|truncated|corrupt", path=str(bad), only_line=False)


def test_predict_without_labels_beside_the_model(run, pictures, tmp_path):
    _, out = run
    _, paths, _ = pictures
    lonely = tmp_path / "m.keras"
    lonely.write_bytes((out / "model.keras").read_bytes())
    result = _run_in_process(["predict", lonely, paths[0], "--json", "--top-k", "10"])
    assert result.exit_code == 0, result
    assert "assuming" not in result.stderr  # the names are in the model file itself
    names = (out / "labels.txt").read_text().split()
    assert {p["class"] for p in json.loads(result.stdout)[0]["predictions"]} == set(names)
    labels = tmp_path / "names.txt"
    labels.write_text("\n".join(n.upper() for n in names))
    result = _run_in_process(["predict", lonely, paths[0], "--json", "--labels", labels])
    top = json.loads(result.stdout)[0]["predictions"][0]["class"]
    assert top.isupper()


def _keras_model(kind: str, path: Path) -> Path:
    from convkit.heavy import import_keras

    keras = import_keras()
    if kind == "flat":
        inputs = keras.Input((784,))
        outputs = keras.layers.Dense(10, activation="softmax")(inputs)
    elif kind == "lambda":
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Lambda(lambda t: t * 2)(inputs)
        outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    else:  # gray 28x28, no softmax: predict still gives probabilities
        inputs = keras.Input((28, 28, 1))
        outputs = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    with warnings.catch_warnings():  # Keras's saving vs NumPy 2's __array__ deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "no such file or directory"),
        ("text", "cannot load the model: not a Keras model file"),
        ("zip", "cannot load the model"),
        ("flat", r"wrong input shape \(784\)"),
        ("lambda", "refused in safe mode"),
    ],
)
def test_predict_refuses_bad_models(kind, reason, tmp_path, pictures, cli_error):
    _, paths, _ = pictures
    model = tmp_path / "model.keras"
    if kind == "text":
        model.write_text("not a model")
    elif kind == "zip":
        import zipfile

        with zipfile.ZipFile(model, "w") as z:
            z.writestr("hello.txt", "hi")
    elif kind in ("flat", "lambda"):
        _keras_model(kind, model)
    result = _run_in_process(["predict", model, paths[0]])
    cli_error(result, 1, reason)


def test_predict_with_a_gray_model_without_softmax(tmp_path, pictures):
    _, paths, _ = pictures
    model = _keras_model("gray", tmp_path / "gray.keras")
    result = _run_in_process(["predict", model, paths[1], "--json", "--top-k", "4"])
    assert result.exit_code == 0, result
    probs = [p["probability"] for p in json.loads(result.stdout)[0]["predictions"]]
    assert sum(probs) == pytest.approx(1, abs=1e-5)
    assert "classes by number" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], r"give a model and the images to classify: convkit predict MODEL IMAGE\.\.\."),
        (["m.keras"], r"no images to classify: give them after the model"),
        (["m.keras", "x.png", "--top-k", "0"], "--top-k must be at least 1, got 0$"),
    ],
)
def test_predict_usage(args, reason, cli_error):
    cli_error(_run_in_process(["predict", *args]), 2, reason)


def test_prepare_image_matches_training():
    from convkit.training.predict import ModelShape, prepare_image

    shape = ModelShape(32, 32, 3, 10, 1.0)
    bgr = np.zeros((64, 64, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's order
    out = prepare_image(bgr, shape)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [200, 0, 0])  # RGB, as CIFAR
    bgra = np.dstack([bgr, np.full((64, 64), 7, np.uint8)])
    np.testing.assert_allclose(prepare_image(bgra, shape), out)  # alpha dropped
    gray = np.full((16, 16), 100, np.uint16) * 257
    np.testing.assert_allclose(prepare_image(gray, shape), 100, atol=1e-3)  # 16-bit, gray
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    np.testing.assert_allclose(prepare_image(checker, shape), 127.5)  # area: averages 2x2
    wide = bgr.astype(np.uint16) * 257  # the same picture, 16-bit
    np.testing.assert_allclose(prepare_image(wide, shape), out, atol=1e-4)
    small = ModelShape(8, 8, 1, 10, 1 / 255)
    assert prepare_image(bgr, small).shape == (8, 8, 1)
    assert prepare_image(bgr, small).max() <= 1.0
    import cv2  # the gray conversion and area resize, by OpenCV itself

    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32)
    expected = cv2.resize(gray, (8, 8), interpolation=cv2.INTER_AREA) / 255
    np.testing.assert_allclose(prepare_image(photo, small)[:, :, 0], expected, rtol=1e-6)

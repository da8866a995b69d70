"""Looking inside trained models: ``run --model``, ``kernels`` and ``explain`` (Grad-CAM).

References are independent of convkit's code: Keras itself (``keras.Model(inputs,
layer.output)`` on the model loaded with plain Keras, ``layer.get_weights()``), NumPy (a
Grad-CAM worked out by hand for a one-convolution model with known weights), and the
meaning of Grad-CAM (a model trained in the test to tell a bright square from noise must
look at the square). Every model is tiny and saved to ``.keras``; each is tried built as
Sequential and as functional.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def keras():
    from convkit.heavy import import_keras

    return import_keras()


def _save(model, path):
    model.save(path)
    return path


def _stack(keras, kind: str, layers, shape):
    """The same layers as a Sequential or a functional model."""
    if kind == "sequential":
        return keras.Sequential([keras.Input(shape), *layers])
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def _write(path, image):
    ok, data = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


# --------------------------------------------------------------------------- run --model


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_run_model_maps_equal_the_models_own_intermediate_outputs(keras, kind, tmp_path, run_main):
    keras.utils.set_random_seed(1)
    layers = [
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.MaxPooling2D(name="p1"),
        keras.layers.Conv2D(3, 3, name="c2"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ]
    path = _save(_stack(keras, kind, layers, (12, 12, 3)), tmp_path / "m.keras")
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    _write(tmp_path / "x.png", image)

    result = run_main(["run", "--model", path, tmp_path / "x.png", "-d", tmp_path / "o", "--raw"])
    assert result.exit_code == 0, result

    loaded = keras.saving.load_model(path, safe_mode=True)
    x = (image[:, :, ::-1].astype(np.float32) / 255)[np.newaxis]  # RGB, 0..1 (no Rescaling)
    for name in ("c1", "p1", "c2", "flat", "head"):
        probe = keras.Model(loaded.inputs, loaded.get_layer(name).output)
        expected = np.asarray(probe(x))[0]
        written = np.load(tmp_path / "o" / f"x_{name}.npy", allow_pickle=False)
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-6)
    # The first convolution's montage, and the maps of the kept layers only with --layers.
    assert (tmp_path / "o" / "x_c1-montage.png").is_file()
    again = run_main(
        ["run", "--model", path, tmp_path / "x.png", "-d", tmp_path / "o2", "--layers", "c2"]
    )
    assert again.exit_code == 0, again
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == [
        "x_c2-1.png",
        "x_c2-2.png",
        "x_c2-3.png",
        "x_c2-montage.png",
    ]


def test_run_model_refuses_spec_options_and_unknown_layers(keras, tmp_path, run_main):
    layers = [
        keras.layers.Conv2D(2, 3, name="c"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, name="dense"),
    ]
    path = _save(_stack(keras, "functional", layers, (8, 8, 1)), tmp_path / "m.keras")
    _write(tmp_path / "x.png", np.zeros((8, 8), np.uint8))
    both = run_main(
        ["run", "--model", path, "--spec", "conv2d(1, 3)", tmp_path / "x.png", "-d", tmp_path]
    )
    assert both.exit_code == 2 and "drop --spec" in both.stderr
    nope = run_main(
        ["run", "--model", path, "--layers", "nope", tmp_path / "x.png", "-d", tmp_path]
    )
    assert nope.exit_code == 2
    assert "--layers: no layer named 'nope'" in nope.stderr and "c, flatten, dense" in nope.stderr


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_kernels_raw_is_what_the_layers_hold(keras, kind, tmp_path, run_main):
    keras.utils.set_random_seed(2)
    layers = [
        keras.layers.Conv2D(5, 3, name="first"),
        keras.layers.Conv2D(7, 2, use_bias=False, name="second"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ]
    path = _save(_stack(keras, kind, layers, (10, 10, 3)), tmp_path / "m.keras")
    result = run_main(["kernels", path, "-d", tmp_path / "k", "--raw"])
    assert result.exit_code == 0, result
    loaded = keras.saving.load_model(path, safe_mode=True)
    first = loaded.get_layer("first").get_weights()
    np.testing.assert_array_equal(np.load(tmp_path / "k" / "first-kernel.npy"), first[0])
    np.testing.assert_array_equal(np.load(tmp_path / "k" / "first-bias.npy"), first[1])
    (second,) = loaded.get_layer("second").get_weights()
    np.testing.assert_array_equal(np.load(tmp_path / "k" / "second-kernel.npy"), second)
    assert not (tmp_path / "k" / "second-bias.npy").exists()
    for name in ("first", "second"):
        picture = cv2.imread(str(tmp_path / "k" / f"{name}-kernels.png"))
        assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 100
    listed = result.text.splitlines()
    assert str(tmp_path / "k" / "first-kernels.png") in listed
    only = run_main(["kernels", path, "-d", tmp_path / "k2", "--layers", "second"])
    assert only.exit_code == 0 and sorted(p.name for p in (tmp_path / "k2").iterdir()) == [
        "second-kernels.png"
    ]


# --------------------------------------------------------------------------- Grad-CAM, by hand


def _one_conv_model(keras, kind: str, head: str):
    """Input 6x6x1 -> Conv2D(2, 3) -> Flatten -> Dense(3) with a softmax (its own
    activation, or a separate layer), with known weights."""
    rng = np.random.default_rng(7)
    conv = keras.layers.Conv2D(2, 3, name="conv")
    dense_act = "softmax" if head == "dense" else None
    layers = [conv, keras.layers.Flatten(), keras.layers.Dense(3, activation=dense_act, name="d")]
    if head == "activation":
        layers.append(keras.layers.Activation("softmax", name="soft"))
    model = _stack(keras, kind, layers, (6, 6, 1))
    kernel = rng.normal(size=(3, 3, 1, 2)).astype(np.float32)
    bias = rng.normal(size=(2,)).astype(np.float32) * 0.1
    weights = rng.normal(size=(32, 3)).astype(np.float32)
    dense_bias = rng.normal(size=(3,)).astype(np.float32)
    model.get_layer("conv").set_weights([kernel, bias])
    model.get_layer("d").set_weights([weights, dense_bias])
    return model, (kernel, bias, weights, dense_bias)


def _numpy_gradcam(x: np.ndarray, params, c: int) -> np.ndarray:
    """Grad-CAM of class ``c`` for the one-conv model, by hand: the logit is linear in the
    conv output A, so d logit_c / d A is the Dense column reshaped to A's shape."""
    kernel, bias, weights, _ = params
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3))  # (4, 4, 3, 3)
    a = np.einsum("ijkl,klm->ijm", windows, kernel[:, :, 0, :]) + bias  # (4, 4, 2)
    grads = weights[:, c].reshape(4, 4, 2)
    alpha = grads.mean(axis=(0, 1))
    return np.maximum((a * alpha).sum(axis=2), 0)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("head", ["dense", "activation"])
def test_gradcam_equals_a_numpy_computation(keras, kind, head, tmp_path, run_main):
    model, params = _one_conv_model(keras, kind, head)
    path = _save(model, tmp_path / "m.keras")
    image = np.random.default_rng(3).integers(0, 256, (6, 6), dtype=np.uint8)
    _write(tmp_path / "x.png", image)
    x = image.astype(np.float64) / 255  # no Rescaling layer: the model takes 0..1
    for c in range(3):
        result = run_main(
            [
                "explain",
                path,
                tmp_path / "x.png",
                "-d",
                tmp_path / "o",
                "--raw",
                "--class",
                f"class {c}",
                "--json",
            ]  # fmt: skip
        )
        assert result.exit_code == 0, result
        expected = cv2.resize(
            _numpy_gradcam(x, params, c).astype(np.float32), (6, 6), interpolation=cv2.INTER_LINEAR
        )
        raw = np.load(tmp_path / "o" / f"x_gradcam-class_{c}.npy", allow_pickle=False)
        assert raw.dtype == np.float32 and raw.shape == (6, 6)
        np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=1e-5)
        (record,) = json.loads(result.text)
        (explained,) = record["explained"]
        kernel, bias, weights, dense_bias = params
        windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3))
        a = np.einsum("ijkl,klm->ijm", windows, kernel[:, :, 0, :]) + bias
        z = a.reshape(-1) @ weights + dense_bias
        probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert explained["class"] == f"class {c}"
        assert explained["probability"] == pytest.approx(probs[c], abs=1e-5)


def test_gradcam_upsamples_to_the_image_resolution(keras, tmp_path, run_main):
    model, params = _one_conv_model(keras, "functional", "dense")
    path = _save(model, tmp_path / "m.keras")
    image = np.random.default_rng(4).integers(0, 256, (30, 45), dtype=np.uint8)
    _write(tmp_path / "big.png", image)
    result = run_main(["explain", path, tmp_path / "big.png", "-d", tmp_path / "o", "--raw"])
    assert result.exit_code == 0, result
    raw = np.load(tmp_path / "o" / "big_gradcam.npy")
    assert raw.shape == (30, 45) and raw.dtype == np.float32 and raw.min() >= 0
    picture = cv2.imread(str(tmp_path / "o" / "big_gradcam.png"))
    assert picture is not None and picture.ndim == 3


# --------------------------------------------------------------------------- Grad-CAM, meaning


def _squares(n: int, rng, size: int = 24, side: int = 6):
    """Noise (0..90), half of the images with a bright square; labels 1 = square."""
    images = rng.integers(0, 90, (n, size, size, 1)).astype(np.uint8)
    labels = np.arange(n) % 2
    boxes = []
    for i in range(n):
        y, x = rng.integers(0, size - side, 2)
        boxes.append((int(y), int(x)))
        if labels[i]:
            images[i, y : y + side, x : x + side] = 255
    return images, labels, boxes


@pytest.fixture(scope="module")
def square_model(keras, tmp_path_factory):
    """A small CNN trained here (seconds) to tell a bright square from noise."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images, labels, _ = _squares(600, rng)
    inputs = keras.Input((24, 24, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32), labels, epochs=6, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("square")
    (folder / "labels.txt").write_text("empty\nsquare\n")
    return _save(model, folder / "model.keras")


def test_gradcam_heat_lies_on_the_square(square_model, tmp_path, run_main):
    rng = np.random.default_rng(99)
    images, labels, boxes = _squares(8, rng)
    ratios = []
    for i in np.flatnonzero(labels):
        _write(tmp_path / f"s{i}.png", images[i, :, :, 0])
        result = run_main(
            [
                "explain",
                square_model,
                tmp_path / f"s{i}.png",
                "-d",
                tmp_path / "o",
                "--raw",
                "--class",
                "square",
            ]  # fmt: skip
        )
        assert result.exit_code == 0, result
        heat = np.load(tmp_path / "o" / f"s{i}_gradcam-square.npy")
        y, x = boxes[i]
        inside = np.zeros(heat.shape, bool)
        inside[y : y + 6, x : x + 6] = True
        share = heat[inside].sum() / heat.sum()
        ratios.append(heat[inside].mean() / max(heat[~inside].mean(), 1e-9))
        assert share > 3 * inside.mean(), (i, share)  # the box is 6% of the image
    assert np.median(ratios) > 5, ratios


def test_explain_top_k_and_the_default_layer(square_model, tmp_path, run_main):
    rng = np.random.default_rng(5)
    images, _, _ = _squares(2, rng)
    _write(tmp_path / "a.png", images[1, :, :, 0])
    result = run_main(["explain", square_model, tmp_path / "a.png", "-d", tmp_path, "--top-k", "2"])
    assert result.exit_code == 0, result
    assert "Grad-CAM on layer last_conv" in result.stderr
    assert (tmp_path / "a_gradcam-top1.png").is_file() and (
        tmp_path / "a_gradcam-top2.png"
    ).is_file()
    assert "square" in result.text and "empty" in result.text


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def dense_model(keras, tmp_path_factory):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    return _save(model, tmp_path_factory.mktemp("dense") / "dense.keras")


@pytest.fixture(scope="module")
def vector_model(keras, tmp_path_factory):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, activation="softmax")])
    return _save(model, tmp_path_factory.mktemp("vector") / "vector.keras")


def test_bad_inputs_are_one_line_with_an_exit_code(
    square_model, dense_model, vector_model, tmp_path, run_main
):
    image = _write(tmp_path / "x.png", np.zeros((24, 24), np.uint8))
    out = tmp_path / "o"
    cases = [
        (["kernels", dense_model, "-d", out], 1, "the model has no convolution layer"),
        (["explain", dense_model, image, "-d", out], 1, "the model has no convolution layer"),
        (["explain", square_model, image, "-d", out, "--layer", "nope"], 2,
         "--layer: the model has no layer named 'nope' (its layers: rescaling"),
        (["explain", square_model, image, "-d", out, "--layer", "dense"], 2,
         "--layer dense (Dense) has output shape (2,)"),
        (["kernels", square_model, "-d", out, "--layers", "nope"], 2,
         "--layers: the model has no layer named 'nope'"),
        (["kernels", square_model, "-d", out, "--layers", "dense"], 2,
         "'dense' is a Dense layer, not a convolution"),
        (["explain", square_model, image, "-d", out, "--class", "zebra"], 2,
         "--class: the model has no class 'zebra' (its classes: empty, square)"),
        (["explain", square_model, image, "-d", out, "--class", "square", "--top-k", "2"], 2,
         "give either --class or --top-k"),
        (["explain", vector_model, image, "-d", out], 1, "wrong input shape (10)"),
        (["run", "--model", vector_model, image, "-d", out], 1, "wrong input shape (10)"),
        (["explain", square_model, image, "--raw", "-o", tmp_path / "y.png"], 2,
         "--raw writes one .npy per image and class: it needs --out-dir"),
        (["explain", square_model, image, "-d", tmp_path, "--name", "x.png"], 2,
         "would overwrite its input"),
    ]  # fmt: skip
    for args, code, message in cases:
        result = run_main(args)
        assert result.exit_code == code, (args, result)
        (line,) = result.stderr_lines[-1:]
        assert line.startswith("convkit: error: ") and message in line, (args, result.stderr)
    assert not out.exists()

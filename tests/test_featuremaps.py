"""The feature-map core (:mod:`convkit.nn`) against independent references: OpenCV's
filter2D (the `convkit filter` tie), NumPy sliding windows and reshape-pooling, and
:func:`convkit.arithmetic.shapes.analyze_stack` (shape-calc's arithmetic) for the model
summaries Keras reports.

Keras is imported once for the module; models are tiny and images small.
"""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from convkit.arithmetic.shapes import analyze_stack  # noqa: E402
from convkit.arithmetic.spec import parse_spec  # noqa: E402
from convkit.engine.executor import BatchOptions  # noqa: E402
from convkit.errors import ImageSizeError, SpecError, UsageError  # noqa: E402
from convkit.image.kernels import parse_kernels  # noqa: E402
from convkit.image.ops import filter2d, to_gray  # noqa: E402
from convkit.image.outputs import OutputPlan  # noqa: E402
from convkit.image.sources import collect_sources  # noqa: E402
from convkit.nn import extractor as extractor_module  # noqa: E402
from convkit.nn.builders import conv_network, pool_network, spec_network  # noqa: E402
from convkit.nn.extractor import FeatureExtractor  # noqa: E402
from convkit.nn.inputs import model_input  # noqa: E402
from convkit.nn.network import Network  # noqa: E402
from convkit.nn.pipeline import extract_feature_maps  # noqa: E402
from convkit.nn.render import (  # noqa: E402
    RenderOptions,
    map_what,
    output_whats,
    render_maps,
    render_picture,
)
from convkit.nn.weights import kernels_to_weights, load_weights  # noqa: E402

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module", autouse=True)
def keras():
    from convkit.heavy import import_keras

    return import_keras()


def gray_image(h=32, w=48, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w), dtype=np.int64).astype(np.uint8)


def color_image(h=32, w=48, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.int64).astype(np.uint8)


def maps_of(network: Network, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every output layer's maps of one image, as the pipeline computes them."""
    extractor = FeatureExtractor(network)
    return extractor.layer_maps([model_input(image, network.channels)])[0]


def windows(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw))


# --------------------------------------------------------------------------- input


def test_gray_input_is_opencv_luma_as_float32_pixel_values():
    image = color_image()
    x = model_input(image, 1)
    assert x.dtype == np.float32 and x.shape == (32, 48, 1)
    np.testing.assert_array_equal(x[:, :, 0], cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert x.max() > 1  # pixel values as stored, not divided by 255


def test_color_input_is_rgb_and_alpha_is_dropped():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 99
    x = model_input(bgra, 3)
    assert x.shape == (2, 3, 3)
    np.testing.assert_array_equal(x[0, 0], [30, 20, 10])  # R, G, B
    gray = model_input(np.full((2, 2), 7, np.uint8), 3)
    np.testing.assert_array_equal(gray, np.full((2, 2, 3), 7, np.float32))
    wide = model_input(np.full((2, 2), 60000, np.uint16), 1)
    assert wide.max() == 60000  # 16-bit values kept as they are


# --------------------------------------------------------------------------- correctness ties


@pytest.mark.parametrize("kernel", ["sobel-x", "laplacian", "sharpen", "gaussian:5", "box:3"])
def test_conv_same_no_bias_equals_filter2d_with_constant_border(kernel):
    image = gray_image(seed=3)
    net = conv_network(kernel=[kernel], padding="same", use_bias=False)
    maps = maps_of(net, image)
    response = filter2d(to_gray(image), parse_kernels(kernel)[0].matrix, border="constant")
    np.testing.assert_allclose(maps["conv"][:, :, 0], response, atol=1e-4, rtol=0)


def test_conv_with_colour_applies_the_kernel_to_r_g_b_and_sums():
    image = color_image(seed=4)
    net = conv_network(kernel=["sobel-y"], color=True, padding="same", use_bias=False)
    maps = maps_of(net, image)
    k = parse_kernels("sobel-y")[0].matrix
    expected = sum(filter2d(image[:, :, c], k, border="constant") for c in range(3))
    np.testing.assert_allclose(maps["conv"][:, :, 0], expected, atol=1e-3, rtol=0)


def test_edges4_gives_four_correlation_maps_before_and_after_relu():
    image = gray_image(seed=5)
    net = conv_network(kernel=["edges4"], activation="relu")
    assert net.outputs == ["conv", "relu"]
    maps = maps_of(net, image)
    assert maps["conv"].shape == (29, 45, 4)  # valid: 32 - 4 + 1, 48 - 4 + 1
    k = np.array([[-1, -1, 1, 1]] * 4, np.float64)
    bank = [k, -k, k.T, -k.T]
    win = windows(image.astype(np.float64), 4, 4)
    for i, kernel in enumerate(bank):
        expected = np.einsum("yxij,ij->yx", win, kernel)  # correlation: not flipped
        np.testing.assert_allclose(maps["conv"][:, :, i], expected, atol=1e-3)
    np.testing.assert_array_equal(maps["relu"], np.maximum(maps["conv"], 0))


def test_step_edge_orientation_of_edges4():
    """[[-1,-1,1,1]]*4 responds positively where the image gets brighter to the right."""
    image = np.zeros((8, 8), np.uint8)
    image[:, 4:] = 200
    maps = maps_of(conv_network(kernel=["edges4"]), image)
    conv = maps["conv"]
    assert conv[:, :, 0].max() == pytest.approx(8 * 200) and conv[:, :, 0].min() == 0
    assert conv[:, :, 1].min() == pytest.approx(-8 * 200)
    assert np.all(conv[:, :, 2] == 0) and np.all(conv[:, :, 3] == 0)  # no horizontal edge


def test_classic_512_conv_15_relu_pool_shapes_and_parameters(keras):
    net = spec_network("conv2d(1, 15) relu maxpool2d(2)")
    extractor = FeatureExtractor(net)
    extractor.model_for(512, 512)
    rows = extractor.summary_rows()
    assert rows[0][2:] == ((498, 498, 1), 226)
    assert rows[1][2] == (498, 498, 1)
    assert rows[2][2:] == ((249, 249, 1), 0)


def _pool_reference(x: np.ndarray, p: int, mode: str) -> np.ndarray:
    h, w = x.shape[0] // p * p, x.shape[1] // p * p
    blocks = x[:h, :w].reshape(h // p, p, w // p, p)
    return blocks.max(axis=(1, 3)) if mode == "max" else blocks.mean(axis=(1, 3))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("p", [2, 3])
def test_pooling_valid_equals_numpy_reshape(mode, p):
    image = gray_image(33, 47, seed=6)
    net = pool_network(mode=mode, size=p)
    maps = maps_of(net, image)
    ref = _pool_reference(image.astype(np.float64), p, mode)
    np.testing.assert_allclose(maps[f"{mode}pool"][:, :, 0], ref, atol=1e-4)


def test_average_pooling_same_leaves_padded_cells_out_of_the_mean():
    image = gray_image(5, 7, seed=7).astype(np.float64)
    net = pool_network(mode="avg", size=2, padding="same")
    maps = maps_of(net, image.astype(np.uint8))
    out = maps["avgpool"][:, :, 0]
    assert out.shape == (3, 4)  # ceil(5 / 2), ceil(7 / 2)
    ref = np.array(
        [[image[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean() for j in range(4)] for i in range(3)]
    )  # the last row and column average 1 or 2 real pixels, not 4 with zeros
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert out[2, 3] == pytest.approx(image[4, 6])


def test_colour_pooling_is_still_a_picture():
    net = pool_network(mode="max", size=2, color=True)
    assert net.info("maxpool").picture and net.info("maxpool").origin == "input"
    image = color_image(8, 8, seed=8)
    maps = maps_of(net, image)
    picture = render_picture(maps["maxpool"], None)  # back in OpenCV's BGR order
    bgr = np.stack([_pool_reference(image[:, :, c], 2, "max") for c in range(3)], axis=2)
    np.testing.assert_array_equal(picture, bgr.astype(np.uint8))


# --------------------------------------------------------------------------- weights, seeds


def test_same_seed_same_maps_other_seed_other_maps():
    image = gray_image(seed=9)
    spec = "conv2d(3, 3) relu conv2d(2, 3)"

    def maps(seed):
        return maps_of(spec_network(spec, seed=seed), image)

    a, b, c = maps(11), maps(11), maps(12)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["conv2d"], c["conv2d"])


def test_weights_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 1, 2)).astype(np.float32)
    path = tmp_path / "w.npy"
    np.save(path, kernel)
    net = spec_network("conv2d(2, 3, padding=same, use_bias=False)", weights=path)
    image = gray_image(seed=10)
    maps = maps_of(net, image)
    for n in range(2):
        ref = filter2d(image, kernel[:, :, 0, n], border="constant")
        np.testing.assert_allclose(maps["conv2d"][:, :, n], ref, atol=1e-3)


def test_weights_of_the_wrong_shape_are_a_clear_error(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.ones((3, 3, 3, 2), np.float32))
    weights = load_weights(path)
    with pytest.raises(UsageError) as gray:
        spec_network("conv2d(2, 3)", weights=weights)
    assert str(gray.value) == (
        f"{path}: weights of shape (3, 3, 3, 2) do not fit layer 'conv2d' (Conv2D 2 filters "
        "3x3, valid), which receives 1 channel (gray): it needs (KH, KW, C_in, N) = "
        "(3, 3, 1, 2); weights with C_in = 3 need `color`"
    )
    with pytest.raises(
        UsageError, match=r"do not fit .* it needs \(KH, KW, C_in, N\) = \(3, 3, 3, 4\)$"
    ):
        spec_network("conv2d(4, 3)", color=True, weights=weights)
    with pytest.raises(UsageError, match="set a Conv2D layer's filters, but the spec has none"):
        spec_network("maxpool2d(2)", weights=weights)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            np.ones((3, 3)),
            r"got 2 dimensions \(3, 3\) \(a single 2-D kernel goes with `kernel` FILE\.npy\)",
        ),
        (np.array([1, "a"], dtype=object), "holds Python objects.*allow_pickle=False"),
        (np.full((1, 1, 1, 1), np.nan), "weights contain NaN or infinity"),
        (np.array(["a"]), "expected real numbers, got dtype <U1"),
    ],
)
def test_bad_weights_files(tmp_path, content, message):
    path = tmp_path / "w.npy"
    np.save(path, content, allow_pickle=True)
    with pytest.raises(UsageError, match=message):
        load_weights(path)
    with pytest.raises(UsageError, match="missing.npy: no such weights file"):
        load_weights(tmp_path / "missing.npy")


def test_kernels_of_different_sizes_cannot_share_a_layer():
    kernels = parse_kernels("sobel-x") + parse_kernels("gaussian:5")
    with pytest.raises(UsageError, match="must all have one size, got sobel-x 3x3, gaussian-5 5x5"):
        kernels_to_weights(kernels, 1)


# --------------------------------------------------------------------------- many images


def _write_pngs(folder, images) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        assert cv2.imwrite(str(folder / f"img{i}.png"), image)
    return collect_sources([str(folder)]).sources


def test_sizes_are_grouped_and_batches_split_without_changing_results(monkeypatch, tmp_path):
    """The pipeline's size-grouped batches give each image the maps it has alone: a NumPy
    correlation with the model's own kernel, then ReLU."""
    images = [gray_image(20, 24, seed=s) for s in range(3)] + [gray_image(16, 16, seed=9)]
    images.insert(1, gray_image(16, 16, seed=10))
    sources = _write_pngs(tmp_path / "in", images)
    net = spec_network("conv2d(2, 3) relu", seed=1)
    extractor = FeatureExtractor(net)
    raw_only = RenderOptions(maps=False, montage=False, raw=True)

    def run(out: str) -> list[dict[str, np.ndarray]]:
        plan = OutputPlan(out_dir=tmp_path / out)
        report = extract_feature_maps(
            sources, net, plan, raw_only, extractor=extractor, batch=BatchOptions(jobs=2)
        )
        assert report.failed == 0 and report.outputs == 2 * len(images)
        folder = tmp_path / out
        return [
            {layer: np.load(folder / f"img{i}_{layer}.npy") for layer in net.outputs}
            for i in range(len(images))
        ]

    together = run("together")
    monkeypatch.setattr(extractor_module, "BATCH_MEMORY", 1)  # batches of one image
    assert extractor.batch_limit(20, 24, 32) == 1
    split = run("split")
    kernel = extractor.kernels["conv2d"][:, :, 0, :]
    for image, a, c in zip(images, together, split, strict=True):
        expected = np.einsum("yxij,ijn->yxn", windows(image.astype(np.float64), 3, 3), kernel)
        np.testing.assert_allclose(a["conv2d"], expected, atol=1e-3)  # bias: Keras's zeros
        np.testing.assert_array_equal(a["activation"], np.maximum(a["conv2d"], 0))
        for name in a:
            np.testing.assert_allclose(a[name], c[name], atol=1e-4)
    assert together[1]["conv2d"].shape == (14, 14, 2)
    # Every size shares the first model's weights.
    assert len(extractor._models) == 2


def test_an_image_too_small_for_the_kernel_fails_alone_in_a_batch(tmp_path):
    net = spec_network("conv2d(1, 15)")
    extractor = FeatureExtractor(net)
    with pytest.raises(ImageSizeError, match=r"too small.*kernel size 15.*height 10"):
        extractor.check_size(10, 40)
    sources = _write_pngs(tmp_path / "in", [gray_image(10, 40), gray_image(20, 20)])
    report = extract_feature_maps(
        sources, net, OutputPlan(out_dir=tmp_path / "out"), RenderOptions(montage=False)
    )
    [error] = report.errors
    assert isinstance(error, ImageSizeError) and error.exit_code == 1
    assert error.path == sources[0].display
    assert error.message.startswith("the image (10x40) is too small for this model: ")
    assert report.results == [None, 1] and report.outputs == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img1_conv2d-1.png"]


def test_size_dependent_weights_refuse_a_second_size():
    net = spec_network("conv2d(1, 3) flatten dense(2)", seed=0)
    extractor = FeatureExtractor(net)
    extractor.model_for(8, 8)
    with pytest.raises(
        ImageSizeError,
        match=r"the image is 9x9 but this model's weights \(a Flatten or Dense layer\) "
        "depend on the image size, fixed at 8x8 by the first image",
    ):
        extractor.model_for(9, 9)


def test_spec_input_fixes_channels_and_size():
    net = spec_network("input((16, 16, 3)) maxpool2d(2)")
    assert net.channels == 3 and net.input_hw == (16, 16)
    extractor = FeatureExtractor(net)
    with pytest.raises(
        ImageSizeError, match=r"the image is 20x20 \(HxW\) but the spec's input is 16x16"
    ):
        extractor.check_size(20, 20)
    with pytest.raises(SpecError, match=r"the spec's input has 1 channels, not 3 \(`color`\)"):
        spec_network("input((16, 16, 1)) maxpool2d(2)", color=True)


# --------------------------------------------------------------------------- summary vs shape-calc


@pytest.mark.parametrize(
    "spec, size",
    [
        ("conv2d(8, 3, padding=same) relu maxpool2d(2)", (37, 50, 1)),
        ("conv2d(4, 5, strides=2) bn relu avgpool(3, strides=2, padding=same)", (41, 29, 3)),
        ("depthwiseconv2d(3, depth_multiplier=2) separableconv2d(6, 3) gap", (24, 24, 3)),
        (
            "conv2d(2, 3, dilation_rate=2, use_bias=False) upsampling2d(2) flatten dense(5)",
            (12, 16, 1),
        ),
    ],
)
def test_keras_summary_agrees_with_shape_calc(spec, size):
    net = spec_network(spec, color=size[2] == 3)
    extractor = FeatureExtractor(net)
    extractor.model_for(size[0], size[1])
    rows = extractor.summary_rows()
    stack = analyze_stack(parse_spec(spec), size)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (layer.name, tuple(layer.output_shape), layer.params) for layer in stack.layers
    ]


# --------------------------------------------------------------------------- layers and names


def test_layer_origins_and_output_names():
    net = spec_network("conv2d(3, 3) bn relu maxpool2d(2) conv2d(2, 3) flatten")
    origins = {i.name: i.origin for i in net.infos}
    assert origins == {
        "conv2d": "conv2d",
        "batch_normalization": "conv2d",
        "activation": "conv2d",
        "max_pooling2d": "conv2d",
        "conv2d_1": "conv2d_1",
        "flatten": None,
    }
    options = RenderOptions(raw=True)
    images, raws, skipped = output_whats(net, options)
    assert "conv2d-1" in images and "conv2d-montage" in images and "conv2d_1-2" in images
    assert skipped == ["flatten"] and "flatten" in raws
    assert map_what("conv", 3, 16) == "conv-03"
    with pytest.raises(
        UsageError, match=r"^`outputs`: no layer named 'nope' in this model \(its layers: conv2d\)$"
    ):
        spec_network("conv2d(1, 3)", outputs=["nope"])
    chosen = spec_network("conv2d(1, 3) relu", outputs=["activation"])
    assert chosen.outputs == ["activation"]


def test_render_maps_range_modes():
    maps = np.stack([np.array([[-2.0, 0.0], [2.0, 6.0]]), np.full((2, 2), 3.0)], axis=2)
    rescaled, flat = render_maps(maps.astype(np.float32), "rescale")
    np.testing.assert_array_equal(rescaled, [[0, 64], [128, 255]])
    np.testing.assert_array_equal(flat, np.zeros((2, 2)))
    clipped = render_maps(np.float32([[[-5.0], [300.0]]]), "clip")[0]
    np.testing.assert_array_equal(clipped, [[0, 255]])
    absolute = render_maps(np.float32([[[-5.0], [7.0]]]), "abs")[0]
    np.testing.assert_array_equal(absolute, [[5, 7]])
    sixteen = render_maps(np.float32([[[257.0 * 10]]]), "clip", scale=1 / 257)[0]
    assert sixteen[0, 0] == 10


def test_montage_draws_kernels_beside_small_filters_only():
    from convkit.nn.montage import Panel, drawable_kernel, layer_montage

    k = np.array([[-1, 1], [1, -1]], np.float32)
    assert drawable_kernel(np.repeat(k[:, :, None], 3, axis=2)).shape == (2, 2)
    assert drawable_kernel(np.zeros((3, 3, 3))).shape == (3, 3)  # equal slices: one matrix
    assert drawable_kernel(np.random.default_rng(0).normal(size=(3, 3, 3))).shape == (3, 3, 3)
    assert drawable_kernel(np.zeros((16, 16, 1))) is None
    assert drawable_kernel(np.zeros((3, 3, 8))) is None
    tiles = [np.full((10, 12), 40 * i, np.uint8) for i in range(3)]
    with_kernels = layer_montage(
        [Panel(t, f"filter {i}", k) for i, t in enumerate(tiles)],
        title="t",
        input_panel=Panel(np.zeros((20, 24, 3), np.uint8), "input"),
    )
    without = layer_montage(
        [Panel(t, f"map {i}") for i, t in enumerate(tiles)],
        title="t",
        input_panel=Panel(np.zeros((20, 24, 3), np.uint8), "input"),
    )
    assert with_kernels.dtype == np.uint8 and with_kernels.shape[2] == 3
    assert with_kernels.shape[1] > without.shape[1]  # the kernels take room beside the maps
    # Small maps are enlarged by whole factors (nearest): a 10x12 map fills >= 240 pixels.
    assert without.shape[0] > 240
    # The diverging colours are there: red for +1, blue for -1.
    reds = np.all(with_kernels == (40, 40, 210), axis=2).sum()
    blues = np.all(with_kernels == (200, 90, 30), axis=2).sum()
    assert reds > 0 and blues > 0

"""``convkit shape-calc --diagram``: the stack drawn as SVG or PNG.

The SVG is read back as XML: every layer is a ``<g class="layer">`` with its name, type,
output shape and parameters as ``data-`` attributes and as the text under its box; the box
is a ``<rect class="front">`` (height: the map's height; width: its channels) with a
receding ``<polygon class="side">`` (its width). The numbers are checked against VGG16's
published ones (computed here from the architecture, independently of convkit) and
against ``analyze_spec``; the geometry against the sizes it stands for.
"""

from __future__ import annotations

import io
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from convkit.arithmetic.formatting import format_shape
from convkit.arithmetic.spec_source import read_spec
from convkit.arithmetic.stack import analyze_spec

REPO = Path(__file__).resolve().parent.parent
VGG16 = REPO / "docs" / "vgg16.txt"
SVG = "{http://www.w3.org/2000/svg}"

DEEP = (
    "conv2d(32, 3, padding=same) bn relu conv2d(32, 3, padding=same) bn relu maxpool(2) "
    "conv2d(64, 3, padding=same) bn relu conv2d(64, 3, padding=same) bn relu maxpool(2) "
    "conv2d(128, 3, padding=same) bn relu conv2d(128, 3, padding=same) bn relu maxpool(2) "
    "conv2d(256, 3, padding=same) bn relu spatialdropout2d(0.2) conv2d(256, 3, strides=2) "
    "relu upsampling2d(2) conv2dtranspose(64, 3, strides=2, padding=same) "
    "depthwiseconv2d(3) separableconv2d(64, 3, dilation_rate=2) zeropadding2d(1) "
    "cropping2d((1, 2)) layernormalization avgpool(2) gap dense(128, activation=relu) "
    "dropout(0.5) dense(10) softmax"
)


def _vgg16_reference() -> list[tuple[str, tuple[int, ...], int]]:
    """VGG16's layers (type, output shape, parameters), from the paper's architecture."""
    out, (size, channels) = [], (224, 3)
    for convs, filters in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
        for _ in range(convs):
            out.append(("Conv2D", (size, size, filters), (9 * channels + 1) * filters))
            channels = filters
        size //= 2
        out.append(("MaxPooling2D", (size, size, channels), 0))
    features = size * size * channels
    out.append(("Flatten", (features,), 0))
    for units in (4096, 4096, 1000):
        out.append(("Dense", (units,), (features + 1) * units))
        features = units
    assert len(out) == 22 and sum(p for _, _, p in out) == 138_357_544
    return out


def _svg(path: Path) -> ET.Element:
    return ET.fromstring(path.read_text(encoding="utf-8"))


def _layers(root: ET.Element) -> dict[str, ET.Element]:
    """The ``<g class="layer">`` groups by their data-name."""
    groups = [g for g in root.iter(f"{SVG}g") if "layer" in g.get("class", "").split()]
    return {g.get("data-name"): g for g in groups}


def _texts(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{SVG}text")]


def _boxes(root: ET.Element, kind: str) -> list[tuple[tuple[int, ...], ET.Element]]:
    """Each drawn block of ``kind`` (box or bar): the output shape it stands for and its
    main layer group (the first one in the block)."""
    out = []
    for block in root.iter(f"{SVG}g"):
        if block.get("data-kind") == kind:
            main = block.find(f"{SVG}g")
            shape = tuple(int(v) for v in main.get("data-output").split("×"))
            out.append((shape, main))
    return out


def _front(group: ET.Element) -> tuple[float, float]:
    rect = group.find(f"{SVG}rect[@class='front']")
    return float(rect.get("height")), float(rect.get("width"))


def _depth(group: ET.Element) -> float:
    side = group.find(f"{SVG}polygon[@class='side']")
    xs = [float(p.split(",")[0]) for p in side.get("points").split()]
    return max(xs) - min(xs)


def _assert_monotone(pairs: list[tuple[int, float]]) -> None:
    """A larger size is drawn strictly larger; the same size the same."""
    pairs = sorted(pairs)
    for (a, x), (b, y) in zip(pairs, pairs[1:], strict=False):
        if a == b:
            assert x == pytest.approx(y), pairs
        else:
            assert x < y, pairs


def _assert_inside(root: ET.Element) -> None:
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    for element in root.iter():
        coords = []
        if element.get("points"):
            coords = [tuple(map(float, p.split(","))) for p in element.get("points").split()]
        elif element.tag == f"{SVG}text":
            coords = [(float(element.get("x")), float(element.get("y")))]
        for x, y in coords:
            assert 0 <= x <= width and 0 <= y <= height, (element.tag, element.attrib)


def test_vgg16_svg_has_every_layer_its_numbers_and_sizes(run_main, tmp_path):
    out = tmp_path / "vgg16.svg"
    plain = run_main(["shape-calc", "--spec", VGG16])
    result = run_main(["shape-calc", "--spec", VGG16, "--diagram", out])
    assert result.exit_code == 0, result
    assert result.stdout == plain.stdout  # the table, as before
    assert result.stderr_lines == [f"convkit: note: diagram written to {out}"]

    root = _svg(out)
    reference = _vgg16_reference()
    stack = analyze_spec(read_spec(str(VGG16)).layers)
    layers = _layers(root)
    assert len(layers) == len(reference) + 1  # and the input
    assert layers["input"].get("data-output") == "224×224×3"
    for index, ((kind, shape, params), ours) in enumerate(
        zip(reference, stack.layers, strict=True)
    ):
        group = layers[ours.name]
        assert group.get("id") == f"layer-{index}"
        assert (group.get("data-type"), group.get("data-output")) == (kind, format_shape(shape))
        assert int(group.get("data-params")) == params == ours.params
        texts = _texts(group)
        assert ours.name in texts
        assert format_shape(shape) in texts
        assert f"{params:,} params" in texts
        assert any(t.startswith(kind) for t in texts), texts
        if kind == "Conv2D":
            assert "3×3, same" in texts
        if kind == "MaxPooling2D":
            assert "2×2, stride 2" in texts
    everything = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "Total params: 138,357,544 (527.8 MiB float32)" in everything
    assert "224×224×3 → 1000: 22 layers" in everything
    assert "Total MACs: 15,470,264,320 (15.47 G) per image" in everything

    boxes = _boxes(root, "box")
    assert len(boxes) == 19  # the input, 13 convolutions, 5 poolings
    _assert_monotone([(s[0], _front(g)[0]) for s, g in boxes])  # height ~ map height
    _assert_monotone([(s[1], _depth(g)) for s, g in boxes])  # depth ~ map width
    _assert_monotone([(s[2], _front(g)[1]) for s, g in boxes])  # thickness ~ channels
    bars = _boxes(root, "bar")
    assert [s for s, _ in bars] == [(25088,), (4096,), (4096,), (1000,)]
    _assert_monotone([(s[0], _front(g)[0]) for s, g in bars])
    _assert_inside(root)
    # 23 blocks wrap onto rows: no wider than a slide allows, and not one long ribbon
    assert float(root.get("width")) <= 1900
    assert 1.5 <= float(root.get("width")) / float(root.get("height")) <= 3.5


def test_vgg16_png_decodes_at_the_svg_proportions(run_main, tmp_path):
    from PIL import Image

    result = run_main(["shape-calc", "--spec", VGG16, "--diagram", tmp_path / "vgg16.PNG"])
    assert result.exit_code == 0, result
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    with Image.open(tmp_path / "vgg16.PNG") as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 20)
    run_main(["shape-calc", "--spec", VGG16, "--diagram", tmp_path / "vgg16.svg"])
    root = _svg(tmp_path / "vgg16.svg")
    assert width == pytest.approx(2 * float(root.get("width")), abs=2)
    assert height == pytest.approx(2 * float(root.get("height")), abs=2)
    assert 2000 <= width <= 4000 and 700 <= height <= 2500
    # mostly white paper, and the boxes' colours (conv blue, pooling orange, dense green)
    assert max(colours)[1] == (255, 255, 255)
    assert sum(n for n, _ in colours) == width * height
    for rgb in ((0x6F, 0xA8, 0xDC), (0xF6, 0xB2, 0x6B), (0x93, 0xC4, 0x7D)):
        assert any(c == rgb and n > 1000 for n, c in colours), rgb


def test_deep_stack_every_layer_drawn_or_folded(run_main, tmp_path):
    out = tmp_path / "deep.svg"
    args = ["shape-calc", "-i", "64x64x3", DEEP, "--json"]
    plain = run_main(args)
    result = run_main([*args, "--diagram", out])
    assert result.exit_code == 0, result
    assert json.loads(result.stdout) == json.loads(plain.stdout)

    stack = analyze_spec(read_spec(DEEP).layers, (64, 64, 3))
    root = _svg(out)
    layers = _layers(root)
    assert set(layers) == {"input"} | {layer.name for layer in stack.layers}
    folded = {"Activation", "BatchNormalization", "LayerNormalization", "Dropout"}
    folded.add("SpatialDropout2D")
    for index, layer in enumerate(stack.layers):
        group = layers[layer.name]
        assert group.get("data-output") == format_shape(layer.output_shape)
        assert int(group.get("data-params")) == layer.params
        texts = _texts(group)
        if layer.type in folded:  # a line under the box before it, with its parameters
            assert group.find(f"{SVG}rect") is None
            (line,) = texts
            assert line.startswith("+ ")
            if layer.params:
                assert line.endswith(f" · {layer.params:,} params")
            assert stack.layers[index - 1].output_shape == layer.output_shape
        else:
            assert group.find(f"{SVG}rect[@class='front']") is not None
            assert format_shape(layer.output_shape) in texts
            assert f"{layer.params:,} params" in texts
    assert "+ layer norm · 128 params" in _texts(layers["layer_normalization"])
    assert "+ batch norm · 128 params" in _texts(layers["batch_normalization"])
    assert "+ spatial dropout 0.2" in _texts(layers["spatial_dropout2d"])
    assert "3×3, stride 2, same" in _texts(layers["conv2d_transpose"])
    assert "1×2" in _texts(layers["cropping2d"])
    boxes = _boxes(root, "box")
    _assert_monotone([(s[0], _front(g)[0]) for s, g in boxes])
    _assert_monotone([(s[2], _front(g)[1]) for s, g in boxes])
    _assert_inside(root)
    fronts = [float(r.get("y")) for r in root.iter(f"{SVG}rect") if r.get("class") == "front"]
    assert max(fronts) - min(fronts) > 150  # more than one row
    everything = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert f"non-trainable {stack.non_trainable_params:,}" in everything


@pytest.mark.parametrize(
    "args",
    [
        ["-i", "28", "conv2d(8, 3)"],
        ["-i", "512", "--kernel-size", "15"],  # one layer from flags
        ["-i", "5", "--kernel-size", "3", "--transpose", "-s", "2"],
    ],
    ids=["spec", "flags", "transpose-flags"],
)
def test_one_layer_net(run_main, tmp_path, args):
    from PIL import Image

    result = run_main(["shape-calc", *args, "--diagram", tmp_path / "one.svg"])
    assert result.exit_code == 0, result
    root = _svg(tmp_path / "one.svg")
    layers = _layers(root)
    assert len(layers) == 2 and "input" in layers
    (name,) = set(layers) - {"input"}
    everything = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert ": 1 layer" in everything and "Total params" in everything
    _assert_inside(root)
    assert run_main(["shape-calc", *args, "--diagram", tmp_path / "one.png"]).exit_code == 0
    with Image.open(tmp_path / "one.png") as image:
        assert image.format == "PNG"
        assert image.size[0] == pytest.approx(2 * float(root.get("width")), abs=2)


@pytest.mark.parametrize(
    "args",
    [
        ["-i", "28", "conv2d(8, 40)"],
        ["-i", "28", "conv2d(8, 3) rleu"],
        ["-i", "28", "conv2d(8, 3"],
        ["conv2d(8, 3)"],
        ["--spec", "missing.txt"],
        ["-i", "28", "--kernel-size", "3", "--output-padding", "1"],
        ["-i", "28", "--kernel-size", "40"],
        ["-i", "28", "conv2d(8, 3)", "--strides", "2"],
        [],
    ],
)
def test_invalid_specs_give_the_same_errors(run_main, tmp_path, args):
    plain = run_main(["shape-calc", *args], cwd=tmp_path)
    drawn = run_main(["shape-calc", *args, "--diagram", "net.svg"], cwd=tmp_path)
    assert plain.exit_code == 2, plain
    assert (drawn.exit_code, drawn.stdout, drawn.stderr) == (2, plain.stdout, plain.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["net.jpg", "net", "net.svg.gz", "net.pdf"])
def test_other_suffixes_are_refused(run_main, tmp_path, cli_error, name):
    result = run_main(["shape-calc", "-i", "28", "conv2d(8, 3)", "--diagram", tmp_path / name])
    cli_error(result, 2, re.escape("--diagram must be a .png or .svg file, got"))
    assert result.stdout == b""
    assert list(tmp_path.iterdir()) == []


def test_unwritable_places(run_main, tmp_path, cli_error):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.svg").mkdir()
    for target, reason in [
        (tmp_path / "missing" / "net.svg", "cannot write: folder .* does not exist"),
        (tmp_path / "file.txt" / "net.png", "cannot write: folder .* does not exist"),
        (tmp_path / "folder.svg", "cannot write: is a directory"),
    ]:
        result = run_main(["shape-calc", "-i", "28", "conv2d(8, 3)", "--diagram", target])
        cli_error(result, 1, reason, path=str(target))
        assert result.stdout == b""  # nothing printed when the picture fails
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt", "folder.svg"]


def test_a_huge_stack_is_refused_not_drawn(run_main, tmp_path, cli_error):
    spec = "conv2d(4, 1) " * 401
    result = run_main(["shape-calc", "-i", "8", spec, "--diagram", tmp_path / "x.svg"])
    cli_error(result, 2, r"--diagram draws at most 400 layers; this stack has 401")
    assert run_main(["shape-calc", "-i", "8", spec]).exit_code == 0


def test_huge_sizes_stay_on_the_picture(tmp_path):
    """Sizes near the largest a tensor may have still give a picture of sane size."""
    from convkit.visual.diagram import diagram_scene
    from convkit.visual.scene import to_svg

    stack = analyze_spec(read_spec("conv2d(2147483647, 1) flatten").layers, (46340, 46340, 1))
    scene = diagram_scene(stack, read_spec("conv2d(2147483647, 1) flatten").layers)
    assert scene.width < 2000 and scene.height < 1000
    root = ET.fromstring(to_svg(scene))
    _assert_inside(root)
    assert math.isfinite(float(root.get("width")))


def test_png_bytes_are_a_png_without_a_file(tmp_path):
    from PIL import Image

    from convkit.visual.diagram import diagram_scene
    from convkit.visual.scene import to_png

    stack = analyze_spec(read_spec("conv2d(8, 3) flatten dense(4)").layers, (16, 16, 1))
    data = to_png(diagram_scene(stack))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size[0] > 300

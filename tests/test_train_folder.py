"""``convkit train DATA`` without Keras: the folder's layout, the scan, the stratified and
seeded splits (checked with NumPy), the image preparation (checked against NumPy's own
arithmetic), and every refusal as one clear line with its exit code."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import folder_fixtures as ff
import numpy as np
import pytest
from conftest import _run_in_process

from convkit.errors import DataError
from convkit.image.codec import read_image
from convkit.image.sources import Source
from convkit.training.folder_data import default_image_size
from convkit.training.folders import find_layout, scan_folder
from convkit.training.preparation import make_preparation, prepare_pixels
from convkit.training.splits import folder_split, stratified_take
from convkit.training.stream import FileImages


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    return ff.make_flat(tmp_path_factory.mktemp("flat") / "shapes", per_class=10)


def _source(path: Path) -> Source:
    return Source(str(path), path, Path(path.name))


# --------------------------------------------------------------------------- layout and scan


def test_flat_layout_and_scan(flat):
    layout = find_layout(flat)
    assert layout.kind == "flat" and layout.class_names == list(ff.CLASS_NAMES)
    assert len(layout.files) == 3 * 10 + 4  # the odd files are in disk/
    scan = scan_folder(layout, jobs=2, keep_bytes=10**6)
    assert scan.bad == [(str(flat / "disk" / ff.CORRUPT), scan.bad[0][1])]
    assert "PNG" in scan.bad[0][1]
    assert scan.counts() == {"images": [10, 13, 10]}
    pairs = zip(layout.files, scan.images, strict=True)
    by_name = {Path(f.source.display).name: img for f, img in pairs}
    assert by_name[ff.SIXTEEN_BIT].bits == 16
    assert by_name[ff.GRAY].gray and not by_name["disk_0000.png"].gray
    assert by_name[ff.ALPHA].alpha
    assert {by_name[f"disk_000{i}{ext}"].width for i, ext in enumerate(ff.FORMATS)} == {28, 32, 40}


def test_split_layout(tmp_path):
    root = ff.make_split(tmp_path / "d", train=3, test=2, val=1, odd=False)
    layout = find_layout(root)
    assert layout.kind == "split" and layout.parts == ["train", "val", "test"]
    counts = scan_folder(layout).counts()
    assert counts == {"train": [3, 3, 3], "val": [1, 1, 1], "test": [2, 2, 2]}


def test_links_to_folders_inside_a_class_are_not_followed(tmp_path):
    # A link to ".." would never end; one to another class would relabel its images.
    root = ff.make_flat(tmp_path / "d", per_class=3, odd=False)
    (root / "disk" / "up").symlink_to("..")
    (root / "disk" / "crosses").symlink_to(root / "cross")
    real = root / "square" / "more"
    real.mkdir()
    (real / "extra.png").write_bytes((root / "square" / "square_0000.png").read_bytes())
    layout = find_layout(root)
    per_class = [sum(f.label == k for f in layout.files) for k in range(3)]
    assert per_class == [3, 3, 4]  # real sub-folders still count


def test_gray_means_equal_channels():
    from convkit.training.folders import is_gray

    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (9, 9), dtype=np.uint8)
    assert is_gray(plane) and is_gray(np.dstack([plane] * 3))
    colour = np.dstack([plane] * 3)
    colour[8, 8, 1] ^= 1  # one pixel off, away from the sampled grid
    assert not is_gray(colour)


# --------------------------------------------------------------------------- splits


def test_stratified_take_keeps_each_class_share():
    labels = np.repeat([0, 1, 2], [200, 50, 10])
    taken, rest = stratified_take(labels, 52, np.random.default_rng(0))
    assert len(taken) == 52 and len(np.intersect1d(taken, rest)) == 0
    assert len(taken) + len(rest) == len(labels)
    per_class = np.bincount(labels[taken], minlength=3)
    np.testing.assert_allclose(per_class, np.array([200, 50, 10]) * 0.2, atol=1)


def test_folder_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat([0, 1, 2], [300, 60, 15])
    parts = np.array(["images"] * len(labels))
    a = folder_split(labels, parts, val_split=0.1, test_split=0.2, limit=None, seed=7)
    b = folder_split(labels, parts, val_split=0.1, test_split=0.2, limit=None, seed=7)
    c = folder_split(labels, parts, val_split=0.1, test_split=0.2, limit=None, seed=8)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test, c.test)
    everything = np.concatenate([a.train, a.val, a.test])
    assert sorted(everything.tolist()) == list(range(len(labels)))
    test_counts = np.bincount(labels[a.test], minlength=3)
    np.testing.assert_allclose(test_counts, [60, 12, 3], atol=1)
    val_counts = np.bincount(labels[a.val], minlength=3)
    np.testing.assert_allclose(val_counts, np.array([240, 48, 12]) * 0.1, atol=1)


def test_given_test_is_used_as_it_is_and_limit_leaves_it_whole():
    labels = np.array([0, 1] * 50)
    parts = np.array(["train"] * 80 + ["test"] * 20)
    split = folder_split(labels, parts, val_split=0.25, test_split=None, limit=40, seed=1)
    np.testing.assert_array_equal(split.test, np.arange(80, 100))
    assert len(split.train) + len(split.val) == 40 and split.limited
    assert np.bincount(labels[split.val]).tolist() == [5, 5]
    with pytest.raises(Exception, match="test/ folder"):
        folder_split(labels, parts, val_split=0.1, test_split=0.2, limit=None, seed=1)


def test_given_val_is_used_as_it_is():
    labels = np.array([0, 1] * 10)
    parts = np.array(["train"] * 12 + ["val"] * 4 + ["test"] * 4)
    split = folder_split(labels, parts, val_split=0.5, test_split=None, limit=None, seed=1)
    np.testing.assert_array_equal(split.val, np.arange(12, 16))
    np.testing.assert_array_equal(split.train, np.arange(12))


# --------------------------------------------------------------------------- preparation


def test_area_downscale_is_the_block_mean():
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    got = prepare_pixels(bgr, make_preparation([8, 12], "rgb"))
    rgb = bgr[:, :, ::-1].astype(np.float64)
    expected = rgb.reshape(8, 2, 12, 2, 3).mean(axis=(1, 3))
    assert got.shape == (8, 12, 3) and got.dtype == np.uint8
    assert np.abs(got - expected).max() <= 0.5 + 1e-9


def test_gray_uses_the_luma_weights_and_16_bit_is_rounded():
    rng = np.random.default_rng(4)
    bgr = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    got = prepare_pixels(bgr, make_preparation([6, 6], "gray"))[:, :, 0]
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    assert np.abs(got - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 0.5 + 1e-6
    deep = (rng.integers(0, 256, (6, 6), dtype=np.uint16) * 257).astype(np.uint16)
    deep[0, 0] = 65535
    deep[0, 1] = 128  # 128 / 257 < 0.5: rounds down
    shallow = prepare_pixels(deep, make_preparation([6, 6], "rgb"))
    np.testing.assert_array_equal(shallow[:, :, 0], np.rint(deep / 257).astype(np.uint8))
    assert (shallow[:, :, 0] == shallow[:, :, 2]).all()  # gray repeated


def test_keep_aspect_pads_with_black():
    image = np.full((20, 40, 3), 200, np.uint8)
    got = prepare_pixels(image, make_preparation([16, 16], "rgb", keep_aspect=True))
    rows = got[:, :, 0].max(axis=1)
    assert rows.tolist() == [0] * 4 + [200] * 8 + [0] * 4


def test_alpha_is_dropped():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 90, 10  # blue, nearly transparent
    assert prepare_pixels(bgra, make_preparation([4, 4], "rgb"))[0, 0].tolist() == [0, 0, 90]


def test_streamed_images_are_the_prepared_images(flat):
    prep = make_preparation([20, 20], "rgb")
    paths = sorted((flat / "square").iterdir())[:5]
    files = FileImages([_source(p) for p in paths], prep)
    assert files.shape == (5, 20, 20, 3) and len(files[1:3]) == 2
    batch = files.read_batch([4, 0])
    for row, index in zip(batch, [4, 0], strict=True):
        expected = prepare_pixels(read_image(_source(paths[index])), prep)
        np.testing.assert_array_equal(row, expected)


def test_default_image_size_is_the_median_capped():
    assert default_image_size(np.array([20, 30, 40]), np.array([10, 50, 60])) == [30, 50]
    assert default_image_size(np.array([480, 480]), np.array([640, 640])) == [48, 64]


# --------------------------------------------------------------------------- the command line


def _train(args, **kw):
    return _run_in_process(["train", *map(str, args)], **kw)


def test_on_bad_fail_names_the_file(flat, tmp_path, cli_error):
    result = _train([flat, "--on-bad", "fail", "--out", tmp_path / "o"])
    broken = str(flat / "disk" / ff.CORRUPT)
    cli_error(result, 1, r"PNG header", path=broken, only_line=False)
    last = result.stderr_lines[-1]  # the scan named it with its reason; then the stop
    assert last.startswith(f"convkit: error: {broken}: cannot read") and last.endswith(
        "(--on-bad is fail)"
    )
    assert "cross" in result.stderr and "square" in result.stderr  # the table came first
    assert not (tmp_path / "o").exists()  # no empty results folder left


def _folder(root: Path, classes: dict[str, int], corrupt: dict[str, int] | None = None) -> Path:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 255, (8, 8, 3), np.uint8))
    for name, count in (corrupt or {}).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff junk")
    return root


@pytest.mark.parametrize(
    "make, code, reason",
    [
        (lambda r: r.mkdir(), 1, r"no class folders: put each class's images"),
        (lambda r: _folder(r, {"a": 2}), 1, r"only one class folder \(a/\)"),
        (lambda r: _folder(r, {"a": 2, "b": 0}, {"b": 2}), 1, r"class 'b' has no readable"),
        (lambda r: _folder(r, {"a": 0, "b": 0}), 1, r"no image files in the class folders"),
    ],
    ids=["empty", "one-class", "unreadable-class", "no-images"],
)
def test_folders_that_cannot_be_trained_on(make, code, reason, tmp_path):
    root = tmp_path / "data"
    make(root)
    result = _train([root, "--out", tmp_path / "o"])
    assert result.exit_code == code and "Traceback" not in result.stderr, result
    last = result.stderr_lines[-1]  # unreadable files are named before it
    assert last.startswith("convkit: error: ") and re.search(reason, last), result
    assert not (tmp_path / "o").exists()


def test_loose_images_without_class_folders(tmp_path, cli_error):
    root = tmp_path / "data"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), np.zeros((4, 4), np.uint8))
    cli_error(_train([root]), 1, r"1 images but no class folders", path=str(root))


def test_a_test_class_that_train_lacks(tmp_path, cli_error):
    root = tmp_path / "d"
    _folder(root / "train", {"a": 2, "b": 2})
    _folder(root / "test", {"a": 1, "c": 1})
    cli_error(_train([root]), 1, r"test/ has class folders that train/ lacks: c")


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--image-size", "0x5"], r"--image-size must be HxW"),
        (["--image-size", "big"], r"--image-size must be HxW"),
        (["--class-weight", "heavy"], r"--class-weight must be balanced or none"),
        (["--on-bad", "maybe"], r"--on-bad must be skip or fail"),
        (["--test-split", "1.5"], r"--test-split must be between 0 and 1"),
        (["--data-dir", "x"], r"--data-dir applies to cifar10 and cifar100"),
        (["--memory-budget", "lots"], r"--memory-budget must be a positive amount"),
        (["--model", "small", "--spec", "dense(3)"], r"either --model or --spec"),
    ],
)
def test_bad_options(args, reason, flat, tmp_path, cli_error):
    cli_error(_train([flat, *args, "--out", tmp_path / "o"]), 2, reason)


def test_folder_options_with_cifar(cli_error):
    result = _train(["cifar10", "--gray", "--test-split", "0.3"])
    cli_error(result, 2, r"--gray, --test-split applies to a folder of images")


def test_no_data(cli_error):
    cli_error(_train([]), 2, r"give the folder of images to train on")


def test_results_inside_the_data_folder(flat, cli_error):
    result = _train([flat, "--out", flat / "results"])
    cli_error(result, 2, r"--out .* is inside the folder of images")
    assert not (flat / "results").exists()


def test_a_file_is_not_a_folder(flat, cli_error):
    image = flat / "disk" / "disk_0000.png"
    cli_error(_train([image]), 1, r"DATA must be a folder of class folders", path=str(image))


def test_a_missing_folder_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        find_layout(tmp_path / "nowhere")

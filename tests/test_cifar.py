"""The CIFAR loader: where it looks, the on-disk formats, the restricted unpickler, validation.

No network and no real CIFAR here: :mod:`cifar_fixtures` writes small sets in the exact
on-disk format (Python 2 pickles, folder and .tar.gz). Only the download test needs Keras.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import time
from pathlib import Path

import cifar_fixtures as cf
import numpy as np
import pytest

from convkit.errors import DataError, ForbiddenGlobal
from convkit.training import cifar

PER_BATCH = 20
TEST = 30


@pytest.fixture(autouse=True)
def _no_ambient_data(monkeypatch, tmp_path):
    """Nothing from this machine's ~/.keras or CONVKIT_DATA leaks into a test."""
    monkeypatch.delenv("CONVKIT_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


@pytest.fixture
def files():
    return cf.cifar10_files(per_batch=PER_BATCH, test=TEST, seed=3)


def expected_arrays(seed=3):
    pairs = [cf.make_images(PER_BATCH, seed=seed * 100 + i) for i in range(1, 6)]
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    return np.concatenate(xs), np.concatenate(ys), *cf.make_images(TEST, seed=seed * 100 + 99)


def load(path, **kwargs):
    return cifar.load("cifar10", path, allow_download=False, **kwargs)


# --------------------------------------------------------------------------- formats


@pytest.mark.keras  # compares with Keras's own CIFAR unpickler
def test_generated_files_are_python2_pickles(files):
    data = files["data_batch_1"]
    assert data.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert b"U\x04data" in data  # SHORT_BINSTRING keys: Python 2 str
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
    assert b"_codecs" not in data  # what Python 3 would have written for bytes
    # and Keras's own loader reads them, as it reads the real files
    from keras.src.datasets.npz_utils import RestrictedUnpickler

    d = RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    assert d[b"data"].shape == (PER_BATCH, 3072) and d[b"data"].dtype == np.uint8


def test_folder_form(tmp_path, files):
    folder = cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    data = load(folder)
    x_train, y_train, x_test, y_test = expected_arrays()
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (5 * PER_BATCH, 32, 32, 3)
    assert data.x_train.flags.c_contiguous
    np.testing.assert_array_equal(data.x_train, x_train)  # RGB, channels-last, in batch order
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert data.class_names == list(cf.CLASS_NAMES)
    assert data.source == str(folder)
    assert data.notes == []


def test_pixel_order_is_cifar_row_order(tmp_path):
    """A row holds 1024 red, then 1024 green, then 1024 blue values, row-major."""
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 1] = (10, 20, 30)  # row 0, column 1
    batch = cf.batch_dict(image, np.array([0]), batch_label="x")
    row = batch[b"data"][0]
    assert (row[1], row[1024 + 1], row[2048 + 1]) == (10, 20, 30)
    x, _ = cifar.parse_batch(cf.py2_pickle(batch), name="b", label_key="labels", num_classes=10)
    np.testing.assert_array_equal(x, image)


def test_archive_is_read_in_place(tmp_path, files):
    archive = cf.write_archive(tmp_path / "cifar-10-python.tar.gz", files, "cifar-10-batches-py")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    data = load(archive)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted
    folder = load(cf.write_folder(tmp_path / "f", files, "cifar-10-batches-py"))
    np.testing.assert_array_equal(data.x_train, folder.x_train)
    np.testing.assert_array_equal(data.y_test, folder.y_test)
    assert data.class_names == folder.class_names


@pytest.mark.parametrize("form", ["dir", "tar"])
def test_a_folder_holding_the_data(tmp_path, files, form):
    if form == "dir":
        cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    else:
        cf.write_archive(tmp_path / "cifar-10-python.tar.gz", files, "cifar-10-batches-py")
    assert len(load(tmp_path).x_train) == 5 * PER_BATCH


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_python3_pickles_load_too(protocol):
    x, y = cf.make_images(8, seed=1)
    data = pickle.dumps(cf.batch_dict(x, y, batch_label="b"), protocol=protocol)
    got, labels = cifar.parse_batch(data, name="b", label_key="labels", num_classes=10)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, y)


def test_missing_meta_falls_back_to_the_standard_names(tmp_path, files):
    del files["batches.meta"]
    data = load(cf.write_folder(tmp_path, files, "cifar-10-batches-py"))
    assert data.class_names == list(cifar.CIFAR10_NAMES)
    assert any("batches.meta is missing" in n for n in data.notes)


@pytest.mark.parametrize("form", ["dir", "tar"])
def test_cifar100_uses_the_fine_labels(tmp_path, form):
    where = cf.write_cifar100(tmp_path, form=form, train=60, test=20)
    data = cifar.load("cifar100", where, allow_download=False)
    assert data.x_train.shape == (60, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
    _, fine = cf.make_images(60, seed=1, num_classes=20)
    np.testing.assert_array_equal(data.y_train, fine)
    assert len(data.class_names) == 100 and data.class_names[3] == "fine-3"


# --------------------------------------------------------------------------- lookup order


def test_lookup_order(tmp_path, files, monkeypatch):
    info = cifar.DATASETS["cifar10"]
    assert cifar.locate(info) is None  # nothing anywhere
    # Keras 3's cache layout under $KERAS_HOME/datasets
    cache = tmp_path / "keras-home" / "datasets"
    keras3 = cf.write_folder(cache / "cifar-10-batches-py-target", files, "cifar-10-batches-py")
    assert cifar.locate(info).path == keras3
    # CONVKIT_DATA wins over the cache
    env_data = cf.write_archive(tmp_path / "env" / "c.tar.gz", files, "cifar-10-batches-py")
    monkeypatch.setenv("CONVKIT_DATA", str(env_data))
    assert cifar.locate(info) == cifar.Location("tar", env_data)
    # --data-dir wins over both
    given = cf.write_folder(tmp_path / "given", files, "cifar-10-batches-py")
    assert cifar.locate(info, tmp_path / "given").path == given


@pytest.mark.parametrize(
    "layout",
    [
        "cifar-10-batches-py",  # older Keras
        "cifar-10-batches-py.tar.gz",  # older Keras's download
        "cifar-10-batches-py-target_archive",  # Keras 3's download, before extraction
    ],
)
def test_other_keras_cache_layouts(tmp_path, files, layout):
    cache = tmp_path / "keras-home" / "datasets"
    if layout.endswith(("gz", "archive")):
        cf.write_archive(cache / layout, files, "cifar-10-batches-py")
    else:
        cf.write_folder(cache, files, layout)
    data = cifar.load("cifar10", allow_download=False)
    assert len(data.x_test) == TEST


def test_bad_convkit_data_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVKIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="CONVKIT_DATA .*no such file"):
        cifar.load("cifar10", allow_download=False)


def test_nothing_found_says_what_to_download_and_where(tmp_path):
    with pytest.raises(DataError) as err:
        cifar.load("cifar10", allow_download=False)
    message = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "pass it with `data_dir`" in message  # the command line shows --data-dir
    assert str(tmp_path / "keras-home" / "datasets") in message


@pytest.mark.keras
def test_a_failed_download_is_a_clear_error_not_a_hang(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        cifar.load(
            "cifar10", download_url="http://127.0.0.1:9/cifar-10-python.tar.gz", download_timeout=3
        )
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert "download failed" in message
    assert "cifar-10-python.tar.gz" in message and "`data_dir`" in message


# --------------------------------------------------------------------------- unsafe files


def test_the_malicious_payload_is_real(tmp_path):
    """Control: plain pickle.loads would run the command (so the next tests mean something)."""
    marker = tmp_path / "ran"
    pickle.loads(cf.malicious_pickle(marker))
    assert marker.exists()


@pytest.mark.parametrize("which", ["data_batch_2", "test_batch", "batches.meta"])
def test_malicious_batch_is_refused_and_runs_nothing(tmp_path, files, which):
    marker = tmp_path / "pwned"
    files[which] = cf.malicious_pickle(marker)
    folder = cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    with pytest.raises(
        DataError, match=r"refused to load: the file asks to run (posix|os)\.system"
    ):
        load(folder)
    assert not marker.exists()


def test_malicious_member_of_an_archive_is_refused(tmp_path, files):
    marker = tmp_path / "pwned"
    files["data_batch_5"] = cf.malicious_pickle(marker, inside_batch=False)
    archive = cf.write_archive(tmp_path / "c.tar.gz", files, "cifar-10-batches-py")
    with pytest.raises(DataError, match="data_batch_5: refused"):
        load(archive)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"),
        ("__builtin__", "eval"),
        ("subprocess", "Popen"),
        ("os", "system"),
        ("numpy", "load"),
        ("numpy.lib.npyio", "load"),
        ("builtins", "getattr"),
    ],
)
def test_only_the_allow_list_resolves(module, name):
    with pytest.raises(ForbiddenGlobal):
        cifar.SafeUnpickler(io.BytesIO(b"")).find_class(module, name)


def test_allowed_helpers_refuse_other_uses():
    encode = cifar.SafeUnpickler(io.BytesIO(b"")).find_class("_codecs", "encode")
    assert encode("ab", "latin1") == b"ab"
    with pytest.raises(pickle.UnpicklingError):
        encode("ab", "rot13")
    empty = cifar.SafeUnpickler(io.BytesIO(b"")).find_class("builtins", "bytes")
    assert empty() == b""
    with pytest.raises(pickle.UnpicklingError):
        empty(10**12)


# --------------------------------------------------------------------------- damaged files


def _batch(changes=None):
    x, y = cf.make_images(4, seed=0)
    d = cf.batch_dict(x, y, batch_label="b")
    d.update(changes or {})
    return cf.py2_pickle(d)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"this is not a pickle at all", "corrupt pickle"),
        (_batch()[:5000], "truncated"),
        (cf.py2_pickle([1, 2, 3]), "expected a dict, found list"),
        (cf.py2_pickle({b"labels": [1]}), "no 'data'"),
        (_batch({b"data": np.zeros((4, 3000), np.uint8)}), r"\(N, 3072\) uint8 .*\(4, 3000\)"),
        (_batch({b"data": np.zeros((4, 3072), np.float32)}), "float32"),
        (_batch({b"data": [[0] * 3072] * 4}), "'data' is a list"),
        (_batch({b"labels": [0, 1, 2]}), "should be 4 integers"),
        (
            _batch({b"labels": [0, 1, 2, 10]}),
            r"labels out of range: found 0\.\.10, expected 0\.\.9",
        ),
        (_batch({b"labels": [0, 1, 2, -1]}), "out of range"),
        (_batch({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}), "no images"),
    ],
    ids=[
        "empty",
        "garbage",
        "truncated",
        "not-a-dict",
        "no-data",
        "wrong-width",
        "wrong-dtype",
        "data-not-array",
        "label-count",
        "label-too-big",
        "label-negative",
        "no-images",
    ],
)
def test_damaged_batch(tmp_path, files, data, reason):
    files["data_batch_3"] = data
    folder = cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    with pytest.raises(DataError, match=reason) as err:
        load(folder)
    assert str(folder / "data_batch_3") in str(err.value)


def test_bad_meta(tmp_path, files):
    files["batches.meta"] = cf.py2_pickle({b"label_names": [b"a", b"b"]})
    with pytest.raises(DataError, match="expected 10 'label_names', found 2"):
        load(cf.write_folder(tmp_path, files, "cifar-10-batches-py"))


def test_partial_folder_lists_what_is_missing(tmp_path, files):
    del files["data_batch_4"], files["test_batch"]
    folder = cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    with pytest.raises(DataError, match="missing data_batch_4, test_batch"):
        load(folder)
    # found but partial is an error, not a fall-through to the Keras cache
    with pytest.raises(DataError, match="incomplete CIFAR-10: missing data_batch_4, test_batch"):
        load(tmp_path)


def test_partial_archive(tmp_path, files):
    del files["data_batch_1"]
    archive = cf.write_archive(tmp_path / "c.tar.gz", files, "cifar-10-batches-py")
    with pytest.raises(DataError, match="incomplete CIFAR-10 archive: missing data_batch_1"):
        load(archive)


def test_truncated_archive(tmp_path, files):
    archive = cf.write_archive(tmp_path / "c.tar.gz", files, "cifar-10-batches-py")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match=r"corrupt or truncated archive \(.*truncated"):
        load(archive)


def test_members_outside_the_data_folder_are_ignored(tmp_path, files):
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(f"elsewhere/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    missing = "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch"
    with pytest.raises(DataError, match=f"incomplete CIFAR-10 archive: missing {missing} "):
        load(archive)


@pytest.mark.parametrize("what", ["text", "empty-dir", "missing"])
def test_data_dir_that_is_not_cifar(tmp_path, what):
    path = tmp_path / what
    if what == "text":
        path.write_text("hello")
        reason = " is a file but not a tar archive; expected the cifar-10-batches-py folder"
    elif what == "empty-dir":
        path.mkdir()
        reason = ": no CIFAR-10 data there; expected the cifar-10-batches-py folder"
    else:
        reason = ": no such file or directory"
    with pytest.raises(DataError) as err:
        load(path)
    # the parameter in backticks: the command line shows --data-dir
    assert str(err.value).startswith(f"`data_dir` {str(path)!r}{reason}"), str(err.value)


def test_unknown_dataset():
    from convkit.errors import UsageError

    with pytest.raises(UsageError, match="unknown dataset 'mnist'"):
        cifar.load("mnist", allow_download=False)


def test_fixture_classes_are_balanced_and_distinct():
    x, y = cf.make_images(200, seed=0)
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    assert x.dtype == np.uint8 and x.std() > 30
    assert Path(cf.__file__).name == "cifar_fixtures.py"

"""Hostile inputs against ``predict`` and ``train-cifar``: model files, CIFAR archives and
pickles, and the files a run writes (issue 9).

Each test is one wall, run through the real CLI in a subprocess under a memory cap and a
timeout (tests/hostile.py), asserting the exit code, exactly one error line (its whole
message), no traceback, nothing written outside the target, inputs unchanged and no
leftovers in ``$TMPDIR``. A control case shows, where it is cheap, that the hostile input
really does harm without the wall. The files are generated, small and quick to make: the
walls read sizes from headers, so a bomb of a few kilobytes is enough to be refused.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import cifar_fixtures as cf
import numpy as np
import pytest
from hostile import KERAS_CAP, assert_refused, run_capped, snapshot

MIB = 1 << 20


# --------------------------------------------------------------------------- helpers


def _zip(path: Path, members: dict[str, bytes], *, deflate: bool = True) -> Path:
    kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", kind, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _picture(root: Path) -> Path:
    import cv2

    path = root / "pic.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))
    return path


@contextmanager
def _file_size_limit(nbytes: int):
    """Children started inside inherit a file-size limit (Python ignores SIGXFSZ, so a
    write past it fails with EFBIG); this process writes nothing meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny classifier (.keras and legacy .h5) and one that declares a 100000x100000
    input, made by Keras itself."""
    from convkit.heavy import import_keras

    keras = import_keras()
    folder = tmp_path_factory.mktemp("models")
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))
    tiny = keras.Model(inputs, outputs)
    big = keras.Input((100_000, 100_000, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(big))
    huge = keras.Model(big, keras.layers.Dense(10, activation="softmax")(pooled))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiny.save(folder / "tiny.keras")
        tiny.save(folder / "tiny.h5")
        huge.save(folder / "huge.keras")
    return {p.stem if p.suffix != ".h5" else "h5": p for p in folder.iterdir()}


def _copy_model(src: Path, dst: Path, *, extra: dict[str, bytes] | None = None, config=None):
    """``src``'s members, stored as Keras stores them, with ``config`` applied to its
    config.json and ``extra`` members added."""
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config(json.loads(members["config.json"]))).encode()
    return _zip(dst, {**members, **(extra or {})}, deflate=False)


# --------------------------------------------------------------------------- 1. model archives


def _bombs() -> dict[str, tuple[dict[str, bytes], str]]:
    """Archives refused from their central directory, and the message each gets."""
    config = b'{"class_name": "Functional"}'
    return {
        "extraction": (
            {"config.json": config, **{f"assets/a{i}": bytes(2 * MIB) for i in range(4)}},
            "the member 'assets/a0' would expand from 2.0 KiB to 2.0 MiB, more than 100 "
            "times: a damaged or hostile file",
        ),
        "config": (
            {"config.json": b" " * (20 * MIB)},
            "its config.json would take 20.0 MiB, more than a model's configuration may "
            "(16.0 MiB): a damaged or hostile file",
        ),
        "members": (
            {"config.json": config, **{f"assets/{i}": b"" for i in range(64)}},
            "the archive has 65 members, more than a model has (64)",
        ),
        "climbs out": (
            {"config.json": config, "../../escaped": b"x"},
            "an unsafe member name '../../escaped' in the archive",
        ),
        "absolute": (
            {"config.json": config, "/tmp/escaped": b"x"},
            "an unsafe member name '/tmp/escaped' in the archive",
        ),
        "many small": (
            {"config.json": config, **{f"assets/b{i}": bytes(MIB) for i in range(40)}},
            "would expand to 40.0 MiB, more than 100 times: a damaged or hostile file",
        ),
    }


@pytest.mark.parametrize("kind", list(_bombs()))
def test_a_model_archive_that_would_expand_is_refused_before_keras_reads_it(tmp_path, kind):
    members, message = _bombs()[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile: names it would not write itself
        _zip(tmp_path / "bomb.keras", members)
    _picture(tmp_path)
    before = snapshot(tmp_path)
    run = run_capped(["predict", "bomb.keras", "pic.png"], tmp_path)
    assert_refused(run, before, tmp_path, exit_code=1, reason="bomb.keras: cannot load the model: ")
    assert run.error_lines[0].endswith(message), run
    assert "Warning" not in run.stderr, run


def test_a_model_over_max_memory_is_refused(tmp_path):
    members = {"config.json": b"{}", "model.weights.h5": bytes(3 * MIB)}
    _zip(tmp_path / "big.keras", members, deflate=False)
    _picture(tmp_path)
    before = snapshot(tmp_path)
    run = run_capped(["predict", "big.keras", "pic.png", "--max-memory", "2M"], tmp_path)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="big.keras: cannot load the model: it would expand to 3.0 MiB, over "
        "--max-memory (2.0 MiB)",
    )


@pytest.mark.keras
def test_control_keras_own_guards_let_these_archives_through(tmp_path):
    """Keras refuses a member only past 256 MiB (extraction) or 4 GiB (read into memory),
    and extracts the whole archive as soon as it has a fourth member."""
    from keras.src.saving import saving_lib

    for kind in ("extraction", "config", "many small"):
        members, _ = _bombs()[kind]
        with zipfile.ZipFile(_zip(tmp_path / f"{kind}.keras", members)) as archive:
            saving_lib._reject_zip_extract_bomb(archive)  # no error
            saving_lib._reject_zip_bomb(archive, "config.json")  # no error
            expands = sum(info.file_size for info in archive.infolist())
        assert expands > 100 * (tmp_path / f"{kind}.keras").stat().st_size


@pytest.mark.keras
def test_keras_temporary_folders_are_removed_when_loading_fails(tmp_path, models):
    """A model that passes the checks but has assets: Keras extracts it into $TMPDIR, and
    the extraction fails (a file-size limit). Nothing is left behind."""
    _copy_model(models["tiny"], tmp_path / "assets.keras", extra={"assets/blob": os.urandom(MIB)})
    _picture(tmp_path)
    before = snapshot(tmp_path)
    with _file_size_limit(MIB // 2):
        run = run_capped(["predict", "assets.keras", "pic.png"], tmp_path, cap=KERAS_CAP)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="assets.keras: cannot load the model: no room for its temporary files "
        "(File too large)",
    )


@pytest.mark.keras
def test_control_keras_alone_leaves_its_temporary_folder(tmp_path, models):
    _copy_model(models["tiny"], tmp_path / "assets.keras", extra={"assets/blob": os.urandom(MIB)})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = "import keras, sys; keras.saving.load_model(sys.argv[1])"
    env = {**os.environ, "TMPDIR": str(scratch), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with _file_size_limit(MIB // 2):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "assets.keras")],
            capture_output=True,
            env=env,
            timeout=120,
        )
    assert proc.returncode != 0 and b"File too large" in proc.stderr
    assert list(scratch.iterdir())  # Keras's extraction folder, left behind


@pytest.mark.keras
def test_a_configuration_that_declares_more_weights_than_the_file_is_refused(tmp_path, models):
    def widen(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["units"] = 1_000_000
        return config

    _copy_model(models["tiny"], tmp_path / "wide.keras", config=widen)
    _picture(tmp_path)
    before = snapshot(tmp_path)
    run = run_capped(["predict", "wide.keras", "pic.png"], tmp_path, cap=KERAS_CAP)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="wide.keras: cannot load the model: its configuration declares more weights "
        "than the file holds (a weight kernel of shape (192, 1000000) takes the total past "
        "16.0 MiB): a damaged or hostile file",
    )
    # Control: what Keras would have allocated for that one kernel, from a file of 20 kB.
    assert 192 * 1_000_000 * 4 > 30_000 * (tmp_path / "wide.keras").stat().st_size


@pytest.mark.keras
def test_a_legacy_h5_model_saved_by_keras_passes_the_checks(tmp_path, models):
    _picture(tmp_path)
    run = run_capped(["predict", models["h5"], "pic.png", "--json"], tmp_path, cap=KERAS_CAP)
    assert run.exit_code == 0, run
    (record,) = json.loads(run.stdout)  # the JSON contract: one record per input
    assert len(record["predictions"]) == 3


def _hdf5(path: Path, build) -> Path:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps({"class_name": "Sequential"})
        build(handle, h5py)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "compressed",
            "the dataset 'model_weights/zeros' would expand from 63.8 KiB to 64.0 MiB, more "
            "than 100 times: a damaged or hostile file",
        ),
        (
            "external link",
            "an external link 'model_weights/elsewhere' (a model's data is in its own file): "
            "a damaged or hostile file",
        ),
        (
            "external storage",
            "the dataset 'model_weights/outside' is stored outside the file: a damaged or "
            "hostile file",
        ),
    ],
)
def test_a_legacy_h5_model_is_checked_too(tmp_path, kind, message):
    (tmp_path / "secret").write_bytes(b"\x00" * 64)

    def build(handle, h5py):
        group = handle.create_group("model_weights")
        if kind == "compressed":
            group.create_dataset(
                "zeros", data=np.zeros(16 * MIB, np.float32), chunks=(MIB,), compression="gzip"
            )
        elif kind == "external link":
            group["elsewhere"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
        else:
            group.create_dataset(
                "outside", (16,), "f4", external=[(str(tmp_path / "secret"), 0, 64)]
            )

    _hdf5(tmp_path / "model.h5", build)
    _picture(tmp_path)
    before = snapshot(tmp_path)
    run = run_capped(["predict", "model.h5", "pic.png"], tmp_path)
    assert_refused(
        run, before, tmp_path, exit_code=1, reason=f"model.h5: cannot load the model: {message}"
    )


# --------------------------------------------------------------------------- 2. model input


@pytest.mark.keras
def test_a_model_input_past_the_memory_budget_is_refused_before_any_image(tmp_path, models):
    _picture(tmp_path)
    (tmp_path / "huge.keras").write_bytes(models["huge"].read_bytes())
    before = snapshot(tmp_path)
    run = run_capped(["predict", "huge.keras", "pic.png"], tmp_path, cap=KERAS_CAP)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="huge.keras: the model takes 100000x100000x3 images: 111.8 GiB each as "
        "float32 (223.5 GiB with its layers' outputs), over --max-memory (4.0 GiB)",
    )
    # Control: the one image predict would have resized into, as float32.
    assert 100_000 * 100_000 * 3 * 4 == 120_000_000_000


@pytest.mark.keras
def test_the_batches_fit_the_budget(models):
    from convkit.training.modelfile import load_model
    from convkit.training.predict import inspect_model, plan_batches

    model = load_model(models["tiny"])
    shape = inspect_model(model)
    per_image = 8 * 8 * 3 * 4 + (8 * 8 * 3 + 4) * 4  # the input, then Flatten's and Dense's
    assert plan_batches(model, shape, 10**9, name="m") == (256, 64)
    assert plan_batches(model, shape, 2 * 768 * 5, name="m") == (5, 2 * 768 * 5 // 2 // per_image)
    assert plan_batches(model, shape, per_image, name="m") == (1, 1)


def test_a_pipe_is_not_a_model_nor_labels(tmp_path):
    from convkit.errors import ModelError
    from convkit.training.labels import read_labels

    os.mkfifo(tmp_path / "model.keras")
    os.mkfifo(tmp_path / "labels.txt")
    _picture(tmp_path)
    before = snapshot(tmp_path)
    run = run_capped(["predict", "model.keras", "pic.png"], tmp_path, timeout=30)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="model.keras: not a regular file (a model is a .keras or .h5 file)",
    )
    with pytest.raises(ModelError) as caught:
        read_labels(tmp_path / "labels.txt")  # would block forever on open() or read()
    assert caught.value.message == "cannot read the labels: not a regular file"
    (tmp_path / "big.txt").write_bytes(b"cat\n" * (4 * MIB + 1))
    with pytest.raises(ModelError) as caught:
        read_labels(tmp_path / "big.txt")
    assert caught.value.message == (
        "cannot read the labels: 16,777,220 bytes, more than class names take (16,777,216)"
    )


# --------------------------------------------------------------------------- 3. CIFAR archives


def _cifar_root(tmp_path: Path, files: dict[str, bytes] | None = None, **members) -> Path:
    """A .tar.gz of small CIFAR-10 files (``files``), with ``members`` (name -> bytes or a
    TarInfo) added after them."""
    files = files if files is not None else cf.cifar10_files(per_batch=10, test=10)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                archive.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def _train(tmp_path: Path, *args: object):
    before = snapshot(tmp_path)
    run = run_capped(["train-cifar", "--no-download", "--out", "out", *args], tmp_path)
    return run, before


def test_a_member_larger_than_any_real_cifar_file_is_refused_before_it_is_read(tmp_path):
    files = cf.cifar10_files(per_batch=10, test=10)
    files["data_batch_1"] = bytes(32 * MIB + 1)
    _cifar_root(tmp_path, files)
    run, before = _train(tmp_path, "--data-dir", "cifar-10-python.tar.gz")
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_1: too large for a "
        "CIFAR file (33,554,433 bytes; the real one is under 33,554,432)",
    )


def test_control_plain_tarfile_decompresses_it_whole(tmp_path):
    files = cf.cifar10_files(per_batch=10, test=10)
    files["data_batch_1"] = bytes(32 * MIB + 1)
    path = _cifar_root(tmp_path, files)
    with tarfile.open(path) as archive:
        data = archive.extractfile("cifar-10-batches-py/data_batch_1").read()
    assert len(data) > 100 * path.stat().st_size  # 33 MB out of 290 kB


def test_an_archive_holding_more_than_cifar_is_refused(tmp_path):
    _cifar_root(tmp_path, **{"cifar-10-batches-py/readme.html": bytes(209 * MIB)})
    run, before = _train(tmp_path, "--data-dir", "cifar-10-python.tar.gz")
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="cifar-10-python.tar.gz: the archive holds more than 218,169,344 bytes, more "
        "than a CIFAR-10 archive can (a corrupt or malicious file)",
    )


def test_an_archive_of_many_members_is_refused(tmp_path):
    _cifar_root(tmp_path, **{f"junk/{i}": b"" for i in range(1000)})
    run, before = _train(tmp_path, "--data-dir", "cifar-10-python.tar.gz")
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="cifar-10-python.tar.gz: the archive has more than 1,000 members; a CIFAR-10 "
        "archive has 9",
    )


def test_a_huge_extended_header_is_refused_before_it_is_read(tmp_path):
    info = tarfile.TarInfo("cifar-10-batches-py/notes")
    info.pax_headers = {"comment": "x" * MIB}
    _cifar_root(tmp_path, notes=info)
    run, before = _train(tmp_path, "--data-dir", "cifar-10-python.tar.gz")
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="cifar-10-python.tar.gz: corrupt or truncated archive (an extended header of "
        "1,048,593 bytes)",
    )


def test_archive_members_never_land_outside_or_anywhere(tmp_path):
    files = cf.cifar10_files(per_batch=10, test=10)
    batch = files.pop("data_batch_1")
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _cifar_root(
        tmp_path,
        files,
        **{"../escaped": batch, "/tmp/convkit-escaped": batch, "data_batch_1": link},
    )
    run, before = _train(tmp_path, "--data-dir", "cifar-10-python.tar.gz")
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="cifar-10-python.tar.gz: incomplete CIFAR-10 archive: missing data_batch_1 "
        "(all of data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, "
        "test_batch are needed, in a cifar-10-batches-py folder)",
    )
    assert not (tmp_path.parent / "escaped").exists()
    assert not Path("/tmp/convkit-escaped").exists()


# --------------------------------------------------------------------------- 4. pickles


def _laughs(levels: int = 9) -> bytes:
    """A valid CIFAR batch whose labels are ten references to ten references to ... to a
    list of ten labels: 10**levels labels from 37 kB."""
    labels: list = [0] * 10
    for _ in range(levels - 1):
        labels = [labels] * 10
    x, y = cf.make_images(10, seed=1)
    batch = cf.batch_dict(x, y, batch_label="laughs")
    batch[b"labels"] = labels
    return pickle.dumps(batch, protocol=2)


def _nested(depth: int) -> bytes:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return pickle.dumps({b"data": value, b"labels": [0]}, protocol=2)


def _pop_mark_then(payload: bytes) -> bytes:
    """MARK then POP (which drops the mark, as the unpickler does), before ``payload``."""
    return b"\x80\x02(0" + payload[2:]


def _reconstruct_bomb() -> bytes:
    """``numpy.core.multiarray._reconstruct(ndarray, (1000000, 1000000), b'b')``: 1 TB."""
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + b"J"
        + struct.pack("<i", 1_000_000)
        + b"J"
        + struct.pack("<i", 1_000_000)
        + b"\x86U\x01b\x87R."
    )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("laughs", "refused to load: it holds more than 500,000 objects, references counted"),
        (
            "laughs behind a mark",
            "refused to load: it holds more than 500,000 objects, references counted",
        ),
        ("deep", "refused to load: its objects nest more than 32 deep"),
        ("long", "refused to load: it holds more than 500,000 objects"),
        ("reconstruct", "not a CIFAR batch: corrupt pickle (unexpected use of numpy _reconstruct)"),
    ],
)
def test_a_pickle_that_would_cost_more_than_its_size_is_refused(tmp_path, kind, message):
    files = cf.cifar10_files(per_batch=10, test=10)
    files["data_batch_2"] = {
        "laughs": _laughs,
        "laughs behind a mark": lambda: _pop_mark_then(_laughs()),
        "deep": lambda: _nested(100),
        "long": lambda: pickle.dumps([0] * 600_000, protocol=2),
        "reconstruct": _reconstruct_bomb,
    }[kind]()
    cf.write_folder(tmp_path, files, "cifar-10-batches-py")
    run, before = _train(tmp_path, "--data-dir", "cifar-10-batches-py")
    end = (
        ""
        if kind == "reconstruct"
        else " (a corrupt or malicious file; get a fresh copy of the data)"
    )
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason=f"cifar-10-batches-py/data_batch_2: {message}",
    )
    assert run.error_lines[0].endswith(message + end), run


def test_control_the_laughs_are_a_billion_labels():
    """Unpickled without the check, the file is a few kB of objects; anything that walks
    it (``np.asarray`` did: 7.7 GiB, 54 s) visits a billion labels."""
    labels = pickle.loads(_laughs())[b"labels"]
    seen: dict[int, int] = {}

    def leaves(node) -> int:
        if not isinstance(node, list):
            return 1
        if id(node) not in seen:
            seen[id(node)] = sum(leaves(child) for child in node)
        return seen[id(node)]

    assert leaves(labels) == 10**9
    assert len(_laughs()) < 40_000


def test_control_numpy_reconstruct_allocates_what_it_is_told():
    reconstruct = np.zeros(0).__reduce__()[0]
    with pytest.raises(MemoryError):  # 1 TB asked for by 100 bytes of pickle
        reconstruct(np.ndarray, (1_000_000, 1_000_000), b"b")


def test_real_pickles_of_every_protocol_pass_the_check():
    from convkit.training.unpickle import check_pickle

    x, y = cf.make_images(50, seed=2)
    batch = cf.batch_dict(x, y, batch_label="b")
    for data in [cf.py2_pickle(batch)] + [pickle.dumps(batch, protocol=p) for p in range(6)]:
        check_pickle(data, name="b")


def test_a_model_too_large_to_train_is_refused_before_anything_is_built(tmp_path):
    cf.write_folder(tmp_path, cf.cifar10_files(per_batch=10, test=10), "cifar-10-batches-py")
    run, before = _train(
        tmp_path, "--data-dir", "cifar-10-batches-py", "--spec", "conv2d(100000, 3)"
    )
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=2,
        reason="training this model on batches of 64 would need 56.4 GiB (float32 weights, "
        "their gradients and Adam's moments: 13.5 GiB; a batch's layer outputs and their "
        "gradients: 42.9 GiB), more than --max-memory 4.0 GiB: use a smaller model or "
        "--batch-size, or raise --max-memory",
    )


def test_control_that_model_has_900_million_weights():
    """Before the check, train-cifar built it: 11.4 GiB, then SIGABRT after 17 s."""
    from convkit.arithmetic.spec import parse_spec
    from convkit.arithmetic.stack import analyze_spec

    stack = analyze_spec(parse_spec("conv2d(100000, 3)"), (32, 32, 3))
    head = 30 * 30 * 100_000 * 10 + 10  # the flatten and dense(10) convkit adds
    assert stack.total_params + head == 902_800_010


@pytest.mark.keras
def test_a_training_run_leaves_nothing_in_tmpdir(tmp_path):
    """tf.data's functions are not converted by AutoGraph, which would leave one source file
    per function in $TMPDIR (removed at exit only by an atexit handler)."""
    cf.write_folder(tmp_path, cf.cifar10_files(per_batch=10, test=10), "cifar-10-batches-py")
    args = ["--data-dir", "cifar-10-batches-py", "--epochs", "1", "--augment", "-q"]
    run = run_capped(
        ["train-cifar", "--no-download", "--out", "out", *args], tmp_path, cap=KERAS_CAP
    )
    assert run.exit_code == 0, run
    assert not list((tmp_path / "tmp").iterdir())
    assert not list(tmp_path.rglob("*.part"))


# ---------------------------------------------------------------- 5. no input overwritten


@pytest.mark.parametrize("how", ["data archive", "spec file", "hard link"])
def test_no_result_of_a_run_overwrites_what_it_reads(tmp_path, how):
    (tmp_path / "out").mkdir()
    archive = _cifar_root(tmp_path)
    spec = "conv2d(4, 3) flatten"
    if how == "data archive":
        archive.rename(tmp_path / "out" / "model.keras")
        args = ["--data-dir", "out/model.keras", "--overwrite"]
        reason = "out/model.keras: this output would overwrite the CIFAR-10 file out/model.keras"
    elif how == "spec file":
        (tmp_path / "out" / "labels.txt").write_text(spec)
        args = ["--data-dir", archive.name, "--spec", "out/labels.txt", "--overwrite"]
        reason = "out/labels.txt: this output would overwrite the spec file out/labels.txt"
    else:
        os.link(archive, tmp_path / "out" / "history.csv")
        args = ["--data-dir", archive.name, "--overwrite"]
        reason = (
            "out/history.csv: this output would overwrite the CIFAR-10 file cifar-10-python.tar.gz"
        )
    run, before = _train(tmp_path, *args)
    assert_refused(run, before, tmp_path, exit_code=2, reason=reason + " (choose another output)")


def test_control_overwrite_would_have_removed_the_data(tmp_path):
    from convkit.training.runfolder import prepare_out

    (tmp_path / "out").mkdir()
    _cifar_root(tmp_path).rename(tmp_path / "out" / "model.keras")
    prepare_out(tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "model.keras").exists()


def test_a_run_state_cannot_point_the_checkpoint_elsewhere(tmp_path):
    _cifar_root(tmp_path)
    (tmp_path / "victim.keras").write_bytes(b"precious")
    (tmp_path / "out").mkdir()
    state = {
        "config": {"epochs": 2},
        "seed": 1,
        "source": str(tmp_path / "cifar-10-python.tar.gz"),
        "dataset": "cifar10",
        "class_names": None,
        "epochs_completed": 1,
        "checkpoint": "../victim.keras",
    }
    (tmp_path / "out" / "run.json").write_text(json.dumps(state))
    before = snapshot(tmp_path)
    run = run_capped(["train-cifar", "--resume", "out", "--epochs", "3"], tmp_path)
    assert_refused(
        run,
        before,
        tmp_path,
        exit_code=1,
        reason="out/run.json: unreadable run state (its checkpoint '../victim.keras' is "
        "neither checkpoint.keras nor model.keras)",
    )

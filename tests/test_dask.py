"""The batch commands on a real Dask cluster (``--scheduler``, ``--scheduler-file``).

A module fixture starts a real scheduler and two worker processes on 127.0.0.1 (every port,
dashboards included, on the loopback), the workers in a working folder of their own, as on
a real cluster: convkit must send them absolute paths. Each result is compared with a local
run byte for byte, or with OpenCV itself. Select these tests with ``-m dask``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.dask

distributed = pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session: its whole group, by PID."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes (nannies restart a dead one)."""
    root = tmp_path_factory.mktemp("cluster")
    scratch, workdir = root / "scratch", root / "workers"
    scratch.mkdir()
    workdir.mkdir()
    file = root / "scheduler.json"
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    # An input that kills the worker running it is given up after two deaths (default: 4).
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"
    # One task per worker thread at a time: none waits queued beside a deadly one.
    env["DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION"] = "1.0"
    procs = []
    log = (root / "cluster.log").open("wb")
    try:
        procs.append(
            subprocess.Popen(
                [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0"]
                + ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)],
                cwd=root,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 30
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert file.exists(), (root / "cluster.log").read_text()
        procs.append(
            subprocess.Popen(
                [str(DASK), "worker", "--scheduler-file", str(file), "--nworkers", "2"]
                + ["--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address"]
                + ["127.0.0.1:0", "--local-directory", str(scratch)],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        client = distributed.Client(scheduler_file=str(file), timeout=30)
        try:
            client.wait_for_workers(2, timeout=30)
            yield SimpleNamespace(file=file, client=client, root=root)
        finally:
            client.close()
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


def _images(folder: Path, count: int, *, size=(40, 56), bad: int | None = None) -> list[str]:
    """``count`` random colour PNGs in ``folder`` (``bad``: that one is not an image)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    names = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        if i == bad:
            path.write_bytes(b"not an image at all")
        else:
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            path.write_bytes(cv2.imencode(".png", image)[1].tobytes())
        names.append(str(path.relative_to(folder.parent)))
    return names


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def test_filter_and_grayscale_equal_a_local_run_byte_for_byte(cluster, tmp_path, run_cli):
    _images(tmp_path / "in", 7, bad=3)
    remote = ["--scheduler-file", cluster.file]
    for args in (
        ["filter", "in", "-k", "sobel-x", "-k", "sharpen", "--gray", "--raw", "raw"],
        ["grayscale", "in", "--resize", "50%"],
    ):
        local = run_cli([*args, "-d", "local"], cwd=tmp_path)
        there = run_cli([*args, "-d", "there", *remote], cwd=tmp_path)
        # The corrupt file in the middle: the same one line, named as the user wrote it,
        # the same summary and exit code; the other six written.
        assert local.exit_code == there.exit_code == 1, there
        assert "convkit: error: in/img03.png: " in there.stderr
        assert sorted(local.stderr_lines) == sorted(there.stderr_lines), there
        assert _files(tmp_path / "there") == _files(tmp_path / "local")
        assert len(_files(tmp_path / "there")) in (6, 12)
        for name in ("local", "there"):
            (tmp_path / name).rename(tmp_path / f"{name}-{args[0]}")
    assert _files(tmp_path / "raw")  # --raw arrays written by the workers, beside the cwd

    def probe():
        cv2 = sys.modules.get("cv2")
        return cv2 is not None and cv2.getNumThreads(), "tensorflow" in sys.modules

    # Each 1-thread worker ran OpenCV on 1 thread, and loaded no TensorFlow for images (the
    # first test on this module's cluster: no Keras test has run on it yet).
    states = cluster.client.run(probe)
    assert any(threads for threads, _ in states.values()), states
    assert all(threads in (False, 1) for threads, _ in states.values()), states
    assert not any(tf for _, tf in states.values()), states


def test_info_json_on_the_cluster_is_the_local_one(cluster, tmp_path, run_cli):
    _images(tmp_path / "in", 4, bad=1)
    local = run_cli(["info", "in", "--json"], cwd=tmp_path)
    there = run_cli(["info", "in", "--json", "--scheduler-file", cluster.file], cwd=tmp_path)
    assert local.exit_code == there.exit_code == 1
    assert there.stdout == local.stdout


@pytest.mark.keras
def test_conv_on_the_cluster_equals_a_local_run_and_every_worker_has_the_same_filters(
    cluster, tmp_path, run_cli
):
    _images(tmp_path / "in", 4, size=(24, 30))
    args = ["conv", "in", "-k", "edges4", "--activation", "relu", "-q"]
    with ThreadPoolExecutor(2) as pool:  # both wait seconds for TensorFlow: side by side
        local = pool.submit(run_cli, [*args, "-d", "local"], cwd=tmp_path, timeout=120)
        there = pool.submit(
            run_cli, [*args, "-d", "there", "--scheduler-file", cluster.file], cwd=tmp_path
        )
        local, there = local.result(), there.result()
    assert local.exit_code == there.exit_code == 0, there
    assert _files(tmp_path / "there") == _files(tmp_path / "local")
    # Random filters (no seed): the same on every worker, so copies of one image, spread
    # over both workers, give the same maps.
    copies = tmp_path / "copies"
    copies.mkdir()
    for i in range(6):
        (copies / f"c{i}.png").write_bytes((tmp_path / "in" / "img00.png").read_bytes())
    spread = run_cli(
        ["conv", "copies", "--filters", "2", "-d", "maps", "-q", "--no-montage"]
        + ["--scheduler-file", cluster.file],
        cwd=tmp_path,
    )
    assert spread.exit_code == 0, spread
    maps = _files(tmp_path / "maps")
    assert len(maps) == 12
    for i in range(1, 6):
        for n in (1, 2):
            assert maps[f"c{i}_conv-{n}.png"] == maps[f"c0_conv-{n}.png"]


def _tiny_classifier(path: Path) -> Path:
    """A small functional CNN (two convolutions, a softmax head), saved to ``path``."""
    from convkit.heavy import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    keras.Model(inputs, outputs).save(path)
    path.with_name("labels.txt").write_text("cat\ndog\nowl\n")
    return path


def _here_and_there(run_main, tmp_path: Path, args: list[str], remote: list) -> tuple:
    """A local run into local/ and a cluster run into there/, in this process (TensorFlow
    is loaded here already)."""
    local = run_main([*args, "-d", "local"], cwd=tmp_path)
    return local, run_main([*args, "-d", "there", *remote], cwd=tmp_path)


@pytest.mark.keras
def test_explain_and_run_model_on_the_cluster_equal_a_local_run(cluster, tmp_path, run_main):
    """Grad-CAM and a trained model's maps: the model file sent, loaded on each worker
    (once per process), every file as a local run writes it. A local run puts the images
    through the model together, a worker one at a time: the files still agree byte for byte
    (a convolution's and a heat map's sums are per image); the probabilities, from a
    matrix product over the batch, are compared to 1e-6."""
    import json

    model = _tiny_classifier(tmp_path / "m" / "model.keras")
    _images(tmp_path / "in", 5, size=(20, 26), bad=2)
    remote = ["--scheduler-file", cluster.file]
    args = ["explain", "m/model.keras", "in", "--raw", "--top-k", "2", "--json"]
    local, there = _here_and_there(run_main, tmp_path, args, remote)
    assert local.exit_code == there.exit_code == 1, there
    assert sorted(local.stderr_lines) == sorted(there.stderr_lines), there
    assert "convkit: error: in/img02.png: " in there.stderr
    written = _files(tmp_path / "there")
    assert written == _files(tmp_path / "local")
    assert len(written) == 4 * 2 * 2  # four images, two classes, a picture and a .npy each
    mine, theirs = json.loads(local.stdout), json.loads(there.stdout)
    for a, b in zip(mine, theirs, strict=True):
        assert a["path"] == b["path"]
        for x, y in zip(a.get("explained", []), b.get("explained", []), strict=True):
            assert y.pop("probability") == pytest.approx(x.pop("probability"), abs=1e-6)
            assert json.dumps(y).replace("there/", "local/") == json.dumps(x)
    cached = cluster.client.run(
        lambda: [k[0] for k in sys.modules["convkit.training.cluster_predict"]._MODELS]
    )
    assert any(cached.values()), cached  # loaded on the workers, kept there
    assert all(paths in ([], [str(model.absolute())]) for paths in cached.values()), cached
    for name in ("local", "there"):
        (tmp_path / name).rename(tmp_path / f"explain-{name}")
    args = ["run", "--model", "m/model.keras", "in", "--raw", "-q"]
    local, there = _here_and_there(run_main, tmp_path, args, remote)
    assert local.exit_code == there.exit_code == 1, there
    assert sorted(local.stderr_lines) == sorted(there.stderr_lines), there
    written = _files(tmp_path / "there")
    assert written == _files(tmp_path / "local")
    assert {"img00_c1-1.png", "img00_gap.npy", "img04_head.npy"} <= set(written)


def test_a_worker_killed_mid_run_loses_nothing(cluster, tmp_path, cli_env):
    names = _images(tmp_path / "in", 30, size=(400, 600))
    pids = list(cluster.client.run(os.getpid).values())
    proc = subprocess.Popen(
        [sys.executable, "-m", "convkit", "grayscale", "in", "-d", "out"]
        + ["--scheduler-file", str(cluster.file)],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = tmp_path / "out"
    deadline = time.monotonic() + 60
    while (not out.is_dir() or len(_files(out)) < 2) and time.monotonic() < deadline:
        time.sleep(0.005)
    done_at_kill = len(_files(out))
    os.kill(pids[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr.decode()
    assert done_at_kill < len(names)
    written = _files(out)
    assert len(written) == len(names)
    for name in names:  # OpenCV itself is the reference
        source = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        stem = Path(name).stem
        got = cv2.imdecode(np.frombuffer(written[f"{stem}_gray.png"], np.uint8), -1)
        np.testing.assert_array_equal(got, cv2.cvtColor(source, cv2.COLOR_BGR2GRAY))
    cluster.client.wait_for_workers(2, timeout=30)


def test_an_input_that_kills_its_workers_fails_alone(cluster):
    from convkit.engine.executor import BatchOptions, Task
    from convkit.errors import ClusterError

    def work(index: int) -> int:
        if index == 2:  # the worker process dies, as under a hostile input, once the
            time.sleep(0.5)  # others are done (a task queued beside it would die with it)
            os._exit(1)
        return index * 10

    ended = []
    options = BatchOptions(scheduler_file=str(cluster.file), on_done=lambda: ended.append(1))
    with options.executor(5, name_input=lambda i: f"input{i}") as executor:
        executor.run_tasks(lambda i: Task(work, (i,)), outputs=lambda _: 1)
    report = executor.report
    assert report.results == [0, 10, None, 30, 40]
    assert list(report.failures) == [2] and len(ended) == 5
    error = report.failures[2]
    assert isinstance(error, ClusterError) and error.path == "input2"
    assert "every worker that ran it died (2 in a row" in error.message
    cluster.client.wait_for_workers(2, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_within_seconds(tmp_path, run_cli):
    _images(tmp_path / "in", 1)
    start = time.monotonic()
    result = run_cli(
        ["grayscale", "in", "-d", "out", "--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, result
    assert result.stderr_lines == [
        line for line in result.stderr_lines if line.startswith("convkit: error: ")
    ]
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in result.stderr
    assert elapsed < 15, elapsed
    assert not (tmp_path / "out").exists()


def test_what_cannot_travel_and_bad_scheduler_files_are_usage_errors(tmp_path, run_main):
    path = tmp_path / "in"
    _images(path, 1)
    data = (path / "img00.png").read_bytes()
    # DASK_SCHEDULER_ADDRESS is --scheduler: stdin cannot reach a worker, said before any
    # connection is tried (nothing listens there).
    result = run_main(
        ["grayscale", "-", "-o", "x.png"],
        input=data,
        cwd=tmp_path,
        env={"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:9"},
    )
    assert result.exit_code == 2, result
    assert "standard input (-) cannot be read by a cluster's workers" in result.stderr
    result = run_main(
        ["grayscale", "in/img00.png", "-o", "-", "--scheduler", "tcp://127.0.0.1:9"], cwd=tmp_path
    )
    assert result.exit_code == 2 and "cannot write to standard output" in result.stderr
    result = run_main(
        ["filter", "in", "-k", "box:3", "-d", "o", "--scheduler-file", "missing.json"], cwd=tmp_path
    )
    assert result.exit_code == 2, result
    assert "convkit: error: --scheduler-file 'missing.json': No such file" in result.stderr
    (tmp_path / "bad.json").write_text("{}")
    result = run_main(["info", "in", "--scheduler-file", "bad.json"], cwd=tmp_path)
    assert result.exit_code == 2 and "holds no scheduler address" in result.stderr


def test_without_dask_the_option_says_how_to_install_it(tmp_path, run_cli):
    shadow = tmp_path / "shadow" / "dask"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named dask')\n")
    _images(tmp_path / "in", 1)
    result = run_cli(
        ["grayscale", "in", "-d", "out", "--scheduler", "tcp://127.0.0.1:9"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "shadow")},
    )
    assert result.exit_code == 2, result
    assert result.stderr_lines == [
        "convkit: error: --scheduler runs the work on a Dask cluster, and Dask is not "
        "installed: pip install 'convkit[dask]'"
    ]
    plain = run_cli(
        ["grayscale", "in", "-d", "out"], cwd=tmp_path, env={"PYTHONPATH": str(shadow.parent)}
    )
    assert plain.exit_code == 0, plain  # without --scheduler nothing asks for Dask

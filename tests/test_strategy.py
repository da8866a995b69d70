"""``--strategy``: training on every device of one machine (tf.distribute.MirroredStrategy).

Offline and on a CPU: the process's one CPU is split into two logical devices
(``tf.config.set_logical_device_configuration``, before TensorFlow starts), so that the
mirrored strategy runs two replicas exactly as it would over two GPUs. The reference for
"the global batch is per-replica batch x replicas" is the optimizer's own step count in
the saved model, read back by Keras.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cifar_fixtures as cf
import pytest

_SPLIT_AND_RUN = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from convkit.cli import main

    main(sys.argv[1:])
    """
)


def _train(tmp_path: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    out = tmp_path / "run"
    return subprocess.run(
        [sys.executable, "-c", _SPLIT_AND_RUN, "train-cifar", "--data-dir", str(data),
         "--out", str(out), "--json", "--epochs", "3", "--seed", "1", "--batch-size", "32",
         "--limit", "600", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.keras
def test_mirrored_trains_on_two_replicas_and_learns(tmp_path):
    from convkit.heavy import import_keras

    data = cf.write_cifar10(tmp_path / "cifar", per_batch=120, test=200, seed=4)
    proc = _train(tmp_path, data, "--strategy", "mirrored")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 replicas on /device:CPU:0, /device:CPU:1" in proc.stderr
    assert "global batch 64 = 32 per replica x 2" in proc.stderr
    metrics = json.loads(proc.stdout)["metrics"]
    assert metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert metrics["global_batch_size"] == 64 and metrics["batch_size"] == 32
    assert metrics["test_accuracy"] > 0.3  # chance: 0.1
    # 540 training images in steps of 64: 9 steps an epoch, 27 in all (one device: 51).
    model = import_keras().saving.load_model(tmp_path / "run" / "model.keras", compile=True)
    assert int(model.optimizer.iterations.numpy()) == 27


@pytest.mark.keras
def test_auto_is_one_device_without_two_gpus_and_mirrored_with_them(monkeypatch):
    from convkit.heavy import import_tensorflow
    from convkit.training import strategy

    placement = strategy.choose_strategy("auto")
    assert (placement.name, placement.replicas, placement.global_batch(32)) == ("default", 1, 32)

    made = []

    class Mirrored:  # stands in for tf.distribute.MirroredStrategy over two GPUs
        def __init__(self, devices):
            made.append(devices)

    monkeypatch.setattr(strategy, "visible_gpus", lambda: ["/gpu:0", "/gpu:1"])
    monkeypatch.setattr(import_tensorflow().distribute, "MirroredStrategy", Mirrored)
    placement = strategy.choose_strategy("auto")
    assert placement.name == "mirrored" and placement.replicas == 2
    assert made == [["/gpu:0", "/gpu:1"]]
    assert placement.to_json(16)["global_batch_size"] == 32
    monkeypatch.setattr(strategy, "visible_gpus", lambda: ["/gpu:0"])
    assert strategy.choose_strategy("auto").name == "default"
    assert strategy.choose_strategy("default").name == "default"


def test_an_unknown_strategy_is_a_usage_error(run_main, cli_error, tmp_path):
    result = run_main(["train-cifar", "--strategy", "everything", "--out", tmp_path / "r"])
    cli_error(result, 2, "--strategy must be one of auto, mirrored, default, got 'everything'")
    assert not (tmp_path / "r").exists()

"""train-cifar --restore-best (issue 10): the model kept is the best validation epoch's,
checked with Keras itself, through the CLI."""

from __future__ import annotations

import json

import cifar_fixtures as cf
import numpy as np
import pytest

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    cf.write_cifar10(root, per_batch=200, test=400)
    return root


def test_the_best_epoch_is_evaluated_and_saved(run_cli, data_dir, tmp_path):
    # A high learning rate makes validation accuracy peak before the last epoch.
    out = tmp_path / "run"
    args = ["train-cifar", "--data-dir", data_dir, "--epochs", "5", "--seed", "3"]
    result = run_cli([*args, "--lr", "0.1", "--out", out, "--restore-best"])
    assert result.exit_code == 0, result
    history = json.loads((out / "history.json").read_text())
    accuracies = [h["val_accuracy"] for h in history]
    best = int(np.argmax(accuracies)) + 1  # the first of equals
    assert best < len(history)  # the case this test is about
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["restored_best_epoch"] == best
    assert f"restored the weights of epoch {best}, the best validation epoch" in result.stderr
    from convkit.heavy import import_keras

    keras = import_keras()
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    reference = keras.models.clone_model(model)
    reference.load_weights(out / "best.weights.h5")
    for saved, kept in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, kept)
    assert not (out / "checkpoint.keras").exists()


def test_without_it_the_last_epoch_is_kept(run_cli, data_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train-cifar", "--data-dir", data_dir, "--epochs", "2", "--seed", "3", "--out", out]
    result = run_cli(args)
    assert result.exit_code == 0, result
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["restored_best_epoch"] is None
    assert not (out / "best.weights.h5").exists()

"""`convkit layers`: the spec language's reference, checked against the parser itself and
against Keras's own defaults."""

from __future__ import annotations

import json
import re

import pytest

from convkit.arithmetic.spec import parse_spec


def test_every_example_parses_and_every_layer_is_listed(run_cli):
    result = run_cli(["layers", "--json"])
    assert result.exit_code == 0, result
    records = json.loads(result.stdout)
    layers = [r for r in records if "arguments" in r]
    assert len(layers) >= 15
    for record in layers:
        for example in re.split(r"\s+or(?: just)?\s+", record["example"]):
            (parsed,) = parse_spec(example)
            assert parsed.type == record["keras"]
    activations = records[-1]
    assert activations["layer"] == "activations" and "relu" in activations["names"]


def test_defaults_are_keras_own(run_cli):
    keras = pytest.importorskip("keras")
    import inspect

    records = json.loads(run_cli(["layers", "--json"]).stdout)
    for record in (r for r in records if "arguments" in r):
        signature = inspect.signature(getattr(keras.layers, record["keras"]).__init__)
        for arg in record["arguments"]:
            param = signature.parameters.get(arg["name"])
            assert param is not None, (record["keras"], arg["name"])
            if arg["default"] == "required" and record["keras"] != "InputLayer":
                # (an input layer's shape is optional in Keras, required in a spec)
                assert param.default is inspect.Parameter.empty, (record["keras"], arg["name"])


def test_one_layer_by_any_spelling_and_a_suggestion_for_a_typo(run_cli):
    result = run_cli(["layers", "maxpool", "--json"])
    (record,) = json.loads(result.stdout)
    assert record["keras"] == "MaxPooling2D"
    assert [a["name"] for a in record["arguments"]] == ["pool_size", "strides", "padding"]
    bad = run_cli(["layers", "convv"])
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        "convkit: error: no layer named 'convv' in the spec language; did you mean conv2d?"
    ]

"""Golden model files: ``tests/golden/<name>.fbz`` (format version 1) must keep loading, forever.

The files were written by ``scripts/make_golden_models.py``; next to each, ``<name>.npz`` holds the
layer descriptions, the variables, fixed inputs and the output of every layer computed by the numpy
oracle (not by the engine). A loaded golden model must match all of them, every layer's output is
checked by popping layers off the end, and the model must re-save and reload identically.

Never regenerate these files to make this test pass: a failure means that files written by an
earlier version no longer load the same way.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from oracle import enum_name, predict_from_outputs
from test_model_files import (
    assert_same_model,
    assert_same_outputs,
    describe_model,
    format_version_of,
)

akida = pytest.importorskip("akida")

GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.fbz"))
LAYER_TYPES = {"InputData", "InputConvolutional", "FullyConnected", "Convolutional", "SeparableConvolutional",
               "Concat"}


def load_expected(name):
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays


def _plain(value):
    return value if isinstance(value, (bool, int, float, str)) else enum_name(value)


def test_golden_files_are_present_and_small():
    assert len(NAMES) >= 5, NAMES
    for name in NAMES:
        assert (GOLDEN / f"{name}.npz").is_file()
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    assert total < 200_000
    covered = {layer["layer_type"] for name in NAMES for layer in load_expected(name)[0]["layers"]}
    assert covered == LAYER_TYPES


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_is_format_version_1(name):
    data = (GOLDEN / f"{name}.fbz").read_bytes()
    assert data[:4] == b"AKZ1"
    raw = zlib.decompress(data[12:])
    assert struct.unpack_from("<Q", data, 4)[0] == len(raw)
    assert raw[4:8] == b"AKDA"
    assert format_version_of(raw) == 1
    assert load_expected(name)[0]["format_version"] == 1


@pytest.mark.parametrize("name", NAMES)
def test_golden_model_loads_with_the_recorded_layers_and_variables(name):
    meta, arrays = load_expected(name)
    model = akida.Model(GOLDEN / f"{name}.fbz")
    assert len(model.layers) == len(meta["layers"])
    for i, (layer, want) in enumerate(zip(model.layers, meta["layers"])):
        assert layer.name == want["name"]
        assert layer.layer_type == want["layer_type"]
        params = {k: _plain(v) for k, v in layer.parameters.to_dict().items()}
        assert params == want["params"], f"layer {want['name']}"
        for key, value in params.items():  # bool stays bool, int stays int
            assert type(value) is type(want["params"][key]), (want["name"], key, value)
        assert [src.name for src in layer.inbound_layers] == want["inbound"]
        expected_vars = sorted(k.split("_", 2)[2] for k in arrays if k.startswith(f"var_{i}_"))
        # every recorded variable is there; a variable added to the engine after the file was
        # written takes its default (which must not change the outputs: see the next test)
        missing = set(expected_vars) - set(layer.get_variable_names())
        assert not missing, (want["name"], missing)
        for var in expected_vars:
            got, exp = layer.get_variable(var), arrays[f"var_{i}_{var}"]
            assert got.dtype == exp.dtype and got.shape == exp.shape, (want["name"], var)
            assert got.tobytes() == exp.tobytes(), (want["name"], var)


@pytest.mark.parametrize("name", NAMES)
def test_golden_model_outputs_match_the_oracle(name):
    meta, arrays = load_expected(name)
    x = arrays["inputs"]
    model = akida.Model(str(GOLDEN / f"{name}.fbz"))
    last = len(meta["layers"]) - 1
    expected = arrays[f"output_{last}"]
    got = model.forward(x)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert np.array_equal(model.predict(x), predict_from_outputs(expected))
    # every layer: pop the layers after it and compare its outputs
    for i in range(last - 1, -1, -1):
        model.pop_layer()
        assert model.layers[-1].name == meta["layers"][i]["name"]
        got = model.forward(x)
        expected = arrays[f"output_{i}"]
        assert got.dtype == expected.dtype, (meta["layers"][i]["name"], got.dtype, expected.dtype)
        assert np.array_equal(got, expected), f"layer {meta['layers'][i]['name']} differs"


@pytest.mark.parametrize("name", NAMES)
def test_golden_model_resaves_and_reloads_identically(name, tmp_path):
    meta, arrays = load_expected(name)
    x = arrays["inputs"]
    data = (GOLDEN / f"{name}.fbz").read_bytes()
    model = akida.Model(serialized_buffer=data)
    from_file = akida.Model(GOLDEN / f"{name}.fbz")
    assert describe_model(model) == describe_model(from_file)
    buf = model.to_buffer()
    for ext in ("fb", "fbz"):
        path = tmp_path / f"{name}.{ext}"
        model.save(path)
        again = akida.Model(path)
        assert_same_model(again, model)
        assert_same_outputs(again, model, x)
        assert again.to_buffer() == buf
    assert np.array_equal(akida.Model(serialized_buffer=buf).forward(x), arrays[f"output_{len(meta['layers']) - 1}"])

"""Golden model files: ``tests/golden/<name>.fbz`` (format versions 1 and 2) must keep loading, forever.

The files were written by ``scripts/make_golden_models.py``; next to each, ``<name>.npz`` holds the
layer descriptions, the variables, fixed inputs and the output of every layer computed by the numpy
oracle (not by the engine), and for the newer files the output of ``Model.evaluate``. A loaded
golden model must match all of them, every layer's output is checked by popping layers off the end,
and the model must re-save and reload identically.

Never regenerate these files to make this test pass: a failure means that files written by an
earlier version no longer load the same way. The one deliberate exception is documented in the
script: when Same-mode pooling changed (format version 2), ``gray_input_conv`` was rewritten, and
its version-1 file moved to ``tests/golden/version1_refused/``, which must be refused with a message
naming the layer and both pooled shapes.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import warnings

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
    total = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert total < 200_000
    covered = {layer["layer_type"] for name in NAMES for layer in load_expected(name)[0]["layers"]}
    assert covered == LAYER_TYPES


def file_format_version(path):
    data = path.read_bytes()
    assert data[:4] == b"AKZ1"
    raw = zlib.decompress(data[12:])
    assert struct.unpack_from("<Q", data, 4)[0] == len(raw)
    assert raw[4:8] == b"AKDA"
    return format_version_of(raw)


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_has_its_recorded_format_version(name):
    version = file_format_version(GOLDEN / f"{name}.fbz")
    assert version in (1, 2)
    assert load_expected(name)[0]["format_version"] == version


def test_most_golden_files_are_version_1():
    """The version-1 files are what proves that old files still load: keep them."""
    versions = {name: file_format_version(GOLDEN / f"{name}.fbz") for name in NAMES}
    assert sorted(n for n, v in versions.items() if v == 1) == [
        "branches", "concat_output", "fully_connected", "input_conv_defaults", "input_data_only",
        "rgb_input_conv", "separable_chain"]


def test_version1_file_with_changed_same_pooling_is_refused():
    path = GOLDEN / "version1_refused" / "gray_input_conv.fbz"
    assert file_format_version(path) == 1
    for load in (lambda: akida.Model(path), lambda: akida.Model(serialized_buffer=path.read_bytes())):
        with pytest.raises(akida.ModelFormatError) as info:
            load()
        message = str(info.value)
        # 6x7 Same convolution, Average 2x2 pooling with strides (y 1, x 2): version 1 kept the
        # windows inside the map (5x3), version 2 pools like TensorFlow (6x4)
        for part in ("layer 0 ('input_conv')", "(5, 3, 3)", "(6, 4, 3)", "older engine",
                     "Same pooling kept windows inside the map"):
            assert part in message, (part, message)


@pytest.mark.parametrize("name", NAMES)
def test_golden_model_evaluate(name):
    """evaluate = potentials * output_scale + output_offset; files without the variables (all of
    format version 1) have scale 1 and offset 0."""
    meta, arrays = load_expected(name)
    model = akida.Model(GOLDEN / f"{name}.fbz")
    last = len(meta["layers"]) - 1
    expected = arrays[f"output_{last}"]
    if expected.dtype != np.int32:
        with pytest.raises(akida.ArchitectureError, match="activations_enabled=False"):
            model.evaluate(arrays["inputs"])
        return
    got = model.evaluate(arrays["inputs"])
    assert got.dtype == np.float32
    if "evaluate" in arrays:
        assert got.tobytes() == arrays["evaluate"].tobytes()
        scale = arrays[f"var_{last}_output_scale"].astype(np.float64)
        offset = arrays[f"var_{last}_output_offset"].astype(np.float64)
        assert got.tobytes() == (expected * scale + offset).astype(np.float32).tobytes()
    else:
        np.testing.assert_array_equal(model.layers[-1].get_variable("output_scale"), 1)
        np.testing.assert_array_equal(model.layers[-1].get_variable("output_offset"), 0)
        assert got.tobytes() == expected.astype(np.float32).tobytes()


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
    # every layer: its output through forward(output_layer=i), then with the layers after it popped
    for i in range(last - 1, -1, -1):
        got = model.forward(x, output_layer=i)
        expected = arrays[f"output_{i}"]
        assert got.dtype == expected.dtype and np.array_equal(got, expected), meta["layers"][i]["name"]
    for i in range(last - 1, -1, -1):
        with warnings.catch_warnings():
            # popping a Concat leaves a branch dangling, which pop_layer warns about
            warnings.simplefilter("ignore", UserWarning)
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

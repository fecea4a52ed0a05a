"""Saving and loading models: ``.fb`` / ``.fbz`` files and ``to_buffer`` / ``serialized_buffer``.

Round trips: random models of every layer type and option (the generators of ``helpers.py``) go
through every way of saving and loading; the loaded model must have the same layers, parameters,
inbound links and variables (bit for bit), give the same ``forward`` outputs (also checked against
the numpy oracle) and serialize to the same bytes.

Errors: wrong extensions, missing files, folders, empty models, every truncation of a small model,
a few thousand random byte flips and splices of raw and compressed files, hostile size claims in the
compressed header, foreign identifiers, garbage, and files of a newer format version. Damaged bytes
must either load into a model that runs, or raise ``ModelFormatError``: never another exception and
never a crash. The fuzzing runs in a child process (with its address space limited) so that a crash
or a runaway allocation is reported with the bytes that caused it instead of killing pytest.

Interrupted saves: a child process saving a large model in a loop is killed with SIGKILL at random
moments; the file it was replacing must always load.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng
from oracle import LayerSpec, OracleModel, build_akida_model, enum_name, spec_from_akida

akida = pytest.importorskip("akida")

TESTS = Path(__file__).resolve().parent
FORMAT_VERSION = 2
MAGIC = b"AKZ1"
IDENTIFIER = b"AKDA"

# ----------------------------------------------------------------------------------------------
# File format helpers (schema/akida.fbs)
# ----------------------------------------------------------------------------------------------


def compress(raw: bytes, claimed: int | None = None, magic: bytes = MAGIC) -> bytes:
    """A .fbz file of ``raw``: magic, the (claimed) uncompressed size as u64 LE, a zlib stream."""
    return magic + struct.pack("<Q", len(raw) if claimed is None else claimed) + zlib.compress(raw)


def root_scalar_position(buf: bytes, field: int) -> int | None:
    """Absolute position of scalar field number ``field`` of the root table (None when absent)."""
    root = struct.unpack_from("<I", buf, 0)[0]
    vtable = root - struct.unpack_from("<i", buf, root)[0]
    vtable_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * field
    if slot + 2 > vtable_size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + slot)[0]
    return root + offset if offset else None


def format_version_of(buf: bytes) -> int:
    pos = root_scalar_position(buf, 0)  # Model.format_version is the first field
    return 0 if pos is None else struct.unpack_from("<I", buf, pos)[0]


def with_format_version(buf: bytes, version: int) -> bytes:
    pos = root_scalar_position(buf, 0)
    assert pos is not None and struct.unpack_from("<I", buf, pos)[0] == FORMAT_VERSION
    out = bytearray(buf)
    struct.pack_into("<I", out, pos, version)
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# Model comparison
# ----------------------------------------------------------------------------------------------


def _plain(value):
    """Parameter values as comparable plain values that keep their kind (bool vs int, enums)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return (type(value).__name__, value)
    return ("enum", type(value).__name__, enum_name(value))


def describe_model(model) -> list[dict]:
    """Everything observable about a model's structure and state (variables bit for bit)."""
    layers = []
    for layer in model.layers:
        entry = dict(
            name=layer.name,
            layer_type=layer.layer_type,
            params={k: _plain(v) for k, v in layer.parameters.to_dict().items()},
            inbound=[src.name for src in layer.inbound_layers],
            input_shape=tuple(layer.input_shape),
            output_shape=tuple(layer.output_shape),
            variable_names=list(layer.get_variable_names()),
            variables={},
        )
        for var in layer.get_variable_names():
            arr = np.asarray(layer.get_variable(var))
            entry["variables"][var] = (arr.dtype.str, arr.shape, arr.tobytes())
        learning = getattr(layer, "learning", None)
        if learning is not None:
            entry["learning"] = {k: _plain(v) for k, v in learning.to_dict().items()}
            entry["plasticity"] = np.asarray(layer.get_plasticity()).tobytes()
        layers.append(entry)
    return layers


def assert_same_model(loaded, original, context=""):
    a, b = describe_model(loaded), describe_model(original)
    assert len(a) == len(b), f"{len(a)} layers loaded, {len(b)} saved{context}"
    for got, want in zip(a, b):
        for key in want:
            assert got.get(key) == want[key], f"layer {want['name']!r}: {key} differs after loading{context}"
        assert set(got) == set(want), f"layer {want['name']!r}: {set(got) ^ set(want)}{context}"
    assert loaded.input_shape == original.input_shape
    assert loaded.output_shape == original.output_shape
    assert loaded.get_layer_count() == original.get_layer_count()


def input_bits_of(model) -> int:
    first = model.layers[0]
    return first.parameters.input_bits if first.layer_type == "InputData" else 8


def model_inputs(model, rng, n=3) -> np.ndarray:
    high = 2 ** input_bits_of(model)
    return rng.integers(0, high, size=(n,) + tuple(model.input_shape), dtype=np.uint16).astype(np.uint8)


def assert_same_outputs(loaded, original, x, context=""):
    want = original.forward(x)
    got = loaded.forward(x)
    assert got.dtype == want.dtype and got.shape == want.shape, f"{got.dtype}{got.shape} {want.dtype}{want.shape}"
    assert np.array_equal(got, want), f"forward outputs differ after loading{context}"
    assert np.array_equal(loaded.predict(x), original.predict(x))


TRANSPORTS = ("fb", "fbz", "path_fb", "path_fbz", "buffer", "fbz_bytes")


def through(model, how, folder: Path):
    """Save ``model`` and load it back in one of the supported ways."""
    if how == "fb":
        path = str(folder / "model.fb")
        model.save(path)
        return akida.Model(path)
    if how == "fbz":
        path = str(folder / "model.fbz")
        model.save(path)
        return akida.Model(filename=path)
    if how == "path_fb":
        path = folder / "sub dir é" / "model.fb"
        path.parent.mkdir(exist_ok=True)
        model.save(path)
        return akida.Model(path)
    if how == "path_fbz":
        path = folder / "model.path.fbz"
        model.save(path)
        return akida.Model(filename=path)
    if how == "buffer":
        return akida.Model(serialized_buffer=model.to_buffer())
    if how == "fbz_bytes":
        path = folder / "bytes.fbz"
        model.save(path)
        return akida.Model(serialized_buffer=path.read_bytes())
    raise ValueError(how)


def check_round_trips(model, x, folder: Path, context="", transports=TRANSPORTS):
    buf = model.to_buffer()
    for how in transports:
        loaded = through(model, how, folder)
        ctx = f" (via {how}){context}"
        assert_same_model(loaded, model, ctx)
        assert_same_outputs(loaded, model, x, ctx)
        assert loaded.to_buffer() == buf, "re-serializing a loaded model changed its bytes" + ctx
    return loaded


# ----------------------------------------------------------------------------------------------
# Random models of every family (helpers.py generators)
# ----------------------------------------------------------------------------------------------

FAMILIES = ("input_data", "input_conv", "conv", "sep", "fc", "chain_data", "chain_input_conv", "concat",
            "concat_input")
CASES_PER_FAMILY = 25


def _start_input_data(rng, h=None, w=None):
    specs = [H.input_data_spec(rng, h=h, w=w)]
    x = H.rand_input(rng, int(rng.integers(1, 4)), H.out_shape(specs), specs[0].params["input_bits"])
    return specs, x


def _start_input_conv(rng, last):
    act = H.rand_activation_params(rng, last)
    specs = [H.input_conv_spec(rng, act=act, last=last)]
    x = H.rand_input(rng, int(rng.integers(1, 4)), OracleModel(specs).input_shape, 8)
    H.calibrate(rng, specs, 0, x)
    return specs, x


def _random_names(rng, specs):
    """Explicit (sometimes non-ASCII) names on some layers of a chain."""
    for i, spec in enumerate(specs):
        if rng.random() < 0.4:
            suffix = str(rng.choice(["a", "é", "層", "x_y"]))
            spec.name = f"{spec.layer_type[:4]} {i} {suffix}{int(rng.integers(100))}"


def _concat_case(rng, input_branch=False):
    specs, x = _start_input_data(rng, h=int(rng.integers(2, 8)), w=int(rng.integers(2, 8)))
    h, w, _ = H.out_shape(specs)
    with_fc = rng.random() < 0.5
    if input_branch:
        geo = H.rand_conv_geometry(rng, h, w, mode="Same", stride=(1, 1))
        kind = str(rng.choice(["Convolutional", "SeparableConvolutional"]))
        H.add_conv(rng, specs, kind, x, False, geometry=geo, pooling=dict(pooling_type="NoPooling"),
                   act=H.rand_activation_params(rng, False, enabled=True))
        inbound = [OracleModel(specs).names[1], "input_data"]
        if rng.random() < 0.5:
            inbound.reverse()
    else:
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        geo_a = H.rand_conv_geometry(rng, h, w, mode="Same", stride=s)
        geo_b = H.rand_conv_geometry(rng, h, w, mode="Same", stride=s)
        pool = H.rand_pooling(rng, geo_a[1], geo_a[2], mode="Same")
        for branch in ("branch_a", "branch_b"):
            kind = str(rng.choice(["Convolutional", "SeparableConvolutional"]))
            spec = H.add_conv(rng, specs, kind, x, False, inbound=["input_data"],
                              geometry=geo_a if branch == "branch_a" else geo_b, pooling=pool,
                              act=H.rand_activation_params(rng, False, enabled=True))
            spec.name = branch
        inbound = ["branch_a", "branch_b"] if rng.random() < 0.5 else ["branch_b", "branch_a"]
    specs.append(LayerSpec("Concat", H.rand_activation_params(rng, not with_fc), inbound=inbound,
                           name="" if rng.random() < 0.5 else "joined"))
    H.calibrate(rng, specs, len(specs) - 1, x)
    if with_fc:
        H.add_fc(rng, specs, x, True)
    return specs, x


def random_case(rng, family):
    if family == "input_data":
        return _start_input_data(rng)
    if family == "input_conv":
        return _start_input_conv(rng, last=True)
    if family in ("conv", "sep", "fc"):
        specs, x = _start_input_data(rng)
        kind = {"conv": "Convolutional", "sep": "SeparableConvolutional", "fc": "FullyConnected"}[family]
        H.add_chain(rng, specs, x, [kind])
        return specs, x
    if family == "chain_data":
        specs, x = _start_input_data(rng, h=int(rng.integers(3, 10)), w=int(rng.integers(3, 10)))
        kinds = [str(k) for k in rng.choice(["Convolutional", "SeparableConvolutional", "FullyConnected"],
                                            size=int(rng.integers(2, 4)))]
        H.add_chain(rng, specs, x, kinds)
        _random_names(rng, specs)
        return specs, x
    if family == "chain_input_conv":
        specs, x = _start_input_conv(rng, last=False)
        kinds = [str(k) for k in rng.choice(["Convolutional", "SeparableConvolutional", "FullyConnected"],
                                            size=int(rng.integers(1, 4)))]
        H.add_chain(rng, specs, x, kinds)
        _random_names(rng, specs)
        return specs, x
    if family == "concat":
        return _concat_case(rng)
    if family == "concat_input":
        return _concat_case(rng, input_branch=True)
    raise ValueError(family)


# ----------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_random_models(family, tmp_path):
    rng = seeded_rng("model-files", family)
    for i in H.cases(CASES_PER_FAMILY):
        specs, x = random_case(rng, family)
        model, _ = H.assert_same(specs, x)
        inputs = np.concatenate([x, model_inputs(model, rng, 4)])
        context = f"\n{family} case {i}:\n" + H.describe(specs)
        loaded = check_round_trips(model, inputs, tmp_path, context)
        # the loaded model against the independent oracle
        H.assert_same(specs, inputs, model=loaded)
    # every save replaced its file atomically: no temporary file is left behind
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def _single_layer_specs(rng, layer_type, opts):
    """One weighted layer with the options ``opts`` forced and everything else random."""
    act = H.rand_activation_params(rng, True, bits=opts.get("fire_bits"), enabled=opts.get("enabled"))
    if layer_type == "InputConvolutional":
        h, w = int(rng.integers(3, 8)), int(rng.integers(3, 8))
        geo = H.rand_conv_geometry(rng, h, w, mode=opts.get("mode"))
        pool = H.rand_pooling(rng, geo[1], geo[2], kind=opts.get("pooling"), mode=geo[0]["convolution_mode"])
        if opts.get("global_pool"):
            pool = dict(pooling_type=opts["global_pool"])
        specs = [H.input_conv_spec(rng, x_shape=(h, w), geometry=geo, pooling=pool, bits=opts.get("wbits"), act=act,
                                   padding_value=opts.get("padding_value"), channels=opts.get("channels"))]
        x = H.rand_input(rng, 3, OracleModel(specs).input_shape, 8)
        H.calibrate(rng, specs, 0, x)
        return specs, x
    specs = [H.input_data_spec(rng, h=int(rng.integers(3, 8)), w=int(rng.integers(3, 8)), bits=opts.get("input_bits"))]
    x = H.rand_input(rng, 3, H.out_shape(specs), specs[0].params["input_bits"])
    if layer_type == "FullyConnected":
        H.add_fc(rng, specs, x, True, bits=opts.get("wbits"), act=act)
    elif layer_type == "InputData":
        pass
    else:
        h, w, _ = H.out_shape(specs)
        geo = H.rand_conv_geometry(rng, h, w, mode=opts.get("mode"))
        pool = H.rand_pooling(rng, geo[1], geo[2], kind=opts.get("pooling"), mode=geo[0]["convolution_mode"])
        if opts.get("global_pool"):
            pool = dict(pooling_type=opts["global_pool"])
        H.add_conv(rng, specs, layer_type, x, True, geometry=geo, pooling=pool, bits=opts.get("wbits"), act=act)
    return specs, x


def _option_grid():
    grid = [("InputData", dict(input_bits=b)) for b in (1, 2, 4, 8)]
    for layer_type in ("InputConvolutional", "Convolutional", "SeparableConvolutional", "FullyConnected"):
        wbits = (1, 2, 4, 8) if layer_type == "InputConvolutional" else (1, 2, 4)
        grid += [(layer_type, dict(wbits=b)) for b in wbits]
        grid += [(layer_type, dict(fire_bits=b, enabled=True)) for b in (1, 2, 4)]
        grid += [(layer_type, dict(enabled=False))]
        if layer_type != "FullyConnected":
            grid += [(layer_type, dict(mode=m)) for m in H.MODES]
            grid += [(layer_type, dict(pooling=p)) for p in H.POOLINGS]
            grid += [(layer_type, dict(global_pool=p)) for p in ("Max", "Average")]
    grid += [("InputConvolutional", dict(padding_value=v)) for v in (0, 1, 255)]
    grid += [("InputConvolutional", dict(channels=c)) for c in (1, 3)]
    return grid


@pytest.mark.parametrize("layer_type, opts", _option_grid(), ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}={w}" for k, w in v.items()))
def test_round_trip_every_option(layer_type, opts, tmp_path):
    rng = seeded_rng("model-files-option", layer_type, sorted(opts.items()))
    for i in range(2):
        specs, x = _single_layer_specs(rng, layer_type, opts)
        model, _ = H.assert_same(specs, x)
        for key, value in opts.items():  # the option really is in the model
            params = model.layers[-1].parameters.to_dict()
            name = dict(wbits="weights_bits", fire_bits="threshold_fire_bits", enabled="activations_enabled",
                        mode="convolution_mode", pooling="pooling_type", global_pool="pooling_type",
                        channels="input_channels").get(key, key)
            assert name in params and _plain(params[name])[-1] == value, (name, params)
        check_round_trips(model, x, tmp_path, "\n" + H.describe(specs), transports=("fbz", "buffer"))


def test_round_trip_extreme_variable_values(tmp_path):
    """int32 threshold extremes, tiny / huge / non-representable steps, weights at their limits."""
    rng = seeded_rng("model-files-extreme")
    n = 6
    thresholds = np.array([-2**31, 2**31 - 1, 0, -1, 1, 123456789], np.int32)
    steps = np.array([1e-9, 2.0**-20, 1.0 / 3.0, 0.1, 1000.5, 3.0e6], np.float32)
    model = akida.Model()
    model.add(akida.InputData(3, 2, 4, input_bits=4))
    model.add(akida.FullyConnected(n, weights_bits=4, threshold_fire_bits=4, name="fc4"))
    model.layers[1].set_variable("weights", np.where(rng.random((2, 3, 4, n)) < 0.5, -7, 7).astype(np.int8))
    model.layers[1].set_variable("threshold_fire", thresholds)
    model.layers[1].set_variable("threshold_fire_step", steps)
    x = model_inputs(model, rng, 16)
    x[0] = 15
    loaded = check_round_trips(model, x, tmp_path)
    assert np.array_equal(loaded.layers[1].get_variable("threshold_fire"), thresholds)
    assert loaded.layers[1].get_variable("threshold_fire_step").tobytes() == steps.tobytes()


def test_round_trip_names(tmp_path):
    """Non-ASCII, long and whitespace names, and default names with suffixes."""
    model = akida.Model()
    model.add(akida.InputData(4, 4, 2, input_bits=2, name="entrée 入力 🙂"))
    model.add(akida.Convolutional(3, 3, 2, name="x" * 1000))
    model.add(akida.Convolutional(1, 1, 2))
    model.add(akida.Convolutional(1, 1, 2))
    model.add(akida.Concat(name=" a\tb\n"), inbound_layers=[model.layers[3], model.layers[1], model.layers[2]])
    model.add(akida.FullyConnected(3, activations_enabled=False))
    assert [l.name for l in model.layers][2:4] == ["conv", "conv_1"]
    rng = seeded_rng("model-files-names")
    for layer in model.layers[1:]:
        if "weights" in layer.get_variable_names():
            shape = layer.get_variable("weights").shape
            layer.set_variable("weights", rng.integers(0, 2, size=shape))
    loaded = check_round_trips(model, model_inputs(model, rng, 5), tmp_path)
    assert [l.name for l in loaded.get_layer(" a\tb\n").inbound_layers] == ["conv_1", "x" * 1000, "conv"]
    assert loaded.get_layer("entrée 入力 🙂").layer_type == "InputData"


def test_saved_files_have_the_documented_layout(tmp_path):
    rng = seeded_rng("model-files-layout")
    specs, x = random_case(rng, "chain_data")
    model = build_akida_model(specs)
    buf = model.to_buffer()
    assert isinstance(buf, bytes)
    assert buf[4:8] == IDENTIFIER
    assert format_version_of(buf) == FORMAT_VERSION
    model.save(tmp_path / "a.fb")
    model.save(tmp_path / "a.fbz")
    assert (tmp_path / "a.fb").read_bytes() == buf
    data = (tmp_path / "a.fbz").read_bytes()
    assert data[:4] == MAGIC
    assert struct.unpack_from("<Q", data, 4)[0] == len(buf)
    assert zlib.decompress(data[12:]) == buf
    assert len(data) < len(buf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fb", "a.fbz"]
    # a .fbz written by another zlib (other level) loads too
    for level in (0, 1, 9):
        other = MAGIC + struct.pack("<Q", len(buf)) + zlib.compress(buf, level)
        assert_same_model(akida.Model(serialized_buffer=other), model)


def test_the_content_decides_raw_or_compressed(tmp_path):
    rng = seeded_rng("model-files-content")
    specs, x = random_case(rng, "concat")
    model = build_akida_model(specs)
    raw, packed = model.to_buffer(), compress(model.to_buffer())
    (tmp_path / "raw_inside.fbz").write_bytes(raw)
    (tmp_path / "packed_inside.fb").write_bytes(packed)
    for name in ("raw_inside.fbz", "packed_inside.fb"):
        loaded = akida.Model(tmp_path / name)
        assert_same_model(loaded, model)
        assert_same_outputs(loaded, model, x)


def test_save_overwrites_and_stores_the_latest_state(tmp_path):
    rng = seeded_rng("model-files-overwrite")
    specs, x = _single_layer_specs(rng, "Convolutional", dict(enabled=True))
    model = build_akida_model(specs)
    for ext in ("fb", "fbz"):
        path = tmp_path / f"m.{ext}"
        model.save(path)
        layer = model.layers[-1]
        t = layer.get_variable("threshold_fire")
        layer.set_variable("threshold_fire", t + 1)
        model.save(path)
        assert np.array_equal(akida.Model(path).layers[-1].get_variable("threshold_fire"), t + 1)
        model.add(akida.FullyConnected(2, name="extra"))
        model.save(str(path))
        assert [l.name for l in akida.Model(path).layers][-1] == "extra"
        model.pop_layer()
        model.save(path)
        assert_same_model(akida.Model(path), model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fb", "m.fbz"]


def test_loaded_model_is_an_independent_ordinary_model(tmp_path):
    rng = seeded_rng("model-files-independent")
    specs, x = random_case(rng, "chain_data")
    model = build_akida_model(specs)
    before = model.forward(x)
    loaded = akida.Model(serialized_buffer=model.to_buffer())
    last = loaded.layers[-1]
    last.set_variable("threshold_fire", last.get_variable("threshold_fire") + 1000)
    assert np.array_equal(model.forward(x), before)  # the original is untouched
    loaded.pop_layer()
    loaded.add(akida.FullyConnected(3, name="new_head", activations_enabled=False))
    loaded.forward(x)
    again = akida.Model(serialized_buffer=loaded.to_buffer())
    assert_same_model(again, loaded)
    assert_same_outputs(again, loaded, x)


@pytest.mark.skipif(not hasattr(akida.Model, "compile"), reason="no learning API")
@pytest.mark.parametrize("kind", ["FullyConnected", "Convolutional"])
def test_round_trip_learning_state_and_resume(kind, tmp_path):
    """A compiled last layer keeps its configuration and whole state: learning resumes exactly."""
    rng = seeded_rng("model-files-learning", kind)
    model = akida.Model()
    model.add(akida.InputData(6, 5, 2, input_bits=1))
    if kind == "FullyConnected":
        model.add(akida.FullyConnected(8, threshold_fire=2))
        num_weights = 20
    else:
        model.add(akida.Convolutional(3, 3, 8, threshold_fire=2, pooling_type=akida.PoolingType.Max))
        num_weights = 9
    model.compile(num_weights=num_weights, num_classes=4, initial_plasticity=0.9, min_plasticity=0.2,
                  plasticity_decay=0.3, learning_competition=0.25, seed=int(rng.integers(2**40)))
    x = (rng.random((30, 5, 6, 2)) < 0.4).astype(np.uint8)
    labels = rng.integers(0, 4, size=30)
    model.fit(x[:12], labels[:12])
    loaded = check_round_trips(model, x, tmp_path)
    assert loaded.layers[-1].learning is not None
    assert "threshold_learning" in loaded.layers[-1].get_variable_names()
    # learning continues identically on both (same generator state, plasticity, thresholds)
    for start in (12, 20):
        got = loaded.fit(x[start:start + 8], labels[start:start + 8])
        want = model.fit(x[start:start + 8], labels[start:start + 8])
        assert np.array_equal(got, want)
        assert_same_model(loaded, model)


# ----------------------------------------------------------------------------------------------
# Errors: paths and arguments
# ----------------------------------------------------------------------------------------------


def small_model():
    """A small model with every layer type (InputConvolutional and InputData versions)."""
    rng = seeded_rng("model-files-small")
    model = akida.Model()
    model.add(akida.InputConvolutional(6, 5, 3, 3, 3, 4, weights_bits=8, padding_value=9,
                                       pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2,
                                       threshold_fire_bits=2, threshold_fire_step=2.5))
    model.add(akida.Convolutional(2, 2, 3, convolution_mode=akida.ConvolutionMode.Full, weights_bits=4))
    model.add(akida.SeparableConvolutional(3, 3, 2, threshold_fire_bits=4), inbound_layers=[model.layers[0]])
    model.add(akida.Concat(threshold_fire_bits=2), inbound_layers=[model.layers[2], model.layers[0]])
    model.add(akida.FullyConnected(3, weights_bits=2, activations_enabled=False))
    for layer in model.layers:
        for var in layer.get_variable_names():
            shape = layer.get_variable(var).shape
            if var == "threshold_fire":
                layer.set_variable(var, rng.integers(-5, 40, size=shape))
            elif var == "threshold_fire_step":
                layer.set_variable(var, rng.uniform(0.5, 5.0, size=shape).astype(np.float32))
            elif var in ("output_scale", "output_offset"):
                continue  # the defaults, which files omit
            else:
                bits = layer.parameters.weights_bits
                lo, hi = (0, 1) if bits == 1 else (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
                layer.set_variable(var, rng.integers(lo, hi + 1, size=shape))
    return model


def test_model_format_error_class():
    assert issubclass(akida.ModelFormatError, akida.AkidaError)
    assert issubclass(akida.ModelFormatError, ValueError)
    assert akida.errors.ModelFormatError is akida.ModelFormatError


@pytest.mark.parametrize("name", ["model.txt", "model", "model.fb.bak", "model.zip", "model.fbzz", "model.f", "fb",
                                  "model.fb."])
def test_wrong_extension_raises_parameter_error(name, tmp_path):
    with pytest.raises(akida.ParameterError):
        small_model().save(tmp_path / name)
    with pytest.raises(akida.ParameterError):
        small_model().save(str(tmp_path / name))
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_folder(tmp_path):
    for arg in (tmp_path / "absent.fb", str(tmp_path / "absent.fbz"), tmp_path / "no" / "such.fb"):
        with pytest.raises(FileNotFoundError):
            akida.Model(arg)
        with pytest.raises(FileNotFoundError):
            akida.Model(filename=arg)
    (tmp_path / "folder.fb").mkdir()
    for arg in (tmp_path, tmp_path / "folder.fb", str(tmp_path / "folder.fb")):
        with pytest.raises(IsADirectoryError):
            akida.Model(arg)


def test_save_errors_leave_nothing_behind(tmp_path):
    with pytest.raises(akida.ArchitectureError):
        akida.Model().save(tmp_path / "empty.fb")
    with pytest.raises(akida.ArchitectureError):
        akida.Model().save(str(tmp_path / "empty.fbz"))
    with pytest.raises(FileNotFoundError):
        small_model().save(tmp_path / "missing" / "m.fb")
    (tmp_path / "dir.fbz").mkdir()
    with pytest.raises(OSError):
        small_model().save(tmp_path / "dir.fbz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.fbz"]
    assert list((tmp_path / "dir.fbz").iterdir()) == []


def test_argument_errors():
    model = small_model()
    buf = model.to_buffer()
    with pytest.raises(akida.ParameterError):
        akida.Model("m.fb", serialized_buffer=buf)
    with pytest.raises(akida.ParameterError):
        akida.Model(filename="m.fb", layers=[akida.InputData(2, 2, 1)])
    with pytest.raises(akida.ParameterError):
        akida.Model(serialized_buffer=buf, layers=[akida.InputData(2, 2, 1)])
    for value in ("text", 3, [1, 2]):
        with pytest.raises(TypeError, match=r"Model\(\) argument 'serialized_buffer' must be bytes"):
            akida.Model(serialized_buffer=value)
    # Any bytes-like buffer loads (issue 12).
    for value in (bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8)):
        assert akida.Model(serialized_buffer=value).to_buffer() == buf


# ----------------------------------------------------------------------------------------------
# Errors: damaged bytes (deterministic cases, in this process)
# ----------------------------------------------------------------------------------------------


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(akida.ModelFormatError):
        akida.Model(serialized_buffer=b"")
    for name in ("empty.fb", "empty.fbz"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(akida.ModelFormatError):
            akida.Model(tmp_path / name)


def test_every_truncation_is_refused():
    raw = small_model().to_buffer()
    packed = compress(raw)
    assert len(raw) > 1000
    for data in (raw, packed):
        for n in range(len(data)):
            with pytest.raises(akida.ModelFormatError):
                akida.Model(serialized_buffer=data[:n])


def test_truncated_file_is_refused(tmp_path):
    model = small_model()
    for ext in ("fb", "fbz"):
        path = tmp_path / f"m.{ext}"
        model.save(path)
        data = path.read_bytes()
        for n in (len(data) - 1, len(data) // 2, 12, 11, 8, 4, 1):
            path.write_bytes(data[:n])
            with pytest.raises(akida.ModelFormatError):
                akida.Model(path)


def test_wrong_file_identifier():
    raw = small_model().to_buffer()
    for ident in (b"XXXX", b"AKDB", b"akda", b"\0\0\0\0", b"AKZ1"):
        bad = raw[:4] + ident + raw[8:]
        with pytest.raises(akida.ModelFormatError, match="identifier"):
            akida.Model(serialized_buffer=bad)
        with pytest.raises(akida.ModelFormatError):
            akida.Model(serialized_buffer=compress(bad))


def test_garbage_is_refused(tmp_path):
    rng = seeded_rng("model-files-garbage")
    cases = [b"\0" * 100, b"\xff" * 100, b"AKDA" * 50, b"PK\x03\x04" + bytes(200), b"\x89HDF\r\n\x1a\n" + bytes(64),
             b"AKZ1", MAGIC + bytes(8), MAGIC + struct.pack("<Q", 10), b"\x08\0\0\0AKDA", b"\x08\0\0\0AKDA" + bytes(8)]
    for n in (1, 3, 4, 7, 8, 12, 13, 64, 1000, 100_000):
        cases.append(rng.bytes(n))
        cases.append(b"\x08\0\0\0AKDA" + rng.bytes(n))
        cases.append(MAGIC + struct.pack("<Q", n) + rng.bytes(n))
        cases.append(MAGIC + struct.pack("<Q", n) + zlib.compress(rng.bytes(n)))
    for data in cases:
        with pytest.raises(akida.ModelFormatError):
            akida.Model(serialized_buffer=data)
    (tmp_path / "garbage.fbz").write_bytes(cases[-1])
    with pytest.raises(akida.ModelFormatError):
        akida.Model(tmp_path / "garbage.fbz")


def test_compressed_header_mismatches():
    model = small_model()
    raw = model.to_buffer()
    stream = zlib.compress(raw)
    size = struct.pack("<Q", len(raw))
    refused = [
        compress(raw, claimed=len(raw) - 1),
        compress(raw, claimed=len(raw) + 1),
        compress(raw, claimed=0),
        compress(raw, claimed=len(raw) // 2),
        compress(raw, claimed=2 * len(raw)),
        b"AKZ2" + size + stream,
        b"AKZ0" + size + stream,
        b"akz1" + size + stream,
        MAGIC + size + stream[:-4],  # no Adler-32 checksum
        MAGIC + size + stream[:-1] + bytes([stream[-1] ^ 1]),  # wrong checksum
        MAGIC + size + stream[2:],  # raw deflate without the zlib header
        MAGIC + size + stream[:-1],
        MAGIC + struct.pack("<Q", len(raw) + 20) + zlib.compress(compress(raw)),  # compressed twice
        MAGIC[:3] + size + stream,
        size + stream,
    ]
    for i, data in enumerate(refused):
        with pytest.raises(akida.ModelFormatError):
            akida.Model(serialized_buffer=data)
    # bytes after the zlib stream, or after the FlatBuffer (inside the stream or in a raw buffer):
    # refused, or ignored (then the model must be the right one)
    for data in (MAGIC + size + stream + b"trailing", MAGIC + size + stream + stream,
                 compress(raw + b"abc"), raw + b"abcd", raw + raw):
        try:
            loaded = akida.Model(serialized_buffer=data)
        except akida.ModelFormatError:
            continue
        assert_same_model(loaded, model)


@pytest.mark.parametrize("compressed", [False, True], ids=["fb", "fbz"])
def test_newer_format_version_is_refused_naming_both_versions(compressed, tmp_path):
    raw = small_model().to_buffer()
    assert format_version_of(raw) == FORMAT_VERSION
    for version in (FORMAT_VERSION + 1, FORMAT_VERSION + 2, 1000, 2**32 - 1):
        data = with_format_version(raw, version)
        if compressed:
            data = compress(data)
        with pytest.raises(akida.ModelFormatError) as info:
            akida.Model(serialized_buffer=data)
        message = str(info.value)
        assert str(version) in message and str(FORMAT_VERSION) in message, message
        assert f"format version {version}" in message, message
        assert f"version {FORMAT_VERSION}" in message, message
        path = tmp_path / ("v.fbz" if compressed else "v.fb")
        path.write_bytes(data)
        with pytest.raises(akida.ModelFormatError, match=f"format version {version}"):
            akida.Model(path)


def _same_pooling_model(h, w, **pooling):
    model = akida.Model()
    model.add(akida.InputData(input_width=w, input_height=h, input_channels=2, input_bits=2))
    model.add(akida.Convolutional(3, 3, 3, weights_bits=2, name="pooled", **pooling))
    model.add(akida.FullyConnected(2, weights_bits=2, activations_enabled=False))
    rng = seeded_rng("same-pooling-v1", h, w, sorted((k, str(v)) for k, v in pooling.items()))
    for layer in model.layers[1:]:
        shape = layer.get_variable("weights").shape
        layer.set_variable("weights", rng.integers(-1, 2, size=shape))
    return model


@pytest.mark.parametrize("compressed", [False, True], ids=["fb", "fbz"])
def test_version1_same_pooling_loads_where_the_geometry_is_unchanged(compressed, tmp_path):
    # 6x4 map: 2x2 windows fit exactly (3x2 windows under both rules), so do 3x2 ones (2x2), and 1x1
    # windows with stride 2 (3x2: a window of one cell never needs padding); global pooling never
    # changed
    for pooling in (dict(pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2),
                    dict(pooling_type=akida.PoolingType.Average, pooling_width=-1, pooling_height=-1,
                         pooling_stride_x=2, pooling_stride_y=2),
                    dict(pooling_type=akida.PoolingType.Average, pooling_width=2, pooling_height=3),
                    dict(pooling_type=akida.PoolingType.Max, pooling_width=1, pooling_height=1,
                         pooling_stride_x=2, pooling_stride_y=2)):
        model = _same_pooling_model(6, 4, **pooling)
        v1 = with_format_version(model.to_buffer(), 1)
        data = compress(v1) if compressed else v1
        loaded = akida.Model(serialized_buffer=data)
        assert_same_model(loaded, model)
        x = model_inputs(model, seeded_rng("same-pooling-v1-inputs"), 5)
        assert_same_outputs(loaded, model, x)
        H.assert_same(spec_from_akida(model), x, model=loaded)  # and against the oracle
        # saving writes the current version
        assert format_version_of(loaded.to_buffer()) == FORMAT_VERSION
        path = tmp_path / ("v1.fbz" if compressed else "v1.fb")
        path.write_bytes(data)
        assert_same_model(akida.Model(path), model)


@pytest.mark.parametrize("compressed", [False, True], ids=["fb", "fbz"])
def test_version1_same_pooling_with_another_geometry_is_refused(compressed):
    # 5x5 map, 2x2 windows: version 1 had 2x2 windows inside the map, version 2 has 3x3
    cases = [
        (dict(pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2), (5, 5), "(2, 2, 3)",
         (3, 3, 3)),
        # 3x3 window, stride 1 on 4x6: version 1: 2x4, version 2: 4x6 (padded)
        (dict(pooling_type=akida.PoolingType.Average, pooling_width=3, pooling_height=3, pooling_stride_x=1,
              pooling_stride_y=1), (4, 6), "(2, 4, 3)", (4, 6, 3)),
        # a window larger than the map: impossible in version 1
        (dict(pooling_type=akida.PoolingType.Max, pooling_width=5, pooling_height=2), (3, 4), "larger than the map",
         (2, 1, 3)),
    ]
    for pooling, (h, w), old, new in cases:
        model = _same_pooling_model(h, w, **pooling)
        assert model.layers[1].output_shape == new
        v1 = with_format_version(model.to_buffer(), 1)
        with pytest.raises(akida.ModelFormatError) as info:
            akida.Model(serialized_buffer=compress(v1) if compressed else v1)
        message = str(info.value)
        for part in ("layer 1 ('pooled')", old, str(new), "older engine", "Same pooling kept windows inside the map"):
            assert part in message, (part, message)
        # the version-2 buffer of the same model loads
        assert_same_model(akida.Model(serialized_buffer=model.to_buffer()), model)


def test_format_version_zero_is_refused():
    raw = small_model().to_buffer()
    with pytest.raises(akida.ModelFormatError):
        akida.Model(serialized_buffer=with_format_version(raw, 0))


# ----------------------------------------------------------------------------------------------
# Errors: well-formed FlatBuffers with hostile content (targeted patches of a valid buffer)
# ----------------------------------------------------------------------------------------------


class FlatBuffer:
    """A minimal reader of schema/akida.fbs buffers that finds the position of a field, so that a
    valid buffer can be patched in place into a well-formed one with hostile content."""

    # field numbers (a union takes two: its type, then its table)
    MODEL = dict(format_version=0, generator=1, layers=2)
    LAYER = dict(name=0, params_type=1, params=2, inbound=3, variables=4, learning=5)
    VARIABLE = dict(name=0, dtype=1, shape=2, int8_data=3, int32_data=4, float32_data=5)
    CONV_LAYER = dict(convolution=0, pooling=1, activation=2)
    INPUT_CONV = dict(input_width=0, input_height=1, input_channels=2, convolution=3, pooling=4, activation=5,
                      padding_value=6)
    FULLY_CONNECTED = dict(num_neurons=0, weights_bits=1, activation=2)
    CONVOLUTION = dict(kernel_width=0, kernel_height=1, num_neurons=2, mode=3, stride_x=4, stride_y=5, weights_bits=6)
    POOLING = dict(pooling_type=0, width=1, height=2, stride_x=3, stride_y=4)
    ACTIVATION = dict(enabled=0, threshold_fire=1, threshold_fire_step=2, threshold_fire_bits=3)

    def __init__(self, data: bytes):
        self.buf = bytearray(data)

    def _u(self, fmt, pos):
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def field(self, table: int, number: int) -> int:
        vtable = table - self._u("<i", table)
        slot = 4 + 2 * number
        offset = self._u("<H", vtable + slot) if slot + 2 <= self._u("<H", vtable) else 0
        assert offset, f"field {number} is absent (a default value): pick another target"
        return table + offset

    def ref(self, pos: int) -> int:
        return pos + self._u("<I", pos)

    def table(self, table: int, number: int) -> int:
        return self.ref(self.field(table, number))

    def vector(self, table: int, number: int) -> tuple[int, int]:
        """(position of the first element, length); the length is at position - 4."""
        vec = self.ref(self.field(table, number))
        return vec + 4, self._u("<I", vec)

    def layers(self) -> list[int]:
        start, n = self.vector(self._u("<I", 0), self.MODEL["layers"])
        return [self.ref(start + 4 * i) for i in range(n)]

    def layer(self, index: int) -> int:
        return self.layers()[index]

    def string(self, table: int, number: int) -> tuple[int, int]:
        return self.vector(table, number)

    def variable(self, layer_index: int, name: str) -> int:
        layer = self.layer(layer_index)
        start, n = self.vector(layer, self.LAYER["variables"])
        for i in range(n):
            var = self.ref(start + 4 * i)
            pos, length = self.string(var, self.VARIABLE["name"])
            if bytes(self.buf[pos:pos + length]) == name.encode():
                return var
        raise KeyError(name)

    def put(self, fmt: str, pos: int, value) -> FlatBuffer:
        struct.pack_into(fmt, self.buf, pos, value)
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)


def _params(fb, i, *path):
    """Position of a scalar in layer ``i``'s parameter table: path of (table, field name) pairs."""
    table = fb.table(fb.layer(i), FlatBuffer.LAYER["params"])
    for kind, name in path[:-1]:
        table = fb.table(table, kind[name])
    kind, name = path[-1]
    return fb.field(table, kind[name])


def _hostile_cases():
    """(description, patch function, must the load be refused). small_model(): 0 InputConvolutional
    (8-bit weights, Max pooling 2x2, 2-bit activations, padding 9), 1 Convolutional (Full, 4-bit),
    2 SeparableConvolutional (inbound 0), 3 Concat (inbound 2, 0), 4 FullyConnected (2-bit weights,
    activations disabled)."""
    F = FlatBuffer
    V = F.VARIABLE

    def inbound(layer, k, value):
        return lambda fb: fb.put("<I", fb.vector(fb.layer(layer), F.LAYER["inbound"])[0] + 4 * k, value)

    def inbound_count(layer, value):
        return lambda fb: fb.put("<I", fb.vector(fb.layer(layer), F.LAYER["inbound"])[0] - 4, value)

    def params_type(layer, value):
        return lambda fb: fb.put("<B", fb.field(fb.layer(layer), F.LAYER["params_type"]), value)

    def data(layer, var, field, fmt, k, value):
        return lambda fb: fb.put(fmt, fb.vector(fb.variable(layer, var), V[field])[0] + struct.calcsize(fmt) * k, value)

    def shape(layer, var, k, value):
        return lambda fb: fb.put("<I", fb.vector(fb.variable(layer, var), V["shape"])[0] + 4 * k, value)

    def count(layer, var, field, value):
        return lambda fb: fb.put("<I", fb.vector(fb.variable(layer, var), V[field])[0] - 4, value)

    def dtype(layer, var, value):
        return lambda fb: fb.put("<b", fb.field(fb.variable(layer, var), V["dtype"]), value)

    def rename_variable(layer, var, new):
        def patch(fb):
            pos, length = fb.string(fb.variable(layer, var), V["name"])
            assert len(new) <= length
            fb.buf[pos:pos + length + 1] = new.encode() + bytes(length + 1 - len(new))
            fb.put("<I", pos - 4, len(new))
        return patch

    def rename_layer(layer, new):
        def patch(fb):
            pos, length = fb.string(fb.layer(layer), F.LAYER["name"])
            assert len(new) <= length
            fb.buf[pos:pos + length + 1] = new.encode() + bytes(length + 1 - len(new))
            fb.put("<I", pos - 4, len(new))
        return patch

    def param(layer, fmt, value, *path):
        return lambda fb: fb.put(fmt, _params(fb, layer, *path), value)

    def layer_count(value):
        return lambda fb: fb.put("<I", fb.vector(fb._u("<I", 0), F.MODEL["layers"])[0] - 4, value)

    conv = F.CONVOLUTION
    act = F.ACTIVATION
    pool = F.POOLING
    nan, inf = float("nan"), float("inf")
    cases = [
        # graph structure
        ("inbound of layer 1 is itself", inbound(1, 0, 1), True),
        ("inbound of layer 1 is a later layer", inbound(1, 0, 3), True),
        ("inbound out of range", inbound(1, 0, 5), True),
        ("inbound 2**32 - 1", inbound(3, 1, 0xFFFFFFFF), True),
        ("inbound count 2**31", inbound_count(3, 0x80000000), True),
        ("Concat with one inbound", inbound_count(3, 1), True),
        ("SeparableConvolutional with two inbound", inbound_count(2, 2), True),
        ("Concat of the same layer twice", inbound(3, 1, 2), False),
        ("Concat inbound is the FullyConnected after it", inbound(3, 0, 4), True),
        ("no layers", layer_count(0), True),
        ("layer count too large", layer_count(6), True),
        ("layer count 2**31", layer_count(0x80000000), True),
        ("only the first 3 layers", layer_count(3), False),
        ("duplicate layer names", rename_layer(2, "conv"), True),
        ("empty layer name", rename_layer(2, ""), False),
        # union types
        ("params type NONE", params_type(1, 0), True),
        ("params type unknown (7)", params_type(1, 7), True),
        ("params type 255", params_type(4, 255), True),
        ("input layer typed FullyConnected", params_type(0, 3), True),
        ("input layer typed InputData", params_type(0, 1), True),
        ("Convolutional typed SeparableConvolutional", params_type(1, 5), True),
        ("FullyConnected typed Concat", params_type(4, 6), True),
        ("second input layer", params_type(2, 1), True),
        # parameters out of range
        ("convolution mode 3", param(1, "<b", 3, (F.CONV_LAYER, "convolution"), (conv, "mode")), True),
        ("convolution mode -1", param(1, "<b", -1, (F.CONV_LAYER, "convolution"), (conv, "mode")), True),
        ("pooling type 3", param(0, "<b", 3, (F.INPUT_CONV, "pooling"), (pool, "pooling_type")), True),
        ("pooling window 0", param(0, "<i", 0, (F.INPUT_CONV, "pooling"), (pool, "width")), True),
        ("pooling window -2", param(0, "<i", -2, (F.INPUT_CONV, "pooling"), (pool, "height")), True),
        ("pooling window larger than the map", param(0, "<i", 1000, (F.INPUT_CONV, "pooling"), (pool, "width")), True),
        ("input weights_bits 3", param(0, "<B", 3, (F.INPUT_CONV, "convolution"), (conv, "weights_bits")), True),
        ("input weights_bits 0", param(0, "<B", 0, (F.INPUT_CONV, "convolution"), (conv, "weights_bits")), True),
        ("input weights_bits 16", param(0, "<B", 16, (F.INPUT_CONV, "convolution"), (conv, "weights_bits")), True),
        ("Convolutional weights_bits 8", param(1, "<B", 8, (F.CONV_LAYER, "convolution"), (conv, "weights_bits")),
         True),
        ("FullyConnected weights_bits 8", param(4, "<B", 8, (F.FULLY_CONNECTED, "weights_bits")), True),
        ("threshold_fire_bits 3", param(0, "<B", 3, (F.INPUT_CONV, "activation"), (act, "threshold_fire_bits")), True),
        ("threshold_fire_bits 8", param(0, "<B", 8, (F.INPUT_CONV, "activation"), (act, "threshold_fire_bits")), True),
        ("input_channels 2", param(0, "<I", 2, (F.INPUT_CONV, "input_channels")), True),
        ("input_width 0", param(0, "<I", 0, (F.INPUT_CONV, "input_width")), True),
        ("input_width 2**32 - 1", param(0, "<I", 0xFFFFFFFF, (F.INPUT_CONV, "input_width")), True),
        ("input_height 65537", param(0, "<I", 65537, (F.INPUT_CONV, "input_height")), True),
        ("input size changed (shapes downstream)", param(0, "<I", 7, (F.INPUT_CONV, "input_width")), False),
        ("kernel 0", param(0, "<I", 0, (F.INPUT_CONV, "convolution"), (conv, "kernel_width")), True),
        ("kernel 2**32 - 1", param(1, "<I", 0xFFFFFFFF, (F.CONV_LAYER, "convolution"), (conv, "kernel_height")), True),
        ("num_neurons 0", param(4, "<I", 0, (F.FULLY_CONNECTED, "num_neurons")), True),
        ("num_neurons 2**20 + 1", param(4, "<I", 2**20 + 1, (F.FULLY_CONNECTED, "num_neurons")), True),
        ("num_neurons 2**32 - 1", param(4, "<I", 0xFFFFFFFF, (F.FULLY_CONNECTED, "num_neurons")), True),
        ("num_neurons disagrees with the weights", param(4, "<I", 4, (F.FULLY_CONNECTED, "num_neurons")), True),
        ("padding_value 255", param(0, "<B", 255, (F.INPUT_CONV, "padding_value")), False),
        ("threshold_fire_bits 7", param(0, "<B", 7, (F.INPUT_CONV, "activation"), (act, "threshold_fire_bits")),
         True),
        ("activations enabled = 2", param(4, "<B", 2, (F.FULLY_CONNECTED, "activation"), (act, "enabled")), False),
        ("parameter threshold_fire_step NaN", param(0, "<f", nan, (F.INPUT_CONV, "activation"),
                                                    (act, "threshold_fire_step")), True),
        ("parameter threshold_fire_step 0", param(0, "<f", 0.0, (F.INPUT_CONV, "activation"),
                                                  (act, "threshold_fire_step")), True),
        ("parameter threshold_fire_step -inf", param(0, "<f", -inf, (F.INPUT_CONV, "activation"),
                                                     (act, "threshold_fire_step")), True),
        # variables
        ("weight out of range (8 bits: -128)", data(0, "weights", "int8_data", "<b", 5, -128), True),
        ("weight out of range (4 bits: 8)", data(1, "weights", "int8_data", "<b", 0, 8), True),
        ("weight out of range (2 bits: -2)", data(4, "weights", "int8_data", "<b", 3, -2), True),
        ("weight in range (4 bits: -7)", data(1, "weights", "int8_data", "<b", 0, -7), False),
        ("threshold_fire_step NaN", data(2, "threshold_fire_step", "float32_data", "<f", 0, nan), True),
        ("threshold_fire_step 0", data(2, "threshold_fire_step", "float32_data", "<f", 1, 0.0), True),
        ("threshold_fire_step -1", data(2, "threshold_fire_step", "float32_data", "<f", 0, -1.0), True),
        ("threshold_fire_step inf", data(2, "threshold_fire_step", "float32_data", "<f", 0, inf), True),
        ("threshold_fire_step denormal", data(2, "threshold_fire_step", "float32_data", "<f", 0, 1e-45), False),
        ("threshold_fire int32 min", data(2, "threshold_fire", "int32_data", "<i", 0, -2**31), False),
        ("weights shape dimension 0", shape(1, "weights", 0, 0), True),
        ("weights shape dimension + 1", shape(1, "weights", 3, 4), True),
        ("weights shape dimension 2**32 - 1", shape(1, "weights", 2, 0xFFFFFFFF), True),
        ("weights shape with 2 dimensions", count(1, "weights", "shape", 2), True),
        ("weights shape with 2**30 dimensions", count(1, "weights", "shape", 2**30), True),
        ("weights data shorter", count(1, "weights", "int8_data", 5), True),
        ("weights data 2**32 - 1 long", count(1, "weights", "int8_data", 0xFFFFFFFF), True),
        ("threshold data 0 long", count(3, "threshold_fire", "int32_data", 0), True),
        ("threshold_fire typed Float32", dtype(3, "threshold_fire", 2), True),
        ("threshold_fire typed Int8", dtype(3, "threshold_fire", 0), True),
        ("threshold_fire_step typed Int32", dtype(3, "threshold_fire_step", 1), True),
        ("dtype 3", dtype(3, "threshold_fire_step", 3), True),
        ("dtype -1", dtype(3, "threshold_fire_step", -1), True),
        ("unknown variable name", rename_variable(1, "weights", "weightz"), True),
        ("repeated variable", rename_variable(2, "weights_pw", "weights"), True),
        ("empty variable name", rename_variable(4, "weights", ""), True),
    ]
    return cases


def test_well_formed_buffers_with_hostile_content():
    """Every patched buffer is still a well-formed FlatBuffer (or nearly): the reader must check
    the content, not only the structure. Cases marked as invalid must raise ModelFormatError; the
    others may load (then the model must run and round trip)."""
    raw = small_model().to_buffer()
    failures = []
    for description, patch, must_refuse in _hostile_cases():
        fb = FlatBuffer(raw)
        patch(fb)
        data = fb.bytes()
        assert data != raw, description
        for label, payload in (("fb", data), ("fbz", compress(data))):
            outcome = check_damaged(payload)
            if outcome == "refused" or (outcome == "loaded" and not must_refuse):
                continue
            failures.append(f"{description} ({label}): {outcome}")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------------------------
# Errors: hostile size claims and fuzzing (child processes with a limited address space)
# ----------------------------------------------------------------------------------------------

CHILD_PRELUDE = textwrap.dedent(
    """
    import base64, json, os, resource, sys, time
    sys.path.insert(0, {tests!r})
    import numpy as np
    import akida

    def vm_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])

    # warm up the engine (its worker threads) before limiting the address space
    _m = akida.Model()
    _m.add(akida.InputData(2, 2, 1))
    _m.add(akida.FullyConnected(2))
    _m.forward(np.zeros((4, 2, 2, 1), np.uint8))
    LIMIT = (vm_kib() + {headroom_mib} * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    """
)


def run_child(body: str, headroom_mib: int = 1024, timeout: float = 120.0) -> subprocess.CompletedProcess:
    code = CHILD_PRELUDE.format(tests=str(TESTS), headroom_mib=headroom_mib) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_huge_claimed_sizes_fail_fast_without_allocating(tmp_path):
    """The compressed header claims up to 2**64 - 1 bytes; the reader must refuse without
    allocating the claim (the child has at most 1 GiB of extra address space, so an attempt would
    abort it) and quickly. A zlib bomb behind a small claim must not be inflated past the claim."""
    raw = small_model().to_buffer()
    bomb = zlib.compressobj(9)
    bomb_stream = b"".join(bomb.compress(bytes(1 << 20)) for _ in range(64)) + bomb.flush()  # 64 MiB of zeros
    cases = {
        "claim 2**40, valid stream": compress(raw, claimed=2**40),
        "claim 2**40, empty stream": MAGIC + struct.pack("<Q", 2**40) + zlib.compress(b""),
        "claim 2**40, garbage": MAGIC + struct.pack("<Q", 2**40) + b"\x78\x9c" + bytes(100),
        "claim 2**63": compress(raw, claimed=2**63),
        "claim 2**64-1": compress(raw, claimed=2**64 - 1),
        "claim 2**32+len": compress(raw, claimed=2**32 + len(raw)),
        "claim 1.5 GiB, valid stream": compress(raw, claimed=3 << 29),
        "claim len, 64 MiB bomb": MAGIC + struct.pack("<Q", len(raw)) + bomb_stream,
        "claim 4 KiB, 64 MiB bomb": MAGIC + struct.pack("<Q", 4096) + bomb_stream,
        "claim 64 MiB - 1, 64 MiB bomb": MAGIC + struct.pack("<Q", (64 << 20) - 1) + bomb_stream,
    }
    folder = tmp_path / "cases"
    folder.mkdir()
    for i, data in enumerate(cases.values()):
        (folder / f"{i}.bin").write_bytes(data)
    body = f"""
    results = []
    for i in range({len(cases)}):
        with open(os.path.join({str(folder)!r}, f"{{i}}.bin"), "rb") as f:
            data = f.read()
        print("case", i, flush=True)
        t = time.perf_counter()
        try:
            akida.Model(serialized_buffer=data)
            outcome = "loaded"
        except akida.ModelFormatError as e:
            outcome = "ModelFormatError"
        except BaseException as e:
            outcome = f"{{type(e).__name__}}: {{e}}"
        results.append((outcome, time.perf_counter() - t))
    print("RESULTS " + json.dumps(results), flush=True)
    """
    proc = run_child(body)
    names = list(cases)
    assert proc.returncode == 0, (
        f"child died (return code {proc.returncode}) on "
        f"{names[int(proc.stdout.split()[-1])] if 'case' in proc.stdout else '?'}:\n{proc.stderr[-2000:]}")
    results = json.loads(proc.stdout.split("RESULTS ", 1)[1])
    problems = [f"{name}: {outcome} in {dt:.2f} s" for name, (outcome, dt) in zip(names, results)
                if outcome != "ModelFormatError" or dt > 2.0]
    assert not problems, "\n".join(problems)


FUZZ_BODY = """
from test_model_files import fuzz_cases, check_damaged
results = {"loaded": 0, "refused": 0, "failures": []}
last_case = os.path.join(FOLDER, "last_case.bin")
for label, data in fuzz_cases(KIND, COUNT):
    with open(last_case, "wb") as f:  # left behind if the engine crashes on it
        f.write(label.encode() + b"\\n" + data)
    outcome = check_damaged(data)
    if outcome in results:
        results[outcome] += 1
    else:
        results["failures"].append((label, outcome, base64.b64encode(data).decode()))
os.remove(last_case)
print("RESULTS " + json.dumps(results), flush=True)
"""


def _mutate(rng, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.choice([1, 1, 1, 2, 3, 8]))):
        pos = int(rng.integers(len(out)))
        r = rng.random()
        if r < 0.45:
            out[pos] ^= 1 << int(rng.integers(8))
        elif r < 0.75:
            out[pos] = int(rng.integers(256))
        else:  # a hostile 32-bit value (sizes, offsets, counts) at an aligned position
            pos = min(pos & ~3, len(out) - 4)
            value = int(rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x10000, 0x100000, 0xFFFF,
                                    int(rng.integers(2**32))]))
            struct.pack_into("<I", out, pos, value)
    return bytes(out)


def fuzz_bases() -> list[bytes]:
    """Raw buffers of a few small models covering every layer type (and learning)."""
    bases = [small_model().to_buffer()]
    rng = seeded_rng("model-files-fuzz-bases")
    for family in ("concat", "chain_input_conv", "chain_data", "sep"):
        specs, _ = random_case(rng, family)
        bases.append(build_akida_model(specs).to_buffer())
    if hasattr(akida.Model, "compile"):
        model = akida.Model()
        model.add(akida.InputData(4, 3, 2, input_bits=1))
        model.add(akida.FullyConnected(4))
        model.compile(num_weights=6, num_classes=2, seed=7)
        model.fit((rng.random((6, 3, 4, 2)) < 0.5).astype(np.uint8), np.arange(6) % 2)
        bases.append(model.to_buffer())
    return bases


def fuzz_cases(kind: str, count: int):
    """(label, bytes) damaged cases. kind "raw": flips and splices of .fb buffers; "compressed":
    flips of .fbz files and damaged .fb buffers inside a valid .fbz envelope."""
    rng = seeded_rng("model-files-fuzz", kind)
    bases = fuzz_bases()
    for i in range(count):
        b = int(rng.integers(len(bases)))
        base = bases[b]
        r = rng.random()
        if kind == "raw":
            if r < 0.8:
                yield f"raw flip {i} of base {b}", _mutate(rng, base)
            else:  # splice two buffers at random cut points
                other = bases[int(rng.integers(len(bases)))]
                cut_a, cut_b = int(rng.integers(len(base))), int(rng.integers(len(other)))
                if rng.random() < 0.5:
                    cut_b = min(cut_a, len(other))  # keep the offsets' frame
                yield f"raw splice {i} of base {b}", base[:cut_a] + other[cut_b:]
        else:
            if r < 0.35:
                yield f"fbz flip {i} of base {b}", _mutate(rng, compress(base))
            elif r < 0.9:
                yield f"fbz envelope {i} of base {b}", compress(_mutate(rng, base))
            else:
                other = bases[int(rng.integers(len(bases)))]
                cut = int(rng.integers(len(base)))
                yield f"fbz envelope splice {i} of base {b}", compress(base[:cut] + other[cut:])


def check_damaged(data: bytes) -> str:
    """'refused' (ModelFormatError), 'loaded' (and the model runs and round trips), or a failure."""
    try:
        model = akida.Model(serialized_buffer=data)
    except akida.ModelFormatError:
        return "refused"
    except BaseException as e:  # noqa: BLE001 - anything else is a bug, including a Rust panic
        return f"load raised {type(e).__name__}: {e}"
    try:
        shape = tuple(model.input_shape)
        if int(np.prod(shape)) <= 1 << 20:
            x = model_inputs(model, np.random.default_rng(len(data)), 2)
            model.forward(x)
        again = akida.Model(serialized_buffer=model.to_buffer())
        if describe_model(again) != describe_model(model):
            return "a loaded damaged model does not round trip"
    except BaseException as e:  # noqa: BLE001
        return f"loaded, then {type(e).__name__}: {e}"
    return "loaded"


FUZZ_COUNTS = {"raw": 3000, "compressed": 2000}


@pytest.mark.parametrize("kind", list(FUZZ_COUNTS))
def test_fuzzed_bytes_load_or_raise_model_format_error(kind, tmp_path):
    count = FUZZ_COUNTS[kind] * H.SCALE
    body = f"FOLDER, KIND, COUNT = {str(tmp_path)!r}, {kind!r}, {count}\n" + FUZZ_BODY
    proc = run_child(body, timeout=300)
    last = tmp_path / "last_case.bin"
    if proc.returncode != 0:
        detail = ""
        if last.exists():
            label, _, data = last.read_bytes().partition(b"\n")
            detail = f"\nlast case {label.decode()}: base64 {base64.b64encode(data).decode()}"
        pytest.fail(f"the child crashed (return code {proc.returncode}){detail}\n{proc.stderr[-3000:]}")
    results = json.loads(proc.stdout.split("RESULTS ", 1)[1])
    failures = results["failures"]
    assert results["loaded"] + results["refused"] + len(failures) == count
    assert not failures, f"{len(failures)} of {count} cases failed; first ones:\n" + "\n".join(
        f"{label}: {outcome}\n  base64 {b64}" for label, outcome, b64 in failures[:3])
    assert results["refused"] > count // 2  # most damage is detected


# ----------------------------------------------------------------------------------------------
# Interrupted saves
# ----------------------------------------------------------------------------------------------

BIG_SHAPE = (100, 100, 30)  # InputData (height, width, channels) -> FullyConnected(10): 3M weights
BIG_NEURONS = 10
BIG_SEED = 12345

SAVER = """
import sys
import numpy as np
import akida
path = sys.argv[1]
h, w, c = {shape}
model = akida.Model()
model.add(akida.InputData(w, h, c, input_bits=1, name="big_input"))
model.add(akida.FullyConnected({neurons}, name="big_fc"))
weights = np.random.default_rng({seed}).integers(0, 2, size=(h, w, c, {neurons}), dtype=np.int8)
model.layers[1].set_variable("weights", weights)
print("ready", flush=True)
n = 0
while True:
    model.save(path)
    n += 1
"""


def _temp_files(folder: Path, pid: int) -> list[str]:
    """The temporary files process `pid` is writing in `folder`: named ones, and unnamed ones
    (O_TMPFILE: an open descriptor reading '<folder>/#<inode> (deleted)')."""
    named = [n for n in os.listdir(folder) if n.endswith(".tmp") and f".{pid}-" in n]
    unnamed = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(f"{folder}/#"):
                unnamed.append(target)
    except OSError:
        pass
    return named + unnamed


def test_killed_save_leaves_the_previous_file_loadable(tmp_path):
    """Half of the kills land while the child's temporary file exists (mid-write or just before the
    rename), the others after a random delay (between saves, or during the first one)."""
    rng = seeded_rng("model-files-kill")
    small = small_model()
    big_weights = np.random.default_rng(BIG_SEED).integers(0, 2, size=BIG_SHAPE + (BIG_NEURONS,), dtype=np.int8)
    script = SAVER.format(shape=BIG_SHAPE, neurons=BIG_NEURONS, seed=BIG_SEED)
    seen = {"small": 0, "big": 0}
    for i in range(8):
        ext = "fbz" if i % 2 else "fb"
        path = tmp_path / f"model.{ext}"
        small.save(path)
        child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            if i % 4 < 2:  # as soon as a temporary file of this child shows up
                deadline = time.monotonic() + 5.0
                while not _temp_files(tmp_path, child.pid) and time.monotonic() < deadline:
                    pass
                time.sleep(float(rng.uniform(0.0, 0.002)))
            else:
                time.sleep(float(rng.uniform(0.0, 0.1 if ext == "fb" else 0.3)))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        loaded = akida.Model(path)  # whichever complete version was there last
        if loaded.layers[0].name == "big_input":
            seen["big"] += 1
            assert [l.name for l in loaded.layers] == ["big_input", "big_fc"]
            assert np.array_equal(loaded.layers[1].get_variable("weights"), big_weights)
        else:
            seen["small"] += 1
            assert_same_model(loaded, small)
    # unnamed temporary files vanish with their process; a named one (".model.fb.<pid>-<n>.tmp")
    # remains only from a kill between linking and renaming: it never replaces the model file,
    # and the next save to that path removes it (tests/test_stress_memory.py)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    print(f"kills: the file held the small model {seen['small']} times, the big one {seen['big']} times; "
          f"{len(leftovers)} temporary files left by killed saves")
    for name in leftovers:  # a partial temporary file is refused cleanly (or is complete)
        try:
            akida.Model(tmp_path / name)
        except akida.ModelFormatError:
            pass
    for p in tmp_path.iterdir():
        assert p.name in ("model.fb", "model.fbz") or (p.name.startswith(".model.") and p.name.endswith(".tmp")), p
    for ext in ("fb", "fbz"):
        small.save(tmp_path / f"model.{ext}")
        assert_same_model(akida.Model(tmp_path / f"model.{ext}"), small)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fb", "model.fbz"]

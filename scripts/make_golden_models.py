#!/usr/bin/env python3
"""Writes the golden model files of the test suite: ``tests/golden/<name>.fbz`` and ``<name>.npz``.

Each golden model is small and fully deterministic (hand-chosen parameters, weights and inputs from
fixed seeds, thresholds calibrated from the oracle's potentials); together they cover every layer
type and option: both input layers, every convolution mode, pooling type (windowed, global, custom
strides), weight width, activation width, disabled activations (int32 and Concat outputs), padding
values, branches joined by Concat in either order, default and explicit names; and, since format
version 2, Same-mode pooling with padded windows (odd sizes, windows larger than their stride and
than the map) and per-neuron output rescaling (``output_scale``, ``output_offset``).

Most files were written by format version 1 and are kept as they are: they are the proof that
version-1 files still load. ``gray_input_conv`` was rewritten in format version 2 when Same-mode
pooling became TensorFlow's 'same' pooling (its pooled shape changed); its version-1 file is kept in
``tests/golden/version1_refused/``, where the tests check that it is refused with a clear message.

``<name>.npz`` holds what ``tests/test_golden_models.py`` checks a loaded model against:
- ``meta``: JSON (layer names, types, parameters with enums as names, inbound names);
- ``var_<i>_<variable>``: the variables of layer ``i``;
- ``inputs``: fixed inputs;
- ``output_<i>``: the outputs of layer ``i`` on ``inputs``, computed by the numpy oracle
  (``tests/oracle.py``), not by the engine, so they are an independent reference;
- ``evaluate`` (models whose last layer outputs potentials): ``Model.evaluate`` on ``inputs``, from
  the oracle too.

The script checks that the engine agrees with the oracle before writing anything. The files are
checked in and must never be rewritten to make a test pass: files written by an earlier version
have to keep loading unchanged. To add a golden model, add it to ``GOLDEN_MODELS`` and write only
that one (``python scripts/make_golden_models.py NAME``).

Usage: python scripts/make_golden_models.py [--out tests/golden] [NAME ...]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from oracle import LayerSpec, OracleModel, build_akida_model, enum_name, weight_range  # noqa: E402

FORMAT_VERSION = 2
NUM_SAMPLES = 6


def L(layer_type, name="", inbound=None, **params):  # noqa: N802 - short constructor for the tables
    return LayerSpec(layer_type, params, name=name, inbound=inbound)


# Each model: (name, seed, layer specs, layers whose thresholds are calibrated[, fixed variables]).
# Layers not listed keep the constructor's threshold_fire / threshold_fire_step. Fixed variables:
# {layer index: {variable: values}}, set as they are.
GOLDEN_MODELS = [
    (
        "fully_connected",
        101,
        [
            L("InputData", "pixels", input_width=5, input_height=4, input_channels=3, input_bits=8),
            L("FullyConnected", "hidden", num_neurons=6, weights_bits=4, threshold_fire_bits=4),
            L("FullyConnected", num_neurons=5, weights_bits=1, threshold_fire_bits=2),
            L("FullyConnected", "logits", num_neurons=3, weights_bits=2, activations_enabled=False),
        ],
        [1, 2],
    ),
    (
        "rgb_input_conv",
        202,
        [
            L("InputConvolutional", "rgb", input_width=9, input_height=8, input_channels=3, kernel_width=3,
              kernel_height=3, num_neurons=4, convolution_mode="Valid", stride_x=2, stride_y=1, weights_bits=8,
              pooling_type="Max", pooling_width=2, pooling_height=2, pooling_stride_x=1, pooling_stride_y=1,
              threshold_fire_bits=2),
            L("Convolutional", "features", kernel_width=2, kernel_height=3, num_neurons=5, convolution_mode="Full",
              stride_x=2, stride_y=2, weights_bits=4, pooling_type="Average", activations_enabled=False),
        ],
        [0],
    ),
    (
        "gray_input_conv",
        303,
        [
            L("InputConvolutional", input_width=7, input_height=6, input_channels=1, kernel_width=5,
              kernel_height=4, num_neurons=3, convolution_mode="Same", weights_bits=2, padding_value=255,
              pooling_type="Average", pooling_width=2, pooling_height=2, pooling_stride_x=2, pooling_stride_y=1,
              threshold_fire_bits=1),
            L("SeparableConvolutional", kernel_width=3, kernel_height=3, num_neurons=6, convolution_mode="Same",
              stride_x=2, stride_y=2, weights_bits=2, activations_enabled=False),
        ],
        [0],
    ),
    (
        "separable_chain",
        404,
        [
            L("InputData", input_width=7, input_height=8, input_channels=4, input_bits=2),
            L("SeparableConvolutional", "sep_valid", kernel_width=3, kernel_height=3, num_neurons=5,
              convolution_mode="Valid", weights_bits=4, pooling_type="Max", pooling_width=2, pooling_height=2,
              threshold_fire_bits=4),
            L("SeparableConvolutional", "sep_full", kernel_width=2, kernel_height=2, num_neurons=4,
              convolution_mode="Full", weights_bits=1, pooling_type="Average", pooling_width=2, pooling_height=2,
              threshold_fire_bits=2),
            L("Convolutional", "pointwise", kernel_width=1, kernel_height=1, num_neurons=3, convolution_mode="Valid",
              weights_bits=1, pooling_type="Max", threshold_fire_bits=4),
            L("FullyConnected", "classes", num_neurons=4, weights_bits=4, threshold_fire_bits=4),
        ],
        [1, 2, 3, 4],
    ),
    (
        "branches",
        505,
        [
            L("InputData", input_width=6, input_height=5, input_channels=2, input_bits=1),
            L("Convolutional", kernel_width=3, kernel_height=3, num_neurons=3, convolution_mode="Same",
              weights_bits=1, threshold_fire_bits=1),
            L("SeparableConvolutional", "sep_branch", inbound=["input_data"], kernel_width=2, kernel_height=2,
              num_neurons=2, convolution_mode="Same", weights_bits=4, threshold_fire_bits=4),
            L("Concat", inbound=["sep_branch", "conv"], threshold_fire_bits=2),
            L("Convolutional", kernel_width=2, kernel_height=2, num_neurons=2, convolution_mode="Valid",
              weights_bits=4, pooling_type="Max", pooling_width=2, pooling_height=2, pooling_stride_x=1,
              pooling_stride_y=1, threshold_fire_bits=4),
            L("FullyConnected", num_neurons=3, weights_bits=2, activations_enabled=False),
        ],
        [1, 2, 3, 4],
    ),
    (
        "concat_output",
        606,
        [
            L("InputConvolutional", input_width=5, input_height=5, input_channels=3, kernel_width=2, kernel_height=2,
              num_neurons=3, convolution_mode="Full", weights_bits=4, padding_value=7, threshold_fire_bits=4),
            L("Convolutional", kernel_width=3, kernel_height=3, num_neurons=2, weights_bits=2,
              threshold_fire=5, threshold_fire_step=2.5, threshold_fire_bits=2),
            L("Concat", "joined", inbound=["conv", "input_conv"], activations_enabled=False),
        ],
        [0],
    ),
    (
        "same_pooling_rescaled",
        909,
        [
            L("InputData", input_width=7, input_height=5, input_channels=2, input_bits=4),
            # 5x7 map, Max 3x3 / 2: 3x4 windows, one padded row and column before and after
            L("Convolutional", "overlapping", kernel_width=3, kernel_height=3, num_neurons=4,
              convolution_mode="Same", weights_bits=2, pooling_type="Max", pooling_width=3, pooling_height=3,
              pooling_stride_x=2, pooling_stride_y=2, threshold_fire_bits=4),
            # 3x4 map, Average 5x5 / 1: windows larger than the map, 2 padded cells before each axis
            L("SeparableConvolutional", "larger_than_map", kernel_width=3, kernel_height=3, num_neurons=3,
              convolution_mode="Same", weights_bits=4, pooling_type="Average", pooling_width=5, pooling_height=5,
              pooling_stride_x=1, pooling_stride_y=1, threshold_fire_bits=2),
            # 3x4 map, Average 2x2: 2x2 windows, the last row padded; potentials rescaled by evaluate
            L("Convolutional", "rescaled", kernel_width=1, kernel_height=1, num_neurons=3, convolution_mode="Same",
              weights_bits=4, pooling_type="Average", pooling_width=2, pooling_height=2,
              activations_enabled=False),
        ],
        [1, 2],
        {3: {"output_scale": np.array([0.125, -2.5, 1e-3], np.float32),
             "output_offset": np.array([-1.75, 0.0, 3.3], np.float32)}},
    ),
    (
        "input_data_only",
        808,
        [
            L("InputData", input_width=3, input_height=2, input_channels=5),
        ],
        [],
    ),
    (
        "input_conv_defaults",
        707,
        [
            L("InputConvolutional", input_width=6, input_height=5, input_channels=1, kernel_width=3, kernel_height=3,
              num_neurons=2),
        ],
        [],
    ),
]


def _weights(rng, shape, bits):
    lo, hi = weight_range(bits)
    w = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < 0.7, w, 0).astype(np.int8)


def _calibrate(rng, specs, index, x):
    """Per-neuron thresholds and steps from the oracle's potentials, so that outputs are varied."""
    model = OracleModel(specs[: index + 1])
    name = model.names[index]
    pot = model.run(x)["potentials"][name]
    n = pot.shape[-1]
    flat = pot.reshape(-1, n)
    bits = model.params[name]["threshold_fire_bits"]
    levels = {1: 1, 2: 12, 4: 15}[bits]
    thresholds = np.empty(n, np.int32)
    steps = np.empty(n, np.float32)
    for j in range(n):
        q = (0.3, 0.5, 0.7, 0.4)[j % 4]
        t = int(np.quantile(flat[:, j], q, method="nearest")) - int(rng.integers(0, 2))
        spread = max(int(flat[:, j].max()) - t, 1)
        thresholds[j] = t
        steps[j] = np.float32(max(round(spread / levels * 4) / 4, 0.25) + (0.1 if j % 3 == 1 else 0.0))
    specs[index].variables["threshold_fire"] = thresholds
    specs[index].variables["threshold_fire_step"] = steps


def build(seed, specs, calibrated, fixed=None):
    """Fill in weights, inputs, thresholds and fixed variables; returns (specs, inputs)."""
    rng = np.random.default_rng(seed)
    specs = [LayerSpec(s.layer_type, dict(s.params), s.name, s.inbound, {}) for s in specs]
    shapes = OracleModel(specs)
    for spec, name in zip(specs, shapes.names):
        for var, shape in shapes.variable_shapes(name).items():
            if var.startswith("weights"):
                spec.variables[var] = _weights(rng, shape, shapes.params[name]["weights_bits"])
    first = shapes.names[0]
    bits = shapes.params[first]["input_bits"] if shapes.layer_type[first] == "InputData" else 8
    x = rng.integers(0, 2**bits, size=(NUM_SAMPLES,) + shapes.input_shape)
    x = np.where(rng.random(x.shape) < 0.7, x, 0).astype(np.uint8)
    for index in calibrated:
        _calibrate(rng, specs, index, x)
    for index, variables in (fixed or {}).items():
        specs[index].variables.update(variables)
    return specs, x


def _plain(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    return enum_name(value)


def describe(model):
    layers = []
    for layer in model.layers:
        layers.append(dict(
            name=layer.name,
            layer_type=layer.layer_type,
            params={k: _plain(v) for k, v in layer.parameters.to_dict().items()},
            inbound=[src.name for src in layer.inbound_layers],
        ))
    return layers


def write_npz(arrays) -> io.BytesIO:
    """Like numpy.savez_compressed, with fixed timestamps so that reruns give identical bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(arrays[key]), allow_pickle=False)
    return buf


def make(name, seed, layer_specs, calibrated, out: Path, fixed=None):
    specs, x = build(seed, layer_specs, calibrated, fixed)
    oracle = OracleModel(specs)
    result = oracle.run(x)
    model = build_akida_model(specs)
    arrays = {"inputs": x}
    for i, layer_name in enumerate(oracle.names):
        dtype = np.uint8 if oracle.emits_activations(layer_name) else np.int32
        expected = result["outputs"][layer_name]
        assert expected.min() >= np.iinfo(dtype).min and expected.max() <= np.iinfo(dtype).max
        arrays[f"output_{i}"] = expected.astype(dtype)
        layer = model.layers[i]
        assert layer.name == layer_name
        for var in layer.get_variable_names():
            arrays[f"var_{i}_{var}"] = layer.get_variable(var)
    got = model.forward(x)
    last = arrays[f"output_{len(oracle.names) - 1}"]
    if got.dtype != last.dtype or not np.array_equal(got, last):
        raise SystemExit(f"{name}: the engine disagrees with the oracle; not writing golden files")
    if not oracle.emits_activations(oracle.names[-1]):
        arrays["evaluate"] = oracle.evaluate(x)
        if model.evaluate(x).tobytes() != arrays["evaluate"].tobytes():
            raise SystemExit(f"{name}: the engine's evaluate disagrees with the oracle; not writing golden files")
    meta = dict(name=name, format_version=FORMAT_VERSION, seed=seed, layers=describe(model))
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    model.save(out / f"{name}.fbz")
    buf = write_npz(arrays)
    (out / f"{name}.npz").write_bytes(buf.getvalue())
    fired = [float(np.mean(arrays[f"output_{i}"] > 0)) for i in range(len(oracle.names))]
    return (out / f"{name}.fbz").stat().st_size, len(buf.getvalue()), fired


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "golden")
    parser.add_argument("names", nargs="*", help="write only these models (default: all)")
    args = parser.parse_args()
    known = [m[0] for m in GOLDEN_MODELS]
    unknown = set(args.names) - set(known)
    if unknown:
        raise SystemExit(f"unknown golden models {sorted(unknown)}; known: {known}")
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, seed, specs, calibrated, *fixed in GOLDEN_MODELS:
        if args.names and name not in args.names:
            continue
        fbz, npz, fired = make(name, seed, specs, calibrated, args.out, *fixed)
        total += fbz + npz
        print(f"{name:22s} {fbz:6d} B .fbz  {npz:6d} B .npz  non-zero outputs per layer: "
              + " ".join(f"{f:.2f}" for f in fired))
    print(f"total {total} bytes in {args.out}")


if __name__ == "__main__":
    main()

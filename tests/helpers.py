"""Random model generators and comparison helpers shared by the tests.

Random models are described as lists of ``oracle.LayerSpec``; the same description builds the akida
model (``oracle.build_akida_model``) and runs the oracle (``oracle.OracleModel``).
"""

from __future__ import annotations

import os

import numpy as np

from oracle import (
    LayerSpec,
    OracleModel,
    build_akida_model,
    conv_out_and_pad,
    oracle_from_akida,
    weight_range,
)

MODES = ("Valid", "Same", "Full")
POOLINGS = ("NoPooling", "Max", "Average")
STEPS = (0.3, 0.5, 0.7, 1.0, 1.5, 2.5, 3.0, 7.25, 0.1)

# AKIDA_TEST_SCALE=k multiplies the number of random cases of every randomized test
SCALE = max(1, int(os.environ.get("AKIDA_TEST_SCALE", "1")))


def cases(n):
    return range(n * SCALE)


# number of engine-vs-oracle comparisons made in this session (reported by conftest.py)
COMPARISONS = {"count": 0}


def rand_weights(rng, shape, bits, density=None):
    """Weights uniform in the allowed range of ``bits``; optionally sparse."""
    lo, hi = weight_range(bits)
    w = rng.integers(lo, hi + 1, size=shape)
    if density is None:
        density = rng.choice([0.3, 0.7, 1.0])
    w = np.where(rng.random(shape) < density, w, 0)
    return w.astype(np.int8)


def rand_input(rng, n, shape, bits, density=None):
    if density is None:
        density = rng.choice([0.2, 0.6, 1.0])
    x = rng.integers(0, 2**bits, size=(n,) + tuple(shape))
    x = np.where(rng.random(x.shape) < density, x, 0)
    return x.astype(np.uint8)


def rand_pooling(rng, oh, ow, kind=None, mode=None):
    """Pooling parameters valid for a (oh, ow) map of a layer in convolution ``mode``: windows of
    1..3 cells, never larger than the map in Valid and Full mode; in Same mode (padded windows)
    1..4 cells whatever the map size, often larger than it."""
    kind = kind or rng.choice(POOLINGS)
    if kind == "NoPooling":
        return dict(pooling_type="NoPooling")
    choice = rng.integers(3)
    if choice == 0:  # global
        params = dict(pooling_width=-1, pooling_height=-1)
    elif mode == "Same":
        params = dict(pooling_width=int(rng.integers(1, 5)), pooling_height=int(rng.integers(1, 5)))
    else:
        params = dict(
            pooling_width=int(rng.integers(1, min(3, ow) + 1)),
            pooling_height=int(rng.integers(1, min(3, oh) + 1)),
        )
    if choice == 2 or rng.random() < 0.3:  # custom strides
        params["pooling_stride_x"] = int(rng.integers(1, 4))
        params["pooling_stride_y"] = int(rng.integers(1, 4))
    params["pooling_type"] = kind
    return params


def rand_activation_params(rng, last, bits=None, enabled=None):
    if enabled is None:
        enabled = (not last) or rng.random() < 0.75
    if bits is None:
        bits = int(rng.choice([1, 2, 4]))
    return dict(activations_enabled=bool(enabled), threshold_fire_bits=bits)


def rand_conv_geometry(rng, h, w, mode=None, kernel=None, stride=None):
    """Random (params, out_h, out_w) for a convolution over an (h, w) map."""
    for _ in range(100):
        m = mode or str(rng.choice(MODES))
        kh = kernel[0] if kernel else int(rng.integers(1, 6))
        kw = kernel[1] if kernel else int(rng.integers(1, 6))
        sy = stride[0] if stride else int(rng.integers(1, 4))
        sx = stride[1] if stride else int(rng.integers(1, 4))
        if m == "Valid" and (kh > h or kw > w):
            if mode and kernel:
                raise ValueError("impossible Valid geometry")
            continue
        oh, _ = conv_out_and_pad(h, kh, sy, m)
        ow, _ = conv_out_and_pad(w, kw, sx, m)
        params = dict(kernel_width=kw, kernel_height=kh, stride_x=sx, stride_y=sy, convolution_mode=m)
        return params, oh, ow
    raise RuntimeError("no geometry")


def calibrate(rng, specs, index, x):
    """Give layer ``index`` thresholds and steps that make its activations interesting, from the
    oracle's potentials on ``x`` (thresholds do not influence the layer's own potentials)."""
    spec = specs[index]
    model = OracleModel(specs[: index + 1])
    name = model.names[index]
    pot = model.run(x)["potentials"][name]
    n = pot.shape[-1]
    flat = pot.reshape(-1, n)
    bits = model.params[name]["threshold_fire_bits"]
    thresholds = np.empty(n, dtype=np.int64)
    steps = np.empty(n, dtype=np.float32)
    for j in range(n):
        col = flat[:, j]
        r = rng.random()
        if r < 0.6 and col.size:
            t = int(np.quantile(col, rng.choice([0.1, 0.3, 0.5, 0.7]), method="nearest")) - int(rng.integers(0, 3))
        elif r < 0.8:
            t = int(rng.integers(-20, 21))
        else:
            t = int(rng.integers(-3, 4))
        spread = max(int(col.max()) - t, 1) if col.size else 1
        if rng.random() < 0.5:
            levels = {1: 1, 2: 12, 4: 15}[bits]
            s = float(np.float32(spread / levels * rng.choice([0.5, 1.0, 1.3])))
            s = max(s, 0.05)
        else:
            s = float(rng.choice(STEPS))
        thresholds[j] = t
        steps[j] = s
    spec.variables["threshold_fire"] = thresholds.astype(np.int32)
    spec.variables["threshold_fire_step"] = steps


def out_shape(specs):
    return OracleModel(specs).output_shape


def shape_of(specs, name_index):
    m = OracleModel(specs)
    return m.out_shape[m.names[name_index]]


def describe(specs, x=None):
    lines = []
    for s in specs:
        lines.append(f"  LayerSpec({s.layer_type!r}, {s.params!r}, name={s.name!r}, inbound={s.inbound!r},")
        for k, v in s.variables.items():
            arr = np.asarray(v)
            lines.append(f"      {k}{arr.shape} = {arr.tolist()!r}")
        lines.append("  )")
    if x is not None:
        lines.append(f"  input{np.asarray(x).shape} = {np.asarray(x).tolist()!r}")
    return "\n".join(lines)


def assert_same(specs, x, *, check_roundtrip=False, model=None, events=False, batch_size=None):
    """Build the akida model from ``specs``, run ``x`` and compare with the oracle exactly."""
    import akida

    oracle = OracleModel(specs)
    expected = oracle.forward(x)
    if model is None:
        model = build_akida_model(specs)
    inputs = akida.Events.from_dense(x) if events else x
    if batch_size is None:
        got = model.forward(inputs)
    else:
        got = model.forward(inputs, batch_size=batch_size)
    ctx = "\n" + describe(specs, x)
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == oracle.output_dtype(), f"dtype {got.dtype} != {oracle.output_dtype()}{ctx}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}{ctx}"
    if not np.array_equal(got.astype(np.int64), expected):
        diff = np.argwhere(got.astype(np.int64) != expected)
        first = tuple(diff[0])
        raise AssertionError(
            f"{len(diff)} values differ; first at {first}: engine {got[first]} oracle {expected[first]}{ctx}"
        )
    COMPARISONS["count"] += 1
    if check_roundtrip:
        again = oracle_from_akida(model).forward(x)
        assert np.array_equal(again, expected), "oracle on spec_from_akida(model) differs" + ctx
    return model, got


# ----------------------------------------------------------------------------------------------
# Random model families
# ----------------------------------------------------------------------------------------------


def input_data_spec(rng, h=None, w=None, c=None, bits=None):
    h = h or int(rng.integers(1, 9))
    w = w or int(rng.integers(1, 9))
    c = c or int(rng.integers(1, 4))
    bits = bits or int(rng.choice([1, 2, 4, 8]))
    return LayerSpec("InputData", dict(input_width=w, input_height=h, input_channels=c, input_bits=bits))


def add_conv(rng, specs, layer_type, x, last, inbound=None, geometry=None, pooling=None, bits=None,
             act=None, num_neurons=None):
    """Append a Convolutional / SeparableConvolutional layer with random weights and calibrated
    activation to ``specs`` (in place)."""
    src = OracleModel(specs)
    src_name = inbound[0] if inbound else src.names[-1]
    h, w, c = src.out_shape[src_name]
    geo, oh, ow = geometry if geometry is not None else rand_conv_geometry(rng, h, w)
    pool = pooling if pooling is not None else rand_pooling(rng, oh, ow, mode=geo["convolution_mode"])
    n = num_neurons or int(rng.integers(1, 5))
    wbits = bits or int(rng.choice([1, 2, 4]))
    params = dict(num_neurons=n, weights_bits=wbits, **geo, **pool, **(act or rand_activation_params(rng, last)))
    spec = LayerSpec(layer_type, params, inbound=inbound)
    kh, kw = geo["kernel_height"], geo["kernel_width"]
    if layer_type == "Convolutional":
        spec.variables["weights"] = rand_weights(rng, (kh, kw, c, n), wbits)
    else:
        spec.variables["weights"] = rand_weights(rng, (kh, kw, c, 1), wbits)
        spec.variables["weights_pw"] = rand_weights(rng, (1, 1, c, n), wbits)
    specs.append(spec)
    calibrate(rng, specs, len(specs) - 1, x)
    return spec


def add_chain(rng, specs, x, kinds):
    """Append one layer per entry of ``kinds`` ("FullyConnected", "Convolutional" or
    "SeparableConvolutional"), each fed by the previous one; only the last may output potentials."""
    for i, kind in enumerate(kinds):
        last = i == len(kinds) - 1
        act = rand_activation_params(rng, last)
        if kind == "FullyConnected":
            add_fc(rng, specs, x, last, act=act)
        else:
            add_conv(rng, specs, kind, x, last, act=act)


def add_fc(rng, specs, x, last, bits=None, act=None, num_neurons=None, inbound=None):
    src = OracleModel(specs)
    h, w, c = src.out_shape[inbound[0] if inbound else src.names[-1]]
    n = num_neurons or int(rng.integers(1, 7))
    wbits = bits or int(rng.choice([1, 2, 4]))
    params = dict(num_neurons=n, weights_bits=wbits, **(act or rand_activation_params(rng, last)))
    spec = LayerSpec("FullyConnected", params, inbound=inbound)
    spec.variables["weights"] = rand_weights(rng, (h, w, c, n), wbits)
    specs.append(spec)
    calibrate(rng, specs, len(specs) - 1, x)
    return spec


def input_conv_spec(rng, x_shape=None, geometry=None, pooling=None, bits=None, act=None, padding_value=None,
                    last=True, num_neurons=None, channels=None):
    h, w = x_shape if x_shape else (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    c = channels or int(rng.choice([1, 3]))
    geo, oh, ow = geometry if geometry is not None else rand_conv_geometry(rng, h, w)
    pool = pooling if pooling is not None else rand_pooling(rng, oh, ow, mode=geo["convolution_mode"])
    n = num_neurons or int(rng.integers(1, 5))
    wbits = bits or int(rng.choice([1, 2, 4, 8]))
    if padding_value is None:
        padding_value = int(rng.choice([0, 0, 1, 7, 128, 255]))
    params = dict(input_width=w, input_height=h, input_channels=c, num_neurons=n, weights_bits=wbits,
                  padding_value=padding_value, **geo, **pool, **(act or rand_activation_params(rng, last)))
    spec = LayerSpec("InputConvolutional", params)
    kh, kw = geo["kernel_height"], geo["kernel_width"]
    spec.variables["weights"] = rand_weights(rng, (kh, kw, c, n), wbits)
    return spec

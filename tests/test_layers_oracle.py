"""Every layer type and option against the numpy oracle, on random small cases.

Each test loops over a few seeded random cases; a failure message prints the whole model
description and input so that it can be reproduced with ``oracle.build_akida_model``.
"""

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng
from oracle import LayerSpec, OracleModel, weight_range

akida = pytest.importorskip("akida")


# ----------------------------------------------------------------------------------------------
# InputData alone
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_input_data_passthrough(bits):
    rng = seeded_rng("input-data", bits)
    for _ in H.cases(10):
        spec = [H.input_data_spec(rng, bits=bits)]
        x = H.rand_input(rng, int(rng.integers(1, 4)), H.out_shape(spec), bits)
        _, got = H.assert_same(spec, x)
        assert np.array_equal(got, x)


# ----------------------------------------------------------------------------------------------
# InputConvolutional
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", H.MODES)
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_input_conv_geometry(mode, stride, kernel):
    rng = seeded_rng("input-conv-geo", mode, stride, kernel)
    for i in H.cases(8):
        h = int(rng.integers(kernel if mode == "Valid" else 1, 9))
        w = int(rng.integers(kernel if mode == "Valid" else 1, 9))
        kh, kw = (kernel, kernel) if i % 2 == 0 else (kernel, int(rng.integers(1, min(w, 5) + 1 if mode == "Valid" else 6)))
        sy, sx = (stride, stride) if i % 3 else (stride, int(rng.integers(1, 4)))
        geo = H.rand_conv_geometry(rng, h, w, mode=mode, kernel=(kh, kw), stride=(sy, sx))
        spec = [H.input_conv_spec(rng, x_shape=(h, w), geometry=geo, pooling=dict(pooling_type="NoPooling"))]
        x = H.rand_input(rng, int(rng.integers(1, 4)), H.OracleModel(spec).input_shape, 8)
        H.calibrate(rng, spec, 0, x)
        H.assert_same(spec, x, check_roundtrip=(i == 0))


@pytest.mark.parametrize("wbits", [1, 2, 4, 8])
@pytest.mark.parametrize("fire_bits", [1, 2, 4])
@pytest.mark.parametrize("padding_value", [0, 1, 100, 255])
def test_input_conv_bits_and_padding(wbits, fire_bits, padding_value):
    rng = seeded_rng("input-conv-bits", wbits, fire_bits, padding_value)
    for _ in H.cases(6):
        spec = [H.input_conv_spec(rng, bits=wbits, padding_value=padding_value,
                                  act=dict(activations_enabled=True, threshold_fire_bits=fire_bits))]
        x = H.rand_input(rng, int(rng.integers(1, 4)), OracleModel(spec).input_shape, 8)
        H.calibrate(rng, spec, 0, x)
        H.assert_same(spec, x)


@pytest.mark.parametrize("pool_type", ["Max", "Average"])
def test_input_conv_pooling(pool_type):
    rng = seeded_rng("input-conv-pool", pool_type)
    for _ in H.cases(40):
        h, w = int(rng.integers(2, 10)), int(rng.integers(2, 10))
        geo = H.rand_conv_geometry(rng, h, w)
        spec = [H.input_conv_spec(rng, x_shape=(h, w), geometry=geo,
                                  pooling=H.rand_pooling(rng, geo[1], geo[2], kind=pool_type, mode=geo[0]["convolution_mode"]))]
        x = H.rand_input(rng, 2, OracleModel(spec).input_shape, 8)
        H.calibrate(rng, spec, 0, x)
        H.assert_same(spec, x)


def test_input_conv_activations_disabled():
    rng = seeded_rng("input-conv-noact")
    for _ in H.cases(30):
        spec = [H.input_conv_spec(rng, act=dict(activations_enabled=False))]
        x = H.rand_input(rng, 2, OracleModel(spec).input_shape, 8)
        _, got = H.assert_same(spec, x)
        assert got.dtype == np.int32


# ----------------------------------------------------------------------------------------------
# Convolutional / SeparableConvolutional
# ----------------------------------------------------------------------------------------------


def _single_conv_case(rng, layer_type, mode=None, stride=None, kernel=None, pooling_kind=None, wbits=None,
                      fire_bits=None, enabled=None, in_bits=None):
    specs = [H.input_data_spec(rng, bits=in_bits)]
    h, w, _ = H.out_shape(specs)
    if mode == "Valid" and kernel:
        # make sure the input is large enough for a Valid kernel
        h, w = max(h, kernel[0]), max(w, kernel[1])
        specs = [H.input_data_spec(rng, h=h, w=w, bits=in_bits)]
    x = H.rand_input(rng, int(rng.integers(1, 4)), H.out_shape(specs), specs[0].params["input_bits"])
    geo = H.rand_conv_geometry(rng, h, w, mode=mode, kernel=kernel, stride=stride)
    pool = H.rand_pooling(rng, geo[1], geo[2], kind=pooling_kind, mode=geo[0]["convolution_mode"])
    act = H.rand_activation_params(rng, True, bits=fire_bits, enabled=enabled)
    H.add_conv(rng, specs, layer_type, x, True, geometry=geo, pooling=pool, bits=wbits, act=act)
    return specs, x


@pytest.mark.parametrize("layer_type", ["Convolutional", "SeparableConvolutional"])
@pytest.mark.parametrize("mode", H.MODES)
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_conv_geometry(layer_type, mode, stride, kernel):
    rng = seeded_rng("conv-geo", layer_type, mode, stride, kernel)
    for i in H.cases(6):
        k = (kernel, kernel) if i % 2 == 0 else (kernel, int(rng.integers(1, 6)))
        s = (stride, stride) if i % 3 else (int(rng.integers(1, 4)), stride)
        specs, x = _single_conv_case(rng, layer_type, mode=mode, stride=s, kernel=k, pooling_kind="NoPooling")
        H.assert_same(specs, x, check_roundtrip=(i == 0))


@pytest.mark.parametrize("layer_type", ["Convolutional", "SeparableConvolutional"])
@pytest.mark.parametrize("wbits", [1, 2, 4])
@pytest.mark.parametrize("fire_bits", [1, 2, 4])
def test_conv_bits(layer_type, wbits, fire_bits):
    rng = seeded_rng("conv-bits", layer_type, wbits, fire_bits)
    for _ in H.cases(12):
        specs, x = _single_conv_case(rng, layer_type, wbits=wbits, fire_bits=fire_bits, enabled=True)
        H.assert_same(specs, x)


@pytest.mark.parametrize("layer_type", ["Convolutional", "SeparableConvolutional"])
@pytest.mark.parametrize("pool_type", ["Max", "Average"])
def test_conv_pooling(layer_type, pool_type):
    rng = seeded_rng("conv-pool", layer_type, pool_type)
    for _ in H.cases(40):
        specs, x = _single_conv_case(rng, layer_type, pooling_kind=pool_type)
        H.assert_same(specs, x)


@pytest.mark.parametrize("layer_type", ["Convolutional", "SeparableConvolutional"])
def test_conv_activations_disabled(layer_type):
    rng = seeded_rng("conv-noact", layer_type)
    for _ in H.cases(30):
        specs, x = _single_conv_case(rng, layer_type, enabled=False)
        _, got = H.assert_same(specs, x)
        assert got.dtype == np.int32


@pytest.mark.parametrize("layer_type", ["Convolutional", "SeparableConvolutional"])
def test_conv_random_everything(layer_type):
    rng = seeded_rng("conv-any", layer_type)
    for _ in H.cases(160):
        specs, x = _single_conv_case(rng, layer_type)
        H.assert_same(specs, x)


# ----------------------------------------------------------------------------------------------
# FullyConnected
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wbits", [1, 2, 4])
@pytest.mark.parametrize("fire_bits", [1, 2, 4])
def test_fully_connected(wbits, fire_bits):
    rng = seeded_rng("fc", wbits, fire_bits)
    for i in H.cases(25):
        specs = [H.input_data_spec(rng)]
        x = H.rand_input(rng, int(rng.integers(1, 5)), H.out_shape(specs), specs[0].params["input_bits"])
        H.add_fc(rng, specs, x, True, bits=wbits,
                 act=H.rand_activation_params(rng, True, bits=fire_bits, enabled=(i % 5 != 0)))
        H.assert_same(specs, x, check_roundtrip=(i == 0))


# ----------------------------------------------------------------------------------------------
# Activation details: non-integer steps, negative thresholds, float32 steps
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fire_bits", [2, 4])
@pytest.mark.parametrize("step", [0.3, 0.7, 2.5, 0.1, 1.0 / 3.0, 12.75, 1e-3, 1000.5])
def test_activation_steps_and_thresholds(fire_bits, step):
    """FC with one-hot weights so potentials sweep densely across the cut points."""
    rng = seeded_rng("act-steps", fire_bits, step)
    c = 8
    for t in [-37, -5, -1, 0, 1, 3, 17, 100]:
        specs = [
            LayerSpec("InputData", dict(input_width=1, input_height=1, input_channels=c, input_bits=8)),
            LayerSpec("FullyConnected", dict(num_neurons=3, weights_bits=2, threshold_fire_bits=fire_bits,
                                             threshold_fire=t, threshold_fire_step=step)),
        ]
        weights = np.zeros((1, 1, c, 3), np.int8)
        weights[0, 0, :, 0] = 1  # p0 = sum(x)
        weights[0, 0, 0, 1] = 1  # p1 = x0 - x1
        weights[0, 0, 1, 1] = -1
        weights[0, 0, 2, 2] = -1  # p2 = -x2
        specs[1].variables["weights"] = weights
        x = rng.integers(0, 256, size=(64, 1, 1, c)).astype(np.uint8)
        x[:, 0, 0, 3:] = np.where(rng.random((64, c - 3)) < 0.5, 0, x[:, 0, 0, 3:])
        H.assert_same(specs, x)


def test_activation_large_thresholds_tiny_steps():
    """Extreme per-neuron values: cut points near 2**31 and steps far below 1."""
    rng = seeded_rng("act-extreme")
    c = 2
    for _ in H.cases(30):
        bits = int(rng.choice([2, 4]))
        n = 4
        thresholds = rng.integers(-2**31, 2**31 - 1, size=n, dtype=np.int64)
        thresholds[0] = 0
        thresholds[1] = -1
        steps = np.array([rng.random() * 1e-6 + 1e-9, 0.7, rng.random() * 100, 2.0**-20], np.float32)
        specs = [
            LayerSpec("InputData", dict(input_width=1, input_height=1, input_channels=c, input_bits=4)),
            LayerSpec("FullyConnected", dict(num_neurons=n, weights_bits=4, threshold_fire_bits=bits),
                      variables={"weights": H.rand_weights(rng, (1, 1, c, n), 4, density=1.0),
                                 "threshold_fire": thresholds.astype(np.int32),
                                 "threshold_fire_step": steps}),
        ]
        x = H.rand_input(rng, 16, (1, 1, c), 4)
        H.assert_same(specs, x)


# ----------------------------------------------------------------------------------------------
# Concat
# ----------------------------------------------------------------------------------------------


def _concat_case(rng, enabled=None, fire_bits=None, with_fc=True):
    specs = [H.input_data_spec(rng, h=int(rng.integers(2, 8)), w=int(rng.integers(2, 8)))]
    h, w, _ = H.out_shape(specs)
    x = H.rand_input(rng, int(rng.integers(1, 4)), H.out_shape(specs), specs[0].params["input_bits"])
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    geo_a = H.rand_conv_geometry(rng, h, w, mode="Same", stride=s)
    geo_b = H.rand_conv_geometry(rng, h, w, mode="Same", stride=s)
    pool = H.rand_pooling(rng, geo_a[1], geo_a[2], mode="Same")
    src = ["input_data"]
    types = [str(rng.choice(["Convolutional", "SeparableConvolutional"])) for _ in range(2)]
    act = lambda: H.rand_activation_params(rng, False, enabled=True)  # noqa: E731
    a = H.add_conv(rng, specs, types[0], x, False, inbound=src, geometry=geo_a, pooling=pool, act=act())
    a.name = "branch_a"
    b = H.add_conv(rng, specs, types[1], x, False, inbound=src, geometry=geo_b, pooling=pool, act=act())
    b.name = "branch_b"
    inbound = ["branch_a", "branch_b"] if rng.random() < 0.5 else ["branch_b", "branch_a"]
    last = not with_fc
    cat_act = H.rand_activation_params(rng, last, bits=fire_bits, enabled=True if enabled is None and not last else enabled)
    specs.append(LayerSpec("Concat", dict(cat_act), inbound=inbound))
    H.calibrate(rng, specs, len(specs) - 1, x)
    if with_fc:
        H.add_fc(rng, specs, x, True)
    return specs, x


@pytest.mark.parametrize("fire_bits", [1, 2, 4])
def test_concat_two_branches(fire_bits):
    rng = seeded_rng("concat", fire_bits)
    for i in H.cases(25):
        specs, x = _concat_case(rng, enabled=True, fire_bits=fire_bits, with_fc=False)
        H.assert_same(specs, x, check_roundtrip=(i == 0))


def test_concat_activations_disabled_is_the_output():
    rng = seeded_rng("concat-noact")
    for _ in H.cases(15):
        specs, x = _concat_case(rng, enabled=False, with_fc=False)
        _, got = H.assert_same(specs, x)
        # semantics.md, Outputs: uint8 for "InputData, Concat and any layer with activations enabled"
        assert got.dtype == np.uint8


def test_concat_then_fully_connected():
    rng = seeded_rng("concat-fc")
    for _ in H.cases(25):
        specs, x = _concat_case(rng, with_fc=True)
        H.assert_same(specs, x)


def test_concat_activations_disabled_feeds_fully_connected():
    """semantics.md: a Concat with activations disabled passes its inputs through unchanged, and
    unlike the other layers it may then feed a data-processing layer."""
    rng = seeded_rng("concat-noact-fc")
    for _ in H.cases(15):
        specs, x = _concat_case(rng, enabled=False, with_fc=True)
        assert specs[-2].params["activations_enabled"] is False
        H.assert_same(specs, x)


def test_concat_of_input_and_conv():
    """Concat may join the input layer itself with a convolution of it."""
    rng = seeded_rng("concat-input")
    for _ in H.cases(15):
        specs = [H.input_data_spec(rng, h=int(rng.integers(1, 7)), w=int(rng.integers(1, 7)))]
        h, w, _ = H.out_shape(specs)
        x = H.rand_input(rng, 2, (h, w, specs[0].params["input_channels"]), specs[0].params["input_bits"])
        geo = H.rand_conv_geometry(rng, h, w, mode="Same", stride=(1, 1))
        H.add_conv(rng, specs, "Convolutional", x, False, geometry=geo, pooling=dict(pooling_type="NoPooling"),
                   act=H.rand_activation_params(rng, False, enabled=True))
        specs.append(LayerSpec("Concat", H.rand_activation_params(rng, True, enabled=True),
                               inbound=["conv", "input_data"]))
        H.calibrate(rng, specs, 2, x)
        H.assert_same(specs, x)


# ----------------------------------------------------------------------------------------------
# Multi-layer models
# ----------------------------------------------------------------------------------------------


def _chain_case(rng, kinds, first="InputData"):
    if first == "InputData":
        specs = [H.input_data_spec(rng, h=int(rng.integers(3, 10)), w=int(rng.integers(3, 10)))]
        x = H.rand_input(rng, int(rng.integers(1, 4)), H.out_shape(specs), specs[0].params["input_bits"])
    else:
        specs = [H.input_conv_spec(rng, x_shape=(int(rng.integers(3, 10)), int(rng.integers(3, 10))),
                                   act=H.rand_activation_params(rng, False, enabled=True))]
        x = H.rand_input(rng, int(rng.integers(1, 4)), OracleModel(specs).input_shape, 8)
        H.calibrate(rng, specs, 0, x)
    H.add_chain(rng, specs, x, kinds)
    return specs, x


@pytest.mark.parametrize(
    "kinds",
    [
        ("Convolutional", "SeparableConvolutional", "FullyConnected"),
        ("Convolutional", "Convolutional"),
        ("SeparableConvolutional", "Convolutional", "FullyConnected"),
        ("FullyConnected", "FullyConnected"),
        ("Convolutional", "FullyConnected", "FullyConnected"),
    ],
    ids=lambda k: "-".join(x[:4] for x in k),
)
@pytest.mark.parametrize("first", ["InputData", "InputConvolutional"])
def test_multi_layer(kinds, first):
    rng = seeded_rng("chain", kinds, first)
    for i in H.cases(40):
        specs, x = _chain_case(rng, kinds, first)
        H.assert_same(specs, x, check_roundtrip=(i == 0))


# ----------------------------------------------------------------------------------------------
# Events inputs
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds", [("Convolutional",), ("SeparableConvolutional", "FullyConnected"), ("FullyConnected",), ()],
    ids=["conv", "sep-fc", "fc", "input-only"],
)
def test_events_equal_dense(kinds):
    rng = seeded_rng("events", kinds)
    for _ in H.cases(30):
        specs, x = _chain_case(rng, kinds) if kinds else (None, None)
        if specs is None:
            specs = [H.input_data_spec(rng)]
            x = H.rand_input(rng, 3, H.out_shape(specs), specs[0].params["input_bits"])
        model, dense = H.assert_same(specs, x)
        _, from_events = H.assert_same(specs, x, model=model, events=True)
        assert np.array_equal(dense, from_events)
        # the same events in a shuffled order, built by hand
        idx = np.argwhere(x > 0)
        perm = rng.permutation(len(idx))
        idx = idx[perm]
        ev = akida.Events(x.shape[1:], idx[:, 0], idx[:, 2], idx[:, 1], idx[:, 3], x[tuple(idx.T)],
                          num_samples=x.shape[0])
        assert np.array_equal(model.forward(ev), dense)


# ----------------------------------------------------------------------------------------------
# Batch independence on random models
# ----------------------------------------------------------------------------------------------


def test_random_models_batch_size_and_single_samples():
    rng = seeded_rng("batch")
    for _ in H.cases(10):
        specs, x = _chain_case(rng, ("Convolutional", "FullyConnected"))
        x = H.rand_input(rng, 7, H.OracleModel(specs).input_shape, specs[0].params["input_bits"])
        model, full = H.assert_same(specs, x)
        for bs in (1, 2, 3, 7, 100):
            assert np.array_equal(model.forward(x, batch_size=bs), full)
        singles = np.concatenate([model.forward(x[i : i + 1]) for i in range(len(x))])
        assert np.array_equal(singles, full)


# ----------------------------------------------------------------------------------------------
# Extreme values: potentials at the largest possible magnitude, around the int16 / int32 limits
# ----------------------------------------------------------------------------------------------


def _extreme_weights(rng, shape, bits, pattern):
    lo, hi = weight_range(bits)
    if pattern == "max":
        return np.full(shape, hi, np.int8)
    if pattern == "min":
        return np.full(shape, lo, np.int8)
    return np.where(rng.random(shape) < 0.5, lo, hi).astype(np.int8)


@pytest.mark.parametrize("pattern", ["max", "min", "mixed"])
@pytest.mark.parametrize("in_bits, wbits", [(4, 4), (8, 4), (8, 2), (1, 1), (4, 2)])
@pytest.mark.parametrize("kind", ["FullyConnected", "Convolutional", "SeparableConvolutional"])
def test_extreme_potentials(kind, in_bits, wbits, pattern):
    """All inputs at their maximum and all weights at +-max: the potentials reach the bound the
    engine computes, for connection counts on both sides of 2**15 / (max_in * max_w)."""
    rng = seeded_rng("extreme", kind, in_bits, wbits, pattern)
    max_in, max_w = 2**in_bits - 1, weight_range(wbits)[1]
    edge = (2**15 - 1) // (max_in * max_w)  # connections that still fit in int16
    for conn in sorted({max(edge - 1, 1), edge, edge + 1, edge + 2, 2 * edge + 3}):
        if kind == "FullyConnected":
            shape = (1, 1, conn) if conn > 4096 else (2, conn // 2, 1) if conn % 2 == 0 else (1, conn, 1)
            layer = LayerSpec("FullyConnected", dict(num_neurons=3, weights_bits=wbits, activations_enabled=False),
                              variables={"weights": _extreme_weights(rng, shape + (3,), wbits, pattern)})
        elif kind == "Convolutional":
            shape = (3, 4, conn)
            mode = str(rng.choice(H.MODES))
            layer = LayerSpec("Convolutional", dict(kernel_width=1, kernel_height=1, num_neurons=2,
                                                    weights_bits=wbits, activations_enabled=False,
                                                    convolution_mode=mode),
                              variables={"weights": _extreme_weights(rng, (1, 1, conn, 2), wbits, pattern)})
        else:
            # depthwise bound 3*3*max_in*max_w, pointwise conn channels
            shape = (3, 3, max(conn // 9, 1))
            c = shape[2]
            layer = LayerSpec("SeparableConvolutional",
                              dict(kernel_width=3, kernel_height=3, num_neurons=2, weights_bits=wbits,
                                   activations_enabled=False, convolution_mode="Same"),
                              variables={"weights": _extreme_weights(rng, (3, 3, c, 1), wbits, pattern),
                                         "weights_pw": _extreme_weights(rng, (1, 1, c, 2), wbits, pattern)})
        specs = [LayerSpec("InputData", dict(input_width=shape[1], input_height=shape[0], input_channels=shape[2],
                                             input_bits=in_bits)), layer]
        x = np.full((2,) + shape, max_in, np.uint8)
        x[1] = H.rand_input(rng, 1, shape, in_bits, density=0.9)[0]
        H.assert_same(specs, x)


@pytest.mark.parametrize("pattern", ["max", "min", "mixed"])
def test_extreme_input_convolution(pattern):
    """8-bit weights, 255 inputs and padding_value 255: the largest InputConvolutional potentials."""
    rng = seeded_rng("extreme-ic", pattern)
    for kh, kw, c in [(1, 1, 1), (2, 2, 1), (3, 3, 3), (5, 5, 3), (1, 5, 3)]:
        for mode in H.MODES:
            spec = LayerSpec("InputConvolutional",
                             dict(input_width=6, input_height=5, input_channels=c, kernel_width=kw,
                                  kernel_height=kh, num_neurons=3, weights_bits=8, padding_value=255,
                                  convolution_mode=mode, activations_enabled=False),
                             variables={"weights": _extreme_weights(rng, (kh, kw, c, 3), 8, pattern)})
            x = np.full((2, 5, 6, c), 255, np.uint8)
            x[1] = H.rand_input(rng, 1, (5, 6, c), 8)[0]
            H.assert_same([spec], x)


@pytest.mark.parametrize("fire_bits", [1, 2, 4])
def test_extreme_potentials_through_activation(fire_bits):
    """Large potentials with thresholds next to them, pooled, through an activation."""
    rng = seeded_rng("extreme-act", fire_bits)
    for _ in H.cases(10):
        c = int(rng.integers(20, 60))
        w = _extreme_weights(rng, (3, 3, c, 4), 4, str(rng.choice(["max", "min", "mixed"])))
        specs = [
            LayerSpec("InputData", dict(input_width=5, input_height=5, input_channels=c, input_bits=4)),
            LayerSpec("Convolutional", dict(kernel_width=3, kernel_height=3, num_neurons=4, weights_bits=4,
                                            threshold_fire_bits=fire_bits, pooling_type=str(rng.choice(["Max", "Average"])),
                                            pooling_width=2, pooling_height=2, pooling_stride_x=1, pooling_stride_y=1),
                      variables={"weights": w}),
        ]
        x = H.rand_input(rng, 3, (5, 5, c), 4, density=0.95)
        x[0] = 15
        H.calibrate(rng, specs, 1, x)
        H.assert_same(specs, x)


# ----------------------------------------------------------------------------------------------
# Larger shapes (vectorized kernel remainders, many channels / neurons, many samples)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Convolutional", "SeparableConvolutional", "FullyConnected"])
def test_larger_shapes(kind):
    rng = seeded_rng("large", kind)
    for neurons in (7, 16, 17, 33, 64, 65):
        h, w, c = int(rng.integers(8, 20)), int(rng.integers(8, 20)), int(rng.choice([3, 16, 17, 31]))
        specs = [H.input_data_spec(rng, h=h, w=w, c=c, bits=int(rng.choice([1, 4, 8])))]
        x = H.rand_input(rng, int(rng.choice([1, 5, 16])), (h, w, c), specs[0].params["input_bits"])
        act = H.rand_activation_params(rng, True)
        if kind == "FullyConnected":
            H.add_fc(rng, specs, x, True, act=act, num_neurons=neurons)
        else:
            H.add_conv(rng, specs, kind, x, True, act=act, num_neurons=neurons)
        H.assert_same(specs, x)
        H.assert_same(specs, x, events=True)


def test_larger_input_convolution():
    rng = seeded_rng("large-ic")
    for neurons in (8, 16, 17, 32, 33):
        h, w = int(rng.integers(16, 40)), int(rng.integers(16, 40))
        spec = [H.input_conv_spec(rng, x_shape=(h, w), num_neurons=neurons)]
        x = H.rand_input(rng, 4, OracleModel(spec).input_shape, 8)
        H.calibrate(rng, spec, 0, x)
        H.assert_same(spec, x)


@pytest.mark.parametrize("in_bits", [1, 2, 3, 4, 5, 6, 7, 8])
def test_every_input_bits(in_bits):
    rng = seeded_rng("in-bits", in_bits)
    for _ in H.cases(5):
        specs = [H.input_data_spec(rng, bits=in_bits)]
        x = H.rand_input(rng, 3, H.out_shape(specs), in_bits)
        x[0].flat[0] = 2**in_bits - 1
        H.add_conv(rng, specs, "Convolutional", x, False)
        H.add_fc(rng, specs, x, True)
        H.assert_same(specs, x)

"""The Python API of Model and Layer (docs/api.md), checked against the oracle where values matter."""

import os
import pickle
import select
import signal
import time
import warnings

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng
from oracle import OracleModel, build_akida_model, oracle_from_akida, predict_from_outputs

akida = pytest.importorskip("akida")


def small_model(num_neurons=4):
    model = akida.Model()
    model.add(akida.InputData(input_width=4, input_height=3, input_channels=2, input_bits=4))
    model.add(akida.Convolutional(kernel_width=3, kernel_height=3, num_neurons=3, weights_bits=2))
    model.add(akida.FullyConnected(num_neurons=num_neurons, weights_bits=2, threshold_fire_bits=4))
    return model


def randomize(model, rng):
    """Random weights within range and calibrated-ish thresholds on every layer of ``model``."""
    for layer in model.layers:
        names = layer.get_variable_names()
        bits = layer.parameters.to_dict().get("weights_bits")
        for var in ("weights", "weights_pw"):
            if var in names:
                shape = layer.get_variable(var).shape
                layer.set_variable(var, H.rand_weights(rng, shape, bits))
        if "threshold_fire" in names:
            n = layer.get_variable("threshold_fire").shape[0]
            layer.set_variable("threshold_fire", rng.integers(-3, 6, size=n).astype(np.int32))
            layer.set_variable("threshold_fire_step", rng.choice([0.5, 1.0, 2.5], size=n).astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Construction, layers, names
# ----------------------------------------------------------------------------------------------


def test_empty_model():
    model = akida.Model()
    assert model.get_layer_count() == 0
    assert list(model.layers) == []


def test_model_from_layer_list():
    layers = [
        akida.InputData(input_width=5, input_height=6, input_channels=1, input_bits=2),
        akida.Convolutional(kernel_width=3, kernel_height=3, num_neurons=4),
        akida.FullyConnected(num_neurons=7),
    ]
    model = akida.Model(layers=layers)
    assert model.get_layer_count() == 3
    assert [l.name for l in model.layers] == ["input_data", "conv", "fully_connected"]
    assert [l.layer_type for l in model.layers] == ["InputData", "Convolutional", "FullyConnected"]
    assert model.input_shape == (6, 5, 1)
    assert model.output_shape == (1, 1, 7)
    assert model.layers[1].input_shape == (6, 5, 1)
    assert model.layers[1].output_shape == (6, 5, 4)
    assert [l.name for l in model.layers[2].inbound_layers] == ["conv"]
    assert [l.name for l in model.layers[1].inbound_layers] == ["input_data"]
    assert list(model.layers[0].inbound_layers) == []


def test_model_layers_positional_argument():
    layers = [akida.InputData(input_width=2, input_height=2, input_channels=1), akida.FullyConnected(num_neurons=2)]
    model = akida.Model(layers)
    assert model.get_layer_count() == 2


def test_input_layer_knows_its_shapes_at_once():
    layer = akida.InputData(input_width=5, input_height=6, input_channels=3)
    assert layer.input_shape == (6, 5, 3)
    assert layer.output_shape == (6, 5, 3)
    layer = akida.InputConvolutional(input_width=8, input_height=6, input_channels=3, kernel_width=3,
                                     kernel_height=3, num_neurons=5, stride_x=2, stride_y=2)
    assert layer.input_shape == (6, 8, 3)
    assert layer.output_shape == (3, 4, 5)
    assert layer.get_variable("weights").shape == (3, 3, 3, 5)


def test_shapes_of_each_layer_type():
    model = akida.Model()
    model.add(akida.InputConvolutional(input_width=9, input_height=7, input_channels=1, kernel_width=3,
                                       kernel_height=3, num_neurons=4, convolution_mode=akida.ConvolutionMode.Valid,
                                       pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2))
    # Valid: 5x7, Max 2x2 stride 2: floor((5-2)/2)+1 = 2, floor((7-2)/2)+1 = 3
    assert model.output_shape == (2, 3, 4)
    model.add(akida.SeparableConvolutional(kernel_width=3, kernel_height=3, num_neurons=6,
                                           convolution_mode=akida.ConvolutionMode.Full))
    assert model.output_shape == (4, 5, 6)
    sep = model.get_layer("sep_conv")
    assert sep.get_variable("weights").shape == (3, 3, 4, 1)
    assert sep.get_variable("weights_pw").shape == (1, 1, 4, 6)
    model.add(akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=2, stride_x=3, stride_y=2,
                                  pooling_type=akida.PoolingType.Average))
    # Same, stride (2, 3): ceil(4/2) = 2, ceil(5/3) = 2 ; global average pooling -> 1x1
    assert model.output_shape == (1, 1, 2)
    model.add(akida.FullyConnected(num_neurons=3))
    assert model.get_layer("fully_connected").get_variable("weights").shape == (1, 1, 2, 3)
    assert model.output_shape == (1, 1, 3)


def test_default_names():
    model = akida.Model()
    model.add(akida.InputData(input_width=2, input_height=2, input_channels=1))
    model.add(akida.FullyConnected(num_neurons=2))
    model.add(akida.FullyConnected(num_neurons=2))
    model.add(akida.FullyConnected(num_neurons=2))
    assert [l.name for l in model.layers] == ["input_data", "fully_connected", "fully_connected_1",
                                               "fully_connected_2"]


def test_default_name_takes_first_free_suffix():
    model = akida.Model()
    model.add(akida.InputData(input_width=4, input_height=4, input_channels=1))
    model.add(akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=1, name="conv_1"))
    model.add(akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=1))
    model.add(akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=1))
    assert [l.name for l in model.layers] == ["input_data", "conv_1", "conv", "conv_2"]


def test_default_names_of_every_type():
    model = akida.Model()
    model.add(akida.InputConvolutional(input_width=4, input_height=4, input_channels=1, kernel_width=3,
                                       kernel_height=3, num_neurons=2))
    a = akida.Convolutional(kernel_width=3, kernel_height=3, num_neurons=2)
    b = akida.SeparableConvolutional(kernel_width=3, kernel_height=3, num_neurons=2)
    model.add(a)
    model.add(b, inbound_layers=[model.get_layer(0)])
    model.add(akida.Concat(), inbound_layers=[a, b])
    model.add(akida.FullyConnected(num_neurons=1))
    assert [l.name for l in model.layers] == ["input_conv", "conv", "sep_conv", "concat", "fully_connected"]
    assert model.get_layer("concat").output_shape == (4, 4, 4)
    assert [l.name for l in model.get_layer("concat").inbound_layers] == ["conv", "sep_conv"]
    model2 = akida.Model()
    model2.add(akida.InputData(input_width=1, input_height=1, input_channels=1))
    assert model2.layers[0].name == "input_data"


def test_explicit_names_are_kept():
    layer = akida.FullyConnected(num_neurons=3, name="classifier")
    assert layer.name == "classifier"
    model = akida.Model()
    model.add(akida.InputData(input_width=2, input_height=2, input_channels=1, name="pixels"))
    model.add(layer)
    assert model.get_layer("classifier") is not None
    assert model.get_layer("classifier").name == "classifier"
    assert model.get_layer("pixels").layer_type == "InputData"


def test_get_layer_by_name_and_index():
    model = small_model()
    for i, layer in enumerate(model.layers):
        by_index = model.get_layer(i)
        by_name = model.get_layer(layer.name)
        assert by_index.name == by_name.name == layer.name
        assert by_index.layer_type == layer.layer_type


def test_add_with_inbound_layers_and_pop_layer():
    model = small_model()
    assert model.get_layer_count() == 3
    assert model.pop_layer() is None
    assert model.get_layer_count() == 2
    assert [l.name for l in model.layers] == ["input_data", "conv"]
    assert model.output_shape == (3, 4, 3)
    # the popped name is free again
    model.add(akida.FullyConnected(num_neurons=2))
    assert model.layers[-1].name == "fully_connected"
    assert model.output_shape == (1, 1, 2)
    # explicit inbound layer (skipping "conv")
    model.add(akida.FullyConnected(num_neurons=5), inbound_layers=[model.get_layer("input_data")])
    assert model.output_shape == (1, 1, 5)
    assert model.get_layer("fully_connected_1").get_variable("weights").shape == (3, 4, 2, 5)
    assert model.get_layer("fully_connected_1").input_shape == (3, 4, 2)


def test_pop_every_layer_then_rebuild():
    model = small_model()
    for _ in range(3):
        model.pop_layer()
    assert model.get_layer_count() == 0
    model.add(akida.InputData(input_width=3, input_height=3, input_channels=1))
    assert model.input_shape == (3, 3, 1)


def test_summary_names_every_layer(capsys):
    model = small_model()
    model.add(akida.FullyConnected(num_neurons=2, name="the_classifier"))
    model.summary()
    out = capsys.readouterr().out
    assert out.strip()
    for layer in model.layers:
        assert layer.name in out
        assert layer.layer_type in out


def test_summary_and_statistics_follow_same_pooling(capsys):
    # 5x7 map, Same Max 2x2: ceil(5/2) x ceil(7/2) = 3x4 padded windows (version 1 had 2x3)
    model = akida.Model([akida.InputData(7, 5, 1, input_bits=1),
                         akida.Convolutional(3, 3, 2, name="pooled", pooling_type=akida.PoolingType.Max,
                                             pooling_width=2, pooling_height=2)])
    assert model.output_shape == model.layers[1].output_shape == (3, 4, 2)
    model.summary()
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("pooled"))
    assert "[5, 7, 1]" in row and "[3, 4, 2]" in row and "max pool 2x2" in row
    model.forward(np.ones((2, 5, 7, 1), np.uint8))
    stats = model.get_statistics()["pooled"]
    assert stats.samples == 2 and 0.0 <= stats.output_sparsity <= 1.0


# ----------------------------------------------------------------------------------------------
# Parameters and variables
# ----------------------------------------------------------------------------------------------


def test_parameters_reflect_the_constructor():
    layer = akida.Convolutional(kernel_width=3, kernel_height=5, num_neurons=7, name="c", stride_x=2, stride_y=3,
                                weights_bits=4, convolution_mode=akida.ConvolutionMode.Full,
                                pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=1,
                                pooling_stride_x=1, pooling_stride_y=2, activations_enabled=False,
                                threshold_fire=-4, threshold_fire_step=2.5, threshold_fire_bits=2)
    p = layer.parameters
    assert p.kernel_width == 3
    assert p.kernel_height == 5
    assert p.num_neurons == 7
    assert p.stride_x == 2 and p.stride_y == 3
    assert p.weights_bits == 4
    assert p.convolution_mode == akida.ConvolutionMode.Full
    assert p.pooling_type == akida.PoolingType.Max
    assert (p.pooling_width, p.pooling_height, p.pooling_stride_x, p.pooling_stride_y) == (2, 1, 1, 2)
    assert p.activations_enabled is False
    assert p.threshold_fire == -4
    assert p.threshold_fire_step == pytest.approx(2.5)
    assert p.threshold_fire_bits == 2
    d = p.to_dict()
    assert isinstance(d, dict)
    for key in ("kernel_width", "kernel_height", "num_neurons", "stride_x", "stride_y", "weights_bits",
                "convolution_mode", "pooling_type", "pooling_width", "pooling_height", "pooling_stride_x",
                "pooling_stride_y", "activations_enabled", "threshold_fire", "threshold_fire_step",
                "threshold_fire_bits"):
        assert key in d, key
        if key not in ("convolution_mode", "pooling_type"):
            assert d[key] == getattr(p, key), key


@pytest.mark.parametrize(
    "make, keys",
    [
        (lambda: akida.InputData(input_width=3, input_height=2, input_channels=1, input_bits=2),
         dict(input_width=3, input_height=2, input_channels=1, input_bits=2)),
        (lambda: akida.InputConvolutional(input_width=3, input_height=2, input_channels=3, kernel_width=1,
                                          kernel_height=2, num_neurons=4, padding_value=9, weights_bits=8),
         dict(input_width=3, input_height=2, input_channels=3, kernel_width=1, kernel_height=2, num_neurons=4,
              padding_value=9, weights_bits=8, stride_x=1, stride_y=1, threshold_fire_bits=1)),
        (lambda: akida.FullyConnected(num_neurons=6),
         dict(num_neurons=6, weights_bits=1, activations_enabled=True, threshold_fire=0, threshold_fire_bits=1)),
        (lambda: akida.SeparableConvolutional(kernel_width=3, kernel_height=3, num_neurons=2),
         dict(kernel_width=3, kernel_height=3, num_neurons=2, weights_bits=2)),
        (lambda: akida.Concat(threshold_fire=3), dict(threshold_fire=3, activations_enabled=True)),
    ],
    ids=["InputData", "InputConvolutional", "FullyConnected", "SeparableConvolutional", "Concat"],
)
def test_parameters_defaults(make, keys):
    layer = make()
    d = layer.parameters.to_dict()
    for k, v in keys.items():
        assert d[k] == v, k
        assert getattr(layer.parameters, k) == v, k


def test_parameters_are_read_only():
    layer = akida.FullyConnected(num_neurons=3)
    with pytest.raises(AttributeError):
        layer.parameters.num_neurons = 4
    assert layer.parameters.num_neurons == 3


def test_layer_type_strings():
    assert akida.InputData(input_width=1, input_height=1, input_channels=1).layer_type == "InputData"
    assert akida.InputConvolutional(input_width=3, input_height=3, input_channels=1, kernel_width=3,
                                    kernel_height=3, num_neurons=1).layer_type == "InputConvolutional"
    assert akida.FullyConnected(num_neurons=1).layer_type == "FullyConnected"
    assert akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=1).layer_type == "Convolutional"
    assert akida.SeparableConvolutional(kernel_width=1, kernel_height=1,
                                        num_neurons=1).layer_type == "SeparableConvolutional"
    assert akida.Concat().layer_type == "Concat"
    for cls in (akida.InputData, akida.FullyConnected, akida.Concat):
        assert issubclass(cls, akida.Layer)


def test_variable_names_per_layer_type():
    model = akida.Model()
    model.add(akida.InputConvolutional(input_width=4, input_height=4, input_channels=1, kernel_width=3,
                                       kernel_height=3, num_neurons=2))
    model.add(akida.Convolutional(kernel_width=3, kernel_height=3, num_neurons=2))
    model.add(akida.SeparableConvolutional(kernel_width=3, kernel_height=3, num_neurons=2),
              inbound_layers=[model.get_layer(0)])
    model.add(akida.Concat(), inbound_layers=[model.get_layer(1), model.get_layer(2)])
    model.add(akida.FullyConnected(num_neurons=2))
    act = {"threshold_fire", "threshold_fire_step", "output_scale", "output_offset"}
    assert set(model.get_layer("input_conv").get_variable_names()) == {"weights", "wta_groups"} | act
    assert set(model.get_layer("conv").get_variable_names()) == {"weights"} | act
    assert set(model.get_layer("sep_conv").get_variable_names()) == {"weights", "weights_pw"} | act
    assert set(model.get_layer("concat").get_variable_names()) == act
    assert set(model.get_layer("fully_connected").get_variable_names()) == {"weights"} | act
    assert model.get_layer("concat").get_variable("threshold_fire").shape == (4,)
    assert model.get_layer("concat").get_variable("output_scale").shape == (4,)
    data = akida.InputData(input_width=1, input_height=1, input_channels=1)
    assert list(data.get_variable_names()) == []


def test_initial_variables():
    model = akida.Model()
    model.add(akida.InputData(input_width=3, input_height=2, input_channels=2))
    model.add(akida.FullyConnected(num_neurons=5, threshold_fire=-7, threshold_fire_step=0.3, weights_bits=4))
    fc = model.get_layer(1)
    w = fc.get_variable("weights")
    assert w.dtype == np.int8 and w.shape == (2, 3, 2, 5) and not w.any()
    t = fc.get_variable("threshold_fire")
    assert t.dtype == np.int32 and t.tolist() == [-7] * 5
    s = fc.get_variable("threshold_fire_step")
    assert s.dtype == np.float32 and s.shape == (5,)
    assert np.all(s == np.float32(0.3))


def test_set_get_variable_round_trip(rng):
    model = small_model()
    conv, fc = model.get_layer("conv"), model.get_layer("fully_connected")
    w = H.rand_weights(rng, (3, 3, 2, 3), 2, density=1.0)
    conv.set_variable("weights", w)
    got = conv.get_variable("weights")
    assert got.dtype == np.int8
    assert np.array_equal(got, w)
    # any integer dtype is accepted for integer variables
    for dtype in (np.int64, np.int16, np.int32, np.int8):
        conv.set_variable("weights", w.astype(dtype))
        assert np.array_equal(conv.get_variable("weights"), w)
    t = np.array([-5, 0, 3, 2**20], dtype=np.int64)
    fc.set_variable("threshold_fire", t)
    assert fc.get_variable("threshold_fire").tolist() == t.tolist()
    fc.set_variable("threshold_fire", t.astype(np.int32))
    assert fc.get_variable("threshold_fire").dtype == np.int32
    s = np.array([0.3, 2.5, 1e-3, 100.0])
    fc.set_variable("threshold_fire_step", s)  # float64 accepted
    got = fc.get_variable("threshold_fire_step")
    assert got.dtype == np.float32
    assert np.array_equal(got, s.astype(np.float32))
    fc.set_variable("threshold_fire_step", s.astype(np.float32))
    assert np.array_equal(fc.get_variable("threshold_fire_step"), s.astype(np.float32))


def test_set_variable_unsigned_dtype_accepted():
    model = small_model()
    conv = model.get_layer("conv")
    w = np.ones((3, 3, 2, 3), np.uint8)
    conv.set_variable("weights", w)
    assert np.array_equal(conv.get_variable("weights"), w.astype(np.int8))


def test_get_variable_returns_a_copy():
    model = small_model()
    fc = model.get_layer("fully_connected")
    w = fc.get_variable("weights")
    w[...] = 1
    assert not fc.get_variable("weights").any()
    t = fc.get_variable("threshold_fire")
    t[...] = 99
    assert fc.get_variable("threshold_fire").tolist() == [0, 0, 0, 0]


def test_attached_layer_object_changes_the_model():
    model = akida.Model()
    model.add(akida.InputData(input_width=1, input_height=1, input_channels=3, input_bits=4))
    fc = akida.FullyConnected(num_neurons=2, weights_bits=2, activations_enabled=False)
    model.add(fc)
    x = np.array([1, 2, 3], np.uint8).reshape(1, 1, 1, 3)
    assert model.forward(x).ravel().tolist() == [0, 0]
    # the very object passed to add()
    fc.set_variable("weights", np.array([[1, 0], [1, -1], [1, 1]]).reshape(1, 1, 3, 2))
    assert model.forward(x).ravel().tolist() == [6, 1]
    # and the object handed back by get_layer
    model.get_layer("fully_connected").set_variable("weights", np.zeros((1, 1, 3, 2), np.int8))
    assert model.forward(x).ravel().tolist() == [0, 0]
    assert not fc.get_variable("weights").any()
    # the same through model.layers
    model.layers[1].set_variable("threshold_fire", np.array([1, 2]))
    assert fc.get_variable("threshold_fire").tolist() == [1, 2]


def test_model_oracle_roundtrip_through_public_api(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 5, model.input_shape, 4)
    got = model.forward(x)
    assert np.array_equal(got.astype(np.int64), oracle_from_akida(model).forward(x))


# ----------------------------------------------------------------------------------------------
# forward / predict
# ----------------------------------------------------------------------------------------------


def test_forward_dtype_and_shape(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 3, (3, 4, 2), 4)
    out = model.forward(x)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == (3, 1, 1, 4)
    model.pop_layer()
    model.add(akida.FullyConnected(num_neurons=2, activations_enabled=False))
    out = model.forward(x)
    assert out.dtype == np.int32
    assert out.shape == (3, 1, 1, 2)


def test_forward_does_not_modify_inputs(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 3, (3, 4, 2), 4)
    copy = x.copy()
    model.forward(x)
    assert np.array_equal(x, copy)


def test_forward_accepts_non_contiguous_inputs(rng):
    model = small_model()
    randomize(model, rng)
    big = H.rand_input(rng, 6, (3, 8, 2), 4)
    x = big[::2, :, ::2, :]
    assert not x.flags["C_CONTIGUOUS"]
    assert np.array_equal(model.forward(x), model.forward(np.ascontiguousarray(x)))
    assert np.array_equal(model.forward(x).astype(np.int64), oracle_from_akida(model).forward(x))


def test_batch_size_single_samples_and_determinism():
    rng = seeded_rng("api-batch")
    specs = [H.input_data_spec(rng, h=6, w=7, c=2, bits=4)]
    x = H.rand_input(rng, 9, H.out_shape(specs), 4)
    H.add_conv(rng, specs, "Convolutional", x, False, act=dict(activations_enabled=True, threshold_fire_bits=4))
    H.add_conv(rng, specs, "SeparableConvolutional", x, False,
               act=dict(activations_enabled=True, threshold_fire_bits=2))
    H.add_fc(rng, specs, x, True, act=dict(activations_enabled=True, threshold_fire_bits=4))
    model, full = H.assert_same(specs, x)
    for bs in (1, 2, 4, 9, 64):
        assert np.array_equal(model.forward(x, batch_size=bs), full), bs
    for i in range(len(x)):
        assert np.array_equal(model.forward(x[i : i + 1]), full[i : i + 1])
    for _ in range(3):
        assert np.array_equal(model.forward(x), full)
    # a second model built the same way gives the same results
    assert np.array_equal(build_akida_model(specs).forward(x), full)


def test_predict_matches_oracle_with_groups(rng):
    model = small_model(num_neurons=6)
    randomize(model, rng)
    x = H.rand_input(rng, 40, model.input_shape, 4)
    outputs = model.forward(x)
    for num_classes in (None, 1, 2, 3, 6):
        got = model.predict(x) if num_classes is None else model.predict(x, num_classes=num_classes)
        assert got.dtype == np.int32
        assert got.shape == (40,)
        assert got.tolist() == predict_from_outputs(outputs, num_classes).tolist(), num_classes
    assert model.predict(x, 3).tolist() == predict_from_outputs(outputs, 3).tolist()


def test_predict_minus_one_when_nothing_fires():
    model = small_model()
    x = np.zeros((3, 3, 4, 2), np.uint8)
    assert model.predict(x).tolist() == [-1, -1, -1]
    assert model.predict(x, num_classes=2).tolist() == [-1, -1, -1]


def test_predict_scores_max_over_positions():
    # Convolution output (2 positions x 2 neurons): neuron 1 wins at position 1 only.
    model = akida.Model()
    model.add(akida.InputData(input_width=2, input_height=1, input_channels=2, input_bits=4))
    conv = akida.Convolutional(kernel_width=1, kernel_height=1, num_neurons=2, threshold_fire_bits=4)
    model.add(conv)
    conv.set_variable("weights", np.eye(2, dtype=np.int8).reshape(1, 1, 2, 2))
    x = np.array([[[5, 1], [0, 9]]], np.uint8)[None].reshape(1, 1, 2, 2)
    # outputs: position 0 -> (5, 1), position 1 -> (0, 9); scores (5, 9) -> class 1
    assert model.predict(x).tolist() == [1]


def test_predict_with_potentials_output():
    # activations disabled: the score is the potential; negative or zero everywhere -> -1
    model = akida.Model()
    model.add(akida.InputData(input_width=1, input_height=1, input_channels=2, input_bits=4))
    fc = akida.FullyConnected(num_neurons=2, weights_bits=2, activations_enabled=False)
    model.add(fc)
    fc.set_variable("weights", np.array([[-1, 0], [0, -1]]).reshape(1, 1, 2, 2))
    x = np.array([[3, 1], [0, 0]], np.uint8).reshape(2, 1, 1, 2)
    assert model.forward(x).reshape(2, 2).tolist() == [[-3, -1], [0, 0]]
    assert model.predict(x).tolist() == [-1, -1]
    fc.set_variable("weights", np.array([[1, 0], [0, 1]]).reshape(1, 1, 2, 2))
    assert model.predict(x).tolist() == [0, -1]


def test_predict_with_events(rng):
    model = small_model(num_neurons=6)
    randomize(model, rng)
    x = H.rand_input(rng, 10, model.input_shape, 4)
    assert model.predict(akida.Events.from_dense(x), num_classes=3).tolist() == model.predict(x, 3).tolist()


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------


def _stats_case(rng, padding_value=0, last="FullyConnected"):
    specs = [H.input_conv_spec(rng, x_shape=(6, 5), padding_value=padding_value, last=False,
                               act=dict(activations_enabled=True, threshold_fire_bits=4))]
    x = H.rand_input(rng, 4, OracleModel(specs).input_shape, 8)
    H.calibrate(rng, specs, 0, x)
    H.add_conv(rng, specs, "Convolutional", x, False, act=dict(activations_enabled=True, threshold_fire_bits=2))
    if last == "SeparableConvolutional":
        H.add_conv(rng, specs, "SeparableConvolutional", x, True, act=dict(activations_enabled=True,
                                                                           threshold_fire_bits=4))
    else:
        H.add_fc(rng, specs, x, True, act=dict(activations_enabled=True, threshold_fire_bits=1))
    return specs, x


@pytest.mark.parametrize("padding_value", [0, 3])
def test_statistics_against_oracle(padding_value):
    rng = seeded_rng("stats", padding_value)
    for _ in range(5):
        specs, x = _stats_case(rng, padding_value)
        model, _ = H.assert_same(specs, x)
        stats = model.get_statistics()
        expected = OracleModel(specs).run(x)["statistics"]
        assert set(stats) == set(expected)
        for name, exp in expected.items():
            st = stats[name]
            assert st.samples == len(x)
            assert st.input_sparsity == pytest.approx(exp["input_sparsity"], abs=1e-9), name
            assert st.output_sparsity == pytest.approx(exp["output_sparsity"], abs=1e-9), name
            assert isinstance(st.synaptic_operations, int)
            assert st.synaptic_operations == exp["synaptic_operations"], name


def test_statistics_fully_connected_operations():
    rng = seeded_rng("stats-fc")
    for _ in range(10):
        specs = [H.input_data_spec(rng)]
        x = H.rand_input(rng, int(rng.integers(1, 6)), H.out_shape(specs), specs[0].params["input_bits"])
        H.add_fc(rng, specs, x, True)
        model = build_akida_model(specs)
        model.forward(x)
        st = model.get_statistics()["fully_connected"]
        n = specs[1].params["num_neurons"]
        assert st.synaptic_operations == np.count_nonzero(x) * n
        assert st.input_sparsity == pytest.approx(np.mean(x == 0))
        assert st.samples == len(x)
        out = model.forward(x)
        assert model.get_statistics()["fully_connected"].output_sparsity == pytest.approx(np.mean(out == 0))


def test_statistics_separable_operations():
    """Reading taken for SeparableConvolutional: depthwise operations (one per non-zero value read,
    per tap) plus pointwise operations (one per non-zero intermediate value and pointwise neuron)."""
    rng = seeded_rng("stats-sep")
    for _ in range(5):
        specs, x = _stats_case(rng, last="SeparableConvolutional")
        model, _ = H.assert_same(specs, x)
        expected = OracleModel(specs).run(x)["statistics"]["sep_conv"]
        assert model.get_statistics()["sep_conv"].synaptic_operations == expected["synaptic_operations"]


def test_statistics_describe_the_latest_call(rng):
    model = small_model()
    randomize(model, rng)
    x1 = H.rand_input(rng, 3, model.input_shape, 4, density=1.0)
    x2 = np.zeros((5,) + model.input_shape, np.uint8)
    model.forward(x1)
    s1 = model.get_statistics()
    assert s1["input_data"].samples == 3
    model.predict(x2)
    s2 = model.get_statistics()
    assert s2["fully_connected"].samples == 5
    assert s2["conv"].input_sparsity == 1.0
    assert s2["conv"].synaptic_operations == 0  # all-zero input, zero padding
    assert s1["conv"].synaptic_operations > 0
    assert s1["input_data"].samples == 3  # the earlier result object is not changed


# ----------------------------------------------------------------------------------------------
# Processes and threads
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forward_after_fork(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 16, model.input_shape, 4)
    expected = model.forward(x)  # make sure any thread pool exists before forking
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded, fork()..."
        pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.write(w, pickle.dumps(model.forward(x)))
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 1.0)
            if ready:
                b = os.read(r, 1 << 16)
                if not b:
                    break
                chunks.append(b)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("forward in a forked child did not finish within 60 s")
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert status == 0
    assert chunks, "child produced nothing"
    assert np.array_equal(pickle.loads(b"".join(chunks)), expected)


# ----------------------------------------------------------------------------------------------
# Enums and exported names
# ----------------------------------------------------------------------------------------------


def test_enums():
    assert {m for m in ("Valid", "Same", "Full") if hasattr(akida.ConvolutionMode, m)} == {"Valid", "Same", "Full"}
    assert akida.ConvolutionMode.Valid != akida.ConvolutionMode.Same
    for m in ("NoPooling", "Max", "Average"):
        assert hasattr(akida.PoolingType, m), m
    assert akida.PoolingType.Max != akida.PoolingType.Average


@pytest.mark.parametrize("name", ["Model", "Layer", "InputData", "InputConvolutional", "FullyConnected",
                                  "Convolutional", "SeparableConvolutional", "Concat", "Events",
                                  "ConvolutionMode", "PoolingType", "AkidaError",
                                  "ParameterError", "ArchitectureError", "InputError", "DTypeError",
                                  "VariableError", "LayerNotFoundError"])
def test_top_level_names(name):
    assert hasattr(akida, name)


def test_layer_statistics_type():
    model = small_model()
    model.forward(np.zeros((2,) + model.input_shape, np.uint8))
    stats = model.get_statistics()
    assert isinstance(stats, dict)
    assert list(stats) == [l.name for l in model.layers] or set(stats) == {l.name for l in model.layers}
    st = stats["conv"]
    assert isinstance(st.input_sparsity, float)
    assert isinstance(st.output_sparsity, float)
    assert isinstance(st.synaptic_operations, int)
    assert isinstance(st.samples, int)
    assert st.input_sparsity == 1.0


# ----------------------------------------------------------------------------------------------
# Memory layouts, mutation after forward, threads
# ----------------------------------------------------------------------------------------------


def test_inputs_in_any_memory_layout(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 4, model.input_shape, 4)
    expected = oracle_from_akida(model).forward(x)
    for variant in (np.asfortranarray(x), x[::-1][::-1], np.flip(np.flip(x, 2).copy(), 2),
                    np.transpose(np.ascontiguousarray(np.transpose(x, (3, 2, 1, 0))), (3, 2, 1, 0))):
        assert np.array_equal(variant, x)
        assert np.array_equal(model.forward(variant).astype(np.int64), expected)
    rev = x[::-1]
    assert np.array_equal(model.forward(rev).astype(np.int64), expected[::-1])


def test_set_variable_from_non_contiguous_arrays(rng):
    model = small_model()
    conv = model.get_layer("conv")
    w = H.rand_weights(rng, (3, 3, 2, 3), 2, density=1.0)
    for variant in (np.asfortranarray(w), np.transpose(np.ascontiguousarray(np.transpose(w)), None),
                    np.flip(np.flip(w, 0).copy(), 0), w.astype(np.int64)[:, :, :, ::1]):
        variant = np.asarray(variant)
        assert np.array_equal(variant, w)
        conv.set_variable("weights", variant)
        assert np.array_equal(conv.get_variable("weights"), w)
    # a strided view of a larger array
    big = np.zeros((3, 3, 2, 6), np.int8)
    big[..., ::2] = w
    conv.set_variable("weights", big[..., ::2])
    assert np.array_equal(conv.get_variable("weights"), w)
    t = np.arange(8, dtype=np.int32)[::2]  # 4 neurons, stride 2
    model.get_layer("fully_connected").set_variable("threshold_fire", t)
    assert model.get_layer("fully_connected").get_variable("threshold_fire").tolist() == [0, 2, 4, 6]
    s = np.array([0.5, 9, 1.5, 9, 2.5, 9, 3.5, 9], np.float64)[::2]
    model.get_layer("fully_connected").set_variable("threshold_fire_step", s)
    assert model.get_layer("fully_connected").get_variable("threshold_fire_step").tolist() == [0.5, 1.5, 2.5, 3.5]
    x = H.rand_input(rng, 3, model.input_shape, 4)
    assert np.array_equal(model.forward(x).astype(np.int64), oracle_from_akida(model).forward(x))


def test_changes_after_forward_are_seen(rng):
    model = small_model()
    randomize(model, rng)
    x = H.rand_input(rng, 5, model.input_shape, 4)
    model.forward(x)
    for _ in range(5):
        randomize(model, rng)
        assert np.array_equal(model.forward(x).astype(np.int64), oracle_from_akida(model).forward(x))
    model.pop_layer()
    assert np.array_equal(model.forward(x).astype(np.int64), oracle_from_akida(model).forward(x))
    model.add(akida.SeparableConvolutional(kernel_width=2, kernel_height=2, num_neurons=5, threshold_fire_bits=4,
                                           pooling_type=akida.PoolingType.Max))
    randomize(model, rng)
    out = model.forward(x)
    assert out.shape == (5, 1, 1, 5)
    assert np.array_equal(out.astype(np.int64), oracle_from_akida(model).forward(x))


def test_concurrent_forward_from_threads(rng):
    import threading

    model = small_model(num_neurons=8)
    randomize(model, rng)
    x = H.rand_input(rng, 32, model.input_shape, 4)
    expected = model.forward(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(model.forward(x, batch_size=7))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 20
    for r in results:
        assert np.array_equal(r, expected)

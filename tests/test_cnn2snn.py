"""CNN to SNN conversion from Keras: reading, folding, quantizing, converting, and every refusal.

Keras itself is the independent oracle here: the float graph must compute what the Keras model
computes, and the converted Akida model what the quantized Keras model computes.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import akida  # noqa: E402
from akida import cnn2snn  # noqa: E402
from akida.cnn2snn.keras_reader import read_keras  # noqa: E402
from akida.cnn2snn.numpy_ops import run_graph  # noqa: E402
from akida.cnn2snn.passes import run_passes  # noqa: E402

L = keras.layers


def randomize(model: keras.Model, rng: np.random.Generator) -> keras.Model:
    """Random weights everywhere, BatchNorm statistics included (gammas positive, away from 0)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, L.BatchNormalization):
            c = weights[0].shape[0]
            gamma = rng.uniform(0.5, 1.5, c)
            beta = rng.normal(0, 0.3, c)
            mean = rng.normal(0, 0.3, c)
            var = rng.uniform(0.5, 2.0, c)
            layer.set_weights([w.astype(np.float32) for w in (gamma, beta, mean, var)])
        else:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in weights])
    return model


def images(rng, n, shape, high=256):
    return rng.integers(0, high, (n,) + tuple(shape)).astype(np.float32)


def sequential(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers])


def akida_outputs(model: akida.Model, x: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        x = x.reshape(x.shape[0], 1, 1, -1)
    out = model.evaluate(x.astype(np.uint8))
    return out.reshape(out.shape[0], -1) if out.shape[1:3] == (1, 1) else out


def convert_and_compare(float_model, rng, x, bits=(8, 4, 4), input_scaling=None, min_agreement=1.0):
    """Quantizes, converts and checks that the Akida model computes what the quantized Keras model
    computes: exactly the same scores up to float rounding."""
    qmodel = cnn2snn.quantize(
        float_model,
        input_weight_quantization=bits[0],
        weight_quantization=bits[1],
        activ_quantization=bits[2],
        calibration_data=x,
    )
    expected = np.asarray(qmodel.predict(x, verbose=0), dtype=np.float64)
    converted = cnn2snn.convert(qmodel, input_scaling=input_scaling)
    got = akida_outputs(converted, x if input_scaling is None else x * input_scaling[0] + input_scaling[1])
    expected = expected.reshape(got.shape)
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-4 * scale + 1e-5
    if got.ndim == 2:
        agreement = (got.argmax(1) == expected.argmax(1)).mean()
        assert agreement >= min_agreement
    return qmodel, converted


# --- the float graph ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: sequential((9, 7, 3), L.Conv2D(4, (3, 2), strides=2, padding="same"), L.ReLU(), L.Flatten(), L.Dense(5)),
        lambda: sequential((8, 8, 1), L.Conv2D(4, 3, padding="valid"), L.BatchNormalization(), L.ReLU(6.0),
                           L.MaxPooling2D(padding="same"), L.Flatten(), L.Dense(3)),
        lambda: sequential((7, 7, 2), L.SeparableConv2D(5, (3, 3), padding="same"), L.BatchNormalization(),
                           L.ReLU(), L.GlobalAveragePooling2D(), L.Dense(4)),
        lambda: sequential((6, 6, 3), L.Rescaling(1 / 255.0, 0.1), L.DepthwiseConv2D(3, padding="same"),
                           L.Conv2D(6, 1), L.ReLU(), L.AveragePooling2D(2), L.Flatten(), L.Dropout(0.5), L.Dense(2),
                           L.Softmax()),
    ],
)
def test_graph_and_passes_compute_what_keras_computes(build, rng):
    model = randomize(build(), rng)
    x = images(rng, 6, model.input_shape[1:], 8)
    expected = model.predict(x, verbose=0)
    graph = read_keras(model)
    np.testing.assert_allclose(run_graph(graph, x).reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)
    rewritten, notes = run_passes(graph)
    assert not any(n.op in ("batchnorm", "identity") for n in rewritten.nodes)
    got = run_graph(rewritten, x * rewritten.input.attrs.get("rescale", (1, 0))[0]
                    + rewritten.input.attrs.get("rescale", (1, 0))[1])
    if rewritten.node(rewritten.output).op != "softmax" and graph.node(graph.output).op == "softmax":
        e = np.exp(got - got.max(-1, keepdims=True))
        got = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


# --- conversion against the quantized Keras model -----------------------------------------------


def test_asymmetric_kernel_stride_two_same_padding(rng):
    model = randomize(sequential((9, 7, 3), L.Conv2D(6, (3, 2), strides=2, padding="same"), L.BatchNormalization(),
                                 L.ReLU(), L.Conv2D(5, (2, 3), strides=(1, 2), padding="valid"), L.ReLU(),
                                 L.Flatten(), L.Dense(4)), rng)
    _, converted = convert_and_compare(model, rng, images(rng, 64, (9, 7, 3)))
    assert [layer.layer_type for layer in converted.layers] == ["InputConvolutional", "Convolutional", "FullyConnected"]
    first = converted.get_layer(0).parameters
    assert (first.kernel_width, first.kernel_height, first.stride_x, first.stride_y) == (2, 3, 2, 2)


def test_valid_padding_and_max_pooling_on_odd_maps(rng):
    model = randomize(sequential((13, 13, 1), L.Conv2D(4, 3, padding="valid"), L.BatchNormalization(), L.ReLU(),
                                 L.MaxPooling2D(2), L.Conv2D(6, 3, padding="same"), L.ReLU(),
                                 L.MaxPooling2D(2, padding="same"), L.Flatten(), L.Dense(3)), rng)
    _, converted = convert_and_compare(model, rng, images(rng, 64, (13, 13, 1)))
    assert converted.get_layer(0).output_shape == (5, 5, 4)  # 11 x 11 pooled inside the map
    assert converted.get_layer(1).output_shape == (3, 3, 6)  # 5 x 5 pooled as 'same': ceil(5 / 2)
    assert converted.output_shape == (1, 1, 3)


def test_separable_convolution_and_global_average_pooling(rng):
    model = randomize(sequential((8, 8, 3), L.Conv2D(8, 3, padding="same"), L.ReLU(),
                                 L.SeparableConv2D(6, 3, padding="same", use_bias=False), L.BatchNormalization(),
                                 L.ReLU(), L.Flatten(), L.Dense(5)), rng)
    _, converted = convert_and_compare(model, rng, images(rng, 64, (8, 8, 3)))
    assert converted.get_layer(1).layer_type == "SeparableConvolutional"


def test_depthwise_then_pointwise_becomes_separable(rng):
    model = randomize(sequential((8, 8, 4), L.DepthwiseConv2D(3, padding="same"), L.Conv2D(5, 1), L.ReLU(),
                                 L.Flatten(), L.Dense(3)), rng)
    _, converted = convert_and_compare(model, rng, images(rng, 64, (8, 8, 4), 16), bits=(4, 4, 4))
    assert [layer.layer_type for layer in converted.layers] == ["InputData", "SeparableConvolutional", "FullyConnected"]


def test_bits_two_and_one(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                                 L.MaxPooling2D(), L.Conv2D(8, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(4)),
                      rng)
    x = images(rng, 64, (8, 8, 1))
    for bits in [(8, 4, 2), (4, 2, 1), (2, 4, 4)]:
        convert_and_compare(model, rng, x, bits)


def test_input_scaling_is_equivalent_to_a_rescaling_layer(rng):
    body = [L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)]
    with_rescaling = randomize(sequential((6, 6, 1), L.Rescaling(1 / 255.0), *body), rng)
    plain = sequential((6, 6, 1), *[L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)])
    plain.set_weights(with_rescaling.get_weights())
    raw = images(rng, 64, (6, 6, 1))
    a = cnn2snn.convert(cnn2snn.quantize(with_rescaling, 4, 4, 8, calibration_data=raw))
    b = cnn2snn.convert(cnn2snn.quantize(plain, 4, 4, 8, calibration_data=raw / 255.0), input_scaling=(255.0, 0.0))
    np.testing.assert_array_equal(a.forward(raw.astype(np.uint8)), b.forward(raw.astype(np.uint8)))
    np.testing.assert_allclose(a.evaluate(raw.astype(np.uint8)), b.evaluate(raw.astype(np.uint8)), rtol=1e-5)


def test_rescaling_with_offset_becomes_the_padding_value(rng):
    model = randomize(sequential((6, 6, 1), L.Rescaling(1 / 128.0, -1.0), L.Conv2D(4, 3, padding="same"), L.ReLU(),
                                 L.Flatten(), L.Dense(3)), rng)
    _, converted = convert_and_compare(model, rng, images(rng, 64, (6, 6, 1)))
    assert converted.get_layer(0).parameters.padding_value == 128


def test_built_in_activations_and_a_final_softmax(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same", activation="relu"), L.Flatten(),
                                 L.Dense(6, activation="relu"), L.Dense(3, activation="softmax")), rng)
    qmodel, converted = convert_and_compare(model, rng, images(rng, 64, (8, 8, 1)), min_agreement=1.0)
    assert [layer.layer_type for layer in converted.layers] == ["InputConvolutional", "FullyConnected", "FullyConnected"]


def test_a_half_integer_zero_needs_valid_padding(rng):
    body = [L.Conv2D(4, 3, padding="valid"), L.ReLU(), L.Flatten(), L.Dense(3)]
    model = randomize(sequential((6, 6, 1), L.Rescaling(1 / 127.5, -1.0), *body), rng)
    convert_and_compare(model, rng, images(rng, 64, (6, 6, 1)))
    same = randomize(sequential((6, 6, 1), L.Rescaling(1 / 127.5, -1.0), L.Conv2D(4, 3, padding="same", name="c"),
                                L.ReLU(), L.Flatten(), L.Dense(3)), rng)
    qmodel = cnn2snn.quantize(same, 4, 4, 8, calibration_data=images(rng, 16, (6, 6, 1)))
    with pytest.raises(akida.ConversionError, match=r"QuantizedConv2D 'c'.*input value 127.5.*Rescaling\(1/128, -1\)"):
        cnn2snn.convert(qmodel)


def test_flat_input_dense_network(rng):
    model = randomize(sequential((20,), L.Dense(16), L.ReLU(), L.Dense(4)), rng)
    x = images(rng, 64, (20,), 16)
    _, converted = convert_and_compare(model, rng, x, bits=(4, 4, 4))
    assert converted.layers[0].layer_type == "InputData" and converted.input_shape == (1, 1, 20)
    # The quantized Keras model does not carry the calibration range: InputData takes 8 bits.
    assert converted.layers[0].parameters.input_bits == 8


def test_save_and_reload_keep_every_output(rng, tmp_path):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)), rng)
    x = images(rng, 16, (8, 8, 1)).astype(np.uint8)
    converted = cnn2snn.convert(cnn2snn.quantize(model, 4, 4, 8, calibration_data=x))
    for suffix in (".fb", ".fbz"):
        path = tmp_path / f"m{suffix}"
        converted.save(str(path))
        again = akida.Model(str(path))
        np.testing.assert_array_equal(again.forward(x), converted.forward(x))
        np.testing.assert_array_equal(again.evaluate(x), converted.evaluate(x))


def test_quantization_aware_training_then_convert(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)), rng)
    x = images(rng, 96, (8, 8, 1))
    y = rng.integers(0, 3, 96)
    qmodel = cnn2snn.quantize(model, 4, 2, 8, calibration_data=x)
    qmodel.compile(optimizer=keras.optimizers.Adam(1e-3),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in qmodel.get_weights()]
    qmodel.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, qmodel.get_weights()))
    converted = cnn2snn.convert(qmodel)
    got = converted.evaluate(x.astype(np.uint8)).reshape(96, -1)
    expected = qmodel.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_quantized_keras_model_survives_a_keras_file(rng, tmp_path):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(3)), rng)
    x = images(rng, 16, (8, 8, 1))
    qmodel = cnn2snn.quantize(model, 4, 4, 8, calibration_data=x)
    path = tmp_path / "q.keras"
    qmodel.save(path)
    from_file = cnn2snn.convert(str(path))
    direct = cnn2snn.convert(qmodel)
    np.testing.assert_array_equal(from_file.forward(x.astype(np.uint8)), direct.forward(x.astype(np.uint8)))


# --- quantization maths ------------------------------------------------------------------------


def test_weights_quantize_per_channel_symmetric():
    from akida.cnn2snn.quantization import quantize_weights

    kernel = np.array([[0.5, -2.0, 0.0], [-1.0, 1.0, 0.0]])
    ints, units = quantize_weights(kernel, 4)
    np.testing.assert_array_equal(units, [1.0 / 7, 2.0 / 7, 1.0])
    np.testing.assert_array_equal(ints, [[4, -7, 0], [-7, 4, 0]])  # 3.5 rounds to even 4


def test_calibration_picks_the_clip_with_least_error():
    from akida.cnn2snn.quantization import calibrate_max_value, fake_quantize_activation

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.exponential(1.0, 20000), [50.0]])  # one outlier
    chosen = calibrate_max_value(values, 4)
    assert chosen < 20  # the outlier does not set the range
    error = lambda m: np.mean((fake_quantize_activation(values, 4, m / 15) - values) ** 2)  # noqa: E731
    assert error(chosen) <= min(error(50.0), error(chosen * 0.8), error(chosen * 1.2))
    assert calibrate_max_value(np.zeros(10), 4, clip=6.0) == 6.0
    assert calibrate_max_value(values, 4, clip=2.0) <= 2.0


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_snapped_bias_makes_integer_thresholds_exact(bits):
    """For random layers, the engine's activation of every integer potential equals the fake
    quantized ReLU of the float pre-activation with the snapped bias."""
    from akida.cnn2snn.quantization import fake_quantize_activation, snap_bias
    from akida.cnn2snn.quantized import threshold_cuts

    rng = np.random.default_rng(bits)
    levels = 2**bits - 1
    for _ in range(300):
        unit = float(np.exp(rng.uniform(-6, 0)))
        step = float(np.exp(rng.uniform(-2, 2)))
        bias = float(rng.normal(0, 3))
        b = float(snap_bias(np.array([bias]), np.array([unit]), step, bits)[0])
        assert abs(b - bias) <= unit / 2 + 1e-12
        t_real = (step / 2 - b) / unit
        threshold, length, exact = threshold_cuts(t_real, step / unit, levels)
        assert exact
        p = np.arange(threshold - 5, threshold + int(levels * step / unit) + 10)
        expected = fake_quantize_activation(unit * p + b, bits, step) / step
        cuts = threshold + np.floor(np.arange(levels) * np.float64(np.float32(length)))
        engine = (p[:, None] > cuts[None, :]).sum(axis=1)
        np.testing.assert_array_equal(engine, np.round(expected))


# --- what does not convert, and why -------------------------------------------------------------


def _problems(model):
    return [str(p) for p in cnn2snn.check_model_compatibility(model)]


def _refused(model, rng, fragment, shape=None, **quantize_args):
    problems = _problems(model)
    assert any(fragment in p for p in problems), problems
    x = images(rng, 8, shape or model.input_shape[1:])
    with pytest.raises(akida.ConversionError) as info:
        cnn2snn.quantize(model, calibration_data=x, **quantize_args)
    assert fragment in str(info.value)
    return problems


def test_residual_add_is_refused_by_name(rng):
    inputs = keras.Input((8, 8, 1))
    a = L.Conv2D(4, 3, padding="same", name="c1")(inputs)
    r = L.ReLU(name="r1")(a)
    b = L.Conv2D(4, 3, padding="same", name="c2")(r)
    s = L.Add(name="skip")([r, b])
    out = L.Dense(2)(L.Flatten()(L.ReLU()(s)))
    problems = _refused(keras.Model(inputs, out), rng, "Add 'skip': a residual connection")
    assert any("serial feed-forward" in p for p in problems)


def test_concatenate_inside_the_cnn_is_refused(rng):
    inputs = keras.Input((8, 8, 1))
    a = L.ReLU()(L.Conv2D(4, 3, padding="same")(inputs))
    b = L.ReLU()(L.Conv2D(4, 3, padding="same")(inputs))
    out = L.Dense(2)(L.Flatten()(L.Concatenate(name="join")([a, b])))
    _refused(keras.Model(inputs, out), rng, "Concatenate 'join'")


def test_unsupported_layer_and_activation_are_named(rng):
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.LayerNormalization(name="ln"), L.ReLU(),
                       L.Flatten(), L.Dense(2))
    _refused(model, rng, "LayerNormalization 'ln': the operation 'LayerNormalization' is not supported")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.Activation("sigmoid", name="sig"),
                       L.Flatten(), L.Dense(2))
    _refused(model, rng, "Activation 'sig': the activation 'sigmoid' has no Akida equivalent")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(negative_slope=0.1, name="leaky"),
                       L.Flatten(), L.Dense(2))
    _refused(model, rng, "ReLU 'leaky': a ReLU with negative_slope 0.1")


def test_batchnorm_after_maxpool_with_a_negative_gamma_is_refused(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.MaxPooling2D(),
                                 L.BatchNormalization(name="bn"), L.ReLU(), L.Flatten(), L.Dense(2)), rng)
    gamma, beta, mean, var = model.get_layer("bn").get_weights()
    model.get_layer("bn").set_weights([np.array([1.0, -0.5, 1.0, 1.0], np.float32), beta, mean, var])
    _refused(model, rng, "BatchNormalization 'bn': a BatchNormalization after a MaxPooling with 1 gamma(s) <= 0")
    model.get_layer("bn").set_weights([np.abs(gamma) + 0.1, beta, mean, var])
    assert _problems(model) == []
    convert_and_compare(model, rng, images(rng, 64, (8, 8, 1)))


def test_misplaced_batchnorm_and_pooling_are_refused(rng):
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.BatchNormalization(name="late"),
                       L.Flatten(), L.Dense(2))
    _refused(model, rng, "BatchNormalization 'late': a BatchNormalization after the ReLU")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.GlobalAveragePooling2D(name="gap"),
                       L.Dense(2))
    _refused(model, rng, "GlobalAveragePooling2D 'gap': average pooling after the ReLU")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.AveragePooling2D(2, name="ap"),
                       L.Flatten(), L.Dense(2))
    problems = _refused(model, rng, "AveragePooling2D 'ap': average pooling after the ReLU")
    assert len(problems) == 1 and problems[0].endswith("BatchNormalization/ReLU."), problems
    model = sequential((7, 7, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.MaxPooling2D(name="mp"),
                       L.Flatten(), L.Dense(2))
    _refused(model, rng, "MaxPooling2D 'mp': 'valid' pooling on the 7 x 7 output of a 'same' convolution")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(4, name="d1"),
                       L.Dense(2))
    _refused(model, rng, "Dense 'd1': a hidden layer must end with a ReLU")
    model = sequential((8, 8, 1), L.ReLU(name="early"), L.Conv2D(4, 3), L.ReLU(), L.Flatten(), L.Dense(2))
    _refused(model, rng, "ReLU 'early': a ReLU before the first convolution")
    model = sequential((8, 8, 2), L.DepthwiseConv2D(3, name="dw"), L.ReLU(), L.Flatten(), L.Dense(2))
    _refused(model, rng, "DepthwiseConv2D 'dw': a depthwise convolution that is not followed")
    model = sequential((8, 8, 1), L.Conv2D(4, 3, dilation_rate=2, name="dil"), L.ReLU(), L.Flatten(), L.Dense(2))
    _refused(model, rng, "Conv2D 'dil': dilation (2, 2)")


def test_too_many_bits_and_unquantized_parts_are_refused(rng):
    model = randomize(sequential((20,), L.Dense(8, name="first"), L.ReLU(), L.Dense(2)), rng)
    x = images(rng, 16, (20,), 16)
    qmodel = cnn2snn.quantize(model, 4, 4, 8, calibration_data=x)
    problems = _problems(qmodel)
    assert any("Dense 'first': too many bits: 8-bit weights" in p and "input_weight_quantization=4" in p
               for p in problems), problems
    with pytest.raises(akida.ConversionError, match="too many bits"):
        cnn2snn.convert(qmodel)
    with pytest.raises(akida.ConversionError, match="is not quantized"):
        cnn2snn.convert(model)
    floats = cnn2snn.quantize(model, 4, 0, 4, calibration_data=x)
    with pytest.raises(akida.ConversionError, match="its ReLU is not quantized"):
        cnn2snn.convert(floats)


def test_thresholds_beyond_twenty_bits_name_the_layer_and_the_cure(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same", name="c"), L.BatchNormalization(),
                                 L.ReLU(), L.Flatten(), L.Dense(2)), rng)
    bn = model.layers[1]
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([np.full_like(gamma, 1e-7), np.full_like(beta, 1.0), mean, var])
    x = images(rng, 16, (8, 8, 1))
    qmodel = cnn2snn.quantize(model, 4, 4, 8, calibration_data=x)
    with pytest.raises(akida.ConversionError, match=r"Conv2D 'c'.*20 signed bits.*clip the gammas"):
        cnn2snn.convert(qmodel)


def test_bad_arguments_raise_clear_errors(rng):
    model = randomize(sequential((8, 8, 1), L.Conv2D(4, 3, padding="same"), L.ReLU(), L.Flatten(), L.Dense(2)), rng)
    with pytest.raises(ValueError, match="weight_quantization=3 is not supported"):
        cnn2snn.quantize(model, weight_quantization=3)
    # the docstring: 2 or 4 for the layers after the first; 8 only through input_weight_quantization
    with pytest.raises(ValueError, match="weight_quantization=8 is not supported.*input_weight_quantization=8"):
        cnn2snn.quantize(model, weight_quantization=8)
    with pytest.raises(ValueError, match="activ_quantization=8 is not supported"):
        cnn2snn.quantize(model, activ_quantization=8)
    with pytest.raises(TypeError, match="weight_quantization must be an int"):
        cnn2snn.quantize(model, weight_quantization=4.0)
    with pytest.raises(ValueError, match="unbounded ReLU: give calibration_data"):
        cnn2snn.quantize(model)
    with pytest.raises(ValueError, match="calibration_data must be a non-empty array"):
        cnn2snn.quantize(model, calibration_data=np.zeros((4, 9, 9, 1)))
    qmodel = cnn2snn.quantize(model, calibration_data=images(rng, 8, (8, 8, 1)))
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        cnn2snn.convert(qmodel, input_scaling=(0, 0))
    with pytest.raises(akida.ConversionError, match="pads with one integer in 0..255"):
        cnn2snn.convert(qmodel, input_scaling=(1.0, 0.5))
    with pytest.raises(TypeError, match="expected a Keras model"):
        cnn2snn.quantize(object())
    with pytest.raises(ValueError, match="expected a .keras or .onnx file"):
        cnn2snn.quantize("model.h5")


def test_missing_keras_names_the_extra(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['keras'] = None\n"
        "from akida import cnn2snn\n"
        "try:\n    cnn2snn.quantize('m.keras')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert "pip install openakida[keras]" in out.stdout

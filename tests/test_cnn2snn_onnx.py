"""CNN to SNN conversion from ONNX: float graphs checked against onnxruntime, an MLP written by
skl2onnx, and already-quantized QDQ graphs imported with their own scales."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import akida
from akida import cnn2snn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import onnxruntime as ort


def run_ort(model: onnx.ModelProto, x_nchw: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x_nchw.astype(np.float32)})[0]


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def make_model(nodes, inits, input_shape, output_shape, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *output_shape])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def conv_bn_pool_gemm(rng, gamma_sign=1.0, pool_before_bn=False, size=7):
    """x (1, size, size) -> Conv 3x2 stride 2 SAME_UPPER -> BN -> Relu -> MaxPool 2 -> Flatten -> Gemm."""
    c_out = 4
    w = rng.normal(0, 0.5, (c_out, 1, 3, 2))
    b = rng.normal(0, 0.1, c_out)
    gamma = np.abs(rng.normal(1, 0.2, c_out)) * gamma_sign
    beta, mean, var = rng.normal(0, 0.2, c_out), rng.normal(0, 0.2, c_out), rng.uniform(0.5, 1.5, c_out)
    h = -(-size // 2)
    pooled = -(-h // 2)
    gemm_w = rng.normal(0, 0.3, (3, c_out * pooled * pooled))
    nodes = [
        helper.make_node("Mul", ["x", "inv255"], ["xs"], name="scale_input"),
        helper.make_node("Conv", ["xs", "w", "b"], ["c"], name="conv", strides=[2, 2], auto_pad="SAME_UPPER",
                         kernel_shape=[3, 2]),
    ]
    bn = helper.make_node("BatchNormalization", ["bn_in", "gamma", "beta", "mean", "var"], ["bn_out"], name="bn")
    pool = helper.make_node("MaxPool", ["pool_in"], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                            auto_pad="SAME_UPPER")
    if pool_before_bn:
        pool.input[0], pool.output[0] = "c", "p"
        bn.input[0], bn.output[0] = "p", "n"
        nodes += [pool, bn, helper.make_node("Relu", ["n"], ["r"], name="relu")]
        last = "r"
    else:
        bn.input[0], bn.output[0] = "c", "n"
        pool.input[0], pool.output[0] = "r", "p"
        nodes += [bn, helper.make_node("Relu", ["n"], ["r"], name="relu"), pool]
        last = "p"
    nodes += [
        helper.make_node("Flatten", [last], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], name="gemm", transB=1),
    ]
    inits = [init("inv255", 1 / 255.0), init("w", w), init("b", b), init("gamma", gamma), init("beta", beta),
             init("mean", mean), init("var", var), init("gw", gemm_w), init("gb", rng.normal(0, 0.1, 3))]
    return make_model(nodes, inits, [1, size, size], [3])


def nhwc(x_nchw):
    return np.transpose(x_nchw, (0, 2, 3, 1))


def test_onnx_float_cnn_quantizes_and_converts_exactly(rng):
    model = conv_bn_pool_gemm(rng)
    x = rng.integers(0, 256, (64, 1, 7, 7)).astype(np.float32)
    reference = run_ort(model, x)
    qmodel = cnn2snn.quantize(model, 4, 4, 8, calibration_data=nhwc(x))
    assert isinstance(qmodel, cnn2snn.QuantizedModel)
    float_model = cnn2snn.quantize(model, 0, 0, 0, calibration_data=nhwc(x))
    np.testing.assert_allclose(float_model.predict(nhwc(x)), reference, rtol=1e-4, atol=1e-4)
    predicted = qmodel.predict(nhwc(x))
    converted = cnn2snn.convert(qmodel)
    assert converted.get_layer(0).layer_type == "InputConvolutional"
    assert converted.get_layer(0).output_shape == (2, 2, 4)  # 7 -> 4 (stride 2, same) -> 2 (same pooling)
    got = converted.evaluate(nhwc(x).astype(np.uint8)).reshape(64, -1)
    np.testing.assert_allclose(got, predicted, rtol=1e-4, atol=1e-4 * np.abs(predicted).max())
    assert (got.argmax(1) == reference.argmax(1)).mean() >= 0.8  # 4-bit quantization keeps most decisions


def test_onnx_maxpool_before_batchnorm_folds_only_with_positive_gammas(rng):
    model = conv_bn_pool_gemm(rng, pool_before_bn=True, size=8)
    x = rng.integers(0, 256, (32, 1, 8, 8)).astype(np.float32)
    assert cnn2snn.check_model_compatibility(model) == []
    qmodel = cnn2snn.quantize(model, 0, 0, 0, calibration_data=nhwc(x))
    np.testing.assert_allclose(qmodel.predict(nhwc(x)), run_ort(model, x), rtol=1e-4, atol=1e-4)
    refused = conv_bn_pool_gemm(rng, gamma_sign=-1.0, pool_before_bn=True, size=8)
    problems = [str(p) for p in cnn2snn.check_model_compatibility(refused)]
    assert any("ONNX BatchNormalization 'bn'" in p and "gamma(s) <= 0" in p for p in problems), problems
    with pytest.raises(akida.ConversionError, match="every gamma is positive"):
        cnn2snn.quantize(refused, calibration_data=nhwc(x))


def test_skl2onnx_mlp_on_digits_converts():
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1200], order[1200:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(x[train], y[train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_model = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    qmodel = cnn2snn.quantize(onnx_model, 4, 4, 4, calibration_data=x[train])
    converted = cnn2snn.convert(qmodel)
    assert [layer.layer_type for layer in converted.layers] == ["InputData", "FullyConnected", "FullyConnected"]
    assert converted.layers[0].parameters.input_bits == 5  # digits pixels are 0..16
    inputs = x[test].reshape(-1, 1, 1, 64).astype(np.uint8)
    scores = converted.evaluate(inputs).reshape(len(test), -1)
    np.testing.assert_allclose(scores, qmodel.predict(x[test]), rtol=1e-4, atol=1e-4 * np.abs(scores).max())
    float_accuracy = clf.score(x[test], y[test])
    akida_accuracy = (scores.argmax(1) == y[test]).mean()
    assert akida_accuracy >= float_accuracy - 0.03


def qdq_model(rng, activation_type=TensorProto.UINT8):
    """A QDQ graph: int8 per-channel weights, quantized activations, as a quantization tool writes it."""
    c_out = 3
    w_int = rng.integers(-7, 8, (c_out, 1, 3, 3)).astype(np.int8)
    w_scale = rng.uniform(0.01, 0.05, c_out).astype(np.float32)
    gemm_int = rng.integers(-7, 8, (2, c_out * 16)).astype(np.int8)
    gemm_scale = np.float32(0.02)
    act_scale = np.float32(0.1)
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dq_w", axis=0),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "a_s", "a_z"], ["rq"], name="q_act"),
        helper.make_node("DequantizeLinear", ["rq", "a_s", "a_z"], ["rd"], name="dq_act"),
        helper.make_node("Flatten", ["rd"], ["f"], name="flatten", axis=1),
        helper.make_node("DequantizeLinear", ["g_q", "g_s"], ["g"], name="dq_g"),
        helper.make_node("Gemm", ["f", "g", "gb"], ["y"], name="gemm", transB=1),
    ]
    zero = np.zeros((), np.uint8) if activation_type == TensorProto.UINT8 else None
    inits = [
        numpy_helper.from_array(w_int, "w_q"),
        numpy_helper.from_array(w_scale, "w_s"),
        numpy_helper.from_array(np.zeros(c_out, np.int8), "w_z"),
        init("b", rng.normal(0, 0.05, c_out)),
        numpy_helper.from_array(act_scale, "a_s"),
        helper.make_tensor("a_z", activation_type, [], [0]) if zero is None else numpy_helper.from_array(zero, "a_z"),
        numpy_helper.from_array(gemm_int, "g_q"),
        numpy_helper.from_array(gemm_scale, "g_s"),
        init("gb", rng.normal(0, 0.05, 2)),
    ]
    return make_model(nodes, inits, [1, 4, 4], [2], opset=21), w_int, w_scale


def test_qdq_graph_keeps_its_integers_and_refuses_8_bit_activations(rng):
    model, _, _ = qdq_model(rng)
    problems = [str(p) for p in cnn2snn.check_model_compatibility(model)]
    assert any("too many bits: 8-bit activations" in p for p in problems), problems
    with pytest.raises(akida.ConversionError, match="8-bit activations"):
        cnn2snn.convert(model)


def test_qdq_graph_with_4_bit_activations_converts_with_its_own_scales(rng):
    model, w_int, w_scale = qdq_model(rng, TensorProto.UINT4)
    x = rng.integers(0, 16, (32, 1, 4, 4)).astype(np.float32)
    converted = cnn2snn.convert(model)
    weights = converted.get_layer(0).get_variable("weights")  # InputConvolutional: not flipped
    np.testing.assert_array_equal(weights, np.transpose(w_int, (2, 3, 1, 0)))
    got = converted.evaluate(nhwc(x).astype(np.uint8)).reshape(32, -1)
    expected = run_ort(model, x)
    # The bias snaps by at most half a potential unit; everything else is the graph's own arithmetic.
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.95
    np.testing.assert_allclose(got, expected, atol=0.1 * np.abs(expected).max())


def test_a_graph_that_quantizes_its_own_input_takes_those_integers(rng):
    model, _, _ = qdq_model(rng, TensorProto.UINT4)
    graph = model.graph
    in_scale, in_zero = np.float32(0.05), 10
    graph.initializer.extend([numpy_helper.from_array(in_scale, "in_s"), numpy_helper.from_array(np.uint8(in_zero), "in_z")])
    quantize = helper.make_node("QuantizeLinear", ["x", "in_s", "in_z"], ["xq"], name="q_in")
    dequantize = helper.make_node("DequantizeLinear", ["xq", "in_s", "in_z"], ["xd"], name="dq_in")
    conv = next(n for n in graph.node if n.op_type == "Conv")
    conv.input[0] = "xd"
    nodes = [quantize, dequantize] + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    q = rng.integers(0, 256, (32, 1, 4, 4))
    x = ((q - in_zero) * in_scale).astype(np.float32)  # on the input grid: quantizing is exact
    converted = cnn2snn.convert(model)
    assert converted.get_layer(0).parameters.padding_value == in_zero
    got = converted.evaluate(nhwc(q).astype(np.uint8)).reshape(32, -1)
    expected = run_ort(model, x)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.95
    np.testing.assert_allclose(got, expected, atol=0.1 * np.abs(expected).max())


def test_a_corrupt_onnx_file_is_a_value_error(tmp_path, rng):
    path = tmp_path / "broken.onnx"
    good = conv_bn_pool_gemm(rng).SerializeToString()
    path.write_bytes(good[: len(good) // 3] + b"\xff" * 64)
    with pytest.raises(ValueError, match="broken.onnx: not a valid ONNX model"):
        cnn2snn.check_model_compatibility(str(path))
    with pytest.raises(ValueError, match="the ONNX bytes: not a valid ONNX model"):
        cnn2snn.quantize(b"\x08\x01garbage\xff\xff", calibration_data=None)


def test_quantize_convert_and_predict_report_progress(rng, capsys):
    """The conversion loops are quiet by default and report through callback / verbose (issue 13)."""
    model = conv_bn_pool_gemm(rng)
    x = nhwc(rng.integers(0, 256, (600, 1, 7, 7)).astype(np.float32))
    quiet = cnn2snn.quantize(model, 4, 4, 8, calibration_data=x)
    assert capsys.readouterr().err == ""
    calibration = []
    qmodel = cnn2snn.quantize(model, 4, 4, 8, calibration_data=x,
                              callback=lambda done, total: calibration.append((done, total)))
    assert calibration == [(1, 3), (2, 3), (3, 3)]  # 600 samples in batches of 256
    np.testing.assert_array_equal(qmodel.predict(x), quiet.predict(x))
    batches = []
    qmodel.predict(x, batch_size=100, callback=lambda done, total: batches.append(done))
    assert batches == [1, 2, 3, 4, 5, 6]
    layers = []
    converted = cnn2snn.convert(qmodel, callback=lambda done, total: layers.append((done, total)))
    assert layers == [(i, len(converted.layers)) for i in range(1, len(converted.layers) + 1)]
    pytest.importorskip("tqdm")
    cnn2snn.convert(qmodel, verbose=True)
    assert "converting layers: 100%" in capsys.readouterr().err


def test_non_finite_weights_and_calibration_data_are_named(rng):
    model = conv_bn_pool_gemm(rng)
    x = nhwc(rng.integers(0, 256, (8, 1, 7, 7)).astype(np.float32))
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    for i, tensor in enumerate(broken.graph.initializer):
        if tensor.name == "w":
            w = numpy_helper.to_array(tensor).copy()
            w[0, 0, 0, 0] = np.nan
            w[1, 0, 0, 0] = np.inf
            broken.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, "w"))
    with pytest.raises(akida.ConversionError, match=r"ONNX Conv 'conv'.*2 NaN or infinite value\(s\) of 24"):
        cnn2snn.quantize(broken, 4, 4, 8, calibration_data=x)
    bad = x.copy()
    bad[3, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"calibration_data holds 1 NaN or infinite value\(s\) \(the first at index \(3, 1, 2, 0\)\)"):
        cnn2snn.quantize(model, 4, 4, 8, calibration_data=bad)


def test_the_onnx_reader_names_what_is_wrong_with_a_model():
    with pytest.raises(ValueError, match="the ONNX bytes are empty"):
        cnn2snn.quantize(b"")
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    huge = helper.make_graph([relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2**20, 2**20])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 2**20, 2**20])])
    with pytest.raises(ValueError, match=r"beyond the engine's inputs"):
        cnn2snn.quantize(helper.make_model(huge, opset_imports=[helper.make_opsetid("", 17)]))
    add = helper.make_node("Add", ["x", "nope"], ["y"], name="add")
    dangling = helper.make_graph([add], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    with pytest.raises(ValueError, match="'nope' is neither a graph input, an initializer nor the output of a node"):
        cnn2snn.quantize(helper.make_model(dangling, opset_imports=[helper.make_opsetid("", 17)]))

"""The ONNX reader: every supported op against onnxruntime (numpy executor as the oracle), the
layout translation (NCHW -> NHWC, CHW -> HWC flatten order), padding classification, QDQ and
QONNX quantization annotations, and the errors on models it cannot read."""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from akida.cnn2snn.graph import Graph  # noqa: E402
from akida.cnn2snn.numpy_ops import run_graph  # noqa: E402
from akida.cnn2snn.onnx_reader import ONNX_EXTRA_MESSAGE, chw_to_hwc_order, read_onnx  # noqa: E402
from cnn2snn_models import QONNX_DOMAIN, OnnxBuilder, digits_mlp, run_onnxruntime  # noqa: E402


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def to_graph_layout(x: np.ndarray) -> np.ndarray:
    """An ONNX input batch as the graph takes it: NCHW -> NHWC, (N, F) -> (N, 1, 1, F)."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x.reshape(x.shape[0], 1, 1, -1)


def assert_matches_onnxruntime(model, x: np.ndarray, output: str | None = None, rtol: float = 1e-4) -> Graph:
    """Reads ``model`` and checks the numpy executor of the graph against onnxruntime."""
    graph = read_onnx(model, output=output)
    expected = run_onnxruntime(model, x.astype(np.float32), output).astype(np.float64)
    if expected.ndim == 4:
        expected = expected.transpose(0, 2, 3, 1)
    got = run_graph(graph, to_graph_layout(x.astype(np.float64)))
    assert got.size == expected.size, (got.shape, expected.shape)
    got = got.reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * max(1.0, float(np.abs(expected).max())))
    return graph


def ops(graph: Graph, keep_identity: bool = False) -> list[str]:
    return [n.op for n in graph.nodes if keep_identity or n.op != "identity"]


def only(graph: Graph, op: str):
    (node,) = [n for n in graph.nodes if n.op == op]
    return node


def image(rng, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Convolutions and padding
# --------------------------------------------------------------------------------------------


CONV_CASES = {
    # name: (kernel, attrs, expected padding)
    "same_upper_stride2_3x2": ((3, 2), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}, "same"),
    "same_upper_stride1_4x4": ((4, 4), {"auto_pad": "SAME_UPPER"}, "same"),
    "explicit_equal_to_same": ((3, 3), {"pads": [1, 1, 1, 1]}, "same"),
    "explicit_tf_same_stride2": ((4, 3), {"strides": [2, 2], "pads": [1, 1, 2, 1]}, "same"),
    "valid_default": ((3, 2), {"strides": [2, 1]}, "valid"),
    "valid_auto": ((2, 3), {"auto_pad": "VALID", "strides": [2, 2]}, "valid"),
    "same_lower_uneven": ((4, 2), {"auto_pad": "SAME_LOWER"}, ("explicit", (2, 1, 1, 0))),
    "explicit_asymmetric": ((3, 3), {"pads": [0, 2, 1, 0], "strides": [2, 2]}, ("explicit", (0, 1, 2, 0))),
    "dilated_explicit_same": ((3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, "same"),
    "dilated_valid": ((2, 3), {"dilations": [2, 1], "strides": [1, 2]}, "valid"),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_matches_onnxruntime(case, rng):
    kernel, attrs, padding = CONV_CASES[case]
    b = OnnxBuilder(rng)
    y = b.conv("x", 3, 5, kernel, name="conv1", **attrs)
    model = b.build(("N", 3, 7, 7), y)
    graph = assert_matches_onnxruntime(model, image(rng, 2, 3, 7, 7))
    conv = only(graph, "conv")
    assert conv.attrs["padding"] == padding
    assert conv.params["kernel"].shape == kernel + (3, 5)
    assert conv.attrs["strides"] == tuple(attrs.get("strides", (1, 1)))
    assert conv.attrs["dilations"] == tuple(attrs.get("dilations", (1, 1)))
    assert conv.source == "ONNX Conv 'conv1'"
    assert graph.input.attrs["shape"] == (7, 7, 3)


def test_conv_kernel_layout_is_kh_kw_in_out(rng):
    b = OnnxBuilder(rng)
    weights = b.weights(4, 2, 3, 1)
    y = b.node("Conv", ["x", b.init(weights)])
    graph = read_onnx(b.build((1, 2, 5, 5), y))
    conv = only(graph, "conv")
    np.testing.assert_array_equal(conv.params["kernel"], weights.transpose(2, 3, 1, 0))
    assert "bias" not in conv.params


def test_depthwise_conv(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 4, 4, (3, 3), group=4, strides=[2, 2], auto_pad="SAME_UPPER")
    graph = assert_matches_onnxruntime(b.build((1, 4, 7, 7), y), image(rng, 2, 4, 7, 7))
    node = only(graph, "depthwise")
    assert node.params["kernel"].shape == (3, 3, 4, 1)
    assert node.attrs["padding"] == "same"


def test_grouped_conv_is_unsupported_with_its_source(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 4, 6, (3, 3), group=2, name="grouped")
    y = b.node("Relu", [y])
    graph = read_onnx(b.build((1, 4, 7, 7), y))
    node = only(graph, "unsupported")
    assert node.attrs["source_op"] == "Conv"
    assert "group=2" in node.attrs["reason"]
    assert node.source == "ONNX Conv 'grouped'"
    assert node.inputs == [graph.input.name]
    assert ops(graph) == ["input", "unsupported", "relu"]


def test_depthwise_multiplier_is_unsupported(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 2, 4, (3, 3), group=2)
    assert ops(read_onnx(b.build((1, 2, 5, 5), y))) == ["input", "unsupported"]


# --------------------------------------------------------------------------------------------
# Flatten order and dense layers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape", "ShapeReshape"])
@pytest.mark.parametrize("trans_b", [True, False])
def test_conv_flatten_gemm_permutes_rows(flatten, trans_b, rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 3, 4, (3, 3), strides=[2, 2], auto_pad="SAME_UPPER")
    y = b.node("Relu", [y])
    if flatten == "Flatten":
        y = b.node("Flatten", [y], axis=1)
    elif flatten == "Reshape":
        y = b.node("Reshape", [y, b.init(np.array([-1, 48], np.int64))])
    else:  # the pattern x.view(x.size(0), -1) exports to
        shape = b.node("Shape", [y])
        batch = b.node("Gather", [shape, b.init(np.array(0, np.int64))], axis=0)
        batch = b.node("Unsqueeze", [batch, b.init(np.array([0], np.int64))])
        target = b.node("Concat", [batch, b.init(np.array([-1], np.int64))], axis=0)
        y = b.node("Reshape", [y, target])
    y = b.gemm(y, 48, 5, trans_b=trans_b, alpha=0.7, beta=1.3, name="fc")
    graph = assert_matches_onnxruntime(b.build(("N", 3, 7, 6), y), image(rng, 3, 3, 7, 6))
    assert ops(graph) == ["input", "conv", "relu", "flatten", "dense"]
    dense = only(graph, "dense")
    assert dense.params["kernel"].shape == (48, 5)
    assert dense.source == "ONNX Gemm 'fc'"


def test_flatten_permutation_is_chw_to_hwc():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(a.ravel()[chw_to_hwc_order(2, 3, 4)], a.transpose(1, 2, 0).ravel())


def test_dense_on_flat_input_is_not_permuted(rng):
    b = OnnxBuilder(rng)
    weights = b.weights(6, 10)
    y = b.node("Gemm", ["x", b.init(weights)], transB=1)
    graph = assert_matches_onnxruntime(b.build(("N", 10), y), image(rng, 4, 10))
    assert graph.input.attrs["shape"] == (1, 1, 10)
    np.testing.assert_array_equal(only(graph, "dense").params["kernel"], weights.T)


def test_matmul_add_fuse_into_one_dense(rng):
    b = OnnxBuilder(rng)
    y = b.node("MatMul", ["x", b.init(b.weights(10, 6))], name="mm")
    y = b.node("Add", [b.init(b.weights(6)), y], name="bias")
    y = b.node("Relu", [y])
    graph = assert_matches_onnxruntime(b.build((1, 10), y), image(rng, 1, 10))
    assert ops(graph) == ["input", "dense", "relu"]
    assert only(graph, "dense").source == "ONNX MatMul 'mm' + Add 'bias'"


def test_add_after_a_shared_matmul_is_not_fused(rng):
    b = OnnxBuilder(rng)
    m = b.node("MatMul", ["x", b.init(b.weights(10, 6))])
    y = b.node("Add", [m, b.init(b.weights(6))])
    y = b.node("Add", [m, y])
    graph = assert_matches_onnxruntime(b.build((1, 10), y), image(rng, 2, 10))
    assert ops(graph) == ["input", "dense", "rescale", "add"]


def test_global_pool_flatten_dense_batchnorm1d(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 3, 6, (3, 3), pads=[1, 1, 1, 1])
    y = b.node("GlobalAveragePool", [y])
    y = b.node("Flatten", [y])
    y = b.batchnorm(y, 6)
    y = b.gemm(y, 6, 4)
    graph = assert_matches_onnxruntime(b.build((1, 3, 5, 5), y), image(rng, 2, 3, 5, 5))
    assert ops(graph) == ["input", "conv", "global_avgpool", "flatten", "batchnorm", "dense"]


def test_batchnorm_on_flattened_image_follows_the_permutation(rng):
    b = OnnxBuilder(rng)
    y = b.node("Flatten", ["x"])
    y = b.batchnorm(y, 2 * 3 * 4)
    y = b.node("Relu", [y])
    y = b.gemm(y, 24, 3)
    graph = assert_matches_onnxruntime(b.build((1, 2, 3, 4), y), image(rng, 2, 2, 3, 4))
    assert ops(graph) == ["input", "flatten", "batchnorm", "relu", "dense"]


def test_concat_of_flattened_images(rng):
    b = OnnxBuilder(rng)
    left = b.node("Flatten", [b.conv("x", 2, 3, (3, 3), auto_pad="SAME_UPPER")])
    right = b.node("Flatten", [b.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])])
    y = b.node("Concat", [left, right], axis=1)
    y = b.gemm(y, 3 * 16 + 2 * 4, 5)
    graph = assert_matches_onnxruntime(b.build((1, 2, 4, 4), y), image(rng, 2, 2, 4, 4))
    assert only(graph, "concat").inputs == [n.name for n in graph.nodes if n.op == "flatten"]


def test_reshape_of_features_back_to_their_image(rng):
    b = OnnxBuilder(rng)
    y = b.node("Flatten", ["x"])
    y = b.node("Relu", [y])
    y = b.node("Reshape", [y, b.init(np.array([1, 2, 3, 4], np.int64))])
    y = b.conv(y, 2, 3, (2, 2))
    graph = assert_matches_onnxruntime(b.build((1, 2, 3, 4), y), image(rng, 1, 2, 3, 4))
    assert only(graph, "reshape").attrs["shape"] == (3, 4, 2)


def test_reshape_of_dense_features_to_an_image_is_unsupported(rng):
    b = OnnxBuilder(rng)
    y = b.gemm("x", 8, 12)
    y = b.node("Reshape", [y, b.init(np.array([-1, 3, 2, 2], np.int64))])
    node = only(read_onnx(b.build((1, 8), y)), "unsupported")
    assert node.attrs["source_op"] == "Reshape"
    assert "reorder" in node.attrs["reason"]


# --------------------------------------------------------------------------------------------
# Normalization, activations and pooling
# --------------------------------------------------------------------------------------------


def test_conv_batchnorm_clip_opset11_inputs(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 3, 4, (3, 3), auto_pad="SAME_UPPER")
    y = b.batchnorm(y, 4)
    y = b.node("Clip", [y, b.init(np.float32(0.0)), b.init(np.float32(6.0))])
    graph = assert_matches_onnxruntime(b.build((1, 3, 6, 6), y), image(rng, 2, 3, 6, 6) * 3)
    assert ops(graph) == ["input", "conv", "batchnorm", "relu"]
    assert only(graph, "relu").attrs["max_value"] == 6.0
    assert only(graph, "batchnorm").attrs["epsilon"] == pytest.approx(1e-3)


def test_clip_opset6_attributes(rng):
    b = OnnxBuilder(rng)
    y = b.conv("x", 2, 3, (1, 1))
    y = b.node("Clip", [y], min=0.0, max=1.5)
    graph = assert_matches_onnxruntime(b.build((1, 2, 4, 4), y, opset=10), image(rng, 2, 2, 4, 4) * 3)
    assert only(graph, "relu").attrs["max_value"] == 1.5


def test_clip_without_max_is_unbounded_relu(rng):
    b = OnnxBuilder(rng)
    y = b.node("Clip", ["x", b.init(np.float32(0.0))])
    assert only(read_onnx(b.build((1, 5), y)), "relu").attrs["max_value"] is None


def test_clip_with_nonzero_min_is_an_activation(rng):
    b = OnnxBuilder(rng)
    y = b.node("Clip", ["x", b.init(np.float32(-1.0)), b.init(np.float32(1.0))])
    node = only(read_onnx(b.build((1, 5), y)), "activation")
    assert (node.attrs["function"], node.attrs["min"], node.attrs["max"]) == ("clip", -1.0, 1.0)


def test_leaky_relu_keeps_its_slope(rng):
    b = OnnxBuilder(rng)
    y = b.node("LeakyRelu", [b.conv("x", 2, 3, (3, 3))], alpha=0.2)
    graph = assert_matches_onnxruntime(b.build((1, 2, 5, 5), y), image(rng, 2, 2, 5, 5))
    assert only(graph, "relu").attrs["negative_slope"] == pytest.approx(0.2)


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "HardSwish"])
def test_other_activations(op, rng):
    b = OnnxBuilder(rng)
    y = b.node(op, [b.conv("x", 2, 3, (3, 3))], name="act")
    node = only(read_onnx(b.build((1, 2, 5, 5), y)), "activation")
    assert node.attrs["function"] == {"Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish"}[op]
    assert node.source == f"ONNX {op} 'act'"


def test_softmax_over_features(rng):
    b = OnnxBuilder(rng)
    y = b.node("Softmax", [b.gemm("x", 7, 4)], axis=1)
    graph = assert_matches_onnxruntime(b.build(("N", 7), y), image(rng, 3, 7))
    assert ops(graph)[-1] == "softmax"


def test_softmax_over_width_is_unsupported(rng):
    b = OnnxBuilder(rng)
    y = b.node("Softmax", ["x"], axis=-1)
    assert only(read_onnx(b.build((1, 2, 3, 3), y)), "unsupported").attrs["source_op"] == "Softmax"


POOL_CASES = {
    "max_same_stride2": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "same"),
    "max_valid": ("MaxPool", {"kernel_shape": [2, 3], "strides": [2, 2]}, "valid"),
    "max_explicit_same": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, "same"),
    # ceil_mode adds end padding; here it is TensorFlow's 'same' ...
    "max_ceil_mode_same": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, "same"),
    # ... and here it is not
    "max_ceil_mode_explicit": ("MaxPool", {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1}, ("explicit", (0, 2, 0, 2))),
    "avg_valid": ("AveragePool", {"kernel_shape": [3, 2], "strides": [2, 1]}, "valid"),
    "avg_same_exclude_pad": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "same"),
    "avg_ceil_mode": ("AveragePool", {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1}, ("explicit", (0, 2, 0, 2))),
    "avg_include_pad": (
        "AveragePool",
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        "same",
    ),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling_matches_onnxruntime(case, rng):
    op, attrs, padding = POOL_CASES[case]
    b = OnnxBuilder(rng)
    y = b.node(op, [b.conv("x", 2, 3, (1, 1))], **attrs)
    graph = assert_matches_onnxruntime(b.build((1, 2, 7, 7), y), image(rng, 2, 2, 7, 7))
    node = only(graph, "maxpool" if op == "MaxPool" else "avgpool")
    assert node.attrs["padding"] == padding
    assert node.attrs["pool"] == tuple(attrs["kernel_shape"])
    if op == "AveragePool":
        assert node.attrs["count_include_pad"] == bool(attrs.get("count_include_pad", 0))


def test_avgpool_ceil_mode_counting_padding_is_unsupported(rng):
    b = OnnxBuilder(rng)
    y = b.node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=1)
    assert only(read_onnx(b.build((1, 2, 7, 7), y)), "unsupported").attrs["source_op"] == "AveragePool"


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op, rng):
    b = OnnxBuilder(rng)
    y = b.node(op, [b.conv("x", 2, 3, (3, 3))])
    graph = assert_matches_onnxruntime(b.build((1, 2, 6, 5), y), image(rng, 2, 2, 6, 5))
    assert ops(graph)[-1] == {"GlobalAveragePool": "global_avgpool", "GlobalMaxPool": "global_maxpool"}[op]


def test_reduce_mean_without_keepdims(rng):
    b = OnnxBuilder(rng)
    y = b.node("ReduceMean", [b.conv("x", 2, 3, (3, 3))], axes=[2, 3], keepdims=0)
    y = b.gemm(y, 3, 2)
    graph = assert_matches_onnxruntime(b.build((1, 2, 6, 5), y), image(rng, 2, 2, 6, 5))
    assert ops(graph) == ["input", "conv", "global_avgpool", "flatten", "dense"]


def test_dropout_and_identity_become_identity(rng):
    b = OnnxBuilder(rng)
    y = b.node("Dropout", [b.node("Identity", ["x"])])
    graph = assert_matches_onnxruntime(b.build((1, 6), y), image(rng, 2, 6))
    assert ops(graph, keep_identity=True) == ["input", "identity", "identity"]


# --------------------------------------------------------------------------------------------
# Residuals, concatenation, rescaling, unsupported ops
# --------------------------------------------------------------------------------------------


def test_residual_add_and_channel_concat(rng):
    b = OnnxBuilder(rng)
    stem = b.node("Relu", [b.conv("x", 3, 4, (3, 3), auto_pad="SAME_UPPER")])
    branch = b.conv(stem, 4, 4, (3, 3), auto_pad="SAME_UPPER")
    added = b.node("Add", [stem, branch], name="residual")
    y = b.node("Concat", [added, stem], axis=1, name="cat")
    graph = assert_matches_onnxruntime(b.build((1, 3, 6, 6), y), image(rng, 2, 3, 6, 6))
    add, concat = only(graph, "add"), only(graph, "concat")
    assert add.source == "ONNX Add 'residual'" and len(add.inputs) == 2
    assert concat.source == "ONNX Concat 'cat'" and concat.inputs == [add.name, add.inputs[0]]


def test_input_normalization_becomes_one_rescale(rng):
    b = OnnxBuilder(rng)
    mean = np.array([0.5, 0.4, 0.3], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2, 0.25, 0.3], np.float32).reshape(3, 1, 1)
    y = b.node("Mul", ["x", b.init(np.float32(1 / 255))], name="to_unit")
    y = b.node("Sub", [y, b.init(mean)], name="center")
    y = b.node("Div", [y, b.init(std)], name="scale")
    y = b.conv(y, 3, 4, (3, 3))
    x = rng.integers(0, 256, (2, 3, 5, 5)).astype(np.float32)
    graph = assert_matches_onnxruntime(b.build((1, 3, 5, 5), y), x)
    assert ops(graph) == ["input", "rescale", "conv"]
    rescale = only(graph, "rescale")
    np.testing.assert_allclose(rescale.attrs["scale"], 1 / 255 / std.ravel(), rtol=1e-6)
    np.testing.assert_allclose(rescale.attrs["offset"], -mean.ravel() / std.ravel(), rtol=1e-6)
    assert rescale.source == "ONNX Mul 'to_unit' + Sub 'center' + Div 'scale'"


def test_constant_minus_input_rescale(rng):
    b = OnnxBuilder(rng)
    y = b.node("Sub", [b.init(np.float32(1.0)), "x"])
    graph = assert_matches_onnxruntime(b.build((1, 4), y), image(rng, 2, 4))
    assert (only(graph, "rescale").attrs["scale"], only(graph, "rescale").attrs["offset"]) == (-1.0, 1.0)


@pytest.mark.parametrize("op", ["Resize", "Transpose", "Erf", "Mul"])
def test_unknown_ops_are_unsupported(op, rng):
    b = OnnxBuilder(rng)
    if op == "Resize":
        y = b.node(op, ["x", "", b.init(np.array([1, 1, 2, 2], np.float32))], name="the_op")
    elif op == "Mul":
        y = b.node(op, ["x", "x"], name="the_op")
    else:
        y = b.node(op, ["x"], name="the_op")
    y = b.node("Relu", [y])
    graph = read_onnx(b.build((1, 2, 4, 4), y))
    node = only(graph, "unsupported")
    assert node.attrs["source_op"] == op
    assert node.source == f"ONNX {op} 'the_op'"
    assert graph.consumers(node.name)[0].op == "relu"


def test_unnamed_nodes_take_their_output_name(rng):
    b = OnnxBuilder(rng)
    b.nodes.append(helper.make_node("Relu", ["x"], ["activated"]))
    graph = read_onnx(b.build((1, 3), "activated"))
    assert only(graph, "relu").source == "ONNX Relu 'activated'"
    assert graph.output == "activated"


# --------------------------------------------------------------------------------------------
# Inputs, outputs and model sources
# --------------------------------------------------------------------------------------------


def test_digits_mlp_from_skl2onnx():
    model, x = digits_mlp()
    graph = assert_matches_onnxruntime(model, x, output="probabilities")
    assert ops(graph) == ["input", "dense", "relu", "dense", "softmax"]
    assert graph.input.attrs["shape"] == (1, 1, 64)
    # the default output is the float one; the label branch (ArgMax, casts) is dropped
    default = read_onnx(model)
    assert ops(default) == ops(graph)
    assert not any(n.op == "unsupported" for n in default.nodes)
    assert default.source_format == "onnx"


def test_ambiguous_outputs_are_named(rng):
    b = OnnxBuilder(rng)
    first, second = b.node("Relu", ["x"], name="a"), b.node("Sigmoid", ["x"], name="b")
    model = b.build((1, 3), [first, second])
    with pytest.raises(ValueError, match="a_out.*b_out"):
        read_onnx(model)
    assert ops(read_onnx(model, output=second)) == ["input", "activation"]
    with pytest.raises(ValueError, match="no output 'c'"):
        read_onnx(model, output="c")


def test_model_from_path_bytes_and_proto(rng, tmp_path):
    b = OnnxBuilder(rng)
    model = b.build((1, 3, 4, 4), b.conv("x", 3, 2, (3, 3)))
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    graphs = [read_onnx(model), read_onnx(model.SerializeToString()), read_onnx(path), read_onnx(str(path))]
    for graph in graphs:
        np.testing.assert_array_equal(only(graph, "conv").params["kernel"], only(graphs[0], "conv").params["kernel"])


def test_initializers_listed_as_inputs_are_not_inputs(rng):
    b = OnnxBuilder(rng)
    model = b.build((1, 3, 4, 4), b.conv("x", 3, 2, (3, 3)), initializers_as_inputs=True)
    assert read_onnx(model).input.name == "x"


def test_nhwc_input_with_transpose(rng):
    b = OnnxBuilder(rng)
    y = b.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    y = b.conv(y, 3, 2, (3, 3))
    model = b.build((1, 5, 6, 3), y)
    graph = read_onnx(model)
    assert graph.input.attrs["shape"] == (5, 6, 3)
    x = image(rng, 2, 5, 6, 3)
    expected = run_onnxruntime(model, x).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(run_graph(graph, x), expected, rtol=1e-4, atol=1e-4)


def test_input_errors(rng):
    b = OnnxBuilder(rng)
    y = b.node("Relu", ["x"])
    with pytest.raises(ValueError, match="unknown non-batch"):
        read_onnx(b.build(("N", 3, "H", 8), y))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        read_onnx(b.build((1, 3, 8), y))
    model = b.build((1, 3), y)
    model.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3]))
    with pytest.raises(ValueError, match="exactly one graph input"):
        read_onnx(model)
    with pytest.raises(TypeError):
        read_onnx(12)


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install openakida\[onnx\]") as info:
        read_onnx(b"")
    assert str(info.value) == ONNX_EXTRA_MESSAGE


# --------------------------------------------------------------------------------------------
# QDQ (QuantizeLinear / DequantizeLinear)
# --------------------------------------------------------------------------------------------


def _dq_weights(b: OnnxBuilder, ints: np.ndarray, scale: np.ndarray, axis: int, dtype=np.int8, zero=None) -> str:
    q = b.init(ints.astype(dtype))
    inputs = [q, b.init(scale.astype(np.float32))]
    if zero is not None:
        inputs.append(b.init(np.asarray(zero, dtype=dtype)))
    return b.node("DequantizeLinear", inputs, axis=axis)


def _qdq(b: OnnxBuilder, x: str, step: float, zero_dtype=np.uint8, zero=0) -> str:
    step_name, zero_name = b.init(np.float32(step)), b.init(np.asarray(zero, dtype=zero_dtype))
    q = b.node("QuantizeLinear", [x, step_name, zero_name])
    return b.node("DequantizeLinear", [q, step_name, zero_name])


def test_qdq_weights_match_onnxruntime_and_keep_their_integers(rng):
    b = OnnxBuilder(rng)
    conv_ints = rng.integers(-100, 101, (4, 3, 3, 2))
    conv_scale = rng.uniform(0.001, 0.01, 4)
    y = b.node("Conv", ["x", _dq_weights(b, conv_ints, conv_scale, axis=0)], strides=[2, 2], name="qconv")
    y = b.node("Flatten", [b.node("Relu", [y])])
    fc_ints = rng.integers(-7, 8, (3, 4 * 3 * 3))  # (out, in): Gemm transB=1, fits in 4 bits
    fc_scale = rng.uniform(0.01, 0.1, 3)
    y = b.node("Gemm", [y, _dq_weights(b, fc_ints, fc_scale, axis=0)], transB=1, alpha=0.5, name="qfc")
    graph = assert_matches_onnxruntime(b.build((1, 3, 7, 6), y), image(rng, 2, 3, 7, 6))
    conv, dense = only(graph, "conv"), only(graph, "dense")
    assert conv.weight_quant.bits == 8
    np.testing.assert_array_equal(conv.weight_quant.ints, conv_ints.transpose(2, 3, 1, 0))
    np.testing.assert_allclose(conv.weight_quant.unit, conv_scale.astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(conv.weight_quant.ints * conv.weight_quant.unit, conv.params["kernel"], rtol=1e-12)
    assert dense.weight_quant.bits == 4
    perm = chw_to_hwc_order(4, 3, 3)
    np.testing.assert_array_equal(dense.weight_quant.ints, fc_ints.T[perm])
    np.testing.assert_allclose(dense.weight_quant.ints * dense.weight_quant.unit, dense.params["kernel"], rtol=1e-12)
    np.testing.assert_allclose(dense.weight_quant.unit, 0.5 * fc_scale.astype(np.float32), rtol=1e-7)


def test_qdq_weight_bits_are_the_smallest_that_hold_them(rng):
    b = OnnxBuilder(rng)
    ternary = rng.integers(-1, 2, (5, 6))
    y = b.node("MatMul", ["x", _dq_weights(b, ternary, np.float32(0.1), axis=1)])
    dense = only(read_onnx(b.build((1, 5), y)), "dense")
    assert dense.weight_quant.bits == 2
    assert dense.weight_quant.unit.shape == (1,)
    np.testing.assert_array_equal(dense.weight_quant.ints, ternary)


def test_qdq_weight_zero_point_and_input_axis_are_problems(rng):
    b = OnnxBuilder(rng)
    y = b.node("MatMul", ["x", _dq_weights(b, rng.integers(0, 255, (5, 6)), np.float32(0.1), 1, np.uint8, 128)])
    y = b.node("MatMul", [y, _dq_weights(b, rng.integers(-5, 5, (6, 4)), rng.uniform(0.1, 1, 6), axis=0)])
    graph = read_onnx(b.build((1, 5), y))
    first, second = [n for n in graph.nodes if n.op == "dense"]
    assert first.weight_quant is None and "zero point 128" in first.attrs["quant_problem"]
    assert second.weight_quant is None and "output channels" in second.attrs["quant_problem"]
    # the float weights are still exact
    x = image(rng, 3, 5)
    np.testing.assert_allclose(run_graph(graph, to_graph_layout(x)).reshape(3, -1), run_onnxruntime(b.build((1, 5), y), x), rtol=1e-5, atol=1e-5)


def test_qdq_activations_and_input(rng):
    b = OnnxBuilder(rng)
    x = _qdq(b, "x", 1 / 255)
    y = b.node("Conv", [x, _dq_weights(b, rng.integers(-7, 8, (4, 3, 3, 3)), rng.uniform(0.01, 0.1, 4), 0)])
    y = _qdq(b, b.node("Relu", [y], name="relu8"), 0.05)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.node("Conv", [y, _dq_weights(b, rng.integers(-7, 8, (2, 4, 1, 1)), np.float32(0.1), 0)])
    y = _qdq(b, b.node("Relu", [y], name="relu_signed"), 0.1, np.int8)
    model = b.build((1, 3, 6, 6), y)
    graph = read_onnx(model)
    assert ops(graph) == ["input", "conv", "relu", "maxpool", "conv", "relu"]
    assert graph.input.attrs["input_quant"] == (pytest.approx(1 / 255), 0)
    first, second = [n for n in graph.nodes if n.op == "relu"]
    assert first.activation_quant.bits == 8 and first.activation_quant.step == pytest.approx(0.05)
    assert second.activation_quant.bits == 7  # non-negative levels of an int8 grid
    assert graph.output == second.name


def test_qdq_int4_weights_and_uint4_activations(rng):
    b = OnnxBuilder(rng)
    ints = rng.integers(-8, 8, (3, 2, 3, 3))
    ints[0, 0, 0, 0] = -8  # int4's full range: still 4 bits
    weights = b.init(helper.make_tensor(b.fresh_name("w"), TensorProto.INT4, ints.shape, ints.ravel().tolist()))
    dq = b.node("DequantizeLinear", [weights, b.init(rng.uniform(0.05, 0.1, 3).astype(np.float32))], axis=0)
    y = b.node("Relu", [b.node("Conv", ["x", dq], pads=[1, 1, 1, 1])])
    step, zero = b.init(np.float32(0.25)), b.init(helper.make_tensor(b.fresh_name("z"), TensorProto.UINT4, [], [0]))
    y = b.node("DequantizeLinear", [b.node("QuantizeLinear", [y, step, zero]), step, zero])
    model = b.build((1, 2, 5, 5), y, opset=21)
    graph = read_onnx(model)
    conv, relu = only(graph, "conv"), only(graph, "relu")
    assert conv.weight_quant.bits == 4
    np.testing.assert_array_equal(conv.weight_quant.ints, ints.transpose(2, 3, 1, 0))
    assert relu.activation_quant.bits == 4 and relu.activation_quant.step == 0.25
    # onnxruntime runs it: the graph, whose ReLU is float, agrees once its output is rounded to the grid
    x = image(rng, 2, 2, 5, 5)
    expected = run_onnxruntime(model, x).transpose(0, 2, 3, 1)
    got = np.clip(np.rint(run_graph(graph, to_graph_layout(x)) / 0.25), 0, 15) * 0.25
    assert np.mean(np.isclose(got, expected)) > 0.97  # float32 vs float64 near rounding ties


# --------------------------------------------------------------------------------------------
# QONNX
# --------------------------------------------------------------------------------------------


def _quant(b: OnnxBuilder, x: str, scale, bits: int, signed: int = 1, narrow: int = 0, zero=0.0, name=None) -> str:
    inputs = [x, b.init(np.asarray(scale, np.float32)), b.init(np.float32(zero)), b.init(np.float32(bits))]
    return b.node("Quant", inputs, domain=QONNX_DOMAIN, signed=signed, narrow=narrow, rounding_mode="ROUND", name=name)


def test_qonnx_quant_weights_and_activations(rng):
    b = OnnxBuilder(rng)
    conv_w = b.weights(4, 2, 3, 3)
    conv_scale = rng.uniform(0.05, 0.2, (4, 1, 1, 1))
    y = b.node("Conv", ["x", _quant(b, b.init(conv_w), conv_scale, 4, narrow=1)], name="conv")
    y = _quant(b, b.node("Relu", [y], name="act"), 0.125, 3, signed=0)
    y = b.node("Flatten", [y])
    fc_w = b.weights(4 * 3 * 3, 5)
    y = b.node("MatMul", [y, _quant(b, b.init(fc_w), np.float32(0.1), 8)], name="fc")
    model = b.build((1, 2, 5, 5), y, extra_opsets=[(QONNX_DOMAIN, 1)])
    graph = read_onnx(model)
    assert ops(graph) == ["input", "conv", "relu", "flatten", "dense"]
    conv, relu, dense = only(graph, "conv"), only(graph, "relu"), only(graph, "dense")
    conv_ints = np.clip(np.rint(conv_w / conv_scale.astype(np.float32)), -7, 7)
    assert conv.weight_quant.bits == 4
    np.testing.assert_array_equal(conv.weight_quant.ints, conv_ints.transpose(2, 3, 1, 0))
    np.testing.assert_allclose(conv.weight_quant.unit, conv_scale.astype(np.float32).ravel())
    np.testing.assert_allclose(conv.weight_quant.ints * conv.weight_quant.unit, conv.params["kernel"])
    assert relu.activation_quant.bits == 3 and relu.activation_quant.step == 0.125
    fc_ints = np.clip(np.rint(fc_w / np.float32(0.1)), -128, 127)
    np.testing.assert_array_equal(dense.weight_quant.ints, fc_ints[chw_to_hwc_order(4, 3, 3)])
    assert dense.weight_quant.bits == 8


def test_qonnx_problems_and_bipolar(rng):
    b = OnnxBuilder(rng)
    y = b.node("MatMul", ["x", _quant(b, b.init(b.weights(4, 3)), np.float32(0.1), 4, zero=1.0)])
    y = b.node("BipolarQuant", [y, b.init(np.float32(1.0))], domain=QONNX_DOMAIN, name="binary")
    graph = read_onnx(b.build((1, 4), y, extra_opsets=[(QONNX_DOMAIN, 1)]))
    dense = only(graph, "dense")
    assert dense.weight_quant is None and "zero point" in dense.attrs["quant_problem"]
    node = only(graph, "unsupported")
    assert node.attrs["source_op"] == "BipolarQuant" and node.source == "ONNX BipolarQuant 'binary'"


def test_unknown_custom_domain_op_is_unsupported(rng):
    b = OnnxBuilder(rng)
    y = b.node("FusedConv", ["x"], domain="com.microsoft", name="fused")
    node = only(read_onnx(b.build((1, 2, 3, 3), y, extra_opsets=[("com.microsoft", 1)])), "unsupported")
    assert node.attrs["source_op"] == "FusedConv" and node.attrs["domain"] == "com.microsoft"


def test_graph_node_names_are_unique_and_sources_set(rng):
    b = OnnxBuilder(rng)
    b.nodes.append(helper.make_node("Relu", ["x"], ["r1"], name="x"))  # a node named like the input
    b.nodes.append(helper.make_node("Relu", ["r1"], ["r2"], name="x"))  # and another of the same name
    graph = read_onnx(b.build((1, 3), "r2"))
    assert len({n.name for n in graph.nodes}) == 3
    assert all(n.source for n in graph.nodes)


def test_constant_nodes_feed_weights(rng):
    b = OnnxBuilder(rng)
    weights = b.weights(2, 3, 3, 3)
    constant = b.node("Constant", [], value=numpy_helper.from_array(weights, "w"))
    y = b.node("Conv", ["x", constant])
    graph = assert_matches_onnxruntime(b.build((1, 3, 5, 5), y), image(rng, 1, 3, 5, 5))
    np.testing.assert_array_equal(only(graph, "conv").params["kernel"], weights.transpose(2, 3, 1, 0))


def test_qdq_pair_after_a_conv_is_a_relu(rng):
    """onnxruntime's quantizer drops a ReLU before a uint8 grid from 0: the grid is the ReLU."""
    b = OnnxBuilder(rng)
    y = b.conv("x", 2, 3, (3, 3), name="conv")
    y = _qdq(b, y, 0.05)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = _qdq(b, y, 0.05)  # the same grid again: nothing new
    y = b.node("Flatten", [y])
    y = b.gemm(y, 3 * 2 * 2, 4, name="fc")
    y = _qdq(b, y, 0.1, zero=100)  # an asymmetric output grid: only noted
    graph = read_onnx(b.build((1, 2, 6, 6), y))
    assert ops(graph) == ["input", "conv", "relu", "maxpool", "flatten", "dense"]
    relu = only(graph, "relu")
    assert relu.activation_quant.bits == 8 and relu.activation_quant.step == pytest.approx(0.05)
    assert relu.source.startswith("ONNX QuantizeLinear")
    assert only(graph, "dense").attrs["output_quant"] == (pytest.approx(0.1), 100, 8)


def test_onnxruntime_quantize_static_model(rng, tmp_path):
    quantization = pytest.importorskip("onnxruntime.quantization")
    b = OnnxBuilder(rng)
    y = b.node("Relu", [b.conv("x", 3, 4, (3, 3), pads=[1, 1, 1, 1])])
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.gemm(b.node("Flatten", [y]), 4 * 3 * 3, 5)
    float_path, quantized_path = tmp_path / "float.onnx", tmp_path / "quantized.onnx"
    onnx.save(b.build(("N", 3, 6, 6), y), str(float_path))
    samples = [rng.standard_normal((1, 3, 6, 6)).astype(np.float32) for _ in range(8)]

    class Samples(quantization.CalibrationDataReader):
        def __init__(self):
            self.feed = iter({"x": s} for s in samples)

        def get_next(self):
            return next(self.feed, None)

    quantization.quantize_static(
        str(float_path), str(quantized_path), Samples(), quant_format=quantization.QuantFormat.QDQ,
        per_channel=True, activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
    )
    model = onnx.load(str(quantized_path))
    graph = read_onnx(model)
    assert ops(graph) == ["input", "conv", "relu", "maxpool", "flatten", "dense"]
    conv, relu = only(graph, "conv"), only(graph, "relu")
    assert conv.weight_quant.bits == 8 and conv.weight_quant.unit.shape == (4,)
    np.testing.assert_allclose(conv.weight_quant.ints * conv.weight_quant.unit, conv.params["kernel"])
    assert relu.activation_quant.bits == 8
    scale, zero_point = graph.input.attrs["input_quant"]
    # the float graph computes what the quantized model does, up to its rounding of activations
    x = np.concatenate(samples)
    on_grid = np.clip(np.rint(x / scale) + zero_point, 0, 255) - zero_point
    got = run_graph(graph, to_graph_layout(on_grid * scale)).reshape(len(x), -1)
    expected = run_onnxruntime(model, x)
    assert np.abs(got - expected).max() < 0.03 * np.abs(expected).max()


def test_quantized_relu_with_another_reader_gets_its_own_node(rng):
    b = OnnxBuilder(rng)
    relu = b.node("Relu", [b.conv("x", 2, 3, (3, 3))], name="shared")
    y = b.node("Add", [_qdq(b, relu, 0.5), relu])
    graph = read_onnx(b.build((1, 2, 5, 5), y))
    assert ops(graph) == ["input", "conv", "relu", "relu", "add"]
    shared, quantized = [n for n in graph.nodes if n.op == "relu"]
    assert shared.activation_quant is None
    assert quantized.activation_quant.bits == 8 and quantized.inputs == [shared.name]


def test_unsigned_qonnx_quant_after_a_conv_is_a_relu(rng):
    b = OnnxBuilder(rng)
    y = _quant(b, b.conv("x", 2, 3, (3, 3)), 0.25, 4, signed=0, name="q")
    graph = read_onnx(b.build((1, 2, 5, 5), y, extra_opsets=[(QONNX_DOMAIN, 1)]))
    assert ops(graph) == ["input", "conv", "relu"]
    relu = only(graph, "relu")
    assert relu.activation_quant.bits == 4 and relu.source == "ONNX Quant 'q'"


def test_per_feature_rescale_of_flat_input_and_softmax_opset11(rng):
    b = OnnxBuilder(rng)
    y = b.node("Sub", ["x", b.init(b.weights(1, 6))])
    y = b.node("Softmax", [b.gemm(y, 6, 3)])
    graph = assert_matches_onnxruntime(b.build(("N", 6), y, opset=11), image(rng, 3, 6))
    assert ops(graph) == ["input", "rescale", "dense", "softmax"]
    assert only(graph, "rescale").attrs["offset"].shape == (6,)


def test_float_weights_through_quantize_and_dequantize(rng):
    b = OnnxBuilder(rng)
    weights = b.weights(3, 2, 3, 3)
    scale = b.init(rng.uniform(0.02, 0.05, 3).astype(np.float32))
    zero = b.init(np.zeros(3, np.int8))
    q = b.node("QuantizeLinear", [b.init(weights), scale, zero], axis=0)
    y = b.node("Conv", ["x", b.node("DequantizeLinear", [q, scale, zero], axis=0)])
    graph = assert_matches_onnxruntime(b.build((1, 2, 5, 5), y), image(rng, 2, 2, 5, 5))
    quant = only(graph, "conv").weight_quant
    assert quant.bits == 8 and quant.unit.shape == (3,)
    np.testing.assert_allclose(quant.ints * quant.unit, only(graph, "conv").params["kernel"])

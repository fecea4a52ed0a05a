"""Small ONNX test graphs for the cnn2snn readers, built with onnx.helper (no exporter needed).

:class:`OnnxBuilder` adds nodes and random initializers one call at a time and returns the
output tensor names, so a test reads like the network it builds::

    b = OnnxBuilder(rng)
    y = b.conv("x", 3, 4, (3, 2), strides=[2, 2], auto_pad="SAME_UPPER")
    y = b.node("Relu", [y])
    model = b.build((1, 3, 7, 7), y)

:func:`run_onnxruntime` runs a model on the CPU with graph optimizations off (so QDQ weights are
dequantized as the spec says, not fused into integer kernels).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"


class OnnxBuilder:
    """Accumulates nodes and initializers of one ONNX graph."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh_name(self, prefix: str) -> str:
        """A tensor or node name not used yet."""
        self._count += 1
        return f"{prefix}{self._count}"

    def init(self, array: Any, name: str | None = None) -> str:
        """Adds a constant initializer (a numpy array, or an already built TensorProto)."""
        if isinstance(array, onnx.TensorProto):
            tensor = array
            if name is not None:
                tensor.name = name
        else:
            tensor = numpy_helper.from_array(np.asarray(array), name or self.fresh_name("c"))
        self.initializers.append(tensor)
        return tensor.name

    def node(
        self, op: str, inputs: Sequence[str], outputs: int = 1, name: str | None = None, domain: str = "", **attrs: Any
    ) -> Any:
        """Adds a node; returns its output name (or the list of names when ``outputs > 1``)."""
        node_name = name if name is not None else self.fresh_name(op.lower())
        out = [f"{node_name}_out{i}" if outputs > 1 else f"{node_name}_out" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), out, name=node_name, domain=domain, **attrs))
        return out if outputs > 1 else out[0]

    def weights(self, *shape: int, scale: float = 0.5) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def conv(
        self, x: str, cin: int, cout: int, kernel: tuple[int, int], bias: bool = True, group: int = 1, **attrs: Any
    ) -> str:
        """A Conv with random weights (out, in / group, kh, kw)."""
        inputs = [x, self.init(self.weights(cout, cin // group, *kernel))]
        if bias:
            inputs.append(self.init(self.weights(cout)))
        if group != 1:
            attrs["group"] = group
        return self.node("Conv", inputs, **attrs)

    def gemm(self, x: str, fin: int, fout: int, trans_b: bool = True, bias: bool = True, **attrs: Any) -> str:
        """A Gemm with random B ((out, in) when ``trans_b``) and C."""
        b = self.weights(fout, fin) if trans_b else self.weights(fin, fout)
        inputs = [x, self.init(b)]
        if bias:
            inputs.append(self.init(self.weights(fout)))
        return self.node("Gemm", inputs, transB=int(trans_b), **attrs)

    def batchnorm(self, x: str, channels: int) -> str:
        gamma = self.rng.uniform(0.5, 1.5, channels).astype(np.float32)
        beta = self.weights(channels)
        mean = self.weights(channels)
        var = self.rng.uniform(0.5, 2.0, channels).astype(np.float32)
        return self.node("BatchNormalization", [x] + [self.init(p) for p in (gamma, beta, mean, var)], epsilon=1e-3)

    def build(
        self,
        input_shape: Sequence[int | str | None],
        outputs: str | Sequence[str],
        opset: int = 17,
        input_name: str = "x",
        input_type: int = TensorProto.FLOAT,
        extra_opsets: Sequence[tuple[str, int]] = (),
        ir_version: int | None = None,
        initializers_as_inputs: bool = False,
    ) -> onnx.ModelProto:
        """The model; ``input_shape`` may hold a symbolic batch ("N")."""
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        inputs = [helper.make_tensor_value_info(input_name, input_type, list(input_shape))]
        if initializers_as_inputs:
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.initializers]
        graph = helper.make_graph(
            self.nodes,
            "test_graph",
            inputs,
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
            self.initializers,
        )
        opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="openakida-tests")
        model.ir_version = ir_version or (10 if opset >= 21 else 8)
        return model


def run_onnxruntime(model: onnx.ModelProto, x: np.ndarray, output: str | None = None) -> np.ndarray:
    """The model's output (the first, or ``output``) for ``x`` on onnxruntime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = output or session.get_outputs()[0].name
    feed = session.get_inputs()[0]
    if feed.shape and feed.shape[0] == 1 and len(x) != 1:  # a fixed batch of one: one sample at a time
        return np.concatenate([session.run([name], {feed.name: x[i : i + 1]})[0] for i in range(len(x))])
    (result,) = session.run([name], {feed.name: x})
    return np.asarray(result)


@functools.lru_cache(maxsize=1)
def digits_mlp() -> tuple[onnx.ModelProto, np.ndarray]:
    """An MLPClassifier (64 -> 32 -> 10) trained on scikit-learn's digits and converted by
    skl2onnx without ZipMap, and 20 samples; built once per session."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(x, y)
        model = to_onnx(classifier, x[:1], options={id(classifier): {"zipmap": False}}, target_opset=17)
    return model, x[:20]

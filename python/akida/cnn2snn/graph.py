"""The one intermediate float graph that every source format is read into.

Readers (:mod:`.keras_reader`, :mod:`.onnx_reader`) translate a source model into a :class:`Graph`
of :class:`Node` objects and do nothing else; the passes (:mod:`.passes`), the compatibility
check, the quantizer and the converter only ever see this graph.

Conventions, whatever the source:

- Tensors are channels-last: one sample is ``(height, width, channels)``.
- Convolution kernels are ``(kernel_h, kernel_w, in_channels, out_channels)`` and are applied as a
  cross-correlation (what Keras, ONNX and every deep-learning framework compute). Depthwise kernels
  are ``(kernel_h, kernel_w, channels, 1)``.
- Dense kernels are ``(in_features, out_features)``; when a dense node follows a flatten of a
  ``(H, W, C)`` tensor its rows are in ``(H, W, C)`` row-major order (a reader of a channels-first
  source permutes them).
- Padding is ``"same"`` (TensorFlow's rule: ``ceil(n / stride)`` outputs, the smaller half of the
  padding before), ``"valid"``, or ``("explicit", (top, bottom, left, right))`` when a source gives
  pads that are neither.
- ``rescale`` nodes may appear anywhere; only those right after the input are absorbed.

Attributes a reader may set besides those of :data:`OPS`:

- on the input node: ``flat`` (the source input was a vector), ``input_quant = (scale,
  zero_point)`` (the source quantizes its input: integer ``q`` stands for ``scale * (q - zp)``);
- on any node: ``output_quant = (scale, zero_point, bits)`` (a quantizer the conversion does not
  use, for information) and ``quant_problem`` (why a source quantization could not be kept);
- on ``unsupported`` nodes: ``reason`` and ``domain``; on ``avgpool``: ``count_include_pad``;
  on ``activation``: the source attributes (``min``/``max`` for a clip).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Every op a reader may emit, with what its ``attrs`` and ``params`` hold.
OPS: dict[str, str] = {
    "input": "the graph input; attrs: shape (H, W, C)",
    "rescale": "y = x * scale + offset; attrs: scale, offset (floats or per-channel arrays)",
    "conv": "2-D cross-correlation; params: kernel (kh, kw, cin, cout), bias (cout,) or absent; "
    "attrs: strides (sy, sx), padding, dilations (dy, dx)",
    "depthwise": "depthwise cross-correlation (multiplier 1); params: kernel (kh, kw, C, 1), bias; "
    "attrs: strides, padding, dilations",
    "separable": "depthwise then pointwise, nothing between; params: depthwise (kh, kw, C, 1), "
    "pointwise (1, 1, C, n), bias (n,); attrs: strides, padding",
    "dense": "y = x @ kernel + bias; params: kernel (in, out), bias (out,) or absent",
    "batchnorm": "per-channel (x - mean) / sqrt(var + epsilon) * gamma + beta; params: gamma, beta, "
    "mean, var; attrs: epsilon",
    "relu": "min(max(x, 0), max_value); attrs: max_value (None: unbounded), negative_slope, threshold",
    "maxpool": "attrs: pool (ph, pw), strides (sy, sx), padding",
    "avgpool": "attrs: pool, strides, padding",
    "global_avgpool": "mean over height and width, keeping (1, 1, C)",
    "global_maxpool": "max over height and width, keeping (1, 1, C)",
    "flatten": "(H, W, C) -> (H * W * C,) row-major",
    "reshape": "attrs: shape (the target shape of one sample)",
    "identity": "no-op (Dropout, Identity, no-op casts)",
    "softmax": "softmax over channels",
    "add": "element-wise sum of several inputs",
    "concat": "concatenation of several inputs along channels",
    "activation": "an activation the converter does not map; attrs: function (its name)",
    "unsupported": "any other source op; attrs: source_op",
}


@dataclass
class WeightQuant:
    """Integer weights of a weighted node whose source already fixed them (QDQ, QONNX).

    ``ints`` has the shape of the float kernel; the float weight of output channel ``n`` is
    ``ints[..., n] * unit[n]`` (``unit`` has one value per output channel, or one for all). For
    a depthwise kernel ``(kh, kw, C, 1)`` the unit is per channel ``c`` (``ints[:, :, c, 0]``);
    the conversion needs it to be one value for the tensor.
    """

    bits: int
    ints: np.ndarray
    unit: np.ndarray


@dataclass
class ActivationQuant:
    """A quantized ReLU whose source already fixed its scale: outputs ``step * q`` with
    ``q`` in ``0 .. 2**bits - 1``. A signed ``b``-bit quantizer after a ReLU keeps only its
    non-negative levels: ``bits = b - 1``."""

    bits: int
    step: float


@dataclass
class Node:
    """One operation. ``inputs`` name the nodes it reads (the input node is named like any other).

    ``source`` says where the node came from, for messages: the source layer or node name and its
    type, e.g. ``"Conv2D 'conv_1'"`` or ``"ONNX Conv 'node_3'"``.
    """

    op: str
    name: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    #: Set on weighted nodes (conv, depthwise, dense; "pointwise_quant" for separable) read from an
    #: already-quantized source.
    weight_quant: WeightQuant | None = None
    #: Set on relu nodes read from an already-quantized source.
    activation_quant: ActivationQuant | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown graph op {self.op!r} for {self.source or self.name}")

    def label(self) -> str:
        """How messages name the node."""
        return self.source or f"{self.op} '{self.name}'"

    def copy(self) -> Node:
        return dataclasses.replace(
            self, inputs=list(self.inputs), attrs=dict(self.attrs), params=dict(self.params)
        )


@dataclass
class Graph:
    """Nodes in topological order; the first is the ``input`` node, ``output`` names the result."""

    nodes: list[Node]
    output: str
    #: The source format, for messages: "keras" or "onnx".
    source_format: str = ""
    #: The source model's name, for messages.
    name: str = ""

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("graph node names must be unique")
        if not self.nodes or self.nodes[0].op != "input":
            raise ValueError("the first graph node must be the input")

    @property
    def input(self) -> Node:
        return self.nodes[0]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        """The nodes that read ``name``."""
        return [n for n in self.nodes if name in n.inputs]

    def copy(self) -> Graph:
        return Graph([n.copy() for n in self.nodes], self.output, self.source_format, self.name)

    def remove(self, node: Node) -> None:
        """Removes a single-input node, rewiring its consumers (and the output) to its input."""
        if len(node.inputs) != 1:
            raise ValueError(f"cannot bypass {node.label()}: it has {len(node.inputs)} inputs")
        (source,) = node.inputs
        for consumer in self.consumers(node.name):
            consumer.inputs = [source if i == node.name else i for i in consumer.inputs]
        if self.output == node.name:
            self.output = source
        self.nodes.remove(node)

    def describe(self) -> str:
        """A line per node, for debugging and error messages."""
        return "\n".join(f"{n.name}: {n.op} <- {', '.join(n.inputs)}  [{n.label()}]" for n in self.nodes)

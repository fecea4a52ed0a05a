"""From a rewritten graph to a chain of Akida-shaped layers, or the list of reasons why not.

An Akida data-processing layer is one weighted operation (a convolution, a separable convolution
or a dense product) followed by an optional pooling and an optional quantized ReLU. This module
walks the graph after the passes, groups its nodes into such :class:`LayerSpec` objects and
collects a :class:`Problem` for every pattern that cannot be grouped. The compatibility check and
the converter both go through :func:`plan_layers`, so "supported" and "converts" cannot drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .graph import Graph, Node
from .numpy_ops import resolve_padding

WEIGHTED = ("conv", "separable", "dense")
POOLS = ("maxpool", "avgpool", "global_avgpool", "global_maxpool")


@dataclass
class Problem:
    """One reason a model does not convert: where, which rule, and what to change."""

    where: str
    rule: str
    change: str

    def __str__(self) -> str:
        change = f" {self.change[:1].upper()}{self.change[1:]}." if self.change else ""
        return f"{self.where}: {self.rule}.{change}"


@dataclass
class PoolSpec:
    """A pooling stage of a layer. ``size`` and ``strides`` are None for global pooling."""

    kind: str  # "max" or "avg"
    size: tuple[int, int] | None
    strides: tuple[int, int] | None
    node: Node


@dataclass
class LayerSpec:
    """One future Akida layer: a weighted node, then pooling and a ReLU in ``order``."""

    weighted: Node
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    #: "same" or "valid" (dense layers: "valid").
    padding: str = "valid"
    pool: PoolSpec | None = None
    relu: Node | None = None
    #: True when the ReLU comes before the (max) pooling in the source.
    relu_first: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.weighted.name

    @property
    def kind(self) -> str:
        return self.weighted.op


def conv_output(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def engine_pool_output(size: int, window: int, stride: int, mode: str) -> int:
    """The pooled size the engine computes: pooling follows the layer's convolution mode."""
    if mode == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def _normalized_padding(node: Node, h: int, w: int, kernel: tuple[int, int], strides: tuple[int, int]) -> str | None:
    """'same' or 'valid' when the node's padding is one of them (explicit pads included)."""
    padding = node.attrs.get("padding", "valid")
    if padding in ("same", "valid"):
        return padding
    pads = resolve_padding(padding, h, w, kernel, strides)
    if pads == (0, 0, 0, 0):
        return "valid"
    if pads == resolve_padding("same", h, w, kernel, strides):
        return "same"
    return None


class _Planner:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.problems: list[Problem] = []
        self.layers: list[LayerSpec] = []

    def problem(self, node: Node, rule: str, change: str) -> None:
        self.problems.append(Problem(node.label(), rule, change))

    def _report_merges(self, fallback: Node, consumers: list[Node]) -> None:
        merges = [n for n in self.graph.nodes if len(n.inputs) > 1]
        for merge in merges:
            kind = {"add": "a residual connection (Add)", "concat": "a Concatenate"}.get(merge.op, "a merge")
            self.problem(
                merge,
                f"{kind} joins several branches; the conversion takes serial feed-forward models only",
                "remove the branch, or convert the branches as separate models and join them with an "
                "Akida Concat layer after conversion",
            )
        if not merges:
            self.problem(
                fallback,
                f"its output feeds {len(consumers)} layers ({', '.join(c.label() for c in consumers)}); "
                "the conversion takes serial feed-forward models only",
                "keep one path from the input to the output",
            )

    def chain(self) -> list[Node] | None:
        """The nodes after the input as a serial chain, or None (with problems) for a branched graph."""
        graph = self.graph
        nodes = []
        current = graph.input
        while current.name != graph.output:
            consumers = graph.consumers(current.name)
            if len(consumers) != 1 or len(consumers[0].inputs) != 1:
                if not consumers:
                    break
                self._report_merges(current, consumers)
                return None
            current = consumers[0]
            nodes.append(current)
        return nodes

    def plan(self) -> None:
        shape = tuple(self.graph.input.attrs["shape"])
        if len(shape) != 3:
            self.problem(self.graph.input, f"input shape {shape} is not (height, width, channels)", "")
            return
        if "rescale_problem" in self.graph.input.attrs:
            self.problem(self.graph.input, self.graph.input.attrs["rescale_problem"], "")
        nodes = self.chain()
        if nodes is None:
            return
        rescales = [n for n in nodes if n.op == "rescale"]
        for r in rescales:
            self.problem(
                r,
                "a rescaling that is per channel, not positive, or not at the start of the model",
                "use one positive scalar rescaling right after the input (Rescaling(scale, offset)), or fold a "
                "per-channel normalization into your data pipeline",
            )
        current: LayerSpec | None = None
        flattened = False
        h, w, c = shape
        stage = "start"  # "start", "weighted", "pooled", "activated"
        for node in nodes:
            op = node.op
            if op == "rescale":
                continue
            if op in ("flatten", "reshape"):
                target = node.attrs.get("shape")
                if op == "reshape" and target is not None and not (
                    len(target) == 1 or (len(target) == 3 and target[0] == 1 and target[1] == 1)
                ):
                    self.problem(
                        node,
                        f"a Reshape to {tuple(target)} only a flattening can be converted",
                        "reshape to a flat vector (or Flatten) right before a Dense layer",
                    )
                flattened = True
                continue
            if op in WEIGHTED:
                if current is not None and current.relu is None:
                    self.problem(
                        current.weighted,
                        "a hidden layer must end with a ReLU; this one feeds the next layer without an activation",
                        "add a ReLU (or ReLU with max_value) after it",
                    )
                if flattened and op != "dense":
                    self.problem(node, "a convolution after a Flatten or Reshape", "keep convolutions before the Flatten")
                current = self._weighted(node, (h, w, c))
                if current is None:
                    return
                self.layers.append(current)
                h, w, c = current.output_shape
                flattened = False
                stage = "weighted"
                continue
            if op == "depthwise":
                self.problem(
                    node,
                    "a depthwise convolution that is not followed directly by a 1 x 1 convolution",
                    "use SeparableConv2D, or follow the DepthwiseConv2D with a 1 x 1 Conv2D",
                )
                return
            if current is None:
                self.problem(
                    node,
                    f"a {self._describe(node)} before the first convolution or dense layer",
                    "start the model with a Conv2D, SeparableConv2D or Dense layer (after an optional Rescaling)",
                )
                continue
            if op in POOLS:
                if current.kind == "dense":
                    self.problem(node, "pooling after a Dense layer", "pool before the Dense layer")
                    continue
                if current.pool is not None:
                    self.problem(node, "a second pooling in one layer", "pool once between two convolutions")
                    continue
                if stage == "activated" and op in ("avgpool", "global_avgpool"):
                    self.problem(
                        node,
                        "average pooling after the ReLU: Akida averages the potentials before the activation",
                        "place the pooling between the convolution and its BatchNormalization/ReLU",
                    )
                    h, w, c = self._source_pool_shape(node, (h, w, c))
                    continue
                pool = self._pool(node, current)
                if pool is not None:
                    current.pool = pool
                    current.relu_first = stage == "activated"
                    h, w, c = current.output_shape
                stage = "activated" if stage == "activated" else "pooled"
                continue
            if op == "relu":
                if current.relu is not None:
                    self.problem(node, "a second activation in one layer", "keep one ReLU per layer")
                    continue
                slope = node.attrs.get("negative_slope", 0.0) or 0.0
                threshold = node.attrs.get("threshold", 0.0) or 0.0
                if slope != 0.0 or threshold != 0.0:
                    self.problem(
                        node,
                        f"a ReLU with negative_slope {slope} and threshold {threshold}; Akida activations are "
                        "plain (clipped) ReLUs",
                        "use ReLU() or ReLU(max_value=...)",
                    )
                current.relu = node
                stage = "activated"
                continue
            if op == "batchnorm":
                self.problem(node, *self._batchnorm_reason(node))
                continue
            if op in ("add", "concat"):
                continue  # reported by chain()
            if op == "softmax":
                self.problem(node, "a softmax inside the model", "keep a softmax only at the very end")
                continue
            if op == "activation":
                self.problem(
                    node,
                    f"the activation '{node.attrs.get('function')}' has no Akida equivalent",
                    "use ReLU (Akida quantizes ReLU and clipped ReLU only)",
                )
                continue
            self.problem(
                node,
                f"the operation '{node.attrs.get('source_op', op)}' is not supported",
                "supported: Conv2D, SeparableConv2D, DepthwiseConv2D + 1x1 Conv2D, Dense/Gemm/MatMul, ReLU, "
                "BatchNormalization, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Reshape, "
                "Dropout and a final Softmax",
            )
            return
        if not self.layers and not self.problems:
            self.problem(self.graph.input, "the model has no convolution or dense layer", "")

    def _describe(self, node: Node) -> str:
        return {"relu": "ReLU", "batchnorm": "BatchNormalization"}.get(node.op, node.op)

    def _batchnorm_reason(self, node: Node) -> tuple[str, str]:
        source = self.graph.node(node.inputs[0])
        if source.op in ("maxpool", "global_maxpool"):
            gamma = node.params["gamma"]
            negative = int((gamma <= 0).sum())
            return (
                f"a BatchNormalization after a MaxPooling with {negative} gamma(s) <= 0: it can only move "
                "before the pooling when every gamma is positive",
                "place the BatchNormalization before the MaxPooling, or constrain gamma to be positive",
            )
        if source.op == "relu":
            return (
                "a BatchNormalization after the ReLU cannot be folded into a convolution",
                "place the BatchNormalization between the convolution and the ReLU",
            )
        if source.weight_quant is not None:
            return (
                "a BatchNormalization after weights the source already quantized",
                "fold the BatchNormalization before quantizing the weights",
            )
        return (
            "a BatchNormalization that does not follow a convolution or dense layer",
            "place it right after a Conv2D, SeparableConv2D or Dense layer",
        )

    def _weighted(self, node: Node, shape: tuple[int, int, int]) -> LayerSpec | None:
        h, w, c = shape
        if node.op == "dense":
            kernel = node.params["kernel"]
            if kernel.shape[0] != h * w * c:
                self.problem(node, f"a Dense layer with {kernel.shape[0]} inputs on a {shape} tensor", "")
                return None
            return LayerSpec(node, shape, (1, 1, kernel.shape[1]))
        if tuple(node.attrs.get("dilations", (1, 1))) != (1, 1):
            self.problem(node, f"dilation {tuple(node.attrs['dilations'])}", "use dilation 1")
        kernel = node.params["depthwise" if node.op == "separable" else "kernel"]
        kh, kw = kernel.shape[:2]
        sy, sx = node.attrs.get("strides", (1, 1))
        padding = _normalized_padding(node, h, w, (kh, kw), (sy, sx))
        if padding is None:
            pads = resolve_padding(node.attrs["padding"], h, w, (kh, kw), (sy, sx))
            self.problem(
                node,
                f"padding (top, bottom, left, right) = {pads} is neither 'same' nor 'valid'",
                "use padding='same' or 'valid'",
            )
            return None
        if kernel.shape[2] != c:
            self.problem(node, f"a kernel for {kernel.shape[2]} channels on {c} channels", "")
            return None
        if padding == "valid" and (h < kh or w < kw):
            self.problem(node, f"a {kh} x {kw} kernel on a {h} x {w} map with 'valid' padding", "")
            return None
        n = node.params["pointwise"].shape[-1] if node.op == "separable" else kernel.shape[-1]
        out = (conv_output(h, kh, sy, padding), conv_output(w, kw, sx, padding), n)
        return LayerSpec(node, shape, out, padding=padding)

    def _source_pool_shape(self, node: Node, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The map a pooling gives in the source, to keep checking the layers after a refused one."""
        h, w, c = shape
        if node.op in ("global_avgpool", "global_maxpool"):
            return (1, 1, c)
        ph, pw = node.attrs["pool"]
        sy, sx = node.attrs.get("strides") or (ph, pw)
        padding = _normalized_padding(node, h, w, (ph, pw), (sy, sx)) or "valid"
        return (conv_output(h, ph, sy, padding), conv_output(w, pw, sx, padding), c)

    def _pool(self, node: Node, layer: LayerSpec) -> PoolSpec | None:
        h, w, c = layer.output_shape
        if node.op in ("global_avgpool", "global_maxpool"):
            layer.output_shape = (1, 1, c)
            return PoolSpec("avg" if node.op == "global_avgpool" else "max", None, None, node)
        ph, pw = node.attrs["pool"]
        sy, sx = node.attrs.get("strides") or (ph, pw)
        padding = _normalized_padding(node, h, w, (ph, pw), (sy, sx))
        kind = "max" if node.op == "maxpool" else "avg"
        if padding is None:
            pads = resolve_padding(node.attrs["padding"], h, w, (ph, pw), (sy, sx))
            self.problem(node, f"pooling pads {pads} are neither 'same' nor 'valid'", "use padding='same' or 'valid'")
            return None
        if kind == "avg" and padding == "same" and node.attrs.get("count_include_pad", False):
            if resolve_padding("same", h, w, (ph, pw), (sy, sx)) != (0, 0, 0, 0):
                self.problem(
                    node,
                    "average pooling that counts padded cells; Akida averages the cells inside the map",
                    "use count_include_pad=0 (Keras' behaviour) or 'valid' padding",
                )
        wanted = (conv_output(h, ph, sy, padding), conv_output(w, pw, sx, padding))
        engine = (engine_pool_output(h, ph, sy, layer.padding), engine_pool_output(w, pw, sx, layer.padding))
        same_placement = (
            resolve_padding(padding, h, w, (ph, pw), (sy, sx))
            == resolve_padding(layer.padding, h, w, (ph, pw), (sy, sx))
        )
        if wanted != engine or not same_placement:
            self.problem(
                node,
                f"'{padding}' pooling on the {h} x {w} output of a '{layer.padding}' convolution gives "
                f"{wanted[0]} x {wanted[1]}; Akida pools with the padding of its convolution "
                f"({engine[0]} x {engine[1]})",
                f"use padding='{layer.padding}' on the pooling (or a map size that the pooling stride divides)",
            )
            layer.output_shape = (wanted[0], wanted[1], c)
            return None
        layer.output_shape = (wanted[0], wanted[1], c)
        return PoolSpec(kind, (ph, pw), (sy, sx), node)


def plan_layers(graph: Graph) -> tuple[list[LayerSpec], list[Problem]]:
    """Groups a rewritten graph into Akida-shaped layers; the problems explain what does not fit."""
    planner = _Planner(graph)
    planner.plan()
    return planner.layers, planner.problems

"""Graph rewrites, each a small named pass, applied in the fixed order of :data:`PASSES`.

Every pass takes a :class:`~.graph.Graph`, changes it in place, and returns notes for the user
(what it removed or rewrote). A pass never refuses a graph: patterns it cannot rewrite stay as
they are, and the compatibility check (:mod:`.layers`) explains them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .graph import Graph, Node


def drop_identities(graph: Graph) -> list[str]:
    """Removes no-op nodes (Dropout, Identity, no-op casts)."""
    notes = []
    for node in [n for n in graph.nodes if n.op == "identity"]:
        graph.remove(node)
        notes.append(f"{node.label()}: removed (no effect at inference)")
    return notes


def drop_final_softmax(graph: Graph) -> list[str]:
    """Removes a softmax that produces the graph output: it keeps the order of the scores, so the
    predicted class is unchanged, and the converted model outputs the scores before it."""
    node = graph.node(graph.output)
    if node.op == "softmax" and len(node.inputs) == 1:
        graph.remove(node)
        return [f"{node.label()}: the final softmax was removed; outputs are the scores before it"]
    return []


def absorb_input_rescale(graph: Graph) -> list[str]:
    """Moves scalar rescalings at the very start of the graph (a Keras ``Rescaling`` layer, an
    ONNX ``Mul``/``Add`` on the input) into ``graph.input.attrs['rescale'] = (scale, offset)``:
    the first layer then sees ``scale * input + offset``."""
    notes = []
    scale, offset = 1.0, 0.0
    while True:
        consumers = graph.consumers(graph.input.name)
        if len(consumers) != 1 or consumers[0].op != "rescale":
            break
        node = consumers[0]
        s = np.asarray(node.attrs["scale"], dtype=np.float64)
        o = np.asarray(node.attrs["offset"], dtype=np.float64)
        if s.size > 1 and np.ptp(s) > 0 or o.size > 1 and np.ptp(o) > 0 or float(s.ravel()[0]) <= 0:
            break  # per-channel or non-positive: left for the compatibility check to explain
        s_value, o_value = float(s.ravel()[0]), float(o.ravel()[0])
        scale, offset = scale * s_value, offset * s_value + o_value
        graph.remove(node)
        notes.append(f"{node.label()}: absorbed into the input scaling")
    if notes:
        previous = graph.input.attrs.get("rescale", (1.0, 0.0))
        graph.input.attrs["rescale"] = (previous[0] * scale, previous[1] * scale + offset)
    return notes


WEIGHTED = ("conv", "depthwise", "separable", "dense")


def _scale_output_channels(node: Node, factor: np.ndarray, shift: np.ndarray) -> None:
    """Replaces the node's output ``y`` by ``factor * y + shift`` (per output channel)."""
    key = {"separable": "pointwise"}.get(node.op, "kernel")
    kernel = node.params[key]
    if node.op == "depthwise":
        node.params[key] = kernel * factor[None, None, :, None]
    else:
        node.params[key] = kernel * factor
    bias = node.params.get("bias")
    node.params["bias"] = (factor * bias if bias is not None else 0.0) + shift


def fold_batchnorm(graph: Graph) -> list[str]:
    """Folds a BatchNormalization into the weighted node before it.

    With ``a = gamma / sqrt(var + eps)``, BN(z) = ``a * z + (beta - a * mean)`` per channel, so the
    kernel's output channel ``n`` is multiplied by ``a[n]`` and the bias becomes
    ``a * bias + beta - a * mean``. The BN may follow the weighted node directly, or through an
    average or global pooling (linear, so it commutes), or through a max pooling when every gamma
    is positive (a positive scale commutes with max; with a negative gamma it does not, and the BN
    stays where it is for the compatibility check to report).
    """
    notes = []
    for bn in [n for n in graph.nodes if n.op == "batchnorm"]:
        (source_name,) = bn.inputs
        source = graph.node(source_name)
        between = None
        if source.op in ("maxpool", "global_maxpool", "avgpool", "global_avgpool"):
            between, source = source, graph.node(source.inputs[0])
        if source.op not in WEIGHTED or len(graph.consumers(source.name)) != 1:
            continue
        if source.weight_quant is not None:
            continue  # integer weights fixed by the source cannot absorb a scale exactly
        if between is not None and len(graph.consumers(between.name)) != 1:
            continue
        gamma = bn.params["gamma"].astype(np.float64)
        if between is not None and between.op in ("maxpool", "global_maxpool") and not np.all(gamma > 0):
            continue
        a = gamma / np.sqrt(bn.params["var"].astype(np.float64) + bn.attrs.get("epsilon", 1e-3))
        shift = bn.params["beta"].astype(np.float64) - a * bn.params["mean"].astype(np.float64)
        _scale_output_channels(source, a, shift)
        graph.remove(bn)
        where = f" (moved before {between.label()})" if between is not None else ""
        notes.append(f"{bn.label()}: folded into {source.label()}{where}")
    return notes


def merge_separable(graph: Graph) -> list[str]:
    """Merges a depthwise convolution followed directly by a 1 x 1, stride-1 convolution into one
    ``separable`` node. A depthwise bias moves through the pointwise weights into the bias:
    ``bias[n] += sum_c pointwise[c, n] * depthwise_bias[c]``."""
    notes = []
    for dw in [n for n in graph.nodes if n.op == "depthwise"]:
        consumers = graph.consumers(dw.name)
        if len(consumers) != 1 or consumers[0].op != "conv":
            continue
        pw = consumers[0]
        kernel = pw.params["kernel"]
        if kernel.shape[:2] != (1, 1) or tuple(pw.attrs.get("strides", (1, 1))) != (1, 1):
            continue
        if tuple(dw.attrs.get("dilations", (1, 1))) != (1, 1):
            continue
        bias = pw.params.get("bias")
        bias = np.zeros(kernel.shape[-1]) if bias is None else bias.astype(np.float64)
        if dw.params.get("bias") is not None:
            bias = bias + dw.params["bias"].astype(np.float64) @ kernel[0, 0].astype(np.float64)
        merged = Node(
            "separable",
            pw.name,
            inputs=list(dw.inputs),
            attrs={"strides": dw.attrs["strides"], "padding": dw.attrs["padding"]},
            params={"depthwise": dw.params["kernel"], "pointwise": kernel, "bias": bias},
            source=f"{dw.label()} + {pw.label()}",
        )
        if "weight_bits" in pw.attrs:
            merged.attrs["weight_bits"] = pw.attrs["weight_bits"]
        merged.weight_quant = pw.weight_quant
        if dw.weight_quant is not None:
            merged.attrs["depthwise_quant"] = dw.weight_quant
        index = graph.nodes.index(dw)
        graph.nodes.remove(pw)
        graph.nodes[index] = merged
        notes.append(f"{dw.label()} and {pw.label()}: merged into one separable convolution")
    return notes


#: The passes, in the order they run.
PASSES: list[Callable[[Graph], list[str]]] = [
    drop_identities,
    drop_final_softmax,
    absorb_input_rescale,
    fold_batchnorm,
    merge_separable,
]


def run_passes(graph: Graph) -> tuple[Graph, list[str]]:
    """A rewritten copy of ``graph`` and the notes of every pass."""
    graph = graph.copy()
    notes: list[str] = []
    for rewrite in PASSES:
        notes.extend(rewrite(graph))
    return graph, notes

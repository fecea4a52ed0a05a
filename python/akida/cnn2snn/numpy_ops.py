"""A plain float64 numpy executor of the intermediate graph, and the tensor operations it uses.

It serves three purposes: calibrating activation ranges on sample data, the fake-quantized
``predict`` of :class:`~akida.cnn2snn.QuantizedModel`, and checking readers against their source
runtime in tests. Clarity first: every operation is the textbook formula on channels-last arrays.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .graph import Graph, Node


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis: ``ceil(size / stride)`` outputs, the smaller half
    of the total padding before."""
    out = math.ceil(size / stride)
    extent = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: Any, height: int, width: int, kernel: tuple[int, int], strides: tuple[int, int],
    dilations: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` for a padding spec of the graph."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = same_padding(height, kernel[0], strides[0], dilations[0])
        left, right = same_padding(width, kernel[1], strides[1], dilations[1])
        return (top, bottom, left, right)
    if isinstance(padding, tuple) and len(padding) == 2 and padding[0] == "explicit":
        top, bottom, left, right = padding[1]
        return (int(top), int(bottom), int(left), int(right))
    raise ValueError(f"unknown padding {padding!r}")


def _windows(
    x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], pads: tuple[int, int, int, int],
    fill: float, dilations: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Windows of ``x`` (N, H, W, C) as (N, OH, OW, C, kh, kw), padded with ``fill``."""
    top, bottom, left, right = pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    dy, dx = dilations
    extent = ((kernel[0] - 1) * dy + 1, (kernel[1] - 1) * dx + 1)
    win = sliding_window_view(padded, extent, axis=(1, 2))
    win = win[:, :: strides[0], :: strides[1], :, ::dy, ::dx]
    return win


def conv2d(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int], padding: Any,
    dilations: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Cross-correlation of ``x`` (N, H, W, Cin) with ``kernel`` (kh, kw, Cin, Cout)."""
    kh, kw, _, _ = kernel.shape
    pads = resolve_padding(padding, x.shape[1], x.shape[2], (kh, kw), strides, dilations)
    win = _windows(x, (kh, kw), strides, pads, 0.0, dilations)  # N, OH, OW, C, kh, kw
    out = np.einsum("nhwcij,ijco->nhwo", win, kernel, optimize=True)
    return out + bias if bias is not None else out


def depthwise2d(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: tuple[int, int], padding: Any,
    dilations: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Depthwise cross-correlation: channel ``c`` of ``x`` with ``kernel[:, :, c, 0]``."""
    kh, kw = kernel.shape[:2]
    pads = resolve_padding(padding, x.shape[1], x.shape[2], (kh, kw), strides, dilations)
    win = _windows(x, (kh, kw), strides, pads, 0.0, dilations)
    out = np.einsum("nhwcij,ijc->nhwc", win, kernel[:, :, :, 0], optimize=True)
    return out + bias if bias is not None else out


def pool2d(
    x: np.ndarray, kind: str, pool: tuple[int, int], strides: tuple[int, int], padding: Any,
    count_include_pad: bool = False,
) -> np.ndarray:
    """Max or average pooling; padded cells are ignored (unless ``count_include_pad`` for average,
    where they count as zeros)."""
    pads = resolve_padding(padding, x.shape[1], x.shape[2], pool, strides)
    if kind == "max":
        return _windows(x, pool, strides, pads, -np.inf).max(axis=(-2, -1))
    sums = _windows(x, pool, strides, pads, 0.0).sum(axis=(-2, -1))
    if count_include_pad:
        return sums / (pool[0] * pool[1])
    ones = np.ones((1,) + x.shape[1:3] + (1,))
    counts = _windows(ones, pool, strides, pads, 0.0).sum(axis=(-2, -1))
    return sums / counts


def batchnorm(x: np.ndarray, node: Node) -> np.ndarray:
    p = node.params
    return (x - p["mean"]) / np.sqrt(p["var"] + node.attrs.get("epsilon", 1e-3)) * p["gamma"] + p["beta"]


def relu(x: np.ndarray, node: Node) -> np.ndarray:
    slope = node.attrs.get("negative_slope", 0.0) or 0.0
    threshold = node.attrs.get("threshold", 0.0) or 0.0
    y = np.where(x >= threshold, x, slope * (x - threshold))
    max_value = node.attrs.get("max_value")
    return np.minimum(y, max_value) if max_value is not None else y


def _reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    return x.reshape((x.shape[0],) + tuple(shape))


def run_node(node: Node, args: list[np.ndarray]) -> np.ndarray:
    """The float output of one node for its inputs' values."""
    a = node.attrs
    p = node.params
    x = args[0] if args else None
    match node.op:
        case "rescale":
            return x * np.asarray(a["scale"]) + np.asarray(a["offset"])
        case "conv":
            return conv2d(x, p["kernel"], p.get("bias"), a["strides"], a["padding"], a.get("dilations", (1, 1)))
        case "depthwise":
            return depthwise2d(x, p["kernel"], p.get("bias"), a["strides"], a["padding"], a.get("dilations", (1, 1)))
        case "separable":
            d = depthwise2d(x, p["depthwise"], None, a["strides"], a["padding"])
            return conv2d(d, p["pointwise"], p.get("bias"), (1, 1), "valid")
        case "dense":
            flat = x.reshape(x.shape[0], -1) @ p["kernel"]
            out = flat + p["bias"] if "bias" in p else flat
            return out if x.ndim == 2 else out.reshape(x.shape[0], 1, 1, -1)
        case "batchnorm":
            return batchnorm(x, node)
        case "relu":
            return relu(x, node)
        case "maxpool":
            return pool2d(x, "max", a["pool"], a["strides"], a["padding"])
        case "avgpool":
            return pool2d(x, "avg", a["pool"], a["strides"], a["padding"], a.get("count_include_pad", False))
        case "global_avgpool":
            return x.mean(axis=(1, 2), keepdims=True)
        case "global_maxpool":
            return x.max(axis=(1, 2), keepdims=True)
        case "flatten":
            return x.reshape(x.shape[0], -1)
        case "reshape":
            return _reshape(x, a["shape"])
        case "identity":
            return x
        case "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        case "add":
            return sum(args[1:], args[0])
        case "concat":
            return np.concatenate(args, axis=-1)
        case _:
            raise ValueError(f"{node.label()}: the numpy executor cannot run op '{node.op}'")


def run_graph(graph: Graph, x: np.ndarray, outputs: list[str] | None = None) -> Any:
    """Runs ``graph`` on ``x`` (N, H, W, C) in float64.

    Returns the output node's value, or, when ``outputs`` lists node names, a dict of their values.
    """
    values: dict[str, np.ndarray] = {graph.input.name: np.asarray(x, dtype=np.float64)}
    wanted = set(outputs or [graph.output])
    for node in graph.nodes[1:]:
        values[node.name] = run_node(node, [values[i] for i in node.inputs])
    if outputs is None:
        return values[graph.output]
    missing = wanted - values.keys()
    if missing:
        raise KeyError(f"no graph nodes named {sorted(missing)}")
    return {name: values[name] for name in outputs}

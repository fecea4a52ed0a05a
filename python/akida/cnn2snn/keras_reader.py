"""Reads a Keras 3 model (any backend) into the intermediate graph.

One handler per Keras layer class, in :data:`HANDLERS`; a class without a handler becomes an
``unsupported`` node that the compatibility check reports. The reader only translates: it never
folds, merges or checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .graph import Graph, Node


def _keras() -> Any:
    try:
        import keras
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "akida.cnn2snn needs the 'keras' extra to read Keras models: pip install openakida[keras]"
        ) from e
    return keras


def load_keras(model: Any) -> Any:
    """A Keras model from a model object or a ``.keras`` file path."""
    keras = _keras()
    if isinstance(model, (str, Path)):
        from . import keras_layers  # noqa: F401  (registers the quantized layers for loading)

        return keras.saving.load_model(str(model), compile=False)
    return model


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _array(value: Any) -> np.ndarray:
    return np.asarray(_keras().ops.convert_to_numpy(value), dtype=np.float64)


def _activation_nodes(layer: Any, node: Node) -> list[Node]:
    """A weighted layer's built-in ``activation=`` as a separate node after it."""
    function = getattr(layer, "activation", None)
    name = getattr(function, "__name__", "linear")
    if name == "linear":
        return [node]
    if name == "relu":
        return [node, Node("relu", f"{layer.name}__relu", [node.name], {"max_value": None}, source=f"{node.source} activation")]
    if name == "softmax":
        return [node, Node("softmax", f"{layer.name}__softmax", [node.name], source=f"{node.source} activation")]
    return [node, Node("activation", f"{layer.name}__{name}", [node.name], {"function": name}, source=f"{node.source} activation")]


def _spatial(layer: Any, source: str, inputs: list[str], op: str, kernels: dict[str, Any], refusal: str | None) -> list[Node]:
    """A convolution-like layer: its kernels, bias and geometry, or an ``unsupported`` node when it
    is channels-first or ``refusal`` (a description of an unsupported option) is given."""
    refused = _channels_first(layer, source, inputs)
    if refused:
        return refused
    if refusal:
        return [Node("unsupported", layer.name, inputs, {"source_op": refusal}, source=source)]
    params = {key: _array(value) for key, value in kernels.items()}
    if layer.use_bias:
        params["bias"] = _array(layer.bias)
    attrs = {"strides": _pair(layer.strides), "padding": layer.padding, "dilations": _pair(layer.dilation_rate)}
    if hasattr(layer, "weight_bits"):
        attrs["weight_bits"] = layer.weight_bits
    return _activation_nodes(layer, Node(op, layer.name, inputs, attrs, params, source))


def _conv(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    groups = getattr(layer, "groups", 1)
    refusal = f"{type(layer).__name__} with groups={groups}" if groups != 1 else None
    return _spatial(layer, source, inputs, "conv", {"kernel": layer.kernel}, refusal)


def _separable(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    m = layer.depth_multiplier
    refusal = f"SeparableConv2D with depth_multiplier={m}" if m != 1 else None
    kernels = {"depthwise": layer.depthwise_kernel, "pointwise": layer.pointwise_kernel}
    return _spatial(layer, source, inputs, "separable", kernels, refusal)


def _depthwise(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    m = layer.depth_multiplier
    refusal = f"DepthwiseConv2D with depth_multiplier={m}" if m != 1 else None
    return _spatial(layer, source, inputs, "depthwise", {"kernel": layer.kernel}, refusal)


def _dense(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    params = {"kernel": _array(layer.kernel)}
    if layer.use_bias:
        params["bias"] = _array(layer.bias)
    attrs = {"weight_bits": layer.weight_bits} if hasattr(layer, "weight_bits") else {}
    return _activation_nodes(layer, Node("dense", layer.name, inputs, attrs, params, source))


def _batchnorm(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis not in (-1, 3, 1) or (axis == 1 and len(layer.input.shape) != 2):
        return [Node("unsupported", layer.name, inputs, {"source_op": f"BatchNormalization on axis {layer.axis}"}, source=source)]
    channels = int(layer.moving_mean.shape[0])
    gamma = _array(layer.gamma) if layer.scale else np.ones(channels)
    beta = _array(layer.beta) if layer.center else np.zeros(channels)
    params = {"gamma": gamma, "beta": beta, "mean": _array(layer.moving_mean), "var": _array(layer.moving_variance)}
    return [Node("batchnorm", layer.name, inputs, {"epsilon": float(layer.epsilon)}, params, source)]


def _relu(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    def value(v: Any) -> float | None:
        return None if v is None else float(_array(v))

    attrs = {
        "max_value": value(layer.max_value),
        "negative_slope": value(layer.negative_slope) or 0.0,
        "threshold": value(layer.threshold) or 0.0,
    }
    return [Node("relu", layer.name, inputs, attrs, source=source)]


def _quantized_relu(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    attrs = {"max_value": layer.max_value, "activation_bits": layer.bits}
    if layer.bits:
        attrs["activation_max"] = layer.max_value
    return [Node("relu", layer.name, inputs, attrs, source=source)]


def _activation(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name == "relu":
        return [Node("relu", layer.name, inputs, {"max_value": None}, source=source)]
    if name == "softmax":
        return [Node("softmax", layer.name, inputs, source=source)]
    if name == "linear":
        return [Node("identity", layer.name, inputs, source=source)]
    return [Node("activation", layer.name, inputs, {"function": name}, source=source)]


def _channels_first(layer: Any, source: str, inputs: list[str]) -> list[Node] | None:
    """An ``unsupported`` node for a channels-first layer, else None."""
    if getattr(layer, "data_format", "channels_last") == "channels_last":
        return None
    refusal = f"{type(layer).__name__} with data_format='channels_first'"
    return [Node("unsupported", layer.name, inputs, {"source_op": refusal}, source=source)]


def _pool(op: str) -> Callable[[Any, str, list[str]], list[Node]]:
    def handler(layer: Any, source: str, inputs: list[str]) -> list[Node]:
        refused = _channels_first(layer, source, inputs)
        if refused:
            return refused
        attrs = {"pool": _pair(layer.pool_size), "strides": _pair(layer.strides or layer.pool_size), "padding": layer.padding}
        return [Node(op, layer.name, inputs, attrs, source=source)]

    return handler


def _global_pool(op: str) -> Callable[[Any, str, list[str]], list[Node]]:
    def handler(layer: Any, source: str, inputs: list[str]) -> list[Node]:
        refused = _channels_first(layer, source, inputs)
        if refused:
            return refused
        nodes = [Node(op, layer.name, inputs, source=source)]
        if not getattr(layer, "keepdims", False):
            nodes.append(Node("flatten", f"{layer.name}__squeeze", [layer.name], source=source))
        return nodes

    return handler


def _rescaling(layer: Any, source: str, inputs: list[str]) -> list[Node]:
    attrs = {"scale": np.asarray(layer.scale, dtype=np.float64), "offset": np.asarray(layer.offset, dtype=np.float64)}
    return [Node("rescale", layer.name, inputs, attrs, source=source)]


def _simple(op: str) -> Callable[[Any, str, list[str]], list[Node]]:
    def handler(layer: Any, source: str, inputs: list[str]) -> list[Node]:
        attrs = {"shape": tuple(int(v) for v in layer.target_shape)} if op == "reshape" else {}
        return [Node(op, layer.name, inputs, attrs, source=source)]

    return handler


#: Keras layer class name -> handler. This table is the list of what the reader supports.
HANDLERS: dict[str, Callable[[Any, str, list[str]], list[Node]]] = {
    "Conv2D": _conv,
    "QuantizedConv2D": _conv,
    "SeparableConv2D": _separable,
    "QuantizedSeparableConv2D": _separable,
    "DepthwiseConv2D": _depthwise,
    "Dense": _dense,
    "QuantizedDense": _dense,
    "BatchNormalization": _batchnorm,
    "ReLU": _relu,
    "QuantizedReLU": _quantized_relu,
    "Activation": _activation,
    "MaxPooling2D": _pool("maxpool"),
    "AveragePooling2D": _pool("avgpool"),
    "GlobalAveragePooling2D": _global_pool("global_avgpool"),
    "GlobalMaxPooling2D": _global_pool("global_maxpool"),
    "Flatten": _simple("flatten"),
    "Reshape": _simple("reshape"),
    "Dropout": _simple("identity"),
    "SpatialDropout2D": _simple("identity"),
    "Softmax": _simple("softmax"),
    "Rescaling": _rescaling,
    "Add": _simple("add"),
    "Concatenate": _simple("concat"),
}


def _inbound_names(layer: Any) -> list[str]:
    tensors = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history.operation.name for t in tensors]


def read_keras(model: Any) -> Graph:
    """The intermediate graph of a Keras model (a model object or a ``.keras`` path).

    Sequential and functional models with one 4-D ``(H, W, C)`` or 2-D ``(F,)`` input are read;
    a 2-D input becomes the graph input ``(1, 1, F)`` with ``attrs['flat'] = True``.
    """
    keras = _keras()
    model = load_keras(model)
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model or a .keras file, got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"the Keras model {model.name!r} must have one input and one output")
    input_tensor = model.inputs[0]
    shape = tuple(input_tensor.shape[1:])
    if any(v is None for v in shape) or len(shape) not in (1, 3):
        raise ValueError(f"the Keras model {model.name!r} needs a fixed input shape (H, W, C) or (F,), got {shape}")
    input_name = input_tensor._keras_history.operation.name
    attrs: dict[str, Any] = {"shape": (1, 1, int(shape[0])) if len(shape) == 1 else tuple(int(v) for v in shape)}
    if len(shape) == 1:
        attrs["flat"] = True
    nodes = [Node("input", input_name, [], attrs, source=f"input '{input_name}'")]
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        source = f"{kind} '{layer.name}'"
        handler = HANDLERS.get(kind)
        inputs = _inbound_names(layer)
        if handler is None:
            nodes.append(Node("unsupported", layer.name, inputs, {"source_op": kind}, source=source))
            continue
        produced = handler(layer, source, inputs)
        # Consumers name the Keras layer; the last node of its expansion carries that name.
        if len(produced) > 1:
            last = produced[-1]
            first_name = f"{layer.name}__op"
            produced[0].name = first_name
            for n in produced[1:]:
                n.inputs = [first_name if i == layer.name else i for i in n.inputs]
            last.name = layer.name
        nodes.extend(produced)
    output = model.outputs[0]._keras_history.operation.name
    return Graph(nodes, output, "keras", model.name)

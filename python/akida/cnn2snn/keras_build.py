"""Builds the Keras model of quantized layers that :func:`~akida.cnn2snn.quantize` returns for a
Keras source: the layers of a :class:`~.quantized.QuantizedModel` (BatchNorms folded) with their
float weights, ready for quantization-aware fine-tuning."""

from __future__ import annotations

from typing import Any

import numpy as np

from .quantized import QuantizedLayer, QuantizedModel


def _pool_layer(keras: Any, layer: QuantizedLayer) -> Any:
    assert layer.pool is not None
    kind, size, strides = layer.pool
    name = f"{layer.name}_pool"
    if size is None:
        cls = keras.layers.GlobalMaxPooling2D if kind == "max" else keras.layers.GlobalAveragePooling2D
        return cls(keepdims=True, name=name)
    cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    return cls(pool_size=size, strides=strides or size, padding=layer.padding, name=name)


def _relu_layer(layer: QuantizedLayer) -> Any:
    from .keras_layers import QuantizedReLU

    bits = layer.activation_bits or 0
    max_value = layer.relu_max if bits == 0 else layer.activation_step * (2**bits - 1)
    return QuantizedReLU(bits=bits, max_value=max_value, name=f"{layer.name}_relu")


def build_keras_model(qmodel: QuantizedModel) -> Any:
    import keras

    from .keras_layers import QuantizedConv2D, QuantizedDense, QuantizedSeparableConv2D

    if qmodel.flat_input:
        inputs = keras.Input((qmodel.input_shape[2],), name="input")
    else:
        inputs = keras.Input(tuple(qmodel.input_shape), name="input")
    x = inputs
    scale, offset = qmodel.input_rescale
    if (scale, offset) != (1.0, 0.0):
        x = keras.layers.Rescaling(scale, offset, name="input_rescaling")(x)
    for layer in qmodel.layers:
        bits = layer.weights.bits
        snap = {}
        if layer.activation_bits:
            snap = {
                "input_unit": layer.input_unit,
                "activation_step": layer.activation_step,
                "activation_bits": layer.activation_bits,
            }
        if layer.kind == "dense":
            if len(x.shape) > 2:
                x = keras.layers.Flatten(name=f"{layer.name}_flatten")(x)
            keras_layer = QuantizedDense(layer.num_neurons, weight_bits=bits, name=layer.name, **snap)
            weights = [layer.weights.float_kernel, layer.bias]
        elif layer.kind == "conv":
            kernel = layer.weights.float_kernel
            keras_layer = QuantizedConv2D(
                layer.num_neurons, kernel.shape[:2], strides=layer.strides, padding=layer.padding,
                weight_bits=bits, name=layer.name, **snap,
            )
            weights = [kernel, layer.bias]
        else:
            assert layer.depthwise is not None
            depthwise = layer.depthwise.float_kernel
            keras_layer = QuantizedSeparableConv2D(
                layer.num_neurons, depthwise.shape[:2], strides=layer.strides, padding=layer.padding,
                weight_bits=bits, name=layer.name, **snap,
            )
            weights = [depthwise, layer.weights.float_kernel, layer.bias]
        x = keras_layer(x)
        keras_layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        stages = []
        if layer.pool is not None:
            stages.append(_pool_layer(keras, layer))
        if layer.activation_bits is not None:
            relu = _relu_layer(layer)
            stages = [relu] + stages if layer.relu_first else stages + [relu]
        for stage in stages:
            x = stage(x)
    if len(x.shape) == 4 and qmodel.layers[-1].kind == "dense":
        x = keras.layers.Flatten(name="output_flatten")(x)
    return keras.Model(inputs, x, name=f"{qmodel.name or 'model'}_quantized")

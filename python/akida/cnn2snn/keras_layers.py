"""Quantized Keras layers for quantization-aware training.

They compute the formulas of :mod:`.quantization` with ``keras.ops`` (any Keras 3 backend), with
straight-through rounding: the forward pass uses the quantized values and the gradient flows as
if the rounding were the identity (clipped to the ReLU's range for activations). ``bits = 0``
keeps a tensor float. Importing this module imports Keras; it is loaded only when a Keras model
is quantized or converted.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

PACKAGE = "akida_cnn2snn"


def _straight_through(x: Any, quantized: Any) -> Any:
    return x + ops.stop_gradient(quantized - x)


def quantize_kernel_with_unit(kernel: Any, bits: int, per_tensor: bool = False) -> tuple[Any, Any]:
    """Fake-quantized kernel and its unit: symmetric, per output channel (last axis) unless
    ``per_tensor``. With ``bits = 0`` the kernel is returned as it is, with unit None."""
    if not bits:
        return kernel, None
    levels = 2 ** (bits - 1) - 1
    if per_tensor:
        absmax = ops.max(ops.abs(kernel))
    else:
        axes = tuple(range(len(kernel.shape) - 1))
        absmax = ops.max(ops.abs(kernel), axis=axes)
    unit = ops.where(absmax > 0, absmax / levels, ops.ones_like(absmax))
    quantized = ops.clip(ops.round(kernel / unit), -levels, levels) * unit
    return _straight_through(kernel, quantized), ops.stop_gradient(unit)


def quantize_kernel(kernel: Any, bits: int, per_tensor: bool = False) -> Any:
    return quantize_kernel_with_unit(kernel, bits, per_tensor)[0]


class _QuantizedWeights:
    """What the quantized weighted layers share: ``weight_bits``, and the bias snapping of
    :func:`akida.cnn2snn.quantization.snap_bias`, applied when the layer knows its input unit (the
    previous ReLU's step) and the step and bits of the ReLU after it."""

    def __init__(self, *args: Any, weight_bits: int = 4, input_unit: float | None = None,
                 activation_step: float | None = None, activation_bits: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.weight_bits = int(weight_bits)
        self.input_unit = None if input_unit is None else float(input_unit)
        self.activation_step = None if activation_step is None else float(activation_step)
        self.activation_bits = int(activation_bits)

    def snapped_bias(self, bias: Any, weight_unit: Any) -> Any:
        if bias is None or weight_unit is None or self.input_unit is None or self.activation_step is None:
            return bias
        step = self.activation_step
        unit = ops.stop_gradient(self.input_unit * weight_unit)
        length = step / unit
        j = ops.arange(2**self.activation_bits - 1, dtype=length.dtype)
        products = ops.expand_dims(length, -1) * j
        g = products - ops.floor(products)
        f = (1.0 - ops.max(g, axis=-1) - ops.min(g, axis=-1)) / 2
        t = (step / 2 - bias) / unit
        snapped = step / 2 - unit * (ops.round(t - f) + f)
        return _straight_through(bias, snapped)

    def _bias_and_activation(self, outputs: Any, bias: Any, weight_unit: Any) -> Any:
        """Adds the (snapped) bias and applies the layer's built-in activation."""
        if bias is not None:
            outputs = ops.add(outputs, self.snapped_bias(bias, weight_unit))
        activation = getattr(self, "activation", None)
        return activation(outputs) if activation is not None else outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),  # type: ignore[misc]
            "weight_bits": self.weight_bits,
            "input_unit": self.input_unit,
            "activation_step": self.activation_step,
            "activation_bits": self.activation_bits,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedConv2D(_QuantizedWeights, keras.layers.Conv2D):
    """``Conv2D`` whose kernel is quantized to ``weight_bits`` per output channel, and whose bias
    is snapped (see :class:`_QuantizedWeights`) when ``input_unit`` and ``activation_step`` are set."""

    def call(self, inputs: Any) -> Any:
        kernel, unit = quantize_kernel_with_unit(self.kernel, self.weight_bits)
        outputs = self.convolution_op(inputs, kernel)
        return self._bias_and_activation(outputs, self.bias if self.use_bias else None, unit)


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedSeparableConv2D(_QuantizedWeights, keras.layers.SeparableConv2D):
    """``SeparableConv2D`` with a depthwise kernel quantized per tensor and a pointwise kernel
    quantized per output channel, both to ``weight_bits``; the bias snaps as in
    :class:`QuantizedConv2D`."""

    def call(self, inputs: Any) -> Any:
        depthwise, depthwise_unit = quantize_kernel_with_unit(self.depthwise_kernel, self.weight_bits, per_tensor=True)
        pointwise, pointwise_unit = quantize_kernel_with_unit(self.pointwise_kernel, self.weight_bits)
        unit = None if pointwise_unit is None else depthwise_unit * pointwise_unit
        outputs = ops.separable_conv(
            inputs,
            depthwise,
            pointwise,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return self._bias_and_activation(outputs, self.bias if self.use_bias else None, unit)


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedDense(_QuantizedWeights, keras.layers.Dense):
    """``Dense`` whose kernel is quantized to ``weight_bits`` per output unit; the bias snaps as
    in :class:`QuantizedConv2D`."""

    def call(self, inputs: Any, training: Any = None) -> Any:
        kernel, unit = quantize_kernel_with_unit(self.kernel, self.weight_bits)
        return self._bias_and_activation(ops.matmul(inputs, kernel), self.bias, unit)


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantizedReLU(keras.layers.Layer):
    """A ReLU clipped at ``max_value`` and quantized to ``2**bits - 1`` levels of
    ``step = max_value / (2**bits - 1)``: ``step * clip(ceil(x / step - 1/2), 0, levels)``.
    The gradient is that of ``clip(x, 0, max_value)``. ``bits = 0`` is a float clipped ReLU."""

    def __init__(self, bits: int = 4, max_value: float | None = 6.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.bits = int(bits)
        if max_value is None and self.bits:
            raise ValueError("a quantized ReLU needs a max_value")
        self.max_value = None if max_value is None else float(max_value)

    def call(self, inputs: Any) -> Any:
        if self.max_value is None:
            return ops.relu(inputs)
        clipped = ops.clip(inputs, 0.0, self.max_value)
        if not self.bits:
            return clipped
        levels = 2**self.bits - 1
        step = self.max_value / levels
        quantized = ops.clip(ops.ceil(inputs / step - 0.5), 0.0, float(levels)) * step
        return _straight_through(clipped, quantized)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bits": self.bits, "max_value": self.max_value}


QUANTIZED_LAYERS = {
    "QuantizedConv2D": QuantizedConv2D,
    "QuantizedSeparableConv2D": QuantizedSeparableConv2D,
    "QuantizedDense": QuantizedDense,
    "QuantizedReLU": QuantizedReLU,
}

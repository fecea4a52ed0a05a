"""From a quantized model to an :class:`akida.Model` with exact integer semantics.

The maths (``docs/cnn2snn.md`` has the derivation): a layer receives Akida values ``a`` that
stand for the float inputs ``in_unit * (a - in_zero)``; with integer weights ``W`` of unit
``w_unit[n]`` per neuron the float pre-activation is ``z[n] = c[n] * p[n] + b[n]`` where
``p`` is the integer potential the engine computes, ``c[n] = in_unit * w_unit[n]`` and
``b[n] = bias[n] - c[n] * in_zero * sum(W[..., n])``. A quantized ReLU of step ``s`` reaches
level ``k`` when ``z > s * (k - 1/2)``, that is when ``p > T + (k - 1) * L`` with
``T = (s / 2 - b) / c`` and ``L = s / c``: the layer's ``threshold_fire`` and interval length.
Its outputs then stand for ``s * level``: the next layer's ``in_unit`` is ``s``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConversionError
from .quantized import (
    QuantizedLayer,
    QuantizedModel,
    is_input_convolution,
    layer_bits_problems,
    raise_problems,
    threshold_cuts,
)

#: Thresholds must fit in 20 signed bits (the hardware's register width).
THRESHOLD_LIMIT = 2**19


def _akida_input_scaling(model: QuantizedModel, input_scaling: Any) -> tuple[float, float]:
    """``(scale, offset)`` with Akida inputs ``a = scale * x + offset`` for model inputs ``x``:
    ``input_scaling`` checked, or its default."""
    if input_scaling is None and model.input_quant is not None:
        # The source quantizes its own input: its integers are the Akida inputs.
        return 1.0 / model.input_quant[0], model.input_quant[1]
    if input_scaling is None:
        return 1.0, 0.0
    try:
        scale, offset = (float(v) for v in input_scaling)
    except (TypeError, ValueError):
        raise TypeError(f"input_scaling must be a pair (scale, offset) of numbers, got {input_scaling!r}") from None
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale <= 0:
        raise ValueError(f"input_scaling=({scale}, {offset}): the scale must be a finite number > 0")
    return scale, offset


def _input_mapping(model: QuantizedModel, scaling: tuple[float, float]) -> tuple[float, float]:
    """``(in_unit, in_zero)`` of the Akida input: the first layer sees ``in_unit * (a - in_zero)``.

    With Akida inputs ``a = scale * x + offset`` and the model's own leading rescaling giving the
    first layer ``r * x + o``: ``in_unit = r / scale`` and ``in_zero = offset - o * scale / r``.
    """
    scale, offset = scaling
    r, o = model.input_rescale
    return r / scale, offset - o * scale / r


def _input_bits(model: QuantizedModel, scaling: tuple[float, float]) -> int:
    """The InputData bit width: enough for the largest calibration input, 8 without calibration."""
    if model.input_max is None:
        return 8
    top = scaling[0] * model.input_max + scaling[1]
    return min(8, max(1, math.ceil(math.log2(max(top, 0.0) + 1.0))))


def _neuron_weight_sums(layer: QuantizedLayer) -> np.ndarray:
    """Per neuron: the sum of its integer weights over every tap and channel."""
    assert layer.weights.ints is not None
    if layer.kind == "separable":
        assert layer.depthwise is not None and layer.depthwise.ints is not None
        per_channel = layer.depthwise.ints.sum(axis=(0, 1, 3))
        return per_channel @ layer.weights.ints[0, 0]
    return layer.weights.ints.reshape(-1, layer.num_neurons).sum(axis=0)


def _scales(layer: QuantizedLayer, in_unit: float) -> np.ndarray:
    assert layer.weights.units is not None
    c = in_unit * layer.weights.units
    if layer.kind == "separable":
        assert layer.depthwise is not None and layer.depthwise.units is not None
        c = c * layer.depthwise.units[0]
    return np.broadcast_to(c, (layer.num_neurons,)).astype(np.float64)


def _pooling_kwargs(layer: QuantizedLayer, akida: Any) -> dict[str, Any]:
    if layer.pool is None:
        return {}
    kind, size, strides = layer.pool
    pool_type = akida.PoolingType.Max if kind == "max" else akida.PoolingType.Average
    if size is None:
        return {"pooling_type": pool_type}
    return {
        "pooling_type": pool_type,
        "pooling_height": size[0],
        "pooling_width": size[1],
        "pooling_stride_y": (strides or size)[0],
        "pooling_stride_x": (strides or size)[1],
    }


def _activation_variables(
    layer: QuantizedLayer, c: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Per-neuron ``threshold_fire``, ``threshold_fire_step`` and the neurons whose cut points are
    not exact."""
    assert layer.activation_bits and layer.activation_step is not None
    bits, step = layer.activation_bits, layer.activation_step
    levels = 2**bits - 1
    thresholds = np.zeros(layer.num_neurons, dtype=np.int64)
    steps = np.ones(layer.num_neurons, dtype=np.float32)
    inexact = []
    for n in range(layer.num_neurons):
        t_real = (step / 2 - b[n]) / c[n]
        l_real = step / c[n]
        if not math.isfinite(t_real) or abs(t_real) >= THRESHOLD_LIMIT:
            raise ConversionError(
                f"{layer.source}: neuron {n} needs a threshold of {t_real:.4g}, beyond the 20 signed bits Akida "
                f"thresholds hold (|T| < {THRESHOLD_LIMIT}); this usually comes from a tiny BatchNormalization "
                "gamma or a large bias: clip the gammas away from 0 (or regularize the bias) and retrain, or use "
                "fewer weight bits"
            )
        threshold, length, exact = threshold_cuts(t_real, l_real, levels)
        thresholds[n] = threshold
        if bits == 4:
            steps[n] = np.float32(length)
        elif bits == 2:
            steps[n] = np.float32(length / 4)
        if not exact:
            inexact.append(n)
    return thresholds.astype(np.int32), steps, inexact


def convert(model: Any, input_scaling: Any = None, verbose: bool = False, callback: Any = None) -> Any:
    """Converts a quantized model into an :class:`akida.Model`.

    Parameters
    ----------
    model : keras.Model or QuantizedModel
        A model returned by :func:`~akida.cnn2snn.quantize` (a Keras model of quantized layers,
        possibly fine-tuned, or a :class:`QuantizedModel`), or an ONNX graph already quantized
        with QDQ or QONNX nodes.
    input_scaling : (float, float), optional
        ``(scale, offset)``: the Akida model receives ``scale * x + offset`` for the inputs ``x``
        of the source model (``scale > 0``). Default ``(1, 0)``: the inputs are given as they are,
        as uint8; for an ONNX graph that quantizes its own input (``QuantizeLinear`` of scale
        ``s`` and zero point ``z``), ``(1 / s, z)``: its integers are the Akida inputs.
    verbose : bool
        Show a progress bar of the layers built on stderr (tqdm when installed; see
        :mod:`akida.progress`). Quiet by default.
    callback : callable, optional
        ``callback(done, total)`` after each layer.

    Returns
    -------
    akida.Model
        A model whose first layer is ``InputConvolutional`` (a convolution on 1- or 3-channel
        8-bit images) or ``InputData``, and whose last layer outputs potentials;
        ``Model.evaluate`` rescales them to the source model's float outputs.

    Raises
    ------
    akida.ConversionError
        When the model has parts Akida cannot represent; the message lists each with the rule it
        breaks and what to change.
    """
    from .api import as_quantized_model

    qmodel = as_quantized_model(model)
    raise_problems(layer_bits_problems(qmodel), f"the model {qmodel.name!r} cannot be converted to Akida")
    return _build(qmodel, input_scaling, verbose=verbose, callback=callback)


def conversion_details(model: Any, input_scaling: Any = None) -> dict[str, Any]:
    """What :func:`convert` decides, per layer: the input unit, the scales, the neurons whose
    threshold cut points are not exact. For tests and reports."""
    from .api import as_quantized_model

    qmodel = as_quantized_model(model)
    details: dict[str, Any] = {}
    _build(qmodel, input_scaling, details)
    return details


def _build(
    qmodel: QuantizedModel,
    input_scaling: Any,
    details: dict[str, Any] | None = None,
    verbose: bool = False,
    callback: Any = None,
) -> Any:
    import akida
    from ..progress import Progress

    scaling = _akida_input_scaling(qmodel, input_scaling)
    in_unit, in_zero = _input_mapping(qmodel, scaling)
    h, w, ch = qmodel.input_shape
    layers = list(qmodel.layers)
    model = akida.Model()
    first_is_image = is_input_convolution(qmodel)
    if first_is_image:
        zero = round(in_zero)
        if layers[0].padding == "valid" and abs(zero - in_zero) > 1e-6:
            zero = in_zero  # no padded cell: the zero need not be an integer
        elif abs(zero - in_zero) > 1e-6 or not 0 <= zero <= 255:
            raise ConversionError(
                f"{layers[0].source}: its 'same' padding stands for the float input 0, which is the Akida input value "
                f"{in_zero:.6g}; the input convolution pads with one integer in 0..255 (padding_value). Use a "
                "rescaling (or input_scaling) under which 0 falls on an integer input value, for example "
                "Rescaling(1/128, -1) instead of Rescaling(1/127.5, -1), or 'valid' padding on the first convolution"
            )
        in_zero = float(zero)
    else:
        model.add(akida.InputData(input_width=w, input_height=h, input_channels=ch,
                                  input_bits=_input_bits(qmodel, scaling), name="input"))
        first = layers[0]
        if in_zero != 0 and first.kind != "dense" and first.padding == "same":
            raise ConversionError(
                f"{first.source}: with InputData, padded cells hold 0 but the input value standing for 0 is "
                f"{in_zero:.6g}; use input_scaling with offset 0, 'valid' padding, or an image input on 1 or 3 channels"
            )
    with Progress(len(layers), "converting layers", verbose, callback, unit="layer") as progress:
        for index, layer in enumerate(layers):
            last = index == len(layers) - 1
            c = _scales(layer, in_unit)
            # The bias snaps for the unit the layer really receives: an input_scaling given here can
            # change the first layer's unit from the one quantize() saw.
            b = layer.effective_bias(in_unit).astype(np.float64)
            if in_zero != 0:
                b = b - c * in_zero * _neuron_weight_sums(layer)
            akida_layer = _make_layer(akida, layer, first_is_image and index == 0, in_zero, qmodel)
            model.add(akida_layer)
            added = model.get_layer(model.get_layer_count() - 1)
            if tuple(added.output_shape) != tuple(layer.output_shape):
                raise ConversionError(
                    f"{layer.source}: the engine's layer gives {tuple(added.output_shape)} where the source gives "
                    f"{tuple(layer.output_shape)}; please report this model"
                )
            _set_weights(added, layer, first_is_image and index == 0)
            info: dict[str, Any] = {"in_unit": in_unit, "scales": c, "offsets": b, "inexact_neurons": []}
            if layer.activation_bits:
                thresholds, steps, inexact = _activation_variables(layer, c, b)
                added.set_variable("threshold_fire", thresholds)
                added.set_variable("threshold_fire_step", steps)
                info["inexact_neurons"] = inexact
                in_unit = float(layer.activation_step)
            else:
                added.set_variable("output_scale", c.astype(np.float32))
                added.set_variable("output_offset", b.astype(np.float32))
                if not last:
                    raise ConversionError(f"{layer.source}: a hidden layer without a quantized ReLU")
            in_zero = 0.0
            if details is not None:
                details[layer.name] = info
            progress.update()
    return model


def _make_layer(akida: Any, layer: QuantizedLayer, image_input: bool, in_zero: float, qmodel: QuantizedModel) -> Any:
    activation = {
        "activations_enabled": bool(layer.activation_bits),
        "threshold_fire_bits": layer.activation_bits or 1,
    }
    bits = layer.weights.bits
    if layer.kind == "dense":
        return akida.FullyConnected(num_neurons=layer.num_neurons, name=layer.name, weights_bits=bits, **activation)
    if layer.kind == "conv":
        kh, kw = layer.weights.float_kernel.shape[:2]
    else:
        assert layer.depthwise is not None
        kh, kw = layer.depthwise.float_kernel.shape[:2]
    mode = akida.ConvolutionMode.Same if layer.padding == "same" else akida.ConvolutionMode.Valid
    conv = dict(
        kernel_width=kw,
        kernel_height=kh,
        num_neurons=layer.num_neurons,
        name=layer.name,
        convolution_mode=mode,
        stride_x=layer.strides[1],
        stride_y=layer.strides[0],
        weights_bits=bits,
        **_pooling_kwargs(layer, akida),
        **activation,
    )
    if image_input:
        h, w, ch = qmodel.input_shape
        return akida.InputConvolutional(
            input_width=w, input_height=h, input_channels=ch,
            padding_value=int(in_zero) if layer.padding == "same" else 0, **conv
        )
    if layer.kind == "conv":
        return akida.Convolutional(**conv)
    return akida.SeparableConvolutional(**conv)


def _set_weights(added: Any, layer: QuantizedLayer, image_input: bool) -> None:
    """Writes the integer weights in the engine's layout: FullyConnected ``(H, W, C, n)``;
    Convolutional and SeparableConvolutional compute a true convolution, so their kernels are
    flipped; InputConvolutional computes a cross-correlation, as the source did."""
    ints = layer.weights.ints
    assert ints is not None
    if layer.kind == "dense":
        h, w, c = layer.input_shape
        added.set_variable("weights", ints.reshape(h, w, c, layer.num_neurons))
    elif layer.kind == "conv":
        added.set_variable("weights", ints if image_input else ints[::-1, ::-1])
    else:
        assert layer.depthwise is not None and layer.depthwise.ints is not None
        added.set_variable("weights", layer.depthwise.ints[::-1, ::-1])
        added.set_variable("weights_pw", ints)

"""Quantized models: integer weights, quantized ReLUs, and their float fake-quantized forward."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConversionError
from . import quantization as q
from .graph import ActivationQuant, Graph, WeightQuant
from .layers import LayerSpec, Problem, plan_layers
from .numpy_ops import conv2d, depthwise2d, pool2d, run_graph
from .passes import run_passes


@dataclass
class QuantizedWeights:
    """A kernel, its bit width and, when quantized, its integers and units (see
    :mod:`.quantization`). ``bits == 0`` keeps the float kernel."""

    float_kernel: np.ndarray
    bits: int
    ints: np.ndarray | None = None
    units: np.ndarray | None = None

    @classmethod
    def make(cls, kernel: np.ndarray, bits: int, fixed: WeightQuant | None, per_tensor: bool = False) -> "QuantizedWeights":
        kernel = np.asarray(kernel, dtype=np.float64)
        if fixed is not None:
            if per_tensor and np.ptp(np.asarray(fixed.unit, dtype=np.float64)) > 0:
                raise ConversionError(
                    "a depthwise kernel quantized with one scale per channel: Akida's separable layer holds one "
                    "depthwise scale; quantize the depthwise weights per tensor"
                )
            if per_tensor:
                fixed = WeightQuant(fixed.bits, fixed.ints, np.asarray(fixed.unit, dtype=np.float64).ravel()[:1])
            units = np.broadcast_to(np.asarray(fixed.unit, dtype=np.float64).ravel(), (1 if per_tensor else kernel.shape[-1],))
            return cls(kernel, fixed.bits, np.asarray(fixed.ints, dtype=np.int64), units.copy())
        if bits == 0:
            return cls(kernel, 0)
        ints, units = q.quantize_weights(kernel, bits, per_tensor)
        return cls(kernel, bits, ints, units)

    def value(self) -> np.ndarray:
        """The weights the fake-quantized forward uses."""
        if self.ints is None:
            return self.float_kernel
        return self.ints * self.units


@dataclass
class QuantizedLayer:
    """One future Akida layer with quantized weights and activation."""

    name: str
    source: str
    kind: str  # "conv", "separable" or "dense"
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    padding: str
    strides: tuple[int, int]
    #: conv: (kh, kw, cin, n); separable: the pointwise (1, 1, C, n); dense: (in, n).
    weights: QuantizedWeights
    bias: np.ndarray
    #: separable only: the depthwise kernel (kh, kw, C, 1), one unit for the tensor.
    depthwise: QuantizedWeights | None = None
    #: ("max" | "avg", size or None for global, strides or None).
    pool: tuple[str, tuple[int, int] | None, tuple[int, int] | None] | None = None
    relu_first: bool = False
    #: Activation bits (0: float ReLU) and step; None for a layer without ReLU (the last).
    activation_bits: int | None = None
    activation_step: float | None = None
    #: Why the source's own quantization of the weights could not be kept, if it had one.
    quant_problem: str | None = None
    #: The clip of a float ReLU (activation_bits == 0), None when unbounded.
    relu_max: float | None = None
    #: The float value of one unit of this layer's integer inputs (the previous ReLU's step, or
    #: the input rescaling for the first layer); with a quantized ReLU the bias snaps to the
    #: potential grid (see :func:`.quantization.snap_bias`).
    input_unit: float | None = None

    @property
    def num_neurons(self) -> int:
        return self.output_shape[2]

    def weight_bits(self) -> int:
        return self.weights.bits

    def potential_unit(self, input_unit: float | None = None) -> np.ndarray | None:
        """Per neuron, the float value of one unit of the integer potential, once quantized
        (for inputs of unit ``input_unit``, by default the layer's own)."""
        input_unit = self.input_unit if input_unit is None else input_unit
        if input_unit is None or self.weights.units is None:
            return None
        unit = input_unit * self.weights.units
        if self.depthwise is not None:
            if self.depthwise.units is None:
                return None
            unit = unit * self.depthwise.units[0]
        return np.broadcast_to(unit, (self.num_neurons,))

    def effective_bias(self, input_unit: float | None = None) -> np.ndarray:
        """The bias the layer computes with: snapped (:func:`.quantization.snap_bias`) when the
        layer has a quantized ReLU, for inputs of unit ``input_unit`` (by default its own)."""
        unit = self.potential_unit(input_unit)
        if unit is None or not self.activation_bits or self.activation_step is None:
            return self.bias
        return q.snap_bias(self.bias, unit, self.activation_step, self.activation_bits)

    def activation(self, z: np.ndarray) -> np.ndarray:
        if self.activation_bits is None:
            return z
        if self.activation_bits == 0:
            y = np.maximum(z, 0.0)
            return np.minimum(y, self.relu_max) if self.relu_max is not None else y
        assert self.activation_step is not None
        return q.fake_quantize_activation(z, self.activation_bits, self.activation_step)

    def potentials(self, x: np.ndarray) -> np.ndarray:
        """The float pre-activation (before pooling) for float inputs ``x``."""
        bias = self.effective_bias()
        if self.kind == "dense":
            z = x.reshape(x.shape[0], -1) @ self.weights.value() + bias
            return z.reshape(x.shape[0], 1, 1, -1)
        if self.kind == "conv":
            return conv2d(x, self.weights.value(), bias, self.strides, self.padding)
        assert self.depthwise is not None
        d = depthwise2d(x, self.depthwise.value(), None, self.strides, self.padding)
        return conv2d(d, self.weights.value(), bias, (1, 1), "valid")

    def pooling(self, z: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return z
        kind, size, strides = self.pool
        if size is None:
            return z.max(axis=(1, 2), keepdims=True) if kind == "max" else z.mean(axis=(1, 2), keepdims=True)
        return pool2d(z, kind, size, strides or size, self.padding)

    def forward(self, x: np.ndarray) -> np.ndarray:
        z = self.potentials(x)
        if self.relu_first:
            return self.pooling(self.activation(z))
        return self.activation(self.pooling(z))


@dataclass
class QuantizedModel:
    """A quantized model: the layers of an Akida model with float-valued fake quantization.

    ``predict`` runs it in float64 with the quantized weights and activations, so the accuracy of
    the quantized model can be measured before :func:`~akida.cnn2snn.convert`. The first layer
    sees ``input_rescale[0] * inputs + input_rescale[1]``.
    """

    input_shape: tuple[int, int, int]
    layers: list[QuantizedLayer]
    input_rescale: tuple[float, float] = (1.0, 0.0)
    #: The largest model input seen in the calibration data, if any.
    input_max: float | None = None
    #: What the graph passes did (folded BatchNorms, removed layers).
    notes: list[str] = field(default_factory=list)
    #: True when the input shape was a flat vector (outputs and inputs are then 2-D).
    flat_input: bool = False
    name: str = ""
    #: ``(scale, zero_point)`` of a source that quantizes its own input (an ONNX QuantizeLinear
    #: on the graph input): the integer input ``q`` stands for ``scale * (q - zero_point)``.
    input_quant: tuple[float, float] | None = None

    def _prepare(self, inputs: Any) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float64)
        if x.ndim == 2 and tuple(self.input_shape[:2]) == (1, 1):
            x = x.reshape(x.shape[0], 1, 1, -1)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"inputs of shape {x.shape[1:]} do not match the model input {tuple(self.input_shape)}")
        return x * self.input_rescale[0] + self.input_rescale[1]

    def predict(self, inputs: Any, batch_size: int = 256, verbose: bool = False, callback: Any = None) -> np.ndarray:
        """Float outputs of the fake-quantized model: ``(N, classes)`` for a dense last layer,
        ``(N, H, W, C)`` otherwise. ``verbose`` and ``callback`` report the batches (see
        :mod:`akida.progress`)."""
        from ..progress import Progress

        x = self._prepare(inputs)
        outs = []
        starts = range(0, x.shape[0], batch_size)
        with Progress(len(starts), "quantized predict", verbose, callback, unit="batch") as progress:
            for start in starts:
                a = x[start : start + batch_size]
                for layer in self.layers:
                    a = layer.forward(a)
                outs.append(a)
                progress.update()
        out = np.concatenate(outs) if outs else np.zeros((0,) + tuple(self.layers[-1].output_shape))
        if self.layers[-1].kind == "dense":
            return out.reshape(out.shape[0], -1)
        return out

    def summary(self) -> str:
        """A table of the layers: kind, shapes, bits."""
        rows = [f"QuantizedModel {self.name!r}: input {tuple(self.input_shape)}"]
        for layer in self.layers:
            act = "none" if layer.activation_bits is None else f"{layer.activation_bits}-bit ReLU"
            pool = f", {layer.pool[0]} pool" if layer.pool else ""
            rows.append(
                f"  {layer.name:<24} {layer.kind:<10} {str(layer.input_shape):>16} -> {str(layer.output_shape):<16} "
                f"weights {layer.weight_bits()}-bit, {act}{pool}"
            )
        return "\n".join(rows)


def _validate_bits(value: Any, name: str, allowed: tuple[int, ...]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int (0 keeps float), got {type(value).__name__}")
    value = int(value)
    if value != 0 and value not in allowed:
        raise ValueError(f"{name}={value} is not supported: use 0 (float) or one of {allowed}")
    return value


def _relu_clip(spec: LayerSpec) -> float | None:
    if spec.relu is None:
        return None
    value = spec.relu.attrs.get("max_value")
    return None if value is None else float(value)


def layer_bits_problems(model: QuantizedModel) -> list[Problem]:
    """Problems of bit widths that the engine cannot hold (the layers are already grouped)."""
    problems = []
    for i, layer in enumerate(model.layers):
        allowed = q.INPUT_WEIGHT_BITS if i == 0 and is_input_convolution(model) else q.HIDDEN_WEIGHT_BITS
        role = "the input convolution" if allowed is q.INPUT_WEIGHT_BITS else "a data-processing layer"
        kernels = [w for w in (layer.weights, layer.depthwise) if w is not None]
        for weights in {w.bits: w for w in kernels}.values():
            if weights.bits == 0:
                rule = "its weights are not quantized"
                if layer.quant_problem:
                    rule += f" (the source's quantization was not kept: {layer.quant_problem})"
                problems.append(Problem(layer.source, rule, "quantize them (weight bits 2 or 4)"))
            elif weights.bits not in allowed:
                hint = (
                    "this first layer is not an image input convolution, so it takes hidden-layer bits: "
                    "pass input_weight_quantization=4"
                    if i == 0 and allowed is q.HIDDEN_WEIGHT_BITS
                    else f"use {max(allowed)} bits or fewer"
                )
                problems.append(
                    Problem(layer.source, f"too many bits: {weights.bits}-bit weights; {role} takes {allowed}", hint)
                )
        if layer.activation_bits == 0:
            problems.append(Problem(layer.source, "its ReLU is not quantized", "quantize activations to 1, 2 or 4 bits"))
        elif layer.activation_bits is not None and layer.activation_bits not in q.ACTIVATION_BITS:
            problems.append(
                Problem(
                    layer.source,
                    f"too many bits: {layer.activation_bits}-bit activations; Akida takes {q.ACTIVATION_BITS}",
                    "quantize activations to 4 bits or fewer",
                )
            )
    return problems


def is_input_convolution(model: QuantizedModel) -> bool:
    """Whether the first layer becomes an InputConvolutional (a convolution on 1 or 3 channels)."""
    first = model.layers[0]
    return first.kind == "conv" and first.input_shape[2] in (1, 3)


def raise_problems(problems: list[Problem], what: str) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConversionError(f"{what}:\n{lines}")


def _refuse_non_finite_parameters(graph: Graph) -> None:
    """A ConversionError naming every node whose weights, biases or normalization parameters
    hold NaN or infinity (a diverged training run): no quantization of them means anything."""
    found = []
    for node in graph.nodes:
        for key, value in node.params.items():
            array = np.asarray(value)
            if array.dtype.kind in "fc":
                bad = int((~np.isfinite(array)).sum())
                if bad:
                    found.append(f"{node.label()}: {key} holds {bad} NaN or infinite value(s) of {array.size}")
    if found:
        raise ConversionError("the model has non-finite parameters, which cannot be quantized:\n  " + "\n  ".join(found))


def quantize_graph(
    graph: Graph,
    weight_quantization: int = 4,
    activ_quantization: int = 4,
    input_weight_quantization: int | None = None,
    calibration_data: Any = None,
    fold_BN: bool = True,
    verbose: bool = False,
    callback: Any = None,
) -> QuantizedModel:
    """Quantizes an intermediate graph (see :func:`akida.cnn2snn.quantize`; ``verbose`` and
    ``callback`` report the calibration batches, see :mod:`akida.progress`).

    Nodes that carry their own bits (quantized Keras layers: ``attrs['weight_bits']`` and
    ``attrs['activation_bits']``; QDQ/QONNX sources: ``weight_quant`` / ``activation_quant``) keep
    them; the others take the bits given here.
    """
    if weight_quantization == 8 and not isinstance(weight_quantization, bool):
        raise ValueError(
            "weight_quantization=8 is not supported: the layers after the first take 0 (float) or one of "
            f"{q.HIDDEN_WEIGHT_BITS}; 8-bit weights are for a first InputConvolutional layer, "
            "with input_weight_quantization=8"
        )
    weight_bits = _validate_bits(weight_quantization, "weight_quantization", q.HIDDEN_WEIGHT_BITS)
    activ_bits = _validate_bits(activ_quantization, "activ_quantization", q.ACTIVATION_BITS)
    input_bits = weight_bits if input_weight_quantization is None else _validate_bits(
        input_weight_quantization, "input_weight_quantization", q.INPUT_WEIGHT_BITS
    )
    _refuse_non_finite_parameters(graph)
    if fold_BN:
        rewritten, notes = run_passes(graph)
    else:
        from .passes import PASSES, fold_batchnorm

        rewritten, notes = graph.copy(), []
        for rewrite in PASSES:
            if rewrite is not fold_batchnorm:
                notes.extend(rewrite(rewritten))
    specs, problems = plan_layers(rewritten)
    raise_problems(problems, f"the model {graph.name!r} cannot be converted to Akida")

    shape = tuple(int(v) for v in rewritten.input.attrs["shape"])
    flat_input = bool(rewritten.input.attrs.get("flat", False))
    rescale = tuple(float(v) for v in rewritten.input.attrs.get("rescale", (1.0, 0.0)))
    calibration = None
    input_max = None
    if calibration_data is not None:
        calibration = np.asarray(calibration_data, dtype=np.float64)
        if calibration.ndim == 2 and shape[:2] == (1, 1):
            calibration = calibration.reshape(calibration.shape[0], 1, 1, -1)
        if calibration.ndim != 4 or tuple(calibration.shape[1:]) != shape or calibration.shape[0] == 0:
            raise ValueError(
                f"calibration_data must be a non-empty array of model inputs {shape}, got shape {np.shape(calibration_data)}"
            )
        bad = ~np.isfinite(calibration)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"calibration_data holds {int(bad.sum())} NaN or infinite value(s) (the first at index {first}); "
                "ranges are measured on finite inputs"
            )
        input_max = float(calibration.max())

    needs_max = []
    for spec in specs:
        relu = spec.relu
        bits = None if relu is None else relu.attrs.get("activation_bits", activ_bits)
        if relu is not None and relu.activation_quant is None and bits:
            if relu.attrs.get("activation_max") is None:
                needs_max.append(relu.name)
    observed: dict[str, np.ndarray] = {}
    if needs_max and calibration is not None:
        observed = _relu_outputs(rewritten, calibration, needs_max, verbose=verbose, callback=callback)

    layers = []
    in_unit: float | None = rescale[0]
    for i, spec in enumerate(specs):
        default_bits = input_bits if i == 0 else weight_bits
        node = spec.weighted
        bits = int(node.attrs.get("weight_bits", default_bits))
        bias = np.asarray(node.params.get("bias", 0.0), dtype=np.float64) * np.ones(spec.output_shape[2])
        depthwise = None
        if spec.kind == "separable":
            depthwise = QuantizedWeights.make(
                node.params["depthwise"], bits, node.attrs.get("depthwise_quant"), per_tensor=True
            )
            weights = QuantizedWeights.make(node.params["pointwise"], bits, node.weight_quant)
        else:
            weights = QuantizedWeights.make(node.params["kernel"], bits, node.weight_quant)
        layer = QuantizedLayer(
            name=node.name,
            source=node.label(),
            kind=spec.kind,
            input_shape=spec.input_shape,
            output_shape=spec.output_shape,
            padding=spec.padding,
            strides=tuple(node.attrs.get("strides", (1, 1))),
            weights=weights,
            bias=bias,
            depthwise=depthwise,
            pool=None if spec.pool is None else (spec.pool.kind, spec.pool.size, spec.pool.strides),
            relu_first=spec.relu_first,
            input_unit=in_unit,
            quant_problem=node.attrs.get("quant_problem"),
        )
        if spec.relu is not None:
            _set_activation(layer, spec, activ_bits, observed)
        in_unit = layer.activation_step
        layers.append(layer)
    input_quant = rewritten.input.attrs.get("input_quant")
    if input_quant is not None:
        input_quant = (float(input_quant[0]), float(input_quant[1]))
    return QuantizedModel(shape, layers, rescale, input_max, notes, flat_input, graph.name, input_quant)


def _set_activation(layer: QuantizedLayer, spec: LayerSpec, activ_bits: int, observed: dict[str, np.ndarray]) -> None:
    relu = spec.relu
    assert relu is not None
    clip = _relu_clip(spec)
    fixed: ActivationQuant | None = relu.activation_quant
    if fixed is not None:
        layer.activation_bits, layer.activation_step = int(fixed.bits), float(fixed.step)
        return
    bits = int(relu.attrs.get("activation_bits", activ_bits))
    layer.activation_bits = bits
    if bits == 0:
        layer.relu_max = clip
        return
    max_value = relu.attrs.get("activation_max")
    if max_value is None:
        if relu.name in observed:
            max_value = q.calibrate_max_value(observed[relu.name], bits, clip)
        elif clip is not None:
            max_value = clip
        else:
            raise ValueError(
                f"{relu.label()} is an unbounded ReLU: give calibration_data to quantize() so its range can be "
                "measured, or use a clipped ReLU (max_value)"
            )
    layer.activation_step = q.activation_step(float(max_value), bits)


def _relu_outputs(
    graph: Graph, data: np.ndarray, names: list[str], batch: int = 256, verbose: bool = False, callback: Any = None
) -> dict[str, np.ndarray]:
    """The float outputs of the named ReLU nodes on ``data`` (after the input rescaling)."""
    from ..progress import Progress

    scale, offset = graph.input.attrs.get("rescale", (1.0, 0.0))
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    starts = range(0, data.shape[0], batch)
    with Progress(len(starts), "calibrating activations", verbose, callback, unit="batch") as progress:
        for start in starts:
            values = run_graph(graph, data[start : start + batch] * scale + offset, outputs=names)
            for n in names:
                chunks[n].append(values[n])
            progress.update()
    return {n: np.concatenate([c.ravel() for c in chunks[n]]) for n in names}


def threshold_cuts(t_real: float, l_real: float, levels: int) -> tuple[int, float, bool]:
    """Integer threshold ``T`` and float32 interval length ``L`` for the real thresholds
    ``t_real + j * l_real`` (``j = 0 .. levels - 1``) of a layer's integer potentials.

    For integer potentials, ``p > x`` iff ``p > floor(x)``, so the engine's cut points
    ``T + floor(j * L)`` reproduce the real ones when ``T = floor(t_real)`` and
    ``floor(j * L) = floor(t_real + j * l_real) - T`` for every ``j``. ``L = float32(l_real)``;
    with a snapped bias (:func:`.quantization.snap_bias`) this always holds. Returns
    ``(T, L, exact)``.
    """
    threshold = math.floor(t_real)
    length = float(np.float32(l_real))
    exact = all(
        math.floor(t_real + j * l_real) - threshold == math.floor(j * length) for j in range(1, levels)
    )
    return threshold, length, exact

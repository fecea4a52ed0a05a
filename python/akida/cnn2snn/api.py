"""The public entry points: ``quantize``, ``check_model_compatibility`` and the source dispatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConversionError
from .graph import Graph
from .layers import Problem, plan_layers
from .passes import run_passes
from .quantized import QuantizedModel, layer_bits_problems, quantize_graph


def _is_keras_model(model: Any) -> bool:
    module = type(model).__module__
    return module.startswith("keras") or any(c.__module__.startswith("keras") for c in type(model).__mro__)


def _is_onnx_model(model: Any) -> bool:
    return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")


def read_model(model: Any) -> tuple[Graph, str]:
    """The intermediate graph of ``model`` and its source format (``"keras"`` or ``"onnx"``).

    ``model`` is a Keras model, a ``.keras`` file, an ``onnx.ModelProto``, an ``.onnx`` file, or
    the bytes of an ONNX model.
    """
    if isinstance(model, Graph):
        return model, model.source_format
    if isinstance(model, (str, Path)):
        suffix = Path(model).suffix.lower()
        if suffix == ".keras":
            from .keras_reader import read_keras

            return read_keras(model), "keras"
        if suffix == ".onnx":
            from .onnx_reader import read_onnx

            return read_onnx(model), "onnx"
        raise ValueError(f"{model}: expected a .keras or .onnx file")
    if isinstance(model, (bytes, bytearray, memoryview)) or _is_onnx_model(model):
        from .onnx_reader import read_onnx

        return read_onnx(model), "onnx"
    if _is_keras_model(model):
        from .keras_reader import read_keras

        return read_keras(model), "keras"
    raise TypeError(
        f"expected a Keras model, an ONNX model (ModelProto, bytes or .onnx file) or a .keras file; "
        f"got {type(model).__name__}"
    )


def quantize(
    model: Any,
    weight_quantization: int = 4,
    activ_quantization: int = 4,
    input_weight_quantization: int | None = None,
    calibration_data: Any = None,
    fold_BN: bool = True,
    verbose: bool = False,
    callback: Any = None,
) -> Any:
    """Quantizes a trained CNN for conversion to Akida.

    Parameters
    ----------
    model : keras.Model, str, pathlib.Path, onnx.ModelProto or bytes
        A Keras 3 model or ``.keras`` file, or an ONNX model. Serial feed-forward CNNs of Conv2D,
        SeparableConv2D (or depthwise + 1x1 convolutions), Dense, BatchNormalization, ReLU,
        MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout and a final
        Softmax; :func:`check_model_compatibility` lists what does not fit.
    weight_quantization : int
        Bits of the weights of every layer after the first: 2 or 4 (0 keeps float weights).
    activ_quantization : int
        Bits of every ReLU: 1, 2 or 4 (0 keeps float activations).
    input_weight_quantization : int, optional
        Bits of the first layer's weights: 2, 4 or 8 when it becomes an InputConvolutional (a
        convolution on 1- or 3-channel images), otherwise 2 or 4. Default: ``weight_quantization``.
    calibration_data : array, optional
        Sample inputs ``(N, H, W, C)`` (or ``(N, F)`` for flat inputs). The max value of each
        quantized ReLU is chosen on them (see ``docs/cnn2snn.md``, "Calibration"). Needed when a
        ReLU is unbounded; a clipped ReLU without data uses its clip.
    fold_BN : bool
        Fold each BatchNormalization into the convolution or dense layer before it (and move it
        before a MaxPooling when every gamma is positive). With False, BatchNormalization layers
        stay, and conversion refuses them.
    verbose : bool
        Show a progress bar of the calibration batches on stderr (tqdm when installed; see
        :mod:`akida.progress`). Quiet by default.
    callback : callable, optional
        ``callback(done, total)`` after each calibration batch.

    Returns
    -------
    keras.Model or QuantizedModel
        For a Keras source, a Keras model of quantized layers (``QuantizedConv2D``,
        ``QuantizedSeparableConv2D``, ``QuantizedDense``, ``QuantizedReLU``) with BatchNorms
        folded: ``predict`` shows the quantized accuracy and ``fit`` fine-tunes it with
        quantization in the loop (straight-through rounding). For ONNX, a
        :class:`QuantizedModel` with a fake-quantized ``predict``. Nodes an ONNX source already
        quantized (QDQ pairs, QONNX ``Quant``) keep their own integers and scales.

    Raises
    ------
    akida.ConversionError
        The model has parts Akida cannot represent (the message lists them).
    ValueError, TypeError
        Invalid bit widths, calibration data of the wrong shape, an unbounded ReLU without
        calibration data.
    """
    graph, source = read_model(model)
    qmodel = quantize_graph(
        graph,
        weight_quantization,
        activ_quantization,
        input_weight_quantization,
        calibration_data,
        fold_BN,
        verbose=verbose,
        callback=callback,
    )
    if source == "keras":
        from .keras_build import build_keras_model

        return build_keras_model(qmodel)
    return qmodel


def check_model_compatibility(model: Any) -> list[Problem]:
    """Everything that keeps ``model`` from converting to Akida.

    Parameters
    ----------
    model : keras.Model, QuantizedModel, onnx.ModelProto, str, pathlib.Path or bytes
        A float model (before :func:`quantize`) or a quantized one.

    Returns
    -------
    list of Problem
        One per problem, empty when the model converts. Each has ``where`` (the layer or node),
        ``rule`` (what breaks) and ``change`` (what to do); ``str(problem)`` joins them. The
        same text is what :func:`convert` raises in a :class:`~akida.ConversionError`.
    """
    if isinstance(model, QuantizedModel):
        return layer_bits_problems(model)
    graph, source = read_model(model)
    rewritten, _ = run_passes(graph)
    _, problems = plan_layers(rewritten)
    if problems or not _carries_quantization(graph):
        return problems
    try:
        qmodel = quantize_graph(graph, 0, 0, 0)
    except (ConversionError, ValueError) as e:
        return [Problem(graph.name or source, str(e), "")]
    return layer_bits_problems(qmodel)


def _carries_quantization(graph: Graph) -> bool:
    return any(
        n.weight_quant is not None
        or n.activation_quant is not None
        or "weight_bits" in n.attrs
        or "activation_bits" in n.attrs
        for n in graph.nodes
    )


def as_quantized_model(model: Any) -> QuantizedModel:
    """The :class:`QuantizedModel` behind a quantized Keras model, a QDQ/QONNX ONNX model, or a
    :class:`QuantizedModel` itself. Float parts stay float, for :func:`convert` to report."""
    if isinstance(model, QuantizedModel):
        return model
    graph, _ = read_model(model)
    if not _carries_quantization(graph):
        raise ConversionError(
            f"the model {graph.name!r} is not quantized: call akida.cnn2snn.quantize(model, ...) first and convert "
            "its result"
        )
    return quantize_graph(graph, 0, 0, 0)


def predict_quantized(model: Any, inputs: Any) -> np.ndarray:
    """The fake-quantized float outputs of a quantized model, whatever its kind."""
    return as_quantized_model(model).predict(inputs)

"""akida: an independent, Akida-compatible execution engine for spiking neural networks.

The engine is written in Rust; this package exposes it with the Akida 1.x Python API:
a :class:`Model` of layers (:class:`InputData`, :class:`InputConvolutional`,
:class:`FullyConnected`, :class:`Convolutional`, :class:`SeparableConvolutional`,
:class:`Concat`), exact integer semantics (see ``docs/semantics.md``) and sparse
:class:`Events` inputs.
"""

from ._akida import (
    Concat,
    Convolutional,
    ConvolutionMode,
    Events,
    FullyConnected,
    InputConvolutional,
    InputData,
    Layer,
    LayerParameters,
    LayerStatistics,
    Model,
    PoolingType,
    SeparableConvolutional,
    __version__,
    engine_info,
)
from . import cnn2snn, converters
from .errors import (
    AkidaError,
    ArchitectureError,
    ConversionError,
    DTypeError,
    InputError,
    LayerNotFoundError,
    ModelFormatError,
    NotFittedError,
    ParameterError,
    VariableError,
)

__all__ = [
    "AkidaError",
    "ArchitectureError",
    "Concat",
    "ConversionError",
    "ConvolutionMode",
    "Convolutional",
    "DTypeError",
    "Events",
    "FullyConnected",
    "InputConvolutional",
    "InputData",
    "InputError",
    "Layer",
    "LayerNotFoundError",
    "LayerParameters",
    "LayerStatistics",
    "Model",
    "ModelFormatError",
    "NotFittedError",
    "ParameterError",
    "PoolingType",
    "SeparableConvolutional",
    "VariableError",
    "__version__",
    "cnn2snn",
    "converters",
    "engine_info",
]

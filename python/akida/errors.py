"""Exceptions raised by the akida engine.

Every error derives from :class:`AkidaError` and from the built-in class a Python user would
catch for that kind of problem (``ValueError``, ``TypeError``, ``KeyError``/``IndexError``).
"""

__all__ = [
    "AkidaError",
    "ParameterError",
    "ArchitectureError",
    "InputError",
    "DTypeError",
    "VariableError",
    "LayerNotFoundError",
    "ModelFormatError",
    "ConversionError",
    "NotFittedError",
    "MappingError",
]


class AkidaError(Exception):
    """Base class of all akida errors. Raised directly only for internal errors (engine bugs)."""


class ParameterError(AkidaError, ValueError):
    """A layer, model or learning parameter is outside its documented range."""


class ArchitectureError(AkidaError, ValueError):
    """The model structure breaks a rule (first layer, inbound layers, shapes, potential bounds)."""


class InputError(AkidaError, ValueError):
    """Inputs or events do not match the model: shape, coordinates or value range."""


class DTypeError(AkidaError, TypeError):
    """An array has the wrong element type."""


class VariableError(AkidaError, ValueError):
    """A layer variable is unknown, or a new value has the wrong shape or range."""


class LayerNotFoundError(AkidaError, KeyError, IndexError):
    """No layer has the requested name or index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelFormatError(AkidaError, ValueError):
    """A model file or buffer is corrupt, truncated, not an akida model, or of a newer format."""


class ConversionError(AkidaError, ValueError):
    """A CNN cannot be converted to Akida: the message names each layer, the rule it breaks and
    what to change."""


class NotFittedError(AkidaError, ValueError, AttributeError):
    """A converter that learns from data (:class:`akida.converters.QuantileOneHotEncoder`) is used
    before ``fit``."""


class MappingError(AkidaError, ValueError):
    """A model does not fit a device and ``Model.map(..., hw_only=True)`` refuses the software
    fallback: the message names each layer, the rule it breaks and what would make it fit."""

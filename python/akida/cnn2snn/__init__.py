"""CNN to SNN conversion: trained Keras and ONNX CNNs into quantized Akida models.

The flow of the public 1.x CNN2SNN toolkit::

    from akida import cnn2snn
    problems = cnn2snn.check_model_compatibility(keras_model)   # [] when it converts
    quantized = cnn2snn.quantize(keras_model, weight_quantization=4, activ_quantization=4,
                                 input_weight_quantization=8, calibration_data=x_train[:512])
    quantized.fit(x_train, y_train, epochs=2)                    # optional: quantization-aware
    akida_model = cnn2snn.convert(quantized)
    scores = akida_model.evaluate(x_test.astype("uint8"))

Sources are Keras 3 models (any backend) and ONNX models; both are read into one float graph
(:mod:`.graph`). Keras and onnx are optional extras, imported only when a model of that kind is
read. See ``docs/cnn2snn.md`` for the rules and the maths.
"""

from ..errors import ConversionError
from .api import check_model_compatibility, quantize, read_model
from .convert import convert, conversion_details
from .layers import Problem
from .quantized import QuantizedLayer, QuantizedModel

__all__ = [
    "ConversionError",
    "Problem",
    "QuantizedLayer",
    "QuantizedModel",
    "check_model_compatibility",
    "conversion_details",
    "convert",
    "quantize",
    "read_model",
]

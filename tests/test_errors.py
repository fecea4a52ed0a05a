"""Every error path of docs/api.md: exception class, and a message that names the problem."""

import importlib

import numpy as np
import pytest

akida = pytest.importorskip("akida")

Mode = akida.ConvolutionMode if hasattr(akida, "ConvolutionMode") else None
Pool = akida.PoolingType if hasattr(akida, "PoolingType") else None


def input_data(w=4, h=4, c=1, bits=4, **kw):
    return akida.InputData(input_width=w, input_height=h, input_channels=c, input_bits=bits, **kw)


def model_with(*layers):
    model = akida.Model()
    for layer in layers:
        model.add(layer)
    return model


def conv(**kw):
    params = dict(kernel_width=3, kernel_height=3, num_neurons=2)
    params.update(kw)
    return akida.Convolutional(**params)


def sep_conv(**kw):
    params = dict(kernel_width=3, kernel_height=3, num_neurons=2)
    params.update(kw)
    return akida.SeparableConvolutional(**params)


def input_conv(**kw):
    params = dict(input_width=8, input_height=8, input_channels=1, kernel_width=3, kernel_height=3, num_neurons=2)
    params.update(kw)
    return akida.InputConvolutional(**params)


# ----------------------------------------------------------------------------------------------
# Error classes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, bases",
    [
        ("AkidaError", (Exception,)),
        ("ParameterError", ("AkidaError", ValueError)),
        ("ArchitectureError", ("AkidaError", ValueError)),
        ("InputError", ("AkidaError", ValueError)),
        ("DTypeError", ("AkidaError", TypeError)),
        ("VariableError", ("AkidaError", ValueError)),
        ("LayerNotFoundError", ("AkidaError", KeyError, IndexError)),
        ("ModelFormatError", ("AkidaError", ValueError)),
        ("ConversionError", ("AkidaError", ValueError)),
    ],
)
def test_error_hierarchy(name, bases):
    errors = importlib.import_module("akida.errors")
    cls = getattr(akida, name)
    assert cls is getattr(errors, name)
    assert name in errors.__all__ and name in akida.__all__
    for base in bases:
        base = getattr(akida, base) if isinstance(base, str) else base
        assert issubclass(cls, base), (name, base)


def test_every_error_class_is_exported():
    errors = importlib.import_module("akida.errors")
    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert classes == set(errors.__all__)
    assert classes <= set(akida.__all__)


def test_conversion_error_is_raised_and_caught_like_the_others():
    with pytest.raises(ValueError, match="unsupported layer"):
        raise akida.ConversionError("unsupported layer 'x'")
    with pytest.raises(akida.AkidaError):
        raise akida.errors.ConversionError("no")


# ----------------------------------------------------------------------------------------------
# forward / predict inputs
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def data_model():
    model = model_with(input_data(w=5, h=4, c=2, bits=4))
    model.add(akida.FullyConnected(num_neurons=3))
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int64, np.int8, np.uint16])
def test_wrong_input_dtype(data_model, dtype):
    x = np.zeros((1, 4, 5, 2), dtype)
    with pytest.raises(akida.DTypeError, match="(?i)uint8|dtype"):
        data_model.forward(x)
    with pytest.raises(akida.DTypeError):
        data_model.predict(x)


@pytest.mark.parametrize("shape", [(4, 5, 2), (1, 5, 4, 2), (1, 4, 5, 3), (1, 4, 4, 2), (1, 3, 5, 2),
                                   (1, 1, 4, 5, 2), (20, 2)])
def test_wrong_input_shape(data_model, shape):
    with pytest.raises(akida.InputError, match="(?i)shape"):
        data_model.forward(np.zeros(shape, np.uint8))


def test_input_values_not_below_2_pow_input_bits(data_model):
    x = np.zeros((2, 4, 5, 2), np.uint8)
    x[1, 3, 4, 1] = 15
    data_model.forward(x)  # 15 < 2**4 is fine
    x[1, 3, 4, 1] = 16
    with pytest.raises(akida.InputError, match="(?i)input_bits|range|16|below"):
        data_model.forward(x)
    with pytest.raises(akida.InputError):
        data_model.predict(x)


def test_input_bits_1_accepts_only_binary():
    model = model_with(input_data(w=2, h=2, c=1, bits=1))
    model.forward(np.ones((1, 2, 2, 1), np.uint8))
    with pytest.raises(akida.InputError):
        model.forward(np.full((1, 2, 2, 1), 2, np.uint8))


def test_input_conv_accepts_full_uint8_range():
    model = model_with(input_conv())
    model.forward(np.full((1, 8, 8, 1), 255, np.uint8))


def test_events_into_input_convolutional():
    model = model_with(input_conv())
    ev = akida.Events.from_dense(np.ones((1, 8, 8, 1), np.uint8))
    with pytest.raises(akida.InputError, match="(?i)event|InputConvolutional|input_conv"):
        model.forward(ev)


def test_forward_on_empty_model():
    with pytest.raises(akida.ArchitectureError, match="(?i)empty|no layer|layer"):
        akida.Model().forward(np.zeros((1, 1, 1, 1), np.uint8))
    with pytest.raises(akida.ArchitectureError):
        akida.Model().predict(np.zeros((1, 1, 1, 1), np.uint8))


def test_empty_model_shapes():
    with pytest.raises(akida.ArchitectureError):
        akida.Model().input_shape
    with pytest.raises(akida.ArchitectureError):
        akida.Model().output_shape


@pytest.mark.parametrize("num_classes", [2, 4, 0])
def test_predict_num_classes_must_divide(data_model, num_classes):
    x = np.zeros((1, 4, 5, 2), np.uint8)
    with pytest.raises(ValueError, match="(?i)num_classes") as info:
        data_model.predict(x, num_classes=num_classes)
    assert isinstance(info.value, akida.AkidaError)


# ----------------------------------------------------------------------------------------------
# Invalid parameters
# ----------------------------------------------------------------------------------------------

BAD_PARAMS = [
    # (constructor, kwargs, parameter name expected in the message)
    (akida.FullyConnected, dict(num_neurons=0), "num_neurons"),
    (akida.FullyConnected, dict(num_neurons=-1), "num_neurons"),
    (conv, dict(num_neurons=0), "num_neurons"),
    (sep_conv, dict(num_neurons=0), "num_neurons"),
    (input_conv, dict(num_neurons=0), "num_neurons"),
    (conv, dict(kernel_width=0), "kernel_width"),
    (conv, dict(kernel_height=0), "kernel_height"),
    (conv, dict(kernel_width=-2), "kernel_width"),
    (sep_conv, dict(kernel_height=0), "kernel_height"),
    (input_conv, dict(kernel_width=0), "kernel_width"),
    (conv, dict(stride_x=0), "stride_x"),
    (conv, dict(stride_y=0), "stride_y"),
    (conv, dict(stride_y=-1), "stride_y"),
    (sep_conv, dict(stride_x=0), "stride_x"),
    (input_conv, dict(stride_y=0), "stride_y"),
    (conv, dict(weights_bits=3), "weights_bits"),
    (conv, dict(weights_bits=8), "weights_bits"),
    (conv, dict(weights_bits=0), "weights_bits"),
    (sep_conv, dict(weights_bits=3), "weights_bits"),
    (sep_conv, dict(weights_bits=8), "weights_bits"),
    (lambda **k: akida.FullyConnected(num_neurons=2, **k), dict(weights_bits=3), "weights_bits"),
    (lambda **k: akida.FullyConnected(num_neurons=2, **k), dict(weights_bits=8), "weights_bits"),
    (input_conv, dict(weights_bits=3), "weights_bits"),
    (input_conv, dict(weights_bits=16), "weights_bits"),
    (conv, dict(threshold_fire_bits=3), "threshold_fire_bits"),
    (conv, dict(threshold_fire_bits=0), "threshold_fire_bits"),
    (conv, dict(threshold_fire_bits=8), "threshold_fire_bits"),
    (lambda **k: akida.FullyConnected(num_neurons=2, **k), dict(threshold_fire_bits=3), "threshold_fire_bits"),
    (lambda **k: akida.Concat(**k), dict(threshold_fire_bits=3), "threshold_fire_bits"),
    (input_conv, dict(threshold_fire_bits=3), "threshold_fire_bits"),
    (conv, dict(threshold_fire_step=0.0), "threshold_fire_step"),
    (conv, dict(threshold_fire_step=-1.0), "threshold_fire_step"),
    (conv, dict(threshold_fire_step=float("nan")), "threshold_fire_step"),
    (lambda **k: akida.FullyConnected(num_neurons=2, **k), dict(threshold_fire_step=0.0), "threshold_fire_step"),
    (lambda **k: akida.Concat(**k), dict(threshold_fire_step=-0.5), "threshold_fire_step"),
    (input_conv, dict(threshold_fire_step=float("nan")), "threshold_fire_step"),
    (input_conv, dict(input_channels=2), "input_channels"),
    (input_conv, dict(input_channels=0), "input_channels"),
    (input_conv, dict(input_channels=4), "input_channels"),
    (input_conv, dict(input_width=0), "input_width"),
    (input_conv, dict(padding_value=256), "padding_value"),
    (input_conv, dict(padding_value=-1), "padding_value"),
    (conv, dict(pooling_width=2, pooling_height=2), "pooling"),  # sizes with NoPooling
    (conv, dict(pooling_width=2), "pooling"),
    (input_conv, dict(pooling_height=2, pooling_width=2), "pooling"),
    (conv, dict(pooling_type="MAX", pooling_width=-1, pooling_height=2), "pooling_width|pooling_height"),
    (conv, dict(pooling_type="MAX", pooling_width=2, pooling_height=-1), "pooling_width|pooling_height"),
    (conv, dict(pooling_type="MAX", pooling_width=0, pooling_height=2), "pooling_width"),
    (conv, dict(pooling_type="AVG", pooling_width=2, pooling_height=-3), "pooling_height"),
    (conv, dict(pooling_type="MAX", pooling_width=2, pooling_height=2, pooling_stride_x=0), "pooling_stride_x"),
    (conv, dict(pooling_type="MAX", pooling_width=2, pooling_height=2, pooling_stride_y=-2), "pooling_stride_y"),
    (sep_conv, dict(pooling_type="MAX", pooling_width=-1, pooling_height=3), "pooling_width|pooling_height"),
    (lambda **k: input_data(**k), dict(w=0), "input_width"),
    (lambda **k: input_data(**k), dict(h=0), "input_height"),
    (lambda **k: input_data(**k), dict(c=0), "input_channels"),
    (lambda **k: input_data(**k), dict(bits=0), "input_bits"),
    (lambda **k: input_data(**k), dict(bits=9), "input_bits"),
    (conv, dict(threshold_fire=2**31), "threshold_fire"),
]


def _resolve(kwargs):
    out = dict(kwargs)
    if out.get("pooling_type") == "MAX":
        out["pooling_type"] = akida.PoolingType.Max
    if out.get("pooling_type") == "AVG":
        out["pooling_type"] = akida.PoolingType.Average
    return out


@pytest.mark.parametrize("make, kwargs, word", BAD_PARAMS,
                         ids=[f"{i}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for i, (_, kw, _) in
                              enumerate(BAD_PARAMS)])
def test_invalid_parameters(make, kwargs, word):
    with pytest.raises(akida.ParameterError, match=word):
        make(**_resolve(kwargs))


def test_parameter_error_names_the_layer():
    with pytest.raises(akida.ParameterError, match="num_neurons") as info:
        akida.FullyConnected(num_neurons=0, name="my_classifier")
    assert "my_classifier" in str(info.value) and "FullyConnected" in str(info.value)
    with pytest.raises(akida.ParameterError, match="kernel_width") as info:
        conv(kernel_width=0, name="edge_detector")
    assert "edge_detector" in str(info.value) and "Convolutional" in str(info.value)


def test_valid_extreme_parameters_are_accepted():
    conv(weights_bits=4, threshold_fire_bits=4, threshold_fire_step=1e-6, threshold_fire=-(2**31))
    conv(threshold_fire=2**31 - 1)
    input_conv(weights_bits=8, padding_value=255, input_channels=3)
    input_conv(padding_value=0, weights_bits=1)
    input_data(bits=8)
    input_data(bits=1)
    conv(pooling_type=akida.PoolingType.Max, pooling_width=-1, pooling_height=-1)
    conv(pooling_type=akida.PoolingType.Average, pooling_width=2, pooling_height=3, pooling_stride_x=1,
         pooling_stride_y=3)


# ----------------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------------


def test_first_layer_must_be_an_input_layer():
    for layer in (akida.FullyConnected(num_neurons=2), conv(), sep_conv(), akida.Concat()):
        with pytest.raises(akida.ArchitectureError, match="(?i)input|first"):
            akida.Model().add(layer)
    with pytest.raises(akida.ArchitectureError):
        akida.Model(layers=[akida.FullyConnected(num_neurons=2)])


@pytest.mark.parametrize("second", ["InputData", "InputConvolutional"])
def test_only_one_input_layer(second):
    model = model_with(input_data(w=8, h=8))
    layer = input_data(w=8, h=8) if second == "InputData" else input_conv()
    with pytest.raises(akida.ArchitectureError, match="(?i)input"):
        model.add(layer)
    assert model.get_layer_count() == 1


def test_concat_needs_two_inbound_layers():
    model = model_with(input_data(w=4, h=4), conv())
    with pytest.raises(akida.ArchitectureError, match="(?i)concat|inbound"):
        model.add(akida.Concat())  # default inbound: just the last layer
    with pytest.raises(akida.ArchitectureError, match="(?i)concat|inbound"):
        model.add(akida.Concat(), inbound_layers=[model.get_layer("conv")])
    assert model.get_layer_count() == 2


def test_concat_spatial_sizes_must_match():
    model = model_with(input_data(w=4, h=4))
    a = conv()  # Same: 4x4
    b = conv(stride_x=2, stride_y=2)  # Same, stride 2: 2x2
    model.add(a)
    model.add(b, inbound_layers=[model.get_layer(0)])
    with pytest.raises(akida.ArchitectureError, match="(?i)shape|size|height|width|spatial"):
        model.add(akida.Concat(), inbound_layers=[a, b])
    c = conv(num_neurons=5)
    model.add(c, inbound_layers=[model.get_layer(0)])
    model.add(akida.Concat(), inbound_layers=[a, c])  # same spatial size: fine
    assert model.output_shape == (4, 4, 7)


def test_other_layers_take_one_inbound_layer():
    model = model_with(input_data(w=4, h=4), conv(name="a"))
    model.add(conv(name="b"), inbound_layers=[model.get_layer(0)])
    with pytest.raises(akida.ArchitectureError):
        model.add(akida.FullyConnected(num_neurons=1), inbound_layers=[model.get_layer("a"), model.get_layer("b")])


def test_inbound_layer_must_be_in_the_model():
    model = model_with(input_data(w=4, h=4))
    other = model_with(input_data(w=4, h=4))
    with pytest.raises(akida.ArchitectureError):
        model.add(conv(), inbound_layers=[other.get_layer(0)])
    with pytest.raises(akida.ArchitectureError):
        model.add(conv(), inbound_layers=[conv()])


def test_duplicate_name():
    model = model_with(input_data(w=4, h=4), akida.FullyConnected(num_neurons=2, name="fc"))
    with pytest.raises(akida.ArchitectureError, match="fc"):
        model.add(akida.FullyConnected(num_neurons=2, name="fc"))
    with pytest.raises(akida.ArchitectureError, match="input_data"):
        model.add(akida.FullyConnected(num_neurons=2, name="input_data"))
    assert model.get_layer_count() == 2


def test_layer_belongs_to_one_model():
    fc = akida.FullyConnected(num_neurons=2)
    model_with(input_data(), fc)
    other = model_with(input_data())
    with pytest.raises(akida.ArchitectureError):
        other.add(fc)
    assert other.get_layer_count() == 1
    same = akida.FullyConnected(num_neurons=2, name="x")
    model = model_with(input_data(), same)
    with pytest.raises(akida.ArchitectureError):
        model.add(same)
    inp = input_data()
    akida.Model(layers=[inp])
    with pytest.raises(akida.ArchitectureError):
        akida.Model(layers=[inp])


@pytest.mark.parametrize("layer", ["conv", "sep_conv"])
def test_kernel_larger_than_input_in_valid_mode(layer):
    make = conv if layer == "conv" else sep_conv
    model = model_with(input_data(w=4, h=2))
    with pytest.raises(akida.ArchitectureError, match="(?i)kernel"):
        model.add(make(kernel_width=3, kernel_height=3, convolution_mode=akida.ConvolutionMode.Valid))
    with pytest.raises(akida.ArchitectureError, match="(?i)kernel"):
        model.add(make(kernel_width=5, kernel_height=1, convolution_mode=akida.ConvolutionMode.Valid))
    assert model.get_layer_count() == 1
    # Same and Full accept kernels larger than the input
    model.add(make(kernel_width=5, kernel_height=5, convolution_mode=akida.ConvolutionMode.Same))
    model.add(make(kernel_width=5, kernel_height=5, convolution_mode=akida.ConvolutionMode.Full))
    assert model.output_shape == (6, 8, 2)


def test_input_conv_kernel_larger_than_input_in_valid_mode():
    with pytest.raises((akida.ArchitectureError, akida.ParameterError), match="(?i)kernel"):
        akida.Model().add(input_conv(input_width=2, convolution_mode=akida.ConvolutionMode.Valid))


@pytest.mark.parametrize("mode", ["Valid", "Full"])
def test_pool_window_larger_than_map(mode):
    mode = getattr(akida.ConvolutionMode, mode)
    model = model_with(input_data(w=4, h=3))
    # Full 1x1 convolution: the map stays 3x4
    with pytest.raises(akida.ArchitectureError, match="pooling_height 4 is larger than the map \\(3\\)"):
        model.add(conv(kernel_width=1, kernel_height=1, convolution_mode=mode, pooling_type=akida.PoolingType.Max,
                       pooling_width=2, pooling_height=4))
    with pytest.raises(akida.ArchitectureError, match="(?i)pool.*Same mode"):
        model.add(conv(kernel_width=1, kernel_height=1, convolution_mode=mode,
                       pooling_type=akida.PoolingType.Average, pooling_width=5, pooling_height=1))
    # Valid 3x3 conv on 3x4 -> 1x2; a 2x2 window no longer fits
    with pytest.raises(akida.ArchitectureError, match="(?i)pool"):
        model.add(conv(convolution_mode=akida.ConvolutionMode.Valid, pooling_type=akida.PoolingType.Max,
                       pooling_width=2, pooling_height=2))
    assert model.get_layer_count() == 1
    model.add(conv(kernel_width=1, kernel_height=1, convolution_mode=mode, pooling_type=akida.PoolingType.Max,
                   pooling_width=4, pooling_height=3))
    assert model.output_shape == (1, 1, 2)


def test_pool_window_larger_than_map_is_allowed_in_same_mode():
    # TensorFlow's 'same' pooling: ceil(n / s) windows, the padded cells ignored
    model = model_with(input_data(w=4, h=3))
    model.add(conv(pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=4))
    assert model.output_shape == (1, 2, 2)
    model.pop_layer()
    model.add(conv(pooling_type=akida.PoolingType.Average, pooling_width=5, pooling_height=1, pooling_stride_x=1))
    assert model.output_shape == (3, 4, 2)


def test_pool_window_larger_than_map_input_conv():
    with pytest.raises(akida.ArchitectureError, match="(?i)pool"):
        akida.Model().add(input_conv(input_width=3, input_height=3, convolution_mode=akida.ConvolutionMode.Valid,
                                     kernel_width=1, kernel_height=1, pooling_type=akida.PoolingType.Max,
                                     pooling_width=4, pooling_height=4))
    model = akida.Model()
    model.add(input_conv(input_width=3, input_height=3, pooling_type=akida.PoolingType.Max, pooling_width=4,
                         pooling_height=4))
    assert model.output_shape == (1, 1, 2)


@pytest.mark.parametrize("nxt", ["FullyConnected", "Convolutional", "SeparableConvolutional", "Concat"])
def test_layer_with_activations_disabled_must_be_the_output(nxt):
    model = model_with(input_data(w=4, h=4))
    model.add(conv(activations_enabled=False, name="raw"))
    model.add(conv(name="other"), inbound_layers=[model.get_layer(0)])
    if nxt == "Concat":
        layer, inbound = akida.Concat(), [model.get_layer("raw"), model.get_layer("other")]
    else:
        layer = {"FullyConnected": lambda: akida.FullyConnected(num_neurons=2), "Convolutional": conv,
                 "SeparableConvolutional": sep_conv}[nxt]()
        inbound = [model.get_layer("raw")]
    with pytest.raises(akida.ArchitectureError, match="(?i)activation|raw"):
        model.add(layer, inbound_layers=inbound)


def test_input_conv_with_activations_disabled_cannot_feed():
    model = model_with(input_conv(activations_enabled=False))
    with pytest.raises(akida.ArchitectureError, match="(?i)activation|input_conv"):
        model.add(akida.FullyConnected(num_neurons=1))


def test_potential_bound_rejected():
    # FullyConnected over H x W x 1, 8-bit inputs (max 255), 4-bit weights (max |w| = 7):
    # bound = H*W * 255 * 7. H*W = 1203072 = 384 * 3133 gives 2147483520 <= 2**31 - 1;
    # 1203073 = 17 * 70769 exceeds it (dimensions kept small: the engine limits them).
    c_ok = (2**31 - 1) // (255 * 7)
    assert c_ok == 384 * 3133 and c_ok + 1 == 17 * 70769
    assert c_ok * 255 * 7 <= 2**31 - 1 < (c_ok + 1) * 255 * 7
    model = model_with(input_data(w=1, h=17, c=70769, bits=8))
    with pytest.raises(akida.ArchitectureError, match="(?i)overflow|bound|potential|2147483647|int32"):
        model.add(akida.FullyConnected(num_neurons=1, weights_bits=4))
    assert model.get_layer_count() == 1
    model = model_with(input_data(w=3133, h=384, c=1, bits=8))
    fc = akida.FullyConnected(num_neurons=1, weights_bits=4, activations_enabled=False)
    model.add(fc)
    fc.set_variable("weights", np.full((384, 3133, 1, 1), 7, np.int8))
    x = np.full((1, 384, 3133, 1), 255, np.uint8)
    out = model.forward(x)
    assert out.dtype == np.int32
    assert int(out.ravel()[0]) == c_ok * 255 * 7
    fc.set_variable("weights", np.full((384, 3133, 1, 1), -7, np.int8))
    assert int(model.forward(x).ravel()[0]) == -c_ok * 255 * 7


def test_potential_bound_separable():
    # 8-bit inputs, 4-bit weights, 5x5 depthwise kernel: |d| <= 25 * 255 * 7 = 44625;
    # pointwise over C channels: |p| <= C * 44625 * 7 = C * 312375. C = 6874 fits, 6875 does not.
    c_ok = (2**31 - 1) // (25 * 255 * 7 * 7)
    assert c_ok == 6874
    model = model_with(input_data(w=5, h=5, c=c_ok + 1, bits=8))
    with pytest.raises(akida.ArchitectureError, match="(?i)overflow|bound|potential|2147483647|int32"):
        model.add(sep_conv(kernel_width=5, kernel_height=5, num_neurons=1, weights_bits=4))
    model = model_with(input_data(w=5, h=5, c=c_ok, bits=8))
    layer = sep_conv(kernel_width=5, kernel_height=5, num_neurons=1, weights_bits=4, activations_enabled=False,
                     convolution_mode=akida.ConvolutionMode.Valid)
    model.add(layer)
    layer.set_variable("weights", np.full((5, 5, c_ok, 1), -7, np.int8))
    layer.set_variable("weights_pw", np.full((1, 1, c_ok, 1), 7, np.int8))
    out = model.forward(np.full((1, 5, 5, c_ok), 255, np.uint8))
    assert out.shape == (1, 1, 1, 1)
    assert int(out.ravel()[0]) == -c_ok * 25 * 255 * 7 * 7


def test_potential_bound_input_convolutional():
    # 8-bit weights (127), 255 inputs, 3 channels: |p| <= kh * kw * 3 * 32385.
    # 148 x 149 taps fit (2142492030), 149 x 149 do not (2157006885).
    assert 148 * 149 * 3 * 255 * 127 <= 2**31 - 1 < 149 * 149 * 3 * 255 * 127
    with pytest.raises(akida.ArchitectureError, match="(?i)overflow|bound|potential|2147483647|int32"):
        akida.Model().add(input_conv(input_width=149, input_height=149, input_channels=3, kernel_width=149,
                                     kernel_height=149, num_neurons=1, weights_bits=8,
                                     convolution_mode=akida.ConvolutionMode.Valid))
    model = akida.Model()
    layer = input_conv(input_width=149, input_height=148, input_channels=3, kernel_width=149, kernel_height=148,
                       num_neurons=1, weights_bits=8, convolution_mode=akida.ConvolutionMode.Valid,
                       activations_enabled=False)
    model.add(layer)
    layer.set_variable("weights", np.full((148, 149, 3, 1), -127, np.int8))
    out = model.forward(np.full((1, 148, 149, 3), 255, np.uint8))
    assert int(out.ravel()[0]) == -148 * 149 * 3 * 255 * 127


def test_potential_bound_depends_on_the_inbound_activation_bits():
    # 1-bit activations feeding a FullyConnected: max input 1, so the bound is H*W*C * 1 * 7 and a large
    # layer is fine. (Only checks that a legal model is not rejected.)
    model = model_with(input_data(w=1024, h=1024, c=1, bits=1))
    model.add(akida.FullyConnected(num_neurons=1, weights_bits=4))


def test_shapes_of_a_detached_layer():
    fc = akida.FullyConnected(num_neurons=2)
    with pytest.raises(akida.ArchitectureError):
        fc.input_shape
    with pytest.raises(akida.ArchitectureError):
        fc.output_shape
    with pytest.raises(akida.AkidaError):
        fc.get_variable("weights")
    assert list(fc.inbound_layers) == []


# ----------------------------------------------------------------------------------------------
# Variables
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def layers():
    model = model_with(input_data(w=3, h=3, c=2))
    model.add(conv(weights_bits=1, name="c1"))
    model.add(conv(weights_bits=2, name="c2"))
    model.add(conv(weights_bits=4, name="c4"))
    model.add(sep_conv(weights_bits=2, name="s2"))
    model.add(akida.FullyConnected(num_neurons=2, name="fc"))
    ic = input_conv(weights_bits=8)
    model_with(ic)
    return {l.name: l for l in model.layers} | {"ic8": ic}


def test_set_variable_wrong_shape(layers):
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["c1"].set_variable("weights", np.zeros((3, 3, 2, 3), np.int8))
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["c1"].set_variable("weights", np.zeros((3, 3, 2), np.int8))
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["fc"].set_variable("threshold_fire", np.zeros((3,), np.int32))
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["fc"].set_variable("threshold_fire_step", np.ones((1, 2), np.float32))
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["s2"].set_variable("weights_pw", np.zeros((1, 1, 3, 2), np.int8))  # in_channels is 2 (c4)
    with pytest.raises(akida.VariableError, match="(?i)shape"):
        layers["fc"].set_variable("threshold_fire", np.int32(0))


@pytest.mark.parametrize(
    "layer, var, value",
    [
        ("c1", "weights", -1),
        ("c1", "weights", 2),
        ("c2", "weights", 2),
        ("c2", "weights", -2),
        ("c4", "weights", 8),
        ("c4", "weights", -8),
        ("s2", "weights", 2),
        ("s2", "weights_pw", -2),
        ("fc", "weights", 2),
        ("ic8", "weights", -128),
        ("ic8", "weights", 128),
    ],
)
def test_set_variable_out_of_range(layers, layer, var, value):
    target = layers[layer]
    arr = np.zeros(target.get_variable(var).shape, np.int64)
    arr.flat[-1] = value
    with pytest.raises(akida.VariableError, match=f"(?i){var}|range|{value}"):
        target.set_variable(var, arr)
    assert not target.get_variable(var).any()  # nothing changed, nothing clipped


def test_set_variable_extremes_in_range(layers):
    for name, (lo, hi) in {"c1": (0, 1), "c2": (-1, 1), "c4": (-7, 7), "ic8": (-127, 127)}.items():
        layer = layers[name]
        shape = layer.get_variable("weights").shape
        w = np.full(shape, lo, np.int64)
        w.flat[0] = hi
        layer.set_variable("weights", w)
        assert np.array_equal(layer.get_variable("weights"), w)


def test_threshold_range(layers):
    fc = layers["fc"]
    with pytest.raises(akida.VariableError):
        fc.set_variable("threshold_fire", np.array([2**31, 0], np.int64))
    with pytest.raises(akida.VariableError):
        fc.set_variable("threshold_fire", np.array([0, -(2**31) - 1], np.int64))
    fc.set_variable("threshold_fire", np.array([2**31 - 1, -(2**31)], np.int64))
    assert fc.get_variable("threshold_fire").tolist() == [2**31 - 1, -(2**31)]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), -0.0])
def test_step_must_be_positive(layers, bad):
    with pytest.raises(akida.VariableError, match="(?i)threshold_fire_step|step|positive|> ?0"):
        layers["fc"].set_variable("threshold_fire_step", np.array([1.0, bad], np.float32))
    assert layers["fc"].get_variable("threshold_fire_step").tolist() == [1.0, 1.0]


def test_unknown_variable(layers):
    with pytest.raises(akida.VariableError, match="bias"):
        layers["fc"].set_variable("bias", np.zeros(2, np.int32))
    with pytest.raises(akida.VariableError, match="bias"):
        layers["fc"].get_variable("bias")
    with pytest.raises(akida.VariableError, match="weights_pw"):
        layers["c1"].set_variable("weights_pw", np.zeros((1, 1, 2, 2), np.int8))
    with pytest.raises(akida.VariableError, match="threshold_fire"):
        layers["input_data"].get_variable("threshold_fire")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_to_integer_variable(layers, dtype):
    with pytest.raises(akida.DTypeError, match="(?i)dtype|float|integer|int"):
        layers["c2"].set_variable("weights", np.zeros(layers["c2"].get_variable("weights").shape, dtype))
    with pytest.raises(akida.DTypeError):
        layers["fc"].set_variable("threshold_fire", np.zeros(2, dtype))


def test_integer_array_to_step_variable_is_converted(layers):
    # docs/api.md: integer arrays are accepted for threshold_fire_step and converted exactly.
    layers["fc"].set_variable("threshold_fire_step", np.full(2, 3, np.int32))
    step = layers["fc"].get_variable("threshold_fire_step")
    assert step.dtype == np.float32 and step.tolist() == [3.0, 3.0]


def test_string_arrays_rejected(layers):
    with pytest.raises(akida.DTypeError):
        layers["fc"].set_variable("threshold_fire", np.array(["a", "b"]))


# ----------------------------------------------------------------------------------------------
# get_layer
# ----------------------------------------------------------------------------------------------


def test_get_layer_unknown_name():
    model = model_with(input_data())
    with pytest.raises(akida.LayerNotFoundError, match="nope"):
        model.get_layer("nope")
    with pytest.raises(KeyError):
        model.get_layer("nope")
    with pytest.raises(IndexError):
        model.get_layer("nope")


def test_get_layer_index_out_of_range():
    model = model_with(input_data())
    with pytest.raises(akida.LayerNotFoundError, match="3"):
        model.get_layer(3)
    with pytest.raises(IndexError):
        model.get_layer(1)
    with pytest.raises(KeyError):
        model.get_layer(1)
    with pytest.raises(akida.LayerNotFoundError):
        akida.Model().get_layer(0)


# ----------------------------------------------------------------------------------------------
# Messages found unclear in a review of the documentation against behaviour
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**64, -(2**70)])
def test_compile_seed_out_of_range_is_a_parameter_error(seed):
    model = akida.Model([input_data(bits=1), akida.FullyConnected(4)])
    with pytest.raises(akida.ParameterError, match=r"'seed' must be in \[0, 2\*\*64\)"):
        model.compile(3, seed=seed)
    model.compile(3, seed=2**64 - 1)  # the largest seed is accepted


def test_layer_parameters_are_read_only_with_a_clear_message():
    params = akida.FullyConnected(4).parameters
    with pytest.raises(AttributeError, match="read-only.*num_neurons"):
        params.num_neurons = 3
    with pytest.raises(AttributeError, match="read-only"):
        del params.num_neurons
    assert params.num_neurons == 4


def test_empty_event_lists_are_no_events():
    events = akida.Events((4, 4, 1), [], [], [], [], [])
    assert events.to_dense().shape == (0, 4, 4, 1)


def test_unnamed_layer_errors_name_the_layer_type():
    with pytest.raises(akida.ArchitectureError, match=r"layer <unnamed InputConvolutional>: kernel_height 5"):
        akida.InputConvolutional(4, 4, 1, 5, 5, 2, convolution_mode=Mode.Valid)


def test_learning_weights_bits_message_shows_the_value():
    model = akida.Model([input_data(bits=1), akida.FullyConnected(4, weights_bits=2)])
    with pytest.raises(akida.ArchitectureError, match=r"needs weights_bits=1, it has weights_bits=2$"):
        model.compile(3)


def test_fit_after_adding_a_layer_behind_the_compiled_one_says_what_to_do():
    model = akida.Model([input_data(bits=1), akida.FullyConnected(4, name="learner")])
    model.compile(3)
    model.add(akida.FullyConnected(2, name="head"))
    with pytest.raises(akida.ArchitectureError, match=r"last layer 'head' is not compiled.*'learner' is: pop"):
        model.fit(np.zeros((1, 4, 4, 1), np.uint8))


def test_adding_a_popped_layer_object_says_it_was_popped():
    model = akida.Model([input_data(), akida.FullyConnected(4)])
    popped = model.layers[-1]
    model.pop_layer()
    with pytest.raises(akida.LayerNotFoundError, match="pop_layer"):
        popped.name
    with pytest.raises(akida.ArchitectureError, match="removed by pop_layer"):
        akida.Model([input_data()]).add(popped)


def test_bools_are_not_layer_indices():
    model = akida.Model([akida.InputData(input_shape=(2, 2, 1), input_bits=1), akida.FullyConnected(2)])
    with pytest.raises(TypeError, match="get_layer"):
        model.get_layer(True)
    with pytest.raises(TypeError, match="output_layer"):
        model.forward(np.zeros((1, 2, 2, 1), np.uint8), output_layer=np.bool_(True))
    assert model.get_layer(np.int64(1)).name == "fully_connected"


def test_a_failed_model_constructor_leaves_its_layers_free():
    first = akida.InputData(input_shape=(2, 2, 1), input_bits=1)
    head = akida.FullyConnected(2, activations_enabled=False)
    after_head = akida.FullyConnected(2)  # a layer after potentials is refused
    with pytest.raises(akida.ArchitectureError):
        akida.Model([first, head, after_head])
    model = akida.Model([first, head])
    assert [layer.name for layer in model.layers] == ["input_data", "fully_connected"]
    # Twice the same object: refused, and the object stays free as well.
    again = akida.InputData(input_shape=(2, 2, 1), input_bits=1)
    with pytest.raises(akida.ArchitectureError, match="already belongs"):
        akida.Model([again, again])
    assert akida.Model([again]).get_layer_count() == 1


@pytest.mark.parametrize("step, why", [(1e-300, "becomes 0.0 as a float32"), (1e39, "becomes inf as a float32"),
                                       (0.0, "must be a finite number > 0, got 0.0"), (float("nan"), "got NaN")])
def test_a_step_that_float32_cannot_hold_says_so(step, why):
    with pytest.raises(akida.ParameterError, match=f"threshold_fire_step {'1e-300 ' if step == 1e-300 else ''}.*{why}"):
        akida.Convolutional(3, 3, 4, threshold_fire_step=step)
    model = akida.Model([akida.InputData(input_shape=(2, 2, 1), input_bits=1), akida.FullyConnected(2)])
    values = np.ones(2)
    values[1] = step
    with pytest.raises(akida.VariableError, match=f"index 1 .*{why}"):
        model.get_layer(1).set_variable("threshold_fire_step", values)

"""Every public argument refuses a wrong type with a TypeError (or, for an integer beyond 64 bits,
a ParameterError) that names the argument, the expected type and what was given; numpy integer
scalars are accepted wherever ints are, numpy.bool_ wherever bools are, bytes-like objects as
model buffers and bytes as paths (issue 12, "Type errors name the argument")."""

import inspect

import numpy as np
import pytest

import akida

# What each kind of argument must refuse, and one value of a wrong type per kind.
WRONG = {
    "int": [3.0, "3", [3], None, b"3", True, np.bool_(False)],
    "bool": [1, "yes", None, 1.0],
    "float": ["1.0", [1.0], None, b"1"],
    "str": [3, None, b"name", ["a"]],
    "mode": [1, "same", None],
    "pool": [1, "max", None],
}

CONV_KINDS = {
    "kernel_width": "int", "kernel_height": "int", "num_neurons": "int", "name": "str",
    "convolution_mode": "mode", "stride_x": "int", "stride_y": "int", "weights_bits": "int",
    "pooling_width": "int", "pooling_height": "int", "pooling_type": "pool", "pooling_stride_x": "int",
    "pooling_stride_y": "int", "activations_enabled": "bool", "threshold_fire": "int",
    "threshold_fire_step": "float", "threshold_fire_bits": "int",
}
ACTIVATION_KINDS = {k: CONV_KINDS[k] for k in
                    ("name", "activations_enabled", "threshold_fire", "threshold_fire_step", "threshold_fire_bits")}

CONSTRUCTORS = {
    akida.InputData: (dict(input_width=4, input_height=4, input_channels=1),
                      {"input_width": "int", "input_height": "int", "input_channels": "int", "input_bits": "int",
                       "name": "str"}),
    akida.InputConvolutional: (dict(input_width=8, input_height=8, input_channels=1, kernel_width=3,
                                    kernel_height=3, num_neurons=4),
                               {"input_width": "int", "input_height": "int", "input_channels": "int",
                                "padding_value": "int", **CONV_KINDS}),
    akida.Convolutional: (dict(kernel_width=3, kernel_height=3, num_neurons=4), CONV_KINDS),
    akida.SeparableConvolutional: (dict(kernel_width=3, kernel_height=3, num_neurons=4), CONV_KINDS),
    akida.FullyConnected: (dict(num_neurons=4), {"num_neurons": "int", "weights_bits": "int", **ACTIVATION_KINDS}),
    akida.Concat: ({}, ACTIVATION_KINDS),
}

CASES = [
    (cls, name, wrong)
    for cls, (_, kinds) in CONSTRUCTORS.items()
    for name, kind in kinds.items()
    for wrong in WRONG[kind]
    # None is the documented "not given" of InputData's optional sizes.
    if not (cls is akida.InputData and wrong is None and name.startswith("input_") and name != "input_bits")
]


@pytest.mark.parametrize("cls, name, wrong", CASES, ids=[f"{c.__name__}-{n}-{w!r}" for c, n, w in CASES])
def test_constructor_type_errors_name_the_argument(cls, name, wrong):
    required, _ = CONSTRUCTORS[cls]
    kwargs = dict(required, **{name: wrong})
    with pytest.raises(TypeError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert f"'{name}'" in message, message
    assert f"{cls.__name__}()" in message, message
    assert type(wrong).__name__ in message, message
    assert "must be" in message, message


@pytest.mark.parametrize("cls", list(CONSTRUCTORS))
def test_constructors_take_numpy_scalars_and_numpy_bools(cls):
    required, kinds = CONSTRUCTORS[cls]
    plain = cls(**required)
    numpy_kwargs = {k: np.int64(v) if isinstance(v, int) else v for k, v in required.items()}
    if "activations_enabled" in kinds:
        numpy_kwargs["activations_enabled"] = np.bool_(True)
    if "threshold_fire" in kinds:
        numpy_kwargs["threshold_fire"] = np.int32(0)
        numpy_kwargs["threshold_fire_step"] = np.float32(1.0)
    for k, v in list(numpy_kwargs.items()):
        if isinstance(v, np.int64):
            numpy_kwargs[k] = np.uint16(v) if k.startswith("kernel") else v
    assert cls(**numpy_kwargs).parameters == plain.parameters


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**100])
def test_integers_beyond_64_bits_are_parameter_errors_naming_the_argument(value):
    with pytest.raises(akida.ParameterError, match="'kernel_width'"):
        akida.Convolutional(value, 3, 3)
    with pytest.raises(akida.ParameterError, match="'threshold_fire'"):
        akida.FullyConnected(3, threshold_fire=value)


def test_the_issue_examples():
    with pytest.raises(TypeError, match=r"Convolutional\(\) argument 'kernel_width' must be an int, got float 3.0"):
        akida.Convolutional(3.0, 3, 3)
    model = akida.Model([akida.InputData(4, 4, 1)])
    with pytest.raises(TypeError, match=r"add\(\) argument 'inbound_layers' must be a list of akida layers, got str"):
        model.add(akida.FullyConnected(2), inbound_layers="abc")
    with pytest.raises(TypeError, match=r"add\(\) argument 'inbound_layers' .* got int 3 at position 1"):
        model.add(akida.FullyConnected(2), inbound_layers=[model.get_layer(0), 3])
    with pytest.raises(TypeError, match=r"add\(\) argument 'layer' must be an akida layer, got str"):
        model.add("layer")
    assert len(model) == 1


def _model():
    model = akida.Model([akida.InputData(4, 4, 1, input_bits=1), akida.FullyConnected(4, activations_enabled=False)])
    return model


def test_model_paths_and_buffers(tmp_path):
    model = _model()
    path = tmp_path / "m.fbz"
    model.save(str(path).encode())  # bytes path
    assert akida.Model(str(path).encode()).to_buffer() == model.to_buffer()
    buffer = model.to_buffer()
    for like in (bytearray(buffer), memoryview(buffer), np.frombuffer(buffer, np.uint8)):
        assert akida.Model(serialized_buffer=like).to_buffer() == buffer
    with pytest.raises(FileNotFoundError):
        akida.Model(b"/nonexistent/path.fbz")
    for wrong in (3, 2.5, object()):
        with pytest.raises(TypeError, match=r"Model\(\) argument 'filename' must be a path"):
            akida.Model(wrong)
        with pytest.raises(TypeError, match=r"save\(\) argument 'path' must be a path"):
            model.save(wrong)
    for wrong in ("abc", 3, 2.5):
        with pytest.raises(TypeError, match=r"Model\(\) argument 'serialized_buffer' must be bytes"):
            akida.Model(serialized_buffer=wrong)
    with pytest.raises(TypeError, match=r"Model\(\) argument 'layers' must be a list of akida layers, got str"):
        akida.Model(layers="abc")


# Model methods: (method, arguments before the fuzzed one, the fuzzed argument's name, wrong values).
X = np.zeros((2, 4, 4, 1), np.uint8)
METHOD_CASES = [
    ("forward", (X,), "batch_size", [1.5, "2", [2]]),
    ("forward", (X,), "output_layer", [1.5, [0], b"x"]),
    ("evaluate", (X,), "batch_size", [1.5, "2"]),
    ("predict", (X,), "num_classes", [1.5, "2"]),
    ("predict", (X,), "batch_size", [1.5, "2"]),
    ("fit", (X,), "batch_size", [1.5, "2"]),
    ("compile", (), "num_weights", [1.5, "2", None]),
    ("compile", (4,), "num_classes", [1.5, "2", None]),
    ("compile", (4,), "initial_plasticity", ["1", None]),
    ("compile", (4,), "min_plasticity", ["1", None]),
    ("compile", (4,), "plasticity_decay", ["1", None]),
    ("compile", (4,), "learning_competition", ["1", None]),
    ("compile", (4,), "seed", [1.5, "1"]),
    ("add_classes", (), "num_classes", [1.5, "1", None]),
    ("get_layer", (), "key", [1.5, None, [0]]),
    ("summary", (), "print_fn", [3, "print"]),
    ("summary", (), "return_string", [1, "yes"]),
    ("map", (None,), "hw_only", [1, "yes"]),
    ("map", (akida.AKD1000(),), "mode", [1, "AllNps"]),
    ("map", (), "device", [3, "AKD1000"]),
    ("map_report", (), "device", [3, "AKD1000"]),
]


@pytest.mark.parametrize("method, before, name, wrongs", METHOD_CASES, ids=[f"{c[0]}-{c[2]}" for c in METHOD_CASES])
def test_model_method_type_errors_name_the_argument(method, before, name, wrongs):
    model = _model()
    for wrong in wrongs:
        with pytest.raises(TypeError) as info:
            getattr(model, method)(*before, **{name: wrong})
        message = str(info.value)
        assert f"{method}() argument '{name}'" in message, message
        assert type(wrong).__name__ in message, message


def test_model_methods_take_numpy_integers():
    model = _model()
    assert model.get_layer(np.int64(1)).name == "fully_connected"
    assert model.get_layer(np.int8(-1)).name == "fully_connected"
    out = model.forward(X, batch_size=np.int32(1), output_layer=np.uint8(1))
    assert out.shape == (2, 1, 1, 4)
    assert model.predict(X, num_classes=np.int64(2), batch_size=np.int16(1)).shape == (2,)
    model.compile(np.int64(3), num_classes=np.int64(2), initial_plasticity=np.float32(1.0), seed=np.uint64(2**63))
    model.add_classes(np.int64(1))
    assert model.get_layer(1).learning.num_classes == 3


def test_layer_methods_and_events():
    layer = akida.InputConvolutional(8, 8, 1, 3, 3, 4)
    for method, args in (("get_variable", ()), ("set_variable", (np.zeros(4),))):
        with pytest.raises(TypeError, match=rf"{method}\(\) argument 'name' must be a str, got int 3"):
            getattr(layer, method)(3, *args)
    with pytest.raises(TypeError, match=r"Events\(\) argument 'shape' must be a tuple of 3 ints, got tuple \(1, 2\)"):
        akida.Events((1, 2), [0], [0], [0], [0], [1])
    with pytest.raises(TypeError, match=r"Events\(\) argument 'shape' must be a tuple of 3 ints, got str"):
        akida.Events("abc", [0], [0], [0], [0], [1])
    with pytest.raises(TypeError, match=r"Events\(\) argument 'num_samples' must be None or an int, got float"):
        akida.Events((2, 2, 1), [0], [0], [0], [0], [1], num_samples=1.5)
    events = akida.Events((np.int64(2), 2, 1), [0], [0], [0], [0], [1], num_samples=np.int64(3))
    assert events.num_samples == 3


def test_every_public_callable_has_a_signature_without_ellipsis():
    callables = [getattr(akida, name) for name in akida.__all__ if callable(getattr(akida, name))]
    for cls in [akida.Model, akida.Layer, akida.Events]:
        callables += [getattr(cls, n) for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))]
    for f in callables:
        if inspect.isclass(f) and issubclass(f, BaseException):
            continue
        try:
            sig = inspect.signature(f)
        except ValueError:
            if inspect.isclass(f):  # classes built only by the engine (Device, NP, ...) take no arguments
                continue
            raise
        for p in sig.parameters.values():
            assert p.default is not Ellipsis, (f, p)


@pytest.mark.parametrize("method", ["forward", "evaluate", "predict", "fit"])
@pytest.mark.parametrize("wrong", ["images", 3, [[1, 2]], np.zeros((2, 4, 4, 1), np.float32)])
def test_inputs_of_the_wrong_type_name_inputs(method, wrong):
    model = _model()
    if method == "fit":
        model.compile(3)
    with pytest.raises(TypeError, match="inputs"):
        getattr(model, method)(wrong)


@pytest.mark.parametrize("wrong", ["abc", [1.5, 2.5], object()])
def test_labels_of_the_wrong_type_name_input_labels(wrong):
    model = _model()
    model.compile(3)
    with pytest.raises(TypeError, match="input_labels"):
        model.fit(X, input_labels=wrong)

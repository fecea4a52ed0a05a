"""``Model.evaluate`` and the per-neuron output rescaling variables ``output_scale`` / ``output_offset``.

evaluate returns float32 ``potentials * output_scale[c] + output_offset[c]`` of the last layer
(docs/semantics.md, Outputs), computed as float32(float64(p) * float64(scale) + float64(offset)).
The expected values come from the numpy oracle (``OracleModel.evaluate``) and, independently, from
numpy on the potentials ``forward`` returns.
"""

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng
from oracle import LayerSpec, OracleModel, build_akida_model

akida = pytest.importorskip("akida")

SCALES = np.array([1.0, 0.5, -2.0, 0.1, 1e-3, 3.75, -0.3, 1e6, 0.0, 1.0 / 3.0, -1e-30, 7e30], np.float32)
OFFSETS = np.array([0.0, 0.25, -1.5, 100.0, -0.0, 1e-7, 1e9, -3.3], np.float32)


def numpy_evaluate(potentials, scale, offset):
    """The documented formula, on forward's int32 potentials."""
    p = np.asarray(potentials, np.int32).astype(np.float64)
    return (p * np.asarray(scale, np.float32).astype(np.float64)
            + np.asarray(offset, np.float32).astype(np.float64)).astype(np.float32)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def random_rescaling(rng, n):
    return rng.choice(SCALES, size=n), rng.choice(OFFSETS, size=n)


def random_potentials_case(rng):
    """A random chain whose last layer has activations disabled, with random rescaling."""
    kinds = [str(rng.choice(["Convolutional", "SeparableConvolutional", "FullyConnected"]))
             for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:
        specs = [H.input_data_spec(rng, h=int(rng.integers(2, 9)), w=int(rng.integers(2, 9)))]
        x = H.rand_input(rng, int(rng.integers(1, 5)), H.out_shape(specs), specs[0].params["input_bits"])
    else:
        specs = [H.input_conv_spec(rng, x_shape=(int(rng.integers(2, 9)), int(rng.integers(2, 9))),
                                   act=H.rand_activation_params(rng, False, enabled=True))]
        x = H.rand_input(rng, int(rng.integers(1, 5)), OracleModel(specs).input_shape, 8)
        H.calibrate(rng, specs, 0, x)
    for i, kind in enumerate(kinds):
        last = i == len(kinds) - 1
        act = H.rand_activation_params(rng, last, enabled=False if last else True)
        if kind == "FullyConnected":
            H.add_fc(rng, specs, x, last, act=act)
        else:
            H.add_conv(rng, specs, kind, x, last, act=act)
    n = H.out_shape(specs)[2]
    scale, offset = random_rescaling(rng, n)
    specs[-1].variables["output_scale"] = scale
    specs[-1].variables["output_offset"] = offset
    return specs, x


def test_evaluate_matches_the_oracle_and_numpy_on_random_models():
    rng = seeded_rng("evaluate-random")
    for i in H.cases(60):
        specs, x = random_potentials_case(rng)
        model = build_akida_model(specs)
        got = model.evaluate(x)
        ctx = "\n" + H.describe(specs, x)
        assert got.dtype == np.float32 and got.shape == (len(x),) + model.output_shape, ctx
        assert same_bits(got, OracleModel(specs).evaluate(x)), ctx
        potentials = model.forward(x)
        assert potentials.dtype == np.int32
        last = model.layers[-1]
        assert same_bits(got, numpy_evaluate(potentials, last.get_variable("output_scale"),
                                             last.get_variable("output_offset"))), ctx
        H.COMPARISONS["count"] += 1
        for batch_size in (1, 3):
            assert same_bits(model.evaluate(x, batch_size=batch_size), got)
        if specs[0].layer_type == "InputData":
            assert same_bits(model.evaluate(akida.Events.from_dense(x)), got)


def test_evaluate_with_same_pooling_at_the_output():
    """The converter's typical head: a Same-mode convolution with padded pooling, then rescaled."""
    rng = seeded_rng("evaluate-pooling")
    for pooling in ("Max", "Average"):
        for _ in H.cases(10):
            specs = [H.input_data_spec(rng, h=int(rng.integers(3, 8)), w=int(rng.integers(3, 8)))]
            x = H.rand_input(rng, 3, H.out_shape(specs), specs[0].params["input_bits"])
            h, w, _ = H.out_shape(specs)
            geo = H.rand_conv_geometry(rng, h, w, mode="Same")
            pool = dict(pooling_type=pooling, pooling_width=int(rng.integers(2, 6)),
                        pooling_height=int(rng.integers(2, 6)), pooling_stride_x=int(rng.integers(1, 4)),
                        pooling_stride_y=int(rng.integers(1, 4)))
            H.add_conv(rng, specs, "Convolutional", x, True, geometry=geo, pooling=pool,
                       act=dict(activations_enabled=False))
            scale, offset = random_rescaling(rng, H.out_shape(specs)[2])
            specs[-1].variables.update(output_scale=scale, output_offset=offset)
            model = build_akida_model(specs)
            assert same_bits(model.evaluate(x), OracleModel(specs).evaluate(x)), H.describe(specs, x)


def test_evaluate_by_hand():
    # Potentials of a 1x1x1 identity FullyConnected are the input; neuron 0 is scaled by 0.5 and
    # shifted by -1, neuron 1 negated: p = 3 -> [0.5, -3], p = 0 -> [-1, 0]
    model = akida.Model([akida.InputData(1, 1, 1, input_bits=4),
                         akida.FullyConnected(2, weights_bits=2, activations_enabled=False)])
    layer = model.layers[1]
    layer.set_variable("weights", np.ones((1, 1, 1, 2), np.int8))
    layer.set_variable("output_scale", [0.5, -1])
    layer.set_variable("output_offset", [-1, 0])
    got = model.evaluate(np.array([3, 0], np.uint8).reshape(2, 1, 1, 1))
    assert got.dtype == np.float32
    assert got.reshape(2, 2).tolist() == [[0.5, -3.0], [-1.0, 0.0]]


def test_evaluate_rounds_once_from_float64():
    # float32(float64(p) * scale + offset): with p = 2**24 + 1 (not a float32), scale 1 and offset
    # 0.5, float64 holds 16777217.5 exactly and the single rounding to float32 gives 16777218;
    # float32 arithmetic would round p first (to 16777216) and end at 16777216.
    big = 2**24 + 1  # = 255 * 65793 + 2: the sum of 65794 input channels through weights of 1
    channels = 65794
    model = akida.Model([akida.InputData(1, 1, channels, input_bits=8),
                         akida.FullyConnected(1, weights_bits=2, activations_enabled=False)])
    layer = model.layers[1]
    layer.set_variable("weights", np.ones((1, 1, channels, 1), np.int8))
    layer.set_variable("output_offset", np.array([0.5], np.float32))
    x = np.full((1, 1, 1, channels), 255, np.uint8)
    x[0, 0, 0, -1] = 2
    assert model.forward(x).ravel().tolist() == [big]
    assert model.evaluate(x).ravel().tolist() == [16777218.0]
    assert np.float32(big) + np.float32(0.5) == np.float32(16777216.0)  # what float32 math would give


def test_evaluate_output_shape_dtype_and_empty_batch():
    model = akida.Model([akida.InputData(5, 4, 2, input_bits=2),
                         akida.Convolutional(3, 3, 3, weights_bits=2, pooling_type=akida.PoolingType.Max,
                                             pooling_width=3, pooling_height=3, activations_enabled=False)])
    assert model.output_shape == (2, 2, 3)
    empty = model.evaluate(np.zeros((0, 4, 5, 2), np.uint8))
    assert empty.dtype == np.float32 and empty.shape == (0, 2, 2, 3)
    x = np.ones((2, 4, 5, 2), np.uint8)
    out = model.evaluate(x)
    assert out.shape == (2, 2, 2, 3) and out.flags["C_CONTIGUOUS"]
    # defaults: scale 1, offset 0, so evaluate is forward as float32
    assert same_bits(out, model.forward(x).astype(np.float32))


def test_evaluate_records_statistics_like_forward():
    rng = seeded_rng("evaluate-stats")
    specs, x = random_potentials_case(rng)
    model = build_akida_model(specs)
    model.forward(x)
    expected = {k: (v.samples, v.synaptic_operations, v.input_sparsity, v.output_sparsity)
                for k, v in model.get_statistics().items()}
    model.evaluate(x)
    got = {k: (v.samples, v.synaptic_operations, v.input_sparsity, v.output_sparsity)
           for k, v in model.get_statistics().items()}
    assert got == expected


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_evaluate_needs_potentials_at_the_output():
    model = akida.Model([akida.InputData(4, 4, 1), akida.Convolutional(3, 3, 2, weights_bits=2)])
    with pytest.raises(akida.ArchitectureError) as info:
        model.evaluate(np.zeros((1, 4, 4, 1), np.uint8))
    message = str(info.value)
    assert "activations_enabled=False" in message and "forward" in message and "'conv'" in message
    with pytest.raises(akida.ArchitectureError, match="InputData has no potentials"):
        akida.Model([akida.InputData(4, 4, 1)]).evaluate(np.zeros((1, 4, 4, 1), np.uint8))
    branchy = akida.Model([akida.InputData(4, 4, 1)])
    branchy.add(akida.Convolutional(3, 3, 2, weights_bits=2))
    branchy.add(akida.Convolutional(3, 3, 2, weights_bits=2), inbound_layers=[branchy.layers[0]])
    branchy.add(akida.Concat(activations_enabled=False), inbound_layers=branchy.layers[1:])
    with pytest.raises(akida.ArchitectureError, match="Concat"):
        branchy.evaluate(np.zeros((1, 4, 4, 1), np.uint8))
    with pytest.raises(akida.ArchitectureError, match="no layers"):
        akida.Model().evaluate(np.zeros((1, 4, 4, 1), np.uint8))


def test_evaluate_input_errors_are_those_of_forward():
    model = akida.Model([akida.InputData(4, 4, 1, input_bits=2),
                         akida.FullyConnected(2, activations_enabled=False)])
    with pytest.raises(akida.DTypeError):
        model.evaluate(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(akida.DTypeError):
        model.evaluate([[1, 2]])
    with pytest.raises(akida.InputError):
        model.evaluate(np.zeros((1, 4, 5, 1), np.uint8))
    with pytest.raises(akida.InputError):
        model.evaluate(np.full((1, 4, 4, 1), 4, np.uint8))  # input_bits=2
    with pytest.raises(akida.ParameterError, match="batch_size"):
        model.evaluate(np.zeros((1, 4, 4, 1), np.uint8), batch_size=0)
    with pytest.raises(akida.InputError):
        model.evaluate(akida.Events.from_dense(np.ones((1, 3, 4, 1), np.uint8)))


# ----------------------------------------------------------------------------------------------
# The variables
# ----------------------------------------------------------------------------------------------


def every_layer_type_model():
    model = akida.Model()
    model.add(akida.InputConvolutional(6, 5, 1, 3, 3, 2))
    model.add(akida.Convolutional(3, 3, 3))
    model.add(akida.SeparableConvolutional(3, 3, 2), inbound_layers=[model.layers[0]])
    model.add(akida.Concat(), inbound_layers=[model.layers[1], model.layers[2]])
    model.add(akida.FullyConnected(4, activations_enabled=False))
    return model


def test_rescaling_variables_exist_with_defaults_on_every_layer_with_an_activation():
    model = every_layer_type_model()
    for layer in model.layers:
        n = layer.get_variable("threshold_fire").shape[0]
        names = layer.get_variable_names()
        assert "output_scale" in names and "output_offset" in names, layer.name
        scale, offset = layer.get_variable("output_scale"), layer.get_variable("output_offset")
        assert scale.dtype == np.float32 and scale.shape == (n,)
        assert offset.dtype == np.float32 and offset.shape == (n,)
        assert (scale == 1).all() and (offset == 0).all() and not np.signbit(offset).any()
    assert model.get_layer("concat").get_variable("output_scale").shape == (5,)
    data = akida.InputData(3, 3, 1)
    assert "output_scale" not in data.get_variable_names()
    with pytest.raises(akida.VariableError, match="output_scale"):
        data.get_variable("output_scale")
    detached = akida.Convolutional(3, 3, 2)
    with pytest.raises(akida.ArchitectureError):
        detached.get_variable("output_scale")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64,
                                   np.uint64, bool])
def test_rescaling_variables_accept_float_and_integer_dtypes(dtype):
    layer = every_layer_type_model().layers[-1]
    values = np.array([1, 0, 3, 1], dtype=dtype)
    for name in ("output_scale", "output_offset"):
        layer.set_variable(name, values)
        got = layer.get_variable(name)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, values.astype(np.float32))
    layer.set_variable("output_scale", [0.1, -2, 1e30, -0.0])  # a list, negative and huge values
    assert same_bits(layer.get_variable("output_scale"), np.array([0.1, -2, 1e30, -0.0], np.float32))
    got = layer.get_variable("output_scale")
    got[0] = 5  # a copy
    assert layer.get_variable("output_scale")[0] == np.float32(0.1)


NON_FINITE = [(dtype, bad) for dtype in (np.float32, np.float64) for bad in (np.nan, np.inf, -np.inf)]
NON_FINITE += [(np.float64, 1e39), (np.float64, -1e300)]  # finite in float64, not in float32


@pytest.mark.parametrize("dtype, bad", NON_FINITE)
@pytest.mark.parametrize("name", ["output_scale", "output_offset"])
def test_rescaling_variables_refuse_non_finite_values(name, dtype, bad):
    layer = every_layer_type_model().layers[-1]
    values = np.array([1.0, 2.0, bad, 0.5], dtype=dtype)
    before = layer.get_variable(name)
    with pytest.raises(akida.VariableError, match=f"{name}.*index 2.*finite"):
        layer.set_variable(name, values)
    assert same_bits(layer.get_variable(name), before)


@pytest.mark.parametrize("name", ["output_scale", "output_offset"])
def test_rescaling_variables_check_shape_and_dtype(name):
    layer = every_layer_type_model().layers[-1]
    for shape in [(3,), (5,), (1, 4), (4, 1), ()]:
        with pytest.raises(akida.VariableError, match="shape"):
            layer.set_variable(name, np.ones(shape, np.float32))
    for bad in (np.array(["a"] * 4), np.ones(4, np.complex64), np.array([None] * 4, dtype=object)):
        with pytest.raises(akida.DTypeError):
            layer.set_variable(name, bad)


def test_rescaling_set_through_a_model_view_changes_the_model():
    model = every_layer_type_model()
    x = np.random.default_rng(1).integers(0, 256, size=(2, 5, 6, 1)).astype(np.uint8)
    for layer in model.layers[1:]:
        if "weights" in layer.get_variable_names():
            layer.set_variable("weights", np.ones_like(layer.get_variable("weights")))
    before = model.evaluate(x)
    model.get_layer(-1).set_variable("output_scale", np.full(4, 2.0))
    model.get_layer(-1).set_variable("output_offset", np.full(4, -1.0))
    after = model.evaluate(x)
    assert same_bits(after, numpy_evaluate(model.forward(x), np.full(4, 2.0), np.full(4, -1.0)))
    assert not np.array_equal(before, after)


# ----------------------------------------------------------------------------------------------
# Saving, loading, growing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["fb", "fbz", "buffer"])
def test_rescaling_survives_save_and_load(transport, tmp_path):
    rng = seeded_rng("evaluate-files", transport)
    for _ in H.cases(10):
        specs, x = random_potentials_case(rng)
        model = build_akida_model(specs)
        # hidden layers' rescaling is stored too
        for layer in model.layers[1:-1]:
            n = layer.get_variable("output_scale").shape[0]
            scale, offset = random_rescaling(rng, n)
            layer.set_variable("output_scale", scale)
            layer.set_variable("output_offset", offset)
        if transport == "buffer":
            loaded = akida.Model(serialized_buffer=model.to_buffer())
        else:
            path = tmp_path / f"m.{transport}"
            model.save(path)
            loaded = akida.Model(path)
        for a, b in zip(model.layers, loaded.layers):
            for name in ("output_scale", "output_offset"):
                if name in a.get_variable_names():
                    assert same_bits(a.get_variable(name), b.get_variable(name)), (a.name, name)
        assert same_bits(loaded.evaluate(x), model.evaluate(x))
        assert loaded.to_buffer() == model.to_buffer()


def test_default_rescaling_is_not_written():
    model = every_layer_type_model()
    buf = model.to_buffer()
    assert b"output_scale" not in buf and b"output_offset" not in buf
    model.layers[-1].set_variable("output_offset", [0, 0, -0.0, 0])  # -0.0 is not the default
    buf = model.to_buffer()
    assert b"output_offset" in buf and b"output_scale" not in buf
    loaded = akida.Model(serialized_buffer=buf)
    assert np.signbit(loaded.layers[-1].get_variable("output_offset")).tolist() == [False, False, True, False]
    model.layers[-1].set_variable("output_offset", np.zeros(4))
    assert b"output_offset" not in model.to_buffer()


def test_rescaling_survives_add_classes():
    model = akida.Model([akida.InputData(6, 5, 1, input_bits=1),
                         akida.FullyConnected(4, weights_bits=1, activations_enabled=False)])
    model.compile(num_weights=6, num_classes=2, seed=3)
    layer = model.layers[-1]
    scale = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    offset = np.array([1.0, -0.0, 3.5, -2.0], np.float32)
    layer.set_variable("output_scale", scale)
    layer.set_variable("output_offset", offset)
    x = (np.random.default_rng(4).random((5, 5, 6, 1)) < 0.4).astype(np.uint8)
    model.fit(x, [0, 1, 0, 1, 0])
    model.add_classes(2)
    layer = model.layers[-1]
    got_scale, got_offset = layer.get_variable("output_scale"), layer.get_variable("output_offset")
    assert got_scale.shape == (8,) and got_offset.shape == (8,)
    assert same_bits(got_scale[:4], scale) and same_bits(got_offset[:4], offset)
    assert (got_scale[4:] == 1).all() and (got_offset[4:] == 0).all() and not np.signbit(got_offset[4:]).any()
    out = model.evaluate(x)
    assert out.shape == (5, 1, 1, 8)
    assert same_bits(out, numpy_evaluate(model.forward(x), got_scale, got_offset))
    loaded = akida.Model(serialized_buffer=model.to_buffer())
    assert same_bits(loaded.evaluate(x), out)


def test_evaluate_of_a_loaded_version_1_file_uses_the_defaults():
    """Format version 1 has no rescaling variables: scale 1, offset 0."""
    import test_model_files as F

    model = akida.Model([akida.InputData(4, 3, 2, input_bits=4),
                         akida.FullyConnected(3, weights_bits=2, activations_enabled=False)])
    model.layers[1].set_variable("weights", np.ones((3, 4, 2, 3), np.int8))
    v1 = F.with_format_version(model.to_buffer(), 1)
    loaded = akida.Model(serialized_buffer=v1)
    x = np.full((2, 3, 4, 2), 3, np.uint8)
    assert same_bits(loaded.evaluate(x), model.forward(x).astype(np.float32))
    # a version-1 file cannot hold them
    model.layers[1].set_variable("output_scale", [2, 2, 2])
    with pytest.raises(akida.ModelFormatError, match="'output_scale' does not exist in format version 1"):
        akida.Model(serialized_buffer=F.with_format_version(model.to_buffer(), 1))


def test_oracle_spec_round_trip_keeps_the_rescaling():
    rng = seeded_rng("evaluate-spec")
    specs, x = random_potentials_case(rng)
    model = build_akida_model(specs)
    from oracle import oracle_from_akida

    assert same_bits(oracle_from_akida(model).evaluate(x), model.evaluate(x))
    assert isinstance(specs[-1], LayerSpec)

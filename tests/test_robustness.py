"""Requests too large for the machine, values that would wrap, and edits after compile: clear
Python exceptions (or a loadable file), never an abort or a silently wrong result."""

import numpy as np
import pytest

import akida

O = np.array([0])
V = np.array([1])


def test_huge_sample_indices_are_input_errors():
    with pytest.raises(akida.InputError, match="samples"):
        akida.Events((1, 1, 1), np.array([2**40]), O, O, O, V)
    with pytest.raises(akida.InputError, match="samples"):
        akida.Events((1, 1, 1), O, O, O, O, V, num_samples=2**62)


def test_outputs_too_large_raise_memory_error():
    with pytest.raises(MemoryError):
        akida.Events((2**20,) * 3, O, O, O, O, V).to_dense()
    huge = akida.Model(layers=[akida.InputData(65536, 65536, 2**20, input_bits=1)])
    events = akida.Events((65536, 65536, 2**20), O, O, O, O, V, num_samples=4096)
    with pytest.raises(MemoryError):
        huge.predict(events)


def test_add_classes_beyond_the_limits_changes_nothing():
    model = akida.Model(layers=[akida.InputData(2, 2, 2, input_bits=1), akida.FullyConnected(4)])
    model.compile(3, num_classes=2)
    before = model.to_buffer()
    for classes in (2**20, 2**62):
        with pytest.raises(akida.ParameterError):
            model.add_classes(classes)
    assert model.to_buffer() == before
    assert model.get_layer(1).learning.num_classes == 2


def test_uint64_values_that_would_wrap_are_refused():
    layer = akida.InputConvolutional(4, 4, 1, 1, 1, 2, weights_bits=2)
    with pytest.raises(akida.VariableError, match="64-bit"):
        layer.set_variable("weights", np.full((1, 1, 1, 2), 2**64 - 1, np.uint64))
    with pytest.raises(akida.InputError, match="64-bit"):
        akida.Events((1, 1, 1), np.array([2**64 - 1], np.uint64), O, O, O, V)


def test_learning_state_edited_after_compile_still_reloads():
    model = akida.Model(layers=[akida.InputData(2, 2, 2, input_bits=1), akida.FullyConnected(4)])
    model.compile(3, num_classes=2)
    model.get_layer(1).set_variable("threshold_learning", np.full(4, 1000, np.int32))
    model.get_layer(1).set_variable("weights", np.zeros((2, 2, 2, 4), np.int8))
    loaded = akida.Model(serialized_buffer=model.to_buffer())
    assert loaded.get_layer(1).get_variable("threshold_learning").tolist() == [1000] * 4


def test_models_too_large_for_a_file_say_so():
    model = akida.Model(layers=[akida.InputData(1, 1, 2**11, input_bits=1), akida.FullyConnected(2**20)])
    with pytest.raises(akida.ArchitectureError, match="model file"):
        model.to_buffer()


def test_misaligned_label_arrays_are_copied_not_refused():
    import akida

    model = akida.Model()
    model.add(akida.InputData(input_width=4, input_height=4, input_channels=1, input_bits=1))
    model.add(akida.FullyConnected(4, name="fc"))
    model.compile(num_weights=3, num_classes=2)
    x = (np.arange(6 * 16).reshape(6, 4, 4, 1) % 3 == 0).astype(np.uint8)
    raw = np.zeros(6 * 8 + 1, np.uint8)
    labels = np.frombuffer(raw.data, dtype=np.int64, count=6, offset=1)  # misaligned int64 view
    assert not labels.flags.aligned
    aligned = labels.copy()
    twin = akida.Model(serialized_buffer=model.to_buffer())
    np.testing.assert_array_equal(model.fit(x, labels), twin.fit(x, aligned))
    np.testing.assert_array_equal(model.get_layer("fc").get_variable("weights"),
                                  twin.get_layer("fc").get_variable("weights"))

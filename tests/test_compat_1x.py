"""Forms of the 1.x API that code written for it uses: positional `compile` arguments in the 1.x
order, `add(layer, [])`, `LearningType`, `Model(buffer)`, label shapes, and the hardware's
threshold width and program size in a mapping."""

from __future__ import annotations

import numpy as np
import pytest

import akida


def learning_model(neurons: int = 4) -> akida.Model:
    return akida.Model(
        [akida.InputData(input_shape=(4, 4, 1), input_bits=1), akida.FullyConnected(neurons, activations_enabled=False)]
    )


def test_compile_takes_positional_arguments_in_the_1x_order():
    # compile(num_weights, num_classes, initial_plasticity, learning_competition, min_plasticity,
    # plasticity_decay): the order of the 1.x API table.
    model = learning_model()
    model.compile(5, 2, 0.9, 0.2, 0.3, 0.125)
    learning = model.get_layer(1).learning
    assert learning.num_weights == 5
    assert learning.num_classes == 2
    assert learning.initial_plasticity == pytest.approx(0.9)
    assert learning.learning_competition == pytest.approx(0.2)
    assert learning.min_plasticity == pytest.approx(0.3)
    assert learning.plasticity_decay == pytest.approx(0.125)
    names = list(__import__("inspect").signature(akida.Model.compile).parameters)
    assert names[:7] == [
        "self",
        "num_weights",
        "num_classes",
        "initial_plasticity",
        "learning_competition",
        "min_plasticity",
        "plasticity_decay",
    ]


def test_an_empty_inbound_list_means_the_last_layer_as_none_does():
    model = akida.Model()
    model.add(akida.InputData(input_shape=(4, 4, 1), input_bits=1), [])
    model.add(akida.FullyConnected(2), [])
    model.add(akida.FullyConnected(3), inbound_layers=[])
    assert [layer.name for layer in model.get_layer(2).inbound_layers] == [model.get_layer(1).name]
    assert model.output_shape == (1, 1, 3)


def test_learning_type_follows_compile_and_shows_in_the_summary():
    assert [repr(m) for m in (akida.LearningType.NoLearning, akida.LearningType.AkidaUnsupervised)] == [
        "LearningType.NoLearning",
        "LearningType.AkidaUnsupervised",
    ]
    assert int(akida.LearningType.NoLearning) == 0 and int(akida.LearningType.AkidaUnsupervised) == 1
    model = learning_model()
    assert model.get_layer(0).learning_type == akida.LearningType.NoLearning
    assert model.get_layer(1).learning_type == akida.LearningType.NoLearning
    assert "AkidaUnsupervised" not in model.summary(return_string=True)
    model.compile(5, num_classes=2)
    assert model.get_layer(1).learning_type == akida.LearningType.AkidaUnsupervised
    assert "learning AkidaUnsupervised, 2 classes, #InConn/#Weights/ThFire 16/5/0" in model.summary(return_string=True)
    # Saved and loaded, the layer still learns.
    assert akida.Model(serialized_buffer=model.to_buffer()).get_layer(1).learning_type == (
        akida.LearningType.AkidaUnsupervised
    )


def test_a_positional_buffer_loads_as_serialized_buffer():
    model = learning_model()
    model.compile(5)
    data = model.to_buffer()
    assert b"\0" in data
    for buffer in (data, bytearray(data), memoryview(data)):
        loaded = akida.Model(buffer)
        assert [layer.name for layer in loaded.layers] == ["input_data", "fully_connected"]
        np.testing.assert_array_equal(loaded.get_layer(1).get_variable("weights"), model.get_layer(1).get_variable("weights"))
    # bytes without a NUL byte stay a path, as os.fsdecode reads them.
    with pytest.raises(FileNotFoundError):
        akida.Model(b"/no/such/model.fbz")
    with pytest.raises(akida.ParameterError, match="at most one"):
        akida.Model(data, serialized_buffer=data)


def test_labels_are_one_for_all_or_exactly_one_per_sample():
    model = learning_model()
    model.compile(5, num_classes=2)
    x = np.zeros((3, 4, 4, 1), np.uint8)
    x[:, 0, :2] = 1
    with pytest.raises(akida.InputError, match=r"one label per sample \(3\) or one for all, got 2 labels"):
        model.fit(x, np.array([1, 0]))
    with pytest.raises(akida.InputError, match=r"1-D"):
        model.fit(x, np.ones((3, 1), np.int64))
    # A rejected call learned nothing.
    assert int(model.get_layer(1).get_variable("threshold_learning").max()) == 0
    # One int (Python or numpy, 0-d) or a sequence of one labels every sample, as numpy
    # broadcasting would; a sequence of three labels each sample.
    a, b, c, d = learning_model(), learning_model(), learning_model(), learning_model()
    for m in (a, b, c, d):
        m.compile(5, num_classes=2)
    a.fit(x, 1)
    b.fit(x, np.int64(1))
    c.fit(x, [1])
    d.fit(x, [1, 1, 1])
    for m in (b, c, d):
        np.testing.assert_array_equal(m.get_layer(1).get_variable("weights"), a.get_layer(1).get_variable("weights"))
    assert int(a.get_layer(1).get_variable("threshold_learning")[2:].max()) > 0


def mapped_fc(threshold: int, activations: bool = True) -> akida.Model:
    model = akida.Model([akida.InputData(input_shape=(1, 1, 16), input_bits=1)])
    model.add(akida.FullyConnected(4, threshold_fire=threshold, activations_enabled=activations))
    model.map(akida.AKD1000())
    return model


@pytest.mark.parametrize("threshold", [2**19 - 1, -(2**19), 0, 1000])
def test_thresholds_of_20_signed_bits_map_onto_nps(threshold):
    assert mapped_fc(threshold).get_layer(1).mapping.placement == "nps"


@pytest.mark.parametrize("threshold", [2**19, -(2**19) - 1, 2**31 - 1])
def test_wider_thresholds_run_in_software_and_say_why(threshold):
    model = mapped_fc(threshold)
    mapping = model.get_layer(1).mapping
    assert mapping.placement == "software"
    assert f"threshold_fire {threshold}, the hardware holds 20-bit signed thresholds" in mapping.reason
    with pytest.raises(akida.MappingError, match="20-bit signed thresholds"):
        model.map(akida.AKD1000(), hw_only=True)
    # A per-neuron threshold set later counts too.
    small = mapped_fc(10)
    values = np.full(4, 10, np.int32)
    values[2] = threshold
    small.get_layer(1).set_variable("threshold_fire", values)
    assert small.get_layer(1).mapping.placement == "software"
    # Without activations the layer outputs potentials and holds no threshold.
    assert mapped_fc(threshold, activations=False).get_layer(1).mapping.placement == "nps"


def test_program_size_counts_every_unit_of_a_hardware_sequence():
    # InputConvolutional 3 x 3 x 1, 8 filters of 4-bit weights on the HRC: each filter 36 bits ->
    # 5 bytes + 4 bytes of threshold and step; FullyConnected 8 -> 10 (4-bit weights: 4 bytes + 4
    # per neuron) on one NP; each unit + 64 bytes of configuration (an assumption, docs/nsoc.md).
    model = akida.Model()
    model.add(
        akida.InputConvolutional(
            input_width=8,
            input_height=8,
            input_channels=1,
            kernel_width=3,
            kernel_height=3,
            num_neurons=8,
            weights_bits=4,
            pooling_type=akida.PoolingType.Max,
            pooling_width=-1,
            pooling_height=-1,
        )
    )
    model.add(akida.FullyConnected(10, weights_bits=4, activations_enabled=False))
    model.map(akida.AKD1000(), mode=akida.MapMode.Minimal)
    (sequence,) = model.sequences
    assert sequence.backend == akida.BackendType.Hardware
    hrc = 8 * ((3 * 3 * 1 * 4 + 7) // 8 + 4) + 64
    nps = model.get_layer(1).mapping.nps
    assert [np_.memory_bytes for np_ in nps] == [10 * (8 * 4 // 8 + 4)]
    assert sequence.program_size == hrc + sum(np_.memory_bytes + 64 for np_ in nps) == 136 + 144
    assert f"sequence 0 (hardware): program {sequence.program_size} bytes" in model.map_report()
    model.map(None)
    assert [s.program_size for s in model.sequences] == [0]


def test_public_properties_of_the_mapping_classes_are_documented():
    classes = [akida.Device, akida.Mesh, akida.NP, akida.MappedNP, akida.Pass, akida.Sequence, akida.LayerMapping]
    for cls in classes:
        for name, member in vars(cls).items():
            if name.startswith("_") or not hasattr(member, "__get__"):
                continue
            assert member.__doc__, f"{cls.__name__}.{name} has no docstring"

"""The virtual AKD1000: its NPs, their types, and the sources of every fact."""

import copy

import numpy as np
import pytest

import akida


def test_akd1000_mesh_has_80_nps_in_20_nodes_with_the_public_types():
    device = akida.AKD1000()
    assert device.version.startswith("AKD1000")
    nps = device.mesh.nps
    assert len(nps) == 80
    assert len({np.ident[:2] for np in nps}) == 20
    assert all(np.ident[2] in range(4) for np in nps)
    for np in nps:
        if np.ident[2] == 0:
            assert np.types == [akida.NpType.CNP1, akida.NpType.FNP3]
        else:
            assert np.types == [akida.NpType.CNP1, akida.NpType.CNP2]
    assert "NP(ident=(1, 1, 0), types=[CNP1, FNP3])" == repr(nps[0])


def test_every_fact_has_a_public_source_or_is_an_assumption():
    facts = akida.AKD1000().facts()
    assert any(name == "clock (Hz)" and value == "300000000" for name, value, _ in facts)
    for name, _, source in facts:
        assert source.startswith(("public: ", "assumption: ")), (name, source)
    assert any(source.startswith("assumption: ") for _, _, source in facts)


def test_no_physical_devices():
    assert akida.devices() == []


def seed_mnist_model():
    """The user guide's InputData > Conv > Conv > FC > FC net for 28 x 28 images."""
    model = akida.Model()
    model.add(akida.InputData(input_width=28, input_height=28, input_channels=1, input_bits=1))
    model.add(akida.Convolutional(3, 3, 32, name="conv_1"))
    model.add(akida.Convolutional(3, 3, 64, name="conv_2", pooling_type=akida.PoolingType.Max,
                                  pooling_width=2, pooling_height=2))
    model.add(akida.FullyConnected(128, name="fc_1"))
    model.add(akida.FullyConnected(10, name="fc_2", activations_enabled=False))
    return model


def test_map_places_every_layer_and_unmap_returns_to_software():
    model = seed_mnist_model()
    (only,) = model.sequences
    assert only.backend == akida.BackendType.Software and len(only.passes[0].layers) == 5
    assert model.device is None and model.get_layer("conv_1").mapping is None
    model.map(akida.AKD1000(), mode=akida.MapMode.Minimal)
    assert model.device.version.startswith("AKD1000")
    # The 1.0 hardware's FullyConnected takes 1 x 1 x C: fc_1 on the 14 x 14 map runs in software.
    backends = [s.backend for s in model.sequences]
    assert backends == [akida.BackendType.Hardware, akida.BackendType.Software, akida.BackendType.Hardware]
    layers = [[layer.name for p in s.passes for layer in p.layers] for s in model.sequences]
    assert layers == [["input_data", "conv_1", "conv_2"], ["fc_1"], ["fc_2"]]
    assert model.get_layer("fc_1").mapping.reason.endswith("pool globally or flatten the input to 1 x 1 x C before it")
    assert model.get_layer(0).mapping.placement == "input"
    conv = model.get_layer("conv_1").mapping
    assert conv.placement == "nps" and conv.reason is None
    assert [np.type for np in conv.nps] == [akida.NpType.CNP1]
    assert conv.nps[0].filters == range(0, 32) and conv.nps[0].columns == range(0, 28)
    fc = model.get_layer("fc_2").mapping.nps
    assert fc[0].type == akida.NpType.FNP3 and fc[0].ident[2] == 0
    assert fc[0].memory_bytes == 10 * (128 // 8 + 4)  # 1-bit weights of 128 inputs + 4 bytes, 10 neurons
    model.map(akida.AKD1000())  # AllNps spreads the same layers over more NPs
    assert len(model.get_layer("conv_2").mapping.nps) > 1
    model.map(None)
    assert model.device is None and model.sequences[0].backend == akida.BackendType.Software
    model.map(akida.AKD1000())
    model.unmap()
    assert model.device is None


def test_refusals_name_the_rule_and_hw_only_raises():
    model = akida.Model()
    model.add(akida.InputData(input_width=16, input_height=16, input_channels=8, input_bits=1))
    model.add(akida.SeparableConvolutional(9, 9, 16, name="sep_3"))
    model.add(akida.FullyConnected(4, name="head", activations_enabled=False))
    with pytest.raises(akida.MappingError) as info:
        model.map(akida.AKD1000(), hw_only=True)
    message = str(info.value)
    assert "SeparableConvolutional 'sep_3': kernel 9 x 9, the 1.0 hardware takes 3, 5 or 7" in message
    assert "FullyConnected 'head': input (16, 16, 16), the hardware's FullyConnected takes 1 x 1 x C" in message
    assert model.device is None  # a refused mapping leaves the model unmapped
    model.map(akida.AKD1000())
    backends = [s.backend for s in model.sequences]
    assert backends == [akida.BackendType.Hardware, akida.BackendType.Software]
    assert model.get_layer("sep_3").mapping.reason.startswith("SeparableConvolutional 'sep_3': kernel 9 x 9")


def test_mapping_follows_the_model_and_reports(capsys):
    model = seed_mnist_model()
    model.map(akida.AKD1000(), mode=akida.MapMode.Minimal)
    model.pop_layer()
    assert [l.name for l in model.sequences[-1].passes[0].layers] == ["fc_1"]
    report = model.map_report()
    assert report.startswith("AllNps on AKD1000") and "\nMinimal on AKD1000" in report
    assert "of 80 NPs" in report
    model.summary()
    printed = capsys.readouterr().out
    assert "Minimal on AKD1000 (description 1): 2 of 80 NPs, 2 sequence(s), 2 pass(es)" in printed
    with pytest.raises(akida.ArchitectureError, match="cannot map an empty model"):
        akida.Model().map(akida.AKD1000())
    with pytest.raises(TypeError):
        model.map("AKD1000")


def random_hardware_model(rng, width=70):
    """Within the 1.0 limits, wide enough for several column bands, with random weights."""
    model = akida.Model()
    model.add(akida.InputData(input_width=width, input_height=6, input_channels=3, input_bits=4))
    model.add(akida.Convolutional(3, 3, 40, name="c1", weights_bits=4, threshold_fire_bits=4,
                                  pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2))
    model.add(akida.SeparableConvolutional(3, 3, 24, name="s2", weights_bits=4, threshold_fire_bits=2,
                                           pooling_type=akida.PoolingType.Average))
    model.add(akida.FullyConnected(7, name="head", weights_bits=4, activations_enabled=False))
    for layer in model.layers[1:]:
        for name in layer.get_variable_names():
            shape = layer.get_variable(name).shape
            if name.startswith("weights"):
                layer.set_variable(name, rng.integers(-7, 8, shape))
            elif name == "threshold_fire":
                layer.set_variable(name, rng.integers(0, 40, shape))
            elif name == "threshold_fire_step":
                layer.set_variable(name, rng.uniform(1, 8, shape).astype(np.float32))
    return model


def test_a_mapped_forward_runs_the_emulator_and_equals_the_software_forward(rng):
    model = random_hardware_model(rng)
    x = rng.integers(0, 16, (5, 6, 70, 3)).astype(np.uint8)
    x[rng.random(x.shape) < 0.6] = 0
    expected = model.forward(x)
    software_ops = sum(s.synaptic_operations for s in model.get_statistics().values())
    assert model.statistics is None
    for mode in (akida.MapMode.AllNps, akida.MapMode.Minimal):
        model.map(akida.AKD1000(), mode=mode)
        assert len(model.get_layer("c1").mapping.nps) > 1
        np.testing.assert_array_equal(model.forward(x), expected)
        np.testing.assert_array_equal(model.forward(akida.Events.from_dense(x)), expected)
        np.testing.assert_array_equal(model.forward(x, batch_size=2), expected)
        stats = model.statistics
        assert stats["samples"] == 5 and set(stats["layers"]) == {layer.name for layer in model.layers}
        totals = stats["totals"]
        assert totals["synaptic_ops"] >= software_ops  # NPs of neighbouring bands share the halo
        assert totals["packets"] > 0 and stats["estimates"]["frames_per_s"] > 0
        assert "estimates of the cost model" in stats["estimates"]["note"]
        assert sum(c["synaptic_ops"] for c in stats["nps"].values()) == totals["synaptic_ops"] - stats["hrc"]["synaptic_ops"]
        assert all(len(ident) == 3 for ident in stats["nps"])
    model.unmap()
    assert model.statistics is None
    np.testing.assert_array_equal(model.forward(x), expected)


def test_the_kept_emulator_follows_every_change_of_the_model_and_of_its_mapping(rng):
    """The model keeps its prepared emulator across calls (docs/nsoc.md, "Preparation"): after a
    change of weights or thresholds, or a new mapping, the emulated forward must follow. The
    expected outputs come from an unmapped copy given the same changes."""
    model = random_hardware_model(rng)
    x = rng.integers(0, 16, (4, 6, 70, 3)).astype(np.uint8)
    x[rng.random(x.shape) < 0.6] = 0
    twin = copy.deepcopy(model)
    model.map(akida.AKD1000())
    first = model.forward(x)
    np.testing.assert_array_equal(first, twin.forward(x))
    for m in (model, twin):
        layer = m.get_layer("c1")
        layer.set_variable("weights", -layer.get_variable("weights"))
    changed = model.forward(x)
    assert not np.array_equal(changed, first)
    np.testing.assert_array_equal(changed, twin.forward(x))
    for m in (model, twin):
        layer = m.get_layer("c1")
        layer.set_variable("threshold_fire", layer.get_variable("threshold_fire") + 5)
    np.testing.assert_array_equal(model.forward(x), twin.forward(x))
    model.map(akida.AKD1000(), mode=akida.MapMode.Minimal)
    np.testing.assert_array_equal(model.forward(x), twin.forward(x))
    assert model.statistics["samples"] == 4


def test_a_mapped_evaluate_and_predict_equal_software(rng):
    model = random_hardware_model(rng, width=40)
    model.get_layer("head").set_variable("output_scale", rng.uniform(-2, 2, 7).astype(np.float32))
    x = rng.integers(0, 16, (4, 6, 40, 3)).astype(np.uint8)
    evaluated, predicted = model.evaluate(x), model.predict(x)
    model.map(akida.AKD1000())
    np.testing.assert_array_equal(model.evaluate(x), evaluated)
    np.testing.assert_array_equal(model.predict(x), predicted)


def test_mesh_pictures_and_text(rng, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from akida import plot

    model = random_hardware_model(rng)
    with pytest.raises(ValueError, match="not mapped"):
        plot.mesh_values(model)
    model.map(akida.AKD1000(), mode=akida.MapMode.Minimal)
    image, values = plot.mesh_values(model)
    assert image.shape == (8, 10)
    expected = {}
    for layer in model.layers:
        for np_ in layer.mapping.nps:
            expected[np_.ident] = expected.get(np_.ident, 0) + np_.memory_bytes
    assert values == expected and np.nansum(image) == sum(expected.values())
    with pytest.raises(ValueError, match="needs an emulated forward"):
        plot.mesh_values(model, "synaptic_ops")
    model.forward(rng.integers(0, 16, (2, 6, 70, 3)).astype(np.uint8))
    _, ops = plot.mesh_values(model, "synaptic_ops")
    assert sum(ops.values()) == sum(c["synaptic_ops"] for c in model.statistics["nps"].values())
    for quantity in ("memory_bytes", "synaptic_ops"):
        fig = plot.plot_mesh(model, quantity)
        path = tmp_path / f"{quantity}.png"
        fig.savefig(path)
        assert path.stat().st_size > 1000 and quantity in fig.axes[0].get_title()
    report = model.map_report()
    assert "mesh (rows of nodes" in report and report.count("\n    ") >= 4


def test_the_map_command(rng, tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "m.fbz"
    random_hardware_model(rng).save(str(path))
    run = lambda *args: subprocess.run([sys.executable, "-m", "akida", "map", str(path), *args],  # noqa: E731
                                       capture_output=True, text=True)
    out = run("--mode", "Minimal")
    assert out.returncode == 0 and out.stdout.startswith("Minimal on AKD1000"), out.stderr
    data = json.loads(run("--json").stdout)
    assert data["mode"] == "AllNps" and [r["layer"] for r in data["layers"]][:2] == ["input_data", "c1"]
    assert all(r["placement"] in ("input", "nps") for r in data["layers"])
    refused = tmp_path / "refused.fbz"
    model = akida.Model()
    model.add(akida.InputData(input_width=8, input_height=8, input_channels=2, input_bits=1))
    model.add(akida.Convolutional(9, 9, 4, name="big"))
    model.save(str(refused))
    out = subprocess.run([sys.executable, "-m", "akida", "map", str(refused), "--hw-only"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "Convolutional 'big': kernel 9 x 9" in out.stderr and "Traceback" not in out.stderr

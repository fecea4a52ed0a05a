"""The ``akida`` command line (``python -m akida``), run in subprocesses on small models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import akida


def cli(*args, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-m", "akida", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )
    if check_rc is not None:
        assert result.returncode == check_rc, (result.returncode, result.stdout, result.stderr)
    return result


def fc_model() -> akida.Model:
    model = akida.Model()
    model.add(akida.InputData(input_width=6, input_height=5, input_channels=2, input_bits=1))
    model.add(akida.FullyConnected(num_neurons=12, activations_enabled=False))
    return model


def conv_model(rng) -> akida.Model:
    model = akida.Model()
    model.add(akida.InputData(input_width=8, input_height=8, input_channels=2, input_bits=2))
    model.add(akida.Convolutional(kernel_width=3, kernel_height=3, num_neurons=4, threshold_fire=2, weights_bits=2))
    model.add(akida.FullyConnected(num_neurons=5, activations_enabled=False, weights_bits=2))
    model.get_layer(1).set_variable("weights", rng.integers(-1, 2, (3, 3, 2, 4)))
    model.get_layer(2).set_variable("weights", rng.integers(-1, 2, (8, 8, 4, 5)))
    model.get_layer(2).set_variable("output_scale", rng.uniform(0.5, 2, 5))
    return model


@pytest.fixture
def saved(tmp_path, rng):
    model = conv_model(rng)
    path = tmp_path / "model.fbz"
    model.save(path)
    x = rng.integers(0, 4, (37, 8, 8, 2), dtype=np.uint8)
    return model, path, x


def test_info_reports_version_threads_simd_and_format():
    text = cli("info").stdout
    engine = akida.engine_info()
    assert f"openakida {akida.__version__}" in text
    assert f"engine threads: {engine['worker_threads']}" in text
    assert f"SIMD level: {engine['simd']}" in text
    assert f"workers pinned to a CPU each: {'yes' if engine['pinned_workers'] else 'no'}" in text
    assert "model format version: 2" in text
    record = json.loads(cli("info", "--json").stdout)
    assert record == {
        "version": akida.__version__,
        "worker_threads": engine["worker_threads"],
        "simd": engine["simd"],
        "parallel": engine["parallel"],
        "pinned_workers": engine["pinned_workers"],
        "format_version": 2,
    }


def test_format_version_is_read_from_a_buffer():
    from akida import cli as akida_cli

    assert akida_cli.format_version() == akida_cli.FORMAT_VERSION == 2


def test_summary_prints_the_table(saved, capsys):
    model, path, _ = saved
    model.summary()
    expected = capsys.readouterr().out
    assert cli("summary", path).stdout == expected


def test_summary_json_lists_the_layers(saved):
    model, path, _ = saved
    layers = json.loads(cli("summary", path, "--json").stdout)
    assert [layer["name"] for layer in layers] == [layer.name for layer in model.layers]
    assert [layer["type"] for layer in layers] == ["InputData", "Convolutional", "FullyConnected"]
    assert layers[1]["input_shape"] == [8, 8, 2] and layers[1]["output_shape"] == [8, 8, 4]
    assert layers[2]["inbound_layers"] == [model.get_layer(1).name]
    assert layers[0]["inbound_layers"] == []
    assert layers[1]["parameters"]["convolution_mode"] == "Same"
    assert layers[1]["parameters"]["num_neurons"] == 4
    assert layers[2]["learning"] is None


@pytest.mark.parametrize("mode", ["forward", "evaluate", "predict"])
def test_run_equals_the_python_api(saved, tmp_path, mode):
    model, path, x = saved
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npy"
    cli("run", path, tmp_path / "x.npy", "--mode", mode, "--batch-size", 10, "-o", out)
    expected = {"forward": model.forward, "evaluate": model.evaluate, "predict": model.predict}[mode](x)
    got = np.load(out)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_run_prints_one_line_per_sample_without_output(saved, tmp_path):
    model, path, x = saved
    np.savez(tmp_path / "data.npz", inputs=x, other=np.zeros(3))
    result = cli("run", path, tmp_path / "data.npz", "--mode", "predict", "--num-classes", 5)
    assert [int(v) for v in result.stdout.split()] == model.predict(x, num_classes=5).tolist()
    lines = cli("run", path, tmp_path / "data.npz").stdout.splitlines()
    expected = model.forward(x).reshape(len(x), -1)
    np.testing.assert_array_equal(np.array([[int(v) for v in line.split()] for line in lines]), expected)


def test_run_npz_only_array_and_int64_inputs(saved, tmp_path):
    model, path, x = saved
    np.savez(tmp_path / "data.npz", anything=x.astype(np.int64))
    out = tmp_path / "out.npy"
    cli("run", path, tmp_path / "data.npz", "-o", out)
    np.testing.assert_array_equal(np.load(out), model.forward(x))


def test_run_events_in_batches(tmp_path, rng):
    model = fc_model()
    model.get_layer(1).set_variable("weights", rng.integers(0, 2, (5, 6, 2, 12)))
    path = tmp_path / "fc.fb"
    model.save(path)
    dense = (rng.random((23, 5, 6, 2)) < 0.2).astype(np.uint8)
    events = akida.Events.from_dense(dense)
    np.savez(tmp_path / "events.npz", sample=events.sample, x=events.x, y=events.y, channel=events.channel,
             value=events.value, num_samples=events.num_samples)
    out = tmp_path / "out.npy"
    result = cli("run", path, tmp_path / "events.npz", "--events", "--batch-size", 4, "-o", out, "--progress")
    np.testing.assert_array_equal(np.load(out), model.forward(events))
    assert "23/23" in result.stderr  # the tqdm bar, forced on


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(sample=[0, 5], num_samples=2), "sample"),  # outside num_samples: never dropped
        (dict(sample=[-1, 0]), "sample"),
        (dict(num_samples=-3), "num_samples"),
        (dict(num_samples=2**40), "at most 268435456 samples"),  # the batch limit of akida.Events
        (dict(num_samples=np.array([2])), "num_samples must be one integer"),
        (dict(x=[0, 6]), "x"),  # outside the model input
    ],
)
def test_run_refuses_events_that_a_batch_would_lose(tmp_path, change, message):
    path = tmp_path / "fc.fb"
    fc_model().save(path)
    columns = dict(sample=[0, 1], x=[0, 1], y=[0, 0], channel=[0, 0], value=[1, 1], num_samples=2)
    columns.update(change)
    np.savez(tmp_path / "events.npz", **columns)
    result = cli("run", path, tmp_path / "events.npz", "--events", check_rc=1)
    assert "events.npz" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_run_names_a_npy_given_as_events_and_writes_output_where_told(tmp_path, rng):
    path = tmp_path / "fc.fb"
    model = fc_model()
    model.save(path)
    x = (rng.random((3, 5, 6, 2)) < 0.3).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", path, tmp_path / "x.npy", "--events", check_rc=1)
    assert "single array (.npy), not a .npz" in result.stderr, result.stderr
    out = tmp_path / "out.txt"
    result = cli("run", path, tmp_path / "x.npy", "-o", out)
    assert f"-> {out}" in result.stderr and not (tmp_path / "out.txt.npy").exists()
    np.testing.assert_array_equal(np.load(out), model.forward(x))


def test_fit_equals_the_python_api(tmp_path, rng):
    model = fc_model()
    path = tmp_path / "fc.fbz"
    model.save(path)
    x = (rng.random((60, 5, 6, 2)) < 0.3).astype(np.uint8)
    y = rng.integers(0, 3, 60)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    out = tmp_path / "trained.fbz"
    cli("fit", path, tmp_path / "train.npz", "--num-weights", 9, "--num-classes", 3, "--plasticity-decay", 0.1,
        "--learning-competition", 0.05, "--seed", 7, "--batch-size", 16, "-o", out)
    model.compile(num_weights=9, num_classes=3, plasticity_decay=0.1, learning_competition=0.05, seed=7)
    model.fit(x, y)
    assert akida.Model(out).to_buffer() == model.to_buffer()
    # num_classes defaults to max(label) + 1
    out2 = tmp_path / "trained2.fbz"
    cli("fit", path, tmp_path / "train.npz", "--num-weights", 9, "-o", out2)
    assert akida.Model(out2).get_layer(1).learning.num_classes == 3


def test_convert_onnx_equals_the_python_api(tmp_path, rng):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def init(name, array):
        return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)

    nodes = [
        helper.make_node("Mul", ["x", "inv255"], ["xs"]),
        helper.make_node("Conv", ["xs", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    ]
    inits = [init("inv255", 1 / 255), init("w", rng.normal(0, 0.5, (3, 1, 3, 3))), init("b", rng.normal(0, 0.1, 3)),
             init("gw", rng.normal(0, 0.3, (4, 3 * 6 * 6))), init("gb", rng.normal(0, 0.1, 4))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], initializer=inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    import onnx

    onnx.save(onnx_model, tmp_path / "cnn.onnx")
    x = rng.integers(0, 256, (40, 6, 6, 1)).astype(np.uint8)
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "cnn.fbz"
    result = cli("convert", tmp_path / "cnn.onnx", "--calibration", tmp_path / "calib.npz", "--bits", "8/4/2", "-o", out)
    assert "convert:" in result.stderr
    from akida import cnn2snn

    expected = cnn2snn.convert(cnn2snn.quantize(str(tmp_path / "cnn.onnx"), 4, 2, 8, calibration_data=x.astype(np.float32)))
    assert akida.Model(out).to_buffer() == expected.to_buffer()
    out2 = tmp_path / "cnn2.fb"
    cli("convert", tmp_path / "cnn.onnx", "--calibration", tmp_path / "calib.npz", "--input-scaling", "1,0", "-o", out2)
    expected = cnn2snn.convert(cnn2snn.quantize(str(tmp_path / "cnn.onnx"), 4, 4, 8, calibration_data=x.astype(np.float32)),
                               input_scaling=(1, 0))
    assert akida.Model(out2).to_buffer() == expected.to_buffer()


def test_convert_keras_equals_the_python_api(tmp_path, rng):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from akida import cnn2snn

    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(4)(h)
    float_model = keras.Model(inputs, outputs)
    float_model.save(tmp_path / "cnn.keras")
    x = rng.integers(0, 256, (32, 6, 6, 1)).astype(np.uint8)
    np.save(tmp_path / "calib.npy", x)
    out = tmp_path / "cnn.fbz"
    cli("convert", tmp_path / "cnn.keras", "--calibration", tmp_path / "calib.npy", "-o", out)
    expected = cnn2snn.convert(cnn2snn.quantize(float_model, 4, 4, 8, calibration_data=x.astype(np.float32)))
    assert akida.Model(out).to_buffer() == expected.to_buffer()


def test_convert_errors_are_exit_1(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    result = cli("convert", tmp_path / "bad.onnx", "-o", tmp_path / "o.fbz", check_rc=1)
    assert "Traceback" not in result.stderr and result.stderr.startswith("Error: ")
    result = cli("convert", tmp_path / "missing.onnx", "-o", tmp_path / "o.fbz", check_rc=1)
    assert "missing.onnx" in result.stderr


# --- exit codes and messages -------------------------------------------------------------


def test_missing_model_file_is_exit_1_with_the_message(tmp_path):
    result = cli("summary", tmp_path / "missing.fbz", check_rc=1)
    assert "missing.fbz" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")


def test_corrupt_model_file_is_exit_1(tmp_path):
    (tmp_path / "bad.fb").write_bytes(b"not a model at all")
    result = cli("summary", tmp_path / "bad.fb", check_rc=1)
    assert "Traceback" not in result.stderr
    with pytest.raises(akida.ModelFormatError) as info:
        akida.Model(str(tmp_path / "bad.fb"))
    assert str(info.value) in result.stderr


def test_wrong_input_shape_is_exit_1_with_the_engine_message(saved, tmp_path):
    model, path, _ = saved
    x = np.zeros((3, 7, 8, 2), np.uint8)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", path, tmp_path / "x.npy", check_rc=1)
    with pytest.raises(akida.InputError) as info:
        model.forward(x)
    assert str(info.value) in result.stderr and "Traceback" not in result.stderr


def test_wrong_dtype_and_missing_arrays_are_exit_1(saved, tmp_path):
    _, path, x = saved
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    assert "Traceback" not in cli("run", path, tmp_path / "x.npy", check_rc=1).stderr
    np.savez(tmp_path / "two.npz", a=x, b=x)
    result = cli("run", path, tmp_path / "two.npz", check_rc=1)
    assert "no array named 'x' or 'inputs'" in result.stderr
    result = cli("run", path, tmp_path / "two.npz", "--events", check_rc=1)
    assert "missing: sample, x, y, channel, value" in result.stderr


def test_fit_errors_are_exit_1(saved, tmp_path):
    _, path, x = saved  # weights_bits=2: not learnable
    np.savez(tmp_path / "train.npz", x=x)
    result = cli("fit", path, tmp_path / "train.npz", "--num-weights", 3, "-o", tmp_path / "o.fbz", check_rc=1)
    assert "Traceback" not in result.stderr and "Error: " in result.stderr


def test_usage_errors_are_exit_2(saved, tmp_path):
    _, path, _ = saved
    assert "Missing argument" in cli("run", path, check_rc=2).stderr
    assert "Invalid value for '--mode'" in cli("run", path, "x.npy", "--mode", "train", check_rc=2).stderr
    assert "No such command" in cli("frobnicate", check_rc=2).stderr
    assert "--num-weights" in cli("fit", path, "d.npz", "-o", "o.fbz", check_rc=2).stderr
    assert "8/4/4" in cli("convert", "cnn.onnx", "--bits", "8-4", "-o", "o.fbz", check_rc=2).stderr
    assert "--num-classes" in cli("run", path, "x.npy", "--num-classes", 3, check_rc=2).stderr
    assert cli("--help").stdout.count("summary") >= 1


def test_max_size_caps_loading(saved):
    """The group option ``--max-size`` reaches the loader: a cap below the model's inflated size
    is a clean error naming max_size, a cap above it loads, and 0 is refused by the option."""
    model, path, _ = saved
    inflated = len(model.to_buffer())
    refused = cli("--max-size", inflated - 1, "summary", path, check_rc=1)
    assert "max_size" in refused.stderr and "Traceback" not in refused.stderr
    assert cli("--max-size", inflated, "summary", path).stdout == cli("summary", path).stdout
    assert "--max-size" in cli("--max-size", 0, "summary", path, check_rc=2).stderr

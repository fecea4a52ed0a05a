"""Everyday use (issue 13): true signatures and docstrings, doctests, summary as a string with
connections and dangling branches, add() hints in branched models, intermediate outputs,
statistics of layers not computed, InputData(input_shape=), threshold calibration, progress."""

import doctest
import importlib
import inspect
import io
import pkgutil
import re
import warnings

import numpy as np
import pytest

import akida

LAYER_CLASSES = [akida.InputData, akida.InputConvolutional, akida.FullyConnected, akida.Convolutional,
                 akida.SeparableConvolutional, akida.Concat]
REQUIRED = {
    akida.InputData: dict(input_width=4, input_height=5, input_channels=2),
    akida.InputConvolutional: dict(input_width=8, input_height=8, input_channels=1, kernel_width=3,
                                   kernel_height=3, num_neurons=4),
    akida.FullyConnected: dict(num_neurons=4),
    akida.Convolutional: dict(kernel_width=3, kernel_height=3, num_neurons=4),
    akida.SeparableConvolutional: dict(kernel_width=3, kernel_height=3, num_neurons=4),
    akida.Concat: {},
}


# --- help(), signatures, docstrings -----------------------------------------------------------

@pytest.mark.parametrize("cls", LAYER_CLASSES)
def test_signature_defaults_are_the_real_defaults(cls):
    sig = inspect.signature(cls)
    layer = cls(**REQUIRED[cls])
    params = layer.parameters.to_dict()
    for p in sig.parameters.values():
        assert p.default is not Ellipsis, p
        if p.default is inspect.Parameter.empty or p.name in ("name", "input_shape") or p.default is None:
            continue
        # Omitted arguments take exactly the default the signature shows.
        assert params[p.name] == p.default, (p.name, params[p.name], p.default)
        assert cls(**REQUIRED[cls], **{p.name: p.default}).parameters == layer.parameters


def test_help_of_a_layer_shows_signature_and_numpy_sections():
    text = pydoc_text(akida.Convolutional)
    assert "convolution_mode=ConvolutionMode.Same" in text
    assert "pooling_type=PoolingType.NoPooling" in text
    assert "Ellipsis" not in text
    for section in ("Parameters\n", "Raises\n", "Examples\n"):
        assert section in text


def pydoc_text(obj):
    import pydoc

    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


PUBLIC_METHODS = {
    cls: [n for n in dir(cls) if not n.startswith("_") and inspect.isroutine(getattr(cls, n))]
    for cls in (akida.Model, akida.Layer, akida.Events, akida.LayerParameters)
}


@pytest.mark.parametrize("cls", [*LAYER_CLASSES, akida.Model, akida.Events, akida.Layer, akida.LayerParameters])
def test_public_classes_have_numpy_docstrings_documenting_every_parameter(cls):
    doc = cls.__doc__ or ""
    assert "Parameters\n----------" in doc or not list(inspect.signature(cls).parameters), cls
    documented = set(re.findall(r"^(\w+(?:, \w+)*) :", doc, re.M))
    names = {n for entry in documented for n in entry.split(", ")}
    for p in inspect.signature(cls).parameters:
        assert p in names, (cls.__name__, p)


@pytest.mark.parametrize("cls, method", [(c, m) for c, ms in PUBLIC_METHODS.items() for m in ms])
def test_public_methods_have_numpy_docstrings(cls, method):
    f = getattr(cls, method)
    doc = f.__doc__ or ""
    params = [p for p in inspect.signature(f).parameters if p != "self"]
    if params:
        assert "Parameters\n----------" in doc, (cls.__name__, method)
        names = {n for entry in re.findall(r"^(\w+(?:, \w+)*) :", doc, re.M) for n in entry.split(", ")}
        for p in params:
            assert p in names, (cls.__name__, method, p)
    assert len(doc.splitlines()) >= 3, (cls.__name__, method)


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in akida.__all__:
        obj = getattr(akida, name)
        if inspect.isclass(obj) or callable(obj):
            tests += finder.find(obj, f"akida.{name}", module=False, globs={"akida": akida, "np": np})
    for info in pkgutil.walk_packages(akida.__path__, "akida."):
        # cnn2snn's docstrings need Keras; the CLI and optional front ends are covered elsewhere.
        # akida._akida is covered through akida.__all__ above.
        if info.name.startswith(("akida._akida", "akida.cnn2snn", "akida.cli", "akida.__main__", "akida.distributed", "akida.plot")):
            continue
        module = importlib.import_module(info.name)
        tests += finder.find(module, info.name)
    unique = {}
    for t in tests:
        if t.examples:
            unique.setdefault((t.name, t.lineno, t.docstring), t)
    return sorted(unique.values(), key=lambda t: t.name)


DOCTESTS = _doctests()


def test_doctests_were_found():
    names = {t.name for t in DOCTESTS}
    for expected in ("akida.Model", "akida.Model.forward", "akida.Model.summary", "akida.Convolutional",
                     "akida.InputData", "akida.Events", "akida.calibrate_thresholds", "akida.progress"):
        assert any(n == expected or n.startswith(expected + ".") for n in names), expected


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples_run(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    result = runner.run(test, out=out.write)
    assert result.failed == 0, out.getvalue()


# --- summary --------------------------------------------------------------------------------

def branched_model():
    model = akida.Model()
    model.add(akida.InputData(input_shape=(8, 8, 1), input_bits=1, name="input"))
    left = akida.Convolutional(3, 3, 4, name="left")
    right = akida.Convolutional(1, 1, 2, name="right")
    model.add(left)
    model.add(right, inbound_layers=[model.get_layer("input")])
    model.add(akida.Concat(name="join"), inbound_layers=[left, right])
    model.add(akida.FullyConnected(3, name="head", activations_enabled=False))
    return model


def test_summary_returns_the_table_and_takes_print_fn(capsys):
    model = branched_model()
    text = model.summary(return_string=True)
    assert capsys.readouterr().out == ""
    lines = []
    assert model.summary(print_fn=lines.append) is None
    assert lines == [text]
    assert model.summary() is None
    assert capsys.readouterr().out.rstrip("\n") == text
    header = text.splitlines()[0]
    assert "Connected to" in header
    rows = {line.split()[0]: line for line in text.splitlines()[2:-1]}
    assert re.search(r"\bleft, right\b", rows["join"])
    assert re.search(r"\binput\b", rows["right"])
    assert re.search(r"\bjoin\b", rows["head"])
    # A plain chain keeps the short table.
    chain = akida.Model([akida.InputData(4, 4, 1), akida.FullyConnected(2)])
    assert "Connected to" not in chain.summary(return_string=True)


def test_popping_a_concat_warns_and_summary_marks_the_dangling_branch():
    model = branched_model()
    model.pop_layer()  # the head: nothing dangles
    with pytest.warns(UserWarning, match=r"the layer 'left' no longer leads to the output layer 'right'"):
        model.pop_layer()  # the Concat: 'left' dangles
    text = model.summary(return_string=True)
    assert re.search(r"left .*input \(dangling\)", text)
    assert "Dangling (not on the path to the output layer 'right'" in text
    assert text.rstrip().endswith("left")
    # forward computes only the path to 'right'; the statistics say 'left' was not computed.
    model.forward(np.ones((3, 8, 8, 1), np.uint8))
    stats = model.get_statistics()
    assert stats["left"].computed is False and stats["left"].output_sparsity is None
    assert "not computed" in repr(stats["left"])
    assert stats["right"].computed and stats["right"].samples == 3
    # Popping the dangling-free last layer again does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.pop_layer()


def test_add_without_inbound_in_a_branched_model_says_where_it_leads():
    model = akida.Model()
    model.add(akida.InputData(input_shape=(8, 8, 1), input_bits=1, name="input"))
    model.add(akida.Convolutional(3, 3, 4, name="left"))
    model.add(akida.Convolutional(1, 1, 2, name="right"), inbound_layers=[model.get_layer("input")])
    with pytest.raises(akida.ArchitectureError) as info:
        model.add(akida.Concat())
    message = str(info.value)
    assert "needs at least 2 inbound layers" in message
    assert "add() without inbound_layers connects the new layer to the last layer added ('right')" in message
    assert "'left', 'right'" in message
    assert len(model) == 3


# --- intermediate outputs and statistics -----------------------------------------------------

def test_forward_output_layer_gives_each_layer_output_against_numpy():
    rng = np.random.default_rng(3)
    model = akida.Model([akida.InputData(input_shape=(3, 3, 2), input_bits=1),
                         akida.FullyConnected(5, weights_bits=2, threshold_fire=1, name="hidden"),
                         akida.FullyConnected(2, activations_enabled=False, name="out")])
    w1 = rng.integers(-1, 2, (3, 3, 2, 5))
    w2 = rng.integers(0, 2, (1, 1, 5, 2))
    model.get_layer(1).set_variable("weights", w1)
    model.get_layer(2).set_variable("weights", w2)
    x = rng.integers(0, 2, (20, 3, 3, 2)).astype(np.uint8)
    hidden = (x.reshape(20, -1).astype(np.int64) @ w1.reshape(-1, 5) > 1).astype(np.uint8)
    out = hidden.astype(np.int64) @ w2.reshape(5, 2)
    for key in ("hidden", 1, -2, np.int64(1)):
        got = model.forward(x, output_layer=key)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got.reshape(20, 5), hidden)
    np.testing.assert_array_equal(model.forward(x, output_layer="out").reshape(20, 2), out)
    np.testing.assert_array_equal(model.forward(x, output_layer=0), x)
    np.testing.assert_array_equal(model.forward(x, output_layer=1, batch_size=7).reshape(20, 5), hidden)
    model.forward(x, output_layer="hidden")
    stats = model.get_statistics()
    assert stats["hidden"].computed and stats["hidden"].samples == 20
    assert not stats["out"].computed and stats["out"].samples == 0
    assert stats["out"].input_sparsity is None
    with pytest.raises(akida.LayerNotFoundError):
        model.forward(x, output_layer="nope")
    with pytest.raises(akida.LayerNotFoundError):
        model.forward(x, output_layer=3)
    events = akida.Events.from_dense(x)
    np.testing.assert_array_equal(model.forward(events, output_layer=1).reshape(20, 5), hidden)


# --- InputData(input_shape=) -----------------------------------------------------------------

def test_input_data_takes_input_shape():
    a = akida.InputData(input_shape=(5, 4, 2), input_bits=2)
    b = akida.InputData(4, 5, 2, input_bits=2)
    assert a.parameters == b.parameters and a.input_shape == (5, 4, 2)
    assert akida.InputData(input_shape=[5, 4, 2]).input_shape == (5, 4, 2)
    assert akida.InputData(input_width=4, input_height=5, input_channels=2).input_shape == (5, 4, 2)
    with pytest.raises(akida.ParameterError, match="not both"):
        akida.InputData(4, 5, 2, input_shape=(5, 4, 2))
    with pytest.raises(akida.ParameterError, match="not both"):
        akida.InputData(input_width=4, input_shape=(5, 4, 2))
    with pytest.raises(akida.ParameterError, match="missing input_channels"):
        akida.InputData(4, 5)
    with pytest.raises(akida.ParameterError, match="give the input size"):
        akida.InputData()
    with pytest.raises(TypeError, match=r"'input_shape' must be None or a tuple of 3 ints"):
        akida.InputData(input_shape=(5, 4))


# --- threshold calibration -------------------------------------------------------------------

def _best_threshold_error(potentials, target):
    """Per neuron: the smallest |mean(p > t) - target| over every integer threshold t (numpy)."""
    best = []
    for p in potentials.T:
        candidates = np.concatenate([np.unique(p), np.unique(p) - 1])
        fractions = (p[:, None] > candidates[None, :]).mean(axis=0)
        best.append(np.abs(fractions - target).min())
    return np.array(best)


@pytest.mark.parametrize("target", [0.05, 0.3, 0.5])
def test_calibration_reaches_the_best_fraction_against_numpy(target):
    rng = np.random.default_rng(11)
    model = akida.Model([akida.InputData(input_shape=(6, 6, 1), input_bits=1),
                         akida.FullyConnected(16, weights_bits=4, name="fc")])
    weights = rng.integers(-7, 8, (6, 6, 1, 16))
    model.get_layer(1).set_variable("weights", weights)
    x = (rng.random((400, 6, 6, 1)) < 0.4).astype(np.uint8)
    fired = akida.calibrate_thresholds(model, x, target=target)
    potentials = x.reshape(400, -1).astype(np.int64) @ weights.reshape(-1, 16)
    thresholds = model.get_layer(1).get_variable("threshold_fire").astype(np.int64)
    numpy_fraction = (potentials > thresholds).mean(axis=0)
    np.testing.assert_allclose(fired["fc"], numpy_fraction)
    np.testing.assert_allclose(np.abs(numpy_fraction - target), _best_threshold_error(potentials, target))
    assert np.all(np.abs(numpy_fraction - target) < 0.05)


def test_calibration_of_multi_bit_activations_sets_steps_against_numpy():
    rng = np.random.default_rng(5)
    model = akida.Model([akida.InputData(input_shape=(6, 6, 1), input_bits=1),
                         akida.FullyConnected(8, weights_bits=4, threshold_fire_bits=4, name="fc")])
    weights = rng.integers(-7, 8, (6, 6, 1, 8))
    model.get_layer(1).set_variable("weights", weights)
    x = (rng.random((1000, 6, 6, 1)) < 0.5).astype(np.uint8)
    akida.calibrate_thresholds(model, x, target=0.4, saturation=0.05)
    layer = model.get_layer(1)
    t = layer.get_variable("threshold_fire").astype(np.float64)
    step = layer.get_variable("threshold_fire_step").astype(np.float64)
    p = x.reshape(1000, -1).astype(np.float64) @ weights.reshape(-1, 8)
    level = np.where(p > t, np.minimum(np.ceil((p - t) / step), 15), 0)
    np.testing.assert_array_equal(model.forward(x).reshape(1000, 8), level)
    assert np.all(np.abs((level > 0).mean(axis=0) - 0.4) < 0.05)
    assert np.all(np.abs((level == 15).mean(axis=0) - 0.05) < 0.03)


def test_calibration_of_a_conv_stack_in_order():
    rng = np.random.default_rng(2)
    model = akida.Model([akida.InputData(input_shape=(10, 10, 1), input_bits=4),
                         akida.Convolutional(3, 3, 6, weights_bits=4, name="c1"),
                         akida.Convolutional(3, 3, 4, weights_bits=4, name="c2")])
    for i, shape in ((1, (3, 3, 1, 6)), (2, (3, 3, 6, 4))):
        model.get_layer(i).set_variable("weights", rng.integers(-7, 8, shape))
    x = (rng.integers(1, 16, (60, 10, 10, 1)) * (rng.random((60, 10, 10, 1)) < 0.5)).astype(np.uint8)
    fired = akida.calibrate_thresholds(model, x, layers=["c1", "c2"], target=0.2)
    for name in ("c1", "c2"):
        out = model.forward(x, output_layer=name)
        fraction = (out.reshape(-1, out.shape[-1]) > 0).mean(axis=0)
        np.testing.assert_allclose(fired[name], fraction)
        assert np.all(np.abs(fraction - 0.2) < 0.05), (name, fraction)
    with pytest.raises(ValueError, match="target must be in"):
        akida.calibrate_thresholds(model, x, target=1.5)
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        akida.calibrate_thresholds(model, x, layers="nope")
    with pytest.raises(ValueError, match="has no enabled activation"):
        akida.calibrate_thresholds(model, x, layers=[0])


def test_a_failed_calibration_leaves_the_thresholds_and_steps_as_they_were():
    model = akida.Model(
        [
            akida.InputData(input_shape=(4, 4, 1), input_bits=1),
            akida.FullyConnected(8, weights_bits=2, threshold_fire_bits=4, threshold_fire=3, threshold_fire_step=2.0),
        ]
    )
    layer = model.get_layer(1)
    layer.set_variable("weights", np.random.default_rng(0).integers(-1, 2, (4, 4, 1, 8)))

    def unchanged():
        np.testing.assert_array_equal(layer.get_variable("threshold_fire"), np.full(8, 3))
        np.testing.assert_array_equal(layer.get_variable("threshold_fire_step"), np.full(8, 2.0, np.float32))

    with pytest.raises(akida.InputError, match="no sample"):
        akida.calibrate_thresholds(model, np.zeros((0, 4, 4, 1), np.uint8))
    unchanged()
    with pytest.raises(akida.InputError, match="do not match the model input shape"):
        akida.calibrate_thresholds(model, np.ones((5, 4, 4, 2), np.uint8))
    unchanged()
    with pytest.raises(akida.DTypeError):
        akida.calibrate_thresholds(model, np.ones((5, 4, 4, 1), np.float32))
    unchanged()

    def interrupt(done, total):
        if done == 40:  # during the step bisection, after the threshold was chosen
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        akida.calibrate_thresholds(model, np.ones((5, 4, 4, 1), np.uint8), callback=interrupt)
    unchanged()



# --- progress --------------------------------------------------------------------------------

def test_calibration_progress_quiet_by_default_callback_and_tqdm_bar(capsys):
    model = akida.Model([akida.InputData(input_shape=(2, 2, 1), input_bits=1), akida.FullyConnected(2)])
    model.get_layer(1).set_variable("weights", np.ones((2, 2, 1, 2), np.int8))
    x = np.ones((4, 2, 2, 1), np.uint8)
    akida.calibrate_thresholds(model, x)
    assert capsys.readouterr().err == ""
    seen = []
    akida.calibrate_thresholds(model, x, callback=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (33, 33) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    pytest.importorskip("tqdm")
    akida.calibrate_thresholds(model, x, verbose=True)
    err = capsys.readouterr().err
    assert "calibrating thresholds" in err and "33/33" in err


def test_progress_falls_back_to_text_without_tqdm(monkeypatch, capsys):
    import akida.progress as progress

    monkeypatch.setattr(progress, "_tqdm", lambda: None)
    with progress.Progress(2, "work", verbose=True) as bar:
        bar.update()
        bar.update()
    assert capsys.readouterr().err.splitlines() == ["work: 0/2", "work: 1/2", "work: 2/2"]
    with pytest.raises(TypeError, match="verbose must be a bool"):
        progress.Progress(2, "work", verbose="yes")
    with progress.Progress(1, "numpy", verbose=np.bool_(True)) as bar:
        bar.update()
    assert capsys.readouterr().err.splitlines() == ["numpy: 0/1", "numpy: 1/1"]
    with pytest.raises(TypeError, match="callback must be callable"):
        progress.Progress(2, "work", callback=3)


def test_converter_loops_report_progress(capsys):
    from akida.converters import synthetic_saccade_events

    image = np.zeros((8, 8), np.uint8)
    image[2:5, 2:5] = 200
    seen = []
    quiet = synthetic_saccade_events(image, num_saccades=2, steps_per_saccade=5)
    assert capsys.readouterr().err == ""
    loud = synthetic_saccade_events(image, num_saccades=2, steps_per_saccade=5,
                                    callback=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(quiet, loud)
    assert seen == [(d, 10) for d in range(1, 11)]


# --- make targets and README -------------------------------------------------------------------

def test_make_steps_show_progress_and_the_readme_says_how_to_run_scripts():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text()
    for line in makefile.splitlines():
        if "pip install" in line or "maturin" in line:
            assert "--quiet" not in line and " -q " not in line, line
    assert re.search(r"^wheel: .*\n\t\$\(VENV\)/bin/maturin build --release --out dist$", makefile, re.M)
    assert re.search(r"^run: build", makefile, re.M)
    readme = (root / "README.md").read_text()
    assert ". .venv/bin/activate" in readme and "make run SCRIPT=" in readme and "make wheel" in readme

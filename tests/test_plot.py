"""akida.plot: each picture renders to a PNG with the expected axes and titles (Agg backend)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import akida

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")

from akida import plot  # noqa: E402


@pytest.fixture
def digits_like(rng):
    model = akida.Model([akida.InputData(8, 8, 1, input_bits=1), akida.FullyConnected(40, activations_enabled=False)])
    model.compile(num_weights=12, num_classes=4, seed=3)
    x = (rng.random((80, 8, 8, 1)) < 0.3).astype(np.uint8)
    model.fit(x, rng.integers(0, 4, 80))
    return model, x


def render(fig, path):
    fig.savefig(path, dpi=60)
    plt.close(fig)
    assert path.stat().st_size > 1000
    return path


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_weights_of_a_compiled_fully_connected_layer_by_class(digits_like, tmp_path):
    model, _ = digits_like
    fig = plot.plot_weights(model.get_layer(1), max_per_class=6)
    assert len(fig.axes) == 4 * 6
    assert titles(fig)[:7] == ["0", "1", "2", "3", "4", "5", "10"]  # row 2 starts at the second group
    assert [ax.get_ylabel() for ax in fig.axes[::6]] == [f"class {k}" for k in range(4)]
    assert "fully_connected (FullyConnected): weights" in fig._suptitle.get_text()
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(image, model.get_layer(1).get_variable("weights")[:, :, 0, 0])
    render(fig, tmp_path / "w.png")


def test_weights_of_a_convolution_channel_or_summed(rng, tmp_path):
    model = akida.Model([akida.InputData(8, 8, 3, input_bits=2),
                         akida.Convolutional(3, 3, 7, weights_bits=2, threshold_fire=1)])
    weights = rng.integers(-1, 2, (3, 3, 3, 7))
    model.get_layer(1).set_variable("weights", weights)
    fig = plot.plot_weights(model.get_layer(1))
    assert len(fig.axes) == 7 and titles(fig) == [str(i) for i in range(7)]
    np.testing.assert_array_equal(fig.axes[6].images[0].get_array(), weights.sum(axis=2)[:, :, 6])
    render(fig, tmp_path / "sum.png")
    fig = plot.plot_weights(model.get_layer(1), channel=2, max_neurons=4)
    assert len(fig.axes) == 4 and "channel 2" in fig._suptitle.get_text()
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), weights[:, :, 2, 3])
    render(fig, tmp_path / "c2.png")
    with pytest.raises(ValueError, match="channel 3 is out of range"):
        plot.plot_weights(model.get_layer(1), channel=3)
    with pytest.raises(ValueError, match="not InputData"):
        plot.plot_weights(model.get_layer(0))


def test_learning_histogram_and_plasticity(digits_like, tmp_path):
    model, _ = digits_like
    layer = model.get_layer(1)
    fig = plot.plot_learning(layer)
    assert titles(fig) == ["learning histogram", "plasticity"]
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    np.testing.assert_array_equal(heights, layer.get_learning_histogram())
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), layer.get_plasticity())
    render(fig, tmp_path / "l.png")
    uncompiled = akida.Model([akida.InputData(8, 8, 1, input_bits=1), akida.FullyConnected(4)])
    with pytest.raises(akida.ArchitectureError):
        plot.plot_learning(uncompiled.get_layer(1))


def test_statistics(digits_like, tmp_path):
    model, x = digits_like
    with pytest.raises(ValueError, match="no statistics yet"):
        plot.plot_statistics(akida.Model(serialized_buffer=model.to_buffer()))
    model.forward(x)
    stats = model.get_statistics()
    fig = plot.plot_statistics(model)
    assert titles(fig) == ["sparsity", "synaptic operations per sample"]
    heights = [p.get_height() for p in fig.axes[1].patches]
    assert heights == [s.synaptic_operations / s.samples for s in stats.values()]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == list(stats)
    render(fig, tmp_path / "s.png")


def test_missing_matplotlib_names_the_extra(monkeypatch, digits_like):
    model, _ = digits_like
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install openakida\[plot\]"):
        plot.plot_learning(model.get_layer(1))

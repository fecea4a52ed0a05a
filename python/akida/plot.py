"""Pictures of a model: learned weights, the learning state, per-layer statistics.

Each function returns a :class:`matplotlib.figure.Figure` made with ``matplotlib.pyplot``
(``plt.show()`` displays it, ``fig.savefig("x.png")`` saves it; close it with ``plt.close(fig)``
when making many). matplotlib is optional (``pip install openakida[plot]``) and imported only
when a function is called.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["mesh_values", "plot_learning", "plot_mesh", "plot_statistics", "plot_weights"]

_WEIGHTED = ("FullyConnected", "Convolutional", "InputConvolutional")


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "akida.plot needs matplotlib: pip install openakida[plot] (or pip install matplotlib)"
        ) from e
    return plt


def _title(layer: Any, what: str) -> str:
    return f"{layer.name} ({layer.layer_type}): {what}"


def plot_weights(
    layer: Any,
    channel: int | None = None,
    max_neurons: int = 64,
    max_per_class: int = 10,
    cmap: str = "gray",
    panel_size: float = 1.0,
) -> Any:
    """The weights of each neuron of a FullyConnected, Convolutional or InputConvolutional layer
    as an image grid.

    A FullyConnected neuron's weights are shown with the layer input's height x width, a
    convolution kernel with its kernel height x width; the input channels are summed, or only
    ``channel`` is shown. When the layer is compiled for learning with ``num_classes > 1``
    (``layer.learning``), each row is one class group (its first ``max_per_class`` neurons) and is
    labelled with the class; otherwise the first ``max_neurons`` neurons fill a square grid. All
    panels share one colour scale.

    Returns the Figure; it has one axes per neuron shown, titled with the neuron index.
    """
    if layer.layer_type not in _WEIGHTED:
        raise ValueError(
            f"plot_weights shows FullyConnected, Convolutional and InputConvolutional layers, "
            f"not {layer.layer_type} (layer {layer.name!r})"
        )
    weights = layer.get_variable("weights").astype(np.int64)  # (h, w, c, n)
    if channel is None:
        images = weights.sum(axis=2)
        what = "weights, channels summed" if weights.shape[2] > 1 else "weights"
    else:
        if not 0 <= channel < weights.shape[2]:
            raise ValueError(f"channel {channel} is out of range: the layer has {weights.shape[2]} input channels")
        images = weights[:, :, channel]
        what = f"weights, channel {channel}"
    num_neurons = images.shape[-1]
    learning = layer.learning
    classes = int(learning.num_classes) if learning is not None else 1
    cells: list[tuple[int | None, list[int]]]
    if classes > 1:
        per_class = num_neurons // classes
        cols = max(1, min(per_class, max_per_class))
        cells = [(k, [k * per_class + j for j in range(cols)]) for k in range(classes)]
        rows = classes
    else:
        shown = min(num_neurons, max_neurons)
        cols = max(1, math.ceil(math.sqrt(shown)))
        rows = max(1, math.ceil(shown / cols))
        cells = [(None, list(range(r * cols, min((r + 1) * cols, shown)))) for r in range(rows)]
    plt = _pyplot()
    fig = plt.figure(figsize=(panel_size * cols + 0.8, panel_size * rows + 0.6), layout="constrained")
    limit = max(1, int(np.abs(images).max()))
    vmin = -limit if images.min() < 0 else 0
    for r, (group, neurons) in enumerate(cells):
        for c, neuron in enumerate(neurons):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            ax.imshow(images[:, :, neuron], cmap=cmap, vmin=vmin, vmax=limit, interpolation="nearest")
            ax.set_title(str(neuron), fontsize=6, pad=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and group is not None:
                ax.set_ylabel(f"class {group}", fontsize=7)
    fig.suptitle(_title(layer, what), fontsize=9)
    return fig


def plot_learning(layer: Any) -> Any:
    """The learning state of a layer compiled for learning: the histogram of
    ``layer.get_learning_histogram()`` (neurons by learning threshold, in % of ``num_weights``)
    and the plasticity of each neuron (``layer.get_plasticity()``), class groups separated.

    Returns the Figure, with two axes titled "learning histogram" and "plasticity".
    Raises :class:`akida.ArchitectureError` if the layer is not compiled.
    """
    histogram = np.asarray(layer.get_learning_histogram())
    plasticity = np.asarray(layer.get_plasticity())
    learning = layer.learning
    plt = _pyplot()
    fig, (ax_hist, ax_plast) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    ax_hist.bar(np.arange(len(histogram)), histogram, width=1.0, color="tab:blue")
    ax_hist.set_title("learning histogram")
    ax_hist.set_xlabel("threshold_learning, % of num_weights (0: not learned)")
    ax_hist.set_ylabel("neurons")
    ax_hist.set_xlim(-1, len(histogram))
    ax_plast.plot(np.arange(len(plasticity)), plasticity, ".", markersize=3, color="tab:orange")
    classes = int(learning.num_classes) if learning is not None else 1
    if classes > 1:
        per_class = len(plasticity) // classes
        for k in range(1, classes):
            ax_plast.axvline(k * per_class - 0.5, color="0.8", linewidth=0.8)
    ax_plast.set_title("plasticity")
    ax_plast.set_xlabel("neuron" + (f" ({classes} class groups)" if classes > 1 else ""))
    ax_plast.set_ylim(0, 1.05)
    fig.suptitle(_title(layer, "learning"), fontsize=9)
    return fig


def plot_statistics(model: Any) -> Any:
    """Per-layer input and output sparsity and synaptic operations per sample, from
    ``model.get_statistics()`` (run ``forward`` / ``predict`` / ``evaluate`` first).

    Returns the Figure, with two axes titled "sparsity" and "synaptic operations per sample".
    """
    stats = model.get_statistics()
    if not stats:
        raise ValueError("the model has no statistics yet: run forward, evaluate or predict first")
    names = [layer.name for layer in model.layers if layer.name in stats]
    s = [stats[name] for name in names]
    positions = np.arange(len(names))
    plt = _pyplot()
    fig, (ax_sp, ax_ops) = plt.subplots(1, 2, figsize=(max(6.0, 1.6 * len(names) + 3), 3.4), layout="constrained")
    ax_sp.bar(positions - 0.2, [v.input_sparsity for v in s], width=0.4, label="input")
    ax_sp.bar(positions + 0.2, [v.output_sparsity for v in s], width=0.4, label="output")
    ax_sp.set_title("sparsity")
    ax_sp.set_ylim(0, 1)
    ax_sp.set_ylabel("fraction of zeros")
    ax_sp.legend(fontsize=7)
    ops = [v.synaptic_operations / max(1, v.samples) for v in s]
    ax_ops.bar(positions, ops, color="tab:green")
    ax_ops.set_title("synaptic operations per sample")
    for ax in (ax_sp, ax_ops):
        ax.set_xticks(positions, names, rotation=20, ha="right", fontsize=7)
    samples = max(v.samples for v in s)
    fig.suptitle(f"statistics over {samples} samples", fontsize=9)
    return fig


#: What :func:`plot_mesh` can show per NP.
MESH_QUANTITIES = ("memory_bytes", "input_events", "output_events", "synaptic_ops", "packets", "hops")


def mesh_values(model: Any, quantity: str = "memory_bytes") -> tuple[np.ndarray, dict[tuple[int, int, int], float]]:
    """Per-NP values of a mapped model on its device's mesh.

    ``memory_bytes`` comes from the mapping (the bytes each NP holds); the other quantities are
    the counts of the last emulated forward (``model.statistics``). Returns an image of the mesh
    (each node a 2 x 2 block of its NPs 0-3, rows and columns as the idents count them) and the
    values by NP ident.
    """
    if quantity not in MESH_QUANTITIES:
        raise ValueError(f"quantity must be one of {MESH_QUANTITIES}, got {quantity!r}")
    device = model.device
    if device is None:
        raise ValueError("the model is not mapped: call model.map(akida.AKD1000()) first")
    values: dict[tuple[int, int, int], float] = {}
    if quantity == "memory_bytes":
        for layer in model.layers:
            mapping = layer.mapping
            for np_ in mapping.nps if mapping is not None else []:
                values[np_.ident] = values.get(np_.ident, 0.0) + np_.memory_bytes
    else:
        stats = model.statistics
        if stats is None:
            raise ValueError(f"{quantity} needs an emulated forward: run model.forward(inputs) on the mapped model first")
        values = {tuple(ident): float(c[quantity]) for ident, c in stats["nps"].items()}
    idents = [np_.ident for np_ in device.mesh.nps]
    columns = max(i[0] for i in idents)
    rows = max(i[1] for i in idents)
    image = np.full((2 * rows, 2 * columns), np.nan)
    for col, row, index in idents:
        image[2 * (row - 1) + index // 2, 2 * (col - 1) + index % 2] = values.get((col, row, index), 0.0)
    return image, values


def plot_mesh(model: Any, quantity: str = "memory_bytes") -> Any:
    """A heat map of the device's mesh: per NP, its memory (from the mapping) or what it did in
    the last emulated forward (``input_events``, ``output_events``, ``synaptic_ops``, ``packets``,
    ``hops``). Each node is a 2 x 2 block of its NPs. Returns the Figure (one axes titled with the
    quantity, and a colour bar)."""
    image, values = mesh_values(model, quantity)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.8), layout="constrained")
    shown = ax.imshow(image, cmap="viridis")
    fig.colorbar(shown, ax=ax, label=quantity)
    rows, columns = image.shape[0] // 2, image.shape[1] // 2
    ax.set_xticks([2 * c + 0.5 for c in range(columns)], [str(c + 1) for c in range(columns)])
    ax.set_yticks([2 * r + 0.5 for r in range(rows)], [str(r + 1) for r in range(rows)])
    for c in range(1, columns):
        ax.axvline(2 * c - 0.5, color="white", linewidth=1.5)
    for r in range(1, rows):
        ax.axhline(2 * r - 0.5, color="white", linewidth=1.5)
    ax.set_xlabel("mesh column")
    ax.set_ylabel("mesh row")
    used = sum(1 for v in values.values() if v > 0)
    ax.set_title(f"{quantity} per NP: {used} NPs non-zero\n(each node: NPs 0 1 / 2 3)", fontsize=9)
    return fig
